//! Replies out of step with the commands: a reply whose class cannot answer the command it is
//! paired with (a `2xx` to DATA, a `3xx` to anything but DATA or an AUTH step, any `1xx`) closes
//! the session with [`ProtocolError::OutOfSync`], never an ordinary refusal, and nothing more is
//! written: no RSET, no body, no next command that the server could read as message text.

use super::*;

/// The session failed out of sync with `code` paired with `op`: each message in flight and the
/// session fail with it, the session is closed, and nothing more is written, even when more
/// replies come.
fn assert_out_of_sync(h: &mut Harness, op: SmtpOp, code: u16) {
    let events = h.take_events();
    let is_it = |e: &SmtpError| {
        matches!(e, SmtpError::Protocol(ProtocolError::OutOfSync { during, reply })
            if *during == op && reply.code().get() == code)
    };
    assert!(
        matches!(events.last(), Some(Event::Failed { error, session: SessionAfter::Closed }) if is_it(error)),
        "{op} / {code}: {events:?}"
    );
    for event in &events {
        match event {
            Event::MessageFailed { error, session, .. } => {
                assert!(is_it(error), "{op} / {code}: {events:?}");
                assert_eq!(*session, SessionAfter::Closed, "{op} / {code}");
            }
            Event::BodyWanted(_) => panic!("{op} / {code}: the body was asked for: {events:?}"),
            _ => {}
        }
    }
    assert_eq!(h.session.state(), SessionState::Closed, "{op} / {code}");
    assert_eq!(
        h.transmitted(),
        "",
        "{op} / {code}: bytes after the loss of sync"
    );
    // Whatever the server sends next (the reply the command was owed, say) is not read.
    h.feed(b"354 go ahead\r\n250 ok\r\n");
    assert_eq!(h.take_events(), vec![], "{op} / {code}");
    assert_eq!(h.transmitted(), "", "{op} / {code}");
    let again = h
        .session
        .start_mail(
            Envelope::new("a@x.example", &["b@y.example"]).unwrap(),
            seven_bit(4),
            &MessageOptions::default(),
        )
        .unwrap_err();
    assert!(is_it(&again), "{op} / {code}: {again:?}");
    assert_eq!(h.transmitted(), "", "{op} / {code}");
}

/// Send one message in lockstep or pipelined, whole.
fn one_message(h: &mut Harness, pipelined: bool) {
    let to = ["b@y.example"];
    if pipelined {
        h.offer(
            &to,
            b"one\r\n",
            "S: 250 2.1.0 ok\nS: 250 2.1.5 ok\nS: 354 go",
        );
    } else {
        let replies = ["250 2.1.0 ok", "250 2.1.5 ok", "354 go"];
        h.offer_lockstep(&to, b"one\r\n", &replies);
    }
    h.deliver("one", "250 2.0.0 queued as Q1");
    assert_eq!(h.sent().queue_id.as_deref(), Some("Q1"));
}

/// The outside review's server: after accepting a message it sends one `250` too many, which
/// arrives once the next message's first command is out. Every reply of the next envelope is
/// then one behind, and DATA is answered by the `250` of RCPT. Taken as a refusal, the session
/// was kept, the server's `354` came next, and the RSET and MAIL of the following message went
/// into a message body. Pipelined: the whole envelope is in one flight.
#[test]
fn an_extra_250_after_a_message_is_caught_at_data_pipelined() {
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        one_message(h, true);
        h.offer(
            &["c@y.example"],
            b"two\r\n",
            "
                S: 250 ok
                S: 250 2.1.0 ok
                S: 250 2.1.5 ok
            ",
        );
        assert_out_of_sync(h, SmtpOp::Data, 250);
    });
}

/// The same server without PIPELINING: each command waits for the reply it is paired with, so
/// the one too many shows only at DATA, and nothing is written after it (no RSET).
#[test]
fn an_extra_250_after_a_message_is_caught_at_data_in_lockstep() {
    both_ways(config, |h| {
        ready(h, EHLO_LOCKSTEP);
        one_message(h, false);
        h.offer_lockstep(
            &["c@y.example"],
            b"two\r\n",
            &["250 ok", "250 2.1.0 ok", "250 2.1.5 ok"],
        );
        assert_out_of_sync(h, SmtpOp::Data, 250);
    });
}

/// Chained messages (batch sending): the extra `250` comes right after the first message's
/// reply, in the flight that carries the second's envelope. The first message keeps its
/// result; the second fails out of sync, by its own handle, and the session closes.
#[test]
fn an_extra_250_between_chained_messages_fails_only_the_second() {
    both_ways(config, |h| {
        let second =
            h.chain_two("S: 250 2.0.0 queued as ONE\nS: 250 ok\nS: 250 2.1.0 ok\nS: 250 2.1.5 ok");
        let events = h.take_events();
        assert!(
            matches!(events.first(), Some(Event::Sent(o)) if o.queue_id.as_deref() == Some("ONE")),
            "{events:?}"
        );
        assert!(
            matches!(&events[1], Event::MessageFailed { message, .. } if *message == second),
            "{events:?}"
        );
        h.events = events[1..].to_vec();
        assert_out_of_sync(h, SmtpOp::Data, 250);
    });
}

/// A `354` to MAIL: the server takes what follows for message text. The message is not refused,
/// the session is closed, and no RCPT, body or RSET is written.
#[test]
fn a_354_to_mail_closes_the_session() {
    both_ways(config, |h| {
        ready(h, EHLO_LOCKSTEP);
        h.mail("a@x.example", &["b@y.example"], b"one\r\n").unwrap();
        h.run("C: MAIL FROM:<a@x.example>\nS: 354 go ahead");
        assert_out_of_sync(h, SmtpOp::MailFrom, 354);
    });
    // Pipelined: the first reply of the flight decides; the rest are not read.
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        h.offer(
            &["b@y.example"],
            b"one\r\n",
            "
                S: 354 go ahead
                S: 250 ok
                S: 250 ok
            ",
        );
        assert_out_of_sync(h, SmtpOp::MailFrom, 354);
    });
}

/// A `1xx` (which SMTP never sends) answers no command: at every step it closes the session as a
/// loss of sync, with the reply kept in the error.
#[test]
fn a_1xx_reply_closes_the_session_at_every_step() {
    for (stage, op) in STAGES {
        for code in [100, 150, 159] {
            let mut h = awaiting(*stage);
            h.feed(format!("{code} preliminary\r\n").as_bytes());
            assert_out_of_sync(&mut h, *op, code);
        }
    }
}

/// A `334` (a SASL challenge) outside AUTH: the server waits for a response nobody sends.
#[test]
fn a_334_outside_auth_closes_the_session() {
    for (stage, op) in STAGES.iter().filter(|(s, _)| *s != Stage::Auth) {
        let mut h = awaiting(*stage);
        h.feed(b"334 VXNlcm5hbWU6\r\n");
        assert_out_of_sync(&mut h, *op, 334);
    }
}

/// Every `3xx` but the two each command may get (`354` to DATA, `334` to an AUTH step), and a
/// `2xx` to DATA, close the session wherever they come.
#[test]
fn every_reply_that_cannot_answer_its_command_closes_the_session() {
    for (stage, op) in STAGES {
        let codes: &[u16] = match stage {
            Stage::Data => &[250, 251, 220, 221, 235, 300, 334, 355],
            Stage::Auth => &[354, 300, 335],
            _ => &[354, 300, 334, 355],
        };
        for code in codes {
            let mut h = awaiting(*stage);
            h.feed(format!("{code} what\r\n").as_bytes());
            assert_out_of_sync(&mut h, *op, *code);
        }
    }
}

/// A message that failed out of sync before its end of data was not delivered and may go again
/// on a new connection: the pool's rule ([`Delivery::is_retryable`]) retries it. After its end
/// of data it is no refusal: it says nothing of the message's fate.
#[cfg(feature = "client")]
#[test]
fn out_of_sync_before_the_end_of_data_is_retryable() {
    use crate::client::Delivery;
    let error: SmtpError = ProtocolError::OutOfSync {
        during: SmtpOp::Data,
        reply: Reply::new(ReplyCode::OK, None, "ok"),
    }
    .into();
    assert_eq!(error.blame(), crate::error::Blame::ServerMisbehaved);
    assert_eq!(error.reply(), None, "not a refusal");
    let before = Delivery::NotSent {
        error: error.clone(),
        before_end_of_data: true,
    };
    assert!(before.is_retryable());
    assert!(!Delivery::Unknown(error).is_retryable());
}

/// Where a reply is awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    Auth,
    Mail,
    Rcpt,
    Data,
    DataEnd,
    Bdat,
    BdatLast,
    Rset,
    Noop,
    Quit,
}

/// Each stage and the command its reply is paired with.
const STAGES: &[(Stage, SmtpOp)] = &[
    (Stage::Greeting, SmtpOp::Greeting),
    (Stage::Ehlo, SmtpOp::Ehlo),
    (Stage::Helo, SmtpOp::Helo),
    (Stage::StartTls, SmtpOp::StartTls),
    (Stage::Auth, SmtpOp::Auth),
    (Stage::Mail, SmtpOp::MailFrom),
    (Stage::Rcpt, SmtpOp::RcptTo),
    (Stage::Data, SmtpOp::Data),
    (Stage::DataEnd, SmtpOp::DataEnd),
    (Stage::Bdat, SmtpOp::Bdat),
    (Stage::BdatLast, SmtpOp::DataEnd),
    (Stage::Rset, SmtpOp::Rset),
    (Stage::Noop, SmtpOp::Noop),
    (Stage::Quit, SmtpOp::Quit),
];

/// A session waiting for the reply at `stage`, everything before it written and checked.
fn awaiting(stage: Stage) -> Harness {
    let mut h = Harness::new(SessionConfig {
        bdat_chunk_size: 4,
        ..config()
    });
    match stage {
        Stage::Greeting => {}
        Stage::Ehlo => h.run("S: 220 mx.example ESMTP\nC: EHLO client.example"),
        Stage::Helo => h.run(
            "S: 220 mx.example ESMTP\nC: EHLO client.example\nS: 502 no\nC: HELO client.example",
        ),
        Stage::StartTls => {
            ready(&mut h, EHLO_FULL);
            h.session.start_tls().unwrap();
            h.run("C: STARTTLS");
        }
        Stage::Auth => {
            ready(&mut h, EHLO_FULL);
            h.session.login_auto("user", "secret").unwrap();
            h.run("C: AUTH PLAIN AHVzZXIAc2VjcmV0");
        }
        Stage::Mail | Stage::Rcpt | Stage::Data | Stage::DataEnd => {
            ready(&mut h, EHLO_LOCKSTEP);
            h.mail("a@x.example", &["b@y.example"], b"one\r\n").unwrap();
            h.run("C: MAIL FROM:<a@x.example>");
            if stage != Stage::Mail {
                h.run("S: 250 ok\nC: RCPT TO:<b@y.example>");
            }
            if matches!(stage, Stage::Data | Stage::DataEnd) {
                h.run("S: 250 ok\nC: DATA");
            }
            if stage == Stage::DataEnd {
                h.run("S: 354 go");
                h.body(b"one\r\n");
                h.run("C: one\nC: .");
            }
        }
        Stage::Bdat | Stage::BdatLast => {
            ready(&mut h, EHLO_CHUNKING);
            if stage == Stage::BdatLast {
                h.stream_abcde_in_fours("S: 250 ok\nS: 250 ok\nS: 250 ok");
                h.take_events();
            } else {
                h.start_streamed();
                h.session.send_body(b"abcde").unwrap();
                h.take_events();
                assert_eq!(
                    h.transmitted(),
                    "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nBDAT 4\r\nabcd"
                );
                h.run("S: 250 ok\nS: 250 ok");
            }
        }
        Stage::Rset | Stage::Noop | Stage::Quit => {
            ready(&mut h, EHLO_FULL);
            match stage {
                Stage::Rset => h.session.rset().unwrap(),
                Stage::Noop => h.session.noop().unwrap(),
                _ => h.session.quit().unwrap(),
            }
            h.run(match stage {
                Stage::Rset => "C: RSET",
                Stage::Noop => "C: NOOP",
                _ => "C: QUIT",
            });
        }
    }
    h.take_events();
    h
}

/// A reply to a whole `BDAT 14 LAST` before its 14 bytes are given cannot answer it (the server
/// has not read the chunk): out of sync, and the session closes. Before, it was taken as the
/// final reply: the message reported sent with half its bytes, and the next message's MAIL
/// and RCPT read by the server as the rest of the chunk.
#[test]
fn a_reply_to_a_whole_bdat_chunk_before_its_bytes_is_out_of_sync() {
    let mut h = Harness::ready(config(), EHLO_CHUNKING);
    let body = b"hello\r\nworld\r\n";
    h.mail("a@x.example", &["b@y.example"], body).unwrap();
    h.run("C: MAIL FROM:<a@x.example>\nC: RCPT TO:<b@y.example>");
    h.take_events();
    h.session.send_body(&body[..7]).unwrap();
    assert_eq!(h.transmitted(), "BDAT 14 LAST\r\nhello\r\n");
    h.feed(b"250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n");
    let events = h.take_events();
    assert!(
        !events.iter().any(|e| matches!(e, Event::Sent(_))),
        "{events:?}"
    );
    let out_of_sync = events.iter().any(|e| {
        matches!(
            e,
            Event::MessageFailed {
                error: SmtpError::Protocol(ProtocolError::OutOfSync {
                    during: SmtpOp::Bdat,
                    ..
                }),
                fate: Fate::NotSent,
                ..
            }
        )
    });
    assert!(out_of_sync, "{events:?}");
    h.assert_closed_for_good();
}
