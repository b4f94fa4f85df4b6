//! What the pool's pauses and its rate limit promise, seen from the server: a pause holds
//! every caller to its end even when it grows, a shutdown ends the wait for a pause, and turns
//! of the rate limit are spaced on the wire, not only when the calls are made.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_io_tokio::{Backoff, Mailer, SendError, SendOutcome, TlsMode};
use smtp_testkit::mock::{Act, Conversation, MockServer, well_behaved};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What the server saw: every MAIL, and every slow-down it answered, with when.
#[derive(Default)]
struct Seen {
    mails: Mutex<Vec<(String, Instant)>>,
    slowed: Mutex<Vec<(String, Instant)>>,
}

/// A server that answers the MAIL of a sender holding a key of `slow` with `450` (the
/// connection kept) after the delay given, everything else at once.
struct SlowsDown {
    seen: Arc<Seen>,
    slow: &'static [(&'static str, u64)],
}

impl Conversation for SlowsDown {
    fn command(&mut self, line: &str) -> Act {
        if line.to_ascii_uppercase().starts_with("MAIL") {
            let now = Instant::now();
            self.seen.mails.lock().unwrap().push((line.to_owned(), now));
            if let Some((_, ms)) = self.slow.iter().find(|(who, _)| line.contains(who)) {
                let (seen, line, ms) = (self.seen.clone(), line.to_owned(), *ms);
                return Act::wait(
                    async move {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        seen.slowed.lock().unwrap().push((line, Instant::now()));
                    },
                    Act::send("450 4.7.0 rate limited, slow down\r\n"),
                );
            }
        }
        well_behaved("review.test", &["8BITMIME"], line)
    }
}

async fn server(slow: &'static [(&'static str, u64)]) -> (MockServer, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let shared = seen.clone();
    let mock = MockServer::start(move |_| SlowsDown {
        seen: shared.clone(),
        slow,
    })
    .await;
    (mock, seen)
}

fn send(mailer: &Mailer, from: &str) -> JoinHandle<Result<SendOutcome, SendError>> {
    let mailer = mailer.clone();
    let from = from.to_owned();
    tokio::spawn(async move {
        mailer
            .send(&from, ["rcpt@review.test"], b"Subject: x\r\n\r\nhi\r\n")
            .await
    })
}

/// A pause that grows while a caller already sleeps out the first one holds that caller to
/// the new end: a's slow-down at 0.5 s pauses the pool until 1.5 s; b, holding a place,
/// sleeps until then; c's slow-down at 1.2 s (its message was on the wire before the pause)
/// extends the pause to 3.2 s. b used to send at 1.5 s (found in review).
#[tokio::test(start_paused = true)]
async fn a_pause_that_grows_holds_a_caller_already_waiting() {
    let (mock, seen) = server(&[("<a@", 500), ("<c@", 1200)]).await;
    let mailer = Mailer::builder("127.0.0.1", mock.port(), TlsMode::None, "client.test")
        .max_connections(2)
        .backoff(Backoff::new(
            Duration::from_secs(1),
            Duration::from_secs(60),
        ))
        .build()
        .unwrap();
    let a = send(&mailer, "a@x.test");
    let c = send(&mailer, "c@x.test");
    tokio::time::sleep(Duration::from_millis(10)).await;
    let b = send(&mailer, "b@x.test");
    assert!(matches!(a.await.unwrap(), Err(SendError::Throttled { .. })));
    let Err(SendError::Throttled { retry_after, .. }) = c.await.unwrap() else {
        panic!("c was not throttled");
    };
    let c_slowed = seen.slowed.lock().unwrap()[1].1;
    b.await.unwrap().unwrap();
    let mails = seen.mails.lock().unwrap();
    let b_mail = mails.iter().find(|(l, _)| l.contains("<b@")).unwrap().1;
    assert!(
        b_mail >= c_slowed + retry_after,
        "b's MAIL went inside the pause"
    );
}

/// `shutdown` ends the wait for a pause: it returns at once, and the caller that held a place
/// while sleeping out the pause gets `Closed` and sends nothing. Shutdown used to wait the
/// whole pause (60 s here), and that caller then sent its message (found in review).
#[tokio::test(start_paused = true)]
async fn a_shutdown_ends_the_wait_for_a_pause() {
    let (mock, seen) = server(&[("<a@", 500)]).await;
    let mailer = Mailer::builder("127.0.0.1", mock.port(), TlsMode::None, "client.test")
        .max_connections(1)
        .backoff(Backoff::new(
            Duration::from_secs(60),
            Duration::from_secs(60),
        ))
        .wait_timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let a = send(&mailer, "a@x.test");
    tokio::time::sleep(Duration::from_millis(10)).await;
    let b = send(&mailer, "b@x.test");
    assert!(matches!(a.await.unwrap(), Err(SendError::Throttled { .. })));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let asked = Instant::now();
    mailer.shutdown().await;
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    assert!(matches!(b.await.unwrap(), Err(SendError::Closed)));
    assert_eq!(seen.mails.lock().unwrap().len(), 1, "b's MAIL went out");
}

/// A server that notes when each MAIL came (real time: the rate limiter keeps its own clock)
/// and answers the first final dot after 2 s, the others at once.
struct SlowFirstDot {
    mails: Arc<Mutex<Vec<std::time::Instant>>>,
    dots: usize,
}

impl Conversation for SlowFirstDot {
    fn command(&mut self, line: &str) -> Act {
        if line.to_ascii_uppercase().starts_with("MAIL") {
            self.mails.lock().unwrap().push(std::time::Instant::now());
        }
        well_behaved("timed.test", &[], line)
    }

    fn end_of_data(&mut self, _body: Vec<u8>) -> Act {
        self.dots += 1;
        match self.dots {
            1 => Act::after(Duration::from_secs(2), Act::send("250 queued\r\n")),
            _ => Act::send("250 queued\r\n"),
        }
    }
}

/// Five a second in bursts of one: the server never sees two MAILs much less than 200 ms
/// apart, even when the callers took their turns while the only connection was busy. The
/// turns were taken at the call, and went out together once it was free (found in review).
#[tokio::test]
async fn a_rate_limit_spaces_the_messages_on_the_wire() {
    let mails = Arc::new(Mutex::new(Vec::new()));
    let seen = mails.clone();
    let mock = MockServer::start(move |_| SlowFirstDot {
        mails: seen.clone(),
        dots: 0,
    })
    .await;
    let one = std::num::NonZeroU32::MIN;
    let mailer = Mailer::builder("127.0.0.1", mock.port(), TlsMode::None, "client.test")
        .max_connections(1)
        .rate_limit(
            smtp_io_tokio::RateLimit::per_second(std::num::NonZeroU32::new(5).unwrap())
                .with_burst(one),
        )
        .build()
        .unwrap();
    let sends: Vec<_> = (0..6)
        .map(|i| send(&mailer, &format!("m{i}@x.test")))
        .collect();
    for sent in sends {
        sent.await.unwrap().unwrap();
    }
    let mails = mails.lock().unwrap().clone();
    let gaps: Vec<Duration> = mails.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().all(|gap| *gap >= Duration::from_millis(150)),
        "MAILs {gaps:?} apart under a limit of one per 200 ms"
    );
}
