//! A server that refuses in the middle of a message and hangs up (smtp-sink's `-A`, a filter
//! that rejects on the first bytes of a body): its reply reached the client before the
//! connection broke, and is what the client reports, not the broken pipe of its next write.

use std::time::Duration;

use smtp_io_tokio::{ConnectOptions, Delivery, OutgoingMessage, ProtocolError, SmtpError, TlsMode};
use smtp_testkit::mock::OnData;
use smtp_testkit::{Act, MockServer};

#[tokio::test]
async fn a_refusal_written_before_the_hang_up_is_the_error() {
    // Takes DATA with a `354`; a moment later, while the client's body writes are blocked (the
    // server reads none of it), writes its `550` and closes.
    let server = MockServer::start(|_| {
        OnData(|| {
            Act::Seq(vec![
                Act::send("354 go ahead\r\n"),
                Act::after(
                    Duration::from_millis(300),
                    Act::close("550 5.7.1 message refused by content filter\r\n"),
                ),
            ])
        })
    })
    .await;
    let mut client = ConnectOptions::new(TlsMode::None)
        .connect("127.0.0.1", server.port(), "client.test")
        .await
        .unwrap();
    // Far more than loopback's socket buffers hold: the writes block until the hang-up.
    let body = vec![b'x'; 64 * 1024 * 1024];
    let delivery = client
        .deliver(&OutgoingMessage::new("a@x.test", &["b@y.test"], &body))
        .await;
    // A definite answer: not delivered, and the server's reason; not "unknown" with a broken
    // pipe, which would leave the sender wondering whether the message went.
    match &delivery {
        Delivery::NotSent {
            error: SmtpError::Protocol(ProtocolError::UnexpectedCode { reply, .. }),
            ..
        } => assert_eq!(reply.code().get(), 550, "{delivery:?}"),
        other => panic!("not the server's refusal: {other:?}"),
    }
}
