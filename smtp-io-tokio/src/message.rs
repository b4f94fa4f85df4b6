//! Sending a message built with [`mail_builder`] (feature `mail-builder`): the envelope comes
//! from its headers and the `Bcc` header never reaches the wire.
//!
//! ```no_run
//! use smtp_io_tokio::message::SendMessage;
//! use smtp_io_tokio::mail_builder::MessageBuilder;
//! use smtp_io_tokio::{SmtpError, connect_starttls};
//!
//! # async fn demo() -> Result<(), SmtpError> {
//! let message = MessageBuilder::new()
//!     .from(("Alice", "alice@example.com"))
//!     .to(("Bob", "bob@example.org"))
//!     .bcc("archive@example.com")
//!     .subject("Report")
//!     .text_body("The report is attached.")
//!     .attachment("application/pdf", "report.pdf", &b"%PDF-1.4 ..."[..]);
//! let mut client = connect_starttls("smtp.example.com", 587, "client.example.com").await?;
//! client.login("alice@example.com", "app-password").await?;
//! // MAIL FROM:<alice@example.com>, RCPT TO:<bob@example.org> and <archive@example.com>;
//! // the message carries From, To and Subject, and no Bcc.
//! client.send_message(&message).await?;
//! client.quit().await
//! # }
//! ```
//!
//! The rules, in [`prepare`]:
//!
//! * **MAIL FROM** is the `Sender` mailbox when there is one, else the one `From` mailbox (RFC
//!   5322 requires `Sender` when `From` lists several; without it the message is refused).
//! * **RCPT TO** is every mailbox of `To`, `Cc` and `Bcc`, groups flattened, each address once
//!   (compared without regard to ASCII case), in header order.
//! * The message is serialised without its `Bcc` headers; mail-builder adds `Date`,
//!   `Message-ID` and `MIME-Version` when missing.
//!
//! Address headers must be built as [`Address`] values (`.to(...)`, `.cc(...)`, or
//! `.header("To", Address::...)`): one written as raw or unstructured text cannot be read back
//! reliably, and is refused rather than guessed at.
//!
//! This lives in the tokio adapter rather than in `smtp-proto`, which stays `no_std` and free
//! of message-format dependencies; the trait is generic over the [`Transport`], so it works with
//! any `SmtpClient`.

use std::borrow::Cow;

use mail_builder::MessageBuilder;
use mail_builder::headers::HeaderType;
use mail_builder::headers::address::Address;
use mail_builder::mime::{BodyPart, MimePart};
use smtp_proto::{
    ArgumentError, Field, InvalidInputError, MessageOptions, SendOutcome, SmtpError, Transport,
};

/// A message ready to send: its envelope, taken from its headers, and its bytes without `Bcc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedMessage {
    /// The envelope sender (MAIL FROM).
    pub from: String,
    /// The envelope recipients (RCPT TO): `To`, `Cc` and `Bcc`, each once.
    pub to: Vec<String>,
    /// The message as sent: CRLF line endings, no `Bcc` header.
    pub bytes: Vec<u8>,
}

impl PreparedMessage {
    /// The recipients as string slices, as `send_mail_bytes` and `OutgoingMessage` take them.
    pub fn recipients(&self) -> Vec<&str> {
        self.to.iter().map(String::as_str).collect()
    }
}

/// The envelope of `message`: `(MAIL FROM, RCPT TO list)`, by the rules of the
/// [module](self).
pub fn envelope(message: &MessageBuilder<'_>) -> Result<(String, Vec<String>), SmtpError> {
    check_header_names(message)?;
    if message
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("Resent-Bcc"))
    {
        // Its recipients are not the envelope's (only To, Cc and Bcc are), and written out it
        // would show them to everyone: a resent copy is sent with its own envelope.
        return Err(invalid(
            Field::Recipients,
            ArgumentError::Syntax(
                "a Resent-Bcc header is refused: send a resent copy with its own envelope",
            ),
        ));
    }
    let mut from = Vec::new();
    let mut sender = Vec::new();
    let mut to = Vec::new();
    for (name, value) in &message.headers {
        let (list, field) = if name.eq_ignore_ascii_case("From") {
            (&mut from, Field::ReversePath)
        } else if name.eq_ignore_ascii_case("Sender") {
            (&mut sender, Field::ReversePath)
        } else if ["To", "Cc", "Bcc"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
        {
            (&mut to, Field::Recipients)
        } else {
            continue;
        };
        match value {
            HeaderType::Address(address) => mailboxes(address, list),
            _ => {
                return Err(invalid(
                    field,
                    ArgumentError::Syntax(
                        "an address header (From, Sender, To, Cc, Bcc) given as text: build it \
                         with mail_builder's Address",
                    ),
                ));
            }
        }
    }
    let reverse_path = match (sender.as_slice(), from.as_slice()) {
        ([one], _) => one.clone(),
        ([], [one]) => one.clone(),
        ([], []) => return Err(invalid(Field::ReversePath, ArgumentError::Empty)),
        ([], _) => {
            return Err(invalid(
                Field::ReversePath,
                ArgumentError::Syntax("several From mailboxes and no Sender header"),
            ));
        }
        _ => {
            return Err(invalid(
                Field::ReversePath,
                ArgumentError::Syntax("the Sender header must hold exactly one mailbox"),
            ));
        }
    };
    let mut recipients: Vec<String> = Vec::with_capacity(to.len());
    for address in to {
        if !recipients.iter().any(|r| r.eq_ignore_ascii_case(&address)) {
            recipients.push(address);
        }
    }
    if recipients.is_empty() {
        return Err(invalid(Field::Recipients, ArgumentError::Empty));
    }
    Ok((reverse_path, recipients))
}

/// Every header name of `message`, its parts' too, is an RFC 5322 field name: printable ASCII
/// without a space or `:`. mail_builder writes names as given, so a name holding a line break
/// would write a header of its own (a `Bcc` that every recipient sees).
fn check_header_names(message: &MessageBuilder<'_>) -> Result<(), SmtpError> {
    fn part_names<'a>(part: &'a MimePart<'_>, names: &mut Vec<&'a str>) {
        names.extend(part.headers.iter().map(|(name, _)| name.as_ref()));
        if let BodyPart::Multipart(parts) = &part.contents {
            parts.iter().for_each(|p| part_names(p, names));
        }
    }
    let mut names: Vec<&str> = message.headers.iter().map(|(n, _)| n.as_ref()).collect();
    let parts = [&message.html_body, &message.text_body, &message.body];
    for part in parts.into_iter().flatten() {
        part_names(part, &mut names);
    }
    for part in message.attachments.iter().flatten() {
        part_names(part, &mut names);
    }
    let field_name =
        |name: &str| !name.is_empty() && name.bytes().all(|b| matches!(b, 33..=57 | 59..=126));
    if names.into_iter().all(field_name) {
        return Ok(());
    }
    Err(invalid(
        Field::Body,
        ArgumentError::Syntax("a header name holds a space, a colon or a control character"),
    ))
}

fn invalid(field: Field, reason: ArgumentError) -> SmtpError {
    SmtpError::InvalidInput(InvalidInputError::argument(field, reason))
}

/// Push the address of every mailbox in `address` (groups and lists flattened).
fn mailboxes(address: &Address<'_>, out: &mut Vec<String>) {
    match address {
        Address::Address(mailbox) => out.push(mailbox.email.trim().to_owned()),
        Address::Group(group) => group.addresses.iter().for_each(|a| mailboxes(a, out)),
        Address::List(list) => list.iter().for_each(|a| mailboxes(a, out)),
    }
}

/// The bytes of `message` without its `Bcc` and `Resent-Bcc` headers (hidden recipients: every
/// recipient would see them). The bodies and attachments are borrowed, not copied, on the way
/// (only the headers are cloned). Header names are written as given, except `Date`,
/// `Message-ID` and `MIME-Version` in another case, which take the spelling mail-builder looks
/// for before it adds its own (otherwise the message would carry two). [`prepare`] (and
/// [`envelope`]) first refuse a name that is not a field name, and a `Resent-Bcc` header.
pub fn to_bytes_without_bcc(message: &MessageBuilder<'_>) -> Vec<u8> {
    let without_bcc = MessageBuilder {
        headers: message
            .headers
            .iter()
            .filter(|(name, _)| !is_hidden_recipients(name))
            .map(|(name, value)| (Cow::Borrowed(canonical_name(name)), value.clone()))
            .collect(),
        html_body: message.html_body.as_ref().map(reborrow),
        text_body: message.text_body.as_ref().map(reborrow),
        attachments: message
            .attachments
            .as_ref()
            .map(|parts| parts.iter().map(reborrow).collect()),
        body: message.body.as_ref().map(reborrow),
    };
    let mut bytes = Vec::new();
    without_bcc.serialize(&mut bytes);
    bytes
}

/// A header that names hidden recipients: `Bcc`, or `Resent-Bcc` for a resent copy.
fn is_hidden_recipients(name: &str) -> bool {
    name.eq_ignore_ascii_case("Bcc") || name.eq_ignore_ascii_case("Resent-Bcc")
}

/// The spelling mail-builder checks (case-sensitively) before it adds `Date`, `Message-ID` or
/// `MIME-Version` of its own; any other name as it is.
fn canonical_name(name: &str) -> &str {
    ["Date", "Message-ID", "MIME-Version"]
        .into_iter()
        .find(|known| name.eq_ignore_ascii_case(known))
        .unwrap_or(name)
}

/// A copy of `part` whose contents borrow from it.
fn reborrow<'a>(part: &'a MimePart<'_>) -> MimePart<'a> {
    MimePart {
        headers: part
            .headers
            .iter()
            .map(|(name, value)| (Cow::Borrowed(name.as_ref()), value.clone()))
            .collect(),
        contents: match &part.contents {
            BodyPart::Text(text) => BodyPart::Text(Cow::Borrowed(text.as_ref())),
            BodyPart::Binary(bytes) => BodyPart::Binary(Cow::Borrowed(bytes.as_ref())),
            BodyPart::Multipart(parts) => BodyPart::Multipart(parts.iter().map(reborrow).collect()),
        },
    }
}

/// The envelope ([`envelope`]) and the bytes ([`to_bytes_without_bcc`]) of `message`.
pub fn prepare(message: &MessageBuilder<'_>) -> Result<PreparedMessage, SmtpError> {
    let (from, to) = envelope(message)?;
    Ok(PreparedMessage {
        from,
        to,
        bytes: to_bytes_without_bcc(message),
    })
}

/// `send_message` for any [`SmtpClient`](smtp_proto::SmtpClient): send a
/// [`MessageBuilder`] with the envelope taken from its headers.
#[allow(async_fn_in_trait)]
pub trait SendMessage {
    /// Send `message` ([`prepare`]: MAIL FROM from `Sender` / `From`, RCPT TO from `To`, `Cc`
    /// and `Bcc`, no `Bcc` header in what is sent) with the client's default message options.
    ///
    /// Errors: [`SmtpError::InvalidInput`] when the headers give no usable envelope (nothing is
    /// sent then), and every error of `send_mail_bytes`.
    async fn send_message(
        &mut self,
        message: &MessageBuilder<'_>,
    ) -> Result<SendOutcome, SmtpError>;

    /// [`send_message`](Self::send_message) with per-message options (DSN, REQUIRETLS, ...).
    async fn send_message_with(
        &mut self,
        message: &MessageBuilder<'_>,
        options: &MessageOptions,
    ) -> Result<SendOutcome, SmtpError>;

    /// [`send_message`](Self::send_message), DKIM-signed with `signer` at the system clock's
    /// time (feature `dkim`): the signature covers the message as sent, without its `Bcc`
    /// header. A message that cannot be signed is [`SmtpError::InvalidInput`], and nothing is
    /// sent.
    #[cfg(feature = "dkim")]
    #[cfg_attr(docsrs, doc(cfg(feature = "dkim")))]
    async fn send_message_signed(
        &mut self,
        message: &MessageBuilder<'_>,
        signer: &crate::dkim::DkimSigner,
    ) -> Result<SendOutcome, SmtpError>;
}

impl<T: Transport> SendMessage for smtp_proto::SmtpClient<T> {
    async fn send_message(
        &mut self,
        message: &MessageBuilder<'_>,
    ) -> Result<SendOutcome, SmtpError> {
        let prepared = prepare(message)?;
        self.send_mail_bytes(&prepared.from, &prepared.recipients(), &prepared.bytes)
            .await
    }

    async fn send_message_with(
        &mut self,
        message: &MessageBuilder<'_>,
        options: &MessageOptions,
    ) -> Result<SendOutcome, SmtpError> {
        let prepared = prepare(message)?;
        self.send_mail_bytes_with(
            &prepared.from,
            &prepared.recipients(),
            &prepared.bytes,
            options,
        )
        .await
    }

    #[cfg(feature = "dkim")]
    async fn send_message_signed(
        &mut self,
        message: &MessageBuilder<'_>,
        signer: &crate::dkim::DkimSigner,
    ) -> Result<SendOutcome, SmtpError> {
        let prepared = prepare(message)?;
        let signed = crate::dkim::unix_now()
            .and_then(|now| signer.prepend(&prepared.bytes, now))
            .map_err(|e| crate::dkim::unsignable(&e))?;
        self.send_mail_bytes(&prepared.from, &prepared.recipients(), &signed)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_builder::headers::raw::Raw;

    fn base() -> MessageBuilder<'static> {
        MessageBuilder::new().subject("s").text_body("hello")
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// The field and the reason [`envelope`] refuses `message` for.
    fn refusal(message: &MessageBuilder<'_>) -> (Field, ArgumentError) {
        match envelope(message) {
            Err(SmtpError::InvalidInput(InvalidInputError::Argument { field, reason })) => {
                (field, reason)
            }
            other => panic!("not refused as an invalid argument: {other:?}"),
        }
    }

    #[test]
    fn envelope_from_from_to_cc_bcc_with_display_names() {
        let message = base()
            .from(("Alice Example", "alice@example.com"))
            .to(vec![
                ("Bob", "bob@example.org"),
                ("Carol", "carol@example.net"),
            ])
            .cc("dave@example.org")
            .bcc(("Hidden \"Eve\"", "eve@example.com"));
        let (from, to) = envelope(&message).unwrap();
        assert_eq!(from, "alice@example.com");
        assert_eq!(
            to,
            [
                "bob@example.org",
                "carol@example.net",
                "dave@example.org",
                "eve@example.com"
            ]
        );
    }

    #[test]
    fn groups_are_flattened_and_duplicates_dropped() {
        let message = base()
            .from("alice@example.com")
            .to((
                "Team",
                vec![("Bob", "bob@example.org"), ("Carol", "carol@example.net")],
            ))
            .cc(Address::new_list(vec![
                Address::new_group(Some("Empty"), vec![]),
                Address::new_address(None::<&str>, "BOB@example.org"),
                Address::new_address(Some("Frank"), "frank@example.org"),
            ]))
            .bcc(Address::new_group(
                None::<&str>,
                vec![Address::new_address(None::<&str>, "carol@example.net")],
            ));
        let (_, to) = envelope(&message).unwrap();
        assert_eq!(
            to,
            ["bob@example.org", "carol@example.net", "frank@example.org"]
        );
    }

    #[test]
    fn sender_wins_and_several_from_need_it() {
        let two_from = base()
            .from(vec![("A", "a@example.com"), ("B", "b@example.com")])
            .to("c@example.org");
        let err = refusal(&two_from);
        assert!(
            matches!(err, (Field::ReversePath, ArgumentError::Syntax(_))),
            "{err:?}"
        );
        let with_sender = two_from.sender(("Secretary", "sec@example.com"));
        assert_eq!(envelope(&with_sender).unwrap().0, "sec@example.com");
        // Header names are matched without regard to case.
        let lower = MessageBuilder::new()
            .header("from", Address::from("x@example.com"))
            .header("bcc", Address::from("y@example.org"));
        assert_eq!(
            envelope(&lower).unwrap(),
            ("x@example.com".to_owned(), vec!["y@example.org".to_owned()])
        );
    }

    #[test]
    fn missing_or_textual_addresses_are_refused() {
        let no_from = refusal(&base().to("c@example.org"));
        assert!(
            matches!(no_from, (Field::ReversePath, ArgumentError::Empty)),
            "{no_from:?}"
        );
        let no_rcpt = refusal(&base().from("a@example.com"));
        assert!(
            matches!(no_rcpt, (Field::Recipients, ArgumentError::Empty)),
            "{no_rcpt:?}"
        );
        let raw_to = base()
            .from("a@example.com")
            .header("To", Raw::new("Bob <bob@example.org>"));
        let raw_to = refusal(&raw_to);
        assert!(
            matches!(raw_to, (Field::Recipients, ArgumentError::Syntax(_))),
            "{raw_to:?}"
        );
    }

    /// A header name with a line break would write a header of its own (here a `Bcc` line
    /// every recipient would see): refused, in the message's headers and in a part's (found
    /// in review).
    #[test]
    fn a_header_name_that_is_not_a_field_name_is_refused() {
        let addressed = || base().from("alice@example.com").to("bob@example.org");
        for name in ["X-Name\r\nBcc", "X Name", "X:Name", "", "X-Nul\0"] {
            let message = addressed().header(name, Raw::new("v"));
            assert_eq!(
                refusal(&message),
                (
                    Field::Body,
                    ArgumentError::Syntax(
                        "a header name holds a space, a colon or a control character"
                    )
                ),
                "{name:?}"
            );
        }
        let part = MimePart::new("text/plain", "hi").header("X-A\nBcc", Raw::new("v"));
        let message = addressed().body(MimePart::new("multipart/mixed", vec![part]));
        assert!(matches!(refusal(&message), (Field::Body, _)));
        assert!(prepare(&addressed().header("X-Fine_1", Raw::new("v"))).is_ok());
    }

    #[test]
    fn bcc_is_never_written_and_the_rest_is() {
        let attachment = vec![0u8, 1, 2, 255];
        let message = base()
            .from(("Alice", "alice@example.com"))
            .to("bob@example.org")
            .bcc(("Secret Eve", "eve@example.com"))
            .header("BCC", Address::from("zed@example.com"))
            .html_body("<p>hi</p>")
            .attachment("application/octet-stream", "a.bin", attachment.as_slice());
        let prepared = prepare(&message).unwrap();
        assert_eq!(
            prepared.recipients(),
            ["bob@example.org", "eve@example.com", "zed@example.com"]
        );
        let wire = text(&prepared.bytes);
        // No Bcc header line (a random boundary or Message-ID may well hold the letters "bcc").
        assert!(
            !wire
                .lines()
                .any(|line| line.to_ascii_lowercase().starts_with("bcc:")),
            "{wire}"
        );
        assert!(
            !wire.contains("eve@example.com") && !wire.contains("zed@") && !wire.contains("Eve"),
            "{wire}"
        );
        for want in [
            "From: \"Alice\" <alice@example.com>\r\n",
            "To: <bob@example.org>\r\n",
            "Subject: s\r\n",
            "\r\nDate: ",
            "\r\nMessage-ID: <",
            "MIME-Version: 1.0\r\n",
            "Content-Type: multipart/mixed",
            "Content-Type: multipart/alternative",
            "filename=\"a.bin\"",
            "<p>hi</p>",
        ] {
            assert!(wire.contains(want), "missing {want:?} in {wire}");
        }
        // Every line ends with CRLF.
        assert!(!wire.replace("\r\n", "").contains('\n'));
        // The builder itself is untouched: its Bcc is still there for the next use.
        assert_eq!(
            message
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("bcc"))
                .count(),
            2
        );
    }

    #[test]
    fn given_date_and_message_id_are_kept() {
        let message = base()
            .from("a@example.com")
            .to("b@example.org")
            .message_id("fixed.1@example.com")
            .date(0i64);
        let wire = text(&prepare(&message).unwrap().bytes);
        assert_eq!(wire.matches("Message-ID:").count(), 1, "{wire}");
        assert!(wire.contains("Message-ID: <fixed.1@example.com>"), "{wire}");
        assert_eq!(wire.matches("Date:").count(), 1, "{wire}");
        assert!(wire.contains("1970"), "{wire}");
    }

    /// A `Resent-Bcc` header is refused (its recipients are not the envelope's, and written out
    /// it shows them to everyone), and never written by `to_bytes_without_bcc`. It used to be
    /// sent to every recipient.
    #[test]
    fn resent_bcc_is_refused_and_never_written() {
        let message = MessageBuilder::new()
            .from("alice@example.com")
            .to("bob@example.org")
            .header("Resent-Bcc", Address::from("hidden@example.net"))
            .text_body("hi");
        let error = prepare(&message).unwrap_err();
        assert!(error.to_string().contains("Resent-Bcc"), "{error}");
        let wire = String::from_utf8(to_bytes_without_bcc(&message)).unwrap();
        assert!(!wire.contains("hidden@example.net"), "{wire}");
    }

    /// `Date`, `Message-ID` and `MIME-Version` given in another case are written once, in
    /// mail-builder's spelling: it used to add its own beside them.
    #[test]
    fn headers_spelled_in_another_case_are_not_doubled() {
        let message = MessageBuilder::new()
            .from("alice@example.com")
            .to("bob@example.org")
            .header(
                "Message-Id",
                mail_builder::headers::message_id::MessageId::new("fixed@example.com"),
            )
            .header("date", mail_builder::headers::date::Date::new(0))
            .header("Mime-Version", Raw::new("1.0"))
            .text_body("hi");
        let wire = String::from_utf8(prepare(&message).unwrap().bytes).unwrap();
        let head = wire.split("\r\n\r\n").next().unwrap();
        for name in [
            "Message-ID: <fixed@example.com>",
            "Date: ",
            "MIME-Version: ",
        ] {
            let key = name.split(':').next().unwrap().to_ascii_lowercase();
            let n = head
                .lines()
                .filter(|l| l.to_ascii_lowercase().starts_with(&format!("{key}:")))
                .count();
            assert_eq!(n, 1, "{key}: {head}");
            assert!(head.contains(name), "{name}: {head}");
        }
    }
}
