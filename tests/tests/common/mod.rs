//! Script fragments and checks shared by the loopback tests of this folder (`mod common;` in
//! each). What every crate's tests could use lives in `smtp_tests` / `smtp-testkit`; this is
//! what only these files repeat.

// Each test file uses a part of it.
#![allow(dead_code)]

use smtp_io_tokio::{
    AuthError, AuthMechanism, ConnectOptions, InvalidInputError, ProtocolError, Reply, SmtpClient,
    SmtpError, SmtpOp, TlsMode, TokioTransport,
};
use smtp_tests::{CLIENT, ScriptServer, b64, bounded, greet, test_ca};

/// `assert!(matches!(value, pattern))` that shows the value when it does not match.
macro_rules! assert_matches {
    ($value:expr, $($pattern:tt)+) => {{
        let value = &$value;
        assert!(matches!(value, $($pattern)+), "{value:?}");
    }};
}
pub(crate) use assert_matches;

/// The end of most scripts: QUIT and its reply.
pub const QUIT: &str = "C: QUIT\nS: 221 2.0.0 bye\n";

/// One pipelined message from `a@x.test` to `b@y.test` up to its body, the end-of-data reply
/// the caller's (the testkit's, shared with the blocking client's tests).
pub const FLIGHT: &str = smtp_testkit::script::FLIGHT;

/// The start of [`FLIGHT`]: MAIL, RCPT and DATA in one flight and the `250` replies to MAIL and
/// RCPT; the reply to DATA (and what follows) the caller's.
pub const ENVELOPE: &str =
    "C: MAIL FROM:<a@x.test>\nC: RCPT TO:<b@y.test>\nC: DATA\nS: 250 ok\nS: 250 ok\n";

/// A server that greets, offers `caps`, expects `exchange` and then [`QUIT`]; and a client
/// connected to it in plaintext with the default options.
pub async fn start_session(
    caps: &[&str],
    exchange: &str,
) -> (ScriptServer, SmtpClient<TokioTransport>) {
    smtp_tests::start(&format!("{}{exchange}{QUIT}", greet(caps))).await
}

/// Send `body` from `a@x.test` to `to` on `client`: it must be queued as `queue_id`.
pub async fn send_queued(
    client: &mut SmtpClient<TokioTransport>,
    to: &[&str],
    body: &str,
    queue_id: &str,
) {
    let outcome = bounded(client.send_mail("a@x.test", to, body))
        .await
        .unwrap();
    assert_eq!(outcome.queue_id.as_deref(), Some(queue_id));
}

/// A server for `script` and a client's attempt to connect to it in plaintext with `options`.
pub async fn start_with(
    script: &str,
    options: ConnectOptions,
) -> (ScriptServer, Result<SmtpClient<TokioTransport>, SmtpError>) {
    let server = ScriptServer::start(script).await;
    let client = bounded(smtp_tests::connect(&server, options)).await;
    (server, client)
}

/// An AUTH LOGIN exchange of `user` and `pass`, the server's last reply `done` (e.g.
/// `235 ok`).
pub fn auth_login(user: &str, pass: &str, done: &str) -> String {
    format!(
        "C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: {}\nS: 334 UGFzc3dvcmQ6\nC: {}\nS: {done}\n",
        b64::encode(user),
        b64::encode(pass)
    )
}

/// A call made in the wrong state of the session, refused without I/O.
#[track_caller]
pub fn assert_wrong_state(err: &SmtpError) {
    assert!(
        matches!(
            err,
            SmtpError::InvalidInput(InvalidInputError::WrongState { .. })
        ),
        "{err:?}"
    );
}

/// An unexpected reply to the command of `during`, with `code`; returns the reply.
#[track_caller]
pub fn assert_unexpected_code(err: &SmtpError, during: SmtpOp, code: u16) -> &Reply {
    match err {
        SmtpError::Protocol(ProtocolError::UnexpectedCode { during: got, reply }) => {
            assert_eq!(*got, during, "{err:?}");
            assert_eq!(reply.code().get(), code, "{err:?}");
            reply
        }
        other => panic!("{other:?}"),
    }
}

/// An AUTH exchange of `mechanism` the server refused with `code`; returns the reply and the
/// decoded detail of an error challenge.
#[track_caller]
pub fn assert_rejected(
    err: &SmtpError,
    mechanism: AuthMechanism,
    code: u16,
) -> (&Reply, Option<&str>) {
    match err {
        SmtpError::Auth(AuthError::Rejected {
            mechanism: got,
            reply,
            detail,
        }) => {
            assert_eq!(*got, mechanism, "{err:?}");
            assert_eq!(reply.code().get(), code, "{err:?}");
            (reply, detail.as_deref())
        }
        other => panic!("{other:?}"),
    }
}

/// Options of a TLS `mode` that trust the test CA.
pub fn tls_options(mode: TlsMode) -> ConnectOptions {
    ConnectOptions::new(mode).with_tls_config(test_ca())
}

/// Connect to `server` as `localhost` (the name its certificate is for) with `options`.
pub async fn connect_localhost(
    server: &ScriptServer,
    options: ConnectOptions,
) -> Result<SmtpClient<TokioTransport>, SmtpError> {
    bounded(options.connect("localhost", server.port(), CLIENT)).await
}

/// A plaintext `TokioTransport` to `server` that can be upgraded with STARTTLS to `localhost`
/// (trusting the test CA).
pub async fn starttls_transport(server: &ScriptServer) -> TokioTransport {
    let tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    TokioTransport::plain_with_starttls(tcp, "localhost", test_ca()).unwrap()
}

/// `SmtpClient::connect` over a [`starttls_transport`]: greeting and EHLO in plaintext, STARTTLS
/// left to the test.
pub async fn starttls_client(server: &ScriptServer) -> SmtpClient<TokioTransport> {
    bounded(SmtpClient::connect(
        starttls_transport(server).await,
        CLIENT,
    ))
    .await
    .unwrap()
}
