//! Where a streamed body's bytes come from: [`MessageBody`], and [`SliceBody`] for bytes held in
//! memory. The client reads one in chunks and hands each to the encoder, so memory stays O(chunk)
//! whatever the message size.

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use std::io;

use crate::session::Session;

/// A message body read in chunks, so memory stays O(chunk) whatever the message size.
#[allow(async_fn_in_trait)]
pub trait MessageBody {
    /// Read the next bytes of the message into `buf`; `Ok(0)` ends the body.
    async fn read_chunk(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    /// How many bytes the client reads at a time. Default 8 KiB.
    fn chunk_size(&self) -> usize {
        8 * 1024
    }

    /// The body's size, when known in advance: declared as `SIZE=` and checked against the
    /// server's limit before any command is sent.
    fn size_hint(&self) -> Option<u64> {
        None
    }

    /// The most bytes the body can take as sent, when known without reading it: for a file of
    /// `n` bytes, `2n + 2` (every line end may become CRLF, and a final CRLF may be added). With
    /// it and no [`size_hint`](Self::size_hint), the client asks for
    /// [`exact_size`](Self::exact_size) only when the server's SIZE limit is below it
    /// ([`Session::needs_exact_size`](crate::session::Session::needs_exact_size)).
    fn max_size(&self) -> Option<u64> {
        None
    }

    /// The body's exact size as sent (CRLF line ends, a final CRLF, no dot-stuffing), counted
    /// on demand, for example by reading a file once from where it stands and going back. Asked
    /// once, before the message starts, and only when [`max_size`](Self::max_size) exceeds
    /// the server's SIZE limit; the answer is then declared as `SIZE=` and enforced like a
    /// [`size_hint`](Self::size_hint). The default is the size hint. The count runs before the
    /// message starts, while the session waits for nothing: no reply limit bounds it, nor the
    /// session's deadline (unlike [`read_chunk`](Self::read_chunk)). A source whose count can
    /// stall (a network file system) bounds it itself, or declares its size with a hint.
    async fn exact_size(&mut self) -> io::Result<Option<u64>> {
        Ok(self.size_hint())
    }
}

/// The size to declare for `body` on `session` (nothing is sent yet): its size hint; without
/// one, its exact size, counted only when the most it can take exceeds the server's SIZE limit
/// ([`Session::needs_exact_size`]); otherwise none. A body that cannot be counted fails here,
/// leaving the session as it was.
pub(crate) async fn size_to_declare<B: MessageBody>(
    body: &mut B,
    session: &Session,
) -> io::Result<Option<u64>> {
    match (body.size_hint(), body.max_size()) {
        (None, Some(most)) if session.needs_exact_size(most) => body.exact_size().await,
        (hint, _) => Ok(hint),
    }
}

/// A body held in memory, read in chunks (mostly for tests and for adapting `&[u8]`).
#[derive(Debug, Clone)]
pub struct SliceBody<'a> {
    rest: &'a [u8],
    chunk_size: usize,
    total: u64,
}

impl<'a> SliceBody<'a> {
    /// A body over `bytes`, read 8 KiB at a time. Its size hint is the size as sent
    /// ([`normalized_len`](crate::body::normalized_len)).
    pub fn new(bytes: &'a [u8]) -> SliceBody<'a> {
        SliceBody {
            rest: bytes,
            chunk_size: 8 * 1024,
            total: crate::body::normalized_len(bytes),
        }
    }

    /// Read `chunk_size` bytes at a time instead (at least 1).
    pub fn with_chunk_size(mut self, chunk_size: usize) -> SliceBody<'a> {
        self.chunk_size = chunk_size.max(1);
        self
    }
}

impl MessageBody for SliceBody<'_> {
    async fn read_chunk(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.rest.len());
        buf[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        Ok(n)
    }

    fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    fn size_hint(&self) -> Option<u64> {
        Some(self.total)
    }
}
