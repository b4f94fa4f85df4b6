//! EHLO capability parsing on a real-looking reply and on a hostile one: a 62 KB reply (within the
//! default `ReplyLimits`) whose AUTH lines list 15,500 distinct mechanism names. The hostile case
//! must cost about as much per byte as the ordinary one (it was quadratic: 0.55 s per parse).
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use smtp_proto::{Capabilities, Reply, ReplyLimits, ReplyParser};

const EHLO: &[u8] = b"250-mx.example.com Hello client.example.org [192.0.2.7]\r\n\
250-SIZE 52428800\r\n250-8BITMIME\r\n250-PIPELINING\r\n250-PIPE_CONNECT\r\n\
250-AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER\r\n250-CHUNKING\r\n250-DSN\r\n\
250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-REQUIRETLS\r\n250 HELP\r\n";

/// The `n`th distinct three-character mechanism name (`AAA`, `AAB`, ...; 36^3 of them).
fn name(mut n: usize, out: &mut Vec<u8>) {
    const DIGITS: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut buf = [0u8; 3];
    for b in buf.iter_mut().rev() {
        *b = DIGITS[n % 36];
        n /= 36;
    }
    out.extend_from_slice(&buf);
}

/// `250-AUTH` lines of 1,000 names each (about 4 KB, under the default line limit), `names` in
/// all, every one distinct, then a last line.
fn hostile_ehlo(names: usize) -> Vec<u8> {
    let mut wire = b"250-mx.example.com\r\n".to_vec();
    for line in 0..names.div_ceil(1000) {
        wire.extend_from_slice(b"250-AUTH");
        for n in line * 1000..((line + 1) * 1000).min(names) {
            wire.push(b' ');
            name(n, &mut wire);
        }
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"250 AUTH PLAIN\r\n");
    wire
}

/// Parse `wire` as one reply with the default limits (the hostile reply fits in them).
fn parse(wire: &[u8]) -> Reply {
    let pushed = ReplyParser::new(ReplyLimits::default())
        .push(wire)
        .expect("within the default limits");
    assert_eq!(pushed.consumed, wire.len());
    pushed.reply.expect("one whole reply")
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("ehlo");
    let hostile = hostile_ehlo(15_500);
    for (label, wire) in [
        ("ehlo_12_lines", EHLO),
        ("hostile_auth_15500_names", &hostile[..]),
    ] {
        let reply = parse(wire);
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("capabilities", label),
            &reply,
            |b, reply| b.iter(|| black_box(Capabilities::from_ehlo(black_box(reply)))),
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
