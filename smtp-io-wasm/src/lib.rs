//! # smtp-io-wasm: an SMTP client for Cloudflare Workers
//!
//! The [`smtp_proto`] engine and its async `SmtpClient`, driven over a socket from `connect()` of
//! `cloudflare:sockets` (bound directly with `wasm-bindgen`; no `worker` crate needed), with
//! implicit TLS (`secureTransport: "on"`) or STARTTLS (`secureTransport: "starttls"`, then
//! `startTls()`). The engine's reply timeouts run on the runtime's `setTimeout`.
//!
//! On `wasm32-wasip2` the module `wasi` holds the same client for a WASI 0.2 component:
//! `wasi:sockets` TCP, `wasi:clocks` timers, `wasi:random`, and rustls in the guest for implicit
//! TLS and STARTTLS (it exists only on that target).
//!
//! The socket and timer parts exist only on `wasm32-unknown-unknown` (the target Workers run).
//! On other targets the crate holds its host-side parts: [`TlsMode`], [`ConnectOptions`],
//! [`check_port`] and the re-exports, so a workspace that contains it still builds and tests on
//! the host.
//!
//! Every name of the client API is re-exported here, so one `use` line is enough:
//!
//! ```ignore
//! use smtp_io_wasm::{SmtpError, connect_starttls};
//!
//! async fn send() -> Result<(), SmtpError> {
//!     let mut client = connect_starttls("smtp.example.com", 587, "worker.example.com").await?;
//!     client.login("me@example.com", "app-password").await?;
//!     let outcome = client
//!         .send_mail(
//!             "me@example.com",
//!             &["you@example.org"],
//!             "From: me@example.com\r\nTo: you@example.org\r\nSubject: hi\r\n\r\nHello!\r\n",
//!         )
//!         .await?;
//!     client.quit().await?;
//!     let _ = outcome.queue_id;
//!     Ok(())
//! }
//! ```
//!
//! A whole Worker (an HTTP endpoint that sends a message and answers with the outcome as JSON,
//! streaming a raw request body as the message) is in `examples/worker` of this crate's
//! repository; see the README.
//!
//! ## Port 25
//!
//! Cloudflare blocks outbound connections to port 25 from Workers. The connect helpers refuse it
//! up front with [`SmtpError::InvalidInput`] (see [`check_port`]); send through a submission
//! server on 587 (STARTTLS) or 465 (implicit TLS).
//!
//! ## Errors
//!
//! A failure of the runtime (connect refused, connection reset, TLS failure) is
//! [`SmtpError::Io`] with the operation it happened in and the runtime's message. The runtime
//! reports TLS failures late: an untrusted certificate shows up as an I/O error on the first read
//! after the handshake starts (the greeting for implicit TLS, the `opened` promise or the EHLO
//! after STARTTLS), with a generic message. So on Workers
//! [`SmtpError::is_tls_failure`] is true only for a failure during the handshake or STARTTLS
//! step; on WASI, where rustls runs in the guest, an alert after the handshake counts too.
// docs.rs (`--cfg docsrs`, see Cargo.toml): each item that needs a feature or a target says so.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod options;

#[cfg(all(target_arch = "wasm32", target_os = "wasi", target_env = "p2"))]
pub mod wasi;

#[cfg(any(
    all(target_arch = "wasm32", target_os = "unknown"),
    all(target_arch = "wasm32", target_os = "wasi", target_env = "p2")
))]
mod connect;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod body;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod streams;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod sys;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod timer;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod transport;

pub use options::{BLOCKED_PORT, ConnectOptions, TlsMode, check_port};

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub use body::ReadableStreamBody;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub use timer::{Sleep, sleep};
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub use transport::WorkersTransport;

#[cfg(any(
    all(target_arch = "wasm32", target_os = "unknown"),
    all(target_arch = "wasm32", target_os = "wasi", target_env = "p2")
))]
pub use connect::{connect_plain, connect_smtps, connect_starttls, connect_url};

pub use ::smtp_proto;
pub use ::smtp_proto::prelude::*;

/// The client type this crate produces (over `WorkersTransport` by default on the Workers
/// target).
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub type SmtpClient<T = WorkersTransport> = smtp_proto::SmtpClient<T>;

/// The client type (over [`wasi::WasiTransport`] by default on `wasm32-wasip2`).
#[cfg(all(target_arch = "wasm32", target_os = "wasi", target_env = "p2"))]
pub type SmtpClient<T = wasi::WasiTransport> = smtp_proto::SmtpClient<T>;

/// The client type (on this target without a default transport: the Workers socket exists only
/// on `wasm32-unknown-unknown`, the WASI one on `wasm32-wasip2`).
#[cfg(not(any(
    all(target_arch = "wasm32", target_os = "unknown"),
    all(target_arch = "wasm32", target_os = "wasi", target_env = "p2")
)))]
pub type SmtpClient<T> = smtp_proto::SmtpClient<T>;
