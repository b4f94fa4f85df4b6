//! The local SMTP server that records what it receives: the target of `smtp-send` when no
//! `--server` is given, and the test double of the integration tests. It is the
//! [`smtp_capture`] crate, re-exported here under the names it always had.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use smtp_send::capture::{CaptureConfig, CaptureServer};
//!
//! let server = CaptureServer::start(CaptureConfig::default()).await?;
//! println!("listening on {}, trust this CA:\n{}", server.addr(), server.ca_pem());
//! // ... send a message to server.addr() ...
//! for message in server.messages() {
//!     println!("{} -> {:?}", message.mail_from, message.rcpt_to);
//! }
//! # Ok(()) }
//! ```

pub use smtp_capture::{CaptureConfig, CaptureServer, Captured, Credentials, WaitError};

/// The greeting of capture mode's server (as before the server became its own crate).
pub const GREETING: &str = "localhost ESMTP smtp-send capture server";
