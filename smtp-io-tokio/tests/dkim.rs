//! DKIM signing on the tokio send paths (feature `dkim`): the pool in memory, in a chained
//! flight, streamed from a 5 MiB file, a retry after a hang-up inside the body, and a connected
//! `SmtpClient` with `DkimSigner::prepend_now` and `dkim::sign_file`. Every message the loopback
//! server receives is un-dot-stuffed and checked by Python's dkimpy (smtp-dkim's
//! `tests/dkim_verify.py`, the public key derived by Python's `cryptography`), and one changed
//! byte must fail.
//!
//! These tests need `python3` with `pip install dkimpy cryptography pynacl`; without them they
//! fail, they never skip.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_io_tokio::dkim::{DkimKey, DkimSigner, sign_file};
use smtp_io_tokio::{
    ArgumentError, Field, InvalidInputError, Mailer, MailerBuilder, ReaderBody, SendError,
    SmtpError, TlsMode, Unsignable, connect_plain,
};
use smtp_testkit::mock::{Act, Conversation, MockServer, well_behaved};

// smtp-dkim's keys and dkimpy runner, shared by every crate's DKIM tests.
#[path = "../../smtp-dkim/tests/support/dkimpy.rs"]
mod verifier;
use verifier::{DOMAIN, key_pem, scratch, tampered};

const SELECTOR: &str = "sel2026";
const RSA: &str = "rsa2048-pkcs8.pem";
const ED25519: &str = "ed25519-pkcs8.pem";

fn signer(key: &str) -> DkimSigner {
    let key = DkimKey::from_pem(&key_pem(key)).expect("a valid key");
    DkimSigner::new(key, DOMAIN, SELECTOR).expect("a valid signer")
}

/// dkimpy's verdict on each message (as the server stored it, dot-stuffing undone).
fn dkimpy(key: &str, test: &str, messages: &[Vec<u8>]) -> Vec<bool> {
    verifier::verify(&verifier::key_path(key), SELECTOR, test, messages).each
}

/// The message a server stores: its body as received (CRLF lines, dot-stuffed, without the
/// final dot), each line's leading dot taken off (RFC 5321, section 4.5.2).
fn unstuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut at_line_start = true;
    for (i, &b) in body.iter().enumerate() {
        if !(at_line_start && b == b'.') {
            out.push(b);
        }
        at_line_start = b == b'\n' && i > 0 && body[i - 1] == b'\r';
    }
    out
}

/// The `DKIM-Signature` field at the start of a stored message (with its folded lines).
fn signature_field(message: &[u8]) -> Vec<u8> {
    assert!(
        message.starts_with(b"DKIM-Signature: "),
        "not signed: {:?}",
        String::from_utf8_lossy(&message[..message.len().min(80)])
    );
    let mut end = 0;
    while let Some(at) = message[end..].windows(2).position(|w| w == b"\r\n") {
        end += at + 2;
        if !matches!(message.get(end), Some(b' ' | b'\t')) {
            break;
        }
    }
    message[..end].to_vec()
}

/// What the server saw.
#[derive(Default)]
struct Seen {
    /// Each message whose final dot arrived, as stored (dot-stuffing undone).
    messages: Mutex<Vec<Vec<u8>>>,
    /// The body lines of a body the server cut short.
    cut: Mutex<Vec<u8>>,
    /// Every MAIL FROM line.
    mail: Mutex<Vec<String>>,
}

struct Conn {
    seen: Arc<Seen>,
    /// Hang up after this many body lines of the first message (the first connection only).
    hang_up_after: Option<usize>,
    lines: usize,
}

impl Conversation for Conn {
    fn command(&mut self, line: &str) -> Act {
        if line.starts_with("MAIL FROM:") {
            self.seen.mail.lock().unwrap().push(line.to_owned());
        }
        well_behaved(
            "dkim.test",
            &["PIPELINING", "8BITMIME", "SIZE 100000000"],
            line,
        )
    }

    fn body_line(&mut self, line: &[u8]) -> Option<Act> {
        let limit = self.hang_up_after?;
        self.seen.cut.lock().unwrap().extend_from_slice(line);
        self.lines += 1;
        // A second and more before the hang-up: a signature made again for the retry would
        // carry another signing time (t=), so the same bytes prove it was made once.
        (self.lines >= limit).then(|| Act::after(Duration::from_millis(1100), Act::close("")))
    }

    fn end_of_data(&mut self, body: Vec<u8>) -> Act {
        self.seen.messages.lock().unwrap().push(unstuff(&body));
        Act::send("250 queued\r\n")
    }
}

struct Server {
    mock: MockServer,
    seen: Arc<Seen>,
}

impl Server {
    /// A server that keeps every message; with `hang_up_after`, its first connection hangs up
    /// after that many body lines.
    async fn start(hang_up_after: Option<usize>) -> Server {
        let seen = Arc::new(Seen::default());
        let shared = seen.clone();
        let mock = MockServer::start(move |n| Conn {
            seen: shared.clone(),
            hang_up_after: hang_up_after.filter(|_| n == 1),
            lines: 0,
        })
        .await;
        Server { mock, seen }
    }

    fn mailer(&self) -> MailerBuilder {
        Mailer::builder("127.0.0.1", self.mock.port(), TlsMode::None, "client.test")
    }

    fn messages(&self) -> Vec<Vec<u8>> {
        self.seen.messages.lock().unwrap().clone()
    }

    /// Shuts `mailer` down, then what the server kept, which must be `count` messages.
    async fn received_from(&self, mailer: Mailer, count: usize) -> Vec<Vec<u8>> {
        mailer.shutdown().await;
        let received = self.messages();
        assert_eq!(received.len(), count);
        received
    }

    /// The first connection's body, cut by the hang-up, starts with the very signature field of
    /// the one message delivered (the retry carried the same one).
    fn assert_retry_carries_the_signature(&self, received: &[Vec<u8>]) {
        let field = signature_field(&received[0]);
        let cut = self.seen.cut.lock().unwrap().clone();
        assert_eq!(
            cut[..field.len()],
            field[..],
            "the retry carries the same signature"
        );
    }
}

/// `received` and, last, a tampered copy of its first message (the control that must fail).
fn with_control(mut received: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let control = tampered(&received[0]);
    received.push(control);
    received
}

/// Messages with the cases that matter: dot lines, bare LF, a bare CR, 8-bit text.
fn messages() -> Vec<Vec<u8>> {
    vec![
        b"From: Me <me@example.com>\r\nTo: you@example.org\r\nSubject: plain\r\nDate: Mon, 7 Dec 2026 03:00:00 +0000\r\n\r\nHello!\r\n".to_vec(),
        b"From: me@example.com\r\nTo: you@example.org\r\nSubject: dots\r\n\r\n.\r\n..two\r\n.leading dot\r\nmid . dot\r\n.\r\n".to_vec(),
        b"From: me@example.com\nTo: you@example.org\nSubject: bare LF\n\nline one\n.dot after LF\nmixed\r\nbare\rCR\n\n\n".to_vec(),
        "From: J\u{f6}rg <me@example.com>\r\nTo: you@example.org\r\nSubject: caf\u{e9}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nna\u{ef}ve \u{fc}ber\r\nno final line end"
            .as_bytes()
            .to_vec(),
    ]
}

/// A message of about `size` bytes with dot lines and bare LF line ends all through it.
fn big_message(size: usize) -> Vec<u8> {
    let mut m = b"From: me@example.com\nTo: you@example.org\nSubject: big\n\n".to_vec();
    let mut n = 0;
    while m.len() < size {
        let line = match n % 5 {
            0 => format!(".line {n} starts with a dot\n"),
            1 => format!("line {n} ends with a bare LF\n"),
            2 => format!("..line {n} starts with two dots\r\n"),
            3 => ".\r\n".to_owned(),
            _ => format!("line {n}   with  spaces \t \r\n"),
        };
        m.extend_from_slice(line.as_bytes());
        n += 1;
    }
    m
}

/// The pool signs each message it sends from memory, with RSA and with Ed25519; each stored
/// copy verifies, and the same copy with one byte changed does not.
#[tokio::test]
async fn pool_in_memory_messages_verify() {
    for key in [RSA, ED25519] {
        let server = Server::start(None).await;
        let mailer = server.mailer().dkim(signer(key)).build().unwrap();
        for message in messages() {
            mailer
                .send("me@example.com", ["you@example.org"], &message)
                .await
                .unwrap();
        }
        let received = server.received_from(mailer, messages().len()).await;
        for m in &received {
            assert!(signature_field(m).iter().filter(|&&b| b == b'\n').count() > 1);
        }
        let received = with_control(received);
        let verdicts = dkimpy(key, "in-memory", &received);
        assert_eq!(verdicts, [true, true, true, true, false], "{key}");
    }
}

/// Messages that wait for a connection ride one chained flight; each is signed before it
/// enters the pool's waiting room, and each verifies.
#[tokio::test]
async fn pool_chained_messages_verify() {
    let server = Server::start(None).await;
    let mailer = server
        .mailer()
        .max_connections(1)
        .chain_messages(8)
        .dkim(signer(RSA))
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..6)
        .map(|n| {
            let mailer = mailer.clone();
            tokio::spawn(async move {
                let body = format!(
                    "From: me@example.com\nTo: you@example.org\nSubject: chained {n}\n\n.dot {n}\nbye\n"
                );
                mailer
                    .send("me@example.com", ["you@example.org"], body.as_bytes())
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let received = server.received_from(mailer, 6).await;
    assert_eq!(server.mock.most_open(), 1);
    let verdicts = dkimpy(RSA, "chained", &received);
    assert_eq!(verdicts, [true; 6]);
}

/// A 5 MiB file with dot lines and bare LF, streamed by `send_file`: the file is read once more
/// to hash it, the message never held in memory by the client, and the stored copy verifies.
/// The hashing pass counted its size as sent, which MAIL declares (no pass to count it).
#[tokio::test]
async fn pool_send_file_of_5_mib_verifies() {
    let dir = scratch("send-file");
    let path = dir.join("big.eml");
    let message = big_message(5 << 20);
    std::fs::write(&path, &message).unwrap();
    let server = Server::start(None).await;
    let mailer = server.mailer().dkim(signer(ED25519)).build().unwrap();
    mailer
        .send_file("me@example.com", ["you@example.org"], &path)
        .await
        .unwrap();
    let received = server.received_from(mailer, 1).await;
    assert!(received[0].len() > 5 << 20);
    let mail = server.seen.mail.lock().unwrap().clone();
    let declared = format!("SIZE={}", received[0].len());
    assert!(
        mail.len() == 1 && mail[0].split(' ').any(|p| p == declared),
        "{mail:?}, {declared}"
    );
    let received = with_control(received);
    assert_eq!(dkimpy(ED25519, "send-file", &received), [true, false]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The first connection hangs up inside the body (after the signature was written): the
/// message is retried on a new connection with the very same signature, signed once, and the
/// copy delivered verifies. In memory and streamed; a streamed body is opened once to hash it
/// and once per attempt.
#[tokio::test]
async fn a_retry_resends_the_same_signature() {
    // In memory.
    let server = Server::start(Some(8)).await;
    let mailer = server.mailer().dkim(signer(RSA)).build().unwrap();
    // 16 MiB: more than the socket buffers on both sides can hold, so the hang-up is seen
    // before the client could write the end of data (else the message would be unknown, and
    // rightly not retried).
    let message = big_message(16 << 20);
    mailer
        .send("me@example.com", ["you@example.org"], &message)
        .await
        .unwrap();
    assert_eq!(mailer.stats().retries, 1);
    assert_eq!(server.mock.accepted(), 2);
    let received = server.received_from(mailer, 1).await;
    let field = signature_field(&received[0]);
    let cut = server.seen.cut.lock().unwrap().clone();
    assert!(cut.len() > field.len(), "the cut came after the signature");
    server.assert_retry_carries_the_signature(&received);
    assert_eq!(dkimpy(RSA, "retry", &received), [true]);

    // Streamed.
    let dir = scratch("retry-stream");
    let path = dir.join("m.eml");
    std::fs::write(&path, &message).unwrap();
    let server = Server::start(Some(8)).await;
    let mailer = server.mailer().dkim(signer(RSA)).build().unwrap();
    let opened = AtomicUsize::new(0);
    mailer
        .send_stream("me@example.com", ["you@example.org"], || {
            opened.fetch_add(1, Ordering::SeqCst);
            ReaderBody::open(&path)
        })
        .await
        .unwrap();
    assert_eq!(
        opened.load(Ordering::SeqCst),
        3,
        "one hash pass and two attempts"
    );
    assert_eq!(mailer.stats().retries, 1);
    let received = server.received_from(mailer, 1).await;
    server.assert_retry_carries_the_signature(&received);
    assert_eq!(dkimpy(RSA, "retry-stream", &received), [true]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A connected client: a message signed in memory with `prepend_now`, a file with `sign_file`;
/// both verify as stored.
#[tokio::test]
async fn a_connected_client_signs_in_memory_and_streamed() {
    let dir = scratch("client");
    let path = dir.join("m.eml");
    std::fs::write(&path, big_message(300_000)).unwrap();
    let server = Server::start(None).await;
    let signer = signer(RSA);
    let mut client = connect_plain("127.0.0.1", server.mock.port(), "client.test")
        .await
        .unwrap();
    for message in messages() {
        let signed = signer.prepend_now(&message).unwrap();
        client
            .send_mail_bytes("me@example.com", &["you@example.org"], &signed)
            .await
            .unwrap();
    }
    let mut body = sign_file(&signer, &path).await.unwrap();
    assert!(
        body.prefix()
            .starts_with(b"DKIM-Signature: v=1; a=rsa-sha256;")
    );
    client
        .send_mail_stream("me@example.com", &["you@example.org"], &mut body)
        .await
        .unwrap();
    client.quit().await.unwrap();
    let received = server.messages();
    assert_eq!(received.len(), 5);
    assert_eq!(dkimpy(RSA, "client", &received), [true; 5]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A message built with mail-builder, sent signed by a connected client
/// (`SendMessage::send_message_signed`): it verifies as stored, without its Bcc header. One
/// without From is refused before anything is sent.
#[cfg(feature = "mail-builder")]
#[tokio::test]
async fn a_built_message_is_sent_signed() {
    use smtp_io_tokio::mail_builder::MessageBuilder;
    use smtp_io_tokio::message::SendMessage;

    let server = Server::start(None).await;
    let signer = signer(ED25519);
    let mut client = connect_plain("127.0.0.1", server.mock.port(), "client.test")
        .await
        .unwrap();
    let message = MessageBuilder::new()
        .from("me@example.com")
        .to("you@example.org")
        .bcc("hidden@example.org")
        .subject("built and signed")
        .text_body(".a line with a dot\nand a bare LF\n");
    client.send_message_signed(&message, &signer).await.unwrap();
    let unsigned = MessageBuilder::new()
        .to("you@example.org")
        .text_body("no From");
    let refused = client.send_message_signed(&unsigned, &signer).await;
    assert!(
        matches!(refused, Err(SmtpError::InvalidInput(_))),
        "{refused:?}"
    );
    client.quit().await.unwrap();
    let received = server.messages();
    assert_eq!(received.len(), 1);
    assert!(!String::from_utf8_lossy(&received[0]).contains("hidden@"));
    assert_eq!(
        dkimpy(
            ED25519,
            "built",
            &[received[0].clone(), tampered(&received[0])]
        ),
        [true, false]
    );
}

/// `error` says, typed, that the message body cannot be signed for want of a `From` field.
#[track_caller]
fn assert_missing_from(error: &SmtpError) {
    assert!(
        matches!(
            error,
            SmtpError::InvalidInput(InvalidInputError::Argument {
                field: Field::Body,
                reason: ArgumentError::Unsignable(Unsignable::MissingFrom),
            })
        ),
        "{error:?}"
    );
}

/// `error` is `NotSent` after no attempt, for invalid input: that input error.
#[track_caller]
fn not_sent_as_invalid(error: SendError) -> SmtpError {
    let SendError::NotSent { error, attempts } = error else {
        panic!("expected NotSent, got {error:?}");
    };
    assert_eq!(attempts, 0);
    assert!(matches!(error, SmtpError::InvalidInput(_)), "{error:?}");
    error
}

/// A message that cannot be signed (no From field) is not sent, no connection opened: in
/// memory and streamed, `NotSent` with no attempt and an invalid-input error.
#[tokio::test]
async fn an_unsignable_message_is_not_sent() {
    let server = Server::start(None).await;
    let mailer = server.mailer().dkim(signer(RSA)).build().unwrap();
    let message = b"To: you@example.org\r\nSubject: no From\r\n\r\nHi\r\n";
    let error = mailer
        .send("me@example.com", ["you@example.org"], message)
        .await
        .unwrap_err();
    let error = not_sent_as_invalid(error);
    assert!(error.to_string().contains("From"), "{error}");
    assert_missing_from(&error);

    let dir = scratch("unsignable");
    let path = dir.join("m.eml");
    std::fs::write(&path, message).unwrap();
    let error = mailer
        .send_file("me@example.com", ["you@example.org"], &path)
        .await
        .unwrap_err();
    assert_missing_from(&not_sent_as_invalid(error));

    // A file that is not there: a read error, not sent either.
    let error = mailer
        .send_file(
            "me@example.com",
            ["you@example.org"],
            dir.join("missing.eml"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            SendError::NotSent {
                attempts: 0,
                error: SmtpError::Io { .. }
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        server.mock.accepted(),
        0,
        "no connection for a message not signed"
    );
    mailer.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The key never shows in the `Debug` output of the builder or the pool (its domain and
/// selector do).
#[test]
fn the_key_never_shows_in_debug() {
    for key in [RSA, ED25519] {
        let pem = key_pem(key);
        let builder =
            Mailer::builder("127.0.0.1", 25, TlsMode::None, "client.test").dkim(signer(key));
        let shown_builder = format!("{builder:?} {builder:#?}");
        let mailer = builder.build().unwrap();
        let shown_mailer = format!("{mailer:?} {mailer:#?}");
        for shown in [&shown_builder, &shown_mailer] {
            assert!(
                shown.contains(SELECTOR) && shown.contains(DOMAIN),
                "{shown}"
            );
            assert!(!shown.contains("PRIVATE"), "{shown}");
            for line in pem.lines().filter(|l| !l.starts_with("-----")) {
                // Any 12 characters of the key's base64.
                for piece in line.as_bytes().chunks(12).filter(|p| p.len() == 12) {
                    let piece = std::str::from_utf8(piece).unwrap();
                    assert!(!shown.contains(piece), "key bytes in {shown}");
                }
            }
        }
    }
}

/// A pool that signs refuses a message sent as BINARYMIME (byte for byte, it would not match
/// its signature: RFC 6376 section 5.3), in memory and streamed, before any connection; and it
/// is not built with BINARYMIME as every message's default (found in review).
#[tokio::test]
async fn a_signing_pool_refuses_binarymime() {
    use smtp_io_tokio::smtp_proto::command::BodyType;
    use smtp_io_tokio::{MessageOptions, SmtpClientOptions};

    let seen = Arc::new(Seen::default());
    let server = MockServer::start(move |_| Conn {
        seen: Arc::clone(&seen),
        hang_up_after: None,
        lines: 0,
    })
    .await;
    let mailer = Mailer::builder("127.0.0.1", server.port(), TlsMode::None, "client.test")
        .dkim(signer(ED25519))
        .build()
        .unwrap();
    let mut binary = MessageOptions::default();
    binary.body_type = Some(BodyType::BinaryMime);
    let unsignable = SmtpError::InvalidInput(InvalidInputError::argument(
        Field::Body,
        ArgumentError::Unsignable(Unsignable::BinaryMime),
    ));
    let message = b"From: a@example.com\r\n\r\n\x00\x01\r\x02\n";
    let in_memory = mailer
        .send_with("a@example.com", ["b@example.org"], message, &binary)
        .await;
    let streamed = mailer
        .send_stream_with("a@example.com", ["b@example.org"], &binary, || async {
            Ok(smtp_io_tokio::SliceBody::new(message))
        })
        .await;
    for refused in [in_memory, streamed] {
        assert_eq!(
            refused,
            Err(SendError::NotSent {
                error: unsignable.clone(),
                attempts: 0
            })
        );
    }
    assert_eq!(server.accepted(), 0);
    mailer.shutdown().await;
    // Every message's default, set for the pool or by the per-connection closure: refused
    // when the pool is built, or each message unsent before a connection is opened.
    let built = Mailer::builder("127.0.0.1", server.port(), TlsMode::None, "client.test")
        .dkim(signer(ED25519))
        .map_connect_options(|o| o.map_client_options(|c| c.with_message_options(binary.clone())))
        .build();
    assert_eq!(built.err(), Some(unsignable.clone()));
    let by_closure = Mailer::builder("127.0.0.1", server.port(), TlsMode::None, "client.test")
        .dkim(signer(ED25519))
        .client_options(move |o: SmtpClientOptions| o.with_message_options(binary.clone()))
        .build()
        .unwrap();
    let refused = by_closure
        .send("a@example.com", ["b@example.org"], message)
        .await;
    assert!(
        matches!(&refused, Err(SendError::NotSent { error, .. }) if *error == unsignable),
        "{refused:?}"
    );
    assert_eq!(server.accepted(), 0);
    by_closure.shutdown().await;
}
