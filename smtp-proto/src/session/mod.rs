//! The sans-IO engine: [`Session`].
//!
//! Every SMTP rule the client follows lives in this module: the order of commands, which replies
//! move the session on, pipelining, STARTTLS's barrier, the AUTH flows, per-recipient results,
//! and which failures close the session.

mod auth;
mod clock;
mod config;
mod data;
mod delivery;
mod event;
mod handshake;
mod idle;
mod mail;
mod message;
mod outcome;
mod pending;
mod standing;
#[cfg(test)]
mod tests;
mod transaction;

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use alloc::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use core::time::Duration;

pub use config::{
    DEFAULT_MAX_SCRAM_ITERATIONS, DataPipelining, ExtensionUse, PlaintextAuth, Protocol,
    RecipientPolicy, SessionConfig, Timeouts,
};
pub use delivery::Delivery;
pub use event::{Event, Fate, MessageId, SessionAfter};
pub use idle::{IdleInput, IdleStatus};
pub use message::{BodyInfo, Envelope, MessageOptions};
pub(crate) use outcome::queue_id;
pub use outcome::{RecipientOutcome, SendOutcome};

use clock::Clock;
use pending::{InFlight, Pending};
use standing::Standing;
use transaction::Transaction;

use crate::audit::AuditEvent;
use crate::capabilities::{Capabilities, Extension};
use crate::command::{Command, Domain};
use crate::error::{InvalidInputError, ProtocolError, SmtpError};
use crate::reply::{Reply, ReplyCode, ReplyParser};
use crate::sasl::AuthMechanism;
use crate::state::{SessionState, SmtpOp};
use crate::transcript::TranscriptSink;

/// The sans-IO SMTP client engine.
///
/// # Calling contract, in calling order
///
/// 1. [`new`](Self::new), then [`start`](Self::start) with the time the connection attempt
///    began (the session deadline counts from there).
/// 2. A loop, until the session is closed:
///    1. write everything [`poll_transmit`](Self::poll_transmit) yields, in order, reporting
///       each completed write with [`wrote`](Self::wrote);
///    2. drain [`poll_event`](Self::poll_event) ([`has_events`](Self::has_events) says whether
///       there is one);
///    3. ask [`poll_timeout`](Self::poll_timeout) when the next thing is due; read (or finish
///       the write) until then at most, and hand in what happened: [`feed`](Self::feed) the
///       bytes read, [`handle_eof`](Self::handle_eof), [`handle_io_error`](Self::handle_io_error),
///       or [`handle_timeout`](Self::handle_timeout) once the timer's instant has passed;
///    4. on [`Event::UpgradeTls`], upgrade the transport and call
///       [`tls_established`](Self::tls_established) (or `handle_io_error`).
/// 3. Commands, given when the previous one's event arrived: [`start_tls`](Self::start_tls);
///    [`login`](Self::login) / [`login_with_input`](Self::login_with_input),
///    [`login_auto`](Self::login_auto) / [`login_auto_with_input`](Self::login_auto_with_input)
///    (the `_with_input` forms take what [`auth_input`](Self::auth_input) gathers from your
///    random source and TLS layer, only when [`wants_auth_input`](Self::wants_auth_input)
///    says SCRAM can use it);
///    [`start_mail`](Self::start_mail) (after [`check_mail`](Self::check_mail) if you want the
///    local checks alone; [`ready_for_mail`](Self::ready_for_mail) says whether another may be
///    chained now; for a streamed body known only by its bounds,
///    [`needs_exact_size`](Self::needs_exact_size) says whether to count it first), then on
///    [`Event::BodyWanted`] [`send_body`](Self::send_body) while
///    [`wants_body`](Self::wants_body) holds and [`finish_body`](Self::finish_body) (or, should
///    the body's source fail, [`body_unreadable`](Self::body_unreadable)); to chain many
///    messages, each settled by its fate, a [`Chain`](crate::flight::Chain) makes these calls;
///    [`rset`](Self::rset), [`noop`](Self::noop); finally [`quit`](Self::quit). A command that
///    returns `Err` queued nothing (except where its doc says the session was closed). A caller
///    that wants one part of the session done within a limit brackets it with
///    [`set_deadline`](Self::set_deadline) and [`clear_deadline`](Self::clear_deadline).
/// 4. Getters, at any time: [`state`](Self::state), [`check_usable`](Self::check_usable),
///    [`is_failed`](Self::is_failed), [`capabilities`](Self::capabilities),
///    [`is_tls`](Self::is_tls), [`authenticated`](Self::authenticated),
///    [`config`](Self::config), [`has_transmit`](Self::has_transmit) and
///    [`holds_partial_reply`](Self::holds_partial_reply).
/// 5. Between operations, for a connection kept idle (in a pool): look at the transport
///    without waiting and hand what it found to [`idle_input`](Self::idle_input), which says
///    whether the connection can be used again.
/// 6. When a caller gives up on a message in progress (its driver's call dropped), call
///    [`abandon`](Self::abandon): the session closes and says what became of the message.
/// 7. When the session is over (QUIT answered, or closed by an error), close the transport
///    within [`close_limit`](Self::close_limit), so that a close never outlasts a deadline.
///
/// `None` from a `poll_*` means "nothing now"; only a later input or command can change that.
/// The engine never performs I/O and never reads a clock: time comes in as an
/// [`Instant`](crate::time::Instant) on every call that can start or end a wait, and the
/// engine alone decides when a reply, a write, the body's write-progress rule, the TLS upgrade
/// or a deadline has run out. A fatal error is sticky: the session moves to
/// [`SessionState::Closed`], emits [`Event::Failed`], discards unsent bytes, and every later
/// command returns the same error. The only thing left to do then is to close the transport.
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
///     ready |= event == Event::HelloDone;
/// }
/// assert!(ready);
/// ```
pub struct Session {
    config: SessionConfig,
    ehlo_domain: Domain,
    parser: ReplyParser,
    out: BytesMut,
    events: VecDeque<Event>,
    pending: VecDeque<InFlight>,
    in_flight_bytes: usize,
    caps: Capabilities,
    tls: bool,
    authenticated: Option<AuthMechanism>,
    /// The AUTH exchange in progress, if any.
    auth: Option<auth::AuthExchange>,
    txn: Option<Transaction>,
    /// Earlier transactions whose body is complete and whose last replies are still owed
    /// (batch chaining); their pending entries all come before those of `txn`.
    finishing: VecDeque<Transaction>,
    /// The id of the last message started.
    last_message: MessageId,
    /// Where the session stands: its state, the upgrade awaited, RSET owed, the fatal error.
    standing: Standing,
    reply_seq: u64,
    /// True while `out` holds an AUTH payload: it is handed out in a buffer that wipes itself
    /// when dropped, and `out` is wiped before reuse.
    out_holds_secret: bool,
    /// Every wait's limit, the deadlines and the write-progress rule.
    clock: Clock,
    /// Bytes wiped by [`Session::wipe_out`] (tests check that secrets are wiped).
    #[cfg(test)]
    wiped: usize,
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.standing.state())
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
            events: VecDeque::with_capacity(8),
            pending,
            in_flight_bytes: 0,
            caps: Capabilities::default(),
            tls,
            authenticated: None,
            auth: None,
            txn: None,
            finishing: VecDeque::new(),
            last_message: MessageId::NONE,
            standing: Standing::new(),
            reply_seq: 0,
            out_holds_secret: false,
            clock: Clock::default(),
            #[cfg(test)]
            wiped: 0,
        }
    }

    // ---------------------------------------------------------------- getters

    /// The session state.
    pub fn state(&self) -> SessionState {
        self.standing.state()
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

    /// True when [`poll_event`](Self::poll_event) has something.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// True while the engine holds part of a reply (a line without its end, or the first lines
    /// of a multiline reply). Between operations that means the server sent something nobody
    /// asked for, which the next command's reply would be paired with.
    pub fn holds_partial_reply(&self) -> bool {
        !self.parser.is_idle()
    }

    /// True when [`poll_transmit`](Self::poll_transmit) has something.
    pub fn has_transmit(&self) -> bool {
        !self.out.is_empty()
    }

    /// `Ok` while the session is open; otherwise the error every command would return (the fatal
    /// error that closed it, or [`InvalidInputError::WrongState`] after QUIT).
    pub fn check_usable(&self) -> Result<(), SmtpError> {
        self.check_open(SmtpOp::Idle)
    }

    /// True when a fatal error has closed the session.
    pub fn is_failed(&self) -> bool {
        self.standing.fatal().is_some()
    }

    // ---------------------------------------------------------------- outputs

    /// The next bytes to write to the server, if any. Write them in order, completely, and
    /// report each write with [`wrote`](Self::wrote): until then they count as a write in
    /// progress, bounded by [`poll_timeout`](Self::poll_timeout).
    ///
    /// Bytes that carry an AUTH payload (a password or token in base64, a SCRAM proof) come in a
    /// buffer of their own that is overwritten with zeros when the last handle to it is dropped,
    /// and the engine's buffer is wiped too; keep no copy of them. (What the transport does
    /// with them, e.g. a TLS library's record buffers, is out of the engine's reach.)
    #[must_use = "the bytes must be written to the server"]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            return None;
        }
        self.clock.handed_out(self.out.len());
        if self.out_holds_secret {
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
    #[must_use = "events must be drained after every input"]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---------------------------------------------------------------- inputs

    /// Bytes read from the server, in any split. Replies are matched to commands in order.
    pub fn feed(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            if self.standing.is_closed() {
                return;
            }
            if self.standing.awaiting_upgrade() {
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
        match self.standing.state() {
            SessionState::Closed => {}
            SessionState::Quit => self.close_cleanly(),
            _ => {
                let during = self.current_op();
                self.fail(ProtocolError::ConnectionClosed { during }.into());
            }
        }
    }

    /// A deadline of `after` passed (the session's or a caller's, see [`clock`]). Fatal;
    /// harmless once closed.
    fn handle_deadline_after(&mut self, after: Duration) {
        if self.standing.is_closed() {
            return;
        }
        let during = self.failing_op();
        self.fail(SmtpError::DeadlineExceeded { during, after });
    }

    /// The transport failed (a write, a read, the TLS upgrade). Fatal.
    pub fn handle_io_error(&mut self, kind: crate::error::IoErrorKind, message: &str) {
        if self.standing.is_closed() {
            return;
        }
        let during = self.failing_op();
        self.fail(SmtpError::io(during, kind, message));
    }

    /// The caller gave up on the newest message while it was in progress (a driver's call
    /// dropped: Ctrl-C, a timeout of the caller's own). The connection is out of step, so the
    /// session closes as after a transport failure (`ConnectionAborted`, its events queued as
    /// usual); what became of the message is its result when that came already, otherwise
    /// its fate now: [`Fate::Unknown`] once its end of data was queued, else
    /// [`Fate::NotSent`] (also when no message was started).
    pub fn abandon(&mut self) -> Delivery {
        let in_flight = self.in_flight_messages().last().copied();
        let reported = self.events.iter().rev().find_map(|event| match event {
            Event::Sent(outcome) => Some(Delivery::Sent(outcome.clone())),
            Event::MessageFailed { error, fate, .. } => {
                Some(Delivery::failed(error.clone(), *fate))
            }
            _ => None,
        });
        self.handle_io_error(
            crate::error::IoErrorKind::ConnectionAborted,
            "the caller gave up on the message",
        );
        let error = self.check_usable().err().unwrap_or(SmtpError::Internal {
            what: "the session closed without an error",
        });
        match (in_flight, reported) {
            (Some((_, fate)), _) => Delivery::failed(error, fate),
            (None, Some(delivery)) => delivery,
            (None, None) => Delivery::failed(error, Fate::NotSent),
        }
    }

    /// What a transport failure or a deadline interrupts: the TLS handshake while the upgrade
    /// is awaited, otherwise the operation whose reply is awaited.
    fn failing_op(&self) -> SmtpOp {
        if self.standing.awaiting_upgrade() {
            SmtpOp::TlsHandshake
        } else {
            self.current_op()
        }
    }

    // ---------------------------------------------------------------- commands

    /// Send RSET (outside a transaction). Completes with [`Event::Done`].
    pub fn rset(&mut self) -> Result<(), SmtpError> {
        self.clock.body_ended();
        self.simple_command(Command::Rset, Pending::Rset { lazy: false })
    }

    /// Send NOOP. Completes with [`Event::Done`].
    pub fn noop(&mut self) -> Result<(), SmtpError> {
        self.clock.body_ended();
        self.simple_command(Command::Noop, Pending::Noop)
    }

    /// Send QUIT. Completes with [`Event::Closed`] when the server answers or closes.
    ///
    /// Refused ([`InvalidInputError::WrongState`]) while replies are owed, during a STARTTLS
    /// upgrade, and while a message's body is being given: after DATA the server would read
    /// QUIT as message text, and over BDAT it would drop the message without a word. Such a
    /// session can only be closed, with [`abandon`](Self::abandon) for the message's fate.
    pub fn quit(&mut self) -> Result<(), SmtpError> {
        self.clock.body_ended();
        self.check_open(SmtpOp::Quit)?;
        if !self.pending.is_empty()
            || self.standing.awaiting_upgrade()
            || self.standing.state() == SessionState::Quit
            || self.txn.as_ref().is_some_and(Transaction::takes_body)
        {
            return Err(self.wrong_state(SmtpOp::Quit));
        }
        self.standing.quit_sent();
        self.queue(Command::Quit, Pending::Quit);
        Ok(())
    }

    // ---------------------------------------------------------------- internals

    fn simple_command(&mut self, cmd: Command<'_>, what: Pending) -> Result<(), SmtpError> {
        let op = cmd.op();
        self.check_open(op)?;
        if !self.standing.is_idle() || !self.pending.is_empty() {
            return Err(self.wrong_state(op));
        }
        self.standing.command_started();
        if what == (Pending::Rset { lazy: false }) {
            // An explicit RSET also clears a transaction left open by a failure.
            self.standing.set_needs_rset(false);
        }
        self.queue(cmd, what);
        Ok(())
    }

    fn check_open(&self, op: SmtpOp) -> Result<(), SmtpError> {
        match self.standing.fatal() {
            Some(err) => Err(err.clone()),
            None if self.standing.is_closed() => Err(self.wrong_state(op)),
            None => Ok(()),
        }
    }

    fn wrong_state(&self, op: SmtpOp) -> SmtpError {
        InvalidInputError::WrongState {
            op,
            state: self.standing.state(),
        }
        .into()
    }

    fn current_op(&self) -> SmtpOp {
        self.pending
            .front()
            .map(|p| p.what.op())
            .unwrap_or(match self.standing.state() {
                SessionState::Greeting => SmtpOp::Greeting,
                SessionState::Data => SmtpOp::DataEnd,
                _ => SmtpOp::Idle,
            })
    }

    /// Queue the expectation of a reply; a transaction's replies are counted against it.
    fn push_pending(&mut self, what: Pending, bytes: usize) {
        self.in_flight_bytes += bytes;
        if what.is_txn() {
            if let Some(t) = self.txn.as_mut() {
                t.owe_reply();
            }
        }
        self.pending.push_back(InFlight { what, bytes });
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

    /// Log a line of our own (a summary, a redaction); formatted only when a sink wants it.
    fn log_client(&self, line: core::fmt::Arguments<'_>) {
        if let Some(t) = self.transcript() {
            match line.as_str() {
                Some(text) => t.client(text),
                None => t.client(&line.to_string()),
            }
        }
    }

    fn pipelining(&self) -> bool {
        self.config.pipelining == ExtensionUse::WhenOffered && self.caps.has(Extension::Pipelining)
    }

    /// May a command of at most `len` bytes be sent now?
    fn can_send(&self, len: usize) -> bool {
        if self.pending.is_empty() {
            return true;
        }
        self.pipelining() && self.in_flight_bytes + len <= self.config.max_flight_bytes
    }

    fn on_reply(&mut self, reply: Reply) {
        let Some(InFlight { what, bytes }) = self.pending.pop_front() else {
            if let Some(t) = self.transcript() {
                t.server(&reply);
            }
            let in_body = self.txn.as_ref().is_some_and(Transaction::body_begun);
            let refusal = reply.code().is_transient() || reply.code().is_permanent();
            let err = if in_body && refusal {
                // A refusal (4xx, 5xx) while the body is still being sent (some servers judge a
                // message before its end): report it as the message's refusal, with the
                // server's text.
                // The framing is now unknown, so the session still closes.
                ProtocolError::UnexpectedCode {
                    during: SmtpOp::DataEnd,
                    reply,
                }
            } else {
                ProtocolError::UnsolicitedReply {
                    state: self.standing.state(),
                }
            };
            self.fail(err.into());
            return;
        };
        self.in_flight_bytes = self.in_flight_bytes.saturating_sub(bytes);
        if let Some(t) = self.transcript() {
            let scram = self.auth.as_ref().is_some_and(|a| a.mechanism().is_scram());
            if what == Pending::Auth && scram && reply.code() == ReplyCode::AUTH_CHALLENGE {
                // The salt, iteration count and server signature together allow an offline
                // dictionary attack on the password, like the client proof: not logged.
                t.server(&Reply::new(reply.code(), None, "[redacted]"));
            } else {
                t.server(&reply);
            }
        }
        self.dispatch_reply(what, reply);
    }

    fn dispatch_reply(&mut self, what: Pending, reply: Reply) {
        let code = reply.code();
        if !what.can_answer(code) {
            // A reply that cannot belong to its command (a 2xx to DATA, a 3xx to anything but
            // DATA or an AUTH step, any 1xx): the replies are out of step with the commands, so
            // every later reply would answer the wrong one, and the server may be reading our
            // commands as message text. Only closing the connection ends that; treated as a
            // refusal, the next RSET and MAIL would go into a message body.
            self.fail(
                ProtocolError::OutOfSync {
                    during: what.op(),
                    reply,
                }
                .into(),
            );
            return;
        }
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
            Pending::StartTls => self.on_starttls(reply),
            Pending::Auth => self.on_auth(reply),
            Pending::Rset { lazy: false } | Pending::Noop if code == ReplyCode::CLOSING => {
                // A 221 to RSET or NOOP: the server is closing the channel, so the connection
                // is not healthy, whatever the positive code says (lettre's pool took it for
                // healthy, its issue #743).
                self.fail(
                    ProtocolError::UnexpectedCode {
                        during: what.op(),
                        reply,
                    }
                    .into(),
                );
            }
            Pending::Rset { lazy: false } | Pending::Noop => {
                self.standing.command_ended();
                if code.is_positive() {
                    self.events.push_back(Event::Done {
                        op: what.op(),
                        reply,
                    });
                } else {
                    self.fail_open(
                        ProtocolError::UnexpectedCode {
                            during: what.op(),
                            reply,
                        }
                        .into(),
                    );
                }
            }
            Pending::Quit => self.close_cleanly(),
            Pending::Rset { lazy: true }
            | Pending::Mail
            | Pending::Rcpt(_)
            | Pending::Data
            | Pending::DataEnd
            | Pending::Bdat { .. } => self.on_txn_reply(what, reply),
        }
    }

    fn close_cleanly(&mut self) {
        self.standing.close(None);
        self.pending.clear();
        self.txn = None;
        self.finishing.clear();
        self.auth = None;
        self.config.audit.record(&AuditEvent::Closed);
        self.events.push_back(Event::Closed);
    }

    /// An operation failed and the session goes on.
    fn fail_open(&mut self, error: SmtpError) {
        self.events.push_back(Event::Failed {
            error,
            session: SessionAfter::Open,
        });
    }

    /// Whether a message is started and not yet reported (for the driver's `abandon`).
    #[cfg(feature = "client")]
    pub(crate) fn holds_a_message(&self) -> bool {
        self.txn.is_some() || !self.finishing.is_empty()
    }

    /// The messages started and not yet reported, oldest first, each with its fate should the
    /// session end now.
    fn in_flight_messages(&self) -> Vec<(MessageId, Fate)> {
        self.finishing
            .iter()
            .chain(self.txn.iter())
            .map(|t| (t.id, t.fate_if_lost()))
            .collect()
    }

    fn fail_silently(&mut self, err: SmtpError) {
        self.standing.close(Some(err));
        self.pending.clear();
        self.in_flight_bytes = 0;
        self.wipe_out(0);
        self.out.clear();
        self.txn = None;
        self.finishing.clear();
        self.auth = None;
        self.config.audit.record(&AuditEvent::Closed);
    }

    /// A fatal failure: every message in flight fails with it, then the session.
    fn fail(&mut self, err: SmtpError) {
        for (message, fate) in self.in_flight_messages() {
            self.events.push_back(Event::MessageFailed {
                message,
                error: err.clone(),
                fate,
                session: SessionAfter::Closed,
            });
        }
        self.fail_silently(err.clone());
        self.events.push_back(Event::Failed {
            error: err,
            session: SessionAfter::Closed,
        });
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
