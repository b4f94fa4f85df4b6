//! The 465/587 mix-up, the most common support question of every SMTP client: implicit TLS to
//! a port that speaks SMTP first (the server's plaintext greeting answers the ClientHello) is
//! an error that says to use STARTTLS or the implicit-TLS port; STARTTLS (or no TLS) to a port
//! that expects implicit TLS meets a server waiting in silence for a handshake: the greeting's
//! timeout (the CLI names the fix; see smtp-send). The interop matrix checks both against
//! Postfix's two ports.

use std::time::Duration;

use smtp_io_tokio::{ConnectOptions, SmtpError, SmtpOp, TlsConfig, TlsMode};
use smtp_testkit::certs::TestPki;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::test]
async fn implicit_tls_to_a_plaintext_port_says_to_use_starttls() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let _ = tcp.write_all(b"220 plain.test ESMTP\r\n").await;
            let mut buf = [0u8; 512];
            let _ = tcp.read(&mut buf).await;
            let _ = tcp.write_all(b"500 5.5.2 what is this?\r\n").await;
        }
    });
    let error = ConnectOptions::new(TlsMode::Implicit)
        .with_tls_config(TlsConfig::insecure_accept_any_certificate_for_tests_only())
        .connect("127.0.0.1", port, "client.test")
        .await
        .unwrap_err();
    let SmtpError::Io {
        during: SmtpOp::TlsHandshake,
        ..
    } = &error
    else {
        panic!("{error:?}");
    };
    let text = error.to_string();
    assert!(
        text.contains("plain text") && text.contains("STARTTLS") && text.contains("465"),
        "{text}"
    );
}

#[tokio::test]
async fn starttls_to_an_implicit_tls_port_is_a_greeting_timeout() {
    let pki = TestPki::generate().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.localhost_config());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            // Waits for a ClientHello that never comes, as a real port 465 does.
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(tcp).await;
            });
        }
    });
    for mode in [TlsMode::StartTls, TlsMode::None] {
        let error = ConnectOptions::new(mode)
            .with_reply_timeout(Duration::from_millis(500))
            .connect("127.0.0.1", port, "client.test")
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                SmtpError::Timeout {
                    during: SmtpOp::Greeting,
                    ..
                }
            ),
            "{mode:?}: {error:?}"
        );
    }
}
