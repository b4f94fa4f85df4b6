//! The command line: [`Cli`] (what clap parses) and [`Plan`] (what it means, defaults resolved).

use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use smtp_io_tokio::smtp_proto::command::Domain;
use smtp_io_tokio::smtp_proto::session::Envelope;
use smtp_io_tokio::{AuthMechanism, PlaintextAuth, Protocol, SmtpUrl, TlsMode};

use crate::compose::{Compose, TextBody, parse_header};
use crate::exit::{Exit, Failure};

/// The environment variable holding the password or OAuth token.
pub const PASSWORD_ENV: &str = "SMTP_PASSWORD";

/// The envelope sender used in capture mode when `--from` is not given.
pub const SAMPLE_FROM: &str = "sender@example.com";
/// The envelope recipient used in capture mode when `--to` is not given.
pub const SAMPLE_TO: &str = "recipient@example.org";

const ABOUT: &str = "Send one message through an SMTP server.

Without --server, a local capture server is started in-process (STARTTLS with a freshly generated \
CA, AUTH, pipelining) and what it received is printed: a self-contained demonstration of the whole \
client path.";

const AFTER_HELP: &str = "The password (or OAuth token for xoauth2 / oauthbearer) comes from the \
SMTP_PASSWORD environment variable or --password-file, never from a flag value.

Message: the file given with --file, else standard input (streamed, not loaded in memory). In \
capture mode, when standard input is a terminal, a built-in sample message is sent instead. \
With --subject, --body, --body-file, --html, --attach or --header the message is built instead \
(From and To from --from and --to; Date and Message-ID added). A message larger than 4 MiB \
shows a progress bar on standard error when it is a terminal.

Examples:
  smtp-send                                          # capture mode, sample message
  smtp-send -v --user me < message.eml               # capture mode, with AUTH and transcript
  smtp-send --subject Hi --body Hello --attach report.pdf   # capture mode, a built message
  SMTP_PASSWORD=... smtp-send --server smtp.example.com:587 --user me@example.com \\
      --from me@example.com --to you@example.org --file message.eml";

/// How the connection is protected (`--tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsArg {
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
    /// Plain TCP upgraded with STARTTLS; fails if the server does not offer it.
    Starttls,
    /// No encryption at all (trusted local relays only).
    None,
}

impl From<TlsArg> for TlsMode {
    fn from(t: TlsArg) -> TlsMode {
        match t {
            TlsArg::Implicit => TlsMode::Implicit,
            TlsArg::Starttls => TlsMode::StartTls,
            TlsArg::None => TlsMode::None,
        }
    }
}

/// The AUTH mechanism (`--auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthArg {
    /// AUTH PLAIN.
    Plain,
    /// AUTH LOGIN.
    Login,
    /// AUTH XOAUTH2 (the secret is an OAuth 2.0 access token).
    Xoauth2,
    /// AUTH OAUTHBEARER (the secret is an OAuth 2.0 access token).
    Oauthbearer,
    /// AUTH SCRAM-SHA-256 (RFC 7677): the password never crosses the wire and the server proves
    /// it knows it.
    #[value(name = "scram-sha-256")]
    ScramSha256,
    /// AUTH SCRAM-SHA-256-PLUS: SCRAM bound to this TLS 1.3 connection (RFC 9266).
    #[value(name = "scram-sha-256-plus")]
    ScramSha256Plus,
    /// The best password mechanism the server offers: SCRAM-SHA-256-PLUS, SCRAM-SHA-256, PLAIN,
    /// else LOGIN.
    Auto,
}

impl AuthArg {
    /// The mechanism to force, or `None` for automatic choice.
    pub fn mechanism(self) -> Option<AuthMechanism> {
        match self {
            AuthArg::Plain => Some(AuthMechanism::Plain),
            AuthArg::Login => Some(AuthMechanism::Login),
            AuthArg::Xoauth2 => Some(AuthMechanism::XOAuth2),
            AuthArg::Oauthbearer => Some(AuthMechanism::OAuthBearer),
            AuthArg::ScramSha256 => Some(AuthMechanism::ScramSha256),
            AuthArg::ScramSha256Plus => Some(AuthMechanism::ScramSha256Plus),
            AuthArg::Auto => None,
        }
    }
}

/// The arguments of `smtp-send`, as parsed.
#[derive(Debug, Clone, Parser)]
#[command(name = "smtp-send", version, about = ABOUT)]
pub struct Cli {
    /// The SMTP server, as HOST:PORT (an IPv6 address goes in brackets). Without it, a local
    /// capture server is used.
    #[arg(long, value_name = "HOST:PORT", requires_all = ["from", "to"])]
    pub server: Option<String>,

    /// The server as a connection URL instead of --server, --tls, --user and --auth:
    /// smtp://user:password@host:port (STARTTLS; user, password and port optional), smtps://...
    /// (implicit TLS), smtp://host:25?tls=none, lmtp://...; parameters helo, auth, timeout,
    /// connect_timeout, deadline. A password in the URL shows wherever the command line does:
    /// prefer SMTP_PASSWORD beside a URL with the user only.
    #[arg(
        long,
        value_name = "URL",
        requires_all = ["from", "to"],
        conflicts_with_all = ["server", "tls", "user", "auth"]
    )]
    pub url: Option<String>,

    /// Reach the server through a proxy: socks5://user@host:port or http://user@host:port
    /// (HTTP CONNECT; the user is optional). The proxy's password comes from SMTP_PROXY_PASSWORD (a password in the
    /// URL works too, and shows wherever the command line does). TLS runs end to end with the
    /// SMTP server, and its certificate is checked for the server's name.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,

    /// Present this client certificate (PEM: the certificate, then any intermediates) to
    /// servers that authenticate clients by certificate (mutual TLS). Needs --client-key.
    #[arg(long, value_name = "PEM", requires = "client_key")]
    pub client_cert: Option<PathBuf>,

    /// The client certificate's private key (PEM). Needs --client-cert.
    #[arg(long, value_name = "PEM", requires = "client_cert")]
    pub client_key: Option<PathBuf>,

    /// Connect from this local address (IPv4 or IPv6).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<std::net::IpAddr>,

    /// Connection security [default: implicit for port 465, else starttls]
    #[arg(long, value_enum, value_name = "MODE")]
    pub tls: Option<TlsArg>,

    /// AUTH mechanism [default: auto when --user is given, no AUTH otherwise]
    #[arg(long, value_enum, value_name = "MECH", requires = "user")]
    pub auth: Option<AuthArg>,

    /// The user name to authenticate as (secret: SMTP_PASSWORD or --password-file).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// Read the password or token from this file (first line) instead of SMTP_PASSWORD.
    #[arg(long, value_name = "PATH", requires = "user")]
    pub password_file: Option<PathBuf>,

    /// The envelope sender (MAIL FROM). Required with --server.
    #[arg(long, value_name = "ADDR")]
    pub from: Option<String>,

    /// An envelope recipient (RCPT TO); repeat for several. At least one is required with
    /// --server.
    #[arg(long, value_name = "ADDR")]
    pub to: Vec<String>,

    /// Trust only the CA certificate(s) in this PEM file instead of the Mozilla roots.
    #[arg(long, value_name = "PEM", conflicts_with = "insecure")]
    pub ca_file: Option<PathBuf>,

    /// Accept any server certificate (DANGEROUS: no protection against interception).
    #[arg(long)]
    pub insecure: bool,

    /// Seconds to wait for each server reply, and for the connection [default: the RFC 5321
    /// limits, 2 to 10 minutes per reply, 30 s to connect]
    #[arg(long, value_name = "SECS", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,

    /// A deadline in seconds for the whole run, from connecting to the end of QUIT, however the
    /// time is spent (a server that answers or reads very slowly cannot hold the run longer).
    /// Exit code 8 when it passes.
    #[arg(long, value_name = "SECS", value_parser = parse_timeout)]
    pub deadline: Option<Duration>,

    /// Send the credentials even though the connection is not encrypted (--tls none). Without
    /// it, AUTH over plaintext is refused before anything is sent: the password would cross
    /// the network readable. (The capture server on loopback allows it by itself.)
    #[arg(long)]
    pub allow_plaintext_auth: bool,

    /// Print the SMTP transcript (C: / S: lines, credentials redacted) to standard error.
    #[arg(short, long)]
    pub verbose: bool,

    /// The name to introduce the client with in EHLO.
    #[arg(long, value_name = "NAME", default_value = "localhost")]
    pub ehlo: String,

    /// The message file (a complete RFC 5322 message) [default: standard input, unless the
    /// message is built with the flags below]
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with_all = ["subject", "body", "body_file", "html", "attach", "header"]
    )]
    pub file: Option<PathBuf>,

    /// Build the message (instead of reading it): its Subject.
    #[arg(long, value_name = "TEXT", help_heading = "Building the message")]
    pub subject: Option<String>,

    /// The plain-text body.
    #[arg(
        long,
        value_name = "TEXT",
        conflicts_with = "body_file",
        help_heading = "Building the message"
    )]
    pub body: Option<String>,

    /// The plain-text body, read from a UTF-8 file.
    #[arg(long, value_name = "PATH", help_heading = "Building the message")]
    pub body_file: Option<PathBuf>,

    /// An HTML body, read from a UTF-8 file (with a text body: multipart/alternative).
    #[arg(long, value_name = "PATH", help_heading = "Building the message")]
    pub html: Option<PathBuf>,

    /// Attach a file (repeatable); its content type comes from its extension.
    #[arg(long, value_name = "PATH", help_heading = "Building the message")]
    pub attach: Vec<PathBuf>,

    /// Add a header, or replace one smtp-send writes (From, To, Subject, Date, Message-ID);
    /// repeatable. Bcc and Resent-Bcc are refused (hidden recipients are given with --to
    /// only), and so are MIME-Version and Content-* (smtp-send writes the structure).
    #[arg(
        long,
        value_name = "'NAME: VALUE'",
        help_heading = "Building the message"
    )]
    pub header: Vec<String>,

    /// Sign the message with DKIM using this private key (PEM: RSA as PKCS#1 or PKCS#8, of at
    /// least 1024 bits; Ed25519 as PKCS#8). Needs --dkim-selector and --dkim-domain. The
    /// signature covers the message as sent (relaxed/relaxed); a message read from standard
    /// input is then held in memory (a file is read twice instead).
    #[arg(
        long,
        value_name = "PEM",
        requires_all = ["dkim_selector", "dkim_domain"],
        help_heading = "DKIM signing"
    )]
    pub dkim_key: Option<PathBuf>,

    /// The DKIM selector (s=): the key's public half is published at
    /// SELECTOR._domainkey.DOMAIN. Needs --dkim-key and --dkim-domain.
    #[arg(
        long,
        value_name = "SELECTOR",
        requires_all = ["dkim_key", "dkim_domain"],
        help_heading = "DKIM signing"
    )]
    pub dkim_selector: Option<String>,

    /// The signing domain (d=). Needs --dkim-key and --dkim-selector.
    #[arg(
        long,
        value_name = "DOMAIN",
        requires_all = ["dkim_key", "dkim_selector"],
        help_heading = "DKIM signing"
    )]
    pub dkim_domain: Option<String>,
}

/// The clap command, with the notes and the exit-code table after the options in `--help`.
pub fn command() -> clap::Command {
    Cli::command().after_help(format!("{AFTER_HELP}\n\n{}", crate::exit::exit_code_help()))
}

/// Parse arguments (the first is the program name) with [`command`].
pub fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = command().try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches)
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err("the timeout must be more than 0 and at most 86400 seconds".to_owned());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Where the message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A real server.
    Server {
        /// The host name or IP address (IPv6 without brackets).
        host: String,
        /// The port.
        port: u16,
    },
    /// The in-process capture server.
    Capture,
}

/// Which certificates to trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The Mozilla roots (or, in capture mode, the capture server's CA).
    Default,
    /// The CA certificates of this PEM file.
    CaFile(PathBuf),
    /// Any certificate.
    Insecure,
}

/// Where the message comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageSource {
    /// Built from the message flags (`--subject`, `--body`, `--attach`, ...).
    Compose(Compose),
    /// A file.
    File(PathBuf),
    /// Standard input, streamed.
    Stdin,
    /// The built-in sample (capture mode with a terminal on standard input).
    Sample,
}

/// The `--proxy` URL, checked; kept out of `Debug` (it may hold a password).
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl(pub String);

impl std::fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProxyUrl([redacted])")
    }
}

/// A password given in `--url`: kept out of `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct UrlPassword(pub String);

impl std::fmt::Debug for UrlPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlPassword([redacted])")
    }
}

/// The DKIM signer of `--dkim-key`, `--dkim-selector` and `--dkim-domain`, its key loaded and
/// checked. `Debug` never shows the key; two are equal when they sign for the same domain and
/// selector with the same key (the same public key).
#[derive(Debug, Clone)]
pub struct Dkim(pub smtp_dkim::DkimSigner);

impl PartialEq for Dkim {
    fn eq(&self, other: &Dkim) -> bool {
        self.0.domain() == other.0.domain()
            && self.0.selector() == other.0.selector()
            && self.0.key().dns_txt_record() == other.0.key().dns_txt_record()
    }
}

impl Eq for Dkim {}

/// Load the DKIM key and build the signer, before any connection: an unreadable key file is a
/// local I/O error, a malformed key or name a usage error (never showing the key).
pub fn load_dkim(key: &std::path::Path, selector: &str, domain: &str) -> Result<Dkim, Failure> {
    let pem = zeroize::Zeroizing::new(std::fs::read_to_string(key).map_err(|e| {
        Failure::new(
            Exit::LocalIo,
            format!("cannot read the DKIM key {}: {e}", key.display()),
        )
    })?);
    let key = smtp_dkim::DkimKey::from_pem(&pem)
        .map_err(|e| Failure::new(Exit::Usage, format!("--dkim-key {}: {e}", key.display())))?;
    smtp_dkim::DkimSigner::new(key, domain, selector)
        .map(Dkim)
        .map_err(|e| Failure::new(Exit::Usage, format!("DKIM: {e}")))
}

/// What to do, with every default resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The server or capture mode.
    pub target: Target,
    /// The connection security.
    pub tls: TlsMode,
    /// `Some((user, mechanism))` to authenticate; `None` mechanism means automatic.
    pub auth: Option<(String, Option<AuthMechanism>)>,
    /// The secret file, when given.
    pub password_file: Option<PathBuf>,
    /// The password of `--url`, when it has one.
    pub url_password: Option<UrlPassword>,
    /// SMTP, or LMTP (`--url lmtp://...`).
    pub protocol: Protocol,
    /// The proxy to go through, when given.
    pub proxy: Option<ProxyUrl>,
    /// The local address to connect from, when given.
    pub bind: Option<std::net::IpAddr>,
    /// The client certificate and key files (mutual TLS), when given.
    pub client_certificate: Option<(PathBuf, PathBuf)>,
    /// The envelope sender.
    pub from: String,
    /// The envelope recipients (at least one).
    pub to: Vec<String>,
    /// Which certificates to trust.
    pub trust: Trust,
    /// The per-reply and connect timeout, when given.
    pub timeout: Option<Duration>,
    /// The connect timeout alone (`--url ...?connect_timeout=`), when given.
    pub connect_timeout: Option<Duration>,
    /// The deadline for the whole run, when given.
    pub deadline: Option<Duration>,
    /// Whether AUTH may be sent without TLS.
    pub plaintext_auth: PlaintextAuth,
    /// Print the transcript to standard error.
    pub verbose: bool,
    /// The EHLO name.
    pub ehlo: String,
    /// The message.
    pub message: MessageSource,
    /// Sign the message with DKIM, when asked.
    pub dkim: Option<Dkim>,
}

/// Split `HOST:PORT` (or `[V6]:PORT`, or `HOST` alone: port `None`).
pub fn parse_server(s: &str) -> Result<(String, Option<u16>), Failure> {
    let bad = |why: &str| Failure::new(Exit::Usage, format!("invalid --server {s:?}: {why}"));
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("missing ']' after the IPv6 address"))?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| bad("expected ':' after ']'"))?,
                ),
            ),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err(bad("write IPv6 addresses in brackets, e.g. [::1]:25"));
            }
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(bad("the port must be a number from 1 to 65535")),
            Ok(n) => Some(n),
        },
    };
    Ok((host.to_owned(), port))
}

impl Cli {
    /// The message-building flags, headers checked.
    fn compose(&self) -> Result<Compose, Failure> {
        Ok(Compose {
            subject: self.subject.clone(),
            text: match (&self.body, &self.body_file) {
                (Some(text), _) => Some(TextBody::Inline(text.clone())),
                (None, Some(path)) => Some(TextBody::File(path.clone())),
                (None, None) => None,
            },
            html: self.html.clone(),
            attachments: self.attach.clone(),
            headers: self
                .header
                .iter()
                .map(|h| parse_header(h))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Resolve the defaults. `stdin_is_terminal` decides the capture-mode sample message.
    pub fn plan(&self, stdin_is_terminal: bool) -> Result<Plan, Failure> {
        if let Some(url) = &self.url {
            return self.plan_url(url, stdin_is_terminal);
        }
        let (target, tls) = match &self.server {
            Some(s) => {
                let (host, port) = parse_server(s)?;
                let tls: TlsMode = match (self.tls, port) {
                    (Some(t), _) => t.into(),
                    (None, Some(465)) => TlsMode::Implicit,
                    (None, _) => TlsMode::StartTls,
                };
                let port = port.unwrap_or(tls.default_port());
                (Target::Server { host, port }, tls)
            }
            None => (
                Target::Capture,
                self.tls.map(TlsMode::from).unwrap_or(TlsMode::StartTls),
            ),
        };
        let capture = target == Target::Capture;
        let from = match (&self.from, capture) {
            (Some(f), _) => f.clone(),
            (None, true) => SAMPLE_FROM.to_owned(),
            (None, false) => return Err(Failure::new(Exit::Usage, "--from is required")),
        };
        let to = match (self.to.is_empty(), capture) {
            (false, _) => self.to.clone(),
            (true, true) => vec![SAMPLE_TO.to_owned()],
            (true, false) => return Err(Failure::new(Exit::Usage, "--to is required")),
        };
        // Check the addresses and the EHLO name now, before any connection is opened.
        let to_refs: Vec<&str> = to.iter().map(String::as_str).collect();
        Envelope::new(&from, &to_refs)
            .map_err(|e| Failure::new(Exit::Usage, format!("--from / --to: {e}")))?;
        Domain::new(&self.ehlo).map_err(|e| Failure::new(Exit::Usage, format!("--ehlo: {e}")))?;
        let auth = self
            .user
            .as_ref()
            .map(|u| (u.clone(), self.auth.unwrap_or(AuthArg::Auto).mechanism()));
        let trust = match (&self.ca_file, self.insecure) {
            (Some(p), _) => Trust::CaFile(p.clone()),
            (None, true) => Trust::Insecure,
            (None, false) => Trust::Default,
        };
        let proxy = match &self.proxy {
            None => None,
            Some(url) => {
                // The error names what is wrong, never the URL (it may hold a password).
                smtp_io_tokio::Proxy::parse(url)
                    .map_err(|e| Failure::new(Exit::Usage, format!("invalid --proxy: {e}")))?;
                Some(ProxyUrl(url.clone()))
            }
        };
        let compose = self.compose()?;
        let dkim = match (&self.dkim_key, &self.dkim_selector, &self.dkim_domain) {
            (Some(key), Some(selector), Some(domain)) => Some(load_dkim(key, selector, domain)?),
            (None, None, None) => None,
            _ => {
                return Err(Failure::new(
                    Exit::Usage,
                    "--dkim-key, --dkim-selector and --dkim-domain go together",
                ));
            }
        };
        let message = match &self.file {
            Some(p) => MessageSource::File(p.clone()),
            None if compose.is_requested() => MessageSource::Compose(compose),
            None if capture && stdin_is_terminal => MessageSource::Sample,
            None => MessageSource::Stdin,
        };
        Ok(Plan {
            target,
            tls,
            auth,
            password_file: self.password_file.clone(),
            url_password: None,
            protocol: Protocol::Smtp,
            proxy,
            bind: self.bind,
            client_certificate: self.client_cert.clone().zip(self.client_key.clone()),
            from,
            to,
            trust,
            timeout: self.timeout,
            connect_timeout: None,
            deadline: self.deadline,
            // The capture server runs on loopback in this process: nothing crosses a network.
            plaintext_auth: if self.allow_plaintext_auth || capture {
                PlaintextAuth::Allow
            } else {
                PlaintextAuth::Refuse
            },
            verbose: self.verbose,
            ehlo: self.ehlo.clone(),
            message,
            dkim,
        })
    }
}

impl Cli {
    /// The plan of `--url`: the server, TLS mode, user, mechanism, protocol, EHLO name and
    /// limits from the URL (a flag given beside it for a limit wins), the rest as usual.
    fn plan_url(&self, url: &str, stdin_is_terminal: bool) -> Result<Plan, Failure> {
        // The error names the part that is wrong, never the URL (it may hold a password).
        let parsed = SmtpUrl::parse(url)
            .map_err(|e| Failure::new(Exit::Usage, format!("invalid --url: {e}")))?;
        let mut plan = Cli {
            url: None,
            server: Some(format!("[{}]:{}", parsed.host, parsed.port)),
            tls: None,
            ..self.clone()
        }
        .plan(stdin_is_terminal)?;
        plan.target = Target::Server {
            host: parsed.host.clone(),
            port: parsed.port,
        };
        plan.tls = parsed.tls;
        plan.protocol = parsed.protocol;
        plan.auth = parsed.user.clone().map(|user| (user, parsed.mechanism));
        plan.url_password = parsed
            .password
            .as_ref()
            .and_then(|p| p.expose_str())
            .map(|p| UrlPassword(p.to_owned()));
        plan.timeout = self.timeout.or(parsed.timeout);
        plan.connect_timeout = parsed.connect_timeout;
        plan.deadline = self.deadline.or(parsed.deadline);
        if let Some(helo) = &parsed.helo {
            plan.ehlo = helo.as_str().to_owned();
        }
        Ok(plan)
    }
}

/// The built-in sample message, addressed from `from` to `to`, with LF line endings (the client
/// normalises them) and a line starting with a dot (to show dot-stuffing).
pub fn sample_message(from: &str, to: &[String]) -> String {
    let to: Vec<String> = to.iter().map(|t| format!("<{t}>")).collect();
    format!(
        "From: <{from}>\n\
         To: {}\n\
         Subject: smtp-send sample message\n\
         MIME-Version: 1.0\n\
         Content-Type: text/plain; charset=utf-8\n\
         \n\
         Hello from smtp-send.\n\
         .This line starts with a dot: it travels dot-stuffed and arrives unchanged.\n",
        to.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        try_parse_from(std::iter::once("smtp-send").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_valid() {
        command().debug_assert();
    }

    #[test]
    fn capture_mode_defaults() {
        let plan = parse(&[]).unwrap().plan(true).unwrap();
        assert_eq!(plan.target, Target::Capture);
        assert_eq!(plan.tls, TlsMode::StartTls);
        assert_eq!(plan.from, SAMPLE_FROM);
        assert_eq!(plan.to, [SAMPLE_TO]);
        assert_eq!(plan.message, MessageSource::Sample);
        assert_eq!(plan.auth, None);
        assert_eq!(plan.ehlo, "localhost");
        let piped = parse(&[]).unwrap().plan(false).unwrap();
        assert_eq!(piped.message, MessageSource::Stdin);
    }

    #[test]
    fn server_mode_needs_from_and_to() {
        let err = parse(&["--server", "mx:25", "--from", "a@b"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--to"), "{err}");
        let err = parse(&["--server", "mx:25", "--to", "a@b"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn tls_and_auth_defaults() {
        let base = ["--from", "a@b", "--to", "c@d", "--server"];
        let plan = |server: &str, more: &[&str]| {
            let mut args = base.to_vec();
            args.push(server);
            args.extend_from_slice(more);
            parse(&args).unwrap().plan(false).unwrap()
        };
        assert_eq!(plan("smtp.example.com:465", &[]).tls, TlsMode::Implicit);
        assert_eq!(plan("smtp.example.com:587", &[]).tls, TlsMode::StartTls);
        assert_eq!(plan("smtp.example.com:25", &[]).tls, TlsMode::StartTls);
        let p = plan("smtp.example.com", &["--tls", "implicit"]);
        assert_eq!(
            p.target,
            Target::Server {
                host: "smtp.example.com".into(),
                port: 465
            }
        );
        let p = plan("mx:2525", &["--user", "me", "--tls", "none"]);
        assert_eq!(p.tls, TlsMode::None);
        assert_eq!(p.auth, Some(("me".to_owned(), None)));
        let p = plan("mx:2525", &["--user", "me", "--auth", "login"]);
        assert_eq!(p.auth, Some(("me".to_owned(), Some(AuthMechanism::Login))));
        let p = plan("mx:2525", &["--user", "me", "--auth", "scram-sha-256"]);
        assert_eq!(
            p.auth,
            Some(("me".to_owned(), Some(AuthMechanism::ScramSha256)))
        );
        let p = plan("mx:2525", &["--user", "me", "--auth", "scram-sha-256-plus"]);
        assert_eq!(
            p.auth,
            Some(("me".to_owned(), Some(AuthMechanism::ScramSha256Plus)))
        );
        assert!(parse(&["--auth", "plain"]).is_err(), "--auth needs --user");
        assert!(parse(&["--insecure", "--ca-file", "x.pem"]).is_err());
        assert!(parse(&["--tls", "ssl"]).is_err());
    }

    #[test]
    fn timeouts_and_servers() {
        assert_eq!(
            parse(&["--timeout", "1.5"]).unwrap().timeout,
            Some(Duration::from_millis(1500))
        );
        assert!(parse(&["--timeout", "0"]).is_err());
        assert!(parse(&["--timeout", "soon"]).is_err());
        assert_eq!(
            parse_server("[::1]:25").unwrap(),
            ("::1".to_owned(), Some(25))
        );
        assert_eq!(parse_server("mx").unwrap(), ("mx".to_owned(), None));
        assert_eq!(parse_server("::1").unwrap_err().exit, Exit::Usage);
        assert_eq!(parse_server("mx:0").unwrap_err().exit, Exit::Usage);
        assert_eq!(parse_server(":25").unwrap_err().exit, Exit::Usage);
    }

    #[test]
    fn addresses_and_ehlo_are_checked_before_connecting() {
        let bad = |args: &[&str]| parse(args).unwrap().plan(false).unwrap_err();
        let f = bad(&["--from", "a b@example.com"]);
        assert_eq!(f.exit, Exit::Usage);
        assert!(
            f.message
                .starts_with("--from / --to: invalid sender address"),
            "{f}"
        );
        let f = bad(&["--to", "x@example.org\r\nRCPT TO:<evil@example.org>"]);
        assert_eq!(f.exit, Exit::Usage);
        assert_eq!(bad(&["--to", ""]).exit, Exit::Usage);
        assert_eq!(bad(&["--ehlo", "bad name"]).exit, Exit::Usage);
        assert!(
            parse(&["--from", "", "--ehlo", "client.example.com"])
                .unwrap()
                .plan(false)
                .is_ok()
        );
    }

    #[test]
    fn message_flags_build_the_message() {
        let plan = parse(&["--subject", "Hi", "--body", "Hello", "--attach", "r.pdf"])
            .unwrap()
            .plan(true)
            .unwrap();
        let MessageSource::Compose(c) = plan.message else {
            panic!("{:?}", plan.message)
        };
        assert_eq!(c.subject.as_deref(), Some("Hi"));
        assert_eq!(c.text, Some(TextBody::Inline("Hello".to_owned())));
        assert_eq!(c.attachments, [PathBuf::from("r.pdf")]);
        let plan = parse(&["--header", "X-A: 1", "--header", "X-B: 2"])
            .unwrap()
            .plan(false)
            .unwrap();
        let MessageSource::Compose(c) = plan.message else {
            panic!("{:?}", plan.message)
        };
        assert_eq!(c.headers.len(), 2);
        // Without them: the file or standard input, as before.
        let plan = parse(&[]).unwrap().plan(false).unwrap();
        assert_eq!(plan.message, MessageSource::Stdin);
        // --file and a message flag, or both body flags: usage errors.
        assert_eq!(
            parse(&["--file", "m.eml", "--subject", "x"])
                .unwrap_err()
                .exit_code(),
            2
        );
        assert!(parse(&["--body", "a", "--body-file", "b"]).is_err());
        let f = parse(&["--header", "X: a\r\nBcc: e@x"])
            .unwrap()
            .plan(false)
            .unwrap_err();
        assert_eq!(f.exit, Exit::Usage);
    }

    #[test]
    fn help_documents_exit_codes() {
        let help = command().render_long_help().to_string();
        assert!(help.contains("SMTP_PASSWORD"));
        assert!(help.contains("Exit codes:"), "{help}");
        assert!(help.contains("  8  timed out"), "{help}");
        assert!(help.contains("--password-file"));
    }

    /// `--url`: the server, TLS mode, user, mechanism, protocol, EHLO name and limits come
    /// from the URL; its password never shows in the plan's `Debug`.
    #[test]
    fn a_url_gives_the_whole_connection() {
        let cli = parse(&[
            "--url",
            "smtps://me%40x.example:pa%3Ass@Mail.Example.com?auth=login&timeout=5&deadline=60&helo=client.example",
            "--from",
            "a@b.example",
            "--to",
            "c@d.example",
        ])
        .unwrap();
        let plan = cli.plan(false).unwrap();
        assert_eq!(
            plan.target,
            Target::Server {
                host: "mail.example.com".into(),
                port: 465
            }
        );
        assert_eq!(plan.tls, TlsMode::Implicit);
        assert_eq!(
            plan.auth,
            Some(("me@x.example".to_owned(), Some(AuthMechanism::Login)))
        );
        assert_eq!(plan.url_password, Some(UrlPassword("pa:ss".into())));
        assert_eq!(plan.timeout, Some(Duration::from_secs(5)));
        assert_eq!(plan.deadline, Some(Duration::from_secs(60)));
        assert_eq!(plan.ehlo, "client.example");
        assert_eq!(plan.protocol, Protocol::Smtp);
        assert!(!format!("{plan:?}").contains("pa:ss"));

        let lmtp = parse(&[
            "--url",
            "lmtp://store.example?tls=none",
            "--from",
            "a@b.example",
            "--to",
            "c@d.example",
        ])
        .unwrap()
        .plan(false)
        .unwrap();
        assert_eq!(lmtp.protocol, Protocol::Lmtp);
        assert_eq!((lmtp.tls, lmtp.auth), (TlsMode::None, None));
        assert_eq!(
            lmtp.target,
            Target::Server {
                host: "store.example".into(),
                port: 24
            }
        );
    }

    /// A bad URL is a usage error that names the wrong part and never repeats the password;
    /// --url with --server is refused by the parser.
    #[test]
    fn a_bad_url_is_a_usage_error_without_the_password() {
        for url in [
            "smtp://me:hunter2@mail.example.com:99999",
            "smtp://me:hunter2@mail.example.com?tls=sometimes",
            "ftp://me:hunter2@mail.example.com",
        ] {
            let err = parse(&["--url", url, "--from", "a@b.example", "--to", "c@d.example"])
                .unwrap()
                .plan(false)
                .unwrap_err();
            assert_eq!(err.exit, Exit::Usage, "{url}");
            assert!(!err.to_string().contains("hunter2"), "{url}: {err}");
            assert!(err.to_string().contains("--url"), "{url}: {err}");
        }
        assert!(
            parse(&[
                "--url",
                "smtp://h.example",
                "--server",
                "h.example:25",
                "--from",
                "a@b.example",
                "--to",
                "c@d.example"
            ])
            .is_err()
        );
    }

    /// The three DKIM flags go together; the key is loaded into the plan (and never shown),
    /// through `--url` too.
    #[test]
    fn dkim_flags_load_the_key_into_the_plan() {
        let key = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../smtp-dkim/tests/keys/ed25519-pkcs8.pem"
        );
        let dkim = [
            "--dkim-key",
            key,
            "--dkim-selector",
            "s1",
            "--dkim-domain",
            "Example.COM",
        ];
        let plan = parse(&dkim).unwrap().plan(false).unwrap();
        let signer = &plan.dkim.as_ref().expect("a signer").0;
        assert_eq!((signer.domain(), signer.selector()), ("example.com", "s1"));
        assert!(format!("{plan:?}").contains("[redacted]"));
        let pem = std::fs::read_to_string(key).unwrap();
        let secret = pem.lines().nth(1).unwrap();
        assert!(!format!("{plan:?}").contains(secret));
        let mut url = vec![
            "--url",
            "smtp://h.example",
            "--from",
            "a@b.example",
            "--to",
            "c@d.example",
        ];
        url.extend(dkim);
        assert_eq!(parse(&url).unwrap().plan(false).unwrap().dkim, plan.dkim);
        assert!(parse(&[]).unwrap().plan(false).unwrap().dkim.is_none());
        for partial in [&dkim[..2], &dkim[2..], &dkim[..4]] {
            let err = parse(partial).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::MissingRequiredArgument,
                "{partial:?}"
            );
        }
    }
}
