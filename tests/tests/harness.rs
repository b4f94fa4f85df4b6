//! Self-tests of the scripted server, driven by a raw TCP client: it must catch what the other
//! tests rely on it to catch.

use std::sync::Arc;

use smtp_tests::certs::{ca_pem, localhost_server_config};
use smtp_tests::{Report, ScriptServer, bounded};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn read_some(tcp: &mut TcpStream) -> String {
    let mut buf = vec![0; 4096];
    let n = bounded(tcp.read(&mut buf)).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// A server for `script` and a raw client that read its greeting, then wrote `bytes`.
async fn greeted_then_wrote(script: &str, bytes: &[u8]) -> (ScriptServer, TcpStream) {
    let server = ScriptServer::start(script).await;
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    read_some(&mut tcp).await;
    tcp.write_all(bytes).await.unwrap();
    (server, tcp)
}

/// The server's report names a failure that says `text`.
#[track_caller]
fn assert_failure_says(report: &Report, text: &str) {
    let failure = report.failure.as_deref().unwrap_or_default();
    assert!(failure.contains(text), "{}", report.explain());
}

#[tokio::test]
async fn replies_of_one_block_arrive_in_one_write_and_bodies_are_recorded() {
    let script = "
        S: 220 hi
        C: EHLO x
        S: 250-a
        S: 250 b
        C: AUTH PLAIN *
        C: DATA-BODY
        S: 250 done
    ";
    let server = ScriptServer::start(script).await;
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    assert_eq!(read_some(&mut tcp).await, "220 hi\r\n");
    tcp.write_all(b"EHLO x\r\n").await.unwrap();
    assert_eq!(read_some(&mut tcp).await, "250-a\r\n250 b\r\n");
    tcp.write_all(b"AUTH PLAIN anything\r\nline\r\n..dot\r\n.\r\n")
        .await
        .unwrap();
    assert_eq!(read_some(&mut tcp).await, "250 done\r\n");
    drop(tcp);
    let report = server.finish().await;
    assert_eq!(report.bodies, [b"line\r\n..dot\r\n".to_vec()]);
    assert!(report.client_hung_up);
}

#[tokio::test]
async fn a_wrong_line_is_reported_with_expected_and_got() {
    let (server, _tcp) = greeted_then_wrote("S: 220 hi\nC: EHLO x\nS: 250 ok", b"HELO x\r\n").await;
    let report = server.report().await;
    assert!(!report.ok());
    let explained = report.explain();
    assert!(explained.contains("expected: C: EHLO x"), "{explained}");
    assert!(explained.contains("got:      C: HELO x"), "{explained}");
    assert!(explained.contains("! C: EHLO x"), "{explained}");
    assert!(explained.contains(". S: 250 ok"), "{explained}");
}

#[tokio::test]
async fn bytes_after_the_script_and_at_eof_steps_are_reported() {
    let (server, tcp) = greeted_then_wrote("S: 220 hi", b"QUIT\r\n").await;
    drop(tcp);
    let report = server.report().await;
    assert_failure_says(&report, "after the script ended");

    let (server, tcp) = greeted_then_wrote("S: 220 hi\nX: eof", b"NOOP\r\n").await;
    drop(tcp);
    assert!(!server.report().await.ok());
}

#[tokio::test]
async fn a_line_without_crlf_does_not_match() {
    // Bare LF: the two commands read as one line, which matches neither.
    let (server, tcp) =
        greeted_then_wrote("S: 220 hi\nC: EHLO x\nC: NOOP", b"EHLO x\nNOOP\r\n").await;
    drop(tcp);
    assert!(!server.report().await.ok());
}

#[tokio::test]
async fn tls_fail_step_reports_an_accepted_certificate() {
    // A client that trusts the test CA completes the handshake: T: tls-fail must flag it.
    let server = ScriptServer::with_tls("T: tls-fail", localhost_server_config()).await;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(ca_pem()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = bounded(tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp))
        .await
        .unwrap();
    let report = server.report().await;
    assert_failure_says(&report, "should have refused");
    let _ = tls.shutdown().await;
}
