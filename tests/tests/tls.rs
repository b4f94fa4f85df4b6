//! TLS over real loopback TCP with a run-time test CA: STARTTLS (options, free function, the
//! `SmtpClient` methods), implicit TLS, wrong host, untrusted CA, fail-closed cases, injection.

use std::io;
use std::sync::Arc;

use rustls::ServerConfig;
use smtp_io_tokio::{
    ConnectOptions, Extension, ProtocolError, SessionState, SmtpClient, SmtpError, SmtpOp,
    TlsConfig, TlsMode, TokioTransport, connect_smtps, connect_starttls,
};
use smtp_testkit::expect::{assert_io_during, is_io_during, timeout};
use smtp_tests::certs::{localhost_server_config, pki, wrong_host_server_config};
use smtp_tests::{CLIENT, SHORT, ScriptServer, b64, bounded, greet, test_ca};

mod common;

use common::{
    FLIGHT, assert_matches, assert_unexpected_code, assert_wrong_state, auth_login,
    connect_localhost, send_queued, starttls_client, starttls_transport, tls_options,
};

/// A server offering STARTTLS (besides PIPELINING and AUTH LOGIN) that accepts it, then goes on
/// with `rest`, its side of TLS set up by `config`.
async fn starttls_server(rest: &str, config: Arc<ServerConfig>) -> ScriptServer {
    let script = format!(
        "{}C: STARTTLS\nS: 220 2.0.0 Ready to start TLS\n{rest}",
        greet(&["PIPELINING", "STARTTLS", "AUTH LOGIN"])
    );
    ScriptServer::with_tls(&script, config).await
}

/// The error of a STARTTLS the server did not advertise.
fn starttls_unavailable() -> SmtpError {
    SmtpError::Protocol(ProtocolError::ExtensionUnavailable {
        name: Extension::StartTls,
    })
}

#[tokio::test]
async fn test_pki_is_well_formed() {
    let pki = pki();
    assert!(pki.ca_pem().starts_with(b"-----BEGIN CERTIFICATE-----"));
    assert!(!pki.ca_der().is_empty());
    assert!(TlsConfig::from_ca_pem(pki.ca_pem()).is_ok());
}

#[tokio::test]
async fn starttls_upgrades_with_the_test_ca_and_forgets_plaintext_capabilities() {
    let script = format!(
        "T: tls
        C: EHLO client.test
        S: 250-mx.test after TLS
        S: 250-PIPELINING
        S: 250 AUTH PLAIN
        C: AUTH PLAIN {}
        S: 235 2.7.0 ok
        {FLIGHT}S: 250 2.0.0 Ok: queued as TLS1
        C: QUIT
        S: 221 bye
        ",
        b64::encode("\0user\0pass")
    );
    let server = starttls_server(&script, localhost_server_config()).await;
    let mut client = connect_localhost(&server, tls_options(TlsMode::StartTls))
        .await
        .unwrap();
    assert_eq!(client.state(), SessionState::Authentication);
    assert!(client.session().is_tls());
    assert!(client.transport().is_tls());
    assert!(client.transport().tls_info().is_some());
    // Only the capabilities of the EHLO on TLS count.
    assert_eq!(client.capabilities(), ["PIPELINING", "AUTH PLAIN"]);
    bounded(client.login("user", "pass")).await.unwrap();
    send_queued(&mut client, &["b@y.test"], "over TLS\r\n", "TLS1").await;
    let report = smtp_tests::quit(client, server).await;
    assert_eq!(report.bodies, [b"over TLS\r\n".to_vec()]);
}

/// The `smtp-proto` API itself: `SmtpClient::connect_starttls` on a `TokioTransport`, the
/// certificate checked for an IP address.
#[tokio::test]
async fn smtp_client_connect_starttls_on_a_tokio_transport() {
    let script = "T: tls\nC: EHLO client.test\nS: 250 mx.test\nC: QUIT\nS: 221 bye";
    let server = starttls_server(script, localhost_server_config()).await;
    let tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let transport = TokioTransport::plain_with_starttls(tcp, "127.0.0.1", test_ca()).unwrap();
    let client = bounded(SmtpClient::connect_starttls(transport, CLIENT))
        .await
        .unwrap();
    assert!(client.transport().is_tls());
    assert!(client.capabilities().is_empty());
    assert_eq!(client.state(), SessionState::Authentication);
    smtp_tests::quit(client, server).await;
}

#[tokio::test]
async fn starttls_method_only_once_and_only_right_after_connect() {
    let script = "T: tls\nC: EHLO client.test\nS: 250-mx.test\nS: 250-STARTTLS\nS: 250 AUTH PLAIN\nC: QUIT\nS: 221 bye";
    let server = starttls_server(script, localhost_server_config()).await;
    let mut client = starttls_client(&server).await;
    assert!(!client.session().is_tls());
    bounded(client.starttls()).await.unwrap();
    assert!(client.session().is_tls());
    assert_eq!(client.capabilities(), ["STARTTLS", "AUTH PLAIN"]);
    // A second STARTTLS, even if (wrongly) advertised on TLS, is refused without I/O.
    let err = bounded(client.starttls()).await.unwrap_err();
    assert_matches!(err, SmtpError::InvalidInput(_));
    assert_ne!(client.state(), SessionState::Closed);
    smtp_tests::quit(client, server).await;
}

#[tokio::test]
async fn starttls_after_login_is_wrong_state_without_io() {
    let script = format!(
        "{}{}C: QUIT\nS: 221 bye",
        greet(&["STARTTLS", "AUTH LOGIN"]),
        auth_login("user", "pass", "235 ok"),
    );
    let server = ScriptServer::start(&script).await;
    let transport = starttls_transport(&server).await;
    let options = smtp_io_tokio::SmtpClientOptions::new().allow_plaintext_auth();
    let mut client = bounded(SmtpClient::connect_with(transport, CLIENT, options))
        .await
        .unwrap();
    bounded(client.login("user", "pass")).await.unwrap();
    assert_wrong_state(&bounded(client.starttls()).await.unwrap_err());
    smtp_tests::quit(client, server).await;
}

#[tokio::test]
async fn starttls_not_advertised_fails_closed_via_connect_options() {
    let script = format!("{}X: eof", greet(&["PIPELINING", "AUTH PLAIN LOGIN"]));
    let server = ScriptServer::start(&script).await;
    let err = bounded(
        ConnectOptions::new(TlsMode::StartTls)
            .with_tls_config(test_ca())
            .connect("127.0.0.1", server.port(), CLIENT),
    )
    .await
    .unwrap_err();
    assert_eq!(err, starttls_unavailable());
    // X: eof: nothing more in plaintext (no AUTH, no MAIL, no QUIT), and the socket closed.
    server.finish().await;
}

#[tokio::test]
async fn starttls_not_advertised_closes_the_session() {
    let script = format!("{}X: eof", greet(&["AUTH PLAIN"]));
    let server = ScriptServer::start(&script).await;
    let mut client = starttls_client(&server).await;
    let err = bounded(client.starttls()).await.unwrap_err();
    assert_eq!(err, starttls_unavailable());
    assert_eq!(client.state(), SessionState::Closed);
    // No plaintext fallback: login fails with the same error, without I/O.
    assert_eq!(
        bounded(client.login("user", "pass")).await.unwrap_err(),
        err
    );
    assert!(server.finish().await.client_hung_up);
}

#[tokio::test]
async fn starttls_refused_454_closes_the_session() {
    let script = format!(
        "{}C: STARTTLS\nS: 454 4.7.0 TLS not available due to temporary reason\nX: eof",
        greet(&["STARTTLS", "AUTH PLAIN"])
    );
    let server = ScriptServer::start(&script).await;
    let mut client = starttls_client(&server).await;
    let err = bounded(client.starttls()).await.unwrap_err();
    let reply = assert_unexpected_code(&err, SmtpOp::StartTls, 454);
    assert!(reply.text().contains("TLS not available"));
    assert_eq!(client.state(), SessionState::Closed);
    assert_eq!(
        bounded(client.login("user", "pass")).await.unwrap_err(),
        err
    );
    server.finish().await;
}

#[tokio::test]
async fn starttls_refused_via_connect_starttls() {
    let script = format!(
        "{}C: STARTTLS\nS: 454 4.7.0 not now\nX: eof",
        greet(&["STARTTLS"])
    );
    let server = ScriptServer::start(&script).await;
    let err = connect_localhost(&server, tls_options(TlsMode::StartTls))
        .await
        .unwrap_err();
    assert_unexpected_code(&err, SmtpOp::StartTls, 454);
    server.finish().await;
}

#[tokio::test]
async fn implicit_tls_with_the_test_ca() {
    let script = format!(
        "{}{FLIGHT}S: 250 ok\nC: QUIT\nS: 221 bye",
        greet(&["PIPELINING", "AUTH PLAIN"])
    );
    let server = ScriptServer::implicit_tls(&script, localhost_server_config()).await;
    let mut client = bounded(
        ConnectOptions::new(TlsMode::Implicit)
            .with_tls_config(TlsConfig::from_ca_pem(pki().ca_pem()).unwrap())
            .connect("localhost", server.port(), CLIENT),
    )
    .await
    .unwrap();
    assert!(client.session().is_tls());
    assert!(client.transport().is_tls());
    assert_eq!(client.capabilities(), ["PIPELINING", "AUTH PLAIN"]);
    bounded(client.send_mail("a@x.test", &["b@y.test"], ".secret\r\n"))
        .await
        .unwrap();
    let report = smtp_tests::quit(client, server).await;
    assert_eq!(report.bodies, [b"..secret\r\n".to_vec()]);
}

#[tokio::test]
async fn implicit_tls_certificate_for_the_wrong_host_is_refused() {
    let server = ScriptServer::with_tls("T: tls-fail", wrong_host_server_config()).await;
    let err = connect_localhost(&server, tls_options(TlsMode::Implicit))
        .await
        .unwrap_err();
    assert_io_during(&err, SmtpOp::TlsHandshake);
    // T: tls-fail checks the client sent not one byte after refusing the certificate.
    assert!(server.finish().await.client_hung_up);
}

#[tokio::test]
async fn starttls_certificate_for_the_wrong_host_is_refused() {
    let server = starttls_server("T: tls-fail", wrong_host_server_config()).await;
    let err = connect_localhost(&server, tls_options(TlsMode::StartTls))
        .await
        .unwrap_err();
    match &err {
        SmtpError::Io { during, error } => {
            assert!(
                matches!(during, SmtpOp::StartTls | SmtpOp::TlsHandshake),
                "{err:?}"
            );
            assert_eq!(error.kind, io::ErrorKind::InvalidData, "{err:?}");
        }
        other => panic!("{other:?}"),
    }
    // No AUTH or anything else in plaintext after the refused certificate.
    server.finish().await;
}

#[tokio::test]
async fn tls_server_name_override_checks_the_given_name() {
    let script = format!("{}C: QUIT\nS: 221 bye", greet(&[]));
    let server = ScriptServer::implicit_tls(&script, wrong_host_server_config()).await;
    let client = bounded(
        ConnectOptions::new(TlsMode::Implicit)
            .with_tls_config(test_ca())
            .with_tls_server_name("wrong.example")
            .connect("127.0.0.1", server.port(), CLIENT),
    )
    .await
    .unwrap();
    assert!(client.session().is_tls());
    smtp_tests::quit(client, server).await;
}

#[tokio::test]
async fn default_webpki_roots_refuse_the_test_ca_implicit() {
    let server = ScriptServer::with_tls("T: tls-fail", localhost_server_config()).await;
    let err = bounded(connect_smtps("localhost", server.port(), CLIENT))
        .await
        .unwrap_err();
    assert_io_during(&err, SmtpOp::TlsHandshake);
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    server.finish().await;
}

#[tokio::test]
async fn default_webpki_roots_refuse_the_test_ca_starttls() {
    let server = starttls_server("T: tls-fail", localhost_server_config()).await;
    let err = bounded(connect_starttls("localhost", server.port(), CLIENT))
        .await
        .unwrap_err();
    assert!(
        is_io_during(&err, SmtpOp::StartTls) || is_io_during(&err, SmtpOp::TlsHandshake),
        "{err:?}"
    );
    server.finish().await;
}

/// "NO STARTTLS" / CVE-2021-38371 class: a reply smuggled after the `220` in the same segment
/// must never be read as a post-TLS reply, and the session is dead at that point: the client must
/// fail at once, without starting a TLS handshake with that server.
#[tokio::test]
async fn starttls_response_injection_is_refused() {
    let script = format!(
        "{}C: STARTTLS\nS: 220 go ahead\nS: 250-injected\nS: 250 AUTH PLAIN\nX: eof",
        greet(&["STARTTLS"])
    );
    let server = ScriptServer::with_tls(&script, localhost_server_config()).await;
    let err = connect_localhost(
        &server,
        tls_options(TlsMode::StartTls)
            // Bounds the handshake the client must not start, so a regression fails fast.
            .with_reply_timeout(SHORT),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        SmtpError::Protocol(ProtocolError::ResponseInjection { bytes: 30 })
    );
    let report = server.report().await;
    assert!(
        report.ok(),
        "after detecting the injection the client must hang up without a TLS handshake \
         (a ClientHello starts with 0x16):\n{}",
        report.explain()
    );
}

/// The server accepts STARTTLS and never answers the ClientHello: the upgrade is bounded too.
#[tokio::test]
async fn stalled_starttls_handshake_times_out() {
    let server = starttls_server("X: stall", localhost_server_config()).await;
    let err = connect_localhost(
        &server,
        tls_options(TlsMode::StartTls).with_reply_timeout(SHORT),
    )
    .await
    .unwrap_err();
    // The same error as an implicit-TLS handshake past its limit (it was an `Io` error).
    assert_eq!(err, timeout(SmtpOp::TlsHandshake, SHORT));
    let report = server.finish().await;
    assert!(report.client_hung_up);
    // What the client sent while the server stalled is its ClientHello (a TLS record), not SMTP.
    assert_eq!(report.sent_during_stall.first(), Some(&0x16));
}

/// The implicit-TLS handshake counts against the connect timeout.
#[tokio::test]
async fn stalled_implicit_handshake_hits_the_connect_timeout() {
    let server = ScriptServer::start("X: stall").await;
    let err = connect_localhost(
        &server,
        tls_options(TlsMode::Implicit).with_connect_timeout(SHORT),
    )
    .await
    .unwrap_err();
    assert_eq!(err, timeout(SmtpOp::TlsHandshake, SHORT));
    assert!(server.finish().await.client_hung_up);
}

/// The audit sink over a real STARTTLS session: every step recorded, no secret in any event.
#[tokio::test]
async fn audit_events_of_a_starttls_session() {
    use std::sync::{Arc, Mutex};

    use smtp_io_tokio::{AuditEvent, AuthMechanism, SmtpClientOptions, TracingTranscript};

    let script = format!(
        "T: tls
        C: EHLO client.test
        S: 250-mx.test
        S: 250-PIPELINING
        S: 250 AUTH PLAIN
        C: AUTH PLAIN *
        S: 535 5.7.8 no
        C: AUTH PLAIN *
        S: 235 2.7.0 ok
        {FLIGHT}S: 250 2.0.0 Ok: queued as AUD1
        C: QUIT
        S: 221 bye
        "
    );
    let server = starttls_server(&script, localhost_server_config()).await;
    let events: Arc<Mutex<Vec<AuditEvent>>> = Arc::default();
    let sink = {
        let events = events.clone();
        move |e: &AuditEvent| events.lock().unwrap().push(e.clone())
    };
    let options = tls_options(TlsMode::StartTls).with_client_options(
        SmtpClientOptions::new()
            .with_audit_sink(Box::new(sink))
            .with_transcript(Box::new(TracingTranscript)),
    );
    let mut client = connect_localhost(&server, options).await.unwrap();
    bounded(client.login("user", "s3cret-pass"))
        .await
        .unwrap_err();
    bounded(client.login("user", "s3cret-pass-2"))
        .await
        .unwrap();
    bounded(client.send_mail("a@x.test", &["b@y.test"], "audited\r\n"))
        .await
        .unwrap();
    smtp_tests::quit(client, server).await;
    let events = events.lock().unwrap().clone();
    let expected_start = [AuditEvent::Connected, AuditEvent::TlsUpgraded];
    assert_eq!(&events[..2], &expected_start, "{events:?}");
    assert!(
        events.iter().any(|e| matches!(
            e,
            AuditEvent::AuthenticationFailed {
                mechanism: AuthMechanism::Plain,
                code: Some(c)
            } if c.get() == 535
        )),
        "{events:?}"
    );
    assert!(events.contains(&AuditEvent::Authenticated {
        mechanism: AuthMechanism::Plain
    }));
    assert!(
        events.iter().any(|e| matches!(
            e,
            AuditEvent::MessageSent { recipients: 1, refused: 0, size: 9, queue_id: Some(q) }
                if q == "AUD1"
        )),
        "{events:?}"
    );
    assert_eq!(events.last(), Some(&AuditEvent::Closed), "{events:?}");
    assert!(!format!("{events:?}").contains("s3cret"));
}
