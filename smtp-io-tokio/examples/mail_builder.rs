//! Send a message built with mail-builder (feature `mail-builder`): `send_message` takes the
//! envelope from From / To / Cc / Bcc and never sends the Bcc header.
//!
//! ```sh
//! # A local test server without TLS (e.g. `python3 -m aiosmtpd -n`, on port 8025):
//! cargo run -p smtp-io-tokio --features mail-builder --example mail_builder -- \
//!     --server 127.0.0.1:8025 --from alice@example.com --to bob@example.org \
//!     --cc carol@example.net --bcc archive@example.com
//! ```

use std::error::Error;
use std::process::ExitCode;

use clap::Parser;
use smtp_io_tokio::mail_builder::MessageBuilder;
use smtp_io_tokio::message::SendMessage;
use smtp_io_tokio::{ConnectOptions, SendOutcome, TlsMode};

// HOST:PORT parsing and the result line, shared by the examples.
mod common;

/// Build a message with mail-builder and send it with smtp-io-tokio (no TLS: local servers).
#[derive(Parser)]
struct Args {
    /// The server, as HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:8025")]
    server: String,
    // The From mailbox (MAIL FROM) and the To mailboxes.
    #[command(flatten)]
    envelope: common::EnvelopeArgs,
    /// A Cc mailbox (repeat for several).
    #[arg(long)]
    cc: Vec<String>,
    /// A Bcc mailbox (repeat for several): a recipient nobody sees.
    #[arg(long)]
    bcc: Vec<String>,
}

async fn run(args: Args) -> Result<SendOutcome, Box<dyn Error>> {
    let (host, port) = common::host_port(&args.server)?;
    let mut message = MessageBuilder::new()
        .from(("Alice", args.envelope.from.as_str()))
        .to(args.envelope.to())
        .subject("Sent with mail-builder and smtp-io-tokio")
        .text_body("Hello from mail-builder.")
        .html_body("<p>Hello from <b>mail-builder</b>.</p>")
        .attachment("text/plain", "notes.txt", "attached notes\n");
    if !args.cc.is_empty() {
        message = message.cc(args.cc.iter().map(String::as_str).collect::<Vec<_>>());
    }
    if !args.bcc.is_empty() {
        message = message.bcc(args.bcc.iter().map(String::as_str).collect::<Vec<_>>());
    }
    let mut client = ConnectOptions::new(TlsMode::None)
        .connect(host, port, "localhost")
        .await?;
    let sent = client.send_message(&message).await;
    // QUIT also after a refused message; the send error comes first.
    common::quit_after(client, sent).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    common::report(run(Args::parse()).await)
}
