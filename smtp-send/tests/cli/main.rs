//! End-to-end tests of the `smtp-send` binary: capture mode, the transcript and its redaction,
//! and each failure class with its exit code, against the capture server used as an external
//! server and against sockets that refuse or stall.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use smtp_send::base64;
use smtp_send::capture::{CaptureConfig, CaptureServer};
use smtp_send::exit::Exit;

#[path = "../common/mod.rs"]
mod common;
use common::*;

mod built;
mod large;
mod proxy;
mod servers;

const PASSWORD: &str = "S3cr3t-pa55word!";

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

/// The run ended with `exit`'s code and one error line, which says `says`; that line.
#[track_caller]
fn assert_fails(out: &Output, exit: Exit, says: &str) -> String {
    assert_exit(out, exit);
    let line = assert_one_error_line(out);
    assert!(line.contains(says), "{line}");
    line
}

const MESSAGE: &[u8] = b"From: <alice@example.com>\nTo: <bob@example.org>\nSubject: test\n\n\
Hello Bob,\n.hidden line starting with a dot\n..two dots\n.\nend\n";

/// An external capture server, the CA file to trust it, and the arguments to send through it
/// ([`server_args`]) with `more`.
async fn external(
    config: CaptureConfig,
    name: &str,
    more: &[&str],
) -> (CaptureServer, TempFile, Vec<String>) {
    let server = CaptureServer::start(config).await.unwrap();
    let ca = temp_file(&format!("{name}-ca.pem"), server.ca_pem().as_bytes());
    let args = server_args(&server, &ca, more);
    (server, ca, args)
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

/// Run the binary against port 1 of the loopback (nothing listens there) with `from`, `to` and
/// `more` arguments.
fn to_port_1(from: &str, to: &str, more: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut args = vec!["--server", "127.0.0.1:1", "--from", from, "--to", to];
    args.extend_from_slice(more);
    smtp_send(&args, &[], stdin)
}

#[test]
fn user_without_secret_is_a_usage_error() {
    let out = to_port_1("a@b.example", "c@d.example", &["--user", "me"], None);
    assert_fails(&out, Exit::Usage, "SMTP_PASSWORD");
}

#[test]
fn unreachable_server_is_a_connect_error() {
    let out = to_port_1("a@example.com", "b@example.org", &[], Some(MESSAGE));
    assert_fails(&out, Exit::Connect, "cannot connect to 127.0.0.1:1");
    // Trust settings with no TLS to use them: said, not silently dropped.
    for trust in [&["--ca-file", "/nonexistent/ca.pem"][..], &["--insecure"]] {
        let more = [&["--tls", "none"][..], trust].concat();
        let out = to_port_1("a@example.com", "b@example.org", &more, Some(MESSAGE));
        assert_fails(&out, Exit::Connect, "cannot connect");
        let stderr = text(&out.stderr);
        assert!(stderr.contains("do nothing with --tls none"), "{stderr}");
    }
}

#[test]
fn unreadable_message_file_is_a_local_io_error() {
    let out = smtp_send(&["--file", "/nonexistent/message.eml"], &[], None);
    assert_fails(&out, Exit::LocalIo, "/nonexistent/message.eml");
}

#[test]
fn invalid_address_is_a_usage_error_before_connecting() {
    // Port 1 would give the connect code: the usage code proves nothing was dialled.
    let out = to_port_1("a@example.com", "not an address", &[], None);
    assert_fails(&out, Exit::Usage, "recipient address");
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
