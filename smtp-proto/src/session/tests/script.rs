//! The S:/C: transcript format of the engine's tests (`session/tests`) and the driver's
//! (`client/tests`, which includes this file by its path): one parser for both.
//!
//! `S:` lines are the server's (consecutive ones form one read), `C:` lines the client's
//! (consecutive ones form one flight), each given its CRLF; `C:` alone is an empty line (editors
//! strip the trailing space). The driver's transcripts also know `T: upgrade` (the TLS
//! handshake) and `T: idle` (the server sends nothing now).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// One step of a transcript.
#[derive(Debug)]
pub(crate) enum Line {
    /// Consecutive `S:` lines, each with CRLF.
    Server(String),
    /// Consecutive `C:` lines, each with CRLF.
    Client(String),
    /// `T: upgrade`.
    Upgrade,
    /// `T: idle`.
    Idle,
}

/// The steps of `script`; panics on a line of no known kind (transcripts are test code).
pub(crate) fn parse(script: &str) -> Vec<Line> {
    let mut steps: Vec<Line> = Vec::new();
    for raw in script.lines() {
        let trimmed = raw.trim();
        match trimmed {
            "" => continue,
            "T: upgrade" => steps.push(Line::Upgrade),
            "T: idle" => steps.push(Line::Idle),
            _ => {
                // "C:" alone is an empty line (editors strip the trailing space).
                let line = if trimmed == "C:" || trimmed == "S:" {
                    trimmed
                } else {
                    raw.trim_start()
                };
                let (side, text) = line.split_at(2.min(line.len()));
                let text = format!("{}\r\n", text.strip_prefix(' ').unwrap_or(text));
                match (side, steps.last_mut()) {
                    ("S:", Some(Line::Server(buf))) | ("C:", Some(Line::Client(buf))) => {
                        buf.push_str(&text)
                    }
                    ("S:", _) => steps.push(Line::Server(text)),
                    ("C:", _) => steps.push(Line::Client(text)),
                    _ => panic!("transcript line must start with 'S: ' or 'C: ': {raw:?}"),
                }
            }
        }
    }
    steps
}
