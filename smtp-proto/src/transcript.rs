//! [`TranscriptSink`]: a readable, redacted log of a session, line by line.
//!
//! The engine decides what is secret, so every adapter logs the same safe text: AUTH lines show
//! the mechanism only, SASL responses are replaced by `[redacted]` (and so are the server's SCRAM
//! challenges, whose salt and signature would allow an offline dictionary attack), and message
//! bodies by their size. Adapters forward these lines to their logging (smtp-io-tokio: `tracing`).

use crate::reply::Reply;

/// Receives one line per command sent and one per reply received.
pub trait TranscriptSink: Send + Sync {
    /// A command line the client queued (without CRLF), already redacted.
    fn client(&self, line: &str);
    /// A complete reply from the server.
    fn server(&self, reply: &Reply);
    /// Whether lines are wanted at all right now. The engine asks before building each line,
    /// so a sink whose output is switched off (say, a logger below its level) costs nothing per
    /// command. Defaults to always.
    fn enabled(&self) -> bool {
        true
    }
}
