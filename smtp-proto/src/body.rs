//! Message body encoding: the streaming [`DotStuffer`] for DATA and the [`LineNormalizer`] for
//! BDAT, plus [`normalized_len`].
//!
//! (Helper B implements; the public signatures here are fixed.)
//!
//! Both normalise every bare CR and bare LF to CRLF, whatever the chunking, so a body can never
//! carry an end-of-data sequence that a server would read differently from us (SMTP smuggling,
//! the class of RUSTSEC-2026-0561). The stuffer also doubles a `.` at the start of every line.
//! Each input byte is copied once; runs without CR, LF or `.` are found with `memchr`.

use bytes::BytesMut;

/// Streaming DATA encoder: dot-stuffing and CRLF normalisation, correct across chunk boundaries.
#[derive(Debug, Clone, Default)]
pub struct DotStuffer {
    // helper B: state (at line start? pending CR?)
}

impl DotStuffer {
    /// A stuffer at the start of a message.
    pub fn new() -> DotStuffer {
        todo!()
    }

    /// Encode one chunk of the message, appending to `out`. A CR at the end of the chunk is held
    /// until the next byte shows whether it starts a CRLF.
    pub fn encode(&mut self, chunk: &[u8], out: &mut BytesMut) {
        let _ = (chunk, out);
        todo!()
    }

    /// End the message: flush a held CR (as CRLF), add CRLF if the body did not end with one,
    /// then append the terminator `.\r\n`. The stuffer is then ready for a new message.
    pub fn finish(&mut self, out: &mut BytesMut) {
        let _ = out;
        todo!()
    }

    /// Bytes written so far for the current message (for SIZE accounting), excluding the terminator.
    pub fn written(&self) -> u64 {
        todo!()
    }
}

/// Streaming BDAT encoder: CRLF normalisation only (no stuffing, no terminator).
#[derive(Debug, Clone, Default)]
pub struct LineNormalizer {
    // helper B: state
}

impl LineNormalizer {
    /// A normaliser at the start of a message.
    pub fn new() -> LineNormalizer {
        todo!()
    }

    /// Normalise one chunk, appending to `out`. A trailing CR is held back (see [`DotStuffer::encode`]).
    pub fn encode(&mut self, chunk: &[u8], out: &mut BytesMut) {
        let _ = (chunk, out);
        todo!()
    }

    /// End the message: flush a held CR (as CRLF) and add CRLF if the body is not empty and did not
    /// end with one, so DATA and BDAT deliver the same bytes. Ready for a new message afterwards.
    pub fn finish(&mut self, out: &mut BytesMut) {
        let _ = out;
        todo!()
    }
}

/// The length of `body` after CRLF normalisation and the final CRLF (exactly what
/// [`LineNormalizer`] writes for it, `encode` then `finish`), without stuffing: the size to declare
/// in `SIZE=` and `BDAT`.
pub fn normalized_len(body: &[u8]) -> u64 {
    let _ = body;
    todo!()
}

/// True when `body` holds a byte above 0x7F (it needs `BODY=8BITMIME`).
pub fn has_8bit(body: &[u8]) -> bool {
    !body.is_ascii()
}
