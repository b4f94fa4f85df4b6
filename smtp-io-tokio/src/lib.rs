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

use std::future::Future;

pub use body::{ReaderBody, size_as_sent};
pub use log::TracingTranscript;
#[cfg(feature = "redis")]
pub use pool::SharedRateLimit;
pub use pool::{
    Backoff, Connections, Mailer, MailerBuilder, OpenBody, PoolStats, RateLimit, SendError,
    Throttle, ThrottleFuture, TokenFuture, TokenMechanism, TokenSource, Turn,
};
pub use sender::{MailSender, SentMail, StubFailure, StubMailSender};
pub use smtp_proto::body::{SizeCounter, normalized_len};
pub use smtp_proto::connect::{Proxy, ProxyKind, ProxyUrlError};
pub use smtp_rustls::TlsConfig;
pub use transport::TokioTransport;

/// The `mail-builder` crate [`message`] works with, so messages are built with the same version.
#[cfg(feature = "mail-builder")]
pub use mail_builder;

pub use ::smtp_proto;
pub use ::smtp_proto::prelude::*;
use smtp_proto::connect::{Connect, ConnectParts, ConnectSettings};

/// The client type this crate produces.
pub type SmtpClient<T = TokioTransport> = smtp_proto::SmtpClient<T>;

/// How to open a connection: TLS mode and trust, connect timeout, and the client's options.
///
/// The defaults: certificates checked against `webpki-roots`, 30 s for each step of connecting
/// (DNS and TCP, through the proxy if any; then the implicit TLS handshake), RFC 5321 reply
/// timeouts, and the redacted transcript sent to `tracing`.
///
/// The settings every adapter shares (the same names on `smtp-io-wasm`) come from
/// [`smtp_proto::connect::ConnectSettings`]; the trust ([`with_tls_config`](Self::with_tls_config),
/// a client certificate with it) is this crate's own. A pool opens all its connections with
/// one: [`MailerBuilder::new`].
#[derive(Debug)]
pub struct ConnectOptions {
    pub(crate) settings: ConnectSettings,
    pub(crate) tls: TlsConfig,
}

smtp_proto::connect_options! {
    ConnectOptions { tls: TlsConfig::default() }
    /// The engine's defaults and the redacted transcript sent to `tracing`.
    fn default_client_options() -> SmtpClientOptions {
        SmtpClientOptions::new().with_transcript(Box::new(TracingTranscript))
    }
}

impl ConnectOptions {
    smtp_rustls::tls_config_methods!();

    /// Connect to `host:port`, read the greeting, EHLO as `ehlo_domain`, and for
    /// [`TlsMode::StartTls`] upgrade and EHLO again. The client is then ready for `login` or
    /// `send_mail`.
    ///
    /// Errors: a bad `ehlo_domain` is [`SmtpError::InvalidInput`] before any I/O; a connect
    /// failure is [`SmtpError::Io`] during [`SmtpOp::Connect`] (or [`SmtpError::Timeout`] when
    /// the connect timeout ran out); a bad certificate is [`SmtpError::Io`] during
    /// [`SmtpOp::TlsHandshake`] (implicit TLS and STARTTLS alike).
    pub async fn connect(
        self,
        host: &str,
        port: u16,
        ehlo_domain: &str,
    ) -> Result<SmtpClient<TokioTransport>, SmtpError> {
        // The EHLO argument is checked before touching the network, and the session's
        // deadline covers the connect and the TLS handshake too.
        let (clock, parts) = self.settings.start::<TokioTransport>(ehlo_domain)?;
        parts.check_destination(host, port)?;
        let tls = self.tls;
        if tls.is_insecure() && parts.mode != TlsMode::None {
            tracing::warn!(
                host,
                "TLS without certificate checks (insecure_accept_any_certificate_for_tests_only)"
            );
        }
        // Every shared setting is honoured here: destructured whole, a new one cannot be
        // missed.
        let ConnectParts {
            mode,
            connect_timeout: limit,
            tls_server_name,
            route,
            client,
        } = parts;
        let name = tls_server_name.as_deref().unwrap_or(host);
        if mode != TlsMode::None {
            smtp_rustls::check_server_name(name)?;
        }
        // The step's own bound, for the host's addresses to share.
        let (left, _) = clock.bound(TokioTransport::now().into(), SmtpOp::Connect, limit);
        let until = transport::instant_in(left);
        let tcp = clock
            .step::<TokioTransport, _>(
                SmtpOp::Connect,
                limit,
                route::connect(&route, host, port, until),
            )
            .await?;
        // Only the socket differs by mode; the SMTP side is smtp-proto's `SmtpClient::open`.
        let transport = match mode {
            TlsMode::None => TokioTransport::plain(tcp),
            TlsMode::StartTls => TokioTransport::plain_with_starttls(tcp, name, tls)
                .map_err(|e| SmtpError::io(SmtpOp::StartTls, e.kind(), e.to_string()))?,
            TlsMode::Implicit => {
                // A plaintext server's greeting is explained as the 465/587 mix-up it is.
                let handshake = async {
                    TokioTransport::implicit_tls(tcp, name, tls)
                        .await
                        .map_err(smtp_rustls::explain_handshake_error)
                };
                clock
                    .step::<TokioTransport, _>(SmtpOp::TlsHandshake, limit, handshake)
                    .await?
            }
        };
        SmtpClient::open(transport, mode, ehlo_domain, client).await
    }
}

impl Connect for ConnectOptions {
    type Transport = TokioTransport;

    fn connect(
        self,
        host: &str,
        port: u16,
        ehlo_domain: &str,
    ) -> impl Future<Output = Result<SmtpClient<TokioTransport>, SmtpError>> {
        ConnectOptions::connect(self, host, port, ehlo_domain)
    }
}

smtp_proto::connect_functions!(async ConnectOptions => SmtpClient<TokioTransport>);

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// The connect futures can be spawned on a multi-threaded runtime, the one written once in
    /// smtp-proto (`connect_url`, generic over the adapter) included.
    #[test]
    fn connect_futures_are_send() {
        let url = SmtpUrl::parse("smtps://me:pw@mx.example").unwrap();
        assert_send(&connect_url(&url, "app.example"));
        assert_send(&ConnectOptions::new(TlsMode::StartTls).connect(
            "mx.example",
            587,
            "a.example",
        ));
        assert_send(&connect_plain("mx.example", 25, "app.example"));
    }

    /// The shared methods reach the shared settings; the trust stays this crate's.
    #[test]
    fn options_keep_the_trust_beside_the_shared_settings() {
        let options = ConnectOptions::new(TlsMode::Implicit)
            .with_tls_config(TlsConfig::insecure_accept_any_certificate_for_tests_only())
            .with_tls_server_name("cert.example")
            .with_connect_timeout(Duration::from_secs(3));
        assert!(options.tls_config().is_insecure());
        assert_eq!(options.settings().tls_server_name(), Some("cert.example"));
        assert_eq!(options.settings().connect_timeout(), Duration::from_secs(3));
        // The default transcript goes to `tracing`.
        let client = options.settings.into_parts().client.into_parts();
        assert!(client.config.transcript.is_some());
    }
}

/// The workspace README's Rust examples, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
