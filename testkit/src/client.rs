//! The client's side of a [`Script`], over TCP: for checking a server (the capture server of
//! `smtp-send`, the bench's sink) with the same S:/C: scripts the scripted server runs.
//!
//! Seen from the client, the steps mean:
//!
//! | step | what the client does |
//! | --- | --- |
//! | `C: line` | queue `line` + CRLF; queued lines go out in one write when the script next reads (a pipelined flight) |
//! | `S: line` | read one line and check it: exact, or with a trailing `*` its start only |
//! | `T: tls` | write what is queued, then a TLS handshake as a client ([`ScriptClient::with_tls`]) |
//! | `X: eof` | the server must close the connection now |
//! | `X: close` | close the connection now |
//!
//! `C: DATA-BODY`, `C: prefix*`, `T: tls-fail`, `X: stall` and `H: respond` have no client
//! meaning and fail the run. At the end of the script the client closes the connection.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::script::{Script, Step};
use crate::server::{IDLE, Io, within_idle, write_flushed};

/// What a client run saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exchange {
    /// Every line exchanged, in order (`C: ...`, `S: ...`, `T: tls`, `X: ...`).
    pub transcript: Vec<String>,
    /// What went wrong, if anything.
    pub failure: Option<String>,
}

impl Exchange {
    /// Whether the script ran to its end with no mismatch.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    /// A readable account, for assertion messages.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        if let Some(f) = &self.failure {
            let _ = writeln!(out, "script client: {f}");
        }
        for l in &self.transcript {
            let _ = writeln!(out, "    {l}");
        }
        out
    }
}

/// Runs a script from the client's side against a server.
pub struct ScriptClient {
    script: Script,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

impl std::fmt::Debug for ScriptClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptClient")
            .field("script", &self.script)
            .finish_non_exhaustive()
    }
}

impl ScriptClient {
    /// A client for `script` (parsed; panics on a bad line).
    pub fn new(script: &str) -> ScriptClient {
        ScriptClient {
            script: Script::parse(script),
            tls: None,
        }
    }

    /// Use `config` and `name` for the script's `T: tls` steps.
    pub fn with_tls(mut self, config: Arc<ClientConfig>, name: &str) -> ScriptClient {
        let name = ServerName::try_from(name.to_owned()).expect("a valid server name");
        self.tls = Some((config, name));
        self
    }

    /// Connect to `addr` and run the script; every wait is bounded by [`IDLE`].
    pub async fn run(&self, addr: SocketAddr) -> Exchange {
        let mut exchange = Exchange::default();
        let tcp =
            match within_idle(format_args!("connect to {addr}"), TcpStream::connect(addr)).await {
                Ok(tcp) => tcp,
                Err(e) => {
                    exchange.failure = Some(e);
                    return exchange;
                }
            };
        let mut conn = Conn {
            io: Box::new(tcp),
            buf: Vec::new(),
            queued: Vec::new(),
        };
        for (i, step) in self.script.steps().iter().enumerate() {
            match self.step(&mut conn, step, &mut exchange).await {
                Ok(true) => {}
                Ok(false) => return exchange,
                Err(e) => {
                    exchange.failure = Some(format!("step {} ({step}): {e}", i + 1));
                    return exchange;
                }
            }
        }
        if let Err(e) = conn.flush().await {
            exchange.failure = Some(e);
        }
        let _ = conn.io.shutdown().await;
        exchange
    }

    /// Run one step; `Ok(false)` when the connection is over.
    async fn step(&self, conn: &mut Conn, step: &Step, ex: &mut Exchange) -> Result<bool, String> {
        match step {
            Step::Exact(line) => {
                ex.transcript.push(format!("C: {line}"));
                conn.queued.extend_from_slice(line.as_bytes());
                conn.queued.extend_from_slice(b"\r\n");
            }
            Step::Reply(lines) => {
                conn.flush().await?;
                for want in lines {
                    let got = conn.read_line().await?.ok_or_else(|| {
                        format!("the server closed the connection; expected S: {want}")
                    })?;
                    let got = String::from_utf8_lossy(&got).into_owned();
                    ex.transcript.push(format!("S: {got}"));
                    let matched = match want.strip_suffix('*') {
                        Some(prefix) => got.starts_with(prefix),
                        None => got == *want,
                    };
                    if !matched {
                        return Err(format!(
                            "mismatch\n    expected: S: {want}\n    got:      S: {got}"
                        ));
                    }
                }
            }
            Step::Tls => {
                conn.flush().await?;
                let (config, name) = self
                    .tls
                    .as_ref()
                    .ok_or("a T: step needs a client made with_tls")?;
                if !conn.buf.is_empty() {
                    return Err(format!(
                        "the server sent {:?} before the TLS handshake",
                        String::from_utf8_lossy(&conn.buf)
                    ));
                }
                let io = std::mem::replace(&mut conn.io, Box::new(tokio::io::empty()));
                let connect = TlsConnector::from(config.clone()).connect(name.clone(), io);
                let tls = tokio::time::timeout(IDLE, connect)
                    .await
                    .map_err(|_| format!("TLS handshake did not finish within {IDLE:?}"))?
                    .map_err(|e| format!("TLS handshake failed: {e}"))?;
                conn.io = Box::new(tls);
                ex.transcript.push("T: tls".into());
            }
            Step::Eof => {
                conn.flush().await?;
                ex.transcript.push("X: eof".into());
                return match conn.read_line().await? {
                    None => Ok(false),
                    Some(line) => Err(format!(
                        "expected the server to close, it sent {:?}",
                        String::from_utf8_lossy(&line)
                    )),
                };
            }
            Step::Close => {
                conn.flush().await?;
                ex.transcript.push("X: close".into());
                let _ = conn.io.shutdown().await;
                return Ok(false);
            }
            // The server says nothing now: nothing to read, the next step goes on.
            Step::Idle => {}
            Step::Prefix(_) | Step::DataBody | Step::TlsFail | Step::Stall | Step::Respond => {
                return Err("this step has no meaning for a client".into());
            }
        }
        Ok(true)
    }
}

struct Conn {
    io: Box<dyn Io>,
    buf: Vec<u8>,
    queued: Vec<u8>,
}

impl Conn {
    /// Write the queued client lines in one write.
    async fn flush(&mut self) -> Result<(), String> {
        if self.queued.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.queued);
        write_flushed(&mut *self.io, &bytes).await
    }

    /// The next line from the server without its CRLF, or `None` at a clean end of stream.
    async fn read_line(&mut self) -> Result<Option<Vec<u8>>, String> {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[..pos].to_vec();
                self.buf.drain(..pos + 2);
                return Ok(Some(line));
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = match tokio::time::timeout(IDLE, self.io.read(&mut chunk)).await {
                Err(_) => return Err(format!("the server sent nothing for {IDLE:?}")),
                Ok(Err(e)) => return Err(format!("read error: {e}")),
                Ok(Ok(n)) => n,
            };
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(format!(
                        "the server closed in the middle of a line: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    ))
                };
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
