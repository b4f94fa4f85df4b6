//! What the caller gives the engine for one message: the [`Envelope`], the [`MessageOptions`]
//! and what is known of the body ([`BodyInfo`]).

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use crate::command::{
    Address, BodyType, DsnReturn, EnvelopeId, Notify, OriginalRecipient, ReversePath,
};
use crate::error::{ArgumentError, Field, InvalidInputError};
use crate::session::RecipientPolicy;

/// How the body of a message will be supplied, as far as known before it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyInfo {
    /// The whole body is in memory: its normalised size and whether it has 8-bit bytes.
    Known {
        /// [`normalized_len`](crate::body::normalized_len) of the body.
        size: u64,
        /// True when a byte is above 0x7F.
        eight_bit: bool,
    },
    /// The body is streamed; its size may be hinted.
    Streamed {
        /// The size as sent, when known: CRLF line endings, without dot-stuffing (RFC 1870), or
        /// the raw length for `BODY=BINARYMIME`. Declared in `SIZE=`, checked against the
        /// server's limit and the policy, and enforced: a body that yields more is abandoned
        /// before its end of data with [`InvalidInputError::BodyLongerThanDeclared`].
        size_hint: Option<u64>,
    },
}

impl BodyInfo {
    /// What the engine needs to know of a body held in memory that will be sent with `options`:
    /// its size as sent ([`normalized_len`](crate::body::normalized_len), or the raw length for
    /// `BODY=BINARYMIME`, which goes out byte for byte) and whether it has 8-bit bytes.
    pub fn in_memory(body: &[u8], options: &MessageOptions) -> BodyInfo {
        let size = if options.body_type == Some(BodyType::BinaryMime) {
            u64::try_from(body.len()).unwrap_or(u64::MAX)
        } else {
            crate::body::normalized_len(body)
        };
        BodyInfo::Known {
            size,
            eight_bit: crate::body::has_8bit(body),
        }
    }
}

/// Per-message options beyond the envelope. Fields may be added: start from
/// [`MessageOptions::default`] and set the ones you need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageOptions {
    /// DSN `RET=` (RFC 3461). Needs DSN.
    pub dsn_return: Option<DsnReturn>,
    /// DSN `ENVID=`. Needs DSN.
    pub envelope_id: Option<EnvelopeId>,
    /// DSN `NOTIFY=` for every recipient. Needs DSN.
    pub notify: Option<Notify>,
    /// `REQUIRETLS` (RFC 8689): needs TLS and the server's REQUIRETLS.
    pub require_tls: bool,
    /// Force a `BODY=` value instead of choosing it from the message.
    pub body_type: Option<BodyType>,
    /// Override the session's [`RecipientPolicy`] for this message.
    pub recipient_policy: Option<RecipientPolicy>,
    /// DSN `ORCPT=` (RFC 3461 section 4.2), one per recipient in the same order as the
    /// recipients, or empty for none. Needs DSN; a list of another length is refused before
    /// anything is sent.
    pub original_recipients: Vec<OriginalRecipient>,
}

/// A validated envelope: sender and recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub(super) from: ReversePath,
    pub(super) to: Vec<Address>,
}

impl Envelope {
    /// Validate a sender (`""` or `"<>"` is the null sender) and a non-empty recipient list.
    pub fn new(from: &str, to: &[&str]) -> Result<Envelope, InvalidInputError> {
        let from = ReversePath::new(from)?;
        if to.is_empty() {
            return Err(InvalidInputError::argument(
                Field::Recipients,
                ArgumentError::Empty,
            ));
        }
        let to = to
            .iter()
            .map(|t| Address::new(t, Field::ForwardPath))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Envelope { from, to })
    }

    /// The sender.
    pub fn from(&self) -> &ReversePath {
        &self.from
    }

    /// The recipients.
    pub fn to(&self) -> &[Address] {
        &self.to
    }
}
