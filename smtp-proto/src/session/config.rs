//! Engine configuration: [`SessionConfig`], [`Timeouts`] and the mode enums.

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use core::fmt;
use core::time::Duration;

use crate::audit::{AuditSink, NoopAuditSink};
use crate::policy::{DefaultPolicy, Policy};
use crate::reply::ReplyLimits;
use crate::state::SmtpOp;
use crate::transcript::TranscriptSink;

/// How long each wait may last, by phase (RFC 5321 section 4.5.3.2). The engine never reads a
/// clock: the driver hands in the time, the engine answers with its next timer
/// ([`Session::poll_timeout`](super::Session::poll_timeout)) and decides what ran out
/// ([`Session::handle_timeout`](super::Session::handle_timeout)).
///
/// Fields may be added: start from [`Timeouts::default`] (or [`uniform`](Timeouts::uniform)) and
/// set the ones you need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// The `220` greeting. RFC: 5 minutes.
    pub greeting: Duration,
    /// EHLO, STARTTLS, AUTH, MAIL, RCPT, RSET, NOOP, QUIT replies. RFC: 5 minutes.
    pub command: Duration,
    /// The TLS handshake after STARTTLS's `220`. Default: 5 minutes, like a command. A
    /// connection an adapter opens (`ConnectOptions::connect`) bounds it by its connect timeout
    /// as well, as it does an implicit-TLS handshake.
    pub tls_handshake: Duration,
    /// The `354` after DATA. RFC: 2 minutes.
    pub data_init: Duration,
    /// Writing one block of body data, and the reply to a non-final BDAT. RFC: 3 minutes.
    pub data_block: Duration,
    /// The reply after the final dot or `BDAT ... LAST`. RFC: 10 minutes.
    pub data_end: Duration,
    /// The whole session, from the wait for the greeting to the end of QUIT, however the time
    /// is spent (`None`, the default: no bound beyond the per-reply limits). Without it a server
    /// that answers each reply just before its limit holds a small message for an hour. Counted
    /// from [`Session::start`](super::Session::start) (an adapter calls it before connecting),
    /// kept by the engine like every other timer.
    pub total: Option<Duration>,
    /// The write-progress rule: once a message's body has been going out for longer than
    /// `data_block`, it must have averaged at least this many bytes a second since its first
    /// byte, or the session ends with [`SmtpError::Timeout`](crate::SmtpError::Timeout). Each
    /// write still gets at most `data_block` on its own. Without the rule a server that reads
    /// 50 bytes a second holds a 100 MiB message for weeks. Default 1 KiB/s; `None` turns it off.
    pub min_write_rate: Option<u32>,
}

impl Default for Timeouts {
    /// The RFC 5321 values.
    fn default() -> Self {
        Timeouts {
            greeting: Duration::from_secs(300),
            command: Duration::from_secs(300),
            tls_handshake: Duration::from_secs(300),
            data_init: Duration::from_secs(120),
            data_block: Duration::from_secs(180),
            data_end: Duration::from_secs(600),
            total: None,
            min_write_rate: Some(1024),
        }
    }
}

impl Timeouts {
    /// The same limit for every wait (what a command-line `--timeout` means); no total deadline,
    /// the default write-progress rule.
    pub fn uniform(limit: Duration) -> Timeouts {
        Timeouts {
            greeting: limit,
            command: limit,
            tls_handshake: limit,
            data_init: limit,
            data_block: limit,
            data_end: limit,
            ..Timeouts::default()
        }
    }

    /// These limits with every per-reply wait (greeting, command, DATA, each body block, end of
    /// data) and the STARTTLS handshake set to `limit`; the session deadline ([`total`](Self::total)) and the
    /// write-progress rule ([`min_write_rate`](Self::min_write_rate)) are kept.
    pub fn with_reply_limit(self, limit: Duration) -> Timeouts {
        Timeouts {
            total: self.total,
            min_write_rate: self.min_write_rate,
            ..Timeouts::uniform(limit)
        }
    }

    /// These limits with a deadline for the whole session (see [`total`](Self::total)).
    pub fn with_total(mut self, limit: Duration) -> Timeouts {
        self.total = Some(limit);
        self
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

/// The default of [`SessionConfig::max_scram_iterations`].
pub const DEFAULT_MAX_SCRAM_ITERATIONS: u32 = 100_000;

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
pub enum ExtensionUse {
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

/// When DATA joins the envelope's pipelined flight (MAIL, RCPT..., DATA in one write).
///
/// Under [`RecipientPolicy::RequireAll`] with several recipients, a refused recipient must stop
/// the message. DATA sent in the same flight as the RCPTs may be answered `354` before the
/// engine has read those refusals, and once the server waits for data the only ways out are an
/// end of data (which delivers to the accepted recipients) or closing the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataPipelining {
    /// DATA joins the flight only when no RCPT reply can change the decision to send: one
    /// recipient, or [`RecipientPolicy::AcceptPartial`]. Otherwise it waits for the RCPT
    /// replies: one round trip more per message, the connection always survives a refusal.
    #[default]
    WhenSafe,
    /// DATA always joins the flight when PIPELINING is used. If the replies then refuse a
    /// recipient the policy requires while the server waits for data, the engine closes the
    /// session without writing a byte of the body: the server never sees an end of data, so
    /// nothing is delivered to the accepted part of the list (RFC 5321 section 3.3 leaves a
    /// transaction whose connection closes before its end undelivered). The message fails with
    /// [`RecipientsRefused`](crate::ProtocolError::RecipientsRefused) and
    /// [`SessionAfter::Closed`](super::SessionAfter::Closed). For callers that reconnect
    /// cheaply (a pool): a round trip saved per message, a reconnect per partial refusal. BDAT
    /// needs no such choice: its body goes after the RCPT replies in both modes.
    Always,
}

/// Whether credentials may be sent on a connection without TLS.
///
/// Every mechanism this crate speaks reveals something an eavesdropper can reuse (PLAIN, LOGIN:
/// the password; XOAUTH2, OAUTHBEARER: a bearer token) or can be downgraded by an attacker who
/// edits the EHLO reply (SCRAM, whose advertisement can be stripped to force PLAIN). So the
/// default refuses AUTH before a byte is sent unless the connection is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlaintextAuth {
    /// Refuse AUTH without TLS with [`AuthError::PlaintextRefused`](crate::AuthError::PlaintextRefused).
    #[default]
    Refuse,
    /// Send credentials without TLS (a test server, a socket already protected otherwise). There
    /// is no exception for loopback: the caller must say so.
    Allow,
}

/// Everything the engine needs to know up front.
///
/// Fields may be added: start from [`SessionConfig::default`] and set the ones you need.
#[non_exhaustive]
pub struct SessionConfig {
    /// Bounds on server replies.
    pub limits: ReplyLimits,
    /// Wait limits by phase.
    pub timeouts: Timeouts,
    /// SMTP or LMTP.
    pub protocol: Protocol,
    /// Use PIPELINING (RFC 2920) when offered.
    pub pipelining: ExtensionUse,
    /// Use CHUNKING / BDAT (RFC 3030) when offered.
    pub chunking: ExtensionUse,
    /// The most bytes of commands sent and not yet answered in one pipelined flight (RFC 2920
    /// section 3.1: a flight larger than the TCP window can deadlock a client that writes before
    /// it reads). A longer recipient list goes out in several flights. At least one command is
    /// always sent. Default 4 KiB.
    pub max_flight_bytes: usize,
    /// How many non-final BDAT chunks may be unanswered before the engine stops asking for body
    /// data and the driver must read replies. Default 8.
    pub max_bdat_in_flight: usize,
    /// The size of each `BDAT` chunk of a streamed body (the last one may be smaller; it carries
    /// `LAST`). Larger chunks mean fewer replies: a 10 MiB stream is 40 chunks at the default
    /// 256 KiB. The engine holds up to one chunk plus one input chunk in memory.
    pub bdat_chunk_size: usize,
    /// How many finished messages may still be awaiting their final reply when the next one
    /// starts (batch chaining with PIPELINING, RFC 2920 section 3.1). 0 turns chaining off.
    /// Default 8.
    pub max_chained: usize,
    /// What to do when some recipients are refused.
    pub recipient_policy: RecipientPolicy,
    /// When DATA is pipelined with the envelope (default [`DataPipelining::WhenSafe`]).
    pub data_pipelining: DataPipelining,
    /// True when the connection is already encrypted (implicit TLS).
    pub tls: bool,
    /// Whether AUTH may run without TLS (default: refused).
    pub plaintext_auth: PlaintextAuth,
    /// The most PBKDF2 iterations a SCRAM server may ask for. The key derivation runs inside
    /// [`Session::feed`](super::Session::feed), on the caller's thread (on one core of an async
    /// executor, or in a Worker's request), and costs about 0.15 µs per iteration natively, much
    /// more in wasm. Default 100,000, well above what real servers use (Dovecot: 4096, the
    /// RFC 7677 minimum: 4096); the hard ceiling is
    /// [`SCRAM_MAX_ITERATIONS`](crate::sasl::SCRAM_MAX_ITERATIONS). A larger request fails the
    /// exchange with [`ScramError::IterationCount`](crate::ScramError::IterationCount).
    pub max_scram_iterations: u32,
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
            pipelining: ExtensionUse::WhenOffered,
            chunking: ExtensionUse::WhenOffered,
            max_flight_bytes: 4096,
            max_bdat_in_flight: 8,
            bdat_chunk_size: 256 * 1024,
            max_chained: 8,
            recipient_policy: RecipientPolicy::RequireAll,
            data_pipelining: DataPipelining::WhenSafe,
            tls: false,
            plaintext_auth: PlaintextAuth::Refuse,
            max_scram_iterations: DEFAULT_MAX_SCRAM_ITERATIONS,
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
            .field("bdat_chunk_size", &self.bdat_chunk_size)
            .field("max_chained", &self.max_chained)
            .field("recipient_policy", &self.recipient_policy)
            .field("data_pipelining", &self.data_pipelining)
            .field("tls", &self.tls)
            .field("plaintext_auth", &self.plaintext_auth)
            .field("max_scram_iterations", &self.max_scram_iterations)
            .finish_non_exhaustive()
    }
}
