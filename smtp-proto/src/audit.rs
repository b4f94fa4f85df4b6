//! Audit events: what happened in a session, for logs and abuse monitoring. Never a secret.

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use crate::mechanism::AuthMechanism;
use crate::reply::ReplyCode;
use crate::state::SmtpOp;

/// One thing worth recording. Holds no credentials, no message content and no SASL payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditEvent {
    /// The server greeted us with a `220`.
    Connected,
    /// The connection was upgraded with STARTTLS.
    TlsUpgraded,
    /// AUTH succeeded.
    Authenticated {
        /// The mechanism used.
        mechanism: AuthMechanism,
    },
    /// AUTH was refused.
    AuthenticationFailed {
        /// The mechanism used.
        mechanism: AuthMechanism,
        /// The server's reply code, when the server answered.
        code: Option<ReplyCode>,
    },
    /// A message was accepted by the server.
    MessageSent {
        /// How many recipients the server accepted.
        recipients: usize,
        /// How many were refused (with a partial-delivery policy).
        refused: usize,
        /// The message size in bytes (after line-ending normalisation).
        size: u64,
        /// The server's queue id, when it gave one.
        queue_id: Option<String>,
    },
    /// The server refused the message (or all its recipients).
    MessageRefused {
        /// Where it was refused.
        during: SmtpOp,
        /// The server's reply code.
        code: Option<ReplyCode>,
    },
    /// The local policy refused the message; nothing was sent.
    PolicyRefused {
        /// The policy's reason.
        reason: String,
    },
    /// The session ended (QUIT or a fatal error).
    Closed,
}

/// Receives audit events. Implementations must be cheap: they are called inline.
pub trait AuditSink: Send + Sync {
    /// Record one event.
    fn record(&self, event: &AuditEvent);
}

/// Drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopAuditSink;

impl AuditSink for NoopAuditSink {
    fn record(&self, _event: &AuditEvent) {}
}

impl<F: Fn(&AuditEvent) + Send + Sync> AuditSink for F {
    fn record(&self, event: &AuditEvent) {
        self(event)
    }
}
