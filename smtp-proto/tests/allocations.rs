//! Counts heap allocations per message in a warm session, through the whole client: envelope,
//! pipelined commands, reply parsing, dot-stuffing, outcome.
//!
//! The server is an in-memory fake that answers each command without allocating, so every
//! allocation counted is the client's.

use std::alloc::System;
use std::collections::VecDeque;

use smtp_proto::SmtpClient;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

mod support;
use support::{InMemory, Server, run};

/// A fake server: replies to each complete command line (and to the end of DATA) at once.
struct FakeServer {
    line: Vec<u8>,
    in_data: bool,
}

impl FakeServer {
    fn connect() -> InMemory<FakeServer> {
        let server = FakeServer {
            line: Vec::with_capacity(64 * 1024),
            in_data: false,
        };
        InMemory::new(server, b"220 fake.test ESMTP\r\n", 64 * 1024)
    }

    fn answer(&mut self) -> &'static [u8] {
        if self.in_data {
            if self.line == b".\r\n" {
                self.in_data = false;
                b"250 2.0.0 Ok: queued as ABC123\r\n"
            } else {
                b""
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
        }
    }
}

impl Server for FakeServer {
    fn written(&mut self, bytes: &[u8], replies: &mut VecDeque<u8>) {
        for &b in bytes {
            self.line.push(b);
            if b == b'\n' {
                replies.extend(self.answer());
                self.line.clear();
            }
        }
    }
}

const BODY: &str = "From: a@example.com\r\nTo: b@example.org\r\nSubject: allocations\r\n\r\n\
Hello,\r\n.a line that needs stuffing\r\nand a bare LF\nbye\r\n";

#[test]
fn a_warm_session_allocates_a_small_constant_per_message() {
    let mut client =
        run(SmtpClient::connect(FakeServer::connect(), "client.test")).expect("connect");
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
