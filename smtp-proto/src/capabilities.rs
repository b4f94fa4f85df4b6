//! EHLO capabilities: [`Capabilities`] parsed from an EHLO (or LHLO) reply.
//!
//! Each line after the first is one keyword (matched case-insensitively) and optional parameters
//! separated by spaces, e.g. `SIZE 10240000` or `AUTH PLAIN LOGIN`. The old form `AUTH=PLAIN LOGIN`
//! (sent by servers for clients written before RFC 2554 was final) is read as `AUTH PLAIN LOGIN`.
//!
//! Parsing is linear in the size of the reply, whatever the server sends: AUTH mechanism names are
//! de-duplicated against a list that never holds more than [`MAX_UNKNOWN_AUTH_NAMES`] names the
//! engine does not implement (plus the few it does), so a hostile EHLO listing thousands of
//! distinct names costs no more per byte than an ordinary one, and keeps bounded memory.

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use crate::mechanism::AuthMechanism;
use crate::reply::Reply;

/// The most AUTH mechanism names that the engine does not implement kept in
/// [`Capabilities::auth_mechanism_names`]; later unknown names are dropped. Known mechanisms
/// ([`AuthMechanism`]) are always kept, wherever they appear.
///
/// Real servers list a handful of mechanisms. The bound keeps the de-duplication of each name a
/// bounded amount of work, so an EHLO reply with thousands of distinct names parses in linear time
/// and memory.
pub const MAX_UNKNOWN_AUTH_NAMES: usize = 64;

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

    /// Every known extension.
    const ALL: [Extension; 11] = [
        Extension::Pipelining,
        Extension::Size,
        Extension::EightBitMime,
        Extension::SmtpUtf8,
        Extension::Chunking,
        Extension::BinaryMime,
        Extension::Dsn,
        Extension::EnhancedStatusCodes,
        Extension::StartTls,
        Extension::Auth,
        Extension::RequireTls,
    ];

    /// The extension with this EHLO keyword (case-insensitive).
    fn from_keyword(keyword: &str) -> Option<Extension> {
        Extension::ALL
            .into_iter()
            .find(|e| e.keyword().eq_ignore_ascii_case(keyword))
    }

    /// This extension's bit in [`Capabilities`]' set.
    const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// What the server advertised in its EHLO reply.
///
/// Keywords are matched case-insensitively. Unknown keywords are kept ([`Self::keyword_params`]).
/// A reply to HELO gives [`Capabilities::default`] (no extensions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The lines after the first, as sent.
    raw: Vec<String>,
    /// One bit per known [`Extension`] advertised.
    known: u16,
    /// `SIZE n` with n > 0.
    size: Option<u64>,
    /// Known AUTH mechanisms, deduplicated, in order.
    auth: Vec<AuthMechanism>,
    /// Every AUTH mechanism name, upper-cased, deduplicated, in order.
    auth_names: Vec<String>,
    /// Every keyword (upper-cased) with its parameters (trimmed), in order.
    keywords: Vec<(String, String)>,
}

impl Capabilities {
    /// Parse an EHLO / LHLO reply. The first line (the server's domain and greeting) is skipped;
    /// every other line is one keyword with optional parameters. Never fails: lines it cannot
    /// understand are kept as unknown keywords.
    ///
    /// Empty lines are ignored (but kept in [`raw_lines`](Self::raw_lines)). When a keyword is
    /// advertised twice, [`keyword_params`](Self::keyword_params) gives the first; AUTH mechanisms
    /// from every `AUTH` and `AUTH=` line are merged.
    pub fn from_ehlo(reply: &Reply) -> Capabilities {
        let mut caps = Capabilities::default();
        for line in reply.lines().skip(1) {
            caps.raw.push(line.to_owned());
            caps.add_line(line);
        }
        caps
    }

    fn add_line(&mut self, line: &str) {
        let line = line.trim_matches(|c: char| c.is_ascii_whitespace());
        if line.is_empty() {
            return;
        }
        let is_space = |c: char| c.is_ascii_whitespace();
        let (keyword, params) = match line.get(..5) {
            // The pre-RFC 2554 form: `AUTH=LOGIN PLAIN`.
            Some(head) if head.eq_ignore_ascii_case("AUTH=") => {
                (&line[..4], line[5..].trim_start_matches(is_space))
            }
            _ => match line.find(is_space) {
                Some(at) => (&line[..at], line[at..].trim_start_matches(is_space)),
                None => (line, ""),
            },
        };
        self.add_keyword(keyword, params);
    }

    fn add_keyword(&mut self, keyword: &str, params: &str) {
        match Extension::from_keyword(keyword) {
            Some(Extension::Auth) => {
                for name in params.split_ascii_whitespace() {
                    self.add_auth_name(name);
                }
                if !self.auth_names.is_empty() {
                    self.known |= Extension::Auth.bit();
                }
            }
            Some(Extension::Size) => {
                self.known |= Extension::Size.bit();
                if self.size.is_none() {
                    self.size = params
                        .split_ascii_whitespace()
                        .next()
                        .and_then(|n| n.parse::<u64>().ok())
                        .filter(|&n| n > 0);
                }
            }
            Some(ext) => self.known |= ext.bit(),
            None => {}
        }
        self.keywords
            .push((keyword.to_ascii_uppercase(), params.to_owned()));
    }

    /// Record one AUTH mechanism name, unless already listed (case-insensitively) or past
    /// [`MAX_UNKNOWN_AUTH_NAMES`] unknown ones. A known mechanism is looked up among the few known
    /// ones; an unknown name among at most [`MAX_UNKNOWN_AUTH_NAMES`] kept names, and not at all
    /// once that many are kept: each name is a bounded amount of work, so the whole parse stays
    /// linear. The name is upper-cased (allocated) only when kept.
    fn add_auth_name(&mut self, name: &str) {
        match AuthMechanism::from_name(name) {
            Some(mechanism) if self.auth.contains(&mechanism) => {}
            Some(mechanism) => {
                self.auth.push(mechanism);
                self.auth_names.push(name.to_ascii_uppercase());
            }
            None => {
                // Every kept name that is not a known mechanism is an unknown one.
                let unknown = self.auth_names.len() - self.auth.len();
                if unknown < MAX_UNKNOWN_AUTH_NAMES
                    && !self.auth_names.iter().any(|n| n.eq_ignore_ascii_case(name))
                {
                    self.auth_names.push(name.to_ascii_uppercase());
                }
            }
        }
    }

    /// The capability lines as the server sent them, without the first (greeting) line.
    pub fn raw_lines(&self) -> &[String] {
        &self.raw
    }

    /// True when the extension was advertised. (`AUTH` counts when any mechanism is listed,
    /// including through the old `AUTH=` form.)
    pub fn has(&self, ext: Extension) -> bool {
        self.known & ext.bit() != 0
    }

    /// The SIZE limit: `Some(n)` when `SIZE n` with n > 0 was advertised; `None` when SIZE was not
    /// advertised, had no value, or was `0` (no fixed limit).
    pub fn size_limit(&self) -> Option<u64> {
        self.size
    }

    /// The known AUTH mechanisms the server listed (from `AUTH` and `AUTH=` lines), deduplicated,
    /// in the order first seen.
    pub fn auth_mechanisms(&self) -> &[AuthMechanism] {
        &self.auth
    }

    /// True when `mechanism` was listed.
    pub fn supports_auth(&self, mechanism: AuthMechanism) -> bool {
        self.auth_mechanisms().contains(&mechanism)
    }

    /// Every AUTH mechanism name listed, known or not, upper-cased, deduplicated, in the order first
    /// seen; of the names the engine does not implement, only the first
    /// [`MAX_UNKNOWN_AUTH_NAMES`] are kept.
    pub fn auth_mechanism_names(&self) -> &[String] {
        &self.auth_names
    }

    /// The parameters of any advertised keyword (known or unknown), e.g. `keyword_params("SIZE")`
    /// gives `Some("10240000")`; `Some("")` for a keyword without parameters.
    ///
    /// The lookup is case-insensitive; parameters are as sent, without surrounding spaces. The old
    /// `AUTH=` form is found under `"AUTH"`.
    pub fn keyword_params(&self, keyword: &str) -> Option<&str> {
        self.keywords
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(keyword))
            .map(|(_, params)| params.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::{ReplyCode, ReplyLimits, ReplyParser};

    /// Parse a reply from wire text, then its capabilities.
    fn caps(wire: &str) -> Capabilities {
        let mut parser = ReplyParser::default();
        let pushed = parser.push(wire.as_bytes()).unwrap();
        assert_eq!(pushed.consumed, wire.len());
        Capabilities::from_ehlo(&pushed.reply.unwrap())
    }

    fn names(c: &Capabilities) -> Vec<&str> {
        c.auth_mechanism_names()
            .iter()
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn postfix() {
        let c = caps(
            "250-mail.example.org\r\n\
             250-PIPELINING\r\n\
             250-SIZE 10240000\r\n\
             250-VRFY\r\n\
             250-ETRN\r\n\
             250-STARTTLS\r\n\
             250-AUTH PLAIN LOGIN\r\n\
             250-AUTH=PLAIN LOGIN\r\n\
             250-ENHANCEDSTATUSCODES\r\n\
             250-8BITMIME\r\n\
             250-DSN\r\n\
             250-SMTPUTF8\r\n\
             250 CHUNKING\r\n",
        );
        for ext in [
            Extension::Pipelining,
            Extension::Size,
            Extension::StartTls,
            Extension::Auth,
            Extension::EnhancedStatusCodes,
            Extension::EightBitMime,
            Extension::Dsn,
            Extension::SmtpUtf8,
            Extension::Chunking,
        ] {
            assert!(c.has(ext), "{ext:?}");
        }
        assert!(!c.has(Extension::BinaryMime));
        assert!(!c.has(Extension::RequireTls));
        assert_eq!(c.size_limit(), Some(10_240_000));
        assert_eq!(
            c.auth_mechanisms(),
            [AuthMechanism::Plain, AuthMechanism::Login]
        );
        assert_eq!(names(&c), ["PLAIN", "LOGIN"]);
        assert!(c.supports_auth(AuthMechanism::Login));
        assert!(!c.supports_auth(AuthMechanism::XOAuth2));
        assert_eq!(c.keyword_params("VRFY"), Some(""));
        assert_eq!(c.keyword_params("etrn"), Some(""));
        assert_eq!(c.keyword_params("size"), Some("10240000"));
        assert_eq!(c.keyword_params("AUTH"), Some("PLAIN LOGIN"));
        assert_eq!(c.keyword_params("XCLIENT"), None);
        assert_eq!(c.raw_lines().len(), 12);
        assert_eq!(c.raw_lines()[0], "PIPELINING");
        assert_eq!(c.raw_lines()[6], "AUTH=PLAIN LOGIN");
        assert_eq!(c.raw_lines()[11], "CHUNKING");
    }

    #[test]
    fn gmail_like() {
        let c = caps(
            "250-smtp.gmail.com at your service, [203.0.113.7]\r\n\
             250-SIZE 35882577\r\n\
             250-8BITMIME\r\n\
             250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH\r\n\
             250-ENHANCEDSTATUSCODES\r\n\
             250-PIPELINING\r\n\
             250-CHUNKING\r\n\
             250 SMTPUTF8\r\n",
        );
        assert_eq!(c.size_limit(), Some(35_882_577));
        assert_eq!(
            c.auth_mechanisms(),
            [
                AuthMechanism::Login,
                AuthMechanism::Plain,
                AuthMechanism::XOAuth2,
                AuthMechanism::OAuthBearer
            ]
        );
        assert_eq!(
            names(&c),
            [
                "LOGIN",
                "PLAIN",
                "XOAUTH2",
                "PLAIN-CLIENTTOKEN",
                "OAUTHBEARER",
                "XOAUTH"
            ]
        );
        assert!(c.has(Extension::Chunking) && c.has(Extension::SmtpUtf8));
        assert!(
            !c.has(Extension::StartTls),
            "STARTTLS is not offered after TLS"
        );
        assert!(!c.has(Extension::Dsn));
        // The greeting line is not a keyword.
        assert_eq!(c.keyword_params("smtp.gmail.com"), None);
        assert_eq!(c.raw_lines()[0], "SIZE 35882577");
    }

    #[test]
    fn old_auth_form_and_duplicates() {
        let c = caps("250-mx\r\n250-AUTH=LOGIN PLAIN\r\n250-auth login cram-md5\r\n250 AUTH=\r\n");
        assert!(c.has(Extension::Auth));
        assert_eq!(names(&c), ["LOGIN", "PLAIN", "CRAM-MD5"]);
        assert_eq!(
            c.auth_mechanisms(),
            [AuthMechanism::Login, AuthMechanism::Plain]
        );
        assert_eq!(c.keyword_params("AUTH"), Some("LOGIN PLAIN"));

        // Only the old form.
        let c = caps("250-mx\r\n250 AUTH=XOAUTH2\r\n");
        assert!(c.has(Extension::Auth));
        assert_eq!(c.auth_mechanisms(), [AuthMechanism::XOAuth2]);
        assert_eq!(c.keyword_params("auth"), Some("XOAUTH2"));
    }

    #[test]
    fn auth_without_mechanisms_does_not_count() {
        let c = caps("250-mx\r\n250 AUTH\r\n");
        assert!(!c.has(Extension::Auth));
        assert!(c.auth_mechanisms().is_empty());
        assert!(c.auth_mechanism_names().is_empty());
        assert_eq!(c.keyword_params("AUTH"), Some(""));
    }

    #[test]
    fn size_values() {
        let c = caps("250-mx\r\n250 SIZE 0\r\n");
        assert!(c.has(Extension::Size));
        assert_eq!(c.size_limit(), None);
        assert_eq!(c.keyword_params("SIZE"), Some("0"));

        let c = caps("250-mx\r\n250 SIZE\r\n");
        assert!(c.has(Extension::Size));
        assert_eq!(c.size_limit(), None);
        assert_eq!(c.keyword_params("SIZE"), Some(""));

        let c = caps("250-mx\r\n250 SIZE lots\r\n");
        assert!(c.has(Extension::Size));
        assert_eq!(c.size_limit(), None);

        let c = caps("250-mx\r\n250 SIZE   52428800  \r\n");
        assert_eq!(c.size_limit(), Some(52_428_800));
        assert_eq!(c.keyword_params("SIZE"), Some("52428800"));

        let c = caps("250-mx\r\n250 SIZE 18446744073709551615\r\n");
        assert_eq!(c.size_limit(), Some(u64::MAX));
        let c = caps("250-mx\r\n250 SIZE 18446744073709551616\r\n");
        assert_eq!(c.size_limit(), None);
        assert!(c.has(Extension::Size));

        let c = caps("250-mx\r\n250 PIPELINING\r\n");
        assert!(!c.has(Extension::Size));
        assert_eq!(c.size_limit(), None);
    }

    #[test]
    fn lower_case_keywords() {
        let c = caps(
            "250-mx\r\n250-pipelining\r\n250-Size 2048\r\n250-starttls\r\n250-8bitmime\r\n\
             250-requiretls\r\n250-binarymime\r\n250 auth plain xoauth2\r\n",
        );
        assert!(c.has(Extension::Pipelining));
        assert!(c.has(Extension::StartTls));
        assert!(c.has(Extension::EightBitMime));
        assert!(c.has(Extension::RequireTls));
        assert!(c.has(Extension::BinaryMime));
        assert_eq!(c.size_limit(), Some(2048));
        assert_eq!(names(&c), ["PLAIN", "XOAUTH2"]);
        assert_eq!(c.keyword_params("PIPELINING"), Some(""));
        assert_eq!(c.keyword_params("size"), Some("2048"));
        // Raw lines keep the case as sent.
        assert_eq!(c.raw_lines()[0], "pipelining");
    }

    #[test]
    fn unknown_keywords_are_kept() {
        let c = caps(
            "250-mx\r\n250-XCLIENT NAME ADDR PROTO\r\n250-X-EXPS GSSAPI NTLM\r\n\
             250-DELIVERBY 300\r\n250-  \r\n250 ETRN\r\n",
        );
        assert_eq!(c.keyword_params("xclient"), Some("NAME ADDR PROTO"));
        assert_eq!(c.keyword_params("X-EXPS"), Some("GSSAPI NTLM"));
        assert_eq!(c.keyword_params("DELIVERBY"), Some("300"));
        assert_eq!(c.keyword_params("ETRN"), Some(""));
        assert_eq!(c.keyword_params(""), None, "blank lines are not keywords");
        assert_eq!(c.raw_lines().len(), 5);
        assert!(!c.has(Extension::Auth));
        assert!(c.auth_mechanisms().is_empty());
        // Unknown AUTH-like keywords do not count as AUTH.
        let c = caps("250-mx\r\n250 AUTHX PLAIN\r\n");
        assert!(!c.has(Extension::Auth));
        assert!(c.auth_mechanism_names().is_empty());
        assert_eq!(c.keyword_params("AUTHX"), Some("PLAIN"));
    }

    #[test]
    fn helo_style_single_line() {
        let c = caps("250 mx.example Hello client.example\r\n");
        assert_eq!(c, Capabilities::default());
        assert!(c.raw_lines().is_empty());
        for ext in Extension::ALL {
            assert!(!c.has(ext));
        }
        assert_eq!(c.size_limit(), None);
        assert_eq!(c.keyword_params("mx.example"), None);

        let d = Capabilities::default();
        assert!(!d.has(Extension::Pipelining));
        assert!(d.auth_mechanism_names().is_empty());
    }

    #[test]
    fn equality_and_from_reply_new() {
        let reply = Reply::new(ReplyCode::OK, None, "mx\nPIPELINING\nSIZE 10");
        let a = Capabilities::from_ehlo(&reply);
        assert_eq!(a, a.clone());
        assert_ne!(a, Capabilities::default());
        assert_eq!(a.size_limit(), Some(10));
        assert!(a.has(Extension::Pipelining));
    }

    /// `n` distinct three-character mechanism names (`AAA`, `AAB`, ...), 1,000 to an `AUTH` line
    /// (about 4 KB, under the default line limit), as wire text after a greeting line.
    fn many_auth_names(n: usize) -> (String, Vec<String>) {
        const DIGITS: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let names: Vec<String> = (0..n)
            .map(|i| {
                [i / 1296, i / 36 % 36, i % 36]
                    .iter()
                    .map(|&d| char::from(DIGITS[d]))
                    .collect()
            })
            .collect();
        let mut wire = String::from("250-mx\r\n");
        for chunk in names.chunks(1000) {
            wire.push_str("250-AUTH ");
            wire.push_str(&chunk.join(" "));
            wire.push_str("\r\n");
        }
        (wire, names)
    }

    /// A hostile EHLO (62 KB, within the default `ReplyLimits`) listing 15,500 distinct names:
    /// the kept list is bounded (which bounds the de-duplication work per name, so the parse is
    /// linear; no timing needed), keeps the first unknown names in order, and still finds the known
    /// mechanisms listed after them, once each.
    #[test]
    fn hostile_auth_list_is_bounded() {
        let (mut wire, listed) = many_auth_names(15_500);
        wire.push_str("250-AUTH plain aaa PLAIN AAB\r\n");
        wire.push_str("250 auth=SCRAM-SHA-256 Login xoauth2 login\r\n");
        assert!(
            wire.len() < ReplyLimits::default().max_reply_bytes,
            "{}",
            wire.len()
        );
        let c = caps(&wire);
        assert!(c.has(Extension::Auth));
        assert_eq!(
            c.auth_mechanisms(),
            [
                AuthMechanism::Plain,
                AuthMechanism::ScramSha256,
                AuthMechanism::Login,
                AuthMechanism::XOAuth2
            ]
        );
        let kept = names(&c);
        assert_eq!(kept.len(), MAX_UNKNOWN_AUTH_NAMES + 4, "bounded");
        assert_eq!(
            kept[..MAX_UNKNOWN_AUTH_NAMES],
            listed[..MAX_UNKNOWN_AUTH_NAMES]
        );
        assert_eq!(
            kept[MAX_UNKNOWN_AUTH_NAMES..],
            ["PLAIN", "SCRAM-SHA-256", "LOGIN", "XOAUTH2"]
        );
        // Every kept name appears once.
        let mut sorted = kept.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), kept.len());
        // The raw lines and keyword parameters are still all there.
        assert_eq!(c.raw_lines().len(), 18);
        assert_eq!(c.keyword_params("AUTH").map(|p| p.len()), Some(3999));
    }

    /// Below the bound nothing is dropped: de-duplication is exact and case-insensitive, and the
    /// first spelling seen decides the position.
    #[test]
    fn auth_names_up_to_the_bound_are_all_kept() {
        let (mut wire, listed) = many_auth_names(MAX_UNKNOWN_AUTH_NAMES);
        let lower = listed.join(" ").to_ascii_lowercase();
        wire.push_str(&format!("250 AUTH {lower} CRAM-MD5 PLAIN\r\n"));
        let c = caps(&wire);
        assert_eq!(names(&c)[..MAX_UNKNOWN_AUTH_NAMES], listed[..]);
        assert_eq!(names(&c)[MAX_UNKNOWN_AUTH_NAMES..], ["PLAIN"]);
        assert_eq!(c.auth_mechanisms(), [AuthMechanism::Plain]);
    }

    #[test]
    fn extension_bits_are_distinct() {
        let mut seen = 0u16;
        for ext in Extension::ALL {
            assert_eq!(seen & ext.bit(), 0, "{ext:?}");
            seen |= ext.bit();
            assert_eq!(Extension::from_keyword(ext.keyword()), Some(ext));
            assert_eq!(
                Extension::from_keyword(&ext.keyword().to_ascii_lowercase()),
                Some(ext)
            );
        }
    }
}
