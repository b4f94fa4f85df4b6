//! Carrying out a [`Plan`]: open the message, connect, authenticate, send, report.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use smtp_io_tokio::smtp_proto::session::{BodyInfo, Envelope};
use smtp_io_tokio::{
    AuthMechanism, ConnectOptions, Delivery, MessageBody, MessageOptions, PlaintextAuth, Proxy,
    SendOutcome, SmtpClientOptions, SmtpError, SmtpOp, TlsConfig, TlsMode,
};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::capture::{CaptureConfig, CaptureServer, Captured};
use crate::cli::{Cli, PASSWORD_ENV};
use crate::exit::{Exit, Failure};
use crate::message::{Body, open_message};
use crate::plan::{Plan, ProxyUrl, Target, Trust};
use crate::transcript::StderrTranscript;

/// The secret used in capture mode when `--user` is given without one (the capture server
/// accepts any).
pub const CAPTURE_PLACEHOLDER_SECRET: &str = "capture-mode-placeholder";

/// The largest message the capture mode's server takes (1 GiB: it is held in memory and
/// printed), so a large send can be tried without a server.
pub const CAPTURE_MAX_MESSAGE_SIZE: u64 = 1 << 30;

/// A password or token: never shown by `Debug`, zeroed (its whole buffer) when dropped, by
/// `zeroize`.
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wrap a secret; its buffer is taken over, not copied.
    pub fn new(s: String) -> Secret {
        Secret(Zeroizing::new(s))
    }

    /// The secret itself, to hand to the AUTH exchange.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Zeroes the whole buffer and empties the secret.
impl Zeroize for Secret {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

/// The [`Zeroizing`] inside zeroes it on drop.
impl ZeroizeOnDrop for Secret {}

/// Find the secret for `--user` (or the user of `--url`): the password of `--url`, else
/// `--password-file` (its first line), else `SMTP_PASSWORD`.
/// `env` is the value of `SMTP_PASSWORD`, if set.
pub fn find_secret(
    plan: &Plan,
    env: Option<std::ffi::OsString>,
) -> Result<Option<Secret>, Failure> {
    if plan.auth.is_none() {
        return Ok(None);
    }
    if let Some(password) = &plan.url_password {
        return Ok(Some(Secret::new(password.0.clone())));
    }
    if let Some(path) = &plan.password_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::new(
                Exit::LocalIo,
                format!("cannot read the password file {}: {e}", path.display()),
            )
        })?;
        let secret = Secret::new(text.lines().next().unwrap_or("").to_owned());
        drop(Secret::new(text));
        if secret.expose().is_empty() {
            return Err(Failure::new(
                Exit::Usage,
                format!("the password file {} is empty", path.display()),
            ));
        }
        return Ok(Some(secret));
    }
    match env {
        Some(v) if !v.is_empty() => match v.into_string() {
            Ok(s) => Ok(Some(Secret::new(s))),
            Err(not_utf8) => Err({
                drop(Zeroizing::new(not_utf8.into_encoded_bytes()));
                Failure::new(Exit::Usage, format!("{PASSWORD_ENV} is not valid UTF-8"))
            }),
        },
        _ if plan.target == Target::Capture => {
            Ok(Some(Secret::new(CAPTURE_PLACEHOLDER_SECRET.to_owned())))
        }
        _ => Err(Failure::new(
            Exit::Usage,
            format!("--user needs a secret: set {PASSWORD_ENV} or use --password-file"),
        )),
    }
}

/// A user name or secret that no AUTH could carry (empty, a control character) is a usage
/// error before anything is opened, by the engine's own rules: those of the mechanism given,
/// or of PLAIN, which automatic selection starts from. The error names the field and the
/// offending byte's place, never the secret.
fn check_credentials(plan: &Plan, secret: Option<&Secret>) -> Result<(), Failure> {
    let (Some((user, mechanism)), Some(secret)) = (&plan.auth, secret) else {
        return Ok(());
    };
    mechanism
        .unwrap_or(AuthMechanism::Plain)
        .check_credentials(user, secret.expose())
        .map_err(|e| Failure::new(Exit::Usage, format!("--user / its secret: {e}")))
}

/// The failure of a connect, with the 465/587 mix-up named: a server that expects implicit TLS
/// waits in silence for a TLS handshake, so a plaintext or STARTTLS client times out waiting
/// for the greeting. (The other way round, implicit TLS to a plaintext port, the error itself
/// already says so.)
pub fn connect_failure(error: &SmtpError, tls: TlsMode, label: &str) -> Failure {
    let mut failure = Failure::from_smtp(error, label);
    let no_greeting = matches!(
        error,
        SmtpError::Timeout {
            during: SmtpOp::Greeting,
            ..
        } | SmtpError::DeadlineExceeded {
            during: SmtpOp::Greeting,
            ..
        }
    );
    if no_greeting && tls != TlsMode::Implicit {
        failure.message.push_str(
            "; no greeting came: if this port expects implicit TLS (usually 465), use --tls \
             implicit",
        );
    }
    failure
}

/// The environment variable with the proxy's password.
pub const PROXY_PASSWORD_ENV: &str = "SMTP_PROXY_PASSWORD";

/// The proxy of `--proxy`, with its password from `env` (`SMTP_PROXY_PASSWORD`) when the URL
/// names a user without one.
pub fn proxy_of(url: &ProxyUrl, env: Option<std::ffi::OsString>) -> Result<Proxy, Failure> {
    let proxy = Proxy::parse(&url.0)
        .map_err(|e| Failure::new(Exit::Usage, format!("invalid --proxy: {e}")))?;
    match (proxy.user().map(str::to_owned), proxy.has_password(), env) {
        (Some(user), false, Some(password)) => {
            let password = password.into_string().map_err(|not_utf8| {
                drop(Zeroizing::new(not_utf8.into_encoded_bytes()));
                Failure::new(
                    Exit::Usage,
                    format!("{PROXY_PASSWORD_ENV} is not valid UTF-8"),
                )
            })?;
            Ok(proxy.with_credentials(user, password))
        }
        _ => Ok(proxy),
    }
}

/// The TLS trust for `plan`; `capture_ca` is the capture server's CA (the default trust in
/// capture mode).
pub fn tls_config(plan: &Plan, capture_ca: Option<&str>) -> Result<TlsConfig, Failure> {
    let trust = trust_config(plan, capture_ca)?;
    match &plan.client_certificate {
        None => Ok(trust),
        Some((cert, key)) => trust.with_client_certificate_files(cert, key).map_err(|e| {
            let exit = match e.kind() {
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput => Exit::Usage,
                _ => Exit::LocalIo,
            };
            Failure::new(exit, format!("--client-cert / --client-key: {e}"))
        }),
    }
}

/// Which certificates to trust, from the plan.
fn trust_config(plan: &Plan, capture_ca: Option<&str>) -> Result<TlsConfig, Failure> {
    match &plan.trust {
        Trust::Insecure => {
            eprintln!(
                "smtp-send: warning: --insecure: the server's certificate is NOT checked; anyone \
                 on the path can read and change the mail and take the password"
            );
            Ok(TlsConfig::insecure_accept_any_certificate_for_tests_only())
        }
        Trust::CaFile(path) => TlsConfig::from_ca_file(path).map_err(|e| {
            let exit = if e.kind() == std::io::ErrorKind::InvalidData {
                Exit::Tls
            } else {
                Exit::LocalIo
            };
            Failure::new(exit, format!("CA file {}: {e}", path.display()))
        }),
        Trust::Default => match capture_ca {
            Some(pem) => TlsConfig::from_ca_pem(pem.as_bytes())
                .map_err(|e| Failure::new(Exit::Internal, format!("capture CA: {e}"))),
            None => Ok(TlsConfig::webpki_roots()),
        },
    }
}

/// Connect to `host:port`, authenticate if asked, send `body`, and QUIT (also after a refusal,
/// when the session is still usable). `label` names the server in messages. A message whose end
/// of data was written and whose reply never came fails with [`Exit::DeliveryUnknown`].
#[allow(clippy::too_many_arguments)]
pub async fn deliver(
    plan: &Plan,
    host: &str,
    port: u16,
    tls_name: Option<&str>,
    tls: TlsConfig,
    secret: Option<Secret>,
    body: &mut Body,
    label: &str,
) -> Result<SendOutcome, Failure> {
    let mut client_options = SmtpClientOptions::new().with_protocol(plan.protocol);
    if plan.plaintext_auth == PlaintextAuth::Allow {
        client_options = client_options.allow_plaintext_auth();
    }
    if plan.verbose {
        client_options = client_options.with_transcript(Box::new(StderrTranscript));
    }
    let mut options = ConnectOptions::new(plan.tls)
        .with_tls_config(tls)
        .with_client_options(client_options);
    if let Some(t) = plan.timeout {
        options = options.with_connect_timeout(t).with_reply_timeout(t);
    }
    if let Some(t) = plan.connect_timeout {
        options = options.with_connect_timeout(t);
    }
    if let Some(d) = plan.deadline {
        // The run's deadline counts from its start: the session gets what is left of it, so
        // that its own typed error (which knows whether the message was sent) always comes
        // before the outer bound in `main_with`.
        options = options.with_deadline(d.saturating_sub(plan.started.elapsed()));
    }
    if let Some(name) = tls_name {
        options = options.with_tls_server_name(name);
    }
    if let Some(proxy) = &plan.proxy {
        options = options.with_proxy(proxy_of(proxy, std::env::var_os(PROXY_PASSWORD_ENV))?);
    }
    if let Some(address) = plan.bind {
        options = options.with_local_address(address);
    }
    let fail = |e: SmtpError| Failure::from_smtp(&e, label);
    let mut client = options
        .connect(host, port, &plan.ehlo)
        .await
        .map_err(|e| connect_failure(&e, plan.tls, label))?;
    let mut interrupted = false;
    let result = async {
        let to = plan.recipients();
        // What the server cannot take (a UTF-8 address without SMTPUTF8, a size over its limit,
        // ...) is refused now, before the credentials are sent.
        let envelope = Envelope::new(&plan.from, &to).map_err(|e| fail(e.into()))?;
        let info = BodyInfo::Streamed {
            size_hint: body.size_hint(),
        };
        client
            .session()
            .check_mail(&envelope, info, &MessageOptions::default())
            .map_err(fail)?;
        if let Some((user, mechanism)) = &plan.auth {
            let secret = secret.ok_or_else(|| Failure::new(Exit::Internal, "no secret"))?;
            match mechanism {
                None => client.login(user, secret.expose()).await,
                Some(m) => client.login_with(*m, user, secret.expose()).await,
            }
            .map_err(fail)?;
        }
        // A message whose end of data was written and whose reply never came may have been
        // delivered: it gets its own exit code, never "connection lost" or "timeout", so that
        // a wrapper that retries those does not deliver it twice. Ctrl-C during the delivery
        // drops it, and the engine says what became of the message.
        let delivery = tokio::select! {
            delivery = client.deliver_stream(&plan.from, &to, body, None) => delivery,
            Ok(()) = tokio::signal::ctrl_c() => {
                interrupted = true;
                client.abandon()
            }
        };
        match delivery {
            Delivery::Sent(outcome) => Ok(outcome),
            Delivery::Unknown(error) => Err(Failure::delivery_unknown(&error, label)),
            Delivery::NotSent { .. } if interrupted => {
                Err(Failure::new(Exit::Interrupted, "interrupted"))
            }
            // Judged at its end of data: an LMTP server may have delivered it to some.
            Delivery::NotSent {
                error,
                before_end_of_data: false,
            } => Err(Failure::partly_delivered(&error, label).unwrap_or_else(|| fail(error))),
            Delivery::NotSent { error, .. } => Err(fail(error)),
        }
    }
    .await;
    // Interrupted: no QUIT (the session is closed; the socket goes with the client), and no
    // wait that main_with's own Ctrl-C would cut short.
    if interrupted {
        return result;
    }
    // The message's fate is decided: a Ctrl-C now ends the wait for QUIT's reply, not the
    // result (an accepted message stays accepted, exit 0). Polled first in the same poll as
    // main_with's own Ctrl-C, which then finds the run ended.
    let quit = tokio::select! {
        biased;
        Ok(()) = tokio::signal::ctrl_c() => return result,
        quit = client.quit() => quit,
    };
    if let Err(e) = quit
        && plan.verbose
        && result.is_ok()
    {
        let e = crate::sanitize::one_line(&e.to_string()).into_owned();
        eprintln!("smtp-send: warning: QUIT failed after the message was accepted: {e}");
    }
    result
}

/// The success line: `accepted by <server>: 250 ... (queue id X)`, control characters from the
/// server spelled out.
pub fn accepted_line(label: &str, outcome: &SendOutcome) -> String {
    let mut line = format!("accepted by {label}: {}", outcome.reply);
    if let Some(id) = &outcome.queue_id {
        line.push_str(&format!(" (queue id {id})"));
    }
    crate::sanitize::one_line(&line).into_owned()
}

/// What the capture server received, for standard output: envelope, TLS, AUTH (control
/// characters spelled out), then the message bytes as received (dot-unstuffed, CRLF line endings:
/// the user's own message, left as it is).
pub fn capture_report(m: &Captured, tls: TlsMode) -> Vec<u8> {
    let mut out = String::from("--- received by the capture server ---\n");
    let visible = crate::sanitize::visible;
    out.push_str(&format!("EHLO: {}\n", visible(&m.ehlo)));
    let tls = match (m.tls, tls) {
        (false, _) => "no",
        (true, TlsMode::Implicit) => "yes (implicit TLS)",
        (true, _) => "yes (STARTTLS)",
    };
    out.push_str(&format!("TLS: {tls}\n"));
    match &m.auth {
        Some((mechanism, user)) => {
            out.push_str(&format!("AUTH: {} as {user:?}\n", visible(mechanism)))
        }
        None => out.push_str("AUTH: none\n"),
    }
    out.push_str(&format!("MAIL FROM:<{}>", visible(&m.mail_from)));
    for p in &m.mail_params {
        out.push(' ');
        out.push_str(&visible(p));
    }
    out.push('\n');
    for r in &m.rcpt_to {
        out.push_str(&format!("RCPT TO:<{}>\n", visible(r)));
    }
    out.push_str(&format!(
        "message ({} bytes, as received: dot-unstuffed, CRLF line endings):\n",
        m.data.len()
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&m.data);
    bytes.extend_from_slice(b"--- end of message ---\n");
    bytes
}

/// Carry out `plan`, writing the result to `stdout`.
pub async fn run(plan: &Plan, stdout: &mut dyn Write) -> Result<(), Failure> {
    let secret = find_secret(plan, std::env::var_os(PASSWORD_ENV))?;
    check_credentials(plan, secret.as_ref())?;
    if plan.tls == TlsMode::None
        && plan.auth.is_some()
        && plan.target != Target::Capture
        && plan.plaintext_auth == PlaintextAuth::Allow
    {
        eprintln!(
            "smtp-send: warning: --allow-plaintext-auth: the password crosses the network readable"
        );
    }
    let mut body = open_message(plan).await?;
    match &plan.target {
        Target::Server { host, port } => {
            let tls = match plan.tls {
                TlsMode::None => {
                    // Said, not silently dropped: with no TLS nothing is checked at all.
                    if plan.trust != Trust::Default {
                        eprintln!(
                            "smtp-send: warning: --ca-file and --insecure do nothing with \
                             --tls none: no certificate is asked for"
                        );
                    }
                    TlsConfig::webpki_roots()
                }
                _ => tls_config(plan, None)?,
            };
            let label = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            let outcome = deliver(plan, host, *port, None, tls, secret, &mut body, &label).await?;
            let _ = writeln!(stdout, "{}", accepted_line(&label, &outcome));
        }
        Target::Capture => {
            let server = CaptureServer::start(CaptureConfig {
                tls: plan.tls,
                greeting: crate::capture::GREETING.to_owned(),
                max_message_size: CAPTURE_MAX_MESSAGE_SIZE,
                // Room for the one message of the run at its largest, with its envelope.
                max_stored_bytes: 2 * CAPTURE_MAX_MESSAGE_SIZE,
                // The run's own connection only: another local process that connects meanwhile
                // is turned away instead of filling the store.
                max_connections: 1,
                ..CaptureConfig::default()
            })
            .await
            .map_err(|e| {
                Failure::new(
                    Exit::Internal,
                    format!("cannot start the capture server: {e}"),
                )
            })?;
            let tls = tls_config(plan, Some(server.ca_pem()))?;
            let addr = server.addr();
            let label = format!("capture server {addr}");
            let outcome = deliver(
                plan,
                &addr.ip().to_string(),
                addr.port(),
                Some("localhost"),
                tls,
                secret,
                &mut body,
                &label,
            )
            .await?;
            let _ = writeln!(stdout, "{}", accepted_line(&label, &outcome));
            let messages = server.messages();
            let received = messages
                .iter()
                .find(|m| Some(&m.queue_id) == outcome.queue_id.as_ref())
                .or(messages.last());
            if let Some(m) = received {
                let _ = stdout.write_all(&capture_report(m, plan.tls));
            }
        }
    }
    let _ = stdout.flush();
    Ok(())
}

/// How long after `--deadline` the watchdog ends the process: after the client's own deadline
/// and the run's backstop (half a second) would have ended the run, so that it acts only when
/// something no timer interrupts holds it.
const WATCHDOG_GRACE: Duration = Duration::from_secs(1);

/// `--deadline` over the whole run, also over what no timer interrupts (a password file or a
/// DKIM key on a pipe that never delivers, read by a blocking call): a thread that ends the
/// process with the timeout's code at `deadline` (from `started`) and [`WATCHDOG_GRACE`],
/// unless the run's result was `decided` first.
fn start_watchdog(deadline: Duration, started: Instant, decided: Arc<AtomicBool>) {
    let Some(at) = started.checked_add(deadline.saturating_add(WATCHDOG_GRACE)) else {
        return;
    };
    std::thread::spawn(move || {
        while let Some(left) = at
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        {
            std::thread::sleep(left);
        }
        if !decided.swap(true, Ordering::SeqCst) {
            let failure = Failure::new(
                Exit::Timeout,
                format!(
                    "the deadline of {}s (--deadline) ran out",
                    deadline.as_secs_f64()
                ),
            );
            eprintln!("{failure}");
            std::process::exit(i32::from(Exit::Timeout.code()));
        }
    });
}

/// The whole program after argument parsing: resolve the plan, run it on a tokio runtime (Ctrl-C
/// interrupts), print the failure line if any, and return the exit code.
pub fn main_with(cli: &Cli) -> u8 {
    let decided = Arc::new(AtomicBool::new(false));
    if let Some(deadline) = cli.deadline_of_run() {
        start_watchdog(deadline, Instant::now(), decided.clone());
    }
    let result = cli.plan(std::io::stdin().is_terminal()).and_then(|plan| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::new(Exit::Internal, format!("cannot start tokio: {e}")))?;
        let result = runtime.block_on(async {
            let mut stdout = std::io::stdout();
            // The client enforces --deadline itself (a typed error, the connection closed);
            // this outer bound, a moment later, also covers reading the message and anything
            // outside the SMTP session.
            let backstop = async {
                match plan.deadline {
                    Some(d) => {
                        let at = plan.started + d.saturating_add(Duration::from_millis(500));
                        tokio::time::sleep_until(at.into()).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                // The run first: Ctrl-C during a delivery is the run's to answer (it knows
                // whether the message may have been delivered), in the same poll.
                biased;
                r = run(&plan, &mut stdout) => r,
                () = backstop => Err(Failure::new(
                    Exit::Timeout,
                    format!(
                        "the deadline of {}s (--deadline) ran out",
                        plan.deadline.unwrap_or_default().as_secs_f64()
                    ),
                )),
                Ok(()) = tokio::signal::ctrl_c() => {
                    Err(Failure::new(Exit::Interrupted, "interrupted"))
                }
            }
        });
        // A read of standard input may still be blocked in tokio's thread pool: do not wait
        // for it.
        runtime.shutdown_background();
        result
    });
    if decided.swap(true, Ordering::SeqCst) {
        // The watchdog is ending the process with the deadline's code.
        loop {
            std::thread::park();
        }
    }
    match result {
        Ok(()) => Exit::Accepted.code(),
        Err(f) => {
            eprintln!("{f}");
            f.exit.code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::try_parse_from;

    fn plan(args: &[&str]) -> Plan {
        try_parse_from(std::iter::once("smtp-send").chain(args.iter().copied()))
            .unwrap()
            .plan(false)
            .unwrap()
    }

    #[test]
    fn secrets_come_from_env_or_file_never_debug() {
        let server = ["--server", "mx:25", "--from", "a@b", "--to", "c@d"];
        let mut args = server.to_vec();
        args.extend(["--user", "me"]);
        let p = plan(&args);
        let s = find_secret(&p, Some("hunter2".into())).unwrap().unwrap();
        assert_eq!(s.expose(), "hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        let missing = find_secret(&p, None).unwrap_err();
        assert_eq!(missing.exit, Exit::Usage);
        assert!(missing.message.contains("SMTP_PASSWORD"));
        // Capture mode: a placeholder.
        let p = plan(&["--user", "me"]);
        assert_eq!(
            find_secret(&p, None).unwrap().unwrap().expose(),
            CAPTURE_PLACEHOLDER_SECRET
        );
        // No --user: no secret, even if set.
        assert!(find_secret(&plan(&[]), Some("x".into())).unwrap().is_none());
        // Password file: first line wins over the environment; unreadable is a local I/O error.
        let dir = std::env::temp_dir().join(format!("smtp-send-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "from-file\r\nignored\n").unwrap();
        let mut args = server.to_vec();
        let file_arg = file.to_str().unwrap();
        args.extend(["--user", "me", "--password-file", file_arg]);
        let s = find_secret(&plan(&args), Some("env".into()))
            .unwrap()
            .unwrap();
        assert_eq!(s.expose(), "from-file");
        std::fs::remove_file(&file).unwrap();
        let err = find_secret(&plan(&args), None).unwrap_err();
        assert_eq!(err.exit, Exit::LocalIo);
        let _ = std::fs::remove_dir(&dir);
    }

    /// The secret is wiped by `zeroize` on drop (the type says so); an explicit `zeroize()`
    /// empties it.
    #[test]
    fn secret_is_zeroized() {
        fn zeroize_on_drop<T: Zeroize + ZeroizeOnDrop>(_: &T) {}
        let mut s = Secret::new("hunter2".to_owned());
        zeroize_on_drop(&s);
        s.zeroize();
        assert_eq!(s.expose(), "");
    }

    #[tokio::test]
    async fn unreadable_message_is_a_local_error() {
        let p = plan(&["--file", "/nonexistent/message.eml"]);
        let Err(err) = open_message(&p).await else {
            panic!("opened a missing file")
        };
        assert_eq!(err.exit, Exit::LocalIo);
        assert!(err.message.contains("/nonexistent/message.eml"), "{err}");
        let p = plan(&["--file", "/"]);
        assert!(matches!(open_message(&p).await, Err(f) if f.exit == Exit::LocalIo));
    }

    #[test]
    fn bad_ca_files() {
        let p = plan(&["--ca-file", "/nonexistent/ca.pem"]);
        assert_eq!(tls_config(&p, None).unwrap_err().exit, Exit::LocalIo);
        let p = plan(&["--ca-file", "/dev/null"]);
        assert_eq!(tls_config(&p, None).unwrap_err().exit, Exit::Tls);
    }

    #[test]
    fn report_shows_envelope_and_bytes() {
        let mut m = Captured::default();
        m.queue_id = "Q1".into();
        m.ehlo = "client.example".into();
        m.tls = true;
        m.auth = Some(("PLAIN".into(), "me".into()));
        m.mail_from = "a@b".into();
        m.mail_params = vec!["SIZE=5".into()];
        m.rcpt_to = vec!["c@d".into(), "e@f".into()];
        m.data = b"Subject: x\r\n\r\n.dot\r\n".to_vec();
        let text = String::from_utf8(capture_report(&m, TlsMode::StartTls)).unwrap();
        for want in [
            "TLS: yes (STARTTLS)\n",
            "AUTH: PLAIN as \"me\"\n",
            "MAIL FROM:<a@b> SIZE=5\n",
            "RCPT TO:<c@d>\nRCPT TO:<e@f>\n",
            "Subject: x\r\n\r\n.dot\r\n--- end of message ---\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in {text}");
        }
    }

    /// No greeting from a port that may expect implicit TLS: the failure names the fix, unless
    /// the client already used implicit TLS.
    #[test]
    fn a_missing_greeting_names_the_465_mix_up() {
        let silent = SmtpError::Timeout {
            during: SmtpOp::Greeting,
            after: Duration::from_secs(5),
        };
        let f = connect_failure(&silent, TlsMode::StartTls, "mx.example:465");
        assert_eq!(f.exit, Exit::Timeout);
        assert!(f.message.contains("--tls implicit"), "{f}");
        assert!(!f.to_string().contains('\n'));
        let f = connect_failure(&silent, TlsMode::Implicit, "mx.example:465");
        assert!(!f.message.contains("--tls implicit"), "{f}");
        let later = SmtpError::Timeout {
            during: SmtpOp::Ehlo,
            after: Duration::from_secs(5),
        };
        let f = connect_failure(&later, TlsMode::StartTls, "mx.example:587");
        assert!(!f.message.contains("--tls implicit"), "{f}");
    }
}
