//! [`TracingTranscript`]: the engine's redacted transcript as `tracing` events.

use smtp_proto::{Reply, TranscriptSink};

/// Emits one `tracing` event per command sent (`C: ...`) and per reply received (`S: ...`), at
/// `DEBUG` level, target `smtp_io_tokio::transcript`.
///
/// The lines come from the engine already redacted: AUTH shows only the mechanism, SASL responses
/// are `[redacted]`, bodies appear as their size. Installed by default by [`crate::ConnectOptions`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingTranscript;

impl TranscriptSink for TracingTranscript {
    fn client(&self, line: &str) {
        tracing::debug!(target: "smtp_io_tokio::transcript", "C: {line}");
    }

    fn enabled(&self) -> bool {
        tracing::enabled!(target: "smtp_io_tokio::transcript", tracing::Level::DEBUG)
    }

    fn server(&self, reply: &Reply) {
        for line in reply.wire_lines() {
            tracing::debug!(target: "smtp_io_tokio::transcript", "S: {line}");
        }
    }
}
