//! The application test of the workspace README ("Testing code that sends mail"): the same
//! `welcome` function as the `StubMailSender` example, sent through a real `Mailer` over
//! STARTTLS and AUTH to the capture server. Keep the two in step.

use std::time::Duration;

use smtp_capture::{CaptureConfig, CaptureServer};
use smtp_io_tokio::{MailSender, Mailer, SendError, TlsConfig, TlsMode};

async fn welcome(mail: &impl MailSender, user: &str) -> Result<(), SendError> {
    let body = format!("To: {user}\r\nSubject: Welcome\r\n\r\nHi!\r\n");
    mail.send_mail("app@example.com", &[user], body.as_bytes())
        .await
        .map(drop)
}

#[tokio::test]
async fn test_welcome_over_the_wire() -> Result<(), Box<dyn std::error::Error>> {
    let server =
        CaptureServer::start(CaptureConfig::default().with_credentials("app", "pw")).await?;
    let port = server.addr().port();
    let mailer = Mailer::builder("127.0.0.1", port, TlsMode::StartTls, "app.example.com")
        .tls_config(TlsConfig::from_ca_pem(server.ca_pem().as_bytes())?)
        .tls_server_name("localhost")
        .credentials("app", "pw")
        .build()?;
    welcome(&mailer, "new@example.org").await?;
    let got = server.wait_for(1, Duration::from_secs(5)).await?;
    assert!(got[0].tls);
    assert_eq!(got[0].auth_user(), Some("app"));
    assert_eq!(got[0].rcpt_to, ["new@example.org"]);
    assert_eq!(got[0].header("Subject").as_deref(), Some("Welcome"));
    Ok(())
}

/// With feature `smtp-rustls`, the server hands out a ready `TlsConfig` (the same trust).
#[cfg(feature = "smtp-rustls")]
#[tokio::test]
async fn the_ready_tls_config_trusts_the_server() -> Result<(), Box<dyn std::error::Error>> {
    let server = CaptureServer::start(CaptureConfig::default()).await?;
    let other = CaptureServer::start(CaptureConfig::default()).await?;
    let connect = |tls: TlsConfig| {
        smtp_io_tokio::ConnectOptions::new(TlsMode::StartTls)
            .with_tls_config(tls)
            .with_tls_server_name("localhost")
            .connect("127.0.0.1", server.addr().port(), "app.example.com")
    };
    let mut client = connect(server.tls_config()).await?;
    client
        .send_mail("a@example.com", &["b@example.org"], "x\r\n")
        .await?;
    client.quit().await?;
    assert!(server.wait_for(1, Duration::from_secs(5)).await?[0].tls);
    assert!(
        connect(other.tls_config()).await.is_err(),
        "another server's CA"
    );
    Ok(())
}
