//! Sending over real loopback TCP: `send_mail`, `send_mail_bytes`, `send_mail_stream` with
//! `ReaderBody` (file, duplex pipe, failing reader), pipelining with refused recipients under both
//! recipient policies, queue ids, SIZE.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use smtp_io_tokio::smtp_proto::RecipientOutcome;
use smtp_io_tokio::{
    ProtocolError, ReaderBody, RecipientPolicy, SessionState, SmtpClient, SmtpError, SmtpOp,
    TokioTransport,
};
use smtp_tests::{ScriptServer, bounded, greet, plain};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};

mod common;

use common::{
    ENVELOPE, FLIGHT, QUIT, assert_matches, assert_unexpected_code, send_queued, start_session,
    start_with,
};

/// The recipients of the tests where one of several is refused.
const THREE: [&str; 3] = ["one@y.test", "two@y.test", "three@y.test"];

/// The addresses of `recipients` (of a `SendOutcome`), in order.
fn addresses<'a>(recipients: impl IntoIterator<Item = &'a RecipientOutcome>) -> Vec<&'a str> {
    recipients
        .into_iter()
        .map(|r| r.recipient.as_str())
        .collect()
}

#[tokio::test]
async fn send_mail_pipelined_with_queue_id() {
    let exchange = "C: MAIL FROM:<alice@x.test>
        C: RCPT TO:<bob@y.test>
        C: RCPT TO:<carol@y.test>
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 250 2.1.5 Ok
        # RequireAll (the default) with several recipients: DATA only once all are accepted.
        C: DATA
        S: 354 End data with <CR><LF>.<CR><LF>
        C: DATA-BODY
        S: 250 2.0.0 Ok: queued as ABC123
        ";
    let (server, mut client) =
        start_session(&["PIPELINING", "ENHANCEDSTATUSCODES"], exchange).await;
    let body = "From: alice@x.test\r\nTo: bob@y.test\r\nSubject: hi\r\n\r\nHello!\r\n";
    let outcome = bounded(client.send_mail("alice@x.test", &["bob@y.test", "carol@y.test"], body))
        .await
        .unwrap();
    assert_eq!(outcome.queue_id.as_deref(), Some("ABC123"));
    assert_eq!(outcome.reply.code().get(), 250);
    assert_eq!(outcome.size, body.len() as u64);
    assert_eq!(
        addresses(&outcome.recipients),
        ["bob@y.test", "carol@y.test"]
    );
    assert_eq!(outcome.accepted().count(), 2);
    assert_eq!(outcome.refused().count(), 0);
    assert_eq!(client.state(), SessionState::Ready);
    let report = smtp_tests::quit(client, server).await;
    assert_eq!(report.bodies, [body.as_bytes().to_vec()]);
}

#[tokio::test]
async fn queue_id_is_none_without_a_known_pattern() {
    let exchange = format!("{FLIGHT}S: 250 accepted\n{FLIGHT}S: 250 OK id=1t9Zk2-000123-Ab\n");
    let (server, mut client) = start_session(&["PIPELINING"], &exchange).await;
    let first = bounded(client.send_mail("a@x.test", &["b@y.test"], "one\r\n"))
        .await
        .unwrap();
    assert_eq!(first.queue_id, None);
    let second = bounded(client.send_mail("a@x.test", &["b@y.test"], "two\r\n"))
        .await
        .unwrap();
    assert_eq!(second.queue_id.as_deref(), Some("1t9Zk2-000123-Ab"));
    let report = smtp_tests::quit(client, server).await;
    assert_eq!(report.bodies, [b"one\r\n".to_vec(), b"two\r\n".to_vec()]);
}

/// The default policy is RequireAll: with several recipients the client waits for the RCPT
/// replies before DATA, sends nothing when one is refused, and resets the transaction lazily
/// (RSET in the next flight).
#[tokio::test]
async fn require_all_is_the_default_and_refuses_the_message() {
    let exchange = "C: MAIL FROM:<a@x.test>
        C: RCPT TO:<one@y.test>
        C: RCPT TO:<two@y.test>
        C: RCPT TO:<three@y.test>
        S: 250 ok
        S: 250 ok
        S: 550 5.1.1 <two@y.test>: no such user
        S: 250 ok
        C: RSET
        C: MAIL FROM:<a@x.test>
        C: RCPT TO:<one@y.test>
        C: DATA
        S: 250 reset
        S: 250 ok
        S: 250 ok
        S: 354 go
        C: DATA-BODY
        S: 250 2.0.0 Ok: queued as Q2
        ";
    let (server, mut client) = start_session(&["PIPELINING"], exchange).await;
    let err = bounded(client.send_mail("a@x.test", &THREE, "first\r\n"))
        .await
        .unwrap_err();
    match &err {
        SmtpError::Protocol(ProtocolError::RecipientsRefused { refused, accepted }) => {
            assert_eq!(*accepted, 2);
            assert_eq!(refused.len(), 1);
            assert_eq!(refused[0].index, 1);
            assert_eq!(refused[0].recipient, "two@y.test");
            assert_eq!(refused[0].reply.code().get(), 550);
            assert!(refused[0].reply.text().contains("no such user"));
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_transient());
    assert_eq!(
        client.state(),
        SessionState::Ready,
        "the session stays usable"
    );
    send_queued(&mut client, &["one@y.test"], "second\r\n", "Q2").await;
    let report = smtp_tests::quit(client, server).await;
    // Only the second message was sent.
    assert_eq!(report.bodies, [b"second\r\n".to_vec()]);
}

/// A server that offers PIPELINING, expects `exchange` and then QUIT; and a client connected to
/// it that accepts a message when some of its recipients are refused
/// (`RecipientPolicy::AcceptPartial`).
async fn start_accepting_partial(exchange: &str) -> (ScriptServer, SmtpClient<TokioTransport>) {
    let script = format!("{}{exchange}{QUIT}", greet(&["PIPELINING"]));
    let options =
        plain().map_client_options(|o| o.with_recipient_policy(RecipientPolicy::AcceptPartial));
    let (server, client) = start_with(&script, options).await;
    (server, client.unwrap())
}

#[tokio::test]
async fn accept_partial_delivers_to_the_accepted_recipients() {
    let (server, mut client) = start_accepting_partial(
        "C: MAIL FROM:<a@x.test>
        C: RCPT TO:<one@y.test>
        C: RCPT TO:<two@y.test>
        C: RCPT TO:<three@y.test>
        C: DATA
        S: 250 ok
        S: 250 ok
        S: 550 5.1.1 no such user
        S: 452 4.2.2 mailbox full
        S: 354 go
        C: DATA-BODY
        S: 250 2.0.0 Ok: queued as PART1
        ",
    )
    .await;
    let outcome = bounded(client.send_mail("a@x.test", &THREE, "partial\r\n"))
        .await
        .unwrap();
    let codes: Vec<(&str, u16)> = outcome
        .recipients
        .iter()
        .map(|r| (r.recipient.as_str(), r.reply.code().get()))
        .collect();
    assert_eq!(
        codes,
        [
            ("one@y.test", 250),
            ("two@y.test", 550),
            ("three@y.test", 452)
        ]
    );
    assert_eq!(addresses(outcome.accepted()), ["one@y.test"]);
    assert_eq!(addresses(outcome.refused()), ["two@y.test", "three@y.test"]);
    assert_eq!(outcome.queue_id.as_deref(), Some("PART1"));
    let report = smtp_tests::quit(client, server).await;
    assert_eq!(report.bodies, [b"partial\r\n".to_vec()]);
}

#[tokio::test]
async fn every_recipient_refused_is_an_error_and_the_session_stays_usable() {
    let (server, mut client) = start_accepting_partial(
        "C: MAIL FROM:<a@x.test>\nC: RCPT TO:<nobody@y.test>\nC: DATA\n\
         S: 250 ok\nS: 550 5.1.1 unknown\nS: 554 5.5.1 no valid recipients\n\
         C: NOOP\nS: 250 ok\n",
    )
    .await;
    let err = bounded(client.send_mail("a@x.test", &["nobody@y.test"], "x\r\n"))
        .await
        .unwrap_err();
    assert_matches!(
        err,
        SmtpError::Protocol(ProtocolError::RecipientsRefused { accepted: 0, .. })
    );
    bounded(client.noop()).await.unwrap();
    bounded(client.quit()).await.unwrap();
    assert!(server.finish().await.bodies.is_empty());
}

#[tokio::test]
async fn sender_refused_is_unexpected_code_during_mail_from() {
    let exchange = "C: MAIL FROM:<bad@x.test>\nC: RCPT TO:<b@y.test>\nC: DATA\n\
         S: 553 5.7.1 sender rejected\nS: 503 5.5.1 need MAIL\nS: 503 5.5.1 need RCPT\n";
    let (server, mut client) = start_session(&["PIPELINING"], exchange).await;
    let err = bounded(client.send_mail("bad@x.test", &["b@y.test"], "x\r\n"))
        .await
        .unwrap_err();
    assert_unexpected_code(&err, SmtpOp::MailFrom, 553);
    assert_ne!(client.state(), SessionState::Closed);
    smtp_tests::quit(client, server).await;
}

/// Bare LF and bare CR become CRLF, lines starting with a dot are stuffed (a lone "." line
/// included, so it cannot end the data early), a final CRLF is added, 8-bit bytes pass through.
#[tokio::test]
async fn send_mail_bytes_is_crlf_normalised_and_dot_stuffed() {
    let body: &[u8] = b"Subject: t\n\n.leading\r\nbare\rcr\n..two\n.\nx\xff\xfey\nend";
    let wire: &[u8] =
        b"Subject: t\r\n\r\n..leading\r\nbare\r\ncr\r\n...two\r\n..\r\nx\xff\xfey\r\nend\r\n";
    let exchange = "C: MAIL FROM:<a@x.test> BODY=8BITMIME\nC: RCPT TO:<b@y.test>\nC: DATA\n\
         S: 250 ok\nS: 250 ok\nS: 354 go\nC: DATA-BODY\nS: 250 2.0.0 Ok: queued as BYTES1\n";
    let (server, mut client) = start_session(&["PIPELINING", "8BITMIME"], exchange).await;
    let outcome = bounded(client.send_mail_bytes("a@x.test", &["b@y.test"], body))
        .await
        .unwrap();
    // The size is after normalisation, before stuffing.
    let normalised =
        b"Subject: t\r\n\r\n.leading\r\nbare\r\ncr\r\n..two\r\n.\r\nx\xff\xfey\r\nend\r\n";
    assert_eq!(outcome.size, normalised.len() as u64);
    assert_eq!(outcome.queue_id.as_deref(), Some("BYTES1"));
    let report = smtp_tests::quit(client, server).await;
    assert_eq!(report.bodies.len(), 1);
    assert_eq!(
        String::from_utf8_lossy(&report.bodies[0]),
        String::from_utf8_lossy(wire)
    );
    assert_eq!(report.bodies[0], wire);
}

/// A body that contains the end-of-data sequence in every spelling cannot end the message early
/// (SMTP smuggling).
#[tokio::test]
async fn smuggled_end_of_data_sequences_are_neutralised() {
    let body = "a\r\n.\r\nMAIL FROM:<evil@x.test>\r\nb\n.\nc\r.\rd\n.\r\ne";
    let (server, mut client) =
        start_session(&["PIPELINING"], &format!("{FLIGHT}S: 250 ok\n")).await;
    bounded(client.send_mail("a@x.test", &["b@y.test"], body))
        .await
        .unwrap();
    bounded(client.quit()).await.unwrap();
    // Had any "." line got through unstuffed, the server would have ended the body there and
    // read "MAIL FROM:<evil...>" as a command: a script mismatch.
    let report = server.finish().await;
    assert_eq!(
        String::from_utf8_lossy(&report.bodies[0]),
        "a\r\n..\r\nMAIL FROM:<evil@x.test>\r\nb\r\n..\r\nc\r\n..\r\nd\r\n..\r\ne\r\n"
    );
}

#[tokio::test]
async fn send_mail_declares_size_and_refuses_an_oversized_message_without_io() {
    let body = "Subject: s\r\n\r\nsmall\r\n";
    let exchange = format!(
        "C: MAIL FROM:<a@x.test> SIZE={}\nC: RCPT TO:<b@y.test>\nC: DATA\n\
         S: 250 ok\nS: 250 ok\nS: 354 go\nC: DATA-BODY\nS: 250 ok\n",
        body.len()
    );
    let (server, mut client) = start_session(&["PIPELINING", "SIZE 100"], &exchange).await;
    let big = "x".repeat(200);
    let err = bounded(client.send_mail("a@x.test", &["b@y.test"], &big))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SmtpError::Protocol(ProtocolError::MessageTooLarge {
            size: 202,
            limit: 100
        })
    );
    bounded(client.send_mail("a@x.test", &["b@y.test"], body))
        .await
        .unwrap();
    let report = smtp_tests::quit(client, server).await;
    assert_eq!(report.bodies, [body.as_bytes().to_vec()]);
}

#[tokio::test]
async fn invalid_envelopes_are_refused_without_io() {
    let (server, mut client) = start_session(&["PIPELINING"], "C: NOOP\nS: 250 ok\n").await;
    for (from, to) in [
        ("a@x.test\r\nRSET", vec!["b@y.test"]),
        ("a@x.test", vec!["b@y.test>\r\nDATA"]),
        ("a@x.test", vec!["b@y.test\0"]),
        ("a@x.test", vec![]),
    ] {
        let result = bounded(client.send_mail(from, &to, "x")).await;
        assert!(
            matches!(result, Err(SmtpError::InvalidInput(_))),
            "{from:?} {to:?}: {result:?}"
        );
    }
    assert_eq!(client.state(), SessionState::Authentication);
    smtp_tests::noop_then_quit(client, server).await;
}

/// A scratch `.eml` file holding `content`, its name made of `name`, this process and this thread.
async fn temp_eml(name: &str, content: &[u8]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "smtp-tests-{name}-{}-{:?}.eml",
        std::process::id(),
        std::thread::current().id()
    ));
    tokio::fs::write(&path, content).await.unwrap();
    path
}

/// A file body read in small chunks: stuffing is right across chunk boundaries, and, the
/// server's SIZE limit lying below the most the file could take (twice its length, plus two),
/// its size as sent is counted and declared as SIZE.
#[tokio::test]
async fn send_mail_stream_from_a_file() {
    let content =
        b"Subject: file\r\n\r\n.dot at start\r\nmiddle\r\n..two dots\r\n.\r\nlast line\r\n";
    let path = temp_eml("body", content).await;
    let exchange = format!(
        "C: MAIL FROM:<a@x.test> SIZE={}\nC: RCPT TO:<b@y.test>\nC: DATA\n\
         S: 250 ok\nS: 250 ok\nS: 354 go\nC: DATA-BODY\nS: 250 2.0.0 Ok: queued as FILE1\n",
        content.len()
    );
    let (server, mut client) = start_session(&["PIPELINING", "SIZE 100"], &exchange).await;
    let mut body = ReaderBody::open(&path).await.unwrap().with_chunk_size(5);
    let result = bounded(client.send_mail_stream("a@x.test", &["b@y.test"], &mut body)).await;
    let _ = tokio::fs::remove_file(&path).await;
    let outcome = result.unwrap();
    assert_eq!(outcome.queue_id.as_deref(), Some("FILE1"));
    let report = smtp_tests::quit(client, server).await;
    assert_eq!(
        String::from_utf8_lossy(&report.bodies[0]),
        "Subject: file\r\n\r\n..dot at start\r\nmiddle\r\n...two dots\r\n..\r\nlast line\r\n"
    );
}

/// A file that fits the server's SIZE limit whatever its exact size (twice its length plus two
/// is below it), or goes to a server without a limit, is not counted first: it goes out without
/// a SIZE parameter. One whose exact size is over the limit is refused before MAIL.
#[tokio::test]
async fn a_file_is_counted_only_when_the_size_limit_can_matter() {
    let content = b"Subject: file\n\nbare LF lines\n.dot\n";
    let path = temp_eml("uncounted", content).await;
    for caps in [
        &["PIPELINING", "SIZE 10000"][..],
        &["PIPELINING", "SIZE 0"][..],
    ] {
        let (server, mut client) = start_session(caps, &format!("{FLIGHT}S: 250 ok\n")).await;
        let mut body = ReaderBody::open(&path).await.unwrap();
        bounded(client.send_mail_stream("a@x.test", &["b@y.test"], &mut body))
            .await
            .unwrap();
        let report = smtp_tests::quit(client, server).await;
        assert_eq!(
            report.bodies[0],
            b"Subject: file\r\n\r\nbare LF lines\r\n..dot\r\n"
        );
    }
    // Counted: 38 bytes as sent (each LF becomes CRLF) against a limit of 37.
    let (server, mut client) = start_session(&["PIPELINING", "SIZE 37"], "").await;
    let mut body = ReaderBody::open(&path).await.unwrap();
    let refused = bounded(client.send_mail_stream("a@x.test", &["b@y.test"], &mut body)).await;
    let _ = tokio::fs::remove_file(&path).await;
    assert_matches!(
        refused,
        Err(SmtpError::Protocol(ProtocolError::MessageTooLarge {
            size: 38,
            limit: 37
        }))
    );
    smtp_tests::quit(client, server).await;
}

/// A body streamed from a pipe whose writer is another task, in pieces that split CRLF pairs
/// and dots; no size hint, so no SIZE parameter even though the server offers SIZE.
#[tokio::test]
async fn send_mail_stream_from_a_duplex_pipe() {
    let (server, mut client) = start_session(
        &["PIPELINING", "SIZE 10000"],
        &format!("{FLIGHT}S: 250 ok\n"),
    )
    .await;
    let (mut writer, reader) = tokio::io::duplex(16);
    let pieces: Vec<&[u8]> = vec![
        b"Subject: pipe\r",
        b"\n\r\n.",
        b"a\n",
        b".",
        b"\r",
        b"\nend\r",
        b"\nno final newline",
    ];
    let feeder = tokio::spawn(async move {
        for p in pieces {
            writer.write_all(p).await.unwrap();
            tokio::task::yield_now().await;
        }
        // Dropping the writer ends the body.
    });
    let mut body = ReaderBody::new(reader).with_chunk_size(3);
    let outcome = bounded(client.send_mail_stream("a@x.test", &["b@y.test"], &mut body))
        .await
        .unwrap();
    feeder.await.unwrap();
    assert_eq!(outcome.accepted().count(), 1);
    let report = smtp_tests::quit(client, server).await;
    assert_eq!(
        String::from_utf8_lossy(&report.bodies[0]),
        "Subject: pipe\r\n\r\n..a\r\n..\r\nend\r\nno final newline\r\n"
    );
}

/// A reader that yields some bytes, then fails.
struct FailingReader {
    sent: bool,
}

impl AsyncRead for FailingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.sent {
            Poll::Ready(Err(io::Error::other("disk on fire")))
        } else {
            self.sent = true;
            buf.put_slice(b"Subject: half\r\n\r\nfirst part\r\n");
            Poll::Ready(Ok(()))
        }
    }
}

/// A body read error must not leave a truncated message delivered: the client closes the
/// connection without the end-of-data dot.
#[tokio::test]
async fn stream_read_error_is_io_and_never_terminates_the_message() {
    let script = format!("{}{ENVELOPE}S: 354 go\nX: stall", greet(&["PIPELINING"]));
    let (server, mut client) = smtp_tests::start(&script).await;
    let mut body = ReaderBody::new(FailingReader { sent: false });
    let err = bounded(client.send_mail_stream("a@x.test", &["b@y.test"], &mut body))
        .await
        .unwrap_err();
    match &err {
        SmtpError::Io { during, error } => {
            assert_eq!(*during, SmtpOp::ReadBody);
            assert!(error.message.contains("disk on fire"), "{err}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.state(), SessionState::Closed);
    let report = server.finish().await;
    assert!(report.client_hung_up);
    let sent = String::from_utf8_lossy(&report.sent_during_stall).into_owned();
    assert!(
        !sent.contains("\r\n.\r\n") && !sent.starts_with(".\r\n"),
        "the truncated message was terminated: {sent:?}"
    );
}

#[tokio::test]
async fn several_messages_on_one_connection() {
    let exchange: String = (0..3)
        .map(|i| {
            format!(
                "C: MAIL FROM:<a@x.test>\nC: RCPT TO:<b{i}@y.test>\nC: DATA\n\
                 S: 250 ok\nS: 250 ok\nS: 354 go\nC: DATA-BODY\nS: 250 queued as M{i}\n"
            )
        })
        .collect();
    let (server, mut client) = start_session(&["PIPELINING"], &exchange).await;
    for i in 0..3 {
        let to = format!("b{i}@y.test");
        let outcome =
            bounded(client.send_mail("a@x.test", &[to.as_str()], &format!("msg {i}\r\n")))
                .await
                .unwrap();
        assert_eq!(outcome.queue_id, Some(format!("M{i}")));
        assert_eq!(client.state(), SessionState::Ready);
    }
    let report = smtp_tests::quit(client, server).await;
    assert_eq!(report.bodies.len(), 3);
    assert_eq!(report.bodies[2], b"msg 2\r\n");
}
