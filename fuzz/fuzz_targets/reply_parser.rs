//! Arbitrary server bytes, split at an arbitrary point: the parser never panics, the split never
//! changes the replies, and nothing it holds grows past its limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::{Reply, ReplyError, ReplyLimits, ReplyParser};

fn parse(chunks: &[&[u8]], limits: ReplyLimits) -> (Vec<Reply>, Option<ReplyError>) {
    let mut parser = ReplyParser::new(limits);
    let mut replies = Vec::new();
    for chunk in chunks {
        let mut rest = *chunk;
        while !rest.is_empty() {
            match parser.push(rest) {
                Ok(p) => {
                    assert!(p.consumed <= rest.len());
                    rest = &rest[p.consumed..];
                    match p.reply {
                        Some(r) => replies.push(r),
                        None => assert!(rest.is_empty(), "bytes left without a reply"),
                    }
                }
                Err(e) => return (replies, Some(e)),
            }
        }
    }
    (replies, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let mut limits = ReplyLimits::default();
    limits.max_line_len = 128;
    limits.max_lines = 8;
    limits.max_reply_bytes = 512;
    let at = (split as usize).min(data.len());
    let whole = parse(&[data], limits);
    let split = parse(&[&data[..at], &data[at..]], limits);
    assert_eq!(whole, split);
    for reply in &whole.0 {
        // Invalid UTF-8 bytes become U+FFFD (3 bytes): the text is at most 3x the bytes held.
        assert!(reply.text().len() <= 3 * limits.max_reply_bytes);
    }
});
