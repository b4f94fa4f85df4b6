//! No password or token, nor any base64 form of it, in the `tracing` log (captured at every level),
//! nor in `Debug` / `Display` of the client, its options and every error, for each SASL
//! mechanism, successful or refused. The scripted server checks the secrets really went over the
//! wire, and the log is checked to hold the transcript, so the absence checks are meaningful.

use smtp_io_tokio::{AuthMechanism, ConnectOptions, SmtpClient, SmtpError, TokioTransport};
use smtp_tests::logcap::{LogBuffer, capture};
use smtp_tests::{ScriptServer, b64, bounded, greet, plain};

const USER: &str = "leaky.user@example.test";
const PASS: &str = "Pa55-w0rd!hunter2-never-log";
const WRONG_PASS: &str = "Wr0ng-pa55word-also-secret";
const TOKEN: &str = "ya29.TOKEN-never-log-me_0123456789";
const ERROR_JSON: &str =
    r#"{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}"#;

/// Every form of `secret` that must never show: itself, and its base64 at each of the three
/// alignments it can have inside a longer base64 blob (only the characters that depend on the
/// secret's bytes alone), plus the base64 of each whole SASL `blob` it was sent in.
fn forbidden(secret: &str, blobs: &[String]) -> Vec<String> {
    let mut out = vec![secret.to_owned(), b64::encode(secret)];
    for pad in 0..3 {
        let mut bytes = vec![b'\0'; pad];
        bytes.extend_from_slice(secret.as_bytes());
        let enc = b64::encode(&bytes);
        // Drop the group that mixes in the padding and the last (possibly padded) group.
        let start = if pad == 0 { 0 } else { 4 };
        let inner = &enc[start..enc.len() - 4];
        assert!(inner.len() >= 12, "secret too short for a meaningful check");
        out.push(inner.to_owned());
    }
    for blob in blobs {
        out.push(b64::encode(blob));
    }
    out
}

/// [`forbidden`] for both passwords: [`PASS`] as sent in `good` blobs, [`WRONG_PASS`] in `bad`.
fn forbidden_passwords(good: &[String], bad: &[String]) -> Vec<String> {
    let mut out = forbidden(PASS, good);
    out.extend(forbidden(WRONG_PASS, bad));
    out
}

fn assert_clean(what: &str, text: &str, forbidden: &[String]) {
    for f in forbidden {
        assert!(!text.contains(f.as_str()), "{what} leaks {f:?}:\n{text}");
    }
}

struct Checker {
    log: LogBuffer,
    forbidden: Vec<String>,
    texts: Vec<(String, String)>,
}

impl Checker {
    fn new(log: LogBuffer, forbidden: Vec<String>) -> Checker {
        Checker {
            log,
            forbidden,
            texts: Vec::new(),
        }
    }

    fn client(&mut self, client: &SmtpClient<TokioTransport>) {
        self.texts.push((
            "client Debug".into(),
            format!("{client:?} {:?}", client.session()),
        ));
    }

    fn error(&mut self, err: &SmtpError) {
        self.texts.push(("error Debug".into(), format!("{err:?}")));
        self.texts.push(("error Display".into(), format!("{err}")));
        if let Some(reply) = err.reply() {
            self.texts
                .push(("error reply".into(), format!("{reply} {reply:?}")));
        }
    }

    fn options(&mut self, options: &ConnectOptions) {
        self.texts
            .push(("options Debug".into(), format!("{options:?}")));
    }

    /// Check everything collected, and that the log did capture the session.
    fn finish(self, must_log: &[&str]) {
        let log = self.log.contents();
        assert!(
            log.contains("C: EHLO client.test"),
            "the capture saw no transcript, the check would be void:\n{log}"
        );
        for m in must_log {
            assert!(log.contains(m), "log lacks {m:?}:\n{log}");
        }
        assert_clean("the tracing log", &log, &self.forbidden);
        for (what, text) in &self.texts {
            assert_clean(what, text, &self.forbidden);
        }
    }
}

fn quit() -> &'static str {
    "C: QUIT\nS: 221 2.0.0 bye\n"
}

async fn connect(server: &ScriptServer, checker: &mut Checker) -> SmtpClient<TokioTransport> {
    let options = plain();
    checker.options(&options);
    let client = bounded(smtp_tests::connect(server, options)).await.unwrap();
    checker.client(&client);
    client
}

/// The start of most tests here: a checker that nothing of `forbidden` shows (in `log`, and
/// in what it is given), `script`'s server, and a client connected to it (its options and
/// state given to the checker).
async fn start(
    log: LogBuffer,
    forbidden: Vec<String>,
    script: &str,
) -> (Checker, ScriptServer, SmtpClient<TokioTransport>) {
    let mut checker = Checker::new(log, forbidden);
    let server = ScriptServer::start(script).await;
    let client = connect(&server, &mut checker).await;
    (checker, server, client)
}

/// The end of those tests: the client's state to the checker, QUIT as the script expects, then
/// every check, the log holding each of `must_log`.
async fn finish(
    mut checker: Checker,
    client: SmtpClient<TokioTransport>,
    server: ScriptServer,
    must_log: &[&str],
) {
    checker.client(&client);
    smtp_tests::quit(client, server).await;
    checker.finish(must_log);
}

#[tokio::test]
async fn plain_success_and_refusal_leak_nothing() {
    let (log, _guard) = capture();
    let good = format!("\0{USER}\0{PASS}");
    let bad = format!("\0{USER}\0{WRONG_PASS}");
    let forbidden = forbidden_passwords(std::slice::from_ref(&good), std::slice::from_ref(&bad));
    // The exact lines prove the secrets were on the wire.
    let script = format!(
        "{}C: AUTH PLAIN {}\nS: 535 5.7.8 Authentication credentials invalid\nC: AUTH PLAIN {}\nS: 235 2.7.0 ok\n{}",
        greet(&["AUTH PLAIN LOGIN"]),
        b64::encode(&bad),
        b64::encode(&good),
        quit()
    );
    let (mut checker, server, mut client) = start(log, forbidden, &script).await;
    let err = bounded(client.login(USER, WRONG_PASS)).await.unwrap_err();
    checker.error(&err);
    checker.client(&client);
    bounded(client.login(USER, PASS)).await.unwrap();
    checker.client(&client);
    // A wrong-state error after login, too.
    let again = bounded(client.login(USER, PASS)).await.unwrap_err();
    checker.error(&again);
    finish(checker, client, server, &["AUTH PLAIN", "535", "235"]).await;
}

#[tokio::test]
async fn login_success_and_refusal_leak_nothing() {
    let (log, _guard) = capture();
    let script = format!(
        "{g}C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: {u}\nS: 334 UGFzc3dvcmQ6\nC: {w}\nS: 535 5.7.8 bad\n\
         C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: {u}\nS: 334 UGFzc3dvcmQ6\nC: {p}\nS: 235 ok\n{q}",
        g = greet(&["AUTH LOGIN"]),
        u = b64::encode(USER),
        w = b64::encode(WRONG_PASS),
        p = b64::encode(PASS),
        q = quit()
    );
    let forbidden = forbidden_passwords(&[], &[]);
    let (mut checker, server, mut client) = start(log, forbidden, &script).await;
    let err = bounded(client.login(USER, WRONG_PASS)).await.unwrap_err();
    checker.error(&err);
    bounded(client.login_with(AuthMechanism::Login, USER, PASS))
        .await
        .unwrap();
    finish(checker, client, server, &["AUTH LOGIN", "334", "235"]).await;
}

/// The start of a token mechanism's test: a checker that neither the token nor the initial
/// response `blob` shows (in `log`, and in what it is given); a server whose first AUTH
/// `mechanism` with `blob` meets the error challenge `json` (base64), answered with `answer`,
/// then a `535`, and whose second one a `235`; and a client connected to it.
async fn token_refused_then_accepted(
    log: LogBuffer,
    mechanism: &str,
    blob: &str,
    json: &str,
    answer: &str,
) -> (Checker, ScriptServer, SmtpClient<TokioTransport>) {
    let script = format!(
        "{}C: AUTH {mechanism} {b}\nS: 334 {}\nC: {answer}\nS: 535 5.7.8 not accepted\n\
         C: AUTH {mechanism} {b}\nS: 235 2.7.0 Accepted\n{}",
        greet(&[&format!("AUTH {mechanism}")]),
        b64::encode(json),
        quit(),
        b = b64::encode(blob),
    );
    start(log, forbidden(TOKEN, &[blob.to_owned()]), &script).await
}

#[tokio::test]
async fn xoauth2_success_and_error_challenge_leak_nothing() {
    let (log, _guard) = capture();
    let blob = format!("user={USER}\x01auth=Bearer {TOKEN}\x01\x01");
    let (mut checker, server, mut client) =
        token_refused_then_accepted(log, "XOAUTH2", &blob, ERROR_JSON, "").await;
    let err = bounded(client.login_xoauth2(USER, TOKEN))
        .await
        .unwrap_err();
    assert!(
        format!("{err}").contains("401"),
        "the detail is kept: {err}"
    );
    checker.error(&err);
    checker.client(&client);
    bounded(client.login_xoauth2(USER, TOKEN)).await.unwrap();
    finish(checker, client, server, &["AUTH XOAUTH2", "535", "235"]).await;
}

#[tokio::test]
async fn oauthbearer_success_and_error_challenge_leak_nothing() {
    let (log, _guard) = capture();
    let blob = format!("n,a={USER},\x01auth=Bearer {TOKEN}\x01\x01");
    let json = r#"{"status":"invalid_token"}"#;
    let (mut checker, server, mut client) =
        token_refused_then_accepted(log, "OAUTHBEARER", &blob, json, "AQ==").await;
    let err = bounded(client.login_oauthbearer(USER, TOKEN))
        .await
        .unwrap_err();
    checker.error(&err);
    bounded(client.login_with(AuthMechanism::OAuthBearer, USER, TOKEN))
        .await
        .unwrap();
    finish(checker, client, server, &["AUTH OAUTHBEARER", "535", "235"]).await;
}

/// The client-final message (base64) and its proof (base64) from what the server saw: they
/// change with every nonce, so they are read from the wire, then looked for in the log.
fn scram_wire_secrets(report: &smtp_tests::Report) -> Vec<String> {
    let lines = &report.transcript;
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with("C: AUTH SCRAM-SHA-256") {
            continue;
        }
        // AUTH, then the server-first challenge, then the client-final message.
        let Some(client_final) = lines.get(i + 2).and_then(|l| l.strip_prefix("C: ")) else {
            continue;
        };
        let decoded = String::from_utf8(
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, client_final)
                .unwrap(),
        )
        .unwrap();
        let proof = decoded.rsplit_once(",p=").unwrap().1.to_owned();
        out.push(client_final.to_owned());
        out.push(proof);
        // The server's signature (and challenges) are as sensitive: also never logged.
        if let Some(challenge) = lines.get(i + 1).and_then(|l| l.strip_prefix("S: 334 ")) {
            out.push(challenge.to_owned());
        }
        if let Some(v) = lines.get(i + 3).and_then(|l| l.strip_prefix("S: 334 ")) {
            out.push(v.to_owned());
        }
    }
    assert!(
        !out.is_empty(),
        "no SCRAM exchange seen:\n{}",
        report.explain()
    );
    out
}

#[tokio::test]
async fn scram_success_refusal_and_impostor_leak_nothing() {
    use smtp_tests::scram::{Ending, ScramServer};
    let (log, _guard) = capture();
    let mut checker = Checker::new(log, forbidden_passwords(&[], &[]));
    let mut reports = Vec::new();
    for (password, ending, ok) in [
        (WRONG_PASS, Ending::Normal, false),
        (PASS, Ending::Normal, true),
        (PASS, Ending::WrongSignature, false),
    ] {
        let (responder, _) = ScramServer::new(PASS, ending.clone());
        let rest = match (ok, ending) {
            (true, _) => quit(),
            (false, Ending::Normal) => "C: QUIT\nS: 221 bye\n",
            _ => "X: eof\n",
        };
        let script = format!("{}H: respond\n{rest}", greet(&["AUTH PLAIN SCRAM-SHA-256"]));
        let server = ScriptServer::with_responder(&script, None, false, Box::new(responder)).await;
        let mut client = connect(&server, &mut checker).await;
        match bounded(client.login(USER, password)).await {
            Ok(()) => assert!(ok),
            Err(err) => {
                assert!(!ok, "{err}");
                checker.error(&err);
            }
        }
        checker.client(&client);
        let _ = bounded(client.quit()).await;
        reports.push(server.finish().await);
    }
    for report in &reports {
        checker.forbidden.extend(scram_wire_secrets(report));
    }
    checker.finish(&[
        "AUTH SCRAM-SHA-256 [redacted]",
        "334 [redacted]",
        "535",
        "235",
    ]);
}

/// A connection that dies in the middle of AUTH: the I/O error and the log hold no secret.
#[tokio::test]
async fn connection_lost_during_auth_leaks_nothing() {
    let (log, _guard) = capture();
    let blob = format!("\0{USER}\0{PASS}");
    let script = format!(
        "{}C: AUTH PLAIN {}\nX: close",
        greet(&["AUTH PLAIN"]),
        b64::encode(&blob)
    );
    let forbidden = forbidden(PASS, std::slice::from_ref(&blob));
    let (mut checker, server, mut client) = start(log, forbidden, &script).await;
    let err = bounded(client.login(USER, PASS)).await.unwrap_err();
    assert!(
        matches!(err, SmtpError::Protocol(_) | SmtpError::Io { .. }),
        "{err:?}"
    );
    checker.error(&err);
    checker.client(&client);
    // The sticky error returned by a later call, too.
    let later = bounded(client.noop()).await.unwrap_err();
    checker.error(&later);
    drop(client);
    server.finish().await;
    checker.finish(&["AUTH PLAIN"]);
}

#[test]
fn forbidden_forms_catch_an_embedded_base64_secret() {
    // Self-test of the checker: the secret's base64 inside a longer blob is caught at every
    // alignment, so a leak of the SASL blob cannot slip through.
    let forms = forbidden(PASS, &[]);
    for prefix in ["", "a", "ab", "\0user\0"] {
        let embedded = b64::encode(format!("{prefix}{PASS}\x01tail"));
        assert!(
            forms.iter().any(|f| embedded.contains(f.as_str())),
            "{prefix:?}: {embedded}"
        );
    }
}
