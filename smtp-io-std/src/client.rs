//! [`SmtpClient`]: the blocking driver over the [`Session`] engine.
//!
//! The loop is the engine's calling contract, as in `smtp_proto::client::SmtpClient` (the async
//! driver) and the engine's `blocking` example: write what `poll_transmit` yields and report
//! each write with `wrote`, feed what is read, drain `poll_event`, and bound every socket call
//! by `poll_timeout` (as the socket's read or write timeout), calling `handle_timeout` when it
//! is due. The driver never looks at a reply code: every protocol decision is the engine's.

use std::io;
use std::time::Duration;

use smtp_proto::client::Transport;
use smtp_proto::client::{Delivery, IdleStatus};
use smtp_proto::command::Domain;
use smtp_proto::session::{BodyInfo, Envelope, Event, Fate, MessageId, SessionAfter};
use smtp_proto::{
    AuthInput, AuthMechanism, ClientNonce, Instant, MessageOptions, OutgoingMessage, Reply,
    SendOutcome, Session, SessionConfig, SessionState, SmtpError, SmtpOp,
};

use crate::body::ReaderBody;
use crate::stream::{Got, Stream, is_timeout};

/// How much of a body held in memory is handed to the engine at a time (as the async driver).
const BODY_SLICE: usize = 256 * 1024;

/// The most unsolicited bytes [`IdleStatus::Unsolicited`] keeps, for a log line.
const IDLE_KEPT: usize = 512;

/// The process's monotonic clock (`std::time::Instant` from its first use), as the engine's
/// instants. It implements [`Transport`] only for its clock: [`ConnectClock::start`] reads the
/// time through that trait. Its I/O methods are never called.
///
/// [`ConnectClock::start`]: smtp_proto::client::ConnectClock::start
pub(crate) struct StdClock;

impl Transport for StdClock {
    async fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }
    async fn write_all(&mut self, _: &[u8]) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
    async fn close(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// A blocking sleep, completing when polled (nothing here polls it).
    async fn sleep(duration: Duration) {
        std::thread::sleep(duration)
    }
    fn now() -> Duration {
        static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        ORIGIN.get_or_init(std::time::Instant::now).elapsed()
    }
}

/// Now, as the engine's instant.
pub(crate) fn now() -> Instant {
    Instant::from(StdClock::now())
}

/// What the engine's clock says before a socket call.
enum Wait {
    /// This long at most.
    Left(Duration),
    /// A timer was due and has been handed to the engine (which may have closed the session).
    Fired,
    /// Nothing is awaited.
    Idle,
}

/// An SMTP client on one connection, blocking: each method returns when the engine has the
/// answer, or when one of its limits ran out (the reply's, the write's, the body's
/// write-progress rule, the session's deadline or one set with
/// [`set_deadline`](Self::set_deadline)).
///
/// Made by [`ConnectOptions::connect`](crate::ConnectOptions::connect) and the `connect_*`
/// helpers. The lifecycle is the async client's:
///
/// ```text
/// connect (greeting + EHLO, + STARTTLS + EHLO)
///   -> login*()        only right after connect (or after a refused attempt)
///   -> send_mail*()    any number of times, send_batch()
///   -> quit()          consumes the client
/// ```
///
/// When an error closes the session ([`state`](Self::state) is [`SessionState::Closed`]) the
/// socket is closed too, and every later call fails with the same error.
pub struct SmtpClient {
    stream: Stream,
    session: Session,
    read_buf: Vec<u8>,
    body_buf: Vec<u8>,
    message: MessageOptions,
    stream_closed: bool,
    /// The fate the engine gave the latest message that failed in a `send_mail*` call.
    fate: Option<Fate>,
}

impl std::fmt::Debug for SmtpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpClient")
            .field("stream", &self.stream)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl SmtpClient {
    /// Read the greeting and EHLO on `stream` (past its TLS handshake for implicit TLS); with
    /// `starttls`, upgrade and EHLO again. `started` is when the session began (before the
    /// connect), for its deadline.
    pub(crate) fn open(
        stream: Stream,
        domain: Domain,
        mut config: SessionConfig,
        message: MessageOptions,
        read_buffer: usize,
        started: Instant,
        starttls: bool,
    ) -> Result<SmtpClient, SmtpError> {
        config.tls |= stream.is_tls();
        let mut client = SmtpClient {
            stream,
            session: Session::new(domain, config),
            read_buf: vec![0; read_buffer.max(512)],
            body_buf: Vec::new(),
            message,
            stream_closed: false,
            fate: None,
        };
        client.session.start(started);
        if let Err(e) = client.wait_for(|e| matches!(e, Event::HelloDone)) {
            client.close_stream();
            return Err(e);
        }
        if starttls {
            client.starttls()?;
        }
        Ok(client)
    }

    /// The capability lines of the latest EHLO reply, without its first (greeting) line, e.g.
    /// `"AUTH LOGIN PLAIN"`. Parsed values: [`Self::session`]`().capabilities()`.
    pub fn capabilities(&self) -> &[String] {
        self.session.capabilities().raw_lines()
    }

    /// The session state.
    pub fn state(&self) -> SessionState {
        self.session.state()
    }

    /// The engine, for its getters (parsed capabilities, TLS, authentication).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The connection (peer address, TLS version).
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// Upgrade this connection with STARTTLS (RFC 3207) and EHLO again. Allowed only right
    /// after connect (the `connect_*` helpers and [`TlsMode::StartTls`](crate::TlsMode::StartTls)
    /// do it). Fails closed: if STARTTLS is not offered or is refused, the session is closed.
    pub fn starttls(&mut self) -> Result<(), SmtpError> {
        self.check_alive()?;
        if let Err(e) = self.session.start_tls() {
            if self.session.state() == SessionState::Closed {
                self.close_stream();
            }
            return Err(e);
        }
        self.wait_for(|e| matches!(e, Event::UpgradeTls))?;
        if let Err(e) = self.stream.begin_tls() {
            self.session.handle_io_error(e.kind(), &e.to_string());
            return Err(self.take_failure());
        }
        while self.stream.is_handshaking() || self.stream.pending_tls() {
            let left = match self.wait() {
                Wait::Left(left) => left,
                Wait::Fired | Wait::Idle if self.session.state() == SessionState::Closed => {
                    return Err(self.take_failure());
                }
                Wait::Fired => continue,
                Wait::Idle => {
                    return Err(SmtpError::Internal {
                        what: "the TLS upgrade runs without a timer from the engine",
                    });
                }
            };
            match self.stream.handshake_step(left) {
                Ok(()) => {}
                Err(e) if is_timeout(&e) => self.session.handle_timeout(now()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.session.handle_io_error(e.kind(), &e.to_string());
                    return Err(self.take_failure());
                }
            }
            if self.session.state() == SessionState::Closed {
                return Err(self.take_failure());
            }
        }
        self.session.tls_established()?;
        self.wait_for(|e| matches!(e, Event::HelloDone)).map(drop)
    }

    /// Authenticate with the best password mechanism the server offers: SCRAM-SHA-256-PLUS
    /// (TLS 1.3), SCRAM-SHA-256, PLAIN, LOGIN, in that order (the engine chooses; SCRAM only
    /// with the `scram` feature). Never XOAUTH2 or OAUTHBEARER. Allowed only right after connect.
    /// The credentials are not kept after the call.
    pub fn login(&mut self, user: &str, pass: &str) -> Result<(), SmtpError> {
        self.check_alive()?;
        let input = self.auth_input(None)?;
        self.session.login_auto_with_input(user, pass, input)?;
        self.wait_for(|e| matches!(e, Event::Authenticated(_)))
            .map(drop)
    }

    /// Authenticate with a given mechanism. `credential` is a password (PLAIN, LOGIN, SCRAM) or
    /// an OAuth 2.0 access token (XOAUTH2, OAUTHBEARER). A mechanism whose cargo feature is off
    /// fails with [`InvalidInputError::FeatureDisabled`](crate::InvalidInputError::FeatureDisabled)
    /// before any I/O.
    pub fn login_with(
        &mut self,
        mechanism: AuthMechanism,
        user: &str,
        credential: &str,
    ) -> Result<(), SmtpError> {
        self.check_alive()?;
        let input = self.auth_input(Some(mechanism))?;
        self.session
            .login_with_input(mechanism, user, credential, input)?;
        self.wait_for(|e| matches!(e, Event::Authenticated(_)))
            .map(drop)
    }

    /// Authenticate with XOAUTH2 (Google / Microsoft). A refused token gives
    /// [`AuthError::Rejected`](crate::AuthError::Rejected) with the server's decoded error.
    pub fn login_xoauth2(&mut self, user: &str, access_token: &str) -> Result<(), SmtpError> {
        self.login_with(AuthMechanism::XOAuth2, user, access_token)
    }

    /// Authenticate with OAUTHBEARER (RFC 7628).
    pub fn login_oauthbearer(&mut self, user: &str, access_token: &str) -> Result<(), SmtpError> {
        self.login_with(AuthMechanism::OAuthBearer, user, access_token)
    }

    /// What the engine needs for SCRAM: a nonce from the operating system's CSPRNG and, on
    /// TLS 1.3, the `tls-exporter` channel binding. Asked for only when SCRAM may be used.
    fn auth_input(&self, mechanism: Option<AuthMechanism>) -> Result<AuthInput, SmtpError> {
        let mut input = AuthInput::new();
        let caps = self.session.capabilities();
        let wanted = match mechanism {
            Some(m) => m.is_scram(),
            None => {
                caps.supports_auth(AuthMechanism::ScramSha256)
                    || caps.supports_auth(AuthMechanism::ScramSha256Plus)
            }
        };
        if !cfg!(feature = "scram") || !wanted {
            return Ok(input);
        }
        let mut bytes = [0u8; 18];
        getrandom::fill(&mut bytes).map_err(|e| {
            SmtpError::io(
                SmtpOp::Auth,
                io::ErrorKind::Other,
                format!("no random SCRAM nonce: {e}"),
            )
        })?;
        input = input.with_nonce(ClientNonce::from_random(bytes));
        bytes.fill(0);
        if self.session.is_tls() {
            if let Some(data) = self.stream.tls_exporter() {
                input = input.with_tls_exporter(data);
            }
        }
        Ok(input)
    }

    /// Send one message held in a string (a complete RFC 5322 message). Line endings are
    /// normalised to CRLF and lines starting with `.` are dot-stuffed.
    pub fn send_mail(
        &mut self,
        from: &str,
        to: &[&str],
        body: &str,
    ) -> Result<SendOutcome, SmtpError> {
        self.send_mail_bytes(from, to, body.as_bytes())
    }

    /// Send one message held in bytes (need not be UTF-8), encoded and written 256 KiB at a
    /// time. The size declared to the server is the size after line-ending normalisation.
    pub fn send_mail_bytes(
        &mut self,
        from: &str,
        to: &[&str],
        body: &[u8],
    ) -> Result<SendOutcome, SmtpError> {
        let options = self.message.clone();
        self.send_mail_bytes_with(from, to, body, &options)
    }

    /// [`send_mail_bytes`](Self::send_mail_bytes) with per-message options (DSN, REQUIRETLS,
    /// ...).
    pub fn send_mail_bytes_with(
        &mut self,
        from: &str,
        to: &[&str],
        body: &[u8],
        options: &MessageOptions,
    ) -> Result<SendOutcome, SmtpError> {
        self.fate = None;
        self.check_alive()?;
        let envelope = Envelope::new(from, to)?;
        let info = BodyInfo::in_memory(body, options);
        self.session.start_mail(envelope, info, options)?;
        if let Event::Sent(outcome) =
            self.wait_for(|e| matches!(e, Event::BodyWanted(_) | Event::Sent(_)))?
        {
            return Ok(outcome);
        }
        self.send_body_slices(body)?;
        let finished = self.session.finish_body();
        self.closing(finished)?;
        self.wait_sent()
    }

    /// Hand a body held in memory to the engine [`BODY_SLICE`] bytes at a time, writing each
    /// slice out before encoding the next.
    fn send_body_slices(&mut self, body: &[u8]) -> Result<(), SmtpError> {
        let mut slices = body.chunks(BODY_SLICE).peekable();
        while let Some(slice) = slices.next() {
            if !self.ready_for_body()? {
                return Ok(());
            }
            let sent = self.session.send_body(slice);
            self.closing(sent)?;
            if slices.peek().is_some() {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Whether the engine takes body bytes now; if not, read replies until it does (too many
    /// BDAT chunks unanswered). `false`: the transaction failed, its result is the next event.
    fn ready_for_body(&mut self) -> Result<bool, SmtpError> {
        if !self.session.wants_body() {
            self.drive(|s| s.wants_body())?;
        }
        Ok(self.session.wants_body())
    }

    /// Send a message read from a [`std::io::Read`] (a file, a pipe, standard input) in
    /// chunks: memory stays O(chunk) whatever the message size. The size hint, when the body
    /// has one, is declared as `SIZE=` and enforced. A failing read closes the session with
    /// [`SmtpError::Io`] during [`SmtpOp::ReadBody`]: the message cannot be ended cleanly.
    pub fn send_mail_stream<R: io::Read>(
        &mut self,
        from: &str,
        to: &[&str],
        body: &mut ReaderBody<R>,
    ) -> Result<SendOutcome, SmtpError> {
        let options = self.message.clone();
        self.send_mail_stream_with(from, to, body, &options)
    }

    /// [`send_mail_stream`](Self::send_mail_stream) with per-message options.
    pub fn send_mail_stream_with<R: io::Read>(
        &mut self,
        from: &str,
        to: &[&str],
        body: &mut ReaderBody<R>,
        options: &MessageOptions,
    ) -> Result<SendOutcome, SmtpError> {
        self.fate = None;
        self.check_alive()?;
        let envelope = Envelope::new(from, to)?;
        let mut size_hint = body.size_hint();
        if size_hint.is_none()
            && body
                .max_size()
                .is_some_and(|most| self.session.needs_exact_size(most))
        {
            // Nothing is sent yet: a body that cannot be counted leaves the session as it was.
            size_hint = body
                .exact_size()
                .map_err(|e| SmtpError::io(SmtpOp::ReadBody, e.kind(), e.to_string()))?;
        }
        let info = BodyInfo::Streamed { size_hint };
        self.session.start_mail(envelope, info, options)?;
        if let Event::Sent(outcome) =
            self.wait_for(|e| matches!(e, Event::BodyWanted(_) | Event::Sent(_)))?
        {
            return Ok(outcome);
        }
        let mut buf = std::mem::take(&mut self.body_buf);
        buf.resize(body.chunk_size().max(1), 0);
        let result = self.stream_body(body, &mut buf);
        self.body_buf = buf;
        result?;
        let finished = self.session.finish_body();
        self.closing(finished)?;
        self.wait_sent()
    }

    /// Send the message in the file at `path` (see [`ReaderBody::open`]: its size as sent is
    /// counted first and declared). A file that cannot be opened is [`SmtpError::Io`] during
    /// [`SmtpOp::ReadBody`], before anything is sent.
    pub fn send_file(
        &mut self,
        from: &str,
        to: &[&str],
        path: impl AsRef<std::path::Path>,
    ) -> Result<SendOutcome, SmtpError> {
        self.check_alive()?;
        let path = path.as_ref();
        let mut body = ReaderBody::open(path).map_err(|e| {
            SmtpError::io(
                SmtpOp::ReadBody,
                e.kind(),
                format!("{}: {e}", path.display()),
            )
        })?;
        self.send_mail_stream(from, to, &mut body)
    }

    fn stream_body<R: io::Read>(
        &mut self,
        body: &mut ReaderBody<R>,
        buf: &mut [u8],
    ) -> Result<(), SmtpError> {
        loop {
            if !self.ready_for_body()? {
                return Ok(());
            }
            let n = match body.read_chunk(buf) {
                Ok(n) => n,
                Err(e) => {
                    let err = SmtpError::io(SmtpOp::ReadBody, e.kind(), e.to_string());
                    self.session
                        .handle_io_error(e.kind(), &format!("reading the message body: {e}"));
                    while self.session.poll_event().is_some() {}
                    self.close_stream();
                    return Err(err);
                }
            };
            if n == 0 {
                return Ok(());
            }
            let sent = self.session.send_body(&buf[..n.min(buf.len())]);
            self.closing(sent)?;
            self.flush()?;
        }
    }

    fn wait_sent(&mut self) -> Result<SendOutcome, SmtpError> {
        match self.wait_for(|e| matches!(e, Event::Sent(_)))? {
            Event::Sent(outcome) => Ok(outcome),
            _ => Err(SmtpError::Internal {
                what: "the driver returned an event it did not wait for",
            }),
        }
    }

    /// Look, without waiting, whether the server sent anything since the last operation
    /// ended, for a client that sat idle (kept between uses, e.g. behind a `Mutex`). Anything
    /// at all means the connection cannot be reused: the end of the stream
    /// ([`IdleStatus::Closed`]) or unsolicited bytes ([`IdleStatus::Unsolicited`], e.g. a `421`
    /// before the server hung up; under TLS the bytes are those decrypted, possibly none). They
    /// are never fed to the engine: the session is closed and the socket with it. Call it only
    /// between operations.
    pub fn check_idle(&mut self) -> IdleStatus {
        if self.session.state() == SessionState::Closed || self.stream_closed {
            self.close_stream();
            return IdleStatus::Closed;
        }
        // A part of a reply the engine already holds, with nothing asked: out of step.
        let partial = self.session.holds_partial_reply();
        let unsolicited = "unsolicited input from the server while idle";
        let status = match self.stream.poll_idle(&mut self.read_buf) {
            Ok(None) if !partial => return IdleStatus::Quiet,
            Ok(None | Some(Got::Partial)) => {
                self.session
                    .handle_io_error(io::ErrorKind::InvalidData, unsolicited);
                IdleStatus::Unsolicited { bytes: Vec::new() }
            }
            Ok(Some(Got::Data(n))) => {
                let bytes = self.read_buf[..n.min(IDLE_KEPT)].to_vec();
                self.session
                    .handle_io_error(io::ErrorKind::InvalidData, unsolicited);
                IdleStatus::Unsolicited { bytes }
            }
            Ok(Some(Got::Eof)) => {
                self.session.handle_eof();
                IdleStatus::Closed
            }
            Err(e) => {
                self.session.handle_io_error(e.kind(), &e.to_string());
                IdleStatus::Closed
            }
        };
        // The engine has recorded why it closed; nothing of it is owed to anyone.
        while self.session.poll_event().is_some() {}
        self.close_stream();
        status
    }

    /// Send one message and say what became of it, telling a message that provably was not
    /// delivered from one whose fate is unknown ([`Delivery`]), for a caller that retries.
    pub fn deliver(&mut self, message: &OutgoingMessage<'_>) -> Delivery {
        let options = message
            .options
            .cloned()
            .unwrap_or_else(|| self.message.clone());
        let result = self.send_mail_bytes_with(message.from, message.to, message.body, &options);
        match result {
            Ok(outcome) => Delivery::Sent(outcome),
            Err(error) => Delivery::failed(error, self.fate.unwrap_or(Fate::NotSent)),
        }
    }

    /// Send many messages over this connection, one result per message, in order. With
    /// PIPELINING the next message's envelope goes out with the previous end of data (batch
    /// chaining, RFC 2920 section 3.1), each reply still matched to its own message. One
    /// message failing does not stop the others; an error that closes the session ends the
    /// batch, and every message without a result gets it.
    pub fn send_batch(
        &mut self,
        messages: &[OutgoingMessage<'_>],
    ) -> Vec<Result<SendOutcome, SmtpError>> {
        let mut results: Vec<Option<Result<SendOutcome, SmtpError>>> =
            messages.iter().map(|_| None).collect();
        if let Err(e) = self.check_alive() {
            return messages.iter().map(|_| Err(e.clone())).collect();
        }
        let mut waiting: Vec<(MessageId, usize)> = Vec::new();
        let mut next = 0;
        let fatal = loop {
            let mut body_wanted = None;
            if let Some(err) = self.take_batch_events(&mut waiting, &mut results, &mut body_wanted)
            {
                break Some(err);
            }
            if let Some(i) = body_wanted {
                let sent = match self.send_body_slices(messages[i].body) {
                    Ok(()) => {
                        let finished = self.session.finish_body();
                        self.closing(finished)
                    }
                    Err(e) => Err(e),
                };
                if let Err(err) = sent {
                    break Some(err);
                }
                continue;
            }
            if next < messages.len() && self.session.ready_for_mail() {
                let message = &messages[next];
                let started = Envelope::new(message.from, message.to)
                    .map_err(SmtpError::from)
                    .and_then(|envelope| {
                        let options = message.options.unwrap_or(&self.message);
                        let info = BodyInfo::in_memory(message.body, options);
                        self.session.start_mail(envelope, info, options)
                    });
                match started {
                    Ok(id) => waiting.push((id, next)),
                    Err(e) => results[next] = Some(Err(e)),
                }
                next += 1;
                if self.session.is_failed() {
                    break self.session.check_usable().err();
                }
                continue;
            }
            if waiting.is_empty() && next == messages.len() {
                break None;
            }
            let more = next < messages.len();
            if let Err(e) = self.drive(|s| more && s.ready_for_mail()) {
                break Some(e);
            }
        };
        if let Some(err) = fatal {
            self.close_stream();
            for slot in results.iter_mut().filter(|r| r.is_none()) {
                *slot = Some(Err(err.clone()));
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(self
                        .session
                        .check_usable()
                        .err()
                        .unwrap_or(SmtpError::Internal {
                            what: "no result was reported for a message of the batch",
                        }))
                })
            })
            .collect()
    }

    /// Hand out the queued events of a batch, each result to the message whose handle it
    /// carries; stop at a request for a body. Returns the error that closed the session.
    fn take_batch_events(
        &mut self,
        waiting: &mut Vec<(MessageId, usize)>,
        results: &mut [Option<Result<SendOutcome, SmtpError>>],
        body_wanted: &mut Option<usize>,
    ) -> Option<SmtpError> {
        fn settle(
            waiting: &mut Vec<(MessageId, usize)>,
            results: &mut [Option<Result<SendOutcome, SmtpError>>],
            id: MessageId,
            result: Result<SendOutcome, SmtpError>,
        ) {
            if let Some(at) = waiting.iter().position(|&(w, _)| w == id) {
                let (_, index) = waiting.swap_remove(at);
                results[index] = Some(result);
            }
        }
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Sent(outcome) => settle(waiting, results, outcome.message, Ok(outcome)),
                Event::MessageFailed { message, error, .. } => {
                    settle(waiting, results, message, Err(error))
                }
                Event::Failed {
                    error,
                    session: SessionAfter::Closed,
                } => return Some(error),
                Event::BodyWanted(id) => {
                    if let Some(&(_, index)) = waiting.iter().find(|&&(w, _)| w == id) {
                        *body_wanted = Some(index);
                        return None;
                    }
                }
                Event::UpgradeTls => self
                    .session
                    .handle_io_error(io::ErrorKind::Unsupported, "unexpected TLS upgrade request"),
                _ => {}
            }
        }
        None
    }

    /// Send RSET.
    pub fn rset(&mut self) -> Result<Reply, SmtpError> {
        self.check_alive()?;
        self.session.rset()?;
        self.wait_done()
    }

    /// Send NOOP (e.g. to check the connection is alive).
    pub fn noop(&mut self) -> Result<Reply, SmtpError> {
        self.check_alive()?;
        self.session.noop()?;
        self.wait_done()
    }

    fn wait_done(&mut self) -> Result<Reply, SmtpError> {
        match self.wait_for(|e| matches!(e, Event::Done { .. }))? {
            Event::Done { reply, .. } => Ok(reply),
            _ => Err(SmtpError::Internal {
                what: "the driver returned an event it did not wait for",
            }),
        }
    }

    /// Send QUIT, wait for its reply and close the connection. On a closed session this only
    /// closes the socket. A failure to close is [`SmtpError::Io`] during [`SmtpOp::Close`].
    pub fn quit(mut self) -> Result<(), SmtpError> {
        if self.session.state() != SessionState::Closed && self.session.quit().is_ok() {
            if let Err(e) = self.wait_for(|e| matches!(e, Event::Closed)) {
                self.close_stream();
                return Err(e);
            }
        }
        if self.stream_closed {
            return Ok(());
        }
        self.stream_closed = true;
        match self.stream.close() {
            // The server hung up first after its 221: nothing is lost.
            Err(e) if e.kind() != io::ErrorKind::NotConnected => {
                Err(SmtpError::io(SmtpOp::Close, e.kind(), e.to_string()))
            }
            _ => Ok(()),
        }
    }

    /// Close the connection without QUIT (for a connection that is out of step). Best effort.
    pub fn close(mut self) {
        if self.session.state() != SessionState::Closed {
            self.session.handle_io_error(
                io::ErrorKind::ConnectionAborted,
                "connection closed by the client",
            );
            while self.session.poll_event().is_some() {}
        }
        self.close_stream();
    }

    /// Bound every call from now on by a deadline of `limit`, counted from a start
    /// `already_spent` ago, on top of the session's own (the earlier wins), until it is lifted
    /// with `None`. Past it the call fails with [`SmtpError::DeadlineExceeded`] whose `after`
    /// is `limit`, and the session is closed. The engine keeps it ([`Session::set_deadline`]).
    pub fn set_deadline(&mut self, limit: Option<Duration>, already_spent: Duration) {
        match limit {
            Some(limit) => self.session.set_deadline(now() - already_spent, limit),
            None => self.session.clear_deadline(),
        }
    }

    // ------------------------------------------------------------------------------- driver

    fn check_alive(&self) -> Result<(), SmtpError> {
        if self.session.state() == SessionState::Closed {
            self.session.check_usable()
        } else {
            Ok(())
        }
    }

    /// Pass an engine result through, closing the socket when the error closed the session.
    fn closing<R>(&mut self, result: Result<R, SmtpError>) -> Result<R, SmtpError> {
        if result.is_err() && self.session.state() == SessionState::Closed {
            self.close_stream();
        }
        result
    }

    fn close_stream(&mut self) {
        if !self.stream_closed {
            self.stream_closed = true;
            let _ = self.stream.close();
        }
    }

    /// The time left until the engine's next timer; a due timer is handed to the engine.
    fn wait(&mut self) -> Wait {
        let now = now();
        match self.session.poll_timeout(now) {
            None => Wait::Idle,
            Some(timer) => {
                let left = timer.left(now);
                if left.is_zero() {
                    self.session.handle_timeout(now.max(timer.at));
                    Wait::Fired
                } else {
                    Wait::Left(left)
                }
            }
        }
    }

    /// Write everything the engine queued, each socket write bounded by the engine's timer
    /// (the write's limit, the body's write-progress rule, the deadlines).
    fn flush(&mut self) -> Result<(), SmtpError> {
        while let Some(bytes) = self.session.poll_transmit() {
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let n = self.write_step(|stream, left| stream.write(rest, left))?;
                rest = &rest[n.min(rest.len())..];
                if n > 0 {
                    self.session.wrote(now(), n);
                }
            }
        }
        while self.stream.pending_tls() {
            self.write_step(|stream, left| stream.flush_step(left).map(|()| 0))?;
        }
        Ok(())
    }

    /// One bounded socket write; a timeout or an error goes to the engine, and a session it
    /// closed gives its error.
    fn write_step(
        &mut self,
        write: impl FnOnce(&mut Stream, Duration) -> io::Result<usize>,
    ) -> Result<usize, SmtpError> {
        let left = match self.wait() {
            Wait::Left(left) => Some(left),
            Wait::Fired => None,
            // No timer from the engine (the write's limit ended with a partial write): the
            // engine's own limit for one write still bounds it.
            Wait::Idle => Some(self.session.config().timeouts.data_block),
        };
        let result = match left {
            Some(left) => write(&mut self.stream, left),
            None => Ok(0),
        };
        match result {
            Ok(n) => {
                if self.session.is_failed() {
                    return Err(self.take_failure());
                }
                Ok(n)
            }
            Err(e) if is_timeout(&e) => {
                let was_timed = self.session.poll_timeout(now()).is_some();
                self.session.handle_timeout(now());
                if !was_timed && !self.session.is_failed() {
                    self.session.handle_io_error(
                        io::ErrorKind::TimedOut,
                        "a write made no progress within the data block limit",
                    );
                }
                if self.session.is_failed() {
                    return Err(self.take_failure());
                }
                Ok(0)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => {
                self.session.handle_io_error(e.kind(), &e.to_string());
                Err(self.take_failure())
            }
        }
    }

    /// After a fatal input, fetch the error the engine recorded and close the socket.
    fn take_failure(&mut self) -> SmtpError {
        self.close_stream();
        let mut err = None;
        while let Some(event) = self.session.poll_event() {
            if let Event::MessageFailed { fate, .. } = &event {
                self.fate = Some(*fate);
            }
            if let Event::Failed { error, .. } | Event::MessageFailed { error, .. } = event {
                err.get_or_insert(error);
            }
        }
        err.unwrap_or_else(|| {
            self.session
                .check_usable()
                .err()
                .unwrap_or(SmtpError::Internal {
                    what: "the engine closed without reporting an error",
                })
        })
    }

    /// Flush, then read and feed until an event is queued or `done` holds. Each socket read is
    /// bounded by the engine's timer, whose instant stays the same across reads of one reply.
    fn drive(&mut self, done: impl Fn(&Session) -> bool) -> Result<(), SmtpError> {
        loop {
            self.flush()?;
            if self.session.has_events() || done(&self.session) {
                return Ok(());
            }
            let left = match self.wait() {
                Wait::Left(left) => left,
                // The engine has the timeout; its events say what became of it.
                Wait::Fired => continue,
                Wait::Idle => {
                    return Err(SmtpError::Internal {
                        what: "the client waits for a reply the engine does not expect",
                    });
                }
            };
            match self.stream.read(&mut self.read_buf, left) {
                Ok(Got::Data(n)) => self.session.feed(&self.read_buf[..n]),
                Ok(Got::Eof) => self.session.handle_eof(),
                Ok(Got::Partial) => {}
                Err(e) if is_timeout(&e) => self.session.handle_timeout(now()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.session.handle_io_error(e.kind(), &e.to_string()),
            }
        }
    }

    /// An operation failed: drop its other queued events, close the socket if the session
    /// closed, and hand the error back.
    fn failed(&mut self, error: SmtpError) -> SmtpError {
        while self.session.poll_event().is_some() {}
        if self.session.state() == SessionState::Closed {
            self.close_stream();
        }
        error
    }

    /// Drive until an event matching `want` arrives. Informational events are skipped; a
    /// failure is returned (closing the socket if the session closed).
    fn wait_for(&mut self, want: impl Fn(&Event) -> bool) -> Result<Event, SmtpError> {
        loop {
            self.drive(|_| false)?;
            while let Some(event) = self.session.poll_event() {
                match event {
                    Event::MessageFailed { error, fate, .. } => {
                        self.fate = Some(fate);
                        return Err(self.failed(error));
                    }
                    Event::Failed { error, .. } => return Err(self.failed(error)),
                    e if want(&e) => return Ok(e),
                    Event::UpgradeTls => self.session.handle_io_error(
                        io::ErrorKind::Unsupported,
                        "unexpected TLS upgrade request",
                    ),
                    _ => {}
                }
            }
        }
    }
}
