//! The same transcript style, run through `SmtpClient` over an in-memory transport that checks
//! every write against the script and fails on an unexpected one.

use std::collections::VecDeque;
use std::io;
use std::task::{Context, Poll, Waker};

use super::*;
use crate::capabilities::Extension;
use crate::error::{AuthError, InvalidInputError, ProtocolError};

enum Step {
    Server(Vec<u8>),
    Client(Vec<u8>),
    Tls,
    /// `T: idle`: the server sends nothing now; a read stays pending until the client writes.
    Idle,
}

/// A transport that plays the `S:` lines and checks the `C:` lines; `T: upgrade` marks the TLS
/// handshake. Dropping it with script left over fails the test.
struct Scripted {
    steps: VecDeque<Step>,
    closed: bool,
    tls: bool,
    /// The size of each `write_all` call, shared so a test can read it after the client is gone.
    writes: std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
}

impl Scripted {
    fn new(script: &str) -> Scripted {
        let mut steps: VecDeque<Step> = VecDeque::new();
        for raw in script.lines() {
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            if line == "T: upgrade" {
                steps.push_back(Step::Tls);
                continue;
            }
            if line == "T: idle" {
                steps.push_back(Step::Idle);
                continue;
            }
            let (side, text) = line.split_at(2);
            let mut bytes = text.strip_prefix(' ').unwrap_or(text).as_bytes().to_vec();
            bytes.extend_from_slice(b"\r\n");
            match (side, steps.back_mut()) {
                ("S:", Some(Step::Server(b))) => b.extend_from_slice(&bytes),
                ("S:", _) => steps.push_back(Step::Server(bytes)),
                ("C:", Some(Step::Client(b))) => b.extend_from_slice(&bytes),
                ("C:", _) => steps.push_back(Step::Client(bytes)),
                _ => panic!("bad script line {raw:?}"),
            }
        }
        Scripted {
            steps,
            closed: false,
            tls: false,
            writes: Default::default(),
        }
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let left: Vec<String> = self
                .steps
                .iter()
                .map(|s| match s {
                    Step::Server(b) => format!("S: {}", String::from_utf8_lossy(b)),
                    Step::Client(b) => format!("C: {}", String::from_utf8_lossy(b)),
                    Step::Tls => "T: upgrade".into(),
                    Step::Idle => "T: idle".into(),
                })
                .collect();
            assert!(left.is_empty(), "script not consumed: {left:?}");
        }
    }
}

impl Transport for Scripted {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.steps.front_mut() {
            None => Ok(0),
            Some(Step::Server(bytes)) => {
                let n = buf.len().min(bytes.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                bytes.drain(..n);
                if bytes.is_empty() {
                    self.steps.pop_front();
                }
                Ok(n)
            }
            Some(Step::Client(expected)) => panic!(
                "client reads, but the script expects it to send {:?}",
                String::from_utf8_lossy(expected)
            ),
            Some(Step::Tls) => panic!("client reads, but the script expects a TLS upgrade"),
            Some(Step::Idle) => core::future::pending().await,
        }
    }

    async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        assert!(!self.closed, "write after close");
        self.writes.lock().unwrap().push(buf.len());
        if matches!(self.steps.front(), Some(Step::Idle)) {
            self.steps.pop_front();
        }
        while !buf.is_empty() {
            match self.steps.front_mut() {
                Some(Step::Client(expected)) => {
                    let n = expected.len().min(buf.len());
                    assert_eq!(
                        String::from_utf8_lossy(&buf[..n]),
                        String::from_utf8_lossy(&expected[..n]),
                        "client wrote something else than the script"
                    );
                    expected.drain(..n);
                    if expected.is_empty() {
                        self.steps.pop_front();
                    }
                    buf = &buf[n..];
                }
                _ => panic!("unexpected client write {:?}", String::from_utf8_lossy(buf)),
            }
        }
        Ok(())
    }

    async fn close(&mut self) -> io::Result<()> {
        self.closed = true;
        Ok(())
    }

    /// The script answers at once; its timer never fires.
    fn sleep(_duration: core::time::Duration) -> impl Future<Output = ()> {
        core::future::pending()
    }

    fn is_encrypted(&self) -> bool {
        self.tls
    }

    fn now() -> core::time::Duration {
        core::time::Duration::ZERO
    }
}

impl StartTlsCapable for Scripted {
    async fn upgrade_to_tls(&mut self) -> io::Result<()> {
        match self.steps.pop_front() {
            Some(Step::Tls) => {
                self.tls = true;
                Ok(())
            }
            _ => panic!("unexpected TLS upgrade"),
        }
    }
}

/// The options of these tests: AUTH is allowed on the scripted (plaintext) connection, which
/// the default refuses (see `plaintext_auth_is_refused_by_default`).
fn options() -> SmtpClientOptions {
    SmtpClientOptions::new().allow_plaintext_auth()
}

/// Run a future that never truly waits (the scripted transport is always ready).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("future did not complete: the client is waiting on something the script never gives");
}

const GREETING: &str = "
    S: 220 mx.example ESMTP
    C: EHLO client.example
    S: 250-mx.example
    S: 250-PIPELINING
    S: 250-STARTTLS
    S: 250 AUTH LOGIN PLAIN
";

#[test]
fn full_session_connect_login_send_quit() {
    let script = format!(
        "{GREETING}
        C: AUTH PLAIN AHVzZXIAcGFzcw==
        S: 235 2.7.0 ok
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<b@y.example>
        C: DATA
        S: 250 ok
        S: 250 ok
        S: 354 go
        C: Subject: hi
        C: 
        C: ..leading dot
        C: .
        S: 250 2.0.0 Ok: queued as ABC
        C: QUIT
        S: 221 bye
        "
    );
    block_on(async {
        let mut client =
            SmtpClient::connect_with(Scripted::new(&script), "client.example", options())
                .await
                .unwrap();
        assert_eq!(client.state(), SessionState::Authentication);
        assert_eq!(
            client.capabilities(),
            ["PIPELINING", "STARTTLS", "AUTH LOGIN PLAIN"]
        );
        client.login("user", "pass").await.unwrap();
        let outcome = client
            .send_mail(
                "a@x.example",
                &["b@y.example"],
                "Subject: hi\n\n.leading dot",
            )
            .await
            .unwrap();
        assert_eq!(outcome.queue_id.as_deref(), Some("ABC"));
        assert!(matches!(
            client.login("user", "pass").await,
            Err(SmtpError::InvalidInput(
                InvalidInputError::WrongState { .. }
            ))
        ));
        client.quit().await.unwrap();
    });
}

/// A large body given as bytes goes out in bounded slices, each written before the next is
/// encoded (the client never holds a second, stuffed copy of the whole message), and arrives
/// intact: stuffed across slice boundaries, one end of data.
#[test]
fn send_mail_bytes_writes_a_large_body_in_bounded_slices() {
    let (lines, body) = large_body();
    let mut script = format!(
        "{GREETING}
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<b@y.example>
        C: DATA
        S: 250 ok
        S: 250 ok
        S: 354 go
        "
    );
    push_stuffed(&mut script, &lines);
    script.push_str("C: .\nS: 250 2.0.0 queued as BIG\n");
    let transport = Scripted::new(&script);
    let writes = transport.writes.clone();
    block_on(async {
        let mut client = SmtpClient::connect_with(transport, "client.example", options())
            .await
            .unwrap();
        let outcome = client
            .send_mail_bytes("a@x.example", &["b@y.example"], body.as_bytes())
            .await
            .unwrap();
        assert_eq!(outcome.queue_id.as_deref(), Some("BIG"));
    });
    assert_sliced(&writes.lock().unwrap(), body.len());
}

/// A body of about 1.6 MB (several [`BODY_SLICE`]s) with a dotted line every 7 lines: its lines
/// and the body (CRLF-separated, no final CRLF).
fn large_body() -> (Vec<String>, String) {
    let lines: Vec<String> = (0..1600)
        .map(|i| {
            let lead = if i % 7 == 0 { "." } else { "" };
            format!("{lead}line {i:04} {}", "x".repeat(990))
        })
        .collect();
    let body = lines.join("\r\n");
    assert!(body.len() > 6 * BODY_SLICE, "the body spans several slices");
    (lines, body)
}

/// Append `lines` to a script as the client sends them: dot-stuffed.
fn push_stuffed(script: &mut String, lines: &[String]) {
    for line in lines {
        let stuffed = if line.starts_with('.') { "." } else { "" };
        script.push_str(&format!("C: {stuffed}{line}\n"));
    }
}

/// No write much larger than a slice, and enough writes to carry a body of `body_len`.
fn assert_sliced(writes: &[usize], body_len: usize) {
    let largest = writes.iter().copied().max().unwrap();
    assert!(
        largest <= BODY_SLICE + BODY_SLICE / 8,
        "largest write {largest} bytes: the body was not sliced"
    );
    assert!(writes.len() > body_len / BODY_SLICE, "{writes:?}");
}

/// The same in a batch: the large message is written in slices, and the next message is still
/// chained behind its end of data.
#[test]
fn send_batch_writes_a_large_body_in_bounded_slices() {
    let (lines, body) = large_body();
    let mut script = format!(
        "{GREETING}
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<b@y.example>
        C: DATA
        S: 250 ok
        S: 250 ok
        S: 354 go
        "
    );
    push_stuffed(&mut script, &lines);
    script.push_str(
        "C: .
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<c@y.example>
        C: DATA
        S: 250 2.0.0 queued as BIG
        S: 250 ok
        S: 250 ok
        S: 354 go
        C: small
        C: .
        S: 250 2.0.0 queued as SMALL
        ",
    );
    let transport = Scripted::new(&script);
    let writes = transport.writes.clone();
    block_on(async {
        let mut client = SmtpClient::connect_with(transport, "client.example", options())
            .await
            .unwrap();
        let results = client
            .send_batch(&[
                BatchMessage::new("a@x.example", &["b@y.example"], body.as_bytes()),
                BatchMessage::new("a@x.example", &["c@y.example"], b"small\r\n"),
            ])
            .await;
        let ids: Vec<_> = results
            .into_iter()
            .map(|r| r.unwrap().queue_id.unwrap())
            .collect();
        assert_eq!(ids, ["BIG", "SMALL"]);
    });
    assert_sliced(&writes.lock().unwrap(), body.len());
}

#[test]
fn connect_starttls_redoes_ehlo() {
    let script = format!(
        "{GREETING}
        C: STARTTLS
        S: 220 go ahead
        T: upgrade
        C: EHLO client.example
        S: 250-mx.example
        S: 250 AUTH PLAIN
        "
    );
    block_on(async {
        let client = SmtpClient::connect_starttls(Scripted::new(&script), "client.example")
            .await
            .unwrap();
        assert!(client.transport().tls);
        assert!(client.session().is_tls());
        assert_eq!(client.capabilities(), ["AUTH PLAIN"]);
        assert_eq!(client.state(), SessionState::Authentication);
    });
}

#[test]
fn starttls_missing_fails_closed_and_closes_the_transport() {
    let script = "
        S: 220 mx.example
        C: EHLO client.example
        S: 250-mx.example
        S: 250 AUTH PLAIN
    ";
    block_on(async {
        let mut client =
            SmtpClient::connect_with(Scripted::new(script), "client.example", options())
                .await
                .unwrap();
        let err = client.starttls().await.unwrap_err();
        assert_eq!(
            err,
            SmtpError::Protocol(ProtocolError::ExtensionUnavailable {
                name: Extension::StartTls
            })
        );
        assert_eq!(client.state(), SessionState::Closed);
        assert!(client.transport().closed);
        // No plaintext login afterwards.
        assert_eq!(client.login("u", "p").await.unwrap_err(), err);
    });
}

#[test]
fn stream_body_is_stuffed_across_chunks() {
    let script = format!(
        "{GREETING}
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<b@y.example>
        C: DATA
        S: 250 ok
        S: 250 ok
        S: 354 go
        C: line one
        C: ..two
        C: ...
        C: .
        S: 250 ok
        "
    );
    block_on(async {
        let mut client =
            SmtpClient::connect_with(Scripted::new(&script), "client.example", options())
                .await
                .unwrap();
        let body = b"line one\r\n.two\n..";
        let mut stream = SliceBody::new(body).with_chunk_size(3);
        let outcome = client
            .send_mail_stream("a@x.example", &["b@y.example"], &mut stream)
            .await
            .unwrap();
        assert_eq!(outcome.accepted().count(), 1);
    });
}

#[test]
fn auth_rejected_is_typed() {
    let script = format!(
        "{GREETING}
        C: AUTH LOGIN
        S: 334 VXNlcm5hbWU6
        C: dXNlcg==
        S: 334 UGFzc3dvcmQ6
        C: d3Jvbmc=
        S: 535 5.7.8 bad credentials
        "
    );
    block_on(async {
        let mut client =
            SmtpClient::connect_with(Scripted::new(&script), "client.example", options())
                .await
                .unwrap();
        let err = client
            .login_with(AuthMechanism::Login, "user", "wrong")
            .await
            .unwrap_err();
        assert!(matches!(err, SmtpError::Auth(AuthError::Rejected { .. })));
        assert!(!format!("{err} {err:?}").contains("wrong"));
        assert!(!format!("{err} {err:?}").contains("d3Jvbmc"));
    });
}

#[test]
fn eof_mid_data_is_a_typed_error_and_closes() {
    let script = format!(
        "{GREETING}
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<b@y.example>
        C: DATA
        S: 250 ok
        S: 250 ok
        S: 354 go
        C: hi
        C: .
        "
    );
    block_on(async {
        let mut client =
            SmtpClient::connect_with(Scripted::new(&script), "client.example", options())
                .await
                .unwrap();
        let err = client
            .send_mail("a@x.example", &["b@y.example"], "hi")
            .await
            .unwrap_err();
        assert_eq!(
            err,
            SmtpError::Protocol(ProtocolError::ConnectionClosed {
                during: SmtpOp::DataEnd
            })
        );
        assert_eq!(client.state(), SessionState::Closed);
        assert!(client.transport().closed);
    });
}

/// A server that never answers: every read waits forever, and the runtime's timer fires at once.
struct Stalled;

impl Transport for Stalled {
    async fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        core::future::pending().await
    }
    async fn write_all(&mut self, _buf: &[u8]) -> io::Result<()> {
        Ok(())
    }
    async fn close(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn sleep(_duration: core::time::Duration) -> impl Future<Output = ()> {
        core::future::ready(())
    }
    fn now() -> core::time::Duration {
        core::time::Duration::ZERO
    }
}

#[test]
fn stalled_server_times_out_instead_of_hanging() {
    let err = block_on(SmtpClient::connect_with(
        Stalled,
        "client.example",
        options(),
    ))
    .unwrap_err();
    assert_eq!(
        err,
        SmtpError::Timeout {
            during: SmtpOp::Greeting,
            after: core::time::Duration::from_secs(300)
        }
    );
}

struct FailingBody;

impl MessageBody for FailingBody {
    async fn read_chunk(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::other("disk on fire"))
    }
}

#[test]
fn body_read_error_is_io_and_closes() {
    let script = format!(
        "{GREETING}
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<b@y.example>
        C: DATA
        S: 250 ok
        S: 250 ok
        S: 354 go
        "
    );
    block_on(async {
        let mut client =
            SmtpClient::connect_with(Scripted::new(&script), "client.example", options())
                .await
                .unwrap();
        let err = client
            .send_mail_stream("a@x.example", &["b@y.example"], &mut FailingBody)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            SmtpError::Io {
                during: SmtpOp::ReadBody,
                ..
            }
        ));
        assert_eq!(client.state(), SessionState::Closed);
        assert!(client.transport().closed);
    });
}

#[test]
fn invalid_arguments_are_refused_without_io() {
    block_on(async {
        let mut client =
            SmtpClient::connect_with(Scripted::new(GREETING), "client.example", options())
                .await
                .unwrap();
        for (from, to) in [
            ("a@x.example\r\nRSET", "b@y.example"),
            ("a@x.example", "b@y.example>\r\nDATA"),
            ("a@x.example", "b@y.example\0"),
        ] {
            assert!(matches!(
                client.send_mail(from, &[to], "x").await,
                Err(SmtpError::InvalidInput(_))
            ));
        }
        assert!(matches!(
            client.send_mail("a@x.example", &[], "x").await,
            Err(SmtpError::InvalidInput(_))
        ));
        assert!(matches!(
            client.login("us\r\ner", "p").await,
            Err(SmtpError::InvalidInput(_))
        ));
        assert!(matches!(
            SmtpClient::connect(Scripted::new(""), "bad domain\r\n").await,
            Err(SmtpError::InvalidInput(_))
        ));
    });
}

std::thread_local! {
    /// Virtual seconds for [`Drip`]: its reads move time on, its timer reads it.
    static NOW: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// A server that sends its bytes one per (virtual) second: every read first waits a second, then
/// gives one byte. Each read makes progress, so only a deadline per reply (not per read) stops it.
struct Drip {
    bytes: VecDeque<u8>,
    waited: bool,
}

impl Transport for Drip {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        core::future::poll_fn(|_| {
            if !self.waited {
                self.waited = true;
                NOW.with(|n| n.set(n.get() + 1));
                return Poll::Pending;
            }
            self.waited = false;
            match self.bytes.pop_front() {
                Some(b) => {
                    buf[0] = b;
                    Poll::Ready(Ok(1))
                }
                None => Poll::Pending,
            }
        })
        .await
    }
    async fn write_all(&mut self, _buf: &[u8]) -> io::Result<()> {
        Ok(())
    }
    async fn close(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn now() -> core::time::Duration {
        core::time::Duration::from_secs(NOW.with(|n| n.get()))
    }
    fn sleep(duration: core::time::Duration) -> impl Future<Output = ()> {
        let deadline = NOW.with(|n| n.get()) + duration.as_secs();
        core::future::poll_fn(move |_| {
            if NOW.with(|n| n.get()) >= deadline {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

/// The slow-drip attack (aiosmtplib's and lettre's "timeout per read" weakness): a reply that
/// keeps arriving a byte at a time is still bounded by one deadline for the whole reply.
#[test]
fn a_reply_dripping_past_its_deadline_times_out() {
    NOW.with(|n| n.set(0));
    let bytes: VecDeque<u8> = b"220 mx.example ESMTP slowly, very slowly\r\n"
        .iter()
        .copied()
        .collect();
    let drip = Drip {
        bytes,
        waited: false,
    };
    let options = SmtpClientOptions::new()
        .with_timeouts(Timeouts::uniform(core::time::Duration::from_secs(10)));
    let err = block_on(SmtpClient::connect_with(drip, "client.example", options)).unwrap_err();
    assert_eq!(
        err,
        SmtpError::Timeout {
            during: SmtpOp::Greeting,
            after: core::time::Duration::from_secs(10)
        }
    );
    // Time stopped at the deadline, not after the whole 42-byte greeting.
    assert!(NOW.with(|n| n.get()) <= 11);
}

/// The same drip within the deadline completes: the deadline is per reply, and restarts for the
/// next one.
#[test]
fn a_slow_reply_within_its_deadline_is_fine() {
    NOW.with(|n| n.set(0));
    let bytes: VecDeque<u8> = b"220 a\r\n250 b\r\n".iter().copied().collect();
    let drip = Drip {
        bytes,
        waited: false,
    };
    let options = SmtpClientOptions::new()
        .with_timeouts(Timeouts::uniform(core::time::Duration::from_secs(10)));
    let client = block_on(SmtpClient::connect_with(drip, "client.example", options)).unwrap();
    assert_eq!(client.state(), SessionState::Authentication);
}

/// A batch over DATA: each message's envelope rides in the same flight as the previous
/// message's end of data (the script panics if the client reads before writing it), a locally
/// invalid message and a message refused at the dot do not affect the others.
#[test]
fn send_batch_chains_messages_and_reports_each() {
    let script = format!(
        "{GREETING}
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<b@y.example>
        C: DATA
        S: 250 ok
        S: 250 ok
        S: 354 go
        C: one
        C: .
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<d@y.example>
        C: DATA
        S: 250 2.0.0 queued as ONE
        S: 250 ok
        S: 250 ok
        S: 354 go
        C: three
        C: .
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<e@y.example>
        C: DATA
        S: 554 5.7.1 rejected as spam
        S: 250 ok
        S: 250 ok
        S: 354 go
        C: four
        C: .
        S: 250 2.0.0 queued as FOUR
        C: QUIT
        S: 221 bye
        "
    );
    block_on(async {
        let mut client =
            SmtpClient::connect_with(Scripted::new(&script), "client.example", options())
                .await
                .unwrap();
        let bad = ["c@y.example\r\nRSET"];
        let messages = [
            BatchMessage::new("a@x.example", &["b@y.example"], b"one"),
            BatchMessage::new("a@x.example", &bad, b"two"),
            BatchMessage::new("a@x.example", &["d@y.example"], b"three"),
            BatchMessage::new("a@x.example", &["e@y.example"], b"four"),
        ];
        let results = client.send_batch(&messages).await;
        assert_eq!(results.len(), 4);
        assert_eq!(
            results[0].as_ref().unwrap().queue_id.as_deref(),
            Some("ONE")
        );
        assert!(matches!(results[1], Err(SmtpError::InvalidInput(_))));
        match &results[2] {
            Err(SmtpError::Protocol(ProtocolError::UnexpectedCode { during, reply })) => {
                assert_eq!(*during, SmtpOp::DataEnd);
                assert_eq!(reply.code().get(), 554);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            results[3].as_ref().unwrap().queue_id.as_deref(),
            Some("FOUR")
        );
        assert_eq!(client.state(), SessionState::Ready);
        client.quit().await.unwrap();
    });
}

/// With CHUNKING every message is a complete `BDAT ... LAST` transaction, so the whole batch is
/// written before the first reply is read.
#[test]
fn send_batch_over_bdat_needs_no_round_trip_between_messages() {
    let script = "
        S: 220 mx.example ESMTP
        C: EHLO client.example
        S: 250-mx.example
        S: 250-PIPELINING
        S: 250 CHUNKING
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<b@y.example>
        C: BDAT 4 LAST
        C: m1
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<c@y.example>
        C: BDAT 4 LAST
        C: m2
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<d@y.example>
        C: BDAT 4 LAST
        C: m3
        S: 250 ok
        S: 250 ok
        S: 250 queued as Q1
        S: 250 ok
        S: 250 ok
        S: 250 queued as Q2
        S: 250 ok
        S: 250 ok
        S: 250 queued as Q3
        ";
    block_on(async {
        let mut client =
            SmtpClient::connect_with(Scripted::new(script), "client.example", options())
                .await
                .unwrap();
        let messages = [
            BatchMessage::new("a@x.example", &["b@y.example"], b"m1\r\n"),
            BatchMessage::new("a@x.example", &["c@y.example"], b"m2\r\n"),
            BatchMessage::new("a@x.example", &["d@y.example"], b"m3\r\n"),
        ];
        let ids: Vec<String> = client
            .send_batch(&messages)
            .await
            .into_iter()
            .map(|r| r.unwrap().queue_id.unwrap())
            .collect();
        assert_eq!(ids, ["Q1", "Q2", "Q3"]);
    });
}

/// A connection lost in the middle of a batch: the unconfirmed and the unstarted messages all
/// get the error that closed the session; the confirmed one keeps its outcome.
#[test]
fn send_batch_connection_lost_fails_the_rest() {
    let script = format!(
        "{GREETING}
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<b@y.example>
        C: DATA
        S: 250 ok
        S: 250 ok
        S: 354 go
        C: one
        C: .
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<c@y.example>
        C: DATA
        S: 250 2.0.0 queued as ONE
        "
    );
    block_on(async {
        let mut client =
            SmtpClient::connect_with(Scripted::new(&script), "client.example", options())
                .await
                .unwrap();
        let messages = [
            BatchMessage::new("a@x.example", &["b@y.example"], b"one"),
            BatchMessage::new("a@x.example", &["c@y.example"], b"two"),
            BatchMessage::new("a@x.example", &["d@y.example"], b"three"),
        ];
        let results = client.send_batch(&messages).await;
        assert!(results[0].is_ok());
        for r in &results[1..] {
            assert!(
                matches!(
                    r,
                    Err(SmtpError::Protocol(ProtocolError::ConnectionClosed { .. }))
                ),
                "{r:?}"
            );
        }
        assert_eq!(client.state(), SessionState::Closed);
        // Later calls give the same error without I/O.
        let again = client.send_batch(&messages[..1]).await;
        assert!(matches!(
            again[0],
            Err(SmtpError::Protocol(ProtocolError::ConnectionClosed { .. }))
        ));
    });
}

/// `login` on a plaintext connection sends nothing unless the caller allowed it by name.
#[test]
fn plaintext_auth_is_refused_by_default() {
    let script = format!("{GREETING}\nC: QUIT\nS: 221 bye");
    block_on(async {
        let mut client = SmtpClient::connect(Scripted::new(&script), "client.example")
            .await
            .unwrap();
        for result in [
            client.login("user", "pass").await,
            client
                .login_with(AuthMechanism::Login, "user", "pass")
                .await,
            client
                .login_with(AuthMechanism::Plain, "user", "pass")
                .await,
        ] {
            assert!(
                matches!(
                    result,
                    Err(SmtpError::Auth(AuthError::PlaintextRefused { .. }))
                ),
                "{result:?}"
            );
        }
        // Still usable: the script's next step is QUIT, so no AUTH line was written.
        client.quit().await.unwrap();
    });
}

/// A body stream that yields far more than its size hint declared.
struct LyingBody {
    left: usize,
}

impl MessageBody for LyingBody {
    async fn read_chunk(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.left);
        buf[..n].fill(b'x');
        self.left -= n;
        Ok(n)
    }

    fn chunk_size(&self) -> usize {
        4
    }

    fn size_hint(&self) -> Option<u64> {
        Some(10)
    }
}

/// The size hint is enforced by the client: a stream that said 10 bytes and yields 1 MiB is cut
/// off before its end of data, and the connection is closed.
#[test]
fn a_stream_longer_than_its_hint_is_not_delivered() {
    let script = format!(
        "{GREETING}
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<b@y.example>
        C: DATA
        S: 250 ok
        S: 250 ok
        S: 354 go
        C: xxxx
        C: xxxx"
    );
    // The script has no final dot: writing one fails the test.
    let mut transport = Scripted::new(&script);
    // Each 4-byte chunk is one write; the first two fit the 10-byte hint, the third does not.
    transport.steps.iter_mut().for_each(|s| {
        if let Step::Client(bytes) = s {
            if bytes == b"xxxx\r\nxxxx\r\n" {
                *bytes = b"xxxxxxxx".to_vec();
            }
        }
    });
    block_on(async {
        let mut client = SmtpClient::connect_with(transport, "client.example", options())
            .await
            .unwrap();
        let mut body = LyingBody { left: 1 << 20 };
        let err = client
            .send_mail_stream("a@x.example", &["b@y.example"], &mut body)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            SmtpError::InvalidInput(InvalidInputError::BodyLongerThanDeclared { declared: 10 })
        );
        assert_eq!(client.state(), SessionState::Closed);
        assert!(client.transport().closed);
        assert!(body.left > (1 << 20) - 16, "stopped reading at once");
    });
}

/// The session's total deadline ends a session whose every reply is within its own limit.
#[test]
fn the_total_deadline_bounds_a_session_of_slow_replies() {
    NOW.with(|n| n.set(0));
    let drip = Drip {
        bytes: b"220 a\r\n250 b\r\n".iter().copied().collect(),
        waited: false,
    };
    // Each reply takes 7 virtual seconds, within its 10 s; the two take 14 s, past the 10 s total.
    let options = SmtpClientOptions::new()
        .with_timeouts(Timeouts::uniform(core::time::Duration::from_secs(10)))
        .with_deadline(core::time::Duration::from_secs(10));
    let err = block_on(SmtpClient::connect_with(drip, "client.example", options)).unwrap_err();
    assert_eq!(
        err,
        SmtpError::DeadlineExceeded {
            during: SmtpOp::Ehlo,
            after: core::time::Duration::from_secs(10)
        }
    );
    assert_eq!(NOW.with(|n| n.get()), 10, "stopped at the deadline");
}

std::thread_local! {
    /// Virtual seconds for [`SlowReader`].
    static SLOW_NOW: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// A server that answers at once, one reply per read, but reads what it is sent at 50 bytes a
/// (virtual) second.
struct SlowReader {
    replies: VecDeque<&'static [u8]>,
    written: usize,
}

impl Transport for SlowReader {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let reply = self.replies.pop_front().unwrap_or_default();
        buf[..reply.len()].copy_from_slice(reply);
        Ok(reply.len())
    }
    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut waited = false;
        let seconds = buf.len().div_ceil(50) as u64;
        core::future::poll_fn(|_| {
            if waited {
                return Poll::Ready(());
            }
            waited = true;
            SLOW_NOW.with(|n| n.set(n.get() + seconds));
            Poll::Pending
        })
        .await;
        self.written += buf.len();
        Ok(())
    }
    async fn close(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn now() -> core::time::Duration {
        core::time::Duration::from_secs(SLOW_NOW.with(|n| n.get()))
    }
    fn sleep(duration: core::time::Duration) -> impl Future<Output = ()> {
        let deadline = SLOW_NOW.with(|n| n.get()) + duration.as_secs();
        core::future::poll_fn(move |_| {
            if SLOW_NOW.with(|n| n.get()) >= deadline {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

/// The write-progress rule: each 1 KiB write finishes within the 3-minute block limit, but the
/// body as a whole falls below 1 KiB/s, so the session ends long before the 200 KiB are out.
#[test]
fn a_server_that_reads_slowly_cannot_hold_a_body_forever() {
    SLOW_NOW.with(|n| n.set(0));
    let server = SlowReader {
        replies: [
            &b"220 mx\r\n"[..],
            b"250 mx\r\n",
            b"250 ok\r\n",
            b"250 ok\r\n",
            b"354 go\r\n",
        ]
        .into(),
        written: 0,
    };
    let body = vec![b'a'; 200 * 1024];
    block_on(async {
        let mut client = SmtpClient::connect(server, "client.example").await.unwrap();
        let mut stream = SliceBody::new(&body).with_chunk_size(1024);
        let err = client
            .send_mail_stream("a@x.example", &["b@y.example"], &mut stream)
            .await
            .unwrap_err();
        assert!(
            matches!(err, SmtpError::Timeout { during: SmtpOp::DataEnd, after } if after > core::time::Duration::from_secs(180)),
            "{err:?}"
        );
        assert!(client.transport().written < 20 * 1024, "cut off early");
    });
    assert!(SLOW_NOW.with(|n| n.get()) < 400);
}

std::thread_local! {
    /// Virtual seconds for [`SlowReplies`].
    static REPLY_NOW: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// A server that reads at once but takes a (virtual) minute before each reply: slow, yet
/// within every per-reply limit.
struct SlowReplies {
    server: VecDeque<u8>,
    line: Vec<u8>,
    in_data: bool,
    waited: bool,
}

impl SlowReplies {
    fn answer(&mut self) {
        let reply: &[u8] = if self.in_data {
            if self.line != b".\r\n" {
                return;
            }
            self.in_data = false;
            b"250 queued\r\n"
        } else if self.line.starts_with(b"EHLO") {
            b"250 mx\r\n"
        } else if self.line.starts_with(b"DATA") {
            self.in_data = true;
            b"354 go\r\n"
        } else {
            b"250 ok\r\n"
        };
        self.server.extend(reply);
    }
}

impl Transport for SlowReplies {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        core::future::poll_fn(|_| {
            if !self.waited {
                self.waited = true;
                REPLY_NOW.with(|n| n.set(n.get() + 60));
                return Poll::Pending;
            }
            self.waited = false;
            let n = buf.len().min(self.server.len());
            for (slot, b) in buf.iter_mut().zip(self.server.drain(..n)) {
                *slot = b;
            }
            Poll::Ready(Ok(n))
        })
        .await
    }
    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        // Every write takes a moment (no virtual time), so an expired bound would win the race.
        let mut yielded = false;
        core::future::poll_fn(|_| {
            if yielded {
                Poll::Ready(())
            } else {
                yielded = true;
                Poll::Pending
            }
        })
        .await;
        for &b in buf {
            self.line.push(b);
            if b == b'\n' {
                self.answer();
                self.line.clear();
            }
        }
        Ok(())
    }
    async fn close(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn now() -> core::time::Duration {
        core::time::Duration::from_secs(REPLY_NOW.with(|n| n.get()))
    }
    fn sleep(duration: core::time::Duration) -> impl Future<Output = ()> {
        let deadline = REPLY_NOW.with(|n| n.get()) + duration.as_secs();
        core::future::poll_fn(move |_| {
            if REPLY_NOW.with(|n| n.get()) >= deadline {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

/// The write-progress rule is about one body being written: a batch whose server takes a
/// minute per reply runs for far longer than the rule's grace, and still succeeds.
#[test]
fn slow_replies_in_a_batch_are_not_a_slow_write() {
    REPLY_NOW.with(|n| n.set(0));
    let mut server = SlowReplies {
        server: VecDeque::new(),
        line: Vec::new(),
        in_data: false,
        waited: false,
    };
    server.server.extend(b"220 mx\r\n");
    let bodies: Vec<Vec<u8>> = (0..4)
        .map(|i| format!("message {i}\r\n").into_bytes())
        .collect();
    let batch: Vec<BatchMessage<'_>> = bodies
        .iter()
        .map(|b| BatchMessage::new("a@x.example", &["b@y.example"], b))
        .collect();
    let results = block_on(async {
        let mut client = SmtpClient::connect(server, "client.example").await.unwrap();
        client.send_batch(&batch).await
    });
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(
        REPLY_NOW.with(|n| n.get()) > 600,
        "the batch took virtual minutes"
    );
}

/// `open` dispatches by TLS mode, and the transport says whether it is encrypted: over implicit
/// TLS the default options allow AUTH with no flag; over STARTTLS the upgrade comes first.
#[test]
fn open_by_mode_and_encryption_from_the_transport() {
    let implicit = "
        S: 220 mx.example ESMTP
        C: EHLO client.example
        S: 250-mx.example
        S: 250 AUTH PLAIN
        C: AUTH PLAIN AHUAcA==
        S: 235 ok
    ";
    block_on(async {
        let mut transport = Scripted::new(implicit);
        transport.tls = true;
        let mut client = SmtpClient::open(
            transport,
            TlsMode::Implicit,
            "client.example",
            SmtpClientOptions::new(),
        )
        .await
        .unwrap();
        assert!(client.session().is_tls());
        client.login("u", "p").await.unwrap();
    });
    let starttls = format!(
        "{GREETING}\nC: STARTTLS\nS: 220 go\nT: upgrade\nC: EHLO client.example\nS: 250-mx.example\nS: 250 AUTH PLAIN"
    );
    block_on(async {
        let client = SmtpClient::open(
            Scripted::new(&starttls),
            TlsMode::StartTls,
            "client.example",
            SmtpClientOptions::new(),
        )
        .await
        .unwrap();
        assert!(client.session().is_tls());
        assert_eq!(TlsMode::StartTls.default_port(), 587);
    });
}

// ------------------------------------------------------------ reuse: check_idle, deliver

fn connected(script: &str) -> SmtpClient<Scripted> {
    block_on(SmtpClient::connect_with(
        Scripted::new(script),
        "client.example",
        options(),
    ))
    .unwrap()
}

#[test]
fn check_idle_on_a_quiet_connection_changes_nothing() {
    let script = format!(
        "{GREETING}
        T: idle
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<b@y.example>
        C: DATA
        S: 250 ok
        S: 250 ok
        S: 354 go
        C: hi
        C: .
        S: 250 2.0.0 queued
        "
    );
    let mut client = connected(&script);
    assert_eq!(block_on(client.check_idle()), IdleStatus::Quiet);
    assert_eq!(block_on(client.check_idle()), IdleStatus::Quiet);
    let sent = block_on(client.deliver(&BatchMessage::new("a@x.example", &["b@y.example"], b"hi")));
    assert!(matches!(sent, Delivery::Sent(_)), "{sent:?}");
    assert!(client.end_of_data_written());
}

/// A 421 that arrived while the connection sat idle is never paired with the next command:
/// the client closes, and the next call fails without writing anything.
#[test]
fn check_idle_closes_on_a_reply_sent_while_idle() {
    // The 421 comes in a read of its own, after the EHLO reply was handled.
    let mut transport = Scripted::new(GREETING);
    transport.steps.push_back(Step::Server(
        b"421 4.4.2 mx.example idle too long\r\n".to_vec(),
    ));
    let mut client = block_on(SmtpClient::connect_with(
        transport,
        "client.example",
        options(),
    ))
    .unwrap();
    assert_eq!(client.state(), SessionState::Authentication);
    let status = block_on(client.check_idle());
    let IdleStatus::Unsolicited { bytes } = status else {
        panic!("{status:?}");
    };
    assert!(bytes.starts_with(b"421 4.4.2"), "{bytes:?}");
    assert_eq!(client.state(), SessionState::Closed);
    assert!(client.transport().closed);
    // The Scripted transport panics on any write: nothing is sent.
    let err = block_on(client.send_mail("a@x.example", &["b@y.example"], "hi")).unwrap_err();
    assert_eq!(err.blame(), crate::Blame::Io, "{err}");
    assert_eq!(block_on(client.check_idle()), IdleStatus::Closed);
}

#[test]
fn check_idle_sees_a_hang_up() {
    let mut client = connected(GREETING);
    assert_eq!(block_on(client.check_idle()), IdleStatus::Closed);
    assert_eq!(client.state(), SessionState::Closed);
    assert!(client.transport().closed);
}

const ENVELOPE: &str = "
    C: MAIL FROM:<a@x.example>
    C: RCPT TO:<b@y.example>
    C: DATA
";

fn deliver_hi(script: &str) -> (Delivery, bool) {
    let mut client = connected(script);
    let d = block_on(client.deliver(&BatchMessage::new("a@x.example", &["b@y.example"], b"hi")));
    (d, client.end_of_data_written())
}

#[test]
fn a_421_at_mail_is_not_sent_and_retryable() {
    let (d, eod) = deliver_hi(&format!(
        "{GREETING}{ENVELOPE}
        S: 421 4.3.2 shutting down
        "
    ));
    assert!(!eod);
    assert!(
        matches!(
            &d,
            Delivery::NotSent {
                before_end_of_data: true,
                ..
            }
        ),
        "{d:?}"
    );
    assert!(d.is_retryable());
}

#[test]
fn a_hang_up_before_the_dot_is_not_sent_and_retryable() {
    let (d, eod) = deliver_hi(&format!(
        "{GREETING}{ENVELOPE}
        S: 250 ok
        "
    ));
    assert!(!eod);
    assert_eq!(d.error().map(SmtpError::blame), Some(crate::Blame::Io));
    assert!(d.is_retryable(), "{d:?}");
}

#[test]
fn a_hang_up_after_the_dot_is_unknown() {
    let (d, eod) = deliver_hi(&format!(
        "{GREETING}{ENVELOPE}
        S: 250 ok
        S: 250 ok
        S: 354 go
        C: hi
        C: .
        "
    ));
    assert!(eod);
    assert_eq!(
        d,
        Delivery::Unknown(SmtpError::Protocol(ProtocolError::ConnectionClosed {
            during: SmtpOp::DataEnd
        }))
    );
    assert!(!d.is_retryable());
}

#[test]
fn a_refusal_of_the_dot_is_not_sent_but_not_retried() {
    for code in ["451 4.3.0 try later", "554 5.6.0 rejected"] {
        let (d, eod) = deliver_hi(&format!(
            "{GREETING}{ENVELOPE}
            S: 250 ok
            S: 250 ok
            S: 354 go
            C: hi
            C: .
            S: {code}
            "
        ));
        assert!(eod);
        assert!(
            matches!(
                &d,
                Delivery::NotSent {
                    before_end_of_data: false,
                    ..
                }
            ),
            "{d:?}"
        );
        assert!(!d.is_retryable());
    }
}

#[test]
fn a_5xx_before_the_dot_is_final() {
    let (d, eod) = deliver_hi(&format!(
        "{GREETING}{ENVELOPE}
        S: 550 5.7.1 sender refused
        S: 503 5.5.1 no valid sender
        S: 503 5.5.1 no valid recipients
        "
    ));
    assert!(!eod);
    assert!(matches!(&d, Delivery::NotSent { .. }), "{d:?}");
    assert!(!d.is_retryable());
}
