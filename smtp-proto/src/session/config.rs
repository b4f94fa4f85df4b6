//! Engine configuration: [`SessionConfig`], [`Timeouts`] and the mode enums.

use core::fmt;
use core::time::Duration;

use crate::audit::{AuditSink, NoopAuditSink};
use crate::policy::{DefaultPolicy, Policy};
use crate::reply::ReplyLimits;
use crate::state::SmtpOp;
use crate::transcript::TranscriptSink;

/// How long each wait may last, by phase (RFC 5321 section 4.5.3.2). The engine never reads a
/// clock: it reports the limit for the current wait through [`Session::timeout`](super::Session::timeout)
/// and the driver enforces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// The `220` greeting. RFC: 5 minutes.
    pub greeting: Duration,
    /// EHLO, STARTTLS, AUTH, MAIL, RCPT, RSET, NOOP, QUIT replies. RFC: 5 minutes.
    pub command: Duration,
    /// The `354` after DATA. RFC: 2 minutes.
    pub data_init: Duration,
    /// Writing one block of body data, and the reply to a non-final BDAT. RFC: 3 minutes.
    pub data_block: Duration,
    /// The reply after the final dot or `BDAT ... LAST`. RFC: 10 minutes.
    pub data_end: Duration,
}

impl Default for Timeouts {
    /// The RFC 5321 values.
    fn default() -> Self {
        Timeouts {
            greeting: Duration::from_secs(300),
            command: Duration::from_secs(300),
            data_init: Duration::from_secs(120),
            data_block: Duration::from_secs(180),
            data_end: Duration::from_secs(600),
        }
    }
}

impl Timeouts {
    /// The same limit for every wait (what a command-line `--timeout` means).
    pub fn uniform(limit: Duration) -> Timeouts {
        Timeouts {
            greeting: limit,
            command: limit,
            data_init: limit,
            data_block: limit,
            data_end: limit,
        }
    }

    /// The limit for the reply to `op`.
    pub fn for_reply(&self, op: SmtpOp) -> Duration {
        match op {
            SmtpOp::Greeting | SmtpOp::Connect => self.greeting,
            SmtpOp::Data => self.data_init,
            SmtpOp::Bdat => self.data_block,
            SmtpOp::DataEnd => self.data_end,
            _ => self.command,
        }
    }
}

/// SMTP or LMTP (RFC 2033).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// SMTP: EHLO (HELO fallback), one reply after the message.
    #[default]
    Smtp,
    /// LMTP: LHLO, one reply per accepted recipient after the message.
    Lmtp,
}

/// Whether to use an extension the server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Use {
    /// Use it when the server advertises it.
    #[default]
    WhenOffered,
    /// Never use it.
    Never,
}

/// What to do when some, but not all, recipients are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecipientPolicy {
    /// Send nothing unless every recipient is accepted: the transaction is reset and
    /// [`ProtocolError::RecipientsRefused`](crate::ProtocolError::RecipientsRefused) returned. With
    /// several recipients the engine then waits for the RCPT replies before DATA (one round trip
    /// more); with one recipient nothing is lost.
    #[default]
    RequireAll,
    /// Deliver to the accepted recipients; the refused ones are listed in the
    /// [`SendOutcome`](super::SendOutcome). DATA is pipelined with the RCPTs.
    AcceptPartial,
}

/// Everything the engine needs to know up front.
pub struct SessionConfig {
    /// Bounds on server replies.
    pub limits: ReplyLimits,
    /// Wait limits by phase.
    pub timeouts: Timeouts,
    /// SMTP or LMTP.
    pub protocol: Protocol,
    /// Use PIPELINING (RFC 2920) when offered.
    pub pipelining: Use,
    /// Use CHUNKING / BDAT (RFC 3030) when offered.
    pub chunking: Use,
    /// The most bytes of commands sent and not yet answered in one pipelined flight (RFC 2920
    /// section 3.1: a flight larger than the TCP window can deadlock a client that writes before
    /// it reads). A longer recipient list goes out in several flights. At least one command is
    /// always sent. Default 4 KiB.
    pub max_flight_bytes: usize,
    /// How many non-final BDAT chunks may be unanswered before the engine stops asking for body
    /// data and the driver must read replies. Default 8.
    pub max_bdat_in_flight: usize,
    /// How many finished messages may still be awaiting their final reply when the next one
    /// starts (batch chaining with PIPELINING, RFC 2920 section 3.1). 0 turns chaining off.
    /// Default 8.
    pub max_chained: usize,
    /// What to do when some recipients are refused.
    pub recipient_policy: RecipientPolicy,
    /// True when the connection is already encrypted (implicit TLS).
    pub tls: bool,
    /// Checks run before each message.
    pub policy: Box<dyn Policy>,
    /// Receives audit events.
    pub audit: Box<dyn AuditSink>,
    /// Receives a redacted line per command and reply, when set.
    pub transcript: Option<Box<dyn TranscriptSink>>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            limits: ReplyLimits::default(),
            timeouts: Timeouts::default(),
            protocol: Protocol::Smtp,
            pipelining: Use::WhenOffered,
            chunking: Use::WhenOffered,
            max_flight_bytes: 4096,
            max_bdat_in_flight: 8,
            max_chained: 8,
            recipient_policy: RecipientPolicy::RequireAll,
            tls: false,
            policy: Box::new(DefaultPolicy),
            audit: Box::new(NoopAuditSink),
            transcript: None,
        }
    }
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("limits", &self.limits)
            .field("timeouts", &self.timeouts)
            .field("protocol", &self.protocol)
            .field("pipelining", &self.pipelining)
            .field("chunking", &self.chunking)
            .field("max_flight_bytes", &self.max_flight_bytes)
            .field("max_bdat_in_flight", &self.max_bdat_in_flight)
            .field("max_chained", &self.max_chained)
            .field("recipient_policy", &self.recipient_policy)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}
