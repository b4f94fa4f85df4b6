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
