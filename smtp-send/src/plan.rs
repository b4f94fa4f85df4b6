//! What the command line means once every default is resolved: [`Plan`] (the server or capture
//! mode, TLS, login, route, trust, limits, the message and its DKIM signer), made by
//! [`Cli::plan`] before any connection is opened, so every usage error comes first.

use std::path::PathBuf;
use std::time::Duration;

use smtp_io_tokio::smtp_proto::command::Domain;
use smtp_io_tokio::smtp_proto::session::Envelope;
use smtp_io_tokio::{AuthMechanism, PlaintextAuth, Protocol, SmtpUrl, TlsMode};

use crate::cli::{AuthArg, Cli, ComposeArgs, DkimArgs, SAMPLE_FROM, SAMPLE_TO};
use crate::compose::{Compose, TextBody, parse_header};
use crate::exit::{Exit, Failure};

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
pub fn load_dkim(args: &DkimArgs) -> Result<Dkim, Failure> {
    let DkimArgs {
        key,
        selector,
        domain,
    } = args;
    let bytes = zeroize::Zeroizing::new(std::fs::read(key).map_err(|e| {
        Failure::new(
            Exit::LocalIo,
            format!("cannot read the DKIM key {}: {e}", key.display()),
        )
    })?);
    // Read, but not text (a DER key): malformed, like any key that is not PEM.
    let pem = std::str::from_utf8(&bytes).map_err(|_| {
        Failure::new(
            Exit::Usage,
            format!(
                "--dkim-key {}: not a PEM key (a DER key converts with `openssl pkey -inform DER`)",
                key.display()
            ),
        )
    })?;
    let key = smtp_dkim::DkimKey::from_pem(pem)
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
    /// The recipients named in a message built from flags (at least one).
    pub to: Vec<String>,
    /// The hidden recipients (`--bcc`): in the envelope only.
    pub bcc: Vec<String>,
    /// Which certificates to trust.
    pub trust: Trust,
    /// The per-reply and connect timeout, when given.
    pub timeout: Option<Duration>,
    /// The connect timeout alone (`--url ...?connect_timeout=`), when given.
    pub connect_timeout: Option<Duration>,
    /// The deadline for the whole run, when given, counted from [`started`](Self::started).
    pub deadline: Option<Duration>,
    /// When the run began (the plan was made): `--deadline` counts from here, reading the
    /// message included.
    pub started: std::time::Instant,
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

impl ComposeArgs {
    /// The message-building flags as a [`Compose`], headers checked.
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
}

impl Cli {
    /// Resolve the defaults. `stdin_is_terminal` decides the capture-mode sample message.
    pub fn plan(&self, stdin_is_terminal: bool) -> Result<Plan, Failure> {
        let plan = match &self.url {
            Some(url) => self.plan_url(url, stdin_is_terminal)?,
            None => self.plan_server(stdin_is_terminal)?,
        };
        // A certificate to present needs TLS to present it in: without it the flags would be
        // ignored, and the server would see a client it did not authenticate.
        if plan.client_certificate.is_some() && plan.tls == TlsMode::None {
            return Err(Failure::new(
                Exit::Usage,
                "--client-cert needs TLS (--tls starttls or implicit), not --tls none",
            ));
        }
        Ok(plan)
    }

    /// The plan of `--server` (or of the capture server, without it).
    fn plan_server(&self, stdin_is_terminal: bool) -> Result<Plan, Failure> {
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
        Envelope::new(&from, &envelope_recipients(&to, &self.bcc))
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
        let compose = self.compose.compose()?;
        let dkim = self.dkim.as_ref().map(load_dkim).transpose()?;
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
            bcc: self.bcc.clone(),
            trust,
            timeout: self.timeout,
            connect_timeout: None,
            deadline: self.deadline,
            started: std::time::Instant::now(),
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

impl Plan {
    /// The envelope's recipients: `--to`, then `--bcc`, each once.
    pub fn recipients(&self) -> Vec<&str> {
        envelope_recipients(&self.to, &self.bcc)
    }
}

/// `to`, then `bcc`, each address once (compared without case).
fn envelope_recipients<'a>(to: &'a [String], bcc: &'a [String]) -> Vec<&'a str> {
    let mut all: Vec<&str> = Vec::with_capacity(to.len() + bcc.len());
    for address in to.iter().chain(bcc) {
        if !all.iter().any(|a| a.eq_ignore_ascii_case(address)) {
            all.push(address);
        }
    }
    all
}

impl Cli {
    /// The plan of `--url`: the server, TLS mode, user, mechanism, protocol, EHLO name and
    /// limits from the URL (a flag given beside it for a limit wins), the rest as usual.
    /// The deadline of the whole run, from `--deadline` or the `--url`'s `deadline=`, known
    /// before the plan is made (which reads the DKIM key): `None` without one, or with a URL
    /// that does not parse (the plan then fails on it).
    pub fn deadline_of_run(&self) -> Option<Duration> {
        self.deadline.or_else(|| {
            let url = SmtpUrl::parse(self.url.as_deref()?).ok()?;
            url.deadline
        })
    }

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
    use crate::cli::try_parse_from;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        try_parse_from(std::iter::once("smtp-send").chain(args.iter().copied()))
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

    /// A client certificate without TLS would be ignored (found in a CLI review): refused, by
    /// --tls none and by an smtp:// URL that says tls=none alike.
    #[test]
    fn a_client_certificate_needs_tls() {
        let with_cert = ["--client-cert", "c.pem", "--client-key", "k.pem"];
        for more in [
            &["--server", "mx:25", "--tls", "none"][..],
            &["--url", "smtp://mx:25?tls=none"][..],
        ] {
            let mut args = vec!["--from", "a@b.example", "--to", "c@d.example"];
            args.extend_from_slice(more);
            args.extend_from_slice(&with_cert);
            let err = parse(&args).unwrap().plan(false).unwrap_err();
            assert_eq!(err.exit, Exit::Usage, "{more:?}");
            assert!(err.message.contains("--client-cert needs TLS"), "{err}");
        }
        let mut args = vec!["--from", "a@b.example", "--to", "c@d.example"];
        args.extend_from_slice(&["--server", "mx:587", "--tls", "starttls"]);
        args.extend_from_slice(&with_cert);
        assert!(parse(&args).unwrap().plan(false).is_ok());
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
