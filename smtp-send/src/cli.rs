//! The command line: [`Cli`], what clap parses; what it means, defaults resolved, is
//! [`Plan`](crate::plan::Plan).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, ValueEnum};
use smtp_io_tokio::{AuthMechanism, TlsMode};

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
    /// --server. A message built from flags names each in its To header.
    #[arg(long, value_name = "ADDR")]
    pub to: Vec<String>,

    /// A hidden recipient: in the envelope (RCPT TO) like --to, but named in no header of a
    /// message built from flags; repeat for several. (A message given whole, with --file or on
    /// standard input, is sent as it is.)
    #[arg(long, value_name = "ADDR")]
    pub bcc: Vec<String>,

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

    /// A deadline in seconds for the whole run, from the start (reading the message included)
    /// to the end of QUIT, however the time is spent (a server that answers or reads very
    /// slowly cannot hold the run longer). Exit code 8 when it passes (10 when the message's
    /// end was written and its reply had not come).
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

    /// Build the message instead of reading it.
    #[command(flatten)]
    pub compose: ComposeArgs,

    /// Sign the message with DKIM: all three flags, or none.
    #[command(flatten)]
    pub dkim: Option<DkimArgs>,
}

/// The flags that build the message instead of reading it (none of them goes with `--file`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Building the message")]
pub struct ComposeArgs {
    /// Build the message (instead of reading it): its Subject.
    #[arg(long, value_name = "TEXT")]
    pub subject: Option<String>,

    /// The plain-text body.
    #[arg(long, value_name = "TEXT", conflicts_with = "body_file")]
    pub body: Option<String>,

    /// The plain-text body, read from a UTF-8 file.
    #[arg(long, value_name = "PATH")]
    pub body_file: Option<PathBuf>,

    /// An HTML body, read from a UTF-8 file (with a text body: multipart/alternative).
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,

    /// Attach a file (repeatable); its content type comes from its extension.
    #[arg(long, value_name = "PATH")]
    pub attach: Vec<PathBuf>,

    /// Add a header, or replace one smtp-send writes (From, To, Subject, Date, Message-ID);
    /// repeatable. Bcc and Resent-Bcc are refused (hidden recipients are given with --bcc),
    /// and so are MIME-Version and Content-* (smtp-send writes the structure). Non-ASCII text
    /// is encoded in display names and unstructured fields only.
    #[arg(long, value_name = "'NAME: VALUE'")]
    pub header: Vec<String>,
}

/// The DKIM flags: `--dkim-key`, `--dkim-selector` and `--dkim-domain`, all three or none
/// (a partial set is clap's usage error naming the missing flags).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "DKIM signing")]
// clap's derive makes a non-`Option` field a required flag even inside an optional flatten:
// `required = false` on each, and the group (present when any of them is) requires all three.
#[group(requires_all = ["key", "selector", "domain"])]
pub struct DkimArgs {
    /// Sign the message with DKIM using this private key (PEM: RSA as PKCS#1 or PKCS#8, of at
    /// least 1024 bits; Ed25519 as PKCS#8). Needs --dkim-selector and --dkim-domain. The
    /// signature covers the message as sent (relaxed/relaxed); a message read from standard
    /// input is then held in memory (a file is read twice instead).
    #[arg(long = "dkim-key", value_name = "PEM", required = false)]
    pub key: PathBuf,

    /// The DKIM selector (s=): the key's public half is published at
    /// SELECTOR._domainkey.DOMAIN. Needs --dkim-key and --dkim-domain.
    #[arg(long = "dkim-selector", value_name = "SELECTOR", required = false)]
    pub selector: String,

    /// The signing domain (d=). Needs --dkim-key and --dkim-selector.
    #[arg(long = "dkim-domain", value_name = "DOMAIN", required = false)]
    pub domain: String,
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

/// Seconds, from 0.001 (a shorter limit would round to nothing, and every wait would fail at
/// once) to 86400.
fn parse_timeout(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.001..=86_400.0).contains(&secs) {
        return Err("the limit must be from 0.001 to 86400 seconds".to_owned());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_is_at_least_a_millisecond_and_at_most_a_day() {
        assert_eq!(parse_timeout("0.001"), Ok(Duration::from_millis(1)));
        assert_eq!(parse_timeout("86400"), Ok(Duration::from_secs(86_400)));
        for bad in ["0", "1e-10", "0.0009", "-1", "86401", "NaN", "inf", "ten"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn clap_definition_is_valid() {
        command().debug_assert();
    }

    #[test]
    fn help_documents_exit_codes() {
        let help = command().render_long_help().to_string();
        assert!(help.contains("SMTP_PASSWORD"));
        assert!(help.contains("Exit codes:"), "{help}");
        assert!(help.contains("  8  timed out"), "{help}");
        assert!(help.contains("--password-file"));
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        try_parse_from(std::iter::once("smtp-send").chain(args.iter().copied()))
    }

    #[test]
    fn a_message_file_goes_with_no_message_building_flag() {
        for flag in [
            "--subject",
            "--body",
            "--body-file",
            "--html",
            "--attach",
            "--header",
        ] {
            let error = parse(&["--file", "m.eml", flag, "x"]).unwrap_err();
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{flag}"
            );
            assert!(error.to_string().contains(&format!("'{flag} <")), "{error}");
        }
        let compose = parse(&["--subject", "s", "--attach", "a", "--attach", "b"])
            .unwrap()
            .compose;
        assert_eq!(compose.subject.as_deref(), Some("s"));
        assert_eq!(compose.attach, [PathBuf::from("a"), PathBuf::from("b")]);
    }

    #[test]
    fn dkim_flags_go_all_three_or_none() {
        assert!(parse(&[]).unwrap().dkim.is_none());
        let all = [
            "--dkim-key",
            "k.pem",
            "--dkim-selector",
            "s",
            "--dkim-domain",
            "d",
        ];
        let dkim = parse(&all).unwrap().dkim.unwrap();
        assert_eq!(dkim.key, PathBuf::from("k.pem"));
        assert_eq!(dkim.selector, "s");
        assert_eq!(dkim.domain, "d");
        // Any one or two of them: clap's usage error naming each missing flag, and only those.
        for given in [[0].as_slice(), &[1], &[2], &[0, 1], &[0, 2], &[1, 2]] {
            let args: Vec<&str> = given
                .iter()
                .flat_map(|&i| [all[2 * i], all[2 * i + 1]])
                .collect();
            let err = parse(&args).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
            assert_eq!(err.exit_code(), 2);
            let text = err.to_string();
            for (i, flag) in all.iter().step_by(2).enumerate() {
                let missing = text
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("{flag} <")));
                assert_eq!(missing, !given.contains(&i), "{args:?}: {text}");
            }
        }
    }

    #[test]
    fn help_shows_dkim_flags_under_their_heading() {
        let help = command().render_long_help().to_string();
        let section = help
            .split_once("DKIM signing:\n")
            .unwrap_or_else(|| panic!("{help}"))
            .1;
        for (flag, doc) in [
            (
                "--dkim-key <PEM>",
                "Sign the message with DKIM using this private key",
            ),
            ("--dkim-selector <SELECTOR>", "SELECTOR._domainkey.DOMAIN"),
            ("--dkim-domain <DOMAIN>", "The signing domain (d=)"),
        ] {
            let at = section
                .find(flag)
                .unwrap_or_else(|| panic!("{flag}: {help}"));
            assert!(section[at..].contains(doc), "{doc}: {help}");
        }
        let short = command().render_help().to_string();
        assert!(short.contains("DKIM signing:"), "{short}");
    }
}
