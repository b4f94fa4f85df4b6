//! Tests of the `sasl` module.

use super::*;
use crate::error::{ArgumentError, Field};
use crate::reply::ReplyCode;
use proptest::prelude::*;

mod properties;
mod scram;

fn challenge(text: &str) -> Reply {
    Reply::new(ReplyCode::new(334).unwrap(), None, text)
}

fn b64(raw: &[u8]) -> String {
    STANDARD.encode(raw)
}

fn unb64(s: &str) -> Vec<u8> {
    STANDARD.decode(s).expect("valid base64")
}

/// The initial line, checked for `AUTH <MECH>` and CRLF; returns the decoded initial response.
fn initial(ex: &mut SaslExchange) -> Option<Vec<u8>> {
    let mut out = BytesMut::new();
    ex.write_initial(&mut out);
    let line = core::str::from_utf8(&out).unwrap();
    let line = line.strip_suffix("\r\n").expect("CRLF at the end");
    assert!(!line.contains(['\r', '\n']), "{line:?}");
    let rest = line
        .strip_prefix("AUTH ")
        .unwrap()
        .strip_prefix(ex.mechanism().name())
        .unwrap();
    if rest.is_empty() {
        None
    } else {
        Some(unb64(rest.strip_prefix(' ').unwrap()))
    }
}

/// Answer `text`; returns the step and the line written (without its CRLF).
fn answer(ex: &mut SaslExchange, text: &str) -> Result<(SaslStep, String), AuthError> {
    let mut out = BytesMut::from(&b"previous"[..]);
    match ex.respond(&challenge(text), &mut out) {
        Ok(step) => {
            let line = core::str::from_utf8(&out[8..]).unwrap().to_owned();
            let line = line
                .strip_suffix("\r\n")
                .expect("CRLF at the end")
                .to_owned();
            assert!(!line.contains(['\r', '\n']), "{line:?}");
            Ok((step, line))
        }
        Err(e) => {
            assert_eq!(&out[..], b"previous", "nothing appended on error");
            Err(e)
        }
    }
}

fn arg_err(field: Field, reason: ArgumentError) -> InvalidInputError {
    InvalidInputError::Argument { field, reason }
}

fn forbidden(field: Field, byte: u8, index: usize) -> InvalidInputError {
    arg_err(field, ArgumentError::ForbiddenByte { byte, index })
}

fn too_many(mechanism: AuthMechanism) -> AuthError {
    AuthError::TooManyChallenges { mechanism }
}

fn malformed(mechanism: AuthMechanism) -> AuthError {
    AuthError::MalformedChallenge { mechanism }
}

/// The step that answers a server's error challenge carrying `detail`.
#[cfg(any(feature = "xoauth2", feature = "oauthbearer", feature = "scram"))]
fn error_step(detail: &str) -> SaslStep {
    SaslStep::RespondToError {
        detail: detail.to_owned(),
    }
}

/// `mech` refuses `bad` as user name (beside `secret`) and as secret (beside `user`): `byte` at `index`.
#[track_caller]
fn assert_forbidden_in_both(
    mech: AuthMechanism,
    (user, secret): (&str, &str),
    bad: &str,
    byte: u8,
    index: usize,
) {
    assert_eq!(
        SaslExchange::new(mech, bad, secret).unwrap_err(),
        forbidden(Field::UserName, byte, index),
        "{mech} user {byte:#x}"
    );
    assert_eq!(
        SaslExchange::new(mech, user, bad).unwrap_err(),
        forbidden(Field::Secret, byte, index),
        "{mech} secret {byte:#x}"
    );
}

/// The token mechanism `mech` refuses every control and DEL after `prefix`, in the user name
/// and in the token, and refuses an empty token.
#[cfg(any(feature = "xoauth2", feature = "oauthbearer"))]
#[track_caller]
fn assert_token_validation(mech: AuthMechanism, prefix: &str) {
    for byte in (0u8..0x20).chain([0x7f]) {
        let bad = format!("{prefix}{}", byte as char);
        assert_forbidden_in_both(mech, ("u@example.com", "tok"), &bad, byte, prefix.len());
    }
    assert_eq!(
        SaslExchange::new(mech, "u@example.com", "").unwrap_err(),
        arg_err(Field::Secret, ArgumentError::Empty)
    );
}

/// With its feature off, `mech` is refused before its input is validated: even bad input
/// gets the feature error.
#[cfg(any(not(feature = "xoauth2"), not(feature = "oauthbearer")))]
#[track_caller]
fn assert_feature_off(mech: AuthMechanism, feature: &'static str) {
    for (user, secret) in [("u@example.com", "tok"), ("", "\r\n"), ("", "")] {
        assert_eq!(
            SaslExchange::new(mech, user, secret).unwrap_err(),
            InvalidInputError::FeatureDisabled { feature },
            "{user:?} {secret:?}"
        );
    }
}

#[test]
fn mechanism_names_round_trip() {
    for m in AuthMechanism::ALL {
        assert_eq!(AuthMechanism::from_name(m.name()), Some(m));
        assert_eq!(AuthMechanism::from_name(&m.name().to_lowercase()), Some(m));
        assert_eq!(m.to_string(), m.name());
    }
    assert_eq!(AuthMechanism::from_name("CRAM-MD5"), None);
}

#[test]
fn only_the_oauth_mechanisms_take_a_token() {
    let token: Vec<_> = AuthMechanism::ALL
        .into_iter()
        .filter(|m| m.takes_token())
        .collect();
    assert_eq!(token, [AuthMechanism::XOAuth2, AuthMechanism::OAuthBearer]);
}

// ---- PLAIN ----

#[test]
fn plain_initial_line_matches_the_engine_contract() {
    let mut ex = SaslExchange::new(AuthMechanism::Plain, "user", "secret").unwrap();
    let mut out = BytesMut::new();
    ex.write_initial(&mut out);
    assert_eq!(&out[..], b"AUTH PLAIN AHVzZXIAc2VjcmV0\r\n");
    assert_eq!(initial(&mut ex).unwrap(), b"\0user\0secret");
}

#[test]
fn plain_appends_after_existing_bytes() {
    let mut ex = SaslExchange::new(AuthMechanism::Plain, "user", "wrong").unwrap();
    let mut out = BytesMut::from(&b"EHLO x\r\n"[..]);
    ex.write_initial(&mut out);
    assert_eq!(&out[..], b"EHLO x\r\nAUTH PLAIN AHVzZXIAd3Jvbmc=\r\n");
}

#[test]
fn plain_utf8_credentials() {
    let mut ex = SaslExchange::new(AuthMechanism::Plain, "jörg", "pässwörd €").unwrap();
    assert_eq!(
        initial(&mut ex).unwrap(),
        "\0jörg\0pässwörd €".as_bytes().to_vec()
    );
}

#[test]
fn plain_empty_challenge_resends_once_then_too_many() {
    let mut ex = SaslExchange::new(AuthMechanism::Plain, "user", "secret").unwrap();
    initial(&mut ex);
    let (step, line) = answer(&mut ex, "").unwrap();
    assert_eq!(step, SaslStep::Respond);
    assert_eq!(line, "AHVzZXIAc2VjcmV0");
    assert_eq!(
        answer(&mut ex, "").unwrap_err(),
        too_many(AuthMechanism::Plain)
    );
    assert_eq!(
        answer(&mut ex, "").unwrap_err(),
        too_many(AuthMechanism::Plain)
    );
}

#[test]
fn plain_whitespace_only_challenge_is_empty() {
    let mut ex = SaslExchange::new(AuthMechanism::Plain, "user", "secret").unwrap();
    assert_eq!(answer(&mut ex, " ").unwrap().1, "AHVzZXIAc2VjcmV0");
}

#[test]
fn plain_non_empty_challenge_is_malformed() {
    let mut ex = SaslExchange::new(AuthMechanism::Plain, "user", "secret").unwrap();
    assert_eq!(
        answer(&mut ex, "VXNlcm5hbWU6").unwrap_err(),
        malformed(AuthMechanism::Plain)
    );
}

// ---- LOGIN ----

#[test]
fn login_sequence() {
    let mut ex = SaslExchange::new(AuthMechanism::Login, "user", "secret").unwrap();
    let mut out = BytesMut::new();
    ex.write_initial(&mut out);
    assert_eq!(&out[..], b"AUTH LOGIN\r\n");
    let (step, line) = answer(&mut ex, "VXNlcm5hbWU6").unwrap();
    assert_eq!((step, line.as_str()), (SaslStep::Respond, "dXNlcg=="));
    let (step, line) = answer(&mut ex, "UGFzc3dvcmQ6").unwrap();
    assert_eq!((step, line.as_str()), (SaslStep::Respond, "c2VjcmV0"));
    assert_eq!(
        answer(&mut ex, "UGFzc3dvcmQ6").unwrap_err(),
        too_many(AuthMechanism::Login)
    );
}

#[test]
fn login_does_not_interpret_the_prompt() {
    // Both prompts swapped, empty, or unpadded: the order of answers is what counts.
    for (first, second) in [
        ("UGFzc3dvcmQ6", "VXNlcm5hbWU6"),
        ("", ""),
        ("dXNlcm5hbWU", "cGFzc3dvcmQ"),
    ] {
        let mut ex = SaslExchange::new(AuthMechanism::Login, "me@example.com", "pw").unwrap();
        assert_eq!(unb64(&answer(&mut ex, first).unwrap().1), b"me@example.com");
        assert_eq!(unb64(&answer(&mut ex, second).unwrap().1), b"pw");
    }
}

#[test]
fn login_malformed_challenge() {
    for bad in ["not base64 !!!", "VXNlcm5hbWU6!", "%%%", "A"] {
        let mut ex = SaslExchange::new(AuthMechanism::Login, "user", "secret").unwrap();
        assert_eq!(
            answer(&mut ex, bad).unwrap_err(),
            malformed(AuthMechanism::Login),
            "{bad:?}"
        );
    }
    // On the second challenge too.
    let mut ex = SaslExchange::new(AuthMechanism::Login, "user", "secret").unwrap();
    answer(&mut ex, "VXNlcm5hbWU6").unwrap();
    assert_eq!(
        answer(&mut ex, "Password:").unwrap_err(),
        malformed(AuthMechanism::Login)
    );
}

// ---- validation, PLAIN and LOGIN ----

#[test]
fn password_mechanisms_refuse_nul_cr_lf() {
    for mech in [AuthMechanism::Plain, AuthMechanism::Login] {
        for byte in [0u8, b'\r', b'\n'] {
            let bad = format!("ab{}c", byte as char);
            assert_forbidden_in_both(mech, ("user", "secret"), &bad, byte, 2);
        }
        // Other controls are passed through (base64 keeps them off the wire).
        assert!(SaslExchange::new(mech, "us\ter", "se\x01cr\x7fet").is_ok());
        // The first forbidden byte is reported.
        assert_eq!(
            SaslExchange::new(mech, "\n\0", "x").unwrap_err(),
            forbidden(Field::UserName, b'\n', 0)
        );
        // The user name is checked before the secret.
        assert_eq!(
            SaslExchange::new(mech, "a\rb", "c\nd").unwrap_err(),
            forbidden(Field::UserName, b'\r', 1)
        );
    }
}

#[test]
fn password_mechanisms_refuse_empty_values() {
    for mech in [AuthMechanism::Plain, AuthMechanism::Login] {
        assert_eq!(
            SaslExchange::new(mech, "", "secret").unwrap_err(),
            arg_err(Field::UserName, ArgumentError::Empty)
        );
        assert_eq!(
            SaslExchange::new(mech, "user", "").unwrap_err(),
            arg_err(Field::Secret, ArgumentError::Empty)
        );
    }
}

#[test]
fn secret_errors_do_not_show_the_secret() {
    let e = SaslExchange::new(AuthMechanism::Plain, "user", "hunter2\nmore").unwrap_err();
    for text in [e.to_string(), format!("{e:?}")] {
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("more"), "{text}");
    }
}

// ---- Debug ----

#[test]
fn debug_never_shows_secrets() {
    let password = "hunter2-secret";
    for mech in [
        AuthMechanism::Plain,
        AuthMechanism::Login,
        AuthMechanism::XOAuth2,
        AuthMechanism::OAuthBearer,
    ] {
        let Ok(mut ex) = SaslExchange::new(mech, "user", password) else {
            continue; // feature off
        };
        let mut out = BytesMut::new();
        ex.write_initial(&mut out);
        for d in [format!("{ex:?}"), format!("{ex:#?}")] {
            assert!(
                d.contains(mech.name()) || d.contains(&format!("{mech:?}")),
                "{d}"
            );
            assert!(!d.contains("hunter2"), "{d}");
            assert!(!d.contains(&b64(password.as_bytes())), "{d}");
            // base64 of "hunter2" at every alignment
            for prefix in ["", "\0", "\0\0"] {
                let aligned = b64(format!("{prefix}{password}").as_bytes());
                assert!(!d.contains(&aligned[4..12]), "{d}");
            }
            assert!(!d.contains("AHVzZXIAaHVudGVyMi1zZWNyZXQ="), "{d}");
            assert!(!d.contains("user"), "{d}");
        }
    }
}

// ---- XOAUTH2 ----

#[cfg(feature = "xoauth2")]
#[test]
fn xoauth2_initial_line() {
    let mut ex = SaslExchange::new(
        AuthMechanism::XOAuth2,
        "someuser@example.com",
        "ya29.vF9dft4",
    )
    .unwrap();
    assert_eq!(
        initial(&mut ex).unwrap(),
        b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4\x01\x01"
    );
    // Google's documented example.
    let mut ex = SaslExchange::new(
        AuthMechanism::XOAuth2,
        "someuser@example.com",
        "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
    )
    .unwrap();
    let mut out = BytesMut::new();
    ex.write_initial(&mut out);
    assert_eq!(
            &out[..],
            &b"AUTH XOAUTH2 dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==\r\n"[..]
        );
}

#[cfg(feature = "xoauth2")]
#[test]
fn xoauth2_error_challenge_then_too_many() {
    let mut ex = SaslExchange::new(AuthMechanism::XOAuth2, "u@example.com", "tok").unwrap();
    initial(&mut ex);
    let json = r#"{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}"#;
    let (step, line) = answer(&mut ex, &b64(json.as_bytes())).unwrap();
    assert_eq!(step, error_step(json));
    assert_eq!(line, "", "an empty line");
    assert_eq!(
        answer(&mut ex, &b64(json.as_bytes())).unwrap_err(),
        too_many(AuthMechanism::XOAuth2)
    );
}

#[cfg(feature = "xoauth2")]
#[test]
fn xoauth2_undecodable_challenge_keeps_raw_text() {
    let mut ex = SaslExchange::new(AuthMechanism::XOAuth2, "u@example.com", "tok").unwrap();
    let (step, line) = answer(&mut ex, "not base64: token expired").unwrap();
    assert_eq!(step, error_step("not base64: token expired"));
    assert_eq!(line, "");
    // Invalid UTF-8 inside valid base64 is decoded lossily.
    let mut ex = SaslExchange::new(AuthMechanism::XOAuth2, "u@example.com", "tok").unwrap();
    let (step, _) = answer(&mut ex, &b64(b"{\xff}")).unwrap();
    assert_eq!(step, error_step("{\u{fffd}}"));
}

#[cfg(feature = "xoauth2")]
#[test]
fn xoauth2_validation() {
    let m = AuthMechanism::XOAuth2;
    assert_token_validation(m, "ab");
    assert_eq!(
        SaslExchange::new(m, "", "tok").unwrap_err(),
        arg_err(Field::UserName, ArgumentError::Empty)
    );
    // `=` and `,` need no escaping in XOAUTH2.
    let mut ex = SaslExchange::new(m, "a=b,c", "tok").unwrap();
    assert_eq!(
        initial(&mut ex).unwrap(),
        b"user=a=b,c\x01auth=Bearer tok\x01\x01"
    );
}

#[cfg(not(feature = "xoauth2"))]
#[test]
fn xoauth2_feature_off_is_refused() {
    assert_feature_off(AuthMechanism::XOAuth2, "xoauth2");
    // The other mechanisms still work.
    assert!(SaslExchange::new(AuthMechanism::Plain, "u", "p").is_ok());
}

// ---- OAUTHBEARER ----

#[cfg(feature = "oauthbearer")]
#[test]
fn oauthbearer_initial_line() {
    let mut ex =
        SaslExchange::new(AuthMechanism::OAuthBearer, "user@example.com", "vF9dft4qmT").unwrap();
    assert_eq!(
        initial(&mut ex).unwrap(),
        b"n,a=user@example.com,\x01auth=Bearer vF9dft4qmT\x01\x01"
    );
    // RFC 7628 section 4.1 example (without host and port).
    let mut out = BytesMut::new();
    SaslExchange::new(
        AuthMechanism::OAuthBearer,
        "user@example.com",
        "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
    )
    .unwrap()
    .write_initial(&mut out);
    let line = core::str::from_utf8(&out).unwrap();
    assert!(line.starts_with("AUTH OAUTHBEARER bixhPXVzZXJAZXhhbXBsZS5jb20sAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB"), "{line}");
}

#[cfg(feature = "oauthbearer")]
#[test]
fn oauthbearer_escapes_the_saslname() {
    let mut ex = SaslExchange::new(AuthMechanism::OAuthBearer, "a=b,c==,", "tok").unwrap();
    assert_eq!(
        initial(&mut ex).unwrap(),
        b"n,a=a=3Db=2Cc=3D=3D=2C,\x01auth=Bearer tok\x01\x01"
    );
    assert_eq!(saslname("").expose(), b"");
    assert_eq!(saslname("plain").expose(), b"plain");
    assert_eq!(saslname(",").expose(), b"=2C");
    assert_eq!(saslname("ü=").expose(), "ü=3D".as_bytes());
}

#[cfg(feature = "oauthbearer")]
#[test]
fn oauthbearer_without_user_omits_authzid() {
    let mut ex = SaslExchange::new(AuthMechanism::OAuthBearer, "", "tok").unwrap();
    assert_eq!(initial(&mut ex).unwrap(), b"n,,\x01auth=Bearer tok\x01\x01");
}

#[cfg(feature = "oauthbearer")]
#[test]
fn oauthbearer_error_challenge_answered_with_ctrl_a() {
    let mut ex = SaslExchange::new(AuthMechanism::OAuthBearer, "u@example.com", "tok").unwrap();
    initial(&mut ex);
    let (step, line) = answer(&mut ex, "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=").unwrap();
    assert_eq!(step, error_step(r#"{"status":"invalid_token"}"#));
    assert_eq!(line, "AQ==");
    assert_eq!(unb64(&line), b"\x01");
    assert_eq!(
        answer(&mut ex, "").unwrap_err(),
        too_many(AuthMechanism::OAuthBearer)
    );
}

#[cfg(feature = "oauthbearer")]
#[test]
fn oauthbearer_validation() {
    assert_token_validation(AuthMechanism::OAuthBearer, "x");
}

#[cfg(not(feature = "oauthbearer"))]
#[test]
fn oauthbearer_feature_off_is_refused() {
    assert_feature_off(AuthMechanism::OAuthBearer, "oauthbearer");
}

/// `check_credentials` refuses what a login with the same mechanism would, before any I/O.
#[test]
fn credentials_are_checked_by_each_mechanisms_rules() {
    for m in [AuthMechanism::Plain, AuthMechanism::Login] {
        assert!(m.check_credentials("me", "hunter2").is_ok(), "{m}");
        assert_eq!(
            m.check_credentials("", "hunter2").unwrap_err(),
            arg_err(Field::UserName, ArgumentError::Empty),
            "{m}"
        );
        assert_eq!(
            m.check_credentials("me", "pa\nss").unwrap_err(),
            forbidden(Field::Secret, b'\n', 2),
            "{m}"
        );
    }
    #[cfg(feature = "scram")]
    {
        let scram = AuthMechanism::ScramSha256;
        assert!(scram.check_credentials("me", "hunter2").is_ok());
        // SASLprep leaves nothing of a soft hyphen.
        assert_eq!(
            scram.check_credentials("me", "\u{ad}").unwrap_err(),
            arg_err(Field::Secret, ArgumentError::Empty)
        );
    }
}
