//! Send one message with the blocking client (no async runtime): plain TCP or STARTTLS, optional AUTH, the message
//! read from a file and sent with `send_mail_bytes`.
//!
//! ```sh
//! # A local test server without TLS (e.g. `python3 -m aiosmtpd -n`, on port 8025):
//! cargo run -p smtp-io-std --example send -- --server 127.0.0.1:8025 \
//!     --from alice@example.com --to bob@example.org --file examples/hello.eml
//!
//! # A submission server: STARTTLS, then AUTH with the password from the environment.
//! SMTP_PASSWORD=app-password cargo run -p smtp-io-std --example send -- \
//!     --server smtp.example.com:587 --starttls --user me@example.com \
//!     --from me@example.com --to you@example.org --file message.eml
//! ```
//!
//! Without `--starttls` nothing is encrypted, so `--user` is refused unless
//! `--allow-plaintext-auth` is given (for a trusted server on loopback only: the password would
//! cross the network readable). The client refuses it too: `ConnectOptions` only allows AUTH
//! without TLS after `allow_plaintext_auth()`.

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use smtp_io_std::{ConnectOptions, SendOutcome, TlsConfig, TlsMode};

/// Send one message through an SMTP server.
#[derive(Parser)]
struct Args {
    /// The server, as HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:8025")]
    server: String,
    /// Upgrade the connection with STARTTLS (fails if the server does not offer it).
    #[arg(long)]
    starttls: bool,
    /// Trust the CA certificates of this PEM file instead of the Mozilla roots.
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
    /// Log in as USER, with the password from the SMTP_PASSWORD environment variable.
    #[arg(long)]
    user: Option<String>,
    /// Allow AUTH on a connection without TLS (trusted local servers only).
    #[arg(long)]
    allow_plaintext_auth: bool,
    /// The envelope sender.
    #[arg(long, default_value = "alice@example.com")]
    from: String,
    /// An envelope recipient (repeat for several).
    #[arg(long, default_value = "bob@example.org")]
    to: Vec<String>,
    /// The message: a complete RFC 5322 message (headers, blank line, body).
    #[arg(long)]
    file: PathBuf,
}

fn run(args: Args) -> Result<SendOutcome, Box<dyn Error>> {
    let (host, port) = args
        .server
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host, port.parse().ok()?)))
        .ok_or("--server must be HOST:PORT")?;
    let password = match &args.user {
        None => None,
        Some(_) if !args.starttls && !args.allow_plaintext_auth => {
            return Err("no password is sent without TLS: add --starttls \
                        (or --allow-plaintext-auth for a trusted local server)"
                .into());
        }
        Some(_) => Some(std::env::var("SMTP_PASSWORD").map_err(|_| "set SMTP_PASSWORD")?),
    };
    let body = std::fs::read(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;

    let mode = if args.starttls {
        TlsMode::StartTls
    } else {
        TlsMode::None
    };
    let mut options = ConnectOptions::new(mode);
    if let Some(ca) = &args.ca {
        options = options.with_tls_config(TlsConfig::from_ca_file(ca)?);
    }
    if args.allow_plaintext_auth {
        options = options.allow_plaintext_auth();
    }
    // Greeting, EHLO and, with STARTTLS, the TLS handshake and EHLO again.
    let mut client = options.connect(host, port, "localhost")?;

    let to: Vec<&str> = args.to.iter().map(String::as_str).collect();
    let mut sent = || {
        if let (Some(user), Some(password)) = (&args.user, &password) {
            client.login(user, password)?; // the best mechanism offered
        }
        client.send_mail_bytes(&args.from, &to, &body)
    };
    let sent = sent();
    // QUIT also after a refused message; the send error comes first.
    let quit = client.quit();
    let outcome = sent?;
    quit?;
    Ok(outcome)
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(outcome) => {
            println!("{} accepted: {}", outcome.message, outcome.reply);
            for refused in outcome.refused() {
                println!("  refused {}: {}", refused.recipient, refused.reply);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
