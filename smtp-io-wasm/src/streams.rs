//! A Workers socket's streams: [`ChunkReader`], cancel-safe reads that keep the part of a chunk
//! a caller's buffer could not take (shared by the transport and a streamed body), and
//! [`Streams`], a socket with both of its streams locked.

use std::io;

use js_sys::{Promise, Reflect, Uint8Array};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

use crate::sys::{self, ReadableStreamDefaultReader, Socket, WritableStreamDefaultWriter};

/// Reads from a `ReadableStream` reader, cancel-safe, keeping the part of a chunk that did not
/// fit in the caller's buffer.
///
/// A read dropped before it completes (the client does that when a timeout fires) leaves its
/// promise here; the next read awaits the same promise, so no chunk is ever lost.
pub(crate) struct ChunkReader {
    reader: ReadableStreamDefaultReader,
    pending: Option<JsFuture>,
    rest: Vec<u8>,
    pos: usize,
    done: bool,
}

impl ChunkReader {
    pub(crate) fn new(reader: ReadableStreamDefaultReader) -> ChunkReader {
        ChunkReader {
            reader,
            pending: None,
            rest: Vec::new(),
            pos: 0,
            done: false,
        }
    }

    /// Bytes received but not yet handed out.
    pub(crate) fn buffered(&self) -> usize {
        self.rest.len() - self.pos
    }

    /// True while a `read()` promise is outstanding.
    pub(crate) fn read_in_flight(&self) -> bool {
        self.pending.is_some()
    }

    /// Read into `buf`; `Ok(0)` at the end of the stream. `what` names the stream in errors.
    pub(crate) async fn read(&mut self, buf: &mut [u8], what: &str) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.pos < self.rest.len() {
                let n = buf.len().min(self.rest.len() - self.pos);
                buf[..n].copy_from_slice(&self.rest[self.pos..self.pos + n]);
                self.pos += n;
                if self.pos == self.rest.len() {
                    self.rest.clear();
                    self.pos = 0;
                }
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            if self.pending.is_none() {
                let promise = self
                    .reader
                    .read()
                    .map_err(|e| sys::io_error(&format!("reading {what}"), &e))?;
                self.pending = Some(JsFuture::from(promise));
            }
            let result = match self.pending.as_mut() {
                Some(pending) => pending.await,
                None => continue,
            };
            self.pending = None;
            let result = result.map_err(|e| sys::io_error(&format!("reading {what}"), &e))?;
            let done = Reflect::get(&result, &JsValue::from_str("done"))
                .map(|d| d.is_truthy())
                .unwrap_or(true);
            if done {
                self.done = true;
                return Ok(0);
            }
            let value = Reflect::get(&result, &JsValue::from_str("value"))
                .map_err(|e| sys::io_error(&format!("reading {what}"), &e))?;
            let Some(chunk) = value.dyn_ref_uint8array() else {
                // Not `InvalidData`: that kind means the TLS layer refused a record.
                return Err(io::Error::other(format!(
                    "reading {what}: the stream gave a chunk that is not a Uint8Array"
                )));
            };
            let len = chunk.length() as usize;
            if len == 0 {
                continue;
            }
            let n = buf.len().min(len);
            chunk.subarray(0, n as u32).copy_to(&mut buf[..n]);
            if n < len {
                self.rest.resize(len - n, 0);
                chunk.subarray(n as u32, len as u32).copy_to(&mut self.rest);
                self.pos = 0;
            }
            return Ok(n);
        }
    }

    /// Give the stream's lock back (a pending read, if any, is abandoned).
    pub(crate) fn release(self) {
        let _ = self.reader.release_lock();
    }

    /// Cancel the stream (best effort) and give its lock back.
    pub(crate) fn cancel(self) {
        if let Ok(p) = self.reader.cancel() {
            settle_quietly(p);
        }
        let _ = self.reader.release_lock();
    }
}

/// `dyn_ref` for `Uint8Array` without importing `JsCast` at every call site.
trait AsUint8Array {
    fn dyn_ref_uint8array(&self) -> Option<&Uint8Array>;
}

impl AsUint8Array for JsValue {
    fn dyn_ref_uint8array(&self) -> Option<&Uint8Array> {
        use wasm_bindgen::JsCast;
        self.dyn_ref::<Uint8Array>()
    }
}

/// A socket with its two streams locked: the reader (chunks kept whole across reads) and the
/// writer.
pub(crate) struct Streams {
    pub(crate) socket: Socket,
    pub(crate) reader: ChunkReader,
    pub(crate) writer: WritableStreamDefaultWriter,
}

impl Streams {
    /// Lock both streams of `socket`.
    pub(crate) fn of(socket: Socket) -> io::Result<Streams> {
        let reader = socket
            .readable()
            .and_then(|r| r.get_reader())
            .map_err(|e| sys::io_error("opening the socket's readable stream", &e))?;
        let writer = socket
            .writable()
            .and_then(|w| w.get_writer())
            .map_err(|e| sys::io_error("opening the socket's writable stream", &e))?;
        Ok(Streams {
            socket,
            reader: ChunkReader::new(reader),
            writer,
        })
    }
}

/// Let a promise nobody waits for settle, keeping a rejection from being reported as unhandled.
pub(crate) fn settle_quietly(promise: Promise) {
    wasm_bindgen_futures::spawn_local(async move {
        let _ = JsFuture::from(promise).await;
    });
}
