//! [`ReaderBody`]: any [`std::io::Read`] (a file, a pipe, standard input) as a streamed
//! message body.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::Path;

use smtp_proto::body::SizeCounter;

/// How much a [`ReaderBody`] reads at a time by default: the slice the client encodes and
/// writes a body in memory by.
const CHUNK: usize = 256 * 1024;

/// A message body read from a [`Read`] in chunks, so sending a file of any size holds one chunk
/// in memory (256 KiB by default). Sent with
/// [`SmtpClient::send_mail_stream`](crate::SmtpClient::send_mail_stream).
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
    chunk_size: usize,
    size_hint: Option<u64>,
}

impl<R: Read> ReaderBody<R> {
    /// A body over `reader`, read 256 KiB at a time, of unknown size.
    pub fn new(reader: R) -> ReaderBody<R> {
        ReaderBody {
            reader,
            chunk_size: CHUNK,
            size_hint: None,
        }
    }

    /// Read `bytes` at a time (at least 1).
    pub fn with_chunk_size(mut self, bytes: usize) -> ReaderBody<R> {
        self.chunk_size = bytes.max(1);
        self
    }

    /// Declare the body's size as sent: CRLF line endings (a bare LF counts two bytes) and a
    /// final CRLF, without dot-stuffing (RFC 1870), e.g. from [`size_as_sent`]. It is sent as
    /// `SIZE=`, checked against the server's limit first, and enforced: a body that yields more
    /// is abandoned before its end of data.
    pub fn with_size_hint(mut self, bytes: u64) -> ReaderBody<R> {
        self.size_hint = Some(bytes);
        self
    }

    /// The reader back.
    pub fn into_inner(self) -> R {
        self.reader
    }

    /// How many bytes are read at a time.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// The declared size as sent, if any.
    pub fn size_hint(&self) -> Option<u64> {
        self.size_hint
    }

    /// The next bytes (`Ok(0)` at the end); an interrupted read is retried.
    pub(crate) fn read_chunk(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.reader.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

impl ReaderBody<File> {
    /// Open a file as a body; its size as sent ([`size_as_sent`], one pass over the file) is
    /// the size hint.
    pub fn open(path: impl AsRef<Path>) -> io::Result<ReaderBody<File>> {
        let mut file = File::open(path)?;
        let size = size_as_sent(&mut file)?;
        Ok(ReaderBody::new(file).with_size_hint(size))
    }
}

/// The size what `file` holds from its position on will have on the wire: CRLF line endings
/// and a final CRLF, without dot-stuffing (RFC 1870's `SIZE`). Reads it once and seeks back.
pub fn size_as_sent(file: &mut File) -> io::Result<u64> {
    let start = file.stream_position()?;
    let mut counter = SizeCounter::new();
    let mut buf = vec![0; CHUNK];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        counter.update(&buf[..n]);
    }
    file.seek(io::SeekFrom::Start(start))?;
    Ok(counter.total())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size pass counts from where the file stands, leaves it there, and agrees with
    /// `normalized_len`; `open` declares the whole file's size.
    #[test]
    fn the_size_pass_counts_from_the_position_and_leaves_it() {
        let mut bytes = b"Subject: sizes\n\r\nbare LF\nbare CR\rCRLF\r\n".to_vec();
        for n in 0..10_000u32 {
            bytes.extend_from_slice(if n % 7 == 0 { b"line\n" } else { b"line\r\n" });
        }
        let path = std::env::temp_dir().join(format!("std-size-as-sent-{}", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let body = ReaderBody::open(&path).unwrap();
        assert_eq!(
            body.size_hint(),
            Some(smtp_proto::body::normalized_len(&bytes))
        );
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
