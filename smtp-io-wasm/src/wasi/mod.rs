//! The client in a WASI 0.2 component (`wasm32-wasip2`): TCP through `wasi:sockets`, timers
//! from `wasi:clocks`, randomness from `wasi:random`, waits through `wasi:io/poll`, and TLS in
//! the guest with rustls (implicit TLS and STARTTLS; trust from `webpki-roots` or a CA PEM).
//!
//! The protocol is the same engine and the same [`SmtpClient`](crate::SmtpClient) as on every
//! other runtime: this module only implements [`Transport`](crate::Transport) and
//! [`StartTlsCapable`](crate::StartTlsCapable) for a WASI socket ([`WasiTransport`]) and offers
//! connect helpers. A component's exports are synchronous, so run the async client with
//! [`block_on`], this module's small executor:
//!
//! ```ignore
//! use smtp_io_wasm::wasi::{ConnectOptions, TlsConfig, block_on};
//! use smtp_io_wasm::{SmtpError, TlsMode};
//!
//! fn send(ca_pem: &[u8]) -> Result<Option<String>, SmtpError> {
//!     block_on(async {
//!         let tls = TlsConfig::from_ca_pem(ca_pem).expect("a CA certificate");
//!         let mut client = ConnectOptions::new(TlsMode::StartTls)
//!             .with_tls(tls)
//!             .connect("smtp.example.com", 587, "component.example.com")
//!             .await?;
//!         client.login("me@example.com", "app-password").await?;
//!         let outcome = client
//!             .send_mail("me@example.com", &["you@example.org"], "Subject: hi\r\n\r\nHello!\r\n")
//!             .await?;
//!         client.quit().await?;
//!         Ok(outcome.queue_id)
//!     })
//! }
//! ```
//!
//! The component in `component/` of this crate's repository exports the WIT interface of
//! `wit/smtp.wit` on top of this module.
//!
//! ## Errors
//!
//! A refused connection, a reset, or a failed name lookup is [`SmtpError::Io`] during
//! [`SmtpOp::Connect`] with the matching `io::ErrorKind` (`ConnectionRefused`, `NotFound`...);
//! an untrusted or wrong certificate is [`SmtpError::Io`] with kind `InvalidData` and the rustls
//! reason, during [`SmtpOp::Connect`] for implicit TLS and during the TLS handshake after
//! STARTTLS. A connect that does not finish in time is [`SmtpError::Timeout`].
//!
//! ## Not supported
//!
//! `wasi:sockets` 0.2 has no `TCP_NODELAY` switch (the host decides); TLS client certificates
//! need a caller-built rustls configuration ([`TlsConfig::from_rustls`]); the futures run only
//! under [`block_on`] (not under another WASI executor).

mod reactor;
mod tcp;
#[cfg(test)]
mod tests;
mod tls;
mod transport;

use core::time::Duration;

pub use reactor::{block_on, sleep};
pub use tls::TlsConfig;
pub use transport::WasiTransport;

use reactor::{Either, race};
use smtp_proto::{SmtpClientOptions, SmtpError, SmtpOp, Timeouts};

use crate::TlsMode;

/// The client over a WASI socket.
pub type SmtpClient = smtp_proto::SmtpClient<WasiTransport>;

/// How to open a connection from a WASI component: TLS mode, trust, connect timeout, and the
/// client's options.
///
/// The defaults: `webpki-roots` trust with the host name checked, 30 s to open the connection
/// (TCP and, for implicit TLS, the handshake), RFC 5321 reply timeouts. Unlike on Workers, port
/// 25 is not refused: a WASI host may well reach it.
#[derive(Debug)]
pub struct ConnectOptions {
    mode: TlsMode,
    tls: TlsConfig,
    connect_timeout: Duration,
    client: SmtpClientOptions,
}

impl ConnectOptions {
    /// Defaults for `mode`.
    pub fn new(mode: TlsMode) -> ConnectOptions {
        ConnectOptions {
            mode,
            tls: TlsConfig::default(),
            connect_timeout: Duration::from_secs(30),
            client: SmtpClientOptions::new(),
        }
    }

    /// The TLS mode.
    pub fn mode(&self) -> TlsMode {
        self.mode
    }

    /// Trust these certificates instead of `webpki-roots`.
    pub fn with_tls(mut self, tls: TlsConfig) -> ConnectOptions {
        self.tls = tls;
        self
    }

    /// The longest opening the connection may take (TCP, and the handshake for implicit TLS).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> ConnectOptions {
        self.connect_timeout = timeout;
        self
    }

    /// The same per-reply timeout for every phase.
    pub fn with_reply_timeout(self, timeout: Duration) -> ConnectOptions {
        self.map_client_options(|o| o.with_timeouts(Timeouts::uniform(timeout)))
    }

    /// The client's options (policy, audit sink, transcript, reply timeouts, extensions).
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

    /// Connect to `host:port`, read the greeting, EHLO as `ehlo_domain`, and for
    /// [`TlsMode::StartTls`] upgrade and EHLO again. The client is then ready for `login` or
    /// `send_mail`. Run it under [`block_on`].
    ///
    /// Errors: a bad `ehlo_domain` or host name for TLS is [`SmtpError::InvalidInput`] or
    /// [`SmtpError::Io`] before any I/O; connect and implicit-TLS handshake failures are
    /// [`SmtpError::Io`] during [`SmtpOp::Connect`] ([`SmtpError::Timeout`] when the connect
    /// timeout ran out).
    pub async fn connect(
        self,
        host: &str,
        port: u16,
        ehlo_domain: &str,
    ) -> Result<SmtpClient, SmtpError> {
        smtp_proto::command::Domain::new(ehlo_domain)?;
        let open = async {
            match self.mode {
                TlsMode::None => WasiTransport::connect_plain(host, port).await,
                TlsMode::StartTls => {
                    WasiTransport::connect_starttls(host, port, self.tls.clone()).await
                }
                TlsMode::Implicit => {
                    WasiTransport::connect_implicit_tls(host, port, self.tls.clone()).await
                }
            }
        };
        let transport = match race(open, sleep(self.connect_timeout)).await {
            Either::Left(Ok(t)) => t,
            Either::Left(Err(e)) => {
                return Err(SmtpError::io(SmtpOp::Connect, e.kind(), e.to_string()));
            }
            Either::Right(()) => {
                return Err(SmtpError::Timeout {
                    during: SmtpOp::Connect,
                    after: self.connect_timeout,
                });
            }
        };
        smtp_proto::SmtpClient::open(transport, self.mode, ehlo_domain, self.client).await
    }
}

/// Connect with implicit TLS (SMTPS, usually port 465), trusting `webpki-roots`.
pub async fn connect_smtps(
    host: &str,
    port: u16,
    ehlo_domain: &str,
) -> Result<SmtpClient, SmtpError> {
    ConnectOptions::new(TlsMode::Implicit)
        .connect(host, port, ehlo_domain)
        .await
}

/// Connect in plaintext and upgrade with STARTTLS (usually port 587), trusting `webpki-roots`.
/// Fails closed when the server does not offer STARTTLS.
pub async fn connect_starttls(
    host: &str,
    port: u16,
    ehlo_domain: &str,
) -> Result<SmtpClient, SmtpError> {
    ConnectOptions::new(TlsMode::StartTls)
        .connect(host, port, ehlo_domain)
        .await
}

/// Connect **without any encryption**. Passwords and mail cross the network readable: only for
/// loopback test servers and trusted relays.
pub async fn connect_plain(
    host: &str,
    port: u16,
    ehlo_domain: &str,
) -> Result<SmtpClient, SmtpError> {
    ConnectOptions::new(TlsMode::None)
        .connect(host, port, ehlo_domain)
        .await
}
