//! Send a message built with lettre's `Message` builder through our client: the envelope from
//! `Message::envelope()`, the bytes from `Message::formatted()` (lettre leaves the `Bcc` header
//! out of them), sent with `send_mail_bytes`. A lettre user keeps building mail as before and
//! only changes the transport. lettre is used with its `builder` feature only, no transport.
//!
//! ```sh
//! # A local test server without TLS (e.g. `python3 -m aiosmtpd -n`, on port 8025):
//! cargo run -p smtp-io-tokio --example lettre -- --server 127.0.0.1:8025 \
//!     --from alice@example.com --to bob@example.org --bcc archive@example.com
//! ```
//!
//! With `--starttls` the connection is upgraded first (`--ca PEM` to trust a test CA), and with
//! `--user` the password comes from `SMTP_PASSWORD` (refused without TLS unless
//! `--allow-plaintext-auth`).

use std::error::Error;
use std::process::ExitCode;

use clap::Parser;
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, MultiPart, SinglePart};
use smtp_io_tokio::SendOutcome;

mod common;

/// Build a message with lettre and send it with smtp-io-tokio.
#[derive(Parser)]
struct Args {
    // The server, and the From and To mailboxes.
    #[command(flatten)]
    mail: common::SendArgs,
    /// A Bcc mailbox (repeat for several): it gets the message, nobody sees it in the headers.
    #[arg(long)]
    bcc: Vec<String>,
}

/// The message, built the way a lettre user builds it: text and HTML alternatives and an
/// attachment.
fn build(args: &Args) -> Result<Message, Box<dyn Error>> {
    let mut builder = Message::builder()
        .from(args.mail.envelope.from.parse()?)
        .subject("Sent with lettre's builder and smtp-io-tokio")
        // lettre adds Date itself; a Message-ID only when asked (None: a generated one).
        .message_id(None);
    for to in &args.mail.envelope.to {
        builder = builder.to(to.parse()?);
    }
    for bcc in &args.bcc {
        builder = builder.bcc(bcc.parse()?);
    }
    let body = MultiPart::mixed()
        .multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::plain("Hello from lettre's Message.".to_owned()))
                .singlepart(SinglePart::html(
                    "<p>Hello from lettre's <b>Message</b>.</p>".to_owned(),
                )),
        )
        .singlepart(
            Attachment::new("notes.txt".to_owned())
                .body("attached notes\n".to_owned(), ContentType::TEXT_PLAIN),
        );
    Ok(builder.multipart(body)?)
}

async fn run(args: Args) -> Result<SendOutcome, Box<dyn Error>> {
    let message = build(&args)?;

    // lettre's envelope: the From (or Sender) mailbox, and To + Cc + Bcc.
    let envelope = message.envelope();
    let from = envelope.from().map(|a| a.to_string()).unwrap_or_default();
    let to: Vec<String> = envelope.to().iter().map(|a| a.to_string()).collect();
    let to: Vec<&str> = to.iter().map(String::as_str).collect();
    // The message as lettre formats it, CRLF line endings, without Bcc.
    let bytes = message.formatted();

    // The server flags, the connection and the login are shared by the examples
    // (examples/common).
    let mut client = args.mail.server.open().await?;
    let sent = client.send_mail_bytes(&from, &to, &bytes).await;
    // QUIT also after a refused message; the send error comes first.
    common::quit_after(client, sent).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    common::report(run(Args::parse()).await)
}
