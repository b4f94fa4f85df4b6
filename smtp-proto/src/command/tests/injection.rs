//! Nothing a caller gives can add a line to a command: the injection table and properties.

use super::*;

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
