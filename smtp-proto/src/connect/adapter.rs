//! What an adapter implements to be built on [`ConnectSettings`] ([`AdapterOptions`],
//! [`Connect`]), the builder methods that give the shared settings to each adapter's own
//! `ConnectOptions` ([`connect_options_methods!`](crate::connect_options_methods)), and the
//! helpers written once over them ([`connect_url`], [`SmtpClient::login_url`]).
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
//! - [`connect_options!`](crate::connect_options): given the adapter's struct (a `settings`
//!   field and its own extras, with their defaults), it writes the [`AdapterOptions`]
//!   implementation and, through [`connect_options_methods!`](crate::connect_options_methods),
//!   the shared builder methods (`new`, `from_url`, `with_connect_timeout`,
//!   `with_reply_timeout`, `with_deadline`, `allow_plaintext_auth`, `with_client_options`, `map_client_options`,
//!   `with_tls_server_name`, `with_proxy`, `with_local_address`, `mode`, `settings`), each a
//!   one-line forward to [`ConnectSettings`], with one doc text for all.
//! - [`connect_functions!`](crate::connect_functions): the adapter's four exported
//!   `connect_url` / `connect_smtps` / `connect_starttls` / `connect_plain`, each one line over
//!   its `ConnectOptions`, in an async and a blocking form.
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

use super::{ConnectSettings, SmtpUrl, TlsMode};
use crate::client::{SmtpClient, SmtpClientOptions};
use crate::error::SmtpError;
use crate::transport::Transport;

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

/// The builder methods every adapter's `ConnectOptions` shares, written once: invoked inside
/// `impl ConnectOptions { .. }` of a type that implements [`AdapterOptions`] (the adapters get
/// both from [`connect_options!`](crate::connect_options), which shows them in use). Each
/// method forwards to the [`ConnectSettings`] method of the same name; the docs below are the
/// ones every adapter shows.
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
        /// the TCP connect (with a proxy's handshake), then the TLS handshake (implicit TLS
        /// where this adapter runs it, and after STARTTLS). The session's deadline bounds
        /// them too.
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

        /// The engine's settings, replacing the ones set so far (the message options and the
        /// read buffer stay).
        pub fn with_session_config(self, config: $crate::SessionConfig) -> Self {
            self.map_client_options(|o| o.with_session_config(config))
        }

        /// Change the engine's settings in place (any field of `SessionConfig`).
        pub fn map_session_config(self, f: impl FnOnce(&mut $crate::SessionConfig)) -> Self {
            self.map_client_options(|o| o.map_session_config(f))
        }

        /// Wait limits by phase (`Timeouts`); keeps nothing of the earlier ones.
        pub fn with_timeouts(self, timeouts: $crate::Timeouts) -> Self {
            self.map_client_options(|o| o.with_timeouts(timeouts))
        }

        /// Check every message with this policy before sending.
        pub fn with_policy(self, policy: ::std::boxed::Box<dyn $crate::Policy>) -> Self {
            self.map_client_options(|o| o.with_policy(policy))
        }

        /// Send audit events to this sink.
        pub fn with_audit_sink(self, sink: ::std::boxed::Box<dyn $crate::AuditSink>) -> Self {
            self.map_client_options(|o| o.with_audit_sink(sink))
        }

        /// Send a redacted transcript (one line per command and reply) to this sink, in place
        /// of this adapter's default one.
        pub fn with_transcript(self, sink: ::std::boxed::Box<dyn $crate::TranscriptSink>) -> Self {
            self.map_client_options(|o| o.with_transcript(sink))
        }

        /// What to do when some recipients are refused (default: send nothing unless all are
        /// accepted).
        pub fn with_recipient_policy(self, policy: $crate::RecipientPolicy) -> Self {
            self.map_client_options(|o| o.with_recipient_policy(policy))
        }

        /// Speak LMTP (RFC 2033) instead of SMTP.
        pub fn with_protocol(self, protocol: $crate::Protocol) -> Self {
            self.map_client_options(|o| o.with_protocol(protocol))
        }

        /// Whether to pipeline when the server offers PIPELINING.
        pub fn with_pipelining(self, mode: $crate::ExtensionUse) -> Self {
            self.map_client_options(|o| o.with_pipelining(mode))
        }

        /// Whether to use BDAT when the server offers CHUNKING.
        pub fn with_chunking(self, mode: $crate::ExtensionUse) -> Self {
            self.map_client_options(|o| o.with_chunking(mode))
        }

        /// Default per-message options (DSN, REQUIRETLS, ...), used by every `send_mail*` call.
        pub fn with_message_options(self, options: $crate::MessageOptions) -> Self {
            self.map_client_options(|o| o.with_message_options(options))
        }

        /// Size of the read buffer (default 8 KiB, at least 512 bytes).
        pub fn with_read_buffer(self, bytes: usize) -> Self {
            self.map_client_options(|o| o.with_read_buffer(bytes))
        }

        /// Check the certificate for this name instead of the host dialled (e.g. when
        /// connecting to an IP address of a server whose certificate names its host).
        pub fn with_tls_server_name(self, name: impl Into<::std::string::String>) -> Self {
            let name = name.into();
            <Self as $crate::connect::AdapterOptions>::map_settings(self, |s| {
                s.with_tls_server_name(name)
            })
        }

        /// Reach the server through this proxy (SOCKS5 or HTTP CONNECT). TLS still runs end
        /// to end with the SMTP server, and its certificate is checked for the SMTP server's
        /// name. The proxy's handshake counts as part of the connect (its timeout and the
        /// deadline).
        pub fn with_proxy(self, proxy: $crate::connect::Proxy) -> Self {
            <Self as $crate::connect::AdapterOptions>::map_settings(self, |s| s.with_proxy(proxy))
        }

        /// Connect from this local address (a sender managing its IP reputation); with a
        /// proxy, the connection to the proxy starts from it. An adapter that cannot (Workers)
        /// refuses to connect with it, before any I/O.
        pub fn with_local_address(self, address: ::core::net::IpAddr) -> Self {
            <Self as $crate::connect::AdapterOptions>::map_settings(self, |s| {
                s.with_local_address(address)
            })
        }
    };
}

/// An adapter's `ConnectOptions` made from a struct with a `settings: ConnectSettings` field:
/// writes its [`AdapterOptions`] implementation (`from_settings` fills the other fields with the
/// values given, `settings` and `map_settings` reach the `settings` field) and an inherent
/// `impl` with the shared builder methods
/// ([`connect_options_methods!`](crate::connect_options_methods)). Any further items (such as
/// [`AdapterOptions::default_client_options`]) go into the trait implementation; the adapter's
/// own methods go in an `impl` block of its own.
///
/// ```
/// use smtp_proto::connect::{ConnectSettings, TlsMode};
/// use smtp_proto::client::SmtpClientOptions;
///
/// /// An adapter's options: the shared settings and one extra of its own.
/// pub struct ConnectOptions {
///     settings: ConnectSettings,
///     fast_open: bool,
/// }
///
/// smtp_proto::connect_options! {
///     ConnectOptions { fast_open: false }
///     /// This adapter's client options: at most 10 messages on one connection.
///     fn default_client_options() -> SmtpClientOptions {
///         SmtpClientOptions::new().with_max_chained(10)
///     }
/// }
///
/// impl ConnectOptions {
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
/// assert!(options.fast_open);
/// ```
#[macro_export]
macro_rules! connect_options {
    (
        $options:ident { $($(#[$attr:meta])* $field:ident : $value:expr),* $(,)? }
        $($item:item)*
    ) => {
        impl $crate::connect::AdapterOptions for $options {
            fn from_settings(settings: $crate::connect::ConnectSettings) -> Self {
                $options { settings, $($(#[$attr])* $field: $value),* }
            }

            fn settings(&self) -> &$crate::connect::ConnectSettings {
                &self.settings
            }

            fn map_settings(
                mut self,
                f: impl FnOnce($crate::connect::ConnectSettings) -> $crate::connect::ConnectSettings,
            ) -> Self {
                self.settings = f(self.settings);
                self
            }

            $($item)*
        }

        impl $options {
            $crate::connect_options_methods!();
        }
    };
}

/// The four `connect_*` functions every adapter exports (`connect_url`, `connect_smtps`,
/// `connect_starttls`, `connect_plain`), written once: invoke it at the place the adapter
/// exports them, naming its `ConnectOptions` and the client type its `connect` returns.
/// `async` adapters write `connect_functions!(async ConnectOptions => SmtpClient<Transport>)`,
/// a blocking one `connect_functions!(blocking ConnectOptions => SmtpClient)`. Each function
/// is one line over `ConnectOptions`, so it has exactly the adapter's defaults (its trust, its
/// timeouts, its transcript).
#[macro_export]
macro_rules! connect_functions {
    (async $options:ty => $client:ty) => {
        $crate::connect_functions!(@each [async] [.await] $options => $client);
    };
    (blocking $options:ty => $client:ty) => {
        $crate::connect_functions!(@each [] [] $options => $client);
    };
    (@each [$($asyncness:tt)*] [$($wait:tt)*] $options:ty => $client:ty) => {
        /// Connect to the server a connection URL names, with `ConnectOptions::from_url`, saying
        /// EHLO as its `helo` (or `ehlo_domain`), and log in when it has a user and a password
        /// (with its `auth` mechanism, or the best password mechanism the server offers). With
        /// a user and no password, log in yourself with a secret kept apart (an environment
        /// variable).
        pub $($asyncness)* fn connect_url(
            url: &$crate::connect::SmtpUrl,
            ehlo_domain: &str,
        ) -> ::core::result::Result<$client, $crate::SmtpError> {
            let mut client = <$options>::from_url(url)
                .connect(&url.host, url.port, url.ehlo_domain(ehlo_domain))
                $($wait)*?;
            client.login_url(url)$($wait)*?;
            Ok(client)
        }

        $crate::connect_functions!(@mode [$($asyncness)*] [$($wait)*] $options => $client,
            /// Connect with implicit TLS (SMTPS, usually port 465), trusting the certificates
            /// `ConnectOptions::new` trusts on this adapter.
            connect_smtps = Implicit);
        $crate::connect_functions!(@mode [$($asyncness)*] [$($wait)*] $options => $client,
            /// Connect in plaintext and upgrade with STARTTLS (usually port 587), trusting the
            /// certificates `ConnectOptions::new` trusts on this adapter. Fails closed when the
            /// server does not offer STARTTLS.
            connect_starttls = StartTls);
        $crate::connect_functions!(@mode [$($asyncness)*] [$($wait)*] $options => $client,
            /// Connect **without any encryption**. Passwords and mail cross the network
            /// readable: only for loopback test servers and trusted local relays.
            connect_plain = None);
    };
    (@mode [$($asyncness:tt)*] [$($wait:tt)*] $options:ty => $client:ty,
        $(#[$doc:meta])* $name:ident = $mode:ident) => {
        $(#[$doc])*
        pub $($asyncness)* fn $name(
            host: &str,
            port: u16,
            ehlo_domain: &str,
        ) -> ::core::result::Result<$client, $crate::SmtpError> {
            <$options>::new($crate::connect::TlsMode::$mode)
                .connect(host, port, ehlo_domain)
                $($wait)*
        }
    };
}
