//! What a connection pool needs from one client: whether an idle connection is still in step
//! ([`SmtpClient::check_idle`]), and whether a failed message may have been delivered
//! ([`SmtpClient::deliver`], [`SmtpClient::deliver_stream`] and their
//! [`Delivery`](super::Delivery)).

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use super::{Delivery, MessageBody, OutgoingMessage, SmtpClient, Transport};
use crate::error::SmtpError;
use crate::session::{Fate, MessageOptions, SendOutcome};
use crate::state::SessionState;

/// The most unsolicited bytes [`IdleStatus::Unsolicited`] keeps, for a log line.
const KEPT: usize = 512;

/// What [`SmtpClient::check_idle`] found on a connection between two operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdleStatus {
    /// Nothing arrived: the connection can be used.
    Quiet,
    /// The server closed the connection (or the session was already closed).
    Closed,
    /// The server sent bytes nobody asked for (a `421` before it hangs up, or a stray reply).
    /// The connection is out of step: any reply read from now on could belong to the wrong
    /// command, so the client has been closed.
    Unsolicited {
        /// The first bytes that arrived (at most 512), for a log line.
        bytes: Vec<u8>,
    },
}

impl<T: Transport> SmtpClient<T> {
    /// Look, without waiting, whether the server sent anything since the last operation ended,
    /// for a client that sat idle (in a pool). Anything at all means the connection cannot be
    /// reused: an end of stream ([`IdleStatus::Closed`]) or unsolicited bytes
    /// ([`IdleStatus::Unsolicited`], e.g. a `421` the server sent before hanging up). Those
    /// bytes are never fed to the engine or paired with the next command: the session is
    /// closed and the transport closed with it. Call it only between operations (nothing
    /// awaited).
    ///
    /// How: first the engine ([`Session::holds_partial_reply`](crate::session::Session::holds_partial_reply))
    /// and the transport ([`Transport::input_pending`]: the tokio transport peeks its socket and
    /// looks at what TLS already decrypted). When the transport cannot tell, its
    /// [`read`](Transport::read) future is polled exactly once, with a waker that does nothing,
    /// and dropped; `read` is cancel-safe by contract, so nothing is lost when it is pending.
    /// That fallback's limit: a runtime that caches readiness (tokio's reactor does, after a
    /// read that found nothing) reports new bytes only once its event loop has seen them, which
    /// is why a transport that can ask the operating system should answer `input_pending`.
    pub async fn check_idle(&mut self) -> IdleStatus {
        if self.session.state() == SessionState::Closed || self.transport_closed {
            self.close_transport().await;
            return IdleStatus::Closed;
        }
        // A part of a reply the engine already holds, with nothing asked: out of step.
        let partial = self.session.holds_partial_reply();
        let pending = self.transport.input_pending();
        if !partial && pending == Some(false) {
            return IdleStatus::Quiet;
        }
        // A blocking transport must not wait here: the look is at what is there now.
        self.transport.set_wait_limit(Some(T::now()));
        let polled = {
            let mut read = pin!(self.transport.read(&mut self.read_buf));
            let mut cx = Context::from_waker(Waker::noop());
            read.as_mut().poll(&mut cx)
        };
        let status = match polled {
            // The transport saw input its runtime has not noticed yet: out of step all the same.
            Poll::Pending if partial || pending == Some(true) => {
                self.session.handle_io_error(
                    std::io::ErrorKind::InvalidData,
                    "unsolicited input from the server while idle",
                );
                IdleStatus::Unsolicited { bytes: Vec::new() }
            }
            Poll::Pending => return IdleStatus::Quiet,
            Poll::Ready(Ok(0)) => {
                self.session.handle_eof();
                IdleStatus::Closed
            }
            Poll::Ready(Ok(n)) => {
                let bytes = self.read_buf[..n.min(KEPT)].to_vec();
                self.session.handle_io_error(
                    std::io::ErrorKind::InvalidData,
                    &format!("{n} unsolicited byte(s) from the server while idle"),
                );
                IdleStatus::Unsolicited { bytes }
            }
            Poll::Ready(Err(e)) => {
                self.session.handle_io_error(e.kind(), &e.to_string());
                IdleStatus::Closed
            }
        };
        // The engine has recorded why it closed; nothing of it is owed to anyone.
        while self.session.poll_event().is_some() {}
        self.close_transport().await;
        status
    }

    /// Send one message (with its options, or the client's defaults) and say what became of
    /// it, distinguishing a message that provably was not delivered from one whose fate is
    /// unknown (see [`Delivery`]). Otherwise like
    /// [`send_mail_bytes_with`](Self::send_mail_bytes_with).
    pub async fn deliver(&mut self, message: &OutgoingMessage<'_>) -> Delivery {
        let options = match message.options {
            Some(o) => o.clone(),
            None => self.message.clone(),
        };
        let result = self
            .send_mail_bytes_with(message.from, message.to, message.body, &options)
            .await;
        self.delivery(result)
    }

    /// [`deliver`](Self::deliver) for a body read from a stream (see
    /// [`send_mail_stream_with`](Self::send_mail_stream_with)), with `options` or the client's
    /// defaults. A body that fails to read before its end is [`Delivery::NotSent`] with
    /// `before_end_of_data: true` (the session is closed, nothing was delivered); sending it
    /// again needs the body again from its start, which only the caller can provide.
    pub async fn deliver_stream<B: MessageBody>(
        &mut self,
        from: &str,
        to: &[&str],
        body: &mut B,
        options: Option<&MessageOptions>,
    ) -> Delivery {
        let options = match options {
            Some(o) => o.clone(),
            None => self.message.clone(),
        };
        let result = self.send_mail_stream_with(from, to, body, &options).await;
        self.delivery(result)
    }

    /// What became of the message whose `send_mail*` call returned `result`: the engine's
    /// verdict ([`Fate`]) on the message; an error with no message behind it (a local check,
    /// a session already closed) sent nothing.
    fn delivery(&self, result: Result<SendOutcome, SmtpError>) -> Delivery {
        match result {
            Ok(outcome) => Delivery::Sent(outcome),
            Err(error) => {
                let fate = self.fates.last().map_or(Fate::NotSent, |&(_, fate)| fate);
                Delivery::failed(error, fate)
            }
        }
    }

    /// Close the connection without QUIT: for a connection that is out of step, where a QUIT
    /// could be answered by a reply meant for something else. Best effort, like
    /// [`Transport::close`].
    pub async fn close(mut self) {
        if self.session.state() != SessionState::Closed {
            self.session.handle_io_error(
                std::io::ErrorKind::ConnectionAborted,
                "connection closed by the client",
            );
            while self.session.poll_event().is_some() {}
        }
        self.close_transport().await;
    }
}
