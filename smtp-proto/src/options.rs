//! [`SmtpClientOptions`]: what an [`SmtpClient`](crate::client::SmtpClient) is built with (the
//! engine's configuration, default message options, buffer size), and its shared form for a pool
//! ([`SharedClientOptions`]). Configuration only: the driver, every adapter's connect options and a
//! caller's own event loop ([`SmtpClientOptions::into_parts`]) all read it.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use alloc::sync::Arc;
use core::fmt;

use crate::audit::{AuditEvent, AuditSink, NoopAuditSink};
use crate::command::{Address, ReversePath};
use crate::error::PolicyError;
#[allow(unused_imports)] // for the doc links
use crate::error::SmtpError;
use crate::policy::{DefaultPolicy, Policy};
use crate::reply::Reply;
use crate::reply::ReplyLimits;
use crate::session::{
    DataPipelining, ExtensionUse, MessageOptions, PlaintextAuth, Protocol, RecipientPolicy,
    SessionConfig, Timeouts,
};
use crate::transcript::TranscriptSink;

/// Options for [`SmtpClient::connect_with`](crate::client::SmtpClient::connect_with): policy, audit
/// sink, timeouts, limits and extension use. Every option has a safe default.
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
    pub(crate) config: SessionConfig,
    pub(crate) message: MessageOptions,
    pub(crate) read_buffer: Option<usize>,
    pub(crate) started: Option<crate::time::Instant>,
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

    /// The session began at `at`, on the transport's clock
    /// ([`Transport::now`](crate::client::Transport::now)), before the adapter opened the
    /// connection: the deadline ([`Timeouts::total`]) counts from there, so the TCP connect and a
    /// TLS handshake count against it in every adapter. Without it the deadline counts from
    /// [`SmtpClient::connect_with`](crate::client::SmtpClient::connect_with).
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
    /// reports it ([`Transport::is_encrypted`](crate::client::Transport::is_encrypted)), as every
    /// adapter of this workspace does.
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
    /// [`send_batch`](crate::client::SmtpClient::send_batch) starts the next one (default 8; 0
    /// sends a batch one round trip at a time). Only used when the server offers PIPELINING.
    pub fn with_max_chained(mut self, messages: usize) -> SmtpClientOptions {
        self.config.max_chained = messages;
        self
    }

    /// Default per-message options (DSN, REQUIRETLS, ...), used by every `send_mail*` call.
    pub fn with_message_options(mut self, options: MessageOptions) -> SmtpClientOptions {
        self.message = options;
        self
    }

    /// The default per-message options ([`with_message_options`](Self::with_message_options)).
    pub fn message_options(&self) -> &MessageOptions {
        &self.message
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

    /// Use `config` as the engine's configuration, every field of it (the builders above set
    /// one field each; this sets the ones they do not name too, such as
    /// [`SessionConfig::max_bdat_in_flight`] and [`SessionConfig::bdat_chunk_size`]).
    pub fn with_session_config(mut self, config: SessionConfig) -> SmtpClientOptions {
        self.config = config;
        self
    }

    /// Change the engine's configuration in place, keeping every other option.
    ///
    /// ```
    /// use smtp_proto::client::SmtpClientOptions;
    ///
    /// let options = SmtpClientOptions::new().map_session_config(|c| c.bdat_chunk_size = 64 * 1024);
    /// assert_eq!(options.session_config().bdat_chunk_size, 64 * 1024);
    /// ```
    pub fn map_session_config(mut self, f: impl FnOnce(&mut SessionConfig)) -> SmtpClientOptions {
        f(&mut self.config);
        self
    }
}

impl SmtpClientOptions {
    /// These options in a form that can be copied ([`SharedClientOptions`]), for a caller that
    /// opens many connections from one set of options (a pool): the policy, the audit sink and
    /// the transcript sink are then shared by every copy (each is `Send + Sync` and is only
    /// called through `&self`), every other setting is copied.
    pub fn into_shared(self) -> SharedClientOptions {
        let SmtpClientOptions {
            mut config,
            message,
            read_buffer,
            started,
        } = self;
        let policy: Arc<dyn Policy> = Arc::from(core::mem::replace(
            &mut config.policy,
            Box::new(DefaultPolicy),
        ));
        let audit: Arc<dyn AuditSink> = Arc::from(core::mem::replace(
            &mut config.audit,
            Box::new(NoopAuditSink),
        ));
        let transcript = config.transcript.take().map(Arc::from);
        SharedClientOptions {
            config,
            policy,
            audit,
            transcript,
            message,
            read_buffer,
            started,
        }
    }

    /// Take these options apart, for code that drives a [`Session`](crate::Session) itself instead
    /// of through [`SmtpClient`](crate::client::SmtpClient) (its own event loop) or keeps the
    /// options apart (a pool): the engine's configuration, the default message options, the read
    /// buffer size asked for and the start of the session's deadline
    /// ([`with_start`](Self::with_start)), if set.
    pub fn into_parts(self) -> ClientOptionsParts {
        ClientOptionsParts {
            config: self.config,
            message: self.message,
            read_buffer: self.read_buffer,
            started: self.started,
        }
    }
}

/// [`SmtpClientOptions`] taken apart ([`SmtpClientOptions::into_parts`]).
#[derive(Debug)]
pub struct ClientOptionsParts {
    /// The engine's configuration.
    pub config: SessionConfig,
    /// The default per-message options.
    pub message: MessageOptions,
    /// The read buffer size asked for ([`SmtpClientOptions::with_read_buffer`]), if any.
    pub read_buffer: Option<usize>,
    /// When the session began ([`SmtpClientOptions::with_start`]), if said.
    pub started: Option<crate::time::Instant>,
}

/// [`SmtpClientOptions`] that can be copied ([`SmtpClientOptions::into_shared`]): every
/// [`options`](Self::options) made from it has the same settings, and the same policy, audit
/// sink and transcript sink (shared, not copied: a sink's output from every connection made
/// with them goes to the one sink).
pub struct SharedClientOptions {
    /// Every setting but the three shared objects, which are placeholders here.
    config: SessionConfig,
    policy: Arc<dyn Policy>,
    audit: Arc<dyn AuditSink>,
    transcript: Option<Arc<dyn TranscriptSink>>,
    message: MessageOptions,
    read_buffer: Option<usize>,
    started: Option<crate::time::Instant>,
}

impl SharedClientOptions {
    /// A new [`SmtpClientOptions`] with these settings, sharing the policy and the sinks.
    pub fn options(&self) -> SmtpClientOptions {
        SmtpClientOptions {
            config: self.copy_config(),
            message: self.message.clone(),
            read_buffer: self.read_buffer,
            started: self.started,
        }
    }

    /// The engine's configuration (the policy and sinks are not in it: they are shared).
    pub fn session_config(&self) -> &SessionConfig {
        &self.config
    }

    /// A copy of the configuration: every field but the three shared objects is `Copy`, so a
    /// field added to [`SessionConfig`] is copied here too (or, if it cannot be copied, stops
    /// this from compiling until it is handled).
    fn copy_config(&self) -> SessionConfig {
        SessionConfig {
            policy: Box::new(Shared(self.policy.clone())),
            audit: Box::new(Shared(self.audit.clone())),
            transcript: self
                .transcript
                .clone()
                .map(|sink| Box::new(Shared(sink)) as Box<dyn TranscriptSink>),
            ..self.config
        }
    }
}

impl Clone for SharedClientOptions {
    fn clone(&self) -> Self {
        SharedClientOptions {
            config: SessionConfig {
                policy: Box::new(DefaultPolicy),
                audit: Box::new(NoopAuditSink),
                transcript: None,
                ..self.config
            },
            policy: self.policy.clone(),
            audit: self.audit.clone(),
            transcript: self.transcript.clone(),
            message: self.message.clone(),
            read_buffer: self.read_buffer,
            started: self.started,
        }
    }
}

/// One policy or sink behind an `Arc`, as the engine's boxed one: every method is forwarded
/// (the traits' default methods too, so a sink that overrides one keeps its own).
pub(crate) struct Shared<T: ?Sized>(pub(crate) Arc<T>);

impl Policy for Shared<dyn Policy> {
    fn check_sender(&self, from: &ReversePath) -> Result<(), PolicyError> {
        self.0.check_sender(from)
    }
    fn check_recipients(&self, to: &[Address]) -> Result<(), PolicyError> {
        self.0.check_recipients(to)
    }
    fn check_message_size(&self, size: Option<u64>) -> Result<(), PolicyError> {
        self.0.check_message_size(size)
    }
    fn max_message_size(&self) -> Option<u64> {
        self.0.max_message_size()
    }
}

impl AuditSink for Shared<dyn AuditSink> {
    fn record(&self, event: &AuditEvent) {
        self.0.record(event)
    }
}

impl TranscriptSink for Shared<dyn TranscriptSink> {
    fn client(&self, line: &str) {
        self.0.client(line)
    }
    fn server(&self, reply: &Reply) {
        self.0.server(reply)
    }
    fn enabled(&self) -> bool {
        self.0.enabled()
    }
}

impl fmt::Debug for SharedClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedClientOptions")
            .field("config", &self.config)
            .field("transcript", &self.transcript.is_some())
            .field("message", &self.message)
            .field("read_buffer", &self.read_buffer)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}
