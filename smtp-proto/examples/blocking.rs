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
//! The loop is the engine's whole calling contract: write everything `poll_transmit` yields,
//! `feed` what is read, drain `poll_event`, and bound each awaited reply by `timeout()` (one
//! deadline per reply, however many reads it takes: a server dripping one byte at a time still
//! times out).

use std::error::Error;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Instant;

use smtp_proto::command::Domain;
use smtp_proto::session::{
    BodyInfo, Envelope, Event, MessageOptions, SendOutcome, Session, SessionConfig,
};

const USAGE: &str =
    "usage: blocking [--server HOST:PORT] [--from ADDR] [--to ADDR]... [--file FILE]";

const SAMPLE: &[u8] = b"From: alice@example.com\r\nTo: bob@example.org\r\n\
Subject: hello from the blocking example\r\n\r\nHello over a plain std::net::TcpStream.\r\n";

/// A session and the socket it runs on.
struct Connection {
    stream: TcpStream,
    session: Session,
    buf: Vec<u8>,
    /// The deadline of the awaited reply, keyed by its `Wait::seq`.
    deadline: Option<(u64, Instant)>,
}

impl Connection {
    /// Write what the engine queued. A failed (or timed out) write closes the session, which
    /// then has nothing more to send.
    fn flush(&mut self) {
        while let Some(bytes) = self.session.poll_transmit() {
            match self.stream.write_all(&bytes) {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    self.session
                        .handle_write_timeout(self.session.write_timeout());
                }
                Err(e) => self.session.handle_io_error(e.kind(), &e.to_string()),
            }
        }
    }

    /// One read, bounded by what is left of the awaited reply's deadline, fed to the engine.
    fn read(&mut self) {
        let Some(wait) = self.session.timeout() else {
            return;
        };
        let deadline = match self.deadline {
            Some((seq, at)) if seq == wait.seq => at,
            _ => {
                let at = Instant::now() + wait.limit;
                self.deadline = Some((wait.seq, at));
                at
            }
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return self.session.handle_timeout();
        }
        // `set_read_timeout` refuses zero, hence the check above.
        let read = self
            .stream
            .set_read_timeout(Some(left))
            .and_then(|()| self.stream.read(&mut self.buf));
        match read {
            Ok(0) => self.session.handle_eof(),
            Ok(n) => self.session.feed(&self.buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                self.session.handle_timeout();
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => self.session.handle_io_error(e.kind(), &e.to_string()),
        }
    }

    /// Run the I/O until an event `want` accepts; a failure event is returned as an error.
    fn until(&mut self, want: impl Fn(&Event) -> bool) -> Result<Event, Box<dyn Error>> {
        loop {
            self.flush();
            while let Some(event) = self.session.poll_event() {
                match event {
                    Event::Failed { error, .. } | Event::MessageFailed { error, .. } => {
                        return Err(error.into());
                    }
                    event if want(&event) => return Ok(event),
                    _ => {} // informational: the greeting, ...
                }
            }
            // No event yet: a reply is awaited, or the session is over.
            self.session.check_usable()?;
            if self.session.timeout().is_none() {
                return Err("nothing to wait for (a bug in this loop)".into());
            }
            self.read();
        }
    }
}

struct Args {
    server: String,
    from: String,
    to: Vec<String>,
    file: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        server: "127.0.0.1:8025".into(),
        from: "alice@example.com".into(),
        to: Vec::new(),
        file: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => args.server = value()?,
            "--from" => args.from = value()?,
            "--to" => args.to.push(value()?),
            "--file" => args.file = Some(value()?),
            _ => return Err(format!("unknown argument {flag:?}\n{USAGE}")),
        }
    }
    if args.to.is_empty() {
        args.to.push("bob@example.org".into());
    }
    Ok(args)
}

fn run(args: &Args) -> Result<(), Box<dyn Error>> {
    let body = match &args.file {
        Some(path) => std::fs::read(path).map_err(|e| format!("{path}: {e}"))?,
        None => SAMPLE.to_vec(),
    };
    let stream = TcpStream::connect(&args.server).map_err(|e| format!("{}: {e}", args.server))?;
    stream.set_nodelay(true)?;
    let session = Session::new(Domain::new("localhost")?, SessionConfig::default());
    stream.set_write_timeout(Some(session.write_timeout()))?;
    let mut conn = Connection {
        stream,
        session,
        buf: vec![0; 8192],
        deadline: None,
    };

    // Greeting and EHLO.
    conn.until(|e| matches!(e, Event::HelloDone))?;

    let sent = send(&mut conn, args, &body);
    // QUIT whenever the session is still open, also after a refused message.
    let quit = match conn.session.quit() {
        Ok(()) => conn.until(|e| matches!(e, Event::Closed)).map(drop),
        Err(_) => Ok(()),
    };
    let outcome = sent?;
    println!("{} accepted: {}", outcome.message, outcome.reply);
    if let Some(queue_id) = &outcome.queue_id {
        println!("queue id: {queue_id}");
    }
    quit
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
