//! One [`Script`] run in memory, through the engine ([`run_session`]: a [`Session`] fed the `S:`
//! lines, its output checked against the `C:` lines) or through the async driver
//! ([`ScriptedTransport`]: an [`smtp_proto::client::Transport`] that plays the server's side for
//! an [`SmtpClient`](smtp_proto::client::SmtpClient)).
//!
//! Both check the client's bytes the same way as the scripted TCP server does (`server`):
//! client lines are matched in order when the script reaches them, `S:` lines go out in one read.
//! Both record every byte the client sent, so a test can check that the engine driven by hand and
//! the driver put the same bytes on the wire for the same script.
//!
//! In memory there is no TLS, no timer and no responder: `T:`, `X: stall` and `H:` steps fail
//! the run (use the TCP server for them). `X: close` is the server hanging up, `X: eof` a point
//! where the client must hang up.

use std::fmt::Write as _;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_proto::client::Transport;
use smtp_proto::{Event, Session};

use crate::script::{Script, Step};

/// What the server side should do next.
enum Next {
    /// Send these bytes.
    Reply(Vec<u8>),
    /// Close the connection.
    Close,
    /// The client must hang up now.
    ExpectHangUp,
    /// The script is waiting for a client line that has not been sent yet.
    WantClient(String),
    /// The script is over.
    End,
}

/// What a run saw: the client's bytes, the exchange, and the first mismatch if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Run {
    /// Every byte the client sent, in order.
    pub client_bytes: Vec<u8>,
    /// The exchange, one entry a line (`S: ...`, `C: ...`, `X: ...`).
    pub transcript: Vec<String>,
    /// Message bodies received at `C: DATA-BODY` steps, as on the wire (dot-stuffed, without the
    /// final `.` line).
    pub bodies: Vec<Vec<u8>>,
    /// What went wrong, if anything.
    pub failure: Option<String>,
    /// Whether every step of the script was reached.
    pub completed: bool,
}

impl Run {
    /// Whether the script ran to its end with no mismatch.
    pub fn ok(&self) -> bool {
        self.failure.is_none() && self.completed
    }

    /// A readable account of the run, for assertion messages.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        if let Some(f) = &self.failure {
            let _ = writeln!(out, "transcript: {f}");
        } else if !self.completed {
            let _ = writeln!(out, "transcript: the script was not run to its end");
        }
        for l in &self.transcript {
            let _ = writeln!(out, "    {l}");
        }
        out
    }
}

/// The server's side of a script, fed the client's bytes as they come.
struct Matcher {
    steps: Vec<Step>,
    next: usize,
    /// Client bytes not matched yet.
    pending: Vec<u8>,
    run: Run,
}

fn shown(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Matcher {
    fn new(script: &Script) -> Matcher {
        Matcher {
            steps: script.steps().to_vec(),
            next: 0,
            pending: Vec::new(),
            run: Run::default(),
        }
    }

    fn fail(&mut self, why: String) -> String {
        if self.run.failure.is_none() {
            self.run.failure = Some(why.clone());
        }
        why
    }

    fn client_sent(&mut self, bytes: &[u8]) {
        self.run.client_bytes.extend_from_slice(bytes);
        self.pending.extend_from_slice(bytes);
    }

    /// The next complete line of the pending client bytes, without its CRLF.
    fn take_line(&mut self) -> Option<Vec<u8>> {
        let pos = self.pending.windows(2).position(|w| w == b"\r\n")?;
        let line = self.pending[..pos].to_vec();
        self.pending.drain(..pos + 2);
        Some(line)
    }

    /// The length of a complete dot-terminated body at the start of the pending bytes (without
    /// the final `.\r\n`), and the length including it.
    fn complete_body(&self) -> Option<(usize, usize)> {
        let mut start = 0;
        while let Some(len) = self.pending[start..].windows(2).position(|w| w == b"\r\n") {
            if &self.pending[start..start + len] == b"." {
                return Some((start, start + 3));
            }
            start += len + 2;
        }
        None
    }

    /// Match the pending client bytes against the script as far as they go, and say what the
    /// server does next.
    fn advance(&mut self) -> Result<Next, String> {
        loop {
            let Some(step) = self.steps.get(self.next).cloned() else {
                self.run.completed = true;
                return Ok(Next::End);
            };
            match step {
                Step::Exact(_) | Step::Prefix(_) => {
                    let Some(line) = self.take_line() else {
                        return Ok(Next::WantClient(step.to_string()));
                    };
                    let text = shown(&line);
                    self.run.transcript.push(format!("C: {text}"));
                    if !step.matches(&line) {
                        return Err(self.fail(format!(
                            "step {} mismatch\n    expected: {step}\n    got:      C: {text}",
                            self.next + 1
                        )));
                    }
                }
                Step::DataBody => {
                    let Some((body_len, total)) = self.complete_body() else {
                        return Ok(Next::WantClient(step.to_string()));
                    };
                    let body = self.pending[..body_len].to_vec();
                    self.pending.drain(..total);
                    self.run
                        .transcript
                        .push(format!("C: <message body, {} bytes>", body.len()));
                    self.run.transcript.push("C: .".into());
                    self.run.bodies.push(body);
                }
                Step::Reply(ref lines) => {
                    self.next += 1;
                    for l in lines {
                        self.run.transcript.push(format!("S: {l}"));
                    }
                    return Ok(Next::Reply(step.reply_bytes()));
                }
                Step::Close => {
                    self.next += 1;
                    self.run.transcript.push("X: close".into());
                    return Ok(Next::Close);
                }
                Step::Eof => {
                    self.next += 1;
                    self.run.transcript.push("X: eof".into());
                    return Ok(Next::ExpectHangUp);
                }
                Step::Tls | Step::TlsFail | Step::Idle | Step::Stall | Step::Respond => {
                    return Err(self.fail(format!(
                        "step {} ({step}) needs the scripted TCP server, not an in-memory run",
                        self.next + 1
                    )));
                }
            }
            self.next += 1;
        }
    }

    /// The client hung up: nothing may be left unmatched, and the script must be over (or at
    /// an `X: eof`, or where the server closes too).
    fn hang_up(&mut self) {
        match self.advance() {
            Ok(Next::End | Next::ExpectHangUp | Next::Close) if self.pending.is_empty() => {
                self.run.completed = self.next >= self.steps.len();
                if !self.run.completed {
                    self.fail("the script goes on after the client hung up".into());
                }
            }
            Ok(Next::End | Next::ExpectHangUp | Next::Close) => {
                let extra = shown(&std::mem::take(&mut self.pending));
                self.run.transcript.push(format!("C: {extra}"));
                self.fail(format!(
                    "the client sent bytes the script does not have: {extra:?}"
                ));
            }
            Ok(Next::WantClient(step)) => {
                self.fail(format!("the client hung up; the script expects {step}"));
            }
            Ok(Next::Reply(_)) => {
                self.fail("the client hung up before the script ended".into());
            }
            Err(_) => {}
        }
    }

    fn finish(mut self) -> Run {
        if self.run.failure.is_none() && !self.pending.is_empty() {
            let extra = shown(&self.pending);
            self.fail(format!("unmatched client bytes at the end: {extra:?}"));
        }
        self.run
    }
}

/// Run `script` through `session`: feed each `S:` step in one piece (or one byte at a time
/// with `byte_at_a_time`), collect what the session transmits, and match it against the `C:`
/// steps. After every input, events are drained and handed to `on_event`, which may issue
/// commands (start a message, give the body, log in, quit) as an event loop would.
///
/// The run ends at the end of the script, at a mismatch, or when the session has nothing to
/// send while the script waits for a client line. An `X: close` step is
/// [`Session::handle_eof`].
pub fn run_session(
    script: &Script,
    session: &mut Session,
    byte_at_a_time: bool,
    mut on_event: impl FnMut(&mut Session, &Event),
) -> Run {
    let mut m = Matcher::new(script);
    let mut pump = |session: &mut Session, m: &mut Matcher| loop {
        let mut progressed = false;
        while let Some(bytes) = session.poll_transmit() {
            m.client_sent(&bytes);
            progressed = true;
        }
        while let Some(event) = session.poll_event() {
            on_event(session, &event);
            progressed = true;
        }
        if !progressed {
            break;
        }
    };
    loop {
        pump(session, &mut m);
        match m.advance() {
            Ok(Next::Reply(bytes)) => {
                if byte_at_a_time {
                    for b in &bytes {
                        session.feed(std::slice::from_ref(b));
                    }
                } else {
                    session.feed(&bytes);
                }
            }
            Ok(Next::Close) => session.handle_eof(),
            Ok(Next::ExpectHangUp) => {
                if !m.pending.is_empty() {
                    let extra = shown(&m.pending);
                    m.fail(format!("the client must hang up, it sent {extra:?}"));
                    break;
                }
            }
            Ok(Next::WantClient(step)) => {
                m.fail(format!(
                    "the session sent nothing more; the script expects {step}"
                ));
                break;
            }
            Ok(Next::End) | Err(_) => break,
        }
    }
    m.finish()
}

/// An in-memory [`Transport`] that plays the server's side of a script for an `SmtpClient`.
///
/// Reads return the next `S:` step once the client lines before it have been written and
/// matched; a read where the script waits for a client line fails with
/// [`io::ErrorKind::InvalidData`] (the client would wait forever on a real server). Its timer
/// never fires and its clock stands still: no wait can time out in memory, and none needs to.
/// Keep a [`handle`](Self::handle) to read the [`Run`] after the client is gone.
#[derive(Clone)]
pub struct ScriptedTransport {
    state: Arc<Mutex<State>>,
}

struct State {
    matcher: Matcher,
    /// Server bytes returned by part of a read, to return first next time.
    unread: Vec<u8>,
    closed_by_server: bool,
    closed_by_client: bool,
}

impl std::fmt::Debug for ScriptedTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedTransport").finish_non_exhaustive()
    }
}

impl ScriptedTransport {
    /// A transport that serves `script`.
    pub fn new(script: &Script) -> ScriptedTransport {
        ScriptedTransport {
            state: Arc::new(Mutex::new(State {
                matcher: Matcher::new(script),
                unread: Vec::new(),
                closed_by_server: false,
                closed_by_client: false,
            })),
        }
    }

    /// Another handle on the same run, to keep when the transport moves into a client.
    pub fn handle(&self) -> ScriptedTransport {
        self.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What happened so far. Call it after the client is done (dropped, or `quit()`); a client
    /// that is still connected has not hung up, so the run is not complete unless the server
    /// closed the connection.
    pub fn run(&self) -> Run {
        let state = self.lock();
        let mut matcher = Matcher {
            steps: state.matcher.steps.clone(),
            next: state.matcher.next,
            pending: state.matcher.pending.clone(),
            run: state.matcher.run.clone(),
        };
        if !state.closed_by_client && !state.closed_by_server && matcher.run.failure.is_none() {
            matcher.fail("the client has not hung up".into());
        }
        matcher.finish()
    }
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

impl Transport for ScriptedTransport {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut state = self.lock();
        if state.unread.is_empty() {
            if state.closed_by_server {
                return Ok(0);
            }
            match state.matcher.advance() {
                Ok(Next::Reply(bytes)) => state.unread = bytes,
                Ok(Next::Close) => {
                    state.closed_by_server = true;
                    return Ok(0);
                }
                Ok(Next::ExpectHangUp) => {
                    return Err(invalid(
                        state
                            .matcher
                            .fail("the client waits for a reply where it must hang up".into()),
                    ));
                }
                Ok(Next::WantClient(step)) => {
                    return Err(invalid(state.matcher.fail(format!(
                        "the client waits for a reply; the script expects {step}"
                    ))));
                }
                Ok(Next::End) => {
                    return Err(invalid(state.matcher.fail(
                        "the client waits for a reply after the script ended".into(),
                    )));
                }
                Err(why) => return Err(invalid(why)),
            }
        }
        let n = buf.len().min(state.unread.len());
        buf[..n].copy_from_slice(&state.unread[..n]);
        state.unread.drain(..n);
        Ok(n)
    }

    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut state = self.lock();
        if state.closed_by_server || state.closed_by_client {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        state.matcher.client_sent(buf);
        Ok(())
    }

    async fn close(&mut self) -> io::Result<()> {
        let mut state = self.lock();
        if !state.closed_by_client {
            state.closed_by_client = true;
            if !state.closed_by_server {
                state.matcher.hang_up();
            }
        }
        Ok(())
    }

    fn sleep(_duration: Duration) -> impl Future<Output = ()> {
        std::future::pending()
    }

    fn now() -> Duration {
        Duration::ZERO
    }
}
