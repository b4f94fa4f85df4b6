//! `--dkim-key`, `--dkim-selector`, `--dkim-domain`: the message the capture server received
//! verifies with dkimpy (Python, a verifier nobody here wrote), whether it came from a file
//! (read twice), standard input or the message flags; a bad key or an incomplete set of flags
//! fails before connecting.
//!
//! Needs `python3` with `pip install dkimpy cryptography pynacl`: without them these tests fail,
//! they never skip.

use std::path::Path;
use std::process::Output;

use smtp_send::capture::{CaptureConfig, CaptureServer};
use smtp_send::exit::Exit;

mod common;
use common::{
    assert_exit, server_args, smtp_send_async, spawn_smtp_send, strings, temp_file, text,
};

// smtp-dkim's keys and dkimpy runner, shared by every crate's DKIM tests.
#[path = "../../smtp-dkim/tests/support/dkimpy.rs"]
mod verifier;
use verifier::{DOMAIN, key_path as key};

const SELECTOR: &str = "cli2026";

/// Run the binary (from a blocking thread, so that the test's capture server keeps running).
async fn smtp_send(args: Vec<String>, stdin: Option<Vec<u8>>) -> Output {
    smtp_send_async(args, Vec::new(), stdin).await
}

/// dkimpy's verdict on each message, with the public key derived from `key_file` by Python.
fn dkimpy(key_file: &Path, name: &str, messages: &[Vec<u8>]) -> Vec<bool> {
    verifier::verify(key_file, SELECTOR, name, messages).each
}

/// A usage error whose message says `want`; returns the standard error.
#[track_caller]
fn assert_usage_error(out: &Output, want: &str) -> String {
    assert_exit(out, Exit::Usage);
    let stderr = text(&out.stderr);
    assert!(stderr.contains(want), "{stderr}");
    stderr
}

fn dkim_args(key_file: &Path) -> Vec<String> {
    vec![
        "--dkim-key".into(),
        key_file.to_str().unwrap().into(),
        "--dkim-selector".into(),
        SELECTOR.into(),
        "--dkim-domain".into(),
        DOMAIN.into(),
    ]
}

/// A message with bare LF line endings, dot lines, an 8-bit body and a folded header, about
/// `lines` lines long.
fn message(lines: usize) -> Vec<u8> {
    let mut m = "From: Alice <alice@example.com>\nTo: <bob@example.org>\nSubject: caf\u{e9}\n \
                 folded\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n"
        .as_bytes()
        .to_vec();
    for i in 0..lines {
        match i % 4 {
            0 => m.extend_from_slice(b".a line starting with a dot\n"),
            1 => m.extend_from_slice("na\u{ef}ve \t spaces  \r\n".as_bytes()),
            2 => m.extend_from_slice(b"\n"),
            _ => m.extend_from_slice(format!("line {i}\n").as_bytes()),
        }
    }
    m.extend_from_slice(b".\nlast line without an end");
    m
}

/// One body byte changed (after the signature): dkimpy must say False.
fn tampered(m: &[u8]) -> Vec<u8> {
    let mut t = m.to_vec();
    let at = t.windows(4).rposition(|w| w == b"last").unwrap();
    t[at] = b'L';
    t
}

#[tokio::test]
async fn signed_file_stdin_and_built_messages_verify_as_received() {
    let server = CaptureServer::start(CaptureConfig::default())
        .await
        .unwrap();
    let ca = temp_file("ca.pem", server.ca_pem().as_bytes());
    let base =
        |more: &[&str]| server_args(&server, &ca, &[&["--to", "bob@example.org"], more].concat());
    let rsa = key("rsa2048-pkcs1.pem");
    let ed = key("ed25519-pkcs8.pem");

    // A file of about 3 MiB, read twice (hashed, then sent), with the RSA key.
    let big = message(300_000);
    assert!(big.len() > 3 << 20);
    let file = temp_file("big.eml", &big);
    let mut args = base(&["--file", file.to_str().unwrap()]);
    args.extend(dkim_args(&rsa));
    assert_exit(&smtp_send(args, None).await, Exit::Accepted);

    // Standard input (held in memory to be signed), with the Ed25519 key.
    let mut args = base(&[]);
    args.extend(dkim_args(&ed));
    assert_exit(&smtp_send(args, Some(message(20))).await, Exit::Accepted);

    // A message built from the flags, Ed25519.
    let mut args = base(&["--subject", "built", "--body", "Hello\n.dot line\n"]);
    args.extend(dkim_args(&ed));
    assert_exit(&smtp_send(args, None).await, Exit::Accepted);

    let received: Vec<Vec<u8>> = server.messages().into_iter().map(|m| m.data).collect();
    assert_eq!(received.len(), 3);
    for m in &received {
        assert!(
            m.starts_with(b"DKIM-Signature: v=1; a="),
            "{}",
            text(&m[..200.min(m.len())])
        );
        // As received: CRLF line endings only (the signature covers this form).
        assert!(!m.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'));
    }
    assert!(text(&received[0]).contains("a=rsa-sha256"));
    assert!(text(&received[1]).contains("a=ed25519-sha256"));
    assert_eq!(
        dkimpy(&rsa, "rsa", &[received[0].clone(), tampered(&received[0])]),
        [true, false]
    );
    assert_eq!(
        dkimpy(
            &ed,
            "ed",
            &[
                received[1].clone(),
                tampered(&received[1]),
                received[2].clone()
            ]
        ),
        [true, false, true]
    );
}

/// Capture mode: the printed copy of what the in-process server received verifies too.
#[tokio::test]
async fn capture_mode_prints_a_message_that_verifies() {
    let file = temp_file("capture.eml", &message(10));
    let ed = key("ed25519-pkcs8.pem");
    let mut args = vec!["--file".to_owned(), file.to_str().unwrap().to_owned()];
    args.extend(dkim_args(&ed));
    let out = smtp_send(args, None).await;
    assert_exit(&out, Exit::Accepted);
    let stdout = out.stdout;
    let start = stdout.windows(3).position(|w| w == b"):\n").unwrap() + 3;
    let end = stdout
        .windows(23)
        .rposition(|w| w == b"--- end of message ---\n")
        .unwrap();
    let printed = stdout[start..end].to_vec();
    assert!(printed.starts_with(b"DKIM-Signature: "));
    assert_eq!(dkimpy(&ed, "capture", &[printed]), [true]);
}

/// Flags that do not go together, a malformed key, a bad domain, a message without From: each a
/// usage error before any connection (the server is a port that refuses: a connection would be
/// exit 3); an unreadable key file is a local I/O error. The key never shows.
#[tokio::test]
async fn dkim_errors_come_before_connecting() {
    let to_port_1 = |more: Vec<String>| {
        let mut args = strings(&[
            "--server",
            "127.0.0.1:1",
            "--tls",
            "none",
            "--from",
            "a@example.com",
            "--to",
            "b@example.org",
        ]);
        args.extend(more);
        args
    };
    let rsa = key("rsa2048-pkcs1.pem");
    let pem = std::fs::read_to_string(&rsa).unwrap();
    let good = temp_file("from.eml", b"From: a@example.com\n\nx\n");
    let file_args = |more: &[&str]| -> Vec<String> {
        let mut v = vec!["--file".to_owned(), good.to_str().unwrap().to_owned()];
        v.extend(more.iter().map(|s| s.to_string()));
        v
    };

    // Only some of the three flags: clap's usage error naming the missing one.
    let out = smtp_send(
        to_port_1(file_args(&["--dkim-key", rsa.to_str().unwrap()])),
        None,
    )
    .await;
    let stderr = assert_usage_error(&out, "\n  --dkim-selector <SELECTOR>\n");
    assert!(stderr.contains("\n  --dkim-domain <DOMAIN>\n"), "{stderr}");
    assert!(!stderr.contains("\n  --dkim-key"), "{stderr}");
    let out = smtp_send(to_port_1(file_args(&["--dkim-domain", DOMAIN])), None).await;
    let stderr = assert_usage_error(&out, "\n  --dkim-key <PEM>\n");
    assert!(
        stderr.contains("\n  --dkim-selector <SELECTOR>\n"),
        "{stderr}"
    );
    assert!(!stderr.contains("\n  --dkim-domain"), "{stderr}");

    // A malformed key: truncated, so it is not the key any more; its text never shows.
    let broken: String = pem.lines().take(8).collect::<Vec<_>>().join("\n");
    let broken_file = temp_file("broken.pem", broken.as_bytes());
    let cert = temp_file(
        "cert.pem",
        b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    );
    // A key in DER (binary, not text): malformed too, not unreadable (it was exit 9).
    let der = temp_file(
        "key.der",
        b"\x30\x2e\x02\x01\x00\x30\x05\x06\x03\x2b\x65\x70\xff",
    );
    for (bad, want) in [
        (&broken_file, "--dkim-key"),
        (&cert, "CERTIFICATE"),
        (&der, "not a PEM key"),
    ] {
        let out = smtp_send(to_port_1([file_args(&[]), dkim_args(bad)].concat()), None).await;
        let stderr = assert_usage_error(&out, want);
        for line in pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 20)
        {
            assert!(!stderr.contains(&line[..20]), "key material in {stderr}");
        }
    }

    // A missing key file: a local I/O error.
    let out = smtp_send(
        to_port_1([file_args(&[]), dkim_args(Path::new("/nonexistent/k.pem"))].concat()),
        None,
    )
    .await;
    assert_exit(&out, Exit::LocalIo);

    // A bad domain, then a message without From: usage errors, still before connecting.
    let mut args = file_args(&[]);
    args.extend(
        [
            "--dkim-key",
            rsa.to_str().unwrap(),
            "--dkim-selector",
            "s",
            "--dkim-domain",
            "bad domain",
        ]
        .map(String::from),
    );
    let out = smtp_send(to_port_1(args), None).await;
    assert_usage_error(&out, "invalid DKIM domain");
    let no_from = temp_file("nofrom.eml", b"To: b@example.org\n\nx\n");
    let mut args = vec!["--file".to_owned(), no_from.to_str().unwrap().to_owned()];
    args.extend(dkim_args(&rsa));
    let out = smtp_send(to_port_1(args), None).await;
    assert_usage_error(&out, "no From header field");

    // The same message from standard input fails the same way.
    let out = smtp_send(
        to_port_1(dkim_args(&rsa)),
        Some(b"Subject: none\n\nx\n".to_vec()),
    )
    .await;
    assert_exit(&out, Exit::Usage);
}

/// A server that takes every message and never answers QUIT.
struct MuteAtQuit;

impl smtp_testkit::mock::Conversation for MuteAtQuit {
    fn command(&mut self, line: &str) -> smtp_testkit::mock::Act {
        use smtp_testkit::mock::Act;
        match line.get(..4).unwrap_or("").to_ascii_uppercase().as_str() {
            "EHLO" => Act::send("250 mute.test\r\n"),
            "DATA" => Act::body("354 go\r\n"),
            "QUIT" => Act::Stall,
            _ => Act::send("250 ok\r\n"),
        }
    }
}

/// `--deadline` counts from the start of the run: with DKIM the message is read from standard
/// input before connecting, here 2 s late; the server takes it and never answers QUIT. The
/// run ends within the deadline (4 s) with the acceptance (exit 0): the session got what was
/// left of the deadline, so its own end came before the outer bound, which used to fire first
/// and report exit 8 after the server had taken the message.
#[tokio::test]
async fn the_deadline_counts_the_wait_for_the_message_and_keeps_its_acceptance() {
    let server = smtp_testkit::mock::MockServer::start(|_| MuteAtQuit).await;
    let mut args = strings(&[
        "--server",
        &server.addr().to_string(),
        "--tls",
        "none",
        "--from",
        "alice@example.com",
        "--to",
        "bob@example.org",
        "--timeout",
        "100",
        "--deadline",
        "4",
    ]);
    args.extend(dkim_args(&key("ed25519-pkcs8.pem")));
    let started = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = spawn_smtp_send(&args, &[], true);
        let mut stdin = child.stdin.take().unwrap();
        std::thread::sleep(std::time::Duration::from_secs(2));
        let _ = stdin.write_all(&message(3));
        drop(stdin);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert_exit(&out, Exit::Accepted);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
}
