//! Connection lifecycle over real loopback TCP: greeting, EHLO / HELO, capabilities, state,
//! RSET / NOOP, QUIT, 421 at every stage, timeouts, disconnects, connect failures.

use std::io;
use std::time::Duration;

use smtp_io_tokio::{
    ConnectOptions, InvalidInputError, ProtocolError, SessionState, SmtpClient, SmtpClientOptions,
    SmtpError, SmtpOp, Timeouts, TokioTransport, connect_plain,
};
use smtp_testkit::expect::timeout;
use smtp_tests::{CLIENT, SHORT, ScriptServer, bounded, greet, plain};

mod common;

use common::{ENVELOPE, FLIGHT, assert_matches, assert_unexpected_code, send_queued, start_with};

/// A server for `script` that the client fails to connect to with `options`; the error.
async fn connect_fails(script: &str, options: ConnectOptions) -> (ScriptServer, SmtpError) {
    let (server, client) = start_with(script, options).await;
    (server, client.unwrap_err())
}

/// The message `hi` sent on `client` stalls at `during`, whose limit is [`SHORT`]: the error is
/// that timeout, and the session is closed. Returns the error.
async fn send_times_out(client: &mut SmtpClient<TokioTransport>, during: SmtpOp) -> SmtpError {
    let err = bounded(client.send_mail("a@x.test", &["b@y.test"], "hi\r\n"))
        .await
        .unwrap_err();
    assert_eq!(err, timeout(during, SHORT));
    assert_eq!(client.state(), SessionState::Closed);
    err
}

#[tokio::test]
async fn greeting_554_is_an_error_with_the_server_text() {
    let (server, err) =
        connect_fails("S: 554 5.7.1 no SMTP service for you here\nX: eof", plain()).await;
    let reply = assert_unexpected_code(&err, SmtpOp::Greeting, 554);
    assert!(reply.text().contains("no SMTP service for you"), "{reply}");
    assert!(err.to_string().contains("no SMTP service"), "{err}");
    assert!(!err.is_transient());
    let report = server.finish().await;
    assert!(report.client_hung_up);
}

#[tokio::test]
async fn multiline_greeting_then_ehlo_capabilities() {
    let script = "
        S: 220-mx.test ESMTP
        S: 220 second greeting line
        C: EHLO client.test
        S: 250-mx.test
        S: 250-PIPELINING
        S: 250-SIZE 35882577
        S: 250-8BITMIME
        S: 250-ENHANCEDSTATUSCODES
        S: 250 AUTH PLAIN LOGIN
        C: QUIT
        S: 221 2.0.0 bye
    ";
    let server = ScriptServer::start(script).await;
    let client = bounded(smtp_tests::connect_plain(&server)).await.unwrap();
    assert_eq!(
        client.capabilities(),
        [
            "PIPELINING",
            "SIZE 35882577",
            "8BITMIME",
            "ENHANCEDSTATUSCODES",
            "AUTH PLAIN LOGIN"
        ]
    );
    assert_eq!(client.state(), SessionState::Authentication);
    assert!(!client.session().is_tls());
    assert_eq!(
        client.transport().peer_addr().map(|a| a.port()),
        Some(server.port())
    );
    let report = smtp_tests::quit(client, server).await;
    assert!(report.client_hung_up, "quit() closes the transport");
}

#[tokio::test]
async fn ehlo_500_falls_back_to_helo_and_sends_lockstep() {
    let script = "
        S: 220 old.test SMTP
        C: EHLO client.test
        S: 500 5.5.1 command unrecognized
        C: HELO client.test
        S: 250 old.test
        C: MAIL FROM:<a@x.test>
        S: 250 ok
        C: RCPT TO:<b@y.test>
        S: 250 ok
        C: DATA
        S: 354 go ahead
        C: DATA-BODY
        S: 250 ok
        C: QUIT
        S: 221 bye
    ";
    let (server, mut client) = smtp_tests::start(script).await;
    assert!(client.capabilities().is_empty());
    assert_eq!(client.state(), SessionState::Authentication);
    bounded(client.send_mail("a@x.test", &["b@y.test"], "Subject: old\r\n\r\nhi\r\n"))
        .await
        .unwrap();
    assert_eq!(client.state(), SessionState::Ready);
    let report = smtp_tests::quit(client, server).await;
    assert_eq!(report.bodies, [b"Subject: old\r\n\r\nhi\r\n".to_vec()]);
}

#[tokio::test]
async fn ehlo_refused_with_550_is_fatal() {
    let script = "
        S: 220 mx.test
        C: EHLO client.test
        S: 550 5.7.1 go away
        X: eof
    ";
    let (server, err) = connect_fails(script, plain()).await;
    assert_unexpected_code(&err, SmtpOp::Ehlo, 550);
    server.finish().await;
}

#[tokio::test]
async fn malformed_greeting_is_a_typed_error() {
    let (server, err) = connect_fails("S: hello there, I am not SMTP\nX: eof", plain()).await;
    assert_matches!(
        err,
        SmtpError::Protocol(ProtocolError::Malformed {
            during: SmtpOp::Greeting,
            ..
        })
    );
    server.finish().await;
}

#[tokio::test]
async fn state_through_a_whole_session() {
    let script = format!(
        "{}
        C: NOOP
        S: 250 2.0.0 ok noop
        C: RSET
        S: 250 2.0.0 flushed
        C: AUTH PLAIN *
        S: 235 2.7.0 ok
        {FLIGHT}S: 250 2.0.0 Ok: queued as ABC123
        C: NOOP
        S: 250 ok
        C: QUIT
        S: 221 2.0.0 bye
        ",
        greet(&["PIPELINING", "AUTH PLAIN"])
    );
    let (server, mut client) = smtp_tests::start(&script).await;
    assert_eq!(client.state(), SessionState::Authentication);
    let noop = bounded(client.noop()).await.unwrap();
    assert_eq!(noop.code().get(), 250);
    assert!(noop.text().contains("ok noop"), "{noop}");
    let rset = bounded(client.rset()).await.unwrap();
    assert_eq!(rset.code().get(), 250);
    assert!(rset.text().contains("flushed"), "{rset}");
    // RSET / NOOP before any message leave login allowed.
    assert_eq!(client.state(), SessionState::Authentication);
    bounded(client.login("user", "pass")).await.unwrap();
    assert_eq!(client.state(), SessionState::Ready);
    send_queued(&mut client, &["b@y.test"], "hi\r\n", "ABC123").await;
    assert_eq!(client.state(), SessionState::Ready);
    bounded(client.noop()).await.unwrap();
    assert_eq!(client.state(), SessionState::Ready);
    let report = smtp_tests::quit(client, server).await;
    assert!(report.client_hung_up);
    assert!(
        report.transcript_text().contains("C: QUIT"),
        "{}",
        report.explain()
    );
}

/// A 421 at each stage: a typed error carrying the reply, the session Closed, the connection
/// closed by the client, and every later call failing with the same error.
#[tokio::test]
async fn code_421_at_any_point_closes_the_session() {
    let ehlo = greet(&["PIPELINING", "AUTH PLAIN LOGIN"]);
    let flight = "C: MAIL FROM:<a@x.test>\nC: RCPT TO:<b@y.test>\nC: DATA";
    let cases: Vec<(&str, String, SmtpOp)> = vec![
        (
            "greeting",
            "S: 421 4.3.2 too busy\nX: eof".into(),
            SmtpOp::Greeting,
        ),
        (
            "ehlo",
            "S: 220 mx.test\nC: EHLO client.test\nS: 421 4.3.2 shutting down\nX: eof".into(),
            SmtpOp::Ehlo,
        ),
        (
            "auth",
            format!("{ehlo}C: AUTH PLAIN *\nS: 421 4.7.0 try later\nX: eof"),
            SmtpOp::Auth,
        ),
        (
            "mail",
            format!("{ehlo}{flight}\nS: 421 4.3.2 closing\nX: eof"),
            SmtpOp::MailFrom,
        ),
        (
            "rcpt",
            format!("{ehlo}{flight}\nS: 250 ok\nS: 421 4.4.2 timeout\nX: eof"),
            SmtpOp::RcptTo,
        ),
        (
            "data",
            format!("{ehlo}{flight}\nS: 250 ok\nS: 250 ok\nS: 421 4.3.0 no\nX: eof"),
            SmtpOp::Data,
        ),
        (
            "end of data",
            format!(
                "{ehlo}{flight}\nS: 250 ok\nS: 250 ok\nS: 354 go\nC: DATA-BODY\nS: 421 4.3.0 lost it\nX: eof"
            ),
            SmtpOp::DataEnd,
        ),
        (
            "noop",
            format!("{ehlo}C: NOOP\nS: 421 4.3.2 bye\nX: eof"),
            SmtpOp::Noop,
        ),
    ];
    for (stage, script, during) in cases {
        let server = ScriptServer::start(&script).await;
        // Keep the client (when connect succeeded) to check its state afterwards.
        let (err, client) = match stage {
            "greeting" | "ehlo" => (
                bounded(smtp_tests::connect_plain(&server))
                    .await
                    .unwrap_err(),
                None,
            ),
            _ => {
                let mut client = bounded(smtp_tests::connect_plain(&server)).await.unwrap();
                let err = match stage {
                    "auth" => bounded(client.login("user", "pass")).await.unwrap_err(),
                    "noop" => bounded(client.noop()).await.unwrap_err(),
                    _ => bounded(client.send_mail("a@x.test", &["b@y.test"], "hi\r\n"))
                        .await
                        .unwrap_err(),
                };
                (err, Some(client))
            }
        };
        let expected_during = during;
        match &err {
            SmtpError::Protocol(ProtocolError::UnexpectedCode { during, reply }) => {
                assert_eq!(*during, expected_during, "{stage}: {err:?}");
                assert_eq!(reply.code().get(), 421, "{stage}");
            }
            other => panic!("{stage}: {other:?}"),
        }
        assert!(err.is_transient(), "{stage}: 421 is transient");
        if let Some(mut client) = client {
            assert_eq!(client.state(), SessionState::Closed, "{stage}");
            // Sticky: later calls fail fast with the same error, without I/O.
            assert_eq!(bounded(client.noop()).await.unwrap_err(), err, "{stage}");
            drop(client);
        }
        let report = server.report().await;
        assert!(report.ok(), "{stage}:\n{}", report.explain());
        assert!(report.client_hung_up, "{stage}");
    }
}

#[tokio::test]
async fn stalled_greeting_times_out() {
    let (server, err) = connect_fails("X: stall", plain().with_reply_timeout(SHORT)).await;
    assert_eq!(err, timeout(SmtpOp::Greeting, SHORT));
    assert!(err.is_transient());
    let report = server.finish().await;
    assert!(report.client_hung_up, "the client closes after a timeout");
}

#[tokio::test]
async fn stalled_ehlo_times_out() {
    let (server, err) = connect_fails(
        "S: 220 mx.test\nC: EHLO client.test\nX: stall",
        plain().with_reply_timeout(SHORT),
    )
    .await;
    assert_eq!(err, timeout(SmtpOp::Ehlo, SHORT));
    assert!(server.finish().await.client_hung_up);
}

/// The phase timeouts of `SmtpClientOptions::with_timeouts`, through `SmtpClient::connect_with`
/// on a `TokioTransport`: here the wait for `354`.
#[tokio::test]
async fn stalled_data_times_out_with_client_options() {
    let server =
        ScriptServer::start(&format!("{}{ENVELOPE}X: stall", greet(&["PIPELINING"]))).await;
    let tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let mut timeouts = Timeouts::default();
    timeouts.data_init = SHORT;
    let options = SmtpClientOptions::new().with_timeouts(timeouts);
    let mut client = bounded(SmtpClient::connect_with(
        TokioTransport::plain(tcp),
        CLIENT,
        options,
    ))
    .await
    .unwrap();
    let err = send_times_out(&mut client, SmtpOp::Data).await;
    assert_eq!(bounded(client.noop()).await.unwrap_err(), err);
    assert!(server.finish().await.client_hung_up);
}

#[tokio::test]
async fn stalled_after_the_body_times_out() {
    let script = format!("{}{FLIGHT}X: stall", greet(&["PIPELINING"]));
    // Only the wait for the final reply is short (via ConnectOptions::map_client_options).
    let options = plain().map_client_options(|o| {
        let mut timeouts = Timeouts::default();
        timeouts.data_end = SHORT;
        o.with_timeouts(timeouts)
    });
    let (server, client) = start_with(&script, options).await;
    let mut client = client.unwrap();
    send_times_out(&mut client, SmtpOp::DataEnd).await;
    let report = server.finish().await;
    assert_eq!(report.bodies, [b"hi\r\n".to_vec()]);
    assert!(report.client_hung_up);
}

#[tokio::test]
async fn server_disconnect_after_the_body_is_connection_closed() {
    let script = format!("{}{FLIGHT}X: close", greet(&["PIPELINING"]));
    let (server, mut client) = smtp_tests::start(&script).await;
    let err = bounded(client.send_mail("a@x.test", &["b@y.test"], "hi\r\n"))
        .await
        .unwrap_err();
    assert_matches!(
        err,
        SmtpError::Protocol(ProtocolError::ConnectionClosed {
            during: SmtpOp::DataEnd
        }) | SmtpError::Io {
            during: SmtpOp::DataEnd,
            ..
        }
    );
    assert!(err.is_transient() || matches!(err, SmtpError::Protocol(_)));
    assert_eq!(client.state(), SessionState::Closed);
    server.finish().await;
}

/// The server hangs up right after `354` while a large body is still being written: a typed
/// error (reset / broken pipe or connection closed), never a hang.
#[tokio::test]
async fn server_disconnect_in_the_middle_of_a_large_body() {
    let script = format!("{}{ENVELOPE}S: 354 go\nX: close", greet(&["PIPELINING"]));
    let (server, client) = start_with(&script, plain().with_reply_timeout(SHORT * 10)).await;
    let mut client = client.unwrap();
    let line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    let body = line.repeat(8 * 1024 * 1024 / line.len());
    let err = bounded(client.send_mail("a@x.test", &["b@y.test"], &body))
        .await
        .unwrap_err();
    assert_matches!(
        err,
        SmtpError::Io { .. } | SmtpError::Protocol(ProtocolError::ConnectionClosed { .. })
    );
    assert_eq!(client.state(), SessionState::Closed);
    server.finish().await;
}

#[tokio::test]
async fn connect_to_a_closed_port_is_io_during_connect() {
    let port = smtp_testkit::proxy::free_port();
    let err = bounded(connect_plain("127.0.0.1", port, CLIENT))
        .await
        .unwrap_err();
    match &err {
        SmtpError::Io { during, error } => {
            assert_eq!(*during, SmtpOp::Connect);
            assert_eq!(error.kind, io::ErrorKind::ConnectionRefused, "{err}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_transient());
}

#[tokio::test]
async fn invalid_ehlo_domain_is_refused_before_connecting() {
    // A closed port: if the domain were not checked first, this would be an I/O error.
    let port = smtp_testkit::proxy::free_port();
    let err = bounded(plain().connect("127.0.0.1", port, "bad domain\r\nRSET"))
        .await
        .unwrap_err();
    assert_matches!(
        err,
        SmtpError::InvalidInput(InvalidInputError::Argument { .. })
    );
}

#[tokio::test]
async fn quit_after_a_fatal_error_only_closes() {
    let script = format!("{}C: NOOP\nS: 421 4.3.2 bye\nX: eof", greet(&[]));
    let (server, mut client) = smtp_tests::start(&script).await;
    bounded(client.noop()).await.unwrap_err();
    // No QUIT on the wire (X: eof is strict), and no error for closing a closed session.
    smtp_tests::quit(client, server).await;
}

#[tokio::test]
async fn unsolicited_reply_is_not_taken_as_the_next_answer() {
    // The server answers NOOP twice; the stray reply must not be read as the RSET reply.
    let script = format!("{}C: NOOP\nS: 250 ok\nS: 250 surprise\nX: eof", greet(&[]));
    let (server, mut client) = smtp_tests::start(&script).await;
    bounded(client.noop()).await.unwrap();
    let err = bounded(client.rset()).await.unwrap_err();
    assert_matches!(
        err,
        SmtpError::Protocol(ProtocolError::UnsolicitedReply { .. })
    );
    assert_eq!(client.state(), SessionState::Closed);
    drop(client);
    server.finish().await;
}

#[test]
fn timeouts_constant_is_sane() {
    // SHORT must stay far below the scripted server's idle bound, or timeout tests would race it.
    assert!(SHORT * 5 < smtp_tests::server::IDLE);
    assert!(SHORT >= Duration::from_millis(100));
}
