//! Server replies: [`ReplyCode`], [`EnhancedCode`], [`Reply`], and the push-style [`ReplyParser`].
//!
//! ## Parsing rules (RFC 5321 section 4.2)
//!
//! * Every line starts with a three-digit code ([`ReplyCode::new`] must accept it, else
//!   [`ReplyError::BadCode`]), followed by `-` (more lines follow), a space (last line), or nothing
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn code(n: u16) -> ReplyCode {
        ReplyCode::new(n).unwrap()
    }

    #[test]
    fn wire_lines_give_each_line_its_code_and_separator() {
        let multi = Reply::new(code(250), None, "mx greets you\nPIPELINING\nSIZE 10");
        let lines: Vec<String> = multi.wire_lines().map(|l| l.to_string()).collect();
        assert_eq!(
            lines,
            ["250-mx greets you", "250-PIPELINING", "250 SIZE 10"]
        );
        let enhanced = Reply::new(
            code(550),
            Some(EnhancedCode {
                class: 5,
                subject: 1,
                detail: 1,
            }),
            "no such user\ntry again",
        );
        let lines: Vec<String> = enhanced.wire_lines().map(|l| l.to_string()).collect();
        assert_eq!(lines, ["550-5.1.1 no such user", "550 5.1.1 try again"]);
        let empty = Reply::new(code(354), None, "");
        let lines: Vec<String> = empty.wire_lines().map(|l| l.to_string()).collect();
        assert_eq!(lines, ["354 "]);
    }

    fn reply(n: u16, enhanced: Option<(u8, u16, u16)>, text: &str) -> Reply {
        Reply::new(
            code(n),
            enhanced.map(|(class, subject, detail)| EnhancedCode {
                class,
                subject,
                detail,
            }),
            text,
        )
    }

    /// Push every chunk fully, collecting replies; checks the `consumed` contract on the way.
    fn parse_chunks<'a>(
        parser: &mut ReplyParser,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Vec<Reply>, ReplyError> {
        let mut out = Vec::new();
        for mut chunk in chunks {
            while !chunk.is_empty() {
                let pushed = parser.push(chunk)?;
                assert!(pushed.consumed > 0 && pushed.consumed <= chunk.len());
                if pushed.reply.is_none() {
                    assert_eq!(pushed.consumed, chunk.len());
                }
                chunk = &chunk[pushed.consumed..];
                out.extend(pushed.reply);
            }
        }
        Ok(out)
    }

    fn parse_all(input: &[u8]) -> Result<Vec<Reply>, ReplyError> {
        parse_chunks(&mut ReplyParser::default(), [input])
    }

    fn parse_one(input: &[u8]) -> Result<Reply, ReplyError> {
        let mut parser = ReplyParser::default();
        let pushed = parser.push(input)?;
        assert_eq!(pushed.consumed, input.len(), "one reply expected");
        assert!(parser.is_idle());
        Ok(pushed.reply.expect("a complete reply"))
    }

    fn error_of(input: &[u8]) -> ReplyError {
        parse_all(input).expect_err("an error")
    }

    fn small_limits() -> ReplyLimits {
        ReplyLimits {
            max_line_len: 32,
            max_lines: 4,
            max_reply_bytes: 100,
        }
    }

    #[test]
    fn single_line() {
        let r = parse_one(b"220 mx.example ESMTP ready\r\n").unwrap();
        assert_eq!(r, reply(220, None, "mx.example ESMTP ready"));
        assert!(!r.is_multiline());
        assert_eq!(r.first_line(), "mx.example ESMTP ready");
        assert_eq!(r.to_string(), "220 mx.example ESMTP ready");
    }

    #[test]
    fn multi_line() {
        let r = parse_one(b"250-mx.example\r\n250-PIPELINING\r\n250-\r\n250 SIZE 100\r\n").unwrap();
        assert_eq!(r, reply(250, None, "mx.example\nPIPELINING\n\nSIZE 100"));
        assert!(r.is_multiline());
        assert_eq!(
            r.lines().collect::<Vec<_>>(),
            ["mx.example", "PIPELINING", "", "SIZE 100"]
        );
        assert_eq!(r.first_line(), "mx.example");
    }

    #[test]
    fn code_alone_is_a_final_line_with_empty_text() {
        assert_eq!(parse_one(b"250\r\n").unwrap(), reply(250, None, ""));
        assert_eq!(parse_one(b"250 \r\n").unwrap(), reply(250, None, ""));
        assert_eq!(
            parse_one(b"250-a\r\n250\r\n").unwrap(),
            reply(250, None, "a\n")
        );
        assert_eq!(parse_one(b"354\n").unwrap(), reply(354, None, ""));
    }

    #[test]
    fn bare_lf_and_lone_cr() {
        assert_eq!(
            parse_one(b"250-a\n250-b\r\n250 c\n").unwrap(),
            reply(250, None, "a\nb\nc")
        );
        // A CR not followed by LF is text; only the CR just before LF is dropped.
        assert_eq!(
            parse_one(b"250 a\rb\r\r\n").unwrap(),
            reply(250, None, "a\rb\r")
        );
        // The CR before the LF is dropped even when split from it.
        let mut p = ReplyParser::default();
        let replies = parse_chunks(&mut p, [&b"250 ok\r"[..], b"\n"]).unwrap();
        assert_eq!(replies, [reply(250, None, "ok")]);
    }

    #[test]
    fn consumed_stops_after_the_first_reply() {
        let input = b"250 one\r\n251-two\r\n251 two\r\n354 go\r\n";
        let mut p = ReplyParser::default();
        let pushed = p.push(input).unwrap();
        assert_eq!(pushed.consumed, 9);
        assert_eq!(pushed.reply, Some(reply(250, None, "one")));
        assert!(p.is_idle());
        let pushed = p.push(&input[9..]).unwrap();
        assert_eq!(pushed.consumed, 18);
        assert_eq!(pushed.reply, Some(reply(251, None, "two\ntwo")));
        let pushed = p.push(&input[27..]).unwrap();
        assert_eq!(pushed.consumed, 8);
        assert_eq!(pushed.reply, Some(reply(354, None, "go")));
        assert_eq!(
            p.push(b"").unwrap(),
            Pushed {
                consumed: 0,
                reply: None
            }
        );
        assert!(p.is_idle());
    }

    #[test]
    fn partial_input_is_held_and_not_idle() {
        let mut p = ReplyParser::default();
        assert!(p.is_idle());
        let pushed = p.push(b"25").unwrap();
        assert_eq!(
            pushed,
            Pushed {
                consumed: 2,
                reply: None
            }
        );
        assert!(!p.is_idle());
        p.reset();
        assert!(p.is_idle());
        // A completed continuation line alone also makes the parser non-idle.
        assert_eq!(p.push(b"250-a\r\n").unwrap().reply, None);
        assert!(!p.is_idle());
        p.reset();
        assert!(p.is_idle());
        // After reset, the forgotten part is not glued to the next reply.
        assert_eq!(
            p.push(b"221 bye\r\n").unwrap().reply,
            Some(reply(221, None, "bye"))
        );
    }

    const STREAM: &[u8] = b"220-mx.example ESMTP\r\n220 2.0.0 ready\r\n\
        250-mx.example\r\n250-PIPELINING\n250-SIZE 1000\r\n250 8BITMIME\r\n\
        550-5.1.1 no such user\r\n550 5.1.1 really\r\n354\r\n421 4.4.2 a\rb bye\r\n";

    fn stream_expected() -> Vec<Reply> {
        vec![
            reply(220, None, "mx.example ESMTP\nready"),
            reply(250, None, "mx.example\nPIPELINING\nSIZE 1000\n8BITMIME"),
            reply(550, Some((5, 1, 1)), "no such user\nreally"),
            reply(354, None, ""),
            reply(421, Some((4, 4, 2)), "a\rb bye"),
        ]
    }

    #[test]
    fn every_split_gives_the_same_replies() {
        let expected = stream_expected();
        assert_eq!(parse_all(STREAM).unwrap(), expected);
        // One byte at a time.
        let mut p = ReplyParser::default();
        assert_eq!(parse_chunks(&mut p, STREAM.chunks(1)).unwrap(), expected);
        assert!(p.is_idle());
        // Every two-way split, with one reused parser.
        for at in 0..=STREAM.len() {
            let (a, b) = STREAM.split_at(at);
            assert_eq!(
                parse_chunks(&mut p, [a, b]).unwrap(),
                expected,
                "split at {at}"
            );
            assert!(p.is_idle());
        }
        // Every three-way split with a fresh parser for a shorter stream.
        let short = &STREAM[..60];
        let want = parse_all(short).unwrap();
        for i in 0..=short.len() {
            for j in i..=short.len() {
                let mut p = ReplyParser::default();
                let got = parse_chunks(&mut p, [&short[..i], &short[i..j], &short[j..]]).unwrap();
                assert_eq!(got, want, "splits at {i}, {j}");
            }
        }
    }

    #[test]
    fn enhanced_codes_are_parsed_and_stripped() {
        let r = parse_one(b"250 2.1.0 Ok\r\n").unwrap();
        assert_eq!(r, reply(250, Some((2, 1, 0)), "Ok"));
        assert_eq!(r.to_string(), "250 2.1.0 Ok");
        // Stripped from every line carrying one; taken from the first.
        let r = parse_one(b"550-5.7.1 first\r\n550-5.7.2 second\r\n550 plain\r\n").unwrap();
        assert_eq!(r, reply(550, Some((5, 7, 1)), "first\nsecond\nplain"));
        // Code followed by the end of the line.
        assert_eq!(
            parse_one(b"250 2.0.0\r\n").unwrap(),
            reply(250, Some((2, 0, 0)), "")
        );
        // Three-digit subject and detail.
        assert_eq!(
            parse_one(b"451 4.123.999 later\r\n").unwrap(),
            reply(451, Some((4, 123, 999)), "later")
        );
        // Only one following space is removed.
        assert_eq!(
            parse_one(b"250 2.0.0  two spaces\r\n").unwrap(),
            reply(250, Some((2, 0, 0)), " two spaces")
        );
        // A later line's code does not set `enhanced` when the first line has none.
        assert_eq!(
            parse_one(b"250-hello\r\n250 2.0.0 ok\r\n").unwrap(),
            reply(250, None, "hello\nok")
        );
    }

    #[test]
    fn enhanced_codes_not_recognised() {
        // Class differs from the reply code's first digit.
        assert_eq!(
            parse_one(b"554 2.0.0 ready\r\n").unwrap(),
            reply(554, None, "2.0.0 ready")
        );
        assert_eq!(
            parse_one(b"354 3.0.0 go\r\n").unwrap(),
            reply(354, None, "3.0.0 go")
        );
        for text in [
            "2.0 ready",
            "2.0.0ok",
            "2.0.0.0 x",
            "2.1234.0 x",
            "2.0.1234 x",
            "2..0 x",
            "2.0. x",
            "x2.0.0 x",
            " 2.0.0 x",
            "2.0.0\tx",
        ] {
            let line = format!("250 {text}\r\n");
            assert_eq!(
                parse_one(line.as_bytes()).unwrap(),
                reply(250, None, text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn invalid_codes() {
        for line in [
            &b"099 x\r\n"[..],
            b"600 x\r\n",
            b"199 x\r\n",
            b"260 x\r\n",
            b"2x0 x\r\n",
            b"-25 x\r\n",
            b"25\r\n",
            b"2\r\n",
            b"\r\n",
            b"\n",
            b"hello there\r\n",
            b"\xff\xfe\xfd x\r\n",
        ] {
            assert_eq!(error_of(line), ReplyError::BadCode, "{line:?}");
        }
        // A bad continuation line is refused too.
        assert_eq!(error_of(b"250-ok\r\n25x ok\r\n"), ReplyError::BadCode);
    }

    #[test]
    fn separators() {
        for line in [
            &b"250_x\r\n"[..],
            b"2500 x\r\n",
            b"250\tx\r\n",
            b"250x\r\n",
            b"250\rx\r\n",
        ] {
            assert_eq!(error_of(line), ReplyError::BadSeparator, "{line:?}");
        }
    }

    #[test]
    fn inconsistent_codes() {
        assert_eq!(
            error_of(b"250-a\r\n251 b\r\n"),
            ReplyError::InconsistentCode {
                first: 250,
                found: 251
            }
        );
        assert_eq!(
            error_of(b"220-mx\r\n220-mx\r\n250 ok\r\n"),
            ReplyError::InconsistentCode {
                first: 220,
                found: 250
            }
        );
    }

    #[test]
    fn non_utf8_text_is_replaced() {
        let r = parse_one(b"250-caf\xc3\xa9\r\n250 bad \xff\xfe end\r\n").unwrap();
        assert_eq!(r.text(), "caf\u{e9}\nbad \u{fffd}\u{fffd} end");
        assert_eq!(parse_one(b"250 \x80\r\n").unwrap().text(), "\u{fffd}");
    }

    #[test]
    fn errors_are_sticky_until_reset() {
        let mut p = ReplyParser::default();
        assert_eq!(p.push(b"hello\r\n"), Err(ReplyError::BadCode));
        assert!(!p.is_idle());
        assert_eq!(p.push(b"250 ok\r\n"), Err(ReplyError::BadCode));
        p.reset();
        assert!(p.is_idle());
        assert_eq!(
            p.push(b"250 ok\r\n").unwrap().reply,
            Some(reply(250, None, "ok"))
        );
    }

    #[test]
    fn line_length_limit_is_exact() {
        let limits = small_limits();
        // 32 bytes including CRLF is accepted.
        let ok = format!("250 {}\r\n", "a".repeat(26));
        assert_eq!(ok.len(), 32);
        let mut p = ReplyParser::new(limits);
        assert!(p.push(ok.as_bytes()).unwrap().reply.is_some());
        // Byte by byte as well.
        assert_eq!(
            parse_chunks(&mut p, ok.as_bytes().chunks(1)).unwrap().len(),
            1
        );
        // 33 bytes is refused, whole or split.
        let long = format!("250 {}\r\n", "a".repeat(27));
        let mut p = ReplyParser::new(limits);
        assert_eq!(
            p.push(long.as_bytes()),
            Err(ReplyError::LineTooLong { limit: 32 })
        );
        for at in 0..long.len() {
            let mut p = ReplyParser::new(limits);
            let (a, b) = long.as_bytes().split_at(at);
            assert_eq!(
                parse_chunks(&mut p, [a, b]),
                Err(ReplyError::LineTooLong { limit: 32 }),
                "split at {at}"
            );
        }
        // Without any line end, the error comes once 32 bytes are held (no room for the LF).
        let mut p = ReplyParser::new(limits);
        assert!(p.push(&[b'a'; 31]).is_ok());
        assert_eq!(p.push(b"a"), Err(ReplyError::LineTooLong { limit: 32 }));
    }

    #[test]
    fn huge_line_without_newline_is_refused_early() {
        let limits = ReplyLimits::default();
        let mut p = ReplyParser::new(limits);
        p.push(b"220-").unwrap();
        let chunk = vec![b'a'; 64 * 1024];
        let mut error = None;
        for _ in 0..160 {
            match p.push(&chunk) {
                Ok(pushed) => assert_eq!(pushed.consumed, chunk.len()),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
            assert!(p.buffered_capacity() < 2 * limits.max_line_len);
        }
        assert_eq!(
            error,
            Some(ReplyError::LineTooLong {
                limit: limits.max_line_len
            })
        );
        assert!(p.buffered_capacity() < 2 * limits.max_line_len);

        // Small pieces: the error comes as soon as the limit is passed.
        let mut p = ReplyParser::new(limits);
        let mut fed = 0;
        let piece = [b'a'; 100];
        let error = loop {
            match p.push(&piece) {
                Ok(_) => fed += piece.len(),
                Err(e) => break e,
            }
            assert!(p.buffered_capacity() < 2 * limits.max_line_len);
        };
        assert_eq!(error, ReplyError::LineTooLong { limit: 4096 });
        assert!(fed < limits.max_line_len);
    }

    #[test]
    fn too_many_lines() {
        let mut p = ReplyParser::new(small_limits());
        assert!(
            p.push(b"250-1\r\n250-2\r\n250-3\r\n250 4\r\n")
                .unwrap()
                .reply
                .is_some()
        );
        assert_eq!(
            p.push(b"250-1\r\n250-2\r\n250-3\r\n250-4\r\n250 5\r\n"),
            Err(ReplyError::TooManyLines { limit: 4 })
        );

        let limits = ReplyLimits::default();
        let mut p = ReplyParser::new(limits);
        let mut error = None;
        for i in 0..100_000 {
            match p.push(b"220-more\r\n") {
                Ok(pushed) => assert!(pushed.reply.is_none()),
                Err(e) => {
                    assert_eq!(i, limits.max_lines, "error on the first extra line");
                    error = Some(e);
                    break;
                }
            }
        }
        assert_eq!(error, Some(ReplyError::TooManyLines { limit: 256 }));
        assert!(p.buffered_capacity() <= 2 * 256 * 10);
    }

    #[test]
    fn reply_size_limit() {
        let limits = ReplyLimits {
            max_line_len: 32,
            max_lines: 100,
            max_reply_bytes: 100,
        };
        // 8 lines of 11 bytes and one of 12: exactly 100 bytes is accepted.
        let mut exact = b"250-12345\r\n".repeat(8);
        exact.extend_from_slice(b"250 123456\r\n");
        assert_eq!(exact.len(), 100);
        // 10 lines of 12 bytes: 120 bytes is refused.
        let mut big = b"250-123456\r\n".repeat(9);
        big.extend_from_slice(b"250 123456\r\n");
        let big = &big[..];
        let mut p = ReplyParser::new(limits);
        assert_eq!(parse_chunks(&mut p, [&exact[..]]).unwrap().len(), 1);
        assert_eq!(parse_chunks(&mut p, exact.chunks(7)).unwrap().len(), 1);
        // 120 bytes is refused, whole or split.
        assert_eq!(big.len(), 120);
        assert_eq!(p.push(big), Err(ReplyError::TooLarge { limit: 100 }));
        for at in 0..big.len() {
            let mut p = ReplyParser::new(limits);
            let (a, b) = big.split_at(at);
            assert_eq!(
                parse_chunks(&mut p, [a, b]),
                Err(ReplyError::TooLarge { limit: 100 }),
                "split at {at}"
            );
        }
        // A partial line that cannot fit is refused before its line end arrives.
        let mut p = ReplyParser::new(limits);
        let head = b"250-12345678901234567890123456\r\n".repeat(3); // 96 bytes
        assert!(p.push(&head).unwrap().reply.is_none());
        assert!(p.push(b"250").is_ok()); // 99 bytes held; one more (LF) would fit
        assert_eq!(p.push(b" "), Err(ReplyError::TooLarge { limit: 100 }));
    }

    #[test]
    fn warm_parser_keeps_its_buffers() {
        let mut p = ReplyParser::default();
        let input = b"250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n";
        parse_chunks(&mut p, input.chunks(5)).unwrap();
        let capacity = p.buffered_capacity();
        assert!(capacity > 0);
        for _ in 0..10 {
            parse_chunks(&mut p, input.chunks(5)).unwrap();
            assert_eq!(p.buffered_capacity(), capacity);
        }
        p.reset();
        assert_eq!(p.buffered_capacity(), capacity);
    }

    #[test]
    fn limits_and_default() {
        let p = ReplyParser::default();
        assert_eq!(p.limits(), ReplyLimits::default());
        assert_eq!(ReplyParser::new(small_limits()).limits(), small_limits());
    }

    /// A generated reply: code, enhanced code, line texts (none starting with a digit, so no text
    /// looks like an enhanced code), and whether each line ends with a bare LF.
    #[derive(Debug, Clone)]
    struct Generated {
        code: u16,
        enhanced: Option<(u16, u16)>,
        lines: Vec<(String, bool)>,
        bare_code_last: bool,
    }

    impl Generated {
        fn wire(&self, out: &mut Vec<u8>) {
            let n = self.lines.len();
            for (i, (text, bare_lf)) in self.lines.iter().enumerate() {
                let last = i + 1 == n;
                out.extend_from_slice(self.code.to_string().as_bytes());
                if last && self.bare_code_last && text.is_empty() && self.enhanced.is_none() {
                    // `250\r\n`
                } else {
                    out.push(if last { b' ' } else { b'-' });
                    if let Some((s, d)) = self.enhanced {
                        out.extend_from_slice(format!("{}.{s}.{d}", self.code / 100).as_bytes());
                        if !text.is_empty() {
                            out.push(b' ');
                        }
                    }
                    out.extend_from_slice(text.as_bytes());
                }
                out.extend_from_slice(if *bare_lf { b"\n" } else { b"\r\n" });
            }
        }

        fn expected(&self) -> Reply {
            let text: Vec<&str> = self.lines.iter().map(|(t, _)| t.as_str()).collect();
            Reply::new(
                code(self.code),
                self.enhanced.map(|(subject, detail)| EnhancedCode {
                    class: (self.code / 100) as u8,
                    subject,
                    detail,
                }),
                text.join("\n"),
            )
        }
    }

    fn generated() -> impl Strategy<Value = Generated> {
        (
            2u16..=5,
            0u16..=5,
            0u16..=9,
            proptest::option::of((0u16..=999, 0u16..=999)),
            proptest::collection::vec(("([a-zA-Z][ -~]{0,20})?", any::<bool>()), 1..5),
            any::<bool>(),
        )
            .prop_map(|(a, b, c, enhanced, lines, bare_code_last)| {
                let code = a * 100 + b * 10 + c;
                Generated {
                    code,
                    // Only classes 2, 4 and 5 carry enhanced codes.
                    enhanced: if matches!(a, 2 | 4 | 5) {
                        enhanced
                    } else {
                        None
                    },
                    lines,
                    bare_code_last,
                }
            })
    }

    proptest! {
        #[test]
        fn any_chunking_gives_the_same_replies(
            replies in proptest::collection::vec(generated(), 1..6),
            cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..10),
        ) {
            let mut wire = Vec::new();
            for r in &replies {
                r.wire(&mut wire);
            }
            let expected: Vec<Reply> = replies.iter().map(Generated::expected).collect();
            prop_assert_eq!(&parse_all(&wire).unwrap(), &expected);

            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut prev = 0;
            for cut in cuts {
                chunks.push(&wire[prev..cut]);
                prev = cut;
            }
            chunks.push(&wire[prev..]);
            let mut p = ReplyParser::default();
            prop_assert_eq!(&parse_chunks(&mut p, chunks).unwrap(), &expected);
            prop_assert!(p.is_idle());
            prop_assert_eq!(&parse_chunks(&mut p, wire.chunks(1)).unwrap(), &expected);
        }

        #[test]
        fn random_bytes_never_panic(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8),
            with_prefix in any::<bool>(),
        ) {
            let mut p = ReplyParser::new(small_limits());
            if with_prefix {
                let _ = p.push(b"250-");
            }
            for chunk in &chunks {
                let mut chunk = &chunk[..];
                while !chunk.is_empty() {
                    match p.push(chunk) {
                        Ok(pushed) => {
                            prop_assert!(pushed.consumed > 0 && pushed.consumed <= chunk.len());
                            chunk = &chunk[pushed.consumed..];
                        }
                        Err(_) => {
                            p.reset();
                            prop_assert!(p.is_idle());
                            chunk = &chunk[1..];
                        }
                    }
                    prop_assert!(p.buffered_capacity() <= 4 * 100);
                }
            }
        }

        #[test]
        fn random_reply_like_lines_never_panic(
            lines in proptest::collection::vec("[0-9]{0,4}[- ]?[0-9.]{0,8}[ a-z\r]{0,5}\r?\n?", 0..8),
        ) {
            let wire: Vec<u8> = lines.concat().into_bytes();
            let whole = parse_all(&wire);
            let mut p = ReplyParser::default();
            let bytewise = parse_chunks(&mut p, wire.chunks(1));
            prop_assert_eq!(whole, bytewise);
        }
    }
}
