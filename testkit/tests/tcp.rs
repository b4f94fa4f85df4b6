//! The scripted server and the script client over loopback TCP, with TLS from the generated
//! certificates: one script per side, checked against each other.

use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};
use smtp_testkit::certs::{TestCa, client_config, shared};
use smtp_testkit::{Exchange, Report, ScriptClient, ScriptServer};

/// A STARTTLS session with a pipelined flight, as one side's script: the sides differ in the
/// greeting, the reply to STARTTLS, the body and its reply (the server's exact, the client's
/// partly by prefix, its body written out).
fn starttls_session(greeting: &str, go_ahead: &str, body: &str, queued: &str) -> String {
    format!(
        "
        S: {greeting}
        C: EHLO c.test
        S: 250-mx.test
        S: 250-PIPELINING
        S: 250 STARTTLS
        C: STARTTLS
        S: {go_ahead}
        T: tls
        C: EHLO c.test
        S: 250 mx.test
        C: MAIL FROM:<a@b.test>
        C: RCPT TO:<c@d.test>
        C: DATA
        S: 250 ok
        S: 250 ok
        S: 354 go
        {body}
        S: {queued}
        C: QUIT
        S: 221 bye
        "
    )
}

#[tokio::test]
async fn starttls_session_between_the_two_sides() {
    let pki = shared();
    let server_side = starttls_session(
        "220 mx.test ESMTP",
        "220 go ahead",
        "C: DATA-BODY",
        "250 queued as 42",
    );
    let client_side = starttls_session(
        "220 mx.test*",
        "220 *",
        "C: Subject: x\n C:\n C: ..dot\n C: .",
        "250 queued as *",
    );
    let server = ScriptServer::with_tls(&server_side, pki.localhost_config()).await;
    let exchange = ScriptClient::new(&client_side)
        .with_tls(pki.client_config(), "localhost")
        .run(server.addr())
        .await;
    assert!(exchange.ok(), "{}", exchange.explain());
    let report = server.finish().await;
    assert_eq!(report.bodies, [b"Subject: x\r\n\r\n..dot\r\n".to_vec()]);
    assert!(report.client_hung_up);
    assert!(exchange.transcript.contains(&"T: tls".to_owned()));
}

/// `client_script` run against a plaintext server serving `server_script`: the client's
/// exchange, and the server's report once it has finished.
async fn plaintext(server_script: &str, client_script: &str) -> (Exchange, Report) {
    let server = ScriptServer::start(server_script).await;
    let exchange = ScriptClient::new(client_script).run(server.addr()).await;
    (exchange, server.finish().await)
}

#[tokio::test]
async fn the_client_catches_a_wrong_reply() {
    let (exchange, report) = plaintext(
        "S: 220 mx.test\nC: QUIT\nS: 221 bye",
        "S: 220 mx.test\nC: QUIT\nS: 250 ok",
    )
    .await;
    let failure = exchange.failure.expect("a mismatch");
    assert!(
        failure.contains("expected: S: 250 ok") && failure.contains("got:      S: 221 bye"),
        "{failure}"
    );
    assert!(report.ok());
}

/// A client trusting `trust` fails the TLS handshake with an implicit-TLS server presenting
/// `presented`, and the server's script is not completed.
async fn assert_handshake_refused(presented: Arc<ServerConfig>, trust: Arc<ClientConfig>) {
    let server = ScriptServer::implicit_tls("S: 220 never seen", presented).await;
    let exchange = ScriptClient::new("T: tls\nS: 220 never seen")
        .with_tls(trust, "localhost")
        .run(server.addr())
        .await;
    assert!(
        exchange
            .failure
            .as_deref()
            .is_some_and(|f| f.contains("TLS handshake failed")),
        "{}",
        exchange.explain()
    );
    assert!(!server.report().await.ok());
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let other = TestCa::new("another CA").unwrap();
    let trust = client_config(other.pem().as_bytes()).unwrap();
    assert_handshake_refused(shared().localhost_config(), trust).await;
}

#[tokio::test]
async fn the_wrong_name_is_refused() {
    assert_handshake_refused(shared().wrong_host_config(), shared().client_config()).await;
}

#[tokio::test]
async fn the_client_sees_the_server_close() {
    let (exchange, report) = plaintext("S: 421 go away\nX: close", "S: 421 *\nX: eof").await;
    assert!(exchange.ok(), "{}", exchange.explain());
    assert!(report.ok());
}
