//! Streamed bodies through the pool ([`Mailer::send_stream`], [`Mailer::send_file`]): the body
//! is opened once per attempt, so a retry after a connection lost in the middle of the body
//! sends the whole message again; an `open` that fails sends nothing and opens no connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use smtp_io_tokio::{Blame, Mailer, ReaderBody, SendError, SmtpError, SmtpOp, TlsMode};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What the server saw.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    /// The bodies of the messages it accepted, as received (dot-stuffed, CRLF).
    delivered: Mutex<Vec<Vec<u8>>>,
}

/// Serve one connection; when `hang_up_in_body` is set, hang up after the third line of the
/// body, without reading the rest.
async fn serve(tcp: TcpStream, seen: Arc<Seen>, hang_up_in_body: bool) {
    let mut io = BufReader::new(tcp);
    io.get_mut()
        .write_all(b"220 stream.test\r\n")
        .await
        .unwrap();
    let mut line = Vec::new();
    loop {
        line.clear();
        if io.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let reply: &[u8] = match line.get(..4).map(|w| w.to_ascii_uppercase()).as_deref() {
            Some(b"EHLO") => b"250-stream.test\r\n250-PIPELINING\r\n250 SIZE 100000000\r\n",
            Some(b"MAIL") | Some(b"RCPT") => b"250 ok\r\n",
            Some(b"DATA") => {
                io.get_mut().write_all(b"354 go\r\n").await.unwrap();
                let mut body = Vec::new();
                loop {
                    line.clear();
                    if io.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if line == b".\r\n" {
                        break;
                    }
                    body.extend_from_slice(&line);
                    if hang_up_in_body && body.iter().filter(|&&b| b == b'\n').count() == 3 {
                        return;
                    }
                }
                seen.delivered.lock().unwrap().push(body);
                b"250 queued\r\n"
            }
            Some(b"QUIT") => {
                let _ = io.get_mut().write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"500 what\r\n",
        };
        io.get_mut().write_all(reply).await.unwrap();
    }
}

/// A server whose first connection hangs up inside the body when `hang_up_once` is set.
async fn server(hang_up_once: bool) -> (u16, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let accepting = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let first = accepting.connections.fetch_add(1, Ordering::SeqCst) == 0;
            tokio::spawn(serve(tcp, accepting.clone(), hang_up_once && first));
        }
    });
    (port, seen)
}

fn mailer(port: u16) -> Mailer {
    Mailer::builder("127.0.0.1", port, TlsMode::None, "client.test")
        .max_connections(1)
        .build()
        .unwrap()
}

/// A message file of `lines` lines of ~40 bytes (LF line ends, every 50th line starting with a
/// dot).
fn message_file(name: &str, lines: usize) -> (std::path::PathBuf, Vec<u8>) {
    let mut text = b"Subject: streamed\n\n".to_vec();
    for i in 0..lines {
        if i % 50 == 0 {
            text.extend_from_slice(b".a line that starts with a dot\n");
        }
        text.extend_from_slice(format!("line {i:06} of a long streamed message\n").as_bytes());
    }
    let path = std::env::temp_dir().join(format!("{name}-{}.eml", std::process::id()));
    std::fs::write(&path, &text).unwrap();
    (path, text)
}

/// The body as it must arrive: CRLF line ends, lines starting with a dot doubled.
fn on_the_wire(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in text.split_inclusive(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[tokio::test]
async fn a_file_is_sent_streamed_and_whole() {
    let (port, seen) = server(false).await;
    let (path, text) = message_file("pool-file", 5_000);
    let mailer = mailer(port);
    // The future can go to another task: `send_file` is `Send`.
    let sent = tokio::spawn({
        let (mailer, path) = (mailer.clone(), path.clone());
        async move {
            mailer
                .send_file("a@test.example", &["b@test.example"], &path)
                .await
        }
    })
    .await
    .unwrap();
    assert!(sent.is_ok(), "{sent:?}");
    mailer.shutdown().await;
    assert_eq!(*seen.delivered.lock().unwrap(), vec![on_the_wire(&text)]);
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn a_retry_after_a_hang_up_in_the_body_sends_the_body_again_from_its_start() {
    let (port, seen) = server(true).await;
    // 16 MiB: more than the socket buffers on both sides can hold, so the hang-up is seen
    // before the client could write the end of data (else the message would be unknown, and
    // rightly not retried).
    let (path, text) = message_file("pool-retry", 400_000);
    let mailer = mailer(port);
    let opened = AtomicUsize::new(0);
    let sent = mailer
        .send_stream("a@test.example", &["b@test.example"], || {
            opened.fetch_add(1, Ordering::SeqCst);
            ReaderBody::open(&path)
        })
        .await;
    assert!(sent.is_ok(), "{sent:?}");
    assert_eq!(opened.load(Ordering::SeqCst), 2, "opened once per attempt");
    let stats = mailer.stats();
    assert_eq!((stats.opened, stats.retries), (2, 1), "{stats:?}");
    mailer.shutdown().await;
    // Only the second attempt was delivered, and whole.
    assert_eq!(*seen.delivered.lock().unwrap(), vec![on_the_wire(&text)]);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn a_body_that_cannot_be_opened_sends_nothing() {
    let (port, seen) = server(false).await;
    let mailer = mailer(port);
    let missing = std::env::temp_dir().join("no-such-message-file.eml");
    let err = mailer
        .send_file("a@test.example", &["b@test.example"], &missing)
        .await
        .unwrap_err();
    match &err {
        SendError::NotSent {
            error:
                error @ SmtpError::Io {
                    during: SmtpOp::ReadBody,
                    ..
                },
            attempts: 0,
        } => assert_eq!(error.blame(), Blame::Io),
        other => panic!("{other:?}"),
    }
    mailer.shutdown().await;
    assert_eq!(seen.connections.load(Ordering::SeqCst), 0);
    assert_eq!(mailer.stats().opened, 0);
}
