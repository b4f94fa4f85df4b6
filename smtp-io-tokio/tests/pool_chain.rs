//! Chained flights ([`MailerBuilder::chain_messages`]): messages waiting for a connection ride
//! one flight on a connection that comes free, each caller with its own answer and the pool's
//! exactly-once rule, against a loopback server whose first final dot the test holds until the
//! other callers are waiting.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_io_tokio::{
    Backoff, Mailer, MailerBuilder, ReaderBody, Reply, SendError, SendOutcome, TlsMode,
    TranscriptSink,
};
use smtp_testkit::mock::{Act, Conversation, MockServer};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

mod common;
use common::until;

/// What the server saw, and the test's handle on its first final dot.
struct Seen {
    /// Subjects of the messages whose final dot arrived, in order.
    received: Mutex<Vec<String>>,
    /// The most connections open at once, and open now.
    open: AtomicUsize,
    most_open: AtomicUsize,
    /// Permits for the first final dot's reply.
    release: Semaphore,
    /// Hang up, without a reply, after the final dot of the message with this subject.
    hang_up_after: Mutex<Option<String>>,
    /// Answer the MAIL of this sender `421` (slow down) and hang up, once.
    slow_down_at: Mutex<Option<String>>,
    /// Every MAIL line, with when it arrived.
    mails: Mutex<Vec<(String, tokio::time::Instant)>>,
}

struct Conn {
    seen: Arc<Seen>,
}

impl Conversation for Conn {
    fn command(&mut self, line: &str) -> Act {
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => Act::send("250-chain.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"),
            "MAIL" => {
                let now = tokio::time::Instant::now();
                self.seen.mails.lock().unwrap().push((line.to_owned(), now));
                let mut slow_down = self.seen.slow_down_at.lock().unwrap();
                if slow_down
                    .as_ref()
                    .is_some_and(|from| line.contains(from.as_str()))
                {
                    *slow_down = None;
                    return Act::close("421 4.7.0 slow down\r\n");
                }
                Act::send("250 ok\r\n")
            }
            "RCPT" | "RSET" | "NOOP" => Act::send("250 ok\r\n"),
            "DATA" => Act::body("354 go\r\n"),
            "QUIT" => Act::close("221 bye\r\n"),
            _ => Act::send("500 what\r\n"),
        }
    }

    fn end_of_data(&mut self, body: Vec<u8>) -> Act {
        let text = String::from_utf8_lossy(&body);
        let subject = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or("?")
            .to_owned();
        let first = {
            let mut received = self.seen.received.lock().unwrap();
            received.push(subject.clone());
            received.len() == 1
        };
        let mut hang_up = self.seen.hang_up_after.lock().unwrap();
        if hang_up.as_deref() == Some(subject.as_str()) {
            *hang_up = None;
            return Act::close("");
        }
        let reply = Act::send(format!("250 queued as {subject}\r\n"));
        if first {
            let seen = self.seen.clone();
            return Act::wait(
                async move { seen.release.acquire().await.unwrap().forget() },
                reply,
            );
        }
        reply
    }

    fn ended(&mut self) {
        self.seen.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Every line the pool's connections wrote and read, in order (`C: ...`, `S: ...`).
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<String>>>);

impl TranscriptSink for Lines {
    fn client(&self, line: &str) {
        self.0.lock().unwrap().push(format!("C: {line}"));
    }
    fn server(&self, reply: &Reply) {
        let text = reply.lines().collect::<Vec<_>>().join(" ");
        self.0
            .lock()
            .unwrap()
            .push(format!("S: {} {text}", reply.code().get()));
    }
}

impl Lines {
    fn position(&self, line: &str) -> usize {
        let lines = self.0.lock().unwrap();
        lines
            .iter()
            .position(|l| l == line)
            .unwrap_or_else(|| panic!("no {line:?} in {lines:#?}"))
    }
}

struct Server {
    mock: MockServer,
    seen: Arc<Seen>,
    lines: Lines,
}

impl Server {
    async fn start() -> Server {
        let seen = Arc::new(Seen {
            received: Mutex::default(),
            open: AtomicUsize::new(0),
            most_open: AtomicUsize::new(0),
            release: Semaphore::new(0),
            hang_up_after: Mutex::default(),
            slow_down_at: Mutex::default(),
            mails: Mutex::default(),
        });
        let accepting = seen.clone();
        let mock = MockServer::start(move |_| {
            let now = accepting.open.fetch_add(1, Ordering::SeqCst) + 1;
            accepting.most_open.fetch_max(now, Ordering::SeqCst);
            Conn {
                seen: accepting.clone(),
            }
        })
        .await;
        Server {
            mock,
            seen,
            lines: Lines::default(),
        }
    }

    /// A pool of one connection chaining up to 8 messages, its lines recorded.
    fn mailer(&self) -> MailerBuilder {
        let lines = self.lines.clone();
        Mailer::builder("127.0.0.1", self.mock.port(), TlsMode::None, "client.test")
            .max_connections(1)
            .chain_messages(8)
            .client_options(move |o| o.with_transcript(Box::new(lines.clone())))
    }

    fn received(&self) -> Vec<String> {
        self.seen.received.lock().unwrap().clone()
    }
}

fn send(mailer: &Mailer, n: usize) -> JoinHandle<Result<SendOutcome, SendError>> {
    let mailer = mailer.clone();
    tokio::spawn(async move {
        let body = format!("Subject: m{n}\r\n\r\nhello {n}\r\n");
        let from = format!("m{n}@sender.test");
        mailer
            .send(&from, ["rcpt@chain.test"], body.as_bytes())
            .await
    })
}

/// The start of most tests here: a server, a pool on it (`Server::mailer` as `configure`
/// leaves it), and m0 sent, its final dot arrived and its reply held until the test calls
/// [`release`].
async fn first_held(
    configure: impl FnOnce(MailerBuilder) -> MailerBuilder,
) -> (Server, Mailer, JoinHandle<Result<SendOutcome, SendError>>) {
    let server = Server::start().await;
    let mailer = configure(server.mailer()).build().unwrap();
    let first = send(&mailer, 0);
    until(|| server.received().len() == 1).await;
    (server, mailer, first)
}

/// Let the callers sent meanwhile reach the pool's waiting room, then let m0's reply go.
async fn release(server: &Server) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.seen.release.add_permits(1);
}

/// m1 up to (not including) `count` sent while m0's reply is held, then m0's reply let go:
/// m0 must be sent; the others' answers, in order.
async fn the_rest_after_m0(
    server: &Server,
    mailer: &Mailer,
    first: JoinHandle<Result<SendOutcome, SendError>>,
    count: usize,
) -> Vec<Result<SendOutcome, SendError>> {
    let rest: Vec<_> = (1..count).map(|n| send(mailer, n)).collect();
    release(server).await;
    assert!(first.await.unwrap().is_ok());
    let mut answers = Vec::new();
    for task in rest {
        answers.push(task.await.unwrap());
    }
    answers
}

/// m0 goes out alone; m1..m3 wait meanwhile, then share one flight on the same connection:
/// each next MAIL is written before the reply to the previous final dot is read (one round
/// trip a message instead of two), and every caller gets its own queue id.
#[tokio::test]
async fn waiting_messages_share_one_flight() {
    let (server, mailer, first) = first_held(|b| b).await;
    let rest: Vec<_> = (1..4).map(|n| send(&mailer, n)).collect();
    release(&server).await;

    assert_eq!(
        first.await.unwrap().unwrap().queue_id.as_deref(),
        Some("m0")
    );
    for (n, task) in (1..4).zip(rest) {
        let outcome = task.await.unwrap().unwrap();
        assert_eq!(outcome.queue_id, Some(format!("m{n}")));
    }
    assert_eq!(server.received(), ["m0", "m1", "m2", "m3"]);
    assert_eq!(server.seen.most_open.load(Ordering::SeqCst), 1);
    let lines = &server.lines;
    // m0 went alone: m1's MAIL only after m0's answer.
    assert!(
        lines.position("S: 250 queued as m0") < lines.position("C: MAIL FROM:<m1@sender.test>")
    );
    // m1..m3 chained: each next MAIL before the previous message's answer.
    for n in 1..3 {
        let next_mail = lines.position(&format!("C: MAIL FROM:<m{}@sender.test>", n + 1));
        let answer = lines.position(&format!("S: 250 queued as m{n}"));
        assert!(next_mail < answer, "m{} waited for m{n}'s answer", n + 1);
    }
    assert_eq!(mailer.stats().opened, 1);
    mailer.shutdown().await;
}

/// The server hangs up right after m1's final dot in a chained flight: m1's end of data was
/// written, so its caller hears "unknown" and it is never sent again; m2 (its MAIL was written,
/// its body was not) provably was not delivered and goes out once more (its one retry) on a
/// new connection; m3, still waiting, was never on the lost connection and simply goes out on
/// the new one (no retry spent). Every message arrives exactly once.
#[tokio::test]
async fn a_connection_lost_mid_flight_retries_only_what_provably_was_not_sent() {
    let (server, mailer, first) = first_held(|b| b).await;
    *server.seen.hang_up_after.lock().unwrap() = Some("m1".to_owned());
    let answers = the_rest_after_m0(&server, &mailer, first, 4).await;
    assert!(
        matches!(answers[0], Err(SendError::Unknown { .. })),
        "{:?}",
        answers[0]
    );
    assert_eq!(answers[1].as_ref().unwrap().queue_id.as_deref(), Some("m2"));
    assert_eq!(answers[2].as_ref().unwrap().queue_id.as_deref(), Some("m3"));
    assert_eq!(server.received(), ["m0", "m1", "m2", "m3"]);
    let stats = mailer.stats();
    assert_eq!(stats.opened, 2);
    assert_eq!(stats.retries, 1, "only m2 was on the lost connection");
    mailer.shutdown().await;
}

/// A caller who stops waiting before a flight takes its message withdraws it: it is never
/// sent, and the callers behind it are not held up.
#[tokio::test]
async fn a_caller_who_stops_waiting_withdraws_its_message() {
    let (server, mailer, first) = first_held(|b| b).await;
    let dropped = send(&mailer, 1);
    let kept = send(&mailer, 2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    dropped.abort();
    assert!(dropped.await.unwrap_err().is_cancelled());
    server.seen.release.add_permits(1);

    assert!(first.await.unwrap().is_ok());
    assert_eq!(kept.await.unwrap().unwrap().queue_id.as_deref(), Some("m2"));
    assert_eq!(server.received(), ["m0", "m2"]);
    mailer.shutdown().await;
}

/// A message that waits past the wait limit is `Busy` and withdrawn: it is not sent later.
#[tokio::test]
async fn a_message_waiting_past_the_wait_limit_is_busy_and_never_sent() {
    let (server, mailer, first) = first_held(|b| b.wait_timeout(Duration::from_millis(150))).await;
    let late = send(&mailer, 1).await.unwrap();
    assert!(matches!(late, Err(SendError::Busy { .. })), "{late:?}");
    server.seen.release.add_permits(1);
    assert!(first.await.unwrap().is_ok());
    // One more message after it: m1 did not sneak into its flight.
    assert!(send(&mailer, 2).await.unwrap().is_ok());
    assert_eq!(server.received(), ["m0", "m2"]);
    mailer.shutdown().await;
}

/// Many callers on a pool of two: never more than two connections, every message delivered
/// once, and shutdown leaves nothing open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaining_keeps_the_connection_limit() {
    let server = Server::start().await;
    server.seen.release.add_permits(1);
    let mailer = server.mailer().max_connections(2).build().unwrap();
    let tasks: Vec<_> = (0..40).map(|n| send(&mailer, n)).collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let mut received = server.received();
    received.sort();
    received.dedup();
    assert_eq!(received.len(), 40);
    assert!(server.seen.most_open.load(Ordering::SeqCst) <= 2);
    assert!(mailer.stats().opened <= 2);
    mailer.shutdown().await;
    assert_eq!(mailer.connections().open, 0);
    until(|| server.seen.open.load(Ordering::SeqCst) == 0).await;
}

/// The server says to slow down (`421`, hanging up) at m1's MAIL in a chained flight, with
/// back-off on: m1's caller hears `Throttled`; m2..m4, still waiting, were never on that
/// connection: they are not failed by it, and they wait for the pause (as every caller does)
/// before going out on a new connection.
#[tokio::test]
async fn a_slow_down_fails_only_the_message_it_met_and_the_rest_wait_out_the_pause() {
    let pause = Duration::from_millis(300);
    let (server, mailer, first) =
        first_held(|b| b.backoff(Backoff::new(pause, Duration::from_secs(5)))).await;
    *server.seen.slow_down_at.lock().unwrap() = Some("<m1@".to_owned());
    let answers = the_rest_after_m0(&server, &mailer, first, 5).await;
    assert!(
        matches!(&answers[0], Err(SendError::Throttled { retry_after, .. }) if *retry_after == pause),
        "{:?}",
        answers[0]
    );
    for (n, answer) in (2..5).zip(&answers[1..]) {
        let outcome = answer.as_ref().unwrap_or_else(|e| panic!("m{n}: {e:?}"));
        assert_eq!(outcome.queue_id, Some(format!("m{n}")));
    }
    assert_eq!(server.received(), ["m0", "m2", "m3", "m4"]);
    let mails = server.seen.mails.lock().unwrap().clone();
    let at = |from: &str| {
        mails
            .iter()
            .find(|(line, _)| line.contains(from))
            .unwrap_or_else(|| panic!("no MAIL from {from} in {mails:?}"))
            .1
    };
    assert!(
        at("<m2@") - at("<m1@") >= pause,
        "m2 went out before the pause ended: {mails:?}"
    );
    let stats = mailer.stats();
    assert_eq!(stats.retries, 0, "no message spent its retry");
    mailer.shutdown().await;
}

/// A streamed send holds the only place while a message waits for a chained flight: when
/// the stream's send gives the place back, the waiting message goes out at once (it waited
/// out its whole wait limit, then `Busy`, when only a flight's worker started flights).
#[tokio::test]
async fn a_place_given_back_by_a_streamed_send_starts_the_waiting_flight() {
    let server = Server::start().await;
    let mailer = server
        .mailer()
        .wait_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let streamer = mailer.clone();
    let stream = tokio::spawn(async move {
        streamer
            .send_stream("s@sender.test", ["rcpt@chain.test"], || async {
                Ok(ReaderBody::new(&b"Subject: stream\r\n\r\nhi\r\n"[..]))
            })
            .await
    });
    until(|| server.received().len() == 1).await;
    let waiting = send(&mailer, 1);
    release(&server).await;
    let released = tokio::time::Instant::now();
    assert!(stream.await.unwrap().is_ok());
    let outcome = waiting.await.unwrap();
    assert_eq!(
        outcome.as_ref().map(|o| o.queue_id.as_deref()),
        Ok(Some("m1")),
        "{outcome:?}"
    );
    assert!(
        released.elapsed() < Duration::from_secs(4),
        "the waiting message waited {:?} for a free place",
        released.elapsed()
    );
    assert_eq!(server.received(), ["stream", "m1"]);
    mailer.shutdown().await;
}

/// A server with PIPELINING that answers its final dots after these delays, in order (then at
/// once), and the MAIL of `b@sender.test` after 3 s.
struct SlowDots {
    delays: &'static [u64],
    dots: usize,
}

impl Conversation for SlowDots {
    fn command(&mut self, line: &str) -> Act {
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => Act::send("250-slow.test\r\n250 PIPELINING\r\n"),
            "MAIL" if line.contains("<b@sender.test>") => {
                Act::after(Duration::from_secs(3), Act::send("250 ok\r\n"))
            }
            "MAIL" | "RCPT" | "RSET" | "NOOP" => Act::send("250 ok\r\n"),
            "DATA" => Act::body("354 go\r\n"),
            "QUIT" => Act::close("221 bye\r\n"),
            _ => Act::send("500 what\r\n"),
        }
    }

    fn end_of_data(&mut self, _body: Vec<u8>) -> Act {
        let delay = self.delays.get(self.dots).copied().unwrap_or(0);
        self.dots += 1;
        Act::after(Duration::from_secs(delay), Act::send("250 queued\r\n"))
    }
}

/// A chained flight runs under its oldest unanswered message's send deadline, and under the
/// next one's once that message is answered. With a 10 s deadline: x holds the connection
/// until 6 s; a (queued at 0 s) and b (queued at 5 s) then share a flight; a is answered at
/// 9 s, and nothing more arrives until b's MAIL is answered at 12 s: past a's deadline,
/// within b's own (15 s). When the flight kept a's deadline after a was settled, b's caller
/// heard "unknown" at 10 s.
#[tokio::test(start_paused = true)]
async fn a_chained_message_keeps_its_own_send_deadline_once_the_one_before_is_answered() {
    let server = MockServer::start(|_| SlowDots {
        delays: &[6, 3],
        dots: 0,
    })
    .await;
    let mailer = Mailer::builder("127.0.0.1", server.port(), TlsMode::None, "client.test")
        .max_connections(1)
        .chain_messages(2)
        .send_deadline(Duration::from_secs(10))
        .build()
        .unwrap();
    let sent = |from: &'static str| {
        let mailer = mailer.clone();
        tokio::spawn(async move { mailer.send(from, ["rcpt@slow.test"], b"hi\r\n").await })
    };
    let x = sent("x@sender.test");
    tokio::time::sleep(Duration::from_millis(10)).await;
    let a = sent("a@sender.test");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let b = sent("b@sender.test");
    for (name, task) in [("x", x), ("a", a), ("b", b)] {
        let outcome = task.await.unwrap();
        assert!(outcome.is_ok(), "{name}: {outcome:?}");
    }
    assert_eq!(server.accepted(), 1, "one connection carried all three");
    mailer.shutdown().await;
}

/// Greylisting at DATA: the first DATA of each sender is refused `451` (the connection stays
/// usable), every MAIL is recorded with its connection's number (from 1), and every connection
/// after the first greets 300 ms late.
struct Greylisting {
    conn: usize,
    mails: Arc<Mutex<Vec<(usize, String)>>>,
    senders: Arc<Mutex<Vec<String>>>,
    sender: String,
}

impl Conversation for Greylisting {
    fn greeting(&mut self) -> Act {
        let greeting = Act::send("220 greylist.test\r\n");
        if self.conn <= 1 {
            greeting
        } else {
            Act::after(Duration::from_millis(300), greeting)
        }
    }

    fn command(&mut self, line: &str) -> Act {
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => Act::send("250-greylist.test\r\n250 PIPELINING\r\n"),
            "MAIL" => {
                self.mails
                    .lock()
                    .unwrap()
                    .push((self.conn, line.to_owned()));
                self.sender = line.to_owned();
                Act::send("250 ok\r\n")
            }
            "RCPT" | "RSET" | "NOOP" => Act::send("250 ok\r\n"),
            "DATA" => {
                let mut senders = self.senders.lock().unwrap();
                if senders.contains(&self.sender) {
                    Act::body("354 go\r\n")
                } else {
                    senders.push(self.sender.clone());
                    Act::send("451 4.3.0 try again\r\n")
                }
            }
            "QUIT" => Act::close("221 bye\r\n"),
            _ => Act::send("500 what\r\n"),
        }
    }
}

/// A chained message refused `451` at DATA on a connection that stays usable is tried once
/// more on another connection, even when a second flight starts while the retry's
/// connection is being opened (it used to find the first connection on the idle list and
/// carry the retry on it).
#[tokio::test]
async fn a_chained_retry_goes_out_on_another_connection() {
    let mails = Arc::new(Mutex::new(Vec::new()));
    let senders = Arc::new(Mutex::new(Vec::new()));
    let (m, s) = (mails.clone(), senders.clone());
    let server = MockServer::start(move |conn| Greylisting {
        conn,
        mails: m.clone(),
        senders: s.clone(),
        sender: String::new(),
    })
    .await;
    let mailer = Mailer::builder("127.0.0.1", server.port(), TlsMode::None, "client.test")
        .max_connections(2)
        .chain_messages(2)
        .build()
        .unwrap();
    let first = send(&mailer, 0);
    until(|| mails.lock().unwrap().len() == 1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = send(&mailer, 1);
    assert!(first.await.unwrap().is_ok());
    assert!(second.await.unwrap().is_ok());
    let mails = mails.lock().unwrap().clone();
    for n in 0..2 {
        let on: Vec<usize> = mails
            .iter()
            .filter(|(_, line)| line.contains(&format!("<m{n}@")))
            .map(|(conn, _)| *conn)
            .collect();
        assert_eq!(on.len(), 2, "m{n}: {mails:?}");
        assert_ne!(
            on[0], on[1],
            "m{n} was retried on its own connection: {mails:?}"
        );
    }
    mailer.shutdown().await;
}
