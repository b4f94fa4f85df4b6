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
//!             .with_tls_config(tls)
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
//! ## Proxy and local address
//!
//! [`ConnectOptions::with_proxy`] (SOCKS5 or HTTP CONNECT, with or without credentials)
//! connects to the proxy and opens the tunnel on the plain socket with
//! [`open_tunnel`](smtp_proto::connect::open_tunnel), reading no byte of the SMTP server's; TLS
//! (implicit or STARTTLS) then runs end to end with the server, its certificate checked for the
//! host (or the TLS server name), never the proxy's name. A proxy that cannot be reached fails as
//! "cannot reach the proxy host:port: ...". [`ConnectOptions::with_local_address`] binds the
//! socket to that address (port 0) before it connects, to the proxy when there is one; an address
//! of the other family than the one connected to is `AddrNotAvailable`, naming both.
//!
//! ## Errors
//!
//! A refused connection, a reset, or a failed name lookup is [`SmtpError::Io`] during
//! [`SmtpOp::Connect`] with the matching `io::ErrorKind` (`ConnectionRefused`, `NotFound`...);
//! an untrusted or wrong certificate is [`SmtpError::Io`] with kind `InvalidData` and the rustls
//! reason, during [`SmtpOp::Connect`] for implicit TLS and during the TLS handshake after
//! STARTTLS. A connect that does not finish in time is [`SmtpError::Timeout`].
//!
//! [`SmtpError::Io`]: crate::SmtpError::Io
//! [`SmtpError::Timeout`]: crate::SmtpError::Timeout
//! [`SmtpOp::Connect`]: crate::SmtpOp::Connect
//!
//! ## Not supported
//!
//! `wasi:sockets` 0.2 has no `TCP_NODELAY` switch (the host decides); the futures run only
//! under [`block_on`] (not under another WASI executor). (TLS client certificates work:
//! [`TlsConfig::with_client_certificate_pem`].)
//!
//! A message body larger than memory can come from a `wasi:io` input stream
//! ([`InputStreamBody`], for `send_mail_stream`).

mod body;
mod reactor;
mod tcp;
#[cfg(test)]
mod tests;
mod transport;

pub use body::InputStreamBody;
pub use reactor::{block_on, sleep};
pub use smtp_rustls::TlsConfig;
pub use transport::WasiTransport;

/// The crate's [`ConnectOptions`] and connect helpers, the same on both
/// runtimes; here they open a [`WasiTransport`], trust [`TlsConfig`] (`with_tls`) and do not
/// refuse port 25.
pub use crate::{ConnectOptions, connect_plain, connect_smtps, connect_starttls, connect_url};

/// The client over a WASI socket.
pub type SmtpClient = smtp_proto::SmtpClient<WasiTransport>;
