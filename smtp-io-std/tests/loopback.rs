//! The blocking client against scripted and mock servers on loopback TCP, with the test CA for
//! TLS: the same kinds of cases as the async client's (`tests/tests/*.rs`,
//! `smtp-io-tokio/tests`). The servers run on a tokio runtime of the test (the servers of
//! `smtp-testkit`); the client under test runs on the test's own thread, with no runtime.

use std::io::Read;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smtp_io_std::{
    AuthError, AuthMechanism, ConnectOptions, Delivery, InvalidInputError, OutgoingMessage,
    ProtocolError, ReaderBody, SessionState, SmtpClient, SmtpError, SmtpOp, TlsConfig, TlsMode,
};
use smtp_testkit::certs::{localhost_server_config, pki};
use smtp_testkit::expect::{assert_io_during, is_io_during, timeout};
use smtp_testkit::mock::OnData;
use smtp_testkit::script::FLIGHT;
use smtp_testkit::{Act, Conversation, MockServer, Report, ScriptServer, greet};

const CLIENT: &str = "client.test";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn test_ca() -> TlsConfig {
    TlsConfig::from_ca_pem(pki().ca_pem()).expect("test CA")
}

/// Options of a TLS `mode` that trust the test CA.
fn tls(mode: TlsMode) -> ConnectOptions {
    ConnectOptions::new(mode).with_tls_config(test_ca())
}

fn plain() -> ConnectOptions {
    ConnectOptions::new(TlsMode::None).with_reply_timeout(Duration::from_secs(10))
}

/// A client without TLS, from [`plain`], connected to the server on loopback `port`.
fn connect_plain(port: u16) -> SmtpClient {
    plain().connect("127.0.0.1", port, CLIENT).unwrap()
}

/// A client of TLS `mode` trusting the test CA (10 s reply limit), connected to `localhost:port`.
fn connect_tls(mode: TlsMode, port: u16) -> SmtpClient {
    tls(mode)
        .with_reply_timeout(Duration::from_secs(10))
        .connect("localhost", port, CLIENT)
        .unwrap()
}

/// A script that greets with `caps`, then takes only QUIT.
fn quit_only(caps: &[&str]) -> String {
    format!("{}C: QUIT\nS: 221 bye\n", greet(CLIENT, caps))
}

/// One message from `a@x.test` to `b@y.test` up to its body without PIPELINING (each command
/// waits for its reply): the end-of-data reply is the caller's.
const LOCKSTEP: &str = "C: MAIL FROM:<a@x.test>\nS: 250 ok\nC: RCPT TO:<b@y.test>\nS: 250 ok\n\
                        C: DATA\nS: 354 go\nC: DATA-BODY\n";

fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// QUIT, then the scripted server's report, which must show the whole script ran.
fn finish(rt: &tokio::runtime::Runtime, client: SmtpClient, server: ScriptServer) -> Report {
    client.quit().expect("QUIT");
    let report = rt.block_on(server.report());
    assert!(report.ok(), "{}", report.explain());
    report
}

/// [`finish`], and the scripted server received `body` as its only message.
fn finish_with_body(
    rt: &tokio::runtime::Runtime,
    client: SmtpClient,
    server: ScriptServer,
    body: &[u8],
) {
    let report = finish(rt, client, server);
    assert_eq!(report.bodies, [body.to_vec()]);
}

// --------------------------------------------------------------------------- scripted servers

#[test]
fn plain_send_pipelines_the_envelope_and_is_byte_exact() {
    let rt = runtime();
    let script = format!(
        "{}C: MAIL FROM:<a@x.test> SIZE=22
        C: RCPT TO:<b@y.test>
        C: RCPT TO:<c@y.test>
        S: 250 ok
        S: 250 ok
        S: 250 ok
        C: DATA
        S: 354 go
        C: DATA-BODY
        S: 250 2.0.0 Ok: queued as PLAIN1
        C: QUIT
        S: 221 bye
        ",
        greet(CLIENT, &["PIPELINING", "SIZE 1000"])
    );
    let server = rt.block_on(ScriptServer::start(&script));
    let mut client = connect_plain(server.port());
    assert_eq!(client.state(), SessionState::Authentication);
    assert_eq!(client.capabilities(), ["PIPELINING", "SIZE 1000"]);
    let sent = client.send_mail(
        "a@x.test",
        &["b@y.test", "c@y.test"],
        "Subject: hi\r\n\r\nhello\r\n",
    );
    let outcome = match sent {
        Ok(outcome) => outcome,
        Err(e) => panic!("{e:?}\n{}", rt.block_on(server.report()).explain()),
    };
    assert_eq!(outcome.queue_id.as_deref(), Some("PLAIN1"));
    assert_eq!(outcome.recipients.len(), 2);
    finish_with_body(&rt, client, server, b"Subject: hi\r\n\r\nhello\r\n");
}

#[test]
fn dot_lines_and_bare_lf_arrive_stuffed_and_normalised() {
    let rt = runtime();
    let script = format!(
        "{}{LOCKSTEP}S: 250 queued
        C: QUIT
        S: 221 bye
        ",
        greet(CLIENT, &[])
    );
    let server = rt.block_on(ScriptServer::start(&script));
    let mut client = connect_plain(server.port());
    let body = b"Subject: dots\n\n.leading dot\r\n..two dots\nbare LF\n.\nlast line without end";
    client
        .send_mail_bytes("a@x.test", &["b@y.test"], body)
        .unwrap();
    // As on the wire: CRLF everywhere, each leading dot doubled, a final CRLF added.
    let want: &[u8] = b"Subject: dots\r\n\r\n..leading dot\r\n...two dots\r\nbare LF\r\n..\r\n\
        last line without end\r\n";
    finish_with_body(&rt, client, server, want);
}

#[test]
fn starttls_then_auth_plain() {
    let rt = runtime();
    let script = format!(
        "{}C: STARTTLS
        S: 220 2.0.0 Ready to start TLS
        T: tls
        C: EHLO client.test
        S: 250-mx.test after TLS
        S: 250-PIPELINING
        S: 250 AUTH PLAIN LOGIN
        C: AUTH PLAIN {}
        S: 235 2.7.0 ok
        {FLIGHT}S: 250 2.0.0 Ok: queued as TLS1
        C: QUIT
        S: 221 bye
        ",
        greet(CLIENT, &["PIPELINING", "STARTTLS", "AUTH LOGIN"]),
        b64(b"\0user\0pass")
    );
    let server = rt.block_on(ScriptServer::with_tls(&script, localhost_server_config()));
    let mut client = connect_tls(TlsMode::StartTls, server.port());
    assert!(client.session().is_tls());
    assert!(client.stream().is_tls());
    assert!(client.stream().tls_info().is_some());
    // Only the capabilities of the EHLO on TLS count.
    assert_eq!(client.capabilities(), ["PIPELINING", "AUTH PLAIN LOGIN"]);
    client.login("user", "pass").unwrap();
    assert_eq!(client.session().authenticated(), Some(AuthMechanism::Plain));
    let outcome = client
        .send_mail("a@x.test", &["b@y.test"], "over TLS\r\n")
        .unwrap();
    assert_eq!(outcome.queue_id.as_deref(), Some("TLS1"));
    finish_with_body(&rt, client, server, b"over TLS\r\n");
}

#[test]
fn implicit_tls_with_xoauth2_and_a_streamed_body() {
    let rt = runtime();
    let script = format!(
        "{}C: AUTH XOAUTH2 {}
        S: 235 2.7.0 ok
        {LOCKSTEP}S: 250 queued as IMPL1
        C: QUIT
        S: 221 bye
        ",
        greet(CLIENT, &["AUTH PLAIN XOAUTH2"]),
        b64(b"user=me@x.test\x01auth=Bearer tok3n\x01\x01")
    );
    let server = rt.block_on(ScriptServer::implicit_tls(
        &script,
        localhost_server_config(),
    ));
    let mut client = connect_tls(TlsMode::Implicit, server.port());
    assert!(client.session().is_tls());
    client.login_xoauth2("me@x.test", "tok3n").unwrap();
    assert_eq!(
        client.session().authenticated(),
        Some(AuthMechanism::XOAuth2)
    );
    // A `Read` of unknown size, three bytes at a time: the stuffing spans the reads.
    let text: &[u8] = b"Subject: s\r\n\r\n.dot\r\nline\r\n";
    let mut body = ReaderBody::new(text).with_chunk_size(3);
    let outcome = client
        .send_mail_stream("a@x.test", &["b@y.test"], &mut body)
        .unwrap();
    assert_eq!(outcome.queue_id.as_deref(), Some("IMPL1"));
    finish_with_body(&rt, client, server, b"Subject: s\r\n\r\n..dot\r\nline\r\n");
}

#[test]
fn a_certificate_for_another_host_fails_the_handshake_typed() {
    let rt = runtime();
    let server = rt.block_on(ScriptServer::implicit_tls(
        "S: 220 never seen",
        smtp_testkit::certs::wrong_host_server_config(),
    ));
    let error = tls(TlsMode::Implicit)
        .connect("localhost", server.port(), CLIENT)
        .unwrap_err();
    assert_io_during(&error, SmtpOp::TlsHandshake);
    drop(rt);
}

#[test]
fn cr_lf_in_an_address_is_refused_before_any_byte_is_written() {
    let rt = runtime();
    // After EHLO the server expects QUIT and nothing else: a MAIL line would be a mismatch.
    let server = rt.block_on(ScriptServer::start(&quit_only(&["PIPELINING"])));
    let mut client = connect_plain(server.port());
    for (from, to) in [
        ("a@x.test\r\nRCPT TO:<evil@z.test>", "b@y.test"),
        ("a@x.test", "b@y.test>\r\nDATA"),
        ("a@x.test", "b@y.test\n"),
    ] {
        let error = client.send_mail(from, &[to], "x\r\n").unwrap_err();
        assert!(
            matches!(
                error,
                SmtpError::InvalidInput(InvalidInputError::Argument { .. })
            ),
            "{error:?}"
        );
        assert_eq!(client.state(), SessionState::Authentication);
    }
    let report = finish(&rt, client, server);
    assert!(report.bodies.is_empty());
}

#[test]
fn a_server_that_never_replies_times_out_typed() {
    let rt = runtime();
    let script = format!("{}C: MAIL FROM:<a@x.test>\nX: stall\n", greet(CLIENT, &[]));
    let server = rt.block_on(ScriptServer::start(&script));
    let mut client = ConnectOptions::new(TlsMode::None)
        .with_reply_timeout(Duration::from_secs(1))
        .connect("127.0.0.1", server.port(), CLIENT)
        .unwrap();
    let error = client
        .send_mail("a@x.test", &["b@y.test"], "x\r\n")
        .unwrap_err();
    assert_eq!(
        error,
        SmtpError::Timeout {
            during: SmtpOp::MailFrom,
            after: Duration::from_secs(1)
        }
    );
    assert_eq!(client.state(), SessionState::Closed);
    // Sticky: every later call gets the same error, without I/O.
    assert_eq!(client.noop().unwrap_err(), error);
    client.quit().unwrap();
    let report = rt.block_on(server.report());
    assert!(report.client_hung_up, "{}", report.explain());
}

// ------------------------------------------------------------------------------- mock servers

/// A well-behaved server that refuses one recipient, and keeps the bodies it receives.
struct Refusing {
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Conversation for Refusing {
    fn command(&mut self, line: &str) -> Act {
        if line.contains("nobody@") {
            return Act::send("550 5.1.1 no such user\r\n");
        }
        smtp_testkit::mock::well_behaved("mock.test", &["PIPELINING", "8BITMIME"], line)
    }

    fn end_of_data(&mut self, body: Vec<u8>) -> Act {
        self.bodies.lock().unwrap().push(body);
        Act::send("250 2.0.0 queued\r\n")
    }
}

/// A [`Refusing`] server on `rt`, and the bodies it keeps.
fn refusing(rt: &tokio::runtime::Runtime) -> (MockServer, Arc<Mutex<Vec<Vec<u8>>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    let server = rt.block_on(MockServer::start(move |_| Refusing {
        bodies: kept.clone(),
    }));
    (server, bodies)
}

#[test]
fn a_refused_recipient_is_typed_and_the_session_stays_usable() {
    let rt = runtime();
    let (server, bodies) = refusing(&rt);
    let mut client = connect_plain(server.port());
    let error = client
        .send_mail("a@x.test", &["b@y.test", "nobody@y.test"], "refused\r\n")
        .unwrap_err();
    let SmtpError::Protocol(ProtocolError::RecipientsRefused { refused, .. }) = &error else {
        panic!("{error:?}");
    };
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].recipient, "nobody@y.test");
    assert_eq!(refused[0].reply.code().get(), 550);
    assert_ne!(client.state(), SessionState::Closed);
    // The next message goes through on the same connection; the refused one never did.
    client
        .send_mail("a@x.test", &["b@y.test"], "accepted\r\n")
        .unwrap();
    // A batch: one message refused locally in the middle, the others sent.
    let to: &[&str] = &["b@y.test"];
    let bad: &[&str] = &["b@y.test\r\nQUIT"];
    let results = client.send_batch(&[
        OutgoingMessage::new("a@x.test", to, b"one\r\n"),
        OutgoingMessage::new("a@x.test", bad, b"never\r\n"),
        OutgoingMessage::new("a@x.test", to, b"three\r\n"),
    ]);
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(matches!(results[1], Err(SmtpError::InvalidInput(_))));
    client.quit().unwrap();
    assert_eq!(
        *bodies.lock().unwrap(),
        [
            b"accepted\r\n".to_vec(),
            b"one\r\n".to_vec(),
            b"three\r\n".to_vec()
        ]
    );
    assert_eq!(server.accepted(), 1);
}

/// Takes the body's `354`, then reads one byte a second.
fn trickling() -> OnData<impl FnMut() -> Act + Send + 'static> {
    OnData(|| {
        Act::Seq(vec![
            Act::send("354 go\r\n"),
            Act::Trickle(Duration::from_secs(1)),
        ])
    })
}

/// Connect with `options` (a deadline of `deadline` added) to a [`trickling`] server on `port`,
/// and send far more than the socket buffers of loopback hold, so that the writes must block:
/// the error, with how long the call took from before the connect.
fn send_until_the_deadline(
    options: ConnectOptions,
    host: &str,
    port: u16,
    deadline: Duration,
) -> (SmtpError, Duration) {
    let started = Instant::now();
    let mut client = options
        .with_deadline(deadline)
        .connect(host, port, CLIENT)
        .unwrap();
    let body = vec![b'x'; 32 * 1024 * 1024];
    let error = client
        .send_mail_bytes("a@x.test", &["b@y.test"], &body)
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(client.state(), SessionState::Closed);
    client.quit().unwrap();
    (error, elapsed)
}

#[test]
fn a_server_reading_one_byte_a_second_hits_the_session_deadline() {
    let rt = runtime();
    let server = rt.block_on(MockServer::start(|_| trickling()));
    let deadline = Duration::from_secs(2);
    let (error, elapsed) = send_until_the_deadline(plain(), "127.0.0.1", server.port(), deadline);
    assert!(
        matches!(
            error,
            SmtpError::DeadlineExceeded {
                during: SmtpOp::Data | SmtpOp::DataEnd,
                after,
            } if after == deadline
        ),
        "{error:?}"
    );
    // Within its bound (a generous margin for a loaded machine, not a speed test): the
    // deadline, not the 3-minute data block limit, ended it.
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
}

/// The same over TLS: past the deadline the call returns, since the TLS close (`close_notify`
/// and the records still waiting) gets what is left of the deadline, none here. It used to
/// take one more second for each record write, whatever the deadline.
#[test]
fn the_tls_close_does_not_hold_the_caller_past_the_deadline() {
    let rt = runtime();
    let server = rt.block_on(MockServer::implicit_tls(localhost_server_config(), |_| {
        trickling()
    }));
    let deadline = Duration::from_secs(2);
    let (error, elapsed) =
        send_until_the_deadline(tls(TlsMode::Implicit), "localhost", server.port(), deadline);
    assert!(
        matches!(error, SmtpError::DeadlineExceeded { .. }),
        "{error:?}"
    );
    // The deadline and its timer's rounding, and no close of a second more.
    assert!(
        elapsed < deadline + Duration::from_millis(700),
        "{elapsed:?}"
    );
}

// ------------------------------------------------------------------------------ the connect

/// A listener that accepts and then says nothing (no TLS handshake, no greeting).
fn silent_listener() -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        if let Ok((mut socket, _)) = listener.accept() {
            // Hold the socket until the client hangs up.
            let mut sink = [0u8; 1024];
            let _ = socket.set_read_timeout(Some(Duration::from_secs(30)));
            while matches!(socket.read(&mut sink), Ok(n) if n > 0) {}
        }
    });
    (port, handle)
}

/// Connecting with `options` to `host` on the port of `listener` (a port and the thread that
/// serves it) fails with `expected`; the thread then ends.
fn connect_fails(
    options: ConnectOptions,
    host: &str,
    (port, listener): (u16, std::thread::JoinHandle<()>),
    expected: SmtpError,
) {
    let error = options.connect(host, port, CLIENT).unwrap_err();
    assert_eq!(error, expected);
    listener.join().unwrap();
}

#[test]
fn the_connect_counts_against_the_session_deadline() {
    // The implicit-TLS handshake is part of the connect: with a deadline shorter than the
    // connect timeout, the deadline is what ends it.
    let deadline = Duration::from_millis(500);
    let options = tls(TlsMode::Implicit)
        .with_connect_timeout(Duration::from_secs(30))
        .with_deadline(deadline);
    let expected = SmtpError::DeadlineExceeded {
        during: SmtpOp::TlsHandshake,
        after: deadline,
    };
    connect_fails(options, "localhost", silent_listener(), expected);
}

#[test]
fn the_connect_timeout_bounds_the_handshake_and_the_greeting_its_reply_limit() {
    let limit = Duration::from_millis(300);
    let options = tls(TlsMode::Implicit)
        .with_connect_timeout(limit)
        .with_deadline(Duration::from_secs(60));
    let expected = timeout(SmtpOp::TlsHandshake, limit);
    connect_fails(options, "localhost", silent_listener(), expected);

    let options = ConnectOptions::new(TlsMode::None).with_reply_timeout(limit);
    let expected = timeout(SmtpOp::Greeting, limit);
    connect_fails(options, "127.0.0.1", silent_listener(), expected);
}

#[test]
fn a_closed_port_is_an_io_error_during_connect() {
    let port = smtp_testkit::proxy::free_port();
    let error = plain().connect("127.0.0.1", port, CLIENT).unwrap_err();
    assert_io_during(&error, SmtpOp::Connect);
}

/// The shared builders reach the connection: the certificate is checked for the name set
/// with `with_tls_server_name`, not the host dialled (accepted for a server whose certificate
/// names it, refused for one whose certificate names the host), and the reply timeout and
/// deadline set beside it are the session's.
#[test]
fn the_tls_server_name_of_the_shared_builder_is_the_name_checked() {
    let rt = runtime();
    let script = quit_only(&[]);
    let server = rt.block_on(ScriptServer::implicit_tls(
        &script,
        smtp_testkit::certs::wrong_host_server_config(),
    ));
    let options = tls(TlsMode::Implicit)
        .with_tls_server_name("wrong.example")
        .with_reply_timeout(Duration::from_secs(9))
        .with_deadline(Duration::from_secs(90));
    assert_eq!(options.settings().tls_server_name(), Some("wrong.example"));
    let client = options.connect("localhost", server.port(), CLIENT).unwrap();
    assert!(client.session().is_tls());
    let timeouts = client.session().config().timeouts;
    assert_eq!(timeouts.command, Duration::from_secs(9));
    assert_eq!(timeouts.total, Some(Duration::from_secs(90)));
    finish(&rt, client, server);

    let server = rt.block_on(ScriptServer::implicit_tls(
        "S: 220 never seen",
        localhost_server_config(),
    ));
    let error = tls(TlsMode::Implicit)
        .with_tls_server_name("wrong.example")
        .connect("localhost", server.port(), CLIENT)
        .unwrap_err();
    assert_io_during(&error, SmtpOp::TlsHandshake);
}

/// `connect_url`: the URL's host, port, mode and EHLO name; without credentials no login.
#[test]
fn connect_url_says_ehlo_as_the_urls_helo() {
    let rt = runtime();
    let script = format!(
        "{}C: QUIT\nS: 221 bye\n",
        greet("url.test", &["AUTH PLAIN"])
    );
    let server = rt.block_on(ScriptServer::start(&script));
    let url = format!(
        "smtp://127.0.0.1:{}?tls=none&helo=url.test&timeout=10",
        server.port()
    );
    let client = smtp_io_std::connect_url(&url.parse().unwrap(), CLIENT).unwrap();
    assert_eq!(client.state(), SessionState::Authentication);
    finish(&rt, client, server);
}

/// Every field of the engine's settings reaches the session, also those no builder names.
#[test]
fn every_engine_setting_reaches_the_session() {
    let rt = runtime();
    let server = rt.block_on(ScriptServer::start(&quit_only(&[])));
    let client = plain()
        .map_session_config(|c| {
            c.bdat_chunk_size = 4096;
            c.max_bdat_in_flight = 3;
        })
        .connect("127.0.0.1", server.port(), CLIENT)
        .unwrap();
    let config = client.session().config();
    assert_eq!(
        (config.bdat_chunk_size, config.max_bdat_in_flight),
        (4096, 3)
    );
    finish(&rt, client, server);
}

#[test]
fn plaintext_auth_is_refused_before_anything_is_sent() {
    let rt = runtime();
    let server = rt.block_on(ScriptServer::start(&quit_only(&["AUTH PLAIN"])));
    let mut client = connect_plain(server.port());
    let error = client.login("user", "secret-pass").unwrap_err();
    assert!(
        matches!(error, SmtpError::Auth(AuthError::PlaintextRefused { .. })),
        "{error:?}"
    );
    assert!(!format!("{error} {error:?}").contains("secret-pass"));
    finish(&rt, client, server);
}

/// An implicit-TLS server whose greeting arrives one byte of its TLS record at a time: each
/// socket read is bounded on its own, so the reply's limit holds even though no read waits
/// long and no whole record (no plaintext) arrives in time.
#[test]
fn a_tls_record_dripped_byte_by_byte_still_times_out_the_reply() {
    use std::io::Write;

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut conn = rustls::ServerConnection::new(localhost_server_config()).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        while conn.is_handshaking() {
            if conn.wants_write() {
                conn.write_tls(&mut socket).unwrap();
            } else if conn.read_tls(&mut socket).unwrap() == 0 {
                return;
            } else {
                conn.process_new_packets().unwrap();
            }
        }
        while conn.wants_write() {
            conn.write_tls(&mut socket).unwrap();
        }
        // The greeting as one record, sent a byte every 100 ms until the client hangs up.
        conn.writer()
            .write_all(b"220 a greeting long enough to take seconds\r\n")
            .unwrap();
        let mut record = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut record).unwrap();
        }
        for byte in record {
            if socket.write_all(&[byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let limit = Duration::from_millis(500);
    let options = tls(TlsMode::Implicit).with_reply_timeout(limit);
    let expected = timeout(SmtpOp::Greeting, limit);
    connect_fails(options, "localhost", (port, server), expected);
}

/// Mutual TLS: a server that requires a client certificate signed by its CA takes the client
/// presenting one; one from another CA, or none, fails typed and never reaches SMTP.
#[test]
fn client_certificates_authenticate_and_a_wrong_one_fails_typed() {
    use smtp_testkit::certs::{TestCa, stranger_client};

    struct Counting(Arc<Mutex<usize>>);
    impl Conversation for Counting {
        fn command(&mut self, line: &str) -> Act {
            smtp_testkit::mock::well_behaved("mtls.test", &[], line)
        }
        fn end_of_data(&mut self, _: Vec<u8>) -> Act {
            *self.0.lock().unwrap() += 1;
            Act::send("250 queued\r\n")
        }
    }

    let rt = runtime();
    let ca = TestCa::new("mtls test CA").unwrap();
    let leaf = ca.issue(&["localhost"]).unwrap();
    let delivered = Arc::new(Mutex::new(0));
    let counter = delivered.clone();
    let server = rt.block_on(MockServer::implicit_tls(
        ca.server_config_requiring_clients(&leaf).unwrap(),
        move |_| Counting(counter.clone()),
    ));
    let trust = TlsConfig::from_ca_pem(ca.pem().as_bytes()).unwrap();
    let send = |tls: TlsConfig| -> Result<(), SmtpError> {
        let mut client = ConnectOptions::new(TlsMode::Implicit)
            .with_tls_config(tls)
            .with_reply_timeout(Duration::from_secs(10))
            .connect("localhost", server.port(), CLIENT)?;
        client.send_mail("a@x.test", &["b@y.test"], "mutual TLS\r\n")?;
        client.quit()
    };
    let mine = ca.issue_client("client.test").unwrap();
    let with_cert = trust
        .with_client_certificate(vec![mine.cert().clone()], mine.key())
        .unwrap();
    assert!(with_cert.has_client_certificate());
    send(with_cert).unwrap();
    assert_eq!(*delivered.lock().unwrap(), 1);

    let stranger = stranger_client("x");
    let wrong = trust
        .with_client_certificate(vec![stranger.cert().clone()], stranger.key())
        .unwrap();
    for tls in [wrong, trust.clone()] {
        // The server's alert comes after the client's side of the handshake (TLS 1.3): still
        // a TLS failure, not a lost connection.
        let error = send(tls).unwrap_err();
        assert!(
            matches!(error, SmtpError::Io { .. }) && error.is_tls_failure(),
            "{error:?}"
        );
    }
    assert_eq!(*delivered.lock().unwrap(), 1);
}

/// Implicit TLS to a port that speaks SMTP first: the error says what to change.
#[test]
fn implicit_tls_to_a_plaintext_port_names_the_fix() {
    let rt = runtime();
    let server = rt.block_on(ScriptServer::start("S: 220 mx.test ESMTP plaintext"));
    let error = tls(TlsMode::Implicit)
        .connect("localhost", server.port(), CLIENT)
        .unwrap_err();
    let text = error.to_string();
    assert!(
        is_io_during(&error, SmtpOp::TlsHandshake)
            && text.contains("STARTTLS")
            && text.contains("465"),
        "{error:?}"
    );
    drop(rt);
}

/// A connection the caller opened itself runs the same session (here with STARTTLS, the
/// certificate checked for the name the caller gives).
#[test]
fn a_callers_own_socket_runs_the_session() {
    let rt = runtime();
    let script = format!(
        "{}C: STARTTLS\nS: 220 go ahead\nT: tls\nC: EHLO client.test\nS: 250-mx.test\nS: 250 SIZE 100\n\
         C: QUIT\nS: 221 bye\n",
        greet(CLIENT, &["STARTTLS"])
    );
    let server = rt.block_on(ScriptServer::with_tls(&script, localhost_server_config()));
    let tcp = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    let client = tls(TlsMode::StartTls)
        .with_reply_timeout(Duration::from_secs(10))
        .connect_on(tcp, "localhost", CLIENT)
        .unwrap();
    assert!(client.stream().is_tls());
    assert_eq!(client.capabilities(), ["SIZE 100"]);
    finish(&rt, client, server);
}

/// On a socket the caller opened, a proxy or a local address could not be honoured: refused
/// before a byte is written (they were dropped without a word; found in review).
#[test]
fn a_callers_own_socket_refuses_a_proxy_or_a_local_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let options = [
        tls(TlsMode::None).with_proxy(smtp_io_std::Proxy::socks5("127.0.0.1", 1080)),
        tls(TlsMode::None).with_local_address("127.0.0.1".parse().unwrap()),
    ];
    for options in options {
        let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut accepted, _) = listener.accept().unwrap();
        let error = options.connect_on(tcp, "localhost", CLIENT).unwrap_err();
        assert!(matches!(error, SmtpError::InvalidInput(_)), "{error:?}");
        assert!(
            error.to_string().contains("this connection cannot"),
            "{error}"
        );
        // Nothing was written: the socket was dropped unused.
        let mut seen = Vec::new();
        std::io::Read::read_to_end(&mut accepted, &mut seen).unwrap();
        assert!(seen.is_empty(), "{seen:?}");
    }
}

/// Says `421` and hangs up a moment after EHLO, unasked.
struct Leaving;

impl Conversation for Leaving {
    fn command(&mut self, line: &str) -> Act {
        let reply = smtp_testkit::mock::well_behaved("mock.test", &[], line);
        if line.starts_with("EHLO") {
            return Act::Seq(vec![
                reply,
                Act::after(Duration::from_millis(100), Act::close("421 4.3.2 bye\r\n")),
            ]);
        }
        reply
    }
}

#[test]
fn an_idle_connection_is_checked_without_waiting() {
    let rt = runtime();
    // A server that stays quiet: the check finds nothing, and the client goes on.
    let quiet = rt.block_on(MockServer::start(|_| Refusing {
        bodies: Arc::default(),
    }));
    let mut client = connect_plain(quiet.port());
    assert_eq!(client.check_idle(), smtp_io_std::IdleStatus::Quiet);
    client
        .send_mail("a@x.test", &["b@y.test"], "x\r\n")
        .unwrap();
    assert_eq!(client.check_idle(), smtp_io_std::IdleStatus::Quiet);
    client.quit().unwrap();

    // A server that leaves: its 421 is seen (never taken as a reply) and the client closed.
    let leaving = rt.block_on(MockServer::start(|_| Leaving));
    let mut client = connect_plain(leaving.port());
    let started = Instant::now();
    let mut status = client.check_idle();
    while status == smtp_io_std::IdleStatus::Quiet && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
        status = client.check_idle();
    }
    assert_eq!(
        status,
        smtp_io_std::IdleStatus::Unsolicited {
            bytes: b"421 4.3.2 bye\r\n".to_vec()
        }
    );
    assert_eq!(client.state(), SessionState::Closed);
    assert!(
        client
            .send_mail("a@x.test", &["b@y.test"], "x\r\n")
            .is_err()
    );
    assert_eq!(client.check_idle(), smtp_io_std::IdleStatus::Closed);
}

#[test]
fn a_large_body_over_tls_arrives_whole() {
    let rt = runtime();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    let server = rt.block_on(MockServer::implicit_tls(
        localhost_server_config(),
        move |_| Refusing {
            bodies: kept.clone(),
        },
    ));
    let mut body = Vec::new();
    for n in 0..60_000u32 {
        body.extend_from_slice(format!("{n:08} .a line of a large message\r\n").as_bytes());
        if n % 997 == 0 {
            body.extend_from_slice(b".starts with a dot\r\n");
        }
    }
    let mut client = tls(TlsMode::Implicit)
        .with_reply_timeout(Duration::from_secs(30))
        .connect("localhost", server.port(), CLIENT)
        .unwrap();
    client
        .send_mail_bytes("a@x.test", &["b@y.test"], &body)
        .unwrap();
    let mut stream = ReaderBody::new(&body[..]).with_chunk_size(100_000);
    client
        .send_mail_stream("a@x.test", &["b@y.test"], &mut stream)
        .unwrap();
    client.quit().unwrap();
    let stuffed = {
        let text = body.split(|&b| b == b'\n').filter(|l| !l.is_empty());
        let mut out = Vec::new();
        for line in text {
            if line.first() == Some(&b'.') {
                out.push(b'.');
            }
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out
    };
    let got = bodies.lock().unwrap().clone();
    assert!(body.len() > 2_000_000);
    assert_eq!(got.len(), 2);
    assert!(got[0] == stuffed && got[1] == stuffed, "the bodies differ");
}

// ------------------------------------------------- what the shared driver gives for free

/// The client can move to another thread (one behind a `Mutex`, shared by threads).
#[test]
fn the_client_is_send() {
    fn send<T: Send>() {}
    send::<SmtpClient>();
}

/// `deliver_batch` says what became of each message: sent, refused by the server before its
/// end of data (retry would not help: a 5xx), refused locally.
#[test]
fn deliver_batch_gives_each_message_its_delivery() {
    let rt = runtime();
    let (server, bodies) = refusing(&rt);
    let mut client = connect_plain(server.port());
    let to: &[&str] = &["b@y.test"];
    let refused: &[&str] = &["nobody@y.test"];
    let bad: &[&str] = &["b@y.test\r\nQUIT"];
    let results = client.deliver_batch(&[
        OutgoingMessage::new("a@x.test", to, b"one\r\n"),
        OutgoingMessage::new("a@x.test", refused, b"never\r\n"),
        OutgoingMessage::new("a@x.test", bad, b"never either\r\n"),
        OutgoingMessage::new("a@x.test", to, b"four\r\n"),
    ]);
    assert!(matches!(results[0], Delivery::Sent(_)), "{results:?}");
    assert!(
        matches!(
            &results[1],
            Delivery::NotSent {
                error: SmtpError::Protocol(ProtocolError::RecipientsRefused { .. }),
                before_end_of_data: true,
            }
        ),
        "{results:?}"
    );
    assert!(!results[1].is_retryable());
    assert!(
        matches!(
            &results[2],
            Delivery::NotSent {
                error: SmtpError::InvalidInput(_),
                ..
            }
        ),
        "{results:?}"
    );
    assert!(matches!(results[3], Delivery::Sent(_)), "{results:?}");
    client.quit().unwrap();
    // The refused message's content never left (this mock takes the DATA pipelined behind
    // the refused RCPT, whose `354` the client can only answer with an empty message).
    let bodies = bodies.lock().unwrap();
    let delivered: Vec<&[u8]> = bodies
        .iter()
        .filter(|b| !b.is_empty())
        .map(Vec::as_slice)
        .collect();
    assert_eq!(delivered, [&b"one\r\n"[..], b"four\r\n"]);
}

/// A `Read` that yields `good` bytes, then fails.
struct FailingReader {
    good: &'static [u8],
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.good.is_empty() {
            return Err(std::io::Error::other("the disk went away"));
        }
        let n = buf.len().min(self.good.len());
        buf[..n].copy_from_slice(&self.good[..n]);
        self.good = &self.good[n..];
        Ok(n)
    }
}

/// `deliver_stream` sends a body from a `Read`; one that fails half-way is not delivered (its
/// end of data never left), and the session is closed.
#[test]
fn deliver_stream_tells_a_failed_read_from_a_sent_message() {
    let rt = runtime();
    let (server, bodies) = refusing(&rt);
    let mut client = connect_plain(server.port());
    let mut body = ReaderBody::new(&b"streamed\r\n"[..]);
    let sent = client.deliver_stream("a@x.test", &["b@y.test"], &mut body, None);
    assert!(matches!(sent, Delivery::Sent(_)), "{sent:?}");

    let mut failing = ReaderBody::new(FailingReader {
        good: b"Subject: half\r\n\r\nthe first half\r\n",
    })
    .with_chunk_size(8);
    let failed = client.deliver_stream("a@x.test", &["b@y.test"], &mut failing, None);
    assert!(
        matches!(
            &failed,
            Delivery::NotSent {
                error: SmtpError::Io {
                    during: SmtpOp::ReadBody,
                    ..
                },
                before_end_of_data: true,
            }
        ),
        "{failed:?}"
    );
    assert_eq!(client.state(), SessionState::Closed);
    client.quit().unwrap();
    assert_eq!(*bodies.lock().unwrap(), [b"streamed\r\n".to_vec()]);
}
