//! The blocking client (`smtp-io-std`) as a column of the matrix, beside the async client: the
//! common cases against every real server (a send in each TLS mode, AUTH by each mechanism the
//! server offers that the client speaks, several recipients, dot lines and bare LF, a file, a
//! batch, a wrong password; for Postfix, sends through real SOCKS5 and HTTP CONNECT proxies and
//! wrong proxy credentials, see `proxy.rs`), each delivered message read back and compared byte for byte like
//! the async cases. Its rows carry the server's name with `-std` (`aiosmtpd-std`, ...).
//!
//! No tokio runs the client here: each case is plain blocking code on the test's thread, bounded
//! by the client's own session deadline ([`CASE_LIMIT`]). Only reading the capture folders
//! (shared with the async cases) runs on a small runtime, between cases.

use crate::*;

use smtp_io_std::{ConnectOptions as StdOptions, ReaderBody, SmtpClient as StdClient};

/// One case of the blocking column.
enum StdCase {
    /// Send one message, after AUTH with `auth` if given.
    Send {
        label: &'static str,
        port: u16,
        mode: TlsMode,
        auth: Option<AuthMechanism>,
    },
    /// Send one message through the proxy `via` after AUTH with `auth` (see `proxy.rs`).
    Proxied {
        label: &'static str,
        port: u16,
        mode: TlsMode,
        auth: AuthMechanism,
        via: Listen,
    },
    /// Wrong proxy credentials: a typed connect error without the password, no tunnel.
    ProxyWrongCredentials { port: u16, mode: TlsMode },
    /// `login()` picks `want` among what the server offers.
    AutoLogin {
        port: u16,
        mode: TlsMode,
        want: AuthMechanism,
    },
    /// A wrong password: `AuthError::Rejected`, then the right one works.
    WrongPassword {
        port: u16,
        mode: TlsMode,
        mechanism: AuthMechanism,
    },
    /// One message to three recipients.
    Recipients,
    /// Lines of dots, bare LF and bare CR.
    DotLinesBareLf,
    /// A message streamed from a file (`send_file`).
    File,
    /// Five messages by `send_batch`.
    Batch,
}

impl StdCase {
    fn label(&self) -> String {
        match self {
            StdCase::Send { label, .. } | StdCase::Proxied { label, .. } => (*label).into(),
            StdCase::ProxyWrongCredentials { .. } => WRONG_PROXY_LABEL.into(),
            StdCase::AutoLogin { mode, .. } => format!("{}auth-auto-selection", mode_prefix(*mode)),
            StdCase::WrongPassword {
                mode, mechanism, ..
            } => format!(
                "{}wrong-password-{}",
                mode_prefix(*mode),
                mechanism.name().to_lowercase()
            ),
            StdCase::Recipients => "several-recipients".into(),
            StdCase::DotLinesBareLf => "dot-lines+bare-lf".into(),
            StdCase::File => "file (send_file)".into(),
            StdCase::Batch => "batch (5 messages)".into(),
        }
    }
}

/// One blocking connection and its transcript.
struct StdConn {
    client: StdClient,
    log: Transcript,
}

impl StdConn {
    fn fail(&self, what: &str, e: &SmtpError) -> String {
        failure(&self.log, what, e)
    }

    fn quit(self) -> Result<(), String> {
        let log = self.log.clone();
        self.client.quit().map_err(|e| failure(&log, "QUIT", &e))
    }
}

fn std_connect(ctx: &Ctx, t: &Target, port: u16, mode: TlsMode) -> Result<StdConn, String> {
    std_connect_route(ctx, t, port, mode, None)
}

/// [`std_connect`], through `proxy` when given (the TLS name stays [`HOST`]).
fn std_connect_route(
    ctx: &Ctx,
    t: &Target,
    port: u16,
    mode: TlsMode,
    proxy: Option<Proxy>,
) -> Result<StdConn, String> {
    let log = Transcript::default();
    let mut options = StdOptions::new(mode)
        .with_tls_config(ctx.tls.clone())
        .with_connect_timeout(Duration::from_secs(10))
        .with_timeouts(Timeouts::uniform(Duration::from_secs(30)))
        .with_deadline(CASE_LIMIT)
        .with_transcript(Box::new(log.clone()))
        // `plain+auth-*` cases: AUTH on a plaintext port, allowed explicitly.
        .allow_plaintext_auth();
    if t.protocol == Protocol::Lmtp {
        options = options.with_protocol(Protocol::Lmtp);
    }
    if let Some(proxy) = proxy {
        options = options.with_proxy(proxy);
    }
    let client = options
        .connect(HOST, port, EHLO)
        .map_err(|e| failure(&log, &format!("connect to {port} ({mode:?})"), &e))?;
    let tls = client.session().is_tls();
    if tls != (mode != TlsMode::None) || tls != client.stream().is_tls() {
        return Err(format!(
            "connected with {mode:?} but session().is_tls() = {tls}, stream().is_tls() = {}",
            client.stream().is_tls()
        ));
    }
    Ok(StdConn { client, log })
}

/// Read the deliveries back (the async helpers of `capture.rs`, on a runtime of their own).
fn std_verify(t: &Target, wants: &[Expect<'_>]) -> Result<(), String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?
        .block_on(verify(t, wants))
}

fn expect<'a>(id: String, sent: Vec<u8>, rcpts: &[&'a str]) -> Expect<'a> {
    Expect {
        id,
        sent,
        from: FROM,
        rcpts: rcpts.to_vec(),
        auth_user: None,
        auth_method: None,
    }
}

fn std_send(
    ctx: &Ctx,
    t: &Target,
    label: &str,
    port: u16,
    mode: TlsMode,
    auth: Option<AuthMechanism>,
) -> Result<String, String> {
    let conn = std_connect(ctx, t, port, mode)?;
    std_login_send_verify(ctx, t, label, conn, auth)
}

/// On an open connection: AUTH with `auth` if given, one message, QUIT, and the delivered
/// copy verified.
fn std_login_send_verify(
    ctx: &Ctx,
    t: &Target,
    label: &str,
    mut conn: StdConn,
    auth: Option<AuthMechanism>,
) -> Result<String, String> {
    let mut note = String::new();
    if let Some(m) = auth {
        let credential = if matches!(m, AuthMechanism::XOAuth2 | AuthMechanism::OAuthBearer) {
            &ctx.token
        } else {
            &ctx.pass
        };
        conn.client
            .login_with(m, &ctx.user, credential)
            .map_err(|e| conn.fail(&format!("AUTH {m}"), &e))?;
        if conn.client.session().authenticated() != Some(m) {
            return Err("login succeeded but session().authenticated() differs".into());
        }
        let _ = write!(note, "AUTH {m} ok; ");
    }
    let (id, msg) = new_plain_message(t, label);
    let to = ["rcpt@example.org"];
    let outcome = conn
        .client
        .send_mail_bytes(FROM, &to, &msg)
        .map_err(|e| conn.fail(&format!("sending {id}"), &e))?;
    let mut want = expect(id, msg, &to);
    if auth.is_some() {
        want.auth_user = Some(&ctx.user);
        want.auth_method = auth;
    }
    conn.quit()?;
    std_verify(t, &[want])?;
    let _ = write!(note, "final reply {}", outcome.reply);
    Ok(note)
}

/// One message through the proxy `via` after AUTH with `auth`: delivered, the TLS session up
/// although the certificate is refused for the proxy's address, one new tunnel in pproxy's log
/// (the async column's `case_proxied`).
fn std_proxied(
    ctx: &Ctx,
    t: &Target,
    label: &str,
    port: u16,
    mode: TlsMode,
    auth: AuthMechanism,
    via: Listen,
) -> Result<String, String> {
    let route = ProxyRoute::start(&[via])?;
    let for_proxy = StdOptions::new(mode)
        .with_tls_config(ctx.tls.clone())
        .with_connect_timeout(Duration::from_secs(10))
        .with_deadline(CASE_LIMIT)
        .with_tls_server_name(PROXY_IP.to_string())
        .connect(HOST, port, EHLO)
        .and_then(StdClient::quit);
    check_not_for_proxy(for_proxy)?;
    let before = route.tunnels(port);
    let conn = std_connect_route(ctx, t, port, mode, Some(route.proxy(via)))?;
    let sent = std_login_send_verify(ctx, t, label, conn, Some(auth))?;
    let tunnels = route.expect_tunnels(port, before, 1)?;
    Ok(format!(
        "{sent}; TLS checked for {HOST} via {PROXY_IP}; {tunnels}"
    ))
}

/// Wrong credentials for a SOCKS5 and an HTTP CONNECT proxy: typed connect errors without the
/// password, and no tunnel to `port`.
fn std_proxy_wrong_credentials(ctx: &Ctx, port: u16, mode: TlsMode) -> Result<String, String> {
    let kinds = [Listen::Socks5Auth, Listen::HttpAuth];
    let route = ProxyRoute::start(&kinds)?;
    let before = route.tunnels(port);
    let mut notes = Vec::new();
    for via in kinds {
        let connected = StdOptions::new(mode)
            .with_tls_config(ctx.tls.clone())
            .with_connect_timeout(Duration::from_secs(10))
            .with_deadline(CASE_LIMIT)
            .with_proxy(route.proxy_with_password(via, WRONG_PROXY_PASSWORD))
            .connect(HOST, port, EHLO);
        let error = match connected {
            Ok(client) => {
                let _ = client.quit();
                return Err(format!("{via:?}: a wrong proxy password was accepted"));
            }
            Err(e) => e,
        };
        let shown = check_refused_login(&error).map_err(|e| format!("{via:?}: {e}"))?;
        notes.push(format!("{via:?}: {shown}"));
    }
    route.expect_tunnels(port, before, 0)?;
    Ok(format!("{}; no tunnel to {HOST}:{port}", notes.join("; ")))
}

fn std_auto_login(
    ctx: &Ctx,
    t: &Target,
    port: u16,
    mode: TlsMode,
    want: AuthMechanism,
) -> Result<String, String> {
    let mut conn = std_connect(ctx, t, port, mode)?;
    conn.client
        .login(&ctx.user, &ctx.pass)
        .map_err(|e| conn.fail("login()", &e))?;
    let got = conn.client.session().authenticated();
    if got != Some(want) {
        return Err(format!("login() chose {got:?}, expected {want}"));
    }
    conn.quit()?;
    Ok(format!("login() chose {want}"))
}

fn std_wrong_password(
    ctx: &Ctx,
    t: &Target,
    port: u16,
    mode: TlsMode,
    mechanism: AuthMechanism,
) -> Result<String, String> {
    let mut conn = std_connect(ctx, t, port, mode)?;
    let err = match conn
        .client
        .login_with(mechanism, &ctx.user, "wrong-password")
    {
        Ok(()) => return Err("a wrong password was accepted".into()),
        Err(e) => e,
    };
    let SmtpError::Auth(AuthError::Rejected { reply, .. }) = &err else {
        return Err(conn.fail("expected AuthError::Rejected", &err));
    };
    if !(500..600).contains(&reply.code().get()) {
        return Err(conn.fail("expected a 5xx refusal", &err));
    }
    let refused = reply.to_string();
    conn.client
        .login_with(mechanism, &ctx.user, &ctx.pass)
        .map_err(|e| conn.fail("AUTH again with the right password", &e))?;
    conn.quit()?;
    Ok(format!("Rejected: {refused}; retry ok"))
}

fn std_recipients(ctx: &Ctx, t: &Target, label: &str) -> Result<String, String> {
    let mut conn = std_connect(ctx, t, t.port, t.mode)?;
    let (id, msg) = new_plain_message(t, label);
    let to = ["one@example.org", "two@example.org", "three@example.org"];
    let outcome = conn
        .client
        .send_mail_bytes(FROM, &to, &msg)
        .map_err(|e| conn.fail(&format!("sending {id}"), &e))?;
    if outcome.recipients.len() != to.len() {
        return Err(format!("{} recipient results", outcome.recipients.len()));
    }
    conn.quit()?;
    std_verify(t, &[expect(id, msg, &to)])?;
    Ok("3 recipients, one message".into())
}

fn std_dot_lines(ctx: &Ctx, t: &Target, label: &str) -> Result<String, String> {
    let mut conn = std_connect(ctx, t, t.port, t.mode)?;
    let id = new_id(t, label);
    let mut body = Vec::new();
    body.extend_from_slice(b".\r\n..\r\n...\r\n. a dot and a space\r\n.hidden\r\nnormal line\r\n");
    body.extend_from_slice(b"bare LF\nbare CR\rthen CRLF\r\n.\n..\nno final newline");
    let msg = message(&id, "", &body);
    let to = ["rcpt@example.org"];
    let outcome = conn
        .client
        .send_mail_bytes(FROM, &to, &msg)
        .map_err(|e| conn.fail(&format!("sending {id}"), &e))?;
    conn.quit()?;
    let normalized = normalize(&msg).len() as u64;
    if outcome.size != normalized {
        return Err(format!(
            "SendOutcome.size = {}, expected {normalized}",
            outcome.size
        ));
    }
    std_verify(t, &[expect(id, msg, &to)])?;
    Ok("dot lines un-stuffed, bare LF/CR as CRLF".into())
}

fn std_file(ctx: &Ctx, t: &Target, label: &str) -> Result<String, String> {
    let id = new_id(t, label);
    let mut body = Vec::new();
    for n in 0..20_000 {
        body.extend_from_slice(format!("line {n} of a file sent in chunks\r\n").as_bytes());
        if n % 1000 == 0 {
            body.extend_from_slice(b".a dot line\r\n");
        }
    }
    let msg = message(&id, "", &body);
    let path = std::env::temp_dir().join(format!("std-interop-{id}.eml"));
    std::fs::write(&path, &msg).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut conn = std_connect(ctx, t, t.port, t.mode)?;
    let to = ["rcpt@example.org"];
    let sent = conn.client.send_file(FROM, &to, &path);
    let _ = std::fs::remove_file(&path);
    sent.map_err(|e| conn.fail(&format!("sending {id}"), &e))?;
    // The same file through a `Read` of unknown size, 1000 bytes at a time.
    let id2 = new_id(t, label);
    let msg2 = message(&id2, "", &body);
    let mut reader = ReaderBody::new(&msg2[..]).with_chunk_size(1000);
    conn.client
        .send_mail_stream(FROM, &to, &mut reader)
        .map_err(|e| conn.fail(&format!("sending {id2}"), &e))?;
    conn.quit()?;
    let size = msg.len();
    std_verify(t, &[expect(id, msg, &to), expect(id2, msg2, &to)])?;
    Ok(format!("{size} bytes from a file and from a reader"))
}

fn std_batch(ctx: &Ctx, t: &Target, label: &str) -> Result<String, String> {
    let mut conn = std_connect(ctx, t, t.port, t.mode)?;
    let to: &[&str] = &["rcpt@example.org"];
    let messages: Vec<(String, Vec<u8>)> = (0..5).map(|_| new_plain_message(t, label)).collect();
    let batch: Vec<OutgoingMessage<'_>> = messages
        .iter()
        .map(|(_, msg)| OutgoingMessage::new(FROM, to, msg))
        .collect();
    let results = conn.client.send_batch(&batch);
    for (i, r) in results.iter().enumerate() {
        if let Err(e) = r {
            return Err(conn.fail(&format!("batch message {i}"), e));
        }
    }
    conn.quit()?;
    let wants: Vec<Expect<'_>> = messages
        .into_iter()
        .map(|(id, msg)| expect(id, msg, to))
        .collect();
    std_verify(t, &wants)?;
    Ok("5 messages, each delivered".into())
}

fn run_std_case(ctx: &Ctx, t: &Target, case: &StdCase) -> Result<String, String> {
    let label = case.label();
    match *case {
        StdCase::Send {
            label,
            port,
            mode,
            auth,
        } => std_send(ctx, t, label, port, mode, auth),
        StdCase::Proxied {
            label,
            port,
            mode,
            auth,
            via,
        } => std_proxied(ctx, t, label, port, mode, auth, via),
        StdCase::ProxyWrongCredentials { port, mode } => {
            std_proxy_wrong_credentials(ctx, port, mode)
        }
        StdCase::AutoLogin { port, mode, want } => std_auto_login(ctx, t, port, mode, want),
        StdCase::WrongPassword {
            port,
            mode,
            mechanism,
        } => std_wrong_password(ctx, t, port, mode, mechanism),
        StdCase::Recipients => std_recipients(ctx, t, &label),
        StdCase::DotLinesBareLf => std_dot_lines(ctx, t, &label),
        StdCase::File => std_file(ctx, t, &label),
        StdCase::Batch => std_batch(ctx, t, &label),
    }
}

/// Run the blocking column's cases against one server (as `<name>-std` in the table).
fn run_std_matrix(ctx: &Ctx, t: &Target, cases: &[StdCase]) {
    let mut rows = Vec::new();
    for case in cases {
        let started = Instant::now();
        let result = run_std_case(ctx, t, case);
        let ms = started.elapsed().as_millis();
        match &result {
            Ok(note) => println!(
                "  [{}] {:<38} pass  ({ms:>5} ms) {note}",
                t.name,
                case.label()
            ),
            Err(why) => println!(
                "  [{}] {:<38} FAIL  ({ms:>5} ms)\n    {why}",
                t.name,
                case.label()
            ),
        }
        rows.push((case.label(), result));
    }
    report_rows(ctx, t, &rows);
}

/// A send in each TLS mode and a send after AUTH with each of `mechanisms` over STARTTLS and
/// over implicit TLS, then the body and envelope cases.
fn std_cases(p: u16, tls: Option<u16>, mechanisms: &[AuthMechanism]) -> Vec<StdCase> {
    let mut cases = std_plain_and_starttls(p);
    let mut modes = vec![(p, TlsMode::StartTls)];
    if let Some(tls) = tls {
        cases.push(StdCase::Send {
            label: "implicit-tls",
            port: tls,
            mode: TlsMode::Implicit,
            auth: None,
        });
        modes.push((tls, TlsMode::Implicit));
    }
    cases.extend(std_auth_sends(&modes, mechanisms));
    if let Some(&mechanism) = mechanisms.iter().find(|m| **m == AuthMechanism::Plain) {
        cases.push(StdCase::WrongPassword {
            port: p,
            mode: TlsMode::StartTls,
            mechanism,
        });
    }
    cases.extend(std_body_cases());
    cases
}

/// A send without AUTH on `p`, in plaintext and over STARTTLS.
fn std_plain_and_starttls(p: u16) -> Vec<StdCase> {
    [("plain", TlsMode::None), ("starttls", TlsMode::StartTls)]
        .into_iter()
        .map(|(label, mode)| StdCase::Send {
            label,
            port: p,
            mode,
            auth: None,
        })
        .collect()
}

/// A send after AUTH with each of `mechanisms` on each of `modes` (a port and its TLS mode).
fn std_auth_sends(modes: &[(u16, TlsMode)], mechanisms: &[AuthMechanism]) -> Vec<StdCase> {
    let mut cases = Vec::new();
    for &(port, mode) in modes {
        cases.extend(mechanisms.iter().map(|&mechanism| StdCase::Send {
            label: std_auth_label(mode, mechanism),
            port,
            mode,
            auth: Some(mechanism),
        }));
    }
    cases
}

/// The body and envelope cases every server runs last.
fn std_body_cases() -> [StdCase; 4] {
    [
        StdCase::Recipients,
        StdCase::DotLinesBareLf,
        StdCase::File,
        StdCase::Batch,
    ]
}

fn std_auth_label(mode: TlsMode, mechanism: AuthMechanism) -> &'static str {
    use AuthMechanism::{Login, Plain, ScramSha256, XOAuth2};
    match (mode, mechanism) {
        (TlsMode::StartTls, ScramSha256) => "starttls+auth-scram-sha-256",
        (TlsMode::Implicit, ScramSha256) => "implicit+auth-scram-sha-256",
        (TlsMode::StartTls | TlsMode::Implicit, Plain | Login | XOAuth2) => {
            auth_label(mode, mechanism)
        }
        _ => "auth (other)",
    }
}

/// One server of the blocking column: the test's name (for [`enabled`]), the row name, the
/// variables naming its plain port and its spool, and how its deliveries are captured.
struct StdServer {
    test: &'static str,
    name: &'static str,
    port: &'static str,
    protocol: Protocol,
    spool: &'static str,
    capture: Capture,
}

impl StdServer {
    /// When its test is enabled, run the cases `cases` makes from its plain port against it.
    fn run(self, cases: impl FnOnce(u16) -> Vec<StdCase>) {
        if !enabled(self.test) {
            return;
        }
        let ctx = Ctx::from_env();
        let p = port(self.port);
        let t = Target {
            name: self.name,
            port: p,
            mode: TlsMode::None,
            protocol: self.protocol,
            spool: crate::spool(self.spool),
            capture: self.capture,
        };
        run_std_matrix(&ctx, &t, &cases(p));
    }
}

#[test]
fn aiosmtpd_blocking() {
    StdServer {
        test: "aiosmtpd_blocking",
        name: "aiosmtpd-std",
        port: "SMTP_INTEROP_AIOSMTPD_PORT",
        protocol: Protocol::Smtp,
        spool: "SMTP_INTEROP_AIOSMTPD_SPOOL",
        capture: Capture::Exact,
    }
    .run(|p| {
        let tls = port("SMTP_INTEROP_AIOSMTPD_TLS_PORT");
        std_cases(p, Some(tls), &[AuthMechanism::Plain, AuthMechanism::Login])
    });
}

#[test]
fn node_smtp_server_blocking() {
    StdServer {
        test: "node_smtp_server_blocking",
        name: "node-std",
        port: "SMTP_INTEROP_NODE_PORT",
        protocol: Protocol::Smtp,
        spool: "SMTP_INTEROP_NODE_SPOOL",
        capture: Capture::Exact,
    }
    .run(|p| {
        let tls = port("SMTP_INTEROP_NODE_TLS_PORT");
        let mechanisms = [
            AuthMechanism::Plain,
            AuthMechanism::Login,
            AuthMechanism::XOAuth2,
        ];
        std_cases(p, Some(tls), &mechanisms)
    });
}

#[test]
fn node_smtp_server_lmtp_blocking() {
    StdServer {
        test: "node_smtp_server_lmtp_blocking",
        name: "node-lmtp-std",
        port: "SMTP_INTEROP_NODE_LMTP_PORT",
        protocol: Protocol::Lmtp,
        spool: "SMTP_INTEROP_NODE_SPOOL",
        capture: Capture::Exact,
    }
    .run(|p| {
        let mut cases = vec![StdCase::Send {
            label: "lmtp-plain",
            port: p,
            mode: TlsMode::None,
            auth: None,
        }];
        cases.extend(std_body_cases());
        cases
    });
}

#[test]
fn postfix_blocking() {
    StdServer {
        test: "postfix_blocking",
        name: "postfix-std",
        port: "SMTP_INTEROP_POSTFIX_PORT",
        protocol: Protocol::Smtp,
        spool: "SMTP_INTEROP_POSTFIX_SPOOL",
        capture: Capture::ReceivedLf,
    }
    .run(|p| {
        let submit = port("SMTP_INTEROP_POSTFIX_SUBMIT_PORT");
        let tls = port("SMTP_INTEROP_POSTFIX_TLS_PORT");
        let mechanisms = [
            AuthMechanism::Plain,
            AuthMechanism::Login,
            AuthMechanism::ScramSha256,
        ];
        let modes = [(submit, TlsMode::StartTls), (tls, TlsMode::Implicit)];
        let mut cases = std_plain_and_starttls(p);
        cases.extend(std_auth_sends(&modes, &mechanisms));
        cases.push(StdCase::AutoLogin {
            port: submit,
            mode: TlsMode::StartTls,
            want: AuthMechanism::ScramSha256,
        });
        cases.extend(
            [AuthMechanism::Plain, AuthMechanism::ScramSha256].map(|mechanism| {
                StdCase::WrongPassword {
                    port: submit,
                    mode: TlsMode::StartTls,
                    mechanism,
                }
            }),
        );
        // Through real proxies (pproxy), then wrong proxy credentials.
        cases.extend(
            proxied_sends(submit, tls).map(|(label, port, mode, via)| StdCase::Proxied {
                label,
                port,
                mode,
                auth: AuthMechanism::Plain,
                via,
            }),
        );
        cases.push(StdCase::ProxyWrongCredentials {
            port: submit,
            mode: TlsMode::StartTls,
        });
        cases.extend(std_body_cases());
        cases
    });
}

#[test]
fn exim_blocking() {
    StdServer {
        test: "exim_blocking",
        name: "exim-std",
        port: "SMTP_INTEROP_EXIM_PORT",
        protocol: Protocol::Smtp,
        spool: "SMTP_INTEROP_EXIM_SPOOL",
        capture: Capture::ReceivedCrlf,
    }
    .run(|p| {
        let tls = port("SMTP_INTEROP_EXIM_TLS_PORT");
        std_cases(p, Some(tls), &[AuthMechanism::Plain, AuthMechanism::Login])
    });
}

#[test]
fn aiosmtpd_client_certificates_blocking() {
    if !enabled("aiosmtpd_client_certificates_blocking") {
        return;
    }
    let ctx = Ctx::from_env();
    let mtls = Mtls::from_env();
    let port = mtls.port;
    let send = |tls: TlsConfig, id: &str| -> Result<(), SmtpError> {
        let mut client = StdOptions::new(TlsMode::Implicit)
            .with_tls_config(tls)
            .with_reply_timeout(Duration::from_secs(10))
            .with_deadline(CASE_LIMIT)
            .connect(HOST, port, EHLO)?;
        client.send_mail(FROM, &["mtls@example.org"], &Mtls::body(id))?;
        client.quit()
    };
    let accepted = mtls.accepted(&ctx);
    send(accepted, "mtls-std-signed")
        .expect("a client certificate signed by the test CA is accepted");
    let stranger = mtls.stranger(&ctx);
    for (tls, id) in [
        (stranger, "mtls-std-stranger"),
        (ctx.tls.clone(), "mtls-std-none"),
    ] {
        let error = send(tls, id).expect_err(id);
        Mtls::assert_refused(&error, id);
    }
    mtls.assert_delivered_only("mtls-std-signed", ["mtls-std-stranger", "mtls-std-none"]);
    println!("aiosmtpd_client_certificates_blocking: accepted with the CA's certificate only");
}
