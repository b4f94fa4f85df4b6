//! End-to-end tests of the `smtp-send` binary: capture mode, the transcript and its redaction,
//! and each failure class with its exit code, against the capture server used as an external
//! server and against sockets that refuse or stall.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use smtp_send::base64;
use smtp_send::capture::{CaptureConfig, CaptureServer};
use smtp_send::exit::Exit;

const PASSWORD: &str = "S3cr3t-pa55word!";

/// Run the binary with `args`, `env` set (and SMTP_PASSWORD removed unless given), and `stdin`
/// piped in (`None`: no standard input).
fn smtp_send(args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smtp-send"));
    cmd.args(args)
        .env_remove("SMTP_PASSWORD")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run smtp-send");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // The program may exit (e.g. on a failure) before reading its input: a broken pipe here
        // is expected then.
        let _ = pipe.write_all(input);
    }
    child.wait_with_output().unwrap()
}

/// [`smtp_send`] from inside a tokio test, so an in-process capture server keeps running.
async fn smtp_send_async(
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        smtp_send(&args, &env, stdin.as_deref())
    })
    .await
    .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

/// The failure report is exactly one `smtp-send: error:` line (warnings may precede it).
fn assert_one_error_line(out: &Output) -> String {
    let stderr = text(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("smtp-send: error: "))
        .collect();
    assert_eq!(errors.len(), 1, "stderr: {stderr}");
    errors[0].to_owned()
}

fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("smtp-send-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

const MESSAGE: &[u8] = b"From: <alice@example.com>\nTo: <bob@example.org>\nSubject: test\n\n\
Hello Bob,\n.hidden line starting with a dot\n..two dots\n.\nend\n";

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn capture_mode_sends_and_shows_what_was_received() {
    let out = smtp_send(
        &[
            "--from",
            "alice@example.com",
            "--to",
            "bob@example.org",
            "--to",
            "carol@example.net",
        ],
        &[],
        Some(MESSAGE),
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        code(&out),
        0,
        "stdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    let first = stdout.lines().next().unwrap();
    assert!(
        first.starts_with("accepted by capture server 127.0.0.1:")
            && first.contains(": 250 2.0.0 Ok: queued as CAP")
            && first.contains("(queue id CAP"),
        "{first}"
    );
    for want in [
        "TLS: yes (STARTTLS)\n",
        "AUTH: none\n",
        "EHLO: localhost\n",
        "MAIL FROM:<alice@example.com>",
        "RCPT TO:<bob@example.org>\nRCPT TO:<carol@example.net>\n",
        // CRLF-normalised, dot-unstuffed, the lone dot inside the body preserved.
        "Subject: test\r\n\r\nHello Bob,\r\n.hidden line starting with a dot\r\n..two dots\r\n.\r\nend\r\n",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("...two dots"), "{stdout}");
}

#[test]
fn capture_mode_with_no_input_uses_the_sample_or_stdin() {
    // Standard input is not a terminal here (null): an empty message is sent, and still accepted.
    let out = smtp_send(&[], &[], None);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("MAIL FROM:<sender@example.com>"),
        "{stdout}"
    );
    assert!(
        stdout.contains("RCPT TO:<recipient@example.org>"),
        "{stdout}"
    );
}

#[test]
fn capture_mode_with_implicit_tls_and_a_file() {
    let file = temp_file("implicit.eml", MESSAGE);
    let out = smtp_send(
        &["--tls", "implicit", "--file", file.to_str().unwrap()],
        &[],
        None,
    );
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("TLS: yes (implicit TLS)\n"), "{stdout}");
    assert!(
        stdout.contains(".hidden line starting with a dot\r\n"),
        "{stdout}"
    );
    let _ = std::fs::remove_file(file);
}

#[test]
fn verbose_transcript_is_redacted() {
    for (mechanism, auth_line) in [
        ("auto", "C: AUTH PLAIN [redacted]"),
        ("login", "C: AUTH LOGIN"),
    ] {
        let out = smtp_send(
            &["-v", "--user", "alice", "--auth", mechanism],
            &[("SMTP_PASSWORD", PASSWORD)],
            Some(MESSAGE),
        );
        let stderr = text(&out.stderr);
        let stdout = text(&out.stdout);
        assert_eq!(code(&out), 0, "stderr: {stderr}");
        for want in [
            "C: EHLO localhost",
            "C: STARTTLS",
            "S: 220 2.0.0",
            auth_line,
            "S: 235 2.7.0",
            "C: MAIL FROM:<sender@example.com>",
            "C: QUIT",
        ] {
            assert!(
                stderr.contains(want),
                "{mechanism}: missing {want:?} in:\n{stderr}"
            );
        }
        assert!(
            stdout.contains(&format!(
                "AUTH: {} as \"alice\"",
                if mechanism == "login" {
                    "LOGIN"
                } else {
                    "PLAIN"
                }
            )),
            "{stdout}"
        );
        let forbidden = [
            PASSWORD.to_owned(),
            base64::encode(PASSWORD.as_bytes()),
            base64::encode(format!("\0alice\0{PASSWORD}").as_bytes()),
            base64::encode(b"alice"),
        ];
        for secret in &forbidden {
            assert!(
                !stderr.contains(secret.as_str()),
                "{secret} leaked on stderr:\n{stderr}"
            );
            assert!(
                !stdout.contains(secret.as_str()),
                "{secret} leaked on stdout:\n{stdout}"
            );
        }
    }
}

#[test]
fn missing_to_is_a_usage_error() {
    let out = smtp_send(
        &["--server", "127.0.0.1:1", "--from", "a@example.com"],
        &[],
        None,
    );
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("--to"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

#[test]
fn user_without_secret_is_a_usage_error() {
    let out = smtp_send(
        &[
            "--server",
            "127.0.0.1:1",
            "--from",
            "a@b.example",
            "--to",
            "c@d.example",
            "--user",
            "me",
        ],
        &[],
        None,
    );
    assert_eq!(code(&out), i32::from(Exit::Usage.code()));
    assert!(assert_one_error_line(&out).contains("SMTP_PASSWORD"));
}

#[test]
fn unreachable_server_is_a_connect_error() {
    let out = smtp_send(
        &[
            "--server",
            "127.0.0.1:1",
            "--from",
            "a@example.com",
            "--to",
            "b@example.org",
        ],
        &[],
        Some(MESSAGE),
    );
    assert_eq!(
        code(&out),
        i32::from(Exit::Connect.code()),
        "{}",
        text(&out.stderr)
    );
    let line = assert_one_error_line(&out);
    assert!(line.contains("cannot connect to 127.0.0.1:1"), "{line}");
}

#[test]
fn unreadable_message_file_is_a_local_io_error() {
    let out = smtp_send(&["--file", "/nonexistent/message.eml"], &[], None);
    assert_eq!(code(&out), i32::from(Exit::LocalIo.code()));
    assert!(assert_one_error_line(&out).contains("/nonexistent/message.eml"));
}

#[test]
fn invalid_address_is_a_usage_error_before_connecting() {
    // Port 1 would give the connect code: the usage code proves nothing was dialled.
    let out = smtp_send(
        &[
            "--server",
            "127.0.0.1:1",
            "--from",
            "a@example.com",
            "--to",
            "not an address",
        ],
        &[],
        None,
    );
    assert_eq!(code(&out), i32::from(Exit::Usage.code()));
    assert!(assert_one_error_line(&out).contains("recipient address"));
}

#[test]
fn help_lists_the_exit_codes() {
    let out = smtp_send(&["--help"], &[], None);
    assert_eq!(code(&out), 0);
    let help = text(&out.stdout);
    for (exit, _) in Exit::ALL {
        assert!(
            help.contains(&format!("  {:>3}  ", exit.code())),
            "code {} missing:\n{help}",
            exit.code()
        );
    }
    for flag in [
        "--server",
        "--tls",
        "--auth",
        "--user",
        "--password-file",
        "--from",
        "--to",
        "--ca-file",
        "--insecure",
        "--timeout",
        "--verbose",
        "--ehlo",
        "--file",
    ] {
        assert!(help.contains(flag), "{flag} missing");
    }
}

/// An external capture server and the CA file to trust it.
async fn external(config: CaptureConfig, name: &str) -> (CaptureServer, PathBuf) {
    let server = CaptureServer::start(config).await.unwrap();
    let ca = temp_file(&format!("{name}-ca.pem"), server.ca_pem().as_bytes());
    (server, ca)
}

fn server_args(server: &CaptureServer, ca: &Path, more: &[&str]) -> Vec<String> {
    let mut args = strings(&[
        "--server",
        &server.addr().to_string(),
        "--ca-file",
        ca.to_str().unwrap(),
        "--from",
        "alice@example.com",
    ]);
    args.extend(strings(more));
    args
}

#[tokio::test]
async fn external_server_with_ca_file_accepts() {
    let (server, ca) = external(CaptureConfig::default(), "ok").await;
    let args = server_args(
        &server,
        &ca,
        &[
            "--to",
            "bob@example.org",
            "--user",
            "alice",
            "--timeout",
            "10",
        ],
    );
    let out = smtp_send_async(
        args,
        vec![("SMTP_PASSWORD".into(), PASSWORD.into())],
        Some(MESSAGE.to_vec()),
    )
    .await;
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
    let _ = std::fs::remove_file(ca);
}

#[tokio::test]
async fn refused_recipient_gives_the_recipient_code() {
    let (server, ca) = external(CaptureConfig::default(), "rcpt").await;
    let args = server_args(
        &server,
        &ca,
        &["--to", "bob@example.org", "--to", "reject-me@example.org"],
    );
    let out = smtp_send_async(args, vec![], Some(MESSAGE.to_vec())).await;
    assert_eq!(
        code(&out),
        i32::from(Exit::Recipients.code()),
        "stderr: {}",
        text(&out.stderr)
    );
    let line = assert_one_error_line(&out);
    assert!(
        line.contains("reject-me@example.org") && line.contains("550 5.1.1"),
        "{line}"
    );
    assert!(server.messages().is_empty(), "nothing may be delivered");
    assert!(out.stdout.is_empty());
    let _ = std::fs::remove_file(ca);
}

#[tokio::test]
async fn refused_password_gives_the_auth_code() {
    let config = CaptureConfig {
        refuse_password: Some(PASSWORD.to_owned()),
        ..CaptureConfig::default()
    };
    let (server, ca) = external(config, "auth").await;
    let args = server_args(
        &server,
        &ca,
        &["--to", "bob@example.org", "--user", "alice", "-v"],
    );
    let out = smtp_send_async(
        args,
        vec![("SMTP_PASSWORD".into(), PASSWORD.into())],
        Some(MESSAGE.to_vec()),
    )
    .await;
    assert_eq!(
        code(&out),
        i32::from(Exit::Auth.code()),
        "stderr: {}",
        text(&out.stderr)
    );
    let line = assert_one_error_line(&out);
    assert!(line.contains("535"), "{line}");
    assert!(!text(&out.stderr).contains(PASSWORD));
    assert!(server.messages().is_empty());
    let _ = std::fs::remove_file(ca);
}

#[tokio::test]
async fn password_file_is_used() {
    let config = CaptureConfig {
        refuse_password: Some("from-env".to_owned()),
        ..CaptureConfig::default()
    };
    let (server, ca) = external(config, "pwfile").await;
    let pw = temp_file("pw", b"from-file\n");
    let args = server_args(
        &server,
        &ca,
        &[
            "--to",
            "b@example.org",
            "--user",
            "u",
            "--password-file",
            pw.to_str().unwrap(),
        ],
    );
    // The file wins over the environment (whose value the server would refuse).
    let out = smtp_send_async(
        args,
        vec![("SMTP_PASSWORD".into(), "from-env".into())],
        Some(MESSAGE.to_vec()),
    )
    .await;
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert_eq!(server.messages().len(), 1);
    let _ = std::fs::remove_file(pw);
    let _ = std::fs::remove_file(ca);
}

#[tokio::test]
async fn untrusted_certificate_gives_the_tls_code_and_insecure_warns() {
    let server = CaptureServer::start(CaptureConfig::default())
        .await
        .unwrap();
    let base = strings(&[
        "--server",
        &server.addr().to_string(),
        "--from",
        "a@example.com",
        "--to",
        "b@example.org",
    ]);
    // The Mozilla roots do not know the capture CA.
    let out = smtp_send_async(base.clone(), vec![], Some(MESSAGE.to_vec())).await;
    assert_eq!(
        code(&out),
        i32::from(Exit::Tls.code()),
        "stderr: {}",
        text(&out.stderr)
    );
    let line = assert_one_error_line(&out);
    assert!(line.contains("TLS"), "{line}");
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
    let base = strings(&[
        "--server",
        &server.addr().to_string(),
        "--from",
        "a@example.com",
        "--to",
        "b@example.org",
    ]);
    let out = smtp_send_async(base.clone(), vec![], Some(MESSAGE.to_vec())).await;
    assert_eq!(
        code(&out),
        i32::from(Exit::Tls.code()),
        "stderr: {}",
        text(&out.stderr)
    );
    assert!(assert_one_error_line(&out).contains("STARTTLS"));
    assert!(server.messages().is_empty());
    // Explicitly without TLS it goes through.
    let mut args = base;
    args.extend(strings(&["--tls", "none"]));
    let out = smtp_send_async(args, vec![], Some(MESSAGE.to_vec())).await;
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert!(!server.messages()[0].tls);
}

#[test]
fn stalled_server_gives_the_timeout_code() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Accept and say nothing: the greeting never comes. Hold the socket until the client leaves
    // (or 10 s pass).
    let holder = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 64];
        let _ = std::io::Read::read(&mut socket, &mut buf);
    });
    let start = Instant::now();
    let out = smtp_send(
        &[
            "--server",
            &addr.to_string(),
            "--timeout",
            "1",
            "--from",
            "a@example.com",
            "--to",
            "b@example.org",
        ],
        &[],
        Some(MESSAGE),
    );
    let elapsed = start.elapsed();
    assert_eq!(
        code(&out),
        i32::from(Exit::Timeout.code()),
        "stderr: {}",
        text(&out.stderr)
    );
    assert!(elapsed < Duration::from_secs(6), "took {elapsed:?}");
    let line = assert_one_error_line(&out);
    assert!(line.contains("timed out"), "{line}");
    holder.join().unwrap();
}

/// A plain-text server whose every reply that smtp-send may print carries terminal escapes: ESC
/// (a CSI and an OSC title change), BEL, DEL, a C1 CSI (U+009B) and a bare CR. It serves one
/// session: `rcpt` answers RCPT TO, `quit` answers QUIT.
fn hostile_server(rcpt: &'static str, quit: &'static str) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{BufRead, BufReader};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reader = BufReader::new(socket.try_clone().unwrap());
        let mut w = socket;
        let send = |w: &mut std::net::TcpStream, reply: &str| {
            let _ = w.write_all(reply.as_bytes());
        };
        send(&mut w, "220 mx\x1b]0;pwned\x07 ESMTP\x1b[2J\r\n");
        let mut in_data = false;
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                break;
            }
            if in_data {
                if line == b".\r\n" {
                    in_data = false;
                    send(
                        &mut w,
                        "250 2.0.0 Ok: queued as Q1\x1b[2J\x07\x7f\u{9b}31m\rFAKE\r\n",
                    );
                }
                continue;
            }
            let verb = String::from_utf8_lossy(&line[..line.len().min(4)]).to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" => send(&mut w, "250-mx\x1b[1A\x07\r\n250 8BITMIME\r\n"),
                "MAIL" | "RSET" => send(&mut w, "250 2.1.0 ok\x07\r\n"),
                "RCPT" => send(&mut w, rcpt),
                "DATA" => {
                    in_data = true;
                    send(&mut w, "354 go\x1b[K\r\n");
                }
                "QUIT" => {
                    send(&mut w, quit);
                    break;
                }
                _ => send(&mut w, "502 5.5.2 what\x1b[0m\r\n"),
            }
        }
    });
    (addr, handle)
}

/// Server text reaches the terminal with its control characters spelled out (`\x1b`, `\x07`, ...),
/// never raw: on the success line, in the error line and in the `-v` transcript (greeting, EHLO,
/// the 250 after the dot, the reply to QUIT).
#[test]
fn server_terminal_escapes_are_spelled_out() {
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
        let (addr, server) = hostile_server(rcpt, quit);
        let mut args = vec![
            "--server",
            &addr,
            "--tls",
            "none",
            "--timeout",
            "5",
            "--from",
            "a@example.com",
            "--to",
            "b@example.org",
        ];
        if verbose {
            args.push("-v");
        }
        let out = smtp_send(&args, &[], Some(MESSAGE));
        server.join().unwrap();
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
    let (server, ca) = external(config, "plain-auth").await;
    let args = server_args(
        &server,
        &ca,
        &["--tls", "none", "--user", "me", "--to", "bob@example.org"],
    );
    let env = vec![("SMTP_PASSWORD".to_owned(), PASSWORD.to_owned())];
    let out = smtp_send_async(args.clone(), env.clone(), Some(MESSAGE.to_vec())).await;
    assert_eq!(
        code(&out),
        i32::from(Exit::Auth.code()),
        "stderr: {}",
        text(&out.stderr)
    );
    let line = assert_one_error_line(&out);
    assert!(line.contains("--allow-plaintext-auth"), "{line}");
    assert!(!text(&out.stderr).contains(PASSWORD));
    assert!(server.messages().is_empty(), "nothing was sent");

    let mut allowed = args;
    allowed.push("--allow-plaintext-auth".to_owned());
    let out = smtp_send_async(allowed, env, Some(MESSAGE.to_vec())).await;
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
#[test]
fn deadline_ends_a_run_held_by_a_slow_server() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        socket.write_all(b"220 slow.test ESMTP\r\n").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let started = Instant::now();
        let mut byte = [0u8; 1];
        while started.elapsed() < Duration::from_secs(15) {
            match std::io::Read::read(&mut socket, &mut byte) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return,
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let start = Instant::now();
    let out = smtp_send(
        &[
            "--server",
            &addr.to_string(),
            "--tls",
            "none",
            "--timeout",
            "100",
            "--deadline",
            "3",
            "--from",
            "a@example.com",
            "--to",
            "b@example.org",
        ],
        &[],
        Some(MESSAGE),
    );
    let elapsed = start.elapsed();
    assert_eq!(
        code(&out),
        i32::from(Exit::Timeout.code()),
        "stderr: {}",
        text(&out.stderr)
    );
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    let line = assert_one_error_line(&out);
    assert!(line.contains("deadline"), "{line}");
    holder.join().unwrap();
}

/// The SIZE declared for a file with bare LF line endings is its size as sent (each LF becomes
/// CRLF), so the server never receives more than was declared.
#[tokio::test]
async fn size_declared_for_a_file_is_its_size_as_sent() {
    let (server, ca) = external(CaptureConfig::default(), "size").await;
    let body = b"Subject: lf\n\nline one\nline two\n";
    let file = temp_file("lf.eml", body);
    let args = server_args(
        &server,
        &ca,
        &["--to", "bob@example.org", "--file", file.to_str().unwrap()],
    );
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

// ---------------------------------------------------------------- built messages (issue 17)

use mail_parser::{MessageParser, MimeHeaders};

/// The message bytes of a capture report (between its header lines and `--- end of message ---`).
fn printed_message(stdout: &[u8]) -> Vec<u8> {
    let text = text(stdout);
    let start = text
        .find("CRLF line endings):\n")
        .map(|i| i + "CRLF line endings):\n".len())
        .expect("a capture report");
    let end = text.rfind("--- end of message ---\n").unwrap();
    text.as_bytes()[start..end].to_vec()
}

/// The header block of a message (up to the first empty line), lower-cased.
fn header_block(message: &[u8]) -> String {
    let text = text(message);
    text.split("\r\n\r\n").next().unwrap().to_ascii_lowercase()
}

fn content_type<'x>(part: &impl MimeHeaders<'x>) -> String {
    let ct = part.content_type().expect("a content type");
    format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or(""))
}

const PDF: &[u8] = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n";

/// The command of the issue, in capture mode: a valid multipart/mixed message with the text
/// body and the attachment named, Date and Message-ID added.
#[test]
fn built_message_with_an_attachment_in_capture_mode() {
    let pdf = temp_file("report.pdf", PDF);
    let out = smtp_send(
        &[
            "--from",
            "a@x",
            "--to",
            "b@y",
            "--subject",
            "Hi",
            "--body",
            "Hello",
            "--attach",
            pdf.to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    // Not a terminal: nothing on standard error.
    assert_eq!(text(&out.stderr), "");
    let raw = printed_message(&out.stdout);
    let message = MessageParser::default().parse(&raw).expect("parses");
    assert_eq!(content_type(message.root_part()), "multipart/mixed");
    assert_eq!(message.subject(), Some("Hi"));
    assert_eq!(
        message.from().unwrap().first().unwrap().address(),
        Some("a@x")
    );
    assert_eq!(
        message.to().unwrap().first().unwrap().address(),
        Some("b@y")
    );
    assert!(message.date().is_some() && message.message_id().is_some());
    assert_eq!(message.body_text(0).unwrap().trim_end(), "Hello");
    assert_eq!(message.attachment_count(), 1);
    let attachment = message.attachments().next().unwrap();
    assert!(
        attachment
            .attachment_name()
            .unwrap()
            .ends_with("report.pdf")
    );
    assert_eq!(content_type(attachment), "application/pdf");
    assert_eq!(attachment.contents(), PDF);
    let _ = std::fs::remove_file(pdf);
}

/// Every message flag against a server: text and HTML alternatives, two attachments with
/// their content types, extra and replaced headers, the exact SIZE declared.
#[tokio::test]
async fn built_message_with_every_flag_to_a_server() {
    let (server, ca) = external(CaptureConfig::default(), "compose").await;
    let body = temp_file("body.txt", "Plain body,\nwith two lines.\n".as_bytes());
    let html = temp_file("body.html", b"<p>HTML body</p>\n");
    let notes = temp_file("notes.txt", b"some notes\n");
    let png = temp_file("pixel.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    let args = server_args(
        &server,
        &ca,
        &[
            "--to",
            "bob@example.org",
            "--to",
            "carol@example.net",
            "--subject",
            "Quarterly numbers",
            "--body-file",
            body.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
            "--attach",
            notes.to_str().unwrap(),
            "--attach",
            png.to_str().unwrap(),
            "--header",
            "X-Campaign: 7",
            "--header",
            "To: Team <team@example.org>",
        ],
    );
    let out = smtp_send_async(args, vec![], None).await;
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    let messages = server.messages();
    let m = &messages[0];
    assert_eq!(m.rcpt_to, ["bob@example.org", "carol@example.net"]);
    assert!(
        m.mail_params.contains(&format!("SIZE={}", m.data.len())),
        "{:?}",
        m.mail_params
    );
    let message = MessageParser::default().parse(&m.data).expect("parses");
    assert_eq!(content_type(message.root_part()), "multipart/mixed");
    assert_eq!(message.subject(), Some("Quarterly numbers"));
    assert_eq!(
        message.to().unwrap().first().unwrap().address(),
        Some("team@example.org")
    );
    assert_eq!(message.header_raw("X-Campaign").map(str::trim), Some("7"));
    assert_eq!(
        message.body_text(0).unwrap().replace("\r\n", "\n"),
        "Plain body,\nwith two lines.\n"
    );
    assert!(message.body_html(0).unwrap().contains("<p>HTML body</p>"));
    let attachments: Vec<(String, String)> = message
        .attachments()
        .map(|a| {
            let name = a.attachment_name().unwrap();
            let name = name.rsplit('-').next().unwrap().to_owned();
            (name, content_type(a))
        })
        .collect();
    assert_eq!(
        attachments,
        [
            ("notes.txt".to_owned(), "text/plain".to_owned()),
            ("pixel.png".to_owned(), "image/png".to_owned())
        ]
    );
    for f in [body, html, notes, png, ca] {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn message_flag_errors() {
    // --file and a message flag together: a usage error.
    let out = smtp_send(&["--file", "m.eml", "--subject", "x"], &[], None);
    assert_eq!(code(&out), Exit::Usage.code() as i32);
    // A Bcc header, or a header smuggling a second one, is refused before connecting.
    for header in [
        "Bcc: hidden@example.com",
        "X-A: 1\r\nBcc: hidden@example.com",
    ] {
        let out = smtp_send(&["--subject", "x", "--header", header], &[], None);
        assert_eq!(code(&out), Exit::Usage.code() as i32, "{header:?}");
        let line = assert_one_error_line(&out);
        assert!(line.contains("--header"), "{line}");
        assert!(!text(&out.stdout).contains("accepted"));
    }
    // An unreadable attachment or a non-UTF-8 HTML file: a local I/O error.
    let out = smtp_send(&["--attach", "/nonexistent/report.pdf"], &[], None);
    assert_eq!(code(&out), Exit::LocalIo.code() as i32);
    assert!(assert_one_error_line(&out).contains("/nonexistent/report.pdf"));
    let latin1 = temp_file("latin1.html", b"<p>caf\xe9</p>");
    let out = smtp_send(&["--html", latin1.to_str().unwrap()], &[], None);
    assert_eq!(code(&out), Exit::LocalIo.code() as i32);
    assert!(assert_one_error_line(&out).contains("UTF-8"));
    let _ = std::fs::remove_file(latin1);
}

/// `send_message` with a mail-builder message (text, HTML, an attachment, Cc and Bcc) through
/// the capture server: the envelope holds every recipient, the message the same parts and no
/// Bcc header.
#[tokio::test]
async fn send_message_with_mail_builder_through_the_capture_server() {
    use smtp_io_tokio::mail_builder::MessageBuilder;
    use smtp_io_tokio::mail_builder::headers::address::Address;
    use smtp_io_tokio::message::SendMessage;
    use smtp_io_tokio::{ConnectOptions, TlsConfig, TlsMode};

    let server = CaptureServer::start(CaptureConfig::default())
        .await
        .unwrap();
    let message = MessageBuilder::new()
        .from(("Alice Example", "alice@example.com"))
        .to(("Bob", "bob@example.org"))
        .cc(Address::new_group(
            Some("Friends"),
            vec![
                Address::new_address(Some("Carol"), "carol@example.net"),
                Address::new_address(None::<&str>, "dave@example.org"),
            ],
        ))
        .bcc(vec![("Eve (hidden)", "eve@example.com")])
        .subject("Report")
        .text_body("See the attached report.\n")
        .html_body("<p>See the attached <b>report</b>.</p>\n")
        .attachment("application/pdf", "report.pdf", PDF);
    let mut client = ConnectOptions::new(TlsMode::StartTls)
        .with_tls_config(TlsConfig::from_ca_pem(server.ca_pem().as_bytes()).unwrap())
        .with_tls_server_name("localhost")
        .connect("127.0.0.1", server.addr().port(), "client.example")
        .await
        .unwrap();
    let outcome = client.send_message(&message).await.unwrap();
    client.quit().await.unwrap();

    let messages = server.messages();
    let m = &messages[0];
    assert_eq!(Some(&m.queue_id), outcome.queue_id.as_ref());
    assert_eq!(m.mail_from, "alice@example.com");
    assert_eq!(
        m.rcpt_to,
        [
            "bob@example.org",
            "carol@example.net",
            "dave@example.org",
            "eve@example.com"
        ]
    );
    let headers = header_block(&m.data);
    assert!(
        !headers.contains("bcc") && !headers.contains("eve@"),
        "{headers}"
    );
    let parsed = MessageParser::default().parse(&m.data).expect("parses");
    assert!(parsed.header_raw("Bcc").is_none());
    assert_eq!(content_type(parsed.root_part()), "multipart/mixed");
    assert_eq!(parsed.subject(), Some("Report"));
    assert_eq!(
        parsed.body_text(0).unwrap().replace("\r\n", "\n"),
        "See the attached report.\n"
    );
    assert!(parsed.body_html(0).unwrap().contains("<b>report</b>"));
    let attachment = parsed.attachments().next().unwrap();
    assert_eq!(attachment.attachment_name(), Some("report.pdf"));
    assert_eq!(content_type(attachment), "application/pdf");
    assert_eq!(attachment.contents(), PDF);
    let cc: Vec<_> = parsed
        .cc()
        .unwrap()
        .iter()
        .filter_map(|a| a.address())
        .collect();
    assert_eq!(cc, ["carol@example.net", "dave@example.org"]);
}

/// A message file of `mib` MiB, in lines of 76 characters.
fn large_message(name: &str, mib: usize) -> PathBuf {
    let mut data = b"Subject: large\n\n".to_vec();
    let line = [
        b"0123456789abcdefghijklmnopqrstuvwxyz".repeat(2).as_slice(),
        b"ABCDEFG\n",
    ]
    .concat();
    while data.len() < mib * 1024 * 1024 {
        data.extend_from_slice(&line);
    }
    temp_file(name, &data)
}

/// A send larger than the progress threshold prints nothing extra when standard error is not a
/// terminal.
#[test]
fn large_send_shows_no_progress_without_a_terminal() {
    let file = large_message("large-pipe.eml", 6);
    let out = smtp_send(&["--file", file.to_str().unwrap()], &[], None);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "stderr: {:?}", text(&out.stderr));
    let _ = std::fs::remove_file(file);
}

/// With standard error on a pseudo-terminal, a large send shows the progress bar, and a small
/// one shows nothing.
#[cfg(unix)]
#[test]
fn large_send_shows_progress_on_a_terminal() {
    use rustix_openpty::rustix::termios::Winsize;
    use std::io::Read;

    fn on_pty(args: &[&str]) -> (i32, String) {
        let size = Winsize {
            ws_row: 40,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = rustix_openpty::openpty(None, Some(&size)).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_smtp-send"));
        cmd.args(args)
            .env_remove("SMTP_PASSWORD")
            .env("TERM", "xterm")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(pty.user));
        let mut child = cmd.spawn().unwrap();
        // Only the child holds the terminal side now: reading ends when it exits.
        drop(cmd);
        let mut controller = std::fs::File::from(pty.controller);
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // Linux reports EIO once the last holder of the terminal side has closed it.
            while let Ok(n) = controller.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            seen
        });
        let status = child.wait().unwrap();
        let seen = reader.join().unwrap();
        (status.code().unwrap(), text(&seen))
    }

    let file = large_message("large-tty.eml", 6);
    let (status, seen) = on_pty(&["--file", file.to_str().unwrap()]);
    assert_eq!(status, 0, "{seen}");
    assert!(seen.contains("sending"), "{seen:?}");
    assert!(seen.contains("MiB"), "{seen:?}");
    let _ = std::fs::remove_file(file);
    let small = temp_file("small-tty.eml", MESSAGE);
    let (status, seen) = on_pty(&["--file", small.to_str().unwrap()]);
    assert_eq!(status, 0, "{seen}");
    assert_eq!(seen, "");
    let _ = std::fs::remove_file(small);
}

/// A UTF-8 recipient on a server without SMTPUTF8 is a local check against its capabilities:
/// refused right after EHLO, before any credential is sent (exit 7, not a usage error).
#[test]
fn utf8_recipient_without_smtputf8_is_refused_before_auth() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reader = std::io::BufReader::new(socket.try_clone().unwrap());
        let mut writer = socket;
        let mut seen = Vec::new();
        writer.write_all(b"220 plain.test ESMTP\r\n").unwrap();
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) > 0 {
            let command = line.trim_end().to_owned();
            line.clear();
            let reply: &[u8] = if command.starts_with("EHLO") {
                b"250-plain.test\r\n250 AUTH PLAIN\r\n"
            } else if command == "QUIT" {
                b"221 bye\r\n"
            } else {
                b"502 unexpected\r\n"
            };
            seen.push(command);
            writer.write_all(reply).unwrap();
            if reply.starts_with(b"221") {
                break;
            }
        }
        seen
    });
    let out = smtp_send(
        &[
            "--server",
            &addr.to_string(),
            "--tls",
            "none",
            "--allow-plaintext-auth",
            "--user",
            "me",
            "--from",
            "a@example.com",
            "--to",
            "用户@example.org",
        ],
        &[("SMTP_PASSWORD", PASSWORD)],
        Some(MESSAGE),
    );
    assert_eq!(
        code(&out),
        i32::from(Exit::Refused.code()),
        "stderr: {}",
        text(&out.stderr)
    );
    let line = assert_one_error_line(&out);
    assert!(line.contains("SMTPUTF8"), "{line}");
    let seen = server.join().unwrap();
    assert!(
        !seen.iter().any(|c| c.starts_with("AUTH")),
        "no AUTH: {seen:?}"
    );
}
