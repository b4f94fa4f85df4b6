//! [`SmtpClientOptions`]: what an [`SmtpClient`](super::SmtpClient) is built with (the engine's
//! configuration, default message options, buffer size).

#[allow(unused_imports)]
use crate::alloc_prelude::*;

#[allow(unused_imports)] // for the doc links
use super::{SmtpClient, Transport};
use crate::audit::AuditSink;
#[allow(unused_imports)] // for the doc links
use crate::error::SmtpError;
use crate::policy::Policy;
use crate::reply::ReplyLimits;
use crate::session::{
    DataPipelining, ExtensionUse, MessageOptions, PlaintextAuth, Protocol, RecipientPolicy,
    SessionConfig, Timeouts,
};
use crate::transcript::TranscriptSink;

/// Options for [`SmtpClient::connect_with`]: policy, audit sink, timeouts, limits and extension
/// use. Every option has a safe default.
///
/// ```
/// use smtp_proto::client::SmtpClientOptions;
/// use smtp_proto::{BoundedPolicy, RecipientPolicy};
///
/// let opts = SmtpClientOptions::new()
///     .with_policy(Box::new(BoundedPolicy::new().max_recipients(50)))
///     .with_recipient_policy(RecipientPolicy::AcceptPartial);
/// ```
#[derive(Debug, Default)]
pub struct SmtpClientOptions {
    pub(super) config: SessionConfig,
    pub(super) message: MessageOptions,
    pub(super) read_buffer: Option<usize>,
    pub(super) started: Option<crate::time::Instant>,
}

impl SmtpClientOptions {
    /// The defaults: allow-all policy, no audit, RFC 5321 timeouts, every offered extension used.
    pub fn new() -> SmtpClientOptions {
        SmtpClientOptions::default()
    }

    /// Check every message with this policy before sending.
    pub fn with_policy(mut self, policy: Box<dyn Policy>) -> SmtpClientOptions {
        self.config.policy = policy;
        self
    }

    /// Send audit events to this sink.
    pub fn with_audit_sink(mut self, sink: Box<dyn AuditSink>) -> SmtpClientOptions {
        self.config.audit = sink;
        self
    }

    /// Send a redacted transcript (one line per command and reply) to this sink.
    pub fn with_transcript(mut self, sink: Box<dyn TranscriptSink>) -> SmtpClientOptions {
        self.config.transcript = Some(sink);
        self
    }

    /// Wait limits by phase.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> SmtpClientOptions {
        self.config.timeouts = timeouts;
        self
    }

    /// The same limit for every wait on a server reply, keeping the session deadline and the
    /// write-progress rule already set ([`Timeouts::with_reply_limit`]).
    pub fn with_reply_timeout(mut self, limit: core::time::Duration) -> SmtpClientOptions {
        self.config.timeouts = self.config.timeouts.with_reply_limit(limit);
        self
    }

    /// Bounds on server replies.
    pub fn with_reply_limits(mut self, limits: ReplyLimits) -> SmtpClientOptions {
        self.config.limits = limits;
        self
    }

    /// What to do when some recipients are refused (default: send nothing unless all are accepted).
    pub fn with_recipient_policy(mut self, policy: RecipientPolicy) -> SmtpClientOptions {
        self.config.recipient_policy = policy;
        self
    }

    /// When DATA joins the envelope's pipelined flight; see [`DataPipelining`].
    pub fn with_data_pipelining(mut self, mode: DataPipelining) -> SmtpClientOptions {
        self.config.data_pipelining = mode;
        self
    }

    /// Whether to pipeline when the server offers PIPELINING.
    pub fn with_pipelining(mut self, mode: ExtensionUse) -> SmtpClientOptions {
        self.config.pipelining = mode;
        self
    }

    /// Whether to use BDAT when the server offers CHUNKING.
    pub fn with_chunking(mut self, mode: ExtensionUse) -> SmtpClientOptions {
        self.config.chunking = mode;
        self
    }

    /// Speak LMTP (RFC 2033) instead of SMTP.
    pub fn with_protocol(mut self, protocol: Protocol) -> SmtpClientOptions {
        self.config.protocol = protocol;
        self
    }

    /// Allow AUTH on a connection without TLS: the password or token then crosses the network
    /// readable, and an attacker on the path can strip SCRAM from the EHLO reply. Without this,
    /// `login*` on such a connection fails with
    /// [`AuthError::PlaintextRefused`](crate::AuthError::PlaintextRefused) before anything is
    /// sent. There is no automatic exception, not even for loopback.
    pub fn allow_plaintext_auth(mut self) -> SmtpClientOptions {
        self.config.plaintext_auth = PlaintextAuth::Allow;
        self
    }

    /// A deadline for the whole session, from the wait for the greeting until QUIT has been
    /// answered, on top of the per-reply limits ([`Timeouts::total`]). When it passes, the
    /// session ends with [`SmtpError::DeadlineExceeded`] and the transport is closed.
    pub fn with_deadline(mut self, limit: core::time::Duration) -> SmtpClientOptions {
        self.config.timeouts.total = Some(limit);
        self
    }

    /// The session began at `at`, on the transport's clock ([`Transport::now`]), before the
    /// adapter opened the connection: the deadline ([`Timeouts::total`]) counts from there, so
    /// the TCP connect and a TLS handshake count against it in every adapter. Without it the
    /// deadline counts from [`SmtpClient::connect_with`].
    pub fn with_start(mut self, at: crate::time::Instant) -> SmtpClientOptions {
        self.started = Some(at);
        self
    }

    /// The most PBKDF2 iterations a SCRAM server may ask for
    /// ([`SessionConfig::max_scram_iterations`]: the derivation runs on the task that drives the
    /// client; default 100,000).
    pub fn with_max_scram_iterations(mut self, iterations: u32) -> SmtpClientOptions {
        self.config.max_scram_iterations = iterations;
        self
    }

    /// Declare the transport already encrypted (implicit TLS). Not needed with a transport that
    /// reports it ([`Transport::is_encrypted`]), as every adapter of this workspace does.
    pub fn with_implicit_tls(mut self, tls: bool) -> SmtpClientOptions {
        self.config.tls = tls;
        self
    }

    /// The most bytes of unanswered commands in one pipelined flight (default 4 KiB).
    pub fn with_max_flight_bytes(mut self, bytes: usize) -> SmtpClientOptions {
        self.config.max_flight_bytes = bytes.max(1);
        self
    }

    /// How many sent messages may still be awaiting their final reply while
    /// [`send_batch`](SmtpClient::send_batch) starts the next one (default 8; 0 sends a batch
    /// one round trip at a time). Only used when the server offers PIPELINING.
    pub fn with_max_chained(mut self, messages: usize) -> SmtpClientOptions {
        self.config.max_chained = messages;
        self
    }

    /// Default per-message options (DSN, REQUIRETLS, ...), used by every `send_mail*` call.
    pub fn with_message_options(mut self, options: MessageOptions) -> SmtpClientOptions {
        self.message = options;
        self
    }

    /// Size of the read buffer (default 8 KiB).
    pub fn with_read_buffer(mut self, bytes: usize) -> SmtpClientOptions {
        self.read_buffer = Some(bytes.max(512));
        self
    }

    /// The engine configuration these options describe.
    pub fn session_config(&self) -> &SessionConfig {
        &self.config
    }
}
