//! What a [`Mailer`](super::Mailer) sends: a message it can hand to a connection a second time,
//! for its one retry. Bytes in memory are simply sent again; a streamed body is opened again
//! from its start by the caller's function, because the first attempt consumed it.

use std::future::Future;
use std::io;

use smtp_proto::client::Delivery;

use crate::{
    MessageBody, MessageOptions, OutgoingMessage, SmtpClient, SmtpError, SmtpOp, TokioTransport,
};

/// A message the pool can try on a connection, more than once.
pub(super) trait Source {
    /// What one attempt needs besides the connection (the body, opened for it).
    type Ready;

    /// Its envelope: the sender and the recipients.
    fn envelope(&self) -> (&str, &[&str]);

    /// Make an attempt ready. An error ends the send before anything of this attempt was
    /// written.
    async fn prepare(&mut self) -> Result<Self::Ready, SmtpError>;

    /// One attempt on `client`.
    async fn deliver(
        &self,
        ready: &mut Self::Ready,
        client: &mut SmtpClient<TokioTransport>,
    ) -> Delivery;
}

/// A complete message in memory.
pub(super) struct InMemory<'a>(pub(super) &'a OutgoingMessage<'a>);

impl Source for InMemory<'_> {
    type Ready = ();

    fn envelope(&self) -> (&str, &[&str]) {
        (self.0.from, self.0.to)
    }

    async fn prepare(&mut self) -> Result<(), SmtpError> {
        Ok(())
    }

    async fn deliver(&self, _: &mut (), client: &mut SmtpClient<TokioTransport>) -> Delivery {
        client.deliver(self.0).await
    }
}

/// What opens a streamed body from its start, once for each attempt of a
/// [`Mailer::send_stream`](super::Mailer::send_stream): any `FnMut()` closure returning a future
/// of a [`MessageBody`], such as `|| ReaderBody::open(path)`.
pub trait OpenBody {
    /// The body it opens.
    type Body: MessageBody;
    /// The future of one opening.
    type Opening: Future<Output = io::Result<Self::Body>>;

    /// Open the body anew, from its start.
    fn open(&mut self) -> Self::Opening;
}

impl<F, Fut, B> OpenBody for F
where
    F: FnMut() -> Fut,
    Fut: Future<Output = io::Result<B>>,
    B: MessageBody,
{
    type Body = B;
    type Opening = Fut;

    fn open(&mut self) -> Fut {
        self()
    }
}

/// A message whose body `open` yields from its start, once per attempt.
pub(super) struct Reopened<'a, F> {
    pub(super) from: &'a str,
    pub(super) to: &'a [&'a str],
    pub(super) options: Option<&'a MessageOptions>,
    pub(super) open: F,
}

impl<O: OpenBody> Source for Reopened<'_, O> {
    type Ready = O::Body;

    fn envelope(&self) -> (&str, &[&str]) {
        (self.from, self.to)
    }

    async fn prepare(&mut self) -> Result<O::Body, SmtpError> {
        self.open
            .open()
            .await
            .map_err(|e| SmtpError::io(SmtpOp::ReadBody, e.kind(), e.to_string()))
    }

    async fn deliver(
        &self,
        body: &mut O::Body,
        client: &mut SmtpClient<TokioTransport>,
    ) -> Delivery {
        client
            .deliver_stream(self.from, self.to, body, self.options)
            .await
    }
}

/// A streamed message signed with DKIM ([`MailerBuilder::dkim`](super::MailerBuilder::dkim)):
/// on its first attempt its body is opened once more and read whole to hash it, which counts
/// its size as sent too; every attempt then sends the same `DKIM-Signature` field before the
/// body, opened afresh, with that size as its hint (so it is never read a third time to be
/// counted against the server's SIZE limit).
#[cfg(feature = "dkim")]
pub(super) struct Signed<'a, F> {
    pub(super) message: Reopened<'a, F>,
    pub(super) signer: &'a crate::dkim::DkimSigner,
    /// The field and the body's size as sent, once computed: a retry resends these very bytes.
    pub(super) header: Option<(Vec<u8>, u64)>,
}

#[cfg(feature = "dkim")]
impl<O: OpenBody> Source for Signed<'_, O> {
    type Ready = crate::dkim::PrefixedBody<O::Body>;

    fn envelope(&self) -> (&str, &[&str]) {
        self.message.envelope()
    }

    async fn prepare(&mut self) -> Result<Self::Ready, SmtpError> {
        let (header, size) = match &self.header {
            Some(signed) => signed.clone(),
            None => {
                let mut copy = self.message.prepare().await?;
                let (header, size) = crate::dkim::sign_and_count(self.signer, &mut copy).await?;
                drop(copy);
                let signed = (header.into_string().into_bytes(), size);
                self.header = Some(signed.clone());
                signed
            }
        };
        let body = self.message.prepare().await?;
        Ok(crate::dkim::PrefixedBody::new(header, body).with_inner_size(size))
    }

    async fn deliver(
        &self,
        body: &mut Self::Ready,
        client: &mut SmtpClient<TokioTransport>,
    ) -> Delivery {
        let Reopened {
            from, to, options, ..
        } = &self.message;
        client.deliver_stream(from, to, body, *options).await
    }
}
