//! The client against time: per-reply deadlines, the session's deadline, the write-progress
//! rule, a server that never answers, drips, reads slowly or answers slowly (fake clocks).

use std::collections::VecDeque;
use std::io;
use std::task::Poll;

use super::*;
use crate::session::Timeouts;

/// A server that never answers: every read waits forever, and the runtime's timer fires at once.
struct Stalled;

impl Transport for Stalled {
    async fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        core::future::pending().await
    }
    async fn write_all(&mut self, _buf: &[u8]) -> io::Result<()> {
        Ok(())
    }
    async fn close(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn sleep(_duration: core::time::Duration) -> impl Future<Output = ()> {
        core::future::ready(())
    }
    fn now() -> core::time::Duration {
        core::time::Duration::ZERO
    }
}

#[test]
fn stalled_server_times_out_instead_of_hanging() {
    let err = block_on(SmtpClient::connect_with(
        Stalled,
        "client.example",
        options(),
    ))
    .unwrap_err();
    assert_eq!(
        err,
        SmtpError::Timeout {
            during: SmtpOp::Greeting,
            after: core::time::Duration::from_secs(300)
        }
    );
}

std::thread_local! {
    /// Virtual seconds for the transports below (each test runs on its own thread): their
    /// reads or writes move time on, their timer reads it.
    static NOW: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// The virtual time, in seconds.
fn clock() -> u64 {
    NOW.with(|n| n.get())
}

fn set_clock(secs: u64) {
    NOW.with(|n| n.set(secs));
}

/// Half a virtual wait of `secs`: true (pend) after moving the clock on, false on the next call.
fn pend_once(waited: &mut bool, secs: u64) -> bool {
    *waited = !*waited;
    if *waited {
        set_clock(clock() + secs);
    }
    *waited
}

/// A transport's `close` (nothing to do), and its clock and timer: the virtual clock's.
macro_rules! virtual_clock {
    () => {
        async fn close(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn now() -> core::time::Duration {
            core::time::Duration::from_secs(clock())
        }
        fn sleep(duration: core::time::Duration) -> impl Future<Output = ()> {
            virtual_sleep(duration)
        }
    };
}

/// A timer of the virtual clock: ready once the clock has moved `duration` on.
fn virtual_sleep(duration: core::time::Duration) -> impl Future<Output = ()> {
    let deadline = clock() + duration.as_secs();
    core::future::poll_fn(move |_| {
        if clock() >= deadline {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
}

/// A server that sends its bytes one per (virtual) second: every read first waits a second, then
/// gives one byte. Each read makes progress, so only a deadline per reply (not per read) stops it.
struct Drip {
    bytes: VecDeque<u8>,
    waited: bool,
}

impl Transport for Drip {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        core::future::poll_fn(|_| {
            if pend_once(&mut self.waited, 1) {
                return Poll::Pending;
            }
            match self.bytes.pop_front() {
                Some(b) => {
                    buf[0] = b;
                    Poll::Ready(Ok(1))
                }
                None => Poll::Pending,
            }
        })
        .await
    }
    async fn write_all(&mut self, _buf: &[u8]) -> io::Result<()> {
        Ok(())
    }
    virtual_clock!();
}

/// Connect over a [`Drip`] of `bytes`, the clock starting at 0, every reply limited to 10 s
/// and the session to `deadline` if one is given.
fn connect_drip(
    bytes: &[u8],
    deadline: Option<core::time::Duration>,
) -> Result<SmtpClient<Drip>, SmtpError> {
    set_clock(0);
    let drip = Drip {
        bytes: bytes.iter().copied().collect(),
        waited: false,
    };
    let mut options = SmtpClientOptions::new()
        .with_timeouts(Timeouts::uniform(core::time::Duration::from_secs(10)));
    if let Some(deadline) = deadline {
        options = options.with_deadline(deadline);
    }
    block_on(SmtpClient::connect_with(drip, "client.example", options))
}

/// The slow-drip attack (aiosmtplib's and lettre's "timeout per read" weakness): a reply that
/// keeps arriving a byte at a time is still bounded by one deadline for the whole reply.
#[test]
fn a_reply_dripping_past_its_deadline_times_out() {
    let greeting = b"220 mx.example ESMTP slowly, very slowly\r\n";
    let err = connect_drip(greeting, None).unwrap_err();
    assert_eq!(
        err,
        SmtpError::Timeout {
            during: SmtpOp::Greeting,
            after: core::time::Duration::from_secs(10)
        }
    );
    // Time stopped at the deadline, not after the whole 42-byte greeting.
    assert!(clock() <= 11);
}

/// The same drip within the deadline completes: the deadline is per reply, and restarts for the
/// next one.
#[test]
fn a_slow_reply_within_its_deadline_is_fine() {
    let client = connect_drip(b"220 a\r\n250 b\r\n", None).unwrap();
    assert_eq!(client.state(), SessionState::Authentication);
}

/// The session's total deadline ends a session whose every reply is within its own limit.
#[test]
fn the_total_deadline_bounds_a_session_of_slow_replies() {
    // Each reply takes 7 virtual seconds, within its 10 s; the two take 14 s, past the 10 s total.
    let deadline = Some(core::time::Duration::from_secs(10));
    let err = connect_drip(b"220 a\r\n250 b\r\n", deadline).unwrap_err();
    assert_eq!(
        err,
        SmtpError::DeadlineExceeded {
            during: SmtpOp::Ehlo,
            after: core::time::Duration::from_secs(10)
        }
    );
    assert_eq!(clock(), 10, "stopped at the deadline");
}

/// A server that answers at once, one reply per read, but reads what it is sent at 50 bytes a
/// (virtual) second.
struct SlowReader {
    replies: VecDeque<&'static [u8]>,
    written: usize,
}

impl Transport for SlowReader {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let reply = self.replies.pop_front().unwrap_or_default();
        buf[..reply.len()].copy_from_slice(reply);
        Ok(reply.len())
    }
    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut waited = false;
        let seconds = buf.len().div_ceil(50) as u64;
        core::future::poll_fn(|_| {
            if pend_once(&mut waited, seconds) {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
        self.written += buf.len();
        Ok(())
    }
    virtual_clock!();
}

/// The write-progress rule: each 1 KiB write finishes within the 3-minute block limit, but the
/// body as a whole falls below 1 KiB/s, so the session ends long before the 200 KiB are out.
#[test]
fn a_server_that_reads_slowly_cannot_hold_a_body_forever() {
    set_clock(0);
    let server = SlowReader {
        replies: [
            &b"220 mx\r\n"[..],
            b"250 mx\r\n",
            b"250 ok\r\n",
            b"250 ok\r\n",
            b"354 go\r\n",
        ]
        .into(),
        written: 0,
    };
    let body = vec![b'a'; 200 * 1024];
    block_on(async {
        let mut client = SmtpClient::connect(server, "client.example").await.unwrap();
        let mut stream = SliceBody::new(&body).with_chunk_size(1024);
        let err = client
            .send_mail_stream("a@x.example", &["b@y.example"], &mut stream)
            .await
            .unwrap_err();
        assert!(
            matches!(err, SmtpError::Timeout { during: SmtpOp::DataEnd, after } if after > core::time::Duration::from_secs(180)),
            "{err:?}"
        );
        assert!(client.transport().written < 20 * 1024, "cut off early");
    });
    assert!(clock() < 400);
}

/// A server that reads at once but takes a (virtual) minute before each reply: slow, yet
/// within every per-reply limit.
struct SlowReplies {
    server: VecDeque<u8>,
    line: Vec<u8>,
    in_data: bool,
    waited: bool,
}

impl SlowReplies {
    fn answer(&mut self) {
        let reply: &[u8] = if self.in_data {
            if self.line != b".\r\n" {
                return;
            }
            self.in_data = false;
            b"250 queued\r\n"
        } else if self.line.starts_with(b"EHLO") {
            b"250 mx\r\n"
        } else if self.line.starts_with(b"DATA") {
            self.in_data = true;
            b"354 go\r\n"
        } else {
            b"250 ok\r\n"
        };
        self.server.extend(reply);
    }
}

impl Transport for SlowReplies {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        core::future::poll_fn(|_| {
            if pend_once(&mut self.waited, 60) {
                return Poll::Pending;
            }
            let n = buf.len().min(self.server.len());
            for (slot, b) in buf.iter_mut().zip(self.server.drain(..n)) {
                *slot = b;
            }
            Poll::Ready(Ok(n))
        })
        .await
    }
    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        // Every write takes a moment (no virtual time), so an expired bound would win the race.
        let mut yielded = false;
        core::future::poll_fn(|_| {
            if yielded {
                Poll::Ready(())
            } else {
                yielded = true;
                Poll::Pending
            }
        })
        .await;
        for &b in buf {
            self.line.push(b);
            if b == b'\n' {
                self.answer();
                self.line.clear();
            }
        }
        Ok(())
    }
    virtual_clock!();
}

/// The write-progress rule is about one body being written: a batch whose server takes a
/// minute per reply runs for far longer than the rule's grace, and still succeeds.
#[test]
fn slow_replies_in_a_batch_are_not_a_slow_write() {
    set_clock(0);
    let mut server = SlowReplies {
        server: VecDeque::new(),
        line: Vec::new(),
        in_data: false,
        waited: false,
    };
    server.server.extend(b"220 mx\r\n");
    let bodies: Vec<Vec<u8>> = (0..4)
        .map(|i| format!("message {i}\r\n").into_bytes())
        .collect();
    let batch: Vec<OutgoingMessage<'_>> = bodies
        .iter()
        .map(|b| OutgoingMessage::new("a@x.example", &["b@y.example"], b))
        .collect();
    let results = block_on(async {
        let mut client = SmtpClient::connect(server, "client.example").await.unwrap();
        client.send_batch(&batch).await
    });
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(clock() > 600, "the batch took virtual minutes");
}
