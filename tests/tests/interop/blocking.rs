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
    /// A case of the async column's kind and label, run by the blocking client: a send (after
    /// AUTH, through a proxy), wrong proxy credentials, `login()`'s choice, a wrong password.
    Both(Case),
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
            StdCase::Both(case) => case.label(),
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
    runtime().block_on(verify(t, wants))
}

/// Message `id`, sent as `sent` from [`FROM`] to `rcpts`.
fn expect<'a>(id: String, sent: Vec<u8>, rcpts: &[&'a str]) -> Expect<'a> {
    Expect::new(id, sent, FROM, rcpts)
}

fn std_send(run: Run<'_>, port: u16, mode: TlsMode, auth: Option<AuthMechanism>) -> CaseResult {
    let Run { ctx, t, .. } = run;
    let conn = std_connect(ctx, t, port, mode)?;
    std_login_send_verify(run, conn, auth)
}

/// On an open connection: AUTH with `auth` if given, one message, QUIT, and the delivered
/// copy verified.
fn std_login_send_verify(
    run: Run<'_>,
    mut conn: StdConn,
    auth: Option<AuthMechanism>,
) -> CaseResult {
    let Run { ctx, t, label } = run;
    let mut note = String::new();
    if let Some(m) = auth {
        conn.client
            .login_with(m, &ctx.user, ctx.credential(m))
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
    run: Run<'_>,
    port: u16,
    mode: TlsMode,
    auth: AuthMechanism,
    via: Listen,
) -> CaseResult {
    let Run { ctx, t, .. } = run;
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
    let sent = std_login_send_verify(run, conn, Some(auth))?;
    let tunnels = route.expect_tunnels(port, before, 1)?;
    Ok(format!(
        "{sent}; TLS checked for {HOST} via {PROXY_IP}; {tunnels}"
    ))
}

/// Wrong credentials for a SOCKS5 and an HTTP CONNECT proxy: typed connect errors without the
/// password, and no tunnel to `port`.
fn std_proxy_wrong_credentials(ctx: &Ctx, port: u16, mode: TlsMode) -> CaseResult {
    let mut row = WrongCredentials::start(port)?;
    for via in WrongCredentials::KINDS {
        let connected = StdOptions::new(mode)
            .with_tls_config(ctx.tls.clone())
            .with_connect_timeout(Duration::from_secs(10))
            .with_deadline(CASE_LIMIT)
            .with_proxy(row.proxy(via))
            .connect(HOST, port, EHLO);
        let checked = row.check(via, &connected);
        if let Ok(client) = connected {
            let _ = client.quit();
        }
        checked?;
    }
    row.finish()
}

fn std_auto_login(run: Run<'_>, port: u16, mode: TlsMode, want: AuthMechanism) -> CaseResult {
    let Run { ctx, t, .. } = run;
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
    run: Run<'_>,
    port: u16,
    mode: TlsMode,
    mechanism: AuthMechanism,
) -> CaseResult {
    let Run { ctx, t, .. } = run;
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

fn std_recipients(run: Run<'_>) -> CaseResult {
    let Run { ctx, t, label } = run;
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

fn std_dot_lines(run: Run<'_>) -> CaseResult {
    let Run { ctx, t, label } = run;
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

fn std_file(run: Run<'_>) -> CaseResult {
    let Run { ctx, t, label } = run;
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

fn std_batch(run: Run<'_>) -> CaseResult {
    let Run { ctx, t, label } = run;
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

fn run_std_case(ctx: &Ctx, t: &Target, case: &StdCase) -> CaseResult {
    let label = case.label();
    let run = Run {
        ctx,
        t,
        label: &label,
    };
    match case {
        StdCase::Both(Case::Send {
            port, mode, auth, ..
        }) => std_send(run, *port, *mode, *auth),
        StdCase::Both(Case::Proxied {
            port,
            mode,
            auth,
            via,
            ..
        }) => std_proxied(run, *port, *mode, *auth, *via),
        StdCase::Both(Case::ProxyWrongCredentials { port, mode }) => {
            std_proxy_wrong_credentials(ctx, *port, *mode)
        }
        StdCase::Both(Case::AutoLogin { port, mode, want }) => {
            std_auto_login(run, *port, *mode, *want)
        }
        StdCase::Both(Case::WrongPassword {
            port,
            mode,
            mechanism,
        }) => std_wrong_password(run, *port, *mode, *mechanism),
        StdCase::Both(other) => Err(format!("not a case of the blocking column: {other:?}")),
        StdCase::Recipients => std_recipients(run),
        StdCase::DotLinesBareLf => std_dot_lines(run),
        StdCase::File => std_file(run),
        StdCase::Batch => std_batch(run),
    }
}

/// The cases of a server with a plain port `p` (STARTTLS offered) and an implicit-TLS port
/// `tls`: [`tls_and_auth_sends`], a wrong password if PLAIN is among `mechanisms`, then the body
/// cases ([`with_std_body_cases`]).
fn std_cases(p: u16, tls: u16, mechanisms: &[AuthMechanism]) -> Vec<StdCase> {
    let mut cases = tls_and_auth_sends(p, tls, mechanisms);
    if mechanisms.contains(&AuthMechanism::Plain) {
        cases.push(Case::wrong_password(
            p,
            TlsMode::StartTls,
            AuthMechanism::Plain,
        ));
    }
    with_std_body_cases(cases)
}

/// The blocking column's cases: `cases` of both columns, then the body and envelope cases
/// every server runs last.
fn with_std_body_cases(cases: Vec<Case>) -> Vec<StdCase> {
    let mut cases: Vec<StdCase> = cases.into_iter().map(StdCase::Both).collect();
    cases.extend([
        StdCase::Recipients,
        StdCase::DotLinesBareLf,
        StdCase::File,
        StdCase::Batch,
    ]);
    cases
}

impl Server {
    /// The blocking column's test `test`: when enabled, run the cases `cases` makes from the
    /// server's plain port against it, as `<name>-std` in the table.
    fn run_std(&self, test: &str, cases: impl FnOnce(u16) -> Vec<StdCase>) {
        if let Some((ctx, t)) = self.open(test, &format!("{}-std", self.name)) {
            let cases = cases(t.port);
            run_rows(&ctx, &t, &cases, StdCase::label, |case| {
                run_std_case(&ctx, &t, case)
            });
        }
    }

    /// [`Server::run_std`] with [`std_cases`]: the implicit-TLS port named by the variable
    /// `tls`, AUTH with each of `mechanisms`.
    fn run_std_tls_and_auth(&self, test: &str, tls: &str, mechanisms: &[AuthMechanism]) {
        self.run_std(test, |p| std_cases(p, port(tls), mechanisms));
    }
}

#[test]
fn aiosmtpd_blocking() {
    AIOSMTPD.run_std_tls_and_auth(
        "aiosmtpd_blocking",
        "SMTP_INTEROP_AIOSMTPD_TLS_PORT",
        &[AuthMechanism::Plain, AuthMechanism::Login],
    );
}

#[test]
fn node_smtp_server_blocking() {
    NODE.run_std_tls_and_auth(
        "node_smtp_server_blocking",
        "SMTP_INTEROP_NODE_TLS_PORT",
        &[
            AuthMechanism::Plain,
            AuthMechanism::Login,
            AuthMechanism::XOAuth2,
        ],
    );
}

#[test]
fn node_smtp_server_lmtp_blocking() {
    NODE_LMTP.run_std("node_smtp_server_lmtp_blocking", |p| {
        with_std_body_cases(vec![Case::send("lmtp-plain", p, TlsMode::None, None)])
    });
}

#[test]
fn postfix_blocking() {
    POSTFIX.run_std("postfix_blocking", |p| {
        let submit = port("SMTP_INTEROP_POSTFIX_SUBMIT_PORT");
        let tls = port("SMTP_INTEROP_POSTFIX_TLS_PORT");
        let mechanisms = [
            AuthMechanism::Plain,
            AuthMechanism::Login,
            AuthMechanism::ScramSha256,
        ];
        let routes = [(submit, TlsMode::StartTls), (tls, TlsMode::Implicit)];
        let mut cases = plain_and_starttls(p);
        cases.extend(auth_sends(&routes, &mechanisms));
        cases.push(Case::AutoLogin {
            port: submit,
            mode: TlsMode::StartTls,
            want: AuthMechanism::ScramSha256,
        });
        cases.extend(
            [AuthMechanism::Plain, AuthMechanism::ScramSha256]
                .map(|mechanism| Case::wrong_password(submit, TlsMode::StartTls, mechanism)),
        );
        // Through real proxies (pproxy), then wrong proxy credentials.
        cases.extend(proxy_cases(submit, tls));
        with_std_body_cases(cases)
    });
}

#[test]
fn exim_blocking() {
    EXIM.run_std_tls_and_auth(
        "exim_blocking",
        "SMTP_INTEROP_EXIM_TLS_PORT",
        &[AuthMechanism::Plain, AuthMechanism::Login],
    );
}

#[test]
fn aiosmtpd_client_certificates_blocking() {
    Mtls::check(
        "aiosmtpd_client_certificates_blocking",
        "mtls-std",
        |port, tls, id| {
            let mut client = StdOptions::new(TlsMode::Implicit)
                .with_tls_config(tls)
                .with_reply_timeout(Duration::from_secs(10))
                .with_deadline(CASE_LIMIT)
                .connect(HOST, port, EHLO)?;
            client.send_mail(FROM, &["mtls@example.org"], &Mtls::body(id))?;
            client.quit()
        },
    );
}
