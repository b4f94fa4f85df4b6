//! The signer's API without a verifier: keys (and that they never show), configuration errors,
//! the field's shape (folding, `h=` choice). A panic is a bug, never bad input.

use smtp_dkim::{Algorithm, Canonicalization, DkimKey, DkimSigner, Error, KeyError};

const RSA_PKCS1: &str = include_str!("keys/rsa2048-pkcs1.pem");
const RSA_PKCS8: &str = include_str!("keys/rsa2048-pkcs8.pem");
const ED25519: &str = include_str!("keys/ed25519-pkcs8.pem");
const RSA_512: &str = include_str!("keys/rsa512-pkcs1.pem");
const P256: &str = include_str!("keys/p256-pkcs8.pem");

const MESSAGE: &[u8] =
    b"From: me@example.com\r\nTo: you@example.org\r\nSubject: hi\r\n\r\nHello\r\n";

/// Every base64 line of a PEM key (its secret material, 16 characters at a time).
fn secret_fragments(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| {
            l.as_bytes()
                .chunks(16)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
        })
        .filter(|f| f.len() == 16)
        .collect()
}

#[test]
fn keys_load_and_never_show() {
    for (pem, algorithm) in [
        (RSA_PKCS1, Algorithm::RsaSha256),
        (RSA_PKCS8, Algorithm::RsaSha256),
        (ED25519, Algorithm::Ed25519Sha256),
    ] {
        let key = DkimKey::from_pem(pem).unwrap();
        assert_eq!(key.algorithm(), algorithm);
        let signer = DkimSigner::new(key.clone(), "example.com", "s").unwrap();
        let shown = format!(
            "{key:?} {signer:?} {signer:#?} {:?}",
            signer.message_hasher()
        );
        assert!(shown.contains("[redacted]"), "{shown}");
        for fragment in secret_fragments(pem) {
            assert!(
                !shown.contains(&fragment),
                "key material {fragment} in {shown}"
            );
        }
    }
    // A known seed: neither its bytes nor its hex appear.
    let key = DkimKey::from_ed25519_seed(&[0xab; 32]);
    let shown = format!(
        "{key:?} {:?}",
        DkimSigner::new(key.clone(), "example.com", "s").unwrap()
    );
    assert!(
        !shown.contains("171") && !shown.to_lowercase().contains("abab"),
        "{shown}"
    );
    // Text before the block and CRLF line endings are fine.
    let noisy = format!(
        "Bag Attributes\n    localKeyID: 01\n{}",
        ED25519.replace('\n', "\r\n")
    );
    assert_eq!(
        DkimKey::from_pem(&noisy).unwrap().dns_txt_record(),
        DkimKey::from_pem(ED25519).unwrap().dns_txt_record()
    );
    // Both RSA encodings of one key give the same public key.
    assert_eq!(
        DkimKey::from_pem(RSA_PKCS1).unwrap().dns_txt_record(),
        DkimKey::from_pem(RSA_PKCS8).unwrap().dns_txt_record()
    );
}

#[test]
fn bad_keys_are_typed_errors_without_key_bytes() {
    assert_eq!(DkimKey::from_pem("").unwrap_err(), KeyError::NotPem);
    assert_eq!(
        DkimKey::from_pem("not a key").unwrap_err(),
        KeyError::NotPem
    );
    assert_eq!(
        DkimKey::from_pem(RSA_512).unwrap_err(),
        KeyError::RsaTooSmall { bits: 512 }
    );
    assert!(matches!(
        DkimKey::from_pem(P256).unwrap_err(),
        KeyError::UnsupportedAlgorithm { oid } if oid == "1.2.840.10045.2.1"
    ));
    let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    assert_eq!(
        DkimKey::from_pem(cert).unwrap_err(),
        KeyError::UnsupportedPemLabel("CERTIFICATE".into())
    );
    let encrypted =
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
    assert_eq!(
        DkimKey::from_pem(encrypted).unwrap_err(),
        KeyError::Encrypted
    );
    // A PKCS#8 label on an RSA PKCS#1 body, and a truncated key: malformed, and the message
    // shows none of the key.
    let relabelled = RSA_PKCS1.replace("RSA PRIVATE KEY", "PRIVATE KEY");
    let mut truncated: Vec<&str> = RSA_PKCS1.lines().collect();
    truncated.remove(5);
    let truncated = truncated.join("\n");
    for pem in [relabelled.as_str(), truncated.as_str()] {
        let e = DkimKey::from_pem(pem).unwrap_err();
        assert!(
            matches!(e, KeyError::Malformed { .. } | KeyError::NotPem),
            "{e:?}"
        );
        let text = format!("{e} {e:?}");
        for fragment in secret_fragments(RSA_PKCS1) {
            assert!(!text.contains(&fragment), "{text}");
        }
    }
    assert!(DkimKey::from_pkcs8_der(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
    assert!(DkimKey::from_pkcs1_der(&[]).is_err());
}

#[test]
fn configuration_errors() {
    let key = || DkimKey::from_ed25519_seed(&[1; 32]);
    for bad in [
        "",
        "exa mple.com",
        "example.com;",
        "-a.com",
        "a..com",
        "ex\u{e4}mple.com",
        "a.com\r\n",
    ] {
        assert!(
            matches!(
                DkimSigner::new(key(), bad, "s"),
                Err(Error::InvalidDomain(_))
            ),
            "{bad:?}"
        );
        assert!(
            matches!(
                DkimSigner::new(key(), "example.com", bad),
                Err(Error::InvalidSelector(_))
            ),
            "{bad:?}"
        );
    }
    let signer = DkimSigner::new(key(), "Example.COM", "sel.2026").unwrap();
    assert_eq!(signer.domain(), "example.com");
    assert_eq!(
        signer.clone().with_headers(["to", "subject"]).unwrap_err(),
        Error::FromNotSigned
    );
    for bad in ["", "Sub ject", "a:b", "x;y", "caf\u{e9}"] {
        assert!(
            matches!(
                signer.clone().with_headers(["from", bad]),
                Err(Error::InvalidHeaderName(_))
            ),
            "{bad:?}"
        );
    }
    assert_eq!(
        signer.clone().with_expiry(0).unwrap_err(),
        Error::ZeroExpiry
    );
}

#[test]
fn messages_that_cannot_be_signed() {
    let signer = DkimSigner::new(DkimKey::from_ed25519_seed(&[1; 32]), "example.com", "s").unwrap();
    assert_eq!(
        signer.sign(b"To: a@b\r\n\r\nx\r\n", 1).unwrap_err(),
        Error::MissingFrom
    );
    assert_eq!(signer.sign(b"", 1).unwrap_err(), Error::MissingFrom);
    assert_eq!(
        signer.sign(b"\r\nFrom: a@b\r\n", 1).unwrap_err(),
        Error::MissingFrom
    );
    assert_eq!(
        signer
            .sign(b"From: a@b\r\nnot a header\r\n\r\n", 1)
            .unwrap_err(),
        Error::MalformedHeader { line: 2 }
    );
    assert_eq!(
        signer
            .sign(b" folded first\r\nFrom: a@b\r\n\r\n", 1)
            .unwrap_err(),
        Error::MalformedHeader { line: 1 }
    );
    // A header section over the limit, streamed: a typed error, then the same again.
    let mut hasher = signer.message_hasher();
    let line = b"X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let mut result = Ok(());
    for _ in 0..(smtp_dkim::MAX_HEADER_BYTES / line.len() + 2) {
        result = hasher.update(line);
        if result.is_err() {
            break;
        }
    }
    let limit = smtp_dkim::MAX_HEADER_BYTES;
    assert_eq!(result, Err(Error::HeadersTooLarge { limit }));
    assert_eq!(
        hasher.update(b"\r\n"),
        Err(Error::HeadersTooLarge { limit })
    );
    assert_eq!(
        hasher.finish(1).unwrap_err(),
        Error::HeadersTooLarge { limit }
    );
}

/// Lines of at most 78 characters, one CRLF at the end, and `h=` naming the fields present
/// (each as many times as it occurs, once more with oversigning), in the configured order.
#[test]
fn field_shape_and_header_choice() {
    let message = b"From: a@example.com\r\nTo: b@example.org\r\nX-Custom: 1\r\nTo: c@example.org\r\nDate: x\r\n\r\nbody\r\n";
    for (pem, canon) in [
        (RSA_PKCS1, Canonicalization::Simple),
        (ED25519, Canonicalization::Relaxed),
    ] {
        let signer = DkimSigner::new(
            DkimKey::from_pem(pem).unwrap(),
            "a-rather-long-subdomain.mail.example.com",
            "selector-2026-12",
        )
        .unwrap()
        .with_canonicalization(canon, canon)
        .with_expiry(86_400)
        .unwrap();
        let field = signer.sign(message, 1_800_000_000).unwrap().into_string();
        assert!(field.starts_with("DKIM-Signature: v=1; a="), "{field}");
        assert!(
            field.ends_with("\r\n") && !field.ends_with("\r\n\r\n"),
            "{field}"
        );
        for line in field.split("\r\n") {
            assert!(line.len() <= 78, "{} characters: {line:?}", line.len());
            assert!(!line.contains('\r') && !line.contains('\n'));
        }
        // Every line after the first is a continuation.
        assert!(
            field
                .trim_end()
                .split("\r\n")
                .skip(1)
                .all(|l| l.starts_with(' ')),
            "{field}"
        );
        let unfolded = field.replace("\r\n ", " ");
        let compact = unfolded.replace(' ', "");
        assert!(compact.contains(";h=from:to:to:date;bh="), "{unfolded}");
        let c = format!("c={}/{};", canon.as_str(), canon.as_str());
        assert!(unfolded.contains(&c), "{unfolded}");
        assert!(
            unfolded.contains("t=1800000000; x=1800086400;"),
            "{unfolded}"
        );
        let oversigned = signer
            .clone()
            .with_oversigning(true)
            .sign(message, 1)
            .unwrap();
        let oversigned = oversigned.as_str().replace("\r\n ", "").replace(' ', "");
        assert!(
            oversigned.contains("h=from:from:to:to:to:date:date;"),
            "{oversigned}"
        );
        let chosen = signer
            .with_headers(["Date", "FROM", "x-custom", "reply-to"])
            .unwrap();
        let chosen = chosen
            .sign(message, 1)
            .unwrap()
            .as_str()
            .replace("\r\n ", "")
            .replace(' ', "");
        assert!(chosen.contains("h=date:from:x-custom;"), "{chosen}");
    }
}

/// Line endings of the input do not matter: the signature is over the wire form.
#[test]
fn line_endings_do_not_change_the_signature() {
    let signer = DkimSigner::new(DkimKey::from_pem(ED25519).unwrap(), "example.com", "s").unwrap();
    let crlf = signer.sign(MESSAGE, 5).unwrap();
    let lf: Vec<u8> = String::from_utf8_lossy(MESSAGE)
        .replace("\r\n", "\n")
        .into_bytes();
    assert_eq!(signer.sign(&lf, 5).unwrap(), crlf);
    let unterminated = &MESSAGE[..MESSAGE.len() - 2];
    assert_eq!(signer.sign(unterminated, 5).unwrap(), crlf);
    // Each byte alone through the streaming hasher: the same.
    let mut hasher = signer.message_hasher();
    for b in lf.iter() {
        hasher.update(std::slice::from_ref(b)).unwrap();
    }
    assert_eq!(hasher.finish(5).unwrap(), crlf);
    // A different body is a different signature.
    assert_ne!(
        signer
            .sign(
                b"From: me@example.com\r\nTo: you@example.org\r\nSubject: hi\r\n\r\nHellO\r\n",
                5
            )
            .unwrap(),
        crlf
    );
    let signed = signer.prepend(&lf, 5).unwrap();
    assert!(signed.starts_with(crlf.as_bytes()) && signed.ends_with(&lf));
}

proptest::proptest! {
    /// No input makes the signer panic; whatever it accepts whole it accepts streamed, alike.
    #[test]
    fn any_input_no_panic(message in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400), cut in 0usize..400) {
        let signer = DkimSigner::new(DkimKey::from_ed25519_seed(&[3; 32]), "example.com", "s").unwrap();
        let mut framed = b"From: a@b\r\n".to_vec();
        framed.extend_from_slice(&message);
        for m in [&message, &framed] {
            let whole = signer.sign(m, 9);
            let mut hasher = signer.message_hasher();
            let cut = cut.min(m.len());
            hasher.update(&m[..cut]).unwrap();
            hasher.update(&m[cut..]).unwrap();
            proptest::prop_assert_eq!(hasher.finish(9), whole);
        }
        let _ = DkimKey::from_pem(&String::from_utf8_lossy(&message));
        let _ = DkimKey::from_pkcs8_der(&message);
        let _ = DkimKey::from_pkcs1_der(&message);
    }
}
