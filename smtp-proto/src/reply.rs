//! Server replies: [`ReplyCode`], [`EnhancedCode`], [`Reply`], and the push-style [`ReplyParser`].
//!
//! ## Parsing rules (RFC 5321 section 4.2)
//!
//! * Every line starts with a three-digit code ([`ReplyCode::new`] must accept it, else
//!   [`ReplyError::BadCode`]; a `1yz` code is accepted so that the engine can name the reply when
//!   it closes the session for it, see [`ReplyCode`]), followed by `-` (more lines follow), a space
//!   (last line), or nothing
//!   at all (`250\r\n` is a last line with empty text). Anything else is
//!   [`ReplyError::BadSeparator`]. Every line of a reply must carry the first line's code
//!   ([`ReplyError::InconsistentCode`]).
//! * Lines end with CRLF. A bare LF is accepted as a line end too; a CR just before the LF is
//!   dropped. A CR that is *not* followed by LF is ordinary text and is kept in the reply text.
//! * Enhanced status codes (RFC 2034 / RFC 3463): when a line's text starts with
//!   `class.subject.detail` (subject and detail 1–3 digits) followed by a space or the end of the
//!   line, and `class` equals the reply code's first digit, the code (and one following space) is
//!   removed from that line's text. The first line's code becomes [`Reply::enhanced`]. Requiring the
//!   class to match keeps text such as `554 2.0 ready` from being misread.
//! * Text that is not UTF-8 is replaced with U+FFFD.

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use core::fmt;

/// A three-digit SMTP reply code, first digit 1–5, second 0–5, third 0–9.
///
/// SMTP never sends a `1yz` (positive preliminary) reply (RFC 5321 section 4.2.1, and its
/// grammar allows only 2–5), but one is kept as a reply rather than refused as malformed: it can
/// answer no command, so the engine closes the session on it as a loss of sync
/// ([`ProtocolError::OutOfSync`](crate::error::ProtocolError::OutOfSync)), with the reply in the
/// error.
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

    /// A code from its number, or `None` when it is not a reply code (first digit 1–5, second
    /// 0–5).
    pub const fn new(code: u16) -> Option<ReplyCode> {
        let (a, b) = (code / 100, (code / 10) % 10);
        if a >= 1 && a <= 5 && b <= 5 {
            Some(ReplyCode(code))
        } else {
            None
        }
    }

    /// The number, e.g. `250`.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// The first digit: 1, 2, 3, 4 or 5.
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

    /// Each line in the shape a server sends it (`250-first`, ..., `250 last`, with the enhanced
    /// code after the code on every line when the reply has one), without CRLF: what a
    /// transcript shows.
    pub fn wire_lines(&self) -> impl Iterator<Item = ReplyLine<'_>> {
        let mut lines = self.lines().peekable();
        core::iter::from_fn(move || {
            let text = lines.next()?;
            Some(ReplyLine {
                code: self.code,
                enhanced: self.enhanced,
                last: lines.peek().is_none(),
                text,
            })
        })
    }
}

/// One line of a [`Reply`] as sent on the wire; its `Display` is `250-text` for a continuation
/// line and `250 text` for the last (`250 2.0.0 text` with an enhanced code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLine<'a> {
    code: ReplyCode,
    enhanced: Option<EnhancedCode>,
    last: bool,
    text: &'a str,
}

impl fmt::Display for ReplyLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sep = if self.last { ' ' } else { '-' };
        match self.enhanced {
            Some(e) => write!(f, "{}{sep}{e} {}", self.code, self.text),
            None => write!(f, "{}{sep}{}", self.code, self.text),
        }
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

/// Bounds on what a server may make the parser hold. Fields may be added: start from
/// [`ReplyLimits::default`] and set the ones you need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
/// else in a reply. A CR not followed by LF is kept as part of the line's text.
///
/// Memory: the partial line is held only up to [`ReplyLimits::max_line_len`] and the partial reply
/// only up to [`ReplyLimits::max_reply_bytes`]; a bound is reported as soon as it is exceeded,
/// without waiting for a line end. Internal buffers are cleared, not freed, between replies, so a
/// warm parser allocates only the text of each [`Reply`] it returns.
#[derive(Debug, Clone)]
pub struct ReplyParser {
    limits: ReplyLimits,
    /// Bytes of the current line received so far, without a line end yet. Only used when a line
    /// is split across pushes; complete lines are parsed straight from the input.
    line: Vec<u8>,
    /// Text of the completed lines of the current reply, joined with `\n` (raw bytes).
    text: Vec<u8>,
    /// The first line's code, once the current reply has a completed line.
    code: Option<ReplyCode>,
    /// The enhanced code of the first line, if it carried one.
    enhanced: Option<EnhancedCode>,
    /// Completed lines in the current reply.
    lines: usize,
    /// Bytes (line ends included) of the completed lines in the current reply.
    held: usize,
    /// The error that stopped the parser; repeated until [`reset`](Self::reset).
    failed: Option<ReplyError>,
}

impl Default for ReplyParser {
    /// A parser with [`ReplyLimits::default`].
    fn default() -> Self {
        ReplyParser::new(ReplyLimits::default())
    }
}

impl ReplyParser {
    /// A parser with these limits.
    pub fn new(limits: ReplyLimits) -> ReplyParser {
        ReplyParser {
            limits,
            line: Vec::new(),
            text: Vec::new(),
            code: None,
            enhanced: None,
            lines: 0,
            held: 0,
            failed: None,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> ReplyLimits {
        self.limits
    }

    /// Consume bytes up to the end of the next complete reply (or all of `input` if none
    /// completes). After an error the parser must be [`reset`](Self::reset) before reuse; until
    /// then every call returns the same error.
    ///
    /// When `input` is not empty, at least one byte is consumed: either a reply completes (and
    /// `consumed` stops just after its last line end) or all of `input` is consumed.
    pub fn push(&mut self, input: &[u8]) -> Result<Pushed, ReplyError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        match self.push_inner(input) {
            Ok(pushed) => Ok(pushed),
            Err(error) => {
                self.failed = Some(error);
                Err(error)
            }
        }
    }

    /// True when no partial reply is held (no partial line, no pending lines) and no error is
    /// pending [`reset`](Self::reset).
    pub fn is_idle(&self) -> bool {
        self.line.is_empty() && self.lines == 0 && self.failed.is_none()
    }

    /// Forget any partial reply (and any error). Buffers keep their capacity.
    pub fn reset(&mut self) {
        self.line.clear();
        self.clear_reply();
        self.failed = None;
    }

    /// Bytes of buffer capacity held, for tests of the memory bounds.
    #[cfg(test)]
    fn buffered_capacity(&self) -> usize {
        self.line.capacity() + self.text.capacity()
    }

    fn clear_reply(&mut self) {
        self.text.clear();
        self.code = None;
        self.enhanced = None;
        self.lines = 0;
        self.held = 0;
    }

    fn push_inner(&mut self, input: &[u8]) -> Result<Pushed, ReplyError> {
        let limits = self.limits;
        let mut pos = 0;
        while pos < input.len() {
            let rest = &input[pos..];
            let Some(nl) = memchr::memchr(b'\n', rest) else {
                // No line end: hold the partial line, within bounds. The line end still to come
                // adds at least one byte, hence `>=`.
                let partial = self.line.len() + rest.len();
                if partial >= limits.max_line_len {
                    return Err(ReplyError::LineTooLong {
                        limit: limits.max_line_len,
                    });
                }
                if self.held + partial >= limits.max_reply_bytes {
                    return Err(ReplyError::TooLarge {
                        limit: limits.max_reply_bytes,
                    });
                }
                self.line.extend_from_slice(rest);
                return Ok(Pushed {
                    consumed: input.len(),
                    reply: None,
                });
            };
            let piece = &rest[..=nl];
            let line_len = self.line.len() + piece.len();
            if line_len > limits.max_line_len {
                return Err(ReplyError::LineTooLong {
                    limit: limits.max_line_len,
                });
            }
            if self.held + line_len > limits.max_reply_bytes {
                return Err(ReplyError::TooLarge {
                    limit: limits.max_reply_bytes,
                });
            }
            pos += piece.len();
            let reply = if self.line.is_empty() {
                self.complete_line(piece)?
            } else {
                // The line was split across pushes: join it in the line buffer, then hand the
                // buffer back (cleared, capacity kept) whatever the outcome.
                let mut line = core::mem::take(&mut self.line);
                line.extend_from_slice(piece);
                let result = self.complete_line(&line);
                line.clear();
                self.line = line;
                result?
            };
            if let Some(reply) = reply {
                return Ok(Pushed {
                    consumed: pos,
                    reply: Some(reply),
                });
            }
        }
        Ok(Pushed {
            consumed: input.len(),
            reply: None,
        })
    }

    /// Parse one complete line (`line` ends with `\n`, bounds already checked). Returns the reply
    /// when this was its last line.
    fn complete_line(&mut self, line: &[u8]) -> Result<Option<Reply>, ReplyError> {
        let mut body = &line[..line.len() - 1];
        if let [rest @ .., b'\r'] = body {
            body = rest;
        }
        let (code, last, text) = split_line(body)?;
        match self.code {
            Some(first) if first != code => {
                return Err(ReplyError::InconsistentCode {
                    first: first.get(),
                    found: code.get(),
                });
            }
            _ => {}
        }
        if self.lines >= self.limits.max_lines {
            return Err(ReplyError::TooManyLines {
                limit: self.limits.max_lines,
            });
        }
        let (enhanced, text) = match parse_enhanced(text, code.class()) {
            Some((enhanced, len)) => {
                // Drop the code and the single space after it (if any).
                let after = &text[len..];
                (Some(enhanced), after.strip_prefix(b" ").unwrap_or(after))
            }
            None => (None, text),
        };
        let first = self.lines == 0;
        if first {
            if last {
                // A single-line reply: build the text straight from the line.
                return Ok(Some(Reply {
                    code,
                    enhanced,
                    text: String::from_utf8_lossy(text).into_owned(),
                }));
            }
            self.code = Some(code);
            self.enhanced = enhanced;
        } else {
            self.text.push(b'\n');
        }
        self.text.extend_from_slice(text);
        self.lines += 1;
        self.held += line.len();
        if !last {
            return Ok(None);
        }
        let reply = Reply {
            code,
            enhanced: self.enhanced,
            text: String::from_utf8_lossy(&self.text).into_owned(),
        };
        self.clear_reply();
        Ok(Some(reply))
    }
}

/// Split a line (without its line end) into code, "is last line", and text.
fn split_line(body: &[u8]) -> Result<(ReplyCode, bool, &[u8]), ReplyError> {
    let [a, b, c, rest @ ..] = body else {
        return Err(ReplyError::BadCode);
    };
    if !(a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit()) {
        return Err(ReplyError::BadCode);
    }
    let number = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
    let code = ReplyCode::new(number).ok_or(ReplyError::BadCode)?;
    match rest {
        [] => Ok((code, true, rest)),
        [b' ', text @ ..] => Ok((code, true, text)),
        [b'-', text @ ..] => Ok((code, false, text)),
        _ => Err(ReplyError::BadSeparator),
    }
}

/// An enhanced status code at the start of `text`, followed by a space or the end of the text,
/// whose class is `class`. Returns the code and its length in bytes.
fn parse_enhanced(text: &[u8], class: u8) -> Option<(EnhancedCode, usize)> {
    let (&first, rest) = text.split_first()?;
    if first != b'0' + class || !matches!(class, 2 | 4 | 5) {
        return None;
    }
    let rest = rest.strip_prefix(b".")?;
    let (subject, n1) = parse_number(rest)?;
    let rest = rest[n1..].strip_prefix(b".")?;
    let (detail, n2) = parse_number(rest)?;
    match rest.get(n2) {
        None | Some(b' ') => Some((
            EnhancedCode {
                class,
                subject,
                detail,
            },
            1 + 1 + n1 + 1 + n2,
        )),
        _ => None,
    }
}

/// One to three ASCII digits at the start of `bytes`, and how many there were. More than three
/// digits is not a number here.
fn parse_number(bytes: &[u8]) -> Option<(u16, usize)> {
    let digits = bytes
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || digits > 3 {
        return None;
    }
    let value = bytes[..digits]
        .iter()
        .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    Some((value, digits))
}

#[cfg(test)]
mod tests;
