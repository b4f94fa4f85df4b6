//! Transcript tests of the engine: each test reads like the session it checks.
//!
//! `S:` lines are fed to the engine (consecutive ones in one read), `C:` lines must be exactly
//! what the engine has queued at that point (consecutive ones form one pipelined flight). Every
//! script also runs fed one byte at a time, and must give the same bytes and events.

use std::sync::{Arc, Mutex};

use super::*;
use crate::audit::AuditSink;
use crate::command::{DsnReturn, EnvelopeId, Notify, OriginalRecipient};
use crate::error::ProtocolError;

mod chaining;
mod hostile;
mod scram;
mod secure_defaults;

/// One side's lines of a transcript.
enum Step {
    Server(String),
    Client(String),
}

fn parse_script(script: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for raw in script.lines() {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        // "C:" alone is an empty line (editors strip the trailing space).
        let padded;
        let line = if trimmed == "C:" || trimmed == "S:" {
            padded = format!("{trimmed} ");
            padded.as_str()
        } else {
            raw.trim_start()
        };
        let (side, text) = line.split_at(3.min(line.len()));
        let text = format!("{text}\r\n");
        match (side, steps.last_mut()) {
            ("S: ", Some(Step::Server(buf))) => buf.push_str(&text),
            ("S: ", _) => steps.push(Step::Server(text)),
            ("C: ", Some(Step::Client(buf))) => buf.push_str(&text),
            ("C: ", _) => steps.push(Step::Client(text)),
            _ => panic!("transcript line must start with 'S: ' or 'C: ': {raw:?}"),
        }
    }
    steps
}

/// A session under test plus everything it emitted.
struct Harness {
    session: Session,
    events: Vec<Event>,
    byte_at_a_time: bool,
}

/// The configuration of most transcripts: AUTH is allowed without TLS, which the default
/// refuses (see `plaintext_auth_is_refused_by_default`).
fn config() -> SessionConfig {
    SessionConfig {
        plaintext_auth: PlaintextAuth::Allow,
        ..SessionConfig::default()
    }
}

impl Harness {
    fn new(config: SessionConfig) -> Harness {
        Harness {
            session: Session::new(Domain::new("client.example").unwrap(), config),
            events: Vec::new(),
            byte_at_a_time: false,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        if self.byte_at_a_time {
            for b in bytes {
                self.session.feed(core::slice::from_ref(b));
            }
        } else {
            self.session.feed(bytes);
        }
        self.drain_events();
    }

    fn drain_events(&mut self) {
        while let Some(e) = self.session.poll_event() {
            self.events.push(e);
        }
    }

    fn transmitted(&mut self) -> String {
        let mut out = Vec::new();
        while let Some(b) = self.session.poll_transmit() {
            out.extend_from_slice(&b);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Run a transcript: feed `S:` lines, check `C:` lines, and check nothing else was sent.
    fn run(&mut self, script: &str) {
        for step in parse_script(script) {
            match step {
                Step::Server(text) => {
                    let sent = self.transmitted();
                    assert_eq!(sent, "", "client sent bytes the transcript does not show");
                    self.feed(text.as_bytes());
                }
                Step::Client(text) => {
                    self.drain_events();
                    assert_eq!(
                        self.transmitted(),
                        text,
                        "client bytes differ from transcript"
                    );
                }
            }
        }
        self.drain_events();
        assert_eq!(self.transmitted(), "", "unexpected trailing client bytes");
    }

    fn take_events(&mut self) -> Vec<Event> {
        self.drain_events();
        core::mem::take(&mut self.events)
    }

    /// The last event, which must be a failure; returns its error.
    fn failure(&mut self) -> SmtpError {
        match self.take_events().pop() {
            Some(Event::Failed(e)) => e,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    fn sent(&mut self) -> SendOutcome {
        match self.take_events().pop() {
            Some(Event::Sent(o)) => o,
            other => panic!("expected Sent, got {other:?}"),
        }
    }

    fn mail(&mut self, from: &str, to: &[&str], body: &[u8]) -> Result<(), SmtpError> {
        self.mail_with(from, to, body, &MessageOptions::default())
    }

    fn mail_with(
        &mut self,
        from: &str,
        to: &[&str],
        body: &[u8],
        opts: &MessageOptions,
    ) -> Result<(), SmtpError> {
        let env = Envelope::new(from, to)?;
        let info = BodyInfo::Known {
            size: crate::body::normalized_len(body),
            eight_bit: !body.is_ascii(),
        };
        self.session.start_mail(env, info, opts)
    }

    /// Supply the body when the engine asks for it.
    fn body(&mut self, body: &[u8]) {
        assert!(
            self.take_events().contains(&Event::BodyWanted),
            "engine did not ask for the body"
        );
        self.session.send_body(body).unwrap();
        self.session.finish_body().unwrap();
    }
}

/// Run `f` twice: reads whole, and reads one byte at a time. Both must pass.
fn both_ways(config: fn() -> SessionConfig, f: impl Fn(&mut Harness)) {
    for byte_at_a_time in [false, true] {
        let mut h = Harness::new(config());
        h.byte_at_a_time = byte_at_a_time;
        f(&mut h);
    }
}

const EHLO_FULL: &str = "
    S: 220 mx.example ESMTP
    C: EHLO client.example
    S: 250-mx.example hello
    S: 250-PIPELINING
    S: 250-SIZE 1000
    S: 250-8BITMIME
    S: 250-SMTPUTF8
    S: 250-DSN
    S: 250-ENHANCEDSTATUSCODES
    S: 250-STARTTLS
    S: 250 AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER
";

const EHLO_LOCKSTEP: &str = "
    S: 220 mx.example ESMTP
    C: EHLO client.example
    S: 250-mx.example
    S: 250 AUTH LOGIN
";

fn ready(h: &mut Harness, ehlo: &str) {
    h.run(ehlo);
    let events = h.take_events();
    assert!(
        matches!(events.as_slice(), [Event::Greeting(_), Event::Ready]),
        "{events:?}"
    );
    assert_eq!(h.session.state(), SessionState::Authentication);
}

#[test]
fn greeting_and_ehlo() {
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        let caps = h.session.capabilities();
        assert!(caps.has(Extension::Pipelining));
        assert_eq!(caps.size_limit(), Some(1000));
        assert_eq!(caps.raw_lines()[0], "PIPELINING");
        assert_eq!(h.session.timeout(), None, "nothing awaited when idle");
    });
}

#[test]
fn greeting_554_is_an_error_with_the_server_text() {
    both_ways(config, |h| {
        h.run("S: 554 5.7.1 go away spammer");
        let err = h.failure();
        let reply = err.reply().expect("reply kept");
        assert_eq!(reply.code().get(), 554);
        assert!(reply.text().contains("go away spammer"));
        assert_eq!(h.session.state(), SessionState::Closed);
        // Sticky: every later command gives the same error.
        assert_eq!(h.session.noop().unwrap_err(), err);
    });
}

#[test]
fn ehlo_502_falls_back_to_helo() {
    both_ways(config, |h| {
        h.run(
            "
            S: 220 old.example SMTP
            C: EHLO client.example
            S: 502 5.5.2 command not recognised
            C: HELO client.example
            S: 250 old.example
            ",
        );
        assert_eq!(h.take_events().last(), Some(&Event::Ready));
        assert!(h.session.capabilities().raw_lines().is_empty());
    });
}

#[test]
fn ehlo_refused_otherwise_is_fatal() {
    both_ways(config, |h| {
        h.run(
            "
            S: 220 mx.example
            C: EHLO client.example
            S: 550 no
            ",
        );
        let err = h.failure();
        assert!(matches!(
            err,
            SmtpError::Protocol(ProtocolError::UnexpectedCode {
                during: SmtpOp::Ehlo,
                ..
            })
        ));
        assert_eq!(h.session.state(), SessionState::Closed);
    });
}

#[test]
fn starttls_upgrade_forgets_capabilities_and_redoes_ehlo() {
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        h.session.start_tls().unwrap();
        h.run(
            "
            C: STARTTLS
            S: 220 2.0.0 go ahead
            ",
        );
        assert_eq!(h.take_events(), vec![Event::UpgradeTls]);
        assert_eq!(
            h.session.poll_transmit(),
            None,
            "nothing sent during the barrier"
        );
        assert_eq!(h.session.timeout(), None);
        h.session.tls_established().unwrap();
        assert!(h.session.is_tls());
        assert!(h.session.capabilities().raw_lines().is_empty());
        h.run(
            "
            C: EHLO client.example
            S: 250-mx.example
            S: 250 AUTH PLAIN
            ",
        );
        assert_eq!(h.take_events(), vec![Event::Ready]);
        assert!(!h.session.capabilities().has(Extension::StartTls));
        // STARTTLS only once.
        assert!(matches!(
            h.session.start_tls(),
            Err(SmtpError::InvalidInput(_))
        ));
    });
}

#[test]
fn starttls_not_advertised_closes_the_session() {
    let mut h = Harness::new(config());
    ready(&mut h, EHLO_LOCKSTEP);
    let err = h.session.start_tls().unwrap_err();
    assert_eq!(
        err,
        SmtpError::Protocol(ProtocolError::ExtensionUnavailable { name: "STARTTLS" })
    );
    assert_eq!(h.session.state(), SessionState::Closed);
    assert_eq!(h.session.poll_transmit(), None);
    // No plaintext fallback: a login now fails with the same error.
    assert_eq!(h.session.login_auto("u", "p").unwrap_err(), err);
}

#[test]
fn starttls_refused_closes_the_session() {
    for code in [
        "454 4.7.0 TLS not available",
        "501 syntax",
        "502 no",
        "500 what",
    ] {
        let mut h = Harness::new(config());
        ready(&mut h, EHLO_FULL);
        h.session.start_tls().unwrap();
        h.run(&format!("C: STARTTLS\nS: {code}"));
        let err = h.failure();
        assert!(
            matches!(
                err,
                SmtpError::Protocol(ProtocolError::UnexpectedCode {
                    during: SmtpOp::StartTls,
                    ..
                })
            ),
            "{err:?}"
        );
        assert_eq!(h.session.state(), SessionState::Closed);
    }
}

/// "NO STARTTLS" (Poddebniak et al., 2021) / CVE-2021-38371 class: bytes after the 220, in the same
/// read or a later one, must never be read as replies after the upgrade.
#[test]
fn starttls_response_injection_is_refused() {
    // Same read.
    let mut h = Harness::new(config());
    ready(&mut h, EHLO_FULL);
    h.session.start_tls().unwrap();
    assert_eq!(h.transmitted(), "STARTTLS\r\n");
    h.feed(b"220 go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n");
    let err = h.failure();
    assert!(matches!(
        err,
        SmtpError::Protocol(ProtocolError::ResponseInjection { .. })
    ));
    assert_eq!(h.session.state(), SessionState::Closed);
    assert!(h.session.tls_established().is_err());

    // A partial line, in a later read.
    let mut h = Harness::new(config());
    ready(&mut h, EHLO_FULL);
    h.session.start_tls().unwrap();
    h.transmitted();
    h.feed(b"220 go ahead\r\n");
    assert_eq!(h.take_events(), vec![Event::UpgradeTls]);
    h.feed(b"25");
    assert!(matches!(
        h.failure(),
        SmtpError::Protocol(ProtocolError::ResponseInjection { bytes: 2 })
    ));
}

#[test]
fn login_plain_then_second_login_is_wrong_state() {
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        h.session.login_auto("user", "secret").unwrap();
        h.run(
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
        assert!(matches!(
            h.session.login_auto("user", "secret"),
            Err(SmtpError::InvalidInput(
                InvalidInputError::WrongState { .. }
            ))
        ));
    });
}

#[test]
fn login_falls_back_to_login_mechanism() {
    both_ways(config, |h| {
        ready(h, EHLO_LOCKSTEP);
        h.session.login_auto("user", "secret").unwrap();
        h.run(
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

#[cfg(feature = "xoauth2")]
#[test]
fn xoauth2_error_challenge_is_answered_with_an_empty_line() {
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        h.session
            .login(AuthMechanism::XOAuth2, "user@example.com", "tok")
            .unwrap();
        let sent = h.transmitted();
        assert!(sent.starts_with("AUTH XOAUTH2 "), "{sent}");
        // base64 of {"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}
        h.run(
            "
            S: 334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==
            C: 
            S: 535 5.7.8 Username and Password not accepted
            ",
        );
        match h.failure() {
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
        ready(h, EHLO_FULL);
        h.session
            .login(AuthMechanism::OAuthBearer, "user@example.com", "tok")
            .unwrap();
        assert!(h.transmitted().starts_with("AUTH OAUTHBEARER "));
        h.run(
            "
            S: 334 eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=
            C: AQ==
            S: 535 5.7.8 invalid token
            ",
        );
        assert!(matches!(
            h.failure(),
            SmtpError::Auth(AuthError::Rejected {
                detail: Some(_),
                ..
            })
        ));
    });
}

#[test]
fn malformed_challenge_cancels_the_exchange() {
    both_ways(config, |h| {
        ready(h, EHLO_LOCKSTEP);
        h.session.login_auto("user", "secret").unwrap();
        h.run(
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
    ready(&mut h, EHLO_FULL);
    h.session.login_auto("user", "secret").unwrap();
    h.run(
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

#[test]
fn pipelined_transaction_with_queue_id() {
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        h.mail(
            "a@example.com",
            &["b@example.org"],
            b"Subject: x\r\n\r\n.hi\r\n",
        )
        .unwrap();
        h.run(
            "
            C: MAIL FROM:<a@example.com> SIZE=19
            C: RCPT TO:<b@example.org>
            C: DATA
            S: 250 2.1.0 Ok
            S: 250 2.1.5 Ok
            S: 354 End data with <CR><LF>.<CR><LF>
            ",
        );
        h.body(b"Subject: x\r\n\r\n.hi\r\n");
        h.run(
            "
            C: Subject: x
            C: 
            C: ..hi
            C: .
            S: 250 2.0.0 Ok: queued as 4XyZ12
            ",
        );
        let outcome = h.sent();
        assert_eq!(outcome.queue_id.as_deref(), Some("4XyZ12"));
        assert_eq!(outcome.size, 19);
        assert_eq!(outcome.accepted().count(), 1);
        assert_eq!(h.session.state(), SessionState::Ready);
    });
}

#[test]
fn pipelined_refused_recipient_in_the_middle_accept_partial() {
    both_ways(
        || SessionConfig {
            recipient_policy: RecipientPolicy::AcceptPartial,
            ..config()
        },
        |h| {
            ready(h, EHLO_FULL);
            h.mail(
                "a@x.example",
                &["one@y.example", "two@y.example", "three@y.example"],
                b"hi\r\n",
            )
            .unwrap();
            h.run(
                "
                C: MAIL FROM:<a@x.example> SIZE=4
                C: RCPT TO:<one@y.example>
                C: RCPT TO:<two@y.example>
                C: RCPT TO:<three@y.example>
                C: DATA
                S: 250 ok
                S: 250 ok
                S: 550 5.1.1 no such user
                S: 250 ok
                S: 354 go
                ",
            );
            h.body(b"hi\r\n");
            h.run("C: hi\nC: .\nS: 250 queued");
            let outcome = h.sent();
            let refused: Vec<_> = outcome.refused().map(|r| r.recipient.as_str()).collect();
            assert_eq!(refused, ["two@y.example"]);
            assert_eq!(outcome.accepted().count(), 2);
            assert_eq!(outcome.recipients[1].reply.code().get(), 550);
        },
    );
}

#[test]
fn require_all_waits_for_rcpt_replies_and_resets_lazily() {
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        h.mail(
            "a@x.example",
            &["one@y.example", "two@y.example"],
            b"hi\r\n",
        )
        .unwrap();
        h.run(
            "
            C: MAIL FROM:<a@x.example> SIZE=4
            C: RCPT TO:<one@y.example>
            C: RCPT TO:<two@y.example>
            S: 250 ok
            S: 250 ok
            S: 450 4.2.0 mailbox busy
            ",
        );
        match h.failure() {
            SmtpError::Protocol(ProtocolError::RecipientsRefused { refused, accepted }) => {
                assert_eq!(accepted, 1);
                assert_eq!(refused.len(), 1);
                assert_eq!(refused[0].index, 1);
                assert_eq!(refused[0].recipient, "two@y.example");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(h.session.state(), SessionState::Ready);
        // The server still holds the transaction: the next one starts with RSET, in the same flight.
        h.mail("a@x.example", &["one@y.example"], b"hi\r\n")
            .unwrap();
        h.run(
            "
            C: RSET
            C: MAIL FROM:<a@x.example> SIZE=4
            C: RCPT TO:<one@y.example>
            C: DATA
            S: 250 reset
            S: 250 ok
            S: 250 ok
            S: 354 go
            ",
        );
        h.body(b"hi\r\n");
        h.run("C: hi\nC: .\nS: 250 ok");
        h.sent();
    });
}

#[test]
fn all_recipients_refused_data_refused() {
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        h.mail("a@x.example", &["nobody@y.example"], b"hi\r\n")
            .unwrap();
        h.run(
            "
            C: MAIL FROM:<a@x.example> SIZE=4
            C: RCPT TO:<nobody@y.example>
            C: DATA
            S: 250 ok
            S: 550 5.1.1 unknown
            S: 554 5.5.1 no valid recipients
            ",
        );
        assert!(matches!(
            h.failure(),
            SmtpError::Protocol(ProtocolError::RecipientsRefused { accepted: 0, .. })
        ));
        assert_eq!(h.session.state(), SessionState::Ready);
        // Session still usable.
        h.session.noop().unwrap();
        h.run("C: NOOP\nS: 250 ok");
    });
}

#[test]
fn all_recipients_refused_but_354_sends_a_lone_dot() {
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        h.mail("a@x.example", &["nobody@y.example"], b"secret body\r\n")
            .unwrap();
        h.run(
            "
            C: MAIL FROM:<a@x.example> SIZE=13
            C: RCPT TO:<nobody@y.example>
            C: DATA
            S: 250 ok
            S: 550 5.1.1 unknown
            S: 354 go ahead anyway
            C: .
            S: 554 5.5.1 no valid recipients
            ",
        );
        let events = h.take_events();
        assert!(
            !events.contains(&Event::BodyWanted),
            "body must not be asked for"
        );
        assert!(matches!(
            events.last(),
            Some(Event::Failed(SmtpError::Protocol(
                ProtocolError::RecipientsRefused { .. }
            )))
        ));
        // The dot ended the transaction: no RSET needed.
        h.session.noop().unwrap();
        h.run("C: NOOP\nS: 250 ok");
    });
}

#[test]
fn mail_from_refused_with_pipelined_commands() {
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        h.mail("bad@x.example", &["b@y.example"], b"hi\r\n")
            .unwrap();
        h.run(
            "
            C: MAIL FROM:<bad@x.example> SIZE=4
            C: RCPT TO:<b@y.example>
            C: DATA
            S: 553 5.7.1 sender rejected
            S: 503 5.5.1 need MAIL
            S: 503 5.5.1 need RCPT
            ",
        );
        match h.failure() {
            SmtpError::Protocol(ProtocolError::UnexpectedCode { during, reply }) => {
                assert_eq!(during, SmtpOp::MailFrom);
                assert_eq!(reply.code().get(), 553);
            }
            other => panic!("{other:?}"),
        }
        // MAIL was refused: no transaction to reset.
        h.mail("a@x.example", &["b@y.example"], b"hi\r\n").unwrap();
        assert!(h.transmitted().starts_with("MAIL FROM:<a@x.example>"));
    });
}

#[test]
fn lockstep_without_pipelining() {
    both_ways(config, |h| {
        ready(h, EHLO_LOCKSTEP);
        h.mail("a@x.example", &["b@y.example", "c@y.example"], b"hi")
            .unwrap();
        h.run(
            "
            C: MAIL FROM:<a@x.example>
            S: 250 ok
            C: RCPT TO:<b@y.example>
            S: 250 ok
            C: RCPT TO:<c@y.example>
            S: 250 ok
            C: DATA
            S: 354 go
            ",
        );
        h.body(b"hi");
        h.run("C: hi\nC: .\nS: 250 ok");
        h.sent();
    });
}

#[test]
fn chunking_sends_bdat_last_in_the_same_flight() {
    both_ways(config, |h| {
        h.run(
            "
            S: 220 mx
            C: EHLO client.example
            S: 250-mx
            S: 250-PIPELINING
            S: 250-CHUNKING
            S: 250 8BITMIME
            ",
        );
        h.take_events();
        h.mail("a@x.example", &["b@y.example"], b".dot\nline")
            .unwrap();
        assert_eq!(
            h.transmitted(),
            "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"
        );
        h.body(b".dot\nline");
        // No dot-stuffing with BDAT; bare LF normalised; final CRLF added: 12 bytes.
        assert_eq!(h.transmitted(), "BDAT 12 LAST\r\n.dot\r\nline\r\n");
        h.run("S: 250 ok\nS: 250 ok\nS: 250 2.0.0 queued as B1");
        assert_eq!(h.sent().queue_id.as_deref(), Some("B1"));
    });
}

/// The outcome's size counts message bytes (what the server stores), never the dots added by
/// stuffing: a streamed DATA body and the same body by BDAT report the same size.
#[test]
fn streamed_data_size_excludes_stuffed_dots() {
    let mut h = Harness::new(config());
    h.run("S: 220 mx\nC: EHLO client.example\nS: 250-mx\nS: 250 PIPELINING");
    h.take_events();
    let env = Envelope::new("a@x.example", &["b@y.example"]).unwrap();
    h.session
        .start_mail(
            env,
            BodyInfo::Streamed { size_hint: None },
            &MessageOptions::default(),
        )
        .unwrap();
    h.run("C: MAIL FROM:<a@x.example>\nC: RCPT TO:<b@y.example>\nC: DATA\nS: 250 ok\nS: 250 ok\nS: 354 go");
    h.session.send_body(b".a\n..b\r").unwrap();
    h.session.send_body(b"\n.").unwrap();
    h.session.finish_body().unwrap();
    assert_eq!(h.transmitted(), "..a\r\n...b\r\n..\r\n.\r\n");
    h.feed(b"250 queued\r\n");
    let body: &[u8] = b".a\n..b\r\n.";
    let size = h.sent().size;
    assert_eq!(size, crate::body::normalized_len(body));
    assert_eq!(size, 12);
}

#[test]
fn streamed_bdat_chunks_are_windowed() {
    let mut h = Harness::new(SessionConfig {
        max_bdat_in_flight: 2,
        bdat_chunk_size: 4,
        ..config()
    });
    h.run("S: 220 mx\nC: EHLO client.example\nS: 250-mx\nS: 250-PIPELINING\nS: 250 CHUNKING");
    h.take_events();
    let env = Envelope::new("a@x.example", &["b@y.example"]).unwrap();
    h.session
        .start_mail(
            env,
            BodyInfo::Streamed { size_hint: None },
            &MessageOptions::default(),
        )
        .unwrap();
    assert!(h.take_events().contains(&Event::BodyWanted));
    // Input chunks are gathered into BDAT chunks of 4 bytes; the last bytes are always held
    // back for the chunk that carries LAST.
    h.session.send_body(b"abc\r").unwrap();
    assert!(h.session.wants_body());
    assert_eq!(
        h.transmitted(),
        "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"
    );
    h.session.send_body(b"\ndef").unwrap();
    assert!(h.session.wants_body());
    h.session.send_body(b"gh").unwrap();
    assert!(!h.session.wants_body(), "window of 2 is full");
    assert_eq!(h.transmitted(), "BDAT 4\r\nabc\rBDAT 4\r\n\ndef");
    h.feed(b"250 ok\r\n250 ok\r\n250 chunk\r\n");
    assert!(h.session.wants_body());
    h.session.finish_body().unwrap();
    assert_eq!(h.transmitted(), "BDAT 4 LAST\r\ngh\r\n");
    h.feed(b"250 chunk\r\n250 done\r\n");
    assert_eq!(h.sent().size, 12);
}

#[test]
fn code_421_at_any_stage_closes() {
    for (stage, script) in [
        ("greeting", "S: 421 busy"),
        (
            "ehlo",
            "S: 220 x\nC: EHLO client.example\nS: 421 4.3.2 shutting down",
        ),
    ] {
        let mut h = Harness::new(config());
        h.run(script);
        assert!(
            matches!(h.failure(), SmtpError::Protocol(ProtocolError::UnexpectedCode { reply, .. }) if reply.code().get() == 421),
            "{stage}"
        );
        assert_eq!(h.session.state(), SessionState::Closed);
    }
    let mut h = Harness::new(config());
    ready(&mut h, EHLO_FULL);
    h.mail("a@x.example", &["b@y.example"], b"hi\r\n").unwrap();
    h.transmitted();
    h.feed(b"250 ok\r\n421 4.4.2 timeout\r\n");
    assert!(matches!(
        h.failure(),
        SmtpError::Protocol(ProtocolError::UnexpectedCode {
            during: SmtpOp::RcptTo,
            ..
        })
    ));
    assert_eq!(h.session.state(), SessionState::Closed);
}

#[test]
fn size_limit_refuses_before_any_command() {
    let mut h = Harness::new(config());
    ready(&mut h, EHLO_FULL);
    let body = vec![b'a'; 2000];
    assert_eq!(
        h.mail("a@x.example", &["b@y.example"], &body).unwrap_err(),
        SmtpError::Protocol(ProtocolError::MessageTooLarge {
            size: 2002,
            limit: 1000
        })
    );
    assert_eq!(h.transmitted(), "");
    assert_eq!(h.session.state(), SessionState::Authentication);
}

/// A streamed body with a size hint is checked against SIZE like a known one, before anything
/// is sent, and the hint is what MAIL declares.
#[test]
fn streamed_size_hint_is_declared_and_checked() {
    let mut h = Harness::new(config());
    ready(&mut h, EHLO_FULL);
    let env = || Envelope::new("a@x.example", &["b@y.example"]).unwrap();
    assert_eq!(
        h.session
            .start_mail(
                env(),
                BodyInfo::Streamed {
                    size_hint: Some(5000)
                },
                &MessageOptions::default()
            )
            .unwrap_err(),
        SmtpError::Protocol(ProtocolError::MessageTooLarge {
            size: 5000,
            limit: 1000
        })
    );
    assert_eq!(h.transmitted(), "");
    h.session
        .start_mail(
            env(),
            BodyInfo::Streamed {
                size_hint: Some(900),
            },
            &MessageOptions::default(),
        )
        .unwrap();
    assert!(
        h.transmitted()
            .starts_with("MAIL FROM:<a@x.example> SIZE=900 BODY=8BITMIME\r\n")
    );
}

#[test]
fn smtputf8_and_8bitmime_are_declared() {
    let mut h = Harness::new(config());
    ready(&mut h, EHLO_FULL);
    h.mail(
        "jöran@bücher.example",
        &["b@y.example"],
        "héllo\r\n".as_bytes(),
    )
    .unwrap();
    assert!(
        h.transmitted()
            .starts_with("MAIL FROM:<jöran@bücher.example> SIZE=8 BODY=8BITMIME SMTPUTF8\r\n")
    );
    let mut h = Harness::new(config());
    ready(&mut h, EHLO_LOCKSTEP);
    assert!(matches!(
        h.mail("jöran@bücher.example", &["b@y.example"], b"x"),
        Err(SmtpError::InvalidInput(InvalidInputError::Argument {
            reason: ArgumentError::NeedsSmtpUtf8,
            ..
        }))
    ));
}

#[test]
fn dsn_options_need_dsn() {
    let opts = MessageOptions {
        dsn_return: Some(DsnReturn::Headers),
        envelope_id: Some(EnvelopeId::new("id+1").unwrap()),
        notify: Some(Notify::On {
            success: true,
            failure: true,
            delay: false,
        }),
        ..MessageOptions::default()
    };
    let mut h = Harness::new(config());
    ready(&mut h, EHLO_FULL);
    h.mail_with("a@x.example", &["b@y.example"], b"x", &opts)
        .unwrap();
    assert_eq!(
        h.transmitted(),
        "MAIL FROM:<a@x.example> SIZE=3 RET=HDRS ENVID=id+2B1\r\n\
         RCPT TO:<b@y.example> NOTIFY=SUCCESS,FAILURE\r\nDATA\r\n"
    );
    let mut h = Harness::new(config());
    ready(&mut h, EHLO_LOCKSTEP);
    assert_eq!(
        h.mail_with("a@x.example", &["b@y.example"], b"x", &opts)
            .unwrap_err(),
        SmtpError::Protocol(ProtocolError::ExtensionUnavailable { name: "DSN" })
    );
}

#[test]
fn original_recipients_go_on_their_own_rcpt_lines() {
    let opts = MessageOptions {
        notify: Some(Notify::Never),
        original_recipients: vec![
            OriginalRecipient::new("b+list@y.example").unwrap(),
            OriginalRecipient::new("<c=x@y.example>").unwrap(),
        ],
        ..MessageOptions::default()
    };
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        h.session.config.recipient_policy = RecipientPolicy::AcceptPartial;
        h.mail_with("a@x.example", &["b@y.example", "c@y.example"], b"x", &opts)
            .unwrap();
        h.run(
            "
            C: MAIL FROM:<a@x.example> SIZE=3
            C: RCPT TO:<b@y.example> NOTIFY=NEVER ORCPT=rfc822;b+2Blist@y.example
            C: RCPT TO:<c@y.example> NOTIFY=NEVER ORCPT=rfc822;c+3Dx@y.example
            C: DATA
            ",
        );
    });
    // The wrong number of original recipients, or no DSN: refused before anything is sent.
    let mut h = Harness::new(config());
    ready(&mut h, EHLO_FULL);
    assert!(matches!(
        h.mail_with("a@x.example", &["b@y.example"], b"x", &opts),
        Err(SmtpError::InvalidInput(InvalidInputError::Argument {
            field: Field::OriginalRecipient,
            ..
        }))
    ));
    assert_eq!(h.transmitted(), "");
    let mut h = Harness::new(config());
    ready(&mut h, EHLO_LOCKSTEP);
    assert_eq!(
        h.mail_with("a@x.example", &["b@y.example", "c@y.example"], b"x", &opts)
            .unwrap_err(),
        SmtpError::Protocol(ProtocolError::ExtensionUnavailable { name: "DSN" })
    );
}

#[test]
fn requiretls_needs_tls_and_the_extension() {
    let opts = MessageOptions {
        require_tls: true,
        ..MessageOptions::default()
    };
    let mut h = Harness::new(config());
    ready(
        &mut h,
        "S: 220 x\nC: EHLO client.example\nS: 250-x\nS: 250 REQUIRETLS",
    );
    assert_eq!(
        h.mail_with("a@x.example", &["b@y.example"], b"x", &opts)
            .unwrap_err(),
        SmtpError::Protocol(ProtocolError::ExtensionUnavailable { name: "REQUIRETLS" })
    );
    let mut h = Harness::new(SessionConfig {
        tls: true,
        ..config()
    });
    ready(
        &mut h,
        "S: 220 x\nC: EHLO client.example\nS: 250-x\nS: 250 REQUIRETLS",
    );
    h.mail_with("a@x.example", &["b@y.example"], b"x", &opts)
        .unwrap();
    assert_eq!(h.transmitted(), "MAIL FROM:<a@x.example> REQUIRETLS\r\n");
}

#[test]
fn policy_refusal_sends_nothing() {
    let mut h = Harness::new(SessionConfig {
        policy: Box::new(
            crate::BoundedPolicy::new()
                .max_recipients(1)
                .allowed_recipient_domains(["y.example"]),
        ),
        ..config()
    });
    ready(&mut h, EHLO_FULL);
    assert!(matches!(
        h.mail("a@x.example", &["b@y.example", "c@y.example"], b"x"),
        Err(SmtpError::Policy(_))
    ));
    assert!(matches!(
        h.mail("a@x.example", &["b@evil.example"], b"x"),
        Err(SmtpError::Policy(_))
    ));
    assert_eq!(h.transmitted(), "");
    h.mail("a@x.example", &["b@Y.EXAMPLE"], b"x").unwrap();
}

#[test]
fn timeouts_by_phase_and_expiry() {
    let mut h = Harness::new(config());
    let wait = h.session.timeout().unwrap();
    assert_eq!(
        (wait.op, wait.limit),
        (SmtpOp::Greeting, Duration::from_secs(300))
    );
    ready(&mut h, EHLO_FULL);
    h.mail("a@x.example", &["b@y.example"], b"x").unwrap();
    h.transmitted();
    h.feed(b"250 ok\r\n250 ok\r\n");
    let wait = h.session.timeout().unwrap();
    assert_eq!(
        (wait.op, wait.limit),
        (SmtpOp::Data, Duration::from_secs(120))
    );
    h.session.handle_timeout();
    assert_eq!(
        h.failure(),
        SmtpError::Timeout {
            during: SmtpOp::Data,
            after: Duration::from_secs(120)
        }
    );
    assert_eq!(h.session.state(), SessionState::Closed);
    h.session.handle_timeout(); // late and repeated: harmless
    assert!(h.take_events().is_empty());
}

#[test]
fn reply_seq_changes_per_reply_not_per_byte() {
    let mut h = Harness::new(config());
    let seq = h.session.timeout().unwrap().seq;
    h.feed(b"220 m");
    assert_eq!(
        h.session.timeout().unwrap().seq,
        seq,
        "a partial reply is the same wait"
    );
    h.feed(b"x\r\n");
    assert_ne!(h.session.timeout().unwrap().seq, seq);
}

#[test]
fn eof_mid_data_is_connection_closed() {
    let mut h = Harness::new(config());
    ready(&mut h, EHLO_FULL);
    h.mail("a@x.example", &["b@y.example"], b"x").unwrap();
    h.transmitted();
    h.feed(b"250 ok\r\n250 ok\r\n354 go\r\n");
    h.body(b"x");
    h.transmitted();
    h.session.handle_eof();
    assert_eq!(
        h.failure(),
        SmtpError::Protocol(ProtocolError::ConnectionClosed {
            during: SmtpOp::DataEnd
        })
    );
}

/// A server that refuses the message while the body is still being sent (Postfix's smtp-sink
/// with `-A`, or a filter that judges the first bytes) must surface as that refusal, with its
/// code and text, not as a generic protocol error.
#[test]
fn refusal_during_the_body_is_reported_as_the_message_refusal() {
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        h.mail("a@x.example", &["b@y.example"], b"hello\r\n")
            .unwrap();
        h.run(
            "
            C: MAIL FROM:<a@x.example> SIZE=7
            C: RCPT TO:<b@y.example>
            C: DATA
            S: 250 ok
            S: 250 ok
            S: 354 go ahead
            S: 550 5.7.1 message refused
            ",
        );
        match h.failure() {
            SmtpError::Protocol(ProtocolError::UnexpectedCode { during, reply }) => {
                assert_eq!(during, SmtpOp::DataEnd);
                assert_eq!(reply.code().get(), 550);
                assert!(reply.text().contains("message refused"), "{reply:?}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(h.session.state(), SessionState::Closed);
        // Nothing more goes out: not the body, not a terminator.
        assert!(h.session.send_body(b"more").is_err());
        assert_eq!(h.transmitted(), "");
    });
}

/// A positive reply nobody asked for during the body is still a protocol violation.
#[test]
fn positive_reply_during_the_body_is_unsolicited() {
    let mut h = Harness::new(config());
    ready(&mut h, EHLO_FULL);
    h.mail("a@x.example", &["b@y.example"], b"hello\r\n")
        .unwrap();
    h.run("C: MAIL FROM:<a@x.example> SIZE=7\nC: RCPT TO:<b@y.example>\nC: DATA\nS: 250 ok\nS: 250 ok\nS: 354 go ahead\nS: 250 early");
    assert!(matches!(
        h.failure(),
        SmtpError::Protocol(ProtocolError::UnsolicitedReply { .. })
    ));
}

#[test]
fn unsolicited_reply_while_idle_is_fatal() {
    let mut h = Harness::new(config());
    ready(&mut h, EHLO_FULL);
    h.feed(b"250 surprise\r\n");
    assert!(matches!(
        h.failure(),
        SmtpError::Protocol(ProtocolError::UnsolicitedReply { .. })
    ));
}

#[test]
fn malformed_and_oversized_replies_are_typed_errors() {
    let mut h = Harness::new(config());
    h.feed(b"hello there\r\n");
    assert!(matches!(
        h.failure(),
        SmtpError::Protocol(ProtocolError::Malformed {
            during: SmtpOp::Greeting,
            ..
        })
    ));
    let mut h = Harness::new(config());
    h.feed(b"220-");
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..160 {
        h.session.feed(&chunk); // 10 MB in total
    }
    assert!(matches!(
        h.failure(),
        SmtpError::Protocol(ProtocolError::Malformed { .. })
    ));
    let mut h = Harness::new(config());
    for _ in 0..100_000 {
        h.session.feed(b"220-more\r\n");
    }
    assert!(matches!(
        h.failure(),
        SmtpError::Protocol(ProtocolError::Malformed { .. })
    ));
}

#[test]
fn mixed_codes_across_continuation_lines_are_refused() {
    let mut h = Harness::new(config());
    h.feed(b"220-mx\r\n250 ok\r\n");
    assert!(matches!(
        h.failure(),
        SmtpError::Protocol(ProtocolError::Malformed { .. })
    ));
}

/// RFC 2920 section 3.1: a huge recipient list goes out in flights bounded by max_flight_bytes.
#[test]
fn flights_are_capped_for_long_recipient_lists() {
    let mut h = Harness::new(SessionConfig {
        recipient_policy: RecipientPolicy::AcceptPartial,
        ..config()
    });
    ready(&mut h, EHLO_FULL);
    let rcpts: Vec<String> = (0..1000).map(|i| format!("user{i}@y.example")).collect();
    let refs: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    h.mail("a@x.example", &refs, b"x").unwrap();
    let mut flights = 0;
    let mut sent_rcpts = 0;
    let mut replies_owed = 0usize;
    loop {
        let flight = h.transmitted();
        if flight.is_empty() {
            break;
        }
        flights += 1;
        assert!(
            flight.len() <= 4096 + 64,
            "flight of {} bytes",
            flight.len()
        );
        let cmds = flight.matches("\r\n").count();
        sent_rcpts += flight.matches("RCPT TO").count();
        replies_owed += cmds;
        if flight.contains("DATA\r\n") {
            break;
        }
        // Answer half of what is owed, as a slow server would.
        let n = replies_owed.div_ceil(2);
        h.feed("250 ok\r\n".repeat(n).as_bytes());
        replies_owed -= n;
    }
    assert_eq!(sent_rcpts, 1000);
    assert!(flights > 5, "{flights} flights");
}

#[test]
fn quit_closes() {
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        h.session.quit().unwrap();
        h.run("C: QUIT\nS: 221 2.0.0 bye");
        assert_eq!(h.take_events(), vec![Event::Closed]);
        assert_eq!(h.session.state(), SessionState::Closed);
        assert!(matches!(
            h.session.noop(),
            Err(SmtpError::InvalidInput(
                InvalidInputError::WrongState { .. }
            ))
        ));
    });
}

#[test]
fn rset_and_noop() {
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        h.session.rset().unwrap();
        h.run("C: RSET\nS: 250 2.0.0 ok");
        h.session.noop().unwrap();
        h.run("C: NOOP\nS: 250 2.0.0 ok");
        let events = h.take_events();
        assert!(matches!(
            events[0],
            Event::Done {
                op: SmtpOp::Rset,
                ..
            }
        ));
        assert!(matches!(
            events[1],
            Event::Done {
                op: SmtpOp::Noop,
                ..
            }
        ));
        // Login is still allowed after RSET / NOOP before any message.
        assert_eq!(h.session.state(), SessionState::Authentication);
    });
}

#[test]
fn lmtp_reports_per_recipient_after_data() {
    both_ways(
        || SessionConfig {
            protocol: Protocol::Lmtp,
            recipient_policy: RecipientPolicy::AcceptPartial,
            ..config()
        },
        |h| {
            h.run(
                "
                S: 220 lmtp.example LMTP
                C: LHLO client.example
                S: 250-lmtp.example
                S: 250 PIPELINING
                ",
            );
            h.take_events();
            h.mail(
                "a@x.example",
                &["one@y.example", "two@y.example", "three@y.example"],
                b"hi\r\n",
            )
            .unwrap();
            h.run(
                "
                C: MAIL FROM:<a@x.example>
                C: RCPT TO:<one@y.example>
                C: RCPT TO:<two@y.example>
                C: RCPT TO:<three@y.example>
                C: DATA
                S: 250 ok
                S: 250 ok
                S: 550 no such user
                S: 250 ok
                S: 354 go
                ",
            );
            h.body(b"hi\r\n");
            h.run(
                "
                C: hi
                C: .
                S: 250 2.0.0 delivered to one
                S: 452 4.2.2 mailbox full
                ",
            );
            let outcome = h.sent();
            let codes: Vec<u16> = outcome
                .recipients
                .iter()
                .map(|r| r.reply.code().get())
                .collect();
            assert_eq!(codes, [250, 550, 452]);
            assert_eq!(outcome.accepted().count(), 1);
        },
    );
}

#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl AuditSink for Recorder {
    fn record(&self, event: &AuditEvent) {
        self.0.lock().unwrap().push(format!("{event:?}"));
    }
}

impl crate::transcript::TranscriptSink for Recorder {
    fn client(&self, line: &str) {
        self.0.lock().unwrap().push(format!("C: {line}"));
    }
    fn server(&self, reply: &Reply) {
        self.0.lock().unwrap().push(format!("S: {reply}"));
    }
}

#[test]
fn audit_and_transcript_never_hold_secrets() {
    let audit = Recorder::default();
    let transcript = Recorder::default();
    let mut h = Harness::new(SessionConfig {
        audit: Box::new(audit.clone()),
        transcript: Some(Box::new(transcript.clone())),
        ..config()
    });
    ready(&mut h, EHLO_FULL);
    h.session.login_auto("user", "hunter2-secret").unwrap();
    h.transmitted();
    h.feed(b"334 \r\n");
    h.transmitted();
    h.feed(b"235 ok\r\n");
    h.mail("a@x.example", &["b@y.example"], b"body\r\n")
        .unwrap();
    h.transmitted();
    h.feed(b"250 ok\r\n250 ok\r\n354 go\r\n");
    h.body(b"body\r\n");
    h.transmitted();
    h.feed(b"250 queued as Q1\r\n");
    h.sent();
    let plain_b64 = "AHVzZXIAaHVudGVyMi1zZWNyZXQ=";
    for line in audit
        .0
        .lock()
        .unwrap()
        .iter()
        .chain(transcript.0.lock().unwrap().iter())
    {
        assert!(!line.contains("hunter2"), "{line}");
        assert!(!line.contains(plain_b64), "{line}");
        assert!(!line.contains("aHVudGVy"), "{line}");
    }
    let t = transcript.0.lock().unwrap().join("\n");
    assert!(t.contains("C: AUTH PLAIN [redacted]"), "{t}");
    assert!(t.contains("C: [redacted]"), "{t}");
    assert!(t.contains("C: MAIL FROM:<a@x.example>"), "{t}");
    let a = audit.0.lock().unwrap().join("\n");
    assert!(a.contains("Authenticated { mechanism: Plain }"), "{a}");
    assert!(a.contains("MessageSent"), "{a}");
    assert!(!format!("{:?}", h.session).contains("hunter2"));
}

/// A transcript sink that is switched off, counting what it is still handed.
#[derive(Default, Clone)]
struct SilentSink(Arc<Mutex<usize>>);

impl crate::transcript::TranscriptSink for SilentSink {
    fn client(&self, _line: &str) {
        *self.0.lock().unwrap() += 1;
    }
    fn server(&self, _reply: &Reply) {
        *self.0.lock().unwrap() += 1;
    }
    fn enabled(&self) -> bool {
        false
    }
}

#[test]
fn a_disabled_transcript_sink_is_handed_no_lines() {
    let silent = SilentSink::default();
    let mut h = Harness::new(SessionConfig {
        transcript: Some(Box::new(silent.clone())),
        ..config()
    });
    ready(&mut h, EHLO_FULL);
    h.mail("a@x.example", &["b@y.example"], b"body\r\n")
        .unwrap();
    h.transmitted();
    h.feed(b"250 ok\r\n250 ok\r\n354 go\r\n");
    h.body(b"body\r\n");
    h.transmitted();
    h.feed(b"250 queued as Q1\r\n");
    h.sent();
    assert_eq!(*silent.0.lock().unwrap(), 0);
}
