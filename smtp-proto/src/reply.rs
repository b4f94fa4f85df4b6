//! Server replies: [`ReplyCode`], [`EnhancedCode`], [`Reply`], and the push-style [`ReplyParser`].
//!
//! (Helper A implements the parser and fills in tests; the public signatures here are fixed.)

use core::fmt;

/// A three-digit SMTP reply code, first digit 2–5, second 0–5, third 0–9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyCode(u16);

impl ReplyCode {
    /// `220` service ready.
    pub const SERVICE_READY: ReplyCode = ReplyCode(220);
    /// `221` closing.
    pub const CLOSING: ReplyCode = ReplyCode(221);
    /// `235` authentication succeeded.
    pub const AUTH_OK: ReplyCode = ReplyCode(235);
    /// `250` OK.
    pub const OK: ReplyCode = ReplyCode(250);
    /// `334` SASL challenge.
    pub const AUTH_CHALLENGE: ReplyCode = ReplyCode(334);
    /// `354` start mail input.
    pub const START_DATA: ReplyCode = ReplyCode(354);
    /// `421` service not available, closing.
    pub const SERVICE_UNAVAILABLE: ReplyCode = ReplyCode(421);

    /// A code from its number, or `None` when it is not a valid SMTP reply code.
    pub const fn new(code: u16) -> Option<ReplyCode> {
        let (a, b) = (code / 100, (code / 10) % 10);
        if a >= 2 && a <= 5 && b <= 5 {
            Some(ReplyCode(code))
        } else {
            None
        }
    }

    /// The number, e.g. `250`.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// The first digit: 2, 3, 4 or 5.
    pub const fn class(self) -> u8 {
        (self.0 / 100) as u8
    }

    /// 2xx.
    pub const fn is_positive(self) -> bool {
        self.class() == 2
    }

    /// 3xx.
    pub const fn is_intermediate(self) -> bool {
        self.class() == 3
    }

    /// 4xx: try again later.
    pub const fn is_transient(self) -> bool {
        self.class() == 4
    }

    /// 5xx: do not retry as is.
    pub const fn is_permanent(self) -> bool {
        self.class() == 5
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An enhanced status code (RFC 3463), e.g. `5.1.1`: class 2, 4 or 5; subject and detail 0–999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    /// 2 (success), 4 (persistent transient) or 5 (permanent).
    pub class: u8,
    /// The subject, e.g. 1 for addressing.
    pub subject: u16,
    /// The detail.
    pub detail: u16,
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// One complete server reply: its code, enhanced code when present, and its text.
///
/// `text` holds each line's text (what follows `250-` / `250 `, with the enhanced code removed where
/// it was recognised) joined with `\n`. Bytes that are not UTF-8 are replaced with U+FFFD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    code: ReplyCode,
    enhanced: Option<EnhancedCode>,
    text: String,
}

impl Reply {
    /// A reply from its parts. `text` lines are separated by `\n`.
    pub fn new(code: ReplyCode, enhanced: Option<EnhancedCode>, text: impl Into<String>) -> Reply {
        Reply {
            code,
            enhanced,
            text: text.into(),
        }
    }

    /// The reply code.
    pub fn code(&self) -> ReplyCode {
        self.code
    }

    /// The enhanced status code, when the first line carried one.
    pub fn enhanced(&self) -> Option<EnhancedCode> {
        self.enhanced
    }

    /// All the text, lines joined with `\n`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text of each line, in order (at least one, possibly empty).
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.text.split('\n')
    }

    /// The text of the first line.
    pub fn first_line(&self) -> &str {
        self.text.split('\n').next().unwrap_or("")
    }

    /// True for a multi-line reply.
    pub fn is_multiline(&self) -> bool {
        self.text.contains('\n')
    }
}

impl fmt::Display for Reply {
    /// `550 5.1.1 text`, lines joined with ` / `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(e) = self.enhanced {
            write!(f, " {e}")?;
        }
        for (i, line) in self.lines().enumerate() {
            f.write_str(if i == 0 { " " } else { " / " })?;
            f.write_str(line)?;
        }
        Ok(())
    }
}

/// Bounds on what a server may make the parser hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLimits {
    /// Longest accepted line, including its line ending. Default 4096 (RFC 5321 allows 512; real
    /// servers send longer lines).
    pub max_line_len: usize,
    /// Most lines in one reply. Default 256.
    pub max_lines: usize,
    /// Most bytes held for one reply. Default 64 KiB.
    pub max_reply_bytes: usize,
}

impl Default for ReplyLimits {
    fn default() -> Self {
        ReplyLimits {
            max_line_len: 4096,
            max_lines: 256,
            max_reply_bytes: 64 * 1024,
        }
    }
}

/// Why a reply could not be parsed. Every bound violation is one of these, never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// A line was longer than [`ReplyLimits::max_line_len`].
    #[error("reply line longer than {limit} bytes")]
    LineTooLong {
        /// The limit.
        limit: usize,
    },
    /// A reply had more than [`ReplyLimits::max_lines`] lines.
    #[error("reply has more than {limit} lines")]
    TooManyLines {
        /// The limit.
        limit: usize,
    },
    /// A reply was larger than [`ReplyLimits::max_reply_bytes`].
    #[error("reply larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// A line does not start with a valid three-digit code.
    #[error("line does not start with a valid reply code")]
    BadCode,
    /// The code is not followed by `-`, space or the line end.
    #[error("reply code not followed by '-', ' ' or end of line")]
    BadSeparator,
    /// A continuation line's code differs from the first line's.
    #[error("reply lines carry different codes ({first} then {found})")]
    InconsistentCode {
        /// The first line's code.
        first: u16,
        /// The offending line's code.
        found: u16,
    },
}

/// What one call of [`ReplyParser::push`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// How many bytes of the input were consumed. Bytes past a completed reply are not consumed.
    pub consumed: usize,
    /// The reply completed by these bytes, if any.
    pub reply: Option<Reply>,
}

/// An incremental, push-style reply parser.
///
/// Feed it bytes with [`push`](Self::push) in any split; it yields the same replies whether the
/// bytes come one at a time or many replies in one read. It holds at most one partial reply,
/// within [`ReplyLimits`]. Lines end with CRLF; a bare LF is accepted as a line end too (a CR
/// before it is dropped), because sloppy servers send it and it cannot be confused with anything
/// else in a reply.
#[derive(Debug, Clone)]
pub struct ReplyParser {
    limits: ReplyLimits,
    // helper A: internal state
}

impl ReplyParser {
    /// A parser with these limits.
    pub fn new(limits: ReplyLimits) -> ReplyParser {
        let _ = limits;
        todo!()
    }

    /// The limits in force.
    pub fn limits(&self) -> ReplyLimits {
        self.limits
    }

    /// Consume bytes up to the end of the next complete reply (or all of `input` if none
    /// completes). After an error the parser must be [`reset`](Self::reset) before reuse.
    pub fn push(&mut self, input: &[u8]) -> Result<Pushed, ReplyError> {
        let _ = input;
        todo!()
    }

    /// True when no partial reply is held.
    pub fn is_idle(&self) -> bool {
        todo!()
    }

    /// Forget any partial reply.
    pub fn reset(&mut self) {
        todo!()
    }
}
