//! Typed SMTP commands and their validated arguments.
//!
//! (Helper C implements; the public signatures here are fixed.)
//!
//! Every argument type refuses, at construction, any byte that could end the command line or start
//! another one (CR, LF, NUL, other C0 controls, DEL) and anything the grammar forbids. A value of
//! these types can therefore never inject a command: [`Command::write_to`] always writes exactly
//! one CRLF-terminated line.

use bytes::BytesMut;

use crate::error::{Field, InvalidInputError};
use crate::state::SmtpOp;

/// The argument of EHLO / HELO / LHLO: a domain name (ASCII, LDH labels, `_` tolerated) or an
/// address literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Domain(String);

impl Domain {
    /// Validate a domain or address literal.
    pub fn new(s: &str) -> Result<Domain, InvalidInputError> {
        let _ = s;
        todo!()
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
    pub fn new(s: &str, field: Field) -> Result<Address, InvalidInputError> {
        let _ = (s, field);
        todo!()
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
    pub fn new(s: &str) -> Result<ReversePath, InvalidInputError> {
        let _ = s;
        todo!()
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
    /// Validate an envelope id.
    pub fn new(s: &str) -> Result<EnvelopeId, InvalidInputError> {
        let _ = s;
        todo!()
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
    pub fn new(s: &str) -> Result<OriginalRecipient, InvalidInputError> {
        let _ = s;
        todo!()
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

/// A command the engine sends (AUTH lines are written by [`crate::sasl::SaslExchange`]).
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
    pub fn write_to(&self, out: &mut BytesMut) {
        let _ = out;
        todo!()
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
pub fn write_xtext(s: &str, out: &mut BytesMut) {
    let _ = (s, out);
    todo!()
}
