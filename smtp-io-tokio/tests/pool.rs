//! The pool ([`Mailer`]) against a loopback server that misbehaves at random: it drops
//! connections, answers `421`, goes silent, and sends stray replies while a connection is idle.
//! Every message must end in exactly one of: delivered once, not delivered with a typed error,
//! or unknown (only where the server dropped or went silent after the message's data began).
//!
//! The runtime's clock is paused: every wait (the server's idle timers, the client's reply
//! timeouts, the callers' pauses) passes in virtual time, and no assertion depends on the wall
//! clock.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_io_tokio::{
    DataPipelining, Mailer, ProtocolError, SendError, SmtpClientOptions, SmtpError, Timeouts,
    TlsConfig, TlsMode,
};
use smtp_testkit::mock::{Act, Conversation, MockServer};
use std::net::SocketAddr;
use tokio_rustls::rustls::ServerConfig;

mod common;
use common::{send_from, send_in_background};

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// True with probability `per_mille` / 1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// What the server saw.
#[derive(Default)]
struct Log {
    /// How many times each message id was delivered (its final dot received and logged).
    delivered: Mutex<HashMap<u64, u32>>,
    /// Messages whose connection the server dropped, or on which it went silent, after it
    /// answered DATA with 354: the only ones whose fate the client may not know.
    data_faults: Mutex<HashSet<u64>>,
    /// How many times each message id's MAIL FROM was received.
    mails: Mutex<HashMap<u64, u32>>,
    /// Connections open now, accepted in all, and ended by QUIT.
    open: AtomicUsize,
    accepted: AtomicUsize,
    quits: AtomicUsize,
    /// Faults injected, by kind.
    faults: Mutex<HashMap<&'static str, usize>>,
}

impl Log {
    fn fault(&self, kind: &'static str) {
        *self.faults.lock().unwrap().entry(kind).or_default() += 1;
    }
}

/// Which faults a server injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// None: a well-behaved server.
    Calm,
    /// Each at random, at its own rate, on every connection.
    Random,
    /// This one fault, on the first connection only, at its first chance.
    Once(&'static str),
}

/// Decides, at each chance, whether a fault happens, and logs it.
struct Faults {
    rng: Rng,
    mode: Mode,
    first_connection: bool,
    used: bool,
}

impl Faults {
    fn hit(&mut self, log: &Log, kind: &'static str, per_mille: u64) -> bool {
        let hit = match self.mode {
            Mode::Calm => false,
            Mode::Random => self.rng.chance(per_mille),
            Mode::Once(k) => {
                k == kind && self.first_connection && !std::mem::replace(&mut self.used, true)
            }
        };
        if hit {
            log.fault(kind);
        }
        hit
    }
}

/// A loopback server injecting the faults of `mode` (each connection gets its own generator).
/// `tls` wraps each connection in implicit TLS.
async fn server(log: Arc<Log>, mode: Mode, tls: Option<Arc<ServerConfig>>) -> SocketAddr {
    let conversation = move |seed: usize| {
        log.open.fetch_add(1, Ordering::SeqCst);
        log.accepted.fetch_add(1, Ordering::SeqCst);
        let faults = Faults {
            rng: Rng::new(seed as u64),
            mode,
            first_connection: seed == 1,
            used: false,
        };
        Conn::new(log.clone(), faults)
    };
    match tls {
        None => MockServer::start(conversation).await.addr(),
        Some(tls) => MockServer::implicit_tls(tls, conversation).await.addr(),
    }
}

/// One SMTP conversation, faults and all.
struct Conn {
    log: Arc<Log>,
    faults: Faults,
    current: Option<u64>,
    recipients: usize,
    /// The message whose body comes, and whether the connection drops inside it.
    data: Option<(u64, bool)>,
}

impl Conn {
    fn new(log: Arc<Log>, faults: Faults) -> Conn {
        Conn {
            log,
            faults,
            current: None,
            recipients: 0,
            data: None,
        }
    }

    /// A fault after the message's data began: its fate may be unknown to the client.
    fn data_fault(&self, id: u64, end: Act) -> Act {
        self.log.data_faults.lock().unwrap().insert(id);
        end
    }
}

impl Conversation for Conn {
    fn greeting(&mut self) -> Act {
        Act::send("220 pool.test ESMTP\r\n")
    }

    /// While waiting for a command, a timer may fire: the server then sends a 421 and hangs up,
    /// or sends a stray reply and carries on. Its times are odd microseconds, the callers'
    /// pauses whole milliseconds, so the two never meet at one instant.
    fn idle(&mut self) -> Option<Duration> {
        let idle = Duration::from_micros(self.faults.rng.below(1_000_000) * 2 + 200_001);
        (self.faults.mode == Mode::Random).then_some(idle)
    }

    fn idle_fired(&mut self) -> Act {
        if self.faults.rng.chance(500) {
            self.log.fault("421 while idle");
            return Act::close("421 4.4.2 pool.test idle too long, closing\r\n");
        }
        self.log.fault("stray reply while idle");
        Act::send("250 2.0.0 stray\r\n")
    }

    fn command(&mut self, text: &str) -> Act {
        let (log, faults) = (&*self.log, &mut self.faults);
        let upper = text.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            Act::send("250-pool.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
        } else if let Some(from) = upper.strip_prefix("MAIL FROM:<M") {
            let id: u64 = from.split('@').next().unwrap().parse().unwrap();
            *log.mails.lock().unwrap().entry(id).or_default() += 1;
            if faults.hit(log, "drop at MAIL", 15) {
                Act::close("")
            } else if faults.hit(log, "421 at MAIL", 15) {
                Act::close("421 4.3.2 pool.test shutting down\r\n")
            } else if faults.hit(log, "451 at MAIL", 20) {
                Act::send("451 4.3.0 try again later\r\n")
            } else if faults.hit(log, "silent at MAIL", 8) {
                Act::Silent
            } else {
                self.current = Some(id);
                self.recipients = 0;
                Act::send("250 2.1.0 ok\r\n")
            }
        } else if upper.starts_with("RCPT TO:") {
            if faults.hit(log, "drop at RCPT", 8) {
                Act::close("")
            } else if self.current.is_none() {
                Act::send("503 5.5.1 need MAIL first\r\n")
            } else if upper.contains("REJECT@") {
                Act::send("550 5.1.1 no such user\r\n")
            } else {
                self.recipients += 1;
                Act::send("250 2.1.5 ok\r\n")
            }
        } else if upper == "DATA" {
            let Some(id) = self.current.filter(|_| self.recipients > 0) else {
                return Act::send("554 5.5.1 no valid recipients\r\n");
            };
            if faults.hit(log, "drop after 354", 8) {
                let drop = self.data_fault(id, Act::close(""));
                return Act::Seq(vec![Act::send("354 go ahead\r\n"), drop]);
            }
            let drop_in_body = faults.hit(log, "drop in the body", 8);
            self.data = Some((id, drop_in_body));
            Act::body("354 go ahead\r\n")
        } else if upper == "RSET" {
            self.current = None;
            Act::send("250 2.0.0 ok\r\n")
        } else if upper == "NOOP" {
            if faults.hit(log, "221 to NOOP", 200) {
                // A server on its way out (lettre's pool took this for a healthy connection).
                return Act::close("221 2.0.0 closing\r\n");
            }
            Act::send("250 2.0.0 ok\r\n")
        } else if upper == "QUIT" {
            log.quits.fetch_add(1, Ordering::SeqCst);
            Act::close("221 2.0.0 bye\r\n")
        } else {
            Act::send("500 5.5.2 what?\r\n")
        }
    }

    fn body_line(&mut self, _line: &[u8]) -> Option<Act> {
        match self.data {
            Some((id, true)) => Some(self.data_fault(id, Act::close(""))),
            _ => None,
        }
    }

    fn end_of_data(&mut self, _body: Vec<u8>) -> Act {
        let (id, drop_in_body) = self.data.take().expect("a body after DATA");
        if drop_in_body {
            return self.data_fault(id, Act::close(""));
        }
        self.current = None;
        let (log, faults) = (&*self.log, &mut self.faults);
        if faults.hit(log, "451 after the dot", 15) {
            return Act::send("451 4.3.0 local error\r\n");
        }
        *log.delivered.lock().unwrap().entry(id).or_default() += 1;
        if faults.hit(log, "drop after the dot", 15) {
            self.data_fault(id, Act::close(""))
        } else if faults.hit(log, "silent after the dot", 10) {
            self.data_fault(id, Act::Silent)
        } else {
            Act::send(format!("250 2.0.0 queued as {id}\r\n"))
        }
    }

    fn ended(&mut self) {
        self.log.open.fetch_sub(1, Ordering::SeqCst);
    }
}

fn client_options(options: SmtpClientOptions) -> SmtpClientOptions {
    options.with_timeouts(Timeouts::uniform(Duration::from_secs(20)))
}

/// Wait (in virtual time) until the server has seen every connection close.
async fn all_closed(log: &Log) -> bool {
    smtp_testkit::wait::poll(600, Duration::from_millis(100), || {
        log.open.load(Ordering::SeqCst) == 0
    })
    .await
}

/// The pool handle can be shared by any number of tasks.
#[test]
fn the_handle_is_cheap_to_share() {
    fn shared<T: Clone + Send + Sync + 'static>() {}
    shared::<Mailer>();
    shared::<SendError>();
}

#[derive(Debug)]
enum Fate {
    Sent,
    NotSent(SmtpError),
    Unknown,
    Busy,
}

#[tokio::test(start_paused = true)]
async fn two_thousand_messages_through_a_faulty_server_end_exactly_once() {
    exactly_once_through_a_faulty_server(1).await;
}

/// The same with chained flights ([`MailerBuilder::chain_messages`]): several callers'
/// messages on one connection at once, and still each message's fate exactly as it happened.
#[tokio::test(start_paused = true)]
async fn two_thousand_messages_in_chained_flights_end_exactly_once() {
    exactly_once_through_a_faulty_server(8).await;
}

/// 64 tasks send 2,000 messages through a pool of 8 to a server that injects every kind of
/// fault: every message ends with one fate, and that fate is what happened to it.
async fn exactly_once_through_a_faulty_server(chain: usize) {
    const TASKS: u64 = 64;
    const MESSAGES: u64 = 2000;
    let log = Arc::new(Log::default());
    let addr = server(log.clone(), Mode::Random, None).await;
    let mailer = Mailer::builder("127.0.0.1", addr.port(), TlsMode::None, "client.test")
        .chain_messages(chain)
        .max_connections(8)
        .max_messages_per_connection(20)
        .idle_timeout(Duration::from_secs(10))
        .probe_after(Duration::from_secs(1))
        .wait_timeout(Duration::from_secs(600))
        .client_options(client_options)
        .build()
        .unwrap();
    let fates = Arc::new(Mutex::new(HashMap::new()));
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let mailer = mailer.clone();
        let fates = fates.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(1000 + t);
            for id in (t..MESSAGES).step_by(TASKS as usize) {
                tokio::time::sleep(Duration::from_millis(rng.below(2500))).await;
                let from = format!("m{id}@test.example");
                // Every 97th message has a refused recipient among accepted ones (with DATA
                // pipelined, the pool closes that connection before the body); every 5th has
                // three recipients; the others one.
                let to: &[&str] = if id % 97 == 0 {
                    &[
                        "rcpt@test.example",
                        "reject@test.example",
                        "r2@test.example",
                    ]
                } else if id % 5 == 0 {
                    &["rcpt@test.example", "r2@test.example", "r3@test.example"]
                } else {
                    &["rcpt@test.example"]
                };
                let body = format!("Subject: message {id}\r\n\r\nHello {id}\r\n.dot line\r\n");
                let fate = match mailer.send(&from, to, body.as_bytes()).await {
                    Ok(_) => Fate::Sent,
                    Err(SendError::NotSent { error, .. }) => Fate::NotSent(error),
                    Err(SendError::Unknown { .. }) => Fate::Unknown,
                    Err(SendError::Busy { .. }) => Fate::Busy,
                    Err(e) => panic!("message {id}: {e}"),
                };
                assert!(fates.lock().unwrap().insert(id, fate).is_none());
            }
        }));
    }
    // No task is left waiting: all finish well within a virtual hour.
    let joined = tokio::time::timeout(Duration::from_secs(3600), async {
        for task in tasks {
            task.await.unwrap();
        }
    })
    .await;
    if joined.is_err() {
        let fates = fates.lock().unwrap();
        let missing: Vec<u64> = (0..MESSAGES).filter(|id| !fates.contains_key(id)).collect();
        panic!(
            "a sending task was left waiting: no fate for {missing:?}; pool {:?}",
            mailer.stats()
        );
    }
    mailer.shutdown().await;
    assert!(
        matches!(
            mailer.send("a@b", &["c@d"], b"x").await,
            Err(SendError::Closed)
        ),
        "a shut down pool refuses"
    );
    assert!(all_closed(&log).await, "a connection was left open");
    let stats = mailer.stats();
    assert_eq!(stats.opened, stats.closed, "{stats:?}");

    let fates = fates.lock().unwrap();
    let delivered = log.delivered.lock().unwrap();
    let data_faults = log.data_faults.lock().unwrap();
    assert_eq!(fates.len() as u64, MESSAGES, "every message has one fate");
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in 0..MESSAGES {
        let times = delivered.get(&id).copied().unwrap_or(0);
        assert!(times <= 1, "message {id} delivered {times} times");
        let fate = &fates[&id];
        match fate {
            Fate::Sent => assert_eq!(times, 1, "message {id} reported sent"),
            Fate::NotSent(e) => {
                assert_eq!(times, 0, "message {id} reported not sent: {e}");
                // In a chained flight a fault of the message ahead ends the ones behind it
                // too, so its one retry may also be spent that way: the refusal is then not
                // the last error seen, though the message still never went out.
                if id % 97 == 0 && chain == 1 {
                    assert!(
                        matches!(
                            e,
                            SmtpError::Protocol(ProtocolError::RecipientsRefused { .. })
                        ),
                        "{e}"
                    );
                }
            }
            Fate::Unknown => assert!(
                data_faults.contains(&id),
                "message {id} unknown, but the server never failed it after its data began"
            ),
            Fate::Busy => assert_eq!(times, 0),
        }
        if id % 97 == 0 {
            assert!(matches!(fate, Fate::NotSent(_)), "{id}: {fate:?}");
        }
        let name = match fate {
            Fate::Sent => "delivered",
            Fate::NotSent(_) => "not sent (typed error)",
            Fate::Unknown => "unknown",
            Fate::Busy => "busy",
        };
        *counts.entry(name).or_default() += 1;
    }
    let faults = log.faults.lock().unwrap();
    println!("fates: {counts:?}");
    println!("faults injected: {faults:?}");
    println!("pool: {stats:?}");
    println!(
        "server: {} connections, {} ended by QUIT",
        log.accepted.load(Ordering::SeqCst),
        log.quits.load(Ordering::SeqCst)
    );
    // The faults really happened, and the pool really reused, probed and retried.
    for kind in [
        "421 while idle",
        "stray reply while idle",
        "drop at MAIL",
        "421 at MAIL",
        "silent at MAIL",
        "drop after the dot",
        "silent after the dot",
    ] {
        assert!(faults.get(kind).copied().unwrap_or(0) > 0, "no {kind}");
    }
    // Chained flights keep connections busy: none sits idle long enough to be probed.
    assert!(
        stats.out_of_step > 0 && stats.retries > 0 && (stats.probes > 0 || chain > 1),
        "{stats:?}"
    );
    assert!(stats.reused > stats.opened, "{stats:?}");
    assert!(counts.get("unknown").copied().unwrap_or(0) > 0);
    assert!(counts["delivered"] > 1500, "{counts:?}");
}

/// A 421 the server sent while the connection sat idle is seen before reuse: the connection is
/// closed, not paired with the next MAIL, and the message goes out on a new one.
#[tokio::test]
async fn a_421_sent_while_idle_is_seen_before_reuse() {
    let (idle_tx, idle_rx) = tokio::sync::oneshot::channel::<()>();
    let (sent_tx, sent_rx) = tokio::sync::oneshot::channel::<()>();
    let log = Arc::new(Log::default());
    let after_421 = Arc::new(Mutex::new(Vec::new()));
    let (server_log, seen) = (log.clone(), after_421.clone());
    let mut first = Some(IdleThen421 {
        commands: 0,
        idle: Some(idle_rx),
        sent: Some(sent_tx),
        after_421: seen,
    });
    let server = MockServer::start(move |_| -> Box<dyn Conversation> {
        // The first connection: one message, then a 421 once the client is idle. The second:
        // a well-behaved server.
        match first.take() {
            Some(first) => Box::new(first),
            None => {
                server_log.open.fetch_add(1, Ordering::SeqCst);
                let calm = Faults {
                    rng: Rng::new(7),
                    mode: Mode::Calm,
                    first_connection: false,
                    used: false,
                };
                Box::new(Conn::new(server_log.clone(), calm))
            }
        }
    })
    .await;
    let mailer = Mailer::builder("127.0.0.1", server.port(), TlsMode::None, "client.test")
        .max_connections(1)
        .build()
        .unwrap();
    mailer
        .send("a@test.example", &["b@test.example"], b"first\r\n")
        .await
        .unwrap();
    idle_tx.send(()).unwrap();
    sent_rx.await.unwrap();
    mailer
        .send("m2@test.example", &["b@test.example"], b"second\r\n")
        .await
        .unwrap();
    let stats = mailer.stats();
    assert_eq!(
        (stats.opened, stats.out_of_step, stats.retries),
        (2, 1, 0),
        "{stats:?}"
    );
    assert_eq!(log.delivered.lock().unwrap().get(&2), Some(&1));
    mailer.shutdown().await;
    assert_eq!(log.quits.load(Ordering::SeqCst), 1);
    // Only the 421 told the client: it sent nothing more on that connection.
    assert!(server.until_ended(2, Duration::from_secs(5)).await);
    assert_eq!(*after_421.lock().unwrap(), Vec::<String>::new());
}

/// A connection that takes one message, then sends a 421 once `idle` fires (and says so on
/// `sent`), keeping the socket open: whatever the client sends after it is kept in `after_421`.
struct IdleThen421 {
    /// Commands received so far.
    commands: usize,
    idle: Option<tokio::sync::oneshot::Receiver<()>>,
    sent: Option<tokio::sync::oneshot::Sender<()>>,
    after_421: Arc<Mutex<Vec<String>>>,
}

impl Conversation for IdleThen421 {
    fn greeting(&mut self) -> Act {
        Act::send("220 t\r\n")
    }

    fn command(&mut self, line: &str) -> Act {
        self.commands += 1;
        // Any EHLO, MAIL, RCPT and DATA, in that order.
        match self.commands {
            1 => Act::send("250 t\r\n"),
            2 | 3 => Act::send("250 ok\r\n"),
            4 => Act::body("354 go\r\n"),
            _ => {
                self.after_421.lock().unwrap().push(line.to_owned());
                Act::close("")
            }
        }
    }

    fn end_of_data(&mut self, _body: Vec<u8>) -> Act {
        let (idle, sent) = (self.idle.take().unwrap(), self.sent.take().unwrap());
        Act::Seq(vec![
            Act::send("250 queued\r\n"),
            Act::wait(
                async move { idle.await.unwrap() },
                Act::send("421 4.4.2 idle too long\r\n"),
            ),
            Act::wait(async move { sent.send(()).unwrap() }, Act::send("")),
        ])
    }
}

/// A throttle that holds its second caller for `second_waits` and lets everyone else go;
/// `calls` counts the calls.
struct SecondWaits {
    calls: Arc<AtomicUsize>,
    second_waits: Duration,
}

impl SecondWaits {
    fn new(second_waits: Duration) -> SecondWaits {
        let calls = Arc::new(AtomicUsize::new(0));
        SecondWaits {
            calls,
            second_waits,
        }
    }
}

impl smtp_io_tokio::Throttle for SecondWaits {
    fn acquire(&self) -> smtp_io_tokio::ThrottleFuture<'_> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            Ok(match call {
                1 => smtp_io_tokio::Turn::WaitFor(self.second_waits),
                _ => smtp_io_tokio::Turn::Go,
            })
        })
    }
}

/// A pool built by `make` (chaining messages when `chained`), a first message in the
/// background that holds a place, then a second one: its answer, and how long it took.
async fn a_second_caller(
    make: impl Fn() -> smtp_io_tokio::MailerBuilder,
    chained: bool,
) -> (Result<smtp_io_tokio::SendOutcome, SendError>, Duration) {
    let mut builder = make();
    if chained {
        builder = builder.chain_messages(2);
    }
    let mailer = builder.build().unwrap();
    let first = send_in_background(&mailer, "a@test.example", "b@test.example", b"x\r\n");
    tokio::time::sleep(Duration::from_millis(1)).await;
    let started = tokio::time::Instant::now();
    let second = send_from(&mailer, "c@test.example").await;
    let took = started.elapsed();
    first.abort();
    mailer.shutdown().await;
    (second, took)
}

const BUSY_AFTER_5_S: Result<smtp_io_tokio::SendOutcome, SendError> = Err(SendError::Busy {
    waited: Duration::from_secs(5),
});

/// A turn that would outlast the wait limit is answered `Busy` at once, also under a longer
/// send deadline: the caller used to wait out the whole turn, take the throttle's place, and
/// then get `Busy` without a look for a connection (found in review).
#[tokio::test(start_paused = true)]
async fn a_turn_past_the_wait_limit_is_busy_at_once_under_a_longer_deadline() {
    let server = MockServer::start(|_| Mute).await;
    for chained in [false, true] {
        let calls = Arc::new(AtomicUsize::new(0));
        let make = || {
            let throttle = SecondWaits {
                calls: Arc::clone(&calls),
                second_waits: Duration::from_secs(8),
            };
            Mailer::builder("127.0.0.1", server.port(), TlsMode::None, "c.test")
                .wait_timeout(Duration::from_secs(5))
                .send_deadline(Duration::from_secs(60))
                .throttle(throttle)
                .client_options(client_options)
        };
        let (busy, took) = a_second_caller(make, chained).await;
        assert_eq!(busy, BUSY_AFTER_5_S, "chained: {chained}");
        assert_eq!(took, Duration::ZERO, "chained: {chained}");
        assert_eq!(calls.load(Ordering::SeqCst), 2, "asked once more");
    }
}

/// The wait limit counts from the call, the throttle's turn included: a caller held 3 s for
/// its turn waits 2 s more for a connection, not 5 (found in review: it could wait twice the
/// limit, on the plain and the chained path alike).
#[tokio::test(start_paused = true)]
async fn the_wait_limit_covers_the_turn_under_a_throttle() {
    let server = MockServer::start(|_| Mute).await;
    for chained in [false, true] {
        let make = || {
            Mailer::builder("127.0.0.1", server.port(), TlsMode::None, "client.test")
                .max_connections(1)
                .wait_timeout(Duration::from_secs(5))
                .throttle(SecondWaits::new(Duration::from_secs(3)))
                .client_options(client_options)
        };
        let (busy, took) = a_second_caller(make, chained).await;
        assert_eq!(busy, BUSY_AFTER_5_S, "chained: {chained}");
        assert!(
            took >= Duration::from_secs(5) && took < Duration::from_millis(5100),
            "chained: {chained}, waited {took:?}"
        );
    }
}

/// A bad envelope is refused before the pool takes a turn or a connection, on every path, and
/// the stub transport answers it the same way (the unchained pool used to connect first and
/// answer `attempts: 1`; found in review).
#[tokio::test]
async fn a_bad_envelope_costs_no_connection_on_any_path() {
    use smtp_io_tokio::{MailSender, StubMailSender};

    let server = MockServer::start(|_| Mute).await;
    let bad = ["b@test.example\r\nRCPT TO:<c@test.example>"];
    for chained in [false, true] {
        let mut builder = Mailer::builder("127.0.0.1", server.port(), TlsMode::None, "c.test");
        if chained {
            builder = builder.chain_messages(2);
        }
        let mailer = builder.build().unwrap();
        let refused = mailer.send("a@test.example", bad, b"x\r\n").await;
        assert!(
            matches!(
                refused,
                Err(SendError::NotSent {
                    error: SmtpError::InvalidInput(_),
                    attempts: 0
                })
            ),
            "chained: {chained}: {refused:?}"
        );
        mailer.shutdown().await;
    }
    assert_eq!(server.accepted(), 0, "a connection was opened");
    let stub = StubMailSender::new()
        .send_mail("a@test.example", &bad, b"x\r\n")
        .await;
    assert!(
        matches!(
            stub,
            Err(SendError::NotSent {
                error: SmtpError::InvalidInput(_),
                attempts: 0
            })
        ),
        "{stub:?}"
    );
}

/// A throttle that never answers (a shared limit whose store went silent).
struct NeverAnswers;

impl smtp_io_tokio::Throttle for NeverAnswers {
    fn acquire(&self) -> smtp_io_tokio::ThrottleFuture<'_> {
        Box::pin(std::future::pending())
    }
}

/// Asking the throttle is bounded like every other wait: by the wait limit (`Busy`), or by the
/// send deadline (`NotSent`, `DeadlineExceeded`). It used to hang for as long as the store did
/// (found in review, with a Redis that accepts and never replies).
#[tokio::test(start_paused = true)]
async fn a_throttle_that_never_answers_is_bounded() {
    let server = MockServer::start(|_| Mute).await;
    let mailer = Mailer::builder("127.0.0.1", server.port(), TlsMode::None, "client.test")
        .wait_timeout(Duration::from_secs(5))
        .throttle(NeverAnswers)
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let busy = send_from(&mailer, "a@test.example").await;
    assert_eq!(
        busy,
        Err(SendError::Busy {
            waited: Duration::from_secs(5)
        })
    );
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    let late = send_from(
        &mailer.with_send_deadline(Duration::from_secs(2)),
        "b@test.example",
    )
    .await;
    common::assert_ran_out_unsent(&late);
    assert_eq!(server.accepted(), 0, "nothing was connected");
    mailer.shutdown().await;
}

/// Callers wait a bounded time for a connection, then get a typed error; nothing is queued
/// forever.
#[tokio::test(start_paused = true)]
async fn a_full_pool_makes_callers_wait_a_bounded_time() {
    // A server that accepts and never greets: the one connection stays busy until the
    // client's greeting timeout.
    let server = MockServer::start(|_| Mute).await;
    let mailer = Mailer::builder("127.0.0.1", server.port(), TlsMode::None, "client.test")
        .max_connections(1)
        .wait_timeout(Duration::from_secs(5))
        .client_options(client_options)
        .build()
        .unwrap();
    let first = send_in_background(&mailer, "a@test.example", "b@test.example", b"x\r\n");
    tokio::time::sleep(Duration::from_millis(1)).await;
    let err = mailer
        .send("a@test.example", &["b@test.example"], b"y\r\n")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SendError::Busy {
            waited: Duration::from_secs(5)
        }
    );
    // The first caller gets its own typed error when the greeting never comes (and its retry
    // on a new connection fails the same way).
    let first = first.await.unwrap().unwrap_err();
    assert!(
        matches!(&first, SendError::NotSent { attempts: 2, error } if error.blame() == smtp_io_tokio::Blame::Timeout),
        "{first:?}"
    );
    mailer.shutdown().await;
}

/// A server that accepts and never says a word, nor reads one.
struct Mute;

impl Conversation for Mute {
    fn greeting(&mut self) -> Act {
        Act::Stall
    }

    fn command(&mut self, _line: &str) -> Act {
        Act::Stall
    }
}

/// Connections share one rustls configuration, so reconnects resume the TLS session: one full
/// handshake for ten connections.
#[tokio::test]
async fn reconnects_resume_tls_sessions() {
    let pki = smtp_testkit::certs::TestPki::generate().unwrap();
    let log = Arc::new(Log::default());
    let addr = server(log.clone(), Mode::Calm, Some(pki.localhost_config())).await;
    let mailer = Mailer::builder("localhost", addr.port(), TlsMode::Implicit, "client.test")
        .tls_config(TlsConfig::from_ca_pem(pki.ca_pem()).unwrap())
        .max_connections(1)
        .max_messages_per_connection(10)
        .build()
        .unwrap();
    for id in 0..100 {
        let from = format!("m{id}@test.example");
        mailer
            .send(&from, &["b@test.example"], b"Subject: hi\r\n\r\nhi\r\n")
            .await
            .unwrap();
    }
    mailer.shutdown().await;
    let stats = mailer.stats();
    println!(
        "100 messages over TLS, 10 per connection: {} full handshakes, {} resumed",
        stats.full_handshakes, stats.resumed_handshakes
    );
    assert_eq!(stats.opened, 10, "{stats:?}");
    assert_eq!(stats.full_handshakes + stats.resumed_handshakes, 10);
    assert_eq!(stats.full_handshakes, 1, "{stats:?}");
    assert_eq!(log.quits.load(Ordering::SeqCst), 10);
    assert_eq!(log.delivered.lock().unwrap().len(), 100);
}

/// A pool over a server that injects `fault` once, on its first connection.
async fn pool_with_one_fault(fault: &'static str) -> (Mailer, Arc<Log>) {
    let log = Arc::new(Log::default());
    let addr = server(log.clone(), Mode::Once(fault), None).await;
    let mailer = Mailer::builder("127.0.0.1", addr.port(), TlsMode::None, "client.test")
        .max_connections(1)
        .client_options(client_options)
        .build()
        .unwrap();
    (mailer, log)
}

/// A message refused before its end of data is sent again, once, on a new connection.
#[tokio::test(start_paused = true)]
async fn a_failure_before_the_end_of_data_is_retried_once_on_a_new_connection() {
    for fault in [
        "421 at MAIL",
        "451 at MAIL",
        "drop at RCPT",
        "silent at MAIL",
    ] {
        let (mailer, log) = pool_with_one_fault(fault).await;
        send_from(&mailer, "m1@test.example")
            .await
            .unwrap_or_else(|e| panic!("{fault}: {e}"));
        let stats = mailer.stats();
        assert_eq!(stats.retries, 1, "{fault}: {stats:?}");
        assert_eq!(log.mails.lock().unwrap()[&1], 2, "{fault}");
        assert_eq!(log.delivered.lock().unwrap()[&1], 1, "{fault}");
        mailer.shutdown().await;
        assert!(all_closed(&log).await);
    }
}

/// A message whose end of data was written and whose reply never came is reported unknown and
/// never sent again.
#[tokio::test(start_paused = true)]
async fn no_reply_after_the_end_of_data_is_unknown_and_never_resent() {
    for fault in [
        "drop after the dot",
        "silent after the dot",
        "drop in the body",
    ] {
        let (mailer, log) = pool_with_one_fault(fault).await;
        let err = send_from(&mailer, "m1@test.example").await.unwrap_err();
        assert!(matches!(err, SendError::Unknown { .. }), "{fault}: {err:?}");
        assert_eq!(mailer.stats().retries, 0, "{fault}");
        assert_eq!(log.mails.lock().unwrap()[&1], 1, "{fault}: sent again");
        // The pool goes on with a new connection.
        send_from(&mailer, "m2@test.example").await.unwrap();
        mailer.shutdown().await;
        assert!(all_closed(&log).await);
    }
}

/// How many recipients the server accepted of a message it refused recipients of, in its one
/// attempt (not sent again); any other error panics, with `case`.
fn accepted_of_a_refusal(err: &SendError, case: &str) -> usize {
    match err {
        SendError::NotSent {
            error: SmtpError::Protocol(ProtocolError::RecipientsRefused { accepted, .. }),
            attempts: 1,
        } => *accepted,
        other => panic!("{case}: not a refusal of recipients at the one attempt: {other:?}"),
    }
}

/// A 5xx, or a 4xx to the end of data, is final: not sent again.
#[tokio::test(start_paused = true)]
async fn refusals_are_final() {
    let (mailer, log) = pool_with_one_fault("451 after the dot").await;
    let err = send_from(&mailer, "m1@test.example").await.unwrap_err();
    assert!(
        matches!(err, SendError::NotSent { attempts: 1, .. }),
        "{err:?}"
    );
    let err = mailer
        .send("m2@test.example", &["reject@test.example"], b"hi\r\n")
        .await
        .unwrap_err();
    assert_eq!(accepted_of_a_refusal(&err, "m2"), 0);
    assert_eq!(log.mails.lock().unwrap()[&1], 1);
    assert_eq!(log.mails.lock().unwrap()[&2], 1);
    assert!(log.delivered.lock().unwrap().is_empty());
    // Both refusals left the connection usable: one connection all along.
    assert_eq!(mailer.stats().opened, 1);
    mailer.shutdown().await;
    assert_eq!(log.quits.load(Ordering::SeqCst), 1);
}

/// The pool pipelines DATA with the envelope: when the server refuses one recipient of three
/// and already waits for data, the connection is closed before the body, nothing is delivered,
/// the refusal is final, and the next message gets a new connection. With
/// `DataPipelining::WhenSafe` the same refusal keeps the connection.
#[tokio::test(start_paused = true)]
async fn a_partial_refusal_closes_the_connection_before_the_body() {
    const TO: [&str; 3] = ["b@test.example", "reject@test.example", "c@test.example"];
    for (mode, opened) in [(DataPipelining::Always, 2), (DataPipelining::WhenSafe, 1)] {
        let log = Arc::new(Log::default());
        let addr = server(log.clone(), Mode::Calm, None).await;
        let mailer = Mailer::builder("127.0.0.1", addr.port(), TlsMode::None, "client.test")
            .max_connections(1)
            .data_pipelining(mode)
            .client_options(client_options)
            .build()
            .unwrap();
        let err = mailer
            .send("m1@test.example", &TO, b"not for a partial list\r\n")
            .await
            .unwrap_err();
        assert_eq!(
            accepted_of_a_refusal(&err, &format!("{mode:?}")),
            2,
            "{mode:?}"
        );
        mailer
            .send("m2@test.example", &TO[..1], b"hi\r\n")
            .await
            .unwrap();
        let delivered = log.delivered.lock().unwrap().clone();
        assert_eq!(
            delivered.get(&1),
            None,
            "{mode:?}: delivered to a partial list"
        );
        assert_eq!(delivered.get(&2), Some(&1), "{mode:?}");
        assert_eq!(mailer.stats().opened, opened, "{mode:?}");
        mailer.shutdown().await;
        assert!(all_closed(&log).await);
    }
}

/// Only a connection idle longer than the probe threshold gets a NOOP, and a 221 to it is not
/// taken for a healthy connection.
#[tokio::test(start_paused = true)]
async fn long_idle_connections_are_probed_and_a_221_is_not_healthy() {
    for (fault, opened) in [("none", 1), ("221 to NOOP", 2)] {
        let (mailer, log) = pool_with_one_fault(fault).await;
        let send = |id: u64| {
            let mailer = mailer.clone();
            async move {
                let from = format!("m{id}@test.example");
                send_from(&mailer, &from).await
            }
        };
        send(1).await.unwrap();
        // Reused at once: no probe.
        send(2).await.unwrap();
        assert_eq!(mailer.stats().probes, 0, "{fault}");
        // Past the probe threshold (10 s by default), before the idle timeout (60 s).
        tokio::time::sleep(Duration::from_secs(15)).await;
        send(3).await.unwrap();
        let stats = mailer.stats();
        assert_eq!(
            (stats.probes, stats.opened),
            (1, opened),
            "{fault}: {stats:?}"
        );
        assert_eq!(log.delivered.lock().unwrap().len(), 3, "{fault}");
        mailer.shutdown().await;
        assert!(all_closed(&log).await);
    }
}

/// A connection idle past the idle timeout is ended with QUIT by the pool's background task.
#[tokio::test(start_paused = true)]
async fn idle_connections_are_ended_after_the_idle_timeout() {
    let log = Arc::new(Log::default());
    let addr = server(log.clone(), Mode::Calm, None).await;
    let mailer = Mailer::builder("127.0.0.1", addr.port(), TlsMode::None, "client.test")
        .idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    send_from(&mailer, "m1@test.example").await.unwrap();
    let c = mailer.connections();
    assert_eq!((c.open, c.idle), (1, 1));
    tokio::time::sleep(Duration::from_secs(50)).await;
    let c = mailer.connections();
    assert_eq!((c.open, c.idle), (0, 0));
    assert_eq!(mailer.stats().expired, 1);
    assert_eq!(log.quits.load(Ordering::SeqCst), 1);
    assert!(all_closed(&log).await);
}

/// A mail-builder message through the pool: the envelope from its headers (Bcc included), the
/// Bcc header never sent, and the pool's retry rules as for any message.
#[cfg(feature = "mail-builder")]
#[tokio::test(start_paused = true)]
async fn a_built_message_goes_through_the_pool() {
    use smtp_io_tokio::mail_builder::MessageBuilder;

    let (mailer, log) = pool_with_one_fault("421 at MAIL").await;
    let message = MessageBuilder::new()
        .from("m7@test.example")
        .to("b@test.example")
        .bcc("hidden@test.example")
        .subject("built")
        .text_body("hi");
    let outcome = mailer.send_message(&message).await.unwrap();
    let recipients: Vec<&str> = outcome
        .recipients
        .iter()
        .map(|r| r.recipient.as_str())
        .collect();
    assert_eq!(recipients, ["b@test.example", "hidden@test.example"]);
    assert_eq!(mailer.stats().retries, 1, "retried once after the 421");
    assert_eq!(log.delivered.lock().unwrap()[&7], 1);
    // No envelope: refused before any attempt.
    let err = mailer
        .send_message(&MessageBuilder::new().subject("no one").text_body("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SendError::NotSent { attempts: 0, .. }),
        "{err:?}"
    );
    mailer.shutdown().await;
    assert!(all_closed(&log).await);
}
