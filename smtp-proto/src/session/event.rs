//! What the engine tells its driver: [`Event`]s.

use crate::error::SmtpError;
use crate::mechanism::AuthMechanism;
use crate::reply::Reply;
use crate::session::SendOutcome;
use crate::state::SmtpOp;

/// What the engine tells its driver. Drain [`Session::poll_event`](super::Session::poll_event) after every input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The server's `220` greeting (informational; EHLO has been queued).
    Greeting(Reply),
    /// The EHLO (or HELO / LHLO) exchange is complete; [`Session::capabilities`](super::Session::capabilities) is current.
    /// Emitted after connecting and again after STARTTLS. (Not to be confused with
    /// [`SessionState::Ready`](crate::SessionState::Ready), the state after AUTH or a message.)
    HelloDone,
    /// The server accepted STARTTLS: upgrade the transport now, then call
    /// [`Session::tls_established`](super::Session::tls_established). Until then the engine sends nothing, and any byte fed to it is
    /// a response-injection error.
    UpgradeTls,
    /// AUTH succeeded.
    Authenticated(AuthMechanism),
    /// The engine is ready for this message's body: call [`Session::send_body`](super::Session::send_body) while
    /// [`Session::wants_body`](super::Session::wants_body) is true, then [`Session::finish_body`](super::Session::finish_body).
    BodyWanted(MessageId),
    /// The server accepted the message ([`SendOutcome::message`] says which).
    Sent(SendOutcome),
    /// A message failed: refused by the server at some step, or lost with the session. Every
    /// message started with [`Session::start_mail`](super::Session::start_mail) ends with exactly one `Sent` or
    /// `MessageFailed`, matched by its id, never by order.
    MessageFailed {
        /// Which message.
        message: MessageId,
        /// Why.
        error: SmtpError,
        /// What became of it: provably not delivered, refused after its content, or unknown.
        fate: Fate,
        /// Whether the session is still usable.
        session: SessionAfter,
    },
    /// A RSET or NOOP completed with this reply.
    Done {
        /// RSET or NOOP.
        op: SmtpOp,
        /// The server's reply.
        reply: Reply,
    },
    /// The session ended cleanly (QUIT answered, or the connection closed after QUIT).
    Closed,
    /// An operation that is not a message failed (AUTH, RSET, NOOP, ...), or the session did:
    /// `session` says which. When a failure closes the session, every message still in flight
    /// gets its [`MessageFailed`](Event::MessageFailed) first, and this comes last.
    Failed {
        /// Why.
        error: SmtpError,
        /// Whether the session is still usable.
        session: SessionAfter,
    },
}

impl Event {
    /// The error of a `Failed` or `MessageFailed` event.
    pub fn error(&self) -> Option<&SmtpError> {
        match self {
            Event::Failed { error, .. } | Event::MessageFailed { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A handle on one message of a session, given by [`Session::start_mail`](super::Session::start_mail) and carried by its
/// [`Event::BodyWanted`], [`Event::Sent`] (in [`SendOutcome::message`] and each
/// [`RecipientOutcome`](super::RecipientOutcome)) and [`Event::MessageFailed`]. Ids increase
/// from 1 within a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(u64);

impl MessageId {
    /// The id numbered `n` (a session's first message is 1): for tools that build outcomes of
    /// their own, such as a test transport. A session hands out its own ids.
    pub const fn new(n: u64) -> MessageId {
        MessageId(n)
    }

    /// The id after `self`.
    pub(super) fn next(self) -> MessageId {
        MessageId(self.0.wrapping_add(1))
    }

    /// The number behind the id (1 for a session's first message).
    pub fn get(self) -> u64 {
        self.0
    }

    /// The id before any message.
    pub(super) const NONE: MessageId = MessageId(0);
}

impl core::fmt::Display for MessageId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "message #{}", self.0)
    }
}

/// What became of a message that failed, as far as the client can know; the line between
/// [`NotSent`](Fate::NotSent) and [`Unknown`](Fate::Unknown) is its end of data (the final `.`
/// of DATA, or `BDAT ... LAST`) being queued for the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fate {
    /// Not delivered, and never at the point where it could have been: it failed before its
    /// end of data was queued (a refused MAIL, RCPT or DATA, a local check, a connection lost
    /// or a timeout during the envelope or the body), or the server refused its MAIL or every
    /// recipient (then even an end of data queued with a pipelined `BDAT ... LAST`, unless the
    /// server took it). Sending it again cannot deliver it twice.
    NotSent,
    /// Not delivered: the server refused it in its reply to the end of data (for LMTP, every
    /// accepted recipient's reply was a refusal, or the policy refuses a partial delivery). A
    /// definite answer about this message. Also a message the server answered after its end of
    /// data went out despite a failure of its own (a refused `BDAT` chunk, recipients the
    /// policy requires refused): even a positive reply then is no clean delivery, and the
    /// message must not be sent again.
    Refused,
    /// Unknown: its end of data was queued and no reply to it came (the connection dropped,
    /// the server went silent, a deadline passed, a reply out of step arrived), whatever
    /// failed before unless the server refused its MAIL or every recipient. It may have been
    /// delivered; sending it again may deliver it twice (RFC 1047).
    Unknown,
}

/// Whether the session can still be used after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionAfter {
    /// Still usable: the next command may be given.
    Open,
    /// Closed by the failure; every later command returns the same error.
    Closed,
}
