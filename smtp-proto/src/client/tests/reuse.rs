//! What a pool relies on: the idle check before reuse and a message's `Delivery`.

use super::*;

fn connected(script: &str) -> SmtpClient<Scripted> {
    connected_over(Scripted::new(script))
}

#[test]
fn check_idle_on_a_quiet_connection_changes_nothing() {
    let script = format!(
        "{GREETING}
        T: idle
        {ENVELOPE}
        C: hi
        C: .
        S: 250 2.0.0 queued
        "
    );
    let mut client = connected(&script);
    assert_eq!(block_on(client.check_idle()), IdleStatus::Quiet);
    assert_eq!(block_on(client.check_idle()), IdleStatus::Quiet);
    let sent = block_on(client.deliver(&OutgoingMessage::new(
        "a@x.example",
        &["b@y.example"],
        b"hi",
    )));
    assert!(matches!(sent, Delivery::Sent(_)), "{sent:?}");
}

/// A 421 that arrived while the connection sat idle is never paired with the next command:
/// the client closes, and the next call fails without writing anything.
#[test]
fn check_idle_closes_on_a_reply_sent_while_idle() {
    // The 421 comes in a read of its own, after the EHLO reply was handled.
    let mut transport = Scripted::new(GREETING);
    transport.steps.push_back(Step::Server(
        b"421 4.4.2 mx.example idle too long\r\n".to_vec(),
    ));
    let mut client = connected_over(transport);
    assert_eq!(client.state(), SessionState::Authentication);
    let status = block_on(client.check_idle());
    let IdleStatus::Unsolicited { bytes } = status else {
        panic!("{status:?}");
    };
    assert!(bytes.starts_with(b"421 4.4.2"), "{bytes:?}");
    assert_closed(&client);
    // The Scripted transport panics on any write: nothing is sent.
    let err = block_on(client.send_mail("a@x.example", &["b@y.example"], "hi")).unwrap_err();
    assert_eq!(err.blame(), crate::Blame::Io, "{err}");
    assert_eq!(block_on(client.check_idle()), IdleStatus::Closed);
}

/// Input the transport sees (a kernel peek) but the runtime has not noticed yet, so a poll of
/// `read` is still pending: out of step all the same.
#[test]
fn check_idle_believes_the_transport_over_a_pending_read() {
    let mut transport = Scripted::new(GREETING);
    transport.steps.push_back(Step::Idle);
    transport.pending = Some(true);
    let mut client = connected_over(transport);
    let status = block_on(client.check_idle());
    assert_eq!(status, IdleStatus::Unsolicited { bytes: Vec::new() });
    assert_closed(&client);
}

/// A transport that can tell there is nothing to read is not polled at all.
#[test]
fn check_idle_trusts_a_transport_that_says_nothing_is_pending() {
    let mut transport = Scripted::new(GREETING);
    transport.pending = Some(false);
    let mut client = connected_over(transport);
    // The script is over: a poll of `read` would return the end of the stream.
    assert_eq!(block_on(client.check_idle()), IdleStatus::Quiet);
    assert_eq!(client.state(), SessionState::Authentication);
}

/// Part of a reply that came in the same read as the last expected one: the engine holds it,
/// and the next command's reply would be paired with it. Out of step, whatever the transport
/// says.
#[test]
fn check_idle_sees_a_partial_reply_the_engine_holds() {
    let mut transport = Scripted::new(GREETING);
    match transport.steps.back_mut() {
        Some(Step::Server(bytes)) => bytes.extend_from_slice(b"250 stra"),
        other => panic!("the greeting script ends with {other:?}"),
    }
    transport.steps.push_back(Step::Idle);
    transport.pending = Some(false);
    let mut client = connected_over(transport);
    assert!(client.session().holds_partial_reply());
    let status = block_on(client.check_idle());
    assert!(
        matches!(status, IdleStatus::Unsolicited { .. }),
        "{status:?}"
    );
    assert_eq!(client.state(), SessionState::Closed);
}

#[test]
fn check_idle_sees_a_hang_up() {
    let mut client = connected(GREETING);
    assert_eq!(block_on(client.check_idle()), IdleStatus::Closed);
    assert_closed(&client);
}

const FLIGHT: &str = "
    C: MAIL FROM:<a@x.example>
    C: RCPT TO:<b@y.example>
    C: DATA
";

/// The script of a message `hi` sent after `GREETING`: its envelope, the body and the dot,
/// then `rest`.
fn hi_then(rest: &str) -> String {
    format!("{GREETING}{ENVELOPE}C: hi\nC: .\n{rest}")
}

fn deliver_hi(script: &str) -> Delivery {
    let mut client = connected(script);
    block_on(client.deliver(&OutgoingMessage::new(
        "a@x.example",
        &["b@y.example"],
        b"hi",
    )))
}

#[test]
fn a_421_at_mail_is_not_sent_and_retryable() {
    let d = deliver_hi(&format!(
        "{GREETING}{FLIGHT}
        S: 421 4.3.2 shutting down
        "
    ));
    assert!(
        matches!(
            &d,
            Delivery::NotSent {
                before_end_of_data: true,
                ..
            }
        ),
        "{d:?}"
    );
    assert!(d.is_retryable());
}

#[test]
fn a_hang_up_before_the_dot_is_not_sent_and_retryable() {
    let d = deliver_hi(&format!(
        "{GREETING}{FLIGHT}
        S: 250 ok
        "
    ));
    assert_eq!(d.error().map(SmtpError::blame), Some(crate::Blame::Io));
    assert!(d.is_retryable(), "{d:?}");
}

#[test]
fn a_hang_up_after_the_dot_is_unknown() {
    let d = deliver_hi(&hi_then(""));
    assert_eq!(
        d,
        Delivery::Unknown(SmtpError::Protocol(ProtocolError::ConnectionClosed {
            during: SmtpOp::DataEnd
        }))
    );
    assert!(!d.is_retryable());
}

/// A `deliver` call dropped while it waits (its caller gave up): `abandon` gives the engine's
/// verdict, unknown after the dot, not sent before it, and the session is closed.
#[test]
fn a_dropped_call_is_abandoned_with_the_engines_verdict() {
    let message = OutgoingMessage::new("a@x.example", &["b@y.example"], b"hi");
    for (script, unknown) in [
        (hi_then("T: idle"), true),
        (format!("{GREETING}{FLIGHT}T: idle"), false),
    ] {
        let mut client = connected(&script);
        {
            let mut call = core::pin::pin!(client.deliver(&message));
            let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
            assert!(call.as_mut().poll(&mut cx).is_pending());
        }
        let d = client.abandon();
        assert_eq!(matches!(d, Delivery::Unknown(_)), unknown, "{d:?}");
        assert_eq!(d.fate() == Some(crate::Fate::NotSent), !unknown, "{d:?}");
        assert_eq!(client.state(), SessionState::Closed);
    }
}

#[test]
fn a_refusal_of_the_dot_is_not_sent_but_not_retried() {
    for code in ["451 4.3.0 try later", "554 5.6.0 rejected"] {
        let d = deliver_hi(&hi_then(&format!("S: {code}\n")));
        assert!(
            matches!(
                &d,
                Delivery::NotSent {
                    before_end_of_data: false,
                    ..
                }
            ),
            "{d:?}"
        );
        assert!(!d.is_retryable());
    }
}

#[test]
fn a_5xx_before_the_dot_is_final() {
    let d = deliver_hi(&format!(
        "{GREETING}{FLIGHT}
        S: 550 5.7.1 sender refused
        S: 503 5.5.1 no valid sender
        S: 503 5.5.1 no valid recipients
        "
    ));
    assert!(matches!(&d, Delivery::NotSent { .. }), "{d:?}");
    assert!(!d.is_retryable());
}

/// `DataPipelining::Always`: DATA went with the RCPTs, one recipient was refused and the server
/// waits for data. The client closes the transport without a body byte (the scripted transport
/// panics on any write not in the script): nothing delivered, the message not sent.
#[test]
fn a_partial_refusal_with_pipelined_data_closes_before_the_body() {
    let script = format!(
        "{GREETING}
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<b@y.example>
        C: RCPT TO:<c@y.example>
        C: DATA
        S: 250 ok
        S: 250 ok
        S: 550 5.1.1 no such user
        S: 354 go
        "
    );
    let mut client = block_on(SmtpClient::connect_with(
        Scripted::new(&script),
        "client.example",
        options().with_data_pipelining(crate::DataPipelining::Always),
    ))
    .unwrap();
    let d = block_on(client.deliver(&OutgoingMessage::new(
        "a@x.example",
        &["b@y.example", "c@y.example"],
        b"hi",
    )));
    match &d {
        Delivery::NotSent {
            error: SmtpError::Protocol(ProtocolError::RecipientsRefused { accepted: 1, .. }),
            before_end_of_data: true,
        } => {}
        other => panic!("{other:?}"),
    }
    assert!(!d.is_retryable(), "a 5xx refusal is final");
    assert_closed(&client);
}

/// A streamed body gets the same classification: sent, unknown after its dot, not sent when it
/// failed to read before its end.
#[test]
fn deliver_stream_classifies_like_deliver() {
    let stream_hi = |script: &str| {
        let mut client = connected(script);
        let mut body = SliceBody::new(b"hi");
        block_on(client.deliver_stream("a@x.example", &["b@y.example"], &mut body, None))
    };
    let d = stream_hi(&hi_then("S: 250 2.0.0 queued\n"));
    assert!(matches!(d, Delivery::Sent(_)), "{d:?}");

    let d = stream_hi(&hi_then(""));
    assert!(matches!(d, Delivery::Unknown(_)), "{d:?}");
    assert!(!d.is_retryable());

    let mut client = connected(&format!("{GREETING}{ENVELOPE}"));
    let d = block_on(client.deliver_stream(
        "a@x.example",
        &["b@y.example"],
        &mut FailingBody,
        Some(&MessageOptions::default()),
    ));
    match &d {
        Delivery::NotSent {
            error:
                SmtpError::Io {
                    during: SmtpOp::ReadBody,
                    ..
                },
            before_end_of_data: true,
        } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(client.state(), SessionState::Closed);
}

/// The server hangs up after the dot (the message's fate: unknown), and the caller drops the
/// call while the client closes the transport: `abandon` still says unknown. It used to say
/// not sent (the driver had taken the result off the engine's queue), and a pool would have
/// sent the message twice.
#[test]
fn abandon_during_the_close_keeps_the_result_taken() {
    let script = format!("{GREETING}{ENVELOPE}C: hi\nC: .\n");
    let mut client = connect_stuck::<false>(&script, options());
    let message = OutgoingMessage::new("a@x.example", &["b@y.example"], b"hi");
    {
        let mut call = core::pin::pin!(client.deliver(&message));
        let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
        assert!(
            call.as_mut().poll(&mut cx).is_pending(),
            "held by the close"
        );
    }
    assert_eq!(client.state(), SessionState::Closed);
    let delivery = client.abandon();
    assert!(matches!(delivery, Delivery::Unknown(_)), "{delivery:?}");
}

/// A `421` read together with the acceptance: the message is sent, and the transport is
/// closed at once with the session. It used to stay open, through the next call too.
#[test]
fn a_421_read_with_the_acceptance_closes_the_transport() {
    let script = format!(
        "{GREETING}{ENVELOPE}C: hi\nC: .\nS: 250 2.0.0 queued as A\nS: 421 4.3.2 shutting down\n"
    );
    block_on(async {
        let mut client = connect(&script).await;
        let sent = client
            .send_mail("a@x.example", &["b@y.example"], "hi")
            .await;
        assert_eq!(sent.unwrap().queue_id.as_deref(), Some("A"));
        assert_closed(&client);
    });
}

/// The end of data reached the server and was accepted, but the transport reported the write
/// failed: the `250` read after the failed write makes the message sent. It was `NotSent`,
/// which a pool retries, delivering it twice (found in review).
#[test]
fn a_message_accepted_before_its_write_failed_is_sent() {
    let script = format!(
        "{GREETING}{ENVELOPE}
        C: hi
        C: .
        S: 250 2.0.0 queued as HI
        "
    );
    let mut transport = Scripted::new(&script);
    transport.fails_after = Some(b"\r\n.\r\n");
    let mut client = connected_over(transport);
    let delivery = block_on(client.deliver(&OutgoingMessage::new(
        "a@x.example",
        &["b@y.example"],
        b"hi",
    )));
    assert!(matches!(delivery, Delivery::Sent(_)), "{delivery:?}");
}
