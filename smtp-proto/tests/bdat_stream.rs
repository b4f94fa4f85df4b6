//! A 10 MiB body streamed over CHUNKING, 8 KiB read at a time, through the whole client: how
//! many BDAT commands (and so server replies) it costs, and that the server gets every byte.
//!
//! Before the engine gathered streamed chunks, each 8 KiB read became its own `BDAT`: 1,280
//! chunks plus an empty `BDAT 0 LAST`, 1,281 replies. Now chunks are 256 KiB and the last data
//! chunk carries `LAST`: 40 replies.

use std::collections::VecDeque;

use smtp_proto::{SliceBody, SmtpClient};

mod support;
use support::{InMemory, Server, run};

/// A CHUNKING server in memory: parses BDAT framing, counts chunks, keeps the body.
#[derive(Default)]
struct ChunkingServer {
    input: Vec<u8>,
    /// Bytes of the current BDAT chunk still to come.
    chunk_left: usize,
    chunks: Vec<(usize, bool)>,
    body: Vec<u8>,
}

impl ChunkingServer {
    fn connect() -> InMemory<ChunkingServer> {
        InMemory::new(ChunkingServer::default(), b"220 chunky.test ESMTP\r\n", 0)
    }

    fn take_input(&mut self, replies: &mut VecDeque<u8>) {
        loop {
            if self.chunk_left > 0 {
                let n = self.chunk_left.min(self.input.len());
                self.body.extend(self.input.drain(..n));
                self.chunk_left -= n;
                if n == 0 {
                    return;
                }
                continue;
            }
            let Some(end) = self.input.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let line: Vec<u8> = self.input.drain(..end + 2).collect();
            let line = String::from_utf8(line).unwrap();
            let reply = if line.starts_with("EHLO") {
                "250-chunky.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n"
            } else if let Some(rest) = line.strip_prefix("BDAT ") {
                let mut words = rest.split_whitespace();
                let size: usize = words.next().unwrap().parse().unwrap();
                let last = words.next() == Some("LAST");
                self.chunks.push((size, last));
                self.chunk_left = size;
                if last {
                    "250 2.0.0 queued as BIG\r\n"
                } else {
                    "250 2.0.0 chunk ok\r\n"
                }
            } else if line.starts_with("QUIT") {
                "221 bye\r\n"
            } else {
                "250 ok\r\n"
            };
            replies.extend(reply.as_bytes());
        }
    }
}

impl Server for ChunkingServer {
    fn written(&mut self, bytes: &[u8], replies: &mut VecDeque<u8>) {
        self.input.extend_from_slice(bytes);
        self.take_input(replies);
    }
}

#[test]
fn a_10_mib_stream_costs_40_bdat_replies_and_arrives_whole() {
    let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    let body: Vec<u8> = line.repeat((10 << 20) / line.len());
    let (server, outcome) = run(async {
        let mut client = SmtpClient::connect(ChunkingServer::connect(), "client.test")
            .await
            .unwrap();
        let mut stream = SliceBody::new(&body).with_chunk_size(8 * 1024);
        let outcome = client
            .send_mail_stream("a@x.test", &["b@y.test"], &mut stream)
            .await
            .unwrap();
        (client, outcome)
    });
    let server = &server.transport().server;
    assert_eq!(outcome.queue_id.as_deref(), Some("BIG"));
    // The body ends with CRLF: it arrives byte for byte.
    assert_eq!(server.body.len(), body.len());
    assert!(server.body == body);
    assert_eq!(server.chunks.len(), 40, "one reply per 256 KiB");
    assert!(
        server.chunks[..39]
            .iter()
            .all(|&c| c == (256 * 1024, false))
    );
    assert_eq!(
        server.chunks[39],
        (body.len() - 39 * 256 * 1024, true),
        "the last data chunk carries LAST"
    );
}
