//! Building the message from flags, as swaks does: `--subject`, `--body` / `--body-file`,
//! `--html`, `--attach` (repeatable), `--header` (repeatable), with `mail-builder`.
//!
//! The headers written: `From` (the envelope sender), `To` (the `--to` recipients; `--bcc`
//! ones are named nowhere), `Subject`, then each `--header` in order, and `Date`, `Message-ID` (its domain that of the
//! sender, else the EHLO name) and `MIME-Version` when missing. A `--header` replaces the header
//! of the same name smtp-send would write (`From`, `To`, `Subject`, `Date`, `Message-ID`); any
//! other name is added, except those that would break the message: `Bcc` and `Resent-Bcc` (they
//! would show hidden recipients to everyone), and `MIME-Version` and any `Content-*` (the
//! builder writes the structure: a second `Content-Type` makes the message ambiguous). A
//! `--header` value goes as written, folded at its spaces (a word too long to fold within the
//! 998-octet line limit is refused); a non-ASCII one is encoded (RFC 2047) only where the
//! format allows it: each display name of an address field (`From`, `To`, `Cc`, `Reply-To`,
//! `Sender` and their `Resent-` forms), whose addresses stay as written, and an unstructured
//! field (`Subject`, `Comments`, an `X-` field, any name not listed here); it is refused in the
//! other structured fields (`Date`, `Message-ID`, `References`, `List-Unsubscribe`, ...). The
//! structure is mail-builder's: a single part, or `multipart/alternative` (text and HTML),
//! inside `multipart/mixed` when there are attachments. Attachments are read whole into
//! memory, their content type guessed from the file name's extension
//! (`application/octet-stream` when unknown).

use std::path::{Path, PathBuf};

use smtp_io_tokio::mail_builder::MessageBuilder;
use smtp_io_tokio::mail_builder::headers::HeaderType;
use smtp_io_tokio::mail_builder::headers::address::Address;
use smtp_io_tokio::mail_builder::headers::message_id::{MessageId, generate_message_id_header};
use smtp_io_tokio::mail_builder::headers::raw::Raw;
use smtp_io_tokio::mail_builder::headers::text::Text;

use crate::exit::{Exit, Failure};

/// The plain-text body: given on the command line or read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextBody {
    /// `--body TEXT`.
    Inline(String),
    /// `--body-file PATH`.
    File(PathBuf),
}

/// What the message-building flags asked for, checked (header names and values) but with no
/// file read yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compose {
    /// `--subject`.
    pub subject: Option<String>,
    /// `--body` or `--body-file`.
    pub text: Option<TextBody>,
    /// `--html PATH`.
    pub html: Option<PathBuf>,
    /// `--attach PATH`, in order.
    pub attachments: Vec<PathBuf>,
    /// `--header 'Name: value'`, split and checked, in order.
    pub headers: Vec<(String, String)>,
}

/// Split and check one `--header 'Name: value'`. The name is printable ASCII without `:`; the
/// value has no control character but tab (no CR or LF: one flag is one header). Refused, with
/// a [`Exit::Usage`] that says why: `Bcc` and `Resent-Bcc` (the envelope comes from `--to`, and
/// such a header would show the hidden recipients to everyone), `MIME-Version` and every
/// `Content-*` header (the message's structure is the builder's: a second `Content-Type` or
/// `Content-Transfer-Encoding` would leave two answers to how the body is to be read).
pub fn parse_header(flag: &str) -> Result<(String, String), Failure> {
    let bad = |why: &str| {
        Failure::new(
            Exit::Usage,
            format!(
                "invalid --header {}: {why}",
                crate::sanitize::one_line(&format!("{flag:?}"))
            ),
        )
    };
    let (name, value) = flag
        .split_once(':')
        .ok_or_else(|| bad("expected 'Name: value'"))?;
    let name = name.trim_end();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            "the name must be printable ASCII, without spaces or ':'",
        ));
    }
    let value = value.trim_start_matches([' ', '\t']);
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(bad(
            "the value must not contain control characters (CR and LF included)",
        ));
    }
    if name.eq_ignore_ascii_case("Bcc") || name.eq_ignore_ascii_case("Resent-Bcc") {
        return Err(bad(
            "give hidden recipients with --bcc: a Bcc or Resent-Bcc header would show them \
             to every recipient",
        ));
    }
    let structure = name.eq_ignore_ascii_case("MIME-Version")
        || name
            .get(..8)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("Content-"));
    if structure {
        return Err(bad(
            "MIME-Version and Content-* headers describe the message's structure, which \
             smtp-send writes itself (--body, --html, --attach); to send your own structure, \
             give the whole message with --file",
        ));
    }
    if let Some(word) = unfoldable_word(name, value) {
        return Err(bad(&format!(
            "a word of {word} characters cannot be folded within the 998-octet line limit \
             (RFC 5322)"
        )));
    }
    if !value.is_ascii() {
        match FieldKind::of(name) {
            FieldKind::Addresses if mailboxes(value).is_none() => {
                return Err(bad(
                    "a non-ASCII address field must be a list of 'Name <address>' or \
                     addresses, so that only the names are encoded",
                ));
            }
            FieldKind::Structured => {
                return Err(bad(
                    "this field's format has no room for encoded non-ASCII text; only \
                     display names and unstructured fields (Subject, X-...) can hold it",
                ));
            }
            FieldKind::Addresses | FieldKind::Unstructured => {}
        }
    }
    Ok((canonical_name(name), value.to_owned()))
}

/// The length of the first word of `value` that no fold can bring within 998 octets: the
/// first one shares its line with `Name: `, each later one starts a line after the space it is
/// folded at. `None` when every word fits.
fn unfoldable_word(name: &str, value: &str) -> Option<usize> {
    const LINE: usize = 998;
    let mut words = value.split([' ', '\t']);
    let first = words.next().unwrap_or("");
    if name.len() + 2 + first.len() > LINE {
        return Some(first.len());
    }
    words.map(str::len).find(|&len| len + 1 > LINE)
}

/// What a header field's value is, for where non-ASCII text may be encoded (RFC 2047 section
/// 5): in the display names of an address field, anywhere in an unstructured one, nowhere in
/// another structured field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    /// A list of mailboxes.
    Addresses,
    /// A structured field without display names (dates, message ids, URLs).
    Structured,
    /// Free text.
    Unstructured,
}

impl FieldKind {
    fn of(name: &str) -> FieldKind {
        const ADDRESSES: [&str; 10] = [
            "From",
            "Sender",
            "Reply-To",
            "To",
            "Cc",
            "Resent-From",
            "Resent-Sender",
            "Resent-To",
            "Resent-Cc",
            "Disposition-Notification-To",
        ];
        const STRUCTURED: [&str; 10] = [
            "Date",
            "Message-ID",
            "In-Reply-To",
            "References",
            "Resent-Date",
            "Resent-Message-ID",
            "Return-Path",
            "Received",
            "DKIM-Signature",
            "Authentication-Results",
        ];
        let is = |names: &[&str]| names.iter().any(|n| n.eq_ignore_ascii_case(name));
        let list_url = name
            .get(..5)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("List-"))
            && !name.eq_ignore_ascii_case("List-Id");
        if is(&ADDRESSES) {
            FieldKind::Addresses
        } else if is(&STRUCTURED) || list_url {
            FieldKind::Structured
        } else {
            FieldKind::Unstructured
        }
    }
}

/// The mailboxes of an address field's value, each `(display name, address)`, parsed with
/// mail-parser; `None` when an entry has no address (a group, a bare name).
fn mailboxes(value: &str) -> Option<Vec<(Option<String>, String)>> {
    let field = format!("To: {value}\r\n\r\n");
    let parsed = mail_parser::MessageParser::default().parse(field.as_bytes())?;
    let mail_parser::Address::List(list) = parsed.to()? else {
        return None;
    };
    let mut out = Vec::with_capacity(list.len());
    for entry in list {
        let address = entry.address.as_deref().filter(|a| a.contains('@'))?;
        let name = entry.name.as_deref().map(str::to_owned);
        out.push((name, address.to_owned()));
    }
    (!out.is_empty()).then_some(out)
}

/// The spelling mail-builder looks for, for the headers it adds when missing (`Date`,
/// `Message-ID`) and those this module writes; other names stay as given.
fn canonical_name(name: &str) -> String {
    for known in ["Date", "Message-ID", "From", "To", "Subject"] {
        if name.eq_ignore_ascii_case(known) {
            return known.to_owned();
        }
    }
    name.to_owned()
}

impl Compose {
    /// Whether any message-building flag was given.
    pub fn is_requested(&self) -> bool {
        self.subject.is_some()
            || self.text.is_some()
            || self.html.is_some()
            || !self.attachments.is_empty()
            || !self.headers.is_empty()
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// Read the files and build the message (CRLF line endings) from `from` to `to`;
    /// `ehlo` names the Message-ID's domain when the sender has none. An unreadable file is
    /// [`Exit::LocalIo`].
    pub async fn build(&self, from: &str, to: &[String], ehlo: &str) -> Result<Vec<u8>, Failure> {
        let mut message = MessageBuilder::new();
        if !self.has_header("From") && !from.is_empty() {
            message = message.from(from);
        }
        if !self.has_header("To") {
            let to: Vec<&str> = to.iter().map(String::as_str).collect();
            message = message.to(to);
        }
        if let Some(subject) = self
            .subject
            .as_deref()
            .filter(|_| !self.has_header("Subject"))
        {
            message = message.subject(subject);
        }
        if !self.has_header("Message-ID") {
            message = message.message_id(new_message_id(from, ehlo));
        }
        for (name, value) in &self.headers {
            // ASCII goes as written (folded if long); otherwise only display names and
            // unstructured text are encoded (RFC 2047), as `parse_header` checked.
            let mailboxes = match FieldKind::of(name) {
                FieldKind::Addresses if !value.is_ascii() => mailboxes(value),
                _ => None,
            };
            let value: HeaderType<'_> = match mailboxes {
                _ if value.is_ascii() => Raw::new(value.as_str()).into(),
                Some(list) => {
                    let list = list
                        .into_iter()
                        .map(|(name, address)| Address::new_address(name, address))
                        .collect();
                    Address::new_list(list).into()
                }
                None => Text::new(value.as_str()).into(),
            };
            message = message.header(name.as_str(), value);
        }
        match &self.text {
            Some(TextBody::Inline(text)) => message = message.text_body(text.as_str()),
            Some(TextBody::File(path)) => message = message.text_body(read_text(path).await?),
            None => {}
        }
        if let Some(path) = &self.html {
            message = message.html_body(read_text(path).await?);
        }
        for path in &self.attachments {
            let bytes = read(path).await?;
            let content_type = mime_guess::from_path(path)
                .first_or_octet_stream()
                .essence_str()
                .to_owned();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "attachment".to_owned());
            message = message.attachment(content_type, name, bytes);
        }
        let mut bytes = Vec::new();
        message.serialize(&mut bytes);
        Ok(bytes)
    }
}

/// A fresh Message-ID (without angle brackets) in the sender's domain, else `ehlo`'s.
fn new_message_id(from: &str, ehlo: &str) -> MessageId<'static> {
    let domain = from
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_graphic() && b != b'>'))
        .unwrap_or(ehlo);
    let mut id = Vec::new();
    generate_message_id_header(&mut id, domain);
    let id = String::from_utf8_lossy(&id);
    MessageId::new(id.trim_matches(['<', '>']).to_owned())
}

async fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    tokio::fs::read(path).await.map_err(|e| {
        Failure::new(
            Exit::LocalIo,
            format!("cannot read {}: {e}", path.display()),
        )
    })
}

/// A text part's file: UTF-8 without NUL (RFC 2045 allows no NUL in a text part; a file
/// that holds one goes with `--attach`).
async fn read_text(path: &Path) -> Result<String, Failure> {
    let not_text =
        |why: &str| Failure::new(Exit::LocalIo, format!("{} is not {why}", path.display()));
    let text = String::from_utf8(read(path).await?).map_err(|_| not_text("UTF-8 text"))?;
    if text.contains('\0') {
        return Err(not_text(
            "text: it holds a NUL byte (send it with --attach)",
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn headers_are_split_checked_and_canonicalised() {
        assert_eq!(
            parse_header("X-Tag:  one two").unwrap(),
            ("X-Tag".to_owned(), "one two".to_owned())
        );
        assert_eq!(parse_header("message-id: <a@b>").unwrap().0, "Message-ID");
        assert_eq!(parse_header("DATE: x").unwrap().0, "Date");
        assert_eq!(parse_header("X-Empty:").unwrap().1, "");
        // Only the structure headers themselves: look-alike names are ordinary headers.
        for fine in [
            "Resent-To: a@example.com",
            "Resent-From: a@example.com",
            "X-Content-Type: x",
            "Contents: x",
            "Content: x",
            // Non-ASCII free text, encoded wherever it is.
            "X-Note: café",
            "Comments: naïve",
        ] {
            assert!(parse_header(fine).is_ok(), "{fine:?}");
        }
        for bad in [
            "no colon",
            ": no name",
            "Two Words: x",
            "X: a\r\nBcc: evil@example.com",
            "X: a\nb",
            "X: nul\0",
            "Bcc: hidden@example.com",
            "bcc : hidden@example.com",
            "Resent-Bcc: hidden@example.com",
            "resent-bcc: hidden@example.com",
            "Content-Type: text/html",
            "content-transfer-encoding: 8bit",
            "CONTENT-DISPOSITION: inline",
            "MIME-Version: 1.0",
            "mime-version: 1.0",
            // Non-ASCII where the format has no room for encoded words, and an address field
            // whose entries are not all mailboxes.
            "Message-ID: <é@example.com>",
            "References: <a@b> <ü@c>",
            "List-Unsubscribe: <https://exämple.com/u>",
            "To: Jürgen",
        ] {
            let f = parse_header(bad).unwrap_err();
            assert_eq!(f.exit, Exit::Usage, "{bad:?}");
            assert!(
                !f.message.contains('\n') && !f.message.contains('\r'),
                "{f}"
            );
        }
    }

    #[tokio::test]
    async fn generated_headers_and_overrides() {
        let compose = Compose {
            subject: Some("Héllo".to_owned()),
            text: Some(TextBody::Inline("body\n".to_owned())),
            headers: vec![
                parse_header("X-Mailer: smtp-send").unwrap(),
                parse_header("to: Team <team@example.org>").unwrap(),
            ],
            ..Compose::default()
        };
        let to = vec!["b@example.org".to_owned(), "c@example.net".to_owned()];
        let wire = text(
            &compose
                .build("a@example.com", &to, "client.test")
                .await
                .unwrap(),
        );
        let (head, body) = wire.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("From: <a@example.com>\r\n"), "{head}");
        // --header To replaces the generated one: the envelope still has both recipients.
        assert!(head.contains("To: Team <team@example.org>\r\n"), "{head}");
        assert!(!head.contains("b@example.org"), "{head}");
        assert!(head.contains("Subject: =?utf-8?"), "{head}");
        assert!(head.contains("X-Mailer: smtp-send\r\n"), "{head}");
        assert_eq!(head.matches("\r\nDate: ").count(), 1, "{head}");
        assert_eq!(head.matches("Message-ID: <").count(), 1, "{head}");
        assert!(head.contains("@example.com>\r\n"), "{head}");
        assert!(head.contains("MIME-Version: 1.0"), "{head}");
        // No Bcc header line (a random boundary or Message-ID may hold the letters "bcc").
        assert!(
            !head
                .to_ascii_lowercase()
                .lines()
                .any(|line| line.starts_with("bcc:")),
            "{head}"
        );
        assert!(body.contains("body"), "{body}");
        assert!(!wire.replace("\r\n", "").contains('\n'));
    }

    #[tokio::test]
    async fn given_date_and_message_id_are_not_duplicated() {
        let compose = Compose {
            headers: vec![
                parse_header("date: Thu, 3 Dec 2026 12:00:00 +0000").unwrap(),
                parse_header("MESSAGE-ID: <fixed@example.com>").unwrap(),
            ],
            ..Compose::default()
        };
        let wire = text(
            &compose
                .build("", &["b@example.org".to_owned()], "h.test")
                .await
                .unwrap(),
        );
        assert_eq!(wire.matches("Date:").count(), 1, "{wire}");
        assert_eq!(wire.matches("Message-ID:").count(), 1, "{wire}");
        assert!(wire.contains("Message-ID: <fixed@example.com>"), "{wire}");
        // The null sender writes no From header.
        assert!(!wire.contains("From:"), "{wire}");
    }

    #[test]
    fn message_id_domain() {
        let id = new_message_id("a@example.com", "h.test");
        assert!(id.id[0].ends_with("@example.com"), "{:?}", id.id);
        let id = new_message_id("", "h.test");
        assert!(id.id[0].ends_with("@h.test"), "{:?}", id.id);
        assert_ne!(new_message_id("", "h").id[0], new_message_id("", "h").id[0]);
    }

    #[tokio::test]
    async fn unreadable_files_are_local_errors() {
        let compose = Compose {
            attachments: vec![PathBuf::from("/nonexistent/report.pdf")],
            ..Compose::default()
        };
        let f = compose.build("a@b", &[], "h").await.unwrap_err();
        assert_eq!(f.exit, Exit::LocalIo);
        assert!(f.message.contains("/nonexistent/report.pdf"), "{f}");
    }

    /// The wire form of `compose` from `a@example.com` to `b@example.org`.
    async fn wire(compose: &Compose) -> String {
        let to = ["b@example.org".to_owned()];
        text(&compose.build("a@example.com", &to, "h.test").await.unwrap())
    }

    fn with_header(flag: &str) -> Compose {
        Compose {
            headers: vec![parse_header(flag).unwrap()],
            ..Compose::default()
        }
    }

    /// A non-ASCII display name is encoded alone: the address stays outside the encoded word
    /// (RFC 2047 section 5), and a parser finds it. The whole value used to be one encoded
    /// word, and the From field had no address left.
    #[tokio::test]
    async fn non_ascii_display_names_are_encoded_alone() {
        for (flag, field, address) in [
            (
                "From: Jürgen Müller <a@example.com>",
                "From:",
                "a@example.com",
            ),
            (
                "To: \"Zoë, Ops\" <z@example.org>, plain@example.org",
                "To:",
                "z@example.org",
            ),
        ] {
            let wire = wire(&with_header(flag)).await;
            let line = wire.lines().find(|l| l.starts_with(field)).unwrap();
            assert!(line.contains(&format!("<{address}>")), "{line}");
            assert!(line.contains("=?utf-8?"), "the name is encoded: {line}");
            let parsed = mail_parser::MessageParser::default()
                .parse(wire.as_bytes())
                .unwrap();
            let header = if field == "From:" {
                parsed.from()
            } else {
                parsed.to()
            };
            let first = header.and_then(|a| a.first()).unwrap();
            assert_eq!(first.address(), Some(address), "{line}");
            assert!(first.name().is_some_and(|n| !n.is_ascii()), "{line}");
        }
    }

    /// A value is folded at its spaces; a word that no fold can bring within 998 octets is
    /// refused. Such a word used to go out as one line of more than 998 octets.
    #[tokio::test]
    async fn no_header_line_over_998_octets() {
        let long = format!(
            "List-Unsubscribe: <https://example.com/u?t={}>",
            "x".repeat(1500)
        );
        let f = parse_header(&long).unwrap_err();
        assert!(f.message.contains("998"), "{f}");
        let words = format!("X-Words: {}", ["word"; 400].join(" "));
        let wire = wire(&with_header(&words)).await;
        let longest = wire.split("\r\n").map(str::len).max().unwrap();
        assert!(longest <= 998, "a line of {longest} octets");
        assert!(wire.contains("word word"), "{wire}");
    }

    /// A text part's file with a NUL byte is refused (RFC 2045 allows none in a text part); it
    /// used to go out in a part labelled 7bit.
    #[tokio::test]
    async fn a_text_file_with_nul_is_refused() {
        let path = std::env::temp_dir().join(format!("compose-nul-{}.txt", std::process::id()));
        std::fs::write(&path, b"a\0b\n").unwrap();
        let compose = Compose {
            text: Some(TextBody::File(path.clone())),
            ..Compose::default()
        };
        let to = ["b@example.org".to_owned()];
        let f = compose.build("a@example.com", &to, "h").await.unwrap_err();
        let _ = std::fs::remove_file(&path);
        assert_eq!(f.exit, Exit::LocalIo);
        assert!(
            f.message.contains("NUL") && f.message.contains("--attach"),
            "{f}"
        );
    }
}
