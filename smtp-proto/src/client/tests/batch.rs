//! `send_batch`: chained envelopes over DATA and BDAT, one result per message, a lost
//! connection failing the rest.

use super::*;

/// Three messages of a batch over CHUNKING, written before the first reply is read (after
/// `GREETING_CHUNKING`): each message's MAIL, RCPT and `BDAT 4 LAST` with its body (`m1`, `m2`,
/// `m3` to `b@`, `c@` and `d@y.example`).
const BDAT_BATCH: &str = "
    C: MAIL FROM:<a@x.example>
    C: RCPT TO:<b@y.example>
    C: BDAT 4 LAST
    C: m1
    C: MAIL FROM:<a@x.example>
    C: RCPT TO:<c@y.example>
    C: BDAT 4 LAST
    C: m2
    C: MAIL FROM:<a@x.example>
    C: RCPT TO:<d@y.example>
    C: BDAT 4 LAST
    C: m3
";

/// A batch over DATA: each message's envelope rides in the same flight as the previous
/// message's end of data (the script panics if the client reads before writing it), a locally
/// invalid message and a message refused at the dot do not affect the others.
#[test]
fn send_batch_chains_messages_and_reports_each() {
    let script = format!(
        "{GREETING}{ENVELOPE}
        C: one
        {}
        S: 250 ok
        S: 250 ok
        S: 354 go
        C: three
        C: .
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<e@y.example>
        C: DATA
        S: 554 5.7.1 rejected as spam
        S: 250 ok
        S: 250 ok
        S: 354 go
        C: four
        C: .
        S: 250 2.0.0 queued as FOUR
        C: QUIT
        S: 221 bye
        ",
        chained("d@y.example", "ONE")
    );
    block_on(async {
        let mut client = connect(&script).await;
        let bad = ["c@y.example\r\nRSET"];
        let messages = [
            OutgoingMessage::new("a@x.example", &["b@y.example"], b"one"),
            OutgoingMessage::new("a@x.example", &bad, b"two"),
            OutgoingMessage::new("a@x.example", &["d@y.example"], b"three"),
            OutgoingMessage::new("a@x.example", &["e@y.example"], b"four"),
        ];
        let results = client.send_batch(&messages).await;
        assert_eq!(results.len(), 4);
        assert_eq!(
            results[0].as_ref().unwrap().queue_id.as_deref(),
            Some("ONE")
        );
        assert!(matches!(results[1], Err(SmtpError::InvalidInput(_))));
        match &results[2] {
            Err(SmtpError::Protocol(ProtocolError::UnexpectedCode { during, reply })) => {
                assert_eq!(*during, SmtpOp::DataEnd);
                assert_eq!(reply.code().get(), 554);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            results[3].as_ref().unwrap().queue_id.as_deref(),
            Some("FOUR")
        );
        assert_eq!(client.state(), SessionState::Ready);
        client.quit().await.unwrap();
    });
}

/// With CHUNKING every message is a complete `BDAT ... LAST` transaction, so the whole batch is
/// written before the first reply is read.
#[test]
fn send_batch_over_bdat_needs_no_round_trip_between_messages() {
    let script = &format!(
        "{GREETING_CHUNKING}{BDAT_BATCH}
        S: 250 ok
        S: 250 ok
        S: 250 queued as Q1
        S: 250 ok
        S: 250 ok
        S: 250 queued as Q2
        S: 250 ok
        S: 250 ok
        S: 250 queued as Q3
        "
    );
    block_on(async {
        let mut client = connect(script).await;
        let messages = [
            OutgoingMessage::new("a@x.example", &["b@y.example"], b"m1\r\n"),
            OutgoingMessage::new("a@x.example", &["c@y.example"], b"m2\r\n"),
            OutgoingMessage::new("a@x.example", &["d@y.example"], b"m3\r\n"),
        ];
        let ids: Vec<String> = client
            .send_batch(&messages)
            .await
            .into_iter()
            .map(|r| r.unwrap().queue_id.unwrap())
            .collect();
        assert_eq!(ids, ["Q1", "Q2", "Q3"]);
    });
}

/// A connection lost in the middle of a batch: the unconfirmed and the unstarted messages all
/// get the error that closed the session; the confirmed one keeps its outcome.
#[test]
fn send_batch_connection_lost_fails_the_rest() {
    let script = format!(
        "{GREETING}{ENVELOPE}C: one\n{}",
        chained("c@y.example", "ONE")
    );
    block_on(async {
        let mut client = connect(&script).await;
        let messages = [
            OutgoingMessage::new("a@x.example", &["b@y.example"], b"one"),
            OutgoingMessage::new("a@x.example", &["c@y.example"], b"two"),
            OutgoingMessage::new("a@x.example", &["d@y.example"], b"three"),
        ];
        let results = client.send_batch(&messages).await;
        assert!(results[0].is_ok());
        for r in &results[1..] {
            assert!(
                matches!(
                    r,
                    Err(SmtpError::Protocol(ProtocolError::ConnectionClosed { .. }))
                ),
                "{r:?}"
            );
        }
        assert_eq!(client.state(), SessionState::Closed);
        // Later calls give the same error without I/O.
        let again = client.send_batch(&messages[..1]).await;
        assert!(matches!(
            again[0],
            Err(SmtpError::Protocol(ProtocolError::ConnectionClosed { .. }))
        ));
    });
}

/// `deliver_batch` says what became of each message when the connection is lost: over BDAT
/// every message's `BDAT ... LAST` was written before the hang-up, so the unconfirmed ones are
/// unknown (never to be sent again); over DATA the message whose body was not yet asked for,
/// and the one not yet started, provably were not delivered.
#[test]
fn deliver_batch_gives_each_message_its_fate_when_the_connection_is_lost() {
    let bdat = &format!(
        "{GREETING_CHUNKING}{BDAT_BATCH}
        S: 250 ok
        S: 250 ok
        S: 250 queued as Q1
        "
    );
    let data = format!(
        "{GREETING}{ENVELOPE}C: m1\n{}",
        chained("c@y.example", "Q1")
    );
    let messages = [
        OutgoingMessage::new("a@x.example", &["b@y.example"], b"m1\r\n"),
        OutgoingMessage::new("a@x.example", &["c@y.example"], b"m2\r\n"),
        OutgoingMessage::new("a@x.example", &["d@y.example"], b"m3\r\n"),
    ];
    block_on(async {
        let mut client = connect(bdat).await;
        let fates = client.deliver_batch(&messages).await;
        assert!(matches!(&fates[0], Delivery::Sent(o) if o.queue_id.as_deref() == Some("Q1")));
        for fate in &fates[1..] {
            assert!(matches!(fate, Delivery::Unknown(_)), "{fate:?}");
            assert!(!fate.is_retryable());
        }

        let mut client = connect(&data).await;
        let fates = client.deliver_batch(&messages).await;
        assert!(matches!(&fates[0], Delivery::Sent(_)));
        for fate in &fates[1..] {
            assert!(
                matches!(
                    fate,
                    Delivery::NotSent {
                        before_end_of_data: true,
                        ..
                    }
                ),
                "{fate:?}"
            );
            assert!(fate.is_retryable(), "{fate:?}");
        }
    });
}

/// A reply that accepts one message and asks for the next command of another, read together,
/// followed by a write that fails: the accepted message keeps its outcome (the failure takes
/// the events queued before it, and must not lose an acceptance among them), the other is not
/// sent. With two recipients DATA waits for the RCPT replies, so it is queued by that read.
#[test]
fn an_acceptance_read_just_before_a_failed_write_is_kept() {
    let script = format!(
        "{GREETING}{ENVELOPE}
        C: one
        C: .
        C: MAIL FROM:<a@x.example>
        C: RCPT TO:<c@y.example>
        C: RCPT TO:<d@y.example>
        S: 250 2.0.0 queued as ONE
        S: 250 ok
        S: 250 ok
        S: 250 ok
        X: close
        "
    );
    let messages = [
        OutgoingMessage::new("a@x.example", &["b@y.example"], b"one\r\n"),
        OutgoingMessage::new("a@x.example", &["c@y.example", "d@y.example"], b"two\r\n"),
    ];
    block_on(async {
        let mut client = connect(&script).await;
        let fates = client.deliver_batch(&messages).await;
        assert!(
            matches!(&fates[0], Delivery::Sent(o) if o.queue_id.as_deref() == Some("ONE")),
            "{fates:?}"
        );
        assert!(
            matches!(
                &fates[1],
                Delivery::NotSent {
                    error: SmtpError::Io { .. },
                    before_end_of_data: true,
                }
            ),
            "{fates:?}"
        );
        assert_closed(&client);
    });
}
