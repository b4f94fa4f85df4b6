//! [`Mailer`]: a pool of SMTP connections that any number of tasks share.
//!
//! Cloning a `Mailer` is cheap (one `Arc`), and it is `Send + Sync`: every request handler keeps
//! a clone and calls [`send`](Mailer::send). Each call takes a connection for the length of one
//! message (an idle one, or a new one when none is idle and the pool is not full), so up to
//! [`max_connections`](MailerBuilder::max_connections) messages are on the wire at once.
//!
//! # Reuse
//!
//! A connection coming back from a message goes to the idle list unless its session closed, it
//! carried [`max_messages_per_connection`](MailerBuilder::max_messages_per_connection) messages
//! (it is ended with QUIT before the server's own cap), or the pool is shutting down. Such a
//! connection is ended in the background once the caller has its answer (no one waits for the
//! `221`), and keeps its place in the pool until it is closed: never more than
//! [`max_connections`](MailerBuilder::max_connections) are open. Before an idle connection is
//! used again:
//!
//! 1. past the [idle timeout](MailerBuilder::idle_timeout) it is ended with QUIT;
//! 2. it is checked **without blocking** for anything the server sent while it was idle: a
//!    `421` before the server hung up, a stray reply, an end of stream
//!    ([`SmtpClient::check_idle`]: part of a reply the engine holds, what TLS already
//!    decrypted, and a `MSG_PEEK` of the socket itself, the kernel's view rather than the
//!    readiness tokio's reactor cached, which can be stale until its event loop turns; see
//!    [`TokioTransport`]'s `input_pending`). Anything at all means the connection is out of
//!    step, and it is closed without QUIT: those bytes are never read as the reply to the next
//!    command;
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
//! from its start for the retry.
//!
//! # TLS
//!
//! Every connection of a pool uses the same rustls `ClientConfig` (from the one [`TlsConfig`]
//! given to the builder), so its session cache is shared and a new connection resumes the TLS
//! session of an earlier one instead of a full handshake. [`Mailer::stats`] counts both.

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use smtp_proto::client::{Delivery, IdleStatus};
use tokio::sync::Semaphore;
use tokio::time::Instant;

mod source;

use source::{InMemory, Reopened, Source};

use crate::{
    BatchMessage, ConnectOptions, DataPipelining, MessageBody, MessageOptions, ReaderBody,
    SendOutcome, SmtpClient, SmtpClientOptions, SmtpError, TlsConfig, TlsMode, TokioTransport,
    TracingTranscript,
};

/// Why [`Mailer::send`] did not deliver a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The message was not delivered: refused by the server (a `5xx`, or a `4xx` to its end of
    /// data), refused by a local check, or failed before its end of data on every attempt.
    NotSent {
        /// The last attempt's error.
        error: SmtpError,
        /// How many connections it was tried on (0 when refused before any, 1 or 2).
        attempts: u32,
    },
    /// The message's end of data was written but its reply never came: it may or may not have
    /// been delivered. It was not sent again.
    Unknown {
        /// What ended the wait for the reply.
        error: SmtpError,
    },
    /// No connection became free within the [wait limit](MailerBuilder::wait_timeout). Nothing
    /// was sent.
    Busy {
        /// How long the call waited.
        waited: Duration,
    },
    /// The pool was shut down. Nothing was sent.
    Closed,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NotSent { error, attempts } => {
                write!(f, "not delivered ({attempts} attempt(s)): {error}")
            }
            SendError::Unknown { error } => write!(
                f,
                "delivery unknown (the end of data was sent, no reply came): {error}"
            ),
            SendError::Busy { waited } => write!(
                f,
                "no SMTP connection became free within {}s",
                waited.as_secs_f64()
            ),
            SendError::Closed => f.write_str("the mail pool is shut down"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::NotSent { error, .. } | SendError::Unknown { error } => Some(error),
            _ => None,
        }
    }
}

impl SendError {
    /// The SMTP error behind it, if there is one.
    pub fn smtp_error(&self) -> Option<&SmtpError> {
        match self {
            SendError::NotSent { error, .. } | SendError::Unknown { error } => Some(error),
            _ => None,
        }
    }
}

/// What a pool did so far, from [`Mailer::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Connections opened (greeting and EHLO done).
    pub opened: u64,
    /// Connections closed, by QUIT or otherwise.
    pub closed: u64,
    /// Connections ended with QUIT answered.
    pub quit: u64,
    /// Full TLS handshakes.
    pub full_handshakes: u64,
    /// Resumed TLS handshakes.
    pub resumed_handshakes: u64,
    /// Messages sent on a connection that had already carried one.
    pub reused: u64,
    /// NOOP probes of connections idle longer than the probe threshold.
    pub probes: u64,
    /// Idle connections closed because the server sent something or hung up while they were
    /// idle (or failed a probe).
    pub out_of_step: u64,
    /// Idle connections ended past the idle timeout.
    pub expired: u64,
    /// Messages sent a second time after failing before their end of data.
    pub retries: u64,
}

#[derive(Default)]
struct Counters {
    opened: AtomicU64,
    closed: AtomicU64,
    quit: AtomicU64,
    full_handshakes: AtomicU64,
    resumed_handshakes: AtomicU64,
    reused: AtomicU64,
    probes: AtomicU64,
    out_of_step: AtomicU64,
    expired: AtomicU64,
    retries: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The username and password a pool logs in with on every new connection; the password is
/// wiped when the pool is dropped.
struct Credentials {
    user: String,
    password: smtp_proto::Secret,
}

/// Builds a [`Mailer`]: where to connect, how, and the pool's limits.
pub struct MailerBuilder {
    host: String,
    port: u16,
    mode: TlsMode,
    ehlo_domain: String,
    tls: TlsConfig,
    connect_timeout: Duration,
    tls_server_name: Option<String>,
    options: Box<dyn Fn() -> SmtpClientOptions + Send + Sync>,
    credentials: Option<Credentials>,
    settings: Settings,
}

impl fmt::Debug for MailerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailerBuilder")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("mode", &self.mode)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    max_connections: usize,
    max_messages: usize,
    idle_timeout: Duration,
    probe_after: Duration,
    wait_timeout: Duration,
    data_pipelining: DataPipelining,
}

impl MailerBuilder {
    /// At most this many connections at once (default 4, at least 1).
    pub fn max_connections(mut self, n: usize) -> MailerBuilder {
        self.settings.max_connections = n.max(1);
        self
    }

    /// End a connection with QUIT after this many messages (default 100, at least 1), before a
    /// server's own cap closes it in the middle of one.
    pub fn max_messages_per_connection(mut self, n: usize) -> MailerBuilder {
        self.settings.max_messages = n.max(1);
        self
    }

    /// End a connection idle this long (default 60 s; RFC 5321 servers wait at least 5 min).
    pub fn idle_timeout(mut self, limit: Duration) -> MailerBuilder {
        self.settings.idle_timeout = limit;
        self
    }

    /// Probe with NOOP before reusing a connection idle longer than this (default 10 s). A
    /// connection reused sooner costs no round trip; it is still checked without blocking for
    /// anything the server sent meanwhile.
    pub fn probe_after(mut self, threshold: Duration) -> MailerBuilder {
        self.settings.probe_after = threshold;
        self
    }

    /// The longest [`Mailer::send`] waits for a free connection before failing with
    /// [`SendError::Busy`] (default 30 s). The wait is never unbounded.
    pub fn wait_timeout(mut self, limit: Duration) -> MailerBuilder {
        self.settings.wait_timeout = limit;
        self
    }

    /// When DATA joins the envelope's pipelined flight on the pool's connections. The default
    /// is [`DataPipelining::Always`] (the engine's own default is
    /// [`WhenSafe`](DataPipelining::WhenSafe)): a message to several recipients costs one
    /// round trip less, and when the server refuses some of them while it already waits for
    /// data, the connection is closed before the body (nothing is delivered to the accepted
    /// part) and the pool opens another for the next message. This setting wins over the one in
    /// [`client_options`](Self::client_options).
    pub fn data_pipelining(mut self, mode: DataPipelining) -> MailerBuilder {
        self.settings.data_pipelining = mode;
        self
    }

    /// Which certificates to trust. Every connection of the pool shares this configuration
    /// (and its TLS session cache).
    pub fn tls_config(mut self, tls: TlsConfig) -> MailerBuilder {
        self.tls = tls;
        self
    }

    /// The longest DNS + TCP connect (+ implicit TLS handshake) may take (default 30 s).
    pub fn connect_timeout(mut self, limit: Duration) -> MailerBuilder {
        self.connect_timeout = limit;
        self
    }

    /// Check the certificate for this name instead of the host dialled.
    pub fn tls_server_name(mut self, name: impl Into<String>) -> MailerBuilder {
        self.tls_server_name = Some(name.into());
        self
    }

    /// Log in with `user` and `password` on every new connection (`login`: the best password
    /// mechanism the server offers).
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials {
            user: user.into(),
            password: smtp_proto::Secret::from(password.into().as_str()),
        });
        self
    }

    /// How to make the client options of each new connection (policy, audit sink, timeouts,
    /// default message options). A function, because those options own boxed sinks and
    /// policies that cannot be cloned. The default is [`SmtpClientOptions::new`] with the
    /// `tracing` transcript.
    pub fn client_options(
        mut self,
        make: impl Fn() -> SmtpClientOptions + Send + Sync + 'static,
    ) -> MailerBuilder {
        self.options = Box::new(make);
        self
    }

    /// The pool. Checks the EHLO domain; connects lazily, on the first message. Inside a tokio
    /// runtime, a background task also ends connections idle past the idle timeout.
    pub fn build(self) -> Result<Mailer, SmtpError> {
        smtp_proto::command::Domain::new(&self.ehlo_domain)?;
        let settings = self.settings;
        let inner = Arc::new(Inner {
            host: self.host,
            port: self.port,
            mode: self.mode,
            ehlo_domain: self.ehlo_domain,
            tls: self.tls,
            connect_timeout: self.connect_timeout,
            tls_server_name: self.tls_server_name,
            options: self.options,
            credentials: self.credentials,
            settings,
            permits: Arc::new(Semaphore::new(settings.max_connections)),
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            counters: Counters::default(),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(reap(Arc::downgrade(&inner)));
        }
        Ok(Mailer { inner })
    }
}

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
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("host", &self.inner.host)
            .field("port", &self.inner.port)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

struct Inner {
    host: String,
    port: u16,
    mode: TlsMode,
    ehlo_domain: String,
    tls: TlsConfig,
    connect_timeout: Duration,
    tls_server_name: Option<String>,
    options: Box<dyn Fn() -> SmtpClientOptions + Send + Sync>,
    credentials: Option<Credentials>,
    settings: Settings,
    /// One permit per connection in use (by a message, or being ended with QUIT after its
    /// last one): at most `max_connections` connections at once.
    permits: Arc<Semaphore>,
    /// Connections between messages, the most recently used last.
    idle: Mutex<Vec<Pooled>>,
    closed: AtomicBool,
    counters: Counters,
}

/// A connection of the pool. The client is boxed: a `Pooled` moves in and out of the idle list
/// and through the futures of every message, and an unboxed client (~1.7 KB) made those moves
/// cost more than the pool's own work (measured: ~2,000 instructions a message).
struct Pooled {
    client: Box<SmtpClient<TokioTransport>>,
    /// Messages started on it.
    messages: usize,
    /// When it was last put back.
    since: Instant,
}

impl Mailer {
    /// A builder for a pool of connections to `host:port` in `mode`, saying EHLO as
    /// `ehlo_domain`.
    pub fn builder(
        host: impl Into<String>,
        port: u16,
        mode: TlsMode,
        ehlo_domain: impl Into<String>,
    ) -> MailerBuilder {
        MailerBuilder {
            host: host.into(),
            port,
            mode,
            ehlo_domain: ehlo_domain.into(),
            tls: TlsConfig::default(),
            connect_timeout: Duration::from_secs(30),
            tls_server_name: None,
            options: Box::new(|| {
                SmtpClientOptions::new().with_transcript(Box::new(TracingTranscript))
            }),
            credentials: None,
            settings: Settings {
                max_connections: 4,
                max_messages: 100,
                idle_timeout: Duration::from_secs(60),
                probe_after: Duration::from_secs(10),
                wait_timeout: Duration::from_secs(30),
                data_pipelining: DataPipelining::Always,
            },
        }
    }

    /// Send one message (a complete RFC 5322 message; line endings are normalised and lines
    /// starting with `.` dot-stuffed) with the connections' default message options.
    ///
    /// Errors are typed by what became of the message: [`SendError::NotSent`] (after at most
    /// one retry on a new connection, see the [module docs](self)), [`SendError::Unknown`],
    /// [`SendError::Busy`], [`SendError::Closed`]. Dropping the future before it finishes
    /// closes the connection it was using (without QUIT); whether the message went out is
    /// then unknown.
    pub async fn send(
        &self,
        from: &str,
        to: &[&str],
        body: &[u8],
    ) -> Result<SendOutcome, SendError> {
        self.send_batch_message(&BatchMessage::new(from, to, body))
            .await
    }

    /// [`send`](Self::send) with per-message options (DSN, REQUIRETLS, ...).
    pub async fn send_with(
        &self,
        from: &str,
        to: &[&str],
        body: &[u8],
        options: &MessageOptions,
    ) -> Result<SendOutcome, SendError> {
        self.send_batch_message(&BatchMessage::new(from, to, body).with_options(options))
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
        self.send_batch_message(&BatchMessage::new(&prepared.from, &to, &prepared.bytes))
            .await
    }

    /// Send a message whose body is read from a stream, for messages too large to hold in
    /// memory. `open` yields the body from its start and is called once per attempt, so that a
    /// retry on a new connection (see the [module docs](self)) sends it whole again; it is
    /// called before a connection is taken. The body's size hint is declared as `SIZE=` and
    /// checked against the server's limit; what it yields is counted against that hint.
    ///
    /// An `open` that fails is [`SendError::NotSent`] with the error as an
    /// [`SmtpError::Io`] during [`SmtpOp::ReadBody`](crate::SmtpOp::ReadBody) (`attempts`: the
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
    ///     .send_stream("reports@example.com", &["ops@example.org"], || ReaderBody::open(path))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_stream<F, Fut, B>(
        &self,
        from: &str,
        to: &[&str],
        open: F,
    ) -> Result<SendOutcome, SendError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::io::Result<B>>,
        B: MessageBody,
    {
        self.send_source(Reopened {
            from,
            to,
            options: None,
            open,
        })
        .await
    }

    /// [`send_stream`](Self::send_stream) with per-message options.
    pub async fn send_stream_with<F, Fut, B>(
        &self,
        from: &str,
        to: &[&str],
        options: &MessageOptions,
        open: F,
    ) -> Result<SendOutcome, SendError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::io::Result<B>>,
        B: MessageBody,
    {
        self.send_source(Reopened {
            from,
            to,
            options: Some(options),
            open,
        })
        .await
    }

    /// Send the message in the file at `path` (a complete RFC 5322 message), streamed: the file
    /// is opened (and its size as sent counted, see [`ReaderBody::open`]) for each attempt.
    /// [`send_stream`](Self::send_stream) with [`ReaderBody::open`].
    pub async fn send_file(
        &self,
        from: &str,
        to: &[&str],
        path: impl AsRef<Path>,
    ) -> Result<SendOutcome, SendError> {
        let path = path.as_ref();
        self.send_stream(from, to, || ReaderBody::open(path)).await
    }

    async fn send_batch_message(
        &self,
        message: &BatchMessage<'_>,
    ) -> Result<SendOutcome, SendError> {
        self.send_source(InMemory(message)).await
    }

    /// The send loop: a permit, a connection, one attempt, at most one retry on a new
    /// connection, the connection back to the idle list or ended.
    async fn send_source<S: Source>(&self, mut source: S) -> Result<SendOutcome, SendError> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        // The first attempt is made ready before a connection is taken: opening a body may take
        // a while (a file is read once to count its size).
        let mut ready = source
            .prepare()
            .await
            .map_err(|error| SendError::NotSent { error, attempts: 0 })?;
        let waited = inner.settings.wait_timeout;
        let permit = inner.permits.clone().acquire_owned();
        let permit = match tokio::time::timeout(waited, permit).await {
            Err(_) => return Err(SendError::Busy { waited }),
            Ok(Err(_)) => return Err(SendError::Closed),
            Ok(Ok(permit)) => permit,
        };
        if inner.closed.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            if attempts > 1 {
                // The first attempt may have consumed the body: it starts again.
                ready = source.prepare().await.map_err(|error| SendError::NotSent {
                    error,
                    attempts: attempts - 1,
                })?;
            }
            // The retry always gets a new connection.
            let conn = if attempts == 1 {
                inner.checkout().await
            } else {
                bump(&inner.counters.retries);
                inner.open().await
            };
            let mut conn = match conn {
                Ok(conn) => conn,
                Err(error) => {
                    // Nothing of the message was sent.
                    let retry = error.is_transient() || error.blame() == crate::Blame::Io;
                    if retry && attempts == 1 {
                        continue;
                    }
                    return Err(SendError::NotSent { error, attempts });
                }
            };
            if conn.messages > 0 {
                bump(&inner.counters.reused);
            }
            conn.messages += 1;
            let delivery = source.deliver(&mut ready, &mut conn.client).await;
            let result = match delivery {
                Delivery::Sent(outcome) => Ok(outcome),
                Delivery::Unknown(error) => Err(SendError::Unknown { error }),
                d if d.is_retryable() && attempts == 1 => {
                    inner.checkin(conn).await;
                    continue;
                }
                Delivery::NotSent { error, .. } => Err(SendError::NotSent { error, attempts }),
            };
            // The caller has its answer now: a connection that is not going back to the idle
            // list (closed, at its message cap, or the pool shutting down) is ended in the
            // background, and holds this call's permit until it is closed, so the pool never
            // has more than `max_connections` open.
            if let Some(conn) = inner.park(conn) {
                let inner = Arc::clone(inner);
                tokio::spawn(async move {
                    inner.dispose(conn).await;
                    drop(permit);
                });
            }
            return result;
        }
    }

    /// What the pool did so far: connections opened and closed, TLS handshakes (full and
    /// resumed), reuse, probes, out-of-step connections, retries.
    pub fn stats(&self) -> PoolStats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PoolStats {
            opened: get(&c.opened),
            closed: get(&c.closed),
            quit: get(&c.quit),
            full_handshakes: get(&c.full_handshakes),
            resumed_handshakes: get(&c.resumed_handshakes),
            reused: get(&c.reused),
            probes: get(&c.probes),
            out_of_step: get(&c.out_of_step),
            expired: get(&c.expired),
            retries: get(&c.retries),
        }
    }

    /// Connections open now and idle ones among them.
    pub fn connections(&self) -> (u64, usize) {
        let s = self.stats();
        let idle = self.inner.idle.lock().map(|i| i.len()).unwrap_or(0);
        (s.opened.saturating_sub(s.closed), idle)
    }

    /// Shut the pool down gracefully: new calls fail with [`SendError::Closed`] at once (as do
    /// calls still waiting for a connection), messages on the wire finish, then every
    /// connection is ended with QUIT. Returns when all are closed. Calling it again returns at
    /// once.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        if inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        // Every connection in use gives its permit back when its message is done; callers
        // queued before us get theirs, see `closed` and give it back at once.
        let all = u32::try_from(inner.settings.max_connections).unwrap_or(u32::MAX);
        let held = inner.permits.acquire_many(all).await;
        inner.permits.close();
        drop(held);
        let idle = std::mem::take(&mut *inner.lock_idle());
        for conn in idle {
            inner.retire(conn).await;
        }
    }
}

impl Inner {
    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Pooled>> {
        // A panic while holding the lock leaves a valid Vec: keep going.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new connection, logged in when the pool has credentials.
    async fn open(&self) -> Result<Pooled, SmtpError> {
        let mut options = ConnectOptions::new(self.mode)
            .with_tls_config(self.tls.clone())
            .with_connect_timeout(self.connect_timeout)
            .with_client_options(
                (self.options)().with_data_pipelining(self.settings.data_pipelining),
            );
        if let Some(name) = &self.tls_server_name {
            options = options.with_tls_server_name(name.clone());
        }
        let mut client = options
            .connect(&self.host, self.port, &self.ehlo_domain)
            .await?;
        bump(&self.counters.opened);
        match client.transport().tls_handshake_kind() {
            Some(rustls::HandshakeKind::Resumed) => bump(&self.counters.resumed_handshakes),
            Some(_) => bump(&self.counters.full_handshakes),
            None => {}
        }
        if let Some(c) = &self.credentials {
            // The password came in as a `String`: always valid UTF-8.
            let password = c.password.expose_str().unwrap_or_default();
            if let Err(e) = client.login(&c.user, password).await {
                self.end(Box::new(client)).await;
                return Err(e);
            }
        }
        Ok(Pooled {
            client: Box::new(client),
            messages: 0,
            since: Instant::now(),
        })
    }

    /// An idle connection fit for another message, or a new one.
    async fn checkout(&self) -> Result<Pooled, SmtpError> {
        loop {
            let popped = self.lock_idle().pop();
            let Some(mut conn) = popped else {
                return self.open().await;
            };
            let idle_for = conn.since.elapsed();
            if idle_for >= self.settings.idle_timeout {
                bump(&self.counters.expired);
                self.retire(conn).await;
                continue;
            }
            if conn.client.check_idle().await != IdleStatus::Quiet {
                bump(&self.counters.out_of_step);
                self.end(conn.client).await;
                continue;
            }
            if idle_for >= self.settings.probe_after {
                bump(&self.counters.probes);
                // The engine takes a 221 to NOOP for what it is, the server closing (lettre
                // #743): an error like any other failed probe.
                let healthy = conn.client.noop().await.is_ok();
                if !healthy {
                    bump(&self.counters.out_of_step);
                    self.end(conn.client).await;
                    continue;
                }
            }
            return Ok(conn);
        }
    }

    /// Put a connection fit for another message on the idle list; hand back one that must be
    /// ended.
    #[must_use]
    fn park(&self, mut conn: Pooled) -> Option<Pooled> {
        let spent = conn.messages >= self.settings.max_messages;
        if spent
            || conn.client.state() == crate::SessionState::Closed
            || self.closed.load(Ordering::Acquire)
        {
            return Some(conn);
        }
        conn.since = Instant::now();
        self.lock_idle().push(conn);
        None
    }

    /// Put a connection back after a message, or end it.
    async fn checkin(&self, conn: Pooled) {
        if let Some(conn) = self.park(conn) {
            self.dispose(conn).await;
        }
    }

    /// End a connection that is not going back to the idle list: QUIT unless its session is
    /// already closed.
    async fn dispose(&self, conn: Pooled) {
        if conn.client.state() == crate::SessionState::Closed {
            self.end(conn.client).await;
        } else {
            self.retire(conn).await;
        }
    }

    /// End a connection politely: QUIT when it is still in step, otherwise just close it.
    async fn retire(&self, mut conn: Pooled) {
        if conn.client.check_idle().await != IdleStatus::Quiet {
            self.end(conn.client).await;
            return;
        }
        if conn.client.quit().await.is_ok() {
            bump(&self.counters.quit);
        }
        bump(&self.counters.closed);
    }

    /// Close a connection without QUIT (its session is closed or out of step).
    async fn end(&self, client: Box<SmtpClient<TokioTransport>>) {
        client.close().await;
        bump(&self.counters.closed);
    }
}

/// The background task of a pool: ends connections idle past the idle timeout, until the pool
/// is dropped or shut down.
async fn reap(pool: Weak<Inner>) {
    loop {
        let Some(inner) = pool.upgrade() else { return };
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        let limit = inner.settings.idle_timeout;
        let expired: Vec<Pooled> = {
            let mut idle = inner.lock_idle();
            let (old, fresh): (Vec<Pooled>, Vec<Pooled>) =
                idle.drain(..).partition(|c| c.since.elapsed() >= limit);
            *idle = fresh;
            old
        };
        for conn in expired {
            bump(&inner.counters.expired);
            inner.retire(conn).await;
        }
        let period = (limit / 2).max(Duration::from_millis(100));
        drop(inner);
        tokio::time::sleep(period).await;
    }
}
