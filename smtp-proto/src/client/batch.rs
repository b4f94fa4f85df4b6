//! [`SmtpClient::send_batch`]: many messages over one connection without a round trip between
//! them (batch chaining, RFC 2920 section 3.1), each with its own result.

use super::{Delivery, SmtpClient, Transport};
#[allow(unused_imports)]
use crate::alloc_prelude::*;
use crate::error::{InvalidInputError, SmtpError};
use crate::session::{
    BodyInfo, Envelope, Event, Fate, MessageId, MessageOptions, SendOutcome, SessionAfter,
};

/// One message of a batch: envelope, a complete RFC 5322 message, and optional per-message
/// options (the client's defaults otherwise).
#[derive(Debug, Clone, Copy)]
pub struct OutgoingMessage<'a> {
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

impl<'a> OutgoingMessage<'a> {
    /// A message with the client's default options.
    pub fn new(from: &'a str, to: &'a [&'a str], body: &'a [u8]) -> OutgoingMessage<'a> {
        OutgoingMessage {
            from,
            to,
            body,
            options: None,
        }
    }

    /// The same message with its own options (DSN, REQUIRETLS, recipient policy, ...).
    pub fn with_options(self, options: &'a MessageOptions) -> OutgoingMessage<'a> {
        OutgoingMessage {
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
        messages: &[OutgoingMessage<'_>],
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
    /// started or whose body was not finished is [`Delivery::NotSent`].
    pub async fn deliver_batch(&mut self, messages: &[OutgoingMessage<'_>]) -> Vec<Delivery> {
        let mut batch = Batch {
            messages: messages
                .iter()
                .map(|m| Envelope::new(m.from, m.to).map(|envelope| (envelope, m)))
                .collect(),
            next: 0,
            results: messages.iter().map(|_| None).collect(),
        };
        self.deliver_flight(&mut batch).await;
        batch
            .results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Delivery::failed(lost(), Fate::Unknown)))
            .collect()
    }

    /// Carry the messages `flight` hands out, one after another, on this connection without a
    /// round trip between them (as [`send_batch`](Self::send_batch) does), for as long as it
    /// has more: it is asked for the next message each time the connection can take one, and
    /// told each message's fate ([`Delivery`]) as soon as its reply arrives, so a caller can
    /// hear its answer while the flight goes on, and a message that becomes ready while the
    /// others are on the wire joins them. For a pool that chains several callers' messages on
    /// one connection; every message the flight handed out is settled exactly once before
    /// this returns.
    pub async fn deliver_flight<F: Flight + ?Sized>(&mut self, flight: &mut F) {
        self.fates.clear();
        if let Err(e) = self.session.check_usable() {
            while let Some(n) = flight.next() {
                flight.settle(n, Delivery::failed(e.clone(), Fate::NotSent));
            }
            return;
        }
        // Started messages whose result has not arrived: the engine's handle and the flight's
        // number. Results are matched by handle.
        let mut waiting: Vec<(MessageId, usize)> = Vec::new();
        let fatal = loop {
            if let Some((limit, spent)) = flight.deadline() {
                self.set_deadline(Some(limit), spent);
            }
            let mut body_wanted = None;
            if let Some(err) = self.take_batch_events(&mut waiting, flight, &mut body_wanted) {
                break Some(err);
            }
            if let Some(n) = body_wanted {
                // Written in slices like `send_mail_bytes`, so a large message in a batch is
                // never copied whole into the output buffer.
                let Some(body) = flight.message(n).map(|m| m.body) else {
                    // Never an empty body in its place: the message is abandoned before its
                    // end of data, with the session.
                    self.session.handle_io_error(
                        std::io::ErrorKind::InvalidInput,
                        "the flight no longer holds the message whose body is wanted",
                    );
                    break Some(self.take_failure().await);
                };
                let sent = match self.send_body_slices(body).await {
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
            // Whether the flight has nothing more to start now.
            let mut drained = false;
            if self.session.ready_for_mail() {
                match flight.next() {
                    Some(n) => {
                        let started = match flight.message(n) {
                            Some(message) => self.start_flight_message(&message),
                            None => Err(SmtpError::Internal {
                                what: "the flight handed out a message it does not hold",
                            }),
                        };
                        match started {
                            Ok(id) => waiting.push((id, n)),
                            Err(e) => flight.settle(n, Delivery::failed(e, Fate::NotSent)),
                        }
                        if self.session.is_failed() {
                            break self.session.check_usable().err();
                        }
                        continue;
                    }
                    None => drained = true,
                }
            }
            if waiting.is_empty() && drained {
                break None;
            }
            // With nothing more to start, wait for a reply; otherwise also for the connection
            // to take the next message.
            if let Err(e) = self.drive(|s| !drained && s.ready_for_mail()).await {
                break Some(e);
            }
        };
        if let Some(err) = fatal {
            // The fates of the messages the error ended: from the events still queued, and
            // from those the driver read while failing (`fates`).
            while self.next_event().is_some() {}
            self.close_transport().await;
            for (id, n) in waiting.drain(..) {
                let fate = self
                    .fates
                    .iter()
                    .find(|&&(failed, _)| failed == id)
                    .map_or(Fate::Unknown, |&(_, fate)| fate);
                flight.settle(n, Delivery::failed(err.clone(), fate));
            }
            // Not started: nothing of them was written.
            while let Some(n) = flight.next() {
                flight.settle(n, Delivery::failed(err.clone(), Fate::NotSent));
            }
        }
    }

    fn start_flight_message(
        &mut self,
        message: &FlightMessage<'_>,
    ) -> Result<MessageId, SmtpError> {
        let options = message.options.unwrap_or(&self.message);
        let info = BodyInfo::in_memory(message.body, options);
        self.session
            .start_mail(message.envelope.clone(), info, options)
    }

    /// Hand out the queued events: each result to the message whose handle it carries. Stops at
    /// a request for a body, with the number of the message that wants it in `body_wanted`.
    /// Returns the error that closed the session, if one did.
    fn take_batch_events<F: Flight + ?Sized>(
        &mut self,
        waiting: &mut Vec<(MessageId, usize)>,
        flight: &mut F,
        body_wanted: &mut Option<usize>,
    ) -> Option<SmtpError> {
        fn settle<F: Flight + ?Sized>(
            waiting: &mut Vec<(MessageId, usize)>,
            flight: &mut F,
            id: MessageId,
            delivery: Delivery,
        ) {
            if let Some(at) = waiting.iter().position(|&(w, _)| w == id) {
                let (_, n) = waiting.swap_remove(at);
                flight.settle(n, delivery);
            }
        }
        while let Some(event) = self.next_event() {
            match event {
                Event::Sent(outcome) => {
                    settle(waiting, flight, outcome.message, Delivery::Sent(outcome))
                }
                Event::MessageFailed {
                    message,
                    error,
                    fate,
                    ..
                } => settle(waiting, flight, message, Delivery::failed(error, fate)),
                Event::Failed {
                    error,
                    session: SessionAfter::Closed,
                } => return Some(error),
                Event::BodyWanted(id) => {
                    if let Some(&(_, n)) = waiting.iter().find(|&&(w, _)| w == id) {
                        *body_wanted = Some(n);
                        return None;
                    }
                }
                _ => {}
            }
        }
        None
    }
}

/// The messages of one chained flight ([`SmtpClient::deliver_flight`]), handed out one at a
/// time as the connection can take them, each told its fate.
pub trait Flight {
    /// The next message to start, if one is ready now: a number of the flight's choosing, for
    /// [`message`](Flight::message) and [`settle`](Flight::settle). `None` ends the flight once
    /// the messages already started are answered; until then it is asked again after each
    /// answer, so a message that became ready meanwhile still joins.
    fn next(&mut self) -> Option<usize>;

    /// Message `n`, a number [`next`](Flight::next) handed out and not yet settled (`None`
    /// for any other: that message is then settled as not sent).
    fn message(&self, n: usize) -> Option<FlightMessage<'_>>;

    /// What became of message `n`; called exactly once for each number handed out.
    fn settle(&mut self, n: usize, delivery: Delivery);

    /// The deadline the connection should work under now, as for
    /// [`SmtpClient::set_deadline`] (its limit, and how much of it is already spent), asked
    /// before each step; `None` (the default) leaves the connection's deadline as it is.
    fn deadline(&self) -> Option<(core::time::Duration, core::time::Duration)> {
        None
    }
}

/// One message of a [`Flight`]: its envelope (checked when the flight took the message in),
/// the complete message, and its options (`None`: the client's defaults).
#[derive(Debug, Clone, Copy)]
pub struct FlightMessage<'a> {
    /// Sender and recipients.
    pub envelope: &'a Envelope,
    /// The message; line endings are normalised and dot-stuffing applied as for
    /// [`SmtpClient::send_mail_bytes`].
    pub body: &'a [u8],
    /// Per-message options, or `None` for the client's defaults.
    pub options: Option<&'a MessageOptions>,
}

/// A fixed list of messages as a flight: what [`SmtpClient::deliver_batch`] carries. A message
/// whose envelope is invalid is settled as not sent without being handed out.
struct Batch<'m, 'a> {
    messages: Vec<Result<(Envelope, &'m OutgoingMessage<'a>), InvalidInputError>>,
    next: usize,
    results: Vec<Option<Delivery>>,
}

impl Flight for Batch<'_, '_> {
    fn next(&mut self) -> Option<usize> {
        while let Some(message) = self.messages.get(self.next) {
            let n = self.next;
            self.next += 1;
            match message {
                Ok(_) => return Some(n),
                Err(e) => {
                    let error = SmtpError::from(e.clone());
                    self.results[n] = Some(Delivery::failed(error, Fate::NotSent));
                }
            }
        }
        None
    }

    fn message(&self, n: usize) -> Option<FlightMessage<'_>> {
        let (envelope, message) = self.messages.get(n)?.as_ref().ok()?;
        Some(FlightMessage {
            envelope,
            body: message.body,
            options: message.options,
        })
    }

    fn settle(&mut self, n: usize, delivery: Delivery) {
        if let Some(slot) = self.results.get_mut(n) {
            slot.get_or_insert(delivery);
        }
    }
}

/// The error for a message whose result never came (cannot happen while the engine keeps its
/// contract; reported rather than panicking).
fn lost() -> SmtpError {
    SmtpError::Internal {
        what: "no result was reported for a message of the batch",
    }
}
