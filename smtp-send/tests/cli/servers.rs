//! The binary against servers: the capture server used as an external server (CA file, refusals,
//! password file, untrusted certificates, no STARTTLS, plaintext AUTH), and hand-written sockets
//! that stall, send terminal escapes, or lack SMTPUTF8. Each failure class with its exit code.

use std::sync::{Arc, Mutex};

use smtp_testkit::mock::{Act, Conversation, MockServer, well_behaved};

use super::*;

#[tokio::test]
async fn external_server_with_ca_file_accepts() {
    let (server, _ca, args) = external(
        CaptureConfig::default(),
        "ok",
        &[
            "--to",
            "bob@example.org",
            "--user",
            "alice",
            "--timeout",
            "10",
        ],
    )
    .await;
    let out = with_password(args).await;
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(
        stdout.trim_end(),
        format!(
            "accepted by {}: 250 2.0.0 Ok: queued as {id} (queue id {id})",
            server.addr(),
            id = m.queue_id
        )
    );
    assert!(m.tls);
    assert_eq!(m.auth, Some(("PLAIN".to_owned(), "alice".to_owned())));
    assert_eq!(m.rcpt_to, ["bob@example.org"]);
    assert!(m.data.ends_with(b"\r\n.\r\nend\r\n"));
}

#[tokio::test]
async fn refused_recipient_gives_the_recipient_code() {
    let (server, _ca, args) = external(
        CaptureConfig::default(),
        "rcpt",
        &["--to", "bob@example.org", "--to", "reject-me@example.org"],
    )
    .await;
    let out = smtp_send_async(args, vec![], Some(MESSAGE.to_vec())).await;
    let line = assert_fails(&out, Exit::Recipients, "reject-me@example.org");
    assert!(line.contains("550 5.1.1"), "{line}");
    assert!(server.messages().is_empty(), "nothing may be delivered");
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn refused_password_gives_the_auth_code() {
    let config = CaptureConfig {
        refuse_password: Some(PASSWORD.into()),
        ..CaptureConfig::default()
    };
    let (server, _ca, args) = external(
        config,
        "auth",
        &["--to", "bob@example.org", "--user", "alice", "-v"],
    )
    .await;
    let out = with_password(args).await;
    assert_fails(&out, Exit::Auth, "535");
    assert!(!text(&out.stderr).contains(PASSWORD));
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn password_file_is_used() {
    let config = CaptureConfig {
        refuse_password: Some("from-env".into()),
        ..CaptureConfig::default()
    };
    let pw = temp_file("pw", b"from-file\n");
    let (server, _ca, args) = external(
        config,
        "pwfile",
        &[
            "--to",
            "b@example.org",
            "--user",
            "u",
            "--password-file",
            pw.to_str().unwrap(),
        ],
    )
    .await;
    // The file wins over the environment (whose value the server would refuse).
    let out = smtp_send_async(
        args,
        vec![("SMTP_PASSWORD".into(), "from-env".into())],
        Some(MESSAGE.to_vec()),
    )
    .await;
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn untrusted_certificate_gives_the_tls_code_and_insecure_warns() {
    let server = CaptureServer::start(CaptureConfig::default())
        .await
        .unwrap();
    let base = to_server(&server.addr().to_string(), "b@example.org", &[]);
    // The Mozilla roots do not know the capture CA.
    let out = smtp_send_async(base.clone(), vec![], Some(MESSAGE.to_vec())).await;
    assert_fails(&out, Exit::Tls, "TLS");
    assert!(server.messages().is_empty());
    // --insecure: accepted, with a warning.
    let mut args = base;
    args.push("--insecure".into());
    let out = smtp_send_async(args, vec![], Some(MESSAGE.to_vec())).await;
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("smtp-send: warning: --insecure"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn server_without_starttls_fails_closed() {
    let config = CaptureConfig {
        tls: smtp_io_tokio::TlsMode::None,
        ..CaptureConfig::default()
    };
    let server = CaptureServer::start(config).await.unwrap();
    let base = to_server(&server.addr().to_string(), "b@example.org", &[]);
    let out = smtp_send_async(base.clone(), vec![], Some(MESSAGE.to_vec())).await;
    assert_fails(&out, Exit::Tls, "STARTTLS");
    assert!(server.messages().is_empty());
    // Explicitly without TLS it goes through.
    let mut args = base;
    args.extend(strings(&["--tls", "none"]));
    let out = smtp_send_async(args, vec![], Some(MESSAGE.to_vec())).await;
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert!(!server.messages()[0].tls);
}

#[tokio::test]
async fn stalled_server_gives_the_timeout_code() {
    // Accept and say nothing: the greeting never comes. Hold the socket until the client leaves.
    let server = MockServer::start(|_| Quiet(Act::Silent)).await;
    assert_times_out(&server, &["--timeout", "1"], 6, "timed out", 10).await;
}

/// A server that offers STARTTLS, accepts it and never answers the ClientHello: the timeout
/// code, as for an implicit-TLS handshake that stalls (it was the I/O code, 4).
#[tokio::test]
async fn stalled_starttls_handshake_gives_the_timeout_code() {
    struct AcceptsStartTls;
    impl Conversation for AcceptsStartTls {
        fn command(&mut self, line: &str) -> Act {
            match line.to_ascii_uppercase().as_str() {
                "STARTTLS" => Act::send("220 2.0.0 go ahead\r\n"),
                _ if line.len() >= 4 && line[..4].eq_ignore_ascii_case("EHLO") => {
                    well_behaved("mock.test", &["STARTTLS"], line)
                }
                _ => Act::Silent,
            }
        }
    }
    let server = MockServer::start(|_| AcceptsStartTls).await;
    let more = ["--tls", "starttls", "--timeout", "1"];
    assert_times_out(&server, &more, 6, "TLS handshake", 10).await;
}

/// A run to `server` with `more` arguments ends with the timeout code within `within`
/// seconds, its one error line says `says`, and the server sees the connection end within
/// `ended` seconds.
async fn assert_times_out(server: &MockServer, more: &[&str], within: u64, says: &str, ended: u64) {
    let start = Instant::now();
    let out = smtp_send_async(
        to_server(&server.addr().to_string(), "b@example.org", more),
        vec![],
        Some(MESSAGE.to_vec()),
    )
    .await;
    let elapsed = start.elapsed();
    assert_fails(&out, Exit::Timeout, says);
    assert!(elapsed < Duration::from_secs(within), "took {elapsed:?}");
    assert!(server.until_ended(1, Duration::from_secs(ended)).await);
}

/// Run the binary with `args`, [`PASSWORD`] in `SMTP_PASSWORD` and [`MESSAGE`] on standard input.
async fn with_password(args: Vec<String>) -> Output {
    let env = vec![("SMTP_PASSWORD".into(), PASSWORD.into())];
    smtp_send_async(args, env, Some(MESSAGE.to_vec())).await
}

/// Arguments to send from `a@example.com` to `to` through the server at `addr`, and `more`.
fn to_server(addr: &str, to: &str, more: &[&str]) -> Vec<String> {
    let mut args = strings(&["--server", addr, "--from", "a@example.com", "--to", to]);
    args.extend(strings(more));
    args
}

/// A server that greets with `Quiet`'s act (a silence, a trickle) and never says more.
struct Quiet(Act);

impl Conversation for Quiet {
    fn greeting(&mut self) -> Act {
        std::mem::replace(&mut self.0, Act::Silent)
    }

    fn command(&mut self, _line: &str) -> Act {
        Act::Silent
    }
}

/// A plain-text server whose every reply that smtp-send may print carries terminal escapes: ESC
/// (a CSI and an OSC title change), BEL, DEL, a C1 CSI (U+009B) and a bare CR. `rcpt` answers
/// RCPT TO, `quit` answers QUIT.
struct Hostile {
    rcpt: &'static str,
    quit: &'static str,
}

impl Conversation for Hostile {
    fn greeting(&mut self) -> Act {
        Act::send("220 mx\x1b]0;pwned\x07 ESMTP\x1b[2J\r\n")
    }

    fn command(&mut self, line: &str) -> Act {
        match line.get(..4).unwrap_or(line).to_ascii_uppercase().as_str() {
            "EHLO" => Act::send("250-mx\x1b[1A\x07\r\n250 8BITMIME\r\n"),
            "MAIL" | "RSET" => Act::send("250 2.1.0 ok\x07\r\n"),
            "RCPT" => Act::send(self.rcpt),
            "DATA" => Act::body("354 go\x1b[K\r\n"),
            "QUIT" => Act::close(self.quit),
            _ => Act::send("502 5.5.2 what\x1b[0m\r\n"),
        }
    }

    fn end_of_data(&mut self, _body: Vec<u8>) -> Act {
        Act::send("250 2.0.0 Ok: queued as Q1\x1b[2J\x07\x7f\u{9b}31m\rFAKE\r\n")
    }
}

/// Server text reaches the terminal with its control characters spelled out (`\x1b`, `\x07`, ...),
/// never raw: on the success line, in the error line and in the `-v` transcript (greeting, EHLO,
/// the 250 after the dot, the reply to QUIT).
#[tokio::test]
async fn server_terminal_escapes_are_spelled_out() {
    const ACCEPT: &str = "250 2.1.5 ok\r\n";
    const REFUSE: &str = "550 5.1.1 no\x1b[31m such\x07 user\x1b]0;x\x07\r\n";
    const BYE: &str = "221 2.0.0 bye\x1b[0m\x07\r\n";
    const QUIT_554: &str = "554 5.0.0 no\x1b]2;pwned\x07 quit\r\n";
    for (rcpt, quit, verbose, exit) in [
        (ACCEPT, BYE, false, Exit::Accepted),
        (ACCEPT, BYE, true, Exit::Accepted),
        (REFUSE, BYE, false, Exit::Recipients),
        (REFUSE, BYE, true, Exit::Recipients),
        (ACCEPT, QUIT_554, true, Exit::Accepted),
    ] {
        let server = MockServer::start(move |_| Hostile { rcpt, quit }).await;
        let addr = server.addr().to_string();
        let mut args = to_server(&addr, "b@example.org", &["--tls", "none", "--timeout", "5"]);
        if verbose {
            args.push("-v".into());
        }
        let out = smtp_send_async(args, vec![], Some(MESSAGE.to_vec())).await;
        assert!(server.until_ended(1, Duration::from_secs(10)).await);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        let context = format!("{rcpt:?} {quit:?} -v {verbose}\nstdout: {stdout}\nstderr: {stderr}");
        assert_eq!(code(&out), i32::from(exit.code()), "{context}");
        for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            for raw in [0x1b, 0x07, 0x7f, b'\r'] {
                assert!(
                    !bytes.contains(&raw),
                    "raw 0x{raw:02x} on {name}: {context}"
                );
            }
        }
        for shown in [&stdout, &stderr] {
            assert!(
                !shown
                    .chars()
                    .any(|c| c.is_control() && c != '\n' && c != '\t'),
                "{context}"
            );
        }
        if exit == Exit::Accepted {
            assert!(
                stdout.contains("queued as Q1\\x1b[2J\\x07\\x7f\\u{9b}31m\\rFAKE"),
                "{context}"
            );
        } else {
            let line = assert_one_error_line(&out);
            assert!(line.contains("no\\x1b[31m such\\x07 user"), "{context}");
        }
        if verbose {
            for want in [
                "S: 220 mx\\x1b]0;pwned\\x07 ESMTP\\x1b[2J\n",
                "S: 250-mx\\x1b[1A\\x07\n",
            ] {
                assert!(stderr.contains(want), "missing {want:?}: {context}");
            }
            // Any reply to QUIT ends the session (no warning): it is shown in the transcript.
            let want = if quit == BYE {
                "S: 221 2.0.0 bye\\x1b[0m\\x07\n"
            } else {
                "S: 554 5.0.0 no\\x1b]2;pwned\\x07 quit\n"
            };
            assert!(stderr.contains(want), "missing {want:?}: {context}");
        }
    }
}

/// `--tls none --user U` against a plain server that offers AUTH: no AUTH is sent, the exit code
/// is the auth code and the message names `--allow-plaintext-auth`; with that flag it goes.
#[tokio::test]
async fn plaintext_auth_needs_the_explicit_flag() {
    let config = CaptureConfig {
        tls: smtp_io_tokio::TlsMode::None,
        ..CaptureConfig::default()
    };
    let (server, _ca, args) = external(
        config,
        "plain-auth",
        &["--tls", "none", "--user", "me", "--to", "bob@example.org"],
    )
    .await;
    let out = with_password(args.clone()).await;
    assert_fails(&out, Exit::Auth, "--allow-plaintext-auth");
    assert!(!text(&out.stderr).contains(PASSWORD));
    assert!(server.messages().is_empty(), "nothing was sent");

    let mut allowed = args;
    allowed.push("--allow-plaintext-auth".to_owned());
    let out = with_password(allowed).await;
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0]
            .auth
            .as_ref()
            .map(|a| (a.0.as_str(), a.1.as_str())),
        Some(("PLAIN", "me"))
    );
}

/// `--deadline 3` against a server that greets, then reads one byte a second and never answers
/// (with a per-reply timeout far longer): exit 8 within 4 seconds.
#[tokio::test]
async fn deadline_ends_a_run_held_by_a_slow_server() {
    // It greets, then reads one byte a second and never answers.
    let greet_then_trickle = || {
        Quiet(Act::Seq(vec![
            Act::send("220 slow.test ESMTP\r\n"),
            Act::Trickle(Duration::from_secs(1)),
        ]))
    };
    let server = MockServer::start(move |_| greet_then_trickle()).await;
    let more = ["--tls", "none", "--timeout", "100", "--deadline", "3"];
    assert_times_out(&server, &more, 4, "deadline", 15).await;
}

/// The SIZE declared for a file with bare LF line endings is its size as sent (each LF becomes
/// CRLF), so the server never receives more than was declared.
#[tokio::test]
async fn size_declared_for_a_file_is_its_size_as_sent() {
    let body = b"Subject: lf\n\nline one\nline two\n";
    let file = temp_file("lf.eml", body);
    let (server, _ca, args) = external(
        CaptureConfig::default(),
        "size",
        &["--to", "bob@example.org", "--file", file.to_str().unwrap()],
    )
    .await;
    let out = smtp_send_async(args, vec![], None).await;
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let messages = server.messages();
    let expected = body.len() + body.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(messages[0].data.len(), expected);
    assert!(
        messages[0]
            .mail_params
            .contains(&format!("SIZE={expected}")),
        "{:?}",
        messages[0].mail_params
    );
}

/// A UTF-8 recipient on a server without SMTPUTF8 is a local check against its capabilities:
/// refused right after EHLO, before any credential is sent (exit 7, not a usage error).
#[tokio::test]
async fn utf8_recipient_without_smtputf8_is_refused_before_auth() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let commands = seen.clone();
    let server = MockServer::start(move |_| NoSmtputf8(commands.clone())).await;
    let addr = server.addr();
    let out = with_password(to_server(
        &addr.to_string(),
        "用户@example.org",
        &["--tls", "none", "--allow-plaintext-auth", "--user", "me"],
    ))
    .await;
    assert_fails(&out, Exit::Refused, "SMTPUTF8");
    assert!(server.until_ended(1, Duration::from_secs(10)).await);
    let seen = seen.lock().unwrap();
    assert!(
        !seen.iter().any(|c| c.starts_with("AUTH")),
        "no AUTH: {seen:?}"
    );
}

/// A plain-text server without SMTPUTF8 (it offers AUTH PLAIN) that keeps every command it gets.
struct NoSmtputf8(Arc<Mutex<Vec<String>>>);

impl Conversation for NoSmtputf8 {
    fn greeting(&mut self) -> Act {
        Act::send("220 plain.test ESMTP\r\n")
    }

    fn command(&mut self, line: &str) -> Act {
        self.0.lock().unwrap().push(line.to_owned());
        if line.starts_with("EHLO") {
            Act::send("250-plain.test\r\n250 AUTH PLAIN\r\n")
        } else if line == "QUIT" {
            Act::close("221 bye\r\n")
        } else {
            Act::send("502 unexpected\r\n")
        }
    }
}

/// What a [`NoReplyAfterDot`] server does once it has the whole message.
#[derive(Clone, Copy, Debug)]
enum AfterDot {
    /// Close the connection without a reply (it may have queued the message).
    HangUp,
    /// Keep the connection open and say nothing.
    Silent,
}

/// A plain-text server that takes one message and never answers its final dot. It keeps the
/// message as received (up to the dot), so a test can check that all of it went out.
struct NoReplyAfterDot {
    after: AfterDot,
    received: Arc<Mutex<Vec<u8>>>,
}

impl Conversation for NoReplyAfterDot {
    fn command(&mut self, line: &str) -> Act {
        well_behaved("mx.test", &["8BITMIME"], line)
    }

    fn body_line(&mut self, line: &[u8]) -> Option<Act> {
        self.received.lock().unwrap().extend_from_slice(line);
        None
    }

    fn end_of_data(&mut self, _body: Vec<u8>) -> Act {
        match self.after {
            AfterDot::HangUp => Act::close(""),
            // Hold the connection until the client leaves.
            AfterDot::Silent => Act::Silent,
        }
    }
}

/// Goes silent after the final dot, and says when it came.
struct SilentAfterDot(Arc<std::sync::atomic::AtomicBool>);

impl Conversation for SilentAfterDot {
    fn command(&mut self, line: &str) -> Act {
        well_behaved("mx.test", &["8BITMIME"], line)
    }

    fn end_of_data(&mut self, _body: Vec<u8>) -> Act {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        Act::Silent
    }
}

/// Accepts the message, then goes silent on QUIT, and says when QUIT came.
struct SilentOnQuit(Arc<std::sync::atomic::AtomicBool>);

impl Conversation for SilentOnQuit {
    fn command(&mut self, line: &str) -> Act {
        if line.eq_ignore_ascii_case("QUIT") {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            return Act::Silent;
        }
        well_behaved("mx.test", &["8BITMIME"], line)
    }
}

/// Ctrl-C while the reply to the final dot is awaited: the message may have been delivered, so
/// the exit is 10 ("delivery unknown"), never 130, which a wrapper may take for "not sent" and
/// retry (found in review). Ctrl-C before anything of the message went out stays 130. Ctrl-C
/// while QUIT's reply is awaited, the message accepted: 0, the message stays accepted (it was
/// 130, found in review).
#[tokio::test]
async fn ctrl_c_after_the_final_dot_is_delivery_unknown() {
    let dot = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = Arc::clone(&dot);
    let after_dot = MockServer::start(move |_| SilentAfterDot(Arc::clone(&seen))).await;
    let silent = MockServer::start(|_| Quiet(Act::Silent)).await;
    let quit = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = Arc::clone(&quit);
    let on_quit = MockServer::start(move |_| SilentOnQuit(Arc::clone(&seen))).await;
    for (server, exit) in [
        (&after_dot, Exit::DeliveryUnknown),
        (&silent, Exit::Interrupted),
        (&on_quit, Exit::Accepted),
    ] {
        let args = to_server(
            &server.addr().to_string(),
            "b@example.org",
            &["--tls", "none"],
        );
        let mut child = spawn_smtp_send(&args, &[], true);
        let mut stdin = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut stdin, MESSAGE).unwrap();
        drop(stdin);
        // The final dot arrived (or, for the silent server, the connection).
        smtp_testkit::wait::until(|| match exit {
            Exit::DeliveryUnknown => dot.load(std::sync::atomic::Ordering::SeqCst),
            Exit::Accepted => quit.load(std::sync::atomic::Ordering::SeqCst),
            _ => server.accepted() == 1,
        })
        .await;
        // A moment for the client to wait for the reply, then Ctrl-C.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let pid = child.id().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status();
        assert!(killed.unwrap().success());
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        assert_exit(&out, exit);
        if exit == Exit::DeliveryUnknown {
            assert!(assert_one_error_line(&out).contains("delivery unknown"));
        }
    }
}

/// A message whose final dot went out and whose reply never came may have been delivered: a
/// server that hangs up right after the dot (having queued the message, say) and one that goes
/// silent both give exit 10, "delivery unknown", with a message that says not to send it again
/// blindly; never 3 ("connection lost") or 8 ("timeout"), which a wrapper may retry.
#[tokio::test]
async fn no_reply_after_the_final_dot_is_delivery_unknown() {
    for after in [AfterDot::HangUp, AfterDot::Silent] {
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = received.clone();
        let server = MockServer::start(move |_| NoReplyAfterDot {
            after,
            received: kept.clone(),
        })
        .await;
        let addr = server.addr().to_string();
        let started = Instant::now();
        let out = smtp_send_async(
            to_server(&addr, "b@example.org", &["--tls", "none", "--timeout", "1"]),
            vec![],
            Some(MESSAGE.to_vec()),
        )
        .await;
        assert!(server.until_ended(1, Duration::from_secs(10)).await);
        let received = received.lock().unwrap().clone();
        let context = format!("{after:?}: stderr: {}", text(&out.stderr));
        assert_eq!(
            code(&out),
            i32::from(Exit::DeliveryUnknown.code()),
            "{context}"
        );
        assert_eq!(Exit::DeliveryUnknown.code(), 10);
        assert!(started.elapsed() < Duration::from_secs(8), "{context}");
        let line = assert_one_error_line(&out);
        for want in [
            "delivery unknown",
            "may have accepted it",
            "do not send it again",
        ] {
            assert!(line.contains(want), "missing {want:?}: {context}");
        }
        assert!(text(&out.stdout).is_empty(), "{context}");
        // The whole message reached the server before it stopped answering.
        assert!(
            text(&received).contains("Hello Bob,\r\n"),
            "{after:?}: {}",
            text(&received)
        );
    }
}

/// A user name or password no AUTH could carry (empty, a CR) is a usage error (exit 2) before
/// any connection is opened, naming the field and never the secret.
#[tokio::test]
async fn credentials_no_auth_could_carry_are_refused_before_connecting() {
    let server = MockServer::start(|_| Quiet(Act::Silent)).await;
    let addr = server.addr().to_string();
    let more = |user: &'static str| {
        to_server(
            &addr,
            "bob@example.org",
            &["--tls", "none", "--allow-plaintext-auth", "--user", user],
        )
    };
    for (args, password, field) in [
        (more(""), "not-the-secret", "user name"),
        (more("me"), "not-the\rsecret", "secret"),
    ] {
        let env = vec![("SMTP_PASSWORD".into(), password.into())];
        let out = smtp_send_async(args, env, Some(MESSAGE.to_vec())).await;
        assert_fails(&out, Exit::Usage, field);
        assert!(
            !text(&out.stderr).contains("not-the"),
            "{}",
            text(&out.stderr)
        );
    }
    assert_eq!(server.accepted(), 0, "a connection was opened");
}

/// Answers every command as an ordinary server would, and takes every message.
struct Ordinary;

impl Conversation for Ordinary {
    fn command(&mut self, line: &str) -> Act {
        well_behaved("mx.test", &["8BITMIME"], line)
    }
}

/// A server that requires a client certificate, reached without one. Over TLS 1.3 the client
/// finishes its side of the handshake first, so the server's refusal (an alert) arrives while
/// the client waits for the greeting: still a TLS failure (exit 4), not a lost connection
/// (exit 3). With the certificate, the message is accepted.
#[tokio::test]
async fn a_refused_missing_client_certificate_gives_the_tls_code() {
    let ca = smtp_testkit::certs::TestCa::new("smtp-send mTLS CA").unwrap();
    let leaf = ca.issue(&["127.0.0.1"]).unwrap();
    let tls = ca.server_config_requiring_clients(&leaf).unwrap();
    let server = MockServer::implicit_tls(tls, |_| Ordinary).await;
    let ca_file = temp_file("mtls-ca.pem", ca.pem().as_bytes());
    let addr = format!("127.0.0.1:{}", server.port());
    let base = ["--tls", "implicit", "--ca-file", ca_file.to_str().unwrap()];
    let out = smtp_send_async(
        to_server(&addr, "b@example.org", &base),
        vec![],
        Some(MESSAGE.to_vec()),
    )
    .await;
    let line = assert_fails(&out, Exit::Tls, "TLS failure");
    assert!(line.contains("greeting"), "{line}");

    let client = ca.issue_client("smtp-send client").unwrap();
    let cert = temp_file("mtls-client.pem", client.cert_pem.as_bytes());
    let key = temp_file("mtls-client.key", client.key_pem.as_bytes());
    let mut more = base.to_vec();
    more.extend(["--client-cert", cert.to_str().unwrap()]);
    more.extend(["--client-key", key.to_str().unwrap()]);
    let out = smtp_send_async(
        to_server(&addr, "b@example.org", &more),
        vec![],
        Some(MESSAGE.to_vec()),
    )
    .await;
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
}

/// An LMTP server: each recipient gets its own reply to the end of the message; here the
/// first is delivered and the second refused.
struct LmtpPartly;

impl Conversation for LmtpPartly {
    fn greeting(&mut self) -> Act {
        Act::send("220 lmtp.test LMTP\r\n")
    }

    fn command(&mut self, line: &str) -> Act {
        well_behaved("lmtp.test", &["8BITMIME"], line)
    }

    fn end_of_data(&mut self, _body: Vec<u8>) -> Act {
        Act::send("250 2.0.0 <b@example.org> delivered\r\n550 5.1.1 <c@example.org> no mailbox\r\n")
    }
}

/// Delivered to one recipient, refused for the other (LMTP): exit 11, "partly delivered",
/// naming the refused one and saying not to send it again to those that have it. It was exit 6,
/// "recipient(s) refused, nothing sent", and a wrapper resending it would deliver a second copy
/// (found in review).
#[tokio::test]
async fn an_lmtp_delivery_to_some_recipients_only_is_partly_delivered() {
    let server = MockServer::start(|_| LmtpPartly).await;
    let url = format!("lmtp://127.0.0.1:{}?tls=none", server.port());
    let args = strings(&[
        "--url",
        &url,
        "--from",
        "a@example.com",
        "--to",
        "b@example.org",
        "--to",
        "c@example.org",
    ]);
    let out = smtp_send_async(args, vec![], Some(MESSAGE.to_vec())).await;
    let line = assert_fails(&out, Exit::PartlyDelivered, "partly delivered");
    assert!(line.contains("<c@example.org>"), "{line}");
    assert!(!line.contains("not sent"), "{line}");
}

/// A named pipe in the test's scratch folder that nothing ever writes: reading it blocks.
fn silent_fifo(name: &str) -> std::path::PathBuf {
    let fifo = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{}-{}-{name}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.unwrap().success());
    fifo
}

/// `--deadline` covers the whole run, also a read that no timer interrupts: a password file
/// (or a DKIM key) on a pipe that never delivers ends with exit 8 soon after the deadline. The
/// run used to wait for ever (found in review).
#[test]
fn the_deadline_covers_reading_a_password_file_or_a_dkim_key() {
    let fifo = silent_fifo("never.pipe");
    let path = fifo.to_str().unwrap();
    for more in [
        &["--user", "me", "--password-file", path][..],
        &[
            "--dkim-key",
            path,
            "--dkim-selector",
            "s",
            "--dkim-domain",
            "example.com",
        ],
    ] {
        let mut args = to_server(
            "127.0.0.1:1",
            "b@example.org",
            &["--tls", "none", "--allow-plaintext-auth", "--deadline", "1"],
        );
        args.extend(strings(more));
        let mut child = spawn_smtp_send(&args, &[], false);
        // Far past the deadline and its grace: a run still going is stuck.
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let status =
            status.unwrap_or_else(|| panic!("still running 30 s after --deadline 1: {more:?}"));
        assert_eq!(
            status.code(),
            Some(i32::from(Exit::Timeout.code())),
            "{more:?}"
        );
    }
    let _ = std::fs::remove_file(fifo);
}
