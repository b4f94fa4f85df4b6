//! Any body in any chunking: the DATA stream has no bare CR or LF, ends with the only
//! end-of-data sequence, and un-stuffs to the CRLF-normalised body.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use smtp_proto::body::{DotStuffer, LineNormalizer, normalized_len};

fuzz_target!(|data: &[u8]| {
    let Some((&step, body)) = data.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    let mut stuffer = DotStuffer::new();
    let mut normalizer = LineNormalizer::new();
    let (mut wire, mut plain) = (BytesMut::new(), BytesMut::new());
    for chunk in body.chunks(step) {
        stuffer.encode(chunk, &mut wire);
        normalizer.encode(chunk, &mut plain);
    }
    stuffer.finish(&mut wire);
    normalizer.finish(&mut plain);
    assert_eq!(plain.len() as u64, normalized_len(body));

    let mut framed = b"\r\n".to_vec();
    framed.extend_from_slice(&wire);
    let first_end = framed.windows(5).position(|w| w == b"\r\n.\r\n");
    assert_eq!(first_end, Some(framed.len() - 5));

    let content = &wire[..wire.len() - 3];
    let mut unstuffed = Vec::new();
    for line in content.split_inclusive(|&b| b == b'\n') {
        unstuffed.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    assert_eq!(unstuffed, &plain[..]);
});
