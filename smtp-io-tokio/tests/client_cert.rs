//! Mutual TLS on loopback: a server that requires a client certificate signed by its CA accepts
//! the client presenting one (`TlsConfig::with_client_certificate_pem`), and the certificate it
//! saw is that one; a certificate from another CA, or none, fails with a typed error and the
//! server never gets to SMTP. (The interop matrix does the same against aiosmtpd.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_io_tokio::{ConnectOptions, ProtocolError, SmtpError, TlsConfig, TlsMode};
use smtp_testkit::certs::{TestCa, stranger_client};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A mutual-TLS SMTP server: what each accepted client presented, and the messages it took.
#[derive(Default)]
struct Seen {
    client_certs: Mutex<Vec<Vec<u8>>>,
    delivered: Mutex<usize>,
}

async fn server(ca: &TestCa, seen: Arc<Seen>) -> u16 {
    let leaf = ca.issue(&["localhost", "127.0.0.1"]).unwrap();
    let acceptor =
        tokio_rustls::TlsAcceptor::from(ca.server_config_requiring_clients(&leaf).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Some(certs) = tls.get_ref().1.peer_certificates() {
                    seen.client_certs.lock().unwrap().push(certs[0].to_vec());
                }
                let mut io = BufReader::new(tls);
                let _ = io.get_mut().write_all(b"220 mtls.test\r\n").await;
                let mut line = String::new();
                loop {
                    line.clear();
                    if io.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let reply: &[u8] = match line.get(..4).unwrap_or("") {
                        "EHLO" => b"250 mtls.test\r\n",
                        "DATA" => {
                            let _ = io.get_mut().write_all(b"354 go\r\n").await;
                            while line != ".\r\n" {
                                line.clear();
                                if io.read_line(&mut line).await.unwrap_or(0) == 0 {
                                    return;
                                }
                            }
                            *seen.delivered.lock().unwrap() += 1;
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            let _ = io.get_mut().write_all(b"221 bye\r\n").await;
                            let _ = io.get_mut().flush().await;
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    if io.get_mut().write_all(reply).await.is_err() {
                        return;
                    }
                    let _ = io.get_mut().flush().await;
                }
            });
        }
    });
    port
}

async fn send(tls: TlsConfig, port: u16) -> Result<(), SmtpError> {
    let mut client = ConnectOptions::new(TlsMode::Implicit)
        .with_tls_config(tls)
        .with_tls_server_name("localhost")
        .with_reply_timeout(Duration::from_secs(5))
        .connect("127.0.0.1", port, "client.test")
        .await?;
    client
        .send_mail(
            "a@test.example",
            &["b@test.example"],
            "Subject: mtls\r\n\r\nhi\r\n",
        )
        .await?;
    client.quit().await
}

#[tokio::test]
async fn a_client_certificate_is_presented_and_a_wrong_one_fails_typed() {
    let ca = TestCa::new("mtls test CA").unwrap();
    let seen = Arc::new(Seen::default());
    let port = server(&ca, seen.clone()).await;
    let trust = TlsConfig::from_ca_pem(ca.pem().as_bytes()).unwrap();

    let client = ca.issue_client("mtls client").unwrap();
    let tls = trust
        .with_client_certificate_pem(client.cert_pem.as_bytes(), client.key_pem.as_bytes())
        .unwrap();
    assert!(tls.has_client_certificate());
    assert!(!format!("{tls:?}").contains("PRIVATE"));
    send(tls, port).await.unwrap();
    assert_eq!(*seen.delivered.lock().unwrap(), 1);
    assert_eq!(
        seen.client_certs.lock().unwrap().clone(),
        [client.cert().to_vec()]
    );

    let stranger = stranger_client("stranger");
    let wrong = trust
        .with_client_certificate(vec![stranger.cert().clone()], stranger.key())
        .unwrap();
    for (name, tls) in [
        ("a stranger's certificate", wrong),
        ("no certificate", trust.clone()),
    ] {
        let error = send(tls, port).await.unwrap_err();
        assert!(
            matches!(
                error,
                SmtpError::Io { .. } | SmtpError::Protocol(ProtocolError::ConnectionClosed { .. })
            ),
            "{name}: {error:?}"
        );
    }
    assert_eq!(*seen.delivered.lock().unwrap(), 1);
    assert_eq!(seen.client_certs.lock().unwrap().len(), 1);
}

#[test]
fn a_bad_client_key_is_refused_before_connecting() {
    let trust = TlsConfig::webpki_roots();
    let ca = TestCa::new("keys").unwrap();
    let client = ca.issue_client("c").unwrap();
    let error = trust
        .with_client_certificate_pem(client.cert_pem.as_bytes(), b"not a key")
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    let error = trust
        .with_client_certificate_pem(b"", client.key_pem.as_bytes())
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(!error.to_string().contains("PRIVATE"));
}
