//! Batch chaining (RFC 2920 section 3.1): the next MAIL goes out right after the previous
//! message's end of data, and every reply is still matched to its own message.

use super::*;

/// Queue a complete single-recipient message (the body is given when asked for).
fn start(h: &mut Harness, to: &str, body: &[u8]) {
    h.mail("a@x.example", &[to], body).unwrap();
}

/// A session past `EHLO_CHUNKING` that lets at most `max_chained` finished messages wait.
fn chunking_chained(max_chained: usize) -> Harness {
    Harness::ready(
        SessionConfig {
            max_chained,
            ..config()
        },
        EHLO_CHUNKING,
    )
}

fn outcomes(h: &mut Harness) -> Vec<Result<SendOutcome, SmtpError>> {
    h.take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Sent(o) => Some(Ok(o)),
            Event::Failed { error, .. } | Event::MessageFailed { error, .. } => Some(Err(error)),
            _ => None,
        })
        .collect()
}

#[test]
fn data_messages_chain_one_round_trip_each() {
    both_ways(config, |h| {
        // The end of the first message and the whole envelope of the second: one flight.
        h.chain_two("S: 250 2.0.0 queued as ONE\nS: 250 ok\nS: 250 ok\nS: 354 go");
        let first = h.take_events();
        assert!(
            matches!(first.as_slice(), [Event::Sent(o), Event::BodyWanted(_)] if o.queue_id.as_deref() == Some("ONE")),
            "{first:?}"
        );
        h.session.send_body(b"two\r\n").unwrap();
        h.session.finish_body().unwrap();
        h.run(
            "
            C: two
            C: .
            S: 250 2.0.0 queued as TWO
            ",
        );
        let second = h.sent();
        assert_eq!(second.queue_id.as_deref(), Some("TWO"));
        assert_eq!(second.recipients[0].recipient, "c@y.example");
        assert_eq!(h.session.state(), SessionState::Ready);
    });
}

#[test]
fn bdat_messages_chain_without_waiting_for_any_reply() {
    both_ways(config, |h| {
        ready(h, EHLO_CHUNKING);
        for (to, body) in [
            ("b@y.example", "m1\r\n"),
            ("c@y.example", "m2\r\n"),
            ("d@y.example", "m3\r\n"),
        ] {
            assert!(h.session.ready_for_mail());
            start(h, to, body.as_bytes());
            h.body(body.as_bytes());
        }
        // Three complete transactions written before a single reply was read.
        assert_eq!(
            h.transmitted(),
            "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nBDAT 4 LAST\r\nm1\r\n\
             MAIL FROM:<a@x.example>\r\nRCPT TO:<c@y.example>\r\nBDAT 4 LAST\r\nm2\r\n\
             MAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\nBDAT 4 LAST\r\nm3\r\n"
        );
        h.run(
            "
            S: 250 ok
            S: 250 ok
            S: 250 queued as Q1
            S: 250 ok
            S: 550 5.1.1 no such user
            S: 503 5.5.1 no valid recipients
            S: 250 ok
            S: 250 ok
            S: 250 queued as Q3
            ",
        );
        let results = outcomes(h);
        assert_eq!(results.len(), 3, "{results:?}");
        assert_eq!(results[0].as_ref().unwrap().queue_id.as_deref(), Some("Q1"));
        match &results[1] {
            Err(SmtpError::Protocol(ProtocolError::RecipientsRefused { refused, .. })) => {
                assert_eq!(refused[0].recipient, "c@y.example");
                assert_eq!(refused[0].reply.code().get(), 550);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(results[2].as_ref().unwrap().queue_id.as_deref(), Some("Q3"));
        assert_eq!(h.session.state(), SessionState::Ready);
        // Nothing more was sent: no RSET, since every transaction was ended by BDAT LAST.
        assert_eq!(h.transmitted(), "");
    });
}

#[test]
fn a_message_refused_at_the_dot_does_not_fail_the_next() {
    both_ways(config, |h| {
        h.chain_two("S: 554 5.7.1 spam\nS: 250 ok\nS: 250 ok\nS: 354 go");
        let events = h.take_events();
        assert!(
            matches!(events.as_slice(), [Event::MessageFailed { error: SmtpError::Protocol(ProtocolError::UnexpectedCode { during: SmtpOp::DataEnd, reply }), .. }, Event::BodyWanted(_)] if reply.code().get() == 554),
            "{events:?}"
        );
        h.session.send_body(b"two\r\n").unwrap();
        h.session.finish_body().unwrap();
        h.run("C: two\nC: .\nS: 250 queued");
        assert_eq!(h.sent().reply.code().get(), 250);
    });
}

#[test]
fn a_421_while_chained_closes_the_session_once() {
    let mut h = Harness::ready(config(), EHLO_CHUNKING);
    start(&mut h, "b@y.example", b"m1\r\n");
    h.body(b"m1\r\n");
    start(&mut h, "c@y.example", b"m2\r\n");
    h.body(b"m2\r\n");
    h.transmitted();
    h.feed(b"250 ok\r\n421 4.3.2 shutting down\r\n");
    // Each message in flight fails by its own handle, oldest first, saying the session is
    // gone; the session's own failure comes last, once.
    let events = h.take_events();
    let is_421 = |e: &SmtpError| e.reply().is_some_and(|r| r.code().get() == 421);
    assert!(
        matches!(events.as_slice(), [
            Event::MessageFailed { message: m1, error: e1, fate: Fate::Unknown, session: SessionAfter::Closed },
            Event::MessageFailed { message: m2, error: e2, fate: Fate::Unknown, session: SessionAfter::Closed },
            Event::Failed { error: e3, session: SessionAfter::Closed },
        ] if m1.get() == 1 && m2.get() == 2 && is_421(e1) && is_421(e2) && is_421(e3)),
        "{events:?}"
    );
    assert_eq!(h.session.state(), SessionState::Closed);
    assert!(!h.session.ready_for_mail());
    assert!(
        h.session
            .start_mail(
                Envelope::new("a@x.example", &["b@y.example"]).unwrap(),
                seven_bit(0),
                &MessageOptions::default()
            )
            .is_err()
    );
}

#[test]
fn no_chaining_without_pipelining() {
    let mut h = Harness::ready(config(), EHLO_LOCKSTEP);
    start(&mut h, "b@y.example", b"one\r\n");
    h.run("C: MAIL FROM:<a@x.example>\nS: 250 ok\nC: RCPT TO:<b@y.example>\nS: 250 ok\nC: DATA\nS: 354 go");
    h.body(b"one\r\n");
    assert!(!h.session.ready_for_mail());
    assert_wrong_state(h.session.start_mail(
        Envelope::new("a@x.example", &["c@y.example"]).unwrap(),
        seven_bit(5),
        &MessageOptions::default(),
    ));
    h.run("C: one\nC: .\nS: 250 queued");
    h.sent();
    assert!(h.session.ready_for_mail());
}

#[test]
fn chaining_depth_is_bounded() {
    let mut h = chunking_chained(2);
    let mut started = 0;
    while h.session.ready_for_mail() && started < 10 {
        start(&mut h, "b@y.example", b"m\r\n");
        h.body(b"m\r\n");
        started += 1;
    }
    // The current message plus two finished ones awaiting replies.
    assert_eq!(started, 3);
    h.transmitted();
    h.feed(b"250 ok\r\n250 ok\r\n250 queued\r\n");
    assert_eq!(outcomes(&mut h).len(), 1);
    assert!(h.session.ready_for_mail());
}

#[test]
fn max_chained_zero_turns_chaining_off() {
    let mut h = chunking_chained(0);
    start(&mut h, "b@y.example", b"m\r\n");
    h.body(b"m\r\n");
    assert!(!h.session.ready_for_mail());
}

#[test]
fn every_event_of_a_message_carries_its_handle() {
    let mut h = Harness::ready(config(), EHLO_CHUNKING);
    let first = h.mail("a@x.example", &["b@y.example"], b"m1\r\n").unwrap();
    assert_eq!(
        h.take_events(),
        vec![Event::BodyWanted(first)],
        "the body request names its message"
    );
    h.session.send_body(b"m1\r\n").unwrap();
    h.session.finish_body().unwrap();
    let second = h.mail("a@x.example", &["c@y.example"], b"m2\r\n").unwrap();
    assert_eq!((first.get(), second.get()), (1, 2));
    assert_eq!(h.take_events(), vec![Event::BodyWanted(second)]);
    h.session.send_body(b"m2\r\n").unwrap();
    h.session.finish_body().unwrap();
    h.transmitted();
    // The first message is refused at its end, the second accepted: each result by its handle.
    h.feed(b"250 ok\r\n250 ok\r\n554 no\r\n250 ok\r\n250 ok\r\n250 queued\r\n");
    let events = h.take_events();
    assert!(
        matches!(&events[0], Event::MessageFailed { message, session: SessionAfter::Open, .. } if *message == first),
        "{events:?}"
    );
    let Event::Sent(outcome) = &events[1] else {
        panic!("{events:?}")
    };
    assert_eq!(outcome.message, second);
    assert!(outcome.recipients.iter().all(|r| r.message == second));
    assert_eq!(events.len(), 2);
}

/// LMTP answers the end of data (here `BDAT LAST`) once per accepted recipient even when the
/// transaction failed before it (a refused chunk, RFC 2033): all those replies are the first
/// message's, and the chained message's replies come after them.
#[test]
fn lmtp_replies_to_last_after_a_refused_chunk_stay_with_their_message() {
    both_ways(
        || SessionConfig {
            protocol: Protocol::Lmtp,
            bdat_chunk_size: 4,
            ..config()
        },
        |h| {
            ready(h, &lhlo(&["PIPELINING", "CHUNKING"]));
            let env = Envelope::new("a@x.example", &["b@y.example", "c@y.example"]).unwrap();
            let first = h
                .session
                .start_mail(
                    env,
                    BodyInfo::Streamed { size_hint: None },
                    &MessageOptions::default(),
                )
                .unwrap();
            h.run(
                "
                C: MAIL FROM:<a@x.example>
                C: RCPT TO:<b@y.example>
                C: RCPT TO:<c@y.example>
                S: 250 ok
                S: 250 ok
                S: 250 ok
                ",
            );
            h.body(b"abcde");
            assert!(h.session.ready_for_mail(), "the next message may chain");
            let second = h.mail("a@x.example", &["d@y.example"], b"two\r\n").unwrap();
            h.body(b"two\r\n");
            h.run(
                "
                C: BDAT 4
                C: abcdBDAT 3 LAST
                C: e
                C: MAIL FROM:<a@x.example>
                C: RCPT TO:<d@y.example>
                C: BDAT 5 LAST
                C: two
                S: 452 4.3.1 chunk refused
                S: 250 2.1.5 b@y.example ok
                S: 250 2.1.5 c@y.example ok
                S: 250 ok
                S: 250 ok
                S: 550 5.7.1 d@y.example rejected
                ",
            );
            let events = h.take_events();
            let failures: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    Event::MessageFailed {
                        message,
                        error,
                        fate,
                        session: SessionAfter::Open,
                    } => Some((*message, error.clone(), *fate)),
                    _ => None,
                })
                .collect();
            assert_eq!(failures.len(), 2, "{events:?}");
            let (message, error, fate) = &failures[0];
            assert_eq!((*message, *fate), (first, Fate::Refused));
            assert!(
                matches!(
                    error,
                    SmtpError::Protocol(ProtocolError::UnexpectedCode {
                        during: SmtpOp::Bdat,
                        ..
                    })
                ),
                "{error:?}"
            );
            let (message, error, fate) = &failures[1];
            assert_eq!((*message, *fate), (second, Fate::Refused));
            assert!(
                matches!(
                    error,
                    SmtpError::Protocol(ProtocolError::RecipientsRefused { accepted: 0, .. })
                ),
                "{error:?}"
            );
            assert_eq!(h.session.state(), SessionState::Ready);
            h.noop_answered();
        },
    );
}
