//! [`ReadableStreamBody`]: a JavaScript `ReadableStream` of bytes as a streamed message body.

use std::fmt;
use std::io;

use smtp_proto::MessageBody;
use smtp_proto::body::BodySizing;
use wasm_bindgen::{JsCast, JsValue};

use crate::streams::ChunkReader;
use crate::sys::{self, ReadableStream};

/// A message body read from a JavaScript `ReadableStream` of `Uint8Array` chunks (for example
/// the body of the `Request` a Worker received), so a Worker can forward a message of any size
/// without holding it in memory.
///
/// The stream must carry a complete RFC 5322 message (headers, blank line, body); the client
/// normalises line endings to CRLF and dot-stuffs it on the way out.
///
/// ```ignore
/// // In a fetch handler, `request` being the incoming web_sys::Request (or any JS object with a
/// // `body` stream):
/// let stream = request.body().expect("a message in the request body");
/// let mut body = ReadableStreamBody::new(stream)?;
/// client.send_mail_stream("me@example.com", &["you@example.org"], &mut body).await?;
/// ```
///
/// The example Worker (`examples/worker`) sends its `POST` request body this way.
pub struct ReadableStreamBody {
    reader: Option<ChunkReader>,
    sizing: BodySizing,
}

impl fmt::Debug for ReadableStreamBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadableStreamBody")
            .field("chunk_size", &self.sizing.chunk_size())
            .field("size_hint", &self.sizing.size_hint())
            .finish_non_exhaustive()
    }
}

impl ReadableStreamBody {
    /// A body over `stream` (a `ReadableStream`, given as any JS value: a `web_sys` or `worker`
    /// stream type converts with `.into()`), read 8 KiB at a time, of unknown size.
    ///
    /// Takes the stream's lock: fails when the value has no `getReader()` or the stream is
    /// already locked or consumed.
    pub fn new(stream: impl Into<JsValue>) -> io::Result<ReadableStreamBody> {
        let stream: JsValue = stream.into();
        if !stream.is_object() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the message body is not a ReadableStream",
            ));
        }
        let reader = stream
            .unchecked_into::<ReadableStream>()
            .get_reader()
            .map_err(|e| sys::io_error("opening the message body stream", &e))?;
        Ok(ReadableStreamBody {
            reader: Some(ChunkReader::new(reader)),
            sizing: BodySizing::new(8 * 1024),
        })
    }

    smtp_proto::body_sizing_methods!(sizing);
}

impl MessageBody for ReadableStreamBody {
    async fn read_chunk(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(0);
        };
        let n = reader.read(buf, "the message body").await?;
        if n == 0 {
            // The end: give the (now closed) stream's lock back.
            if let Some(reader) = self.reader.take() {
                reader.release();
            }
        }
        Ok(n)
    }

    fn chunk_size(&self) -> usize {
        self.sizing.chunk_size()
    }

    fn size_hint(&self) -> Option<u64> {
        self.sizing.size_hint()
    }
}

impl Drop for ReadableStreamBody {
    fn drop(&mut self) {
        // Abandoned before its end (the send failed): cancel the source instead of leaving it
        // half read and locked.
        if let Some(reader) = self.reader.take() {
            reader.cancel();
        }
    }
}
