//! # smtp-io-tokio: an SMTP client over tokio and rustls
//!
//! The [`smtp_proto`] engine and its async [`SmtpClient`], driven over a tokio `TcpStream`
//! (`TCP_NODELAY` on) with implicit TLS or STARTTLS through `tokio-rustls`. Certificates are
//! checked against the Mozilla roots (`webpki-roots`) and the host name by default.
//!
//! Every name of the client API is re-exported here, so one `use` line is enough:
//!
//! ```no_run
//! use smtp_io_tokio::{SmtpError, connect_starttls};
//!
//! # async fn demo() -> Result<(), SmtpError> {
//! let mut client = connect_starttls("smtp.example.com", 587, "client.example.com").await?;
//! client.login("me@example.com", "app-password").await?;
//! let outcome = client
//!     .send_mail(
//!         "me@example.com",
//!         &["you@example.org"],
//!         "From: me@example.com\r\nTo: you@example.org\r\nSubject: hi\r\n\r\nHello!\r\n",
//!     )
//!     .await?;
//! println!("accepted, queue id {:?}", outcome.queue_id);
//! client.quit().await?;
//! # Ok(()) }
//! ```
//!
//! For a custom CA, timeouts, policy or an audit sink, use [`ConnectOptions`]:
//!
//! ```no_run
//! use std::time::Duration;
//! use smtp_io_tokio::{BoundedPolicy, ConnectOptions, SmtpClientOptions, TlsConfig, TlsMode};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = ConnectOptions::new(TlsMode::Implicit)
//!     .with_tls_config(TlsConfig::from_ca_file("relay-ca.pem")?)
//!     .with_connect_timeout(Duration::from_secs(10))
//!     .with_client_options(
//!         SmtpClientOptions::new().with_policy(Box::new(BoundedPolicy::new().max_recipients(20))),
//!     )
//!     .connect("relay.internal", 465, "worker.example.com")
//!     .await?;
//! # drop(client); Ok(()) }
//! ```
//!
//! Messages built with `mail-builder` (feature `mail-builder`): `message::SendMessage` takes
//! the envelope from the headers and never sends the `Bcc` header. A message built with
//! lettre's builder goes through `send_mail_bytes` (`examples/lettre.rs`).
//!
//! DKIM signing (feature `dkim`, which needs Rust 1.88): `MailerBuilder::dkim` signs every
//! message a pool sends; the `dkim` module signs what a connected client sends (in memory, or a
//! file read once to sign it and once to send it).
//!
//! Logging: with [`ConnectOptions`] (and the `connect_*` helpers) each command and reply is a
//! `tracing` event at `DEBUG` under the target `smtp_io_tokio::transcript`, with AUTH payloads
//! redacted by the engine.

// docs.rs (`--cfg docsrs`, see Cargo.toml): each item that needs a feature says so.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
#[cfg(feature = "dkim")]
#[cfg_attr(docsrs, doc(cfg(feature = "dkim")))]
pub mod dkim;
mod log;
#[cfg(feature = "mail-builder")]
pub mod message;
pub mod pool;
mod route;
mod sender;
mod transport;

use std::time::Duration;

pub use body::{ReaderBody, size_as_sent};
pub use log::TracingTranscript;
#[cfg(feature = "redis")]
pub use pool::SharedRateLimit;
pub use pool::{
    Backoff, Connections, Mailer, MailerBuilder, PoolStats, RateLimit, SendError, Throttle,
    ThrottleFuture, TokenFuture, TokenMechanism, TokenSource, Turn,
};
pub use sender::{MailSender, SentMail, StubFailure, StubMailSender};
pub use smtp_proto::body::{SizeCounter, normalized_len};
pub use smtp_proto::client::{Proxy, ProxyKind, ProxyUrlError};
pub use smtp_rustls::TlsConfig;
pub use transport::TokioTransport;

/// The `mail-builder` crate [`message`] works with, so messages are built with the same version.
#[cfg(feature = "mail-builder")]
pub use mail_builder;

pub use ::smtp_proto;
pub use ::smtp_proto::prelude::*;
use smtp_proto::client::ConnectClock;

/// The client type this crate produces.
pub type SmtpClient<T = TokioTransport> = smtp_proto::SmtpClient<T>;

/// How to open a connection: TLS mode and trust, connect timeout, and the client's options.
///
/// The defaults: certificates checked against `webpki-roots`, 30 s to connect (DNS, TCP and the
/// implicit TLS handshake together), RFC 5321 reply timeouts, and the redacted transcript sent to
/// `tracing`.
#[derive(Debug)]
pub struct ConnectOptions {
    mode: TlsMode,
    tls: TlsConfig,
    connect_timeout: Duration,
    tls_server_name: Option<String>,
    route: route::Route,
    client: SmtpClientOptions,
}

impl ConnectOptions {
    /// Defaults for `mode`.
    pub fn new(mode: TlsMode) -> ConnectOptions {
        ConnectOptions {
            mode,
            tls: TlsConfig::default(),
            connect_timeout: Duration::from_secs(30),
            tls_server_name: None,
            route: route::Route::default(),
            client: SmtpClientOptions::new().with_transcript(Box::new(TracingTranscript)),
        }
    }

    /// Which certificates to trust.
    pub fn with_tls_config(mut self, tls: TlsConfig) -> ConnectOptions {
        self.tls = tls;
        self
    }

    /// The longest DNS + TCP connect (+ implicit TLS handshake) may take.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> ConnectOptions {
        self.connect_timeout = timeout;
        self
    }

    /// Check the certificate for this name instead of the host dialled (e.g. when connecting to
    /// an IP address of a server whose certificate names its host).
    pub fn with_tls_server_name(mut self, name: impl Into<String>) -> ConnectOptions {
        self.tls_server_name = Some(name.into());
        self
    }

    /// Reach the server through this proxy (SOCKS5 or HTTP CONNECT). TLS still runs end to end
    /// with the SMTP server, and its certificate is checked for the SMTP server's name. The
    /// proxy's handshake counts as part of the connect (its timeout and the deadline).
    pub fn with_proxy(mut self, proxy: Proxy) -> ConnectOptions {
        self.route.proxy = Some(proxy);
        self
    }

    /// Connect from this local address (a sender managing its IP reputation); with a proxy,
    /// the connection to the proxy starts from it.
    pub fn with_local_address(mut self, address: std::net::IpAddr) -> ConnectOptions {
        self.route.local_address = Some(address);
        self
    }

    /// The client's options (policy, audit sink, reply timeouts, extensions). They replace the
    /// defaults entirely, including the `tracing` transcript: add
    /// `.with_transcript(Box::new(TracingTranscript))` to keep it.
    pub fn with_client_options(mut self, options: SmtpClientOptions) -> ConnectOptions {
        self.client = options;
        self
    }

    /// Change the client's options in place, keeping the others.
    pub fn map_client_options(
        mut self,
        f: impl FnOnce(SmtpClientOptions) -> SmtpClientOptions,
    ) -> ConnectOptions {
        self.client = f(self.client);
        self
    }

    /// The same per-reply timeout for every phase (convenient for command-line tools). Keeps
    /// the deadline and the write-progress rule.
    pub fn with_reply_timeout(self, timeout: Duration) -> ConnectOptions {
        self.map_client_options(|o| o.with_reply_timeout(timeout))
    }

    /// A deadline for the whole run: TCP connect, TLS handshake, the SMTP session up to the end
    /// of QUIT. Past it every call fails with [`SmtpError::DeadlineExceeded`] and the
    /// connection is closed.
    pub fn with_deadline(self, limit: Duration) -> ConnectOptions {
        self.map_client_options(|o| o.with_deadline(limit))
    }

    /// Allow AUTH without TLS (see [`SmtpClientOptions::allow_plaintext_auth`]): by default
    /// `login*` on a [`TlsMode::None`] connection fails with
    /// [`AuthError::PlaintextRefused`] before anything is sent.
    pub fn allow_plaintext_auth(self) -> ConnectOptions {
        self.map_client_options(SmtpClientOptions::allow_plaintext_auth)
    }

    /// Connect to `host:port`, read the greeting, EHLO as `ehlo_domain`, and for
    /// [`TlsMode::StartTls`] upgrade and EHLO again. The client is then ready for `login` or
    /// `send_mail`.
    ///
    /// Errors: a connect failure is [`SmtpError::Io`] during [`SmtpOp::Connect`] (or
    /// [`SmtpError::Timeout`] when the connect timeout ran out); a bad certificate is
    /// [`SmtpError::Io`] during [`SmtpOp::TlsHandshake`] (implicit TLS and STARTTLS alike).
    pub async fn connect(
        self,
        host: &str,
        port: u16,
        ehlo_domain: &str,
    ) -> Result<SmtpClient<TokioTransport>, SmtpError> {
        // Validate the EHLO argument before touching the network.
        smtp_proto::command::Domain::new(ehlo_domain)?;
        // The session's deadline covers the connect and the TLS handshake too.
        let (clock, options) = ConnectClock::start::<TokioTransport>(self.client);
        let limit = self.connect_timeout;
        let tcp = clock
            .step::<TokioTransport, _>(SmtpOp::Connect, limit, self.route.connect(host, port))
            .await?;
        let name = self.tls_server_name.as_deref().unwrap_or(host);
        // Only the socket differs by mode; the SMTP side is smtp-proto's `SmtpClient::open`.
        let transport = match self.mode {
            TlsMode::None => TokioTransport::plain(tcp),
            TlsMode::StartTls => TokioTransport::plain_with_starttls(tcp, name, self.tls)
                .map_err(|e| SmtpError::io(SmtpOp::StartTls, e.kind(), e.to_string()))?,
            TlsMode::Implicit => {
                // A plaintext server's greeting is explained as the 465/587 mix-up it is.
                let handshake = async {
                    TokioTransport::implicit_tls(tcp, name, self.tls)
                        .await
                        .map_err(smtp_rustls::explain_handshake_error)
                };
                clock
                    .step::<TokioTransport, _>(SmtpOp::TlsHandshake, limit, handshake)
                    .await?
            }
        };
        SmtpClient::open(transport, self.mode, ehlo_domain, options).await
    }
}

impl ConnectOptions {
    /// Options from a connection URL ([`SmtpUrl`]): its TLS mode, LMTP, reply timeout, connect
    /// timeout and deadline. Its host, port, EHLO name and credentials are for
    /// [`connect`](Self::connect) and `login`; [`connect_url`] uses them all.
    pub fn from_url(url: &SmtpUrl) -> ConnectOptions {
        let protocol = url.protocol;
        let mut options =
            ConnectOptions::new(url.tls).map_client_options(|o| o.with_protocol(protocol));
        if let Some(limit) = url.timeout {
            options = options.with_reply_timeout(limit);
        }
        if let Some(limit) = url.connect_timeout {
            options = options.with_connect_timeout(limit);
        }
        if let Some(limit) = url.deadline {
            options = options.with_deadline(limit);
        }
        options
    }
}

/// Connect to the server a connection URL names, with its options ([`ConnectOptions::from_url`]),
/// saying EHLO as its `helo` (or `ehlo_domain`), and log in when it has a user and a password
/// (with its `auth` mechanism, or the best password mechanism). With a user and no password,
/// log in yourself with a secret kept apart (an environment variable).
///
/// ```no_run
/// use smtp_io_tokio::{SmtpUrl, connect_url};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let url: SmtpUrl = std::env::var("SMTP_URL")?.parse()?;
/// let mut client = connect_url(&url, "app.example.com").await?;
/// client.send_mail("app@example.com", &["you@example.org"], "Subject: hi\r\n\r\nHi\r\n").await?;
/// client.quit().await?;
/// # Ok(()) }
/// ```
pub async fn connect_url(
    url: &SmtpUrl,
    ehlo_domain: &str,
) -> Result<SmtpClient<TokioTransport>, SmtpError> {
    let ehlo = url.helo.as_ref().map_or(ehlo_domain, |d| d.as_str());
    let mut client = ConnectOptions::from_url(url)
        .connect(&url.host, url.port, ehlo)
        .await?;
    let password = url.password.as_ref().and_then(|p| p.expose_str());
    if let (Some(user), Some(password)) = (&url.user, password) {
        match url.mechanism {
            Some(mechanism) => client.login_with(mechanism, user, password).await?,
            None => client.login(user, password).await?,
        }
    }
    Ok(client)
}

/// Connect with implicit TLS (SMTPS, usually port 465), certificates checked against
/// `webpki-roots`.
pub async fn connect_smtps(
    host: &str,
    port: u16,
    ehlo_domain: &str,
) -> Result<SmtpClient<TokioTransport>, SmtpError> {
    ConnectOptions::new(TlsMode::Implicit)
        .connect(host, port, ehlo_domain)
        .await
}

/// Connect in plaintext and upgrade with STARTTLS (usually port 587), certificates checked
/// against `webpki-roots`. Fails closed when the server does not offer STARTTLS.
pub async fn connect_starttls(
    host: &str,
    port: u16,
    ehlo_domain: &str,
) -> Result<SmtpClient<TokioTransport>, SmtpError> {
    ConnectOptions::new(TlsMode::StartTls)
        .connect(host, port, ehlo_domain)
        .await
}

/// Connect **without any encryption**. Passwords and mail cross the network readable: only for
/// loopback test servers and trusted local relays.
pub async fn connect_plain(
    host: &str,
    port: u16,
    ehlo_domain: &str,
) -> Result<SmtpClient<TokioTransport>, SmtpError> {
    ConnectOptions::new(TlsMode::None)
        .connect(host, port, ehlo_domain)
        .await
}

/// The workspace README's Rust examples, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
