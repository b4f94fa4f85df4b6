//! The async [`SmtpClient`] (placeholder while the engine is written).
mod transport;
pub use transport::{MessageBody, SliceBody, StartTlsCapable, Transport};
