//! Transcripts of what the engine refuses or bounds by default: AUTH without TLS, a body longer
//! than it declared, a BINARYMIME body changed on the way, credentials left in buffers, SCRAM's
//! iteration count, the session deadline.

use super::*;
#[cfg(feature = "scram")]
use crate::error::ScramError;
use crate::policy::BoundedPolicy;
#[cfg(feature = "scram")]
use crate::sasl::ClientNonce;
#[cfg(feature = "scram")]
use base64::Engine as _;

const EHLO_AUTH: &str = "
    S: 220 mx.example ESMTP
    C: EHLO client.example
    S: 250-mx.example
    S: 250-PIPELINING
    S: 250 AUTH SCRAM-SHA-256 PLAIN LOGIN XOAUTH2 OAUTHBEARER
";

const EHLO_PLAIN_DATA: &str = "
    S: 220 mx.example ESMTP
    C: EHLO client.example
    S: 250-mx.example
    S: 250 PIPELINING
";

const EHLO_BINARY: &str = "
    S: 220 mx.example ESMTP
    C: EHLO client.example
    S: 250-mx.example
    S: 250-PIPELINING
    S: 250-CHUNKING
    S: 250 BINARYMIME
";

#[test]
fn plaintext_auth_is_refused_by_default() {
    let mut h = Harness::ready(SessionConfig::default(), EHLO_AUTH);
    let refused = |m| SmtpError::Auth(AuthError::PlaintextRefused { mechanism: m });
    assert_eq!(
        h.session.login_auto("user", "pass").unwrap_err(),
        refused(AuthMechanism::Plain)
    );
    for mechanism in [
        AuthMechanism::Plain,
        AuthMechanism::Login,
        AuthMechanism::XOAuth2,
        AuthMechanism::OAuthBearer,
    ] {
        if mechanism.check_compiled_in().is_err() {
            continue;
        }
        assert_eq!(
            h.session.login(mechanism, "user", "pass").unwrap_err(),
            refused(mechanism)
        );
    }
    // SCRAM too: without TLS its advertisement could have been stripped.
    #[cfg(feature = "scram")]
    {
        let nonce = ClientNonce::new("fyko+d2lbbFgONRv9qkxdawL").unwrap();
        let input = AuthInput::new().with_nonce(nonce);
        assert_eq!(
            h.session
                .login_auto_with_input("user", "pass", input)
                .unwrap_err(),
            refused(AuthMechanism::ScramSha256)
        );
    }
    // Nothing was sent, and the session is still usable.
    assert_eq!(h.transmitted(), "");
    assert_eq!(h.session.state(), SessionState::Authentication);
    assert!(h.take_events().is_empty());
}

#[test]
fn plaintext_auth_is_sent_when_allowed_or_on_tls() {
    for config in [
        SessionConfig {
            plaintext_auth: PlaintextAuth::Allow,
            ..SessionConfig::default()
        },
        SessionConfig {
            tls: true,
            ..SessionConfig::default()
        },
    ] {
        let mut h = Harness::ready(config, EHLO_AUTH);
        h.session.login(AuthMechanism::Plain, "u", "p").unwrap();
        h.run("C: AUTH PLAIN AHUAcA==\nS: 235 ok");
        assert_eq!(
            h.take_events(),
            vec![Event::Authenticated(AuthMechanism::Plain)]
        );
    }
}

/// Start a streamed message with this hint, and return once the engine wants the body.
fn start_stream(h: &mut Harness, size_hint: Option<u64>) {
    let env = Envelope::new("a@x.example", &["b@y.example"]).unwrap();
    h.session
        .start_mail(
            env,
            BodyInfo::Streamed { size_hint },
            &MessageOptions::default(),
        )
        .unwrap();
}

#[test]
fn a_stream_longer_than_its_hint_is_abandoned_before_its_end() {
    let mut h = Harness::ready(config(), EHLO_PLAIN_DATA);
    start_stream(&mut h, Some(10));
    h.run(
        "C: MAIL FROM:<a@x.example>
         C: RCPT TO:<b@y.example>
         C: DATA
         S: 250 ok
         S: 250 ok
         S: 354 go",
    );
    assert!(
        h.take_events()
            .iter()
            .any(|e| matches!(e, Event::BodyWanted(_)))
    );
    h.session.send_body(b"12345678\r\n").unwrap();
    assert_eq!(h.transmitted(), "12345678\r\n");
    let big = vec![b'x'; 1 << 20];
    let err = h.session.send_body(&big).unwrap_err();
    assert_eq!(
        err,
        SmtpError::InvalidInput(InvalidInputError::BodyLongerThanDeclared { declared: 10 })
    );
    // Not a byte of the chunk that went past the hint, and no end of data.
    assert_eq!(h.transmitted(), "");
    assert_eq!(h.session.finish_body().unwrap_err(), err);
    assert_eq!(h.transmitted(), "");
    assert_eq!(h.session.state(), SessionState::Closed);
    assert_eq!(h.failure(), err);
}

#[test]
fn a_hint_that_forgets_the_crlf_of_bare_line_feeds_is_caught() {
    // Eight bytes on disk, ten as sent: the hint must be the size as sent.
    let mut h = Harness::ready(config(), EHLO_PLAIN_DATA);
    start_stream(&mut h, Some(8));
    h.run("C: MAIL FROM:<a@x.example>\nC: RCPT TO:<b@y.example>\nC: DATA\nS: 250 ok\nS: 250 ok\nS: 354 go");
    h.take_events();
    assert!(h.session.send_body(b"abc\ndef\n").is_err());
    assert_eq!(h.transmitted(), "");
}

#[test]
fn without_a_hint_the_policy_limit_bounds_the_stream() {
    let mut h = Harness::ready(
        SessionConfig {
            policy: Box::new(BoundedPolicy::new().max_message_size(100)),
            ..config()
        },
        EHLO_BINARY,
    );
    start_stream(&mut h, None);
    h.run("C: MAIL FROM:<a@x.example>\nC: RCPT TO:<b@y.example>");
    h.take_events();
    h.session.send_body(&[b'a'; 60]).unwrap();
    let err = h.session.send_body(&[b'b'; 60]).unwrap_err();
    assert!(matches!(err, SmtpError::Policy(_)), "{err:?}");
    // No BDAT at all went out: every byte was still held for the chunk that carries LAST.
    assert_eq!(h.transmitted(), "");
    assert_eq!(h.session.state(), SessionState::Closed);
}

#[test]
fn the_server_size_limit_bounds_a_stream_without_a_hint() {
    let mut h = Harness::ready(
        config(),
        "S: 220 mx\nC: EHLO client.example\nS: 250-mx\nS: 250 SIZE 50",
    );
    start_stream(&mut h, None);
    h.run("C: MAIL FROM:<a@x.example>\nS: 250 ok\nC: RCPT TO:<b@y.example>\nS: 250 ok\nC: DATA\nS: 354 go");
    h.take_events();
    let err = h.session.send_body(&[b'a'; 51]).unwrap_err();
    assert_eq!(
        err,
        SmtpError::Protocol(ProtocolError::MessageTooLarge {
            size: 51,
            limit: 50
        })
    );
    assert_eq!(h.transmitted(), "");
}

#[test]
fn an_in_memory_body_longer_than_declared_cannot_break_bdat_framing() {
    let mut h = Harness::ready(config(), EHLO_BINARY);
    let env = Envelope::new("a@x.example", &["b@y.example"]).unwrap();
    let info = seven_bit(6);
    h.session
        .start_mail(env, info, &MessageOptions::default())
        .unwrap();
    h.take_events();
    // Bytes past the declared BDAT size would be read by the server as commands.
    let err = h
        .session
        .send_body(b"hello\r\nRSET\r\nMAIL FROM:<evil@x>\r\n")
        .unwrap_err();
    assert!(matches!(
        err,
        SmtpError::InvalidInput(InvalidInputError::BodyLongerThanDeclared { declared: 6 })
    ));
    assert_eq!(h.transmitted(), "");
}

const BINARY_BODY: &[u8] = b"\x00bin\rary\nbody\x00\r";

#[test]
fn binarymime_goes_out_byte_for_byte() {
    let options = MessageOptions {
        body_type: Some(BodyType::BinaryMime),
        ..MessageOptions::default()
    };
    // In memory: one BDAT LAST of exactly the body, no added line end.
    let mut h = Harness::ready(config(), EHLO_BINARY);
    let env = Envelope::new("a@x.example", &["b@y.example"]).unwrap();
    h.session
        .start_mail(env, BodyInfo::in_memory(BINARY_BODY, &options), &options)
        .unwrap();
    h.body(BINARY_BODY);
    let mut expected =
        b"MAIL FROM:<a@x.example> BODY=BINARYMIME\r\nRCPT TO:<b@y.example>\r\nBDAT 15 LAST\r\n"
            .to_vec();
    expected.extend_from_slice(BINARY_BODY);
    assert_eq!(h.transmitted().into_bytes(), expected);
    h.feed(b"250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n");
    assert_eq!(h.sent().size, 15);

    // Streamed, in pieces that split the CR from what follows: the same bytes.
    let mut h = Harness::ready(
        SessionConfig {
            bdat_chunk_size: 8,
            ..config()
        },
        EHLO_BINARY,
    );
    let env = Envelope::new("a@x.example", &["b@y.example"]).unwrap();
    h.session
        .start_mail(
            env,
            BodyInfo::Streamed {
                size_hint: Some(15),
            },
            &options,
        )
        .unwrap();
    h.take_events();
    for piece in BINARY_BODY.chunks(5) {
        h.session.send_body(piece).unwrap();
    }
    h.session.finish_body().unwrap();
    let wire = h.transmitted().into_bytes();
    let mut expected =
        b"MAIL FROM:<a@x.example> BODY=BINARYMIME\r\nRCPT TO:<b@y.example>\r\n".to_vec();
    expected.extend_from_slice(b"BDAT 8\r\n");
    expected.extend_from_slice(&BINARY_BODY[..8]);
    expected.extend_from_slice(b"BDAT 7 LAST\r\n");
    expected.extend_from_slice(&BINARY_BODY[8..]);
    assert_eq!(
        String::from_utf8_lossy(&wire),
        String::from_utf8_lossy(&expected)
    );
}

#[test]
fn auth_payloads_are_wiped_from_the_engine_buffer() {
    let mut h = Harness::ready(config(), EHLO_AUTH);
    h.session
        .login(AuthMechanism::Plain, "user", "hunter2")
        .unwrap();
    let line = h.session.poll_transmit().unwrap();
    assert_eq!(&line[..], b"AUTH PLAIN AHVzZXIAaHVudGVyMg==\r\n");
    assert_eq!(h.session.wiped, line.len(), "the engine's copy was zeroed");
    assert!(!h.session.out_holds_secret);
    // The LOGIN exchange's answers are secrets too.
    let mut h = Harness::ready(config(), EHLO_AUTH);
    h.session
        .login(AuthMechanism::Login, "user", "hunter2")
        .unwrap();
    h.run("C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: dXNlcg==\nS: 334 UGFzc3dvcmQ6\nC: aHVudGVyMg==\nS: 235 ok");
    assert_eq!(
        h.session.wiped,
        "AUTH LOGIN\r\n".len() + "dXNlcg==\r\n".len() + "aHVudGVyMg==\r\n".len()
    );
    // Commands after AUTH are not secret and not copied.
    h.session.noop().unwrap();
    let before = h.session.wiped;
    assert_eq!(h.transmitted(), "NOOP\r\n");
    assert_eq!(h.session.wiped, before);
}

#[test]
fn the_wiping_transmit_buffer_zeroes_itself() {
    let mut buffer = WipeOnDrop(b"secret".to_vec());
    assert_eq!(buffer.as_ref(), b"secret");
    zeroize::Zeroize::zeroize(&mut buffer.0);
    assert!(buffer.0.iter().all(|&b| b == 0));
}

#[cfg(feature = "scram")]
#[test]
fn scram_iteration_cap_is_an_option_with_a_safe_default() {
    let nonce = "fyko+d2lbbFgONRv9qkxdawL";
    let server_first = |i: u32| {
        let text = format!("r={nonce}3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i={i}");
        format!(
            "334 {}",
            base64::engine::general_purpose::STANDARD.encode(text)
        )
    };
    for (max, iterations, accepted) in [
        (None, 4096, true),
        (None, 150_000, false),
        (Some(200_000), 150_000, true),
    ] {
        let mut h = Harness::ready(
            SessionConfig {
                tls: true,
                max_scram_iterations: max.unwrap_or(DEFAULT_MAX_SCRAM_ITERATIONS),
                ..SessionConfig::default()
            },
            EHLO_AUTH,
        );
        let input = AuthInput::new().with_nonce(ClientNonce::new(nonce).unwrap());
        h.session
            .login_with_input(AuthMechanism::ScramSha256, "user", "pencil", input)
            .unwrap();
        h.transmitted();
        h.feed(format!("{}\r\n", server_first(iterations)).as_bytes());
        let sent = h.transmitted();
        if accepted {
            assert!(sent.starts_with("Yz1"), "client-final sent: {sent:?}");
        } else {
            assert_eq!(sent, "*\r\n", "cancelled before any key derivation");
            h.feed(b"501 cancelled\r\n");
            assert!(matches!(
                h.failure(),
                SmtpError::Auth(AuthError::Scram {
                    error: ScramError::IterationCount { .. },
                    ..
                })
            ));
        }
    }
}
