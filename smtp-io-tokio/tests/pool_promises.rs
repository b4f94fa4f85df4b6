//! The promises a pool ([`Mailer`]) makes to a service, each against a loopback server that
//! does what real servers do to it: greylisting (a `4xx` to MAIL or to every RCPT on a
//! connection that stays usable), stalling, answering slowly, or holding a message back.
//!
//! - `max_connections` bounds every connection the pool holds, retries and idle ones included;
//! - a send future dropped half-way leaves no connection counted;
//! - callers waiting for a connection hold no file open;
//! - a send deadline reports what became of the message;
//! - `shutdown` ends idle connections all at once;
//! - a pool built outside a runtime still ends idle connections.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_io_tokio::{Mailer, MailerBuilder, SendError, SmtpError, SmtpOp, TlsMode};
use smtp_testkit::mock::{Act, Conversation, MockServer};
use tokio::sync::Semaphore;

mod common;
use common::{send_from, send_in_background, until};

/// What the server does besides accepting mail.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Accept everything at once.
    Calm,
    /// `451` to the first MAIL of each sender, then accept it (greylisting at MAIL).
    GreylistMail,
    /// `450` to every RCPT of a sender's first MAIL, then accept it (greylisting at RCPT).
    GreylistRcpt,
    /// Never answer MAIL.
    StallAtMail,
    /// Take the final dot and never answer it.
    StallAfterDot,
    /// Answer each final dot only once the test hands out a permit (`Server::release`).
    HoldAfterDot,
    /// Answer QUIT after this long.
    SlowQuit(Duration),
    /// `550` to every RCPT.
    RefuseRcpt,
}

/// What a loopback server saw.
struct Seen {
    behaviour: Behaviour,
    /// Connections open now (a connection stops counting at its QUIT or its end of stream),
    /// and the most that were ever open at once.
    open: AtomicUsize,
    most_open: AtomicUsize,
    accepted: AtomicUsize,
    quits: AtomicUsize,
    /// Final dots received (answered or not).
    dots: AtomicUsize,
    /// Senders of the messages it accepted, in order.
    delivered: Mutex<Vec<String>>,
    /// Senders it greylisted once already.
    greylisted: Mutex<HashSet<String>>,
    /// `HoldAfterDot`: one permit per final dot it may answer.
    release: Semaphore,
}

/// A loopback server and what it saw.
struct Server {
    mock: MockServer,
    seen: Arc<Seen>,
}

impl std::ops::Deref for Server {
    type Target = Seen;
    fn deref(&self) -> &Seen {
        &self.seen
    }
}

/// One connection of a [`Server`].
struct Conn {
    seen: Arc<Seen>,
    /// Still counted open (until its QUIT or its end).
    counted: bool,
    sender: String,
    first_try: bool,
}

impl Server {
    async fn start(behaviour: Behaviour) -> Server {
        let seen = Arc::new(Seen {
            behaviour,
            open: AtomicUsize::new(0),
            most_open: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
            quits: AtomicUsize::new(0),
            dots: AtomicUsize::new(0),
            delivered: Mutex::new(Vec::new()),
            greylisted: Mutex::new(HashSet::new()),
            release: Semaphore::new(0),
        });
        let accepting = seen.clone();
        let mock = MockServer::start(move |_| {
            accepting.accepted.fetch_add(1, Ordering::SeqCst);
            let now = accepting.open.fetch_add(1, Ordering::SeqCst) + 1;
            accepting.most_open.fetch_max(now, Ordering::SeqCst);
            Conn {
                seen: accepting.clone(),
                counted: true,
                sender: String::new(),
                first_try: false,
            }
        })
        .await;
        Server { mock, seen }
    }

    fn mailer(&self) -> MailerBuilder {
        Mailer::builder("127.0.0.1", self.mock.port(), TlsMode::None, "client.test")
    }

    fn most_open(&self) -> usize {
        self.most_open.load(Ordering::SeqCst)
    }
}

impl Conversation for Conn {
    fn greeting(&mut self) -> Act {
        Act::send("220 promises.test\r\n")
    }

    fn command(&mut self, text: &str) -> Act {
        let seen = &self.seen;
        let verb = text.get(..4).unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => Act::send("250-promises.test\r\n250 8BITMIME\r\n"),
            "MAIL" => {
                self.sender = text.to_owned();
                self.first_try = seen.greylisted.lock().unwrap().insert(self.sender.clone());
                match seen.behaviour {
                    Behaviour::StallAtMail => Act::Stall,
                    Behaviour::GreylistMail if self.first_try => {
                        Act::send("451 4.7.1 greylisted\r\n")
                    }
                    _ => Act::send("250 ok\r\n"),
                }
            }
            "RCPT" if seen.behaviour == Behaviour::GreylistRcpt && self.first_try => {
                Act::send("450 4.7.1 greylisted\r\n")
            }
            "RCPT" if seen.behaviour == Behaviour::RefuseRcpt => {
                Act::send("550 5.1.1 no such user\r\n")
            }
            "RCPT" | "RSET" | "NOOP" => Act::send("250 ok\r\n"),
            "DATA" => Act::body("354 go\r\n"),
            "QUIT" => {
                seen.quits.fetch_add(1, Ordering::SeqCst);
                // The client opens no new connection before this one's 221: it stops counting
                // now.
                seen.open.fetch_sub(1, Ordering::SeqCst);
                self.counted = false;
                match seen.behaviour {
                    Behaviour::SlowQuit(after) => Act::after(after, Act::close("221 bye\r\n")),
                    _ => Act::close("221 bye\r\n"),
                }
            }
            _ => Act::send("500 what\r\n"),
        }
    }

    fn end_of_data(&mut self, _body: Vec<u8>) -> Act {
        let seen = self.seen.clone();
        seen.dots.fetch_add(1, Ordering::SeqCst);
        let sender = self.sender.clone();
        let queued = async move {
            match seen.behaviour {
                Behaviour::StallAfterDot => std::future::pending().await,
                Behaviour::HoldAfterDot => seen.release.acquire().await.unwrap().forget(),
                _ => {}
            }
            seen.delivered.lock().unwrap().push(sender);
        };
        Act::wait(queued, Act::send("250 queued\r\n"))
    }

    fn ended(&mut self) {
        if self.counted {
            self.seen.open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A server that greylists each new sender once: every message is delivered by its retry, and
/// the pool never holds more than its one connection (it held eleven after ten messages when
/// the connection that got the `4xx` was parked and a new one opened beside it).
async fn greylisting_keeps_the_bound(behaviour: Behaviour) {
    let server = Server::start(behaviour).await;
    let mailer = server.mailer().max_connections(1).build().unwrap();
    for n in 0..10 {
        let from = format!("sender{n}@test.example");
        let outcome = mailer.send(&from, ["rcpt@test.example"], b"hi\r\n").await;
        assert!(outcome.is_ok(), "message {n}: {outcome:?}");
        let now = mailer.connections();
        assert!(now.open <= 1, "after message {n}: {now:?}");
    }
    assert_eq!(mailer.stats().retries, 10);
    assert_eq!(server.delivered.lock().unwrap().len(), 10);
    assert_eq!(
        server.most_open(),
        1,
        "the server saw two connections open at once"
    );
    mailer.shutdown().await;
    let stats = mailer.stats();
    assert_eq!(stats.opened, stats.closed, "{stats:?}");
    assert_eq!(mailer.connections().open, 0);
}

#[tokio::test]
async fn greylisting_at_mail_keeps_max_connections() {
    greylisting_keeps_the_bound(Behaviour::GreylistMail).await;
}

#[tokio::test]
async fn greylisting_at_every_rcpt_keeps_max_connections() {
    greylisting_keeps_the_bound(Behaviour::GreylistRcpt).await;
}

/// With room for two connections, the retry opens a second one and the first (still fit)
/// stays idle: no connection is ended that need not be.
#[tokio::test]
async fn a_retry_with_room_keeps_the_first_connection() {
    let server = Server::start(Behaviour::GreylistMail).await;
    let mailer = server.mailer().max_connections(2).build().unwrap();
    mailer
        .send("once@test.example", ["rcpt@test.example"], b"hi\r\n")
        .await
        .unwrap();
    let now = mailer.connections();
    assert_eq!((now.open, now.idle), (2, 2));
    assert_eq!(server.quits.load(Ordering::SeqCst), 0);
    mailer.shutdown().await;
    assert_eq!(server.quits.load(Ordering::SeqCst), 2);
}

/// A caller that gives up on a send (a timeout around it) drops its connection: the pool
/// counts it closed, and its place is free for the next message.
#[tokio::test]
async fn a_cancelled_send_leaves_no_phantom_connection() {
    let server = Server::start(Behaviour::StallAtMail).await;
    let mailer = server.mailer().max_connections(1).build().unwrap();
    for n in 0..3 {
        let send = send_from(&mailer, "a@test.example");
        let gave_up = tokio::time::timeout(Duration::from_millis(200), send).await;
        assert!(gave_up.is_err(), "attempt {n} finished: {gave_up:?}");
        let now = mailer.connections();
        assert_eq!((now.open, now.idle), (0, 0), "after cancellation {n}");
        let stats = mailer.stats();
        assert_eq!((stats.opened, stats.closed), (n + 1, n + 1), "{stats:?}");
    }
    // Each cancelled send's place was free again for the next one's connection.
    assert_eq!(server.accepted.load(Ordering::SeqCst), 3);
}

/// How many of this process's open files are `path`.
fn open_copies(path: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target == path)
        .count()
}

/// A thousand callers of `send_file` wait for two connections: only the two that hold a
/// connection's place have the file open (each waiting caller had it open, and its size
/// counted, before it waited).
#[tokio::test]
async fn waiting_send_file_callers_hold_no_file_open() {
    let server = Server::start(Behaviour::HoldAfterDot).await;
    let dir = std::env::temp_dir().join(format!("pool-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("message.eml");
    std::fs::write(&path, b"Subject: flood\r\n\r\nHello\r\n").unwrap();
    let path = std::fs::canonicalize(&path).unwrap();
    let mailer = server
        .mailer()
        .max_connections(2)
        .wait_timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let mailer = mailer.clone();
            let path = path.clone();
            tokio::spawn(async move {
                mailer
                    .send_file("flood@test.example", ["b@test.example"], &path)
                    .await
            })
        })
        .collect();
    // Two messages are at their final dot, every other caller waits.
    until(|| server.dots.load(Ordering::SeqCst) == 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let open = open_copies(&path);
    assert!(
        open <= 2,
        "{open} copies of the file open for 2 connections"
    );
    server.release.add_permits(1000);
    for caller in callers {
        caller.await.unwrap().unwrap();
    }
    assert_eq!(server.delivered.lock().unwrap().len(), 1000);
    assert_eq!(open_copies(&path), 0);
    mailer.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `max_connections(usize::MAX)` is clamped to what the pool can count: `shutdown` returns.
#[tokio::test]
async fn a_huge_max_connections_still_shuts_down() {
    let server = Server::start(Behaviour::Calm).await;
    let mailer = server.mailer().max_connections(usize::MAX).build().unwrap();
    send_from(&mailer, "a@test.example").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), mailer.shutdown())
        .await
        .expect("shutdown waited forever");
    assert_eq!(server.quits.load(Ordering::SeqCst), 1);
}

fn deadline_error(error: &SmtpError) -> (SmtpOp, Duration) {
    match error {
        SmtpError::DeadlineExceeded { during, after } => (*during, *after),
        other => panic!("not a deadline: {other:?}"),
    }
}

/// The send deadline of [`send_with_a_deadline`].
const LIMIT: Duration = Duration::from_millis(300);

/// One message through a pool with a send deadline of [`LIMIT`], against a server that behaves
/// so; the call must end well before 10 s.
async fn send_with_a_deadline(
    behaviour: Behaviour,
) -> (
    Server,
    Mailer,
    Result<smtp_io_tokio::SendOutcome, SendError>,
) {
    let server = Server::start(behaviour).await;
    let mailer = server.mailer().send_deadline(LIMIT).build().unwrap();
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        send_from(&mailer, "a@test.example"),
    )
    .await
    .expect("the send deadline did not end the call");
    (server, mailer, result)
}

/// A send deadline that passes before the end of data: not sent, not retried, the connection
/// closed.
#[tokio::test]
async fn a_send_deadline_before_the_end_of_data_is_not_sent() {
    let (server, mailer, result) = send_with_a_deadline(Behaviour::StallAtMail).await;
    let Err(SendError::NotSent { error, attempts }) = result else {
        panic!("{result:?}");
    };
    assert_eq!(deadline_error(&error), (SmtpOp::MailFrom, LIMIT));
    assert_eq!(attempts, 1);
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1, "it was retried");
    // Closed in the background once the caller had its answer.
    until(|| mailer.connections().open == 0).await;
}

/// A send deadline that passes after the end of data was written: the outcome is unknown.
#[tokio::test]
async fn a_send_deadline_after_the_end_of_data_is_unknown() {
    let (server, mailer, result) = send_with_a_deadline(Behaviour::StallAfterDot).await;
    let Err(SendError::Unknown { error }) = result else {
        panic!("{result:?}");
    };
    assert_eq!(deadline_error(&error), (SmtpOp::DataEnd, LIMIT));
    assert_eq!(server.dots.load(Ordering::SeqCst), 1);
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1, "it was retried");
    // Closed in the background once the caller had its answer.
    until(|| mailer.connections().open == 0).await;
}

/// The deadline covers the wait for a connection: a message that never gets one is not sent.
/// (A deadline for some calls only: `with_send_deadline` on a handle of the same pool.)
#[tokio::test]
async fn a_send_deadline_covers_the_wait_for_a_connection() {
    let server = Server::start(Behaviour::HoldAfterDot).await;
    let mailer = server.mailer().max_connections(1).build().unwrap();
    let first = send_in_background(&mailer, "first@test.example", "b@test.example", b"hi\r\n");
    until(|| server.dots.load(Ordering::SeqCst) == 1).await;
    let limit = Duration::from_millis(300);
    let second = mailer
        .with_send_deadline(limit)
        .send("second@test.example", ["b@test.example"], b"hi\r\n")
        .await;
    let Err(SendError::NotSent { error, attempts: 0 }) = &second else {
        panic!("{second:?}");
    };
    assert_eq!(deadline_error(error), (SmtpOp::Connect, limit));
    server.release.add_permits(1);
    first.await.unwrap().unwrap();
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(
        *server.delivered.lock().unwrap(),
        ["MAIL FROM:<first@test.example>"]
    );
}

/// `shutdown` ends idle connections all at once: eight QUITs each answered after 400 ms take
/// about 400 ms, not 3.2 s. (The runtime's clock is paused: the time is virtual.)
#[tokio::test(start_paused = true)]
async fn shutdown_ends_idle_connections_concurrently() {
    let server = Server::start(Behaviour::SlowQuit(Duration::from_millis(400))).await;
    let mailer = server.mailer().max_connections(8).build().unwrap();
    let sends: Vec<_> = (0..8)
        .map(|_| {
            let mailer = mailer.clone();
            tokio::spawn(async move { send_from(&mailer, "a@test.example").await })
        })
        .collect();
    for send in sends {
        send.await.unwrap().unwrap();
    }
    let idle = mailer.connections().idle;
    assert!(idle >= 2, "only {idle} idle connection(s) to end");
    let started = tokio::time::Instant::now();
    mailer.shutdown().await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1200),
        "{idle} QUITs of 400 ms took {took:?}"
    );
    assert_eq!(server.quits.load(Ordering::SeqCst), idle);
    assert_eq!(mailer.connections().open, 0);
}

/// A pool built before any runtime exists still ends its idle connections: the reaper starts
/// with the first message.
#[test]
fn a_pool_built_outside_a_runtime_still_ends_idle_connections() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let server = runtime.block_on(Server::start(Behaviour::Calm));
    let mailer = server
        .mailer()
        .idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    runtime.block_on(async {
        send_from(&mailer, "a@test.example").await.unwrap();
        assert_eq!(mailer.connections().idle, 1);
        tokio::time::sleep(Duration::from_secs(50)).await;
        assert_eq!(mailer.stats().expired, 1);
        assert_eq!(mailer.connections().open, 0);
    });
}

/// Recipients from any list of strings, and the refused ones in one call.
#[tokio::test]
async fn recipients_from_any_list_and_refusals_in_one_call() {
    let server = Server::start(Behaviour::RefuseRcpt).await;
    let mailer = server.mailer().build().unwrap();
    let owned: Vec<String> = vec!["x@test.example".into(), "y@test.example".into()];
    let refused = mailer.send("a@test.example", &owned, b"hi\r\n").await;
    let error = refused.unwrap_err();
    let who: Vec<&str> = error
        .refused_recipients()
        .iter()
        .map(|r| r.recipient.as_str())
        .collect();
    assert_eq!(who, ["x@test.example", "y@test.example"]);
    assert_eq!(error.refused_recipients()[1].reply.code().get(), 550);
    let from_iter = owned
        .iter()
        .map(|s| s.as_str())
        .filter(|s| s.starts_with('y'));
    let error = mailer
        .send("a@test.example", from_iter, b"hi\r\n")
        .await
        .unwrap_err();
    assert_eq!(error.refused_recipients().len(), 1);
    assert!(SendError::Closed.refused_recipients().is_empty());
    mailer.shutdown().await;
}
