//! [`ReaderBody`]: any [`std::io::Read`] (a file, a pipe, standard input) as a streamed
//! message body.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use smtp_proto::body::BodySizing;
use smtp_proto::client::MessageBody;

/// How much a [`ReaderBody`] reads at a time by default: the slice the client encodes and
/// writes a body in memory by.
const CHUNK: usize = 256 * 1024;

/// A message body read from a [`Read`] in chunks, so sending a file of any size holds one chunk
/// in memory (256 KiB by default). Sent with
/// [`SmtpClient::send_mail_stream`](crate::SmtpClient::send_mail_stream).
/// Its size as sent, to declare with [`with_size_hint`](ReaderBody::with_size_hint), is
/// what [`size_as_sent`] counts. Each read blocks the thread, and no timer interrupts it (see
/// "Timeouts" in the crate docs): a read that ends past the deadline sends nothing more.
///
/// ```no_run
/// # fn demo(client: &mut smtp_io_std::SmtpClient) -> Result<(), Box<dyn std::error::Error>> {
/// let mut body = smtp_io_std::ReaderBody::open("message.eml")?;
/// client.send_mail_stream("me@example.com", &["you@example.org"], &mut body)?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ReaderBody<R> {
    reader: R,
    /// The chunk size, the declared size, and for a file from [`ReaderBody::open`] not yet
    /// read, its bound and a second handle to count it on demand.
    sizing: BodySizing,
}

impl<R: Read> ReaderBody<R> {
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

    /// How many bytes are read at a time.
    pub fn chunk_size(&self) -> usize {
        self.sizing.chunk_size()
    }

    /// The declared size as sent, if any.
    pub fn size_hint(&self) -> Option<u64> {
        self.sizing.size_hint()
    }

    /// The most bytes the body can take as sent, when known without reading it and no size is
    /// declared (a file from [`ReaderBody::open`]: twice its length, plus two).
    pub fn max_size(&self) -> Option<u64> {
        self.sizing.max_size()
    }

    /// The exact size as sent, counted on demand for a file from [`ReaderBody::open`] (one
    /// pass from where it stands, then back there), and declared from then on; the size hint
    /// otherwise. The client asks only when the server's SIZE limit lies below
    /// [`max_size`](Self::max_size).
    pub fn exact_size(&mut self) -> io::Result<Option<u64>> {
        self.sizing.exact_size()
    }
}

/// The body as the shared driver reads it: each `read_chunk` is one blocking
/// [`Read::read`] (an interrupted one is retried), done in the future's first poll.
impl<R: Read> MessageBody for ReaderBody<R> {
    async fn read_chunk(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // The size is asked for before the body is read, never after: the second handle goes.
        self.sizing.begin_reading();
        loop {
            match self.reader.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    fn chunk_size(&self) -> usize {
        ReaderBody::chunk_size(self)
    }

    fn size_hint(&self) -> Option<u64> {
        ReaderBody::size_hint(self)
    }

    fn max_size(&self) -> Option<u64> {
        ReaderBody::max_size(self)
    }

    async fn exact_size(&mut self) -> io::Result<Option<u64>> {
        ReaderBody::exact_size(self)
    }
}

impl ReaderBody<File> {
    /// Open a file as a body. Its size as sent is counted (one more pass over the file, as
    /// [`size_as_sent`] does) only when it can matter: when the server's SIZE limit lies below
    /// the most the file can take as sent (twice its length, plus two). It is then declared as
    /// `SIZE=`, checked against the limit before anything is sent, and enforced; otherwise the
    /// file fits whatever its exact size, and goes without a `SIZE=` and without the extra pass.
    pub fn open(path: impl AsRef<Path>) -> io::Result<ReaderBody<File>> {
        let mut body = ReaderBody::new(File::open(path)?);
        body.sizing.count_on_demand(&body.reader)?;
        Ok(body)
    }
}

/// The size what `file` holds from its position on will have on the wire: CRLF line endings
/// and a final CRLF, without dot-stuffing (RFC 1870's `SIZE`). Reads it once and seeks back.
pub fn size_as_sent(file: &mut File) -> io::Result<u64> {
    BodySizing::count_from_position(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size pass counts from where the file stands, leaves it there, and agrees with
    /// `normalized_len`; `open` counts the whole file's size on demand.
    #[test]
    fn the_size_pass_counts_from_the_position_and_leaves_it() {
        let mut bytes = b"Subject: sizes\n\r\nbare LF\nbare CR\rCRLF\r\n".to_vec();
        for n in 0..10_000u32 {
            bytes.extend_from_slice(if n % 7 == 0 { b"line\n" } else { b"line\r\n" });
        }
        let path = std::env::temp_dir().join(format!("std-size-as-sent-{}", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let mut body = ReaderBody::open(&path).unwrap();
        // Counted only on demand.
        assert_eq!(body.size_hint(), None);
        assert_eq!(body.max_size(), Some(2 * bytes.len() as u64 + 2));
        let exact = body.exact_size().unwrap();
        assert_eq!(exact, Some(smtp_proto::body::normalized_len(&bytes)));
        assert_eq!(body.size_hint(), exact);
        // And the file still reads from its start.
        let mut whole = Vec::new();
        body.into_inner().read_to_end(&mut whole).unwrap();
        assert_eq!(whole, bytes);
        let mut file = File::open(&path).unwrap();
        let mut head = [0; 9];
        file.read_exact(&mut head).unwrap();
        let size = size_as_sent(&mut file).unwrap();
        assert_eq!(size, smtp_proto::body::normalized_len(&bytes[9..]));
        let mut rest = Vec::new();
        file.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, bytes[9..]);
        std::fs::remove_file(&path).unwrap();
    }
}
