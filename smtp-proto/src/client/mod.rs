//! The async [`SmtpClient`]: one runtime-free driver over the [`Session`] engine, shared by every
//! adapter.
//!
//! Each method loops the same way: write what the engine wants to send, return when the event the
//! method waits for arrives, otherwise read (bounded by the engine's timeout for the awaited reply)
//! and feed the bytes in. The driver never looks at reply codes: every protocol decision is the
//! engine's.
//!
//! # Lifecycle
//!
//! ```text
//! connect / connect_with / connect_starttls   greeting + EHLO (+ STARTTLS + EHLO)
//!   -> starttls()      only right after connect, fails closed
//!   -> login*()        only right after connect (or after a refused attempt)
//!   -> send_mail*()    any number of times
//!   -> quit()          consumes the client
//! ```
//!
//! When an error closes the session ([`SmtpClient::state`] is [`SessionState::Closed`]), the
//! transport is closed too, and every later call fails with the same error.

mod batch;
mod reuse;
#[cfg(test)]
mod tests;

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use core::future::Future;
use core::pin::pin;

pub use crate::body::{MessageBody, PrefixedBody, SliceBody};
pub use crate::flight::{Flight, FlightMessage, OutgoingMessage};
pub use crate::options::{ClientOptionsParts, SharedClientOptions, SmtpClientOptions};
pub use crate::session::Delivery;
pub use crate::session::IdleStatus;
pub use crate::transport::{StartTlsCapable, Transport};

use crate::body::size_to_declare;
use crate::command::Domain;
use crate::error::SmtpError;
use crate::future::{Either, race};
use crate::reply::Reply;
use crate::sasl::{AuthInput, AuthMechanism};
use crate::session::{BodyInfo, Envelope, Event, MessageId, MessageOptions, SendOutcome, Session};
use crate::state::{SessionState, SmtpOp};
use crate::time::{Instant, Timer};

/// Now, on the transport's clock, as the engine's instant.
fn now<T: Transport>() -> Instant {
    Instant::from(T::now())
}

/// Run `work` (a write, the TLS upgrade, a read of the body's source) until it ends or the
/// engine's timer fires: its result, or `None` when a timer ended it (the engine has recorded
/// why and closed the session).
async fn within_timer<T: Transport, R>(
    session: &mut Session,
    work: impl Future<Output = std::io::Result<R>>,
) -> Option<std::io::Result<R>> {
    let mut work = pin!(work);
    loop {
        let timer = session.poll_timeout(now::<T>());
        match race(work.as_mut(), SmtpClient::<T>::until_due(timer)).await {
            Either::Left(result) => return Some(result),
            Either::Right(due) => {
                session.handle_timeout(due);
                if session.state() == SessionState::Closed {
                    return None;
                }
            }
        }
    }
}

/// How much of a body held in memory `send_mail_bytes` encodes before writing it out.
const BODY_SLICE: usize = 256 * 1024;

/// The longest closing the transport may take (a TLS `close_notify` to a server that stopped
/// reading would otherwise wait for ever); the connection is then dropped as it stands.
const CLOSE_LIMIT: core::time::Duration = core::time::Duration::from_secs(5);

/// The longest the client reads, after a write failed, for a reply the server wrote before it
/// hung up ([`SmtpClient::read_what_arrived`]).
const EXPLAIN_LIMIT: core::time::Duration = core::time::Duration::from_millis(250);

/// An SMTP client on one connection.
///
/// ```no_run
/// # async fn example<T: smtp_proto::client::Transport>(transport: T) -> Result<(), smtp_proto::SmtpError> {
/// use smtp_proto::client::SmtpClient;
///
/// let mut client = SmtpClient::connect(transport, "client.example.com").await?;
/// client.login("user@example.com", "app-password").await?;
/// let outcome = client
///     .send_mail("user@example.com", &["friend@example.org"], "Subject: hi\r\n\r\nHello\r\n")
///     .await?;
/// println!("queued as {:?}", outcome.queue_id);
/// client.quit().await?;
/// # Ok(()) }
/// ```
pub struct SmtpClient<T: Transport> {
    transport: T,
    session: Session,
    read_buf: Vec<u8>,
    body_buf: Vec<u8>,
    message: MessageOptions,
    transport_closed: bool,
    /// The results of messages the driver took off the engine's queue itself since the latest
    /// `send_mail*` or flight began (cleared when one begins), by message: every failure, and
    /// what a failure drained. What [`Delivery`] reports, also for the messages a fatal error
    /// ended together.
    taken: Vec<(MessageId, Delivery)>,
}

impl<T: Transport> core::fmt::Debug for SmtpClient<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SmtpClient")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl<T: Transport> SmtpClient<T> {
    /// Read the greeting and do the EHLO handshake on an already connected transport (past the
    /// TLS handshake for implicit TLS). Uses the allow-all policy and no audit sink.
    pub async fn connect(transport: T, ehlo_domain: &str) -> Result<SmtpClient<T>, SmtpError> {
        SmtpClient::connect_with(transport, ehlo_domain, SmtpClientOptions::new()).await
    }

    /// [`connect`](Self::connect) with explicit options.
    pub async fn connect_with(
        transport: T,
        ehlo_domain: &str,
        options: SmtpClientOptions,
    ) -> Result<SmtpClient<T>, SmtpError> {
        let domain = Domain::new(ehlo_domain)?;
        let SmtpClientOptions {
            mut config,
            message,
            read_buffer,
            started,
        } = options;
        // The transport knows whether it is encrypted: implicit TLS needs no flag.
        config.tls |= transport.is_encrypted();
        let mut client = SmtpClient {
            transport,
            session: Session::new(domain, config),
            read_buf: vec![0; read_buffer.unwrap_or(8 * 1024)],
            body_buf: Vec::new(),
            message,
            transport_closed: false,
            taken: Vec::new(),
        };
        // The deadline counts from when the adapter began to connect, if it says.
        client.session.start(started.unwrap_or_else(now::<T>));
        match client
            .wait_for(|e| matches!(e, Event::HelloDone).then_some(()))
            .await
        {
            Ok(_) => Ok(client),
            Err(e) => {
                client.close_transport().await;
                Err(e)
            }
        }
    }

    /// The capability lines of the latest EHLO reply, without its first (greeting) line, e.g.
    /// `"AUTH LOGIN PLAIN"`, `"PIPELINING"`. Parsed values: [`Self::session`]`().capabilities()`.
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

    /// The transport (e.g. to read the peer address).
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Authenticate with the best password mechanism the server offers, in this order:
    ///
    /// 1. SCRAM-SHA-256-PLUS, on TLS 1.3 when the transport exports the `tls-exporter` channel
    ///    binding ([`Transport::tls_exporter`]);
    /// 2. SCRAM-SHA-256, when the transport has a random source ([`Transport::fill_random`]);
    /// 3. PLAIN;
    /// 4. LOGIN.
    ///
    /// SCRAM is skipped when the `scram` feature is off. Never picks XOAUTH2 or OAUTHBEARER.
    /// Allowed only right after connect; a second login after success is
    /// [`InvalidInputError::WrongState`](crate::InvalidInputError::WrongState). The credentials are not kept after the call.
    ///
    /// A SCRAM server that does not prove it knows the password (a wrong or missing server
    /// signature) fails with [`AuthError::Scram`](crate::AuthError::Scram) and closes the
    /// connection, so nothing else is sent to it.
    pub async fn login(&mut self, user: &str, pass: &str) -> Result<(), SmtpError> {
        let input = self.auth_input(None)?;
        self.session.login_auto_with_input(user, pass, input)?;
        self.wait_for(|e| matches!(e, Event::Authenticated(_)).then_some(()))
            .await
    }

    /// Authenticate with a given mechanism. `credential` is a password (PLAIN, LOGIN, SCRAM) or
    /// an OAuth 2.0 access token (XOAUTH2, OAUTHBEARER). A mechanism whose cargo feature is off
    /// gives [`InvalidInputError::FeatureDisabled`](crate::InvalidInputError::FeatureDisabled) without any I/O. SCRAM-SHA-256-PLUS without
    /// channel-binding data (not TLS 1.3) is
    /// [`AuthError::ChannelBindingUnavailable`](crate::AuthError::ChannelBindingUnavailable);
    /// SCRAM over a transport without a random source is [`SmtpError::Io`] during AUTH. Both
    /// before anything is sent.
    pub async fn login_with(
        &mut self,
        mechanism: AuthMechanism,
        user: &str,
        credential: &str,
    ) -> Result<(), SmtpError> {
        let input = self.auth_input(Some(mechanism))?;
        self.session
            .login_with_input(mechanism, user, credential, input)?;
        self.wait_for(|e| matches!(e, Event::Authenticated(_)).then_some(()))
            .await
    }

    /// A usable session's input from the transport for SCRAM ([`Session::auth_input`]).
    fn auth_input(&self, mechanism: Option<AuthMechanism>) -> Result<AuthInput, SmtpError> {
        self.session.check_usable()?;
        let random = |buf: &mut [u8]| Ok(self.transport.fill_random(buf)?);
        let exporter = || self.transport.tls_exporter();
        self.session.auth_input(mechanism, random, exporter)
    }

    /// Authenticate with XOAUTH2 (Google / Microsoft). A refused token gives
    /// [`AuthError::Rejected`](crate::AuthError::Rejected) with the server's decoded JSON error in
    /// `detail`. Getting and refreshing the token is the caller's job.
    pub async fn login_xoauth2(&mut self, user: &str, access_token: &str) -> Result<(), SmtpError> {
        self.login_with(AuthMechanism::XOAuth2, user, access_token)
            .await
    }

    /// Authenticate with OAUTHBEARER (RFC 7628).
    pub async fn login_oauthbearer(
        &mut self,
        user: &str,
        access_token: &str,
    ) -> Result<(), SmtpError> {
        self.login_with(AuthMechanism::OAuthBearer, user, access_token)
            .await
    }

    /// Send one message held in a string (a complete RFC 5322 message). Line endings are
    /// normalised to CRLF and lines starting with `.` are dot-stuffed.
    pub async fn send_mail(
        &mut self,
        from: &str,
        to: &[&str],
        body: &str,
    ) -> Result<SendOutcome, SmtpError> {
        self.send_mail_bytes(from, to, body.as_bytes()).await
    }

    /// Send one message held in bytes (need not be UTF-8). The size declared to the server and
    /// given to the policy is the size after line-ending normalisation. The body is encoded and
    /// written 256 KiB at a time, so sending it takes O(256 KiB) of memory beyond the body itself.
    pub async fn send_mail_bytes(
        &mut self,
        from: &str,
        to: &[&str],
        body: &[u8],
    ) -> Result<SendOutcome, SmtpError> {
        let options = self.message.clone();
        self.send_mail_bytes_with(from, to, body, &options).await
    }

    /// [`send_mail_bytes`](Self::send_mail_bytes) with per-message options (DSN, REQUIRETLS, ...).
    pub async fn send_mail_bytes_with(
        &mut self,
        from: &str,
        to: &[&str],
        body: &[u8],
        options: &MessageOptions,
    ) -> Result<SendOutcome, SmtpError> {
        let envelope = self.envelope(from, to)?;
        let info = BodyInfo::in_memory(body, options);
        if let Some(outcome) = self.start(envelope, info, options).await? {
            return Ok(outcome);
        }
        self.send_body_slices(body).await?;
        self.sent().await
    }

    /// A new message's envelope, once the session can still take one.
    fn envelope(&mut self, from: &str, to: &[&str]) -> Result<Envelope, SmtpError> {
        self.taken.clear();
        self.session.check_usable()?;
        Ok(Envelope::new(from, to)?)
    }

    /// Start a message and wait until the engine wants its body, or has its result already
    /// (`Some`: refused before the body, or every recipient refused).
    async fn start(
        &mut self,
        envelope: Envelope,
        info: BodyInfo,
        options: &MessageOptions,
    ) -> Result<Option<SendOutcome>, SmtpError> {
        self.session.start_mail(envelope, info, options)?;
        self.wait_for(|e| match e {
            Event::Sent(outcome) => Some(Some(outcome)),
            Event::BodyWanted(_) => Some(None),
            _ => None,
        })
        .await
    }

    /// End the body (its terminator, or the last BDAT), closing the transport should that
    /// close the session.
    async fn end_body(&mut self) -> Result<(), SmtpError> {
        let ended = self.session.finish_body();
        self.closing(ended).await
    }

    /// Wait for the message's result, once its body is ended.
    async fn sent(&mut self) -> Result<SendOutcome, SmtpError> {
        self.wait_for(|e| match e {
            Event::Sent(outcome) => Some(outcome),
            _ => None,
        })
        .await
    }

    /// Whether the engine takes more body now, after reading the replies it waits for first
    /// (too many BDAT chunks unanswered). `false`: the message failed, and its result is the
    /// next event.
    async fn body_room(&mut self) -> Result<bool, SmtpError> {
        if !self.session.wants_body() {
            self.drive(|s| s.wants_body()).await?;
        }
        Ok(self.session.wants_body())
    }

    /// Hand a body held in memory to the engine [`BODY_SLICE`] bytes at a time, writing each
    /// slice out before encoding the next: the encoded copy stays O(slice) however large the
    /// message (no second, stuffed copy of a 10 MiB body), while a message of one slice still
    /// leaves in a single write together with its end of data. Then end the body.
    async fn send_body_slices(&mut self, body: &[u8]) -> Result<(), SmtpError> {
        let mut slices = body.chunks(BODY_SLICE).peekable();
        while let Some(slice) = slices.next() {
            if !self.body_room().await? {
                // The message failed (its result is the next event): no end of data.
                return Ok(());
            }
            let sent = self.session.send_body(slice);
            self.closing(sent).await?;
            if slices.peek().is_some() {
                self.flush().await?;
            }
        }
        self.end_body().await
    }

    /// Send a message read from a stream in chunks of `body.chunk_size()`: memory stays
    /// O(chunk), whatever the message size. The policy sees the stream's size hint (`None` when
    /// unknown), and what the stream yields is counted: past its hint (or the policy's or the
    /// server's limit) the message is abandoned before its end of data and the session closed
    /// (see [`Session::send_body`]). A failing `read_chunk` closes the session with [`SmtpError::Io`] (during
    /// [`SmtpOp::ReadBody`]): the message cannot be ended cleanly.
    pub async fn send_mail_stream<B>(
        &mut self,
        from: &str,
        to: &[&str],
        body: &mut B,
    ) -> Result<SendOutcome, SmtpError>
    where
        B: MessageBody,
    {
        let options = self.message.clone();
        self.send_mail_stream_with(from, to, body, &options).await
    }

    /// [`send_mail_stream`](Self::send_mail_stream) with per-message options.
    pub async fn send_mail_stream_with<B>(
        &mut self,
        from: &str,
        to: &[&str],
        body: &mut B,
        options: &MessageOptions,
    ) -> Result<SendOutcome, SmtpError>
    where
        B: MessageBody,
    {
        let envelope = self.envelope(from, to)?;
        let size_hint = size_to_declare(body, &self.session)
            .await
            .map_err(|e| SmtpError::io(SmtpOp::ReadBody, e.kind(), e.to_string()))?;
        let info = BodyInfo::Streamed { size_hint };
        if let Some(outcome) = self.start(envelope, info, options).await? {
            return Ok(outcome);
        }
        let chunk = body.chunk_size().max(1);
        let mut buf = core::mem::take(&mut self.body_buf);
        buf.resize(chunk, 0);
        let result = self.stream_body(body, &mut buf).await;
        self.body_buf = buf;
        if result? {
            self.end_body().await?;
        }
        self.sent().await
    }

    /// Read `body` into the engine until its end (`true`: the body is to be ended), or until
    /// the message fails meanwhile (`false`: its result is the next event, and no end of data
    /// may follow).
    async fn stream_body<B: MessageBody>(
        &mut self,
        body: &mut B,
        buf: &mut [u8],
    ) -> Result<bool, SmtpError> {
        loop {
            if !self.body_room().await? {
                return Ok(false);
            }
            // The source is waited for within the engine's timer too: a source that stalls
            // cannot hold the session past its deadline or an owed reply's limit.
            let n = match within_timer::<T, _>(&mut self.session, body.read_chunk(buf)).await {
                Some(Ok(n)) => n,
                Some(Err(e)) => {
                    self.session.body_unreadable(e.kind(), &e.to_string());
                    return Err(self.take_failure().await);
                }
                None => return Err(self.take_failure().await),
            };
            // A source that blocks the thread (a blocking reader) cannot be raced: one that
            // answered past a timer finds it fired now, before any of its bytes go out.
            self.session.handle_timeout(now::<T>());
            if self.session.state() == SessionState::Closed {
                return Err(self.take_failure().await);
            }
            if n == 0 {
                return Ok(true);
            }
            let sent = self.session.send_body(&buf[..n.min(buf.len())]);
            self.closing(sent).await?;
            self.flush().await?;
        }
    }

    /// Send RSET.
    pub async fn rset(&mut self) -> Result<Reply, SmtpError> {
        self.session.rset()?;
        self.wait_done().await
    }

    /// Send NOOP (e.g. to check the connection is alive).
    pub async fn noop(&mut self) -> Result<Reply, SmtpError> {
        self.session.noop()?;
        self.wait_done().await
    }

    async fn wait_done(&mut self) -> Result<Reply, SmtpError> {
        self.wait_for(|e| match e {
            Event::Done { reply, .. } => Some(reply),
            _ => None,
        })
        .await
    }

    /// Send QUIT, wait for the reply, and close the transport. On an already closed session this
    /// only closes the transport. A transport close failure is returned as [`SmtpError::Io`]
    /// (QUIT may still have completed).
    pub async fn quit(mut self) -> Result<(), SmtpError> {
        let mut answered = Ok(());
        if self.session.state() != SessionState::Closed && self.session.quit().is_ok() {
            answered = self
                .wait_for(|e| matches!(e, Event::Closed).then_some(()))
                .await;
        }
        // The transport is closed either way; a failed QUIT is the error to report.
        let closed = self.close_within_limit().await;
        answered?;
        closed.map_err(|e| SmtpError::io(SmtpOp::Close, e.kind(), e.to_string()))
    }

    // ------------------------------------------------------------ driver

    /// Pass an engine result through, closing the transport when the error closed the session
    /// (e.g. a body past its declared size).
    async fn closing<R>(&mut self, result: Result<R, SmtpError>) -> Result<R, SmtpError> {
        if result.is_err() && self.session.state() == SessionState::Closed {
            self.close_transport().await;
        }
        result
    }

    async fn close_transport(&mut self) {
        let _ = self.close_within_limit().await;
    }

    /// Close the transport within [`CLOSE_LIMIT`], or the deadline if it comes first
    /// ([`Session::close_limit`]), unless it is closed already.
    async fn close_within_limit(&mut self) -> std::io::Result<()> {
        if core::mem::replace(&mut self.transport_closed, true) {
            return Ok(());
        }
        let now = now::<T>();
        let limit = self.session.close_limit(now, CLOSE_LIMIT);
        // A transport whose close blocks (std's) cannot be cut short by the race: it is told
        // the limit as its wait limit.
        self.transport
            .set_wait_limit(Some(now.as_duration().saturating_add(limit)));
        match race(self.transport.close(), T::sleep(limit)).await {
            Either::Left(closed) => closed,
            Either::Right(()) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "closing the connection took longer than its limit (5 s, or the deadline): \
                 it was dropped",
            )),
        }
    }

    /// Bound every call from now on by a deadline of `limit`, counted from a start
    /// `already_spent` ago (zero: from now), on top of the session's own
    /// ([`Timeouts::total`](crate::Timeouts::total); the earlier of the two wins), until it is
    /// lifted with `None`. For a caller that owns a long-lived connection and wants one
    /// message, or one login, done within a limit: a pool gives each message its own deadline
    /// this way, counted from the call (its wait for a connection included). Past it the call
    /// fails like past the session deadline, with [`SmtpError::DeadlineExceeded`] whose `after`
    /// is `limit`, and the session is closed (the connection is out of step); a message whose
    /// end of data was already written is then [`Delivery::Unknown`], one that was not is
    /// [`Delivery::NotSent`]. The engine keeps it ([`Session::set_deadline`]).
    pub fn set_deadline(
        &mut self,
        limit: Option<core::time::Duration>,
        already_spent: core::time::Duration,
    ) {
        match limit {
            Some(limit) => self.session.set_deadline(now::<T>() - already_spent, limit),
            None => self.session.clear_deadline(),
        }
    }

    /// Sleep until the engine's next timer is due (forever when there is none: the future it
    /// races against must end the wait), and return the instant to hand to
    /// [`Session::handle_timeout`]: the timer's own, should the transport's clock lag behind its
    /// sleep, since a sleep that ran its course means the timer is due.
    async fn until_due(timer: Option<Timer>) -> Instant {
        match timer {
            Some(timer) => {
                T::sleep(timer.left(now::<T>())).await;
                now::<T>().max(timer.at)
            }
            None => core::future::pending().await,
        }
    }

    /// Tell the transport when the wait it starts next must end: the engine's next timer.
    fn limit_next_wait(&mut self) {
        let timer = self.session.poll_timeout(now::<T>());
        self.transport
            .set_wait_limit(timer.map(|t| t.at.as_duration()));
    }

    /// Write everything the engine has queued, each write bounded by the engine's timer (the
    /// write's limit, the body's write-progress rule, the deadlines).
    async fn flush(&mut self) -> Result<(), SmtpError> {
        while let Some(bytes) = self.session.poll_transmit() {
            self.limit_next_wait();
            let written =
                within_timer::<T, _>(&mut self.session, self.transport.write_all(&bytes)).await;
            if matches!(written, Some(Err(_))) {
                self.read_what_arrived().await;
                // QUIT answered (the engine closed cleanly): the broken pipe is moot.
                if self.session.state() == SessionState::Closed && !self.session.is_failed() {
                    return Ok(());
                }
            }
            self.step_ended(written).await?;
            self.session.wrote(now::<T>(), bytes.len());
        }
        Ok(())
    }

    /// After a failed write: the server may have written why before it hung up (a refusal in
    /// the middle of a body, then a close), and that reply, not the broken pipe, is the
    /// answer. What has arrived is read and given to the engine, for [`EXPLAIN_LIMIT`] at most
    /// (or what is left of the deadline), until the engine has an answer or the reads end.
    async fn read_what_arrived(&mut self) {
        let now = now::<T>();
        let limit = self.session.close_limit(now, EXPLAIN_LIMIT);
        self.transport
            .set_wait_limit(Some(now.as_duration().saturating_add(limit)));
        let mut out_of_time = pin!(T::sleep(limit));
        while !self.session.has_events() && self.session.state() != SessionState::Closed {
            match race(
                self.transport.read(&mut self.read_buf),
                out_of_time.as_mut(),
            )
            .await
            {
                Either::Left(Ok(n)) if n > 0 => self.session.feed(&self.read_buf[..n]),
                _ => return,
            }
        }
    }

    /// How a step run [`within_timer`] ended, as a result: a failure of the transport is told
    /// to the engine, and either way of failing closes the session and the transport.
    async fn step_ended(&mut self, ended: Option<std::io::Result<()>>) -> Result<(), SmtpError> {
        match ended {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => {
                self.session.handle_io_error(e.kind(), &e.to_string());
                Err(self.take_failure().await)
            }
            None => Err(self.take_failure().await),
        }
    }

    /// The engine's next event, with the result of a failed message noted for [`Delivery`].
    fn next_event(&mut self) -> Option<Event> {
        let event = self.session.poll_event()?;
        if let Event::MessageFailed {
            message,
            error,
            fate,
            ..
        } = &event
        {
            let delivery = Delivery::failed(error.clone(), *fate);
            self.taken.push((*message, delivery));
        }
        Some(event)
    }

    /// After a fatal input: the error that closed the session (the engine keeps it), with the
    /// transport closed and the queued events taken (their results noted).
    async fn take_failure(&mut self) -> SmtpError {
        let error = self.session.check_usable().err();
        self.failed(error.unwrap_or(SmtpError::Internal {
            what: "the engine closed without reporting an error",
        }))
        .await
    }

    /// Flush, then read and feed until an event is queued or `done` holds. Each read is
    /// bounded by the engine's timer, whose instant stays the same across reads of one reply.
    async fn drive(&mut self, done: impl Fn(&Session) -> bool) -> Result<(), SmtpError> {
        loop {
            self.flush().await?;
            if self.session.has_events() || done(&self.session) {
                return Ok(());
            }
            let Some(timer) = self.session.poll_timeout(now::<T>()) else {
                // Nothing is awaited and nothing happened: a driver bug, reported rather than
                // hanging.
                return Err(SmtpError::Internal {
                    what: "the client waits for a reply the engine does not expect",
                });
            };
            self.transport.set_wait_limit(Some(timer.at.as_duration()));
            match race(
                self.transport.read(&mut self.read_buf),
                Self::until_due(Some(timer)),
            )
            .await
            {
                Either::Left(Ok(0)) => self.session.handle_eof(),
                Either::Left(Ok(n)) => self.session.feed(&self.read_buf[..n]),
                Either::Left(Err(e)) => self.session.handle_io_error(e.kind(), &e.to_string()),
                Either::Right(due) => self.session.handle_timeout(due),
            }
        }
    }

    /// An operation failed with `error`: drop its other queued events, close the transport if
    /// the session closed, and hand the error back.
    async fn failed(&mut self, error: SmtpError) -> SmtpError {
        while let Some(event) = self.next_event() {
            // A message of a flight accepted just before the failure keeps its result.
            if let Event::Sent(outcome) = event {
                self.taken.push((outcome.message, Delivery::Sent(outcome)));
            }
        }
        if self.session.state() == SessionState::Closed {
            self.close_transport().await;
        }
        error
    }

    /// Drive until `want` takes an event (what it returns `Some` for). Other events are
    /// skipped; a failure is returned (closing the transport if the session closed).
    async fn wait_for<R>(&mut self, want: impl Fn(Event) -> Option<R>) -> Result<R, SmtpError> {
        loop {
            self.drive(|_| false).await?;
            while let Some(event) = self.next_event() {
                if let Event::MessageFailed { error, .. } | Event::Failed { error, .. } = event {
                    return Err(self.failed(error).await);
                }
                // Any other event is skipped. Only `starttls` asks for the upgrade, and it waits
                // for it; should the request be skipped, the engine still writes nothing until
                // the upgrade is reported, and any input or its timer closes the session.
                // The session may have closed with the wanted event queued (a 421 read with the
                // acceptance): the transport closes now, and a message's result is noted
                // first, for `abandon` should the call be dropped during the close.
                // (Not QUIT's own end: `quit` closes the transport and reports how.)
                let closed =
                    self.session.state() == SessionState::Closed && !matches!(event, Event::Closed);
                if let (true, Event::Sent(outcome)) = (closed, &event) {
                    let sent = Delivery::Sent(outcome.clone());
                    self.taken.push((outcome.message, sent));
                }
                if let Some(wanted) = want(event) {
                    if closed {
                        self.close_transport().await;
                    }
                    return Ok(wanted);
                }
            }
        }
    }
}

impl<T: StartTlsCapable> SmtpClient<T> {
    /// Connect, EHLO, STARTTLS, upgrade the transport, EHLO again. The client is then in
    /// [`SessionState::Authentication`], like after [`connect`](SmtpClient::connect).
    pub async fn connect_starttls(
        transport: T,
        ehlo_domain: &str,
    ) -> Result<SmtpClient<T>, SmtpError> {
        SmtpClient::connect_starttls_with(transport, ehlo_domain, SmtpClientOptions::new()).await
    }

    /// [`connect_starttls`](Self::connect_starttls) with explicit options.
    pub async fn connect_starttls_with(
        transport: T,
        ehlo_domain: &str,
        options: SmtpClientOptions,
    ) -> Result<SmtpClient<T>, SmtpError> {
        let mut client = SmtpClient::connect_with(transport, ehlo_domain, options).await?;
        client.starttls().await?;
        Ok(client)
    }

    /// Upgrade this connection with STARTTLS (RFC 3207) and redo EHLO. Allowed only right after
    /// connect. Fails closed: if STARTTLS is not offered ([`ProtocolError::ExtensionUnavailable`]
    /// with `name: "STARTTLS"`) or is refused ([`ProtocolError::UnexpectedCode`] during
    /// [`SmtpOp::StartTls`]), the session is closed, never left usable in plaintext.
    ///
    /// [`ProtocolError::ExtensionUnavailable`]: crate::ProtocolError::ExtensionUnavailable
    /// [`ProtocolError::UnexpectedCode`]: crate::ProtocolError::UnexpectedCode
    pub async fn starttls(&mut self) -> Result<(), SmtpError> {
        let started = self.session.start_tls();
        self.closing(started).await?;
        self.wait_for(|e| matches!(e, Event::UpgradeTls).then_some(()))
            .await?;
        if self.transport.input_pending() == Some(true) {
            // Bytes after the 220 and before the handshake go to the engine, which calls them
            // what they are (response injection), not to the TLS layer as a bad record.
            let read = self.transport.read(&mut self.read_buf);
            match within_timer::<T, _>(&mut self.session, read).await {
                Some(Ok(0)) => self.session.handle_eof(),
                Some(Ok(n)) => self
                    .session
                    .feed(self.read_buf.get(..n).unwrap_or_default()),
                Some(Err(e)) => self.session.handle_io_error(e.kind(), &e.to_string()),
                None => {}
            }
            return Err(self.take_failure().await);
        }
        self.limit_next_wait();
        let upgraded =
            within_timer::<T, _>(&mut self.session, self.transport.upgrade_to_tls()).await;
        self.step_ended(upgraded).await?;
        self.session.tls_established()?;
        self.wait_for(|e| matches!(e, Event::HelloDone).then_some(()))
            .await
    }
}
