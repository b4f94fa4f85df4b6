//! [`Mailer`]: a pool of SMTP connections that any number of tasks share.
//!
//! Cloning a `Mailer` is cheap (one `Arc`), and it is `Send + Sync`: every request handler keeps
//! a clone and calls [`send`](Mailer::send). Each call takes a connection for the length of one
//! message (an idle one, or a new one when none is idle and the pool is not full), so up to
//! [`max_connections`](MailerBuilder::max_connections) messages are on the wire at once.
//!
//! # The connection limit
//!
//! [`max_connections`](MailerBuilder::max_connections) bounds every connection the pool holds,
//! whatever it is doing: being opened, carrying a message, idle, being probed, or being ended
//! with QUIT (after its message cap, by the idle reaper, at shutdown). A connection counts from
//! the moment the pool decides to open it until its socket is closed, however that happens,
//! including a caller dropping its send future half-way; [`Mailer::connections`] reports the
//! count. A retry that needs a new connection while the pool is full ends the connection the
//! first attempt failed on first.
//!
//! # Reuse
//!
//! A connection coming back from a message goes to the idle list unless its session closed, it
//! carried [`max_messages_per_connection`](MailerBuilder::max_messages_per_connection) messages
//! (it is ended with QUIT before the server's own cap), or the pool is shutting down. Such a
//! connection is ended in the background once the caller has its answer (no one waits for the
//! `221`). Before an idle connection is used again:
//!
//! 1. past the [idle timeout](MailerBuilder::idle_timeout) it is ended with QUIT;
//! 2. it is checked **without blocking** for anything the server sent while it was idle: a
//!    `421` before the server hung up, a stray reply, an end of stream
//!    ([`SmtpClient::check_idle`](crate::SmtpClient::check_idle): part of a reply the engine
//!    holds, what TLS already decrypted, and a `MSG_PEEK` of the socket itself, the kernel's
//!    view rather than the readiness tokio's reactor cached, which can be stale until its event
//!    loop turns; see [`TokioTransport`](crate::TokioTransport)'s `input_pending`). Anything
//!    at all means the connection is out of step, and it is closed without QUIT: those bytes
//!    are never read as the reply to the next command;
//! 3. only when it sat idle longer than the [probe threshold](MailerBuilder::probe_after) is a
//!    `NOOP` sent (one round trip), and anything but a `250`-class reply other than `221`
//!    closes it.
//!
//! # Retries
//!
//! A message that failed before its end of data (final dot or `BDAT LAST`) was written (a lost
//! connection, a `421`, a `4xx` at MAIL, a timeout before the body) provably was not delivered:
//! it is sent once more, on a new connection. A message whose end of data was written and whose
//! reply never came is [`SendError::Unknown`] and is never sent again: a duplicate is worse than
//! a clear report. A `5xx` is final. See [`Delivery`]. A streamed body
//! ([`send_stream`](Mailer::send_stream), [`send_file`](Mailer::send_file)) is opened again
//! from its start for the retry, and only once the call has a connection's place: callers
//! waiting for a connection hold no file open.
//!
//! # Deadlines
//!
//! A [send deadline](MailerBuilder::send_deadline) bounds each call from start to answer: the
//! wait for a connection, connecting, the retry, the message. When it passes, the answer still
//! says what became of the message ([`SendError::NotSent`] before its end of data,
//! [`SendError::Unknown`] after), which dropping the future cannot.
//!
//! # TLS
//!
//! Every connection of a pool uses the same rustls `ClientConfig` (from the one [`TlsConfig`]
//! given to the builder), so its session cache is shared and a new connection resumes the TLS
//! session of an earlier one instead of a full handshake. [`Mailer::stats`] counts both.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_proto::client::Delivery;
use smtp_proto::session::Envelope;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

mod attempt;
mod backoff;
mod builder;
mod chain;
mod connections;
mod credentials;
mod error;
#[cfg(feature = "redis")]
mod shared_limit;
mod source;
mod tally;
mod throttle;

pub use backoff::Backoff;
pub use builder::MailerBuilder;
pub use credentials::{TokenFuture, TokenMechanism, TokenSource};
pub use error::SendError;
#[cfg(feature = "redis")]
pub use shared_limit::SharedRateLimit;
pub use source::OpenBody;
pub use tally::{Connections, PoolStats};
pub use throttle::{RateLimit, Throttle, ThrottleFuture, Turn};

use attempt::{Next, SendClock};
use builder::{OptionsFn, Settings};
use connections::Pooled;
use credentials::Credentials;
use source::{InMemory, Reopened, Source};
use tally::{Tally, bump};

use crate::{
    ConnectOptions, MessageOptions, OutgoingMessage, ReaderBody, SendOutcome, SmtpOp, TlsConfig,
    TlsMode,
};

/// A shared pool of SMTP connections: clone it into every task, call [`send`](Mailer::send)
/// from any of them, [`shutdown`](Mailer::shutdown) once at the end (dropping the last clone
/// instead closes the idle connections without QUIT).
///
/// ```no_run
/// use smtp_io_tokio::{Mailer, TlsMode};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let mailer = Mailer::builder("smtp.example.com", 587, TlsMode::StartTls, "app.example.com")
///     .credentials("me@example.com", "app-password")
///     .max_connections(8)
///     .build()?;
/// let mut tasks = Vec::new();
/// for n in 0..100 {
///     let mailer = mailer.clone();
///     tasks.push(tokio::spawn(async move {
///         let body = format!("Subject: note {n}\r\n\r\nHello\r\n");
///         mailer.send("me@example.com", &["you@example.org"], body.as_bytes()).await
///     }));
/// }
/// for task in tasks {
///     task.await??;
/// }
/// mailer.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
    /// The send deadline of this handle's calls (the builder's, or
    /// [`with_send_deadline`](Mailer::with_send_deadline)'s).
    send_deadline: Option<Duration>,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("Mailer");
        f.field("host", &self.inner.host)
            .field("port", &self.inner.port)
            .field("stats", &self.stats());
        #[cfg(feature = "dkim")]
        f.field("dkim", &self.inner.dkim.as_ref().map(DkimName));
        f.finish_non_exhaustive()
    }
}

/// A connection's place held by a send of its own: given back when dropped, and then offered
/// to the messages waiting for a chained flight, which only take a place when one is given
/// back this way or by a flight's worker.
struct Place {
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    inner: Arc<Inner>,
}

impl Drop for Place {
    fn drop(&mut self) {
        drop(self.permit.take());
        // Outside a runtime (one shutting down) no worker can start, nor would it run.
        if tokio::runtime::Handle::try_current().is_ok() {
            self.inner.dispatch();
        }
    }
}

struct Inner {
    host: String,
    port: u16,
    ehlo_domain: String,
    /// The connect options of every connection ([`MailerBuilder::new`]), copied for each.
    connect: smtp_proto::connect::SharedConnectSettings,
    tls: TlsConfig,
    /// The caller's change to each connection's client options
    /// ([`MailerBuilder::client_options`]).
    options: Box<OptionsFn>,
    credentials: Option<Credentials>,
    /// What paces the messages, if anything.
    throttle: Option<Arc<dyn Throttle>>,
    /// The pause after the server said to slow down, when the pool backs off.
    pause: Option<backoff::Pause>,
    settings: Settings,
    /// One permit per call holding a connection's place (a message on the wire, or a
    /// connection being ended with QUIT after its last one): the callers beyond
    /// `max_connections` wait here, and `shutdown` takes them all.
    permits: Arc<Semaphore>,
    /// Connections between messages, the most recently used last.
    idle: Mutex<Vec<Pooled>>,
    closed: AtomicBool,
    /// Wakes every caller waiting out a pause when the pool shuts down ([`Inner::pause_over`]).
    shut: tokio::sync::Notify,
    /// Whether the idle reaper was started (with the first message, inside its runtime).
    reaping: AtomicBool,
    /// Every connection's place ([`Slot`]) and the pool's counters.
    tally: Arc<Tally>,
    /// Messages waiting for a chained flight ([`MailerBuilder::chain_messages`]).
    lobby: chain::Lobby,
    /// Signs every message ([`MailerBuilder::dkim`]).
    #[cfg(feature = "dkim")]
    dkim: Option<crate::dkim::DkimSigner>,
}

/// What `Debug` shows of a pool's DKIM signer: its domain and selector, never its key.
#[cfg(feature = "dkim")]
struct DkimName<'a>(&'a crate::dkim::DkimSigner);

#[cfg(feature = "dkim")]
impl fmt::Debug for DkimName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimSigner")
            .field("domain", &self.0.domain())
            .field("selector", &self.0.selector())
            .field("algorithm", &self.0.key().algorithm())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A builder for a pool of connections to `host:port` in `mode`, saying EHLO as
    /// `ehlo_domain`, with the default connect options for `mode` ([`ConnectOptions::new`])
    /// and the pool's default DATA pipelining ([`MailerBuilder::data_pipelining`]);
    /// [`MailerBuilder::new`] takes connect options of your own, as they are.
    pub fn builder(
        host: impl Into<String>,
        port: u16,
        mode: TlsMode,
        ehlo_domain: impl Into<String>,
    ) -> MailerBuilder {
        MailerBuilder::new(
            host,
            port,
            ehlo_domain,
            builder::pool_defaults(ConnectOptions::new(mode)),
        )
    }

    /// Send one message (a complete RFC 5322 message; line endings are normalised and lines
    /// starting with `.` dot-stuffed) with the connections' default message options. `to` is
    /// any list of addresses: `["a@example.org"]`, `&recipients` (a `Vec<String>`), an
    /// iterator.
    ///
    /// Errors are typed by what became of the message: [`SendError::NotSent`] (after at most
    /// one retry on a new connection, see the [module docs](self)), [`SendError::Unknown`],
    /// [`SendError::Busy`], [`SendError::Closed`]. Dropping the future before it finishes
    /// closes the connection it was using (without QUIT); whether the message went out is
    /// then unknown (a [send deadline](MailerBuilder::send_deadline) says which instead).
    pub async fn send<R: AsRef<str>>(
        &self,
        from: &str,
        to: impl IntoIterator<Item = R>,
        body: &[u8],
    ) -> Result<SendOutcome, SendError> {
        let to: Vec<R> = to.into_iter().collect();
        let to: Vec<&str> = to.iter().map(AsRef::as_ref).collect();
        self.send_in_memory(&OutgoingMessage::new(from, &to, body))
            .await
    }

    /// [`send`](Self::send) with per-message options (DSN, REQUIRETLS, ...).
    pub async fn send_with<R: AsRef<str>>(
        &self,
        from: &str,
        to: impl IntoIterator<Item = R>,
        body: &[u8],
        options: &MessageOptions,
    ) -> Result<SendOutcome, SendError> {
        let to: Vec<R> = to.into_iter().collect();
        let to: Vec<&str> = to.iter().map(AsRef::as_ref).collect();
        self.send_in_memory(&OutgoingMessage::new(from, &to, body).with_options(options))
            .await
    }

    /// Send a message built with mail-builder (feature `mail-builder`), the envelope taken from
    /// its headers as [`SendMessage::send_message`](crate::message::SendMessage::send_message)
    /// does (Bcc recipients in the envelope, never in the message). A message whose headers
    /// give no usable envelope is [`SendError::NotSent`] with no attempt.
    #[cfg(feature = "mail-builder")]
    pub async fn send_message(
        &self,
        message: &crate::mail_builder::MessageBuilder<'_>,
    ) -> Result<SendOutcome, SendError> {
        let prepared = crate::message::prepare(message)
            .map_err(|error| SendError::NotSent { error, attempts: 0 })?;
        let to = prepared.recipients();
        self.send_in_memory(&OutgoingMessage::new(&prepared.from, &to, &prepared.bytes))
            .await
    }

    /// Send a message whose body is read from a stream, for messages too large to hold in
    /// memory. `open` (an [`OpenBody`]: a closure returning a future of the body) yields the
    /// body from its start and is called once per attempt, so that a retry on a new connection
    /// (see the [module docs](self)) sends it whole again; it is called only once the call has
    /// a connection's place, so callers waiting for a connection hold no body open. The body's size hint is declared as `SIZE=` and checked against the
    /// server's limit; what it yields is counted against that hint. A pool that signs
    /// (`MailerBuilder::dkim`, feature `dkim`) calls `open` once more, first, to hash the
    /// message: it must yield the same bytes every time.
    ///
    /// An `open` that fails is [`SendError::NotSent`] with the error as an
    /// [`SmtpError::Io`](crate::SmtpError::Io) during [`SmtpOp::ReadBody`] (`attempts`: the
    /// connections tried before it); a body that fails to read half-way closes its connection
    /// before the end of data (nothing delivered) and is retried like any other failure before
    /// the end of data.
    ///
    /// ```no_run
    /// use smtp_io_tokio::{Mailer, ReaderBody};
    ///
    /// # async fn demo(mailer: Mailer) -> Result<(), Box<dyn std::error::Error>> {
    /// let path = std::path::Path::new("/var/spool/app/report.eml");
    /// mailer
    ///     .send_stream("reports@example.com", ["ops@example.org"], || ReaderBody::open(path))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_stream<R: AsRef<str>, O: OpenBody>(
        &self,
        from: &str,
        to: impl IntoIterator<Item = R>,
        open: O,
    ) -> Result<SendOutcome, SendError> {
        self.send_stream_as(from, to, None, open).await
    }

    /// [`send_stream`](Self::send_stream) with per-message options.
    pub async fn send_stream_with<R: AsRef<str>, O: OpenBody>(
        &self,
        from: &str,
        to: impl IntoIterator<Item = R>,
        options: &MessageOptions,
        open: O,
    ) -> Result<SendOutcome, SendError> {
        self.send_stream_as(from, to, Some(options), open).await
    }

    /// [`send_stream`](Self::send_stream) with the message's options, or the pool's.
    async fn send_stream_as<R: AsRef<str>, O: OpenBody>(
        &self,
        from: &str,
        to: impl IntoIterator<Item = R>,
        options: Option<&MessageOptions>,
        open: O,
    ) -> Result<SendOutcome, SendError> {
        let to: Vec<R> = to.into_iter().collect();
        let to: Vec<&str> = to.iter().map(AsRef::as_ref).collect();
        let message = Reopened {
            from,
            to: &to,
            options,
            open,
        };
        self.send_reopened(message).await
    }

    /// Send the message in the file at `path` (a complete RFC 5322 message), streamed: the file
    /// is opened (its size as sent counted only when the server's SIZE limit makes it matter,
    /// see [`ReaderBody::open`]) for each attempt,
    /// once the call has a connection's place.
    /// [`send_stream`](Self::send_stream) with [`ReaderBody::open`].
    pub async fn send_file<R: AsRef<str>>(
        &self,
        from: &str,
        to: impl IntoIterator<Item = R>,
        path: impl AsRef<Path>,
    ) -> Result<SendOutcome, SendError> {
        let path = path.as_ref();
        self.send_stream(from, to, || ReaderBody::open(path)).await
    }

    /// A streamed message, signed first when the pool signs ([`MailerBuilder::dkim`]).
    async fn send_reopened<O: OpenBody>(
        &self,
        message: Reopened<'_, O>,
    ) -> Result<SendOutcome, SendError> {
        #[cfg(feature = "dkim")]
        if let Some(signer) = &self.inner.dkim {
            crate::dkim::check_signable(message.options)
                .map_err(|error| SendError::NotSent { error, attempts: 0 })?;
            return self
                .send_source(source::Signed {
                    message,
                    signer,
                    header: None,
                })
                .await;
        }
        self.send_source(message).await
    }

    /// A message in memory, signed first when the pool signs ([`MailerBuilder::dkim`]): once,
    /// so that a retry (or a chained flight's) sends the same signature.
    async fn send_in_memory(
        &self,
        message: &OutgoingMessage<'_>,
    ) -> Result<SendOutcome, SendError> {
        #[cfg(feature = "dkim")]
        if let Some(signer) = &self.inner.dkim {
            crate::dkim::check_signable(message.options)
                .map_err(|error| SendError::NotSent { error, attempts: 0 })?;
            let signed = crate::dkim::unix_now()
                .and_then(|now| signer.prepend(message.body, now))
                .map_err(|e| SendError::NotSent {
                    error: crate::dkim::unsignable(&e),
                    attempts: 0,
                })?;
            let message = OutgoingMessage {
                body: &signed,
                ..*message
            };
            return self.send_unsigned(&message).await;
        }
        self.send_unsigned(message).await
    }

    /// A message in memory (signed already, if at all): in a chained flight when the pool
    /// chains ([`MailerBuilder::chain_messages`]), otherwise on a connection of its own.
    async fn send_unsigned(&self, message: &OutgoingMessage<'_>) -> Result<SendOutcome, SendError> {
        if self.inner.settings.chain < 2 {
            return self.send_source(InMemory(message)).await;
        }
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        self.inner.start_reaper();
        let clock = SendClock::start(self.send_deadline);
        self.inner.send_chained(message, clock).await
    }

    /// The send loop: a permit, the message made ready, a connection, one attempt, at most one
    /// retry on a new connection, the connection back to the idle list or ended; all within
    /// the send deadline, if there is one.
    async fn send_source<S: Source>(&self, mut source: S) -> Result<SendOutcome, SendError> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        inner.start_reaper();
        let clock = SendClock::start(self.send_deadline);
        // A bad envelope costs no turn and no connection, as on the chained path.
        let (from, to) = source.envelope();
        Envelope::new(from, to).map_err(|e| SendError::NotSent {
            error: e.into(),
            attempts: 0,
        })?;
        let wait = inner.settings.wait_timeout;
        // A pause holds the caller before it queues for a place; its turn of the throttle is
        // taken once it holds one, just before its message goes, so that turns taken while
        // every connection was busy never go out together.
        inner.wait_out_pause(&clock, wait, clock.started).await?;
        let permit = inner.permits.clone().acquire_owned();
        let permit = match clock.wait_for_place(wait, permit).await? {
            Err(_) => return Err(SendError::Closed),
            Ok(permit) => Place {
                permit: Some(permit),
                inner: Arc::clone(inner),
            },
        };
        if inner.closed.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        // A pause that began while this call waited for its place holds it too, and then its
        // turn of the throttle.
        inner.take_turn(&clock, wait, clock.started).await?;
        // The connection the first attempt failed on, for the retry to replace.
        let mut failed = None;
        let mut attempts = 0;
        loop {
            attempts += 1;
            // Made ready only now, with a place held: opening a body may take a while, and the
            // first attempt may have consumed it.
            let ready = clock.within(source.prepare()).await;
            let mut ready = match ready {
                Some(Ok(ready)) => ready,
                Some(Err(error)) => {
                    return Err(SendError::NotSent {
                        error,
                        attempts: attempts - 1,
                    });
                }
                None => {
                    return Err(SendError::NotSent {
                        error: clock.exceeded(SmtpOp::ReadBody),
                        attempts: attempts - 1,
                    });
                }
            };
            let conn = match failed.take() {
                None => clock.within(inner.checkout()).await,
                Some(failed) => {
                    // A retry is one more message for the server: it waits its turn too.
                    let since = tokio::time::Instant::now();
                    if let Err(e) = inner.take_turn(&clock, wait, since).await {
                        drop(failed);
                        return Err(e);
                    }
                    bump(&inner.tally.retries);
                    clock.within(inner.reconnect(failed)).await
                }
            };
            let mut conn = match conn {
                Some(Ok(conn)) => conn,
                Some(Err(error)) => {
                    // Nothing of the message was sent.
                    let delivery = Delivery::NotSent {
                        error,
                        before_end_of_data: true,
                    };
                    match inner.next_step(delivery, attempts, &clock) {
                        Next::Retry => continue,
                        Next::Answer(answer) => return answer,
                    }
                }
                None => {
                    let error = clock.exceeded(SmtpOp::Connect);
                    return Err(SendError::NotSent { error, attempts });
                }
            };
            if conn.messages > 0 {
                bump(&inner.tally.reused);
            }
            conn.messages += 1;
            conn.client
                .set_deadline(clock.limit, clock.started.elapsed());
            let delivery = source.deliver(&mut ready, &mut conn.client).await;
            conn.client.set_deadline(None, Duration::ZERO);
            let result = match inner.next_step(delivery, attempts, &clock) {
                Next::Retry => {
                    failed = Some(conn);
                    continue;
                }
                Next::Answer(answer) => answer,
            };
            // The caller has its answer now: a connection that is not going back to the idle
            // list (closed, at its message cap, or the pool shutting down) is ended in the
            // background, and holds this call's permit until it is closed.
            if let Some(conn) = inner.park(conn) {
                let inner = Arc::clone(inner);
                tokio::spawn(async move {
                    inner.retire(conn).await;
                    drop(permit);
                });
            }
            return result;
        }
    }

    /// A handle on the same pool whose calls have their own [send
    /// deadline](MailerBuilder::send_deadline): `limit` from each call to its answer (the wait
    /// for a connection included), whatever the builder set. Cheap (one `Arc` clone); the pool,
    /// its connections and its limits are shared.
    ///
    /// ```no_run
    /// # async fn demo(mailer: smtp_io_tokio::Mailer) -> Result<(), smtp_io_tokio::SendError> {
    /// use std::time::Duration;
    /// // This one message within 10 s: its answer still says whether it may have gone out.
    /// mailer
    ///     .with_send_deadline(Duration::from_secs(10))
    ///     .send("me@example.com", ["you@example.org"], b"Subject: now\r\n\r\nHi\r\n")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn with_send_deadline(&self, limit: Duration) -> Mailer {
        Mailer {
            inner: Arc::clone(&self.inner),
            send_deadline: Some(limit),
        }
    }

    /// What the pool did so far: connections opened and closed, TLS handshakes (full and
    /// resumed), reuse, probes, out-of-step connections, retries.
    pub fn stats(&self) -> PoolStats {
        self.inner.tally.stats()
    }

    /// The connections the pool holds now (never more than
    /// [`max_connections`](MailerBuilder::max_connections)), and the idle ones among them.
    pub fn connections(&self) -> Connections {
        Connections {
            open: self.inner.tally.live(),
            idle: self.inner.lock_idle().len(),
        }
    }

    /// Shut the pool down gracefully: new calls fail with [`SendError::Closed`] at once (as do
    /// calls still waiting for a connection), messages on the wire finish, then every idle
    /// connection is ended with QUIT, all at once. Returns when every connection of the pool
    /// is closed. Calling it again returns at once.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        if inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        // Callers sleeping out a pause (holding a place, or a chained worker) end now.
        inner.shut.notify_waiters();
        // Every connection in use gives its permit back when its message is done; callers
        // queued before us get theirs, see `closed` and give it back at once. The builder
        // keeps `max_connections` within `u32`.
        let all = u32::try_from(inner.settings.max_connections).unwrap_or(u32::MAX);
        let held = inner.permits.acquire_many(all).await;
        inner.permits.close();
        drop(held);
        // Messages still waiting for a chained flight (their workers answer those they see).
        for job in inner.lobby.drain() {
            job.reply(Err(SendError::Closed));
        }
        let idle = std::mem::take(&mut *inner.lock_idle());
        let mut quitting = JoinSet::new();
        for conn in idle {
            let inner = Arc::clone(inner);
            quitting.spawn(async move { inner.retire(conn).await });
        }
        while quitting.join_next().await.is_some() {}
        // A connection the reaper is ending right now is still open.
        loop {
            let freed = inner.tally.freed.notified();
            if inner.tally.live() == 0 {
                return;
            }
            freed.await;
        }
    }
}
