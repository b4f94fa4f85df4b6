//! Chained flights: many messages on one [`Session`], one after another without a round trip
//! between them (RFC 2920 section 3.1), each told its own [`Delivery`].
//!
//! A [`Flight`] hands out messages as the session can take them; a [`Chain`] starts them on the
//! session, routes each result to its message by [`MessageId`], and, when the session closes,
//! settles every message still open exactly once: by the [`Fate`] the engine gave it, and as not
//! sent when it was never started. It does no I/O: a driver asks [`Chain::step`] what to do next
//! (write a body, read, or stop) and does it. [`SmtpClient::deliver_flight`] is that driver;
//! an embedder's own loop can be another.
//!
//! A loop of your own, here with the server's replies at hand (a real one writes each
//! [`poll_transmit`](Session::poll_transmit) to its socket and feeds what it reads, bounded by
//! [`poll_timeout`](Session::poll_timeout)):
//!
//! ```
//! use smtp_proto::command::Domain;
//! use smtp_proto::flight::{Batch, Chain, ChainStep, OutgoingMessage};
//! use smtp_proto::{Delivery, Instant, MessageOptions, Session, SessionConfig};
//!
//! let messages = [OutgoingMessage::new("me@example.com", &["you@example.org"], b"Hi\r\n")];
//! let mut batch = Batch::new(&messages);
//! let mut session = Session::new(Domain::new("client.example")?, SessionConfig::default());
//! session.start(Instant::ZERO);
//! // Greeting, EHLO, MAIL, RCPT, DATA, end of data: one reply a wait, no PIPELINING.
//! let replies = ["220 mx ESMTP", "250 mx", "250 ok", "250 ok", "354 go", "250 queued as Q1"];
//! let mut replies = replies.iter().map(|r| format!("{r}\r\n"));
//! let mut chain = Chain::new();
//! loop {
//!     match chain.step(&mut session, &mut batch, &MessageOptions::default(), Instant::ZERO) {
//!         ChainStep::Body(n) => {
//!             if let Some(body) = Chain::body(&mut session, &batch, n) {
//!                 session.send_body(body)?;
//!                 session.finish_body()?;
//!             }
//!         }
//!         ChainStep::Wait { .. } => {
//!             while let Some(bytes) = session.poll_transmit() {
//!                 // Write `bytes` to the server here.
//!                 session.wrote(Instant::ZERO, bytes.len());
//!             }
//!             match replies.next() {
//!                 Some(reply) => session.feed(reply.as_bytes()),
//!                 None => session.handle_eof(),
//!             }
//!         }
//!         ChainStep::Done => break,
//!         ChainStep::Closed(error) => {
//!             chain.abort(&mut session, &mut batch, &error, []);
//!             break;
//!         }
//!     }
//! }
//! let deliveries = batch.into_deliveries();
//! assert!(matches!(&deliveries[0], Delivery::Sent(o) if o.queue_id.as_deref() == Some("Q1")));
//! # Ok::<(), smtp_proto::SmtpError>(())
//! ```
//!
//! [`SmtpClient::deliver_flight`]: crate::client::SmtpClient::deliver_flight

mod batch;
#[cfg(test)]
mod tests;

#[allow(unused_imports)]
use crate::alloc_prelude::*;

pub use batch::{Batch, OutgoingMessage};

use crate::error::{IoErrorKind, SmtpError};
use crate::session::{
    BodyInfo, Delivery, Envelope, Event, Fate, MessageId, MessageOptions, Session, SessionAfter,
};
use crate::time::Instant;

/// The messages of one chained flight, handed out one at a time as the session can take them,
/// each told its fate.
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

    /// The deadline the connection should work under now: its limit, and how much of it is
    /// already spent. [`Chain::step`] asks at the end of each step and gives it to the session
    /// ([`Session::set_deadline`], counted back from `now`); `None` (the default) leaves the
    /// session's deadline as it is.
    fn deadline(&self) -> Option<(core::time::Duration, core::time::Duration)> {
        None
    }

    /// The session closed with `error` ([`Chain::abort`]) after every message handed out was
    /// settled: what becomes of the messages not handed out yet, none of which was written. By
    /// default the flight hands them out to be settled as not sent, with `error`, so that a
    /// fixed list ends with every message answered. A flight that can carry them on another
    /// session (a pool's queue) keeps them instead: they were never on this one.
    fn abandon(&mut self, error: &SmtpError) {
        while let Some(n) = self.next() {
            self.settle(n, Delivery::failed(error.clone(), Fate::NotSent));
        }
    }
}

/// One message of a [`Flight`]: its envelope (checked when the flight took the message in),
/// the complete message, and its options (`None`: the defaults the [`Chain`] is given).
#[derive(Debug, Clone, Copy)]
pub struct FlightMessage<'a> {
    /// Sender and recipients.
    pub envelope: &'a Envelope,
    /// The message; line endings are normalised and dot-stuffing applied as for
    /// [`Session::send_body`].
    pub body: &'a [u8],
    /// Per-message options, or `None` for the defaults.
    pub options: Option<&'a MessageOptions>,
}

/// What the driver of a [`Chain`] does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainStep {
    /// Message `n` of the flight wants its body: hand [`Chain::body`] to
    /// [`Session::send_body`] (while [`Session::wants_body`]), then call
    /// [`Session::finish_body`].
    Body(usize),
    /// Write what the session has queued, then read until an event is queued, or, when
    /// `until_ready` holds, until [`Session::ready_for_mail`] (the session can take the next
    /// message).
    Wait {
        /// Whether the session taking the next message also ends the wait.
        until_ready: bool,
    },
    /// Every message handed out is settled, and the flight has no more.
    Done,
    /// The session closed with this error: close the connection and call [`Chain::abort`].
    Closed(SmtpError),
}

/// The messages of a [`Flight`] started on one session and not yet answered. Every message the
/// flight hands out is settled exactly once, in [`step`](Chain::step) or in
/// [`abort`](Chain::abort).
#[derive(Debug, Default)]
pub struct Chain {
    /// Started messages whose result has not arrived: the engine's handle and the flight's
    /// number. Results are matched by handle, never by order.
    waiting: Vec<(MessageId, usize)>,
}

impl Chain {
    /// A chain with nothing started.
    pub fn new() -> Chain {
        Chain::default()
    }

    /// Hand the session's queued events to the flight, start the messages the session can
    /// take now (each with its options, or `defaults`), and say what the driver does next.
    /// The flight's [`deadline`](Flight::deadline), if it has one, bounds the session from
    /// here on, counted back from `now`: the deadline as it stands once this step's results
    /// are settled and its messages started (a flight bounded by its oldest unanswered
    /// message moves on to the next one's).
    pub fn step<F: Flight + ?Sized>(
        &mut self,
        session: &mut Session,
        flight: &mut F,
        defaults: &MessageOptions,
        now: Instant,
    ) -> ChainStep {
        let step = self.advance(session, flight, defaults);
        if matches!(step, ChainStep::Body(_) | ChainStep::Wait { .. }) {
            if let Some((limit, spent)) = flight.deadline() {
                session.set_deadline(now - spent, limit);
            }
        }
        step
    }

    /// [`step`](Self::step) but for the deadline.
    fn advance<F: Flight + ?Sized>(
        &mut self,
        session: &mut Session,
        flight: &mut F,
        defaults: &MessageOptions,
    ) -> ChainStep {
        loop {
            if let Some(step) = self.take_events(session, flight) {
                return step;
            }
            if let Err(error) = session.check_usable() {
                return ChainStep::Closed(error);
            }
            let ready = session.ready_for_mail();
            if ready {
                if let Some(n) = flight.next() {
                    self.start(session, flight, n, defaults);
                    continue;
                }
                if self.waiting.is_empty() {
                    return ChainStep::Done;
                }
            }
            // With nothing more to start, wait for a reply; otherwise also for the session to
            // take the next message.
            return ChainStep::Wait {
                until_ready: !ready,
            };
        }
    }

    /// The body of message `n`, which [`ChainStep::Body`] named. When the flight no longer
    /// holds it, the session is closed instead (never an empty body in its place: the message
    /// is abandoned before its end of data) and the next [`step`](Chain::step) says so.
    pub fn body<'f, F: Flight + ?Sized>(
        session: &mut Session,
        flight: &'f F,
        n: usize,
    ) -> Option<&'f [u8]> {
        let body = flight.message(n).map(|m| m.body);
        if body.is_none() {
            session.handle_io_error(
                IoErrorKind::InvalidInput,
                "the flight no longer holds the message whose body is wanted",
            );
        }
        body
    }

    /// After the session closed with `error`: settle every message still open. A started one
    /// gets its result from the session's queued events or from `taken` (the results the driver
    /// took off the session's queue itself, by message), and is [`Delivery::Unknown`] should
    /// neither hold it; the ones not handed out yet are the flight's ([`Flight::abandon`]: by
    /// default [`Delivery::NotSent`]).
    pub fn abort<F: Flight + ?Sized>(
        &mut self,
        session: &mut Session,
        flight: &mut F,
        error: &SmtpError,
        taken: impl IntoIterator<Item = (MessageId, Delivery)>,
    ) {
        while let Some(event) = session.poll_event() {
            let _ = self.route(flight, event);
        }
        for (id, delivery) in taken {
            self.settle(flight, id, delivery);
        }
        for (_, n) in self.waiting.drain(..) {
            flight.settle(n, Delivery::failed(error.clone(), Fate::Unknown));
        }
        flight.abandon(error);
    }

    /// Start message `n` on the session; one that cannot start is settled as not sent.
    fn start<F: Flight + ?Sized>(
        &mut self,
        session: &mut Session,
        flight: &mut F,
        n: usize,
        defaults: &MessageOptions,
    ) {
        let started = match flight.message(n) {
            Some(message) => {
                let options = message.options.unwrap_or(defaults);
                let info = BodyInfo::in_memory(message.body, options);
                session.start_mail(message.envelope.clone(), info, options)
            }
            None => Err(SmtpError::Internal {
                what: "the flight handed out a message it does not hold",
            }),
        };
        match started {
            Ok(id) => self.waiting.push((id, n)),
            Err(e) => flight.settle(n, Delivery::failed(e, Fate::NotSent)),
        }
    }

    /// Hand out the queued events, until one says what the driver does next.
    fn take_events<F: Flight + ?Sized>(
        &mut self,
        session: &mut Session,
        flight: &mut F,
    ) -> Option<ChainStep> {
        while let Some(event) = session.poll_event() {
            if let Some(step) = self.route(flight, event) {
                return Some(step);
            }
        }
        None
    }

    /// Hand a result to the message whose handle it carries. A request for a body
    /// ([`ChainStep::Body`]) or the error that closed the session ([`ChainStep::Closed`]) is for
    /// the driver.
    fn route<F: Flight + ?Sized>(&mut self, flight: &mut F, event: Event) -> Option<ChainStep> {
        match event {
            Event::Sent(outcome) => self.settle(flight, outcome.message, Delivery::Sent(outcome)),
            Event::MessageFailed {
                message,
                error,
                fate,
                ..
            } => self.settle(flight, message, Delivery::failed(error, fate)),
            Event::Failed {
                error,
                session: SessionAfter::Closed,
            } => return Some(ChainStep::Closed(error)),
            Event::BodyWanted(id) => {
                if let Some(&(_, n)) = self.waiting.iter().find(|&&(w, _)| w == id) {
                    return Some(ChainStep::Body(n));
                }
            }
            _ => {}
        }
        None
    }

    /// Settle the message with handle `id`, if it is waiting.
    fn settle<F: Flight + ?Sized>(&mut self, flight: &mut F, id: MessageId, delivery: Delivery) {
        if let Some(at) = self.waiting.iter().position(|&(w, _)| w == id) {
            let (_, n) = self.waiting.swap_remove(at);
            flight.settle(n, delivery);
        }
    }
}
