//! Send one message with the tokio client: plain TCP or STARTTLS, optional AUTH, the message
//! read from a file and sent with `send_mail_bytes`.
//!
//! ```sh
//! # A local test server without TLS (e.g. `python3 -m aiosmtpd -n`, on port 8025):
//! cargo run -p smtp-io-tokio --example send -- --server 127.0.0.1:8025 \
//!     --from alice@example.com --to bob@example.org --file examples/hello.eml
//!
//! # A submission server: STARTTLS, then AUTH with the password from the environment.
//! SMTP_PASSWORD=app-password cargo run -p smtp-io-tokio --example send -- \
//!     --server smtp.example.com:587 --starttls --user me@example.com \
//!     --from me@example.com --to you@example.org --file message.eml
//! ```
//!
//! Without `--starttls` nothing is encrypted, so `--user` is refused unless
//! `--allow-plaintext-auth` is given (for a trusted server on loopback only: the password would
//! cross the network readable). The client refuses it too: `ConnectOptions` only allows AUTH
//! without TLS after `allow_plaintext_auth()`.
//!
//! The server flags and the connection (`ServerArgs`) are shared by the examples, in
//! `examples/common/mod.rs`.

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use smtp_io_tokio::SendOutcome;

mod common;

/// Send one message through an SMTP server.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    mail: common::SendArgs,
    /// The message: a complete RFC 5322 message (headers, blank line, body).
    #[arg(long)]
    file: PathBuf,
}

async fn run(args: Args) -> Result<SendOutcome, Box<dyn Error>> {
    let common::SendArgs { server, envelope } = &args.mail;
    let body = std::fs::read(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
    // Greeting, EHLO and, with STARTTLS, the TLS handshake and EHLO again; with `--user`, AUTH
    // with the best mechanism offered (refused without TLS, before anything is opened).
    let mut client = server.open().await?;
    let sent = client
        .send_mail_bytes(&envelope.from, &envelope.to(), &body)
        .await;
    // QUIT also after a refused message; the send error comes first.
    common::quit_after(client, sent).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // "message #N accepted: <reply>", each refused recipient, or the error.
    common::report(run(Args::parse()).await)
}
