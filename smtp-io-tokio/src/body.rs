//! [`ReaderBody`]: any `tokio::io::AsyncRead` (a file, a pipe, a socket) as a streamed message body.

use std::io;
use std::path::Path;

use smtp_proto::MessageBody;
use smtp_proto::body::BodySizing;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt};

/// How much a [`ReaderBody`] reads at a time by default, and [`size_as_sent`] too: the same
/// slice the client encodes and writes a body in memory by, so a streamed body costs about as
/// many reads, writes and (for a file) hops through tokio's blocking pool as there are slices
/// (40 for 10 MiB), not one per 8 KiB (1,280 for 10 MiB, measured at 4.4 times the CPU of the
/// same bytes in memory).
const CHUNK: usize = 256 * 1024;

/// How much [`ReaderBody::open`] reads from a file at a time: each read of a `tokio::fs::File`
/// is a trip through tokio's blocking pool (two thread switches), which at 256 KiB still cost a
/// streamed 10 MiB file about as much CPU as its whole send from memory (bench/README.md,
/// "Issue 22"); 1 MiB reads cut those trips to 10. Memory stays O(1 MiB) per send.
const FILE_CHUNK: usize = 1024 * 1024;

/// A message body read from an [`AsyncRead`] in chunks, so sending a file of any size holds only
/// one chunk in memory (256 KiB by default, see [`with_chunk_size`](ReaderBody::with_chunk_size)).
/// Its size as sent, to declare with [`with_size_hint`](ReaderBody::with_size_hint), is
/// what [`size_as_sent`] counts.
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
    /// The chunk size, the declared size, and for a file from [`ReaderBody::open`] not yet
    /// read, its bound and a second handle to count it on demand.
    sizing: BodySizing,
}

impl<R: AsyncRead + Unpin> ReaderBody<R> {
    /// A body over `reader`, read 256 KiB at a time, of unknown size.
    pub fn new(reader: R) -> ReaderBody<R> {
        ReaderBody {
            reader,
            sizing: BodySizing::new(CHUNK),
        }
    }

    smtp_proto::body_sizing_methods!(sizing);

    /// The reader back.
    pub fn into_inner(self) -> R {
        self.reader
    }
}

impl ReaderBody<tokio::fs::File> {
    /// Open a file as a body, read 1 MiB at a time. Its size as sent is counted (one more pass
    /// over the file, as [`size_as_sent`] does) only when it can matter: when the server's SIZE
    /// limit lies below the most the file can take as sent (twice its length, plus two). It is
    /// then declared as `SIZE=`, checked against the limit before anything is sent, and
    /// enforced; otherwise the file fits whatever its exact size, and it goes out without a
    /// `SIZE=` (the parameter is optional) and without the extra pass.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<ReaderBody<tokio::fs::File>> {
        let path = path.as_ref().to_owned();
        let (file, sizing) = blocking(move || {
            let file = std::fs::File::open(&path)?;
            let mut sizing = BodySizing::new(FILE_CHUNK);
            sizing.count_on_demand(&file)?;
            Ok((file, sizing))
        })
        .await?;
        Ok(ReaderBody {
            reader: tokio::fs::File::from_std(file),
            sizing,
        })
    }
}

/// The size `file` will have on the wire, from its current position to its end: CRLF line
/// endings and a final CRLF, without dot-stuffing (RFC 1870's `SIZE`). Reads the file once
/// (256 KiB at a time, in one task on tokio's blocking pool rather than one hop per read) and
/// seeks back to where it started.
pub async fn size_as_sent(file: &mut tokio::fs::File) -> io::Result<u64> {
    // Where tokio's file stands (any read-ahead it holds is accounted for).
    let start = file.stream_position().await?;
    let mut copy = file.try_clone().await?.into_std().await;
    let size = blocking(move || {
        std::io::Seek::seek(&mut copy, io::SeekFrom::Start(start))?;
        BodySizing::count_from_position(&mut copy)
    })
    .await?;
    // The copy shares the file's offset: put it back through tokio's handle.
    file.seek(io::SeekFrom::Start(start)).await?;
    Ok(size)
}

/// Run blocking file work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| io::Error::other(format!("the file task failed: {e}")))?
}

impl<R: AsyncRead + Unpin> MessageBody for ReaderBody<R> {
    async fn read_chunk(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // The size is asked for before the body is read, never after: the second handle on
        // the file goes, so a body being sent holds the file open once.
        self.sizing.begin_reading();
        self.reader.read(buf).await
    }

    fn chunk_size(&self) -> usize {
        self.sizing.chunk_size()
    }

    fn size_hint(&self) -> Option<u64> {
        self.sizing.size_hint()
    }

    fn max_size(&self) -> Option<u64> {
        self.sizing.max_size()
    }

    /// For a body from [`ReaderBody::open`]: the file counted from where it stands (nothing was
    /// read yet), on tokio's blocking pool, and put back there.
    async fn exact_size(&mut self) -> io::Result<Option<u64>> {
        // A handle of its own on the same open file: the count goes back to where it began.
        self.sizing
            .exact_size_with(|mut copy| {
                blocking(move || BodySizing::count_from_position(&mut copy))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size pass counts from where the file stands, leaves it there, and agrees with
    /// `normalized_len`; `open` declares the whole file's size.
    #[tokio::test]
    async fn the_size_pass_counts_from_the_position_and_leaves_it() {
        let mut bytes = b"Subject: sizes\n\r\nbare LF\nbare CR\rCRLF\r\n".to_vec();
        for n in 0..100_000u32 {
            bytes.extend_from_slice(if n % 7 == 0 { b"line\n" } else { b"line\r\n" });
        }
        let path = std::env::temp_dir().join(format!("size-as-sent-{}", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();

        let mut body = ReaderBody::open(&path).await.unwrap();
        // Counted only on demand.
        assert_eq!(body.size_hint(), None);
        assert_eq!(body.max_size(), Some(2 * bytes.len() as u64 + 2));
        let exact = body.exact_size().await.unwrap();
        assert_eq!(exact, Some(smtp_proto::body::normalized_len(&bytes)));
        assert_eq!(body.size_hint(), exact);
        // And the file still reads from its start.
        let mut whole = Vec::new();
        body.into_inner().read_to_end(&mut whole).await.unwrap();
        assert_eq!(whole, bytes);

        let mut file = tokio::fs::File::open(&path).await.unwrap();
        let mut head = [0; 9];
        file.read_exact(&mut head).await.unwrap();
        let size = size_as_sent(&mut file).await.unwrap();
        assert_eq!(size, smtp_proto::body::normalized_len(&bytes[9..]));
        let mut rest = Vec::new();
        file.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, bytes[9..]);
        std::fs::remove_file(&path).unwrap();
    }
}
