//! Message body encoding: the streaming [`DotStuffer`] for DATA and the [`LineNormalizer`] for
//! BDAT, plus [`normalized_len`]. With the `client` feature, also where a streamed body is read
//! from: [`MessageBody`], [`SliceBody`] and [`PrefixedBody`].
//!
//! Both normalise every bare CR and bare LF to CRLF, whatever the chunking, so a body can never
//! carry an end-of-data sequence that a server would read differently from us (SMTP smuggling,
//! the class of RUSTSEC-2026-0561). The stuffer also doubles a `.` at the start of every line.
//! Each input byte is copied once. Runs of whole lines that need no change are found a block of
//! bytes at a time with a branch-free check the compiler vectorises (safe code, no intrinsics);
//! lines that do need a change are taken one at a time with `memchr`.
//!
//! The line-ending rule is the same everywhere: a CR immediately followed by an LF is a CRLF and
//! is kept; any other CR and any other LF each become one CRLF. A CR at the end of a chunk is
//! held back until the next chunk (or `finish`) shows which case it is, so the output never
//! depends on how the body was split into chunks.

use bytes::BytesMut;

#[cfg(feature = "client")]
mod prefixed;
mod sizing;
#[cfg(feature = "client")]
mod source;

#[cfg(feature = "client")]
pub use prefixed::PrefixedBody;
pub use sizing::BodySizing;
#[cfg(feature = "client")]
pub(crate) use source::size_to_declare;
#[cfg(feature = "client")]
pub use source::{MessageBody, SliceBody};

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
    /// Encode `chunk` into `out`; with `STUFF` a `.` at the start of a line is doubled. Returns
    /// how many dots were inserted.
    ///
    /// Every byte of `chunk` is copied at most once: the output is built from whole runs of the
    /// input (already-correct CRLFs included) plus the few inserted bytes.
    #[inline]
    fn encode<const STUFF: bool>(&mut self, chunk: &[u8], out: &mut BytesMut) -> usize {
        if chunk.is_empty() {
            return 0;
        }
        let mut dots = 0usize;
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
        // Lines to take one by one before trying the block check again: it backs off while it
        // keeps finding nothing to skip (a body of bare LFs), so such bodies do not pay for it.
        let mut backoff = 0u32;
        let mut lines_to_skip_check = 0u32;
        loop {
            let tail = rest.get(pos..).unwrap_or_default();
            if STUFF && at_start && tail.first() == Some(&b'.') {
                // Copy up to the dot, add one more; the original dot stays in the next run.
                out.extend_from_slice(rest.get(run..pos).unwrap_or_default());
                out.extend_from_slice(b".");
                dots += 1;
                run = pos;
            }
            if at_start {
                if lines_to_skip_check == 0 {
                    // Whole lines that need no change stay in the current run, found a block at
                    // a time instead of a line at a time.
                    let clean = clean_lines::<STUFF>(tail);
                    if clean > 0 {
                        pos += clean;
                        backoff = 0;
                        continue;
                    }
                    backoff = (backoff * 2).clamp(1, 32);
                    lines_to_skip_check = backoff;
                } else {
                    lines_to_skip_check -= 1;
                }
            }
            let Some(offset) = memchr::memchr2(b'\r', b'\n', tail) else {
                out.extend_from_slice(rest.get(run..).unwrap_or_default());
                // Anything after the last line break means we stop mid-line.
                self.mid_line = !tail.is_empty() || !at_start;
                return dots;
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
                    return dots;
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

/// Bytes checked per step by [`clean_lines`]; a fixed size lets the compiler vectorise the check.
const BLOCK: usize = 128;

/// True when the adjacent bytes `a`, `b` show a change the encoder must make: a CR not followed by
/// LF, an LF not preceded by CR, or (with `STUFF`) a line that starts with a dot.
#[inline(always)]
fn needs_change<const STUFF: bool>(a: u8, b: u8) -> bool {
    ((a == b'\r') != (b == b'\n')) | (STUFF & (a == b'\n') & (b == b'.'))
}

/// True when some adjacent pair of bytes in `window` [`needs_change`]. Written as a branch-free
/// reduction so that it compiles to vector instructions.
#[inline(always)]
fn any_change<const STUFF: bool>(window: &[u8]) -> bool {
    let Some((_, next)) = window.split_first() else {
        return false;
    };
    let mut changes = 0u8;
    for (&a, &b) in window.iter().zip(next) {
        changes |= u8::from(needs_change::<STUFF>(a, b));
    }
    changes != 0
}

/// The index of the first pair in `window` that [`needs_change`] (`window.len() - 1` if none):
/// narrowed 16 pairs at a time with [`any_change`], then byte by byte.
#[inline]
fn first_change_in<const STUFF: bool>(window: &[u8]) -> usize {
    const SUB: usize = 16;
    let mut offset = 0usize;
    while let Some(sub) = window.get(offset..offset + SUB + 1) {
        if any_change::<STUFF>(sub) {
            break;
        }
        offset += SUB;
    }
    let rest = window.get(offset..).unwrap_or_default();
    let found = rest
        .windows(2)
        .position(|pair| matches!(*pair, [a, b] if needs_change::<STUFF>(a, b)));
    offset + found.unwrap_or(rest.len().saturating_sub(1))
}

/// The length of the longest prefix of `text` made of whole CRLF-terminated lines that the
/// encoder copies unchanged, given that `text` starts at a line start right after a CRLF (or at
/// the start of the message) and that a dot starting that first line has been stuffed already.
/// Zero when the first line needs work.
///
/// Checks every adjacent pair of bytes a block at a time and stops at the first block with a
/// change in it (that block is left to the line-by-line path), so the result may be shorter than
/// the longest such prefix, never longer.
#[inline]
fn clean_lines<const STUFF: bool>(text: &[u8]) -> usize {
    // A line start that is an LF is a bare LF: the byte before it is not a CR.
    if matches!(text.first(), None | Some(b'\n')) {
        return 0;
    }
    let mut start = 0usize;
    // Invariant: every pair of bytes (i, i + 1) with i < start needs no change.
    let mut first_change = None;
    while let Some(window) = text.get(start..start + BLOCK + 1) {
        if any_change::<STUFF>(window) {
            first_change = Some(start + first_change_in::<STUFF>(window));
            break;
        }
        start += BLOCK;
    }
    // Every pair before `clean_to` needs no change (the tail after the last whole block is
    // left unchecked).
    let clean_to = first_change.unwrap_or(start);
    if STUFF && text.get(clean_to) == Some(&b'\n') && text.get(clean_to + 1) == Some(&b'.') {
        // A CRLF then a line starting with a dot: everything up to the dot is clean, and the
        // caller stuffs the dot.
        return clean_to + 1;
    }
    // Every LF at an index <= clean_to has a CR before it and no line-starting dot after it
    // (index 0 is not an LF: checked on entry), so the text up to and including the last of
    // them is whole lines that need no change.
    let checked = text.get(..=clean_to).unwrap_or(text);
    memchr::memrchr(b'\n', checked).map_or(0, |lf| lf + 1)
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
    ///
    /// Returns how many bytes of the *message* this call wrote: the output it appended minus the
    /// dots it inserted, i.e. the chunk's contribution to the normalised body (what `SIZE`
    /// measures and what the server stores).
    pub fn encode(&mut self, chunk: &[u8], out: &mut BytesMut) -> usize {
        let before = out.len();
        let dots = self.state.encode::<true>(chunk, out);
        let appended = out.len().saturating_sub(before);
        self.count(appended);
        appended.saturating_sub(dots)
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

/// [`normalized_len`] for a body that arrives in pieces: the size as sent (RFC 1870's `SIZE`:
/// CRLF line endings and the final CRLF, no dot-stuffing) of everything given to
/// [`update`](Self::update), whatever the split. For a streamed body's size hint, e.g. a pass
/// over a file before sending it.
///
/// ```
/// use smtp_proto::body::{SizeCounter, normalized_len};
///
/// let mut counter = SizeCounter::new();
/// counter.update(b"Subject: hi\r");
/// counter.update(b"\n\nbare LF\nend");
/// assert_eq!(counter.total(), normalized_len(b"Subject: hi\r\n\nbare LF\nend"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SizeCounter {
    len: u64,
    extra: u64,
    /// The last byte seen, if any.
    last: Option<u8>,
}

impl SizeCounter {
    /// A counter at zero.
    pub fn new() -> SizeCounter {
        SizeCounter::default()
    }

    /// Count the next piece of the body. Linear and vectorised like [`normalized_len`]: a
    /// block of text without a bare CR or LF costs one branch-free pass, however many line
    /// breaks it holds.
    pub fn update(&mut self, chunk: &[u8]) {
        let (Some(&first), Some(&end)) = (chunk.first(), chunk.last()) else {
            return;
        };
        // The pair across the boundary: the previous piece's last byte and this one's first
        // (a CR there was left for this piece to decide). At the very start an LF is bare.
        let boundary = match self.last {
            Some(previous) => needs_change::<false>(previous, first),
            None => first == b'\n',
        };
        self.extra = self
            .extra
            .saturating_add(u64::from(boundary))
            .saturating_add(changes_within(chunk));
        self.len = self
            .len
            .saturating_add(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
        self.last = Some(end);
    }

    /// The size as sent of everything counted so far, as if the body ended here.
    pub fn total(&self) -> u64 {
        let ending = match self.last {
            None => 0,
            // A bare CR at the end becomes CRLF.
            Some(b'\r') => 1,
            Some(b'\n') => 0,
            // No line break at the end: a CRLF is added.
            Some(_) => 2,
        };
        self.len.saturating_add(self.extra).saturating_add(ending)
    }

    /// Count everything `reader` yields until its end, `chunk` bytes at a time (an interrupted
    /// read is retried): the size as sent of a file or a pipe, before sending it. The reader
    /// is left at its end; a read error is returned as it is.
    ///
    /// ```
    /// use smtp_proto::body::{SizeCounter, normalized_len};
    ///
    /// let body: &[u8] = b"Subject: hi\nbare LF\r\nend";
    /// assert_eq!(SizeCounter::count(body, 4).unwrap(), normalized_len(body));
    /// ```
    #[cfg(feature = "std")]
    pub fn count(mut reader: impl std::io::Read, chunk: usize) -> std::io::Result<u64> {
        let mut counter = SizeCounter::new();
        let mut buf = alloc::vec![0; chunk.max(1)];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Ok(counter.total()),
                Ok(n) => counter.update(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// The length of `body` after CRLF normalisation and the final CRLF (exactly what
/// [`LineNormalizer`] writes for it, `encode` then `finish`), without stuffing: the size to declare
/// in `SIZE=` and `BDAT`.
///
/// Does not allocate; saturates at `u64::MAX` (unreachable in practice) instead of overflowing.
pub fn normalized_len(body: &[u8]) -> u64 {
    let (Some(&first), Some(&last)) = (body.first(), body.last()) else {
        return 0;
    };
    // Every bare CR and bare LF grows by one byte (to CRLF); a CRLF pair is unchanged. A bare
    // CR or LF shows as an adjacent pair that `needs_change`, except an LF at the very start
    // and a CR at the very end, which have no pair on that side.
    let mut extra = u64::from(first == b'\n') + u64::from(last == b'\r');
    extra = extra.saturating_add(changes_within(body));
    // A body whose last byte is not a line break gets a closing CRLF.
    if last != b'\r' && last != b'\n' {
        extra = extra.saturating_add(2);
    }
    u64::try_from(body.len())
        .unwrap_or(u64::MAX)
        .saturating_add(extra)
}

/// How many adjacent pairs of bytes in `body` [`needs_change`] (each is one bare CR or bare LF
/// that grows to CRLF): [`BLOCK`]-byte windows overlapping by one byte, each checked with one
/// branch-free pass and counted only when it has a change.
fn changes_within(body: &[u8]) -> u64 {
    let mut extra = 0u64;
    let mut start = 0usize;
    loop {
        let window = body.get(start..).unwrap_or_default();
        let window = window.get(..=BLOCK).unwrap_or(window);
        if window.len() < 2 {
            return extra;
        }
        if any_change::<false>(window) {
            extra = extra.saturating_add(count_changes(window));
        }
        start += BLOCK;
    }
}

/// How many adjacent pairs of bytes in `window` (at most [`BLOCK`] + 1 bytes) need a
/// line-ending change. Counts in a byte, so that it compiles to vector instructions.
fn count_changes(window: &[u8]) -> u64 {
    const _: () = assert!(BLOCK <= u8::MAX as usize);
    let Some((_, next)) = window.split_first() else {
        return 0;
    };
    let mut count = 0u8;
    for (&a, &b) in window.iter().zip(next) {
        count = count.wrapping_add(u8::from(needs_change::<false>(a, b)));
    }
    u64::from(count)
}

/// True when `body` holds a byte above 0x7F (it needs `BODY=8BITMIME`).
pub fn has_8bit(body: &[u8]) -> bool {
    !body.is_ascii()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    #[allow(unused_imports)]
    use crate::alloc_prelude::*;
    use proptest::prelude::*;

    /// A reader that yields its bytes a few at a time, is interrupted before each piece, and
    /// can fail once it is done.
    #[cfg(feature = "std")]
    struct Stuttering<'a> {
        rest: &'a [u8],
        interrupt: bool,
        fail_at_end: bool,
    }

    #[cfg(feature = "std")]
    impl std::io::Read for Stuttering<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            if self.rest.is_empty() && self.fail_at_end {
                return Err(std::io::Error::other("disk gone"));
            }
            let n = buf.len().min(self.rest.len()).min(3);
            buf[..n].copy_from_slice(&self.rest[..n]);
            self.rest = &self.rest[n..];
            Ok(n)
        }
    }

    #[cfg(feature = "std")]
    #[test]
    fn counting_a_reader_retries_interruptions_and_returns_its_errors() {
        let body = b"Subject: x\r\n\r\nbare\rCR and bare\nLF\r";
        let reader = |fail_at_end| Stuttering {
            rest: body,
            interrupt: false,
            fail_at_end,
        };
        assert_eq!(
            SizeCounter::count(reader(false), 2).unwrap(),
            normalized_len(body)
        );
        let err = SizeCounter::count(reader(true), 2).unwrap_err();
        assert_eq!(err.to_string(), "disk gone");
    }

    /// Everything an encoder (a [`DotStuffer`] or a [`LineNormalizer`]: the same methods, no
    /// common trait) writes for `chunks`, given one after the other, then finished.
    macro_rules! encode_chunks {
        ($encoder:expr, $chunks:expr) => {{
            let mut encoder = $encoder;
            let mut out = BytesMut::new();
            for c in $chunks {
                encoder.encode(c, &mut out);
            }
            encoder.finish(&mut out);
            out.to_vec()
        }};
    }

    fn stuff_chunks(chunks: &[&[u8]]) -> Vec<u8> {
        encode_chunks!(DotStuffer::new(), chunks)
    }

    fn stuff(body: &[u8]) -> Vec<u8> {
        stuff_chunks(&[body])
    }

    fn normalize_chunks(chunks: &[&[u8]]) -> Vec<u8> {
        encode_chunks!(LineNormalizer::new(), chunks)
    }

    /// What a server does: strip the terminator, remove one leading dot from each line.
    fn unstuff(wire: &[u8]) -> Vec<u8> {
        let body = wire.strip_suffix(b".\r\n").expect("terminator");
        let mut out = Vec::new();
        for line in body.split_inclusive(|&b| b == b'\n') {
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        out
    }

    #[test]
    fn plain_body_is_copied_with_terminator() {
        assert_eq!(
            stuff(b"Subject: x\r\n\r\nhi\r\n"),
            b"Subject: x\r\n\r\nhi\r\n.\r\n"
        );
    }

    #[test]
    fn empty_body_is_just_the_terminator() {
        assert_eq!(stuff(b""), b".\r\n");
        assert_eq!(normalize_chunks(&[b""]), b"");
        assert_eq!(normalized_len(b""), 0);
    }

    #[test]
    fn missing_final_crlf_is_added_before_the_terminator() {
        assert_eq!(stuff(b"hi"), b"hi\r\n.\r\n");
        assert_eq!(normalize_chunks(&[b"hi"]), b"hi\r\n");
    }

    #[test]
    fn leading_dots_are_doubled_on_every_line() {
        assert_eq!(
            stuff(b".\r\n..x\r\na.b\r\n.end"),
            b"..\r\n...x\r\na.b\r\n..end\r\n.\r\n"
        );
    }

    #[test]
    fn dot_at_the_start_of_a_chunk_after_a_line_break_is_stuffed() {
        assert_eq!(stuff_chunks(&[b"a\r\n", b".b"]), b"a\r\n..b\r\n.\r\n");
        assert_eq!(stuff_chunks(&[b"a\r", b"\n.b"]), b"a\r\n..b\r\n.\r\n");
        assert_eq!(
            stuff_chunks(&[b"a\r", b"\n", b".", b"b"]),
            b"a\r\n..b\r\n.\r\n"
        );
    }

    #[test]
    fn a_dot_mid_line_across_chunks_is_left_alone() {
        assert_eq!(stuff_chunks(&[b"a", b".b"]), b"a.b\r\n.\r\n");
    }

    #[test]
    fn bare_lf_and_bare_cr_become_crlf() {
        assert_eq!(stuff(b"a\nb\rc\r\n"), b"a\r\nb\r\nc\r\n.\r\n");
        assert_eq!(normalize_chunks(&[b"a\nb\rc"]), b"a\r\nb\r\nc\r\n");
        // CR CR LF: the first CR is bare, the second starts a CRLF.
        assert_eq!(normalize_chunks(&[b"a\r\r\nb\r\n"]), b"a\r\n\r\nb\r\n");
        // LF CR: two line ends.
        assert_eq!(normalize_chunks(&[b"a\n\rb\r\n"]), b"a\r\n\r\nb\r\n");
    }

    #[test]
    fn cr_at_the_end_of_a_chunk_waits_for_the_next_byte() {
        assert_eq!(normalize_chunks(&[b"a\r", b"\nb\r\n"]), b"a\r\nb\r\n");
        assert_eq!(normalize_chunks(&[b"a\r", b"b\r\n"]), b"a\r\nb\r\n");
        assert_eq!(normalize_chunks(&[b"a\r"]), b"a\r\n");
        assert_eq!(stuff_chunks(&[b"a\r"]), b"a\r\n.\r\n");
    }

    /// The smuggling sequences of the 2023 SMTP-smuggling research: whatever the body holds, the
    /// only end-of-data on the wire is ours.
    #[test]
    fn smuggling_sequences_cannot_end_the_data_early() {
        for evil in [
            &b"a\n.\nMAIL FROM:<x>\r\n"[..],
            b"a\r.\rMAIL FROM:<x>\r\n",
            b"a\r\n.\nRCPT TO:<x>\r\n",
            b"a\n.\r\nDATA\r\n",
            b"a\r\n.\r\nQUIT\r\n",
            b"\n.\n",
            b"\r.\r",
        ] {
            let wire = stuff(evil);
            let first = wire.windows(5).position(|w| w == b"\r\n.\r\n");
            assert_eq!(
                first,
                Some(wire.len() - 5),
                "{:?}",
                String::from_utf8_lossy(&wire)
            );
            assert!(!wire.starts_with(b".\r\n") || wire.len() == 3);
        }
    }

    #[test]
    fn written_counts_the_encoded_bytes_and_restarts() {
        let mut s = DotStuffer::new();
        let mut out = BytesMut::new();
        s.encode(b".a\nb", &mut out);
        assert_eq!(s.written(), out.len() as u64);
        s.finish(&mut out);
        assert_eq!(s.written(), 0);
        let mut out2 = BytesMut::new();
        s.encode(b".x", &mut out2);
        s.finish(&mut out2);
        assert_eq!(&out2[..], b"..x\r\n.\r\n", "state is fresh after finish");
    }

    #[test]
    fn normalized_len_matches_the_normalizer() {
        for body in [
            &b"a"[..],
            b"a\r\n",
            b"a\n",
            b"a\r",
            b"\r\r\n\n\r",
            b"x\r\ny\rz\nw",
        ] {
            assert_eq!(
                normalized_len(body),
                normalize_chunks(&[body]).len() as u64,
                "{body:?}"
            );
        }
    }

    #[test]
    fn has_8bit_detects_high_bytes() {
        assert!(!has_8bit(b"plain ascii\r\n"));
        assert!(has_8bit("caf\u{e9}".as_bytes()));
    }

    /// Bodies rich in the bytes that matter.
    fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                4 => Just(b'.'),
                4 => Just(b'\r'),
                4 => Just(b'\n'),
                4 => b'a'..=b'c',
                1 => any::<u8>(),
            ],
            0..200,
        )
    }

    /// Long bodies of mostly clean CRLF lines with the odd dot-started line, bare CR or bare LF,
    /// so that the block-at-a-time fast path runs and hands over at every kind of position.
    fn long_body_strategy() -> impl Strategy<Value = Vec<u8>> {
        let line = (
            prop_oneof![8 => Just(&b""[..]), 2 => Just(&b"."[..]), 1 => Just(&b".."[..])],
            0usize..300,
            prop_oneof![
                16 => Just(&b"\r\n"[..]),
                1 => Just(&b"\n"[..]),
                1 => Just(&b"\r"[..]),
                1 => Just(&b""[..]),
            ],
        )
            .prop_map(|(lead, len, end)| {
                let mut line = lead.to_vec();
                line.extend((0..len).map(|i| b'a' + (i % 26) as u8));
                line.extend_from_slice(end);
                line
            });
        proptest::collection::vec(line, 0..40).prop_map(|lines| lines.concat())
    }

    /// Either kind of body.
    fn any_body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![body_strategy(), long_body_strategy()]
    }

    pub(crate) use smtp_testkit::cuts::split_at_cuts as split;

    // A reference normalisation, written the obvious slow way (shared with the interop tests).
    use smtp_testkit::reference::crlf_normalized as reference_normalize;

    proptest! {
        #[test]
        fn stuffing_is_independent_of_chunking(body in any_body(), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
            let whole = stuff(&body);
            let chunked = stuff_chunks(&split(&body, &cuts));
            prop_assert_eq!(whole, chunked);
        }

        #[test]
        fn unstuffing_gives_back_the_normalized_body(body in any_body(), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
            let wire = stuff_chunks(&split(&body, &cuts));
            prop_assert_eq!(unstuff(&wire), reference_normalize(&body));
        }

        #[test]
        fn encode_reports_message_bytes_without_stuffed_dots(body in any_body(), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
            let mut stuffer = DotStuffer::new();
            let mut out = BytesMut::new();
            let mut reported = 0u64;
            for chunk in split(&body, &cuts) {
                reported += stuffer.encode(chunk, &mut out) as u64;
            }
            let before = out.len();
            stuffer.finish(&mut out);
            // `finish` adds at most a CRLF of message bytes, then the terminator.
            reported += (out.len() - before - TERMINATOR.len()) as u64;
            prop_assert_eq!(reported, normalized_len(&body));
        }

        #[test]
        fn the_wire_never_ends_data_early(body in any_body(), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
            let wire = stuff_chunks(&split(&body, &cuts));
            // Only one end-of-data: ours, at the very end.
            let mut framed = b"\r\n".to_vec();
            framed.extend_from_slice(&wire);
            let first = framed.windows(5).position(|w| w == b"\r\n.\r\n");
            prop_assert_eq!(first, Some(framed.len() - 5));
            // No bare CR or bare LF anywhere.
            for (i, &b) in wire.iter().enumerate() {
                if b == b'\r' { prop_assert_eq!(wire.get(i + 1), Some(&b'\n')); }
                if b == b'\n' { prop_assert!(i > 0 && wire[i - 1] == b'\r'); }
            }
        }

        #[test]
        fn normalizer_matches_reference_and_length(body in any_body(), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
            let out = normalize_chunks(&split(&body, &cuts));
            prop_assert_eq!(&out, &reference_normalize(&body));
            prop_assert_eq!(out.len() as u64, normalized_len(&body));
        }

        #[test]
        fn size_counter_matches_normalized_len_in_any_split(body in any_body(), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
            let mut counter = SizeCounter::new();
            for chunk in split(&body, &cuts) {
                counter.update(chunk);
            }
            prop_assert_eq!(counter.total(), normalized_len(&body));
        }
    }
}
