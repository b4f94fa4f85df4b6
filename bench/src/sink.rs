//! A minimal SMTP sink that offers PIPELINING and CHUNKING (Postfix's smtp-sink has no BDAT),
//! optionally STARTTLS, optionally without CHUNKING, optionally closing a connection after N
//! messages.
//!
//! It discards every message. Like a real server it answers a pipelined group of commands with
//! one write: all complete commands in the input are processed, then the replies go out together.
//! `XSTATS` (a bench extension) answers what the sink saw so far: connections, TLS handshakes
//! (full and resumed), messages, connections it closed at the cap.

use std::cell::Cell;
use std::rc::Rc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// How the sink behaves.
#[derive(Clone, Default)]
pub struct Options {
    /// Offer CHUNKING (BDAT).
    pub chunking: bool,
    /// Offer STARTTLS with this server configuration.
    pub tls: Option<TlsAcceptor>,
    /// After this many messages on one connection, answer the last one, then `421` and close
    /// (as servers with a per-connection message cap do).
    pub close_after: Option<u64>,
    /// The SIZE limit it advertises (0: none).
    pub size_limit: u64,
}

/// What the sink saw (one process, one thread).
#[derive(Default)]
pub struct Stats {
    accepted: Cell<u64>,
    full_handshakes: Cell<u64>,
    resumed_handshakes: Cell<u64>,
    messages: Cell<u64>,
    capped: Cell<u64>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

impl Stats {
    fn line(&self) -> String {
        format!(
            "250 accepted={} full={} resumed={} messages={} capped={}\r\n",
            self.accepted.get(),
            self.full_handshakes.get(),
            self.resumed_handshakes.get(),
            self.messages.get(),
            self.capped.get()
        )
    }
}

enum State {
    Command,
    /// Inside DATA; `at_line_start`: the previous byte consumed was the end of a line.
    Data {
        at_line_start: bool,
    },
    /// Inside a BDAT chunk with this many bytes still to come.
    Bdat {
        left: u64,
        last: bool,
    },
}

/// How a dialogue ended.
enum End {
    Closed,
    StartTls,
}

pub async fn serve(listener: TcpListener, options: Options) -> std::io::Result<()> {
    let options = Rc::new(options);
    let stats = Rc::new(Stats::default());
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        bump(&stats.accepted);
        let (options, stats) = (options.clone(), stats.clone());
        tokio::task::spawn_local(async move {
            let _ = session(stream, &options, &stats).await;
        });
    }
}

async fn session(mut stream: TcpStream, options: &Options, stats: &Stats) -> std::io::Result<()> {
    stream
        .write_all(b"220 bench.test ESMTP bench sink\r\n")
        .await?;
    let starttls = options.tls.is_some();
    if let End::StartTls = dialogue(&mut stream, options, stats, starttls).await?
        && let Some(acceptor) = &options.tls
    {
        let mut tls = acceptor.accept(stream).await?;
        match tls.get_ref().1.handshake_kind() {
            Some(rustls::HandshakeKind::Resumed) => bump(&stats.resumed_handshakes),
            _ => bump(&stats.full_handshakes),
        }
        dialogue(&mut tls, options, stats, false).await?;
    }
    Ok(())
}

/// One SMTP dialogue on `stream` (before STARTTLS, or all of it after).
async fn dialogue<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    options: &Options,
    stats: &Stats,
    offer_starttls: bool,
) -> std::io::Result<End> {
    let mut input: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    let mut state = State::Command;
    let mut buf = vec![0u8; 256 * 1024];
    let mut messages = 0u64;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(End::Closed);
        }
        input.extend_from_slice(&buf[..n]);
        let mut pos = 0;
        let mut end = None;
        let mut queued = false;
        loop {
            if queued {
                queued = false;
                bump(&stats.messages);
                messages += 1;
                if options.close_after.is_some_and(|cap| messages >= cap) {
                    bump(&stats.capped);
                    out.extend_from_slice(
                        b"421 4.7.0 bench.test closing: message cap of this connection\r\n",
                    );
                    end = Some(End::Closed);
                    break;
                }
            }
            match &mut state {
                State::Command => {
                    let Some(eol) = memchr::memchr(b'\n', &input[pos..]) else {
                        break;
                    };
                    let line = &input[pos..pos + eol + 1];
                    pos += eol + 1;
                    let text = String::from_utf8_lossy(line);
                    let text = text.trim_end();
                    let verb = text
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_ascii_uppercase();
                    match verb.as_str() {
                        "EHLO" => {
                            out.extend_from_slice(b"250-bench.test\r\n250-PIPELINING\r\n");
                            if options.chunking {
                                out.extend_from_slice(b"250-CHUNKING\r\n");
                            }
                            if offer_starttls {
                                out.extend_from_slice(b"250-STARTTLS\r\n");
                            }
                            out.extend_from_slice(b"250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n");
                            out.extend_from_slice(
                                format!("250 SIZE {}\r\n", options.size_limit).as_bytes(),
                            );
                        }
                        "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => {
                            out.extend_from_slice(b"250 2.0.0 Ok\r\n")
                        }
                        "XSTATS" => out.extend_from_slice(stats.line().as_bytes()),
                        "STARTTLS" if offer_starttls => {
                            // Anything pipelined after STARTTLS is discarded (RFC 3207).
                            out.extend_from_slice(b"220 2.0.0 Ready to start TLS\r\n");
                            end = Some(End::StartTls);
                            break;
                        }
                        "DATA" => {
                            out.extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
                            state = State::Data {
                                at_line_start: true,
                            };
                        }
                        "BDAT" if options.chunking => {
                            let mut args = text.split_whitespace().skip(1);
                            match args.next().and_then(|s| s.parse::<u64>().ok()) {
                                Some(left) => {
                                    let last =
                                        args.next().is_some_and(|a| a.eq_ignore_ascii_case("LAST"));
                                    state = State::Bdat { left, last };
                                }
                                None => out.extend_from_slice(b"501 5.5.4 Syntax: BDAT n\r\n"),
                            }
                        }
                        "QUIT" => {
                            out.extend_from_slice(b"221 2.0.0 Bye\r\n");
                            end = Some(End::Closed);
                            break;
                        }
                        _ => out.extend_from_slice(b"502 5.5.2 Unknown command\r\n"),
                    }
                }
                State::Data { at_line_start } => {
                    // Find the line that is exactly ".\r\n".
                    let rest = &input[pos..];
                    if *at_line_start {
                        if rest.len() < 3 && b".\r\n".starts_with(rest) {
                            break; // could be the end marker: wait for more
                        }
                        if rest.starts_with(b".\r\n") {
                            pos += 3;
                            out.extend_from_slice(b"250 2.0.0 Ok: queued\r\n");
                            state = State::Command;
                            queued = true;
                            continue;
                        }
                    }
                    match memchr::memchr(b'\n', rest) {
                        Some(eol) => {
                            pos += eol + 1;
                            *at_line_start = true;
                        }
                        None => {
                            pos = input.len();
                            *at_line_start = false;
                            break;
                        }
                    }
                }
                State::Bdat { left, last } => {
                    let take = (*left).min((input.len() - pos) as u64);
                    pos += take as usize;
                    *left -= take;
                    if *left > 0 {
                        break;
                    }
                    if *last {
                        out.extend_from_slice(b"250 2.0.0 Ok: queued\r\n");
                        queued = true;
                    } else {
                        out.extend_from_slice(b"250 2.0.0 Ok: chunk received\r\n");
                    }
                    state = State::Command;
                }
            }
        }
        input.drain(..pos);
        if !out.is_empty() {
            stream.write_all(&out).await?;
            stream.flush().await?;
            out.clear();
        }
        if let Some(end) = end {
            if let End::Closed = end {
                let _ = stream.shutdown().await;
            }
            return Ok(end);
        }
    }
}

/// A STARTTLS configuration for the sink: a throw-away CA (its PEM written to `ca_out` for the
/// clients to trust) and a `localhost` / `127.0.0.1` certificate it signs. Resumption works both
/// ways rustls offers: the default session cache (TLS 1.2 session IDs, TLS 1.3 stateful tickets)
/// and, set here, a ticketer for stateless TLS 1.3 tickets (what rustls sends when one is set).
pub fn tls_acceptor(ca_out: &std::path::Path) -> std::io::Result<TlsAcceptor> {
    let ca = smtp_testkit::certs::TestCa::new("smtp-bench throw-away CA")?;
    let leaf = ca.issue(&["localhost", "127.0.0.1"])?;
    std::fs::write(ca_out, ca.pem())?;
    let mut config = rustls::ServerConfig::clone(&*leaf.server_config()?);
    config.ticketer = rustls::crypto::ring::Ticketer::new().map_err(std::io::Error::other)?;
    Ok(TlsAcceptor::from(std::sync::Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use smtp_testkit::ScriptClient;

    /// A pipelined DATA transaction and a BDAT one (two chunks), in the script format of the
    /// workspace tests: the sink must answer every command, in order.
    #[tokio::test]
    async fn pipelined_data_and_bdat_transactions() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let options = super::Options {
            chunking: true,
            ..Default::default()
        };
        let stats = super::Stats::default();
        let server = async {
            let (stream, _) = listener.accept().await.unwrap();
            super::session(stream, &options, &stats).await
        };
        let script = "
            S: 220 bench.test ESMTP bench sink
            C: EHLO client.test
            C: MAIL FROM:<a@bench.test>
            C: RCPT TO:<b@bench.test>
            C: DATA
            S: 250-bench.test
            S: 250-PIPELINING
            S: 250-CHUNKING
            S: 250-8BITMIME
            S: 250-ENHANCEDSTATUSCODES
            S: 250 SIZE 0
            S: 250 2.0.0 Ok
            S: 250 2.0.0 Ok
            S: 354 *
            C: line
            C: ..dot
            C: .
            C: MAIL FROM:<a@bench.test>
            C: RCPT TO:<b@bench.test>
            C: BDAT 7
            C: hello
            C: BDAT 5 LAST
            C: ...
            S: 250 2.0.0 Ok: queued
            S: 250 2.0.0 Ok
            S: 250 2.0.0 Ok
            S: 250 2.0.0 Ok: chunk received
            S: 250 2.0.0 Ok: queued
            C: NOOP
            C: QUIT
            S: 250 2.0.0 Ok
            S: 221 2.0.0 Bye
            X: eof
        ";
        let client = ScriptClient::new(script);
        let (exchange, served) = tokio::join!(client.run(addr), server);
        assert!(exchange.ok(), "{}", exchange.explain());
        served.unwrap();
    }

    /// STARTTLS, a cap of 2 messages per connection, resumed handshakes on reconnects: the pool
    /// sends 5 messages (3 connections, the first a full handshake) and the sink's `XSTATS`
    /// agrees with the pool's own counters.
    #[test]
    fn starttls_cap_and_resumption() {
        let dir = std::env::temp_dir().join(format!("smtp-bench-sink-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        let options = super::Options {
            chunking: false,
            tls: Some(super::tls_acceptor(&ca).unwrap()),
            close_after: Some(2),
            size_limit: 0,
        };
        let pem = std::fs::read(&ca).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        let (stats, line) = local.block_on(&rt, async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            tokio::task::spawn_local(super::serve(listener, options));
            let tls = smtp_io_tokio::TlsConfig::from_ca_pem(&pem).unwrap();
            let mailer = smtp_io_tokio::Mailer::builder(
                "localhost",
                port,
                smtp_io_tokio::TlsMode::StartTls,
                "c.test",
            )
            .tls_config(tls)
            .max_connections(1)
            .build()
            .unwrap();
            for _ in 0..5 {
                mailer
                    .send(
                        "a@bench.test",
                        &["b@bench.test"],
                        b"Subject: x\r\n\r\n.dot\r\n",
                    )
                    .await
                    .unwrap();
            }
            mailer.shutdown().await;
            let line = crate::pool_child::sink_stats(port).await.unwrap();
            (mailer.stats(), line)
        });
        assert_eq!(stats.opened, 3, "{stats:?}");
        assert_eq!(
            (stats.full_handshakes, stats.resumed_handshakes),
            (1, 2),
            "{stats:?}"
        );
        assert_eq!(line["full"], 1.0, "{line:?}");
        assert_eq!(line["resumed"], 2.0, "{line:?}");
        assert_eq!(line["messages"], 5.0, "{line:?}");
        assert_eq!(line["capped"], 2.0, "{line:?}");
    }
}
