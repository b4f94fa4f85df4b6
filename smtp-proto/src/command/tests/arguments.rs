//! Validation of command arguments: domains, addresses, reverse paths, ENVID and ORCPT.

use super::*;

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
