//! # smtp-capture: a throw-away SMTP server for testing code that sends mail
//!
//! Start a server on loopback inside a test, send through the real client (STARTTLS, AUTH,
//! pipelining and all), then read back what arrived: the envelope (EHLO name, whether TLS was
//! on, the AUTH user, MAIL FROM and its parameters, every accepted RCPT TO) and the message bytes
//! as received, dot-stuffing undone. Nothing leaves the machine; nothing is relayed.
//!
//! * **TLS without setup.** At start-up the server makes a fresh CA and a certificate for
//!   `localhost` and `127.0.0.1` (with `rcgen`); the CA's key is dropped once it has signed,
//!   so nothing else can carry its name. Give the client [`CaptureServer::ca_pem`],
//!   [`CaptureServer::client_config`] (a rustls `ClientConfig`) or, with feature `smtp-rustls`,
//!   `CaptureServer::tls_config` (what `smtp-io-tokio`, `smtp-io-std` and the WASI client
//!   take). [`TlsMode::StartTls`] is the default; [`TlsMode::Implicit`] and [`TlsMode::None`]
//!   are there too.
//! * **AUTH PLAIN and LOGIN**, accepting anything, or only the [`Credentials`] you give; AUTH can
//!   be required before MAIL. The password is never stored or shown (only the user is kept). A
//!   third refused AUTH on one connection closes it (`421 4.7.0`).
//! * **Waiting**: [`CaptureServer::wait_for`] returns once `n` messages have arrived, or a
//!   [`WaitError`] when the time is up.
//! * **`.eml` files**: with [`CaptureConfig::eml_dir`], each message is also written to
//!   `<queue id>.eml` in that folder (complete before it is visible: written aside, then
//!   renamed), before the server answers `250`.
//! * **Bounded**: the length of a line ([`CaptureConfig::max_line_length`]; `500` beyond it), the
//!   size of a message (`SIZE` advertised, a larger `SIZE=` refused at MAIL and a larger message
//!   refused after its end with `552`), recipients per message, connections at once, the
//!   memory kept (data and strings as allocated, and each message's record), how long a client
//!   may stay silent, and how long a connection may last
//!   ([`CaptureConfig::max_session_time`]). What the server holds in flight is at most
//!   about `max_connections × (2 × max_message_size + (max_recipients + 3) × max_line_length)`
//!   (a growing buffer may reserve up to twice what it holds, and the sender, each recipient and
//!   the line being read are each at most a line long), plus `max_stored_bytes` kept, whatever
//!   clients send; a hostile client gets a reply or a closed connection, never a panic.
//! * **Clean shutdown**: dropping the [`CaptureServer`] (or [`CaptureServer::shutdown`]) stops
//!   the listener and ends every connection.
//!
//! It speaks enough ESMTP for a real client: EHLO (advertising `PIPELINING`, `8BITMIME`,
//! `SMTPUTF8`, `SIZE`, `STARTTLS` until TLS is on, `AUTH PLAIN LOGIN`, `ENHANCEDSTATUSCODES`),
//! HELO, STARTTLS (RFC 3207: what a client pipelined behind it is dropped, and the session starts
//! again), AUTH, MAIL, RCPT (refusing, by default, recipients that start with `reject`), DATA,
//! RSET, NOOP, VRFY and QUIT, answered one by one in order (so pipelined commands work). The end
//! of DATA is CRLF `.` CRLF exactly: a `.` line with a bare LF on either side is message text,
//! so nothing after it runs as a command (SMTP smuggling). A command that is not UTF-8 is
//! refused (`500`), and so is a MAIL or RCPT parameter of an extension not offered (`555`: only
//! `SIZE=`, `BODY=7BIT`/`8BITMIME`, `SMTPUTF8` and `AUTH=` on MAIL), so what is captured is what
//! the client sent, and a client that uses what it was not offered is caught.
//!
//! ## An application test
//!
//! The code under test takes its connection settings from its caller; the test points it at
//! the capture server over STARTTLS with a password, and checks what arrived:
//!
//! ```
//! use std::time::Duration;
//!
//! use smtp_capture::{CaptureConfig, CaptureServer};
//! use smtp_io_tokio::{ConnectOptions, SmtpError, TlsConfig, TlsMode};
//!
//! /// The application's code: send a welcome message.
//! async fn send_welcome(
//!     options: ConnectOptions,
//!     (host, port): (&str, u16),
//!     user: &str,
//! ) -> Result<(), SmtpError> {
//!     let mut client = options.connect(host, port, "app.example.com").await?;
//!     client.login("app", "app-password").await?;
//!     let message = format!(
//!         "From: app@example.com\r\nTo: {user}\r\nSubject: Welcome\r\n\r\nHi!\r\n.\r\n"
//!     );
//!     client.send_mail("app@example.com", &[user], &message).await?;
//!     client.quit().await
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = CaptureServer::start(
//!     CaptureConfig::default().with_credentials("app", "app-password"),
//! )
//! .await?;
//! let options = ConnectOptions::new(TlsMode::StartTls)
//!     .with_tls_config(TlsConfig::from_ca_pem(server.ca_pem().as_bytes())?)
//!     .with_tls_server_name("localhost");
//! let addr = server.addr();
//! send_welcome(options, (&addr.ip().to_string(), addr.port()), "new@example.org").await?;
//!
//! let got = server.wait_for(1, Duration::from_secs(5)).await?;
//! let m = &got[0];
//! assert!(m.tls);
//! assert_eq!(m.auth_user(), Some("app"));
//! assert_eq!(m.ehlo, "app.example.com");
//! assert_eq!(m.mail_from, "app@example.com");
//! assert_eq!(m.rcpt_to, ["new@example.org"]);
//! assert_eq!(m.header("Subject").as_deref(), Some("Welcome"));
//! // As received: the client's dot-stuffing of the line "." is undone.
//! assert!(m.data.ends_with(b"\r\n\r\nHi!\r\n.\r\n"));
//! # Ok(())
//! # }
//! ```
//!
//! Beside it, `smtp_io_tokio::StubMailSender` records messages without any server, for tests
//! that need no network at all; the capture server is for the tests that should cross the real
//! client, TLS and the wire.

// docs.rs (`--cfg docsrs`, see Cargo.toml): each item that needs a feature says so.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod line;
mod session;
mod tls;

// The README's example compiles (as a doctest).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls::ClientConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// How a client reaches the server: [`TlsMode::StartTls`] (the default), [`TlsMode::Implicit`]
/// (TLS from the first byte) or [`TlsMode::None`]. The client's own type, so
/// `ConnectOptions::new(server.config().tls)` picks the matching client mode.
pub use smtp_proto::connect::TlsMode;
pub use smtp_proto::secret::Secret;

/// The one user and password AUTH accepts, when given ([`CaptureConfig::credentials`]).
/// `Debug` never shows the password.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: Secret,
}

impl Credentials {
    /// `user` with `password`.
    pub fn new(user: impl Into<String>, password: impl Into<Secret>) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }
}

/// What the capture server offers, refuses and keeps. Build it from
/// [`CaptureConfig::default()`] (with `..CaptureConfig::default()` or the `with_*` methods):
/// fields may be added.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    /// [`TlsMode::StartTls`] (the default) offers STARTTLS; [`TlsMode::Implicit`] starts TLS on
    /// connect; [`TlsMode::None`] offers no TLS at all.
    pub tls: TlsMode,
    /// The text of the `220` greeting (control characters become spaces). Default:
    /// `localhost ESMTP smtp-capture`.
    pub greeting: String,
    /// RCPT TO addresses starting with this prefix (case-insensitive) are refused with `550 5.1.1`.
    /// Default: `Some("reject")`.
    pub reject_recipient_prefix: Option<String>,
    /// When set, AUTH accepts exactly this user and password (and refuses any other with
    /// `535 5.7.8`). When not (the default), any non-empty user is accepted.
    pub credentials: Option<Credentials>,
    /// AUTH with exactly this password is refused with `535 5.7.8`, whatever the user.
    pub refuse_password: Option<Secret>,
    /// MAIL before a successful AUTH is refused with `530 5.7.0`. Default: false.
    pub require_auth: bool,
    /// When set, each accepted message is also written to `<queue id>.eml` in this folder (which
    /// must exist). A failed write is answered `451 4.3.0` and the message is not kept.
    pub eml_dir: Option<PathBuf>,
    /// The `SIZE` advertised and enforced, in bytes (`552 5.3.4` beyond it; with 0 every message
    /// is refused, and no `SIZE` is advertised, since `SIZE 0` says "no limit"). Default: 10 MiB.
    pub max_message_size: u64,
    /// The longest command or message line accepted, in bytes without CRLF (`500 5.5.2` beyond
    /// it). Default: 16 KiB.
    pub max_line_length: usize,
    /// The most recipients of one message (`452 4.5.3` beyond). Default: 100.
    pub max_recipients: usize,
    /// The most connections served at once; one more is answered `421 4.3.2` and closed.
    /// Default: 64.
    pub max_connections: usize,
    /// The most bytes kept (messages and their envelopes, as allocated, with each message's
    /// record) until [`CaptureServer::take_messages`]; a message beyond is answered `452 4.3.1`
    /// and not kept (nor written to [`eml_dir`](Self::eml_dir)).
    /// Keep it above `max_message_size` (with room for an envelope), or a message at the size
    /// limit cannot be kept. Default: 256 MiB.
    pub max_stored_bytes: u64,
    /// How long the server waits for the client's next line (or its TLS handshake) before
    /// closing with `421 4.4.2`, and for it to take a reply (a client that pipelines and never
    /// reads) before closing without one. Default: 5 minutes.
    pub idle_timeout: Duration,
    /// How long one connection may last, whatever it does: past it, the connection is closed,
    /// so that clients that are never idle cannot hold every place of
    /// [`max_connections`](Self::max_connections). Default: 30 minutes.
    pub max_session_time: Duration,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            tls: TlsMode::StartTls,
            greeting: "localhost ESMTP smtp-capture".to_owned(),
            reject_recipient_prefix: Some("reject".to_owned()),
            credentials: None,
            refuse_password: None,
            require_auth: false,
            eml_dir: None,
            max_message_size: 10 * 1024 * 1024,
            max_line_length: 16 * 1024,
            max_recipients: 100,
            max_connections: 64,
            max_stored_bytes: 256 * 1024 * 1024,
            idle_timeout: Duration::from_secs(300),
            max_session_time: Duration::from_secs(30 * 60),
        }
    }
}

impl CaptureConfig {
    /// How clients reach the server (see [`CaptureConfig::tls`]).
    pub fn with_tls(mut self, tls: TlsMode) -> Self {
        self.tls = tls;
        self
    }

    /// Accept AUTH with this user and password only.
    pub fn with_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<Secret>,
    ) -> Self {
        self.credentials = Some(Credentials::new(user, password));
        self
    }

    /// Refuse MAIL before a successful AUTH.
    pub fn with_auth_required(mut self) -> Self {
        self.require_auth = true;
        self
    }

    /// Write each accepted message to `<queue id>.eml` in `dir` (which must exist).
    pub fn with_eml_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.eml_dir = Some(dir.into());
        self
    }

    /// The largest message accepted, in bytes as received.
    pub fn with_max_message_size(mut self, bytes: u64) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// The longest line accepted, in bytes without CRLF.
    pub fn with_max_line_length(mut self, bytes: usize) -> Self {
        self.max_line_length = bytes;
        self
    }

    /// How long the server waits for a client's next line (see
    /// [`CaptureConfig::idle_timeout`]).
    pub fn with_idle_timeout(mut self, limit: Duration) -> Self {
        self.idle_timeout = limit;
        self
    }

    /// How long one connection may last (see [`CaptureConfig::max_session_time`]).
    pub fn with_max_session_time(mut self, limit: Duration) -> Self {
        self.max_session_time = limit;
        self
    }
}

/// One message as the capture server received it. Fields may be added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Captured {
    /// The queue id given in the `250` reply (unique within the process).
    pub queue_id: String,
    /// The EHLO (or HELO) argument.
    pub ehlo: String,
    /// Whether TLS was active when the message was received.
    pub tls: bool,
    /// The AUTH mechanism and user name, when the client authenticated (never the password).
    pub auth: Option<(String, String)>,
    /// The reverse-path of MAIL FROM, without angle brackets.
    pub mail_from: String,
    /// The ESMTP parameters of MAIL FROM (e.g. `SIZE=120`, `BODY=8BITMIME`).
    pub mail_params: Vec<String>,
    /// The accepted forward-paths of RCPT TO, without angle brackets, in order.
    pub rcpt_to: Vec<String>,
    /// The message as received: dot-unstuffed, every line ended by CRLF, without the final `.`.
    pub data: Vec<u8>,
    /// The `.eml` file it was written to, with [`CaptureConfig::eml_dir`].
    pub eml_path: Option<PathBuf>,
}

impl Captured {
    /// The memory this message holds (what [`CaptureConfig::max_stored_bytes`] counts): its
    /// data and strings as allocated, each string's own record, and its record twice (the
    /// list it is kept in may hold as much room again).
    pub(crate) fn footprint(&self) -> u64 {
        let strings = [&self.queue_id, &self.ehlo, &self.mail_from]
            .into_iter()
            .chain(&self.mail_params)
            .chain(&self.rcpt_to)
            .chain(self.auth.as_ref().map(|(_, user)| user));
        let string = std::mem::size_of::<String>();
        let envelope: usize = strings.map(|s| s.capacity().saturating_add(string)).sum();
        let record = 2 * std::mem::size_of::<Captured>();
        (self.data.capacity() as u64).saturating_add(envelope.saturating_add(record) as u64)
    }

    /// The user the client authenticated as, if it did.
    pub fn auth_user(&self) -> Option<&str> {
        self.auth.as_ref().map(|(_, user)| user.as_str())
    }

    /// The first header field called `name` (case-insensitive), unfolded and trimmed, read
    /// from the header section as received (its bytes as UTF-8, lossily). Encoded words are
    /// left as they are.
    pub fn header(&self, name: &str) -> Option<String> {
        let mut found: Option<Vec<u8>> = None;
        for line in self.data.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                break;
            }
            let folded = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
            match (&mut found, folded) {
                (Some(value), true) => value.extend_from_slice(line),
                (Some(_), false) => break,
                (None, true) => {}
                (None, false) => {
                    let Some(colon) = line.iter().position(|&b| b == b':') else {
                        continue;
                    };
                    let (field, value) = line.split_at(colon);
                    if field.trim_ascii().eq_ignore_ascii_case(name.as_bytes()) {
                        found = Some(value.get(1..).unwrap_or_default().to_vec());
                    }
                }
            }
        }
        found.map(|v| String::from_utf8_lossy(v.trim_ascii()).into_owned())
    }
}

/// [`CaptureServer::wait_for`] ran out of time before enough messages arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitError {
    wanted: usize,
    received: usize,
    waited: Duration,
}

impl WaitError {
    /// How many messages were waited for.
    pub fn wanted(&self) -> usize {
        self.wanted
    }

    /// How many had arrived when the time was up.
    pub fn received(&self) -> usize {
        self.received
    }

    /// How long it waited.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "waited {:?} for {} message(s) at the capture server; {} arrived",
            self.waited, self.wanted, self.received
        )
    }
}

impl std::error::Error for WaitError {}

/// What the connections share: the configuration, TLS, and what arrived.
pub(crate) struct Shared {
    pub(crate) config: CaptureConfig,
    /// The greeting line, control characters removed.
    pub(crate) greeting: String,
    pub(crate) acceptor: Option<tokio_rustls::TlsAcceptor>,
    store: Mutex<Store>,
    /// The number of messages kept, for [`CaptureServer::wait_for`].
    count: watch::Sender<usize>,
}

#[derive(Default)]
struct Store {
    messages: Vec<Captured>,
    bytes: u64,
}

/// Why a message was not kept.
pub(crate) enum Refusal {
    /// Beyond [`CaptureConfig::max_stored_bytes`].
    Full,
}

impl Shared {
    /// Whether `bytes` more would be kept within [`CaptureConfig::max_stored_bytes`] now.
    pub(crate) fn has_room(&self, bytes: u64) -> bool {
        lock(&self.store).bytes.saturating_add(bytes) <= self.config.max_stored_bytes
    }

    /// Keep `message` unless that would pass [`CaptureConfig::max_stored_bytes`].
    pub(crate) fn keep(&self, message: Captured) -> Result<(), Refusal> {
        let mut store = lock(&self.store);
        let bytes = store.bytes.saturating_add(message.footprint());
        if bytes > self.config.max_stored_bytes {
            return Err(Refusal::Full);
        }
        store.bytes = bytes;
        store.messages.push(message);
        self.count.send_replace(store.messages.len());
        Ok(())
    }
}

/// A fresh queue id: the process id, the second the process made its first, and a counter,
/// each set apart, so that servers of other processes (or of a later run with the same process
/// id) sharing an `.eml` folder never pick the same name.
pub(crate) fn next_queue_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    static STARTED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let started = *STARTED.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("CAP{:X}-{started:X}-{n:X}", std::process::id())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running capture server on `127.0.0.1`. Dropping it stops the listener and ends every
/// connection.
pub struct CaptureServer {
    addr: SocketAddr,
    ca_pem: String,
    client_config: Arc<ClientConfig>,
    #[cfg(feature = "smtp-rustls")]
    tls_config: smtp_rustls::TlsConfig,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl fmt::Debug for CaptureServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureServer")
            .field("addr", &self.addr)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Drop for CaptureServer {
    fn drop(&mut self) {
        // The accept task owns the listener and every connection's task (in a `JoinSet`):
        // aborting it drops them all.
        self.task.abort();
    }
}

impl CaptureServer {
    /// Make the CA and the certificate, bind `127.0.0.1` on a free port and start serving in the
    /// background. Needs a running tokio runtime (either flavour).
    pub async fn start(config: CaptureConfig) -> io::Result<CaptureServer> {
        let generated = tls::generate()?;
        let client_config = tls::client_config(&generated.ca_der)?;
        #[cfg(feature = "smtp-rustls")]
        let tls_config = smtp_rustls::TlsConfig::from_ca_pem(generated.ca_pem.as_bytes())?;
        let acceptor = match config.tls {
            TlsMode::None => None,
            _ => Some(generated.acceptor),
        };
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let greeting = config
            .greeting
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let shared = Arc::new(Shared {
            config,
            greeting,
            acceptor,
            store: Mutex::new(Store::default()),
            count: watch::Sender::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(CaptureServer {
            addr,
            ca_pem: generated.ca_pem,
            client_config,
            #[cfg(feature = "smtp-rustls")]
            tls_config,
            shared,
            task,
        })
    }

    /// The address the server listens on (`127.0.0.1` and a port of its own).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PEM of the throw-away CA that signed the server's certificate (for `localhost` and
    /// `127.0.0.1`): what a client should trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A rustls client configuration (ring; TLS 1.3 and 1.2) that trusts the throw-away CA and
    /// nothing else, for any client built on rustls. The name to check is `localhost` (or the
    /// address `127.0.0.1`).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client_config.clone()
    }

    /// An `smtp_rustls::TlsConfig` that trusts the throw-away CA and nothing else: give it to
    /// `smtp_io_tokio::ConnectOptions::with_tls_config` (or `smtp-io-std`'s), with the server
    /// name `localhost`.
    #[cfg(feature = "smtp-rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "smtp-rustls")))]
    pub fn tls_config(&self) -> smtp_rustls::TlsConfig {
        self.tls_config.clone()
    }

    /// The configuration in use.
    pub fn config(&self) -> &CaptureConfig {
        &self.shared.config
    }

    /// Every message kept so far, oldest first.
    pub fn messages(&self) -> Vec<Captured> {
        lock(&self.shared.store).messages.clone()
    }

    /// Every message kept so far, oldest first, emptying the store (so [`wait_for`] counts
    /// from zero again and [`CaptureConfig::max_stored_bytes`] is free again).
    ///
    /// [`wait_for`]: CaptureServer::wait_for
    pub fn take_messages(&self) -> Vec<Captured> {
        let mut store = lock(&self.shared.store);
        let taken = std::mem::take(&mut *store);
        self.shared.count.send_replace(0);
        taken.messages
    }

    /// Wait until at least `n` messages are kept, then return them all (oldest first); after
    /// `timeout`, a [`WaitError`] that says how many came.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Result<Vec<Captured>, WaitError> {
        let mut count = self.shared.count.subscribe();
        let arrived = tokio::time::timeout(timeout, async {
            // The sender lives in `self.shared`: the wait cannot end for want of it.
            let _ = count.wait_for(|&kept| kept >= n).await;
        })
        .await;
        match arrived {
            Ok(()) => Ok(self.messages()),
            Err(_) => Err(WaitError {
                wanted: n,
                received: *count.borrow(),
                waited: timeout,
            }),
        }
    }

    /// Stop listening and end every connection, and wait until that is done (so the port is
    /// free when it returns). Dropping the server does the same without the wait.
    pub async fn shutdown(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

/// Accept connections until aborted; each is served in a task of `connections`, which is
/// dropped (ending them all) with this task. Finished ones are reaped as they end.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // A failed accept (e.g. out of descriptors) concerns that client only.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                if connections.len() >= shared.config.max_connections {
                    // Never waits: a fresh socket's send buffer takes one line.
                    let _ = stream.try_write(b"421 4.3.2 Too many connections, try again later\r\n");
                    continue;
                }
                let shared = shared.clone();
                connections.spawn(async move {
                    // A failed connection concerns only its client; one that lasts too long is
                    // dropped.
                    let limit = shared.config.max_session_time;
                    let _ = tokio::time::timeout(limit, session::serve(stream, shared)).await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the store counts for a message is what it holds: its data as allocated (spare
    /// room too) and its record, twice (the list it is kept in). It used to count the data's
    /// length and a small allowance per string only.
    #[test]
    fn a_footprint_counts_allocations_and_records() {
        let mut data = Vec::with_capacity(4096);
        data.extend_from_slice(b"hi\r\n");
        let message = Captured {
            data,
            ..Captured::default()
        };
        let record = 2 * std::mem::size_of::<Captured>() as u64;
        assert!(
            message.footprint() >= 4096 + record,
            "{}",
            message.footprint()
        );
    }

    fn captured(data: &[u8]) -> Captured {
        Captured {
            data: data.to_vec(),
            ..Captured::default()
        }
    }

    #[test]
    fn header_fields_are_found_unfolded_and_only_in_the_header() {
        let m = captured(
            b"From: a@b\r\nSUBJECT:  Hello\r\n  there\r\nX-Empty:\r\nBad line\r\n\r\nTo: body@x\r\n",
        );
        assert_eq!(m.header("subject").as_deref(), Some("Hello  there"));
        assert_eq!(m.header("From").as_deref(), Some("a@b"));
        assert_eq!(m.header("X-Empty").as_deref(), Some(""));
        assert_eq!(m.header("To"), None);
        assert_eq!(captured(b"").header("From"), None);
        assert_eq!(captured(b" folded first\r\n").header("From"), None);
    }

    #[test]
    fn debug_never_shows_passwords() {
        let config = CaptureConfig {
            refuse_password: Some("wrong-one".into()),
            ..CaptureConfig::default().with_credentials("me", "hunter2")
        };
        let shown = format!("{config:?}");
        assert!(shown.contains("\"me\""), "{shown}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("wrong-one"),
            "{shown}"
        );
    }

    #[test]
    fn queue_ids_are_unique() {
        assert_ne!(next_queue_id(), next_queue_id());
    }
}
