//! [`Delivery`]: what became of one message, from the engine's [`Fate`] of it, and the one
//! rule for sending it again.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use crate::error::SmtpError;
use crate::session::{Fate, SendOutcome};

/// The result of one message sent with [`SmtpClient::deliver`](crate::SmtpClient::deliver): accepted, provably not
/// delivered, or unknown.
///
/// The line between the last two is the message's end of data (the final `.` of DATA, or
/// `BDAT ... LAST`). A message that failed before its end of data was handed to the transport
/// cannot have been delivered, whatever happened to the connection; neither can one the server
/// refused with a reply. A message whose end of data was written and whose final reply never
/// came (the connection dropped, the server went silent, the reply was garbled) may have been
/// delivered: sending it again could deliver it twice (RFC 1047), so it is
/// [`Unknown`](Delivery::Unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Delivery {
    /// The server accepted the message.
    Sent(SendOutcome),
    /// The message was not delivered.
    NotSent {
        /// Why.
        error: SmtpError,
        /// True when the message failed before its end of data was written, or the server
        /// refused its MAIL or every recipient so that nothing could be delivered
        /// ([`Fate::NotSent`]: a new connection may succeed where this one failed); false when
        /// the server judged the message at its end of data ([`Fate::Refused`]).
        before_end_of_data: bool,
    },
    /// The end of data was written but no reply to it came: the message may or may not have
    /// been delivered. Never send it again automatically.
    Unknown(SmtpError),
}

impl Delivery {
    /// The delivery of a message that failed with `error`, by the engine's verdict.
    pub fn failed(error: SmtpError, fate: Fate) -> Delivery {
        match fate {
            Fate::NotSent => Delivery::NotSent {
                error,
                before_end_of_data: true,
            },
            Fate::Refused => Delivery::NotSent {
                error,
                before_end_of_data: false,
            },
            Fate::Unknown => Delivery::Unknown(error),
        }
    }

    /// Whether sending the message again, once, on a new connection is safe and may succeed:
    /// it provably was not delivered (it failed before its end of data), and the failure was
    /// the connection's or temporary (I/O, a timeout, a closed connection, a `4xx` reply such
    /// as a `421` or a `451` to MAIL). A `5xx`, a local check or a caller error is final.
    pub fn is_retryable(&self) -> bool {
        match self {
            Delivery::NotSent {
                error,
                before_end_of_data: true,
            } => error.is_retryable_on_new_connection(),
            _ => false,
        }
    }

    /// The outcome, or the error whatever the fate: what
    /// [`send_batch`](crate::SmtpClient::send_batch) reports for each message.
    pub fn into_result(self) -> Result<SendOutcome, SmtpError> {
        match self {
            Delivery::Sent(outcome) => Ok(outcome),
            Delivery::NotSent { error, .. } | Delivery::Unknown(error) => Err(error),
        }
    }

    /// The engine's verdict on a message that failed (`None` when it was sent).
    pub fn fate(&self) -> Option<Fate> {
        match self {
            Delivery::Sent(_) => None,
            Delivery::NotSent {
                before_end_of_data: true,
                ..
            } => Some(Fate::NotSent),
            Delivery::NotSent { .. } => Some(Fate::Refused),
            Delivery::Unknown(_) => Some(Fate::Unknown),
        }
    }

    /// The error, unless the message was sent.
    pub fn error(&self) -> Option<&SmtpError> {
        match self {
            Delivery::Sent(_) => None,
            Delivery::NotSent { error, .. } | Delivery::Unknown(error) => Some(error),
        }
    }
}
