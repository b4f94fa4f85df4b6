//! The reply parser on what servers really send: one-line replies, a long EHLO reply, and a
//! pipelined burst, whole and split into small reads; a plain copy of the same bytes beside it.
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use smtp_proto::{ReplyLimits, ReplyParser};

const EHLO: &[u8] = b"250-mx.example.com Hello client.example.org [192.0.2.7]\r\n\
250-SIZE 52428800\r\n250-8BITMIME\r\n250-PIPELINING\r\n250-PIPE_CONNECT\r\n\
250-AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER\r\n250-CHUNKING\r\n250-DSN\r\n\
250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-REQUIRETLS\r\n250 HELP\r\n";

fn pipelined_burst() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(b"250 2.1.0 Ok\r\n");
    for _ in 0..50 {
        v.extend_from_slice(b"250 2.1.5 Ok\r\n");
    }
    v.extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
    v
}

/// Parse every reply in `input`, fed in reads of `read` bytes; returns the number of replies.
fn parse_all(parser: &mut ReplyParser, input: &[u8], read: usize) -> usize {
    let mut n = 0;
    for mut chunk in input.chunks(read) {
        while !chunk.is_empty() {
            let pushed = parser.push(chunk).expect("valid replies");
            chunk = &chunk[pushed.consumed..];
            if let Some(reply) = pushed.reply {
                black_box(reply);
                n += 1;
            }
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("reply");
    let burst = pipelined_burst();
    for (name, input) in [
        (
            "single_line",
            &b"250 2.0.0 Ok: queued as 4Xk2Lq0Zs9z1\r\n"[..],
        ),
        ("ehlo_12_lines", EHLO),
        ("pipelined_52_replies", &burst),
    ] {
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_with_input(BenchmarkId::new("memcpy", name), input, |b, input| {
            let mut out = Vec::with_capacity(input.len());
            b.iter(|| {
                out.clear();
                out.extend_from_slice(black_box(input));
                black_box(out.len())
            })
        });
        for read in [usize::MAX, 7] {
            let label = if read == usize::MAX {
                "parse_one_read"
            } else {
                "parse_7_byte_reads"
            };
            group.bench_with_input(BenchmarkId::new(label, name), input, |b, input| {
                let mut parser = ReplyParser::new(ReplyLimits::default());
                b.iter(|| parse_all(&mut parser, black_box(input), read.min(input.len())))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
