//! The same transcript style, run through `SmtpClient` over an in-memory transport that checks
//! every write against the script and fails on an unexpected one.

use std::collections::VecDeque;
use std::io;

use smtp_testkit::Step as ScriptStep;

use super::*;
use crate::capabilities::Extension;
use crate::connect::TlsMode;
use crate::error::{AuthError, InvalidInputError, ProtocolError};
use crate::future::block_on;

mod batch;
mod reuse;
mod timing;

#[derive(Debug)]
enum Step {
    Server(Vec<u8>),
    Client(Vec<u8>),
    Tls,
    /// `T: idle`: the server sends nothing now; a read stays pending until the client writes.
    Idle,
    /// `X: close`: the server has closed the connection: the next write fails, a read ends.
    Close,
}

/// A transport that plays the `S:` lines and checks the `C:` lines; `T: tls` marks the TLS
/// handshake. Dropping it with script left over fails the test.
struct Scripted {
    steps: VecDeque<Step>,
    closed: bool,
    tls: bool,
    /// The size of each `write_all` call, shared so a test can read it after the client is gone.
    writes: std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
    /// What `input_pending` answers.
    pending: Option<bool>,
    /// A write ending with these bytes reaches the server, then fails (a transport that
    /// reports a failure after handing the bytes over).
    fails_after: Option<&'static [u8]>,
}

impl Scripted {
    fn new(script: &str) -> Scripted {
        // The testkit's S:/C: format: a run of `S:` lines is one read, a run of `C:` lines one
        // flight (every `C:` line exact, with its CRLF).
        let mut steps = VecDeque::new();
        for step in smtp_testkit::Script::parse(script).steps() {
            match (step, steps.back_mut()) {
                (ScriptStep::Reply(_), _) => steps.push_back(Step::Server(step.reply_bytes())),
                (ScriptStep::Exact(line), Some(Step::Client(flight))) => {
                    flight.extend_from_slice(line.as_bytes());
                    flight.extend_from_slice(b"\r\n");
                }
                (ScriptStep::Exact(line), _) => {
                    steps.push_back(Step::Client(format!("{line}\r\n").into_bytes()))
                }
                (ScriptStep::Tls, _) => steps.push_back(Step::Tls),
                (ScriptStep::Idle, _) => steps.push_back(Step::Idle),
                (ScriptStep::Close, _) => steps.push_back(Step::Close),
                (other, _) => panic!("{other}: not a step of the driver's transcripts"),
            }
        }
        Scripted {
            steps,
            closed: false,
            tls: false,
            writes: Default::default(),
            pending: None,
            fails_after: None,
        }
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            // A script may end with `T: idle`: the server says nothing more.
            while matches!(self.steps.back(), Some(Step::Idle)) {
                self.steps.pop_back();
            }
            let left: Vec<String> = self
                .steps
                .iter()
                .map(|s| match s {
                    Step::Server(b) => format!("S: {}", String::from_utf8_lossy(b)),
                    Step::Client(b) => format!("C: {}", String::from_utf8_lossy(b)),
                    Step::Tls => "T: tls".into(),
                    Step::Idle => "T: idle".into(),
                    Step::Close => "X: close".into(),
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
            Some(Step::Close) => {
                self.steps.pop_front();
                Ok(0)
            }
        }
    }

    async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        assert!(!self.closed, "write after close");
        let whole = buf;
        self.writes.lock().unwrap().push(buf.len());
        if matches!(self.steps.front(), Some(Step::Idle)) {
            self.steps.pop_front();
        }
        if matches!(self.steps.front(), Some(Step::Close)) {
            self.steps.pop_front();
            return Err(io::ErrorKind::BrokenPipe.into());
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
        match self.fails_after {
            Some(end) if whole.ends_with(end) => Err(io::ErrorKind::BrokenPipe.into()),
            _ => Ok(()),
        }
    }

    async fn close(&mut self) -> io::Result<()> {
        self.closed = true;
        Ok(())
    }

    /// The script answers at once; its timer never fires.
    fn sleep(_duration: core::time::Duration) -> impl Future<Output = ()> {
        core::future::pending()
    }

    fn input_pending(&self) -> Option<bool> {
        self.pending
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

/// A client connected with [`options`] over a transport that plays `script`.
async fn connect(script: &str) -> SmtpClient<Scripted> {
    SmtpClient::connect_with(Scripted::new(script), "client.example", options())
        .await
        .unwrap()
}

/// A client connected with [`options`] over `transport` (a [`Scripted`] set up by hand).
fn connected_over(transport: Scripted) -> SmtpClient<Scripted> {
    block_on(SmtpClient::connect_with(
        transport,
        "client.example",
        options(),
    ))
    .unwrap()
}

/// The client closed its session and its transport.
#[track_caller]
fn assert_closed(client: &SmtpClient<Scripted>) {
    assert_eq!(client.state(), SessionState::Closed);
    assert!(client.transport().closed, "transport left open");
}

/// The envelope of most messages here, one flight after PIPELINING, and its replies up to
/// the `354`.
/// A greeting and EHLO offering PIPELINING and CHUNKING.
const GREETING_CHUNKING: &str = "
    S: 220 mx.example ESMTP
    C: EHLO client.example
    S: 250-mx.example
    S: 250-PIPELINING
    S: 250 CHUNKING
";

const ENVELOPE: &str = "C: MAIL FROM:<a@x.example>
    C: RCPT TO:<b@y.example>
    C: DATA
    S: 250 ok
    S: 250 ok
    S: 354 go
";

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
        {ENVELOPE}
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
        let mut client = connect(&script).await;
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
    send_large_body(
        "C: .\nS: 250 2.0.0 queued as BIG\n",
        async |client, body| {
            let outcome = client
                .send_mail_bytes("a@x.example", &["b@y.example"], body)
                .await
                .unwrap();
            assert_eq!(outcome.queue_id.as_deref(), Some("BIG"));
        },
    );
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

/// Run `send` with the [`large_body`] on a client connected with [`options`] over a script of
/// `GREETING`, `ENVELOPE`, the body's lines dot-stuffed and `rest`; then check that the body
/// went out in slices.
fn send_large_body(rest: &str, send: impl AsyncFnOnce(&mut SmtpClient<Scripted>, &[u8])) {
    let (lines, body) = large_body();
    let mut script = format!("{GREETING}{ENVELOPE}");
    for line in lines {
        let stuffed = if line.starts_with('.') { "." } else { "" };
        script.push_str(&format!("C: {stuffed}{line}\n"));
    }
    script.push_str(rest);
    let transport = Scripted::new(&script);
    let writes = transport.writes.clone();
    let mut client = connected_over(transport);
    block_on(send(&mut client, body.as_bytes()));
    drop(client);
    assert_sliced(&writes.lock().unwrap(), body.len());
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

/// The end of a message's data and the envelope of the next one, to `to`, in one flight (a
/// batch chains them), then the reply to the first: queued as `id`.
fn chained(to: &str, id: &str) -> String {
    format!(
        "C: .\nC: MAIL FROM:<a@x.example>\nC: RCPT TO:<{to}>\nC: DATA\nS: 250 2.0.0 queued as {id}\n"
    )
}

/// The same in a batch: the large message is written in slices, and the next message is still
/// chained behind its end of data.
#[test]
fn send_batch_writes_a_large_body_in_bounded_slices() {
    let rest = chained("c@y.example", "BIG")
        + "S: 250 ok\nS: 250 ok\nS: 354 go\nC: small\nC: .\nS: 250 2.0.0 queued as SMALL\n";
    send_large_body(&rest, async |client, body| {
        let results = client
            .send_batch(&[
                OutgoingMessage::new("a@x.example", &["b@y.example"], body),
                OutgoingMessage::new("a@x.example", &["c@y.example"], b"small\r\n"),
            ])
            .await;
        let ids: Vec<_> = results
            .into_iter()
            .map(|r| r.unwrap().queue_id.unwrap())
            .collect();
        assert_eq!(ids, ["BIG", "SMALL"]);
    });
}

#[test]
fn connect_starttls_redoes_ehlo() {
    let script = format!(
        "{GREETING}
        C: STARTTLS
        S: 220 go ahead
        T: tls
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

/// Bytes that arrive after the `220` to STARTTLS, in a read of their own but before the
/// handshake, are response injection: the session closes with that error, and no handshake is
/// started. They used to reach the TLS layer, which called them a bad record.
#[test]
fn bytes_waiting_before_the_handshake_are_response_injection() {
    let script = format!(
        "{GREETING}
        C: STARTTLS
        S: 220 go ahead
        S: 250 AUTH PLAIN injected
        "
    );
    let mut transport = Scripted::new(&script);
    // The 220 and the injected line come in separate reads; the second is waiting when the
    // client would start the handshake.
    let Some(Step::Server(mut go_ahead)) = transport.steps.pop_back() else {
        panic!("the 220 and the injected line");
    };
    let injected = go_ahead.split_off(b"220 go ahead\r\n".len());
    transport
        .steps
        .extend([Step::Server(go_ahead), Step::Server(injected)]);
    transport.pending = Some(true);
    block_on(async {
        let mut client = connected_over(transport);
        let error = client.starttls().await.unwrap_err();
        assert!(
            matches!(
                error,
                SmtpError::Protocol(ProtocolError::ResponseInjection { .. })
            ),
            "{error:?}"
        );
        assert!(!client.transport().tls, "no handshake");
        assert_closed(&client);
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
        let mut client = connect(script).await;
        let err = client.starttls().await.unwrap_err();
        assert_eq!(
            err,
            SmtpError::Protocol(ProtocolError::ExtensionUnavailable {
                name: Extension::StartTls
            })
        );
        assert_closed(&client);
        // No plaintext login afterwards.
        assert_eq!(client.login("u", "p").await.unwrap_err(), err);
    });
}

#[test]
fn stream_body_is_stuffed_across_chunks() {
    let script = format!(
        "{GREETING}
        {ENVELOPE}
        C: line one
        C: ..two
        C: ...
        C: .
        S: 250 ok
        "
    );
    block_on(async {
        let mut client = connect(&script).await;
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
        let mut client = connect(&script).await;
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
        {ENVELOPE}
        C: hi
        C: .
        "
    );
    block_on(async {
        let mut client = connect(&script).await;
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
        assert_closed(&client);
    });
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
        {ENVELOPE}
        "
    );
    block_on(async {
        let mut client = connect(&script).await;
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
        assert_closed(&client);
    });
}

#[test]
fn invalid_arguments_are_refused_without_io() {
    block_on(async {
        let mut client = connect(GREETING).await;
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
        {ENVELOPE}
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
        assert_closed(&client);
        assert!(body.left > (1 << 20) - 16, "stopped reading at once");
    });
}

/// `open` dispatches by TLS mode, and the transport says whether it is encrypted: over implicit
/// TLS the default options allow AUTH with no flag; over STARTTLS the upgrade comes first.
#[test]
fn open_by_mode_and_encryption_from_the_transport() {
    let open = |transport, mode| {
        block_on(SmtpClient::open(
            transport,
            mode,
            "client.example",
            SmtpClientOptions::new(),
        ))
        .unwrap()
    };
    let implicit = "
        S: 220 mx.example ESMTP
        C: EHLO client.example
        S: 250-mx.example
        S: 250 AUTH PLAIN
        C: AUTH PLAIN AHUAcA==
        S: 235 ok
    ";
    let mut transport = Scripted::new(implicit);
    transport.tls = true;
    let mut client = open(transport, TlsMode::Implicit);
    assert!(client.session().is_tls());
    block_on(client.login("u", "p")).unwrap();
    drop(client);
    let starttls = format!(
        "{GREETING}\nC: STARTTLS\nS: 220 go\nT: tls\nC: EHLO client.example\nS: 250-mx.example\nS: 250 AUTH PLAIN"
    );
    let client = open(Scripted::new(&starttls), TlsMode::StartTls);
    assert!(client.session().is_tls());
    assert_eq!(TlsMode::StartTls.default_port(), 587);
}

// ------------------------------------------------------------ reuse: check_idle, deliver

/// A [`Scripted`] transport whose close never ends (a TLS `close_notify` to a server that
/// stopped reading), and whose timers fire at once (`TIMERS_FIRE`) or never (then a call can
/// be dropped while the client closes it).
struct StuckClose<const TIMERS_FIRE: bool>(Scripted);

impl<const TIMERS_FIRE: bool> Transport for StuckClose<TIMERS_FIRE> {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).await
    }

    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf).await
    }

    async fn close(&mut self) -> io::Result<()> {
        core::future::pending().await
    }

    async fn sleep(_duration: core::time::Duration) {
        if !TIMERS_FIRE {
            core::future::pending::<()>().await;
        }
    }

    fn now() -> core::time::Duration {
        core::time::Duration::ZERO
    }
}

/// A client connected with `options` over a [`StuckClose`] playing `script`.
fn connect_stuck<const TIMERS_FIRE: bool>(
    script: &str,
    options: SmtpClientOptions,
) -> SmtpClient<StuckClose<TIMERS_FIRE>> {
    let transport = StuckClose(Scripted::new(script));
    block_on(SmtpClient::connect_with(
        transport,
        "client.example",
        options,
    ))
    .unwrap()
}

/// The server answered QUIT (a 421 of its own idle timeout, or 221) and hung up, so the QUIT
/// write fails with the answer waiting: the session ended as QUIT ends one, `Ok`. It was a
/// caller error (`WrongState`) once the answer was read after the failed write (found in
/// review).
#[test]
fn a_quit_answered_before_its_write_failed_ends_well() {
    for answer in ["421 4.4.2 mx.example idle timeout, closing", "221 bye"] {
        let script = format!("{GREETING}X: close\nS: {answer}\n");
        let client = block_on(connect(&script));
        assert_eq!(block_on(client.quit()), Ok(()), "{answer}");
    }
}

/// Closing the transport is bounded too: a close that never ends is given up, QUIT's caller
/// hears a timed-out close instead of waiting for ever.
#[test]
fn a_close_that_never_ends_is_given_up() {
    let script = format!("{GREETING}C: QUIT\nS: 221 bye\n");
    let client = connect_stuck::<true>(&script, options());
    let error = block_on(client.quit()).unwrap_err();
    assert!(
        matches!(
            &error,
            SmtpError::Io { during: SmtpOp::Close, error } if error.kind == crate::IoErrorKind::TimedOut
        ),
        "{error:?}"
    );
}

/// A body source that never yields anything.
struct StalledBody;

impl MessageBody for StalledBody {
    async fn read_chunk(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        core::future::pending().await
    }
}

/// A stalled body source is bounded by the session's deadline like everything else: the
/// deadline ends the session instead of the wait for the source going on for ever. (The
/// transport's timers fire at once: the deadline is due the first time it is waited for.)
#[test]
fn a_stalled_body_source_is_bounded_by_the_deadline() {
    let script = format!("{GREETING}{ENVELOPE}");
    let mut client = connect_stuck::<true>(
        &script,
        options().with_deadline(core::time::Duration::from_secs(10)),
    );
    let error =
        block_on(client.send_mail_stream("a@x.example", &["b@y.example"], &mut StalledBody))
            .unwrap_err();
    assert!(
        matches!(error, SmtpError::DeadlineExceeded { .. }),
        "{error:?}"
    );
    assert_eq!(client.state(), SessionState::Closed);
}

/// A body source of `left` bytes of `x`, read 4 at a time, of unknown size.
struct Xs {
    left: usize,
}

impl MessageBody for Xs {
    async fn read_chunk(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.left).min(4);
        buf[..n].fill(b'x');
        self.left -= n;
        Ok(n)
    }

    fn chunk_size(&self) -> usize {
        4
    }
}

/// A streamed body over BDAT whose first chunk is refused (552): the message fails with that
/// refusal and ends without a `BDAT ... LAST`, and the next message goes out cleanly after a
/// RSET. It used to fail with `WrongState` (the driver ended a body the engine had given up),
/// leaving the 552 to fail the next message, and the session stuck.
#[test]
fn a_refused_chunk_of_a_streamed_body_stays_with_its_message() {
    let mut transport = Scripted::new(&format!(
        "{GREETING_CHUNKING}C: MAIL FROM:<a@x.example>\nC: RCPT TO:<b@y.example>"
    ));
    transport.steps.extend([
        Step::Client(b"BDAT 4\r\nxxxx".to_vec()),
        Step::Client(b"BDAT 4\r\nxxxx".to_vec()),
        Step::Server(b"250 ok\r\n250 ok\r\n552 5.3.4 message too big\r\n250 ok\r\n".to_vec()),
        Step::Client(b"RSET\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<c@y.example>\r\n".to_vec()),
        Step::Client(b"BDAT 5 LAST\r\ntwo\r\n".to_vec()),
        Step::Server(b"250 ok\r\n250 ok\r\n250 ok\r\n250 2.0.0 queued as TWO\r\n".to_vec()),
    ]);
    let options = options().map_session_config(|c| {
        c.bdat_chunk_size = 4;
        c.max_bdat_in_flight = 2;
    });
    block_on(async {
        let mut client = SmtpClient::connect_with(transport, "client.example", options)
            .await
            .unwrap();
        let first = client
            .send_mail_stream("a@x.example", &["b@y.example"], &mut Xs { left: 100 })
            .await
            .unwrap_err();
        assert!(
            matches!(
                &first,
                SmtpError::Protocol(ProtocolError::UnexpectedCode { during: SmtpOp::Bdat, reply })
                    if reply.code().get() == 552
            ),
            "{first:?}"
        );
        let second = client
            .send_mail("a@x.example", &["c@y.example"], "two")
            .await;
        assert_eq!(second.unwrap().queue_id.as_deref(), Some("TWO"));
    });
}
