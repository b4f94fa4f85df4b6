//! What the examples of this crate share: the server's flags (address, STARTTLS, the CA to
//! trust, the AUTH user) and how they become a connection, the envelope's flags, and how a
//! send's result is printed.
//! Each example keeps its own point (what it builds, how it sends); only the plumbing is here.

// Not every example uses every helper (mail_builder only parses the address).
#![allow(dead_code)]

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;

use smtp_io_tokio::{
    ConnectOptions, SendOutcome, SmtpClient, SmtpError, TlsConfig, TlsMode, TokioTransport,
};

/// The flags that say which server to use and how to reach it.
#[derive(clap::Args)]
pub struct ServerArgs {
    /// The server, as HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:8025")]
    pub server: String,
    /// Upgrade the connection with STARTTLS (fails if the server does not offer it).
    #[arg(long)]
    pub starttls: bool,
    /// Trust the CA certificates of this PEM file instead of the Mozilla roots.
    #[arg(long, value_name = "PEM")]
    pub ca: Option<PathBuf>,
    /// Log in as USER, with the password from the SMTP_PASSWORD environment variable.
    #[arg(long)]
    pub user: Option<String>,
    /// Allow AUTH on a connection without TLS (trusted local servers only).
    #[arg(long)]
    pub allow_plaintext_auth: bool,
}

/// The flags of an example that connects, logs in and sends: the server's and the envelope's.
#[derive(clap::Args)]
pub struct SendArgs {
    // The server flags.
    #[command(flatten)]
    pub server: ServerArgs,
    // The sender, and the recipients of every message.
    #[command(flatten)]
    pub envelope: EnvelopeArgs,
}

/// Who a message goes from and to: the sender (envelope, and From where the example builds the
/// message) and the recipients.
#[derive(clap::Args)]
pub struct EnvelopeArgs {
    /// The sender.
    #[arg(long, default_value = "alice@example.com")]
    pub from: String,
    /// A recipient (repeat for several).
    #[arg(long, default_value = "bob@example.org")]
    pub to: Vec<String>,
}

impl EnvelopeArgs {
    /// The recipients, as the client's `&[&str]`.
    pub fn to(&self) -> Vec<&str> {
        self.to.iter().map(String::as_str).collect()
    }
}

/// A logged-in user: the name and the password read from `SMTP_PASSWORD`.
pub struct Login {
    pub user: String,
    pub password: String,
}

impl ServerArgs {
    /// The user and password to log in with, if `--user` was given. Refused without TLS unless
    /// `--allow-plaintext-auth`: the password would cross the network readable.
    pub fn login(&self) -> Result<Option<Login>, Box<dyn Error>> {
        match &self.user {
            None => Ok(None),
            Some(_) if !self.starttls && !self.allow_plaintext_auth => {
                Err("no password is sent without TLS: add --starttls \
                     (or --allow-plaintext-auth for a trusted local server)"
                    .into())
            }
            Some(user) => Ok(Some(Login {
                user: user.clone(),
                password: std::env::var("SMTP_PASSWORD").map_err(|_| "set SMTP_PASSWORD")?,
            })),
        }
    }

    /// Connect as the flags say: greeting, EHLO and, with STARTTLS, the TLS handshake and EHLO
    /// again. The client refuses AUTH without TLS too, unless `allow_plaintext_auth()`.
    pub async fn connect(&self) -> Result<SmtpClient<TokioTransport>, Box<dyn Error>> {
        let (host, port) = host_port(&self.server)?;
        let mode = if self.starttls {
            TlsMode::StartTls
        } else {
            TlsMode::None
        };
        let mut options = ConnectOptions::new(mode);
        if let Some(ca) = &self.ca {
            options = options.with_tls_config(TlsConfig::from_ca_file(ca)?);
        }
        if self.allow_plaintext_auth {
            options = options.allow_plaintext_auth();
        }
        Ok(options.connect(host, port, "localhost").await?)
    }

    /// [`connect`](Self::connect), then with `--user` log in with the best mechanism the server
    /// offers. `--user` without TLS is refused before anything is opened; after a refused login
    /// the client QUITs before the error is returned.
    pub async fn open(&self) -> Result<SmtpClient<TokioTransport>, Box<dyn Error>> {
        let login = self.login()?;
        let mut client = self.connect().await?;
        if let Some(Login { user, password }) = &login {
            if let Err(refused) = client.login(user, password).await {
                let _ = client.quit().await;
                return Err(refused.into());
            }
        }
        Ok(client)
    }
}

/// `HOST:PORT` (the host may be a bracketed IPv6 address) as a host and a port.
pub fn host_port(server: &str) -> Result<(&str, u16), Box<dyn Error>> {
    Ok(server
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host, port.parse().ok()?)))
        .ok_or("--server must be HOST:PORT")?)
}

/// QUIT, also after a refused message: the send's error comes first, then QUIT's.
pub async fn quit_after(
    client: SmtpClient<TokioTransport>,
    sent: Result<SendOutcome, SmtpError>,
) -> Result<SendOutcome, Box<dyn Error>> {
    let quit = client.quit().await;
    let outcome = sent?;
    quit?;
    Ok(outcome)
}

/// The exit of an example that sends one message: its result line (and each refused
/// recipient), or the error.
pub fn report(result: Result<SendOutcome, Box<dyn Error>>) -> ExitCode {
    match result {
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
