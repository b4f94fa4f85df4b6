//! Hostile-server transcripts: every class ends in the right typed error with the session
//! `Closed` (or, for an ordinary refusal, usable again), never a panic, and nothing is sent that
//! should not be.

use super::*;

/// The server side of a complete session, one read per entry, with what the client must have
/// sent before each read. Cutting it anywhere must give a typed error.
const FULL_SESSION: &[(&str, &str)] = &[
    ("", "220 mx.example ESMTP\r\n"),
    (
        "EHLO client.example\r\n",
        "250-mx.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n",
    ),
    ("STARTTLS\r\n", "220 go ahead\r\n"),
    // (TLS established here)
    (
        "EHLO client.example\r\n",
        "250-mx.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 AUTH PLAIN\r\n",
    ),
    ("AUTH PLAIN AHVzZXIAc2VjcmV0\r\n", "235 2.7.0 ok\r\n"),
    (
        "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n",
        "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n",
    ),
    ("hi\r\n.\r\n", "250 2.0.0 queued as Q1\r\n"),
    ("QUIT\r\n", "221 bye\r\n"),
];

/// A harness [`play`]ed for `reads` reads, what the client queued since taken.
fn played(reads: usize) -> Harness {
    let mut h = Harness::new(config());
    play(&mut h, reads);
    h.transmitted();
    h
}

/// Play the session's first `reads` server reads (the client calls happen at the same points a
/// real client makes them), checking every client byte.
fn play(h: &mut Harness, reads: usize) {
    for (i, (client, server)) in FULL_SESSION.iter().enumerate().take(reads) {
        assert_eq!(h.transmitted(), *client, "client bytes before read {i}");
        h.feed(server.as_bytes());
        let events = h.take_events();
        match i {
            1 => {
                assert!(events.contains(&Event::HelloDone), "{events:?}");
                h.session.start_tls().unwrap();
            }
            2 => {
                assert_eq!(events, vec![Event::UpgradeTls]);
                h.session.tls_established().unwrap();
            }
            3 => {
                assert!(events.contains(&Event::HelloDone), "{events:?}");
                h.session.login_auto("user", "secret").unwrap();
            }
            4 => {
                assert!(
                    events.contains(&Event::Authenticated(AuthMechanism::Plain)),
                    "{events:?}"
                );
                h.mail("a@x.example", &["b@y.example"], b"hi\r\n").unwrap();
            }
            5 => {
                assert!(
                    events.iter().any(|e| matches!(e, Event::BodyWanted(_))),
                    "{events:?}"
                );
                h.session.send_body(b"hi\r\n").unwrap();
                h.session.finish_body().unwrap();
            }
            6 => {
                assert!(matches!(events.last(), Some(Event::Sent(_))), "{events:?}");
                h.session.quit().unwrap();
            }
            _ => {}
        }
    }
}

#[test]
fn the_full_session_completes() {
    let mut h = Harness::new(config());
    play(&mut h, FULL_SESSION.len());
    assert_eq!(h.session.state(), SessionState::Closed);
}

/// A disconnect after every server read, and in the middle of every read: always a typed
/// `ConnectionClosed` (or a clean close after QUIT), never a panic or a silent success.
#[test]
fn a_disconnect_at_every_point_is_a_typed_error() {
    for (reads, (_, next)) in FULL_SESSION.iter().enumerate() {
        for partial in [0usize, 1, 3] {
            let mut h = Harness::new(config());
            play(&mut h, reads);
            let cut = partial.min(next.len() - 1);
            if cut > 0 {
                h.transmitted();
                h.feed(&next.as_bytes()[..cut]);
            }
            h.session.handle_eof();
            let events = h.take_events();
            if reads == FULL_SESSION.len() - 1 {
                // Waiting for the 221 after QUIT: the server hanging up is the end we asked for.
                assert_eq!(events.last(), Some(&Event::Closed), "{events:?}");
                assert_eq!(h.session.state(), SessionState::Closed);
                continue;
            }
            let failed = events.iter().find_map(|e| match e {
                Event::Failed {
                    error,
                    session: SessionAfter::Closed,
                } => Some(error.clone()),
                _ => None,
            });
            assert!(
                matches!(
                    failed,
                    Some(SmtpError::Protocol(ProtocolError::ConnectionClosed { .. }))
                ),
                "cut after {reads} reads + {cut} bytes: {events:?}"
            );
            assert_eq!(h.session.state(), SessionState::Closed);
            assert!(h.session.check_usable().is_err());
        }
    }
}

/// A 421 (service closing) at every reply of the session closes it with the reply kept.
#[test]
fn code_421_at_every_reply_closes() {
    for reads in 0..FULL_SESSION.len() - 1 {
        let mut h = played(reads);
        h.feed(b"421 4.3.2 shutting down\r\n");
        let events = h.take_events();
        let err = events
            .iter()
            .find_map(|e| match e {
                Event::Failed {
                    error,
                    session: SessionAfter::Closed,
                } => Some(error.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no failure after 421 at read {reads}: {events:?}"));
        assert_eq!(err.reply().map(|r| r.code().get()), Some(421), "{err:?}");
        assert_eq!(h.session.state(), SessionState::Closed, "read {reads}");
    }
}

/// RFC 3207: STARTTLS refused with any code fails closed, and nothing else is sent.
#[test]
fn starttls_refused_with_any_code_fails_closed() {
    for reply in [
        "454 4.7.0 TLS not available",
        "501 syntax",
        "502 not implemented",
        "500 what",
    ] {
        // play() calls start_tls after the EHLO read; answer it with a refusal.
        let mut h2 = Harness::new(config());
        play(&mut h2, 2);
        assert_eq!(h2.transmitted(), "STARTTLS\r\n");
        h2.feed(format!("{reply}\r\n").as_bytes());
        assert_closed_on_unexpected(&mut h2, SmtpOp::StartTls, reply);
        assert_eq!(
            h2.transmitted(),
            "",
            "nothing may follow a refused STARTTLS"
        );
        assert!(h2.session.login_auto("user", "secret").is_err());
    }
}

/// A garbage reply to STARTTLS is a typed error and closes.
#[test]
fn starttls_garbage_reply_fails_closed() {
    let mut h = played(2);
    h.feed(b"hello, I am not SMTP\r\n");
    assert_protocol_failure!(
        h,
        ProtocolError::Malformed {
            during: SmtpOp::StartTls,
            ..
        }
    );
    assert_eq!(h.session.state(), SessionState::Closed);
}

/// "NO STARTTLS" / CVE-2021-38371 / CVE-2021-22947 class: injected lines after the 220, in the
/// same read or split across reads, whole or partial, are refused and never parsed as replies.
#[test]
fn bytes_after_the_starttls_220_are_injection_in_every_split() {
    let injected = b"220 go ahead\r\n250-mx.example\r\n250 AUTH PLAIN LOGIN\r\n";
    for split in 0..=injected.len() {
        let mut h = played(2);
        h.feed(&injected[..split]);
        h.feed(&injected[split..]);
        let events = h.take_events();
        assert!(
            events.iter().any(|e| matches!(
                e,
                Event::Failed {
                    error: SmtpError::Protocol(ProtocolError::ResponseInjection { .. }),
                    session: SessionAfter::Closed,
                }
            )),
            "split at {split}: {events:?}"
        );
        assert_eq!(h.session.state(), SessionState::Closed);
        assert!(
            h.session.tls_established().is_err(),
            "no upgrade after injection"
        );
        if split == b"220 go ahead\r\n".len() {
            // The 220 came alone first: the upgrade was requested before the injection showed.
            assert_eq!(events.first(), Some(&Event::UpgradeTls), "split at {split}");
        } else {
            // Injection in the same read as the 220: no upgrade is ever requested.
            assert!(
                !events.contains(&Event::UpgradeTls),
                "split at {split}: {events:?}"
            );
        }
    }
}

/// Capabilities from before TLS are forgotten: a plaintext EHLO that offers PLAIN does not let
/// the client authenticate after TLS when the new EHLO offers nothing.
#[test]
fn capabilities_from_before_tls_are_never_used_after_it() {
    let mut h = played(3);
    h.feed(b"250 mx.example\r\n");
    assert!(h.take_events().contains(&Event::HelloDone));
    assert!(h.session.capabilities().auth_mechanisms().is_empty());
    let err = h.session.login_auto("user", "secret").unwrap_err();
    assert!(
        matches!(err, SmtpError::Auth(AuthError::UnsupportedMechanism { .. })),
        "{err:?}"
    );
    assert_eq!(h.transmitted(), "");
}

/// A refusal at each step of a transaction is typed with its operation and leaves the session
/// usable for the next message (RSET is sent lazily before it).
#[test]
fn refusals_at_each_transaction_step_are_typed_and_recoverable() {
    let cases: &[(&str, SmtpOp)] = &[
        ("451 4.3.0 try later\r\n", SmtpOp::MailFrom),
        ("550 5.7.1 sender refused\r\n", SmtpOp::MailFrom),
    ];
    for (reply, op) in cases {
        let mut h = played(5);
        // MAIL refused; RCPT and DATA (pipelined) get 503s.
        h.feed(format!("{reply}503 5.5.1 no mail\r\n503 5.5.1 no valid recipients\r\n").as_bytes());
        let err = h.failure();
        assert!(
            matches!(&err, SmtpError::Protocol(ProtocolError::UnexpectedCode { during, .. }) if during == op),
            "{reply}: {err:?}"
        );
        assert!(
            h.session.check_usable().is_ok(),
            "session usable after {reply}"
        );
    }

    // RCPT refused (the only recipient): DATA answered 503/554, no body sent.
    for code in ["450 4.2.1 mailbox busy", "550 5.1.1 no such user"] {
        let mut h = played(5);
        h.feed(format!("250 ok\r\n{code}\r\n554 5.5.1 no valid recipients\r\n").as_bytes());
        let err = h.failure();
        assert!(
            matches!(&err, SmtpError::Protocol(ProtocolError::RecipientsRefused { refused, accepted: 0 }) if refused.len() == 1),
            "{code}: {err:?}"
        );
        assert_eq!(
            h.transmitted(),
            "",
            "no body after every recipient was refused"
        );
        assert!(h.session.check_usable().is_ok());
    }

    // DATA refused.
    for code in ["451 4.3.0 not now", "554 5.5.1 no"] {
        let mut h = played(5);
        h.feed(format!("250 ok\r\n250 ok\r\n{code}\r\n").as_bytes());
        let err = h.failure();
        assert!(
            matches!(
                &err,
                SmtpError::Protocol(ProtocolError::UnexpectedCode {
                    during: SmtpOp::Data,
                    ..
                })
            ),
            "{code}: {err:?}"
        );
        assert_eq!(h.transmitted(), "", "no body after DATA was refused");
        assert!(h.session.check_usable().is_ok());
    }

    // Refused after the final dot.
    for code in [
        "452 4.3.1 out of storage",
        "552 5.3.4 too big",
        "550 5.7.1 spam",
    ] {
        let mut h = played(6);
        h.feed(format!("{code}\r\n").as_bytes());
        let err = h.failure();
        assert!(
            matches!(&err, SmtpError::Protocol(ProtocolError::UnexpectedCode { during: SmtpOp::DataEnd, reply }) if reply.text().len() > 3),
            "{code}: {err:?}"
        );
        assert!(h.session.check_usable().is_ok());
        // The next message starts cleanly.
        h.mail("a@x.example", &["b@y.example"], b"x").unwrap();
        assert!(h.transmitted().starts_with("MAIL FROM:<a@x.example>"));
    }
}

/// AUTH: 535 with and without enhanced codes keeps the text; a session can try again.
#[test]
fn auth_failures_keep_the_server_text() {
    for reply in ["535 5.7.8 Authentication credentials invalid", "535 bad"] {
        let mut h = played(4);
        h.feed(format!("{reply}\r\n").as_bytes());
        let err = h.failure();
        let SmtpError::Auth(AuthError::Rejected { reply: r, .. }) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(r.code().get(), 535);
        assert!(reply.ends_with(r.first_line()), "{r:?}");
        assert!(!format!("{err} {err:?}").contains("secret"));
    }
}

/// A reply that never ends (one line, or endless continuation lines) is cut off by the bounds.
#[test]
fn endless_replies_are_bounded_at_every_stage() {
    for reads in [0usize, 1, 4, 5] {
        // Endless continuation lines; one line that never ends.
        let chunk = [b'x'; 4096];
        for (start, piece, times) in [
            (&b""[..], &b"250-more and more\r\n"[..], 100_000),
            (b"250 ", &chunk, 2560),
        ] {
            let mut h = played(reads);
            h.session.feed(start);
            for _ in 0..times {
                h.session.feed(piece);
                if h.session.state() == SessionState::Closed {
                    break;
                }
            }
            assert!(
                matches!(
                    h.failure(),
                    SmtpError::Protocol(ProtocolError::Malformed { .. })
                ),
                "stage {reads}"
            );
        }
    }
}
