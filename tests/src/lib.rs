//! Shared helpers for the end-to-end tests: the test PKI ([`certs`]) and the in-process scripted
//! SMTP server ([`server`]) of `smtp-testkit` (re-exported under their old paths), the server
//! side of SCRAM ([`scram`]), a `tracing` capture ([`logcap`]) and a base64 encoder ([`b64`]).

pub mod b64;
pub mod logcap;
pub mod scram;

pub use smtp_testkit::{Answer, Report, Responder, ScriptServer};
pub use smtp_testkit::{certs, server};

use std::time::Duration;

use smtp_io_tokio::{ConnectOptions, SmtpClient, SmtpError, TlsConfig, TlsMode, TokioTransport};

/// The EHLO domain every test client uses.
pub const CLIENT: &str = "client.test";

/// A reply timeout short enough to keep timeout tests fast, long enough for a loaded CI machine
/// to answer every reply that does come.
pub const SHORT: Duration = Duration::from_millis(300);

/// Plaintext connection options (loopback test server), with AUTH allowed without TLS (the
/// default refuses it; `tests/auth.rs` checks that).
pub fn plain() -> ConnectOptions {
    ConnectOptions::new(TlsMode::None).allow_plaintext_auth()
}

/// The test CA as a client trust configuration.
pub fn test_ca() -> TlsConfig {
    TlsConfig::from_ca_pem(certs::ca_pem()).expect("test CA PEM")
}

/// Connect in plaintext to `server` with `options`.
pub async fn connect(
    server: &ScriptServer,
    options: ConnectOptions,
) -> Result<SmtpClient<TokioTransport>, SmtpError> {
    options.connect("127.0.0.1", server.port(), CLIENT).await
}

/// Connect in plaintext to `server` with the default options.
pub async fn connect_plain(server: &ScriptServer) -> Result<SmtpClient<TokioTransport>, SmtpError> {
    connect(server, plain()).await
}

/// The opening of most scripts: the greeting, the client's EHLO and a `250` reply advertising
/// `caps` (one per line, in order).
pub fn greet(caps: &[&str]) -> String {
    smtp_testkit::greet(CLIENT, caps)
}

/// A bound on a whole client operation, so a hang fails the test instead of stalling the run.
/// This is a safety net, not a timing assertion: the limit is far above any expected duration.
pub async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("the client hung (no result within 10 s)")
}

/// A scripted server for `script`, and a client connected to it in plaintext with the default
/// options.
pub async fn start(script: &str) -> (ScriptServer, SmtpClient<TokioTransport>) {
    let server = ScriptServer::start(script).await;
    let client = bounded(connect_plain(&server)).await.unwrap();
    (server, client)
}

/// The end of a session: the client's QUIT must succeed, and the server must have seen its
/// whole script.
pub async fn quit(client: SmtpClient<TokioTransport>, server: ScriptServer) -> Report {
    bounded(client.quit()).await.unwrap();
    server.finish().await
}

/// The end of a session that must still be usable (after a refusal, say): a NOOP is answered,
/// then [`quit`].
pub async fn noop_then_quit(
    mut client: SmtpClient<TokioTransport>,
    server: ScriptServer,
) -> Report {
    bounded(client.noop()).await.unwrap();
    quit(client, server).await
}
