//! [`ReaderBody`]: any `tokio::io::AsyncRead` (a file, a pipe, a socket) as a streamed message body.

use std::io;
use std::path::Path;

use smtp_proto::MessageBody;
use tokio::io::{AsyncRead, AsyncReadExt};

/// A message body read from an [`AsyncRead`] in chunks, so sending a file of any size holds only
/// one chunk in memory.
///
/// ```no_run
/// # async fn demo(client: &mut smtp_io_tokio::SmtpClient<smtp_io_tokio::TokioTransport>) -> Result<(), Box<dyn std::error::Error>> {
/// let mut body = smtp_io_tokio::ReaderBody::open("message.eml").await?;
/// client.send_mail_stream("me@example.com", &["you@example.org"], &mut body).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ReaderBody<R> {
    reader: R,
    chunk_size: usize,
    size_hint: Option<u64>,
}

impl<R: AsyncRead + Unpin> ReaderBody<R> {
    /// A body over `reader`, read 8 KiB at a time, of unknown size.
    pub fn new(reader: R) -> ReaderBody<R> {
        ReaderBody {
            reader,
            chunk_size: 8 * 1024,
            size_hint: None,
        }
    }

    /// Read `bytes` at a time (at least 1).
    pub fn with_chunk_size(mut self, bytes: usize) -> ReaderBody<R> {
        self.chunk_size = bytes.max(1);
        self
    }

    /// Declare the body's size (sent as `SIZE=` and checked against the server's limit first).
    pub fn with_size_hint(mut self, bytes: u64) -> ReaderBody<R> {
        self.size_hint = Some(bytes);
        self
    }

    /// The reader back.
    pub fn into_inner(self) -> R {
        self.reader
    }
}

impl ReaderBody<tokio::fs::File> {
    /// Open a file as a body; its length is the size hint.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<ReaderBody<tokio::fs::File>> {
        let file = tokio::fs::File::open(path).await?;
        let len = file.metadata().await?.len();
        Ok(ReaderBody::new(file).with_size_hint(len))
    }
}

impl<R: AsyncRead + Unpin> MessageBody for ReaderBody<R> {
    async fn read_chunk(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf).await
    }

    fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    fn size_hint(&self) -> Option<u64> {
        self.size_hint
    }
}
