//! A fixed list of messages as a [`Flight`]: [`OutgoingMessage`], [`Batch`].

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use super::{Flight, FlightMessage};
use crate::error::{InvalidInputError, SmtpError};
use crate::session::{Delivery, Envelope, Fate, MessageOptions};

/// One message of a batch: envelope, a complete RFC 5322 message, and optional per-message
/// options (the client's defaults otherwise).
#[derive(Debug, Clone, Copy)]
pub struct OutgoingMessage<'a> {
    /// The reverse-path (`""` for the null sender).
    pub from: &'a str,
    /// The recipients.
    pub to: &'a [&'a str],
    /// The message; line endings are normalised and dot-stuffing applied as for
    /// [`Session::send_body`](crate::Session::send_body).
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

/// A fixed list of messages as a [`Flight`], handed out in order, with one [`Delivery`] for
/// each at the end ([`into_deliveries`](Batch::into_deliveries)). A message whose envelope is
/// invalid is settled as not sent without being handed out.
#[derive(Debug)]
pub struct Batch<'m, 'a> {
    messages: Vec<Result<(Envelope, &'m OutgoingMessage<'a>), InvalidInputError>>,
    next: usize,
    results: Vec<Option<Delivery>>,
}

impl<'m, 'a> Batch<'m, 'a> {
    /// The messages, their envelopes checked.
    pub fn new(messages: &'m [OutgoingMessage<'a>]) -> Batch<'m, 'a> {
        Batch {
            messages: messages
                .iter()
                .map(|m| Envelope::new(m.from, m.to).map(|envelope| (envelope, m)))
                .collect(),
            next: 0,
            results: messages.iter().map(|_| None).collect(),
        }
    }

    /// What became of each message, in order. A message never settled (which a driver that
    /// keeps the [`Chain`](super::Chain)'s contract never leaves) is
    /// [`Delivery::Unknown`] with [`SmtpError::Internal`]: reported rather than panicking.
    pub fn into_deliveries(self) -> Vec<Delivery> {
        self.results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    let lost = SmtpError::Internal {
                        what: "no result was reported for a message of the batch",
                    };
                    Delivery::failed(lost, Fate::Unknown)
                })
            })
            .collect()
    }
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
