//! Large messages: progress on a terminal only.

use super::*;

/// A message file of `mib` MiB, in lines of 76 characters.
fn large_message(name: &str, mib: usize) -> TempFile {
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
    let small = temp_file("small-tty.eml", MESSAGE);
    let (status, seen) = on_pty(&["--file", small.to_str().unwrap()]);
    assert_eq!(status, 0, "{seen}");
    assert_eq!(seen, "");
}
