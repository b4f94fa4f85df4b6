//! Mutual TLS on loopback: a server that requires a client certificate signed by its CA accepts
//! the client presenting one (`TlsConfig::with_client_certificate_pem`), and the certificate it
//! saw is that one; a certificate from another CA, or none, fails with a typed error and the
//! server never gets to SMTP. (The interop matrix does the same against aiosmtpd.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use smtp_io_tokio::{ConnectOptions, SmtpError, TlsConfig, TlsMode};
use smtp_testkit::certs::{TestCa, stranger_client};
use smtp_testkit::mock::{Act, Conversation, MockServer, well_behaved};

/// What the mutual-TLS server saw: what each accepted client presented, and the messages it
/// took.
#[derive(Default)]
struct Seen {
    client_certs: Mutex<Vec<Vec<u8>>>,
    delivered: Mutex<usize>,
}

/// One connection to a server that requires a client certificate signed by its CA.
struct MutualTls(Arc<Seen>);

impl Conversation for MutualTls {
    fn greeting(&mut self) -> Act {
        Act::send("220 mtls.test\r\n")
    }

    fn client_certificates(&mut self, certificates: Option<&[CertificateDer<'static>]>) {
        if let Some(first) = certificates.and_then(|c| c.first()) {
            self.0.client_certs.lock().unwrap().push(first.to_vec());
        }
    }

    fn command(&mut self, line: &str) -> Act {
        well_behaved("mtls.test", &[], line)
    }

    fn end_of_data(&mut self, _body: Vec<u8>) -> Act {
        *self.0.delivered.lock().unwrap() += 1;
        Act::send("250 queued\r\n")
    }
}

async fn server(ca: &TestCa, seen: Arc<Seen>) -> u16 {
    let leaf = ca.issue(&["localhost", "127.0.0.1"]).unwrap();
    let tls = ca.server_config_requiring_clients(&leaf).unwrap();
    MockServer::implicit_tls(tls, move |_| MutualTls(seen.clone()))
        .await
        .port()
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
        // The server's alert arrives after the client's side of the handshake (TLS 1.3): a
        // TLS failure all the same, not a lost connection.
        let error = send(tls, port).await.unwrap_err();
        assert!(
            matches!(error, SmtpError::Io { .. }) && error.is_tls_failure(),
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
