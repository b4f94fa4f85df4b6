//! Canonicalisation (RFC 6376, section 3.4) of the message's wire form: the header fields, and
//! the body incrementally, a chunk at a time, in constant memory.
//!
//! The input is always the output of smtp-proto's `LineNormalizer` (the bytes the clients send
//! before dot-stuffing): every line ends in CRLF, a CR is never found without its LF (though the
//! two may arrive in different chunks). The body canonicalisers rely on that.

use alloc::vec::Vec;

use sha2::{Digest as _, Sha256};

/// A canonicalisation algorithm (`c=`, one for the header and one for the body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Canonicalization {
    /// `simple`: the bytes as they are (only trailing empty lines of the body are ignored).
    /// Breaks on any change in transit, even of whitespace.
    Simple,
    /// `relaxed`: header names in lower case, folding and runs of whitespace reduced to one
    /// space, whitespace at ends of lines ignored. Survives most relays' rewriting.
    #[default]
    Relaxed,
}

impl Canonicalization {
    /// The name used in the `c=` tag.
    pub fn as_str(self) -> &'static str {
        match self {
            Canonicalization::Simple => "simple",
            Canonicalization::Relaxed => "relaxed",
        }
    }
}

/// CRLFs to hash a run of held-back empty lines from, a block at a time.
const CRLFS: &[u8; 64] = b"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n";

/// The body hash in progress: canonicalises normalised body bytes as they come and hashes them.
///
/// Memory is constant: a run of empty lines is held back as a count (RFC 6376 ignores empty
/// lines at the end of the body, and only the next non-empty line shows that a run was not at
/// the end), a run of whitespace (relaxed) as one flag.
#[derive(Clone)]
pub(crate) struct BodyCanonicalizer {
    kind: Canonicalization,
    hash: Sha256,
    /// Some byte of the current line has been hashed (simple) or is content that is not
    /// whitespace (relaxed).
    line_has_content: bool,
    /// Empty lines seen and not yet hashed.
    pending_empty: u64,
    /// Relaxed: whitespace seen after content on this line and not yet written as one space.
    pending_space: bool,
    /// Anything has been hashed.
    hashed_any: bool,
}

impl BodyCanonicalizer {
    pub(crate) fn new(kind: Canonicalization) -> BodyCanonicalizer {
        BodyCanonicalizer {
            kind,
            hash: Sha256::new(),
            line_has_content: false,
            pending_empty: 0,
            pending_space: false,
            hashed_any: false,
        }
    }

    fn emit(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.hash.update(bytes);
            self.hashed_any = true;
        }
    }

    /// Hash the empty lines held back: a non-empty line follows them.
    fn flush_empty_lines(&mut self) {
        while self.pending_empty > 0 {
            let n = usize::try_from(self.pending_empty.min(32)).unwrap_or(32);
            self.hash.update(CRLFS.get(..2 * n).unwrap_or(CRLFS));
            self.hashed_any = true;
            self.pending_empty -= n as u64;
        }
    }

    /// Take the next normalised bytes.
    pub(crate) fn update(&mut self, data: &[u8]) {
        match self.kind {
            Canonicalization::Simple => self.update_simple(data),
            Canonicalization::Relaxed => self.update_relaxed(data),
        }
    }

    fn update_simple(&mut self, data: &[u8]) {
        // `run` starts the bytes of the current line not yet hashed.
        let mut run: Option<usize> = None;
        for (i, &b) in data.iter().enumerate() {
            if self.line_has_content {
                // The rest of a line that has content: hashed as it is, CRLF included (its
                // first bytes may have been hashed with an earlier chunk).
                let start = *run.get_or_insert(i);
                if b == b'\n' {
                    self.line_has_content = false;
                    run = None;
                    self.emit(data.get(start..=i).unwrap_or_default());
                }
                continue;
            }
            match b {
                // A CR at the start of a line is an empty line (its LF follows, maybe in the
                // next chunk): held back.
                b'\r' => self.pending_empty += 1,
                // The LF of that empty line.
                b'\n' => {}
                _ => {
                    self.flush_empty_lines();
                    self.line_has_content = true;
                    run = Some(i);
                }
            }
        }
        if let Some(start) = run {
            self.emit(data.get(start..).unwrap_or_default());
        }
    }

    fn update_relaxed(&mut self, data: &[u8]) {
        let mut run: Option<usize> = None;
        for (i, &b) in data.iter().enumerate() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => {
                    if let Some(start) = run.take() {
                        self.emit(data.get(start..i).unwrap_or_default());
                    }
                    match b {
                        // Whitespace at the end of a line is dropped, elsewhere it becomes one
                        // space: held until content follows it.
                        b' ' | b'\t' => self.pending_space = true,
                        b'\n' => {
                            if self.line_has_content {
                                self.emit(b"\r\n");
                            } else {
                                self.pending_empty += 1;
                            }
                            self.line_has_content = false;
                            self.pending_space = false;
                        }
                        // The CR of a CRLF: the LF ends the line.
                        _ => {}
                    }
                }
                _ => {
                    if run.is_none() {
                        if !self.line_has_content {
                            self.flush_empty_lines();
                            self.line_has_content = true;
                        }
                        if self.pending_space {
                            self.emit(b" ");
                            self.pending_space = false;
                        }
                        run = Some(i);
                    }
                }
            }
        }
        if let Some(start) = run {
            self.emit(data.get(start..).unwrap_or_default());
        }
    }

    /// The body hash (`bh=`). Empty lines held back are dropped; a body with no line at all
    /// is one CRLF under `simple` and nothing under `relaxed` (RFC 6376, sections 3.4.3 and
    /// 3.4.4).
    pub(crate) fn finish(mut self) -> [u8; 32] {
        // The normaliser closes the last line, so a line in progress only remains if the input
        // was not normalised; close it as the wire would.
        if self.line_has_content {
            self.emit(b"\r\n");
        }
        if self.kind == Canonicalization::Simple && !self.hashed_any {
            self.hash.update(b"\r\n");
        }
        self.hash.finalize().into()
    }
}

/// One header field of the normalised header section: its name (as written, without the
/// whitespace before the colon) and the whole field, CRLF included.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    pub(crate) name: &'a [u8],
    pub(crate) raw: &'a [u8],
}

/// Split a normalised header section (CRLF line ends; an empty line ends it, if present) into
/// its fields.
pub(crate) fn parse_fields(headers: &[u8]) -> Result<Vec<Field<'_>>, crate::Error> {
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut pos = 0usize;
    let mut line_no = 0usize;
    while pos < headers.len() {
        line_no += 1;
        let rest = headers.get(pos..).unwrap_or_default();
        let len = memchr_crlf(rest).map_or(rest.len(), |i| i + 2);
        let line = rest.get(..len).unwrap_or_default();
        if line == b"\r\n" {
            // The end of the header section.
            break;
        }
        match line.first() {
            Some(b' ' | b'\t') => {
                // A continuation: extend the previous field.
                let Some(last) = fields.last_mut() else {
                    return Err(crate::Error::MalformedHeader { line: line_no });
                };
                let start = pos.saturating_sub(last.raw.len());
                last.raw = headers.get(start..pos + len).unwrap_or_default();
            }
            _ => {
                let colon = line
                    .iter()
                    .position(|&b| b == b':')
                    .ok_or(crate::Error::MalformedHeader { line: line_no })?;
                let name = trim_end_wsp(line.get(..colon).unwrap_or_default());
                if name.is_empty() || name.iter().any(|&b| !(33..=126).contains(&b)) {
                    return Err(crate::Error::MalformedHeader { line: line_no });
                }
                fields.push(Field { name, raw: line });
            }
        }
        pos += len;
    }
    Ok(fields)
}

fn memchr_crlf(s: &[u8]) -> Option<usize> {
    let mut from = 0usize;
    while let Some(i) = s
        .get(from..)
        .and_then(|t| t.iter().position(|&b| b == b'\r'))
    {
        let at = from + i;
        if s.get(at + 1) == Some(&b'\n') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn trim_end_wsp(s: &[u8]) -> &[u8] {
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    s.get(..end).unwrap_or_default()
}

/// Append the canonical form of the header field `raw` (with its CRLF, if it has one) to
/// `out`; the CRLF is appended only when `crlf` (the DKIM-Signature field itself is hashed
/// without it).
pub(crate) fn canonical_header(kind: Canonicalization, raw: &[u8], crlf: bool, out: &mut Vec<u8>) {
    match kind {
        Canonicalization::Simple => {
            let body = raw.strip_suffix(b"\r\n").unwrap_or(raw);
            out.extend_from_slice(body);
        }
        Canonicalization::Relaxed => {
            let colon = raw.iter().position(|&b| b == b':').unwrap_or(raw.len());
            let name = trim_end_wsp(raw.get(..colon).unwrap_or_default());
            out.extend(name.iter().map(u8::to_ascii_lowercase));
            out.push(b':');
            // Unfold (drop every CR and LF: the input has them only as CRLF), reduce runs of
            // whitespace to one space, drop it at both ends of the value.
            let mut space = false;
            let mut started = false;
            for &b in raw.get(colon + 1..).unwrap_or_default() {
                match b {
                    b'\r' | b'\n' => {}
                    b' ' | b'\t' => space = true,
                    _ => {
                        if space && started {
                            out.push(b' ');
                        }
                        space = false;
                        started = true;
                        out.push(b);
                    }
                }
            }
        }
    }
    if crlf {
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(kind: Canonicalization, chunks: &[&[u8]]) -> [u8; 32] {
        let mut c = BodyCanonicalizer::new(kind);
        for chunk in chunks {
            c.update(chunk);
        }
        c.finish()
    }

    fn sha(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    /// The examples of RFC 6376, section 3.4.5, and the empty bodies.
    #[test]
    fn rfc_examples_and_empty_bodies() {
        let body = b" C \r\nD \t E\r\n\r\n\r\n";
        assert_eq!(
            hash(Canonicalization::Relaxed, &[body]),
            sha(b" C\r\nD E\r\n")
        );
        assert_eq!(
            hash(Canonicalization::Simple, &[body]),
            sha(b" C \r\nD \t E\r\n")
        );
        assert_eq!(hash(Canonicalization::Simple, &[]), sha(b"\r\n"));
        assert_eq!(hash(Canonicalization::Simple, &[b"\r\n\r\n"]), sha(b"\r\n"));
        assert_eq!(hash(Canonicalization::Relaxed, &[]), sha(b""));
        assert_eq!(hash(Canonicalization::Relaxed, &[b" \r\n\t\r\n"]), sha(b""));
        // Empty lines inside the body are kept.
        assert_eq!(
            hash(Canonicalization::Relaxed, &[b"a\r\n\r\n \r\nb\r\n\r\n"]),
            sha(b"a\r\n\r\n\r\nb\r\n")
        );
        let mut out = Vec::new();
        canonical_header(
            Canonicalization::Relaxed,
            b"SubJect :  A \r\n\t B  \r\n",
            true,
            &mut out,
        );
        assert_eq!(out, b"subject:A B\r\n");
    }

    proptest::proptest! {
        /// The hash does not depend on how the body was split into chunks.
        #[test]
        fn split_invariance(
            lines in proptest::collection::vec("[ \ta.\u{e9}]{0,6}", 0..12),
            cuts in proptest::collection::vec(0usize..200, 0..6),
        ) {
            let body: Vec<u8> = lines.iter().flat_map(|l| [l.as_bytes(), b"\r\n"].concat()).collect();
            let chunks = smtp_testkit::cuts::split_at_cuts(&body, &cuts);
            for kind in [Canonicalization::Simple, Canonicalization::Relaxed] {
                proptest::prop_assert_eq!(hash(kind, &chunks), hash(kind, &[&body]));
            }
        }
    }
}
