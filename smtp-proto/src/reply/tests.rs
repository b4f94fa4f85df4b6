//! Tests of the `reply` module.

use super::*;
use crate::body::tests::split;
use proptest::prelude::*;

fn code(n: u16) -> ReplyCode {
    ReplyCode::new(n).unwrap()
}

#[test]
fn wire_lines_give_each_line_its_code_and_separator() {
    let multi = Reply::new(code(250), None, "mx greets you\nPIPELINING\nSIZE 10");
    let lines: Vec<String> = multi.wire_lines().map(|l| l.to_string()).collect();
    assert_eq!(
        lines,
        ["250-mx greets you", "250-PIPELINING", "250 SIZE 10"]
    );
    let enhanced = Reply::new(
        code(550),
        Some(EnhancedCode {
            class: 5,
            subject: 1,
            detail: 1,
        }),
        "no such user\ntry again",
    );
    let lines: Vec<String> = enhanced.wire_lines().map(|l| l.to_string()).collect();
    assert_eq!(lines, ["550-5.1.1 no such user", "550 5.1.1 try again"]);
    let empty = Reply::new(code(354), None, "");
    let lines: Vec<String> = empty.wire_lines().map(|l| l.to_string()).collect();
    assert_eq!(lines, ["354 "]);
}

fn reply(n: u16, enhanced: Option<(u8, u16, u16)>, text: &str) -> Reply {
    Reply::new(
        code(n),
        enhanced.map(|(class, subject, detail)| EnhancedCode {
            class,
            subject,
            detail,
        }),
        text,
    )
}

/// Push every chunk fully, collecting replies; checks the `consumed` contract on the way.
fn parse_chunks<'a>(
    parser: &mut ReplyParser,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<Reply>, ReplyError> {
    let mut out = Vec::new();
    for mut chunk in chunks {
        while !chunk.is_empty() {
            let pushed = parser.push(chunk)?;
            assert!(pushed.consumed > 0 && pushed.consumed <= chunk.len());
            if pushed.reply.is_none() {
                assert_eq!(pushed.consumed, chunk.len());
            }
            chunk = &chunk[pushed.consumed..];
            out.extend(pushed.reply);
        }
    }
    Ok(out)
}

fn parse_all(input: &[u8]) -> Result<Vec<Reply>, ReplyError> {
    parse_chunks(&mut ReplyParser::default(), [input])
}

/// Each input parses to one reply: the one paired with it.
#[track_caller]
fn assert_parses(cases: &[(&[u8], Reply)]) {
    for (input, expected) in cases {
        let parsed = parse_one(input).unwrap();
        assert_eq!(&parsed, expected, "{:?}", String::from_utf8_lossy(input));
    }
}

fn parse_one(input: &[u8]) -> Result<Reply, ReplyError> {
    let mut parser = ReplyParser::default();
    let pushed = parser.push(input)?;
    assert_eq!(pushed.consumed, input.len(), "one reply expected");
    assert!(parser.is_idle());
    Ok(pushed.reply.expect("a complete reply"))
}

fn error_of(input: &[u8]) -> ReplyError {
    parse_all(input).expect_err("an error")
}

fn small_limits() -> ReplyLimits {
    ReplyLimits {
        max_line_len: 32,
        max_lines: 4,
        max_reply_bytes: 100,
    }
}

#[test]
fn single_line() {
    let r = parse_one(b"220 mx.example ESMTP ready\r\n").unwrap();
    assert_eq!(r, reply(220, None, "mx.example ESMTP ready"));
    assert!(!r.is_multiline());
    assert_eq!(r.first_line(), "mx.example ESMTP ready");
    assert_eq!(r.to_string(), "220 mx.example ESMTP ready");
}

#[test]
fn multi_line() {
    let r = parse_one(b"250-mx.example\r\n250-PIPELINING\r\n250-\r\n250 SIZE 100\r\n").unwrap();
    assert_eq!(r, reply(250, None, "mx.example\nPIPELINING\n\nSIZE 100"));
    assert!(r.is_multiline());
    assert_eq!(
        r.lines().collect::<Vec<_>>(),
        ["mx.example", "PIPELINING", "", "SIZE 100"]
    );
    assert_eq!(r.first_line(), "mx.example");
}

#[test]
fn code_alone_is_a_final_line_with_empty_text() {
    assert_parses(&[
        (&b"250\r\n"[..], reply(250, None, "")),
        (&b"250 \r\n"[..], reply(250, None, "")),
        (&b"250-a\r\n250\r\n"[..], reply(250, None, "a\n")),
        (&b"354\n"[..], reply(354, None, "")),
    ]);
}

#[test]
fn bare_lf_and_lone_cr() {
    assert_parses(&[
        (&b"250-a\n250-b\r\n250 c\n"[..], reply(250, None, "a\nb\nc")),
        // A CR not followed by LF is text; only the CR just before LF is dropped.
        (&b"250 a\rb\r\r\n"[..], reply(250, None, "a\rb\r")),
    ]);
    // The CR before the LF is dropped even when split from it.
    let mut p = ReplyParser::default();
    let replies = parse_chunks(&mut p, [&b"250 ok\r"[..], b"\n"]).unwrap();
    assert_eq!(replies, [reply(250, None, "ok")]);
}

#[test]
fn consumed_stops_after_the_first_reply() {
    let input = b"250 one\r\n251-two\r\n251 two\r\n354 go\r\n";
    let mut p = ReplyParser::default();
    let pushed = p.push(input).unwrap();
    assert_eq!(pushed.consumed, 9);
    assert_eq!(pushed.reply, Some(reply(250, None, "one")));
    assert!(p.is_idle());
    let pushed = p.push(&input[9..]).unwrap();
    assert_eq!(pushed.consumed, 18);
    assert_eq!(pushed.reply, Some(reply(251, None, "two\ntwo")));
    let pushed = p.push(&input[27..]).unwrap();
    assert_eq!(pushed.consumed, 8);
    assert_eq!(pushed.reply, Some(reply(354, None, "go")));
    assert_eq!(
        p.push(b"").unwrap(),
        Pushed {
            consumed: 0,
            reply: None
        }
    );
    assert!(p.is_idle());
}

#[test]
fn partial_input_is_held_and_not_idle() {
    let mut p = ReplyParser::default();
    assert!(p.is_idle());
    let pushed = p.push(b"25").unwrap();
    assert_eq!(
        pushed,
        Pushed {
            consumed: 2,
            reply: None
        }
    );
    assert!(!p.is_idle());
    p.reset();
    assert!(p.is_idle());
    // A completed continuation line alone also makes the parser non-idle.
    assert_eq!(p.push(b"250-a\r\n").unwrap().reply, None);
    assert!(!p.is_idle());
    p.reset();
    assert!(p.is_idle());
    // After reset, the forgotten part is not glued to the next reply.
    assert_eq!(
        p.push(b"221 bye\r\n").unwrap().reply,
        Some(reply(221, None, "bye"))
    );
}

const STREAM: &[u8] = b"220-mx.example ESMTP\r\n220 2.0.0 ready\r\n\
        250-mx.example\r\n250-PIPELINING\n250-SIZE 1000\r\n250 8BITMIME\r\n\
        550-5.1.1 no such user\r\n550 5.1.1 really\r\n354\r\n421 4.4.2 a\rb bye\r\n";

fn stream_expected() -> Vec<Reply> {
    vec![
        reply(220, None, "mx.example ESMTP\nready"),
        reply(250, None, "mx.example\nPIPELINING\nSIZE 1000\n8BITMIME"),
        reply(550, Some((5, 1, 1)), "no such user\nreally"),
        reply(354, None, ""),
        reply(421, Some((4, 4, 2)), "a\rb bye"),
    ]
}

#[test]
fn every_split_gives_the_same_replies() {
    let expected = stream_expected();
    assert_eq!(parse_all(STREAM).unwrap(), expected);
    // One byte at a time.
    let mut p = ReplyParser::default();
    assert_eq!(parse_chunks(&mut p, STREAM.chunks(1)).unwrap(), expected);
    assert!(p.is_idle());
    // Every two-way split, with one reused parser.
    for at in 0..=STREAM.len() {
        let (a, b) = STREAM.split_at(at);
        assert_eq!(
            parse_chunks(&mut p, [a, b]).unwrap(),
            expected,
            "split at {at}"
        );
        assert!(p.is_idle());
    }
    // Every three-way split with a fresh parser for a shorter stream.
    let short = &STREAM[..60];
    let want = parse_all(short).unwrap();
    for i in 0..=short.len() {
        for j in i..=short.len() {
            let mut p = ReplyParser::default();
            let got = parse_chunks(&mut p, [&short[..i], &short[i..j], &short[j..]]).unwrap();
            assert_eq!(got, want, "splits at {i}, {j}");
        }
    }
}

#[test]
fn enhanced_codes_are_parsed_and_stripped() {
    let r = parse_one(b"250 2.1.0 Ok\r\n").unwrap();
    assert_eq!(r, reply(250, Some((2, 1, 0)), "Ok"));
    assert_eq!(r.to_string(), "250 2.1.0 Ok");
    // Stripped from every line carrying one; taken from the first.
    let r = parse_one(b"550-5.7.1 first\r\n550-5.7.2 second\r\n550 plain\r\n").unwrap();
    assert_eq!(r, reply(550, Some((5, 7, 1)), "first\nsecond\nplain"));
    assert_parses(&[
        // Code followed by the end of the line.
        (&b"250 2.0.0\r\n"[..], reply(250, Some((2, 0, 0)), "")),
        // Three-digit subject and detail.
        (
            &b"451 4.123.999 later\r\n"[..],
            reply(451, Some((4, 123, 999)), "later"),
        ),
        // Only one following space is removed.
        (
            &b"250 2.0.0  two spaces\r\n"[..],
            reply(250, Some((2, 0, 0)), " two spaces"),
        ),
        // A later line's code does not set `enhanced` when the first line has none.
        (
            &b"250-hello\r\n250 2.0.0 ok\r\n"[..],
            reply(250, None, "hello\nok"),
        ),
    ]);
}

#[test]
fn enhanced_codes_not_recognised() {
    assert_parses(&[
        // Class differs from the reply code's first digit.
        (&b"554 2.0.0 ready\r\n"[..], reply(554, None, "2.0.0 ready")),
        (&b"354 3.0.0 go\r\n"[..], reply(354, None, "3.0.0 go")),
    ]);
    for text in [
        "2.0 ready",
        "2.0.0ok",
        "2.0.0.0 x",
        "2.1234.0 x",
        "2.0.1234 x",
        "2..0 x",
        "2.0. x",
        "x2.0.0 x",
        " 2.0.0 x",
        "2.0.0\tx",
    ] {
        let line = format!("250 {text}\r\n");
        assert_eq!(
            parse_one(line.as_bytes()).unwrap(),
            reply(250, None, text),
            "{text:?}"
        );
    }
}

#[test]
fn invalid_codes() {
    for line in [
        &b"099 x\r\n"[..],
        b"600 x\r\n",
        b"199 x\r\n",
        b"260 x\r\n",
        b"2x0 x\r\n",
        b"-25 x\r\n",
        b"25\r\n",
        b"2\r\n",
        b"\r\n",
        b"\n",
        b"hello there\r\n",
        b"\xff\xfe\xfd x\r\n",
    ] {
        assert_eq!(error_of(line), ReplyError::BadCode, "{line:?}");
    }
    // A bad continuation line is refused too.
    assert_eq!(error_of(b"250-ok\r\n25x ok\r\n"), ReplyError::BadCode);
}

#[test]
fn separators() {
    for line in [
        &b"250_x\r\n"[..],
        b"2500 x\r\n",
        b"250\tx\r\n",
        b"250x\r\n",
        b"250\rx\r\n",
    ] {
        assert_eq!(error_of(line), ReplyError::BadSeparator, "{line:?}");
    }
}

#[test]
fn inconsistent_codes() {
    assert_eq!(
        error_of(b"250-a\r\n251 b\r\n"),
        ReplyError::InconsistentCode {
            first: 250,
            found: 251
        }
    );
    assert_eq!(
        error_of(b"220-mx\r\n220-mx\r\n250 ok\r\n"),
        ReplyError::InconsistentCode {
            first: 220,
            found: 250
        }
    );
}

#[test]
fn non_utf8_text_is_replaced() {
    let r = parse_one(b"250-caf\xc3\xa9\r\n250 bad \xff\xfe end\r\n").unwrap();
    assert_eq!(r.text(), "caf\u{e9}\nbad \u{fffd}\u{fffd} end");
    assert_eq!(parse_one(b"250 \x80\r\n").unwrap().text(), "\u{fffd}");
}

#[test]
fn errors_are_sticky_until_reset() {
    let mut p = ReplyParser::default();
    assert_eq!(p.push(b"hello\r\n"), Err(ReplyError::BadCode));
    assert!(!p.is_idle());
    assert_eq!(p.push(b"250 ok\r\n"), Err(ReplyError::BadCode));
    p.reset();
    assert!(p.is_idle());
    assert_eq!(
        p.push(b"250 ok\r\n").unwrap().reply,
        Some(reply(250, None, "ok"))
    );
}

#[test]
fn line_length_limit_is_exact() {
    let limits = small_limits();
    // 32 bytes including CRLF is accepted.
    let ok = format!("250 {}\r\n", "a".repeat(26));
    assert_eq!(ok.len(), 32);
    let mut p = ReplyParser::new(limits);
    assert!(p.push(ok.as_bytes()).unwrap().reply.is_some());
    // Byte by byte as well.
    assert_eq!(
        parse_chunks(&mut p, ok.as_bytes().chunks(1)).unwrap().len(),
        1
    );
    // 33 bytes is refused, whole or split.
    let long = format!("250 {}\r\n", "a".repeat(27));
    let mut p = ReplyParser::new(limits);
    assert_eq!(
        p.push(long.as_bytes()),
        Err(ReplyError::LineTooLong { limit: 32 })
    );
    for at in 0..long.len() {
        let mut p = ReplyParser::new(limits);
        let (a, b) = long.as_bytes().split_at(at);
        assert_eq!(
            parse_chunks(&mut p, [a, b]),
            Err(ReplyError::LineTooLong { limit: 32 }),
            "split at {at}"
        );
    }
    // Without any line end, the error comes once 32 bytes are held (no room for the LF).
    let mut p = ReplyParser::new(limits);
    assert!(p.push(&[b'a'; 31]).is_ok());
    assert_eq!(p.push(b"a"), Err(ReplyError::LineTooLong { limit: 32 }));
}

#[test]
fn huge_line_without_newline_is_refused_early() {
    let limits = ReplyLimits::default();
    let mut p = ReplyParser::new(limits);
    p.push(b"220-").unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut error = None;
    for _ in 0..160 {
        match p.push(&chunk) {
            Ok(pushed) => assert_eq!(pushed.consumed, chunk.len()),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
        assert!(p.buffered_capacity() < 2 * limits.max_line_len);
    }
    assert_eq!(
        error,
        Some(ReplyError::LineTooLong {
            limit: limits.max_line_len
        })
    );
    assert!(p.buffered_capacity() < 2 * limits.max_line_len);

    // Small pieces: the error comes as soon as the limit is passed.
    let mut p = ReplyParser::new(limits);
    let mut fed = 0;
    let piece = [b'a'; 100];
    let error = loop {
        match p.push(&piece) {
            Ok(_) => fed += piece.len(),
            Err(e) => break e,
        }
        assert!(p.buffered_capacity() < 2 * limits.max_line_len);
    };
    assert_eq!(error, ReplyError::LineTooLong { limit: 4096 });
    assert!(fed < limits.max_line_len);
}

#[test]
fn too_many_lines() {
    let mut p = ReplyParser::new(small_limits());
    assert!(
        p.push(b"250-1\r\n250-2\r\n250-3\r\n250 4\r\n")
            .unwrap()
            .reply
            .is_some()
    );
    assert_eq!(
        p.push(b"250-1\r\n250-2\r\n250-3\r\n250-4\r\n250 5\r\n"),
        Err(ReplyError::TooManyLines { limit: 4 })
    );

    let limits = ReplyLimits::default();
    let mut p = ReplyParser::new(limits);
    let mut error = None;
    for i in 0..100_000 {
        match p.push(b"220-more\r\n") {
            Ok(pushed) => assert!(pushed.reply.is_none()),
            Err(e) => {
                assert_eq!(i, limits.max_lines, "error on the first extra line");
                error = Some(e);
                break;
            }
        }
    }
    assert_eq!(error, Some(ReplyError::TooManyLines { limit: 256 }));
    assert!(p.buffered_capacity() <= 2 * 256 * 10);
}

#[test]
fn reply_size_limit() {
    let limits = ReplyLimits {
        max_line_len: 32,
        max_lines: 100,
        max_reply_bytes: 100,
    };
    // 8 lines of 11 bytes and one of 12: exactly 100 bytes is accepted.
    let mut exact = b"250-12345\r\n".repeat(8);
    exact.extend_from_slice(b"250 123456\r\n");
    assert_eq!(exact.len(), 100);
    // 10 lines of 12 bytes: 120 bytes is refused.
    let mut big = b"250-123456\r\n".repeat(9);
    big.extend_from_slice(b"250 123456\r\n");
    let big = &big[..];
    let mut p = ReplyParser::new(limits);
    assert_eq!(parse_chunks(&mut p, [&exact[..]]).unwrap().len(), 1);
    assert_eq!(parse_chunks(&mut p, exact.chunks(7)).unwrap().len(), 1);
    // 120 bytes is refused, whole or split.
    assert_eq!(big.len(), 120);
    assert_eq!(p.push(big), Err(ReplyError::TooLarge { limit: 100 }));
    for at in 0..big.len() {
        let mut p = ReplyParser::new(limits);
        let (a, b) = big.split_at(at);
        assert_eq!(
            parse_chunks(&mut p, [a, b]),
            Err(ReplyError::TooLarge { limit: 100 }),
            "split at {at}"
        );
    }
    // A partial line that cannot fit is refused before its line end arrives.
    let mut p = ReplyParser::new(limits);
    let head = b"250-12345678901234567890123456\r\n".repeat(3); // 96 bytes
    assert!(p.push(&head).unwrap().reply.is_none());
    assert!(p.push(b"250").is_ok()); // 99 bytes held; one more (LF) would fit
    assert_eq!(p.push(b" "), Err(ReplyError::TooLarge { limit: 100 }));
}

#[test]
fn warm_parser_keeps_its_buffers() {
    let mut p = ReplyParser::default();
    let input = b"250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n";
    parse_chunks(&mut p, input.chunks(5)).unwrap();
    let capacity = p.buffered_capacity();
    assert!(capacity > 0);
    for _ in 0..10 {
        parse_chunks(&mut p, input.chunks(5)).unwrap();
        assert_eq!(p.buffered_capacity(), capacity);
    }
    p.reset();
    assert_eq!(p.buffered_capacity(), capacity);
}

#[test]
fn limits_and_default() {
    let p = ReplyParser::default();
    assert_eq!(p.limits(), ReplyLimits::default());
    assert_eq!(ReplyParser::new(small_limits()).limits(), small_limits());
}

/// A generated reply: code, enhanced code, line texts (none starting with a digit, so no text
/// looks like an enhanced code), and whether each line ends with a bare LF.
#[derive(Debug, Clone)]
struct Generated {
    code: u16,
    enhanced: Option<(u16, u16)>,
    lines: Vec<(String, bool)>,
    bare_code_last: bool,
}

impl Generated {
    fn wire(&self, out: &mut Vec<u8>) {
        let n = self.lines.len();
        for (i, (text, bare_lf)) in self.lines.iter().enumerate() {
            let last = i + 1 == n;
            out.extend_from_slice(self.code.to_string().as_bytes());
            if last && self.bare_code_last && text.is_empty() && self.enhanced.is_none() {
                // `250\r\n`
            } else {
                out.push(if last { b' ' } else { b'-' });
                if let Some((s, d)) = self.enhanced {
                    out.extend_from_slice(format!("{}.{s}.{d}", self.code / 100).as_bytes());
                    if !text.is_empty() {
                        out.push(b' ');
                    }
                }
                out.extend_from_slice(text.as_bytes());
            }
            out.extend_from_slice(if *bare_lf { b"\n" } else { b"\r\n" });
        }
    }

    fn expected(&self) -> Reply {
        let text: Vec<&str> = self.lines.iter().map(|(t, _)| t.as_str()).collect();
        Reply::new(
            code(self.code),
            self.enhanced.map(|(subject, detail)| EnhancedCode {
                class: (self.code / 100) as u8,
                subject,
                detail,
            }),
            text.join("\n"),
        )
    }
}

fn generated() -> impl Strategy<Value = Generated> {
    (
        2u16..=5,
        0u16..=5,
        0u16..=9,
        proptest::option::of((0u16..=999, 0u16..=999)),
        proptest::collection::vec(("([a-zA-Z][ -~]{0,20})?", any::<bool>()), 1..5),
        any::<bool>(),
    )
        .prop_map(|(a, b, c, enhanced, lines, bare_code_last)| {
            let code = a * 100 + b * 10 + c;
            Generated {
                code,
                // Only classes 2, 4 and 5 carry enhanced codes.
                enhanced: if matches!(a, 2 | 4 | 5) {
                    enhanced
                } else {
                    None
                },
                lines,
                bare_code_last,
            }
        })
}

proptest! {
    #[test]
    fn any_chunking_gives_the_same_replies(
        replies in proptest::collection::vec(generated(), 1..6),
        cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..10),
    ) {
        let mut wire = Vec::new();
        for r in &replies {
            r.wire(&mut wire);
        }
        let expected: Vec<Reply> = replies.iter().map(Generated::expected).collect();
        prop_assert_eq!(&parse_all(&wire).unwrap(), &expected);

        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        let chunks = split(&wire, &cuts);
        let mut p = ReplyParser::default();
        prop_assert_eq!(&parse_chunks(&mut p, chunks).unwrap(), &expected);
        prop_assert!(p.is_idle());
        prop_assert_eq!(&parse_chunks(&mut p, wire.chunks(1)).unwrap(), &expected);
    }

    #[test]
    fn random_bytes_never_panic(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8),
        with_prefix in any::<bool>(),
    ) {
        let mut p = ReplyParser::new(small_limits());
        if with_prefix {
            let _ = p.push(b"250-");
        }
        for chunk in &chunks {
            let mut chunk = &chunk[..];
            while !chunk.is_empty() {
                match p.push(chunk) {
                    Ok(pushed) => {
                        prop_assert!(pushed.consumed > 0 && pushed.consumed <= chunk.len());
                        chunk = &chunk[pushed.consumed..];
                    }
                    Err(_) => {
                        p.reset();
                        prop_assert!(p.is_idle());
                        chunk = &chunk[1..];
                    }
                }
                prop_assert!(p.buffered_capacity() <= 4 * 100);
            }
        }
    }

    #[test]
    fn random_reply_like_lines_never_panic(
        lines in proptest::collection::vec("[0-9]{0,4}[- ]?[0-9.]{0,8}[ a-z\r]{0,5}\r?\n?", 0..8),
    ) {
        let wire: Vec<u8> = lines.concat().into_bytes();
        let whole = parse_all(&wire);
        let mut p = ReplyParser::default();
        let bytewise = parse_chunks(&mut p, wire.chunks(1));
        prop_assert_eq!(whole, bytewise);
    }
}
