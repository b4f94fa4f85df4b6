//! Typed SMTP commands and their validated arguments.
//!
//! Every argument type refuses, at construction, any byte that could end the command line or start
//! another one (CR, LF, NUL, other C0 controls, DEL) and anything the grammar forbids. A value of
//! these types can therefore never inject a command: the encoder always writes exactly
//! one CRLF-terminated line.
//!
//! ## Validation rules in short
//!
//! * Nothing is trimmed: leading or trailing spaces are refused like any other space.
//! * Bytes that could break the line (C0 controls, DEL; for addresses also the C1 controls and
//!   U+2028 / U+2029) are reported first, as [`ArgumentError::ForbiddenByte`] with the index of the
//!   first such byte in the argument exactly as given (for a non-ASCII character: the first byte
//!   of its UTF-8 encoding and its index).
//! * Then come bracket problems, then length, then the grammar.
//!
//! The limits are [`MAX_DOMAIN_LEN`], [`MAX_LABEL_LEN`], [`MAX_ADDRESS_LEN`], [`MAX_ENVID_LEN`]
//! and [`MAX_ORCPT_LEN`].

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use core::net::{Ipv4Addr, Ipv6Addr};

use bytes::BytesMut;

use crate::error::{ArgumentError, Field, InvalidInputError};
use crate::state::SmtpOp;

/// The longest [`Domain`] in bytes (RFC 5321 section 4.5.3.1.2).
pub const MAX_DOMAIN_LEN: usize = 255;

/// The longest label of a [`Domain`] name in bytes (RFC 1035).
pub const MAX_LABEL_LEN: usize = 63;

/// The longest [`Address`] in bytes, without angle brackets: a path is at most 256 bytes
/// including `<` and `>` (RFC 5321 section 4.5.3.1.3), so the address is at most 254.
pub const MAX_ADDRESS_LEN: usize = 254;

/// The longest [`EnvelopeId`] in characters, before xtext encoding (RFC 3461 section 4.4).
pub const MAX_ENVID_LEN: usize = 100;

/// The longest [`OriginalRecipient`] in bytes, before xtext encoding.
pub const MAX_ORCPT_LEN: usize = 256;

fn refuse(field: Field, reason: ArgumentError) -> InvalidInputError {
    InvalidInputError::argument(field, reason)
}

fn forbidden(field: Field, byte: u8, index: usize) -> InvalidInputError {
    refuse(field, ArgumentError::ForbiddenByte { byte, index })
}

fn syntax(field: Field, what: &'static str) -> InvalidInputError {
    refuse(field, ArgumentError::Syntax(what))
}

/// Refuse the first byte of `s` outside `0x21..=0x7E` (controls, space, DEL, non-ASCII).
fn check_graphic_ascii(s: &str, field: Field) -> Result<(), InvalidInputError> {
    match s.bytes().position(|b| !(0x21..=0x7e).contains(&b)) {
        Some(i) => Err(forbidden(field, s.as_bytes()[i], i)),
        None => Ok(()),
    }
}

/// Refuse the first control character of `s`: C0, DEL, C1 (all of `char::is_control`) and the
/// Unicode line and paragraph separators. Reports the first byte of the character.
fn check_controls(s: &str, field: Field) -> Result<(), InvalidInputError> {
    match s
        .char_indices()
        .find(|&(_, c)| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
    {
        Some((i, _)) => Err(forbidden(field, s.as_bytes()[i], i)),
        None => Ok(()),
    }
}

/// `atext` of RFC 5321 / RFC 5322, ASCII part.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// Check a domain name (not a literal). `ehlo`: ASCII only, labels at most 63 bytes, no label
/// starting or ending with a hyphen. Otherwise (the domain of an address) non-ASCII characters
/// (IDN U-labels) are allowed and only the shape is checked. `base` is the index of `name` in the
/// argument, for errors.
fn check_domain_name(
    name: &str,
    field: Field,
    base: usize,
    ehlo: bool,
) -> Result<(), InvalidInputError> {
    let bytes = name.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let ok = b.is_ascii_alphanumeric()
            || b == b'-'
            || b == b'_'
            || b == b'.'
            || (!ehlo && !b.is_ascii());
        if !ok {
            return Err(forbidden(field, b, base + i));
        }
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(syntax(
                field,
                "empty label (leading, trailing or doubled dot)",
            ));
        }
        if ehlo {
            if label.len() > MAX_LABEL_LEN {
                return Err(syntax(field, "label longer than 63 bytes"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(syntax(field, "label starts or ends with a hyphen"));
            }
        }
    }
    Ok(())
}

/// Check the text between `[` and `]` of an address literal (RFC 5321 section 4.1.3): IPv4,
/// `IPv6:` + an IPv6 address, or `tag:content` (general address literal). `base` is the index
/// of `inner` in the argument.
fn check_address_literal(inner: &str, field: Field, base: usize) -> Result<(), InvalidInputError> {
    if inner.is_empty() {
        return Err(syntax(field, "empty address literal"));
    }
    let Some((tag, content)) = inner.split_once(':') else {
        return match inner.parse::<Ipv4Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(syntax(field, "invalid IPv4 address literal")),
        };
    };
    if tag.eq_ignore_ascii_case("IPv6") {
        return match content.parse::<Ipv6Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(syntax(field, "invalid IPv6 address literal")),
        };
    }
    // General-address-literal = Standardized-tag ":" 1*dcontent; Standardized-tag = Ldh-str.
    let tag_ok = tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && tag
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if !tag_ok {
        return Err(syntax(field, "invalid address literal tag"));
    }
    if content.is_empty() {
        return Err(syntax(field, "empty address literal"));
    }
    let content_base = base + tag.len() + 1;
    for (i, b) in content.bytes().enumerate() {
        // dcontent = %d33-90 / %d94-126: printable ASCII except `[`, `\`, `]`.
        if !(0x21..=0x7e).contains(&b) || b == b'[' || b == b'\\' || b == b']' {
            return Err(forbidden(field, b, content_base + i));
        }
    }
    Ok(())
}

/// Check `[literal]` or a domain name; `base` is the index of `s` in the argument.
fn check_domain_or_literal(
    s: &str,
    field: Field,
    base: usize,
    ehlo: bool,
) -> Result<(), InvalidInputError> {
    match s.strip_prefix('[') {
        Some(rest) => match rest.strip_suffix(']') {
            Some(inner) => check_address_literal(inner, field, base + 1),
            None => Err(syntax(field, "unterminated address literal")),
        },
        None => check_domain_name(s, field, base, ehlo),
    }
}

/// Check a dot-string local part: `atext`, dots and (SMTPUTF8) non-ASCII characters. Empty,
/// leading, trailing and doubled dots are tolerated (they occur in the wild and cannot break
/// the line). `base` is the index of `local` in the argument.
fn check_dot_string(local: &str, field: Field, base: usize) -> Result<(), InvalidInputError> {
    if local.is_empty() {
        return Err(syntax(field, "empty local part"));
    }
    for (i, b) in local.bytes().enumerate() {
        if !(is_atext(b) || b == b'.' || !b.is_ascii()) {
            return Err(forbidden(field, b, base + i));
        }
    }
    Ok(())
}

/// Check a mailbox (`local@domain`, or `Postmaster` when allowed) without angle brackets. It is
/// non-empty and free of control characters and angle brackets. `base` is its index in the
/// argument.
fn check_mailbox(a: &str, field: Field, base: usize) -> Result<(), InvalidInputError> {
    let bytes = a.as_bytes();
    let at = if bytes[0] == b'"' {
        // Quoted-string = DQUOTE *(qtextSMTP / quoted-pairSMTP) DQUOTE (RFC 5321, RFC 6531).
        let mut i = 1;
        loop {
            match bytes.get(i) {
                None => return Err(syntax(field, "unterminated quoted local part")),
                Some(b'"') => break,
                Some(b'\\') => match bytes.get(i + 1) {
                    Some(b) if (0x20..=0x7e).contains(b) => i += 2,
                    _ => {
                        return Err(syntax(
                            field,
                            "a backslash must escape a printable ASCII character",
                        ));
                    }
                },
                Some(_) => i += 1,
            }
        }
        match bytes.get(i + 1) {
            Some(b'@') => i + 1,
            None => return Err(syntax(field, "missing @")),
            Some(_) => return Err(syntax(field, "a quoted local part must be followed by @")),
        }
    } else {
        match memchr::memchr(b'@', bytes) {
            Some(at) => {
                check_dot_string(&a[..at], field, base)?;
                at
            }
            None => {
                // RFC 5321 section 4.1.1.3: `RCPT TO:<Postmaster>`. Not a valid reverse-path.
                if field != Field::ReversePath && a.eq_ignore_ascii_case("postmaster") {
                    return Ok(());
                }
                check_dot_string(a, field, base)?;
                return Err(syntax(field, "missing @"));
            }
        }
    };
    let domain = &a[at + 1..];
    if domain.is_empty() {
        return Err(syntax(field, "empty domain"));
    }
    check_domain_or_literal(domain, field, base + at + 1, false)
}

/// Where an encoder writes: a buffer, or a counter that only measures (so a command's length is
/// known from the encoder itself, never from a second formula that could drift from it).
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for BytesMut {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Counts the bytes an encoder would write.
struct Count(usize);

impl Sink for Count {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

/// Append `n` in decimal, without allocating.
fn put_u64(out: &mut impl Sink, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put(&buf[i..]);
}

/// The argument of EHLO / HELO / LHLO: a domain name (ASCII, LDH labels, `_` tolerated) or an
/// address literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Domain(String);

impl Domain {
    /// Validate a domain or address literal.
    ///
    /// * A domain name is ASCII letters, digits, `-` and `_` in dot-separated labels: no empty
    ///   label, so **no trailing dot** (RFC 5321 has no root label in `Domain`); each label at
    ///   most [`MAX_LABEL_LEN`] bytes and not starting or ending with `-`. Write an IDN in its
    ///   A-label (`xn--`) form: EHLO is ASCII even with SMTPUTF8 (RFC 6531 section 3.7.1).
    /// * An address literal is `[d.d.d.d]` (a valid IPv4 address), `[IPv6:...]` (a valid IPv6
    ///   address, tag case-insensitive) or `[tag:content]` with content of printable ASCII except
    ///   `[`, `\`, `]`.
    /// * At most [`MAX_DOMAIN_LEN`] bytes.
    ///
    /// Errors (field [`Field::EhloDomain`]): [`ArgumentError::Empty`];
    /// [`ArgumentError::ForbiddenByte`] for the first control, DEL or space (checked before
    /// anything else), and later for the first byte a domain name or literal may not hold
    /// (including non-ASCII); [`ArgumentError::TooLong`]; [`ArgumentError::Syntax`] for the shape.
    pub fn new(s: &str) -> Result<Domain, InvalidInputError> {
        const F: Field = Field::EhloDomain;
        if s.is_empty() {
            return Err(refuse(F, ArgumentError::Empty));
        }
        if let Some(i) = s.bytes().position(|b| b <= b' ' || b == 0x7f) {
            return Err(forbidden(F, s.as_bytes()[i], i));
        }
        if s.len() > MAX_DOMAIN_LEN {
            return Err(refuse(
                F,
                ArgumentError::TooLong {
                    max: MAX_DOMAIN_LEN,
                },
            ));
        }
        check_domain_or_literal(s, F, 0, true)?;
        Ok(Domain(s.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated envelope address (the text between `<` and `>`), e.g. `user@example.com`.
///
/// Accepts `user@example.com` or `<user@example.com>`; refuses CR, LF, NUL, other C0, DEL,
/// unbalanced or inner `<` `>`, unquoted spaces, a missing `@` (except `Postmaster`, RFC 5321
/// section 4.1.1.3), and paths longer than 256 bytes. Non-ASCII is allowed and reported by
/// [`Address::needs_smtputf8`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address(String);

impl Address {
    /// Validate an address. `field` says which argument it is, for the error.
    ///
    /// In order, the errors are:
    ///
    /// 1. [`ArgumentError::Empty`] for `""`.
    /// 2. [`ArgumentError::ForbiddenByte`] for the first control character (C0, DEL, C1) or
    ///    U+2028 / U+2029, anywhere, even inside quotes.
    /// 3. [`ArgumentError::UnbalancedBrackets`] when only one of a leading `<` and a trailing `>`
    ///    is there, or when `<` or `>` appears inside (even quoted: a naive server could end the
    ///    path there and read the rest as parameters).
    /// 4. [`ArgumentError::Empty`] for `<>` (use [`ReversePath::Null`] for the null sender).
    /// 5. [`ArgumentError::TooLong`] beyond [`MAX_ADDRESS_LEN`] bytes without brackets.
    /// 6. The grammar (RFC 5321 section 4.1.2 with RFC 6531): a local part that is either a
    ///    dot-string (`atext`, dots, non-ASCII; a byte outside these, such as an unquoted space,
    ///    is an [`ArgumentError::ForbiddenByte`]; empty, leading, trailing or doubled dots are
    ///    tolerated) or a quoted string (`"john doe"`, backslash escapes a printable ASCII
    ///    character), then `@`, then a domain or an address literal. The domain may be non-ASCII
    ///    (an IDN); its labels must be non-empty and hold letters, digits, `-`, `_` or non-ASCII
    ///    characters; other bytes are [`ArgumentError::ForbiddenByte`]. Shape problems are
    ///    [`ArgumentError::Syntax`]. The local part is not limited to 64 bytes.
    ///
    /// `Postmaster` (any case) without a domain is accepted except for [`Field::ReversePath`]:
    /// RFC 5321 allows it only as a recipient.
    ///
    /// Error indices are into `s` as given, including a leading `<`.
    pub fn new(s: &str, field: Field) -> Result<Address, InvalidInputError> {
        if s.is_empty() {
            return Err(refuse(field, ArgumentError::Empty));
        }
        check_controls(s, field)?;
        let (inner, base) = match (s.starts_with('<'), s.ends_with('>')) {
            (true, true) => (&s[1..s.len() - 1], 1),
            (false, false) => (s, 0),
            _ => return Err(refuse(field, ArgumentError::UnbalancedBrackets)),
        };
        if inner.bytes().any(|b| b == b'<' || b == b'>') {
            return Err(refuse(field, ArgumentError::UnbalancedBrackets));
        }
        if inner.is_empty() {
            return Err(refuse(field, ArgumentError::Empty));
        }
        if inner.len() > MAX_ADDRESS_LEN {
            return Err(refuse(
                field,
                ArgumentError::TooLong {
                    max: MAX_ADDRESS_LEN,
                },
            ));
        }
        check_mailbox(inner, field, base)?;
        Ok(Address(inner.to_owned()))
    }

    /// The address, without angle brackets.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when the address holds non-ASCII characters, so the transaction needs SMTPUTF8.
    pub fn needs_smtputf8(&self) -> bool {
        !self.0.is_ascii()
    }
}

/// The MAIL FROM argument: an address or the null path `<>` (for bounces).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReversePath {
    /// `<>`.
    Null,
    /// `<address>`.
    Address(Address),
}

impl ReversePath {
    /// Parse a sender: `""` or `"<>"` is the null path, anything else must be a valid [`Address`].
    ///
    /// Errors are those of [`Address::new`] with [`Field::ReversePath`]; `Postmaster` without a
    /// domain is refused (`missing @`).
    pub fn new(s: &str) -> Result<ReversePath, InvalidInputError> {
        if s.is_empty() || s == "<>" {
            return Ok(ReversePath::Null);
        }
        Address::new(s, Field::ReversePath).map(ReversePath::Address)
    }

    /// True when the path holds non-ASCII characters.
    pub fn needs_smtputf8(&self) -> bool {
        match self {
            ReversePath::Null => false,
            ReversePath::Address(a) => a.needs_smtputf8(),
        }
    }
}

/// `BODY=` (RFC 6152, RFC 3030).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyType {
    /// `BODY=7BIT`.
    SevenBit,
    /// `BODY=8BITMIME`.
    EightBitMime,
    /// `BODY=BINARYMIME` (needs CHUNKING).
    BinaryMime,
}

/// `RET=` (RFC 3461): what a DSN returns of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DsnReturn {
    /// `RET=FULL`.
    Full,
    /// `RET=HDRS`.
    Headers,
}

/// `NOTIFY=` (RFC 3461).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Notify {
    /// `NOTIFY=NEVER`.
    Never,
    /// `NOTIFY=` a non-empty combination of SUCCESS, FAILURE, DELAY (in that order on the wire).
    On {
        /// SUCCESS.
        success: bool,
        /// FAILURE.
        failure: bool,
        /// DELAY.
        delay: bool,
    },
}

/// `ENVID=` (RFC 3461): printable ASCII, at most 100 characters; xtext-encoded on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EnvelopeId(String);

impl EnvelopeId {
    /// Validate an envelope id: 1 to [`MAX_ENVID_LEN`] characters of graphic ASCII
    /// (`0x21..=0x7E`).
    ///
    /// RFC 3461 also allows spaces in an envelope id; they are refused here to keep ids simple to
    /// log and compare. Errors (field [`Field::EnvelopeId`]): [`ArgumentError::Empty`],
    /// [`ArgumentError::ForbiddenByte`] for the first space, control, DEL or non-ASCII byte, then
    /// [`ArgumentError::TooLong`].
    pub fn new(s: &str) -> Result<EnvelopeId, InvalidInputError> {
        const F: Field = Field::EnvelopeId;
        if s.is_empty() {
            return Err(refuse(F, ArgumentError::Empty));
        }
        check_graphic_ascii(s, F)?;
        if s.len() > MAX_ENVID_LEN {
            return Err(refuse(F, ArgumentError::TooLong { max: MAX_ENVID_LEN }));
        }
        Ok(EnvelopeId(s.to_owned()))
    }

    /// The id, not encoded.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `ORCPT=rfc822;<xtext address>` (RFC 3461). ASCII addresses only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OriginalRecipient(String);

impl OriginalRecipient {
    /// Validate an original recipient address (ASCII, printable, no spaces).
    ///
    /// Surrounding `<` `>` are removed like for [`Address::new`]. The address must be graphic
    /// ASCII (`0x21..=0x7E`), at most [`MAX_ORCPT_LEN`] bytes, and hold an `@` with text on both
    /// sides (split at the last `@`), or be `Postmaster` (any case).
    ///
    /// Errors (field [`Field::OriginalRecipient`]), in order: [`ArgumentError::Empty`];
    /// [`ArgumentError::ForbiddenByte`] for the first space, control, DEL or non-ASCII byte
    /// (index into `s` as given); [`ArgumentError::UnbalancedBrackets`];
    /// [`ArgumentError::Empty`] for `<>`; [`ArgumentError::TooLong`]; [`ArgumentError::Syntax`].
    pub fn new(s: &str) -> Result<OriginalRecipient, InvalidInputError> {
        const F: Field = Field::OriginalRecipient;
        if s.is_empty() {
            return Err(refuse(F, ArgumentError::Empty));
        }
        check_graphic_ascii(s, F)?;
        let inner = match (s.strip_prefix('<'), s.ends_with('>')) {
            (Some(rest), true) => &rest[..rest.len() - 1],
            (None, false) => s,
            _ => return Err(refuse(F, ArgumentError::UnbalancedBrackets)),
        };
        if inner.bytes().any(|b| b == b'<' || b == b'>') {
            return Err(refuse(F, ArgumentError::UnbalancedBrackets));
        }
        if inner.is_empty() {
            return Err(refuse(F, ArgumentError::Empty));
        }
        if inner.len() > MAX_ORCPT_LEN {
            return Err(refuse(F, ArgumentError::TooLong { max: MAX_ORCPT_LEN }));
        }
        match inner.rfind('@') {
            Some(0) => return Err(syntax(F, "empty local part")),
            Some(at) if at + 1 == inner.len() => return Err(syntax(F, "empty domain")),
            Some(_) => {}
            None if inner.eq_ignore_ascii_case("postmaster") => {}
            None => return Err(syntax(F, "missing @")),
        }
        Ok(OriginalRecipient(inner.to_owned()))
    }

    /// The address, not encoded.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The ESMTP parameters of MAIL FROM, written in this order: SIZE, BODY, SMTPUTF8, RET, ENVID,
/// REQUIRETLS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MailParams {
    /// `SIZE=n` (RFC 1870).
    pub size: Option<u64>,
    /// `BODY=`.
    pub body: Option<BodyType>,
    /// `SMTPUTF8` (RFC 6531).
    pub smtputf8: bool,
    /// `RET=` (RFC 3461).
    pub ret: Option<DsnReturn>,
    /// `ENVID=` (RFC 3461).
    pub envid: Option<EnvelopeId>,
    /// `REQUIRETLS` (RFC 8689).
    pub requiretls: bool,
}

/// The ESMTP parameters of RCPT TO, written in this order: NOTIFY, ORCPT.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RcptParams {
    /// `NOTIFY=`.
    pub notify: Option<Notify>,
    /// `ORCPT=`.
    pub orcpt: Option<OriginalRecipient>,
}

/// A command the engine sends (AUTH lines are written by the SASL exchange).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// `EHLO domain`.
    Ehlo(&'a Domain),
    /// `HELO domain`.
    Helo(&'a Domain),
    /// `LHLO domain` (LMTP).
    Lhlo(&'a Domain),
    /// `STARTTLS`.
    StartTls,
    /// `MAIL FROM:<path> params`.
    MailFrom(&'a ReversePath, &'a MailParams),
    /// `RCPT TO:<address> params`.
    RcptTo(&'a Address, &'a RcptParams),
    /// `DATA`.
    Data,
    /// `BDAT size` or `BDAT size LAST` (the chunk bytes follow, written separately).
    Bdat {
        /// Chunk size in bytes.
        size: u64,
        /// Last chunk.
        last: bool,
    },
    /// `RSET`.
    Rset,
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
}

impl Command<'_> {
    /// Append exactly one CRLF-terminated command line to `out`.
    ///
    /// Parameters are written in the order documented on [`MailParams`] and [`RcptParams`];
    /// `ENVID` and `ORCPT` are xtext-encoded. A [`Notify::On`] with every flag false writes no
    /// `NOTIFY` parameter at all (the server's default applies; it is *not* `NOTIFY=NEVER`).
    /// Nothing is allocated besides growing `out`.
    pub(crate) fn write_to(&self, out: &mut BytesMut) {
        self.encode(out);
    }

    /// [`write_to`](Self::write_to), public only to the fuzz targets (`--cfg fuzzing`).
    #[cfg(fuzzing)]
    pub fn write_for_fuzzing(&self, out: &mut BytesMut) {
        self.write_to(out);
    }

    /// The exact length of the line the engine writes for this command, CRLF included, without
    /// writing it (the engine sizes pipelined flights with it).
    pub fn encoded_len(&self) -> usize {
        let mut count = Count(0);
        self.encode(&mut count);
        count.0
    }

    fn encode(&self, out: &mut impl Sink) {
        match *self {
            Command::Ehlo(d) => {
                out.put(b"EHLO ");
                out.put(d.0.as_bytes());
            }
            Command::Helo(d) => {
                out.put(b"HELO ");
                out.put(d.0.as_bytes());
            }
            Command::Lhlo(d) => {
                out.put(b"LHLO ");
                out.put(d.0.as_bytes());
            }
            Command::StartTls => out.put(b"STARTTLS"),
            Command::MailFrom(path, params) => {
                out.put(b"MAIL FROM:<");
                if let ReversePath::Address(a) = path {
                    out.put(a.0.as_bytes());
                }
                out.put(b">");
                write_mail_params(params, out);
            }
            Command::RcptTo(addr, params) => {
                out.put(b"RCPT TO:<");
                out.put(addr.0.as_bytes());
                out.put(b">");
                write_rcpt_params(params, out);
            }
            Command::Data => out.put(b"DATA"),
            Command::Bdat { size, last } => {
                out.put(b"BDAT ");
                put_u64(out, size);
                if last {
                    out.put(b" LAST");
                }
            }
            Command::Rset => out.put(b"RSET"),
            Command::Noop => out.put(b"NOOP"),
            Command::Quit => out.put(b"QUIT"),
        }
        out.put(b"\r\n");
    }

    /// The operation this command performs.
    pub fn op(&self) -> SmtpOp {
        match self {
            Command::Ehlo(_) => SmtpOp::Ehlo,
            Command::Helo(_) => SmtpOp::Helo,
            Command::Lhlo(_) => SmtpOp::Lhlo,
            Command::StartTls => SmtpOp::StartTls,
            Command::MailFrom(..) => SmtpOp::MailFrom,
            Command::RcptTo(..) => SmtpOp::RcptTo,
            Command::Data => SmtpOp::Data,
            Command::Bdat { last: true, .. } => SmtpOp::DataEnd,
            Command::Bdat { .. } => SmtpOp::Bdat,
            Command::Rset => SmtpOp::Rset,
            Command::Noop => SmtpOp::Noop,
            Command::Quit => SmtpOp::Quit,
        }
    }
}

/// Append `s` xtext-encoded (RFC 3461 section 4): bytes outside `!`..=`~`, and `+` and `=`,
/// become `+XX` (upper-case hex).
#[cfg(test)]
pub(crate) fn write_xtext(s: &str, out: &mut BytesMut) {
    out.reserve(s.len());
    put_xtext(s, out);
}

fn put_xtext(s: &str, out: &mut impl Sink) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if (0x21..=0x7e).contains(&b) && b != b'+' && b != b'=' {
            continue;
        }
        out.put(&bytes[start..i]);
        out.put(&[b'+', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        start = i + 1;
    }
    out.put(&bytes[start..]);
}

fn write_mail_params(p: &MailParams, out: &mut impl Sink) {
    if let Some(size) = p.size {
        out.put(b" SIZE=");
        put_u64(out, size);
    }
    if let Some(body) = p.body {
        out.put(match body {
            BodyType::SevenBit => b" BODY=7BIT".as_slice(),
            BodyType::EightBitMime => b" BODY=8BITMIME",
            BodyType::BinaryMime => b" BODY=BINARYMIME",
        });
    }
    if p.smtputf8 {
        out.put(b" SMTPUTF8");
    }
    if let Some(ret) = p.ret {
        out.put(match ret {
            DsnReturn::Full => b" RET=FULL".as_slice(),
            DsnReturn::Headers => b" RET=HDRS",
        });
    }
    if let Some(id) = &p.envid {
        out.put(b" ENVID=");
        put_xtext(&id.0, out);
    }
    if p.requiretls {
        out.put(b" REQUIRETLS");
    }
}

fn write_rcpt_params(p: &RcptParams, out: &mut impl Sink) {
    match p.notify {
        None => {}
        Some(Notify::Never) => out.put(b" NOTIFY=NEVER"),
        Some(Notify::On {
            success,
            failure,
            delay,
        }) => {
            let mut sep: &[u8] = b" NOTIFY=";
            for (on, name) in [
                (success, b"SUCCESS".as_slice()),
                (failure, b"FAILURE"),
                (delay, b"DELAY"),
            ] {
                if on {
                    out.put(sep);
                    out.put(name);
                    sep = b",";
                }
            }
        }
    }
    if let Some(orcpt) = &p.orcpt {
        out.put(b" ORCPT=rfc822;");
        put_xtext(&orcpt.0, out);
    }
}

#[cfg(test)]
mod tests;
