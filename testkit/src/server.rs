//! An in-process scripted SMTP server on `127.0.0.1:0`, for one connection, running a
//! [`Script`](crate::script) (S:/C: lines, TLS, stalls, hang-ups and responders).
//!
//! When the script is done the server waits for the client to hang up: anything the client sends
//! then is a mismatch. So a test drops (or `quit()`s) its client before [`ScriptServer::finish`].
//! Every wait of the server is bounded ([`IDLE`]), so no test can hang on it.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::script::{Script, Step};

/// The longest the server waits for anything from the client.
pub const IDLE: Duration = Duration::from_secs(5);

/// The longest client line accepted.
const MAX_LINE: usize = 256 * 1024;

/// A dynamic part of a script, for lines no fixed script can hold (they depend on what the
/// client sent). Run by an `H: respond` step.
pub trait Responder: Send {
    /// Called with each client line (without CRLF) until it returns [`Answer::Done`].
    /// `tls_exporter` is the connection's RFC 9266 `tls-exporter` value (TLS 1.3 only).
    fn line(&mut self, line: &[u8], tls_exporter: Option<[u8; 32]>) -> Answer;
}

/// What a [`Responder`] does with a client line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Send these reply lines, then give the responder the next client line.
    Continue(Vec<String>),
    /// Send these reply lines; the script goes on with its next step.
    Done(Vec<String>),
    /// The client got something wrong: the step fails with this message.
    Fail(String),
}

/// What the server saw.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every line exchanged, in order (`S: ...`, `C: ...`, `T: ...`, `X: ...`).
    pub transcript: Vec<String>,
    /// Each message body received with `C: DATA-BODY`, as sent on the wire: CRLF line endings,
    /// dot-stuffed, without the terminating `.\r\n`.
    pub bodies: Vec<Vec<u8>>,
    /// What went wrong, if anything: a mismatch, an early hang-up, a timeout.
    pub failure: Option<String>,
    /// Bytes the client sent while the server stalled.
    pub sent_during_stall: Vec<u8>,
    /// Whether the client hung up (EOF) at the end or at an `X: eof` / `X: stall` step.
    pub client_hung_up: bool,
    steps: Vec<String>,
    failed_step: Option<usize>,
    done_steps: usize,
}

impl Report {
    /// Whether the script ran to its end with no mismatch.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    /// The transcript as one string.
    pub fn transcript_text(&self) -> String {
        self.transcript.join("\n")
    }

    /// A readable account: the script with each step marked, then what the server saw.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        if let Some(f) = &self.failure {
            let _ = writeln!(out, "scripted server: {f}");
        }
        let _ = writeln!(out, "--- script (+ done, ! failed here, . not reached) ---");
        for (i, s) in self.steps.iter().enumerate() {
            let mark = if Some(i) == self.failed_step {
                '!'
            } else if i < self.done_steps {
                '+'
            } else {
                '.'
            };
            let _ = writeln!(out, "  {mark} {s}");
        }
        let _ = writeln!(out, "--- what the server saw ---");
        for l in &self.transcript {
            let _ = writeln!(out, "    {l}");
        }
        out
    }
}

pub(crate) use crate::mock::Io;

struct Conn {
    io: Box<dyn Io>,
    buf: Vec<u8>,
    /// The RFC 9266 `tls-exporter` value, once TLS 1.3 is up.
    tls_exporter: Option<[u8; 32]>,
    responder: Option<Box<dyn Responder>>,
}

enum Line {
    Line(Vec<u8>),
    Eof,
}

impl Conn {
    /// The next CRLF-terminated line (without the CRLF).
    async fn read_line(&mut self) -> Result<Line, String> {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[..pos].to_vec();
                self.buf.drain(..pos + 2);
                return Ok(Line::Line(line));
            }
            if self.buf.len() > MAX_LINE {
                return Err(format!("client line longer than {MAX_LINE} bytes"));
            }
            match self.read_more().await? {
                0 if self.buf.is_empty() => return Ok(Line::Eof),
                0 => {
                    return Err(format!(
                        "client hung up in the middle of a line: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    ));
                }
                _ => {}
            }
        }
    }

    async fn read_more(&mut self) -> Result<usize, String> {
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout(IDLE, self.io.read(&mut chunk)).await {
            Err(_) => Err(format!("the client sent nothing for {IDLE:?}")),
            Ok(Err(e)) => Err(format!("read error: {e}")),
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
        }
    }

    /// Wait for the client to hang up. Returns the bytes it sent meanwhile, or `None` when it
    /// did not hang up within [`IDLE`].
    async fn until_eof(&mut self) -> Option<Vec<u8>> {
        let mut got = std::mem::take(&mut self.buf);
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match tokio::time::timeout(IDLE, self.io.read(&mut chunk)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
                Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// A scripted server listening on `127.0.0.1`, for one connection.
pub struct ScriptServer {
    addr: SocketAddr,
    task: JoinHandle<Report>,
}

impl ScriptServer {
    /// Serve `script` in plaintext (`T:` steps are not allowed without a TLS configuration).
    pub async fn start(script: &str) -> ScriptServer {
        ScriptServer::serve(Script::parse(script), None, None).await
    }

    /// Serve `script`, using `tls` for its `T:` steps (STARTTLS).
    pub async fn with_tls(script: &str, tls: Arc<ServerConfig>) -> ScriptServer {
        ScriptServer::serve(Script::parse(script), Some(tls), None).await
    }

    /// Implicit TLS: the handshake right after accept, then `script`.
    pub async fn implicit_tls(script: &str, tls: Arc<ServerConfig>) -> ScriptServer {
        ScriptServer::serve(Script::parse(script).after_implicit_tls(), Some(tls), None).await
    }

    /// Serve `script` with `responder` for its `H: respond` steps; `tls` for its `T:` steps, and
    /// with `implicit_tls` a handshake first.
    pub async fn with_responder(
        script: &str,
        tls: Option<Arc<ServerConfig>>,
        implicit_tls: bool,
        responder: Box<dyn Responder>,
    ) -> ScriptServer {
        let mut script = Script::parse(script);
        if implicit_tls {
            script = script.after_implicit_tls();
        }
        ScriptServer::serve(script, tls, Some(responder)).await
    }

    /// Serve an already parsed `script`: `tls` for its `T:` steps, `responder` for its
    /// `H: respond` steps.
    pub async fn serve(
        script: Script,
        tls: Option<Arc<ServerConfig>>,
        responder: Option<Box<dyn Responder>>,
    ) -> ScriptServer {
        ScriptServer::spawn_with(script.steps().to_vec(), tls, responder).await
    }

    async fn spawn_with(
        steps: Vec<Step>,
        tls: Option<Arc<ServerConfig>>,
        responder: Option<Box<dyn Responder>>,
    ) -> ScriptServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(serve(listener, steps, tls, responder));
        ScriptServer { addr, task }
    }

    /// The address to connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Wait for the server to finish and return what it saw, whatever happened.
    pub async fn report(self) -> Report {
        match self.task.await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("scripted server task: {e}"),
        }
    }

    /// Wait for the server to finish; panic with a readable account unless the script ran to
    /// its end with no mismatch.
    pub async fn finish(self) -> Report {
        let report = self.report().await;
        assert!(report.ok(), "{}", report.explain());
        report
    }
}

/// `io`, bounded by [`IDLE`]; a failure says what was being done (`what`).
pub(crate) async fn within_idle<T>(
    what: impl std::fmt::Display,
    io: impl Future<Output = std::io::Result<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(IDLE, io).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: nothing within {IDLE:?}")),
    }
}

/// Write all of `bytes` to `io` and flush it; a failure says which of the two failed.
pub(crate) async fn write_flushed(io: &mut dyn Io, bytes: &[u8]) -> Result<(), String> {
    io.write_all(bytes)
        .await
        .map_err(|e| format!("write failed: {e}"))?;
    io.flush().await.map_err(|e| format!("flush failed: {e}"))
}

fn shown(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn serve(
    listener: TcpListener,
    steps: Vec<Step>,
    tls: Option<Arc<ServerConfig>>,
    responder: Option<Box<dyn Responder>>,
) -> Report {
    let mut report = Report {
        steps: steps.iter().map(Step::to_string).collect(),
        ..Report::default()
    };
    let tcp = match within_idle("accept a client", listener.accept()).await {
        Ok((tcp, _)) => tcp,
        Err(e) => {
            report.failure = Some(e);
            return report;
        }
    };
    drop(listener);
    let mut conn = Conn {
        io: Box::new(tcp),
        buf: Vec::new(),
        tls_exporter: None,
        responder,
    };
    for (i, step) in steps.iter().enumerate() {
        match run_step(&mut conn, step, tls.as_ref(), &mut report).await {
            Ok(Flow::Continue) => report.done_steps = i + 1,
            Ok(Flow::Closed) => {
                report.done_steps = i + 1;
                if i + 1 < steps.len() {
                    report.failure = Some("script goes on after the connection ended".into());
                }
                return report;
            }
            Err(e) => {
                report.failed_step = Some(i);
                report.failure = Some(format!("step {} ({}): {e}", i + 1, step));
                return report;
            }
        }
    }
    // Script done: the client must hang up without sending anything more.
    match conn.until_eof().await {
        Some(extra) if extra.is_empty() => report.client_hung_up = true,
        Some(extra) => {
            report.transcript.push(format!("C: {}", shown(&extra)));
            report.failure = Some(format!(
                "the client sent bytes after the script ended: {:?}",
                shown(&extra)
            ));
        }
        None => {
            report.failure = Some(format!(
                "the client did not hang up within {IDLE:?} after the script ended \
                 (drop or quit() the client before finish())"
            ));
        }
    }
    report
}

enum Flow {
    Continue,
    Closed,
}

/// The client must hang up now (`when`, for the failure), without sending a byte more.
async fn hang_up(conn: &mut Conn, report: &mut Report, when: &str) -> Result<Flow, String> {
    match conn.until_eof().await {
        Some(extra) if extra.is_empty() => {
            report.client_hung_up = true;
            Ok(Flow::Closed)
        }
        Some(extra) => Err(format!(
            "{when} the client was to hang up; it sent {} more byte(s): {:?}",
            extra.len(),
            shown(&extra)
        )),
        None => Err(format!(
            "{when} the client was to hang up; it did not within {IDLE:?}"
        )),
    }
}

async fn run_step(
    conn: &mut Conn,
    step: &Step,
    tls: Option<&Arc<ServerConfig>>,
    report: &mut Report,
) -> Result<Flow, String> {
    match step {
        Step::Reply(lines) => {
            let bytes = step.reply_bytes();
            for l in lines {
                report.transcript.push(format!("S: {l}"));
            }
            // One write: several replies in one segment, as a pipelining server does.
            write_flushed(&mut *conn.io, &bytes).await?;
        }
        Step::Exact(_) | Step::Prefix(_) => {
            let line = match conn.read_line().await? {
                Line::Line(l) => l,
                Line::Eof => return Err("the client hung up".into()),
            };
            let text = shown(&line);
            report.transcript.push(format!("C: {text}"));
            if !step.matches(&line) {
                return Err(format!(
                    "mismatch\n    expected: {}\n    got:      C: {text}",
                    step
                ));
            }
        }
        Step::DataBody => {
            let mut body = Vec::new();
            loop {
                match conn.read_line().await? {
                    Line::Eof => return Err("the client hung up in the message body".into()),
                    Line::Line(l) if l == b"." => break,
                    Line::Line(l) => {
                        body.extend_from_slice(&l);
                        body.extend_from_slice(b"\r\n");
                    }
                }
            }
            report
                .transcript
                .push(format!("C: <message body, {} bytes>", body.len()));
            report.transcript.push("C: .".into());
            report.bodies.push(body);
        }
        Step::Tls | Step::TlsFail => {
            let config = tls.ok_or("a T: step needs a server started with a TLS configuration")?;
            if !conn.buf.is_empty() {
                return Err(format!(
                    "the client sent {:?} before the TLS handshake",
                    shown(&conn.buf)
                ));
            }
            let io = std::mem::replace(&mut conn.io, Box::new(tokio::io::empty()));
            let accept = TlsAcceptor::from(config.clone()).accept(io).into_fallible();
            let result = tokio::time::timeout(IDLE, accept)
                .await
                .map_err(|_| format!("TLS handshake did not finish within {IDLE:?}"))?;
            match (step, result) {
                (Step::Tls, Ok(tls)) => {
                    report.transcript.push("T: tls".into());
                    let session = tls.get_ref().1;
                    if session.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3) {
                        conn.tls_exporter = session
                            .export_keying_material(
                                [0u8; 32],
                                b"EXPORTER-Channel-Binding",
                                Some(&[]),
                            )
                            .ok();
                    }
                    conn.io = Box::new(tls);
                }
                (Step::Tls, Err((e, _))) => return Err(format!("TLS handshake failed: {e}")),
                (_, Ok(_)) => {
                    return Err(
                        "the client completed a TLS handshake it should have refused".into(),
                    );
                }
                (_, Err((e, io))) => {
                    report.transcript.push(format!("T: tls-fail ({e})"));
                    conn.io = io;
                    return hang_up(conn, report, "after refusing the certificate").await;
                }
            }
        }
        // The server says nothing now: the script's next step decides what comes.
        Step::Idle => {}
        Step::Stall => {
            report.transcript.push("X: stall".into());
            match conn.until_eof().await {
                Some(extra) => {
                    report.client_hung_up = true;
                    report.sent_during_stall = extra;
                    return Ok(Flow::Closed);
                }
                None => {
                    return Err(format!(
                        "the client neither timed out nor hung up within {IDLE:?}"
                    ));
                }
            }
        }
        Step::Eof => {
            report.transcript.push("X: eof".into());
            return hang_up(conn, report, "at X: eof").await;
        }
        Step::Respond => {
            let mut responder = conn
                .responder
                .take()
                .ok_or("an H: step needs a server started with a responder")?;
            loop {
                let line = match conn.read_line().await? {
                    Line::Line(l) => l,
                    Line::Eof => return Err("the client hung up".into()),
                };
                report.transcript.push(format!("C: {}", shown(&line)));
                let (lines, done) = match responder.line(&line, conn.tls_exporter) {
                    Answer::Continue(lines) => (lines, false),
                    Answer::Done(lines) => (lines, true),
                    Answer::Fail(why) => return Err(format!("responder: {why}")),
                };
                let mut bytes = Vec::new();
                for l in lines {
                    bytes.extend_from_slice(l.as_bytes());
                    bytes.extend_from_slice(b"\r\n");
                    report.transcript.push(format!("S: {l}"));
                }
                conn.io
                    .write_all(&bytes)
                    .await
                    .map_err(|e| format!("write failed: {e}"))?;
                if done {
                    conn.responder = Some(responder);
                    break;
                }
            }
        }
        Step::Close => {
            report.transcript.push("X: close".into());
            let _ = conn.io.shutdown().await;
            return Ok(Flow::Closed);
        }
    }
    Ok(Flow::Continue)
}
