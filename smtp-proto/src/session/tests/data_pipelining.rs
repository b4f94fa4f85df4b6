//! `DataPipelining::Always`: DATA in the envelope's flight under `RequireAll`, and a partial
//! refusal answered by closing before any body byte.

use super::*;

fn always() -> SessionConfig {
    SessionConfig {
        data_pipelining: DataPipelining::Always,
        ..config()
    }
}

const THREE: [&str; 3] = ["one@y.example", "two@y.example", "three@y.example"];

#[test]
fn data_joins_the_envelope_flight_with_several_recipients() {
    both_ways(always, |h| {
        ready(h, EHLO_FULL);
        let id = h.offer(
            &THREE,
            b"hi\r\n",
            "S: 250 ok\nS: 250 ok\nS: 250 ok\nS: 250 ok\nS: 354 go",
        );
        h.deliver("hi", "250 2.0.0 queued as Q7");
        let outcome = h.sent();
        assert_eq!(outcome.message, id);
        assert_eq!(outcome.recipients.len(), 3);
        assert_eq!(h.session.state(), SessionState::Ready);
    });
}

#[test]
fn a_partial_refusal_closes_before_any_body_byte() {
    both_ways(always, |h| {
        ready(h, EHLO_FULL);
        // No dot, no body: the script ends with nothing more written.
        let id = h.offer(
            &THREE,
            b"must not be delivered\r\n",
            "S: 250 ok\nS: 250 ok\nS: 550 5.1.1 two: no such user\nS: 250 ok\nS: 354 go",
        );
        let events = h.take_events();
        assert!(
            !events.iter().any(|e| matches!(e, Event::BodyWanted(_))),
            "the body must not be asked for: {events:?}"
        );
        match events.as_slice() {
            [
                Event::MessageFailed {
                    message,
                    error:
                        SmtpError::Protocol(ProtocolError::RecipientsRefused { refused, accepted }),
                    fate: Fate::NotSent,
                    session: SessionAfter::Closed,
                },
                Event::Failed {
                    session: SessionAfter::Closed,
                    ..
                },
            ] => {
                assert_eq!(*message, id);
                assert_eq!(*accepted, 2);
                assert_eq!(refused.len(), 1);
                assert_eq!(refused[0].recipient, "two@y.example");
            }
            other => panic!("{other:?}"),
        }
        h.assert_closed_for_good();
    });
}

#[test]
fn every_recipient_refused_keeps_the_session() {
    both_ways(always, |h| {
        ready(h, EHLO_FULL);
        h.offer(
            &THREE,
            b"hi\r\n",
            "S: 250 ok\nS: 550 no\nS: 550 no\nS: 550 no\nS: 554 5.5.1 no valid recipients",
        );
        h.assert_refused(0);
        h.noop_answered();
    });
}

#[test]
fn without_pipelining_data_still_waits() {
    both_ways(always, |h| {
        ready(h, EHLO_LOCKSTEP);
        h.offer_lockstep(&THREE[..2], b"hi\r\n", &["250 ok", "250 ok", "550 no"]);
        h.assert_refused(1);
    });
}

/// With CHUNKING the body is not asked for before the RCPT replies: a `BDAT ... LAST` in the
/// envelope's flight would be delivered to the accepted part of a partially refused list (found
/// against Postfix and Exim in the interop matrix).
#[test]
fn bdat_bodies_still_wait_for_the_recipients() {
    for refuse in [false, true] {
        both_ways(always, |h| {
            h.run(
                "
                S: 220 mx
                C: EHLO client.example
                S: 250-mx
                S: 250-PIPELINING
                S: 250 CHUNKING
                ",
            );
            h.take_events();
            h.mail("a@x.example", &THREE[..2], b"hi\r\n").unwrap();
            h.run(
                "
                C: MAIL FROM:<a@x.example>
                C: RCPT TO:<one@y.example>
                C: RCPT TO:<two@y.example>
                ",
            );
            let early = h.take_events();
            assert!(
                !early.iter().any(|e| matches!(e, Event::BodyWanted(_))),
                "body asked for before the RCPT replies: {early:?}"
            );
            assert!(!h.session.wants_body());
            if refuse {
                h.run("S: 250 ok\nS: 250 ok\nS: 550 no");
                h.assert_refused(1);
                h.noop_answered();
            } else {
                h.run("S: 250 ok\nS: 250 ok\nS: 250 ok");
                h.body(b"hi\r\n");
                h.run("C: BDAT 4 LAST\nC: hi\nS: 250 ok");
                h.sent();
            }
        });
    }
}
