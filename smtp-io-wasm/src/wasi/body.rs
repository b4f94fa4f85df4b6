//! [`InputStreamBody`]: a `wasi:io` input stream as a streamed message body.

use std::fmt;
use std::io;

use smtp_proto::MessageBody;
use smtp_proto::body::BodySizing;
use wasip2::io::streams::{InputStream, StreamError};

use super::reactor::ready;

/// A message body read from a `wasi:io/streams` input stream (a file, a pipe, an HTTP body, or
/// a stream the host made), so a component can send a message of any size without holding it
/// in guest memory: at most one chunk (8 KiB unless [`with_chunk_size`](Self::with_chunk_size))
/// is held at a time. The stream ends the body when it reports `closed`.
///
/// The stream must carry a complete RFC 5322 message; the client normalises line endings to
/// CRLF and dot-stuffs it on the way out. A stream error (`last-operation-failed`) fails the
/// send with `SmtpError::Io` during `SmtpOp::ReadBody` and closes the session.
pub struct InputStreamBody {
    stream: Option<InputStream>,
    sizing: BodySizing,
}

impl fmt::Debug for InputStreamBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InputStreamBody")
            .field("open", &self.stream.is_some())
            .field("chunk_size", &self.sizing.chunk_size())
            .field("size_hint", &self.sizing.size_hint())
            .finish()
    }
}

impl InputStreamBody {
    /// A body over `stream`, read 8 KiB at a time, of unknown size.
    pub fn new(stream: InputStream) -> InputStreamBody {
        InputStreamBody {
            stream: Some(stream),
            sizing: BodySizing::new(8 * 1024),
        }
    }

    smtp_proto::body_sizing_methods!(sizing);
}

impl MessageBody for InputStreamBody {
    async fn read_chunk(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(stream) = self.stream.as_ref() else {
            return Ok(0);
        };
        let max = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        loop {
            match stream.read(max) {
                Ok(bytes) if bytes.is_empty() => ready(stream.subscribe()).await,
                Ok(bytes) => {
                    // A host that hands out more than asked for breaks the stream's contract:
                    // refuse rather than drop bytes.
                    let Some(dst) = buf.get_mut(..bytes.len()) else {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "the body stream returned more bytes than asked for",
                        ));
                    };
                    dst.copy_from_slice(&bytes);
                    return Ok(bytes.len());
                }
                Err(StreamError::Closed) => {
                    self.stream = None;
                    return Ok(0);
                }
                Err(StreamError::LastOperationFailed(e)) => {
                    self.stream = None;
                    return Err(io::Error::other(format!(
                        "reading the message body stream: {}",
                        e.to_debug_string()
                    )));
                }
            }
        }
    }

    fn chunk_size(&self) -> usize {
        self.sizing.chunk_size()
    }

    fn size_hint(&self) -> Option<u64> {
        self.sizing.size_hint()
    }
}
