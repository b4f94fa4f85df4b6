//! Every signature checked by dkimpy (Python), a verifier nobody in this project wrote, on the
//! bytes the server receives: the message normalised as the clients send it (bare CR and LF made
//! CRLF), dot-stuffing undone.
//!
//! These tests need `python3` with `pip install dkimpy cryptography pynacl`; without them they
//! fail (CI installs them), they never skip.

use smtp_dkim::{Canonicalization, DkimKey, DkimSigner};
use smtp_proto::body::LineNormalizer;

#[path = "support/dkimpy.rs"]
mod verifier;
use verifier::{DOMAIN, key_pem};

const RSA_PKCS1: &str = "rsa2048-pkcs1.pem";
const RSA_PKCS8: &str = "rsa2048-pkcs8.pem";
const ED25519: &str = "ed25519-pkcs8.pem";
const SELECTOR: &str = "sel2026";

fn signer(key: &str) -> DkimSigner {
    DkimSigner::new(DkimKey::from_pem(&key_pem(key)).unwrap(), DOMAIN, SELECTOR).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The message as the server stores it: line endings normalised like the clients send it.
fn wire(message: &[u8]) -> Vec<u8> {
    let mut normalizer = LineNormalizer::new();
    let mut out = bytes::BytesMut::new();
    normalizer.encode(message, &mut out);
    normalizer.finish(&mut out);
    out.to_vec()
}

/// dkimpy's verdict on each message, and the DNS record it was given (derived from the key by
/// Python's `cryptography`).
fn dkimpy(key: &str, test: &str, messages: &[Vec<u8>]) -> (String, Vec<bool>) {
    let verdicts = verifier::verify(&verifier::key_path(key), SELECTOR, test, messages);
    (verdicts.record, verdicts.each)
}

const CANONS: [(Canonicalization, Canonicalization); 4] = [
    (Canonicalization::Relaxed, Canonicalization::Relaxed),
    (Canonicalization::Simple, Canonicalization::Simple),
    (Canonicalization::Relaxed, Canonicalization::Simple),
    (Canonicalization::Simple, Canonicalization::Relaxed),
];

/// The cases of the issue, each under every canonicalisation: dot lines, bare LF input, a bare
/// CR, an 8-bit body and header, folded and oddly spaced headers, trailing blank lines, an
/// empty body, a message without a body.
fn cases() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "plain",
            b"From: Me <me@example.com>\r\nTo: you@example.org\r\nSubject: hi\r\nDate: Mon, 7 Dec 2026 03:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\nHello!\r\n".to_vec(),
        ),
        (
            "dot lines",
            b"From: me@example.com\r\nTo: you@example.org\r\n\r\n.\r\n..two\r\n.leading dot\r\nmid . dot\r\n.\r\n".to_vec(),
        ),
        (
            "bare LF and CR",
            b"From: me@example.com\nTo: you@example.org\nSubject: bare\n\nline one\nline two\r\nmixed\rcr alone\n\n\n".to_vec(),
        ),
        (
            "8-bit",
            "From: J\u{f6}rg <me@example.com>\r\nTo: you@example.org\r\nSubject: caf\u{e9} \u{2615}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nna\u{ef}ve \u{fc}ber \u{1f600}\r\n"
                .bytes()
                .chain([0x80, 0xff, 0xfe, b'\r', b'\n'])
                .collect(),
        ),
        (
            "folded and odd whitespace",
            b"From:   me@example.com  \r\nTo: a@example.org,\r\n\tb@example.org,\r\n   c@example.org\r\nSUBJECT:\t lots   of \t space \t \r\n  and a fold\r\nmessage-id:<2@example.com>\r\nX-Unsigned: x\r\n\r\n  lead\t\ttabs  \r\n \t \r\ntrailing ws   \r\n\r\n\r\n".to_vec(),
        ),
        ("empty body", b"From: me@example.com\r\nSubject: empty\r\n\r\n".to_vec()),
        ("no body", b"From: me@example.com\r\nSubject: no body".to_vec()),
        (
            "two To fields",
            b"From: me@example.com\r\nTo: a@example.org\r\nTo: b@example.org\r\n\r\nx\r\n".to_vec(),
        ),
    ]
}

fn all_cases_verify(key: &str) {
    let now = now();
    let mut messages = Vec::new();
    let mut names = Vec::new();
    for (h, b) in CANONS {
        let signer = signer(key).with_canonicalization(h, b);
        for (name, message) in cases() {
            let signed = signer.prepend(&message, now).unwrap();
            messages.push(wire(&signed));
            names.push(format!("{name} c={}/{}", h.as_str(), b.as_str()));
        }
    }
    let (record, verdicts) = dkimpy(key, &format!("cases-{key}"), &messages);
    assert_eq!(
        record,
        signer(key).key().dns_txt_record(),
        "our DNS record differs"
    );
    for (name, ok) in names.iter().zip(&verdicts) {
        assert!(ok, "dkimpy refused {key}: {name}");
    }
}

#[test]
fn rsa_pkcs1_every_case_and_canonicalization() {
    all_cases_verify(RSA_PKCS1);
}

#[test]
fn rsa_pkcs8_every_case_and_canonicalization() {
    all_cases_verify(RSA_PKCS8);
}

#[test]
fn ed25519_every_case_and_canonicalization() {
    all_cases_verify(ED25519);
}

/// The verifier really checks: one body byte changed, a signed header changed, a field
/// added in transit that oversigning covers: each refused; the unchanged message accepted.
#[test]
fn tampering_is_detected() {
    let message =
        b"From: me@example.com\r\nTo: you@example.org\r\nSubject: hi\r\n\r\nPay 100 EUR\r\n";
    let mut messages = Vec::new();
    for key in [RSA_PKCS1, ED25519] {
        let signer = signer(key).with_oversigning(true);
        let signed = wire(&signer.prepend(message, now()).unwrap());
        let at = signed.windows(3).position(|w| w == b"100").unwrap();
        let mut body = signed.clone();
        body[at] = b'9';
        let subject = String::from_utf8(signed.clone())
            .unwrap()
            .replace("Subject: hi", "Subject: ho");
        let mut second_from = signed.clone();
        second_from.splice(0..0, b"From: evil@example.net\r\n".iter().copied());
        messages.push(vec![signed, body, subject.into_bytes(), second_from]);
    }
    let (_, rsa) = dkimpy(RSA_PKCS1, "tamper-rsa", &messages[0]);
    let (_, ed) = dkimpy(ED25519, "tamper-ed", &messages[1]);
    for verdicts in [rsa, ed] {
        assert_eq!(verdicts, [true, false, false, false]);
    }
}

/// `x=` is written (after `t=`) and the signature verifies with it; one that has expired does
/// not.
#[test]
fn expiry_is_signed_and_honoured() {
    let message = b"From: me@example.com\r\nSubject: x\r\n\r\nbody\r\n";
    let signer = signer(ED25519).with_expiry(3600).unwrap();
    let now = now();
    let header = signer.sign(message, now).unwrap();
    let unfolded = header.as_str().replace("\r\n ", " ");
    assert!(
        unfolded.contains(&format!(" t={now}; x={};", now + 3600)),
        "{unfolded}"
    );
    let fresh = wire(&signer.prepend(message, now).unwrap());
    // dkimpy allows 10 hours for clocks that are off: expired two days ago.
    let expired = wire(&signer.prepend(message, now - 2 * 86_400).unwrap());
    let (_, verdicts) = dkimpy(ED25519, "expiry", &[fresh, expired]);
    assert_eq!(verdicts, [true, false]);
}

/// A 5 MiB body with bare LFs and dot lines, streamed through the hasher in odd chunks: the
/// same field as signing it whole, and dkimpy accepts what is sent.
#[test]
fn five_mib_streamed() {
    let mut message = b"From: me@example.com\nTo: you@example.org\nSubject: big\n\n".to_vec();
    let mut n = 0u64;
    while message.len() < 5 * 1024 * 1024 {
        n += 1;
        let line = match n % 5 {
            0 => format!(".dot line {n}\n"),
            1 => format!("line {n} with  spaces \t \r\n"),
            2 => "\n".to_owned(),
            3 => format!("{}\n", "x".repeat((n % 990) as usize)),
            _ => format!("caf\u{e9} {n}\r\n"),
        };
        message.extend_from_slice(line.as_bytes());
    }
    let now = now();
    let mut messages = Vec::new();
    for (h, b) in [CANONS[0], CANONS[1]] {
        let signer = signer(RSA_PKCS8).with_canonicalization(h, b);
        let mut hasher = signer.message_hasher();
        for chunk in message.chunks(8191) {
            hasher.update(chunk).unwrap();
        }
        let streamed = hasher.finish(now).unwrap();
        assert_eq!(streamed, signer.sign(&message, now).unwrap());
        // The body apart from its header section: the same field again.
        let split = message.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
        let mut body = signer.body_hasher();
        for chunk in message[split..].chunks(65_537) {
            body.update(chunk);
        }
        assert_eq!(
            body.finish_with_headers(&message[..split], now).unwrap(),
            streamed
        );
        let mut sent = streamed.as_bytes().to_vec();
        sent.extend_from_slice(&message);
        messages.push(wire(&sent));
    }
    let (_, verdicts) = dkimpy(RSA_PKCS8, "five-mib", &messages);
    assert_eq!(verdicts, [true, true]);
}

/// Random messages (odd whitespace, empty lines anywhere, dots, CR/LF mixtures, 8-bit bytes,
/// folded fields, random chunking): our canonicalisation agrees with dkimpy's on every one.
#[test]
fn random_messages_agree_with_dkimpy() {
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    const PIECES: [&[u8]; 14] = [
        b" ",
        b"\t",
        b"  \t ",
        b"\r\n",
        b"\n",
        b"\r",
        b"\r\n\r\n",
        b".",
        b"a",
        b"word",
        b"\xc3\xa9",
        b"\xff",
        b"-",
        b"\r\n ",
    ];
    let now = now();
    for key in [RSA_PKCS1, ED25519] {
        let mut messages = Vec::new();
        for i in 0..48 {
            let (h, b) = CANONS[i % 4];
            let signer = signer(key)
                .with_canonicalization(h, b)
                .with_oversigning(i % 3 == 0);
            let mut message = Vec::new();
            message.extend_from_slice(b"From: me@example.com\r\n");
            for _ in 0..next(4) {
                let name: &[u8] =
                    [b"Subject".as_slice(), b"To", b"cc", b"X-Other"][next(4) as usize];
                message.extend_from_slice(name);
                message.extend_from_slice(b":");
                for _ in 0..next(6) {
                    let piece: &[u8] = [b" ".as_slice(), b"\t", b"v", b"\r\n\t", b"\r\n ", b"x y"]
                        [next(6) as usize];
                    message.extend_from_slice(piece);
                }
                message.extend_from_slice(b"\r\n");
            }
            message.extend_from_slice(if i % 2 == 0 { b"\r\n" } else { b"\n" });
            for _ in 0..next(40) {
                message.extend_from_slice(PIECES[next(PIECES.len() as u64) as usize]);
            }
            // Signed in random chunks, checked against signing it whole.
            let mut hasher = signer.message_hasher();
            let mut rest = message.as_slice();
            while !rest.is_empty() {
                let take = (next(7) as usize + 1).min(rest.len());
                hasher.update(&rest[..take]).unwrap();
                rest = &rest[take..];
            }
            let header = hasher.finish(now).unwrap();
            assert_eq!(header, signer.sign(&message, now).unwrap(), "{message:?}");
            let mut sent = header.into_string().into_bytes();
            sent.extend_from_slice(&message);
            messages.push(wire(&sent));
        }
        let (_, verdicts) = dkimpy(key, &format!("random-{key}"), &messages);
        for (i, ok) in verdicts.iter().enumerate() {
            assert!(
                ok,
                "dkimpy refused random message {i} with {key}: {:?}",
                String::from_utf8_lossy(&messages[i])
            );
        }
    }
}
