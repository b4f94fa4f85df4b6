//! Promises of the pool about its pauses, its limits and its idle connections, in paused
//! time: a back-off pause holds every caller (queued or chained), a caller's answer comes
//! within its send deadline, ending an idle connection never holds a caller past its wait
//! limit, a token source is bounded, and idle connections end at the idle timeout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_io_tokio::{
    Backoff, Mailer, MailerBuilder, SendError, SendOutcome, Throttle, ThrottleFuture, TlsMode, Turn,
};
use smtp_testkit::mock::{Act, Conversation, MockServer};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;

mod common;
use common::until;

struct Seen {
    /// Every MAIL line with when it arrived.
    mails: Mutex<Vec<(String, Instant)>>,
    /// When each slow-down reply was sent.
    slowed: Mutex<Vec<Instant>>,
    /// Senders whose message was accepted.
    delivered: Mutex<Vec<String>>,
    dots: AtomicUsize,
    /// The first final dot's reply waits for a permit.
    release: Semaphore,
}

#[derive(Clone, Copy)]
struct Config {
    /// Advertise PIPELINING.
    pipelining: bool,
    /// `450` (connection kept) to the MAIL of a sender containing this, once.
    slow_down_at: Option<&'static str>,
    /// Delay before the slow-down reply.
    slow_down_after: Duration,
    /// Answer QUIT after this long (None: at once).
    slow_quit: Option<Duration>,
    /// Hold the first dot's reply until `release`.
    hold_first: bool,
    /// Never answer any dot after the first.
    stall_later_dots: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            pipelining: false,
            slow_down_at: None,
            slow_down_after: Duration::ZERO,
            slow_quit: None,
            hold_first: false,
            stall_later_dots: false,
        }
    }
}

struct Conn {
    seen: Arc<Seen>,
    config: Config,
    sender: String,
    mail_ok: bool,
}

impl Conversation for Conn {
    fn command(&mut self, line: &str) -> Act {
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" if self.config.pipelining => {
                Act::send("250-review.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            }
            "EHLO" => Act::send("250-review.test\r\n250 8BITMIME\r\n"),
            "MAIL" => {
                let now = Instant::now();
                self.seen.mails.lock().unwrap().push((line.to_owned(), now));
                self.sender = line.to_owned();
                let mut slow = false;
                if let Some(who) = self.config.slow_down_at {
                    if line.contains(who) && self.seen.slowed.lock().unwrap().is_empty() {
                        slow = true;
                    }
                }
                if slow {
                    self.mail_ok = false;
                    let seen = self.seen.clone();
                    let after = self.config.slow_down_after;
                    return Act::wait(
                        async move {
                            tokio::time::sleep(after).await;
                            seen.slowed.lock().unwrap().push(Instant::now());
                        },
                        Act::send("450 4.7.0 rate limited, slow down\r\n"),
                    );
                }
                self.mail_ok = true;
                Act::send("250 ok\r\n")
            }
            "RCPT" if !self.mail_ok => Act::send("503 5.5.1 MAIL first\r\n"),
            "DATA" if !self.mail_ok => Act::send("503 5.5.1 MAIL first\r\n"),
            "RCPT" | "RSET" | "NOOP" => {
                if verb == "RSET" {
                    self.mail_ok = false;
                }
                Act::send("250 ok\r\n")
            }
            "DATA" => Act::body("354 go\r\n"),
            "QUIT" => match self.config.slow_quit {
                Some(after) => Act::after(after, Act::close("221 bye\r\n")),
                None => Act::close("221 bye\r\n"),
            },
            _ => Act::send("500 what\r\n"),
        }
    }

    fn end_of_data(&mut self, _body: Vec<u8>) -> Act {
        self.mail_ok = false;
        let n = self.seen.dots.fetch_add(1, Ordering::SeqCst);
        let seen = self.seen.clone();
        let sender = self.sender.clone();
        let config = self.config;
        Act::wait(
            async move {
                if n == 0 && config.hold_first {
                    seen.release.acquire().await.unwrap().forget();
                }
                if n > 0 && config.stall_later_dots {
                    std::future::pending::<()>().await;
                }
                seen.delivered.lock().unwrap().push(sender);
            },
            Act::send("250 queued\r\n"),
        )
    }
}

async fn server(config: Config) -> (MockServer, Arc<Seen>) {
    let seen = Arc::new(Seen {
        mails: Mutex::default(),
        slowed: Mutex::default(),
        delivered: Mutex::default(),
        dots: AtomicUsize::new(0),
        release: Semaphore::new(0),
    });
    let shared = seen.clone();
    let mock = MockServer::start(move |_| Conn {
        seen: shared.clone(),
        config,
        sender: String::new(),
        mail_ok: false,
    })
    .await;
    (mock, seen)
}

fn builder(mock: &MockServer) -> MailerBuilder {
    Mailer::builder("127.0.0.1", mock.port(), TlsMode::None, "client.test")
}

fn send(mailer: &Mailer, from: &str) -> JoinHandle<(Result<SendOutcome, SendError>, Instant)> {
    let mailer = mailer.clone();
    let from = from.to_owned();
    tokio::spawn(async move {
        let r = mailer
            .send(&from, ["rcpt@review.test"], b"Subject: x\r\n\r\nhi\r\n")
            .await;
        (r, Instant::now())
    })
}

/// `who`'s MAIL went out no sooner than `pause` after the slow-down.
#[track_caller]
fn assert_waited_out(seen: &Seen, who: &str, pause: Duration) {
    let slowed = seen.slowed.lock().unwrap()[0];
    let gap = mail_at(seen, who) - slowed;
    assert!(
        gap >= pause,
        "{who} went out {gap:?} into a {pause:?} pause"
    );
}

/// A pool of one connection to a server that takes 120 s to answer QUIT, with a 10 s idle
/// timeout and a 2 s wait limit; `hold_first`: the first message's reply waits for a permit.
async fn slow_quit_pool(hold_first: bool) -> (Mailer, Arc<Seen>, MockServer) {
    let (mock, seen) = server(Config {
        slow_quit: Some(Duration::from_secs(120)),
        hold_first,
        ..Config::default()
    })
    .await;
    let mailer = builder(&mock)
        .max_connections(1)
        .idle_timeout(Duration::from_secs(10))
        .wait_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    (mailer, seen, mock)
}

/// How long a message from `who` takes to be accepted.
async fn time_to_send(mailer: &Mailer, who: &str) -> Duration {
    let started = Instant::now();
    let (result, done) = send(mailer, who).await.unwrap();
    result.unwrap();
    done - started
}

/// The answers of `tasks`, in order.
async fn futures_answers(
    tasks: Vec<JoinHandle<(Result<SendOutcome, SendError>, Instant)>>,
) -> Vec<Result<SendOutcome, SendError>> {
    let mut answers = Vec::with_capacity(tasks.len());
    for task in tasks {
        answers.push(task.await.unwrap().0);
    }
    answers
}

fn mail_at(seen: &Seen, who: &str) -> Instant {
    let mails = seen.mails.lock().unwrap();
    mails
        .iter()
        .find(|(l, _)| l.contains(who))
        .unwrap_or_else(|| panic!("no MAIL from {who} in {mails:?}"))
        .1
}

/// A caller already waiting for the connection when a slow-down arrives waits out the pause
/// too ("every caller waits for the pause to end before its message"). It used to go out at
/// once on the same connection.
#[tokio::test(start_paused = true)]
async fn a_caller_queued_for_the_connection_waits_out_the_pause() {
    let pause = Duration::from_secs(10);
    let (mock, seen) = server(Config {
        slow_down_at: Some("<a@"),
        slow_down_after: Duration::from_millis(200),
        ..Config::default()
    })
    .await;
    let mailer = builder(&mock)
        .max_connections(1)
        .backoff(Backoff::new(pause, Duration::from_secs(60)))
        .build()
        .unwrap();
    let a = send(&mailer, "a@x.test");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let b = send(&mailer, "b@x.test");
    let (ra, _) = a.await.unwrap();
    assert!(matches!(ra, Err(SendError::Throttled { .. })), "{ra:?}");
    b.await.unwrap().0.unwrap();
    assert_waited_out(&seen, "<b@", pause);
}

/// The same in a chained flight: a `4xx` at MAIL that keeps the connection open ends the
/// flight's taking of messages until the pause is over. The flight used to go on taking
/// waiting messages during the pause.
#[tokio::test(start_paused = true)]
async fn a_chained_flight_stops_for_the_pause() {
    let pause = Duration::from_secs(10);
    let (mock, seen) = server(Config {
        slow_down_at: Some("<m1@"),
        hold_first: true,
        ..Config::default()
    })
    .await;
    let mailer = builder(&mock)
        .max_connections(1)
        .chain_messages(8)
        .backoff(Backoff::new(pause, Duration::from_secs(60)))
        .build()
        .unwrap();
    let m0 = send(&mailer, "m0@x.test");
    until(|| seen.dots.load(Ordering::SeqCst) == 1).await;
    let rest: Vec<_> = (1..4)
        .map(|n| send(&mailer, &format!("m{n}@x.test")))
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    seen.release.add_permits(1);
    m0.await.unwrap().0.unwrap();
    let answers: Vec<_> = futures_answers(rest).await;
    assert!(
        matches!(answers[0], Err(SendError::Throttled { .. })),
        "{answers:?}"
    );
    assert!(answers[1..].iter().all(Result::is_ok), "{answers:?}");
    assert_waited_out(&seen, "<m2@", pause);
}

/// An idle connection past the idle timeout is ended (QUIT) off the caller's time, and the
/// wait for its `221` is short: a server slow to answer QUIT holds the next caller about two
/// seconds, not the 5-minute command timeout (120 s here, before).
#[tokio::test(start_paused = true)]
async fn ending_an_expired_connection_holds_no_caller() {
    let (mailer, seen, _mock) = slow_quit_pool(true).await;
    // The connection goes idle at 1 s.
    let a = send(&mailer, "a@x.test");
    tokio::time::sleep(Duration::from_secs(1)).await;
    seen.release.add_permits(1);
    a.await.unwrap().0.unwrap();
    // Past the idle timeout: the reaper or the next caller ends it.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let took = time_to_send(&mailer, "b@x.test").await;
    assert!(took <= Duration::from_secs(3), "b waited {took:?}");
}

/// The same through the reaper, which holds the connection's place while it ends it: a caller
/// waits about two seconds for the place, not for the slow `221` (114 s here, before).
#[tokio::test(start_paused = true)]
async fn the_reapers_quit_holds_no_caller_long() {
    let (mailer, _seen, _mock) = slow_quit_pool(false).await;
    assert!(time_to_send(&mailer, "a@x.test").await < Duration::from_secs(1));
    tokio::time::sleep(Duration::from_secs(16)).await;
    assert_eq!(mailer.stats().expired, 1, "the reaper took it");
    let took = time_to_send(&mailer, "b@x.test").await;
    assert!(took <= Duration::from_secs(3), "b waited {took:?}");
}

/// A throttle that makes its second ask wait `first_wait`, and lets every other go.
struct SecondWaits {
    asks: AtomicUsize,
    first_wait: Duration,
}

impl Throttle for SecondWaits {
    fn acquire(&self) -> ThrottleFuture<'_> {
        let n = self.asks.fetch_add(1, Ordering::SeqCst);
        let turn = if n == 1 {
            Turn::WaitFor(self.first_wait)
        } else {
            Turn::Go
        };
        Box::pin(std::future::ready(Ok(turn)))
    }
}

/// A chained flight runs under the deadline of the message that started first, not the one
/// taken first: a caller who started earlier but reached the lobby later (held by its turn)
/// hears its answer within its own send deadline (it used to hear it a second after).
#[tokio::test(start_paused = true)]
async fn a_chained_caller_hears_within_its_send_deadline() {
    let limit = Duration::from_secs(20);
    let (mock, seen) = server(Config {
        pipelining: true,
        hold_first: true,
        stall_later_dots: true,
        ..Config::default()
    })
    .await;
    let mailer = builder(&mock)
        .max_connections(1)
        .chain_messages(8)
        .send_deadline(limit)
        .throttle(SecondWaits {
            asks: AtomicUsize::new(0),
            first_wait: Duration::from_secs(3),
        })
        .build()
        .unwrap();
    let x = send(&mailer, "x@x.test"); // ask 0: Go, holds the connection
    until(|| seen.dots.load(Ordering::SeqCst) == 1).await;
    let a_start = Instant::now();
    let a = send(&mailer, "a@x.test"); // ask 1: waits 3 s, reaches the lobby at +3 s
    tokio::time::sleep(Duration::from_secs(1)).await;
    let b = send(&mailer, "b@x.test"); // ask 2: Go, in the lobby at +1 s, ahead of a
    tokio::time::sleep(Duration::from_secs(4)).await;
    seen.release.add_permits(1);
    x.await.unwrap().0.unwrap();
    let (_, a_done) = a.await.unwrap();
    // b's own end of data is never answered: its answer is not the point here.
    let _ = b.await.unwrap();
    let a_took = a_done - a_start;
    assert!(
        a_took <= limit + Duration::from_millis(100),
        "a answered {a_took:?} after its call"
    );
}

/// A server that offers XOAUTH2 (and accepts any token).
struct OAuth;

impl Conversation for OAuth {
    fn command(&mut self, line: &str) -> Act {
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => Act::send("250-oauth.test\r\n250 AUTH XOAUTH2\r\n"),
            "AUTH" => Act::send("235 ok\r\n"),
            _ => smtp_testkit::mock::well_behaved("oauth.test", &[], line),
        }
    }
}

/// A token source that never answers is bounded like an AUTH step (the command timeout): the
/// caller and the connection's place are not held for ever (they were, past an hour).
#[tokio::test(start_paused = true)]
async fn a_token_source_that_never_answers_is_bounded() {
    let mock = MockServer::start(|_| OAuth).await;
    let mailer = builder(&mock)
        .max_connections(1)
        .wait_timeout(Duration::from_secs(2))
        .oauth2(
            smtp_io_tokio::TokenMechanism::XOAuth2,
            "me@x.test",
            |_refresh: bool| std::future::pending::<std::io::Result<String>>(),
        )
        .build()
        .unwrap();
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(3600), send(&mailer, "a@x.test")).await;
    let (answer, _) = r.expect("an answer within an hour").unwrap();
    assert!(answer.is_err(), "{answer:?}");
    // Each attempt is bounded by the command timeout (5 minutes); the pool tries once more.
    assert!(
        started.elapsed() <= Duration::from_secs(2 * 300 + 1),
        "{:?}",
        started.elapsed()
    );
}

/// "End a connection idle this long": the reaper wakes when the next idle connection expires.
/// It used to look every idle_timeout / 2, so a connection stayed open up to 1.5 times the
/// limit.
#[tokio::test(start_paused = true)]
async fn idle_connections_end_at_the_idle_timeout() {
    let (mock, seen) = server(Config {
        hold_first: true,
        ..Config::default()
    })
    .await;
    let mailer = builder(&mock)
        .idle_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let a = send(&mailer, "a@x.test");
    tokio::time::sleep(Duration::from_millis(100)).await;
    seen.release.add_permits(1);
    a.await.unwrap().0.unwrap();
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert_eq!(
        mailer.connections().open,
        0,
        "still open past the idle timeout"
    );
}
