//! Send N generated messages over one connection with `send_batch`, and print each message's
//! result. With PIPELINING the next message's envelope leaves together with the previous
//! message's end of data; every reply is still matched to its own message.
//!
//! ```sh
//! # A local test server without TLS (e.g. `python3 -m aiosmtpd -n`, on port 8025):
//! cargo run -p smtp-io-tokio --example batch -- --server 127.0.0.1:8025 --count 20
//!
//! # A submission server: STARTTLS, then AUTH with the password from the environment.
//! SMTP_PASSWORD=app-password cargo run -p smtp-io-tokio --example batch -- \
//!     --server smtp.example.com:587 --starttls --user me@example.com \
//!     --from me@example.com --to you@example.org --count 3
//! ```
//!
//! Without `--starttls`, `--user` needs `--allow-plaintext-auth` (trusted local servers only).

use std::error::Error;
use std::process::ExitCode;

use clap::Parser;
use smtp_io_tokio::OutgoingMessage;

mod common;

/// Send generated messages through an SMTP server in one batch.
#[derive(Parser)]
struct Args {
    // The server, the sender and the recipients of every message (examples/common).
    #[command(flatten)]
    mail: common::SendArgs,
    /// How many messages to send.
    #[arg(long, default_value_t = 10)]
    count: usize,
}

/// Send the batch; returns how many messages were not sent.
async fn run(args: Args) -> Result<usize, Box<dyn Error>> {
    let common::SendArgs { server, envelope } = &args.mail;
    let mut client = server.open().await?;

    let n = args.count;
    let bodies: Vec<String> = (1..=n)
        .map(|i| {
            format!(
                "From: {from}\r\nTo: {to}\r\nSubject: batch message {i} of {n}\r\n\r\n\
                 Message {i} of {n}, sent with send_batch.\r\n",
                from = envelope.from,
                to = envelope.to.join(", "),
            )
        })
        .collect();
    let to = envelope.to();
    let batch: Vec<OutgoingMessage<'_>> = bodies
        .iter()
        .map(|body| OutgoingMessage::new(&envelope.from, &to, body.as_bytes()))
        .collect();

    // One result per message, in order. An accepted message's outcome carries the id the engine
    // gave it (`SendOutcome::message`), the id every reply was matched by.
    let results = client.send_batch(&batch).await;
    let mut failed = 0;
    for (i, result) in results.iter().enumerate() {
        match result {
            Ok(outcome) => println!(
                "{} (batch {}/{n}): {}",
                outcome.message,
                i + 1,
                outcome.reply
            ),
            Err(e) => {
                failed += 1;
                println!("batch {}/{n}: not sent: {e}", i + 1);
            }
        }
    }
    client.quit().await?;
    Ok(failed)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(0) => ExitCode::SUCCESS,
        Ok(failed) => {
            eprintln!("{failed} message(s) not sent");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
