//! The signer: which headers, which canonicalisation, the expiry; signing a message in memory
//! or streamed (a [`BodyHasher`] or a [`MessageHasher`] fed chunk by chunk).

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::BytesMut;
use sha2::{Digest as _, Sha256};
use smtp_proto::body::LineNormalizer;

use crate::canon::{BodyCanonicalizer, Canonicalization, canonical_header, parse_fields};
use crate::error::Error;
use crate::key::DkimKey;

/// The header fields signed by default, each only when the message has it (`From` is always
/// required): the originator and recipient fields, the subject and date, the thread fields, the
/// MIME structure, and the one-click unsubscribe fields (RFC 8058 requires them to be signed).
pub const DEFAULT_SIGNED_HEADERS: &[&str] = &[
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "list-unsubscribe",
    "list-unsubscribe-post",
];

/// The largest header section a [`MessageHasher`] holds while it looks for the body (1 MiB).
pub const MAX_HEADER_BYTES: usize = 1 << 20;

/// The width lines of the `DKIM-Signature` field are folded to (RFC 5322's recommended limit).
const LINE_WIDTH: usize = 78;

/// Normalised bytes are produced this much input at a time, so a huge chunk does not double
/// in memory.
const PIECE: usize = 64 * 1024;

/// Signs messages for one domain and selector with one key.
///
/// Built once (the key is checked then), used for any number of messages; `Clone` and `Sync`,
/// so a pool can share one. What is signed is the message as the clients put it on the wire:
/// every bare CR and bare LF made a CRLF, an unterminated last line closed (smtp-proto's
/// `LineNormalizer`), before dot-stuffing (which the receiver undoes). The signature therefore
/// verifies on what the server receives, whatever the line endings of the input.
#[derive(Debug, Clone)]
pub struct DkimSigner {
    key: DkimKey,
    domain: String,
    selector: String,
    headers: Vec<String>,
    header_canon: Canonicalization,
    body_canon: Canonicalization,
    expire_after: Option<u64>,
    oversign: bool,
}

/// A `DKIM-Signature` header field, folded at 78 columns where its grammar allows, ending in
/// CRLF: put it before the message's first header field.
#[derive(Clone, PartialEq, Eq)]
pub struct DkimHeader(String);

impl DkimHeader {
    /// The whole field, `DKIM-Signature: ...\r\n`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The whole field as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The whole field, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for DkimHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DkimHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DkimHeader").field(&self.0).finish()
    }
}

/// A domain or selector: labels of letters, digits and inner hyphens, joined by dots.
fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= 63
                && bytes
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
                && bytes.first() != Some(&b'-')
                && bytes.last() != Some(&b'-')
        })
}

impl DkimSigner {
    /// A signer for `domain` (`d=`) and `selector` (`s=`) with `key`: `relaxed/relaxed`, the
    /// [`DEFAULT_SIGNED_HEADERS`], no expiry, no oversigning.
    pub fn new(key: DkimKey, domain: &str, selector: &str) -> Result<DkimSigner, Error> {
        if !is_dns_name(domain) {
            return Err(Error::InvalidDomain(domain.to_owned()));
        }
        if !is_dns_name(selector) {
            return Err(Error::InvalidSelector(selector.to_owned()));
        }
        Ok(DkimSigner {
            key,
            domain: domain.to_ascii_lowercase(),
            selector: selector.to_owned(),
            headers: DEFAULT_SIGNED_HEADERS
                .iter()
                .map(|&h| h.to_owned())
                .collect(),
            header_canon: Canonicalization::Relaxed,
            body_canon: Canonicalization::Relaxed,
            expire_after: None,
            oversign: false,
        })
    }

    /// Sign these header fields instead of the defaults (each only when the message has it; the
    /// list must include `From`). Names are matched without regard to case.
    pub fn with_headers<I, S>(mut self, names: I) -> Result<DkimSigner, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut headers: Vec<String> = Vec::new();
        for name in names {
            let name = name.as_ref();
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| (33..=126).contains(&b) && b != b':' && b != b';');
            if !valid {
                return Err(Error::InvalidHeaderName(name.to_owned()));
            }
            let name = name.to_ascii_lowercase();
            if !headers.contains(&name) {
                headers.push(name);
            }
        }
        if !headers.iter().any(|h| h == "from") {
            return Err(Error::FromNotSigned);
        }
        self.headers = headers;
        Ok(self)
    }

    /// The canonicalisation of the header and of the body (`c=header/body`); the default is
    /// `relaxed/relaxed`.
    pub fn with_canonicalization(
        mut self,
        header: Canonicalization,
        body: Canonicalization,
    ) -> DkimSigner {
        self.header_canon = header;
        self.body_canon = body;
        self
    }

    /// Give each signature an expiry (`x=`) this many seconds after its signing time (`t=`).
    pub fn with_expiry(mut self, seconds: u64) -> Result<DkimSigner, Error> {
        if seconds == 0 {
            return Err(Error::ZeroExpiry);
        }
        self.expire_after = Some(seconds);
        Ok(self)
    }

    /// Oversign: name each signed header field once more in `h=` than the message has it, so
    /// that a field of that name added in transit (a second `From`, say) breaks the signature.
    pub fn with_oversigning(mut self, oversign: bool) -> DkimSigner {
        self.oversign = oversign;
        self
    }

    /// The key.
    pub fn key(&self) -> &DkimKey {
        &self.key
    }

    /// The signing domain (`d=`), in lower case.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The selector (`s=`).
    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// Sign `message` (a whole RFC 5322 message, any line endings) at `now` (seconds since
    /// 1970, UTC: the `t=` tag). The result goes before the message's first line.
    pub fn sign(&self, message: &[u8], now: u64) -> Result<DkimHeader, Error> {
        let mut normalizer = LineNormalizer::new();
        let mut wire = BytesMut::with_capacity(message.len() + message.len() / 32 + 2);
        normalizer.encode(message, &mut wire);
        normalizer.finish(&mut wire);
        let (headers, body) = split_message(&wire);
        let mut canon = BodyCanonicalizer::new(self.body_canon);
        canon.update(body);
        self.sign_parts(headers, canon.finish(), now)
    }

    /// The message with its signature in front: [`DkimSigner::sign`]'s field, then `message`
    /// unchanged (the client normalises its line endings when it sends it, as signed).
    pub fn prepend(&self, message: &[u8], now: u64) -> Result<Vec<u8>, Error> {
        let header = self.sign(message, now)?;
        let mut out = Vec::with_capacity(header.as_bytes().len() + message.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(message);
        Ok(out)
    }

    /// [`DkimSigner::sign`] at the time of the system clock.
    #[cfg(feature = "std")]
    #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
    pub fn sign_now(&self, message: &[u8]) -> Result<DkimHeader, Error> {
        self.sign(message, unix_now()?)
    }

    /// [`DkimSigner::prepend`] at the time of the system clock.
    #[cfg(feature = "std")]
    #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
    pub fn prepend_now(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        self.prepend(message, unix_now()?)
    }

    /// Hash a body given apart from its header section, a chunk at a time, in constant
    /// memory; then sign it with [`BodyHasher::finish_with_headers`].
    pub fn body_hasher(&self) -> BodyHasher<'_> {
        BodyHasher {
            signer: self,
            normalizer: LineNormalizer::new(),
            scratch: BytesMut::new(),
            canon: BodyCanonicalizer::new(self.body_canon),
        }
    }

    /// Hash a whole message (header section, empty line, body) a chunk at a time: the header
    /// section is kept (up to [`MAX_HEADER_BYTES`]), the body only hashed. For a message that
    /// is read twice: once through this to sign it, once to send it after the signature.
    pub fn message_hasher(&self) -> MessageHasher<'_> {
        MessageHasher {
            signer: self,
            normalizer: LineNormalizer::new(),
            scratch: BytesMut::new(),
            headers: Vec::new(),
            in_body: false,
            canon: BodyCanonicalizer::new(self.body_canon),
            failed: None,
        }
    }

    /// Sign the normalised header section `headers` with the body hash `bh`.
    fn sign_parts(&self, headers: &[u8], bh: [u8; 32], now: u64) -> Result<DkimHeader, Error> {
        let fields = parse_fields(headers)?;
        if !fields.iter().any(|f| f.name.eq_ignore_ascii_case(b"from")) {
            return Err(Error::MissingFrom);
        }
        // Each name once per field of that name, the fields taken from the bottom up (RFC 6376,
        // section 5.4.2); with oversigning, once more.
        let mut signed_names: Vec<&str> = Vec::new();
        let mut data: Vec<u8> = Vec::with_capacity(headers.len() + 512);
        for name in &self.headers {
            let mut present = false;
            for field in fields
                .iter()
                .rev()
                .filter(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
            {
                signed_names.push(name);
                canonical_header(self.header_canon, field.raw, true, &mut data);
                present = true;
            }
            if present && self.oversign {
                signed_names.push(name);
            }
        }

        let mut field = Folder::new("DKIM-Signature:");
        field.word("v=1;", true);
        field.word(&format!("a={};", self.key.algorithm()), true);
        field.word(
            &format!(
                "c={}/{};",
                self.header_canon.as_str(),
                self.body_canon.as_str()
            ),
            true,
        );
        field.word(&format!("d={};", self.domain), true);
        field.word(&format!("s={};", self.selector), true);
        field.word(&format!("t={now};"), true);
        if let Some(after) = self.expire_after {
            field.word(&format!("x={};", now.saturating_add(after)), true);
        }
        let last = signed_names.len().saturating_sub(1);
        for (i, name) in signed_names.iter().enumerate() {
            match (i, i == last) {
                (0, true) => field.word(&format!("h={name};"), true),
                (0, false) => field.word(&format!("h={name}:"), true),
                (_, true) => field.word(&format!("{name};"), false),
                (_, false) => field.word(&format!("{name}:"), false),
            }
        }
        field.word("bh=", true);
        field.split(&STANDARD.encode(bh));
        field.split(";");
        field.word("b=", true);
        // What is signed: the chosen fields, then this field with an empty b= and no CRLF.
        canonical_header(self.header_canon, field.text.as_bytes(), false, &mut data);
        let digest: [u8; 32] = Sha256::digest(&data).into();
        let signature = self.key.sign_digest(&digest)?;
        field.split(&STANDARD.encode(signature));
        field.text.push_str("\r\n");
        Ok(DkimHeader(field.text))
    }
}

/// The seconds since 1970 of the system clock.
#[cfg(feature = "std")]
fn unix_now() -> Result<u64, Error> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| Error::Clock)
}

/// Split a normalised message into its header section (its fields, without the empty line) and
/// its body.
fn split_message(wire: &[u8]) -> (&[u8], &[u8]) {
    if let Some(body) = wire.strip_prefix(b"\r\n") {
        return (&[], body);
    }
    match find(wire, b"\r\n\r\n") {
        Some(i) => (
            wire.get(..i + 2).unwrap_or_default(),
            wire.get(i + 4..).unwrap_or_default(),
        ),
        None => (wire, &[]),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Builds the folded `DKIM-Signature` field.
struct Folder {
    text: String,
    /// Characters on the current line so far.
    column: usize,
}

impl Folder {
    fn new(name: &str) -> Folder {
        Folder {
            text: name.to_owned(),
            column: name.len(),
        }
    }

    /// Add `word` (preceded by a space when `space`), on a new line when it does not fit.
    fn word(&mut self, word: &str, space: bool) {
        let need = word.len() + usize::from(space);
        if self.column + need > LINE_WIDTH && self.column > 1 {
            self.text.push_str("\r\n ");
            self.column = 1;
        } else if space {
            self.text.push(' ');
            self.column += 1;
        }
        self.text.push_str(word);
        self.column += word.len();
    }

    /// Add `value` (ASCII, where folding whitespace may go between any two characters: base64),
    /// filling lines to the width.
    fn split(&mut self, mut value: &str) {
        while !value.is_empty() {
            let room = LINE_WIDTH.saturating_sub(self.column);
            if room == 0 {
                self.text.push_str("\r\n ");
                self.column = 1;
                continue;
            }
            let (now, rest) = value.split_at(room.min(value.len()));
            self.text.push_str(now);
            self.column += now.len();
            value = rest;
        }
    }
}

/// Hashes a body given apart from its header section, a chunk at a time. From
/// [`DkimSigner::body_hasher`].
pub struct BodyHasher<'s> {
    signer: &'s DkimSigner,
    normalizer: LineNormalizer,
    scratch: BytesMut,
    canon: BodyCanonicalizer,
}

impl fmt::Debug for BodyHasher<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyHasher").finish_non_exhaustive()
    }
}

impl BodyHasher<'_> {
    /// Take the next bytes of the body (any line endings, as they will be given to the client).
    pub fn update(&mut self, chunk: &[u8]) {
        for piece in chunk.chunks(PIECE) {
            self.scratch.clear();
            self.normalizer.encode(piece, &mut self.scratch);
            self.canon.update(&self.scratch);
        }
    }

    /// Sign: `headers` is the header section sent before this body (its fields, with or
    /// without the empty line that ends it), `now` the signing time in seconds since 1970.
    ///
    /// The header section must end with a line end, as it does in the message, so that the
    /// body starts on a line of its own.
    pub fn finish_with_headers(mut self, headers: &[u8], now: u64) -> Result<DkimHeader, Error> {
        self.scratch.clear();
        self.normalizer.finish(&mut self.scratch);
        self.canon.update(&self.scratch);
        let bh = self.canon.finish();
        let mut normalizer = LineNormalizer::new();
        let mut wire = BytesMut::with_capacity(headers.len() + 16);
        normalizer.encode(headers, &mut wire);
        normalizer.finish(&mut wire);
        let (fields, _) = split_message(&wire);
        self.signer.sign_parts(fields, bh, now)
    }
}

/// Hashes a whole message a chunk at a time, keeping only its header section. From
/// [`DkimSigner::message_hasher`].
pub struct MessageHasher<'s> {
    signer: &'s DkimSigner,
    normalizer: LineNormalizer,
    scratch: BytesMut,
    /// The normalised header section (so far, until `in_body`).
    headers: Vec<u8>,
    /// The empty line after the header section has been seen.
    in_body: bool,
    canon: BodyCanonicalizer,
    /// A header section over the limit: every later call fails with it.
    failed: Option<Error>,
}

impl fmt::Debug for MessageHasher<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageHasher")
            .field("in_body", &self.in_body)
            .finish_non_exhaustive()
    }
}

impl MessageHasher<'_> {
    /// Take the next bytes of the message (any line endings, as they will be given to the
    /// client). Fails only when the header section grows over [`MAX_HEADER_BYTES`].
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        for piece in chunk.chunks(PIECE) {
            self.scratch.clear();
            self.normalizer.encode(piece, &mut self.scratch);
            self.route()?;
        }
        Ok(())
    }

    /// Send what the normaliser produced to the header section or the body hash.
    fn route(&mut self) -> Result<(), Error> {
        if self.in_body {
            self.canon.update(&self.scratch);
            return Ok(());
        }
        let headers = &mut self.headers;
        let scan_from = headers.len().saturating_sub(3);
        headers.extend_from_slice(&self.scratch);
        let end = if headers.starts_with(b"\r\n") {
            // No header field at all.
            Some((0, 2))
        } else {
            headers
                .get(scan_from..)
                .and_then(|tail| find(tail, b"\r\n\r\n"))
                .map(|i| (scan_from + i + 2, scan_from + i + 4))
        };
        match end {
            Some((fields_end, body_start)) => {
                let body = headers.split_off(body_start.min(headers.len()));
                headers.truncate(fields_end);
                self.in_body = true;
                self.canon.update(&body);
                Ok(())
            }
            None if headers.len() > MAX_HEADER_BYTES => {
                let e = Error::HeadersTooLarge {
                    limit: MAX_HEADER_BYTES,
                };
                self.failed = Some(e.clone());
                Err(e)
            }
            None => Ok(()),
        }
    }

    /// Sign the message hashed so far at `now` (seconds since 1970).
    pub fn finish(mut self, now: u64) -> Result<DkimHeader, Error> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.scratch.clear();
        self.normalizer.finish(&mut self.scratch);
        self.route()?;
        // Without an empty line the whole message is its header section, the body empty.
        self.signer
            .sign_parts(&self.headers, self.canon.finish(), now)
    }
}
