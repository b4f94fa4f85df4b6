//! What the binary's test crates share (`tests/cli/` by `#[path]`, `tests/dkim.rs` by
//! `mod common;`): running `smtp-send`, its exit code and output, scratch files.

// Each test crate uses a part of it.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use smtp_send::capture::CaptureServer;
use smtp_send::exit::Exit;

/// The binary started with `args`, `env` set (and SMTP_PASSWORD removed unless given), its
/// standard input piped (`true`) or empty, its output piped: for a test that acts while it
/// runs (a signal, a slow input, a deadline).
pub fn spawn_smtp_send<S: AsRef<std::ffi::OsStr>>(
    args: &[S],
    env: &[(&str, &str)],
    piped_stdin: bool,
) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smtp-send"));
    cmd.args(args)
        .env_remove("SMTP_PASSWORD")
        .stdin(if piped_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("run smtp-send")
}

/// Run the binary with `args`, `env` set (and SMTP_PASSWORD removed unless given), and `stdin`
/// piped in (`None`: no standard input).
pub fn smtp_send(args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
    let mut child = spawn_smtp_send(args, env, stdin.is_some());
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // The program may exit (e.g. on a failure) before reading its input: a broken pipe here
        // is expected then.
        let _ = pipe.write_all(input);
    }
    child.wait_with_output().unwrap()
}

/// [`smtp_send`] from inside a tokio test (on a blocking thread), so an in-process capture
/// server keeps running.
pub async fn smtp_send_async(
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

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

/// The run ended with `exit`'s code (its standard output and error shown if not).
#[track_caller]
pub fn assert_exit(out: &Output, exit: Exit) {
    assert_eq!(
        code(out),
        i32::from(exit.code()),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A scratch file of this test binary's process, removed when dropped, also when the test
/// fails. It reads as the [`Path`] it is.
pub struct TempFile(PathBuf);

impl std::ops::Deref for TempFile {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A [`TempFile`] named after `name`, with `contents`.
pub fn temp_file(name: &str, contents: &[u8]) -> TempFile {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{}-{}-{name}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    std::fs::write(&path, contents).unwrap();
    TempFile(path)
}

pub fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Arguments to send from `alice@example.com` through the capture `server`, trusting the CA
/// file `ca`, and `more`.
pub fn server_args(server: &CaptureServer, ca: &Path, more: &[&str]) -> Vec<String> {
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
