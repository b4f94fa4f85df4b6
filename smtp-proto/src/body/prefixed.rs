//! [`PrefixedBody`]: a streamed body with bytes in front of it (a `DKIM-Signature` field, a
//! `Received` line), without copying the body.

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use std::io;

use super::source::MessageBody;

/// A streamed body that yields `prefix` first, then everything `inner` yields.
///
/// Its size hint is the prefix's size as sent plus `inner`'s hint (none when `inner` has
/// none). That sum is exact when the prefix is whole lines (it ends in CRLF or LF, as a header
/// field does) and an upper bound otherwise (a prefix's unterminated last line then runs into
/// the body's first).
///
/// ```
/// use smtp_proto::body::{MessageBody, PrefixedBody, SliceBody};
///
/// # futures_lite_block_on(async {
/// let mut body = PrefixedBody::new(b"X-Tag: 1\r\n".to_vec(), SliceBody::new(b"Subject: hi\r\n\r\nHi\r\n"));
/// assert_eq!(body.size_hint(), Some(10 + 19));
/// let mut all = Vec::new();
/// let mut buf = [0; 4];
/// loop {
///     let n = body.read_chunk(&mut buf).await.unwrap();
///     if n == 0 { break; }
///     all.extend_from_slice(&buf[..n]);
/// }
/// assert_eq!(all, b"X-Tag: 1\r\nSubject: hi\r\n\r\nHi\r\n");
/// # });
/// # fn futures_lite_block_on<F: core::future::Future>(f: F) -> F::Output {
/// #     use core::task::{Context, Poll, Waker};
/// #     let mut f = core::pin::pin!(f);
/// #     let mut cx = Context::from_waker(Waker::noop());
/// #     loop { if let Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PrefixedBody<B> {
    prefix: Vec<u8>,
    /// How much of `prefix` was yielded.
    at: usize,
    inner: B,
    /// `inner`'s size as sent, when known from elsewhere ([`PrefixedBody::with_inner_size`]).
    inner_size: Option<u64>,
}

impl<B: MessageBody> PrefixedBody<B> {
    /// `prefix`, then `inner`.
    pub fn new(prefix: Vec<u8>, inner: B) -> PrefixedBody<B> {
        PrefixedBody {
            prefix,
            at: 0,
            inner,
            inner_size: None,
        }
    }

    /// Say `inner`'s size as sent (CRLF line ends and a final CRLF, no dot-stuffing), known
    /// from elsewhere, e.g. counted while the body was hashed for a signature: it then stands
    /// for `inner`'s own hint, so the client never reads `inner` to count it. Like any size
    /// hint it is declared and enforced: a body that yields more is abandoned before its end.
    pub fn with_inner_size(mut self, bytes: u64) -> PrefixedBody<B> {
        self.inner_size = Some(bytes);
        self
    }

    /// The bytes yielded before the body.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// The body behind the prefix.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The body behind the prefix, taken back (whatever of it was read stays read).
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B: MessageBody> MessageBody for PrefixedBody<B> {
    async fn read_chunk(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = self.prefix.get(self.at..).unwrap_or_default();
        if rest.is_empty() {
            return self.inner.read_chunk(buf).await;
        }
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }

    fn chunk_size(&self) -> usize {
        self.inner.chunk_size()
    }

    fn size_hint(&self) -> Option<u64> {
        let inner = self.inner_size.or_else(|| self.inner.size_hint())?;
        Some(crate::body::normalized_len(&self.prefix).saturating_add(inner))
    }

    fn max_size(&self) -> Option<u64> {
        if self.size_hint().is_some() {
            return None;
        }
        let inner = self.inner.max_size()?;
        Some(crate::body::normalized_len(&self.prefix).saturating_add(inner))
    }

    async fn exact_size(&mut self) -> io::Result<Option<u64>> {
        if self.inner_size.is_some() {
            return Ok(self.size_hint());
        }
        let Some(inner) = self.inner.exact_size().await? else {
            return Ok(None);
        };
        Ok(Some(
            crate::body::normalized_len(&self.prefix).saturating_add(inner),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::future::block_on;

    /// A body that knows only its bounds until asked to count.
    struct Uncounted(u64);

    impl MessageBody for Uncounted {
        async fn read_chunk(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Ok(0)
        }
        fn max_size(&self) -> Option<u64> {
            Some(2 * self.0 + 2)
        }
        async fn exact_size(&mut self) -> io::Result<Option<u64>> {
            Ok(Some(self.0))
        }
    }

    /// The prefix counts in the bounds and in the exact size, so a signed file is still
    /// counted against the server's limit when it can matter.
    #[test]
    fn bounds_and_the_exact_size_include_the_prefix() {
        let mut body = PrefixedBody::new(b"X-Tag: 1\r\n".to_vec(), Uncounted(100));
        assert_eq!(body.size_hint(), None);
        assert_eq!(body.max_size(), Some(10 + 202));
        assert_eq!(block_on(body.exact_size()).unwrap(), Some(110));
    }

    /// A size known from elsewhere stands for the body's own: it is the hint, with the prefix,
    /// and the body is never asked to count itself.
    #[test]
    fn a_known_inner_size_is_the_hint_and_nothing_is_counted() {
        struct MustNotCount;
        impl MessageBody for MustNotCount {
            async fn read_chunk(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Ok(0)
            }
            fn max_size(&self) -> Option<u64> {
                Some(1_000)
            }
            async fn exact_size(&mut self) -> io::Result<Option<u64>> {
                panic!("the body was counted although its size was given");
            }
        }
        let mut body = PrefixedBody::new(b"X-Tag: 1\n".to_vec(), MustNotCount).with_inner_size(42);
        assert_eq!(body.size_hint(), Some(10 + 42));
        assert_eq!(body.max_size(), None);
        assert_eq!(block_on(body.exact_size()).unwrap(), Some(10 + 42));
    }
}
