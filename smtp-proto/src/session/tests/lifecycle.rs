//! Transcripts of the session as a whole: timeouts, closed connections, unsolicited and malformed replies, flights, QUIT, RSET/NOOP, LMTP, what audit and transcript sinks see.

use super::*;

#[test]
fn eof_mid_data_is_connection_closed() {
    let mut h = Harness::answered(b"x", b"250 ok\r\n250 ok\r\n354 go\r\n");
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
        h.offer(
            &["b@y.example"],
            b"hello\r\n",
            "S: 250 ok\nS: 250 ok\nS: 354 go ahead\nS: 550 5.7.1 message refused",
        );
        match h.failure() {
            SmtpError::Protocol(ProtocolError::UnexpectedCode { during, reply }) => {
                assert_eq!(during, SmtpOp::DataEnd);
                assert_eq!(reply.code().get(), 550);
                assert!(reply.text().contains("message refused"), "{reply:?}");
            }
            other => panic!("{other:?}"),
        }
        h.assert_closed_for_good();
    });
}

/// A positive reply nobody asked for during the body is still a protocol violation.
#[test]
fn positive_reply_during_the_body_is_unsolicited() {
    let mut h = Harness::ready(config(), EHLO_FULL);
    h.offer(
        &["b@y.example"],
        b"hello\r\n",
        "S: 250 ok\nS: 250 ok\nS: 354 go ahead\nS: 250 early",
    );
    assert_protocol_failure!(h, ProtocolError::UnsolicitedReply { .. });
}

#[test]
fn unsolicited_reply_while_idle_is_fatal() {
    let mut h = Harness::ready(config(), EHLO_FULL);
    h.feed(b"250 surprise\r\n");
    assert_protocol_failure!(h, ProtocolError::UnsolicitedReply { .. });
}

#[test]
fn malformed_and_oversized_replies_are_typed_errors() {
    let mut h = Harness::new(config());
    h.feed(b"hello there\r\n");
    assert_protocol_failure!(
        h,
        ProtocolError::Malformed {
            during: SmtpOp::Greeting,
            ..
        }
    );
    let mut h = Harness::new(config());
    h.feed(b"220-");
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..160 {
        h.session.feed(&chunk); // 10 MB in total
    }
    assert_protocol_failure!(h, ProtocolError::Malformed { .. });
    let mut h = Harness::new(config());
    for _ in 0..100_000 {
        h.session.feed(b"220-more\r\n");
    }
    assert_protocol_failure!(h, ProtocolError::Malformed { .. });
}

#[test]
fn mixed_codes_across_continuation_lines_are_refused() {
    let mut h = Harness::new(config());
    h.feed(b"220-mx\r\n250 ok\r\n");
    assert_protocol_failure!(h, ProtocolError::Malformed { .. });
}

/// RFC 2920 section 3.1: a huge recipient list goes out in flights bounded by max_flight_bytes.
#[test]
fn flights_are_capped_for_long_recipient_lists() {
    let mut h = Harness::ready(
        SessionConfig {
            recipient_policy: RecipientPolicy::AcceptPartial,
            ..config()
        },
        EHLO_FULL,
    );
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
        assert_wrong_state(h.session.noop());
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
            ready(h, &lhlo(&["PIPELINING"]));
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

#[test]
fn audit_and_transcript_never_hold_secrets() {
    let (mut h, audit, transcript) = Recorder::harness();
    ready(&mut h, EHLO_FULL);
    h.session.login_auto("user", "hunter2-secret").unwrap();
    h.transmitted();
    h.feed(b"334 \r\n");
    h.transmitted();
    h.feed(b"235 ok\r\n");
    h.send_unchecked(b"body\r\n");
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
    let mut h = Harness::ready(
        SessionConfig {
            transcript: Some(Box::new(silent.clone())),
            ..config()
        },
        EHLO_FULL,
    );
    h.send_unchecked(b"body\r\n");
    assert_eq!(*silent.0.lock().unwrap(), 0);
}

#[test]
fn a_221_to_noop_or_rset_is_the_server_closing() {
    for command in ["NOOP", "RSET"] {
        let mut h = Harness::ready(config(), EHLO_FULL);
        if command == "NOOP" {
            h.session.noop().unwrap();
        } else {
            h.session.rset().unwrap();
        }
        h.run(&format!("C: {command}\nS: 221 2.0.0 closing"));
        let err = h.failure();
        assert!(
            matches!(&err, SmtpError::Protocol(ProtocolError::UnexpectedCode { reply, .. }) if reply.code().get() == 221),
            "{command}: {err:?}"
        );
        assert_eq!(h.session.state(), SessionState::Closed, "{command}");
    }
}

#[test]
fn a_reply_limit_keeps_the_deadline_and_the_write_rule() {
    let base = Timeouts {
        min_write_rate: Some(4096),
        ..Timeouts::default().with_total(Duration::from_secs(90))
    };
    let t = base.with_reply_limit(Duration::from_secs(7));
    for wait in [t.greeting, t.command, t.data_init, t.data_block, t.data_end] {
        assert_eq!(wait, Duration::from_secs(7));
    }
    assert_eq!(t.total, Some(Duration::from_secs(90)));
    assert_eq!(t.min_write_rate, Some(4096));
}

/// QUIT is refused while a message's body is being given: after DATA the server would read it
/// as message text, and over BDAT it would drop the message without a result. Before, QUIT
/// went into the message (and a later `finish_body` hit a debug assertion).
#[test]
fn quit_is_refused_while_a_body_is_given() {
    let mut h = Harness::answered(b"hi\r\n", b"250 ok\r\n250 ok\r\n354 go\r\n");
    h.take_events();
    h.session.send_body(b"hi\r\n").unwrap();
    h.transmitted();
    assert_wrong_state(h.session.quit());
    assert_eq!(h.transmitted(), "", "nothing written");
    // The message goes on: its end, its reply, then QUIT.
    h.session.finish_body().unwrap();
    h.run("C: .\nS: 250 2.0.0 queued as Q1");
    assert_eq!(h.sent().queue_id.as_deref(), Some("Q1"));
    h.session.quit().unwrap();
    h.run("C: QUIT\nS: 221 bye");

    // BDAT: the body asked for, nothing owed.
    let mut h = Harness::ready(config(), EHLO_CHUNKING);
    h.mail("a@x.example", &["b@y.example"], b"hi\r\n").unwrap();
    h.run("C: MAIL FROM:<a@x.example>\nC: RCPT TO:<b@y.example>\nS: 250 ok\nS: 250 ok");
    assert!(h.session.wants_body());
    assert_wrong_state(h.session.quit());
    assert_eq!(h.transmitted(), "");
}
