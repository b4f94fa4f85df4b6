//! EHLO capabilities: [`Capabilities`] parsed from an EHLO (or LHLO) reply.
//!
//! (Helper A implements the parsing and tests; the public signatures here are fixed.)

use crate::reply::Reply;
use crate::sasl::AuthMechanism;

/// A service extension the engine knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Extension {
    /// PIPELINING (RFC 2920).
    Pipelining,
    /// SIZE (RFC 1870).
    Size,
    /// 8BITMIME (RFC 6152).
    EightBitMime,
    /// SMTPUTF8 (RFC 6531).
    SmtpUtf8,
    /// CHUNKING (RFC 3030).
    Chunking,
    /// BINARYMIME (RFC 3030).
    BinaryMime,
    /// DSN (RFC 3461).
    Dsn,
    /// ENHANCEDSTATUSCODES (RFC 2034).
    EnhancedStatusCodes,
    /// STARTTLS (RFC 3207).
    StartTls,
    /// AUTH (RFC 4954).
    Auth,
    /// REQUIRETLS (RFC 8689).
    RequireTls,
}

impl Extension {
    /// The EHLO keyword, e.g. `"PIPELINING"`.
    pub const fn keyword(self) -> &'static str {
        match self {
            Extension::Pipelining => "PIPELINING",
            Extension::Size => "SIZE",
            Extension::EightBitMime => "8BITMIME",
            Extension::SmtpUtf8 => "SMTPUTF8",
            Extension::Chunking => "CHUNKING",
            Extension::BinaryMime => "BINARYMIME",
            Extension::Dsn => "DSN",
            Extension::EnhancedStatusCodes => "ENHANCEDSTATUSCODES",
            Extension::StartTls => "STARTTLS",
            Extension::Auth => "AUTH",
            Extension::RequireTls => "REQUIRETLS",
        }
    }
}

/// What the server advertised in its EHLO reply.
///
/// Keywords are matched case-insensitively. Unknown keywords are kept ([`Self::keyword_params`]).
/// A reply to HELO gives [`Capabilities::default`] (no extensions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    // helper A: fields. Must keep: the raw lines after the first, the parsed known extensions,
    // the SIZE value, the AUTH mechanisms (known ones typed, all names kept), unknown keywords.
    raw: Vec<String>,
}

impl Capabilities {
    /// Parse an EHLO / LHLO reply. The first line (the server's domain and greeting) is skipped;
    /// every other line is one keyword with optional parameters. Never fails: lines it cannot
    /// understand are kept as unknown keywords.
    pub fn from_ehlo(reply: &Reply) -> Capabilities {
        let _ = reply;
        todo!()
    }

    /// The capability lines as the server sent them, without the first (greeting) line.
    pub fn raw_lines(&self) -> &[String] {
        &self.raw
    }

    /// True when the extension was advertised. (`AUTH` counts when any mechanism is listed,
    /// including through the old `AUTH=` form.)
    pub fn has(&self, ext: Extension) -> bool {
        let _ = ext;
        todo!()
    }

    /// The SIZE limit: `Some(n)` when `SIZE n` with n > 0 was advertised; `None` when SIZE was not
    /// advertised, had no value, or was `0` (no fixed limit).
    pub fn size_limit(&self) -> Option<u64> {
        todo!()
    }

    /// The known AUTH mechanisms the server listed (from `AUTH` and `AUTH=` lines), deduplicated,
    /// in the order first seen.
    pub fn auth_mechanisms(&self) -> &[AuthMechanism] {
        todo!()
    }

    /// True when `mechanism` was listed.
    pub fn supports_auth(&self, mechanism: AuthMechanism) -> bool {
        self.auth_mechanisms().contains(&mechanism)
    }

    /// Every AUTH mechanism name listed, known or not, upper-cased, deduplicated.
    pub fn auth_mechanism_names(&self) -> &[String] {
        todo!()
    }

    /// The parameters of any advertised keyword (known or unknown), e.g. `keyword_params("SIZE")`
    /// gives `Some("10240000")`; `Some("")` for a keyword without parameters.
    pub fn keyword_params(&self, keyword: &str) -> Option<&str> {
        let _ = keyword;
        todo!()
    }
}
