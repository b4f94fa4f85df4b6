//! A minimal SMTP sink that offers PIPELINING and CHUNKING (Postfix's smtp-sink has no BDAT).
//!
//! It discards every message. Like a real server it answers a pipelined group of commands with
//! one write: all complete commands in the input are processed, then the replies go out together.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::task::spawn_local(async move {
            let _ = session(stream).await;
        });
    }
}

async fn session(mut stream: TcpStream) -> std::io::Result<()> {
    stream
        .write_all(b"220 bench.test ESMTP bench sink\r\n")
        .await?;
    let mut input: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    let mut state = State::Command;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        input.extend_from_slice(&buf[..n]);
        let mut pos = 0;
        let mut quit = false;
        loop {
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
                        "EHLO" => out.extend_from_slice(
                            b"250-bench.test\r\n250-PIPELINING\r\n250-CHUNKING\r\n\
                              250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE 0\r\n",
                        ),
                        "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => {
                            out.extend_from_slice(b"250 2.0.0 Ok\r\n")
                        }
                        "DATA" => {
                            out.extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
                            state = State::Data {
                                at_line_start: true,
                            };
                        }
                        "BDAT" => {
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
                            quit = true;
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
                    out.extend_from_slice(if *last {
                        b"250 2.0.0 Ok: queued\r\n"
                    } else {
                        b"250 2.0.0 Ok: chunk received\r\n"
                    });
                    state = State::Command;
                }
            }
        }
        input.drain(..pos);
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if quit {
            return Ok(());
        }
    }
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
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            super::session(stream).await
        });
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
        let exchange = ScriptClient::new(script).run(addr).await;
        assert!(exchange.ok(), "{}", exchange.explain());
        server.await.unwrap().unwrap();
    }
}
