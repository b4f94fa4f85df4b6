//! The connect options every adapter shares ([`ConnectSettings`]), the builder methods that
//! give them to each adapter's own `ConnectOptions`
//! ([`connect_options_methods!`](crate::connect_options_methods)), and the helpers written once
//! over them ([`connect_url`], [`SmtpClient::login_url`]).
//!
//! # The design
//!
//! Every adapter has a `ConnectOptions` of its own name, with its own extras (tokio and the
//! blocking client: a rustls `TlsConfig` with its client certificate; Workers: the port-25
//! rule; WASI: its `TlsConfig`) and its own `connect` (async on tokio, Workers and WASI,
//! blocking in `smtp-io-std`). What they share lives here, once:
//!
//! - [`ConnectSettings`]: the data (TLS mode, connect timeout, TLS server name, proxy, local
//!   address, the [`SmtpClientOptions`]), its builder methods,
//!   [`from_url`](ConnectSettings::from_url), and at connect time
//!   [`start`](ConnectSettings::start) (the EHLO name checked, the [`ConnectClock`] started)
//!   and [`ConnectParts`] (the settings taken apart, each one to be honoured or refused:
//!   [`ConnectParts::refuse`]). [`SharedConnectSettings`] is a copyable form of it, for a pool
//!   that opens every connection with the same options.
//! - [`AdapterOptions`]: what an adapter's `ConnectOptions` implements (three small functions)
//!   to be built on a [`ConnectSettings`]; [`Connect`], what an async one implements for
//!   [`connect_url`] (written once over every adapter).
//! - [`connect_options_methods!`](crate::connect_options_methods): invoked inside the
//!   adapter's `impl ConnectOptions { .. }`, it writes the shared builder methods (`new`,
//!   `from_url`, `with_connect_timeout`, `with_reply_timeout`, `with_deadline`,
//!   `allow_plaintext_auth`, `with_client_options`, `map_client_options`,
//!   `with_tls_server_name`, `with_proxy`, `with_local_address`, `mode`, `settings`), each a
//!   one-line forward to [`ConnectSettings`], with one doc text for all.
//!
//! Why a macro rather than one generic type (`ConnectOptions<Extra>` with an alias in each
//! adapter): an adapter cannot add inherent methods to a type of this crate, so its own
//! methods (`with_tls_config`, `allow_port_25`, `connect`) would have to be trait methods, and
//! `use smtp_io_tokio::ConnectOptions;` followed by `.connect(..)` (every existing caller)
//! would stop compiling without a trait import; nor could the blocking client's `connect` and
//! the async ones share one name on one generic type. Why not a wrapper with `Deref`: the
//! builder methods take `self` by value and return `Self`, which a deref to the inner type
//! cannot give back. With the macro each adapter keeps a plain struct with inherent methods
//! (no import needed, its own `connect`), and the methods, their names and their docs are
//! still written once, here; the real code behind them is ordinary, type-checked code in
//! [`ConnectSettings`].

use core::future::Future;
use core::net::IpAddr;
use core::time::Duration;

use super::{ConnectClock, Proxy, SmtpUrl, TlsMode};
#[allow(unused_imports)]
use crate::alloc_prelude::*;
use crate::client::{SharedClientOptions, SmtpClient, SmtpClientOptions, Transport};
use crate::command::Domain;
use crate::error::{ArgumentError, Field, InvalidInputError, SmtpError};
use crate::session::SessionConfig;

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
    mode: TlsMode,
    connect_timeout: Duration,
    tls_server_name: Option<String>,
    proxy: Option<Proxy>,
    local_address: Option<IpAddr>,
    client: SmtpClientOptions,
}

impl ConnectSettings {
    /// Defaults for `mode`: [`DEFAULT_CONNECT_TIMEOUT`], the certificate checked for the host
    /// dialled, no proxy, the system's local address, [`SmtpClientOptions::new`].
    pub fn new(mode: TlsMode) -> ConnectSettings {
        ConnectSettings {
            mode,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            tls_server_name: None,
            proxy: None,
            local_address: None,
            client: SmtpClientOptions::new(),
        }
    }

    /// [`new`](Self::new) with the URL's settings ([`with_url`](Self::with_url)).
    pub fn from_url(url: &SmtpUrl) -> ConnectSettings {
        ConnectSettings::new(url.tls).with_url(url)
    }

    /// Take a connection URL's settings on top of these: its TLS mode, LMTP, reply timeout,
    /// connect timeout and deadline. Its host, port, EHLO name and credentials are for
    /// `connect` and `login` ([`connect_url`] uses them all).
    pub fn with_url(mut self, url: &SmtpUrl) -> ConnectSettings {
        self.mode = url.tls;
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
        self.mode
    }

    /// The longest each step of opening the connection may take.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The name the server's certificate is checked for, when not the host dialled.
    pub fn tls_server_name(&self) -> Option<&str> {
        self.tls_server_name.as_deref()
    }

    /// The proxy to connect through, if any.
    pub fn proxy(&self) -> Option<&Proxy> {
        self.proxy.as_ref()
    }

    /// The local address to connect from, if chosen.
    pub fn local_address(&self) -> Option<IpAddr> {
        self.local_address
    }

    /// The client's options.
    pub fn client_options(&self) -> &SmtpClientOptions {
        &self.client
    }

    /// The engine's configuration the client's options describe.
    pub fn session_config(&self) -> &SessionConfig {
        self.client.session_config()
    }

    /// Change the TLS mode, keeping every other setting.
    pub fn with_mode(mut self, mode: TlsMode) -> ConnectSettings {
        self.mode = mode;
        self
    }

    /// The longest each step of opening the connection may take: DNS and the TCP connect
    /// (with a proxy's handshake), then, for [`TlsMode::Implicit`], the TLS handshake where
    /// the adapter runs it. Each step is also bounded by the session's deadline.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> ConnectSettings {
        self.connect_timeout = timeout;
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
        self.client = options;
        self
    }

    /// Change the client's options, keeping the others.
    pub fn map_client_options(
        mut self,
        f: impl FnOnce(SmtpClientOptions) -> SmtpClientOptions,
    ) -> ConnectSettings {
        self.client = f(self.client);
        self
    }

    /// Check the certificate for this name instead of the host dialled.
    pub fn with_tls_server_name(mut self, name: impl Into<String>) -> ConnectSettings {
        self.tls_server_name = Some(name.into());
        self
    }

    /// Reach the server through this proxy.
    pub fn with_proxy(mut self, proxy: Proxy) -> ConnectSettings {
        self.proxy = Some(proxy);
        self
    }

    /// Connect from this local address.
    pub fn with_local_address(mut self, address: IpAddr) -> ConnectSettings {
        self.local_address = Some(address);
        self
    }

    /// Begin a connection attempt on `T`'s clock: check `ehlo_domain` (before any I/O), start
    /// the [`ConnectClock`] (the session's deadline counts from here:
    /// [`SmtpClientOptions::with_start`]), and hand back every setting for the adapter to open
    /// its socket with.
    pub fn start<T: Transport>(
        self,
        ehlo_domain: &str,
    ) -> Result<(ConnectClock, ConnectParts), SmtpError> {
        Domain::new(ehlo_domain)?;
        let mut parts = self.into_parts();
        let (clock, client) = ConnectClock::start::<T>(parts.client);
        parts.client = client;
        Ok((clock, parts))
    }

    /// Every setting, taken apart, for an adapter that starts its clock itself (most call
    /// [`start`](Self::start), which does both).
    pub fn into_parts(self) -> ConnectParts {
        let ConnectSettings {
            mode,
            connect_timeout,
            tls_server_name,
            proxy,
            local_address,
            client,
        } = self;
        ConnectParts {
            mode,
            connect_timeout,
            tls_server_name,
            proxy,
            local_address,
            client,
        }
    }

    /// These settings in a form that can be copied ([`SharedConnectSettings`]), for a pool
    /// that opens many connections with them.
    pub fn into_shared(self) -> SharedConnectSettings {
        let ConnectSettings {
            mode,
            connect_timeout,
            tls_server_name,
            proxy,
            local_address,
            client,
        } = self;
        SharedConnectSettings {
            mode,
            connect_timeout,
            tls_server_name,
            proxy,
            local_address,
            client: client.into_shared(),
        }
    }
}

/// [`ConnectSettings`] taken apart, at connect time ([`ConnectSettings::start`]). An adapter
/// destructures it whole, without `..`, so that a setting added here cannot be silently
/// ignored: it either honours each one or refuses it ([`refuse`](Self::refuse)).
#[derive(Debug)]
pub struct ConnectParts {
    /// How the connection is protected.
    pub mode: TlsMode,
    /// The limit of each step of opening the connection.
    pub connect_timeout: Duration,
    /// The name the certificate is checked for, when not the host dialled
    /// ([`server_name`](Self::server_name)).
    pub tls_server_name: Option<String>,
    /// The proxy to connect through.
    pub proxy: Option<Proxy>,
    /// The local address to connect from.
    pub local_address: Option<IpAddr>,
    /// The client's options (from [`ConnectSettings::start`]: marked with the start).
    pub client: SmtpClientOptions,
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
                "this adapter cannot connect through a proxy (ConnectOptions::with_proxy)"
            }
            ConnectSetting::LocalAddress => {
                "this adapter cannot choose the local address (ConnectOptions::with_local_address)"
            }
            ConnectSetting::TlsServerName => {
                "this adapter cannot check the certificate for a name other than the host \
                 (ConnectOptions::with_tls_server_name)"
            }
        }
    }
}

impl ConnectParts {
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
                ConnectSetting::Proxy => self.proxy.is_some(),
                ConnectSetting::LocalAddress => self.local_address.is_some(),
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

/// [`ConnectSettings`] that can be copied ([`ConnectSettings::into_shared`]): each
/// [`settings`](Self::settings) is a new [`ConnectSettings`] with the same values, whose
/// client options share one policy, audit sink and transcript sink
/// ([`SharedClientOptions`](crate::client::SharedClientOptions)).
#[derive(Debug, Clone)]
pub struct SharedConnectSettings {
    mode: TlsMode,
    connect_timeout: Duration,
    tls_server_name: Option<String>,
    proxy: Option<Proxy>,
    local_address: Option<IpAddr>,
    client: SharedClientOptions,
}

impl SharedConnectSettings {
    /// A new [`ConnectSettings`] with these values.
    pub fn settings(&self) -> ConnectSettings {
        ConnectSettings {
            mode: self.mode,
            connect_timeout: self.connect_timeout,
            tls_server_name: self.tls_server_name.clone(),
            proxy: self.proxy.clone(),
            local_address: self.local_address,
            client: self.client.options(),
        }
    }

    /// The TLS mode.
    pub fn mode(&self) -> TlsMode {
        self.mode
    }

    /// The engine's configuration of the client options (without the shared policy and sinks).
    pub fn session_config(&self) -> &SessionConfig {
        self.client.session_config()
    }
}

/// What an adapter's `ConnectOptions` implements to be built on [`ConnectSettings`] and get
/// the shared builder methods ([`connect_options_methods!`](crate::connect_options_methods)).
pub trait AdapterOptions: Sized {
    /// Options with these shared settings and the adapter's defaults for its own extras (the
    /// client options are taken as they are: see
    /// [`default_client_options`](Self::default_client_options)).
    fn from_settings(settings: ConnectSettings) -> Self;

    /// The shared settings.
    fn settings(&self) -> &ConnectSettings;

    /// Change the shared settings, keeping the adapter's extras.
    fn map_settings(self, f: impl FnOnce(ConnectSettings) -> ConnectSettings) -> Self;

    /// The client options a new `ConnectOptions` starts from (default
    /// [`SmtpClientOptions::new`]; smtp-io-tokio adds its `tracing` transcript).
    fn default_client_options() -> SmtpClientOptions {
        SmtpClientOptions::new()
    }

    /// Defaults for `mode`: [`ConnectSettings::new`] with
    /// [`default_client_options`](Self::default_client_options).
    fn defaults(mode: TlsMode) -> Self {
        Self::from_settings(
            ConnectSettings::new(mode).with_client_options(Self::default_client_options()),
        )
    }

    /// [`defaults`](Self::defaults) with a connection URL's settings
    /// ([`ConnectSettings::with_url`]).
    fn for_url(url: &SmtpUrl) -> Self {
        Self::defaults(url.tls).map_settings(|s| s.with_url(url))
    }
}

/// An adapter's `ConnectOptions` that opens connections asynchronously: what [`connect_url`]
/// (and any code generic over adapters) calls.
pub trait Connect: AdapterOptions {
    /// The transport of the connections it opens.
    type Transport: Transport;

    /// Open a connection to `host:port`, read the greeting, EHLO as `ehlo_domain` and, for
    /// [`TlsMode::StartTls`], upgrade and EHLO again: the client is then ready for `login` or
    /// `send_mail`. Each adapter documents its errors.
    fn connect(
        self,
        host: &str,
        port: u16,
        ehlo_domain: &str,
    ) -> impl Future<Output = Result<SmtpClient<Self::Transport>, SmtpError>>;
}

/// Connect to the server a connection URL names with `O`'s options made from it
/// ([`AdapterOptions::for_url`]), saying EHLO as its `helo` (or `ehlo_domain`), and log in as
/// it says ([`SmtpClient::login_url`]). Every adapter's `connect_url` is this.
pub async fn connect_url<O: Connect>(
    url: &SmtpUrl,
    ehlo_domain: &str,
) -> Result<SmtpClient<O::Transport>, SmtpError> {
    let mut client = O::for_url(url)
        .connect(&url.host, url.port, url.ehlo_domain(ehlo_domain))
        .await?;
    client.login_url(url).await?;
    Ok(client)
}

impl SmtpUrl {
    /// The name to give in EHLO: the URL's `helo`, or `fallback`.
    pub fn ehlo_domain<'a>(&'a self, fallback: &'a str) -> &'a str {
        self.helo.as_ref().map_or(fallback, |d| d.as_str())
    }

    /// The user and password to log in with, when the URL has both (a user without a password
    /// means the caller logs in with a secret kept apart).
    pub fn credentials(&self) -> Option<(&str, &str)> {
        let user = self.user.as_deref()?;
        let password = self.password.as_ref()?.expose_str()?;
        Some((user, password))
    }
}

impl<T: Transport> SmtpClient<T> {
    /// Log in as a connection URL says: with its user and password when it has both
    /// ([`SmtpUrl::credentials`]), with its `auth` mechanism or else the best password
    /// mechanism the server offers ([`login`](Self::login)); without them, do nothing.
    pub async fn login_url(&mut self, url: &SmtpUrl) -> Result<(), SmtpError> {
        let Some((user, password)) = url.credentials() else {
            return Ok(());
        };
        match url.mechanism {
            Some(mechanism) => self.login_with(mechanism, user, password).await,
            None => self.login(user, password).await,
        }
    }
}

/// The builder methods every adapter's `ConnectOptions` shares, written once: invoke it inside
/// `impl ConnectOptions { .. }` of a type that implements [`AdapterOptions`]. Each method
/// forwards to the [`ConnectSettings`] method of the same name; the docs below are the ones
/// every adapter shows.
///
/// ```
/// use smtp_proto::connect::{AdapterOptions, ConnectSettings, TlsMode};
///
/// /// An adapter's options: the shared settings and one extra of its own.
/// pub struct ConnectOptions {
///     settings: ConnectSettings,
///     fast_open: bool,
/// }
///
/// impl AdapterOptions for ConnectOptions {
///     fn from_settings(settings: ConnectSettings) -> Self {
///         ConnectOptions { settings, fast_open: false }
///     }
///     fn settings(&self) -> &ConnectSettings {
///         &self.settings
///     }
///     fn map_settings(mut self, f: impl FnOnce(ConnectSettings) -> ConnectSettings) -> Self {
///         self.settings = f(self.settings);
///         self
///     }
/// }
///
/// impl ConnectOptions {
///     smtp_proto::connect_options_methods!();
///
///     /// The adapter's own setting.
///     pub fn with_fast_open(mut self, on: bool) -> Self {
///         self.fast_open = on;
///         self
///     }
/// }
///
/// let options = ConnectOptions::new(TlsMode::Implicit)
///     .with_connect_timeout(std::time::Duration::from_secs(5))
///     .with_fast_open(true);
/// assert_eq!(options.settings().connect_timeout().as_secs(), 5);
/// ```
#[macro_export]
macro_rules! connect_options_methods {
    () => {
        /// Defaults for `mode`: 30 s for each step of opening the connection, the certificate
        /// checked for the host dialled, a direct connection from the system's address, RFC
        /// 5321 reply timeouts, and this adapter's defaults for the rest.
        pub fn new(mode: $crate::connect::TlsMode) -> Self {
            <Self as $crate::connect::AdapterOptions>::defaults(mode)
        }

        /// Options from a connection URL (`SmtpUrl`): its TLS mode, LMTP, reply timeout,
        /// connect timeout and deadline. Its host, port, EHLO name and credentials are for
        /// `connect` and `login`; `connect_url` uses them all.
        pub fn from_url(url: &$crate::connect::SmtpUrl) -> Self {
            <Self as $crate::connect::AdapterOptions>::for_url(url)
        }

        /// The TLS mode.
        pub fn mode(&self) -> $crate::connect::TlsMode {
            <Self as $crate::connect::AdapterOptions>::settings(self).mode()
        }

        /// The settings every adapter shares (connect timeout, TLS server name, proxy, local
        /// address, client options), to read them back.
        pub fn settings(&self) -> &$crate::connect::ConnectSettings {
            <Self as $crate::connect::AdapterOptions>::settings(self)
        }

        /// The longest each step of opening the connection may take (default 30 s): DNS and
        /// the TCP connect (with a proxy's handshake), then for implicit TLS the handshake
        /// where this adapter runs it. The session's deadline bounds them too.
        pub fn with_connect_timeout(self, timeout: ::core::time::Duration) -> Self {
            <Self as $crate::connect::AdapterOptions>::map_settings(self, |s| {
                s.with_connect_timeout(timeout)
            })
        }

        /// The same per-reply timeout for every phase, keeping the deadline and the
        /// write-progress rule.
        pub fn with_reply_timeout(self, timeout: ::core::time::Duration) -> Self {
            <Self as $crate::connect::AdapterOptions>::map_settings(self, |s| {
                s.with_reply_timeout(timeout)
            })
        }

        /// A deadline for the whole run, counted from before the connect: opening the
        /// connection, the TLS handshake, the SMTP session up to the end of QUIT. Past it
        /// every call fails with `SmtpError::DeadlineExceeded` and the connection is closed.
        pub fn with_deadline(self, limit: ::core::time::Duration) -> Self {
            <Self as $crate::connect::AdapterOptions>::map_settings(self, |s| {
                s.with_deadline(limit)
            })
        }

        /// Allow AUTH without TLS (`SmtpClientOptions::allow_plaintext_auth`): by default
        /// `login*` on a `TlsMode::None` connection fails with `AuthError::PlaintextRefused`
        /// before anything is sent.
        pub fn allow_plaintext_auth(self) -> Self {
            <Self as $crate::connect::AdapterOptions>::map_settings(self, |s| {
                s.allow_plaintext_auth()
            })
        }

        /// The client's options (policy, audit sink, transcript, reply timeouts, extensions).
        /// They replace the defaults entirely, this adapter's included; to keep them, use
        /// [`map_client_options`](Self::map_client_options).
        pub fn with_client_options(self, options: $crate::client::SmtpClientOptions) -> Self {
            <Self as $crate::connect::AdapterOptions>::map_settings(self, |s| {
                s.with_client_options(options)
            })
        }

        /// Change the client's options in place, keeping the others.
        pub fn map_client_options(
            self,
            f: impl FnOnce($crate::client::SmtpClientOptions) -> $crate::client::SmtpClientOptions,
        ) -> Self {
            <Self as $crate::connect::AdapterOptions>::map_settings(self, |s| {
                s.map_client_options(f)
            })
        }

        /// Check the certificate for this name instead of the host dialled (e.g. when
        /// connecting to an IP address of a server whose certificate names its host). An
        /// adapter that cannot (Workers) refuses to connect with it.
        pub fn with_tls_server_name(self, name: impl Into<::std::string::String>) -> Self {
            let name = name.into();
            <Self as $crate::connect::AdapterOptions>::map_settings(self, |s| {
                s.with_tls_server_name(name)
            })
        }

        /// Reach the server through this proxy (SOCKS5 or HTTP CONNECT). TLS still runs end
        /// to end with the SMTP server, and its certificate is checked for the SMTP server's
        /// name. The proxy's handshake counts as part of the connect (its timeout and the
        /// deadline). An adapter that cannot (Workers, WASI) refuses to connect with it.
        pub fn with_proxy(self, proxy: $crate::connect::Proxy) -> Self {
            <Self as $crate::connect::AdapterOptions>::map_settings(self, |s| s.with_proxy(proxy))
        }

        /// Connect from this local address (a sender managing its IP reputation); with a
        /// proxy, the connection to the proxy starts from it. An adapter that cannot (Workers,
        /// WASI) refuses to connect with it.
        pub fn with_local_address(self, address: ::core::net::IpAddr) -> Self {
            <Self as $crate::connect::AdapterOptions>::map_settings(self, |s| {
                s.with_local_address(address)
            })
        }
    };
}

#[cfg(test)]
mod tests {
    use core::pin::pin;
    use core::task::{Context, Poll, Waker};
    use std::io;
    use std::sync::{Arc, Mutex};
    use std::thread_local;

    use super::*;
    use crate::client::options::Shared;
    use crate::connect::ProxyKind;
    use crate::policy::BoundedPolicy;
    use crate::reply::Reply;
    use crate::session::{DataPipelining, Protocol};
    use crate::transcript::TranscriptSink;

    /// An adapter's options, as an adapter writes them: the shared settings and one extra.
    #[derive(Debug)]
    struct Options {
        settings: ConnectSettings,
        extra: bool,
    }

    impl AdapterOptions for Options {
        fn from_settings(settings: ConnectSettings) -> Self {
            Options {
                settings,
                extra: false,
            }
        }
        fn settings(&self) -> &ConnectSettings {
            &self.settings
        }
        fn map_settings(mut self, f: impl FnOnce(ConnectSettings) -> ConnectSettings) -> Self {
            self.settings = f(self.settings);
            self
        }
        fn default_client_options() -> SmtpClientOptions {
            SmtpClientOptions::new().with_max_chained(3)
        }
    }

    impl Options {
        crate::connect_options_methods!();

        fn with_extra(mut self) -> Self {
            self.extra = true;
            self
        }
    }

    /// A server in memory: its greeting at once, then its next reply after each write of the
    /// client, whatever it wrote; it keeps the writes.
    struct Memory {
        replies: Vec<&'static [u8]>,
        ready: Vec<u8>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Transport for Memory {
        async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.ready.is_empty() {
                return core::future::pending().await;
            }
            let n = buf.len().min(self.ready.len());
            buf[..n].copy_from_slice(&self.ready[..n]);
            self.ready.drain(..n);
            Ok(n)
        }
        async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
            self.written.lock().unwrap().extend_from_slice(buf);
            if !self.replies.is_empty() {
                self.ready.extend_from_slice(self.replies.remove(0));
            }
            Ok(())
        }
        async fn close(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn sleep(_: Duration) -> impl Future<Output = ()> {
            core::future::pending()
        }
        fn now() -> Duration {
            Duration::ZERO
        }
        /// Encrypted, so that a login needs no plaintext permission.
        fn is_encrypted(&self) -> bool {
            true
        }
    }

    /// The replies of a server that greets, offers AUTH PLAIN and accepts it.
    const SERVER: [&[u8]; 3] = [
        b"220 mx.example\r\n",
        b"250-mx.example\r\n250 AUTH PLAIN\r\n",
        b"235 ok\r\n",
    ];

    thread_local! {
        static WRITTEN: Arc<Mutex<Vec<u8>>> = Arc::default();
        static OPENED: Mutex<Option<(String, u16, String, TlsMode)>> = const { Mutex::new(None) };
    }

    impl Connect for Options {
        type Transport = Memory;

        async fn connect(
            self,
            host: &str,
            port: u16,
            ehlo_domain: &str,
        ) -> Result<SmtpClient<Memory>, SmtpError> {
            let (_clock, parts) = self.settings.start::<Memory>(ehlo_domain)?;
            parts.refuse(&[ConnectSetting::Proxy])?;
            OPENED.with(|o| {
                *o.lock().unwrap() = Some((host.into(), port, ehlo_domain.into(), parts.mode))
            });
            let transport = Memory {
                replies: SERVER[1..].to_vec(),
                ready: SERVER[0].to_vec(),
                written: WRITTEN.with(Arc::clone),
            };
            SmtpClient::connect_with(transport, ehlo_domain, parts.client).await
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..1000 {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
        panic!("the future waits on something the memory server never gives");
    }

    /// Every shared builder method lands in the shared settings, and the adapter's own
    /// settings stay beside them.
    #[test]
    fn the_shared_methods_set_the_shared_settings() {
        let proxy = Proxy::parse("socks5://proxy.example:1080").unwrap();
        let local: IpAddr = "192.0.2.7".parse().unwrap();
        let options = Options::new(TlsMode::StartTls)
            .with_extra()
            .with_connect_timeout(Duration::from_secs(5))
            .with_deadline(Duration::from_secs(90))
            .with_reply_timeout(Duration::from_secs(7))
            .allow_plaintext_auth()
            .with_tls_server_name("mx.example")
            .with_proxy(proxy)
            .with_local_address(local)
            .map_client_options(|o| o.with_data_pipelining(DataPipelining::Always));
        assert!(options.extra);
        let s = options.settings();
        assert_eq!(options.mode(), TlsMode::StartTls);
        assert_eq!(s.connect_timeout(), Duration::from_secs(5));
        assert_eq!(s.tls_server_name(), Some("mx.example"));
        assert_eq!(s.proxy().map(Proxy::kind), Some(ProxyKind::Socks5));
        assert_eq!(s.local_address(), Some(local));
        let config = s.session_config();
        assert_eq!(config.timeouts.total, Some(Duration::from_secs(90)));
        assert_eq!(config.timeouts.command, Duration::from_secs(7));
        assert_eq!(config.plaintext_auth, crate::PlaintextAuth::Allow);
        assert_eq!(config.data_pipelining, DataPipelining::Always);
        // The adapter's default client options, kept by the changes above.
        assert_eq!(config.max_chained, 3);
        // `with_client_options` replaces them, the adapter's defaults included.
        let replaced = options.with_client_options(SmtpClientOptions::new());
        assert_eq!(replaced.settings().session_config().max_chained, 8);
        assert_eq!(
            replaced.settings().connect_timeout(),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn defaults() {
        let options = Options::new(TlsMode::Implicit);
        let s = options.settings();
        assert_eq!(s.connect_timeout(), DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(s.tls_server_name(), None);
        assert!(s.proxy().is_none() && s.local_address().is_none());
        assert_eq!(s.session_config().timeouts.total, None);
        assert_eq!(s.session_config().max_chained, 3);
    }

    #[test]
    fn from_url_takes_the_urls_settings() {
        let url = SmtpUrl::parse(
            "lmtp://mx.example:2424?tls=none&timeout=9&connect_timeout=4&deadline=60",
        )
        .unwrap();
        let options = Options::from_url(&url);
        let s = options.settings();
        assert_eq!(options.mode(), TlsMode::None);
        assert_eq!(s.connect_timeout(), Duration::from_secs(4));
        let config = s.session_config();
        assert_eq!(config.protocol, Protocol::Lmtp);
        assert_eq!(config.timeouts.command, Duration::from_secs(9));
        assert_eq!(config.timeouts.total, Some(Duration::from_secs(60)));
        // The adapter's defaults are the base.
        assert_eq!(config.max_chained, 3);
        // Nothing in the URL: the defaults.
        let plain = Options::from_url(&SmtpUrl::parse("smtps://mx.example").unwrap());
        assert_eq!(plain.mode(), TlsMode::Implicit);
        assert_eq!(plain.settings().connect_timeout(), DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(plain.settings().session_config().timeouts.total, None);
    }

    #[test]
    fn a_setting_the_adapter_cannot_honour_is_refused() {
        let all = [
            ConnectSetting::Proxy,
            ConnectSetting::LocalAddress,
            ConnectSetting::TlsServerName,
        ];
        assert!(
            ConnectSettings::new(TlsMode::None)
                .into_parts()
                .refuse(&all)
                .is_ok()
        );
        let cases = [
            (
                ConnectSettings::new(TlsMode::None)
                    .with_proxy(Proxy::parse("http://proxy.example:3128").unwrap()),
                "proxy",
            ),
            (
                ConnectSettings::new(TlsMode::None).with_local_address("::1".parse().unwrap()),
                "local address",
            ),
            (
                ConnectSettings::new(TlsMode::None).with_tls_server_name("mx.example"),
                "certificate",
            ),
        ];
        for (settings, named) in cases {
            let parts = settings.into_parts();
            let err = parts.refuse(&all).unwrap_err();
            assert!(matches!(err, SmtpError::InvalidInput(_)), "{err:?}");
            assert!(err.to_string().contains(named), "{err}");
            // Allowed when the adapter can honour it.
            assert!(parts.refuse(&[]).is_ok());
        }
        let parts = ConnectSettings::new(TlsMode::None)
            .with_tls_server_name("mx.example")
            .into_parts();
        assert_eq!(parts.server_name("192.0.2.1"), "mx.example");
        let parts = ConnectSettings::new(TlsMode::None).into_parts();
        assert_eq!(parts.server_name("192.0.2.1"), "192.0.2.1");
    }

    /// `start` checks the EHLO name before anything else and marks the client options with
    /// the start, so the deadline counts from it.
    #[test]
    fn start_checks_the_ehlo_name_and_marks_the_start() {
        let err = ConnectSettings::new(TlsMode::None)
            .start::<Memory>("bad name")
            .unwrap_err();
        assert!(matches!(err, SmtpError::InvalidInput(_)), "{err:?}");
        let (_, parts) = ConnectSettings::new(TlsMode::None)
            .start::<Memory>("client.example")
            .unwrap();
        assert!(parts.client.into_parts().started.is_some());
    }

    #[derive(Default)]
    struct Lines(Mutex<Vec<String>>);

    impl TranscriptSink for Lines {
        fn client(&self, line: &str) {
            self.0.lock().unwrap().push(line.into());
        }
        fn server(&self, _: &Reply) {}
        fn enabled(&self) -> bool {
            false
        }
    }

    /// Copies of shared settings have the same values and share the policy and the sinks,
    /// each of whose methods is forwarded (the traits' provided ones too).
    #[test]
    fn shared_settings_copy_values_and_share_the_sinks() {
        let lines = Arc::new(Lines::default());
        let shared = ConnectSettings::new(TlsMode::StartTls)
            .with_connect_timeout(Duration::from_secs(3))
            .with_tls_server_name("mx.example")
            .map_client_options(|o| {
                o.with_data_pipelining(DataPipelining::Always)
                    .with_policy(Box::new(BoundedPolicy::new().max_message_size(1000)))
                    .with_transcript(Box::new(Shared(lines.clone() as Arc<dyn TranscriptSink>)))
                    .with_read_buffer(4096)
            })
            .into_shared();
        assert_eq!(shared.mode(), TlsMode::StartTls);
        assert_eq!(
            shared.session_config().data_pipelining,
            DataPipelining::Always
        );
        let copies = [shared.settings(), shared.clone().settings()];
        for (n, copy) in copies.into_iter().enumerate() {
            assert_eq!(copy.mode(), TlsMode::StartTls);
            assert_eq!(copy.connect_timeout(), Duration::from_secs(3));
            assert_eq!(copy.tls_server_name(), Some("mx.example"));
            let parts = copy.into_parts().client.into_parts();
            assert_eq!(parts.config.data_pipelining, DataPipelining::Always);
            assert_eq!(parts.read_buffer, Some(4096));
            assert_eq!(parts.config.policy.max_message_size(), Some(1000));
            let sink = parts.config.transcript.expect("the transcript is kept");
            assert!(!sink.enabled(), "the sink's own `enabled` is forwarded");
            sink.client(&format!("copy {n}"));
        }
        assert_eq!(*lines.0.lock().unwrap(), ["copy 0", "copy 1"]);
        // Without a transcript, copies have none.
        let none = ConnectSettings::new(TlsMode::None).into_shared().settings();
        assert!(
            none.into_parts()
                .client
                .into_parts()
                .config
                .transcript
                .is_none()
        );
    }

    #[test]
    fn url_credentials_and_ehlo_name() {
        let url =
            SmtpUrl::parse("smtps://me%40x.example:s3cret@mx.example?helo=app.example").unwrap();
        assert_eq!(url.credentials(), Some(("me@x.example", "s3cret")));
        assert_eq!(url.ehlo_domain("fallback.example"), "app.example");
        let url = SmtpUrl::parse("smtps://me@mx.example").unwrap();
        assert_eq!(url.credentials(), None, "no password: the caller logs in");
        assert_eq!(url.ehlo_domain("fallback.example"), "fallback.example");
    }

    /// `connect_url` over an adapter: the URL's host, port, EHLO name and mode reach the
    /// adapter's `connect`, and it logs in with the URL's credentials.
    #[test]
    fn connect_url_connects_and_logs_in() {
        let url =
            SmtpUrl::parse("smtps://me:pw@mx.example:4650?helo=app.example&auth=plain").unwrap();
        let client = block_on(connect_url::<Options>(&url, "fallback.example")).unwrap();
        assert_eq!(client.state(), crate::SessionState::Ready);
        let opened = OPENED.with(|o| o.lock().unwrap().take()).unwrap();
        assert_eq!(
            opened,
            (
                "mx.example".into(),
                4650,
                "app.example".into(),
                TlsMode::Implicit
            )
        );
        let written = WRITTEN.with(|w| String::from_utf8(w.lock().unwrap().clone()).unwrap());
        assert!(
            written.starts_with("EHLO app.example\r\nAUTH PLAIN "),
            "{written}"
        );
    }

    /// Without credentials nothing is sent after EHLO.
    #[test]
    fn connect_url_without_credentials_does_not_log_in() {
        let url = SmtpUrl::parse("smtps://mx.example").unwrap();
        let client = block_on(connect_url::<Options>(&url, "client.example")).unwrap();
        assert_eq!(client.state(), crate::SessionState::Authentication);
        let written = WRITTEN.with(|w| String::from_utf8(w.lock().unwrap().clone()).unwrap());
        assert_eq!(written, "EHLO client.example\r\n");
    }

    #[test]
    fn an_adapter_refusal_stops_connect_url() {
        let url = SmtpUrl::parse("smtps://mx.example").unwrap();
        let options =
            Options::from_url(&url).with_proxy(Proxy::parse("socks5://p.example:1").unwrap());
        let err = block_on(Connect::connect(options, "mx.example", 465, "c.example")).unwrap_err();
        assert!(matches!(err, SmtpError::InvalidInput(_)), "{err:?}");
    }
}
