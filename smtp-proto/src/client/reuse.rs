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
use crate::session::{Fate, IdleInput, IdleStatus, MessageOptions, SendOutcome};

impl<T: Transport> SmtpClient<T> {
    /// Look, without waiting, whether the server sent anything since the last operation ended,
    /// for a client that sat idle (in a pool). Anything at all means the connection cannot be
    /// reused: an end of stream ([`IdleStatus::Closed`]) or unsolicited bytes
    /// ([`IdleStatus::Unsolicited`], e.g. a `421` the server sent before hanging up). The
    /// engine judges what was found ([`Session::idle_input`](crate::session::Session::idle_input)):
    /// those bytes are never parsed or paired with the next command, and the session is closed,
    /// the transport with it. Call it only between operations (nothing awaited).
    ///
    /// How it looks: first at the transport ([`Transport::input_pending`]: the tokio transport
    /// peeks its socket and looks at what TLS already decrypted). When it cannot tell, its
    /// [`read`](Transport::read) future is polled exactly once, with a waker that does nothing,
    /// and dropped; `read` is cancel-safe by contract, so nothing is lost when it is pending.
    /// That fallback's limit: a runtime that caches readiness (tokio's reactor does, after a
    /// read that found nothing) reports new bytes only once its event loop has seen them, which
    /// is why a transport that can ask the operating system should answer `input_pending`.
    pub async fn check_idle(&mut self) -> IdleStatus {
        let pending = self.transport.input_pending();
        let status = if self.transport_closed || self.session.check_usable().is_err() {
            self.session.idle_input(IdleInput::Eof)
        } else if pending == Some(false) {
            self.session.idle_input(IdleInput::Nothing)
        } else {
            // A blocking transport must not wait here: the look is at what is there now.
            self.transport.set_wait_limit(Some(T::now()));
            let polled = {
                let mut read = pin!(self.transport.read(&mut self.read_buf));
                read.as_mut().poll(&mut Context::from_waker(Waker::noop()))
            };
            let failure;
            self.session.idle_input(match polled {
                // Input the runtime has not noticed yet: out of step all the same.
                Poll::Pending if pending == Some(true) => IdleInput::Waiting,
                Poll::Pending => IdleInput::Nothing,
                Poll::Ready(Ok(0)) => IdleInput::Eof,
                Poll::Ready(Ok(n)) => IdleInput::Bytes(&self.read_buf[..n]),
                Poll::Ready(Err(e)) => {
                    failure = e.to_string();
                    IdleInput::Error(e.kind(), &failure)
                }
            })
        };
        if status != IdleStatus::Quiet {
            // The engine has recorded why it closed; nothing of it is owed to anyone.
            while self.session.poll_event().is_some() {}
            self.close_transport().await;
        }
        status
    }

    /// Send one message (with its options, or the client's defaults) and say what became of
    /// it, distinguishing a message that provably was not delivered from one whose fate is
    /// unknown (see [`Delivery`]). Otherwise like
    /// [`send_mail_bytes_with`](Self::send_mail_bytes_with).
    pub async fn deliver(&mut self, message: &OutgoingMessage<'_>) -> Delivery {
        let options = message.options.unwrap_or(&self.message).clone();
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
        let options = options.unwrap_or(&self.message).clone();
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
                // Accepted before the connection broke (its reply read after a failed write):
                // sent, whatever came after.
                if let Some((_, Delivery::Sent(outcome))) = self.taken.last() {
                    return Delivery::Sent(outcome.clone());
                }
                let fate = self.taken.iter().rev().find_map(|(_, d)| d.fate());
                let fate = fate.unwrap_or(Fate::NotSent);
                Delivery::failed(error, fate)
            }
        }
    }

    /// What became of the message whose `send_mail*` or `deliver*` call was dropped before it
    /// returned (Ctrl-C, a timeout of the caller's own): the engine's verdict
    /// ([`Session::abandon`](crate::session::Session::abandon)). The session is closed; the
    /// transport closes with the client, or on [`quit`](Self::quit).
    pub fn abandon(&mut self) -> Delivery {
        let holds_a_message = self.session.holds_a_message();
        let delivery = self.session.abandon();
        while self.session.poll_event().is_some() {}
        // With no message left in the engine, the call's result may have been taken off its
        // queue already (the call was dropped while the client closed the transport): that
        // result is the message's, not "not sent".
        match self.taken.last() {
            Some((_, taken)) if !holds_a_message && delivery.fate() == Some(Fate::NotSent) => {
                taken.clone()
            }
            _ => delivery,
        }
    }

    /// Close the connection without QUIT: for a connection that is out of step, where a QUIT
    /// could be answered by a reply meant for something else. Best effort, like
    /// [`Transport::close`].
    pub async fn close(mut self) {
        // Harmless on a session already closed: the engine keeps its first error.
        self.session.handle_io_error(
            std::io::ErrorKind::ConnectionAborted,
            "connection closed by the client",
        );
        self.close_transport().await;
    }
}
