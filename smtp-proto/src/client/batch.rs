//! [`SmtpClient::send_batch`] and [`SmtpClient::deliver_flight`]: many messages over one
//! connection without a round trip between them (batch chaining, RFC 2920 section 3.1), each
//! with its own result. Which message a reply belongs to, and what became of each, is the
//! engine's [`Chain`]; this only does its I/O.

use super::{Delivery, SmtpClient, Transport, now};
#[allow(unused_imports)]
use crate::alloc_prelude::*;
use crate::error::SmtpError;
use crate::flight::{Batch, Chain, ChainStep, Flight, OutgoingMessage};
use crate::session::SendOutcome;

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
        let mut batch = Batch::new(messages);
        self.deliver_flight(&mut batch).await;
        batch.into_deliveries()
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
        self.taken.clear();
        let mut chain = Chain::new();
        let error = loop {
            let step = match chain.step(&mut self.session, flight, &self.message, now::<T>()) {
                ChainStep::Body(n) => match Chain::body(&mut self.session, flight, n) {
                    // Written in slices like `send_mail_bytes`, so a large message in a
                    // batch is never copied whole into the output buffer.
                    Some(body) => self.send_body_slices(body).await,
                    None => Ok(()),
                },
                ChainStep::Wait { until_ready } => {
                    self.drive(|s| until_ready && s.ready_for_mail()).await
                }
                ChainStep::Done => return,
                ChainStep::Closed(error) => Err(error),
            };
            if let Err(error) = step {
                break error;
            }
        };
        self.close_transport().await;
        chain.abort(&mut self.session, flight, &error, self.taken.drain(..));
    }
}
