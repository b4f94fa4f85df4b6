//! SCRAM-SHA-256 and -PLUS transcripts: the RFC 7677 exchange, every way a server can fail to
//! prove itself, the GS2 flag chosen for each combination of TLS, binding data and offer, and the
//! feature switched off.

// Without the feature only the refusal tests run; the RFC vectors stay for them to share.
#![cfg_attr(not(feature = "scram"), allow(dead_code))]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::*;
#[cfg(feature = "scram")]
use crate::error::ScramError;
use crate::error::{IoError, IoErrorKind};
use crate::sasl::ClientNonce;

/// RFC 7677 section 3.
const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

const EHLO_SCRAM: &str = "
    S: 220 mx.example ESMTP
    C: EHLO client.example
    S: 250-mx.example
    S: 250 AUTH PLAIN LOGIN SCRAM-SHA-256
";

const EHLO_PLUS: &str = "
    S: 220 mx.example ESMTP
    C: EHLO client.example
    S: 250-mx.example
    S: 250 AUTH PLAIN SCRAM-SHA-256 SCRAM-SHA-256-PLUS
";

fn b64(text: &str) -> String {
    STANDARD.encode(text)
}

fn input() -> AuthInput {
    AuthInput::new().with_nonce(ClientNonce::new(NONCE).unwrap())
}

/// [`input`] with TLS exporter binding data.
fn bound_input() -> AuthInput {
    input().with_tls_exporter([9; 32])
}

fn tls_config() -> SessionConfig {
    SessionConfig {
        tls: true,
        ..config()
    }
}

/// The client-first message of `user` with [`NONCE`] under the GS2 flag `gs2`.
fn client_first(gs2: &str) -> String {
    format!("{gs2},,n=user,r={NONCE}")
}

/// The opening of the RFC exchange, up to the client proof, as a transcript.
fn up_to_proof() -> String {
    format!(
        "C: AUTH SCRAM-SHA-256 {}\nS: 334 {}\nC: {}\n",
        b64(&client_first("n")),
        b64(SERVER_FIRST),
        b64(CLIENT_FINAL)
    )
}

/// [`up_to_proof`], then the server's final message `server_final` (base64), as a transcript.
fn up_to_server_final(server_final: &str) -> String {
    format!("{}S: 334 {}\n", up_to_proof(), b64(server_final))
}

/// A `login_auto` of `user` / `pencil` with `input`, which the session must take.
fn auto_login(h: &mut Harness, input: AuthInput) {
    h.session
        .login_auto_with_input("user", "pencil", input)
        .unwrap();
}

/// Past `EHLO_SCRAM`, a SCRAM-SHA-256 login of `user` / `pencil` started with [`input`].
#[cfg(feature = "scram")]
fn scram_login(h: &mut Harness) {
    ready(h, EHLO_SCRAM);
    h.session
        .login_with_input(AuthMechanism::ScramSha256, "user", "pencil", input())
        .unwrap();
}

#[cfg(feature = "scram")]
fn scram_failure(error: ScramError) -> SmtpError {
    SmtpError::Auth(AuthError::Scram {
        mechanism: AuthMechanism::ScramSha256,
        error,
    })
}

#[cfg(feature = "scram")]
#[test]
fn scram_rfc_7677_exchange_succeeds() {
    both_ways(config, |h| {
        ready(h, EHLO_SCRAM);
        auto_login(h, input());
        h.run(&format!(
            "{}C:\nS: 235 2.7.0 Authentication successful\n",
            up_to_server_final(SERVER_FINAL)
        ));
        assert_eq!(
            h.take_events(),
            vec![Event::Authenticated(AuthMechanism::ScramSha256)]
        );
        assert_eq!(h.session.state(), SessionState::Ready);
        assert_eq!(h.session.authenticated(), Some(AuthMechanism::ScramSha256));
    });
}

#[cfg(feature = "scram")]
#[test]
fn scram_wrong_server_signature_closes_the_session() {
    both_ways(config, |h| {
        scram_login(h);
        // Nothing is sent after the bad signature: not even the cancellation.
        h.run(&up_to_server_final(
            "v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        ));
        assert_eq!(
            h.failure(),
            scram_failure(ScramError::ServerSignatureMismatch)
        );
        assert_eq!(h.session.state(), SessionState::Closed);
        assert!(h.session.login_auto("user", "pencil").is_err());
    });
}

#[cfg(feature = "scram")]
#[test]
fn scram_success_without_server_signature_closes_the_session() {
    both_ways(config, |h| {
        scram_login(h);
        h.run(&format!("{}S: 235 2.7.0 ok\n", up_to_proof()));
        assert_eq!(h.failure(), scram_failure(ScramError::ServerNotVerified));
        assert_eq!(h.session.state(), SessionState::Closed);
        assert_eq!(h.session.authenticated(), None);
    });
}

#[cfg(feature = "scram")]
#[test]
fn scram_server_error_is_a_rejection_with_detail() {
    both_ways(config, |h| {
        scram_login(h);
        h.run(&format!(
            "{}C:\nS: 535 5.7.8 Authentication credentials invalid\n",
            up_to_server_final("e=invalid-proof")
        ));
        match h.failure() {
            SmtpError::Auth(AuthError::Rejected {
                mechanism,
                reply,
                detail,
            }) => {
                assert_eq!(mechanism, AuthMechanism::ScramSha256);
                assert_eq!(reply.code().get(), 535);
                assert_eq!(detail.as_deref(), Some("invalid-proof"));
            }
            other => panic!("{other:?}"),
        }
        // An ordinary refusal: the session stays usable.
        assert_eq!(h.session.state(), SessionState::Authentication);
    });
}

#[cfg(feature = "scram")]
#[test]
fn scram_535_after_the_proof_is_a_rejection() {
    both_ways(config, |h| {
        scram_login(h);
        h.run(&format!(
            "{}S: 535 5.7.8 Authentication credentials invalid\n",
            up_to_proof()
        ));
        assert!(matches!(
            h.failure(),
            SmtpError::Auth(AuthError::Rejected { detail: None, .. })
        ));
        assert_eq!(h.session.state(), SessionState::Authentication);
        // A retry goes out as a fresh exchange.
        h.session.login(AuthMechanism::Plain, "user", "x").unwrap();
        assert_eq!(h.transmitted(), "AUTH PLAIN AHVzZXIAeA==\r\n");
    });
}

#[cfg(feature = "scram")]
#[test]
fn scram_bad_server_first_cancels_the_exchange() {
    let s = "s=W22ZaJ0SNY7soEsUEjb6gQ==";
    for (server_first, error) in [
        (
            format!("r=someoneElsesNonce123,{s},i=4096"),
            ScramError::NonceMismatch,
        ),
        (
            format!("r={NONCE}srv,{s},i=1"),
            ScramError::IterationCount { count: 1 },
        ),
        (
            format!("r={NONCE}srv,{s},i=4000000000"),
            ScramError::IterationCount {
                count: 4_000_000_000,
            },
        ),
        (
            format!("r={NONCE}srv,s=%%%,i=4096"),
            ScramError::InvalidSalt,
        ),
    ] {
        both_ways(config, |h| {
            scram_login(h);
            h.run(&format!(
                "C: AUTH SCRAM-SHA-256 {}\nS: 334 {}\nC: *\nS: 501 5.7.0 cancelled\n",
                b64(&client_first("n")),
                b64(&server_first)
            ));
            assert_eq!(h.failure(), scram_failure(error), "{server_first}");
            // Nothing secret was sent yet: the session stays usable.
            assert_eq!(h.session.state(), SessionState::Authentication);
        });
    }
}

#[cfg(feature = "scram")]
#[test]
fn scram_plus_is_preferred_on_tls_with_binding_data() {
    both_ways(tls_config, |h| {
        ready(h, EHLO_PLUS);
        auto_login(h, bound_input());
        assert_eq!(
            h.transmitted(),
            format!(
                "AUTH SCRAM-SHA-256-PLUS {}\r\n",
                b64(&client_first("p=tls-exporter"))
            )
        );
    });
}

#[cfg(feature = "scram")]
#[test]
fn scram_gs2_flag_follows_rfc_5802_section_6() {
    let first = |flag: &str| format!("AUTH SCRAM-SHA-256 {}\r\n", b64(&client_first(flag)));
    // TLS with binding data, -PLUS not offered: "y" (a stripped -PLUS is detected).
    let mut h = Harness::ready(tls_config(), EHLO_SCRAM);
    auto_login(&mut h, bound_input());
    assert_eq!(h.transmitted(), first("y"));

    // TLS with binding data, -PLUS offered but plain SCRAM asked for: "n".
    let mut h = Harness::ready(tls_config(), EHLO_PLUS);
    h.session
        .login_with_input(AuthMechanism::ScramSha256, "user", "pencil", bound_input())
        .unwrap();
    assert_eq!(h.transmitted(), first("n"));

    // Binding data on a connection the engine does not know as TLS is ignored: "n", and
    // -PLUS is neither chosen nor allowed.
    let mut h = Harness::ready(config(), EHLO_PLUS);
    assert_eq!(
        h.session
            .login_with_input(
                AuthMechanism::ScramSha256Plus,
                "user",
                "pencil",
                bound_input(),
            )
            .unwrap_err(),
        SmtpError::Auth(AuthError::ChannelBindingUnavailable {
            mechanism: AuthMechanism::ScramSha256Plus
        })
    );
    assert_eq!(h.transmitted(), "");
    auto_login(&mut h, bound_input());
    assert_eq!(h.transmitted(), first("n"));

    // TLS without binding data (e.g. TLS 1.2): "n", and -PLUS refused before anything is sent.
    let mut h = Harness::ready(tls_config(), EHLO_PLUS);
    assert_eq!(
        h.session
            .login_with_input(AuthMechanism::ScramSha256Plus, "user", "pencil", input())
            .unwrap_err(),
        SmtpError::Auth(AuthError::ChannelBindingUnavailable {
            mechanism: AuthMechanism::ScramSha256Plus
        })
    );
    auto_login(&mut h, input());
    assert_eq!(h.transmitted(), first("n"));
}

#[cfg(feature = "scram")]
#[test]
fn scram_needs_a_nonce() {
    let mut h = Harness::ready(config(), EHLO_SCRAM);
    assert_eq!(
        h.session
            .login(AuthMechanism::ScramSha256, "user", "pencil")
            .unwrap_err(),
        SmtpError::InvalidInput(InvalidInputError::argument(
            Field::Nonce,
            crate::error::ArgumentError::Empty
        ))
    );
    // Without a nonce auto-selection skips SCRAM.
    h.session.login_auto("user", "pencil").unwrap();
    assert_eq!(h.transmitted(), "AUTH PLAIN AHVzZXIAcGVuY2ls\r\n");
}

#[test]
fn scram_only_server_and_no_usable_mechanism() {
    let mut h = Harness::ready(
        config(),
        "S: 220 x\nC: EHLO client.example\nS: 250-x\nS: 250 AUTH SCRAM-SHA-256-PLUS",
    );
    // Not on TLS: -PLUS is out; nothing else is offered.
    assert_eq!(
        h.session
            .login_auto_with_input("user", "pencil", input())
            .unwrap_err(),
        SmtpError::Auth(AuthError::UnsupportedMechanism { mechanism: None })
    );
    assert_eq!(h.transmitted(), "");
}

#[cfg(not(feature = "scram"))]
#[test]
fn scram_feature_off_is_refused_without_sending() {
    let mut h = Harness::ready(tls_config(), EHLO_PLUS);
    for m in [AuthMechanism::ScramSha256, AuthMechanism::ScramSha256Plus] {
        assert_eq!(
            h.session
                .login_with_input(m, "user", "pencil", bound_input())
                .unwrap_err(),
            SmtpError::InvalidInput(InvalidInputError::FeatureDisabled { feature: "scram" })
        );
    }
    assert_eq!(h.transmitted(), "");
    // Auto-selection skips SCRAM.
    auto_login(&mut h, bound_input());
    assert_eq!(h.transmitted(), "AUTH PLAIN AHVzZXIAcGVuY2ls\r\n");
}

#[cfg(feature = "scram")]
#[test]
fn scram_transcript_and_audit_hold_no_proof() {
    let (mut h, audit, transcript) = Recorder::harness();
    ready(&mut h, EHLO_SCRAM);
    auto_login(&mut h, input());
    h.run(&format!(
        "{}C:\nS: 235 ok\n",
        up_to_server_final(SERVER_FINAL)
    ));
    let t = transcript.0.lock().unwrap().join("\n");
    assert!(t.contains("C: AUTH SCRAM-SHA-256 [redacted]"), "{t}");
    assert!(t.contains("C: [redacted]"), "{t}");
    // The server's challenges too: salt + iterations + signature would allow a dictionary attack.
    assert!(t.contains("S: 334 [redacted]"), "{t}");
    assert!(!t.contains(&b64(SERVER_FIRST)), "{t}");
    assert!(!t.contains(&b64(SERVER_FINAL)), "{t}");
    assert!(t.contains("S: 235 ok"), "{t}");
    let a = audit.0.lock().unwrap().join("\n");
    assert!(
        a.contains("Authenticated { mechanism: ScramSha256 }"),
        "{a}"
    );
    let proof = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    for text in [&t, &a, &format!("{:?}", h.session)] {
        assert!(!text.contains("pencil"), "{text}");
        assert!(!text.contains(&b64("pencil")[..6]), "{text}");
        assert!(!text.contains(proof), "{text}");
        assert!(!text.contains(&b64(CLIENT_FINAL)), "{text}");
    }
}

/// A random source that fails with `kind` (a test of what `auth_input` makes of it).
fn failing(kind: IoErrorKind) -> impl FnOnce(&mut [u8]) -> Result<(), IoError> {
    move |_| {
        Err(IoError {
            kind,
            message: "no entropy here".into(),
        })
    }
}

/// A TLS layer that must not be asked: there is no TLS.
fn no_binding() -> Option<[u8; 32]> {
    panic!("no channel binding is asked for without TLS")
}

#[test]
fn auth_input_draws_nothing_for_a_login_that_will_not_use_scram() {
    let h = Harness::ready(config(), EHLO_FULL);
    let input = h
        .session
        .auth_input(None, |_| panic!("no nonce is needed"), no_binding)
        .unwrap();
    assert!(input.nonce().is_none());
}

#[cfg(feature = "scram")]
#[test]
fn auth_input_draws_a_nonce_when_scram_is_offered_and_no_binding_without_tls() {
    let h = Harness::ready(config(), EHLO_PLUS);
    let input = h
        .session
        .auth_input(
            None,
            |buf| {
                buf.fill(7);
                Ok(())
            },
            no_binding,
        )
        .unwrap();
    assert_eq!(
        input.nonce(),
        Some(&ClientNonce::from_random([7; 18])),
        "the nonce is made of the bytes drawn"
    );
    assert!(input.tls_exporter().is_none());
}

#[cfg(feature = "scram")]
#[test]
fn a_source_without_randomness_leaves_scram_out_of_auto_selection_only() {
    let h = Harness::ready(config(), EHLO_SCRAM);
    let unsupported = IoErrorKind::Unsupported;
    let auto = h
        .session
        .auth_input(None, failing(unsupported), || None)
        .unwrap();
    assert!(
        auto.nonce().is_none(),
        "auto-selection goes on without SCRAM"
    );

    let chosen = h.session.auth_input(
        Some(AuthMechanism::ScramSha256),
        failing(unsupported),
        || None,
    );
    assert!(
        matches!(&chosen, Err(SmtpError::Io { during: SmtpOp::Auth, error }) if error.kind == unsupported),
        "{chosen:?}"
    );
    // Any other failure of the source is an error, also in auto-selection.
    let broken = h
        .session
        .auth_input(None, failing(IoErrorKind::Other), || None);
    assert!(
        matches!(&broken, Err(SmtpError::Io { during: SmtpOp::Auth, error }) if error.message.contains("no entropy here")),
        "{broken:?}"
    );
}
