//! Properties: no credential can add a line to an AUTH exchange.

use super::*;

// ---- properties ----

/// Strings biased towards the bytes the mechanisms care about.
fn credential() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-zA-Z0-9@.=,\\x00-\\x1f\\x7f ü€]{0,24}",]
}

/// Each write appends exactly one line: one CRLF, at its end, and no other CR or LF.
fn assert_one_line(bytes: &[u8]) {
    assert!(bytes.ends_with(b"\r\n"), "{bytes:?}");
    let body = &bytes[..bytes.len() - 2];
    assert!(
        !body.contains(&b'\r') && !body.contains(&b'\n'),
        "{bytes:?}"
    );
}

proptest! {
    #[test]
    fn new_refuses_or_every_line_is_one_crlf_line(
        user in credential(),
        secret in credential(),
        mech in prop_oneof![
            Just(AuthMechanism::Plain),
            Just(AuthMechanism::Login),
            Just(AuthMechanism::XOAuth2),
            Just(AuthMechanism::OAuthBearer),
        ],
        challenges in proptest::collection::vec(
            prop_oneof![Just(String::new()), "[A-Za-z0-9+/]{0,8}={0,2}", any::<String>()],
            0..4,
        ),
    ) {
        let Ok(mut ex) = SaslExchange::new(mech, &user, &secret) else {
            return Ok(());
        };
        let mut out = BytesMut::new();
        ex.write_initial(&mut out);
        assert_one_line(&out);
        for c in &challenges {
            let mut out = BytesMut::new();
            match ex.respond(&challenge(c), &mut out) {
                Ok(_) => assert_one_line(&out),
                Err(_) => prop_assert!(out.is_empty()),
            }
        }
    }

    #[test]
    fn plain_and_login_carry_exactly_the_credentials(
        user in credential(),
        secret in credential(),
    ) {
        if let Ok(mut ex) = SaslExchange::new(AuthMechanism::Plain, &user, &secret) {
            let mut blob = vec![0u8];
            blob.extend_from_slice(user.as_bytes());
            blob.push(0);
            blob.extend_from_slice(secret.as_bytes());
            prop_assert_eq!(initial(&mut ex).unwrap(), blob);
        }
        if let Ok(mut ex) = SaslExchange::new(AuthMechanism::Login, &user, &secret) {
            prop_assert_eq!(initial(&mut ex), None);
            prop_assert_eq!(unb64(&answer(&mut ex, "VXNlcm5hbWU6").unwrap().1), user.as_bytes());
            prop_assert_eq!(unb64(&answer(&mut ex, "UGFzc3dvcmQ6").unwrap().1), secret.as_bytes());
        }
    }

    #[test]
    fn validation_matches_the_rules(user in credential(), secret in credential()) {
        let nul_cr_lf = |s: &str| s.bytes().any(|b| matches!(b, 0 | b'\r' | b'\n'));
        let control = |s: &str| s.bytes().any(|b| b < 0x20 || b == 0x7f);
        let plain_ok = !user.is_empty() && !secret.is_empty() && !nul_cr_lf(&user) && !nul_cr_lf(&secret);
        prop_assert_eq!(SaslExchange::new(AuthMechanism::Plain, &user, &secret).is_ok(), plain_ok);
        prop_assert_eq!(SaslExchange::new(AuthMechanism::Login, &user, &secret).is_ok(), plain_ok);
        let oauth_ok = !secret.is_empty() && !control(&user) && !control(&secret);
        prop_assert_eq!(
            SaslExchange::new(AuthMechanism::XOAuth2, &user, &secret).is_ok(),
            cfg!(feature = "xoauth2") && oauth_ok && !user.is_empty()
        );
        prop_assert_eq!(
            SaslExchange::new(AuthMechanism::OAuthBearer, &user, &secret).is_ok(),
            cfg!(feature = "oauthbearer") && oauth_ok
        );
    }
}
