//! Message body encoding: the streaming [`DotStuffer`] for DATA and the [`LineNormalizer`] for
//! BDAT, plus [`normalized_len`].
//!
//! Both normalise every bare CR and bare LF to CRLF, whatever the chunking, so a body can never
//! carry an end-of-data sequence that a server would read differently from us (SMTP smuggling,
//! the class of RUSTSEC-2026-0561). The stuffer also doubles a `.` at the start of every line.
//! Each input byte is copied once; runs without CR, LF or `.` are found with `memchr`.
//!
//! The line-ending rule is the same everywhere: a CR immediately followed by an LF is a CRLF and
//! is kept; any other CR and any other LF each become one CRLF. A CR at the end of a chunk is
//! held back until the next chunk (or `finish`) shows which case it is, so the output never
//! depends on how the body was split into chunks.

use bytes::BytesMut;

const CRLF: &[u8] = b"\r\n";
const TERMINATOR: &[u8] = b".\r\n";

/// Shared streaming state of both encoders.
///
/// `Default` is the start of a message: at a line start, no CR held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct LineState {
    /// Some output has been written since the last CRLF (so we are not at a line start).
    mid_line: bool,
    /// The previous chunk ended in a CR; it becomes CRLF whatever comes next, but an LF right
    /// after it is part of that CRLF and must be swallowed.
    pending_cr: bool,
}

impl LineState {
    /// Encode `chunk` into `out`; with `STUFF` a `.` at the start of a line is doubled.
    ///
    /// Every byte of `chunk` is copied at most once: the output is built from whole runs of the
    /// input (already-correct CRLFs included) plus the few inserted bytes.
    #[inline]
    fn encode<const STUFF: bool>(&mut self, chunk: &[u8], out: &mut BytesMut) {
        if chunk.is_empty() {
            return;
        }
        // Common case: nothing to change, so the output is the input plus the odd extra byte.
        out.reserve(chunk.len() + 2);

        let mut rest = chunk;
        if self.pending_cr {
            // The held CR ends a line whatever follows; swallow an LF that completes it.
            out.extend_from_slice(CRLF);
            self.pending_cr = false;
            self.mid_line = false;
            if let Some((&b'\n', tail)) = rest.split_first() {
                rest = tail;
            }
        }

        // `run` is the start of the input not yet copied; `pos` is where scanning resumes and
        // `at_start` says whether `pos` is the first byte of a line.
        let mut run = 0usize;
        let mut pos = 0usize;
        let mut at_start = !self.mid_line;
        loop {
            let tail = rest.get(pos..).unwrap_or_default();
            if STUFF && at_start && tail.first() == Some(&b'.') {
                // Copy up to the dot, add one more; the original dot stays in the next run.
                out.extend_from_slice(rest.get(run..pos).unwrap_or_default());
                out.extend_from_slice(b".");
                run = pos;
            }
            let Some(offset) = memchr::memchr2(b'\r', b'\n', tail) else {
                out.extend_from_slice(rest.get(run..).unwrap_or_default());
                // Anything after the last line break means we stop mid-line.
                self.mid_line = !tail.is_empty() || !at_start;
                return;
            };
            let hit = pos + offset;
            let before = rest.get(run..hit).unwrap_or_default();
            match (rest.get(hit), rest.get(hit + 1)) {
                // A proper CRLF: keep it inside the current run.
                (Some(b'\r'), Some(b'\n')) => pos = hit + 2,
                // A CR at the very end of the chunk: hold it until we see the next byte.
                (Some(b'\r'), None) => {
                    out.extend_from_slice(before);
                    self.pending_cr = true;
                    self.mid_line = false;
                    return;
                }
                // A bare CR, or a bare LF (an LF after a CR was taken with the CR above, and one
                // after a held CR was swallowed on entry): replace it with CRLF.
                _ => {
                    out.extend_from_slice(before);
                    out.extend_from_slice(CRLF);
                    pos = hit + 1;
                    run = pos;
                }
            }
            at_start = true;
        }
    }

    /// Flush a held CR and close an unterminated last line; returns to the start-of-message state.
    #[inline]
    fn finish(&mut self, out: &mut BytesMut) {
        if self.pending_cr || self.mid_line {
            out.extend_from_slice(CRLF);
        }
        *self = LineState::default();
    }
}

/// Streaming DATA encoder: dot-stuffing and CRLF normalisation, correct across chunk boundaries.
///
/// Guarantees, for any input and any chunking: the concatenated output is the same; it contains
/// no bare CR and no bare LF; it never contains `CRLF . CRLF` (nor starts with `. CRLF`) before
/// the terminator written by [`finish`](DotStuffer::finish); and removing one leading `.` from
/// every line gives back the CRLF-normalised body. Never panics.
#[derive(Debug, Clone, Default)]
pub struct DotStuffer {
    state: LineState,
    written: u64,
}

impl DotStuffer {
    /// A stuffer at the start of a message.
    pub fn new() -> DotStuffer {
        DotStuffer::default()
    }

    /// Encode one chunk of the message, appending to `out`. A CR at the end of the chunk is held
    /// until the next byte shows whether it starts a CRLF.
    pub fn encode(&mut self, chunk: &[u8], out: &mut BytesMut) {
        let before = out.len();
        self.state.encode::<true>(chunk, out);
        self.count(out.len().saturating_sub(before));
    }

    /// End the message: flush a held CR (as CRLF), add CRLF if the body did not end with one,
    /// then append the terminator `.\r\n`. The stuffer is then ready for a new message.
    ///
    /// An empty message produces just `.\r\n`. [`written`](DotStuffer::written) is reset to 0.
    pub fn finish(&mut self, out: &mut BytesMut) {
        self.state.finish(out);
        out.extend_from_slice(TERMINATOR);
        self.written = 0;
    }

    /// Bytes written so far for the current message (for SIZE accounting), excluding the terminator.
    ///
    /// A held CR is not counted until it is flushed; the count restarts at 0 after
    /// [`finish`](DotStuffer::finish).
    pub fn written(&self) -> u64 {
        self.written
    }

    fn count(&mut self, n: usize) {
        self.written = self
            .written
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
    }
}

/// Streaming BDAT encoder: CRLF normalisation only (no stuffing, no terminator).
///
/// Guarantees, for any input and any chunking: the concatenated output is the same, contains no
/// bare CR and no bare LF, and after [`finish`](LineNormalizer::finish) has exactly
/// [`normalized_len`] bytes. Never panics.
#[derive(Debug, Clone, Default)]
pub struct LineNormalizer {
    state: LineState,
}

impl LineNormalizer {
    /// A normaliser at the start of a message.
    pub fn new() -> LineNormalizer {
        LineNormalizer::default()
    }

    /// Normalise one chunk, appending to `out`. A trailing CR is held back (see [`DotStuffer::encode`]).
    pub fn encode(&mut self, chunk: &[u8], out: &mut BytesMut) {
        self.state.encode::<false>(chunk, out);
    }

    /// End the message: flush a held CR (as CRLF) and add CRLF if the body is not empty and did not
    /// end with one, so DATA and BDAT deliver the same bytes. Ready for a new message afterwards.
    pub fn finish(&mut self, out: &mut BytesMut) {
        self.state.finish(out);
    }
}

/// The length of `body` after CRLF normalisation and the final CRLF (exactly what
/// [`LineNormalizer`] writes for it, `encode` then `finish`), without stuffing: the size to declare
/// in `SIZE=` and `BDAT`.
///
/// Does not allocate; saturates at `u64::MAX` (unreachable in practice) instead of overflowing.
pub fn normalized_len(body: &[u8]) -> u64 {
    let Some(&last) = body.last() else {
        return 0;
    };
    // Every bare CR and bare LF grows by one byte (to CRLF); a CRLF pair is unchanged.
    let mut extra: u64 = 0;
    let mut skip_lf_at = None;
    for i in memchr::memchr2_iter(b'\r', b'\n', body) {
        if skip_lf_at == Some(i) {
            continue;
        }
        if body.get(i) == Some(&b'\r') && body.get(i + 1) == Some(&b'\n') {
            skip_lf_at = Some(i + 1);
        } else {
            extra = extra.saturating_add(1);
        }
    }
    // A body whose last byte is not a line break gets a closing CRLF.
    if last != b'\r' && last != b'\n' {
        extra = extra.saturating_add(2);
    }
    u64::try_from(body.len())
        .unwrap_or(u64::MAX)
        .saturating_add(extra)
}

/// True when `body` holds a byte above 0x7F (it needs `BODY=8BITMIME`).
pub fn has_8bit(body: &[u8]) -> bool {
    !body.is_ascii()
}
