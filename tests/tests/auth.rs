//! Authentication over real loopback TCP: `login` auto-selection, `login_with`, XOAUTH2 and
//! OAUTHBEARER (with their error challenges), refusals, wrong-state calls.

use smtp_io_tokio::{
    AuthError, AuthMechanism, SessionState, SmtpClient, SmtpError, TokioTransport,
};
use smtp_tests::{b64, bounded};

mod common;

use common::{
    QUIT, assert_matches, assert_rejected, assert_wrong_state, auth_login, start_session,
};

const USER: &str = "user@example.test";
const PASS: &str = "correct horse battery staple";
const TOKEN: &str = "ya29.a0AfH6SMBtoken-value_42";

/// base64 of `{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}`.
const JSON: &str = r#"{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}"#;

fn plain_blob() -> String {
    b64::encode(format!("\0{USER}\0{PASS}"))
}

fn xoauth2_blob() -> String {
    b64::encode(format!("user={USER}\x01auth=Bearer {TOKEN}\x01\x01"))
}

fn oauthbearer_blob() -> String {
    b64::encode(format!("n,a={USER},\x01auth=Bearer {TOKEN}\x01\x01"))
}

/// The AUTH LOGIN exchange of `USER` and `PASS`, accepted.
fn login_accepted() -> String {
    auth_login(USER, PASS, "235 ok")
}

/// Which of the client's login calls a test makes, with `USER` and `PASS` (or `TOKEN`).
#[derive(Clone, Copy, Debug)]
enum Call {
    Login,
    With(AuthMechanism),
    XOAuth2,
    OAuthBearer,
}

impl Call {
    async fn run(self, client: &mut SmtpClient<TokioTransport>) -> Result<(), SmtpError> {
        match self {
            Call::Login => bounded(client.login(USER, PASS)).await,
            Call::With(mechanism) => bounded(client.login_with(mechanism, USER, PASS)).await,
            Call::XOAuth2 => bounded(client.login_xoauth2(USER, TOKEN)).await,
            Call::OAuthBearer => bounded(client.login_oauthbearer(USER, TOKEN)).await,
        }
    }
}

/// Each login call against a server offering the capabilities shown takes the AUTH exchange
/// shown: the call succeeds and leaves the session `Ready`, and the server saw its whole script
/// (the exchange, then QUIT). Each case is named after what it shows.
#[tokio::test]
async fn login_calls_take_the_expected_exchange() {
    let cases = [
        (
            "login_prefers_plain",
            "AUTH LOGIN XOAUTH2 PLAIN",
            format!(
                "C: AUTH PLAIN {}\nS: 235 2.7.0 Authentication successful\n",
                plain_blob()
            ),
            Call::Login,
        ),
        (
            "login_falls_back_to_login",
            "AUTH LOGIN",
            auth_login(USER, PASS, "235 2.7.0 ok"),
            Call::Login,
        ),
        (
            "login_with_forces_login_even_when_plain_is_offered",
            "AUTH PLAIN LOGIN",
            login_accepted(),
            Call::With(AuthMechanism::Login),
        ),
        (
            "login_xoauth2_succeeds",
            "AUTH PLAIN LOGIN XOAUTH2",
            format!(
                "C: AUTH XOAUTH2 {}\nS: 235 2.7.0 Accepted\n",
                xoauth2_blob()
            ),
            Call::XOAuth2,
        ),
        (
            "login_oauthbearer_succeeds",
            "AUTH OAUTHBEARER",
            format!(
                "C: AUTH OAUTHBEARER {}\nS: 235 2.7.0 ok\n",
                oauthbearer_blob()
            ),
            Call::OAuthBearer,
        ),
        // Only OAuth mechanisms besides LOGIN: login() uses LOGIN.
        (
            "login_never_picks_the_oauth_mechanisms",
            "AUTH XOAUTH2 OAUTHBEARER LOGIN",
            login_accepted(),
            Call::Login,
        ),
    ];
    for (name, caps, exchange, call) in cases {
        let (server, mut client) = start_session(&[caps], &exchange).await;
        let logged_in = call.run(&mut client).await;
        assert!(logged_in.is_ok(), "{name}: {logged_in:?}");
        assert_eq!(client.state(), SessionState::Ready, "{name}");
        let quit = bounded(client.quit()).await;
        assert!(quit.is_ok(), "{name}: {quit:?}");
        let report = server.report().await;
        assert!(report.ok(), "{name}:\n{}", report.explain());
    }
}

#[tokio::test]
async fn login_without_plain_or_login_is_unsupported_and_sends_nothing() {
    for caps in [vec!["AUTH XOAUTH2 OAUTHBEARER"], vec!["PIPELINING"], vec![]] {
        // NOOP right after: proves no AUTH went out and the session stayed usable.
        let (server, mut client) = start_session(&caps, "C: NOOP\nS: 250 ok\n").await;
        let err = bounded(client.login(USER, PASS)).await.unwrap_err();
        assert_eq!(
            err,
            SmtpError::Auth(AuthError::UnsupportedMechanism { mechanism: None }),
            "{caps:?}"
        );
        assert_eq!(client.state(), SessionState::Authentication);
        smtp_tests::noop_then_quit(client, server).await;
    }
}

#[tokio::test]
async fn login_with_an_unadvertised_mechanism_is_unsupported() {
    let (server, mut client) = start_session(&["AUTH LOGIN"], "").await;
    for (call, mech) in [
        (Call::With(AuthMechanism::Plain), AuthMechanism::Plain),
        (Call::With(AuthMechanism::XOAuth2), AuthMechanism::XOAuth2),
        (
            Call::With(AuthMechanism::OAuthBearer),
            AuthMechanism::OAuthBearer,
        ),
        (Call::XOAuth2, AuthMechanism::XOAuth2),
    ] {
        let err = call.run(&mut client).await.unwrap_err();
        assert_eq!(
            err,
            SmtpError::Auth(AuthError::UnsupportedMechanism {
                mechanism: Some(mech)
            }),
            "{call:?}"
        );
    }
    assert_eq!(client.state(), SessionState::Authentication);
    smtp_tests::quit(client, server).await;
}

#[tokio::test]
async fn second_login_and_login_after_send_are_wrong_state() {
    // login, login again.
    let exchange = format!("C: AUTH PLAIN {}\nS: 235 ok\n", plain_blob());
    let (server, mut client) = start_session(&["AUTH PLAIN"], &exchange).await;
    Call::Login.run(&mut client).await.unwrap();
    assert_wrong_state(&Call::Login.run(&mut client).await.unwrap_err());
    assert_eq!(client.state(), SessionState::Ready, "still usable");
    smtp_tests::quit(client, server).await;

    // send_mail, then login.
    let exchange = "C: MAIL FROM:<a@x.test>\nS: 250 ok\nC: RCPT TO:<b@y.test>\nS: 250 ok\nC: DATA\nS: 354 go\nC: DATA-BODY\nS: 250 ok\n";
    let (server, mut client) = start_session(&["AUTH PLAIN"], exchange).await;
    bounded(client.send_mail("a@x.test", &["b@y.test"], "x\r\n"))
        .await
        .unwrap();
    let call = Call::With(AuthMechanism::Plain);
    assert_wrong_state(&call.run(&mut client).await.unwrap_err());
    smtp_tests::quit(client, server).await;
}

#[tokio::test]
async fn rejected_credentials_keep_the_reply_and_allow_a_retry() {
    let exchange = format!(
        "C: AUTH PLAIN *\nS: 535 5.7.8 Authentication credentials invalid\n{}",
        login_accepted()
    );
    let (server, mut client) = start_session(&["AUTH PLAIN LOGIN"], &exchange).await;
    let err = bounded(client.login(USER, "wrong password"))
        .await
        .unwrap_err();
    let (reply, detail) = assert_rejected(&err, AuthMechanism::Plain, 535);
    assert_eq!(
        reply.enhanced().map(|e| e.to_string()).as_deref(),
        Some("5.7.8")
    );
    assert!(reply.text().contains("credentials invalid"), "{reply}");
    assert_eq!(detail, None);
    assert!(!err.is_transient());
    assert_eq!(client.state(), SessionState::Authentication);
    Call::With(AuthMechanism::Login)
        .run(&mut client)
        .await
        .unwrap();
    assert_eq!(client.state(), SessionState::Ready);
    smtp_tests::quit(client, server).await;
}

/// Google / Microsoft style: a `334` with a base64 JSON error, the client answers with an empty
/// line, the server's `535` follows and is kept in the error together with the decoded JSON.
#[tokio::test]
async fn login_xoauth2_error_challenge() {
    let exchange = format!(
        "C: AUTH XOAUTH2 {}\nS: 334 {}\nC: \nS: 535-5.7.8 Username and Password not accepted.\nS: 535 5.7.8 Learn more at https://support.example/\n",
        xoauth2_blob(),
        b64::encode(JSON),
    );
    let (server, mut client) = start_session(&["AUTH XOAUTH2"], &exchange).await;
    let err = Call::XOAuth2.run(&mut client).await.unwrap_err();
    let (reply, detail) = assert_rejected(&err, AuthMechanism::XOAuth2, 535);
    assert!(reply.text().contains("not accepted"), "{reply}");
    let detail = detail.expect("decoded error challenge kept");
    assert!(detail.contains(r#""status":"401""#), "{detail}");
    assert!(detail.contains("Bearer"), "{detail}");
    assert!(err.to_string().contains("401"), "{err}");
    assert_eq!(client.state(), SessionState::Authentication);
    smtp_tests::quit(client, server).await;
}

/// RFC 7628 section 3.2.3: the client answers an error challenge with `%x01` (`AQ==`).
#[tokio::test]
async fn login_oauthbearer_error_challenge() {
    let json = r#"{"status":"invalid_token","scope":"mail","openid-configuration":"https://idp.example/.well-known/openid-configuration"}"#;
    let exchange = format!(
        "C: AUTH OAUTHBEARER {}\nS: 334 {}\nC: AQ==\nS: 535 5.7.8 invalid token\n",
        oauthbearer_blob(),
        b64::encode(json),
    );
    let (server, mut client) = start_session(&["AUTH OAUTHBEARER XOAUTH2"], &exchange).await;
    let err = bounded(client.login_with(AuthMechanism::OAuthBearer, USER, TOKEN))
        .await
        .unwrap_err();
    let (_, detail) = assert_rejected(&err, AuthMechanism::OAuthBearer, 535);
    assert!(
        detail.unwrap_or_default().contains("invalid_token"),
        "{detail:?}"
    );
    smtp_tests::quit(client, server).await;
}

#[tokio::test]
async fn credentials_with_line_breaks_are_refused_without_io() {
    let (server, mut client) =
        start_session(&["AUTH PLAIN LOGIN XOAUTH2"], "C: NOOP\nS: 250 ok\n").await;
    for result in [
        bounded(client.login("us\r\ner", PASS)).await,
        bounded(client.login(USER, "pa\0ss")).await,
        bounded(client.login_xoauth2(USER, "tok\r\nQUIT")).await,
    ] {
        assert_matches!(result, Err(SmtpError::InvalidInput(_)));
    }
    assert_eq!(client.state(), SessionState::Authentication);
    smtp_tests::noop_then_quit(client, server).await;
}

#[tokio::test]
async fn malformed_challenge_cancels_the_exchange() {
    let exchange = "C: AUTH LOGIN\nS: 334 !!not base64!!\nC: *\nS: 501 5.7.0 cancelled\n";
    let (server, mut client) = start_session(&["AUTH LOGIN"], exchange).await;
    let err = bounded(client.login(USER, PASS)).await.unwrap_err();
    assert_eq!(
        err,
        SmtpError::Auth(AuthError::MalformedChallenge {
            mechanism: AuthMechanism::Login
        })
    );
    assert_eq!(client.state(), SessionState::Authentication);
    let report = smtp_tests::quit(client, server).await;
    // The cancel line is "*" (RFC 4954 section 4), not a credential.
    assert!(
        report.transcript.iter().any(|l| l == "C: *"),
        "{}",
        report.explain()
    );
}

// ---- SCRAM-SHA-256 and -PLUS, against the SCRAM server of `smtp_tests::scram` ----

mod scram {
    use smtp_io_tokio::{
        AuthError, AuthMechanism, ScramError, SessionState, SmtpClient, SmtpError, TlsMode,
        TokioTransport,
    };
    use smtp_tests::certs::{localhost_server_config, localhost_tls12_server_config};
    use smtp_tests::scram::{Ending, ScramServer};
    use smtp_tests::{CLIENT, ScriptServer, bounded, greet};

    use super::{PASS, QUIT, USER};
    use crate::common::{start_session, tls_options};

    async fn serve(caps: &str, rest: &str, ending: Ending) -> (ScriptServer, SeenHandle) {
        let (responder, seen) = ScramServer::new(PASS, ending);
        let script = format!("{}H: respond\n{rest}", greet(&[caps]));
        let server = ScriptServer::with_responder(&script, None, false, Box::new(responder)).await;
        (server, seen)
    }

    type SeenHandle = std::sync::Arc<std::sync::Mutex<smtp_tests::scram::Seen>>;

    async fn plain_client(server: &ScriptServer) -> SmtpClient<TokioTransport> {
        bounded(smtp_tests::connect_plain(server)).await.unwrap()
    }

    #[tokio::test]
    async fn login_prefers_scram_over_plain_and_login() {
        let (server, seen) = serve(
            "AUTH PLAIN LOGIN XOAUTH2 SCRAM-SHA-256",
            QUIT,
            Ending::Normal,
        )
        .await;
        let mut client = plain_client(&server).await;
        bounded(client.login(USER, PASS)).await.unwrap();
        assert_eq!(
            client.session().authenticated(),
            Some(AuthMechanism::ScramSha256)
        );
        smtp_tests::quit(client, server).await;
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.mechanism, "SCRAM-SHA-256");
        // Plaintext: no binding data, so "n".
        assert_eq!(seen.gs2_header, "n,,");
        assert_eq!(seen.user, USER);
        assert_eq!(seen.client_nonce.len(), 24, "18 random bytes in base64");
        assert!(seen.proof_ok && seen.binding_ok);
    }

    #[tokio::test]
    async fn nonces_differ_between_connections() {
        let mut nonces = Vec::new();
        for _ in 0..2 {
            let (server, seen) = serve("AUTH SCRAM-SHA-256", QUIT, Ending::Normal).await;
            let mut client = plain_client(&server).await;
            bounded(client.login_with(AuthMechanism::ScramSha256, USER, PASS))
                .await
                .unwrap();
            smtp_tests::quit(client, server).await;
            nonces.push(seen.lock().unwrap().client_nonce.clone());
        }
        assert_ne!(nonces[0], nonces[1]);
    }

    #[tokio::test]
    async fn wrong_password_is_rejected_with_the_server_error() {
        let (server, seen) = serve(
            "AUTH SCRAM-SHA-256 PLAIN",
            &format!("C: NOOP\nS: 250 ok\n{QUIT}"),
            Ending::Normal,
        )
        .await;
        let mut client = plain_client(&server).await;
        let err = bounded(client.login(USER, "not the password"))
            .await
            .unwrap_err();
        match err {
            SmtpError::Auth(AuthError::Rejected { reply, detail, .. }) => {
                assert_eq!(reply.code().get(), 535);
                assert_eq!(detail.as_deref(), Some("invalid-proof"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(client.state(), SessionState::Authentication);
        smtp_tests::noop_then_quit(client, server).await;
        assert!(!seen.lock().unwrap().proof_ok);
    }

    #[tokio::test]
    async fn a_wrong_server_signature_closes_the_connection() {
        for ending in [Ending::WrongSignature, Ending::SuccessWithoutSignature] {
            let (server, _) = serve("AUTH SCRAM-SHA-256 PLAIN", "X: eof\n", ending.clone()).await;
            let mut client = plain_client(&server).await;
            let err = bounded(client.login(USER, PASS)).await.unwrap_err();
            let want = match ending {
                Ending::WrongSignature => ScramError::ServerSignatureMismatch,
                _ => ScramError::ServerNotVerified,
            };
            assert_eq!(
                err,
                SmtpError::Auth(AuthError::Scram {
                    mechanism: AuthMechanism::ScramSha256,
                    error: want
                })
            );
            assert_eq!(client.state(), SessionState::Closed);
            // Nothing more goes to that server: every later call gets the same error.
            assert_eq!(bounded(client.login(USER, PASS)).await.unwrap_err(), err);
            let report = server.finish().await;
            assert!(report.client_hung_up, "{}", report.explain());
        }
    }

    #[tokio::test]
    async fn plus_is_refused_without_io_on_plaintext() {
        let (server, mut client) = start_session(
            &["AUTH SCRAM-SHA-256 SCRAM-SHA-256-PLUS"],
            "C: NOOP\nS: 250 ok\n",
        )
        .await;
        assert_eq!(
            bounded(client.login_with(AuthMechanism::ScramSha256Plus, USER, PASS))
                .await
                .unwrap_err(),
            SmtpError::Auth(AuthError::ChannelBindingUnavailable {
                mechanism: AuthMechanism::ScramSha256Plus
            })
        );
        smtp_tests::noop_then_quit(client, server).await;
    }

    /// `login` over TLS in `mode` with `caps` and the server's TLS `config` chooses `want`: the
    /// SCRAM server saw that mechanism with the GS2 header `gs2`, and checked the proof and the
    /// channel binding.
    async fn logs_in_over_tls(
        caps: &str,
        config: std::sync::Arc<rustls::ServerConfig>,
        mode: TlsMode,
        want: AuthMechanism,
        gs2: &str,
    ) {
        let (responder, seen) = ScramServer::new(PASS, Ending::Normal);
        let script = match mode {
            TlsMode::Implicit => format!("{}H: respond\n{QUIT}", greet(&[caps])),
            _ => format!(
                "{}C: STARTTLS\nS: 220 go ahead\nT: tls\nC: EHLO {CLIENT}\nS: 250-mx.test\nS: 250 {caps}\nH: respond\n{QUIT}",
                greet(&["STARTTLS"]),
            ),
        };
        let server = ScriptServer::with_responder(
            &script,
            Some(config),
            mode == TlsMode::Implicit,
            Box::new(responder),
        )
        .await;
        let mut client = crate::common::connect_localhost(&server, tls_options(mode))
            .await
            .unwrap();
        bounded(client.login(USER, PASS)).await.unwrap();
        let mechanism = client.session().authenticated().unwrap();
        smtp_tests::quit(client, server).await;
        let seen = seen.lock().unwrap().clone();
        assert_eq!(mechanism, want, "{mode:?}");
        assert_eq!(seen.mechanism, want.name(), "{mode:?}");
        assert_eq!(seen.gs2_header, gs2, "{mode:?}");
        // The server compared c= with its own exporter value of the same connection.
        assert!(seen.binding_ok && seen.proof_ok, "{mode:?}: {seen:?}");
    }

    #[tokio::test]
    async fn plus_binds_to_tls_1_3_implicit_and_starttls() {
        for mode in [TlsMode::Implicit, TlsMode::StartTls] {
            logs_in_over_tls(
                "AUTH PLAIN SCRAM-SHA-256 SCRAM-SHA-256-PLUS",
                localhost_server_config(),
                mode,
                AuthMechanism::ScramSha256Plus,
                "p=tls-exporter,,",
            )
            .await;
        }
    }

    #[tokio::test]
    async fn tls_1_3_without_plus_offered_says_y() {
        logs_in_over_tls(
            "AUTH PLAIN SCRAM-SHA-256",
            localhost_server_config(),
            TlsMode::Implicit,
            AuthMechanism::ScramSha256,
            "y,,",
        )
        .await;
    }

    #[tokio::test]
    async fn tls_1_2_has_no_binding_so_plain_scram_with_n() {
        logs_in_over_tls(
            "AUTH PLAIN SCRAM-SHA-256 SCRAM-SHA-256-PLUS",
            localhost_tls12_server_config(),
            TlsMode::Implicit,
            AuthMechanism::ScramSha256,
            "n,,",
        )
        .await;
    }
}
