//! [`MailSender`]: "something that sends mail", for application code that should not care
//! whether it holds a pool, one connected client, or, in its tests, a [`StubMailSender`] that
//! records what would have been sent and fails on request in each typed way.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Mutex;

use bytes::BytesMut;
use smtp_proto::body::{DotStuffer, LineNormalizer, normalized_len};
use smtp_proto::session::Envelope;

use crate::{
    Delivery, Mailer, MessageId, OutgoingMessage, ProtocolError, RecipientOutcome,
    RecipientRefusal, Reply, ReplyCode, SendError, SendOutcome, SmtpClient, SmtpError, SmtpOp,
    TokioTransport,
};

/// Something that sends one message and says what became of it, with the pool's typed answer
/// ([`SendError`]: not sent, unknown, busy, closed). Implemented by [`Mailer`], by a connected
/// client behind a `tokio::sync::Mutex` (one message at a time), and by [`StubMailSender`] for
/// tests. Application code takes `&impl MailSender`:
///
/// ```
/// use smtp_io_tokio::{MailSender, SendError};
///
/// /// The application's own code: it neither knows nor cares what sends the mail.
/// async fn welcome(mail: &impl MailSender, user: &str) -> Result<(), SendError> {
///     let body = format!("From: app@example.com\r\nTo: {user}\r\nSubject: Welcome\r\n\r\nHi!\r\n");
///     mail.send_mail("app@example.com", &[user], body.as_bytes()).await?;
///     Ok(())
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let stub = smtp_io_tokio::StubMailSender::new();
/// # welcome(&stub, "new@example.org").await.unwrap();
/// # }
/// ```
pub trait MailSender: Send + Sync {
    /// Send `message` (a complete RFC 5322 message) from `from` to `to`.
    fn send_mail<'a>(
        &'a self,
        from: &'a str,
        to: &'a [&'a str],
        message: &'a [u8],
    ) -> impl Future<Output = Result<SendOutcome, SendError>> + Send + 'a;
}

impl MailSender for Mailer {
    fn send_mail<'a>(
        &'a self,
        from: &'a str,
        to: &'a [&'a str],
        message: &'a [u8],
    ) -> impl Future<Output = Result<SendOutcome, SendError>> + Send + 'a {
        self.send(from, to, message)
    }
}

/// One connected client, a message at a time. A message that failed is
/// [`SendError::NotSent`] (one attempt: a single connection is not retried) or
/// [`SendError::Unknown`], as [`Delivery`] says.
impl MailSender for tokio::sync::Mutex<SmtpClient<TokioTransport>> {
    async fn send_mail<'a>(
        &'a self,
        from: &'a str,
        to: &'a [&'a str],
        message: &'a [u8],
    ) -> Result<SendOutcome, SendError> {
        let mut client = self.lock().await;
        match client
            .deliver(&OutgoingMessage::new(from, to, message))
            .await
        {
            Delivery::Sent(outcome) => Ok(outcome),
            Delivery::NotSent { error, .. } => Err(SendError::NotSent { error, attempts: 1 }),
            Delivery::Unknown(error) => Err(SendError::Unknown { error }),
        }
    }
}

/// A message a [`StubMailSender`] accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMail {
    /// The envelope sender.
    pub from: String,
    /// The envelope recipients.
    pub to: Vec<String>,
    /// The message as a server would store it: CRLF line endings and a final CRLF.
    pub message: Vec<u8>,
}

impl SentMail {
    /// The message as it would cross the wire after DATA: dot-stuffed, with its `.` line.
    pub fn data_on_the_wire(&self) -> Vec<u8> {
        let mut out = BytesMut::new();
        let mut stuffer = DotStuffer::new();
        stuffer.encode(&self.message, &mut out);
        stuffer.finish(&mut out);
        out.to_vec()
    }
}

/// A typed failure a [`StubMailSender`] gives the next message, as a real server and the pool
/// would report it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StubFailure {
    /// The server refuses this recipient (`550 5.1.1`): the message is not sent
    /// ([`SendError::refused_recipients`] names it).
    RefuseRecipient(String),
    /// A temporary failure before the message's end of data (`451 4.3.0` to MAIL, on both
    /// attempts): not sent, worth trying later.
    Temporary,
    /// The server refuses the message after its content (`554 5.6.0`): not sent, final.
    Refuse,
    /// The connection was lost after the end of data: delivery unknown.
    Unknown,
}

/// A [`MailSender`] for tests: it sends nothing, records each message it accepts (the envelope
/// and the message as a server would store it), checks the envelope as the real client does
/// (an address with CR or LF is refused the same way), and fails the next messages in the typed
/// ways it is told to. Outcomes number the messages from 1 and carry the queue id `STUB<n>`.
///
/// ```
/// use smtp_io_tokio::{MailSender, StubFailure, StubMailSender};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let stub = StubMailSender::new();
/// stub.send_mail("app@example.com", &["a@example.org"], b"Subject: hi\n\nHello\n").await.unwrap();
/// let sent = stub.sent();
/// assert_eq!(sent[0].to, ["a@example.org"]);
/// assert_eq!(sent[0].message, b"Subject: hi\r\n\r\nHello\r\n");
///
/// stub.fail_next(StubFailure::RefuseRecipient("b@example.org".into()));
/// let error = stub
///     .send_mail("app@example.com", &["b@example.org"], b"Hi\r\n")
///     .await
///     .unwrap_err();
/// assert_eq!(error.refused_recipients()[0].recipient, "b@example.org");
/// assert_eq!(stub.sent().len(), 1);
/// # }
/// ```
#[derive(Debug, Default)]
pub struct StubMailSender {
    state: Mutex<StubState>,
}

#[derive(Debug, Default)]
struct StubState {
    sent: Vec<SentMail>,
    failures: VecDeque<StubFailure>,
    messages: u64,
}

impl StubMailSender {
    /// A stub that accepts everything.
    pub fn new() -> StubMailSender {
        StubMailSender::default()
    }

    /// Fail the next message not yet failed with `failure` (failures queue up, one per message).
    pub fn fail_next(&self, failure: StubFailure) {
        self.lock().failures.push_back(failure);
    }

    /// The messages accepted so far, oldest first.
    pub fn sent(&self) -> Vec<SentMail> {
        self.lock().sent.clone()
    }

    /// The messages accepted so far, and forget them.
    pub fn take(&self) -> Vec<SentMail> {
        std::mem::take(&mut self.lock().sent)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn accept(&self, from: &str, to: &[&str], message: &[u8]) -> Result<SendOutcome, SendError> {
        // The same checks as the real client, before anything would be sent.
        Envelope::new(from, to).map_err(|e| SendError::NotSent {
            error: e.into(),
            attempts: 0,
        })?;
        let mut state = self.lock();
        if let Some(failure) = state.failures.pop_front() {
            return Err(failure_of(failure, to));
        }
        state.messages += 1;
        let id = MessageId::new(state.messages);
        let mut normalized = BytesMut::new();
        let mut normalizer = LineNormalizer::new();
        normalizer.encode(message, &mut normalized);
        normalizer.finish(&mut normalized);
        state.sent.push(SentMail {
            from: from.to_owned(),
            to: to.iter().map(|t| (*t).to_owned()).collect(),
            message: normalized.to_vec(),
        });
        let queue_id = format!("STUB{}", state.messages);
        Ok(SendOutcome {
            message: id,
            recipients: to
                .iter()
                .map(|t| RecipientOutcome {
                    message: id,
                    recipient: (*t).to_owned(),
                    reply: reply(250, "2.1.5 ok"),
                })
                .collect(),
            reply: reply(250, &format!("2.0.0 ok: queued as {queue_id}")),
            queue_id: Some(queue_id),
            size: normalized_len(message),
        })
    }
}

impl MailSender for StubMailSender {
    async fn send_mail(
        &self,
        from: &str,
        to: &[&str],
        message: &[u8],
    ) -> Result<SendOutcome, SendError> {
        self.accept(from, to, message)
    }
}

/// A reply with `code` and `text`.
fn reply(code: u16, text: &str) -> Reply {
    let code = ReplyCode::new(code).unwrap_or(ReplyCode::OK);
    Reply::new(code, None, text)
}

/// The error a real server and the pool would give for `failure`.
fn failure_of(failure: StubFailure, to: &[&str]) -> SendError {
    match failure {
        StubFailure::RefuseRecipient(recipient) => {
            let refused: Vec<RecipientRefusal> = to
                .iter()
                .enumerate()
                .filter(|(_, t)| **t == recipient)
                .map(|(index, t)| RecipientRefusal {
                    index,
                    recipient: (*t).to_owned(),
                    reply: reply(550, "5.1.1 no such user"),
                })
                .collect();
            let accepted = to.len() - refused.len();
            SendError::NotSent {
                error: ProtocolError::RecipientsRefused { refused, accepted }.into(),
                attempts: 1,
            }
        }
        StubFailure::Temporary => SendError::NotSent {
            error: ProtocolError::UnexpectedCode {
                during: SmtpOp::MailFrom,
                reply: reply(451, "4.3.0 try again later"),
            }
            .into(),
            attempts: 2,
        },
        StubFailure::Refuse => SendError::NotSent {
            error: ProtocolError::UnexpectedCode {
                during: SmtpOp::DataEnd,
                reply: reply(554, "5.6.0 message refused"),
            }
            .into(),
            attempts: 1,
        },
        StubFailure::Unknown => SendError::Unknown {
            error: SmtpError::Protocol(ProtocolError::ConnectionClosed {
                during: SmtpOp::DataEnd,
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Application code over any sender.
    async fn notify(mail: &impl MailSender, to: &[&str]) -> Result<SendOutcome, SendError> {
        mail.send_mail("app@example.com", to, b"Subject: note\n\n.hidden dot\nbye")
            .await
    }

    #[tokio::test]
    async fn the_stub_records_envelope_and_bytes() {
        let stub = StubMailSender::new();
        let outcome = notify(&stub, &["a@example.org", "b@example.org"])
            .await
            .unwrap();
        assert_eq!(outcome.queue_id.as_deref(), Some("STUB1"));
        assert_eq!(outcome.recipients.len(), 2);
        let sent = stub.take();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].from, "app@example.com");
        assert_eq!(
            sent[0].message,
            b"Subject: note\r\n\r\n.hidden dot\r\nbye\r\n"
        );
        assert_eq!(
            sent[0].data_on_the_wire(),
            b"Subject: note\r\n\r\n..hidden dot\r\nbye\r\n.\r\n"
        );
        assert_eq!(outcome.size, sent[0].message.len() as u64);
        assert!(stub.sent().is_empty());
    }

    #[tokio::test]
    async fn the_stub_fails_in_each_typed_way() {
        let stub = StubMailSender::new();
        stub.fail_next(StubFailure::RefuseRecipient("b@example.org".into()));
        stub.fail_next(StubFailure::Temporary);
        stub.fail_next(StubFailure::Refuse);
        stub.fail_next(StubFailure::Unknown);
        let to = ["a@example.org", "b@example.org"];
        let refused = notify(&stub, &to).await.unwrap_err();
        assert_eq!(refused.refused_recipients().len(), 1);
        assert_eq!(refused.refused_recipients()[0].index, 1);
        let temporary = notify(&stub, &to).await.unwrap_err();
        assert!(temporary.smtp_error().is_some_and(SmtpError::is_transient));
        let final_refusal = notify(&stub, &to).await.unwrap_err();
        assert!(matches!(final_refusal, SendError::NotSent { .. }));
        assert!(
            !final_refusal
                .smtp_error()
                .is_some_and(SmtpError::is_transient)
        );
        let unknown = notify(&stub, &to).await.unwrap_err();
        assert!(matches!(unknown, SendError::Unknown { .. }));
        assert!(stub.sent().is_empty());
        // Then it accepts again.
        notify(&stub, &to).await.unwrap();
        assert_eq!(stub.sent().len(), 1);
    }

    #[tokio::test]
    async fn the_stub_checks_the_envelope_like_the_client() {
        let stub = StubMailSender::new();
        let error = notify(&stub, &["a@example.org\r\nRCPT TO:<x@evil.example>"])
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            SendError::NotSent {
                error: SmtpError::InvalidInput(_),
                attempts: 0
            }
        ));
        assert!(stub.sent().is_empty());
    }

    /// A pool and a connected client are senders too.
    #[test]
    fn pools_and_clients_are_senders() {
        fn is_sender<S: MailSender>() {}
        is_sender::<Mailer>();
        is_sender::<tokio::sync::Mutex<SmtpClient<TokioTransport>>>();
        is_sender::<StubMailSender>();
    }
}
