//! [`StderrTranscript`]: the engine's redacted transcript, printed to standard error for `-v`.

use std::io::Write;

use smtp_io_tokio::{Reply, TranscriptSink};

use crate::sanitize::visible;

/// Prints each command sent as `C: ...` and each reply line received as `S: ...` on standard
/// error, control characters spelled out ([`visible`]). The engine redacts the lines before they get here: AUTH shows only the mechanism
/// (`C: AUTH PLAIN [redacted]`), SASL responses are `C: [redacted]`, and the body is shown as its
/// size.
#[derive(Debug, Clone, Copy, Default)]
pub struct StderrTranscript;

/// The `S:` lines for a reply, as a server would have sent them (`250-...` then `250 ...`).
pub fn server_lines(reply: &Reply) -> Vec<String> {
    reply
        .wire_lines()
        .map(|line| format!("S: {}", visible(&line.to_string())))
        .collect()
}

impl TranscriptSink for StderrTranscript {
    fn client(&self, line: &str) {
        let _ = writeln!(std::io::stderr().lock(), "C: {}", visible(line));
    }

    fn server(&self, reply: &Reply) {
        let mut err = std::io::stderr().lock();
        for line in server_lines(reply) {
            let _ = writeln!(err, "{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smtp_io_tokio::{EnhancedCode, ReplyCode};

    #[test]
    fn multiline_replies_keep_their_shape() {
        let reply = Reply::new(ReplyCode::OK, None, "mx greets you\nPIPELINING\nSIZE 10");
        assert_eq!(
            server_lines(&reply),
            [
                "S: 250-mx greets you",
                "S: 250-PIPELINING",
                "S: 250 SIZE 10"
            ]
        );
        let reply = Reply::new(
            ReplyCode::new(550).unwrap(),
            Some(EnhancedCode {
                class: 5,
                subject: 1,
                detail: 1,
            }),
            "no such user",
        );
        assert_eq!(server_lines(&reply), ["S: 550 5.1.1 no such user"]);
    }
}
