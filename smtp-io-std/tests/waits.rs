//! What bounds the blocking client's waits where a blocking call cannot be raced: a body reader
//! that answers late, and a socket the caller left non-blocking (the TLS close past the
//! deadline is in `loopback.rs`, with the other deadline tests).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use smtp_io_std::{ConnectOptions, ReaderBody, SmtpError, TlsMode};

/// A plain server on loopback for one connection (no PIPELINING): it takes a message, and
/// `delivered` turns true when a message's final dot arrives.
fn plain_server() -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let delivered = Arc::new(AtomicBool::new(false));
    let seen = delivered.clone();
    std::thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        let mut out = socket.try_clone().unwrap();
        let mut lines = BufReader::new(socket);
        let _ = out.write_all(b"220 local ESMTP\r\n");
        let mut line = String::new();
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            let reply: &[u8] = match line.get(..4).unwrap_or("") {
                "EHLO" => b"250-local\r\n250 8BITMIME\r\n",
                "MAIL" | "RCPT" => b"250 ok\r\n",
                "DATA" => {
                    let _ = out.write_all(b"354 go\r\n");
                    loop {
                        line.clear();
                        if lines.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == ".\r\n" {
                            seen.store(true, Ordering::SeqCst);
                            break;
                        }
                    }
                    b"250 queued\r\n"
                }
                "QUIT" => {
                    let _ = out.write_all(b"221 bye\r\n");
                    return;
                }
                _ => b"500 what\r\n",
            };
            if out.write_all(reply).is_err() {
                return;
            }
            line.clear();
        }
    });
    (port, delivered)
}

/// A body source that blocks the thread for `stall` on its first read (a pipe whose writer is
/// slow), then gives one line and ends.
struct StallingReader {
    stall: Duration,
    done: bool,
}

impl Read for StallingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        std::thread::sleep(self.stall);
        self.done = true;
        let line = b"Subject: late\r\n\r\nhello\r\n";
        buf[..line.len()].copy_from_slice(line);
        Ok(line.len())
    }
}

/// A blocking reader's `read` cannot be interrupted, but one that answers after the session's
/// deadline finds it passed: `DeadlineExceeded`, and none of its bytes (nor the end of data)
/// go out. The message used to be sent, and reported sent, after the deadline.
#[test]
fn a_body_read_that_ends_after_the_deadline_sends_nothing_more() {
    let (port, delivered) = plain_server();
    let mut client = ConnectOptions::new(TlsMode::None)
        .with_deadline(Duration::from_secs(1))
        .connect("127.0.0.1", port, "client.test")
        .unwrap();
    let mut body = ReaderBody::new(StallingReader {
        stall: Duration::from_millis(1500),
        done: false,
    });
    let result = client.send_mail_stream("a@x.test", &["b@y.test"], &mut body);
    assert!(
        matches!(result, Err(SmtpError::DeadlineExceeded { .. })),
        "{result:?}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !delivered.load(Ordering::SeqCst),
        "the end of data went out"
    );
}

/// This thread's CPU time (user and system), from /proc.
#[cfg(target_os = "linux")]
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // utime and stime: fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// `connect_on` with a socket the caller left non-blocking: it is put in blocking mode, so
/// waiting for a slow greeting sleeps. Every socket call used to return `WouldBlock` at once and
/// be tried again in a loop that kept a core busy for the whole wait.
#[cfg(target_os = "linux")]
#[test]
fn connect_on_a_non_blocking_socket_waits_without_spinning() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        socket.write_all(b"220 slow ESMTP\r\n").unwrap();
        let mut buf = [0u8; 512];
        let _ = socket.read(&mut buf);
        socket.write_all(b"250 slow\r\n").unwrap();
        let _ = socket.read(&mut buf);
    });
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_nonblocking(true).unwrap();
    let cpu = thread_cpu();
    let client = ConnectOptions::new(TlsMode::None)
        .connect_on(tcp, "127.0.0.1", "client.test")
        .unwrap();
    let spent = thread_cpu() - cpu;
    client.close();
    // A spinning wait costs about the 1.5 s it lasts; a sleeping one next to nothing.
    assert!(
        spent < Duration::from_millis(500),
        "CPU spent waiting: {spent:?}"
    );
}
