//! Tests of the `command` module.

use super::*;
use proptest::prelude::*;

/// The line `cmd` writes; also checks that `encoded_len` predicts its length exactly.
fn line(cmd: Command<'_>) -> String {
    let mut out = BytesMut::new();
    cmd.write_to(&mut out);
    assert_eq!(cmd.encoded_len(), out.len(), "encoded_len of {cmd:?}");
    String::from_utf8(out.to_vec()).unwrap()
}

fn arg_err(field: Field, reason: ArgumentError) -> InvalidInputError {
    InvalidInputError::Argument { field, reason }
}

fn fb(field: Field, byte: u8, index: usize) -> InvalidInputError {
    arg_err(field, ArgumentError::ForbiddenByte { byte, index })
}

fn syn(field: Field, what: &'static str) -> InvalidInputError {
    arg_err(field, ArgumentError::Syntax(what))
}

fn addr(s: &str) -> Address {
    Address::new(s, Field::ForwardPath).unwrap()
}

fn xtext(s: &str) -> String {
    let mut out = BytesMut::new();
    write_xtext(s, &mut out);
    String::from_utf8(out.to_vec()).unwrap()
}

/// Decode xtext (RFC 3461 section 4), refusing anything malformed.
fn xtext_decode(s: &[u8]) -> Option<Vec<u8>> {
    let hex = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => {
                let hi = hex(*s.get(i + 1)?)?;
                let lo = hex(*s.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'=' => return None,
            b @ 0x21..=0x7e => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

// ---------------------------------------------------------------- wire forms

#[test]
fn hello_commands() {
    let d = Domain::new("client.example").unwrap();
    assert_eq!(line(Command::Ehlo(&d)), "EHLO client.example\r\n");
    assert_eq!(line(Command::Helo(&d)), "HELO client.example\r\n");
    assert_eq!(line(Command::Lhlo(&d)), "LHLO client.example\r\n");
    let lit = Domain::new("[IPv6:2001:db8::1]").unwrap();
    assert_eq!(line(Command::Ehlo(&lit)), "EHLO [IPv6:2001:db8::1]\r\n");
}

#[test]
fn simple_commands() {
    assert_eq!(line(Command::StartTls), "STARTTLS\r\n");
    assert_eq!(line(Command::Data), "DATA\r\n");
    assert_eq!(line(Command::Rset), "RSET\r\n");
    assert_eq!(line(Command::Noop), "NOOP\r\n");
    assert_eq!(line(Command::Quit), "QUIT\r\n");
}

#[test]
fn bdat() {
    let bdat = |size, last| line(Command::Bdat { size, last });
    assert_eq!(bdat(0, false), "BDAT 0\r\n");
    assert_eq!(bdat(0, true), "BDAT 0 LAST\r\n");
    assert_eq!(bdat(12, true), "BDAT 12 LAST\r\n");
    assert_eq!(bdat(1_000_000, false), "BDAT 1000000\r\n");
    assert_eq!(bdat(u64::MAX, true), "BDAT 18446744073709551615 LAST\r\n");
}

#[test]
fn write_appends() {
    let mut out = BytesMut::from(&b"X"[..]);
    Command::Noop.write_to(&mut out);
    Command::Bdat {
        size: 7,
        last: false,
    }
    .write_to(&mut out);
    assert_eq!(&out[..], b"XNOOP\r\nBDAT 7\r\n");
}

#[test]
fn mail_from() {
    let none = MailParams::default();
    let from = ReversePath::new("a@x.example").unwrap();
    assert_eq!(
        line(Command::MailFrom(&from, &none)),
        "MAIL FROM:<a@x.example>\r\n"
    );
    let bracketed = ReversePath::new("<a@x.example>").unwrap();
    assert_eq!(bracketed, from);
    assert_eq!(
        line(Command::MailFrom(&ReversePath::Null, &none)),
        "MAIL FROM:<>\r\n"
    );
    let all = MailParams {
        size: Some(19),
        body: Some(BodyType::EightBitMime),
        smtputf8: true,
        ret: Some(DsnReturn::Headers),
        envid: Some(EnvelopeId::new("id+1=x").unwrap()),
        requiretls: true,
    };
    assert_eq!(
        line(Command::MailFrom(&from, &all)),
        "MAIL FROM:<a@x.example> SIZE=19 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=id+2B1+3Dx \
             REQUIRETLS\r\n"
    );
}

#[test]
fn mail_params_one_by_one() {
    let from = ReversePath::Null;
    let mail = |p: MailParams| line(Command::MailFrom(&from, &p));
    let d = MailParams::default;
    assert_eq!(
        mail(MailParams {
            size: Some(0),
            ..d()
        }),
        "MAIL FROM:<> SIZE=0\r\n"
    );
    for (body, text) in [
        (BodyType::SevenBit, "7BIT"),
        (BodyType::EightBitMime, "8BITMIME"),
        (BodyType::BinaryMime, "BINARYMIME"),
    ] {
        assert_eq!(
            mail(MailParams {
                body: Some(body),
                ..d()
            }),
            format!("MAIL FROM:<> BODY={text}\r\n")
        );
    }
    assert_eq!(
        mail(MailParams {
            smtputf8: true,
            ..d()
        }),
        "MAIL FROM:<> SMTPUTF8\r\n"
    );
    assert_eq!(
        mail(MailParams {
            ret: Some(DsnReturn::Full),
            ..d()
        }),
        "MAIL FROM:<> RET=FULL\r\n"
    );
    assert_eq!(
        mail(MailParams {
            ret: Some(DsnReturn::Headers),
            ..d()
        }),
        "MAIL FROM:<> RET=HDRS\r\n"
    );
    assert_eq!(
        mail(MailParams {
            envid: Some(EnvelopeId::new("QQ314159").unwrap()),
            ..d()
        }),
        "MAIL FROM:<> ENVID=QQ314159\r\n"
    );
    assert_eq!(
        mail(MailParams {
            requiretls: true,
            ..d()
        }),
        "MAIL FROM:<> REQUIRETLS\r\n"
    );
    assert_eq!(
        mail(MailParams {
            size: Some(u64::MAX),
            requiretls: true,
            ..d()
        }),
        "MAIL FROM:<> SIZE=18446744073709551615 REQUIRETLS\r\n"
    );
}

#[test]
fn mail_from_utf8() {
    let from = ReversePath::new("jöran@bücher.example").unwrap();
    assert!(from.needs_smtputf8());
    let p = MailParams {
        size: Some(8),
        body: Some(BodyType::EightBitMime),
        smtputf8: true,
        ..MailParams::default()
    };
    assert_eq!(
        line(Command::MailFrom(&from, &p)),
        "MAIL FROM:<jöran@bücher.example> SIZE=8 BODY=8BITMIME SMTPUTF8\r\n"
    );
}

#[test]
fn rcpt_to() {
    let to = addr("<b@y.example>");
    let rcpt = |p: RcptParams| line(Command::RcptTo(&to, &p));
    assert_eq!(rcpt(RcptParams::default()), "RCPT TO:<b@y.example>\r\n");
    assert_eq!(
        rcpt(RcptParams {
            notify: Some(Notify::Never),
            orcpt: None
        }),
        "RCPT TO:<b@y.example> NOTIFY=NEVER\r\n"
    );
    let cases = [
        (false, false, false, ""),
        (true, false, false, " NOTIFY=SUCCESS"),
        (false, true, false, " NOTIFY=FAILURE"),
        (false, false, true, " NOTIFY=DELAY"),
        (true, true, false, " NOTIFY=SUCCESS,FAILURE"),
        (true, false, true, " NOTIFY=SUCCESS,DELAY"),
        (false, true, true, " NOTIFY=FAILURE,DELAY"),
        (true, true, true, " NOTIFY=SUCCESS,FAILURE,DELAY"),
    ];
    for (success, failure, delay, text) in cases {
        let notify = Notify::On {
            success,
            failure,
            delay,
        };
        assert_eq!(
            rcpt(RcptParams {
                notify: Some(notify),
                orcpt: None
            }),
            format!("RCPT TO:<b@y.example>{text}\r\n")
        );
    }
    assert_eq!(
        rcpt(RcptParams {
            notify: None,
            orcpt: Some(OriginalRecipient::new("b+tag@y.example").unwrap()),
        }),
        "RCPT TO:<b@y.example> ORCPT=rfc822;b+2Btag@y.example\r\n"
    );
    assert_eq!(
        rcpt(RcptParams {
            notify: Some(Notify::On {
                success: false,
                failure: true,
                delay: true
            }),
            orcpt: Some(OriginalRecipient::new("<x=y@z.example>").unwrap()),
        }),
        "RCPT TO:<b@y.example> NOTIFY=FAILURE,DELAY ORCPT=rfc822;x+3Dy@z.example\r\n"
    );
    let pm = addr("Postmaster");
    assert_eq!(
        line(Command::RcptTo(&pm, &RcptParams::default())),
        "RCPT TO:<Postmaster>\r\n"
    );
}

#[test]
fn ops() {
    let d = Domain::new("a.example").unwrap();
    let a = addr("a@b");
    let (m, r) = (MailParams::default(), RcptParams::default());
    let rp = ReversePath::Null;
    let cases = [
        (Command::Ehlo(&d), SmtpOp::Ehlo),
        (Command::Helo(&d), SmtpOp::Helo),
        (Command::Lhlo(&d), SmtpOp::Lhlo),
        (Command::StartTls, SmtpOp::StartTls),
        (Command::MailFrom(&rp, &m), SmtpOp::MailFrom),
        (Command::RcptTo(&a, &r), SmtpOp::RcptTo),
        (Command::Data, SmtpOp::Data),
        (
            Command::Bdat {
                size: 1,
                last: false,
            },
            SmtpOp::Bdat,
        ),
        (
            Command::Bdat {
                size: 1,
                last: true,
            },
            SmtpOp::DataEnd,
        ),
        (Command::Rset, SmtpOp::Rset),
        (Command::Noop, SmtpOp::Noop),
        (Command::Quit, SmtpOp::Quit),
    ];
    for (cmd, op) in cases {
        assert_eq!(cmd.op(), op, "{cmd:?}");
    }
}

// ---------------------------------------------------------------- xtext

#[test]
fn xtext_vectors() {
    assert_eq!(xtext(""), "");
    assert_eq!(xtext("plain!~"), "plain!~");
    assert_eq!(xtext("id+1"), "id+2B1");
    assert_eq!(xtext("a=b"), "a+3Db");
    assert_eq!(xtext("a b"), "a+20b");
    assert_eq!(xtext("\r\n\0\x7f"), "+0D+0A+00+7F");
    assert_eq!(xtext("é"), "+C3+A9");
    assert_eq!(xtext("++"), "+2B+2B");
}

// ---------------------------------------------------------------- Domain

#[test]
fn domain_accepts() {
    for ok in [
        "client.example",
        "localhost",
        "a",
        "mail-1.example.com",
        "_dmarc.example",
        "under_score.example",
        "xn--bcher-kva.example",
        "192.0.2.1",
        "[192.0.2.1]",
        "[0.0.0.0]",
        "[255.255.255.255]",
        "[IPv6:2001:db8::1]",
        "[ipv6:::1]",
        "[IPv6:::ffff:192.0.2.1]",
        "[x-tag:anything!goes~here]",
        "[tag9:a:b:c]",
    ] {
        let d = Domain::new(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        assert_eq!(d.as_str(), ok);
    }
    let max_label = "a".repeat(63);
    assert!(Domain::new(&format!("{max_label}.example")).is_ok());
    let longest = [&*"a".repeat(63); 4].join(".");
    assert_eq!(longest.len(), 255);
    assert!(Domain::new(&longest).is_ok());
}

#[test]
fn domain_refuses() {
    const F: Field = Field::EhloDomain;
    let cases: Vec<(String, InvalidInputError)> = vec![
        ("".into(), arg_err(F, ArgumentError::Empty)),
        ("a b".into(), fb(F, b' ', 1)),
        (" a".into(), fb(F, b' ', 0)),
        ("a\tb".into(), fb(F, b'\t', 1)),
        ("a\r\nMAIL FROM:<x>".into(), fb(F, b'\r', 1)),
        ("a\nb".into(), fb(F, b'\n', 1)),
        ("a\0".into(), fb(F, 0, 1)),
        ("a\x7f".into(), fb(F, 0x7f, 1)),
        ("a\x1b".into(), fb(F, 0x1b, 1)),
        // Controls are reported before grammar problems.
        ("a!b\r".into(), fb(F, b'\r', 3)),
        ("a!b".into(), fb(F, b'!', 1)),
        ("a,b".into(), fb(F, b',', 1)),
        ("a@b".into(), fb(F, b'@', 1)),
        ("bücher.example".into(), fb(F, 0xc3, 1)),
        ("a.example]".into(), fb(F, b']', 9)),
        (
            "a".repeat(256),
            arg_err(F, ArgumentError::TooLong { max: 255 }),
        ),
        (
            format!("{}.example", "a".repeat(64)),
            syn(F, "label longer than 63 bytes"),
        ),
        (
            "client.example.".into(),
            syn(F, "empty label (leading, trailing or doubled dot)"),
        ),
        (
            ".example".into(),
            syn(F, "empty label (leading, trailing or doubled dot)"),
        ),
        (
            "a..example".into(),
            syn(F, "empty label (leading, trailing or doubled dot)"),
        ),
        (
            ".".into(),
            syn(F, "empty label (leading, trailing or doubled dot)"),
        ),
        (
            "-a.example".into(),
            syn(F, "label starts or ends with a hyphen"),
        ),
        (
            "a-.example".into(),
            syn(F, "label starts or ends with a hyphen"),
        ),
        ("[".into(), syn(F, "unterminated address literal")),
        ("[1.2.3.4".into(), syn(F, "unterminated address literal")),
        ("[]".into(), syn(F, "empty address literal")),
        ("[1.2.3]".into(), syn(F, "invalid IPv4 address literal")),
        ("[256.1.1.1]".into(), syn(F, "invalid IPv4 address literal")),
        ("[01.2.3.4]".into(), syn(F, "invalid IPv4 address literal")),
        ("[example]".into(), syn(F, "invalid IPv4 address literal")),
        (
            "[IPv6:1.2.3.4]".into(),
            syn(F, "invalid IPv6 address literal"),
        ),
        (
            "[IPv6:2001:db8::1::2]".into(),
            syn(F, "invalid IPv6 address literal"),
        ),
        (
            "[IPv6:fe80::1%eth0]".into(),
            syn(F, "invalid IPv6 address literal"),
        ),
        ("[IPv6:]".into(), syn(F, "invalid IPv6 address literal")),
        ("[:x]".into(), syn(F, "invalid address literal tag")),
        ("[a_b:x]".into(), syn(F, "invalid address literal tag")),
        ("[tag-:x]".into(), syn(F, "invalid address literal tag")),
        ("[tag:]".into(), syn(F, "empty address literal")),
        ("[tag:a[b]".into(), fb(F, b'[', 6)),
        ("[tag:a\\b]".into(), fb(F, b'\\', 6)),
        ("[tag:a]b]".into(), fb(F, b']', 6)),
        ("[tag:é]".into(), fb(F, 0xc3, 5)),
    ];
    for (input, want) in cases {
        assert_eq!(Domain::new(&input), Err(want), "{input:?}");
    }
}

// ---------------------------------------------------------------- Address

#[test]
fn address_accepts() {
    for (input, stored) in [
        ("user@example.com", "user@example.com"),
        ("<user@example.com>", "user@example.com"),
        ("a@b", "a@b"),
        (
            "first.last+tag@sub.example.org",
            "first.last+tag@sub.example.org",
        ),
        (
            "!#$%&'*+-/=?^_`{|}~@example.com",
            "!#$%&'*+-/=?^_`{|}~@example.com",
        ),
        ("a..b@docomo.example", "a..b@docomo.example"),
        (".a.@x.example", ".a.@x.example"),
        ("\"john doe\"@example.com", "\"john doe\"@example.com"),
        ("<\"john doe\"@example.com>", "\"john doe\"@example.com"),
        ("\"\"@example.com", "\"\"@example.com"),
        ("\"a\\\"b\\\\c\"@example.com", "\"a\\\"b\\\\c\"@example.com"),
        ("\"a@b\"@example.com", "\"a@b\"@example.com"),
        (
            "\"a(b),c:d;e[f]\"@example.com",
            "\"a(b),c:d;e[f]\"@example.com",
        ),
        ("user@[192.0.2.1]", "user@[192.0.2.1]"),
        ("user@[IPv6:2001:db8::1]", "user@[IPv6:2001:db8::1]"),
        ("user@[tag:x@y]", "user@[tag:x@y]"),
        ("user@under_score.example", "user@under_score.example"),
        ("user@-odd-.example", "user@-odd-.example"),
        ("jöran@bücher.example", "jöran@bücher.example"),
        ("用户@例子.广告", "用户@例子.广告"),
        ("\"jö ran\"@example.com", "\"jö ran\"@example.com"),
        ("Postmaster", "Postmaster"),
        ("<postMASTER>", "postMASTER"),
    ] {
        let a =
            Address::new(input, Field::ForwardPath).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(a.as_str(), stored);
        assert_eq!(a.needs_smtputf8(), !stored.is_ascii());
    }
    let local = "l".repeat(200);
    let longest = format!("{local}@{}.example", "d".repeat(254 - 209));
    assert_eq!(longest.len(), 254);
    assert!(Address::new(&longest, Field::ForwardPath).is_ok());
    assert!(Address::new(&format!("<{longest}>"), Field::ForwardPath).is_ok());
}

#[test]
fn address_refuses() {
    const F: Field = Field::ForwardPath;
    let unbalanced = arg_err(F, ArgumentError::UnbalancedBrackets);
    let cases: Vec<(String, InvalidInputError)> = vec![
        ("".into(), arg_err(F, ArgumentError::Empty)),
        ("<>".into(), arg_err(F, ArgumentError::Empty)),
        ("a\r\n@b".into(), fb(F, b'\r', 1)),
        ("<a@b>\r\nRSET".into(), fb(F, b'\r', 5)),
        ("a@b\n".into(), fb(F, b'\n', 3)),
        ("a\0@b".into(), fb(F, 0, 1)),
        ("a@b\x7f".into(), fb(F, 0x7f, 3)),
        ("a\x1b@b".into(), fb(F, 0x1b, 1)),
        ("\"a\tb\"@b".into(), fb(F, b'\t', 2)),
        ("\"a\rb\"@b".into(), fb(F, b'\r', 2)),
        ("a\u{85}@b".into(), fb(F, 0xc2, 1)),
        ("a@b\u{2028}".into(), fb(F, 0xe2, 3)),
        ("a@b\u{2029}".into(), fb(F, 0xe2, 3)),
        // Controls come before bracket problems.
        ("<a\n@b".into(), fb(F, b'\n', 2)),
        ("<a@b".into(), unbalanced.clone()),
        ("a@b>".into(), unbalanced.clone()),
        ("<".into(), unbalanced.clone()),
        (">".into(), unbalanced.clone()),
        ("<<a@b>>".into(), unbalanced.clone()),
        ("<a>@b>".into(), unbalanced.clone()),
        ("a<b@c".into(), unbalanced.clone()),
        ("\"a>b\"@c".into(), unbalanced.clone()),
        ("<a@b> SIZE=1".into(), unbalanced.clone()),
        ("<a@b> <c@d>".into(), unbalanced.clone()),
        (
            format!("a@{}", "b".repeat(253)),
            arg_err(F, ArgumentError::TooLong { max: 254 }),
        ),
        (
            format!("<a@{}>", "b".repeat(253)),
            arg_err(F, ArgumentError::TooLong { max: 254 }),
        ),
        ("john doe@example.com".into(), fb(F, b' ', 4)),
        ("<john doe@example.com>".into(), fb(F, b' ', 5)),
        (" a@b".into(), fb(F, b' ', 0)),
        ("a@b ".into(), fb(F, b' ', 3)),
        ("a@b SIZE=1".into(), fb(F, b' ', 3)),
        ("a,b@c".into(), fb(F, b',', 1)),
        ("a(b)@c".into(), fb(F, b'(', 1)),
        ("a\"b\"@c".into(), fb(F, b'"', 1)),
        ("a\\b@c".into(), fb(F, b'\\', 1)),
        ("a:b@c".into(), fb(F, b':', 1)),
        ("a@b@c".into(), fb(F, b'@', 3)),
        ("a@b!c".into(), fb(F, b'!', 3)),
        ("a@b_c.d+e".into(), fb(F, b'+', 7)),
        ("john doe".into(), fb(F, b' ', 4)),
        ("user".into(), syn(F, "missing @")),
        ("postmaster.x".into(), syn(F, "missing @")),
        ("\"user\"".into(), syn(F, "missing @")),
        ("@example.com".into(), syn(F, "empty local part")),
        ("@a,@b:user@c".into(), syn(F, "empty local part")),
        ("user@".into(), syn(F, "empty domain")),
        ("\"a\"@".into(), syn(F, "empty domain")),
        (
            "user@example.com.".into(),
            syn(F, "empty label (leading, trailing or doubled dot)"),
        ),
        (
            "user@.example.com".into(),
            syn(F, "empty label (leading, trailing or doubled dot)"),
        ),
        (
            "user@a..b".into(),
            syn(F, "empty label (leading, trailing or doubled dot)"),
        ),
        (
            "\"abc@example.com".into(),
            syn(F, "unterminated quoted local part"),
        ),
        (
            "\"abc\\\"@x".into(),
            syn(F, "unterminated quoted local part"),
        ),
        (
            "\"a\\é\"@x".into(),
            syn(F, "a backslash must escape a printable ASCII character"),
        ),
        (
            "\"a\"b@x".into(),
            syn(F, "a quoted local part must be followed by @"),
        ),
        (
            "\"a\".b@x".into(),
            syn(F, "a quoted local part must be followed by @"),
        ),
        ("a@[1.2.3.4".into(), syn(F, "unterminated address literal")),
        (
            "a@[1.2.3.999]".into(),
            syn(F, "invalid IPv4 address literal"),
        ),
        ("a@[IPv6:zz]".into(), syn(F, "invalid IPv6 address literal")),
        ("a@[tag:a\\b]".into(), fb(F, b'\\', 8)),
        ("a@[tag:a b]".into(), fb(F, b' ', 8)),
    ];
    for (input, want) in cases {
        assert_eq!(Address::new(&input, F), Err(want), "{input:?}");
    }
}

#[test]
fn address_error_names_the_field() {
    for field in [
        Field::ForwardPath,
        Field::ReversePath,
        Field::Parameter,
        Field::UserName,
    ] {
        assert_eq!(
            Address::new("a b@c", field),
            Err(fb(field, b' ', 1)),
            "{field:?}"
        );
    }
}

// ---------------------------------------------------------------- ReversePath

#[test]
fn reverse_path() {
    assert_eq!(ReversePath::new(""), Ok(ReversePath::Null));
    assert_eq!(ReversePath::new("<>"), Ok(ReversePath::Null));
    assert!(!ReversePath::Null.needs_smtputf8());
    assert_eq!(
        ReversePath::new("<a@b>"),
        Ok(ReversePath::Address(
            Address::new("a@b", Field::ReversePath).unwrap()
        ))
    );
    assert!(ReversePath::new("ö@b").unwrap().needs_smtputf8());
    const F: Field = Field::ReversePath;
    assert_eq!(ReversePath::new("Postmaster"), Err(syn(F, "missing @")));
    assert_eq!(
        ReversePath::new("<<>>"),
        Err(arg_err(F, ArgumentError::UnbalancedBrackets))
    );
    assert_eq!(ReversePath::new("< >"), Err(fb(F, b' ', 1)));
    assert_eq!(ReversePath::new(" "), Err(fb(F, b' ', 0)));
    assert_eq!(ReversePath::new("<>\r\n"), Err(fb(F, b'\r', 2)));
    assert_eq!(ReversePath::new("a\n@b"), Err(fb(F, b'\n', 1)));
}

// ---------------------------------------------------------------- EnvelopeId

#[test]
fn envelope_id() {
    const F: Field = Field::EnvelopeId;
    for ok in [
        "x",
        "id+1",
        "QQ314159",
        "a=b",
        "!~\"<>@[]",
        &*"z".repeat(100),
    ] {
        assert_eq!(EnvelopeId::new(ok).unwrap().as_str(), ok);
    }
    let cases: Vec<(String, InvalidInputError)> = vec![
        ("".into(), arg_err(F, ArgumentError::Empty)),
        ("a b".into(), fb(F, b' ', 1)),
        ("ab\r\n".into(), fb(F, b'\r', 2)),
        ("\n".into(), fb(F, b'\n', 0)),
        ("a\0".into(), fb(F, 0, 1)),
        ("a\x7f".into(), fb(F, 0x7f, 1)),
        ("a\x1b".into(), fb(F, 0x1b, 1)),
        ("é".into(), fb(F, 0xc3, 0)),
        (
            "z".repeat(101),
            arg_err(F, ArgumentError::TooLong { max: 100 }),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(EnvelopeId::new(&input), Err(want), "{input:?}");
    }
}

// ---------------------------------------------------------------- OriginalRecipient

#[test]
fn original_recipient() {
    const F: Field = Field::OriginalRecipient;
    for (input, stored) in [
        ("b@y.example", "b@y.example"),
        ("<b@y.example>", "b@y.example"),
        ("\"a@b\"@c", "\"a@b\"@c"),
        ("x+y=z@c", "x+y=z@c"),
        ("POSTMASTER", "POSTMASTER"),
    ] {
        assert_eq!(OriginalRecipient::new(input).unwrap().as_str(), stored);
    }
    let longest = format!("a@{}", "b".repeat(254));
    assert!(OriginalRecipient::new(&longest).is_ok());
    let unbalanced = arg_err(F, ArgumentError::UnbalancedBrackets);
    let cases: Vec<(String, InvalidInputError)> = vec![
        ("".into(), arg_err(F, ArgumentError::Empty)),
        ("<>".into(), arg_err(F, ArgumentError::Empty)),
        ("a b@c".into(), fb(F, b' ', 1)),
        ("a@c\r\n".into(), fb(F, b'\r', 3)),
        ("a\n@c".into(), fb(F, b'\n', 1)),
        ("a\0@c".into(), fb(F, 0, 1)),
        ("a@c\x7f".into(), fb(F, 0x7f, 3)),
        ("\x1ba@c".into(), fb(F, 0x1b, 0)),
        ("ö@c".into(), fb(F, 0xc3, 0)),
        ("<a@c".into(), unbalanced.clone()),
        ("a@c>".into(), unbalanced.clone()),
        ("<a<b@c>".into(), unbalanced.clone()),
        (
            format!("a@{}", "b".repeat(255)),
            arg_err(F, ArgumentError::TooLong { max: 256 }),
        ),
        ("user".into(), syn(F, "missing @")),
        ("@c".into(), syn(F, "empty local part")),
        ("a@".into(), syn(F, "empty domain")),
    ];
    for (input, want) in cases {
        assert_eq!(OriginalRecipient::new(&input), Err(want), "{input:?}");
    }
}

// ---------------------------------------------------------------- injection

/// Every constructor refuses a line-breaking byte inserted anywhere into a valid value, and
/// reports exactly that byte and its index.
#[test]
fn injection_is_refused_everywhere() {
    let bad = [b'\r', b'\n', 0u8, 0x7f, 0x1b];
    let bases = [
        "a@x.example",
        "<a@x.example>",
        "\"john doe\"@x.example",
        "jöran@bücher.example",
        "user@[IPv6:2001:db8::1]",
        "Postmaster",
    ];
    for b in bad {
        let c = char::from(b);
        for base in bases {
            for i in (0..=base.len()).filter(|&i| base.is_char_boundary(i)) {
                let s = format!("{}{c}{}", &base[..i], &base[i..]);
                for field in [Field::ForwardPath, Field::ReversePath] {
                    assert_eq!(Address::new(&s, field), Err(fb(field, b, i)), "{s:?}");
                }
                assert_eq!(
                    ReversePath::new(&s),
                    Err(fb(Field::ReversePath, b, i)),
                    "{s:?}"
                );
                if base.is_ascii() && !base.contains(' ') {
                    assert_eq!(
                        OriginalRecipient::new(&s),
                        Err(fb(Field::OriginalRecipient, b, i)),
                        "{s:?}"
                    );
                }
            }
        }
        for base in [
            "client.example",
            "[192.0.2.1]",
            "[IPv6:::1]",
            "[tag:x]",
            "a",
        ] {
            for i in 0..=base.len() {
                let s = format!("{}{c}{}", &base[..i], &base[i..]);
                assert_eq!(Domain::new(&s), Err(fb(Field::EhloDomain, b, i)), "{s:?}");
            }
        }
        for base in ["id+1", "x", "QQ314159"] {
            for i in 0..=base.len() {
                let s = format!("{}{c}{}", &base[..i], &base[i..]);
                assert_eq!(
                    EnvelopeId::new(&s),
                    Err(fb(Field::EnvelopeId, b, i)),
                    "{s:?}"
                );
            }
        }
        // Alone, and for the null path.
        let alone = c.to_string();
        assert!(Domain::new(&alone).is_err());
        assert!(Address::new(&alone, Field::ForwardPath).is_err());
        assert!(ReversePath::new(&alone).is_err());
        assert!(ReversePath::new(&format!("<{c}>")).is_err());
        assert!(EnvelopeId::new(&alone).is_err());
        assert!(OriginalRecipient::new(&alone).is_err());
    }
}

// ---------------------------------------------------------------- properties

/// Exactly one CRLF, at the end; no other CR, LF or NUL (nor any other C0 or DEL).
fn assert_one_line(bytes: &[u8]) {
    assert!(bytes.ends_with(b"\r\n"), "{bytes:?}");
    let body = &bytes[..bytes.len() - 2];
    assert!(
        !body.iter().any(|&b| b < 0x20 || b == 0x7f),
        "control byte in {bytes:?}"
    );
}

/// Strings that mix address and domain syntax with hostile bytes.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z0-9.@<>\"\\\\ \\[\\]:_+=-]{0,24}",
        "[a-zé.@<>\"\\\\ \\r\\n\\x00\\x7f\\x1b\\u{85}\\u{2028}]{0,24}",
        ("[a-z.\"\\\\ +]{0,10}", "[a-z.\\[\\]:0-9\\r\\n]{0,14}")
            .prop_map(|(l, d)| format!("{l}@{d}")),
        ("[a-z]{1,8}", "[a-z.\\-_]{0,12}", "[\\x00-\\x7f]")
            .prop_map(|(l, d, c)| format!("<{l}@{d}{c}>")),
        "\\[[0-9a-fA-F:.IPv6]{0,24}\\]",
    ]
}

proptest! {
    #[test]
    fn accepted_values_write_one_line(s in hostile()) {
        let mut out = BytesMut::new();
        if let Ok(d) = Domain::new(&s) {
            prop_assert!(s.is_ascii());
            for cmd in [Command::Ehlo(&d), Command::Helo(&d), Command::Lhlo(&d)] {
                out.clear();
                cmd.write_to(&mut out);
                assert_one_line(&out);
                prop_assert_eq!(cmd.encoded_len(), out.len());
            }
        }
        if let Ok(a) = Address::new(&s, Field::ForwardPath) {
            out.clear();
            let cmd = Command::RcptTo(&a, &RcptParams::default());
            cmd.write_to(&mut out);
            prop_assert_eq!(cmd.encoded_len(), out.len());
            assert_one_line(&out);
            prop_assert_eq!(out.iter().filter(|&&b| b == b'<').count(), 1);
            prop_assert_eq!(out.iter().filter(|&&b| b == b'>').count(), 1);
        }
        if let Ok(p) = ReversePath::new(&s) {
            out.clear();
            let cmd = Command::MailFrom(&p, &MailParams::default());
            cmd.write_to(&mut out);
            prop_assert_eq!(cmd.encoded_len(), out.len());
            assert_one_line(&out);
        }
        if let Ok(id) = EnvelopeId::new(&s) {
            let params = MailParams { envid: Some(id), ..MailParams::default() };
            out.clear();
            let cmd = Command::MailFrom(&ReversePath::Null, &params);
            cmd.write_to(&mut out);
            prop_assert_eq!(cmd.encoded_len(), out.len());
            assert_one_line(&out);
            // `MAIL FROM:<> ENVID=...`: no space inside the id.
            prop_assert_eq!(out.iter().filter(|&&b| b == b' ').count(), 2);
        }
        if let Ok(o) = OriginalRecipient::new(&s) {
            let a = Address::new("a@b", Field::ForwardPath).unwrap();
            let params = RcptParams { notify: None, orcpt: Some(o) };
            out.clear();
            let cmd = Command::RcptTo(&a, &params);
            cmd.write_to(&mut out);
            prop_assert_eq!(cmd.encoded_len(), out.len());
            assert_one_line(&out);
            // `RCPT TO:<a@b> ORCPT=...`: no space inside the address.
            prop_assert_eq!(out.iter().filter(|&&b| b == b' ').count(), 2);
        }
    }

    #[test]
    fn full_commands_write_one_line(
        local in "[a-zA-Z0-9.+_-]{1,20}|\"[a-z ,@()]{0,10}\"",
        domain in "[a-z0-9-]{1,10}(\\.[a-z0-9-]{1,10}){0,3}",
        envid in "[!-~]{1,100}",
        orcpt in "[!-~]{1,30}@[!-~]{1,30}",
        size in any::<u64>(),
    ) {
        let a = Address::new(&format!("{local}@{domain}"), Field::ForwardPath).unwrap();
        let from = ReversePath::Address(a.clone());
        let mail = MailParams {
            size: Some(size),
            body: Some(BodyType::BinaryMime),
            smtputf8: true,
            ret: Some(DsnReturn::Full),
            envid: Some(EnvelopeId::new(&envid).unwrap()),
            requiretls: true,
        };
        let mut out = BytesMut::new();
        Command::MailFrom(&from, &mail).write_to(&mut out);
        assert_one_line(&out);
        if let Ok(o) = OriginalRecipient::new(&orcpt) {
            let rcpt = RcptParams {
                notify: Some(Notify::On { success: true, failure: true, delay: true }),
                orcpt: Some(o),
            };
            out.clear();
            Command::RcptTo(&a, &rcpt).write_to(&mut out);
            assert_one_line(&out);
        }
    }

    #[test]
    fn xtext_round_trips(s in any::<String>()) {
        let mut out = BytesMut::new();
        write_xtext(&s, &mut out);
        prop_assert!(out.iter().all(|b| (0x21..=0x7e).contains(b) && *b != b'='));
        // Every `+` starts an upper-case hex escape.
        for (i, _) in out.iter().enumerate().filter(|&(_, &b)| b == b'+') {
            prop_assert!(out.len() >= i + 3);
            prop_assert!(out[i + 1..i + 3]
                .iter()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b)));
        }
        prop_assert_eq!(xtext_decode(&out), Some(s.into_bytes()));
    }

    #[test]
    fn xtext_keeps_plain_text(s in "[!-*,-<>-~]{0,64}") {
        prop_assert_eq!(xtext(&s), s);
    }
}
