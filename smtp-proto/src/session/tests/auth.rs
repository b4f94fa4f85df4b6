//! Transcripts of AUTH: mechanism choice, refusals and retries, error challenges, cancellation.

use super::*;

/// Past `ehlo`, a `login_auto` of `user` / `secret`, then the rest of the exchange: `script`.
fn auto_login(h: &mut Harness, ehlo: &str, script: &str) {
    ready(h, ehlo);
    h.session.login_auto("user", "secret").unwrap();
    h.run(script);
}

#[test]
fn login_plain_then_second_login_is_wrong_state() {
    both_ways(config, |h| {
        auto_login(
            h,
            EHLO_FULL,
            "
            C: AUTH PLAIN AHVzZXIAc2VjcmV0
            S: 235 2.7.0 Authentication successful
            ",
        );
        assert_eq!(
            h.take_events(),
            vec![Event::Authenticated(AuthMechanism::Plain)]
        );
        assert_eq!(h.session.state(), SessionState::Ready);
        assert_wrong_state(h.session.login_auto("user", "secret"));
    });
}

#[test]
fn login_falls_back_to_login_mechanism() {
    both_ways(config, |h| {
        auto_login(
            h,
            EHLO_LOCKSTEP,
            "
            C: AUTH LOGIN
            S: 334 VXNlcm5hbWU6
            C: dXNlcg==
            S: 334 UGFzc3dvcmQ6
            C: c2VjcmV0
            S: 235 ok
            ",
        );
        assert_eq!(
            h.take_events(),
            vec![Event::Authenticated(AuthMechanism::Login)]
        );
    });
}

#[test]
fn login_without_password_mechanisms_is_unsupported() {
    let mut h = Harness::new(config());
    h.run("S: 220 x\nC: EHLO client.example\nS: 250-x\nS: 250 AUTH XOAUTH2");
    h.take_events();
    assert_eq!(
        h.session.login_auto("u", "p").unwrap_err(),
        SmtpError::Auth(AuthError::UnsupportedMechanism { mechanism: None })
    );
    assert_eq!(
        h.session.login(AuthMechanism::Plain, "u", "p").unwrap_err(),
        SmtpError::Auth(AuthError::UnsupportedMechanism {
            mechanism: Some(AuthMechanism::Plain)
        })
    );
    assert_eq!(h.session.poll_transmit(), None, "nothing sent");
    assert_eq!(h.session.state(), SessionState::Authentication);
}

#[test]
fn auth_rejected_keeps_reply_and_allows_retry() {
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        h.session.login_auto("user", "wrong").unwrap();
        h.run(
            "
            C: AUTH PLAIN AHVzZXIAd3Jvbmc=
            S: 535 5.7.8 Authentication credentials invalid
            ",
        );
        match h.failure() {
            SmtpError::Auth(AuthError::Rejected { reply, .. }) => {
                assert_eq!(reply.code().get(), 535);
                assert_eq!(
                    reply.enhanced().map(|e| e.to_string()).as_deref(),
                    Some("5.7.8")
                );
                assert!(reply.text().contains("credentials invalid"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(h.session.state(), SessionState::Authentication);
        h.session
            .login(AuthMechanism::Login, "user", "right")
            .unwrap();
        assert_eq!(h.transmitted(), "AUTH LOGIN\r\n");
    });
}

/// Past `EHLO_FULL`, a login with the token mechanism `mech`, whose initial response the
/// server answers with the error challenge `challenge` (base64); the client must answer
/// `answer`, and the server refuses. Returns the failure.
#[cfg(any(feature = "xoauth2", feature = "oauthbearer"))]
fn refused_after_error_challenge(
    h: &mut Harness,
    mech: AuthMechanism,
    challenge: &str,
    answer: &str,
) -> SmtpError {
    ready(h, EHLO_FULL);
    h.session.login(mech, "user@example.com", "tok").unwrap();
    let sent = h.transmitted();
    assert!(sent.starts_with(&format!("AUTH {mech} ")), "{sent}");
    h.run(&format!(
        "S: 334 {challenge}\nC: {answer}\nS: 535 5.7.8 credentials not accepted"
    ));
    h.failure()
}

#[cfg(feature = "xoauth2")]
#[test]
fn xoauth2_error_challenge_is_answered_with_an_empty_line() {
    both_ways(config, |h| {
        // base64 of {"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}
        let challenge = "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==";
        match refused_after_error_challenge(h, AuthMechanism::XOAuth2, challenge, "") {
            SmtpError::Auth(AuthError::Rejected { detail, reply, .. }) => {
                assert!(detail.unwrap().contains("\"status\":\"401\""));
                assert_eq!(reply.code().get(), 535);
            }
            other => panic!("{other:?}"),
        }
    });
}

#[cfg(feature = "oauthbearer")]
#[test]
fn oauthbearer_error_challenge_is_answered_with_ctrl_a() {
    both_ways(config, |h| {
        let err = refused_after_error_challenge(
            h,
            AuthMechanism::OAuthBearer,
            "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=",
            "AQ==",
        );
        assert!(
            matches!(
                err,
                SmtpError::Auth(AuthError::Rejected {
                    detail: Some(_),
                    ..
                })
            ),
            "{err:?}"
        );
    });
}

#[test]
fn malformed_challenge_cancels_the_exchange() {
    both_ways(config, |h| {
        auto_login(
            h,
            EHLO_LOCKSTEP,
            "
            C: AUTH LOGIN
            S: 334 not base64 !!!
            C: *
            S: 501 5.7.0 cancelled
            ",
        );
        assert_eq!(
            h.failure(),
            SmtpError::Auth(AuthError::MalformedChallenge {
                mechanism: AuthMechanism::Login
            })
        );
        assert_eq!(h.session.state(), SessionState::Authentication);
    });
}

#[test]
fn endless_challenges_are_cut_off() {
    let mut h = Harness::new(config());
    auto_login(
        &mut h,
        EHLO_FULL,
        "
        C: AUTH PLAIN AHVzZXIAc2VjcmV0
        S: 334 
        C: AHVzZXIAc2VjcmV0
        S: 334 
        C: *
        S: 501 cancelled
        ",
    );
    assert!(matches!(
        h.failure(),
        SmtpError::Auth(AuthError::TooManyChallenges { .. })
    ));
}

/// After the client's `*` only a final reply may come (RFC 4954 section 4). A `334` means
/// the server still reads SASL responses and would take the next command for one: the replies
/// are out of step, and the session closes.
#[test]
fn a_challenge_after_the_cancel_closes_the_session() {
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        h.session
            .login(AuthMechanism::Plain, "user", "secret")
            .unwrap();
        h.run(
            "
            C: AUTH PLAIN AHVzZXIAc2VjcmV0
            S: 334 bm90IGVtcHR5
            C: *
            S: 334 
            ",
        );
        let events = h.take_events();
        assert!(
            matches!(
                events.last(),
                Some(Event::Failed {
                    error: SmtpError::Protocol(ProtocolError::OutOfSync {
                        during: SmtpOp::Auth,
                        ..
                    }),
                    session: SessionAfter::Closed,
                })
            ),
            "{events:?}"
        );
        assert_eq!(h.session.state(), SessionState::Closed);
        assert!(h.session.noop().is_err());
        assert_eq!(h.transmitted(), "");
    });
}
