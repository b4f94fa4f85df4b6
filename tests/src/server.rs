//! An in-process scripted SMTP server on `127.0.0.1:0`, for one connection.
//!
//! The script reads like a session transcript:
//!
//! ```text
//! S: 220 mx.test ESMTP          a reply line; consecutive S: lines go out in ONE write
//! C: EHLO client.test           the next line the client must send (exact, without CRLF)
//! C: AUTH PLAIN *               a trailing `*` matches any rest of the line
//! C:                            an empty line
//! C: DATA-BODY                  a dot-terminated message body (recorded as sent on the wire,
//!                               still dot-stuffed, without the final ".\r\n")
//! T: tls                        the server side of a TLS handshake (implicit TLS: put it first)
//! T: tls-fail                   a TLS handshake the client must abort (bad certificate); then
//!                               the client must hang up without sending a single byte more
//! X: stall                      stop answering, keep the socket open until the client hangs up
//! X: eof                        the client must hang up now, without sending anything
//! X: close                      close the socket now
//! H: respond                    hand the next client lines to the server's [`Responder`] (e.g.
//!                               a SCRAM server, whose lines depend on the client's nonce)
//! # comment                     ignored, as are blank lines
//! ```
//!
//! When the script is done the server waits for the client to hang up: anything the client sends
//! then is a mismatch. So a test drops (or `quit()`s) its client before [`ScriptServer::finish`].
//! Every wait of the server is bounded ([`IDLE`]), so no test can hang on it.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// The longest the server waits for anything from the client.
pub const IDLE: Duration = Duration::from_secs(5);

/// The longest client line accepted.
const MAX_LINE: usize = 256 * 1024;

#[derive(Debug, Clone)]
enum Step {
    Reply(Vec<String>),
    Exact(String),
    Prefix(String),
    DataBody,
    Tls,
    TlsFail,
    Stall,
    Eof,
    Close,
    Respond,
}

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

impl Step {
    fn describe(&self) -> String {
        match self {
            Step::Reply(lines) => lines
                .iter()
                .map(|l| format!("S: {l}"))
                .collect::<Vec<_>>()
                .join("\n      "),
            Step::Exact(l) => format!("C: {l}"),
            Step::Prefix(p) => format!("C: {p}*"),
            Step::DataBody => "C: DATA-BODY".into(),
            Step::Tls => "T: tls".into(),
            Step::TlsFail => "T: tls-fail".into(),
            Step::Stall => "X: stall".into(),
            Step::Eof => "X: eof".into(),
            Step::Close => "X: close".into(),
            Step::Respond => "H: respond".into(),
        }
    }
}

fn parse(script: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for raw in script.lines() {
        let line = raw.trim_start();
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (tag, rest) = line.split_at(2.min(line.len()));
        // One optional space after the tag; everything else (trailing spaces too) is content.
        let text = rest.strip_prefix(' ').unwrap_or(rest);
        match tag {
            "S:" => match steps.last_mut() {
                Some(Step::Reply(lines)) => lines.push(text.to_owned()),
                _ => steps.push(Step::Reply(vec![text.to_owned()])),
            },
            "C:" if text == "DATA-BODY" => steps.push(Step::DataBody),
            "C:" => match text.strip_suffix('*') {
                Some(prefix) => steps.push(Step::Prefix(prefix.to_owned())),
                None => steps.push(Step::Exact(text.to_owned())),
            },
            "T:" if text.trim() == "tls" => steps.push(Step::Tls),
            "T:" if text.trim() == "tls-fail" => steps.push(Step::TlsFail),
            "X:" if text.trim() == "stall" => steps.push(Step::Stall),
            "X:" if text.trim() == "eof" => steps.push(Step::Eof),
            "X:" if text.trim() == "close" => steps.push(Step::Close),
            "H:" if text.trim() == "respond" => steps.push(Step::Respond),
            _ => panic!("bad script line {raw:?}"),
        }
    }
    steps
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

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

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
        ScriptServer::spawn(parse(script), None).await
    }

    /// Serve `script`, using `tls` for its `T:` steps (STARTTLS).
    pub async fn with_tls(script: &str, tls: Arc<ServerConfig>) -> ScriptServer {
        ScriptServer::spawn(parse(script), Some(tls)).await
    }

    /// Implicit TLS: the handshake right after accept, then `script`.
    pub async fn implicit_tls(script: &str, tls: Arc<ServerConfig>) -> ScriptServer {
        let mut steps = vec![Step::Tls];
        steps.extend(parse(script));
        ScriptServer::spawn(steps, Some(tls)).await
    }

    /// Serve `script` with `responder` for its `H: respond` steps; `tls` for its `T:` steps, and
    /// with `implicit_tls` a handshake first.
    pub async fn with_responder(
        script: &str,
        tls: Option<Arc<ServerConfig>>,
        implicit_tls: bool,
        responder: Box<dyn Responder>,
    ) -> ScriptServer {
        let mut steps = if implicit_tls {
            vec![Step::Tls]
        } else {
            vec![]
        };
        steps.extend(parse(script));
        ScriptServer::spawn_with(steps, tls, Some(responder)).await
    }

    async fn spawn(steps: Vec<Step>, tls: Option<Arc<ServerConfig>>) -> ScriptServer {
        ScriptServer::spawn_with(steps, tls, None).await
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
        steps: steps.iter().map(Step::describe).collect(),
        ..Report::default()
    };
    let tcp = match tokio::time::timeout(IDLE, listener.accept()).await {
        Ok(Ok((tcp, _))) => tcp,
        Ok(Err(e)) => {
            report.failure = Some(format!("accept failed: {e}"));
            return report;
        }
        Err(_) => {
            report.failure = Some(format!("no client connected within {IDLE:?}"));
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
                report.failure = Some(format!("step {} ({}): {e}", i + 1, step.describe()));
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

async fn run_step(
    conn: &mut Conn,
    step: &Step,
    tls: Option<&Arc<ServerConfig>>,
    report: &mut Report,
) -> Result<Flow, String> {
    match step {
        Step::Reply(lines) => {
            let mut bytes = Vec::new();
            for l in lines {
                bytes.extend_from_slice(l.as_bytes());
                bytes.extend_from_slice(b"\r\n");
                report.transcript.push(format!("S: {l}"));
            }
            // One write: several replies in one segment, as a pipelining server does.
            conn.io
                .write_all(&bytes)
                .await
                .map_err(|e| format!("write failed: {e}"))?;
            conn.io
                .flush()
                .await
                .map_err(|e| format!("flush failed: {e}"))?;
        }
        Step::Exact(_) | Step::Prefix(_) => {
            let line = match conn.read_line().await? {
                Line::Line(l) => l,
                Line::Eof => return Err("the client hung up".into()),
            };
            let text = shown(&line);
            report.transcript.push(format!("C: {text}"));
            let matched = match step {
                Step::Exact(want) => line == want.as_bytes(),
                Step::Prefix(p) => line.starts_with(p.as_bytes()),
                _ => unreachable!(),
            };
            if !matched {
                return Err(format!(
                    "mismatch\n    expected: {}\n    got:      C: {text}",
                    step.describe()
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
            let io = std::mem::replace(&mut conn.io, Box::new(placeholder::Empty));
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
                    return match conn.until_eof().await {
                        Some(extra) if extra.is_empty() => {
                            report.client_hung_up = true;
                            Ok(Flow::Closed)
                        }
                        Some(extra) => Err(format!(
                            "after refusing the certificate the client sent {} more byte(s): {:?}",
                            extra.len(),
                            shown(&extra)
                        )),
                        None => Err(format!(
                            "the client did not hang up within {IDLE:?} after refusing the certificate"
                        )),
                    };
                }
            }
        }
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
            return match conn.until_eof().await {
                Some(extra) if extra.is_empty() => {
                    report.client_hung_up = true;
                    Ok(Flow::Closed)
                }
                Some(extra) => Err(format!(
                    "expected the client to hang up, it sent {:?}",
                    shown(&extra)
                )),
                None => Err(format!("the client did not hang up within {IDLE:?}")),
            };
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

/// A no-op placeholder stream, used only while the real one is inside the TLS acceptor.
mod placeholder {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    pub struct Empty;

    impl AsyncRead for Empty {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            _buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Empty {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            _buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Err(io::ErrorKind::NotConnected.into()))
        }
        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }
}
