//! Opening a connection, written once for both runtimes: [`ConnectOptions::connect`] and the
//! three helpers. Only opening the socket differs: `cloudflare:sockets` on Workers
//! ([`WorkersTransport`](crate::WorkersTransport)), `wasi:sockets` and rustls on WASI
//! ([`WasiTransport`](crate::wasi::WasiTransport)); each is bounded by its own timer through
//! the engine's [`ConnectClock`], which also starts the session's deadline.

use smtp_proto::client::ConnectClock;
use smtp_proto::{SmtpError, SmtpOp};

use crate::{ConnectOptions, SmtpClient, TlsMode};

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use crate::WorkersTransport as Socket;
#[cfg(all(target_arch = "wasm32", target_os = "wasi", target_env = "p2"))]
use crate::wasi::WasiTransport as Socket;

impl ConnectOptions {
    /// Open a connection to `host:port`, read the greeting, EHLO as `ehlo_domain`, and for
    /// [`TlsMode::StartTls`] upgrade and EHLO again. The client is then ready for `login` or
    /// `send_mail`. On WASI, run it under `wasi::block_on`.
    ///
    /// Errors: a bad `ehlo_domain` (and on Workers port 25, see [`check_port`](crate::check_port))
    /// is [`SmtpError::InvalidInput`] before any I/O; on WASI a host name that cannot be a TLS
    /// server name is [`SmtpError::Io`] before any I/O too. A connect failure is [`SmtpError::Io`]
    /// during [`SmtpOp::Connect`] ([`SmtpError::Timeout`] when the connect timeout ran out); so
    /// is a failed implicit-TLS handshake on WASI. On Workers a TLS failure shows later (see the
    /// crate docs).
    pub async fn connect(
        self,
        host: &str,
        port: u16,
        ehlo_domain: &str,
    ) -> Result<SmtpClient, SmtpError> {
        // Validate everything local before touching the network.
        smtp_proto::command::Domain::new(ehlo_domain)?;
        #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
        self.check_port(port)?;
        #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
        let open = Socket::open(host, port, self.mode);
        #[cfg(all(target_arch = "wasm32", target_os = "wasi", target_env = "p2"))]
        let open = Socket::open(host, port, self.mode, &self.tls);
        // The session's deadline counts from here: the connect (and on WASI an implicit-TLS
        // handshake) count against it, as on every adapter.
        let (clock, options) = ConnectClock::start::<Socket>(self.client);
        let transport = clock
            .step::<Socket, _>(SmtpOp::Connect, self.connect_timeout, open)
            .await?;
        smtp_proto::SmtpClient::open(transport, self.mode, ehlo_domain, options).await
    }
}

/// Connect with implicit TLS (SMTPS, usually port 465), with the default trust (on Workers the
/// runtime's, on WASI `webpki-roots`).
pub async fn connect_smtps(
    host: &str,
    port: u16,
    ehlo_domain: &str,
) -> Result<SmtpClient, SmtpError> {
    ConnectOptions::new(TlsMode::Implicit)
        .connect(host, port, ehlo_domain)
        .await
}

/// Connect in plaintext and upgrade with STARTTLS (usually port 587), with the default trust (on
/// Workers the runtime's, on WASI `webpki-roots`). Fails closed when the server does not offer
/// STARTTLS.
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
