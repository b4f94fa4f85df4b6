//! The DATA encoder against a plain copy of the same bytes, so the ratio shows what dot-stuffing
//! and CRLF normalisation cost.
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use smtp_proto::body::{DotStuffer, LineNormalizer, normalized_len};

/// A text message of about `size` bytes: 76-character lines, CRLF endings, with `dots` every
/// 20th line starting with a dot.
fn text_body(size: usize, dots: bool) -> Vec<u8> {
    let mut body = Vec::with_capacity(size + 80);
    let mut n = 0u32;
    while body.len() < size {
        if dots && n % 20 == 0 {
            body.push(b'.');
        }
        body.extend((0..74).map(|i| b'a' + ((i + n) % 26) as u8));
        body.extend_from_slice(b"\r\n");
        n += 1;
    }
    body
}

/// The same text with bare LF line endings (every line needs fixing).
fn lf_body(size: usize) -> Vec<u8> {
    let mut body = text_body(size, true);
    body.retain(|&b| b != b'\r');
    body
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("body");
    for (name, body) in [
        ("crlf_1MiB", text_body(1 << 20, true)),
        ("crlf_no_dots_1MiB", text_body(1 << 20, false)),
        ("bare_lf_1MiB", lf_body(1 << 20)),
    ] {
        group.throughput(Throughput::Bytes(body.len() as u64));
        let mut out = BytesMut::with_capacity(body.len() * 2);
        group.bench_with_input(BenchmarkId::new("memcpy", name), &body, |b, body| {
            b.iter(|| {
                out.clear();
                out.extend_from_slice(black_box(body));
                black_box(out.len())
            })
        });
        // The two encoders have the same methods and no common trait.
        macro_rules! bench_8kib_chunks {
            ($id:literal, $encoder:expr) => {
                group.bench_with_input(BenchmarkId::new($id, name), &body, |b, body| {
                    let mut encoder = $encoder;
                    b.iter(|| {
                        out.clear();
                        for chunk in black_box(body).chunks(8 * 1024) {
                            encoder.encode(chunk, &mut out);
                        }
                        encoder.finish(&mut out);
                        black_box(out.len())
                    })
                })
            };
        }
        bench_8kib_chunks!("dot_stuffer_8KiB_chunks", DotStuffer::new());
        bench_8kib_chunks!("line_normalizer_8KiB_chunks", LineNormalizer::new());
        group.bench_with_input(
            BenchmarkId::new("normalized_len", name),
            &body,
            |b, body| b.iter(|| normalized_len(black_box(body))),
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
