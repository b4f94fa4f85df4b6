//! Messages the binary builds from flags (`--subject`, `--body`, `--html`, `--attach`,
//! `--header`), in capture mode and to a server, and the same through mail-builder.

use super::*;

use mail_parser::{MessageParser, MimeHeaders};

/// The message bytes of a capture report (between its header lines and `--- end of message ---`).
fn printed_message(stdout: &[u8]) -> Vec<u8> {
    let text = text(stdout);
    let start = text
        .find("CRLF line endings):\n")
        .map(|i| i + "CRLF line endings):\n".len())
        .expect("a capture report");
    let end = text.rfind("--- end of message ---\n").unwrap();
    text.as_bytes()[start..end].to_vec()
}

/// The header block of a message (up to the first empty line), lower-cased.
fn header_block(message: &[u8]) -> String {
    let text = text(message);
    text.split("\r\n\r\n").next().unwrap().to_ascii_lowercase()
}

fn content_type<'x>(part: &impl MimeHeaders<'x>) -> String {
    let ct = part.content_type().expect("a content type");
    format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or(""))
}

const PDF: &[u8] = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n";

/// The command of the issue, in capture mode: a valid multipart/mixed message with the text
/// body and the attachment named, Date and Message-ID added.
#[test]
fn built_message_with_an_attachment_in_capture_mode() {
    let pdf = temp_file("report.pdf", PDF);
    let out = smtp_send(
        &[
            "--from",
            "a@x",
            "--to",
            "b@y",
            "--subject",
            "Hi",
            "--body",
            "Hello",
            "--attach",
            pdf.to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    // Not a terminal: nothing on standard error.
    assert_eq!(text(&out.stderr), "");
    let raw = printed_message(&out.stdout);
    let message = MessageParser::default().parse(&raw).expect("parses");
    assert_eq!(content_type(message.root_part()), "multipart/mixed");
    assert_eq!(message.subject(), Some("Hi"));
    assert_eq!(
        message.from().unwrap().first().unwrap().address(),
        Some("a@x")
    );
    assert_eq!(
        message.to().unwrap().first().unwrap().address(),
        Some("b@y")
    );
    assert!(message.date().is_some() && message.message_id().is_some());
    assert_eq!(message.body_text(0).unwrap().trim_end(), "Hello");
    assert_eq!(message.attachment_count(), 1);
    let attachment = message.attachments().next().unwrap();
    assert!(
        attachment
            .attachment_name()
            .unwrap()
            .ends_with("report.pdf")
    );
    assert_eq!(content_type(attachment), "application/pdf");
    assert_eq!(attachment.contents(), PDF);
}

/// Every message flag against a server: text and HTML alternatives, two attachments with
/// their content types, extra and replaced headers, the exact SIZE declared.
#[tokio::test]
async fn built_message_with_every_flag_to_a_server() {
    let body = temp_file("body.txt", "Plain body,\nwith two lines.\n".as_bytes());
    let html = temp_file("body.html", b"<p>HTML body</p>\n");
    let notes = temp_file("notes.txt", b"some notes\n");
    let png = temp_file("pixel.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    let (server, _ca, args) = external(
        CaptureConfig::default(),
        "compose",
        &[
            "--to",
            "bob@example.org",
            "--to",
            "carol@example.net",
            "--subject",
            "Quarterly numbers",
            "--body-file",
            body.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
            "--attach",
            notes.to_str().unwrap(),
            "--attach",
            png.to_str().unwrap(),
            "--header",
            "X-Campaign: 7",
            "--header",
            "To: Team <team@example.org>",
        ],
    )
    .await;
    let out = smtp_send_async(args, vec![], None).await;
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    let messages = server.messages();
    let m = &messages[0];
    assert_eq!(m.rcpt_to, ["bob@example.org", "carol@example.net"]);
    assert!(
        m.mail_params.contains(&format!("SIZE={}", m.data.len())),
        "{:?}",
        m.mail_params
    );
    let message = MessageParser::default().parse(&m.data).expect("parses");
    assert_eq!(content_type(message.root_part()), "multipart/mixed");
    assert_eq!(message.subject(), Some("Quarterly numbers"));
    assert_eq!(
        message.to().unwrap().first().unwrap().address(),
        Some("team@example.org")
    );
    assert_eq!(message.header_raw("X-Campaign").map(str::trim), Some("7"));
    assert_eq!(
        message.body_text(0).unwrap().replace("\r\n", "\n"),
        "Plain body,\nwith two lines.\n"
    );
    assert!(message.body_html(0).unwrap().contains("<p>HTML body</p>"));
    let attachments: Vec<(String, String)> = message
        .attachments()
        .map(|a| {
            let name = a.attachment_name().unwrap();
            let name = name.rsplit('-').next().unwrap().to_owned();
            (name, content_type(a))
        })
        .collect();
    assert_eq!(
        attachments,
        [
            ("notes.txt".to_owned(), "text/plain".to_owned()),
            ("pixel.png".to_owned(), "image/png".to_owned())
        ]
    );
}

#[test]
fn message_flag_errors() {
    // --file and a message flag together: a usage error.
    let out = smtp_send(&["--file", "m.eml", "--subject", "x"], &[], None);
    assert_eq!(code(&out), Exit::Usage.code() as i32);
    // A Bcc header, or a header smuggling a second one, is refused before connecting.
    for header in [
        "Bcc: hidden@example.com",
        "X-A: 1\r\nBcc: hidden@example.com",
    ] {
        let out = smtp_send(&["--subject", "x", "--header", header], &[], None);
        assert_eq!(code(&out), Exit::Usage.code() as i32, "{header:?}");
        let line = assert_one_error_line(&out);
        assert!(line.contains("--header"), "{line}");
        assert!(!text(&out.stdout).contains("accepted"));
    }
    // An unreadable attachment or a non-UTF-8 HTML file: a local I/O error.
    let out = smtp_send(&["--attach", "/nonexistent/report.pdf"], &[], None);
    assert_fails(&out, Exit::LocalIo, "/nonexistent/report.pdf");
    let latin1 = temp_file("latin1.html", b"<p>caf\xe9</p>");
    let out = smtp_send(&["--html", latin1.to_str().unwrap()], &[], None);
    assert_fails(&out, Exit::LocalIo, "UTF-8");
}

/// `--header` cannot add what would break the message: `Resent-Bcc` (it would show a hidden
/// address to every recipient, as `Bcc` would), `MIME-Version` and any `Content-*` header (the
/// builder writes the structure; a second `Content-Type` makes the message ambiguous). Each is
/// refused before anything is sent, with a message that names the header and says why.
#[test]
fn header_refuses_structure_and_resent_bcc() {
    for (header, why) in [
        ("Resent-Bcc: hidden@example.com", "Resent-Bcc"),
        ("resent-bcc: hidden@example.com", "Resent-Bcc"),
        ("Content-Type: text/html", "Content-*"),
        ("Content-Transfer-Encoding: 8bit", "Content-*"),
        ("content-disposition: inline", "Content-*"),
        ("MIME-Version: 1.0", "MIME-Version"),
    ] {
        let out = smtp_send(
            &["--subject", "x", "--body", "hello", "--header", header],
            &[],
            None,
        );
        let context = format!("{header:?}: stderr: {}", text(&out.stderr));
        assert_eq!(code(&out), Exit::Usage.code() as i32, "{context}");
        let line = assert_one_error_line(&out);
        assert!(line.contains("--header"), "{context}");
        assert!(line.contains(why), "{context}");
        assert!(text(&out.stdout).is_empty(), "nothing sent: {context}");
    }
}

/// `--bcc` puts a recipient in the envelope and in no header: the server is asked to deliver
/// to it, and the message the visible recipient gets does not name it. (The Bcc refusal used
/// to advise `--to` for hidden recipients, which names them in the To header.)
#[test]
fn bcc_is_in_the_envelope_and_in_no_header() {
    let out = smtp_send(
        &[
            "--from",
            "alice@example.com",
            "--to",
            "visible@example.org",
            "--bcc",
            "hidden@example.net",
            "--subject",
            "s",
            "--body",
            "hello",
        ],
        &[],
        None,
    );
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert!(
        stdout.contains("RCPT TO:<visible@example.org>\nRCPT TO:<hidden@example.net>\n"),
        "{stdout}"
    );
    let head = header_block(&printed_message(&out.stdout));
    assert!(head.contains("visible@example.org"), "{head}");
    assert!(!head.contains("hidden"), "{head}");

    // The refusal of a Bcc header points to --bcc.
    let out = smtp_send(
        &["--subject", "x", "--header", "Bcc: hidden@example.net"],
        &[],
        None,
    );
    assert_fails(&out, Exit::Usage, "--bcc");
}

/// `send_message` with a mail-builder message (text, HTML, an attachment, Cc and Bcc) through
/// the capture server: the envelope holds every recipient, the message the same parts and no
/// Bcc header.
#[tokio::test]
async fn send_message_with_mail_builder_through_the_capture_server() {
    use smtp_io_tokio::mail_builder::MessageBuilder;
    use smtp_io_tokio::mail_builder::headers::address::Address;
    use smtp_io_tokio::message::SendMessage;
    use smtp_io_tokio::{ConnectOptions, TlsConfig, TlsMode};

    let server = CaptureServer::start(CaptureConfig::default())
        .await
        .unwrap();
    let message = MessageBuilder::new()
        .from(("Alice Example", "alice@example.com"))
        .to(("Bob", "bob@example.org"))
        .cc(Address::new_group(
            Some("Friends"),
            vec![
                Address::new_address(Some("Carol"), "carol@example.net"),
                Address::new_address(None::<&str>, "dave@example.org"),
            ],
        ))
        .bcc(vec![("Eve (hidden)", "eve@example.com")])
        .subject("Report")
        .text_body("See the attached report.\n")
        .html_body("<p>See the attached <b>report</b>.</p>\n")
        .attachment("application/pdf", "report.pdf", PDF);
    let mut client = ConnectOptions::new(TlsMode::StartTls)
        .with_tls_config(TlsConfig::from_ca_pem(server.ca_pem().as_bytes()).unwrap())
        .with_tls_server_name("localhost")
        .connect("127.0.0.1", server.addr().port(), "client.example")
        .await
        .unwrap();
    let outcome = client.send_message(&message).await.unwrap();
    client.quit().await.unwrap();

    let messages = server.messages();
    let m = &messages[0];
    assert_eq!(Some(&m.queue_id), outcome.queue_id.as_ref());
    assert_eq!(m.mail_from, "alice@example.com");
    assert_eq!(
        m.rcpt_to,
        [
            "bob@example.org",
            "carol@example.net",
            "dave@example.org",
            "eve@example.com"
        ]
    );
    let headers = header_block(&m.data);
    // No Bcc header line (a random boundary or Message-ID may hold the letters "bcc").
    assert!(
        !headers.lines().any(|line| line.starts_with("bcc:")) && !headers.contains("eve@"),
        "{headers}"
    );
    let parsed = MessageParser::default().parse(&m.data).expect("parses");
    assert!(parsed.header_raw("Bcc").is_none());
    assert_eq!(content_type(parsed.root_part()), "multipart/mixed");
    assert_eq!(parsed.subject(), Some("Report"));
    assert_eq!(
        parsed.body_text(0).unwrap().replace("\r\n", "\n"),
        "See the attached report.\n"
    );
    assert!(parsed.body_html(0).unwrap().contains("<b>report</b>"));
    let attachment = parsed.attachments().next().unwrap();
    assert_eq!(attachment.attachment_name(), Some("report.pdf"));
    assert_eq!(content_type(attachment), "application/pdf");
    assert_eq!(attachment.contents(), PDF);
    let cc: Vec<_> = parsed
        .cc()
        .unwrap()
        .iter()
        .filter_map(|a| a.address())
        .collect();
    assert_eq!(cc, ["carol@example.net", "dave@example.org"]);
}
