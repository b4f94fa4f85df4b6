//! The engine in your own event loop: a [`Session`] driven by a blocking
//! [`std::net::TcpStream`], with no async runtime.
//!
//! Sends one message and QUITs, then prints the server's reply to the message and the message's
//! id. Plaintext only, no AUTH: TLS belongs to an adapter (`smtp-io-tokio`, `smtp-io-wasm`), and
//! the engine refuses AUTH without it by default. Point it at a local test server, e.g.
//! `python3 -m aiosmtpd -n` (which listens on port 8025):
//!
//! ```sh
//! cargo run -p smtp-proto --example blocking -- --server 127.0.0.1:8025 \
//!     --from alice@example.com --to bob@example.org --file examples/hello.eml
//! ```
//!
//! The loop is the engine's whole calling contract: write everything `poll_transmit` yields and
//! report each write with `wrote`, `feed` what is read, drain `poll_event`, and bound every
//! write and read by the engine's `poll_timeout`, calling `handle_timeout` when it is due. The
//! engine owns every clock: the per-reply limits (one per reply, however many reads it takes: a
//! server dripping one byte at a time still times out), the write-progress rule for the body and
//! the session deadline (`--deadline SECS`, counted from before the TCP connect). This loop only
//! reads its clock and hands the time in.

use std::error::Error;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant as StdInstant};

use smtp_proto::command::Domain;
use smtp_proto::session::{
    BodyInfo, Envelope, Event, MessageOptions, SendOutcome, Session, SessionConfig,
};
use smtp_proto::{Instant, SmtpError, Timeouts};

const USAGE: &str = "usage: blocking [--server HOST:PORT] [--from ADDR] [--to ADDR]... [--file FILE] \
[--timeout SECS] [--deadline SECS]";

const SAMPLE: &[u8] = b"From: alice@example.com\r\nTo: bob@example.org\r\n\
Subject: hello from the blocking example\r\n\r\nHello over a plain std::net::TcpStream.\r\n";

/// How early a socket call bounded by a time may give up, by the system clock's rounding: a
/// connect that timed out this close to the engine's timer ran into it.
const TIMER_SLACK: Duration = Duration::from_millis(10);

/// The loop's monotonic clock, as the engine's instants.
#[derive(Clone, Copy)]
struct Clock(StdInstant);

impl Clock {
    fn now(self) -> Instant {
        Instant::from_duration(self.0.elapsed())
    }
}

/// A session and the socket it runs on.
struct Connection {
    stream: TcpStream,
    session: Session,
    clock: Clock,
    buf: Vec<u8>,
}

impl Connection {
    /// What is left until the engine's next timer, or `None` once it is due (the engine has
    /// been told). `None` as well when nothing is awaited.
    fn left(&mut self) -> Option<Duration> {
        let now = self.clock.now();
        let timer = self.session.poll_timeout(now)?;
        let left = timer.left(now);
        if left.is_zero() {
            self.session.handle_timeout(now);
            return None;
        }
        Some(left)
    }

    /// Write what the engine queued, each `write` bounded by the engine's timer. A failed (or
    /// timed out) write closes the session, which then has nothing more to send.
    fn flush(&mut self) {
        while let Some(bytes) = self.session.poll_transmit() {
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                // `set_write_timeout` refuses zero: a due timer was handed to the engine.
                let Some(left) = self.left() else { return };
                let written = self
                    .stream
                    .set_write_timeout(Some(left))
                    .and_then(|()| self.stream.write(rest));
                match written {
                    Ok(0) => {
                        self.session
                            .handle_io_error(ErrorKind::WriteZero, "the socket took nothing");
                        return;
                    }
                    Ok(n) => {
                        rest = &rest[n..];
                        self.session.wrote(self.clock.now(), n);
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        self.session.handle_timeout(self.clock.now());
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.session.handle_io_error(e.kind(), &e.to_string());
                        return;
                    }
                }
                if self.session.is_failed() {
                    return;
                }
            }
        }
    }

    /// One read, bounded by the engine's timer, fed to the engine.
    fn read(&mut self) {
        let Some(left) = self.left() else { return };
        let read = self
            .stream
            .set_read_timeout(Some(left))
            .and_then(|()| self.stream.read(&mut self.buf));
        match read {
            Ok(0) => self.session.handle_eof(),
            Ok(n) => self.session.feed(&self.buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                self.session.handle_timeout(self.clock.now());
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => self.session.handle_io_error(e.kind(), &e.to_string()),
        }
    }

    /// Run the I/O until an event `want` accepts; a failure event is returned as an error.
    fn until(&mut self, want: impl Fn(&Event) -> bool) -> Result<Event, SmtpError> {
        loop {
            self.flush();
            while let Some(event) = self.session.poll_event() {
                match event {
                    Event::Failed { error, .. } | Event::MessageFailed { error, .. } => {
                        return Err(error);
                    }
                    event if want(&event) => return Ok(event),
                    _ => {} // informational: the greeting, ...
                }
            }
            // No event yet: a reply is awaited, or the session is over.
            self.session.check_usable()?;
            if self.session.poll_timeout(self.clock.now()).is_none() {
                return Err(SmtpError::Internal {
                    what: "nothing to wait for (a bug in this loop)",
                });
            }
            self.read();
        }
    }
}

/// The command line (`pub(crate)` for `tests/blocking_example.rs`, which runs this file).
pub(crate) struct Args {
    pub(crate) server: String,
    pub(crate) from: String,
    pub(crate) to: Vec<String>,
    pub(crate) file: Option<String>,
    /// The limit of each reply (default: RFC 5321's, by phase).
    pub(crate) timeout: Option<Duration>,
    /// The whole run's deadline, the TCP connect included.
    pub(crate) deadline: Option<Duration>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        server: "127.0.0.1:8025".into(),
        from: "alice@example.com".into(),
        to: Vec::new(),
        file: None,
        timeout: None,
        deadline: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => args.server = value()?,
            "--from" => args.from = value()?,
            "--to" => args.to.push(value()?),
            "--file" => args.file = Some(value()?),
            "--timeout" => args.timeout = Some(seconds(&value()?)?),
            "--deadline" => args.deadline = Some(seconds(&value()?)?),
            _ => return Err(format!("unknown argument {flag:?}\n{USAGE}")),
        }
    }
    if args.to.is_empty() {
        args.to.push("bob@example.org".into());
    }
    Ok(args)
}

fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{text:?} is not a number of seconds"))
}

pub(crate) fn run(args: &Args) -> Result<(), Box<dyn Error>> {
    let body = match &args.file {
        Some(path) => std::fs::read(path).map_err(|e| format!("{path}: {e}"))?,
        None => SAMPLE.to_vec(),
    };
    let mut conn = open(args)?;
    // Greeting and EHLO.
    conn.until(|e| matches!(e, Event::HelloDone))?;

    let sent = send(&mut conn, args, &body);
    // QUIT whenever the session is still open, also after a refused message.
    let quit = match conn.session.quit() {
        Ok(()) => conn.until(|e| matches!(e, Event::Closed)).map(drop),
        Err(_) => Ok(()),
    };
    let outcome = sent?;
    quit?;
    println!("{} accepted: {}", outcome.message, outcome.reply);
    if let Some(queue_id) = &outcome.queue_id {
        println!("queue id: {queue_id}");
    }
    Ok(())
}

/// Start the session and connect: the deadline (if any) counts from before the TCP connect, and
/// bounds the connect itself.
fn open(args: &Args) -> Result<Connection, Box<dyn Error>> {
    let clock = Clock(StdInstant::now());
    let mut timeouts = Timeouts::default();
    if let Some(limit) = args.timeout {
        timeouts = timeouts.with_reply_limit(limit);
    }
    timeouts.total = args.deadline;
    let mut config = SessionConfig::default();
    config.timeouts = timeouts;
    let mut session = Session::new(Domain::new("localhost")?, config);
    session.start(clock.now());
    let addrs: Vec<SocketAddr> = args
        .server
        .to_socket_addrs()
        .map_err(|e| format!("{}: {e}", args.server))?
        .collect();
    // The connect is bounded by the engine's first timer (the greeting's limit or the
    // deadline, whichever is nearer): each address gets an equal share of what is left, so one
    // that never answers leaves the others their turn.
    let mut failed = None;
    for (i, addr) in addrs.iter().enumerate() {
        let now = clock.now();
        let left = match session.poll_timeout(now) {
            Some(timer) => timer.left(now),
            None => Duration::from_secs(300),
        };
        let share = left / u32::try_from(addrs.len() - i).unwrap_or(u32::MAX);
        match TcpStream::connect_timeout(addr, share.max(Duration::from_millis(1))) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(Connection {
                    stream,
                    session,
                    clock,
                    buf: vec![0; 8192],
                });
            }
            Err(e) => failed = Some(e),
        }
    }
    // Every address failed. If the engine's timer ran out meanwhile, the engine says which it
    // was; otherwise (refused, or the system gave up first) the last address's own error.
    let now = clock.now();
    let ran_out = session
        .poll_timeout(now)
        .filter(|timer| now.as_duration() + TIMER_SLACK >= timer.at.as_duration());
    if let Some(timer) = ran_out {
        session.handle_timeout(timer.at.max(now));
        session.check_usable()?;
    }
    let why = failed.map_or_else(|| "no address".to_owned(), |e| e.to_string());
    Err(format!("{}: {why}", args.server).into())
}

/// MAIL, RCPT and DATA (pipelined when the server offers it), the body, the final reply.
fn send(conn: &mut Connection, args: &Args, body: &[u8]) -> Result<SendOutcome, Box<dyn Error>> {
    let to: Vec<&str> = args.to.iter().map(String::as_str).collect();
    let options = MessageOptions::default();
    let info = BodyInfo::in_memory(body, &options);
    let envelope = Envelope::new(&args.from, &to)?;
    let id = conn.session.start_mail(envelope, info, &options)?;
    loop {
        // Results are matched by message id (here there is only one message in flight).
        match conn.until(|e| matches!(e, Event::BodyWanted(_) | Event::Sent(_)))? {
            // The whole body at once: it is in memory, and the engine encodes it as it goes.
            Event::BodyWanted(m) if m == id => {
                conn.session.send_body(body)?;
                conn.session.finish_body()?;
            }
            Event::Sent(outcome) if outcome.message == id => return Ok(outcome),
            other => return Err(format!("unexpected event {other:?}").into()),
        }
    }
}

fn main() -> ExitCode {
    let result = parse_args()
        .map_err(Box::<dyn Error>::from)
        .and_then(|args| run(&args));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
