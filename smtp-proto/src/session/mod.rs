//! The sans-IO engine: [`Session`].
//!
//! Every SMTP rule the client follows lives in this module: the order of commands, which replies
//! move the session on, pipelining, STARTTLS's barrier, the AUTH flows, per-recipient results,
//! and which failures close the session.

mod config;
mod outcome;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use core::time::Duration;

pub use config::{
    DEFAULT_MAX_SCRAM_ITERATIONS, PlaintextAuth, Protocol, RecipientPolicy, SessionConfig,
    Timeouts, Use,
};
pub use outcome::{RecipientOutcome, SendOutcome, queue_id};

use crate::audit::AuditEvent;
use crate::body::{DotStuffer, LineNormalizer};
use crate::capabilities::{Capabilities, Extension};
use crate::command::{
    Address, BodyType, Command, Domain, DsnReturn, EnvelopeId, MailParams, Notify,
    OriginalRecipient, RcptParams, ReversePath,
};
use crate::error::PolicyError;
use crate::error::{
    ArgumentError, AuthError, Field, InvalidInputError, ProtocolError, RecipientRefusal, SmtpError,
};
use crate::reply::{Reply, ReplyCode, ReplyParser};
use crate::sasl::{AuthInput, AuthMechanism, ChannelBinding, SaslExchange, SaslStep};
use crate::state::{SessionState, SmtpOp};
use crate::transcript::TranscriptSink;

/// Upper bound of a MAIL line without the sender: `MAIL FROM:<>`, SIZE, BODY, SMTPUTF8, RET,
/// REQUIRETLS and an ENVID of 100 characters xtext-encoded (300 bytes), with CRLF.
const MAIL_LINE_OVERHEAD: usize = 400;
/// Upper bound of a RCPT line without the address: `RCPT TO:<>`, the longest NOTIFY and CRLF.
const RCPT_LINE_OVERHEAD: usize = 48;

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

/// The most body bytes a transaction may send, and who set that bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BodyLimit {
    bytes: u64,
    source: LimitSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LimitSource {
    /// The size the caller declared (in memory: computed; streamed: the hint).
    Declared,
    /// [`Policy::max_message_size`](crate::policy::Policy::max_message_size).
    Policy,
    /// The server's `SIZE` limit.
    Server,
}

impl BodyLimit {
    /// The error for a body that went past this bound after `sent` bytes.
    fn exceeded(self, sent: u64) -> SmtpError {
        match self.source {
            LimitSource::Declared => InvalidInputError::BodyLongerThanDeclared {
                declared: self.bytes,
            }
            .into(),
            LimitSource::Policy => PolicyError::new(format!(
                "message too large (more than {} bytes)",
                self.bytes
            ))
            .into(),
            LimitSource::Server => ProtocolError::MessageTooLarge {
                size: sent,
                limit: self.bytes,
            }
            .into(),
        }
    }
}

/// How body bytes are put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyEncoding {
    /// Bare CR and LF become CRLF, and a final CRLF is added when missing.
    Lines,
    /// `BODY=BINARYMIME` over BDAT: byte for byte (RFC 3030 section 3).
    Binary,
}

/// Per-message options beyond the envelope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    from: ReversePath,
    to: Vec<Address>,
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

/// What a queued command's reply will answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Greeting,
    Hello(SmtpOp),
    StartTls,
    Auth,
    Rset { lazy: bool },
    Noop,
    Quit,
    Mail,
    Rcpt(usize),
    Data,
    DataEnd,
    Bdat { last: bool },
}

impl Pending {
    /// Replies that belong to a mail transaction (counted in [`Transaction::owed`]).
    fn is_txn(self) -> bool {
        matches!(
            self,
            Pending::Rset { lazy: true }
                | Pending::Mail
                | Pending::Rcpt(_)
                | Pending::Data
                | Pending::DataEnd
                | Pending::Bdat { .. }
        )
    }

    fn op(self) -> SmtpOp {
        match self {
            Pending::Greeting => SmtpOp::Greeting,
            Pending::Hello(op) => op,
            Pending::StartTls => SmtpOp::StartTls,
            Pending::Auth => SmtpOp::Auth,
            Pending::Rset { .. } => SmtpOp::Rset,
            Pending::Noop => SmtpOp::Noop,
            Pending::Quit => SmtpOp::Quit,
            Pending::Mail => SmtpOp::MailFrom,
            Pending::Rcpt(_) => SmtpOp::RcptTo,
            Pending::Data => SmtpOp::Data,
            Pending::DataEnd | Pending::Bdat { last: true } => SmtpOp::DataEnd,
            Pending::Bdat { last: false } => SmtpOp::Bdat,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InFlight {
    what: Pending,
    bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyMode {
    /// DATA with dot-stuffing.
    Data,
    /// One `BDAT size LAST` whose size is known up front.
    BdatWhole { size: u64 },
    /// One `BDAT n` per chunk, then `BDAT m LAST`.
    BdatChunked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// MAIL / RCPT / DATA being queued or answered.
    Envelope,
    /// Waiting for body bytes from the caller.
    Body,
    /// The body is complete; waiting for the final reply(ies).
    Finishing,
}

#[derive(Debug)]
struct Transaction {
    envelope: Envelope,
    mail_params: MailParams,
    rcpt_params: RcptParams,
    mode: BodyMode,
    size: Option<u64>,
    policy: RecipientPolicy,
    phase: Phase,
    rset_queued: bool,
    mail_queued: bool,
    mail_accepted: bool,
    next_rcpt: usize,
    rcpt_replies: Vec<Option<Reply>>,
    /// `ORCPT=` per recipient (empty for none); each is moved into the RCPT line that uses it.
    original_recipients: Vec<Option<OriginalRecipient>>,
    rcpt_outstanding: usize,
    accepted: usize,
    refused: usize,
    data_queued: bool,
    bdat_header_written: bool,
    bdat_outstanding: usize,
    body_written: u64,
    /// The most body bytes this transaction may send.
    limit: Option<BodyLimit>,
    /// How the body is encoded.
    encoding: BodyEncoding,
    /// Set when the body ended with the final dot / `BDAT LAST` (the server closed the
    /// transaction, successfully or not).
    ended: bool,
    /// LMTP: per-recipient replies still expected after the body.
    lmtp_expected: usize,
    lmtp_replies: Vec<Reply>,
    final_reply: Option<Reply>,
    failure: Option<SmtpError>,
    /// Replies still owed to this transaction (its entries in the pending queue).
    owed: usize,
    /// The final dot or `BDAT ... LAST` is queued: the server will close the transaction.
    final_queued: bool,
}

/// The sans-IO SMTP client engine.
///
/// # Calling contract
///
/// * **Inputs**: [`feed`](Self::feed) (bytes read from the server), [`handle_eof`](Self::handle_eof),
///   [`handle_timeout`](Self::handle_timeout), [`handle_io_error`](Self::handle_io_error) and
///   [`tls_established`](Self::tls_established).
/// * **Commands**: [`login`](Self::login), [`login_auto`](Self::login_auto),
///   [`start_tls`](Self::start_tls), [`start_mail`](Self::start_mail),
///   [`send_body`](Self::send_body), [`finish_body`](Self::finish_body), [`rset`](Self::rset),
///   [`noop`](Self::noop), [`quit`](Self::quit). A command that returns `Err` queued nothing
///   (except where its doc says the session was closed).
/// * **Outputs**: [`poll_transmit`](Self::poll_transmit) (bytes to write, in order),
///   [`poll_event`](Self::poll_event) and [`timeout`](Self::timeout). After every input or command,
///   write everything `poll_transmit` yields and drain `poll_event`. `None` means "nothing now";
///   only a later input or command can change that.
/// * **Getters**: [`state`](Self::state), [`capabilities`](Self::capabilities),
///   [`is_tls`](Self::is_tls), [`wants_body`](Self::wants_body).
///
/// The engine never performs I/O and never reads a clock. A fatal error is sticky: the session
/// moves to [`SessionState::Closed`], emits [`Event::Failed`], discards unsent bytes, and every
/// later command returns the same error. The only thing left to do then is to close the transport.
///
/// # Pipelining and the TCP window
///
/// With PIPELINING the engine sends MAIL, the RCPTs and DATA (or `BDAT ... LAST` with the body) in
/// one flight, and matches every reply to its command in order. A driver that writes a whole
/// flight before reading could deadlock against a server that stops reading while its replies
/// back up (RFC 2920 section 3.1), so the engine caps the bytes of commands sent and not yet
/// answered at [`SessionConfig::max_flight_bytes`]; a longer recipient list goes out in several
/// flights as replies come back. Streamed BDAT chunks are windowed the same way
/// ([`SessionConfig::max_bdat_in_flight`]).
///
/// # Example: a driver loop over an in-memory "server"
///
/// ```
/// use smtp_proto::session::{Event, Session, SessionConfig};
/// use smtp_proto::command::Domain;
///
/// let mut session = Session::new(Domain::new("client.example").unwrap(), SessionConfig::default());
/// session.feed(b"220 mx.example ESMTP\r\n");
/// assert_eq!(session.poll_transmit().unwrap(), &b"EHLO client.example\r\n"[..]);
/// session.feed(b"250-mx.example\r\n250 PIPELINING\r\n");
/// let mut ready = false;
/// while let Some(event) = session.poll_event() {
///     ready |= event == Event::Ready;
/// }
/// assert!(ready);
/// ```
pub struct Session {
    config: SessionConfig,
    ehlo_domain: Domain,
    parser: ReplyParser,
    out: BytesMut,
    scratch: BytesMut,
    events: VecDeque<Event>,
    pending: VecDeque<InFlight>,
    in_flight_bytes: usize,
    state: SessionState,
    /// The state to return to after RSET / NOOP.
    idle_state: SessionState,
    caps: Capabilities,
    tls: bool,
    awaiting_upgrade: bool,
    authenticated: Option<AuthMechanism>,
    sasl: Option<SaslExchange>,
    sasl_detail: Option<String>,
    sasl_failure: Option<AuthError>,
    txn: Option<Transaction>,
    /// Earlier transactions whose body is complete and whose last replies are still owed
    /// (batch chaining); their pending entries all come before those of `txn`.
    finishing: VecDeque<Transaction>,
    needs_rset: bool,
    fatal: Option<SmtpError>,
    reply_seq: u64,
    stuffer: DotStuffer,
    normalizer: LineNormalizer,
    /// True while `out` holds an AUTH payload: it is handed out in a buffer that wipes itself
    /// when dropped, and `out` is wiped before reuse.
    out_holds_secret: bool,
    /// Bytes wiped by [`Session::wipe_out`] (tests check that secrets are wiped).
    #[cfg(test)]
    wiped: usize,
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.state)
            .field("tls", &self.tls)
            .field("authenticated", &self.authenticated)
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session on a freshly opened connection, waiting for the greeting. `ehlo_domain` is what
    /// the client calls itself in EHLO.
    pub fn new(ehlo_domain: Domain, config: SessionConfig) -> Session {
        let parser = ReplyParser::new(config.limits);
        let tls = config.tls;
        let mut pending = VecDeque::with_capacity(16);
        pending.push_back(InFlight {
            what: Pending::Greeting,
            bytes: 0,
        });
        Session {
            config,
            ehlo_domain,
            parser,
            out: BytesMut::with_capacity(4096),
            scratch: BytesMut::new(),
            events: VecDeque::with_capacity(8),
            pending,
            in_flight_bytes: 0,
            state: SessionState::Greeting,
            idle_state: SessionState::Authentication,
            caps: Capabilities::default(),
            tls,
            awaiting_upgrade: false,
            authenticated: None,
            sasl: None,
            sasl_detail: None,
            sasl_failure: None,
            txn: None,
            finishing: VecDeque::new(),
            needs_rset: false,
            fatal: None,
            reply_seq: 0,
            stuffer: DotStuffer::new(),
            normalizer: LineNormalizer::new(),
            out_holds_secret: false,
            #[cfg(test)]
            wiped: 0,
        }
    }

    // ---------------------------------------------------------------- getters

    /// The session state.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// What the server advertised in its latest EHLO reply (empty before it, after HELO, and
    /// between STARTTLS and the new EHLO: capabilities from before TLS are never reused).
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// True when the connection is encrypted (implicit TLS, or after STARTTLS).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The mechanism of a successful AUTH, if any.
    pub fn authenticated(&self) -> Option<AuthMechanism> {
        self.authenticated
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// True while the engine accepts body bytes through [`send_body`](Self::send_body). Becomes
    /// false when too many BDAT chunks are unanswered (read replies, then check again) or when the
    /// transaction failed before any body byte was committed.
    pub fn wants_body(&self) -> bool {
        let Some(txn) = &self.txn else { return false };
        if txn.phase != Phase::Body || self.state == SessionState::Closed {
            return false;
        }
        match txn.mode {
            BodyMode::Data => true,
            BodyMode::BdatWhole { .. } => txn.failure.is_none() || txn.bdat_header_written,
            BodyMode::BdatChunked => {
                txn.failure.is_none() && txn.bdat_outstanding < self.config.max_bdat_in_flight
            }
        }
    }

    /// True when [`poll_event`](Self::poll_event) has something.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// True when [`poll_transmit`](Self::poll_transmit) has something.
    pub fn has_transmit(&self) -> bool {
        !self.out.is_empty()
    }

    /// `Ok` while the session is open; otherwise the error every command would return (the fatal
    /// error that closed it, or [`InvalidInputError::WrongState`] after QUIT).
    pub fn check_usable(&self) -> Result<(), SmtpError> {
        self.check_open(SmtpOp::Noop)
    }

    /// True when a fatal error has closed the session.
    pub fn is_failed(&self) -> bool {
        self.fatal.is_some()
    }

    // ---------------------------------------------------------------- outputs

    /// The next bytes to write to the server, if any. Write them in order, completely.
    ///
    /// Bytes that carry an AUTH payload (a password or token in base64, a SCRAM proof) come in a
    /// buffer of their own that is overwritten with zeros when the last handle to it is dropped,
    /// and the engine's buffer is wiped too; keep no copy of them. (What the transport does
    /// with them, e.g. a TLS library's record buffers, is out of the engine's reach.)
    #[must_use = "the bytes must be written to the server"]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            None
        } else if self.out_holds_secret {
            let wiping = WipeOnDrop(self.out.to_vec());
            self.wipe_out(0);
            Some(Bytes::from_owner(wiping))
        } else {
            Some(self.out.split().freeze())
        }
    }

    /// Zero `out` from `from` on and drop those bytes (the secret they may hold must not
    /// linger in the buffer's spare capacity).
    fn wipe_out(&mut self, from: usize) {
        if self.out_holds_secret {
            zeroize::Zeroize::zeroize(&mut self.out[from..]);
            #[cfg(test)]
            {
                self.wiped += self.out.len() - from;
            }
        }
        self.out.truncate(from);
        if from == 0 {
            self.out_holds_secret = false;
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The current wait, when a reply is awaited: the driver must call
    /// [`handle_timeout`](Self::handle_timeout) if it is not complete within `limit`.
    pub fn timeout(&self) -> Option<Wait> {
        if self.state == SessionState::Closed || self.awaiting_upgrade {
            return None;
        }
        self.pending.front().map(|p| Wait {
            op: p.what.op(),
            limit: self.config.timeouts.for_reply(p.what.op()),
            seq: self.reply_seq,
        })
    }

    /// How long writing one block of data may take (RFC 5321's data block timeout).
    pub fn write_timeout(&self) -> Duration {
        self.config.timeouts.data_block
    }

    // ---------------------------------------------------------------- inputs

    /// Bytes read from the server, in any split. Replies are matched to commands in order.
    pub fn feed(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            if self.state == SessionState::Closed {
                return;
            }
            if self.awaiting_upgrade {
                // The upgrade request of the same read is withdrawn: a driver must never start a
                // handshake with a server that has already shown itself hostile.
                self.events.retain(|e| *e != Event::UpgradeTls);
                self.fail(ProtocolError::ResponseInjection { bytes: input.len() }.into());
                return;
            }
            match self.parser.push(input) {
                Err(error) => {
                    let during = self.current_op();
                    self.fail(ProtocolError::Malformed { during, error }.into());
                    return;
                }
                Ok(pushed) => {
                    input = &input[pushed.consumed.min(input.len())..];
                    match pushed.reply {
                        Some(reply) => {
                            self.reply_seq = self.reply_seq.wrapping_add(1);
                            self.on_reply(reply);
                        }
                        None if pushed.consumed == 0 => return,
                        None => {}
                    }
                }
            }
        }
    }

    /// The server closed the connection (a read returned 0 bytes).
    pub fn handle_eof(&mut self) {
        match self.state {
            SessionState::Closed => {}
            SessionState::Quit => self.close_cleanly(),
            _ => {
                let during = self.current_op();
                self.fail(ProtocolError::ConnectionClosed { during }.into());
            }
        }
    }

    /// The current wait's limit ran out. Harmless when nothing is awaited.
    pub fn handle_timeout(&mut self) {
        if self.state == SessionState::Closed {
            return;
        }
        if let Some(wait) = self.timeout() {
            self.fail(SmtpError::Timeout {
                during: wait.op,
                after: wait.limit,
            });
        }
    }

    /// Writing to the server did not finish within `after`: one write took longer than
    /// [`write_timeout`](Self::write_timeout), or the body fell behind the write-progress rule
    /// ([`Timeouts::min_write_rate`]). Fatal.
    pub fn handle_write_timeout(&mut self, after: Duration) {
        if self.state == SessionState::Closed {
            return;
        }
        let during = self.current_op();
        self.fail(SmtpError::Timeout { during, after });
    }

    /// The session's total deadline ([`Timeouts::total`]) passed. Fatal; harmless once closed.
    pub fn handle_deadline(&mut self) {
        if self.state == SessionState::Closed {
            return;
        }
        let during = if self.awaiting_upgrade {
            SmtpOp::TlsHandshake
        } else {
            self.current_op()
        };
        let after = self.config.timeouts.total.unwrap_or_default();
        self.fail(SmtpError::DeadlineExceeded { during, after });
    }

    /// The transport failed (a write, a read, the TLS upgrade). Fatal.
    pub fn handle_io_error(&mut self, kind: std::io::ErrorKind, message: &str) {
        if self.state == SessionState::Closed {
            return;
        }
        let during = if self.awaiting_upgrade {
            SmtpOp::TlsHandshake
        } else {
            self.current_op()
        };
        self.fail(SmtpError::io(during, kind, message));
    }

    /// The transport finished the TLS handshake after [`Event::UpgradeTls`]. Capabilities are
    /// forgotten and EHLO is sent again.
    pub fn tls_established(&mut self) -> Result<(), SmtpError> {
        self.check_open(SmtpOp::TlsHandshake)?;
        if !self.awaiting_upgrade {
            return Err(self.wrong_state(SmtpOp::TlsHandshake));
        }
        self.awaiting_upgrade = false;
        self.tls = true;
        self.caps = Capabilities::default();
        self.parser.reset();
        self.config.audit.record(&AuditEvent::TlsUpgraded);
        self.send_hello();
        Ok(())
    }

    // ---------------------------------------------------------------- commands

    /// Send STARTTLS. Allowed only right after the EHLO handshake on a plaintext connection.
    ///
    /// Fails closed: if the server did not advertise STARTTLS the session is closed with
    /// [`ProtocolError::ExtensionUnavailable`], so nothing can continue in plaintext by accident;
    /// a refusal of the command closes it too.
    pub fn start_tls(&mut self) -> Result<(), SmtpError> {
        self.check_open(SmtpOp::StartTls)?;
        if self.state != SessionState::Authentication || self.tls || !self.pending.is_empty() {
            return Err(self.wrong_state(SmtpOp::StartTls));
        }
        if !self.caps.has(Extension::StartTls) {
            let err: SmtpError = ProtocolError::ExtensionUnavailable { name: "STARTTLS" }.into();
            self.fail_silently(err.clone());
            return Err(err);
        }
        self.state = SessionState::StartTls;
        self.queue(Command::StartTls, Pending::StartTls);
        Ok(())
    }

    /// Authenticate with PLAIN, or LOGIN when PLAIN is not offered. Never picks XOAUTH2 or
    /// OAUTHBEARER: a token is not a password. Never picks SCRAM either, which needs a nonce: see
    /// [`login_auto_with_input`](Self::login_auto_with_input).
    pub fn login_auto(&mut self, user: &str, password: &str) -> Result<(), SmtpError> {
        self.login_auto_with_input(user, password, AuthInput::new())
    }

    /// Authenticate with the best password mechanism the server offers and `input` allows, in
    /// this order:
    ///
    /// 1. SCRAM-SHA-256-PLUS, when the connection is TLS and `input` has a nonce and the
    ///    `tls-exporter` data;
    /// 2. SCRAM-SHA-256, when `input` has a nonce;
    /// 3. PLAIN;
    /// 4. LOGIN.
    ///
    /// SCRAM is skipped without the `scram` feature. Never picks XOAUTH2 or OAUTHBEARER. None
    /// usable is [`AuthError::UnsupportedMechanism`] with `mechanism: None`, and nothing is sent.
    pub fn login_auto_with_input(
        &mut self,
        user: &str,
        password: &str,
        input: AuthInput,
    ) -> Result<(), SmtpError> {
        self.check_login_state()?;
        let scram = cfg!(feature = "scram") && input.nonce().is_some();
        let plus = scram && self.tls && input.tls_exporter().is_some();
        let mechanism = [
            (AuthMechanism::ScramSha256Plus, plus),
            (AuthMechanism::ScramSha256, scram),
            (AuthMechanism::Plain, true),
            (AuthMechanism::Login, true),
        ]
        .into_iter()
        .find(|(m, usable)| *usable && self.caps.supports_auth(*m))
        .map(|(m, _)| m)
        .ok_or(AuthError::UnsupportedMechanism { mechanism: None })?;
        self.login_with_input(mechanism, user, password, input)
    }

    /// Authenticate with `mechanism`. Allowed only right after the EHLO handshake (and again after
    /// a refused attempt); a second login after success is [`InvalidInputError::WrongState`].
    /// SCRAM needs a nonce: use [`login_with_input`](Self::login_with_input) for it.
    pub fn login(
        &mut self,
        mechanism: AuthMechanism,
        user: &str,
        secret: &str,
    ) -> Result<(), SmtpError> {
        self.login_with_input(mechanism, user, secret, AuthInput::new())
    }

    /// Authenticate with `mechanism`, with what the driver supplies for SCRAM in `input`.
    ///
    /// Checks, in order, each failing with nothing queued: the session state; the mechanism's
    /// cargo feature ([`InvalidInputError::FeatureDisabled`]); that the connection is encrypted
    /// or [`SessionConfig::plaintext_auth`] allows AUTH without TLS
    /// ([`AuthError::PlaintextRefused`]); the arguments, and for SCRAM a
    /// nonce in `input` ([`InvalidInputError::Argument`] with [`Field::Nonce`]); that the server
    /// offers the mechanism ([`AuthError::UnsupportedMechanism`]); for SCRAM-SHA-256-PLUS, a TLS
    /// connection and `tls-exporter` data in `input` ([`AuthError::ChannelBindingUnavailable`]).
    ///
    /// For SCRAM-SHA-256 the GS2 flag is `y` when `input` has binding data on TLS but the server
    /// did not offer -PLUS (RFC 5802 section 6 downgrade protection), `n` otherwise.
    ///
    /// A SCRAM server that replies success before proving it knows the password, or proves it
    /// wrongly, closes the session with [`AuthError::Scram`].
    pub fn login_with_input(
        &mut self,
        mechanism: AuthMechanism,
        user: &str,
        secret: &str,
        input: AuthInput,
    ) -> Result<(), SmtpError> {
        self.check_login_state()?;
        mechanism.check_compiled_in()?;
        if !self.tls && self.config.plaintext_auth == PlaintextAuth::Refuse {
            return Err(AuthError::PlaintextRefused { mechanism }.into());
        }
        let mut exchange = if mechanism.is_scram() {
            let nonce = input.nonce().ok_or(InvalidInputError::argument(
                Field::Nonce,
                ArgumentError::Empty,
            ))?;
            let exporter = input.tls_exporter().filter(|_| self.tls).copied();
            let binding = match (mechanism, exporter) {
                (AuthMechanism::ScramSha256Plus, Some(data)) => ChannelBinding::TlsExporter(data),
                (AuthMechanism::ScramSha256Plus, None) => ChannelBinding::Unsupported,
                (_, Some(_)) if !self.caps.supports_auth(AuthMechanism::ScramSha256Plus) => {
                    ChannelBinding::NotOffered
                }
                _ => ChannelBinding::Unsupported,
            };
            let exchange = SaslExchange::new_scram(
                user,
                secret,
                nonce,
                binding,
                self.config.max_scram_iterations,
            )?;
            if exchange.mechanism() != mechanism && self.caps.supports_auth(mechanism) {
                return Err(AuthError::ChannelBindingUnavailable { mechanism }.into());
            }
            exchange
        } else {
            SaslExchange::new(mechanism, user, secret)?
        };
        if !self.caps.supports_auth(mechanism) {
            return Err(AuthError::UnsupportedMechanism {
                mechanism: Some(mechanism),
            }
            .into());
        }
        let before = self.out.len();
        exchange.write_initial(&mut self.out);
        self.out_holds_secret = true;
        let initial_response = self.out.len() - before > mechanism.name().len() + 7;
        self.log_client(&format!(
            "AUTH {mechanism}{}",
            if initial_response { " [redacted]" } else { "" }
        ));
        self.push_pending(Pending::Auth, self.out.len() - before);
        self.sasl = Some(exchange);
        self.sasl_detail = None;
        self.sasl_failure = None;
        self.state = SessionState::Authenticating;
        Ok(())
    }

    /// Start a message: checks (policy, SIZE, SMTPUTF8, DSN, REQUIRETLS) run first and queue
    /// nothing on failure; then MAIL, RCPT and DATA / BDAT are queued as pipelining allows.
    /// The body is asked for with [`Event::BodyWanted`]; the result is [`Event::Sent`] or
    /// [`Event::Failed`].
    pub fn start_mail(
        &mut self,
        envelope: Envelope,
        body: BodyInfo,
        options: &MessageOptions,
    ) -> Result<(), SmtpError> {
        self.check_open(SmtpOp::MailFrom)?;
        let chain = self.can_chain();
        if !chain
            && (!matches!(
                self.state,
                SessionState::Authentication | SessionState::Ready
            ) || !self.pending.is_empty())
        {
            return Err(self.wrong_state(SmtpOp::MailFrom));
        }
        let known_size = match body {
            BodyInfo::Known { size, .. } => Some(size),
            BodyInfo::Streamed { size_hint } => size_hint,
        };
        // Local policy first: nothing about this message reaches the server if it refuses.
        let policy = &self.config.policy;
        if let Err(e) = policy
            .check_sender(&envelope.from)
            .and_then(|_| policy.check_recipients(&envelope.to))
            .and_then(|_| policy.check_message_size(known_size))
        {
            self.config.audit.record(&AuditEvent::PolicyRefused {
                reason: e.reason.clone(),
            });
            return Err(e.into());
        }
        let caps = &self.caps;
        // SMTPUTF8 (RFC 6531).
        let needs_utf8 =
            envelope.from.needs_smtputf8() || envelope.to.iter().any(Address::needs_smtputf8);
        if needs_utf8 && !caps.has(Extension::SmtpUtf8) {
            let field = if envelope.from.needs_smtputf8() {
                Field::ReversePath
            } else {
                Field::ForwardPath
            };
            return Err(InvalidInputError::argument(field, ArgumentError::NeedsSmtpUtf8).into());
        }
        // SIZE (RFC 1870): refuse before anything is sent.
        if let (Some(size), Some(limit)) = (known_size, caps.size_limit()) {
            if size > limit {
                return Err(ProtocolError::MessageTooLarge { size, limit }.into());
            }
        }
        // DSN (RFC 3461): never silently dropped.
        let wants_dsn = options.dsn_return.is_some()
            || options.envelope_id.is_some()
            || options.notify.is_some()
            || !options.original_recipients.is_empty();
        if !options.original_recipients.is_empty()
            && options.original_recipients.len() != envelope.to.len()
        {
            return Err(InvalidInputError::argument(
                Field::OriginalRecipient,
                ArgumentError::Syntax("give one original recipient per recipient, or none"),
            )
            .into());
        }
        if wants_dsn && !caps.has(Extension::Dsn) {
            return Err(ProtocolError::ExtensionUnavailable { name: "DSN" }.into());
        }
        // REQUIRETLS (RFC 8689): only on TLS, only when offered.
        if options.require_tls && (!self.tls || !caps.has(Extension::RequireTls)) {
            return Err(ProtocolError::ExtensionUnavailable { name: "REQUIRETLS" }.into());
        }
        let chunking = self.config.chunking == Use::WhenOffered && caps.has(Extension::Chunking);
        let body_type = options.body_type.or(match body {
            BodyInfo::Known {
                eight_bit: true, ..
            } if caps.has(Extension::EightBitMime) => Some(BodyType::EightBitMime),
            BodyInfo::Streamed { .. } if caps.has(Extension::EightBitMime) => {
                Some(BodyType::EightBitMime)
            }
            _ => None,
        });
        if body_type == Some(BodyType::BinaryMime) && !(chunking && caps.has(Extension::BinaryMime))
        {
            return Err(ProtocolError::ExtensionUnavailable { name: "BINARYMIME" }.into());
        }
        let mode = match (chunking, body) {
            (false, _) => BodyMode::Data,
            (true, BodyInfo::Known { size, .. }) => BodyMode::BdatWhole { size },
            (true, BodyInfo::Streamed { .. }) => BodyMode::BdatChunked,
        };
        let mail_params = MailParams {
            size: if caps.has(Extension::Size) {
                known_size
            } else {
                None
            },
            body: body_type,
            smtputf8: needs_utf8,
            ret: options.dsn_return,
            envid: options.envelope_id.clone(),
            requiretls: options.require_tls,
        };
        let rcpt_params = RcptParams {
            notify: options.notify,
            orcpt: None,
        };
        let original_recipients = options
            .original_recipients
            .iter()
            .cloned()
            .map(Some)
            .collect();
        let encoding = if body_type == Some(BodyType::BinaryMime) {
            BodyEncoding::Binary
        } else {
            BodyEncoding::Lines
        };
        // What is sent is counted against the tightest known bound, so a stream cannot send
        // more than it declared, nor more than the policy or the server allow.
        let limit = [
            known_size.map(|bytes| BodyLimit {
                bytes,
                source: LimitSource::Declared,
            }),
            self.config
                .policy
                .max_message_size()
                .map(|bytes| BodyLimit {
                    bytes,
                    source: LimitSource::Policy,
                }),
            caps.size_limit().map(|bytes| BodyLimit {
                bytes,
                source: LimitSource::Server,
            }),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|l| l.bytes);
        let n = envelope.to.len();
        if chain {
            // RFC 2920 section 3.1: MAIL may follow the end of the previous message's data in
            // the same group. That transaction's last replies are matched before ours.
            if let Some(previous) = self.txn.take() {
                self.finishing.push_back(previous);
            }
        }
        self.txn = Some(Transaction {
            envelope,
            mail_params,
            rcpt_params,
            mode,
            size: known_size,
            policy: options
                .recipient_policy
                .unwrap_or(self.config.recipient_policy),
            phase: Phase::Envelope,
            rset_queued: false,
            mail_queued: false,
            mail_accepted: false,
            next_rcpt: 0,
            rcpt_replies: vec![None; n],
            original_recipients,
            rcpt_outstanding: 0,
            accepted: 0,
            refused: 0,
            data_queued: false,
            bdat_header_written: false,
            bdat_outstanding: 0,
            body_written: 0,
            limit,
            encoding,
            ended: false,
            lmtp_expected: 0,
            lmtp_replies: Vec::new(),
            final_reply: None,
            failure: None,
            owed: 0,
            final_queued: false,
        });
        self.stuffer = DotStuffer::new();
        self.normalizer = LineNormalizer::new();
        self.scratch.clear();
        self.state = SessionState::Transaction;
        self.pump();
        Ok(())
    }

    /// Give body bytes (any chunking; CRLF normalisation and dot-stuffing are applied, except
    /// for `BODY=BINARYMIME`, which goes out byte for byte). Call only while
    /// [`wants_body`](Self::wants_body) is true; bytes given after the transaction failed before
    /// any body byte was committed are discarded.
    ///
    /// The bytes sent are counted: past the size the message declared (its [`BodyInfo`]), the
    /// policy's [`max_message_size`](crate::policy::Policy::max_message_size) or the server's
    /// `SIZE`, whichever is smallest, the message is abandoned before its end of data (nothing
    /// of this chunk is sent, no final dot, no `BDAT LAST`) and the session is closed with
    /// [`InvalidInputError::BodyLongerThanDeclared`], a [`PolicyError`] or
    /// [`ProtocolError::MessageTooLarge`].
    ///
    /// With streamed BDAT the bytes are gathered into chunks of
    /// [`SessionConfig::bdat_chunk_size`], and the last chunk is held back until
    /// [`finish_body`](Self::finish_body) so that it carries `LAST`.
    pub fn send_body(&mut self, chunk: &[u8]) -> Result<(), SmtpError> {
        self.check_open(SmtpOp::DataEnd)?;
        let Some((mode, failed, header)) = self.body_phase() else {
            return Err(self.wrong_state(SmtpOp::DataEnd));
        };
        let encoding = self
            .txn
            .as_ref()
            .map_or(BodyEncoding::Lines, |t| t.encoding);
        let written = match mode {
            // Count the message bytes, not the stuffed dots: the outcome's size is what the
            // server stores, the same for DATA and BDAT.
            BodyMode::Data => self.stuffer.encode(chunk, &mut self.out),
            BodyMode::BdatWhole { size } => {
                if failed && !header {
                    return Ok(());
                }
                if !header {
                    self.start_bdat_whole(size);
                }
                let before = self.out.len();
                encode_bdat(encoding, &mut self.normalizer, chunk, &mut self.out);
                self.out.len() - before
            }
            BodyMode::BdatChunked => {
                if failed {
                    return Ok(());
                }
                let mut scratch = core::mem::take(&mut self.scratch);
                let before = scratch.len();
                encode_bdat(encoding, &mut self.normalizer, chunk, &mut scratch);
                let n = scratch.len() - before;
                // Keep at least one byte back: the last chunk goes out with LAST.
                let size = self.config.bdat_chunk_size.max(1);
                while scratch.len() > size {
                    let piece = scratch.split_to(size);
                    self.write_bdat_header(size as u64, false);
                    self.out.extend_from_slice(&piece);
                    self.push_pending(Pending::Bdat { last: false }, 0);
                    if let Some(t) = self.txn.as_mut() {
                        t.bdat_outstanding += 1;
                    }
                }
                self.scratch = scratch;
                n
            }
        };
        self.count_body(written)
    }

    /// Add `written` body bytes to the transaction's count; past its limit, abandon the message.
    fn count_body(&mut self, written: usize) -> Result<(), SmtpError> {
        let Some(t) = self.txn.as_mut() else {
            return Ok(());
        };
        t.body_written = t.body_written.saturating_add(written as u64);
        match t.limit {
            Some(limit) if t.body_written > limit.bytes => {
                // Nothing queued is sent: `fail` drops the unsent bytes, this chunk and any end
                // of data with them, so the server never sees the end of this message.
                let err = limit.exceeded(t.body_written);
                self.fail(err.clone());
                Err(err)
            }
            _ => Ok(()),
        }
    }

    /// End the body: the terminator (`.`) or the last BDAT is queued and the final reply awaited.
    pub fn finish_body(&mut self) -> Result<(), SmtpError> {
        self.check_open(SmtpOp::DataEnd)?;
        let Some((mode, failed, header)) = self.body_phase() else {
            return Err(self.wrong_state(SmtpOp::DataEnd));
        };
        let encoding = self
            .txn
            .as_ref()
            .map_or(BodyEncoding::Lines, |t| t.encoding);
        if let Some(t) = self.txn.as_mut() {
            t.phase = Phase::Finishing;
        }
        self.state = SessionState::Data;
        let mut written = 0;
        match mode {
            BodyMode::Data => {
                let before = self.out.len();
                self.stuffer.finish(&mut self.out);
                let body = self.txn.as_ref().map_or(0, |t| t.body_written);
                self.log_client(&format!("[message body: {body} bytes, dot-stuffed]"));
                self.log_client(".");
                written = self.out.len() - before - 3;
                self.push_pending(Pending::DataEnd, 0);
                if let Some(t) = self.txn.as_mut() {
                    t.final_queued = true;
                }
            }
            BodyMode::BdatWhole { size } => {
                if !failed || header {
                    if !header {
                        self.start_bdat_whole(size);
                    }
                    if encoding == BodyEncoding::Lines {
                        let before = self.out.len();
                        self.normalizer.finish(&mut self.out);
                        written = self.out.len() - before;
                    }
                    let total = self.txn.as_ref().map_or(0, |t| t.body_written) + written as u64;
                    if total != size {
                        // The body differs from the size declared in BDAT: the framing is now
                        // wrong, so the connection cannot be trusted any more.
                        let err: SmtpError = InvalidInputError::argument(
                            Field::Body,
                            ArgumentError::Syntax("body length differs from the declared size"),
                        )
                        .into();
                        self.fail(err.clone());
                        return Err(err);
                    }
                }
            }
            BodyMode::BdatChunked => {
                if !failed {
                    let mut scratch = core::mem::take(&mut self.scratch);
                    let before = scratch.len();
                    if encoding == BodyEncoding::Lines {
                        self.normalizer.finish(&mut scratch);
                    }
                    written = scratch.len() - before;
                    self.write_bdat_header(scratch.len() as u64, true);
                    self.out.extend_from_slice(&scratch);
                    scratch.clear();
                    self.scratch = scratch;
                    self.push_pending(Pending::Bdat { last: true }, 0);
                    if let Some(t) = self.txn.as_mut() {
                        t.final_queued = true;
                    }
                }
            }
        }
        self.count_body(written)?;
        self.maybe_complete_txn();
        Ok(())
    }

    /// The body mode, whether the transaction failed, and whether a BDAT header is out, when the
    /// engine is waiting for body bytes.
    fn body_phase(&self) -> Option<(BodyMode, bool, bool)> {
        self.txn
            .as_ref()
            .filter(|t| t.phase == Phase::Body)
            .map(|t| (t.mode, t.failure.is_some(), t.bdat_header_written))
    }

    fn start_bdat_whole(&mut self, size: u64) {
        if let Some(t) = self.txn.as_mut() {
            t.bdat_header_written = true;
        }
        self.write_bdat_header(size, true);
        self.log_client(&format!("[message body: {size} bytes]"));
        self.push_pending(Pending::Bdat { last: true }, 0);
        if let Some(t) = self.txn.as_mut() {
            t.final_queued = true;
        }
    }

    /// Send RSET (outside a transaction). Completes with [`Event::Done`].
    pub fn rset(&mut self) -> Result<(), SmtpError> {
        self.simple_command(Command::Rset, Pending::Rset { lazy: false })
    }

    /// Send NOOP. Completes with [`Event::Done`].
    pub fn noop(&mut self) -> Result<(), SmtpError> {
        self.simple_command(Command::Noop, Pending::Noop)
    }

    /// Send QUIT. Completes with [`Event::Closed`] when the server answers or closes.
    pub fn quit(&mut self) -> Result<(), SmtpError> {
        self.check_open(SmtpOp::Quit)?;
        if !self.pending.is_empty() || self.awaiting_upgrade || self.state == SessionState::Quit {
            return Err(self.wrong_state(SmtpOp::Quit));
        }
        self.state = SessionState::Quit;
        self.queue(Command::Quit, Pending::Quit);
        Ok(())
    }

    // ---------------------------------------------------------------- internals

    fn simple_command(&mut self, cmd: Command<'_>, what: Pending) -> Result<(), SmtpError> {
        let op = cmd.op();
        self.check_open(op)?;
        if !matches!(
            self.state,
            SessionState::Authentication | SessionState::Ready
        ) || !self.pending.is_empty()
        {
            return Err(self.wrong_state(op));
        }
        self.idle_state = self.state;
        self.state = SessionState::Command;
        if what == (Pending::Rset { lazy: false }) {
            // An explicit RSET also clears a transaction left open by a failure.
            self.needs_rset = false;
        }
        self.queue(cmd, what);
        Ok(())
    }

    fn check_open(&self, op: SmtpOp) -> Result<(), SmtpError> {
        match &self.fatal {
            Some(err) => Err(err.clone()),
            None if self.state == SessionState::Closed => Err(self.wrong_state(op)),
            None => Ok(()),
        }
    }

    fn check_login_state(&self) -> Result<(), SmtpError> {
        self.check_open(SmtpOp::Auth)?;
        if self.state != SessionState::Authentication || !self.pending.is_empty() {
            return Err(self.wrong_state(SmtpOp::Auth));
        }
        Ok(())
    }

    fn wrong_state(&self, op: SmtpOp) -> SmtpError {
        InvalidInputError::WrongState {
            op,
            state: self.state,
        }
        .into()
    }

    fn current_op(&self) -> SmtpOp {
        self.pending
            .front()
            .map(|p| p.what.op())
            .unwrap_or(match self.state {
                SessionState::Greeting => SmtpOp::Greeting,
                SessionState::Data => SmtpOp::DataEnd,
                _ => SmtpOp::Noop,
            })
    }

    /// Queue the expectation of a reply; a transaction's replies are counted against it.
    fn push_pending(&mut self, what: Pending, bytes: usize) {
        self.in_flight_bytes += bytes;
        if what.is_txn() {
            if let Some(t) = self.txn.as_mut() {
                t.owed += 1;
            }
        }
        self.pending.push_back(InFlight { what, bytes });
    }

    /// May the next transaction start before the current one's final reply (batch chaining)?
    /// Only with PIPELINING, once the current body is complete and its end (dot or `BDAT LAST`)
    /// is queued so the server will close that transaction whatever it answers, and while fewer
    /// than [`SessionConfig::max_chained`] earlier transactions are still owed replies.
    fn can_chain(&self) -> bool {
        self.pipelining()
            && !self.needs_rset
            && self.finishing.len() < self.config.max_chained
            && self.txn.as_ref().is_some_and(|t| {
                t.phase == Phase::Finishing && t.final_queued && t.failure.is_none() && t.owed > 0
            })
    }

    /// True when [`start_mail`](Self::start_mail) would be accepted now as far as the session's
    /// state goes: the session is idle, or the current message's body is complete and the next
    /// one may be chained behind it.
    pub fn ready_for_mail(&self) -> bool {
        self.fatal.is_none()
            && (self.can_chain()
                || (matches!(
                    self.state,
                    SessionState::Authentication | SessionState::Ready
                ) && self.pending.is_empty()))
    }

    fn queue(&mut self, cmd: Command<'_>, what: Pending) {
        let before = self.out.len();
        cmd.write_to(&mut self.out);
        let n = self.out.len() - before;
        self.log_written(before);
        self.push_pending(what, n);
    }

    /// The transcript sink, when there is one and it wants lines now.
    fn transcript(&self) -> Option<&dyn TranscriptSink> {
        self.config
            .transcript
            .as_deref()
            .filter(|sink| sink.enabled())
    }

    /// Log the command line(s) written to `out` from `from` on (never used for AUTH payloads).
    fn log_written(&self, from: usize) {
        if let Some(t) = self.transcript() {
            let bytes = &self.out[from..];
            let line = bytes.strip_suffix(b"\r\n").unwrap_or(bytes);
            t.client(&String::from_utf8_lossy(line));
        }
    }

    fn log_client(&self, line: &str) {
        if let Some(t) = self.transcript() {
            t.client(line);
        }
    }

    fn write_bdat_header(&mut self, size: u64, last: bool) {
        let before = self.out.len();
        Command::Bdat { size, last }.write_to(&mut self.out);
        self.log_written(before);
    }

    fn send_hello(&mut self) {
        self.state = SessionState::Ehlo;
        let domain = self.ehlo_domain.clone();
        match self.config.protocol {
            Protocol::Smtp => self.queue(Command::Ehlo(&domain), Pending::Hello(SmtpOp::Ehlo)),
            Protocol::Lmtp => self.queue(Command::Lhlo(&domain), Pending::Hello(SmtpOp::Lhlo)),
        }
    }

    fn pipelining(&self) -> bool {
        self.config.pipelining == Use::WhenOffered && self.caps.has(Extension::Pipelining)
    }

    /// May a command of at most `len` bytes be sent now?
    fn can_send(&self, len: usize) -> bool {
        if self.pending.is_empty() {
            return true;
        }
        self.pipelining() && self.in_flight_bytes + len <= self.config.max_flight_bytes
    }

    /// Queue whatever the transaction may send now.
    fn pump(&mut self) {
        let pipelining = self.pipelining();
        loop {
            let Some(txn) = self.txn.as_ref() else { return };
            if txn.failure.is_some() || txn.phase != Phase::Envelope {
                return;
            }
            if self.needs_rset && !txn.rset_queued {
                if !self.can_send(6) {
                    return;
                }
                if let Some(t) = self.txn.as_mut() {
                    t.rset_queued = true;
                }
                self.queue(Command::Rset, Pending::Rset { lazy: true });
                continue;
            }
            if !txn.mail_queued {
                // Worst case length of a MAIL line is bounded by the address and params; the
                // first command of a flight always goes.
                // (ENVID alone is up to 300 bytes once xtext-encoded.)
                if !self.can_send(MAIL_LINE_OVERHEAD + txn.envelope.sender_len()) {
                    return;
                }
                let txn = self.txn.as_mut().expect("transaction present");
                txn.mail_queued = true;
                let before = self.out.len();
                Command::MailFrom(&txn.envelope.from, &txn.mail_params).write_to(&mut self.out);
                let n = self.out.len() - before;
                self.log_written(before);
                self.push_pending(Pending::Mail, n);
                continue;
            }
            if txn.next_rcpt < txn.envelope.to.len() {
                // ` ORCPT=rfc822;` plus the address, each byte at most 3 once xtext-encoded.
                let orcpt_len = txn
                    .original_recipients
                    .get(txn.next_rcpt)
                    .and_then(Option::as_ref)
                    .map_or(0, |o| 14 + 3 * o.as_str().len());
                let len =
                    RCPT_LINE_OVERHEAD + txn.envelope.to[txn.next_rcpt].as_str().len() + orcpt_len;
                if !self.can_send(len) {
                    return;
                }
                let txn = self.txn.as_mut().expect("transaction present");
                let i = txn.next_rcpt;
                txn.next_rcpt += 1;
                txn.rcpt_outstanding += 1;
                txn.rcpt_params.orcpt = txn.original_recipients.get_mut(i).and_then(Option::take);
                let before = self.out.len();
                Command::RcptTo(&txn.envelope.to[i], &txn.rcpt_params).write_to(&mut self.out);
                let n = self.out.len() - before;
                self.log_written(before);
                self.push_pending(Pending::Rcpt(i), n);
                continue;
            }
            if txn.data_queued {
                return;
            }
            let all_answered = txn.rcpt_outstanding == 0 && txn.mail_accepted;
            if all_answered {
                let refused_ok = txn.policy == RecipientPolicy::AcceptPartial || txn.refused == 0;
                if txn.accepted == 0 || !refused_ok {
                    let err = self.recipients_refused();
                    let txn = self.txn.as_mut().expect("transaction present");
                    txn.failure = Some(err);
                    self.maybe_complete_txn();
                    return;
                }
            } else {
                let may_pipeline_data = pipelining
                    && (txn.policy == RecipientPolicy::AcceptPartial || txn.envelope.to.len() == 1);
                if !may_pipeline_data || !self.can_send(6) {
                    return;
                }
            }
            let txn = self.txn.as_mut().expect("transaction present");
            txn.data_queued = true;
            match txn.mode {
                BodyMode::Data => {
                    self.queue(Command::Data, Pending::Data);
                }
                BodyMode::BdatWhole { .. } | BodyMode::BdatChunked => {
                    txn.phase = Phase::Body;
                    self.state = SessionState::Data;
                    self.events.push_back(Event::BodyWanted);
                }
            }
            return;
        }
    }

    fn recipients_refused(&self) -> SmtpError {
        let txn = self.txn.as_ref().expect("transaction present");
        let refused = txn
            .rcpt_replies
            .iter()
            .enumerate()
            .filter_map(|(index, r)| {
                r.as_ref()
                    .filter(|r| !r.code().is_positive())
                    .map(|reply| RecipientRefusal {
                        index,
                        recipient: txn.envelope.to[index].as_str().to_owned(),
                        reply: reply.clone(),
                    })
            })
            .collect();
        ProtocolError::RecipientsRefused {
            refused,
            accepted: txn.accepted,
        }
        .into()
    }

    fn on_reply(&mut self, reply: Reply) {
        let Some(InFlight { what, bytes }) = self.pending.pop_front() else {
            if let Some(t) = self.transcript() {
                t.server(&reply);
            }
            let in_body = self
                .txn
                .as_ref()
                .is_some_and(|t| matches!(t.phase, Phase::Body | Phase::Finishing));
            let err = if in_body && !reply.code().is_positive() {
                // A refusal while the body is still being sent (some servers judge a message
                // before its end): report it as the message's refusal, with the server's text.
                // The framing is now unknown, so the session still closes.
                ProtocolError::UnexpectedCode {
                    during: SmtpOp::DataEnd,
                    reply,
                }
            } else {
                ProtocolError::UnsolicitedReply { state: self.state }
            };
            self.fail(err.into());
            return;
        };
        self.in_flight_bytes = self.in_flight_bytes.saturating_sub(bytes);
        if let Some(t) = self.transcript() {
            let scram = self.sasl.as_ref().is_some_and(|s| s.mechanism().is_scram());
            if what == Pending::Auth && scram && reply.code() == ReplyCode::AUTH_CHALLENGE {
                // The salt, iteration count and server signature together allow an offline
                // dictionary attack on the password, like the client proof: not logged.
                t.server(&Reply::new(reply.code(), None, "[redacted]"));
            } else {
                t.server(&reply);
            }
        }
        if what.is_txn() && !self.finishing.is_empty() {
            // The reply belongs to the oldest chained transaction: handle it with that one in
            // place, then put the current one back.
            let saved_state = self.state;
            let oldest = self.finishing.pop_front();
            let current = core::mem::replace(&mut self.txn, oldest);
            self.on_reply_in_txn(what, reply);
            if self.state == SessionState::Closed {
                return;
            }
            if let Some(unfinished) = self.txn.take() {
                self.finishing.push_front(unfinished);
            }
            self.txn = current;
            self.state = saved_state;
            self.pump();
            return;
        }
        self.on_reply_in_txn(what, reply);
    }

    fn on_reply_in_txn(&mut self, what: Pending, reply: Reply) {
        if what.is_txn() {
            if let Some(t) = self.txn.as_mut() {
                t.owed = t.owed.saturating_sub(1);
            }
        }
        let code = reply.code();
        if code == ReplyCode::SERVICE_UNAVAILABLE && what != Pending::Quit {
            // 421: the server is shutting the channel (RFC 5321 section 3.8).
            self.fail(
                ProtocolError::UnexpectedCode {
                    during: what.op(),
                    reply,
                }
                .into(),
            );
            return;
        }
        match what {
            Pending::Greeting => self.on_greeting(reply),
            Pending::Hello(op) => self.on_hello(op, reply),
            Pending::StartTls => {
                if code == ReplyCode::SERVICE_READY {
                    self.awaiting_upgrade = true;
                    self.parser.reset();
                    self.events.push_back(Event::UpgradeTls);
                } else {
                    self.fail(
                        ProtocolError::UnexpectedCode {
                            during: SmtpOp::StartTls,
                            reply,
                        }
                        .into(),
                    );
                }
            }
            Pending::Auth => self.on_auth(reply),
            Pending::Rset { lazy: false } | Pending::Noop => {
                self.state = self.idle_state;
                if code.is_positive() {
                    self.events.push_back(Event::Done {
                        op: what.op(),
                        reply,
                    });
                } else {
                    self.events.push_back(Event::Failed(
                        ProtocolError::UnexpectedCode {
                            during: what.op(),
                            reply,
                        }
                        .into(),
                    ));
                }
            }
            Pending::Quit => self.close_cleanly(),
            Pending::Rset { lazy: true } => {
                if code.is_positive() {
                    self.needs_rset = false;
                } else {
                    self.txn_fail(SmtpOp::Rset, reply);
                }
                self.after_txn_reply();
            }
            Pending::Mail => {
                if code.is_positive() {
                    if let Some(t) = self.txn.as_mut() {
                        t.mail_accepted = true;
                    }
                } else {
                    self.txn_fail(SmtpOp::MailFrom, reply);
                }
                self.after_txn_reply();
            }
            Pending::Rcpt(i) => {
                if let Some(t) = self.txn.as_mut() {
                    t.rcpt_outstanding = t.rcpt_outstanding.saturating_sub(1);
                    if code.is_positive() {
                        t.accepted += 1;
                    } else {
                        t.refused += 1;
                    }
                    if let Some(slot) = t.rcpt_replies.get_mut(i) {
                        *slot = Some(reply);
                    }
                }
                self.after_txn_reply();
            }
            Pending::Data => self.on_data_reply(reply),
            Pending::DataEnd | Pending::Bdat { last: true } => self.on_final_reply(reply),
            Pending::Bdat { last: false } => {
                if let Some(t) = self.txn.as_mut() {
                    t.bdat_outstanding = t.bdat_outstanding.saturating_sub(1);
                }
                if !code.is_positive() {
                    self.txn_fail(SmtpOp::Bdat, reply);
                }
                self.after_txn_reply();
            }
        }
    }

    fn on_greeting(&mut self, reply: Reply) {
        if reply.code() == ReplyCode::SERVICE_READY {
            self.config.audit.record(&AuditEvent::Connected);
            self.events.push_back(Event::Greeting(reply));
            self.send_hello();
        } else {
            self.fail(
                ProtocolError::UnexpectedCode {
                    during: SmtpOp::Greeting,
                    reply,
                }
                .into(),
            );
        }
    }

    fn on_hello(&mut self, op: SmtpOp, reply: Reply) {
        let code = reply.code().get();
        if reply.code().is_positive() {
            self.caps = if op == SmtpOp::Helo {
                Capabilities::default()
            } else {
                Capabilities::from_ehlo(&reply)
            };
            self.state = SessionState::Authentication;
            self.events.push_back(Event::Ready);
        } else if op == SmtpOp::Ehlo && (code == 500 || code == 502) {
            // RFC 5321 section 3.2: fall back to HELO only when EHLO is not recognised.
            let domain = self.ehlo_domain.clone();
            self.queue(Command::Helo(&domain), Pending::Hello(SmtpOp::Helo));
        } else {
            self.fail(ProtocolError::UnexpectedCode { during: op, reply }.into());
        }
    }

    fn on_auth(&mut self, reply: Reply) {
        let code = reply.code();
        let mechanism = match &self.sasl {
            Some(s) => s.mechanism(),
            None => {
                self.fail(
                    ProtocolError::UnsolicitedReply {
                        state: SessionState::Authenticating,
                    }
                    .into(),
                );
                return;
            }
        };
        if code == ReplyCode::AUTH_CHALLENGE && self.sasl_failure.is_none() {
            let before = self.out.len();
            self.out_holds_secret = true;
            let step = self.sasl.as_mut().map(|s| s.respond(&reply, &mut self.out));
            match step {
                Some(Ok(SaslStep::Respond)) => {}
                Some(Ok(SaslStep::RespondToError { detail })) => self.sasl_detail = Some(detail),
                Some(Err(AuthError::Scram { mechanism, error })) if error.closes_session() => {
                    // The server failed to prove it knows the password: it may be an impostor,
                    // so nothing more goes to it.
                    self.wipe_out(before);
                    self.auth_fatal(mechanism, error);
                    return;
                }
                Some(Err(e)) => {
                    // Cancel the exchange (RFC 4954 section 4) and report once the server has
                    // answered the cancellation, so the session stays in sync.
                    self.wipe_out(before);
                    self.out.extend_from_slice(b"*\r\n");
                    self.sasl_failure = Some(e);
                }
                None => {}
            }
            let n = self.out.len() - before;
            self.log_client(if self.sasl_failure.is_some() {
                "*"
            } else {
                "[redacted]"
            });
            self.push_pending(Pending::Auth, n);
            return;
        }
        // The exchange is over: drop the credentials now.
        let exchange = self.sasl.take();
        let detail = self.sasl_detail.take();
        if code == ReplyCode::AUTH_OK && self.sasl_failure.is_none() {
            if let Some(Err(AuthError::Scram { mechanism, error })) =
                exchange.as_ref().map(SaslExchange::check_success)
            {
                drop(exchange);
                self.auth_fatal(mechanism, error);
                return;
            }
        }
        drop(exchange);
        if let Some(err) = self.sasl_failure.take() {
            self.state = SessionState::Authentication;
            self.events.push_back(Event::Failed(err.into()));
            return;
        }
        if code == ReplyCode::AUTH_OK {
            self.authenticated = Some(mechanism);
            self.state = SessionState::Ready;
            self.config
                .audit
                .record(&AuditEvent::Authenticated { mechanism });
            self.events.push_back(Event::Authenticated(mechanism));
        } else if code == ReplyCode::AUTH_CHALLENGE {
            // A challenge after we cancelled or answered an error challenge.
            self.state = SessionState::Authentication;
            self.events.push_back(Event::Failed(
                AuthError::TooManyChallenges { mechanism }.into(),
            ));
        } else {
            self.state = SessionState::Authentication;
            self.config.audit.record(&AuditEvent::AuthenticationFailed {
                mechanism,
                code: Some(code),
            });
            self.events.push_back(Event::Failed(
                AuthError::Rejected {
                    mechanism,
                    reply,
                    detail,
                }
                .into(),
            ));
        }
    }

    /// A SCRAM server that did not prove its identity: record it and close the session.
    fn auth_fatal(&mut self, mechanism: AuthMechanism, error: crate::error::ScramError) {
        self.config.audit.record(&AuditEvent::AuthenticationFailed {
            mechanism,
            code: None,
        });
        self.fail(AuthError::Scram { mechanism, error }.into());
    }

    fn on_data_reply(&mut self, reply: Reply) {
        let Some(txn) = self.txn.as_mut() else {
            return;
        };
        if reply.code() == ReplyCode::START_DATA {
            let refused_ok = txn.policy == RecipientPolicy::AcceptPartial || txn.refused == 0;
            if txn.failure.is_some() || txn.accepted == 0 || !refused_ok {
                // The server wants data we must not send (a refused MAIL or recipients): end the
                // data at once with a lone dot, and report the failure after its reply.
                if txn.failure.is_none() {
                    let err = self.recipients_refused();
                    if let Some(t) = self.txn.as_mut() {
                        t.failure = Some(err);
                    }
                }
                if let Some(t) = self.txn.as_mut() {
                    t.phase = Phase::Finishing;
                }
                self.out.extend_from_slice(b".\r\n");
                self.push_pending(Pending::DataEnd, 0);
            } else {
                txn.phase = Phase::Body;
                self.state = SessionState::Data;
                self.events.push_back(Event::BodyWanted);
            }
        } else {
            if txn.failure.is_none() {
                let err = if txn.accepted == 0 && txn.mail_accepted && txn.rcpt_outstanding == 0 {
                    self.recipients_refused()
                } else {
                    ProtocolError::UnexpectedCode {
                        during: SmtpOp::Data,
                        reply,
                    }
                    .into()
                };
                if let Some(t) = self.txn.as_mut() {
                    t.failure = Some(err);
                }
            }
            self.maybe_complete_txn();
        }
    }

    fn on_final_reply(&mut self, reply: Reply) {
        let lmtp = self.config.protocol == Protocol::Lmtp;
        let Some(txn) = self.txn.as_mut() else {
            return;
        };
        txn.ended = true;
        if txn.failure.is_some() {
            // The reply to a lone dot after refused recipients, or to a body sent anyway.
            self.maybe_complete_txn();
            return;
        }
        if lmtp && txn.accepted > 0 {
            // RFC 2033: one reply per accepted recipient, in RCPT order.
            if txn.lmtp_expected == 0 && txn.lmtp_replies.is_empty() {
                txn.lmtp_expected = txn.accepted;
            }
            txn.lmtp_replies.push(reply);
            txn.lmtp_expected -= 1;
            if txn.lmtp_expected > 0 {
                txn.owed += 1;
                self.pending.push_front(InFlight {
                    what: Pending::DataEnd,
                    bytes: 0,
                });
                return;
            }
            self.finish_lmtp();
            return;
        }
        if reply.code().is_positive() && txn.accepted > 0 {
            txn.final_reply = Some(reply);
        } else if txn.accepted == 0 {
            let err = self.recipients_refused();
            if let Some(t) = self.txn.as_mut() {
                t.failure = Some(err);
            }
        } else {
            txn.failure = Some(
                ProtocolError::UnexpectedCode {
                    during: SmtpOp::DataEnd,
                    reply,
                }
                .into(),
            );
        }
        self.maybe_complete_txn();
    }

    fn finish_lmtp(&mut self) {
        let Some(txn) = self.txn.as_mut() else { return };
        let replies = core::mem::take(&mut txn.lmtp_replies);
        let mut it = replies.into_iter();
        let mut first_ok = None;
        let mut delivered = 0;
        for slot in txn.rcpt_replies.iter_mut() {
            if slot.as_ref().is_some_and(|r| r.code().is_positive()) {
                if let Some(r) = it.next() {
                    if r.code().is_positive() {
                        delivered += 1;
                        first_ok.get_or_insert_with(|| r.clone());
                    }
                    *slot = Some(r);
                }
            }
        }
        txn.accepted = delivered;
        txn.refused = txn.rcpt_replies.len() - delivered;
        let refused_ok = txn.policy == RecipientPolicy::AcceptPartial || txn.refused == 0;
        match first_ok {
            Some(reply) if refused_ok => txn.final_reply = Some(reply),
            _ => {
                let err = self.recipients_refused();
                if let Some(t) = self.txn.as_mut() {
                    t.failure = Some(err);
                }
            }
        }
        self.maybe_complete_txn();
    }

    fn txn_fail(&mut self, during: SmtpOp, reply: Reply) {
        if let Some(t) = self.txn.as_mut() {
            if t.failure.is_none() {
                t.failure = Some(ProtocolError::UnexpectedCode { during, reply }.into());
            }
        }
    }

    fn after_txn_reply(&mut self) {
        self.pump();
        self.maybe_complete_txn();
    }

    /// Emit the transaction's result once every reply it is owed has arrived.
    fn maybe_complete_txn(&mut self) {
        if self.state == SessionState::Closed {
            return;
        }
        let done = match &self.txn {
            Some(t) if t.owed > 0 => false,
            Some(t) => {
                (t.failure.is_some() && t.phase != Phase::Body)
                    || (t.failure.is_some() && !self.wants_body())
                    || t.final_reply.is_some()
            }
            None => false,
        };
        if !done {
            return;
        }
        let txn = self.txn.take().expect("transaction present");
        self.state = SessionState::Ready;
        match txn.failure {
            Some(err) => {
                // A transaction the server still holds open must be reset before the next MAIL.
                self.needs_rset = txn.mail_accepted && !txn.ended;
                let (during, code) = match &err {
                    SmtpError::Protocol(ProtocolError::UnexpectedCode { during, reply }) => {
                        (*during, Some(reply.code()))
                    }
                    _ => (SmtpOp::RcptTo, None),
                };
                self.config
                    .audit
                    .record(&AuditEvent::MessageRefused { during, code });
                self.events.push_back(Event::Failed(err));
            }
            None => {
                let reply = txn.final_reply.expect("final reply present");
                let queue_id = queue_id(&reply);
                let size = txn.size.unwrap_or(txn.body_written);
                let recipients: Vec<RecipientOutcome> = txn
                    .envelope
                    .to
                    .into_iter()
                    .zip(txn.rcpt_replies)
                    .map(|(addr, reply)| RecipientOutcome {
                        recipient: addr.as_str().to_owned(),
                        reply: reply.unwrap_or_else(|| Reply::new(ReplyCode::OK, None, "")),
                    })
                    .collect();
                self.config.audit.record(&AuditEvent::MessageSent {
                    recipients: txn.accepted,
                    refused: txn.refused,
                    size,
                    queue_id: queue_id.clone(),
                });
                self.events.push_back(Event::Sent(SendOutcome {
                    recipients,
                    reply,
                    queue_id,
                    size,
                }));
            }
        }
    }

    fn close_cleanly(&mut self) {
        self.state = SessionState::Closed;
        self.pending.clear();
        self.txn = None;
        self.finishing.clear();
        self.sasl = None;
        self.config.audit.record(&AuditEvent::Closed);
        self.events.push_back(Event::Closed);
    }

    fn fail_silently(&mut self, err: SmtpError) {
        self.state = SessionState::Closed;
        self.fatal = Some(err);
        self.pending.clear();
        self.in_flight_bytes = 0;
        self.wipe_out(0);
        self.out.clear();
        self.txn = None;
        self.finishing.clear();
        self.sasl = None;
        self.awaiting_upgrade = false;
        self.config.audit.record(&AuditEvent::Closed);
    }

    fn fail(&mut self, err: SmtpError) {
        self.fail_silently(err.clone());
        self.events.push_back(Event::Failed(err));
    }
}

impl Envelope {
    fn sender_len(&self) -> usize {
        match &self.from {
            ReversePath::Null => 0,
            ReversePath::Address(a) => a.as_str().len(),
        }
    }
}

/// A transmit buffer that holds an AUTH payload: zeroed when the last [`Bytes`] handle to it is
/// dropped.
struct WipeOnDrop(Vec<u8>);

impl AsRef<[u8]> for WipeOnDrop {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for WipeOnDrop {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// Put body bytes for BDAT into `out`: line endings normalised, or as they are for BINARYMIME.
fn encode_bdat(
    encoding: BodyEncoding,
    normalizer: &mut LineNormalizer,
    chunk: &[u8],
    out: &mut BytesMut,
) {
    match encoding {
        BodyEncoding::Lines => normalizer.encode(chunk, out),
        BodyEncoding::Binary => out.extend_from_slice(chunk),
    }
}
