//! What the engine tells its driver: [`Event`]s and the current [`Wait`].

use core::time::Duration;

use crate::error::SmtpError;
use crate::reply::Reply;
use crate::sasl::AuthMechanism;
use crate::session::SendOutcome;
use crate::state::SmtpOp;

/// What the engine tells its driver. Drain [`Session::poll_event`] after every input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The server's `220` greeting (informational; EHLO has been queued).
    Greeting(Reply),
    /// The EHLO (or HELO / LHLO) handshake is complete; [`Session::capabilities`] is current.
    /// Emitted after connecting and again after STARTTLS.
    Ready,
    /// The server accepted STARTTLS: upgrade the transport now, then call
    /// [`Session::tls_established`]. Until then the engine sends nothing, and any byte fed to it is
    /// a response-injection error.
    UpgradeTls,
    /// AUTH succeeded.
    Authenticated(AuthMechanism),
    /// The engine is ready for the message body: call [`Session::send_body`] while
    /// [`Session::wants_body`] is true, then [`Session::finish_body`].
    BodyWanted,
    /// The server accepted the message.
    Sent(SendOutcome),
    /// A RSET or NOOP completed with this reply.
    Done {
        /// RSET or NOOP.
        op: SmtpOp,
        /// The server's reply.
        reply: Reply,
    },
    /// The session ended cleanly (QUIT answered, or the connection closed after QUIT).
    Closed,
    /// The current operation failed. Check [`Session::state`]: `Closed` means the failure was fatal.
    Failed(SmtpError),
}

/// The current wait: which reply is awaited and how long it may take.
///
/// `seq` changes every time a reply completes, so a driver can keep one deadline per reply (not
/// per read): a server that drips one byte at a time still times out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    /// The operation whose reply is awaited.
    pub op: SmtpOp,
    /// How long the wait may last.
    pub limit: Duration,
    /// Identifies the awaited reply.
    pub seq: u64,
}
