//! [`SmtpClient::send_batch`]: many messages over one connection without a round trip between
//! them (batch chaining, RFC 2920 section 3.1), each with its own result.

use super::{Delivery, SmtpClient, Transport};
use crate::error::SmtpError;
#[allow(unused_imports)]
use crate::prelude::*;
use crate::session::{
    BodyInfo, Envelope, Event, Fate, MessageId, MessageOptions, SendOutcome, SessionStatus,
};

/// One message of a batch: envelope, a complete RFC 5322 message, and optional per-message
/// options (the client's defaults otherwise).
#[derive(Debug, Clone, Copy)]
pub struct BatchMessage<'a> {
    /// The reverse-path (`""` for the null sender).
    pub from: &'a str,
    /// The recipients.
    pub to: &'a [&'a str],
    /// The message; line endings are normalised and dot-stuffing applied as for
    /// [`SmtpClient::send_mail_bytes`].
    pub body: &'a [u8],
    /// Per-message options, or `None` for the client's defaults.
    pub options: Option<&'a MessageOptions>,
}

impl<'a> BatchMessage<'a> {
    /// A message with the client's default options.
    pub fn new(from: &'a str, to: &'a [&'a str], body: &'a [u8]) -> BatchMessage<'a> {
        BatchMessage {
            from,
            to,
            body,
            options: None,
        }
    }

    /// The same message with its own options (DSN, REQUIRETLS, recipient policy, ...).
    pub fn with_options(self, options: &'a MessageOptions) -> BatchMessage<'a> {
        BatchMessage {
            options: Some(options),
            ..self
        }
    }
}

impl<T: Transport> SmtpClient<T> {
    /// Send many messages over this connection, returning one result per message, in order.
    ///
    /// When the server offers PIPELINING, the next message's MAIL, RCPT and DATA go out in the
    /// same flight as the previous message's end of data, so a batch costs about one round trip
    /// per message with DATA, and less with CHUNKING (several whole `BDAT ... LAST`
    /// transactions are in flight at once, up to [`SmtpClientOptions::with_max_chained`]).
    /// Every reply is still matched to its own message.
    ///
    /// One message failing (refused by a local check, by the policy, or by the server at any
    /// step) does not stop the others. Only an error that closes the session ends the batch:
    /// the messages not yet confirmed, and those not yet started, all get that error (a message
    /// whose final reply was lost may still have been delivered, as with any SMTP client).
    ///
    /// [`SmtpClientOptions::with_max_chained`]: super::SmtpClientOptions::with_max_chained
    pub async fn send_batch(
        &mut self,
        messages: &[BatchMessage<'_>],
    ) -> Vec<Result<SendOutcome, SmtpError>> {
        self.deliver_batch(messages)
            .await
            .into_iter()
            .map(Delivery::into_result)
            .collect()
    }

    /// [`send_batch`](Self::send_batch), saying for each message what became of it (see
    /// [`Delivery`]): accepted, provably not delivered, or unknown. The engine decides each
    /// message's fate, also when one error ends the session with several messages in flight: a
    /// message whose end of data was written is [`Delivery::Unknown`], one that was not yet
    /// started or whose body was not finished is [`Delivery::NotSent`]. For a pool that chains
    /// several callers' messages on one connection and must know which it may send again.
    pub async fn deliver_batch(&mut self, messages: &[BatchMessage<'_>]) -> Vec<Delivery> {
        self.fates.clear();
        if let Err(e) = self.check_alive() {
            return messages
                .iter()
                .map(|_| Delivery::failed(e.clone(), Fate::NotSent))
                .collect();
        }
        let mut results: Vec<Option<Delivery>> = messages.iter().map(|_| None).collect();
        // Started messages whose result has not arrived: the engine's handle and the index in
        // `messages`. Results are matched by handle.
        let mut waiting: Vec<(MessageId, usize)> = Vec::new();
        let mut next = 0;
        let fatal = loop {
            let mut body_wanted = None;
            if let Some(err) = self.take_batch_events(&mut waiting, &mut results, &mut body_wanted)
            {
                break Some(err);
            }
            if let Some(i) = body_wanted {
                // Written in slices like `send_mail_bytes`, so a large message in a batch is
                // never copied whole into the output buffer.
                let sent = match self.send_body_slices(messages[i].body).await {
                    Ok(()) => {
                        let finished = self.session.finish_body();
                        self.closing(finished).await
                    }
                    Err(e) => Err(e),
                };
                if let Err(err) = sent {
                    break Some(err);
                }
                continue;
            }
            if next < messages.len() && self.session.ready_for_mail() {
                match self.start_batch_message(&messages[next]) {
                    Ok(id) => waiting.push((id, next)),
                    Err(e) => results[next] = Some(Delivery::failed(e, Fate::NotSent)),
                }
                next += 1;
                if self.session.is_failed() {
                    break self.session.check_usable().err();
                }
                continue;
            }
            if waiting.is_empty() && next == messages.len() {
                break None;
            }
            let more = next < messages.len();
            if let Err(e) = self.drive(|s| more && s.ready_for_mail()).await {
                break Some(e);
            }
        };
        if let Some(err) = fatal {
            // The fates of the messages the error ended: from the events still queued, and
            // from those the driver read while failing (`fates`).
            while let Some(event) = self.session.poll_event() {
                if let Event::MessageFailed { message, fate, .. } = event {
                    self.fates.push((message, fate));
                }
            }
            self.close_transport().await;
            for (id, index) in waiting.drain(..) {
                let fate = self
                    .fates
                    .iter()
                    .find(|&&(failed, _)| failed == id)
                    .map_or(Fate::Unknown, |&(_, fate)| fate);
                results[index].get_or_insert_with(|| Delivery::failed(err.clone(), fate));
            }
            // Not started: nothing of them was written.
            for slot in results.iter_mut().filter(|r| r.is_none()) {
                *slot = Some(Delivery::failed(err.clone(), Fate::NotSent));
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    let error = self.session.check_usable().err().unwrap_or_else(lost);
                    Delivery::failed(error, Fate::Unknown)
                })
            })
            .collect()
    }

    fn start_batch_message(&mut self, message: &BatchMessage<'_>) -> Result<MessageId, SmtpError> {
        let envelope = Envelope::new(message.from, message.to)?;
        let options = message.options.unwrap_or(&self.message);
        let info = BodyInfo::in_memory(message.body, options);
        self.session.start_mail(envelope, info, options)
    }

    /// Hand out the queued events: each result to the message whose handle it carries. Stops at
    /// a request for a body, with the index of the message that wants it in `body_wanted`.
    /// Returns the error that closed the session, if one did.
    fn take_batch_events(
        &mut self,
        waiting: &mut Vec<(MessageId, usize)>,
        results: &mut [Option<Delivery>],
        body_wanted: &mut Option<usize>,
    ) -> Option<SmtpError> {
        fn settle(
            waiting: &mut Vec<(MessageId, usize)>,
            results: &mut [Option<Delivery>],
            id: MessageId,
            result: Delivery,
        ) {
            if let Some(at) = waiting.iter().position(|&(w, _)| w == id) {
                let (_, index) = waiting.swap_remove(at);
                results[index] = Some(result);
            }
        }
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Sent(outcome) => {
                    settle(waiting, results, outcome.message, Delivery::Sent(outcome))
                }
                Event::MessageFailed {
                    message,
                    error,
                    fate,
                    ..
                } => settle(waiting, results, message, Delivery::failed(error, fate)),
                Event::Failed {
                    error,
                    session: SessionStatus::Closed,
                } => return Some(error),
                Event::BodyWanted(id) => {
                    if let Some(&(_, index)) = waiting.iter().find(|&&(w, _)| w == id) {
                        *body_wanted = Some(index);
                        return None;
                    }
                }
                Event::UpgradeTls => {
                    // Only starttls() asks for an upgrade: fail closed.
                    self.session.handle_io_error(
                        std::io::ErrorKind::Unsupported,
                        "unexpected TLS upgrade request",
                    );
                }
                _ => {}
            }
        }
        None
    }
}

/// The error for a message whose result never came (cannot happen while the engine keeps its
/// contract; reported rather than panicking).
fn lost() -> SmtpError {
    SmtpError::Internal {
        what: "no result was reported for a message of the batch",
    }
}
