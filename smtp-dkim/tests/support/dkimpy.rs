//! Python's dkimpy (a verifier nobody in this project wrote) run on signed messages, through
//! `dkim_verify.py` beside this folder, with smtp-dkim's test keys. One runner for every crate's
//! DKIM tests: smtp-dkim's own (`tests/dkimpy.rs`), and, by `#[path]`, smtp-io-tokio's
//! (`tests/dkim.rs`), smtp-send's (`tests/dkim.rs`) and the interop matrix's
//! (`tests/tests/interop/case`). It only needs the standard library.
//!
//! Needs `python3` (or `$DKIM_PYTHON`) with `pip install dkimpy cryptography pynacl`: without
//! them a run is an error, never a skip.

// Each including test uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The domain every test signs for.
pub const DOMAIN: &str = "example.com";

/// A file of smtp-dkim's `tests` folder (`dkim_verify.py`, `keys/...`), from any crate of the
/// workspace.
pub fn dkim_tests(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../smtp-dkim/tests")).join(name)
}

/// One of smtp-dkim's test keys (`keys/<name>`).
pub fn key_path(name: &str) -> PathBuf {
    dkim_tests("keys").join(name)
}

/// The PEM text of one of smtp-dkim's test keys.
pub fn key_pem(name: &str) -> String {
    std::fs::read_to_string(key_path(name)).expect("smtp-dkim's test key")
}

/// A scratch directory for one test (`label`), of this crate and process.
pub fn scratch(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "{}-dkim-{}-{label}",
        env!("CARGO_PKG_NAME"),
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// What dkimpy made of a run: the DNS record it was given (derived from the private key by
/// Python's `cryptography`, not by the Rust code), and its verdict on each message, in order.
pub struct Verdicts {
    pub record: String,
    pub each: Vec<bool>,
}

/// dkimpy's verdict on each of `messages` (as the server stored them) under the key file `key`,
/// `selector` and [`DOMAIN`]; `label` names the scratch files. An error when Python or its
/// packages are missing, or when the script's output is not a record line and one verdict a
/// message.
pub fn try_verify(
    key: &Path,
    selector: &str,
    label: &str,
    messages: &[Vec<u8>],
) -> Result<Verdicts, String> {
    let dir = scratch(label);
    let mut paths = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let path = dir.join(format!("{i}.eml"));
        std::fs::write(&path, m).map_err(|e| format!("{}: {e}", path.display()))?;
        paths.push(path);
    }
    let python = std::env::var("DKIM_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let output = Command::new(&python)
        .arg(dkim_tests("dkim_verify.py"))
        .arg(key)
        .arg(selector)
        .arg(DOMAIN)
        .args(&paths)
        .output()
        .map_err(|e| {
            format!(
                "cannot run {python} (needed for the DKIM tests; \
                 pip install dkimpy cryptography pynacl): {e}"
            )
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "dkim_verify.py failed ({}); pip install dkimpy cryptography pynacl\n{}\n{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let mut lines = stdout.lines();
    let record = lines
        .next()
        .and_then(|l| l.strip_prefix("record "))
        .ok_or_else(|| format!("dkim_verify.py gave no record line: {stdout}"))?
        .to_owned();
    let each = lines
        .map(|l| match l.rsplit_once(' ') {
            Some((_, "True")) => Ok(true),
            Some((_, "False")) => Ok(false),
            _ => Err(format!("unexpected output line {l:?}")),
        })
        .collect::<Result<Vec<bool>, String>>()?;
    if each.len() != messages.len() {
        return Err(format!(
            "dkim_verify.py gave {} verdicts for {} messages: {stdout}",
            each.len(),
            messages.len()
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Verdicts { record, each })
}

/// [`try_verify`] for a test that panics on an error.
#[track_caller]
pub fn verify(key: &Path, selector: &str, label: &str, messages: &[Vec<u8>]) -> Verdicts {
    try_verify(key, selector, label, messages).unwrap_or_else(|e| panic!("{e}"))
}

/// `message` with one byte of its body changed (its last letter's case flipped): a signed
/// message no verifier may accept any more.
pub fn tampered(message: &[u8]) -> Vec<u8> {
    let mut m = message.to_vec();
    let last = m
        .iter()
        .rposition(u8::is_ascii_alphabetic)
        .expect("a letter");
    m[last] ^= 0x20;
    m
}
