//! The connect options every adapter shares ([`ConnectSettings`]): the data, its builder
//! methods, and at connect time the settings taken apart ([`ConnectParts`]), each to be
//! honoured or refused; [`SharedConnectSettings`], a copyable form for a pool. How each adapter
//! gets them is in `adapter.rs`.

use core::net::IpAddr;
use core::time::Duration;

use super::{ConnectClock, Proxy, Route, SmtpUrl, TlsMode};
#[allow(unused_imports)]
use crate::alloc_prelude::*;
use crate::client::{SharedClientOptions, SmtpClientOptions};
use crate::command::Domain;
use crate::error::{ArgumentError, Field, InvalidInputError, SmtpError};
use crate::session::SessionConfig;
use crate::transport::Transport;

/// How long opening a connection may take by default (DNS, TCP connect, a proxy's handshake,
/// an implicit-TLS handshake: each step gets this long, within the session's deadline).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The connect options every adapter shares: TLS mode, connect timeout, the name the
/// certificate is checked for, proxy, local address, and the client's options. Each adapter's
/// `ConnectOptions` holds one and gets its builder methods from
/// [`connect_options_methods!`](crate::connect_options_methods).
///
/// ```
/// use std::time::Duration;
/// use smtp_proto::connect::{ConnectSettings, TlsMode};
///
/// let settings = ConnectSettings::new(TlsMode::StartTls)
///     .with_connect_timeout(Duration::from_secs(10))
///     .with_deadline(Duration::from_secs(60));
/// assert_eq!(settings.connect_timeout(), Duration::from_secs(10));
/// assert_eq!(settings.session_config().timeouts.total, Some(Duration::from_secs(60)));
/// ```
#[derive(Debug)]
pub struct ConnectSettings {
    /// Every setting: taken apart whole by [`into_parts`](Self::into_parts).
    parts: ConnectParts,
}

impl ConnectSettings {
    /// Defaults for `mode`: [`DEFAULT_CONNECT_TIMEOUT`], the certificate checked for the host
    /// dialled, no proxy, the system's local address, [`SmtpClientOptions::new`].
    pub fn new(mode: TlsMode) -> ConnectSettings {
        ConnectSettings {
            parts: ConnectParts {
                mode,
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                tls_server_name: None,
                route: Route::default(),
                client: SmtpClientOptions::new(),
            },
        }
    }

    /// [`new`](Self::new) with the URL's settings ([`with_url`](Self::with_url)).
    pub fn from_url(url: &SmtpUrl) -> ConnectSettings {
        ConnectSettings::new(url.tls).with_url(url)
    }

    /// Take a connection URL's settings on top of these: its TLS mode, LMTP, reply timeout,
    /// connect timeout and deadline. Its host, port, EHLO name and credentials are for
    /// `connect` and `login` ([`connect_url`](super::connect_url) uses them all).
    pub fn with_url(mut self, url: &SmtpUrl) -> ConnectSettings {
        self.parts.mode = url.tls;
        let protocol = url.protocol;
        self = self.map_client_options(|o| o.with_protocol(protocol));
        if let Some(limit) = url.timeout {
            self = self.with_reply_timeout(limit);
        }
        if let Some(limit) = url.connect_timeout {
            self = self.with_connect_timeout(limit);
        }
        if let Some(limit) = url.deadline {
            self = self.with_deadline(limit);
        }
        self
    }

    /// The TLS mode.
    pub fn mode(&self) -> TlsMode {
        self.parts.mode
    }

    /// The longest each step of opening the connection may take.
    pub fn connect_timeout(&self) -> Duration {
        self.parts.connect_timeout
    }

    /// The name the server's certificate is checked for, when not the host dialled.
    pub fn tls_server_name(&self) -> Option<&str> {
        self.parts.tls_server_name.as_deref()
    }

    /// The proxy to connect through, if any.
    pub fn proxy(&self) -> Option<&Proxy> {
        self.parts.route.proxy.as_ref()
    }

    /// The local address to connect from, if chosen.
    pub fn local_address(&self) -> Option<IpAddr> {
        self.parts.route.local_address
    }

    /// The client's options.
    pub fn client_options(&self) -> &SmtpClientOptions {
        &self.parts.client
    }

    /// The engine's configuration the client's options describe.
    pub fn session_config(&self) -> &SessionConfig {
        self.parts.client.session_config()
    }

    /// Change the TLS mode, keeping every other setting.
    pub fn with_mode(mut self, mode: TlsMode) -> ConnectSettings {
        self.parts.mode = mode;
        self
    }

    /// The longest each step of opening the connection may take: DNS and the TCP connect
    /// (with a proxy's handshake), then the TLS handshake: for [`TlsMode::Implicit`] where the
    /// adapter runs it, and after STARTTLS (the session's
    /// [`tls_handshake`](crate::Timeouts::tls_handshake) limit, made no longer than this by
    /// [`start`](Self::start)). Each step is also bounded by the session's deadline.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> ConnectSettings {
        self.parts.connect_timeout = timeout;
        self
    }

    /// The same limit for every wait on a server reply, keeping the deadline and the
    /// write-progress rule ([`SmtpClientOptions::with_reply_timeout`]).
    pub fn with_reply_timeout(self, timeout: Duration) -> ConnectSettings {
        self.map_client_options(|o| o.with_reply_timeout(timeout))
    }

    /// A deadline for the whole session, counted from before the connect: opening the
    /// connection, the TLS handshake, the SMTP session up to the end of QUIT
    /// ([`SmtpClientOptions::with_deadline`]; the adapter starts it with
    /// [`start`](Self::start)).
    pub fn with_deadline(self, limit: Duration) -> ConnectSettings {
        self.map_client_options(|o| o.with_deadline(limit))
    }

    /// Allow AUTH without TLS ([`SmtpClientOptions::allow_plaintext_auth`]).
    pub fn allow_plaintext_auth(self) -> ConnectSettings {
        self.map_client_options(SmtpClientOptions::allow_plaintext_auth)
    }

    /// Replace the client's options entirely (the adapter's defaults included).
    pub fn with_client_options(mut self, options: SmtpClientOptions) -> ConnectSettings {
        self.parts.client = options;
        self
    }

    /// Change the client's options, keeping the others.
    pub fn map_client_options(
        mut self,
        f: impl FnOnce(SmtpClientOptions) -> SmtpClientOptions,
    ) -> ConnectSettings {
        self.parts.client = f(self.parts.client);
        self
    }

    /// Check the certificate for this name instead of the host dialled.
    pub fn with_tls_server_name(mut self, name: impl Into<String>) -> ConnectSettings {
        self.parts.tls_server_name = Some(name.into());
        self
    }

    /// Reach the server through this proxy.
    pub fn with_proxy(mut self, proxy: Proxy) -> ConnectSettings {
        self.parts.route.proxy = Some(proxy);
        self
    }

    /// Connect from this local address.
    pub fn with_local_address(mut self, address: IpAddr) -> ConnectSettings {
        self.parts.route.local_address = Some(address);
        self
    }

    /// Begin a connection attempt on `T`'s clock: check `ehlo_domain` (before any I/O), start
    /// the [`ConnectClock`] (the session's deadline counts from here:
    /// [`SmtpClientOptions::with_start`]), bound a STARTTLS handshake by the connect timeout,
    /// and hand back every setting for the adapter to open its socket with.
    pub fn start<T: Transport>(
        self,
        ehlo_domain: &str,
    ) -> Result<(ConnectClock, ConnectParts), SmtpError> {
        Domain::new(ehlo_domain)?;
        let mut parts = self.into_parts();
        // A STARTTLS handshake is bounded like an implicit-TLS one: by the connect timeout too.
        let connect_timeout = parts.connect_timeout;
        let client = parts.client.map_session_config(|config| {
            let handshake = &mut config.timeouts.tls_handshake;
            *handshake = (*handshake).min(connect_timeout);
        });
        let (clock, client) = ConnectClock::start::<T>(client);
        parts.client = client;
        Ok((clock, parts))
    }

    /// Every setting, taken apart, for an adapter that starts its clock itself (most call
    /// [`start`](Self::start), which does both).
    pub fn into_parts(self) -> ConnectParts {
        self.parts
    }

    /// These settings in a form that can be copied ([`SharedConnectSettings`]), for a pool
    /// that opens many connections with them.
    pub fn into_shared(self) -> SharedConnectSettings {
        SharedConnectSettings {
            parts: self.parts.map_client(SmtpClientOptions::into_shared),
        }
    }
}

/// [`ConnectSettings`] taken apart, at connect time ([`ConnectSettings::start`]). An adapter
/// destructures it whole, without `..`, so that a setting added here cannot be silently
/// ignored: it either honours each one or refuses it ([`refuse`](Self::refuse)).
///
/// The client's options are `C`: [`SmtpClientOptions`], or in [`SharedConnectSettings`] their
/// copyable form.
#[derive(Debug, Clone)]
pub struct ConnectParts<C = SmtpClientOptions> {
    /// How the connection is protected.
    pub mode: TlsMode,
    /// The limit of each step of opening the connection.
    pub connect_timeout: Duration,
    /// The name the certificate is checked for, when not the host dialled
    /// ([`server_name`](Self::server_name)).
    pub tls_server_name: Option<String>,
    /// How the connection reaches the server: the proxy, the local address.
    pub route: Route,
    /// The client's options (from [`ConnectSettings::start`]: marked with the start).
    pub client: C,
}

/// A setting of [`ConnectSettings`] an adapter may be unable to honour
/// ([`ConnectParts::refuse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectSetting {
    /// [`ConnectSettings::with_proxy`].
    Proxy,
    /// [`ConnectSettings::with_local_address`].
    LocalAddress,
    /// [`ConnectSettings::with_tls_server_name`].
    TlsServerName,
}

impl ConnectSetting {
    /// Why a connection cannot be opened with this setting.
    fn refusal(self) -> &'static str {
        match self {
            ConnectSetting::Proxy => {
                "this connection cannot go through a proxy (ConnectOptions::with_proxy)"
            }
            ConnectSetting::LocalAddress => {
                "this connection cannot choose its local address (ConnectOptions::with_local_address)"
            }
            ConnectSetting::TlsServerName => {
                "this connection cannot check the certificate for a name other than the host \
                 (ConnectOptions::with_tls_server_name)"
            }
        }
    }
}

impl<C> ConnectParts<C> {
    /// The same settings with the client's options changed by `f`.
    fn map_client<D>(self, f: impl FnOnce(C) -> D) -> ConnectParts<D> {
        // A struct literal names every field: a setting added later cannot be dropped here.
        ConnectParts {
            mode: self.mode,
            connect_timeout: self.connect_timeout,
            tls_server_name: self.tls_server_name,
            route: self.route,
            client: f(self.client),
        }
    }

    /// The name the certificate is checked for: the one set, or `host`.
    pub fn server_name<'a>(&'a self, host: &'a str) -> &'a str {
        self.tls_server_name.as_deref().unwrap_or(host)
    }

    /// Fail with [`SmtpError::InvalidInput`], before any I/O, when one of the settings this
    /// adapter cannot honour was set: a connection is never opened without a setting the
    /// caller asked for (a proxy skipped would reveal the caller's address, a name not checked
    /// would accept another certificate).
    pub fn refuse(&self, unsupported: &[ConnectSetting]) -> Result<(), SmtpError> {
        for &setting in unsupported {
            let set = match setting {
                ConnectSetting::Proxy => self.route.proxy.is_some(),
                ConnectSetting::LocalAddress => self.route.local_address.is_some(),
                ConnectSetting::TlsServerName => self.tls_server_name.is_some(),
            };
            if set {
                return Err(InvalidInputError::argument(
                    Field::Parameter,
                    ArgumentError::Syntax(setting.refusal()),
                )
                .into());
            }
        }
        Ok(())
    }
}

impl<C> ConnectParts<C> {
    /// Fail with [`SmtpError::InvalidInput`], before any I/O, when `host:port` cannot be
    /// reached as these settings say: a host that is neither an IP address nor a host name
    /// ([`check_host`](crate::connect::check_host): a URL, `host:port`, a bracketed IPv6
    /// address), port 0, or a host the proxy's handshake cannot carry. Reported after
    /// connecting, such a mistake would look like a network failure worth retrying, and a
    /// proxy would be handed a name no resolver should see.
    pub fn check_destination(&self, host: &str, port: u16) -> Result<(), SmtpError> {
        let refused = if let Err(e) = crate::connect::check_host(host) {
            Some(e.reason())
        } else if port == 0 {
            Some("port 0 cannot be connected to")
        } else if let Some(proxy) = &self.route.proxy {
            crate::connect::ProxyHandshake::new(proxy, host, port)
                .err()
                .map(|_| {
                    "the proxy cannot carry this request (a host name too long or with a \
                     forbidden byte, or an HTTP proxy user with a ':')"
                })
        } else {
            None
        };
        match refused {
            Some(why) => {
                Err(InvalidInputError::argument(Field::Server, ArgumentError::Syntax(why)).into())
            }
            None => Ok(()),
        }
    }
}

/// [`ConnectSettings`] that can be copied ([`ConnectSettings::into_shared`]): each
/// [`settings`](Self::settings) is a new [`ConnectSettings`] with the same values, whose
/// client options share one policy, audit sink and transcript sink
/// ([`SharedClientOptions`](crate::client::SharedClientOptions)).
#[derive(Debug, Clone)]
pub struct SharedConnectSettings {
    parts: ConnectParts<SharedClientOptions>,
}

impl SharedConnectSettings {
    /// A new [`ConnectSettings`] with these values.
    pub fn settings(&self) -> ConnectSettings {
        ConnectSettings {
            parts: self.parts.clone().map_client(|client| client.options()),
        }
    }

    /// The TLS mode.
    pub fn mode(&self) -> TlsMode {
        self.parts.mode
    }

    /// The engine's configuration of the client options (without the shared policy and sinks).
    pub fn session_config(&self) -> &SessionConfig {
        self.parts.client.session_config()
    }
}
