//! A connection between two operations: anything at all found on it closes the session, and
//! nothing of it is parsed as a reply.

use super::*;
use crate::error::IoErrorKind;

/// A session past `EHLO_FULL`, nothing awaited.
fn idle() -> Harness {
    Harness::ready(config(), EHLO_FULL)
}

/// The session closed with an I/O error of `kind`, and writes nothing more.
#[track_caller]
fn assert_closed_with(h: &mut Harness, kind: IoErrorKind) {
    let err = h.failure();
    assert!(
        matches!(&err, SmtpError::Io { error, .. } if error.kind == kind),
        "{err:?}"
    );
    h.assert_closed_for_good();
}

#[test]
fn nothing_found_leaves_the_session_usable() {
    let mut h = idle();
    assert_eq!(h.session.idle_input(IdleInput::Nothing), IdleStatus::Quiet);
    assert!(h.take_events().is_empty());
    h.noop_answered();
}

#[test]
fn unsolicited_bytes_close_the_session_and_are_never_parsed() {
    let mut h = idle();
    let status = h
        .session
        .idle_input(IdleInput::Bytes(b"421 4.4.2 idle too long\r\n"));
    assert_eq!(
        status,
        IdleStatus::Unsolicited {
            bytes: b"421 4.4.2 idle too long\r\n".to_vec()
        }
    );
    // Not a reply the engine read (that would be a 421 `Protocol` error): bytes out of step.
    assert_closed_with(&mut h, IoErrorKind::InvalidData);
}

#[test]
fn only_the_first_bytes_are_kept_for_a_log_line() {
    let mut h = idle();
    let flood = vec![b'x'; 4096];
    let IdleStatus::Unsolicited { bytes } = h.session.idle_input(IdleInput::Bytes(&flood)) else {
        panic!("unsolicited bytes are unsolicited");
    };
    assert_eq!(bytes.len(), 512);
}

#[test]
fn input_waiting_or_a_partial_reply_is_out_of_step_even_with_nothing_read() {
    let mut h = idle();
    assert_eq!(
        h.session.idle_input(IdleInput::Waiting),
        IdleStatus::Unsolicited { bytes: Vec::new() }
    );
    assert_closed_with(&mut h, IoErrorKind::InvalidData);

    let mut h = idle();
    h.feed(b"250-half of a rep");
    assert!(h.session.holds_partial_reply());
    assert_eq!(
        h.session.idle_input(IdleInput::Nothing),
        IdleStatus::Unsolicited { bytes: Vec::new() }
    );
    assert_closed_with(&mut h, IoErrorKind::InvalidData);
}

#[test]
fn an_end_of_stream_or_a_failed_read_is_closed() {
    let mut h = idle();
    assert_eq!(h.session.idle_input(IdleInput::Eof), IdleStatus::Closed);
    assert_protocol_failure!(h, ProtocolError::ConnectionClosed { .. });
    h.assert_closed_for_good();

    let mut h = idle();
    let found = IdleInput::Error(IoErrorKind::ConnectionReset, "reset by peer");
    assert_eq!(h.session.idle_input(found), IdleStatus::Closed);
    assert_closed_with(&mut h, IoErrorKind::ConnectionReset);

    // Closed already: closed, whatever is found, and no second failure.
    assert_eq!(h.session.idle_input(IdleInput::Nothing), IdleStatus::Closed);
    assert!(h.take_events().is_empty());
}
