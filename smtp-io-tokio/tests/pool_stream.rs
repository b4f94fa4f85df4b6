//! Streamed bodies through the pool ([`Mailer::send_stream`], [`Mailer::send_file`]): the body
//! is opened once per attempt, so a retry after a connection lost in the middle of the body
//! sends the whole message again; an `open` that fails sends nothing and opens no connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use smtp_io_tokio::{Blame, Mailer, ReaderBody, SendError, SmtpError, SmtpOp, TlsMode};
use smtp_testkit::mock::{Act, Conversation, MockServer, well_behaved};

/// The bodies of the messages the server accepted, as received (dot-stuffed, CRLF).
type Delivered = Arc<Mutex<Vec<Vec<u8>>>>;

/// One connection; when `hang_up_in_body` is set, it hangs up after the third line of the body,
/// without reading the rest.
struct Conn {
    delivered: Delivered,
    hang_up_in_body: bool,
    body_lines: usize,
}

impl Conversation for Conn {
    fn greeting(&mut self) -> Act {
        Act::send("220 stream.test\r\n")
    }

    fn command(&mut self, line: &str) -> Act {
        match line.get(..4).map(str::to_ascii_uppercase).as_deref() {
            Some("EHLO" | "MAIL" | "RCPT" | "DATA" | "QUIT") => {
                well_behaved("stream.test", &["PIPELINING", "SIZE 100000000"], line)
            }
            _ => Act::send("500 what\r\n"),
        }
    }

    fn body_line(&mut self, _line: &[u8]) -> Option<Act> {
        self.body_lines += 1;
        (self.hang_up_in_body && self.body_lines == 3).then(|| Act::close(""))
    }

    fn end_of_data(&mut self, body: Vec<u8>) -> Act {
        self.delivered.lock().unwrap().push(body);
        Act::send("250 queued\r\n")
    }
}

/// A server whose first connection hangs up inside the body when `hang_up_once` is set.
async fn server(hang_up_once: bool) -> (MockServer, Delivered) {
    let delivered = Delivered::default();
    let seen = delivered.clone();
    let server = MockServer::start(move |n| Conn {
        delivered: seen.clone(),
        hang_up_in_body: hang_up_once && n == 1,
        body_lines: 0,
    })
    .await;
    (server, delivered)
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
    let (server, delivered) = server(false).await;
    let (path, text) = message_file("pool-file", 5_000);
    let mailer = mailer(server.port());
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
    assert_eq!(*delivered.lock().unwrap(), vec![on_the_wire(&text)]);
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn a_retry_after_a_hang_up_in_the_body_sends_the_body_again_from_its_start() {
    let (server, delivered) = server(true).await;
    // 16 MiB: more than the socket buffers on both sides can hold, so the hang-up is seen
    // before the client could write the end of data (else the message would be unknown, and
    // rightly not retried).
    let (path, text) = message_file("pool-retry", 400_000);
    let mailer = mailer(server.port());
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
    assert_eq!(*delivered.lock().unwrap(), vec![on_the_wire(&text)]);
    assert_eq!(server.accepted(), 2);
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn a_body_that_cannot_be_opened_sends_nothing() {
    let (server, _) = server(false).await;
    let mailer = mailer(server.port());
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
    assert_eq!(server.accepted(), 0);
    assert_eq!(mailer.stats().opened, 0);
}
