//! What became of a failed message, decided by the engine and carried on its
//! `Event::MessageFailed`: provably not sent, refused after its content, or unknown. A driver
//! (and a pool's retry) reads it from there, never from the error's shape.

use super::*;

/// The fate on the last `MessageFailed` of the events.
fn fate_of(events: &[Event]) -> Fate {
    events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::MessageFailed { fate, .. } => Some(*fate),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no MessageFailed in {events:?}"))
}

/// A message whose envelope was accepted and whose body and final dot are queued.
fn dot_queued() -> Harness {
    let mut h = Harness::answered(b"hi\r\n", b"250 ok\r\n250 ok\r\n354 go\r\n");
    h.body(b"hi\r\n");
    assert_eq!(h.transmitted(), "hi\r\n.\r\n");
    h
}

/// A caller that gives up on its message (its call dropped) gets the engine's verdict from
/// `abandon`: unknown once the dot is queued, not sent before it (or with no message at all),
/// sent when the result was already an event; the session closes each time.
#[test]
fn abandon_says_what_became_of_the_message() {
    let mut after_dot = dot_queued();
    let d = after_dot.session.abandon();
    assert!(
        matches!(d, Delivery::Unknown(SmtpError::Io { .. })),
        "{d:?}"
    );
    assert_eq!(after_dot.session.state(), SessionState::Closed);
    assert_eq!(fate_of(&after_dot.take_events()), Fate::Unknown);

    let mut in_envelope = Harness::ready(config(), EHLO_CHUNKING);
    in_envelope
        .mail("a@x.example", &["b@y.example"], b"hi\r\n")
        .unwrap();
    assert!(!in_envelope.transmitted().is_empty());
    let d = in_envelope.session.abandon();
    assert_eq!(d.fate(), Some(Fate::NotSent), "{d:?}");
    assert_eq!(in_envelope.session.state(), SessionState::Closed);

    let mut answered = dot_queued();
    // Fed to the engine only: its result stays an event, not yet taken by the caller.
    answered.session.feed(b"250 2.0.0 queued\r\n");
    assert!(matches!(answered.session.abandon(), Delivery::Sent(_)));
    assert_eq!(answered.session.state(), SessionState::Closed);

    let mut idle = Harness::ready(config(), EHLO_CHUNKING);
    let d = idle.session.abandon();
    assert_eq!(d.fate(), Some(Fate::NotSent), "{d:?}");
}

#[test]
fn a_refusal_of_the_dot_is_refused() {
    let mut h = dot_queued();
    h.feed(b"554 5.6.0 rejected\r\n");
    assert_eq!(fate_of(&h.take_events()), Fate::Refused);
    assert_ne!(h.session.state(), SessionState::Closed);
}

#[test]
fn a_connection_lost_after_the_dot_is_unknown() {
    let mut h = dot_queued();
    h.session.handle_eof();
    assert_eq!(fate_of(&h.take_events()), Fate::Unknown);
}

#[test]
fn a_reply_out_of_step_after_the_dot_is_unknown() {
    let mut h = dot_queued();
    // A 354 cannot answer the end of data: whatever the server did with the message is not
    // known.
    h.feed(b"354 go ahead\r\n");
    assert_eq!(fate_of(&h.take_events()), Fate::Unknown);
}

#[test]
fn a_connection_lost_in_the_body_is_not_sent() {
    let mut h = Harness::answered(b"hi\r\n", b"250 ok\r\n250 ok\r\n354 go\r\n");
    assert!(
        h.take_events()
            .iter()
            .any(|e| matches!(e, Event::BodyWanted(_)))
    );
    h.session.send_body(b"h").unwrap();
    h.transmitted();
    h.session.handle_eof();
    assert_eq!(fate_of(&h.take_events()), Fate::NotSent);
}

/// The body's source fails half-way: the session closes during ReadBody, what was queued of
/// the body is never written (so no end of data can reach the server), and the message is not
/// sent.
#[test]
fn a_body_source_that_fails_is_not_sent_and_closes_the_session() {
    let mut h = Harness::answered(b"hi\r\n", b"250 ok\r\n250 ok\r\n354 go\r\n");
    h.take_events();
    h.session.send_body(b"h").unwrap();
    h.session
        .body_unreadable(crate::error::IoErrorKind::UnexpectedEof, "the file shrank");
    assert!(
        h.session.poll_transmit().is_none(),
        "nothing more is written"
    );
    let events = h.take_events();
    assert_eq!(fate_of(&events), Fate::NotSent);
    let error = h.session.check_usable().unwrap_err();
    assert!(
        matches!(
            &error,
            SmtpError::Io {
                during: SmtpOp::ReadBody,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("the file shrank"), "{error}");
    assert_eq!(h.session.state(), SessionState::Closed);
}

/// Every recipient refused while DATA was pipelined: the engine ends the data with a lone dot
/// at once. That dot delivers nothing, and the message is not sent, not unknown.
#[test]
fn the_lone_dot_after_refused_recipients_is_not_sent() {
    let mut h = Harness::answered(b"hi\r\n", b"250 ok\r\n550 5.1.1 no such user\r\n354 go\r\n");
    assert_eq!(h.transmitted(), ".\r\n");
    // Lost before the lone dot's reply: still nothing delivered.
    h.session.handle_eof();
    assert_eq!(fate_of(&h.take_events()), Fate::NotSent);
}

#[test]
fn a_refused_sender_is_not_sent() {
    let mut h = Harness::answered(
        b"hi\r\n",
        b"451 4.7.1 greylisted\r\n503 5.5.1 no sender\r\n503 5.5.1 no sender\r\n",
    );
    assert_eq!(fate_of(&h.take_events()), Fate::NotSent);
}

/// The failed message of the events, its fate and whether a pool may send it again.
fn failed_message(events: &[Event]) -> (SmtpError, Fate, bool) {
    let (error, fate) = events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::MessageFailed { error, fate, .. } => Some((error.clone(), *fate)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no MessageFailed in {events:?}"));
    let retryable = Delivery::failed(error.clone(), fate).is_retryable();
    (error, fate, retryable)
}

/// After a first message whose recipients were refused (it leaves its MAIL open), a second
/// one to `b@y.example`: its RSET, MAIL, RCPT and `BDAT 5 LAST` with the body go out in one
/// flight, and the server answers them with `replies`.
fn after_an_open_transaction(replies: &str) -> Harness {
    let mut h = Harness::ready(config(), EHLO_CHUNKING);
    h.mail("a@x.example", &["b@y.example", "c@y.example"], b"one\r\n")
        .unwrap();
    h.run(
        "
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<b@y.example>
        C: RCPT TO:<c@y.example>
        S: 250 ok
        S: 550 no
        S: 550 no
        ",
    );
    h.assert_refused(0);
    h.mail("a@x.example", &["b@y.example"], b"two\r\n").unwrap();
    h.body(b"two\r\n");
    h.run(&format!(
        "
        C: RSET
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<b@y.example>
        C: BDAT 5 LAST
        C: two
        {replies}
        "
    ));
    h
}

/// The RSET before a message is refused, and the server goes on to accept its MAIL, its
/// recipient and its `BDAT LAST`: the message was delivered, and nothing is left open.
#[test]
fn a_message_taken_after_its_rset_was_refused_is_sent() {
    let mut h = after_an_open_transaction(
        "S: 451 4.3.0 rset hiccup\nS: 250 ok\nS: 250 ok\nS: 250 2.0.0 queued as Q2",
    );
    let sent = h.sent();
    assert_eq!(sent.queue_id.as_deref(), Some("Q2"));
    // The server ended the transaction: the next message needs no RSET.
    h.mail("a@x.example", &["d@y.example"], b"three\r\n")
        .unwrap();
    h.run("C: MAIL FROM:<a@x.example>\nC: RCPT TO:<d@y.example>");
}

/// The same, refused at its end of data: the server judged the message, a definite refusal,
/// not a message that never got that far.
#[test]
fn a_message_refused_at_its_end_after_its_rset_was_refused_is_refused() {
    let mut h = after_an_open_transaction(
        "S: 451 4.3.0 rset hiccup\nS: 250 ok\nS: 250 ok\nS: 554 5.6.0 content rejected",
    );
    let (error, fate, retryable) = failed_message(&h.take_events());
    assert_eq!(fate, Fate::Refused);
    assert!(!retryable);
    assert!(
        matches!(&error, SmtpError::Protocol(ProtocolError::UnexpectedCode { during: SmtpOp::DataEnd, reply }) if reply.code().get() == 554),
        "{error:?}"
    );
}

/// A streamed body whose first chunk was refused while its `BDAT ... LAST` was already
/// written (all in one flight).
fn chunk_refused_after_last() -> Harness {
    let mut h = Harness::ready(
        SessionConfig {
            bdat_chunk_size: 4,
            ..config()
        },
        EHLO_CHUNKING,
    );
    h.stream_abcde_in_fours("S: 250 ok\nS: 250 ok\nS: 452 4.3.1 chunk refused");
    h
}

/// The server takes the `BDAT LAST` of a message whose chunk it refused: the message may
/// have been delivered without that chunk. Not sent cleanly, and never to be sent again.
#[test]
fn a_message_taken_after_a_refused_chunk_is_refused_not_retried() {
    let mut h = chunk_refused_after_last();
    h.run("S: 250 2.0.0 queued as Q1");
    let (error, fate, retryable) = failed_message(&h.take_events());
    assert_eq!(fate, Fate::Refused);
    assert!(!retryable);
    assert!(
        matches!(
            &error,
            SmtpError::Protocol(ProtocolError::UnexpectedCode {
                during: SmtpOp::Bdat,
                ..
            })
        ),
        "{error:?}"
    );
    assert_eq!(h.session.state(), SessionState::Ready);
}

/// No reply to that `BDAT LAST`: the message may have been delivered.
#[test]
fn a_connection_lost_after_bdat_last_and_a_refused_chunk_is_unknown() {
    let mut h = chunk_refused_after_last();
    h.session.handle_eof();
    assert_eq!(fate_of(&h.take_events()), Fate::Unknown);
}

/// The only recipient of a message whose `BDAT LAST` went in the envelope's flight.
fn only_recipient_refused_under_bdat() -> Harness {
    let mut h = Harness::ready(config(), EHLO_CHUNKING);
    h.mail("a@x.example", &["b@y.example"], b"one\r\n").unwrap();
    h.body(b"one\r\n");
    h.run(
        "
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<b@y.example>
        C: BDAT 5 LAST
        C: one
        S: 250 ok
        S: 450 4.2.1 mailbox busy
        ",
    );
    h
}

/// Every recipient refused: no recipient, nothing delivered, whatever the end of data went
/// with; the temporary refusal may succeed later.
#[test]
fn every_recipient_refused_under_pipelined_bdat_is_not_sent_and_retryable() {
    let mut h = only_recipient_refused_under_bdat();
    h.run("S: 554 5.5.1 no valid recipients");
    let (error, fate, retryable) = failed_message(&h.take_events());
    assert_eq!(fate, Fate::NotSent);
    assert!(retryable, "{error:?}");
    assert!(
        matches!(
            &error,
            SmtpError::Protocol(ProtocolError::RecipientsRefused { accepted: 0, .. })
        ),
        "{error:?}"
    );
    assert_eq!(h.session.state(), SessionState::Ready);
}

/// The same when the connection is lost before the reply to `BDAT LAST`.
#[test]
fn every_recipient_refused_then_the_connection_lost_is_not_sent() {
    let mut h = only_recipient_refused_under_bdat();
    h.session.handle_eof();
    assert_eq!(fate_of(&h.take_events()), Fate::NotSent);
}

/// A body whose size is known, sent as one `BDAT 7 LAST`, given whole but not yet finished.
fn whole_chunk_given() -> Harness {
    let mut h = Harness::ready(config(), EHLO_CHUNKING);
    h.mail("a@x.example", &["b@y.example"], b"hello\r\n")
        .unwrap();
    h.run("C: MAIL FROM:<a@x.example>\nC: RCPT TO:<b@y.example>");
    h.take_events();
    h.session.send_body(b"hello\r\n").unwrap();
    assert_eq!(h.transmitted(), "BDAT 7 LAST\r\nhello\r\n");
    h
}

/// Once every byte of a whole `BDAT n LAST` is out, the server can end the message without
/// anything more: lost before `finish_body`, whichever way, it may have been delivered, and a
/// retry must not send it again. Before, each of these said not sent (and a closed connection
/// retryable).
#[test]
fn a_whole_bdat_chunk_given_in_full_is_unknown_if_lost() {
    let mut h = whole_chunk_given();
    assert_eq!(h.session.abandon().fate(), Some(Fate::Unknown));

    let mut h = whole_chunk_given();
    h.session
        .body_unreadable(crate::error::IoErrorKind::Other, "disk");
    assert_eq!(fate_of(&h.take_events()), Fate::Unknown);

    let mut h = whole_chunk_given();
    h.session.handle_eof();
    let (error, fate, retryable) = failed_message(&h.take_events());
    assert_eq!(fate, Fate::Unknown, "{error:?}");
    assert!(!retryable);

    // One byte more than declared: the extra byte is never sent, but the chunk may have been.
    let mut h = whole_chunk_given();
    assert!(h.session.send_body(b"x").is_err());
    assert_eq!(fate_of(&h.take_events()), Fate::Unknown);

    // Part of the chunk only: the server cannot end the message.
    let mut h = Harness::ready(config(), EHLO_CHUNKING);
    h.mail("a@x.example", &["b@y.example"], b"hello\r\n")
        .unwrap();
    h.run("C: MAIL FROM:<a@x.example>\nC: RCPT TO:<b@y.example>");
    h.session.send_body(b"hel").unwrap();
    h.transmitted();
    assert_eq!(h.session.abandon().fate(), Some(Fate::NotSent));
}

/// The bytes that close a body (its missing final CRLF) are counted before its end of data is
/// queued: when they pass the limit, neither the dot nor the `BDAT ... LAST` goes out, and the
/// message was not sent. Before, the end was dropped and the fate said unknown.
#[test]
fn an_end_of_data_dropped_at_the_limit_is_not_sent() {
    // DATA: a streamed body of exactly the server's SIZE (1000), without a final line break.
    let mut h = Harness::ready(config(), EHLO_FULL);
    h.start_streamed();
    h.transmitted();
    h.feed(b"250 ok\r\n250 ok\r\n354 go\r\n");
    h.session.send_body(&[b'a'; 1000]).unwrap();
    assert_eq!(h.transmitted().len(), 1000);
    let error = h.session.finish_body().unwrap_err();
    assert!(
        matches!(
            error,
            SmtpError::Protocol(ProtocolError::MessageTooLarge { .. })
        ),
        "{error:?}"
    );
    assert_eq!(h.transmitted(), "", "no end of data");
    assert_eq!(fate_of(&h.take_events()), Fate::NotSent);

    // Streamed BDAT whose hint is the length of a body without its final line break.
    let mut h = Harness::ready(config(), EHLO_CHUNKING);
    let env = Envelope::new("a@x.example", &["b@y.example"]).unwrap();
    let streamed = BodyInfo::Streamed { size_hint: Some(5) };
    h.session
        .start_mail(env, streamed, &MessageOptions::default())
        .unwrap();
    h.run("C: MAIL FROM:<a@x.example>\nC: RCPT TO:<b@y.example>");
    h.take_events();
    h.session.send_body(b"hello").unwrap();
    assert!(h.session.finish_body().is_err());
    assert_eq!(h.transmitted(), "", "no BDAT LAST");
    assert_eq!(fate_of(&h.take_events()), Fate::NotSent);
}
