//! The S:/C: script format shared by the scripted server (`server`) and the in-memory
//! transcripts ([`crate::transcript`]).
//!
//! A script reads like a session transcript:
//!
//! ```text
//! S: 220 mx.test ESMTP          a reply line; consecutive S: lines go out in ONE write
//! C: EHLO client.test           the next line the client must send (exact, without CRLF)
//! C: AUTH PLAIN *               a trailing `*` matches any rest of the line
//! C: *                          the line `*` itself (the client cancelling an AUTH exchange)
//! C:                            an empty line
//! C: DATA-BODY                  a dot-terminated message body (recorded as sent on the wire,
//!                               still dot-stuffed, without the final ".\r\n")
//! T: tls                        the server side of a TLS handshake (implicit TLS: put it first)
//! T: tls-fail                   a TLS handshake the client must abort (bad certificate); then
//!                               the client must hang up without sending a single byte more
//! T: idle                       the server sends nothing now: the client's next line comes
//!                               first (a pause the client must not wait out for a reply)
//! X: stall                      stop answering, keep the socket open until the client hangs up
//! X: eof                        the client must hang up now, without sending anything
//! X: close                      close the socket now
//! H: respond                    hand the next client lines to the server's responder (e.g.
//!                               a SCRAM server, whose lines depend on the client's nonce)
//! # comment                     ignored, as are blank lines
//! ```
//!
//! Client lines sent before the script reaches them are kept and matched in order, so a
//! pipelined flight is written as its `C:` lines followed by the `S:` replies to them.
//!
//! `smtp-proto`'s own engine and driver tests read the same format (through a dev-dependency on
//! this crate without its default features): there each run of consecutive `C:` lines is one
//! flight the engine must have queued, each run of `S:` lines one read, and every `C:` line is
//! exact.

use std::fmt;

/// One step of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `S:` lines, sent together.
    Reply(Vec<String>),
    /// `C: line`: the client's next line, exactly.
    Exact(String),
    /// `C: prefix*`: the client's next line starts with this.
    Prefix(String),
    /// `C: DATA-BODY`: a message body up to the line `.`.
    DataBody,
    /// `T: tls`: a TLS handshake.
    Tls,
    /// `T: tls-fail`: a TLS handshake the client must refuse.
    TlsFail,
    /// `T: idle`: the server sends nothing now (a no-op for the scripted server and client; in
    /// `smtp-proto`'s driver tests a read that stays pending until the client writes).
    Idle,
    /// `X: stall`: no answer until the client hangs up.
    Stall,
    /// `X: eof`: the client must hang up now.
    Eof,
    /// `X: close`: the server closes the connection.
    Close,
    /// `H: respond`: the next lines go to a responder.
    Respond,
}

impl Step {
    /// Whether this step consumes client lines.
    pub fn is_client(&self) -> bool {
        matches!(self, Step::Exact(_) | Step::Prefix(_) | Step::DataBody)
    }

    /// Whether `line` (without CRLF) is what this `C:` step wants. `false` for other steps.
    pub fn matches(&self, line: &[u8]) -> bool {
        match self {
            Step::Exact(want) => line == want.as_bytes(),
            Step::Prefix(prefix) => line.starts_with(prefix.as_bytes()),
            _ => false,
        }
    }

    /// The server's bytes of an `S:` step: each line with CRLF. Empty for other steps.
    pub fn reply_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        if let Step::Reply(lines) = self {
            for l in lines {
                bytes.extend_from_slice(l.as_bytes());
                bytes.extend_from_slice(b"\r\n");
            }
        }
        bytes
    }
}

impl fmt::Display for Step {
    /// The step as written in a script (several `S:` lines joined by a newline and indent).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Reply(lines) => {
                for (i, l) in lines.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n      ")?;
                    }
                    write!(f, "S: {l}")?;
                }
                Ok(())
            }
            Step::Exact(l) => write!(f, "C: {l}"),
            Step::Prefix(p) => write!(f, "C: {p}*"),
            Step::DataBody => f.write_str("C: DATA-BODY"),
            Step::Tls => f.write_str("T: tls"),
            Step::TlsFail => f.write_str("T: tls-fail"),
            Step::Idle => f.write_str("T: idle"),
            Step::Stall => f.write_str("X: stall"),
            Step::Eof => f.write_str("X: eof"),
            Step::Close => f.write_str("X: close"),
            Step::Respond => f.write_str("H: respond"),
        }
    }
}

/// A line that is not part of the script format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    /// The offending line, as written.
    pub line: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad script line {:?}", self.line)
    }
}

impl std::error::Error for ScriptError {}

/// A parsed script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    steps: Vec<Step>,
}

impl Script {
    /// Parse `text`; panics on a line that is not part of the format (scripts are test code).
    pub fn parse(text: &str) -> Script {
        Script::try_parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Parse `text`.
    pub fn try_parse(text: &str) -> Result<Script, ScriptError> {
        let mut steps: Vec<Step> = Vec::new();
        for raw in text.lines() {
            let line = raw.trim_start();
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let (tag, rest) = line.split_at(line.char_indices().nth(2).map_or(line.len(), |c| c.0));
            // One optional space after the tag; everything else (trailing spaces too) is content.
            let text = rest.strip_prefix(' ').unwrap_or(rest);
            let word = text.trim();
            let step = match tag {
                "S:" => {
                    if let Some(Step::Reply(lines)) = steps.last_mut() {
                        lines.push(text.to_owned());
                        continue;
                    }
                    Step::Reply(vec![text.to_owned()])
                }
                "C:" if text == "DATA-BODY" => Step::DataBody,
                // `*` alone is a real line (RFC 4954's cancel), not a wildcard for any line.
                "C:" if text == "*" => Step::Exact(text.to_owned()),
                "C:" => match text.strip_suffix('*') {
                    Some(prefix) => Step::Prefix(prefix.to_owned()),
                    None => Step::Exact(text.to_owned()),
                },
                "T:" if word == "tls" => Step::Tls,
                "T:" if word == "tls-fail" => Step::TlsFail,
                "T:" if word == "idle" => Step::Idle,
                "X:" if word == "stall" => Step::Stall,
                "X:" if word == "eof" => Step::Eof,
                "X:" if word == "close" => Step::Close,
                "H:" if word == "respond" => Step::Respond,
                _ => {
                    return Err(ScriptError {
                        line: raw.to_owned(),
                    });
                }
            };
            steps.push(step);
        }
        Ok(Script { steps })
    }

    /// A script made of these steps.
    pub fn from_steps(steps: Vec<Step>) -> Script {
        Script { steps }
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The steps, to add to or change.
    pub fn steps_mut(&mut self) -> &mut Vec<Step> {
        &mut self.steps
    }

    /// The same script after an implicit TLS handshake (a `T: tls` step first).
    pub fn after_implicit_tls(mut self) -> Script {
        self.steps.insert(0, Step::Tls);
        self
    }
}

/// One pipelined message from `a@x.test` to `b@y.test` up to its body (MAIL, RCPT and DATA in
/// one flight, their `250`, `250` and `354`, then the body): the end-of-data reply is the
/// caller's.
pub const FLIGHT: &str = "C: MAIL FROM:<a@x.test>\nC: RCPT TO:<b@y.test>\nC: DATA\n\
                          S: 250 ok\nS: 250 ok\nS: 354 go\nC: DATA-BODY\n";

/// The opening of most scripts: the greeting `220 mx.test ESMTP ready`, the client's
/// `EHLO {client}` and a `250` reply advertising `caps` (one per line, in order).
pub fn greet(client: &str, caps: &[&str]) -> String {
    let mut s = format!("S: 220 mx.test ESMTP ready\nC: EHLO {client}\n");
    if caps.is_empty() {
        s.push_str("S: 250 mx.test\n");
    } else {
        s.push_str(&format!("S: 250-mx.test greets {client}\n"));
        for (i, cap) in caps.iter().enumerate() {
            let sep = if i + 1 == caps.len() { ' ' } else { '-' };
            s.push_str(&format!("S: 250{sep}{cap}\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_line() {
        let script = Script::parse(
            "
            # a comment
            S: 220 mx.test
            S: 250-next line of the same write
            C: EHLO client.test
            C: AUTH PLAIN *
            C: *
            C:
            C: DATA-BODY
            T: tls
            T: tls-fail
            T: idle
            X: stall
            X: eof
            X: close
            H: respond
            S: 250 trailing space kept ",
        );
        assert_eq!(
            script.steps(),
            [
                Step::Reply(vec![
                    "220 mx.test".into(),
                    "250-next line of the same write".into()
                ]),
                Step::Exact("EHLO client.test".into()),
                Step::Prefix("AUTH PLAIN ".into()),
                Step::Exact("*".into()),
                Step::Exact(String::new()),
                Step::DataBody,
                Step::Tls,
                Step::TlsFail,
                Step::Idle,
                Step::Stall,
                Step::Eof,
                Step::Close,
                Step::Respond,
                Step::Reply(vec!["250 trailing space kept ".into()]),
            ]
        );
        assert!(Step::Prefix("AUTH ".into()).matches(b"AUTH PLAIN x"));
        assert!(!Step::Exact("QUIT".into()).matches(b"QUIT "));
        assert!(
            !script.steps()[3].matches(b"QUIT"),
            "`C: *` is the line `*`"
        );
        assert!(script.steps()[3].matches(b"*"));
        for step in script.steps() {
            // Every step prints as it is written (and parses back to itself).
            assert_eq!(
                Script::parse(&step.to_string()).steps(),
                std::slice::from_ref(step)
            );
        }
        assert_eq!(
            script.steps()[0].reply_bytes(),
            b"220 mx.test\r\n250-next line of the same write\r\n"
        );
    }

    #[test]
    fn unknown_tags_are_refused() {
        assert!(Script::try_parse("Q: what").is_err());
        assert!(Script::try_parse("X: explode").is_err());
        assert!(Script::try_parse("SMTP").is_err());
    }

    #[test]
    fn greet_builds_the_ehlo_exchange() {
        let g = greet("c.test", &["PIPELINING", "SIZE 10"]);
        assert_eq!(
            g,
            "S: 220 mx.test ESMTP ready\nC: EHLO c.test\nS: 250-mx.test greets c.test\n\
             S: 250-PIPELINING\nS: 250 SIZE 10\n"
        );
        assert!(greet("c.test", &[]).ends_with("S: 250 mx.test\n"));
    }
}
