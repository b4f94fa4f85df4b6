//! Counts heap allocations per message in a warm session, through the whole client: envelope,
//! pipelined commands, reply parsing, dot-stuffing, outcome.
//!
//! The server is an in-memory fake that answers each command without allocating, so every
//! allocation counted is the client's.

use std::alloc::System;
use std::collections::VecDeque;
use std::io;
use std::task::{Context, Poll, Waker};

use smtp_proto::{SmtpClient, Transport};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// A fake server: replies to each complete command line (and to the end of DATA) at once.
struct FakeServer {
    replies: VecDeque<u8>,
    line: Vec<u8>,
    in_data: bool,
}

impl FakeServer {
    fn new() -> FakeServer {
        let mut replies = VecDeque::with_capacity(64 * 1024);
        replies.extend(b"220 fake.test ESMTP\r\n");
        FakeServer {
            replies,
            line: Vec::with_capacity(64 * 1024),
            in_data: false,
        }
    }

    fn answer(&mut self) {
        let reply: &[u8] = if self.in_data {
            if self.line == b".\r\n" {
                self.in_data = false;
                b"250 2.0.0 Ok: queued as ABC123\r\n"
            } else {
                return;
            }
        } else if self.line.starts_with(b"EHLO") {
            b"250-fake.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 10000000\r\n250 ENHANCEDSTATUSCODES\r\n"
        } else if self.line.starts_with(b"MAIL") {
            b"250 2.1.0 Ok\r\n"
        } else if self.line.starts_with(b"RCPT") {
            b"250 2.1.5 Ok\r\n"
        } else if self.line.starts_with(b"DATA") {
            self.in_data = true;
            b"354 go ahead\r\n"
        } else if self.line.starts_with(b"QUIT") {
            b"221 2.0.0 Bye\r\n"
        } else {
            b"250 2.0.0 Ok\r\n"
        };
        self.replies.extend(reply);
    }
}

impl Transport for FakeServer {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.replies.len());
        for (slot, byte) in buf.iter_mut().zip(self.replies.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }

    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        for &b in buf {
            self.line.push(b);
            if b == b'\n' {
                self.answer();
                self.line.clear();
            }
        }
        Ok(())
    }

    async fn close(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Every reply is already there: the timer never fires.
    fn sleep(_duration: core::time::Duration) -> impl Future<Output = ()> {
        core::future::pending()
    }

    fn now() -> core::time::Duration {
        core::time::Duration::ZERO
    }
}

/// The fake transport never returns Pending, so polling once runs a call to completion.
fn run<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the in-memory transport never blocks"),
    }
}

const BODY: &str = "From: a@example.com\r\nTo: b@example.org\r\nSubject: allocations\r\n\r\n\
Hello,\r\n.a line that needs stuffing\r\nand a bare LF\nbye\r\n";

#[test]
fn a_warm_session_allocates_a_small_constant_per_message() {
    let mut client = run(SmtpClient::connect(FakeServer::new(), "client.test")).expect("connect");
    let to = ["b@example.org", "c@example.org", "d@example.org"];
    // Warm up: buffers grow to their working size.
    for _ in 0..20 {
        let outcome = run(client.send_mail("a@example.com", &to, BODY)).expect("send");
        assert_eq!(outcome.queue_id.as_deref(), Some("ABC123"));
    }

    const MESSAGES: usize = 200;
    let region = Region::new(GLOBAL);
    for _ in 0..MESSAGES {
        let outcome = run(client.send_mail("a@example.com", &to, BODY)).expect("send");
        assert_eq!(outcome.recipients.len(), 3);
    }
    let stats = region.change();
    let per_message = stats.allocations as f64 / MESSAGES as f64;
    let bytes_per_message = stats.bytes_allocated as f64 / MESSAGES as f64;
    println!("allocations per message: {per_message:.1}, bytes: {bytes_per_message:.0}");

    // What a message must allocate: the validated envelope (sender, 3 recipients, their Vec) and
    // the outcome handed to the caller (its Vec, 4 replies' text, the queue id). Everything else
    // (command buffers, the reply parser, the body encoder) is reused. A regression that
    // allocates per command or per chunk pushes this well past the bound.
    assert!(per_message <= 24.0, "{per_message} allocations per message");
    // No buffer is re-grown per message: bytes stay far below the message size times a few.
    assert!(
        bytes_per_message < 4096.0,
        "{bytes_per_message} bytes allocated per message"
    );
    run(client.quit()).expect("quit");
}
