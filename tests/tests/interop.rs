//! Interoperability tests: the client (smtp-io-tokio) against real servers on loopback —
//! aiosmtpd, nodemailer's smtp-server (SMTP and LMTP), Postfix with Dovecot SASL, Exim, and
//! Postfix's smtp-sink as a fault injector.
//!
//! Opt-in. Without `SMTP_INTEROP=1` every test prints a notice and passes, so a plain
//! `cargo test --workspace` needs no server. `tests/servers/run-interop.sh` installs and starts
//! the servers, exports their ports, spools and test CA (see `tests/servers/start-servers.sh`),
//! runs this binary and stops the servers. With `SMTP_INTEROP=1`, a server whose variables are
//! missing fails its test.
//!
//! Each test runs every case of one server and prints a table; a case that fails does not stop
//! the others. Delivered messages are read back from the server's capture folder and compared
//! byte for byte with what was sent, after the normalisation SMTP itself implies (CRLF line
//! endings, dot-unstuffing) and after removing the trace header the server prepends.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smtp_io_tokio::smtp_proto::command::{DsnReturn, EnvelopeId, Notify, OriginalRecipient};
use smtp_io_tokio::{
    AuthError, AuthMechanism, BatchMessage, ConnectOptions, DataPipelining, Extension,
    MessageOptions, Protocol, ProtocolError, RecipientPolicy, Reply, SendOutcome, SessionState,
    SmtpClient, SmtpClientOptions, SmtpError, SmtpOp, Timeouts, TlsConfig, TlsMode, TranscriptSink,
    Use,
};

const HOST: &str = "127.0.0.1";
const EHLO: &str = "client.interop.test";
const FROM: &str = "sender@example.com";
/// How long a delivered message may take to show up in a capture folder (Postfix and Exim
/// deliver from their queue, a little after the final reply).
const CAPTURE_WAIT: Duration = Duration::from_secs(20);
/// The most one case may take.
const CASE_LIMIT: Duration = Duration::from_secs(120);

// ------------------------------------------------------------------------------------ setup

fn enabled(test: &str) -> bool {
    if std::env::var("SMTP_INTEROP").is_ok_and(|v| v == "1") {
        return true;
    }
    println!(
        "interop::{test}: skipped (opt-in): run tests/servers/run-interop.sh, which starts the \
         real servers and sets SMTP_INTEROP=1"
    );
    false
}

fn var(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "SMTP_INTEROP=1 but {name} is not set: the server it describes was not started. \
             Run tests/servers/run-interop.sh (it installs and starts every server, exports \
             their variables and runs these tests)."
        ),
    }
}

fn port(name: &str) -> u16 {
    let v = var(name);
    v.parse()
        .unwrap_or_else(|_| panic!("{name}={v:?} is not a port number"))
}

/// Credentials and trust shared by every server.
struct Ctx {
    tls: TlsConfig,
    user: String,
    pass: String,
    token: String,
    results: Option<PathBuf>,
}

impl Ctx {
    fn from_env() -> Ctx {
        let ca = var("SMTP_INTEROP_CA");
        let tls = TlsConfig::from_ca_file(&ca)
            .unwrap_or_else(|e| panic!("SMTP_INTEROP_CA={ca}: cannot load the test CA: {e}"));
        Ctx {
            tls,
            user: var("SMTP_INTEROP_USER"),
            pass: var("SMTP_INTEROP_PASS"),
            token: var("SMTP_INTEROP_TOKEN"),
            results: std::env::var_os("SMTP_INTEROP_RESULTS").map(PathBuf::from),
        }
    }
}

/// How a server stores what it received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Capture {
    /// `<id>.eml` holds exactly the un-stuffed bytes received (aiosmtpd, smtp-server).
    Exact,
    /// A `Received:` header is prepended and CRLF became LF (Postfix's pipe).
    ReceivedLf,
    /// A `Received:` header is prepended, CRLF kept (Exim's pipe with `use_crlf`).
    ReceivedCrlf,
    /// smtp-sink's dump: `X-*` envelope headers and a `Received:` header, LF line ends, and one
    /// empty line appended.
    SinkDump,
}

/// One server endpoint and what it offers.
struct Target {
    name: &'static str,
    /// Where the body cases connect (no AUTH).
    port: u16,
    mode: TlsMode,
    protocol: Protocol,
    /// The capture folder, if the server keeps what it receives.
    spool: Option<PathBuf>,
    capture: Capture,
}

// ------------------------------------------------------------------------------- transcript

/// Every command and reply of one connection (AUTH payloads are redacted by the engine).
#[derive(Clone, Default)]
struct Transcript(Arc<Mutex<Vec<String>>>);

impl TranscriptSink for Transcript {
    fn client(&self, line: &str) {
        self.0.lock().unwrap().push(format!("C: {line}"));
    }
    fn server(&self, reply: &Reply) {
        self.0.lock().unwrap().push(format!("S: {reply}"));
    }
}

impl Transcript {
    fn client_lines(&self) -> Vec<String> {
        let lines = self.0.lock().unwrap();
        lines
            .iter()
            .filter_map(|l| l.strip_prefix("C: ").map(str::to_owned))
            .collect()
    }

    fn sent(&self, prefix: &str) -> bool {
        self.client_lines().iter().any(|l| l.starts_with(prefix))
    }

    fn tail(&self, n: usize) -> String {
        let lines = self.0.lock().unwrap();
        let skip = lines.len().saturating_sub(n);
        let mut out = String::new();
        if skip > 0 {
            let _ = writeln!(out, "      ... {skip} earlier line(s)");
        }
        for l in lines.iter().skip(skip) {
            let _ = writeln!(out, "      {l}");
        }
        out
    }
}

struct Conn {
    client: SmtpClient,
    log: Transcript,
}

impl Conn {
    /// An error message with the error, its debug form and the end of the transcript.
    fn fail(&self, what: &str, e: &SmtpError) -> String {
        failure(&self.log, what, e)
    }

    fn explain(&self, what: &str) -> String {
        format!("{what}\n    transcript:\n{}", self.log.tail(30))
    }

    async fn quit(self) -> Result<(), String> {
        let log = self.log.clone();
        self.client
            .quit()
            .await
            .map_err(|e| failure(&log, "QUIT", &e))
    }
}

fn failure(log: &Transcript, what: &str, e: &SmtpError) -> String {
    format!(
        "{what}: {e}\n    error: {e:?}\n    transcript:\n{}",
        log.tail(30)
    )
}

async fn connect_with(
    ctx: &Ctx,
    t: &Target,
    port: u16,
    mode: TlsMode,
    options: SmtpClientOptions,
) -> Result<Conn, String> {
    let log = Transcript::default();
    // A target's LMTP applies to every case; a case may ask for LMTP on an SMTP target's port.
    let options = if t.protocol == Protocol::Lmtp {
        options.with_protocol(Protocol::Lmtp)
    } else {
        options
    };
    let options = options
        .with_timeouts(Timeouts::uniform(Duration::from_secs(30)))
        .with_transcript(Box::new(log.clone()));
    let client = ConnectOptions::new(mode)
        .with_tls_config(ctx.tls.clone())
        .with_connect_timeout(Duration::from_secs(10))
        .with_client_options(options)
        .connect(HOST, port, EHLO)
        .await
        .map_err(|e| failure(&log, &format!("connect to {port} ({mode:?})"), &e))?;
    let tls = client.session().is_tls();
    if tls != (mode != TlsMode::None) {
        return Err(format!(
            "connected with {mode:?} but session().is_tls() = {tls}"
        ));
    }
    Ok(Conn { client, log })
}

async fn connect(ctx: &Ctx, t: &Target, options: SmtpClientOptions) -> Result<Conn, String> {
    connect_with(ctx, t, t.port, t.mode, options).await
}

// --------------------------------------------------------------------------------- messages

static SEQ: AtomicUsize = AtomicUsize::new(1);

fn new_id(t: &Target, label: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let label: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{}.{label}.{}.{n}", t.name, std::process::id())
}

/// A message: fixed headers with the id, `headers` (each ending in CRLF), a blank line, `body`.
fn message(id: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "From: Interop Sender <{FROM}>\r\nTo: rcpt@example.org\r\nSubject: interop {id}\r\n\
         X-Interop-Id: <{id}>\r\n{headers}\r\n"
    )
    .into_bytes();
    m.extend_from_slice(body);
    m
}

fn plain_body(id: &str) -> Vec<u8> {
    format!("Hello from the interop test {id}.\r\nSecond line.\r\n").into_bytes()
}

/// What SMTP delivers for `sent`: every bare CR and bare LF becomes CRLF, and the message ends
/// with CRLF.
fn normalize(sent: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sent.len() + 16);
    let mut i = 0;
    while i < sent.len() {
        match sent[i] {
            b'\r' if sent.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
                continue;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn crlf_to_lf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'\r' && data.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(data[i]);
        i += 1;
    }
    out
}

/// The length of the header block starting at `data`'s first line (a field and its folded
/// continuation lines), including its line ends.
fn header_len(data: &[u8]) -> usize {
    let mut pos = 0;
    loop {
        match data[pos..].iter().position(|&b| b == b'\n') {
            None => return data.len(),
            Some(nl) => pos += nl + 1,
        }
        if !matches!(data.get(pos), Some(b' ' | b'\t')) {
            return pos;
        }
    }
}

/// The message as the client sent it, cut out of a capture file.
fn extract(kind: Capture, data: &[u8]) -> Result<Vec<u8>, String> {
    match kind {
        Capture::Exact => Ok(data.to_vec()),
        Capture::ReceivedLf | Capture::ReceivedCrlf => {
            if !data.starts_with(b"Received:") {
                return Err(format!(
                    "capture does not start with the expected Received: header: {}",
                    show(&data[..data.len().min(120)])
                ));
            }
            Ok(data[header_len(data)..].to_vec())
        }
        Capture::SinkDump => {
            let at = find(data, b"\nReceived: ")
                .ok_or("smtp-sink dump without its Received: header")?
                + 1;
            let rest = &data[at + header_len(&data[at..])..];
            Ok(rest.strip_suffix(b"\n").unwrap_or(rest).to_vec())
        }
    }
}

/// What the capture must hold for a sent message.
fn expected(kind: Capture, sent: &[u8]) -> Vec<u8> {
    let wire = normalize(sent);
    match kind {
        Capture::Exact | Capture::ReceivedCrlf => wire,
        Capture::ReceivedLf | Capture::SinkDump => crlf_to_lf(&wire),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn show(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

fn first_difference(got: &[u8], want: &[u8]) -> String {
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let from = at.saturating_sub(40);
    format!(
        "bytes differ at offset {at} (got {} bytes, expected {}):\n      got:      \"{}\"\n      \
         expected: \"{}\"",
        got.len(),
        want.len(),
        show(&got[from..got.len().min(at + 40)]),
        show(&want[from..want.len().min(at + 40)]),
    )
}

// ------------------------------------------------------------------------------- captures

/// One captured message: its bytes and envelope.
struct Captured {
    data: Vec<u8>,
    from: String,
    rcpts: Vec<String>,
    auth_user: Option<String>,
    auth_method: Option<String>,
}

fn parse_envelope(kind: Capture, data: &[u8], env: Option<String>) -> Captured {
    let mut c = Captured {
        data: data.to_vec(),
        from: String::new(),
        rcpts: Vec::new(),
        auth_user: None,
        auth_method: None,
    };
    if kind == Capture::SinkDump {
        // X-Mail-Args: <a@b> SIZE=.. / X-Rcpt-Args: <c@d> ...
        let text = String::from_utf8_lossy(data);
        for line in text.lines() {
            let first = |v: &str| {
                let t = v.split_whitespace().next().unwrap_or("");
                t.trim_start_matches('<').trim_end_matches('>').to_owned()
            };
            if let Some(v) = line.strip_prefix("X-Mail-Args: ") {
                c.from = first(v);
            } else if let Some(v) = line.strip_prefix("X-Rcpt-Args: ") {
                c.rcpts.push(first(v));
            } else if line.starts_with("Received:") {
                break;
            }
        }
        return c;
    }
    for line in env.unwrap_or_default().lines() {
        let Some((k, v)) = line.split_once(": ").or_else(|| line.split_once(':')) else {
            continue;
        };
        let v = v.trim().to_owned();
        match k {
            "mail_from" => c.from = v,
            "rcpt" => c.rcpts.push(v),
            "auth_user" if !v.is_empty() => c.auth_user = Some(v),
            "auth_method" if !v.is_empty() => c.auth_method = Some(v),
            _ => {}
        }
    }
    c
}

fn marker(id: &str) -> Vec<u8> {
    format!("X-Interop-Id: <{id}>").into_bytes()
}

/// Scan the capture folder once for the messages with these ids.
fn scan(t: &Target, ids: &[String], found: &mut BTreeMap<String, Captured>) -> Result<(), String> {
    let spool = t.spool.as_ref().expect("scan needs a spool");
    let entries = std::fs::read_dir(spool).map_err(|e| format!("{}: {e}", spool.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with(".env") {
            continue;
        }
        if t.capture != Capture::SinkDump && !name.ends_with(".eml") {
            continue;
        }
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        for id in ids {
            if found.contains_key(id) || find(&data, &marker(id)).is_none() {
                continue;
            }
            let env = std::fs::read_to_string(path.with_extension("env")).ok();
            found.insert(id.clone(), parse_envelope(t.capture, &data, env));
        }
    }
    Ok(())
}

async fn wait_captures(t: &Target, ids: &[String]) -> Result<BTreeMap<String, Captured>, String> {
    let deadline = Instant::now() + CAPTURE_WAIT;
    let mut found = BTreeMap::new();
    loop {
        scan(t, ids, &mut found)?;
        if found.len() == ids.len() {
            return Ok(found);
        }
        if Instant::now() > deadline {
            let missing: Vec<_> = ids.iter().filter(|i| !found.contains_key(*i)).collect();
            return Err(format!(
                "{} of {} message(s) never reached the capture folder {} within {:?}: {missing:?}",
                missing.len(),
                ids.len(),
                t.spool
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                CAPTURE_WAIT
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a delivered message must look like.
struct Expect<'a> {
    id: String,
    sent: Vec<u8>,
    from: &'a str,
    rcpts: Vec<&'a str>,
    auth_user: Option<&'a str>,
    auth_method: Option<AuthMechanism>,
}

fn check_captured(t: &Target, want: &Expect<'_>, got: &Captured) -> Result<(), String> {
    let body = extract(t.capture, &got.data)?;
    let wanted = expected(t.capture, &want.sent);
    if body != wanted {
        return Err(format!(
            "{}: delivered bytes differ from what was sent: {}",
            want.id,
            first_difference(&body, &wanted)
        ));
    }
    if got.from != want.from {
        return Err(format!(
            "{}: envelope sender {:?}, expected {:?}",
            want.id, got.from, want.from
        ));
    }
    let got_rcpts: BTreeSet<_> = got.rcpts.iter().map(String::as_str).collect();
    let want_rcpts: BTreeSet<_> = want.rcpts.iter().copied().collect();
    if got_rcpts != want_rcpts {
        return Err(format!(
            "{}: envelope recipients {got_rcpts:?}, expected {want_rcpts:?}",
            want.id
        ));
    }
    if let Some(user) = want.auth_user {
        if got.auth_user.as_deref() != Some(user) {
            return Err(format!(
                "{}: the server recorded AUTH user {:?}, expected {user:?}",
                want.id, got.auth_user
            ));
        }
    }
    if let (Some(m), Some(recorded)) = (want.auth_method, got.auth_method.as_deref()) {
        if !recorded.eq_ignore_ascii_case(m.name()) {
            return Err(format!(
                "{}: the server recorded AUTH method {recorded:?}, expected {}",
                want.id,
                m.name()
            ));
        }
    }
    Ok(())
}

/// Wait for every expected message and compare each with what was sent. Without a capture
/// folder there is nothing to check.
async fn verify(t: &Target, wants: &[Expect<'_>]) -> Result<(), String> {
    if t.spool.is_none() {
        return Ok(());
    }
    let ids: Vec<String> = wants.iter().map(|w| w.id.clone()).collect();
    let found = wait_captures(t, &ids).await?;
    for w in wants {
        check_captured(t, w, &found[&w.id])?;
    }
    Ok(())
}

/// True when no capture holds the message `id` (checked after a later message arrived).
fn absent(t: &Target, id: &str) -> Result<bool, String> {
    if t.spool.is_none() {
        return Ok(true);
    }
    let mut found = BTreeMap::new();
    scan(t, &[id.to_owned()], &mut found)?;
    Ok(found.is_empty())
}

/// Send one message on `conn` and return what to expect in the capture.
async fn send<'a>(
    conn: &mut Conn,
    id: String,
    from: &'a str,
    to: &[&'a str],
    headers: &str,
    body: &[u8],
) -> Result<(SendOutcome, Expect<'a>), String> {
    let msg = message(&id, headers, body);
    let outcome = conn
        .client
        .send_mail_bytes(from, to, &msg)
        .await
        .map_err(|e| conn.fail(&format!("sending {id}"), &e))?;
    let want = Expect {
        id,
        sent: msg,
        from,
        rcpts: to.to_vec(),
        auth_user: None,
        auth_method: None,
    };
    Ok((outcome, want))
}

// ------------------------------------------------------------------------------------ cases

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// `smtp-sink -p`: no PIPELINING keyword.
    NoPipelining,
    /// `smtp-sink -f EHLO`: EHLO refused, HELO must be used.
    NoEhlo,
    /// `smtp-sink -f RCPT`: every RCPT refused (5xx).
    RcptRefused,
    /// `smtp-sink -r MAIL`: MAIL deferred (4xx).
    MailDeferred,
    /// `smtp-sink -q DATA`: hang up on DATA without a reply.
    DataHangup,
    /// `smtp-sink -Q RCPT`: 421 and hang up on RCPT.
    Rcpt421,
    /// `smtp-sink -A 0`: 550 right after the 354, before the end of data.
    Abort550,
    /// `smtp-sink -f .`: the final dot refused (5xx).
    Dot5xx,
    /// `smtp-sink -r .`: the final dot deferred (4xx).
    Dot4xx,
}

#[derive(Debug, Clone)]
enum Case {
    /// A mail-builder message (text, HTML, an attachment, Cc, Bcc) through `send_message`.
    MailBuilder,
    /// EHLO: these keywords must be advertised.
    Capabilities(&'static [&'static str]),
    /// Send one message over `port` / `mode`, after AUTH with `auth` if given.
    Send {
        label: &'static str,
        port: u16,
        mode: TlsMode,
        auth: Option<AuthMechanism>,
    },
    /// A wrong password: `AuthError::Rejected` with the server's text, then the right one works.
    WrongPassword {
        port: u16,
        mode: TlsMode,
        mechanism: AuthMechanism,
    },
    /// `login()` picks `want` among what the server offers, and it works.
    AutoLogin {
        port: u16,
        mode: TlsMode,
        want: AuthMechanism,
    },
    /// A wrong XOAUTH2 token: `AuthError::Rejected` with the decoded JSON error.
    WrongToken {
        port: u16,
        mode: TlsMode,
    },
    /// AUTH on a plaintext connection to a server that wants TLS first: refused or not offered.
    AuthNeedsTls {
        port: u16,
    },
    /// MAIL on a plaintext connection to a port that requires STARTTLS: 530.
    MailNeedsTls {
        port: u16,
    },
    Pipelining(Use),
    Chunking(Use),
    EightBit,
    Utf8Address,
    /// A UTF-8 address to a server without SMTPUTF8: refused locally, nothing sent.
    Utf8RefusedLocally,
    DotLines,
    BareLf,
    /// One recipient of three refused at RCPT, with `RecipientPolicy::AcceptPartial`.
    PartialRecipients,
    /// The same with the default `RequireAll`: nothing sent, the session stays usable.
    RequireAllRecipients,
    /// `DataPipelining::Always` (the pool's mode): one refused recipient among accepted ones;
    /// DATA went with the envelope, so the connection closes before the body.
    RequireAllPipelinedData,
    /// A message over the advertised SIZE: `ProtocolError::MessageTooLarge` before MAIL.
    Oversize,
    /// 50 messages on one connection.
    Fifty,
    /// 50 messages by `send_batch` (chained: no round trip between messages), one of them
    /// with an invalid recipient refused locally in the middle.
    Batch,
    /// DSN parameters (RET, ENVID, NOTIFY): sent when DSN is offered, refused locally otherwise.
    Dsn,
    /// LMTP: one recipient refused at RCPT, one after the message.
    LmtpPerRecipient {
        port: u16,
        capture: bool,
    },
    Fault {
        label: &'static str,
        port: u16,
        fault: Fault,
    },
}

impl Case {
    fn label(&self) -> String {
        match self {
            Case::Capabilities(_) => "ehlo-capabilities".into(),
            Case::Send { label, .. } => (*label).into(),
            Case::WrongPassword {
                mode, mechanism, ..
            } => {
                format!(
                    "{}wrong-password-{}",
                    mode_prefix(*mode),
                    mechanism.name().to_lowercase()
                )
            }
            Case::AutoLogin { mode, .. } => format!("{}auth-auto-selection", mode_prefix(*mode)),
            Case::WrongToken { .. } => "wrong-xoauth2-token".into(),
            Case::AuthNeedsTls { .. } => "auth-before-starttls-refused".into(),
            Case::MailNeedsTls { .. } => "mail-before-starttls-refused".into(),
            Case::Pipelining(Use::Never) => "pipelining-off".into(),
            Case::Pipelining(_) => "pipelining-on".into(),
            Case::Chunking(Use::Never) => "chunking-off (DATA)".into(),
            Case::Chunking(_) => "chunking-on (BDAT)".into(),
            Case::EightBit => "8bit-body".into(),
            Case::Utf8Address => "smtputf8-address".into(),
            Case::Utf8RefusedLocally => "utf8-address-refused-locally".into(),
            Case::DotLines => "dot-lines".into(),
            Case::BareLf => "bare-lf-and-cr".into(),
            Case::PartialRecipients => "partial-recipients (1 of 3 refused)".into(),
            Case::RequireAllRecipients => "require-all-recipients".into(),
            Case::RequireAllPipelinedData => "require-all-pipelined-data (pool mode)".into(),
            Case::Oversize => "over-size-refused-before-mail".into(),
            Case::Fifty => "50-messages-one-connection".into(),
            Case::Batch => "batch-50-chained".into(),
            Case::Dsn => "dsn-parameters".into(),
            Case::MailBuilder => "mail-builder-message (cc, bcc, html, attachment)".into(),
            Case::LmtpPerRecipient { .. } => "lmtp-per-recipient-replies".into(),
            Case::Fault { label, .. } => (*label).into(),
        }
    }
}

fn mode_prefix(mode: TlsMode) -> &'static str {
    match mode {
        TlsMode::None => "plain-",
        TlsMode::StartTls => "starttls-",
        TlsMode::Implicit => "implicit-",
    }
}

fn code(reply: &Reply) -> u16 {
    reply.code().get()
}

/// Run one case: each kind of case is one `case_*` function below (faults: [`run_fault`]).
async fn run_case(ctx: &Ctx, t: &Target, case: &Case) -> Result<String, String> {
    let label = case.label();
    match case {
        Case::Capabilities(want) => case_capabilities(ctx, t, want).await,
        Case::Send {
            port, mode, auth, ..
        } => case_send(ctx, t, &label, *port, *mode, *auth).await,
        Case::AutoLogin { port, mode, want } => case_auto_login(ctx, t, *port, *mode, *want).await,
        Case::WrongPassword {
            port,
            mode,
            mechanism,
        } => case_wrong_password(ctx, t, *port, *mode, *mechanism).await,
        Case::WrongToken { port, mode } => case_wrong_token(ctx, t, *port, *mode).await,
        Case::AuthNeedsTls { port } => case_auth_needs_tls(ctx, t, *port).await,
        Case::MailNeedsTls { port } => case_mail_needs_tls(ctx, t, &label, *port).await,
        Case::Pipelining(mode) => case_pipelining(ctx, t, &label, *mode).await,
        Case::Chunking(mode) => case_chunking(ctx, t, &label, *mode).await,
        Case::EightBit => case_eight_bit(ctx, t, &label).await,
        Case::Utf8Address => case_utf8_address(ctx, t, &label).await,
        Case::Utf8RefusedLocally => case_utf8_refused_locally(ctx, t, &label).await,
        Case::DotLines => case_dot_lines(ctx, t, &label).await,
        Case::BareLf => case_bare_lf(ctx, t, &label).await,
        Case::PartialRecipients => case_partial_recipients(ctx, t, &label).await,
        Case::RequireAllRecipients => case_require_all_recipients(ctx, t, &label).await,
        Case::RequireAllPipelinedData => case_require_all_pipelined_data(ctx, t, &label).await,
        Case::Oversize => case_oversize(ctx, t, &label).await,
        Case::Fifty => case_fifty(ctx, t, &label).await,
        Case::Batch => case_batch(ctx, t, &label).await,
        Case::Dsn => case_dsn(ctx, t, &label).await,
        Case::MailBuilder => case_mail_builder(ctx, t, &label).await,
        Case::LmtpPerRecipient { port, capture } => {
            case_lmtp_per_recipient(ctx, t, &label, *port, *capture).await
        }
        Case::Fault { port, fault, .. } => run_fault(ctx, t, *port, *fault, &label).await,
    }
}

async fn case_capabilities(ctx: &Ctx, t: &Target, want: &[&str]) -> Result<String, String> {
    let conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let caps = conn.client.capabilities().to_vec();
    let keywords: BTreeSet<String> = caps
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_ascii_uppercase)
        .collect();
    let missing: Vec<_> = want.iter().filter(|k| !keywords.contains(**k)).collect();
    conn.quit().await?;
    if !missing.is_empty() {
        return Err(format!("not advertised: {missing:?}; EHLO said {caps:?}"));
    }
    Ok(caps.join(", "))
}

async fn case_send(
    ctx: &Ctx,
    t: &Target,
    label: &str,
    port: u16,
    mode: TlsMode,
    auth: Option<AuthMechanism>,
) -> Result<String, String> {
    // `plain+auth-*` cases: AUTH on a plaintext port that offers it, allowed explicitly (the
    // engine refuses plaintext AUTH by default).
    let opts = SmtpClientOptions::new().allow_plaintext_auth();
    let mut conn = connect_with(ctx, t, port, mode, opts).await?;
    let mut note = String::new();
    if let Some(m) = auth {
        let cred = if m == AuthMechanism::XOAuth2 {
            &ctx.token
        } else {
            &ctx.pass
        };
        conn.client
            .login_with(m, &ctx.user, cred)
            .await
            .map_err(|e| conn.fail(&format!("AUTH {m}"), &e))?;
        if conn.client.session().authenticated() != Some(m) {
            return Err(conn.explain("login succeeded but session().authenticated() differs"));
        }
        let _ = write!(note, "AUTH {m} ok; ");
    }
    let id = new_id(t, label);
    let body = plain_body(&id);
    let (outcome, mut want) = send(&mut conn, id, FROM, &["rcpt@example.org"], "", &body).await?;
    if auth.is_some() {
        want.auth_user = Some(&ctx.user);
        want.auth_method = auth;
    }
    conn.quit().await?;
    verify(t, &[want]).await?;
    let _ = write!(note, "final reply {}", outcome.reply);
    Ok(note)
}

async fn case_auto_login(
    ctx: &Ctx,
    t: &Target,
    port: u16,
    mode: TlsMode,
    want: AuthMechanism,
) -> Result<String, String> {
    let mut conn = connect_with(ctx, t, port, mode, SmtpClientOptions::new()).await?;
    conn.client
        .login(&ctx.user, &ctx.pass)
        .await
        .map_err(|e| conn.fail("login()", &e))?;
    let got = conn.client.session().authenticated();
    if got != Some(want) {
        return Err(conn.explain(&format!("login() chose {got:?}, expected {want}")));
    }
    let offered = conn
        .client
        .session()
        .capabilities()
        .auth_mechanism_names()
        .join(" ");
    conn.quit().await?;
    Ok(format!("offered {offered}; login() chose {want}"))
}

async fn case_wrong_password(
    ctx: &Ctx,
    t: &Target,
    port: u16,
    mode: TlsMode,
    mechanism: AuthMechanism,
) -> Result<String, String> {
    let mut conn = connect_with(ctx, t, port, mode, SmtpClientOptions::new()).await?;
    let err = match conn
        .client
        .login_with(mechanism, &ctx.user, "wrong-password")
        .await
    {
        Ok(()) => return Err(conn.explain("a wrong password was accepted")),
        Err(e) => e,
    };
    let SmtpError::Auth(AuthError::Rejected { reply, .. }) = &err else {
        return Err(conn.fail("expected AuthError::Rejected", &err));
    };
    if !(500..600).contains(&code(reply)) || reply.text().trim().is_empty() {
        return Err(conn.fail("expected a 5xx refusal with the server's text", &err));
    }
    let refused = reply.to_string();
    // A refused attempt leaves the session able to try again.
    conn.client
        .login_with(mechanism, &ctx.user, &ctx.pass)
        .await
        .map_err(|e| conn.fail("AUTH again with the right password", &e))?;
    conn.quit().await?;
    Ok(format!(
        "Rejected: {refused}; retry with the right password ok"
    ))
}

async fn case_wrong_token(
    ctx: &Ctx,
    t: &Target,
    port: u16,
    mode: TlsMode,
) -> Result<String, String> {
    let mut conn = connect_with(ctx, t, port, mode, SmtpClientOptions::new()).await?;
    let err = match conn
        .client
        .login_xoauth2(&ctx.user, "not-a-valid-token")
        .await
    {
        Ok(()) => return Err(conn.explain("a wrong token was accepted")),
        Err(e) => e,
    };
    let SmtpError::Auth(AuthError::Rejected { reply, detail, .. }) = &err else {
        return Err(conn.fail("expected AuthError::Rejected", &err));
    };
    if !detail.as_deref().is_some_and(|d| d.contains("401")) {
        return Err(conn.fail(
            "expected the decoded JSON error (status 401) in detail",
            &err,
        ));
    }
    let note = format!(
        "Rejected: {reply}; detail {}",
        detail.as_deref().unwrap_or("")
    );
    conn.quit().await?;
    Ok(note)
}

async fn case_auth_needs_tls(ctx: &Ctx, t: &Target, port: u16) -> Result<String, String> {
    // The client is allowed to try, so that what is checked is the server's answer (the
    // engine's own refusal of plaintext AUTH, the default, is tested in smtp-proto).
    let opts = SmtpClientOptions::new().allow_plaintext_auth();
    let mut conn = connect_with(ctx, t, port, TlsMode::None, opts).await?;
    match conn.client.login(&ctx.user, &ctx.pass).await {
        Ok(()) => Err(conn.explain("AUTH succeeded in plaintext on a server that requires TLS")),
        Err(SmtpError::Auth(AuthError::UnsupportedMechanism { .. })) => {
            let caps = conn.client.capabilities().join(", ");
            conn.quit().await?;
            Ok(format!("AUTH not offered before STARTTLS ({caps})"))
        }
        Err(ref e @ SmtpError::Auth(AuthError::Rejected { ref reply, .. }))
            if (500..600).contains(&code(reply)) =>
        {
            let note = format!("refused: {e}");
            conn.quit().await?;
            Ok(note)
        }
        Err(e) => Err(conn.fail("expected a refusal or AUTH not offered", &e)),
    }
}

async fn case_mail_needs_tls(
    ctx: &Ctx,
    t: &Target,
    label: &str,
    port: u16,
) -> Result<String, String> {
    let mut conn = connect_with(ctx, t, port, TlsMode::None, SmtpClientOptions::new()).await?;
    let id = new_id(t, label);
    let msg = message(&id, "", &plain_body(&id));
    match conn
        .client
        .send_mail_bytes(FROM, &["rcpt@example.org"], &msg)
        .await
    {
        Ok(_) => {
            Err(conn.explain("a message was accepted in plaintext on a STARTTLS-required port"))
        }
        Err(SmtpError::Protocol(ProtocolError::UnexpectedCode { during, reply }))
            if during == SmtpOp::MailFrom && code(&reply) == 530 =>
        {
            conn.quit().await?;
            Ok(format!("MAIL refused: {reply}"))
        }
        Err(e) => Err(conn.fail("expected 530 to MAIL", &e)),
    }
}

async fn case_pipelining(ctx: &Ctx, t: &Target, label: &str, mode: Use) -> Result<String, String> {
    let opts = SmtpClientOptions::new().with_pipelining(mode);
    let mut conn = connect(ctx, t, opts).await?;
    let offered = conn
        .client
        .session()
        .capabilities()
        .has(Extension::Pipelining);
    let to = [
        "rcpt1@example.org",
        "rcpt2@example.org",
        "rcpt3@example.org",
    ];
    let id = new_id(t, label);
    let body = plain_body(&id);
    let (_, want) = send(&mut conn, id, FROM, &to, "", &body).await?;
    conn.quit().await?;
    verify(t, &[want]).await?;
    Ok(format!(
        "3 recipients delivered; PIPELINING {}",
        if offered { "offered" } else { "not offered" }
    ))
}

async fn case_chunking(ctx: &Ctx, t: &Target, label: &str, mode: Use) -> Result<String, String> {
    let opts = SmtpClientOptions::new().with_chunking(mode);
    let mut conn = connect(ctx, t, opts).await?;
    let offered = conn
        .client
        .session()
        .capabilities()
        .has(Extension::Chunking);
    let id = new_id(t, label);
    // Dots and a big body: BDAT must not stuff, and several chunks may be needed.
    let mut body = dot_body();
    for i in 0..2000 {
        body.extend_from_slice(
            format!("line {i:05} of a long body for BDAT chunks\r\n").as_bytes(),
        );
    }
    let (_, want) = send(&mut conn, id, FROM, &["rcpt@example.org"], "", &body).await?;
    let bdat = conn.log.sent("BDAT");
    let data = conn.log.sent("DATA");
    let log = conn.log.clone();
    conn.quit().await?;
    let want_bdat = offered && mode == Use::WhenOffered;
    if bdat != want_bdat || data == want_bdat {
        return Err(format!(
            "CHUNKING {} and {mode:?}: BDAT used = {bdat}, DATA used = {data}\n    transcript:\n{}",
            if offered { "offered" } else { "not offered" },
            log.tail(12)
        ));
    }
    verify(t, &[want]).await?;
    Ok(format!(
        "{} bytes via {}",
        normalize(&body).len(),
        if bdat { "BDAT" } else { "DATA" }
    ))
}

async fn case_eight_bit(ctx: &Ctx, t: &Target, label: &str) -> Result<String, String> {
    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let offered = conn
        .client
        .session()
        .capabilities()
        .has(Extension::EightBitMime);
    let id = new_id(t, label);
    let mut body = "Grüße aus Köln — 日本語のテキスト — emoji 🎉\r\n"
        .as_bytes()
        .to_vec();
    body.extend_from_slice(b"Latin-1 byte: caf\xe9, and \xff\xfe raw\r\n");
    let headers = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
                       Content-Transfer-Encoding: 8bit\r\n";
    let (_, want) = send(&mut conn, id, FROM, &["rcpt@example.org"], headers, &body).await?;
    let declared = conn
        .log
        .client_lines()
        .iter()
        .any(|l| l.starts_with("MAIL FROM") && l.contains("BODY=8BITMIME"));
    let log = conn.log.clone();
    conn.quit().await?;
    if declared != offered {
        return Err(format!(
            "8BITMIME offered = {offered} but BODY=8BITMIME declared = {declared}\n    transcript:\n{}",
            log.tail(8)
        ));
    }
    verify(t, &[want]).await?;
    Ok(format!(
        "BODY=8BITMIME {}",
        if declared { "declared" } else { "not offered" }
    ))
}

async fn case_utf8_address(ctx: &Ctx, t: &Target, label: &str) -> Result<String, String> {
    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let from = "josé.ñandú@example.com";
    let to = ["用户@example.org", "rcpt@example.org"];
    let id = new_id(t, label);
    let headers = "X-Utf8-Subject: Grüße, 世界\r\n";
    let body = "Ünïcödé body ✓\r\n".as_bytes();
    let (_, want) = send(&mut conn, id, from, &to, headers, body).await?;
    let declared = conn
        .log
        .client_lines()
        .iter()
        .any(|l| l.starts_with("MAIL FROM") && l.contains("SMTPUTF8"));
    let log = conn.log.clone();
    conn.quit().await?;
    if !declared {
        return Err(format!("MAIL without SMTPUTF8:\n{}", log.tail(8)));
    }
    verify(t, &[want]).await?;
    Ok("UTF-8 sender and recipient delivered with SMTPUTF8".into())
}

async fn case_utf8_refused_locally(ctx: &Ctx, t: &Target, label: &str) -> Result<String, String> {
    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let id = new_id(t, label);
    let msg = message(&id, "", &plain_body(&id));
    match conn
        .client
        .send_mail_bytes(FROM, &["用户@example.org"], &msg)
        .await
    {
        Err(SmtpError::Protocol(ProtocolError::ExtensionUnavailable {
            name: Extension::SmtpUtf8,
        })) => {}
        Ok(_) => {
            return Err(conn.explain("a UTF-8 address was sent to a server without SMTPUTF8"));
        }
        Err(e) => return Err(conn.fail("expected ExtensionUnavailable SMTPUTF8", &e)),
    }
    if conn.log.sent("MAIL") {
        return Err(conn.explain("MAIL was sent before the local refusal"));
    }
    // Nothing was sent; the session is still usable.
    let id = new_id(t, label);
    let body = plain_body(&id);
    let (_, want) = send(&mut conn, id, FROM, &["rcpt@example.org"], "", &body).await?;
    conn.quit().await?;
    verify(t, &[want]).await?;
    Ok("SMTPUTF8 unavailable, refused before any command; next message ok".into())
}

async fn case_dot_lines(ctx: &Ctx, t: &Target, label: &str) -> Result<String, String> {
    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let id = new_id(t, label);
    let body = dot_body();
    let (_, want) = send(&mut conn, id, FROM, &["rcpt@example.org"], "", &body).await?;
    conn.quit().await?;
    verify(t, &[want]).await?;
    Ok("lines of '.', '..', '.x' delivered un-stuffed".into())
}

async fn case_bare_lf(ctx: &Ctx, t: &Target, label: &str) -> Result<String, String> {
    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let id = new_id(t, label);
    let body = b"bare LF here\nthen CRLF\r\nbare CR here\rand LF LF\n\n.dot after LF\n\
                     ..two dots\n.\nCR LF LF\r\n\nno final newline"
        .to_vec();
    let (outcome, want) = send(&mut conn, id, FROM, &["rcpt@example.org"], "", &body).await?;
    conn.quit().await?;
    let normalized = normalize(&want.sent).len() as u64;
    if outcome.size != normalized {
        return Err(format!(
            "SendOutcome.size = {}, expected the normalised size {normalized}",
            outcome.size
        ));
    }
    verify(t, &[want]).await?;
    Ok("bare LF / CR delivered as CRLF".into())
}

async fn case_partial_recipients(ctx: &Ctx, t: &Target, label: &str) -> Result<String, String> {
    let opts = SmtpClientOptions::new().with_recipient_policy(RecipientPolicy::AcceptPartial);
    let mut conn = connect(ctx, t, opts).await?;
    let to = ["ok1@example.org", "reject1@example.org", "ok2@example.org"];
    let id = new_id(t, label);
    let body = plain_body(&id);
    let (outcome, mut want) = send(&mut conn, id, FROM, &to, "", &body).await?;
    let refused: Vec<_> = outcome.refused().collect();
    if refused.len() != 1
        || refused[0].recipient != "reject1@example.org"
        || code(&refused[0].reply) / 100 != 5
    {
        return Err(conn.explain(&format!(
            "expected reject1 refused with 5xx, got {:?}",
            outcome.recipients
        )));
    }
    let note = format!("refused: {}", refused[0].reply);
    conn.quit().await?;
    want.rcpts = vec!["ok1@example.org", "ok2@example.org"];
    verify(t, &[want]).await?;
    Ok(note)
}

async fn case_require_all_recipients(ctx: &Ctx, t: &Target, label: &str) -> Result<String, String> {
    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let to = ["ok1@example.org", "reject1@example.org", "ok2@example.org"];
    let first = new_id(t, label);
    let msg = message(&first, "", &plain_body(&first));
    let result = conn.client.send_mail_bytes(FROM, &to, &msg).await;
    let note = second_of_three_refused(&conn, result)?;
    // The session stays usable, and the refused message must not be delivered.
    next_message_ok_first_absent(conn, t, label, &first).await?;
    Ok(format!("{note}; nothing delivered; next message ok"))
}

/// `result` must be `RecipientsRefused` for the second of three recipients only; returns a note
/// with the server's reply.
fn second_of_three_refused(
    conn: &Conn,
    result: Result<SendOutcome, SmtpError>,
) -> Result<String, String> {
    match result {
        Err(SmtpError::Protocol(ProtocolError::RecipientsRefused { refused, accepted }))
            if refused.len() == 1 && accepted == 2 && refused[0].index == 1 =>
        {
            Ok(format!("RecipientsRefused: {}", refused[0].reply))
        }
        Ok(o) => Err(conn.explain(&format!("sent despite a refused recipient: {o:?}"))),
        Err(e) => Err(conn.fail("expected RecipientsRefused (1 refused, 2 accepted)", &e)),
    }
}

/// After a refused message `first`: the next message on `conn` is delivered, and `first`, sent
/// before it, is not.
async fn next_message_ok_first_absent(
    mut conn: Conn,
    t: &Target,
    label: &str,
    first: &str,
) -> Result<(), String> {
    let id = new_id(t, label);
    let body = plain_body(&id);
    let (_, want) = send(&mut conn, id, FROM, &["ok1@example.org"], "", &body).await?;
    conn.quit().await?;
    verify(t, &[want]).await?;
    if !absent(t, first)? {
        return Err(format!("{first} was delivered to a partial list"));
    }
    Ok(())
}

/// The pool's `DataPipelining::Always`, with the body over DATA and over BDAT: the server
/// refuses one recipient of three. Over DATA with PIPELINING, DATA leaves with MAIL and the
/// RCPTs, the server answers `354`, and the client closes without a body byte; over BDAT the
/// body waits for the RCPT replies and is never sent. Either way nothing is delivered, and the
/// next message goes through (on a new connection where the first one closed).
async fn case_require_all_pipelined_data(
    ctx: &Ctx,
    t: &Target,
    label: &str,
) -> Result<String, String> {
    let mut notes = Vec::new();
    for chunking in [Use::WhenOffered, Use::Never] {
        let opts = SmtpClientOptions::new()
            .with_data_pipelining(DataPipelining::Always)
            .with_chunking(chunking);
        let mut conn = connect(ctx, t, opts).await?;
        let caps = conn.client.session().capabilities();
        let pipelining = caps.has(Extension::Pipelining);
        let bdat = chunking == Use::WhenOffered && caps.has(Extension::Chunking);
        let to = ["ok1@example.org", "reject1@example.org", "ok2@example.org"];
        let first = new_id(t, label);
        let msg = message(&first, "", &plain_body(&first));
        let result = conn.client.send_mail_bytes(FROM, &to, &msg).await;
        second_of_three_refused(&conn, result)?;
        let lines = conn.log.client_lines();
        let data_sent = lines.iter().any(|l| l == "DATA");
        let body_sent = lines
            .iter()
            .any(|l| l == "." || l.starts_with("BDAT") || l.starts_with("[message body"));
        let closed = conn.client.state() == SessionState::Closed;
        let expect_data = pipelining && !bdat;
        if data_sent != expect_data || body_sent || closed != expect_data {
            return Err(conn.explain(&format!(
                "PIPELINING {pipelining}, BDAT {bdat}: DATA sent {data_sent} (expected \
                 {expect_data}), body sent {body_sent}, session closed {closed}"
            )));
        }
        if closed {
            conn = connect(ctx, t, SmtpClientOptions::new()).await?;
        }
        next_message_ok_first_absent(conn, t, label, &first).await?;
        notes.push(match (bdat, closed) {
            (true, _) => "BDAT: body held back",
            (false, true) => "DATA pipelined, closed before the body",
            (false, false) => "no PIPELINING: DATA never sent",
        });
    }
    notes.dedup();
    Ok(format!(
        "{}; nothing delivered; next message ok",
        notes.join("; ")
    ))
}

async fn case_oversize(ctx: &Ctx, t: &Target, label: &str) -> Result<String, String> {
    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let Some(limit) = conn.client.session().capabilities().size_limit() else {
        return Err(conn.explain("the server advertises no SIZE limit"));
    };
    let id = new_id(t, label);
    let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    let body: Vec<u8> = line
        .iter()
        .copied()
        .cycle()
        .take(limit as usize + 10 * line.len())
        .collect();
    let msg = message(&id, "", &body);
    let size = normalize(&msg).len() as u64;
    match conn
        .client
        .send_mail_bytes(FROM, &["rcpt@example.org"], &msg)
        .await
    {
        Err(SmtpError::Protocol(ProtocolError::MessageTooLarge { size: s, limit: l }))
            if s == size && l == limit => {}
        Ok(_) => return Err(conn.explain("an over-size message was sent")),
        Err(e) => {
            return Err(conn.fail(
                &format!("expected MessageTooLarge {{ size: {size}, limit: {limit} }}"),
                &e,
            ));
        }
    }
    if conn.log.sent("MAIL") {
        return Err(conn.explain("MAIL was sent for an over-size message"));
    }
    let id = new_id(t, label);
    let body = plain_body(&id);
    let (_, want) = send(&mut conn, id, FROM, &["rcpt@example.org"], "", &body).await?;
    conn.quit().await?;
    verify(t, &[want]).await?;
    Ok(format!(
        "{size} > SIZE {limit}: refused before MAIL; next message ok"
    ))
}

async fn case_fifty(ctx: &Ctx, t: &Target, label: &str) -> Result<String, String> {
    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let started = Instant::now();
    let mut wants = Vec::new();
    for i in 0..50 {
        let id = new_id(t, &format!("{label}-{i}"));
        let mut body = plain_body(&id);
        if i % 7 == 0 {
            body.extend_from_slice(b".starts with a dot\r\n");
        }
        let (_, want) = send(&mut conn, id, FROM, &["rcpt@example.org"], "", &body).await?;
        wants.push(want);
    }
    let elapsed = started.elapsed();
    conn.quit().await?;
    verify(t, &wants).await?;
    Ok(format!(
        "50 sent in {:.0} ms, all delivered intact",
        elapsed.as_secs_f64() * 1000.0
    ))
}

/// A message built with mail-builder, sent with `send_message`: the envelope comes from From,
/// To, Cc and Bcc; every recipient gets it; no Bcc header is delivered; the parts arrive.
async fn case_mail_builder(ctx: &Ctx, t: &Target, label: &str) -> Result<String, String> {
    use smtp_io_tokio::mail_builder::MessageBuilder;
    use smtp_io_tokio::mail_builder::headers::raw::Raw;
    use smtp_io_tokio::message::SendMessage;

    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let id = new_id(t, label);
    let message = MessageBuilder::new()
        .from(("Interop Sender", FROM))
        .to(("Recipient", "rcpt@example.org"))
        .cc(("Copy", "cc@example.org"))
        .bcc("hidden@example.org")
        .subject(format!("interop {id}"))
        .header("X-Interop-Id", Raw::new(format!("<{id}>")))
        .text_body("The text part.\r\n.A line with a leading dot.")
        .html_body("<p>The HTML part.</p>")
        .attachment("application/pdf", "report.pdf", &b"%PDF-1.4 interop"[..]);
    let outcome = conn
        .client
        .send_message(&message)
        .await
        .map_err(|e| conn.fail("send_message", &e))?;
    conn.quit().await?;
    if outcome.recipients.len() != 3 {
        return Err(format!(
            "{id}: {} recipient results, expected 3",
            outcome.recipients.len()
        ));
    }
    if t.spool.is_none() {
        return Ok(format!("final reply {}", outcome.reply));
    }
    let found = wait_captures(t, std::slice::from_ref(&id)).await?;
    let got = &found[&id];
    let data = extract(t.capture, &got.data)?;
    let text = String::from_utf8_lossy(&data);
    let rcpts: BTreeSet<&str> = got.rcpts.iter().map(String::as_str).collect();
    let want: BTreeSet<&str> = ["rcpt@example.org", "cc@example.org", "hidden@example.org"].into();
    if got.from != FROM || rcpts != want {
        return Err(format!("{id}: envelope {} -> {rcpts:?}", got.from));
    }
    if text
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("bcc:"))
    {
        return Err(format!("{id}: a Bcc header was delivered"));
    }
    for part in [
        "text/plain",
        "text/html",
        "report.pdf",
        "multipart/mixed",
        "Cc: ",
    ] {
        if !text.contains(part) {
            return Err(format!("{id}: {part:?} missing from the delivered message"));
        }
    }
    Ok(format!(
        "3 recipients, no Bcc header, parts delivered; final reply {}",
        outcome.reply
    ))
}

async fn case_batch(ctx: &Ctx, t: &Target, label: &str) -> Result<String, String> {
    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let started = Instant::now();
    let bad = ["broken\r\nRSET@example.org"];
    let mut ids = Vec::new();
    let mut bodies = Vec::new();
    for i in 0..50 {
        let id = new_id(t, &format!("{label}-{i}"));
        let mut body = plain_body(&id);
        if i % 7 == 0 {
            body.extend_from_slice(b".starts with a dot\r\n");
        }
        bodies.push(message(&id, "", &body));
        ids.push(id);
    }
    let to = ["rcpt@example.org"];
    let batch: Vec<BatchMessage<'_>> = bodies
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if i == 25 {
                BatchMessage::new(FROM, &bad, m)
            } else {
                BatchMessage::new(FROM, &to, m)
            }
        })
        .collect();
    let results = conn.client.send_batch(&batch).await;
    let elapsed = started.elapsed();
    let mut wants = Vec::new();
    for (i, (result, (id, sent))) in results
        .into_iter()
        .zip(ids.into_iter().zip(bodies.iter()))
        .enumerate()
    {
        match (i, result) {
            (25, Err(SmtpError::InvalidInput(_))) => {}
            (25, other) => return Err(format!("message 25 (bad recipient): {other:?}")),
            (_, Ok(_)) => wants.push(Expect {
                id,
                sent: sent.clone(),
                from: FROM,
                rcpts: to.to_vec(),
                auth_user: None,
                auth_method: None,
            }),
            (_, Err(e)) => return Err(conn.fail(&format!("batch message {i}"), &e)),
        }
    }
    conn.quit().await?;
    verify(t, &wants).await?;
    Ok(format!(
        "49 sent in {:.0} ms by send_batch, the locally refused one skipped, all delivered intact",
        elapsed.as_secs_f64() * 1000.0
    ))
}

async fn case_dsn(ctx: &Ctx, t: &Target, label: &str) -> Result<String, String> {
    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let offered = conn.client.session().capabilities().has(Extension::Dsn);
    let id = new_id(t, label);
    let envid = EnvelopeId::new(&format!("env.{}", SEQ.fetch_add(1, Ordering::Relaxed)))
        .map_err(|e| format!("EnvelopeId: {e}"))?;
    let mut options = MessageOptions::default();
    options.dsn_return = Some(DsnReturn::Headers);
    options.envelope_id = Some(envid);
    options.notify = Some(Notify::On {
        success: false,
        failure: true,
        delay: true,
    });
    options.original_recipients = vec![
        OriginalRecipient::new("orig+list@example.org")
            .map_err(|e| format!("OriginalRecipient: {e}"))?,
    ];
    let msg = message(&id, "", &plain_body(&id));
    let to = ["rcpt@example.org"];
    let result = conn
        .client
        .send_mail_bytes_with(FROM, &to, &msg, &options)
        .await;
    let lines = conn.log.client_lines();
    match result {
        Ok(_) if offered => {
            let mail = lines.iter().any(|l| {
                l.starts_with("MAIL FROM") && l.contains("RET=HDRS") && l.contains("ENVID=")
            });
            let rcpt = lines.iter().any(|l| {
                l.starts_with("RCPT TO")
                    && l.contains("NOTIFY=FAILURE,DELAY")
                    && l.contains("ORCPT=rfc822;orig+2Blist@example.org")
            });
            if !(mail && rcpt) {
                return Err(conn.explain("DSN parameters missing from MAIL / RCPT"));
            }
            conn.quit().await?;
            let want = Expect {
                id,
                sent: msg,
                from: FROM,
                rcpts: to.to_vec(),
                auth_user: None,
                auth_method: None,
            };
            verify(t, &[want]).await?;
            Ok("RET=HDRS ENVID= NOTIFY=FAILURE,DELAY ORCPT= accepted and delivered".into())
        }
        Err(SmtpError::Protocol(ProtocolError::ExtensionUnavailable {
            name: Extension::Dsn,
        })) if !offered && !conn.log.sent("MAIL") => {
            conn.quit().await?;
            Ok("DSN not offered: refused locally before MAIL".into())
        }
        Ok(_) => Err(conn.explain("DSN parameters sent to a server without DSN")),
        Err(e) => Err(conn.fail("DSN message", &e)),
    }
}

async fn case_lmtp_per_recipient(
    ctx: &Ctx,
    t: &Target,
    label: &str,
    port: u16,
    capture: bool,
) -> Result<String, String> {
    let opts = SmtpClientOptions::new()
        .with_protocol(Protocol::Lmtp)
        .with_recipient_policy(RecipientPolicy::AcceptPartial);
    let mut conn = connect_with(ctx, t, port, TlsMode::None, opts).await?;
    if !conn.log.sent("LHLO") {
        return Err(conn.explain("no LHLO sent"));
    }
    let to = if capture {
        vec![
            "ok1@example.org",
            "reject1@example.org",
            "lmtpfail1@example.org",
            "ok2@example.org",
        ]
    } else {
        vec!["ok1@example.org", "ok2@example.org"]
    };
    let id = new_id(t, label);
    let body = plain_body(&id);
    let (outcome, mut want) = send(&mut conn, id, FROM, &to, "", &body).await?;
    let status: Vec<(String, u16)> = outcome
        .recipients
        .iter()
        .map(|r| (r.recipient.clone(), code(&r.reply)))
        .collect();
    let ok = |r: &str| r.starts_with("ok");
    let bad = status.iter().any(|(r, c)| ok(r) != (*c / 100 == 2));
    if bad || status.len() != to.len() {
        return Err(conn.explain(&format!("per-recipient results {status:?}")));
    }
    conn.quit().await?;
    if capture {
        // The server saves the message once, with every recipient accepted at RCPT.
        want.rcpts = vec![
            "ok1@example.org",
            "lmtpfail1@example.org",
            "ok2@example.org",
        ];
        verify(t, &[want]).await?;
    }
    Ok(format!("{status:?}"))
}

/// A body whose lines start with dots in every way that matters for dot-stuffing.
fn dot_body() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b".\r\n..\r\n...\r\n. a dot and a space\r\n.hidden\r\nnormal line\r\n");
    b.extend_from_slice(b"\r\n.\r\n\r\n.\r\n.\r\n..\r\n");
    for i in 0..100 {
        b.extend_from_slice(format!(".line {i} starts with a dot\r\n").as_bytes());
    }
    b.extend_from_slice(b"last line.\r\n.");
    b
}

async fn run_fault(
    ctx: &Ctx,
    t: &Target,
    port: u16,
    fault: Fault,
    label: &str,
) -> Result<String, String> {
    let mut conn = connect_with(ctx, t, port, TlsMode::None, SmtpClientOptions::new()).await?;
    let id = new_id(t, label);
    let msg = message(&id, "", &plain_body(&id));
    let to = ["rcpt1@example.org", "rcpt2@example.org"];
    let result = conn.client.send_mail_bytes(FROM, &to, &msg).await;
    let state = conn.client.state();
    let pipelining = conn
        .client
        .session()
        .capabilities()
        .has(Extension::Pipelining);
    match (fault, result) {
        (Fault::NoPipelining, Ok(o)) if !pipelining => {
            conn.quit().await?;
            Ok(format!("sent without PIPELINING: {}", o.reply))
        }
        (Fault::NoEhlo, Ok(o)) if conn.log.sent("HELO") => {
            conn.quit().await?;
            Ok(format!("EHLO refused, HELO used: {}", o.reply))
        }
        (
            Fault::RcptRefused,
            Err(SmtpError::Protocol(ProtocolError::RecipientsRefused { refused, accepted })),
        ) if accepted == 0
            && refused.len() == 2
            && refused.iter().all(|r| code(&r.reply) / 100 == 5) =>
        {
            let note = format!("RecipientsRefused: {}", refused[0].reply);
            conn.client
                .noop()
                .await
                .map_err(|e| conn.fail("NOOP afterwards", &e))?;
            conn.quit().await?;
            Ok(format!("{note}; session usable"))
        }
        (
            Fault::MailDeferred,
            Err(
                ref e @ SmtpError::Protocol(ProtocolError::UnexpectedCode {
                    during: SmtpOp::MailFrom,
                    ref reply,
                }),
            ),
        ) if code(reply) / 100 == 4 && e.is_transient() => {
            let note = format!("transient: {reply}");
            conn.quit().await?;
            Ok(note)
        }
        (
            Fault::DataHangup,
            Err(
                ref e @ (SmtpError::Protocol(ProtocolError::ConnectionClosed { .. })
                | SmtpError::Io { .. }),
            ),
        ) if state == SessionState::Closed => Ok(format!("{e}; session closed")),
        (
            Fault::Rcpt421,
            Err(ref e @ SmtpError::Protocol(ProtocolError::UnexpectedCode { ref reply, .. })),
        ) if code(reply) == 421 && state == SessionState::Closed => {
            Ok(format!("{e}; session closed"))
        }
        (
            Fault::Abort550,
            Err(
                ref e @ SmtpError::Protocol(ProtocolError::UnexpectedCode {
                    during: SmtpOp::DataEnd,
                    ref reply,
                }),
            ),
        ) if code(reply) == 550 => {
            // smtp-sink writes the 550 right after the 354. Read together with the 354 (the
            // usual case), it arrives while the body is going out and closes the session; read
            // alone after the client already sent the body and its dot, it is the reply to the
            // dot. Either way the message is refused with the server's 550 and not delivered.
            if state == SessionState::Closed {
                Ok(format!("{e}; session closed"))
            } else {
                Ok(format!("{e}; read after the dot (timing)"))
            }
        }
        (
            Fault::Dot5xx,
            Err(
                ref e @ SmtpError::Protocol(ProtocolError::UnexpectedCode {
                    during: SmtpOp::DataEnd,
                    ref reply,
                }),
            ),
        ) if code(reply) / 100 == 5 && !e.is_transient() => {
            let note = format!("permanent: {reply}");
            conn.client
                .noop()
                .await
                .map_err(|e| conn.fail("NOOP afterwards", &e))?;
            conn.quit().await?;
            Ok(format!("{note}; session usable"))
        }
        (
            Fault::Dot4xx,
            Err(
                ref e @ SmtpError::Protocol(ProtocolError::UnexpectedCode {
                    during: SmtpOp::DataEnd,
                    ref reply,
                }),
            ),
        ) if code(reply) / 100 == 4 && e.is_transient() => {
            let note = format!("transient: {reply}");
            conn.client
                .noop()
                .await
                .map_err(|e| conn.fail("NOOP afterwards", &e))?;
            conn.quit().await?;
            Ok(format!("{note}; session usable"))
        }
        (fault, Ok(o)) => Err(conn.explain(&format!("{fault:?}: unexpected success {o:?}"))),
        (fault, Err(e)) => Err(conn.fail(
            &format!("{fault:?}: unexpected error (state {state:?})"),
            &e,
        )),
    }
}

// ------------------------------------------------------------------------------------ runner

/// Run every case against one server, print its table, record the results, and fail the test
/// if any case failed.
fn run_matrix(ctx: &Ctx, t: &Target, cases: &[Case]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut rows = Vec::new();
    for case in cases {
        let started = Instant::now();
        let result = rt.block_on(async {
            tokio::time::timeout(CASE_LIMIT, run_case(ctx, t, case))
                .await
                .unwrap_or_else(|_| Err(format!("timed out after {CASE_LIMIT:?}")))
        });
        let elapsed = started.elapsed();
        match &result {
            Ok(note) => println!(
                "  [{}] {:<38} pass  ({:>5} ms) {note}",
                t.name,
                case.label(),
                elapsed.as_millis()
            ),
            Err(why) => println!(
                "  [{}] {:<38} FAIL  ({:>5} ms)\n    {why}",
                t.name,
                case.label(),
                elapsed.as_millis()
            ),
        }
        rows.push((case.label(), result));
    }

    println!("\n  {:<12} {:<38} result", "server", "case");
    for (label, r) in &rows {
        println!(
            "  {:<12} {:<38} {}",
            t.name,
            label,
            if r.is_ok() { "pass" } else { "FAIL" }
        );
    }
    if let Some(path) = &ctx.results {
        let mut out = String::new();
        for (label, r) in &rows {
            let (status, note) = match r {
                Ok(n) => ("pass", n.as_str()),
                Err(e) => ("FAIL", e.lines().next().unwrap_or("")),
            };
            let note: String = note
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(160)
                .collect();
            let _ = writeln!(out, "{}\t{label}\t{status}\t{note}", t.name);
        }
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(out.as_bytes()));
        if let Err(e) = written {
            println!("  (could not append to {}: {e})", path.display());
        }
    }
    let failed: Vec<_> = rows
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(l, _)| l.as_str())
        .collect();
    assert!(
        failed.is_empty(),
        "{}: {} of {} case(s) failed: {failed:?} (details above)",
        t.name,
        failed.len(),
        rows.len()
    );
}

fn spool(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(var(name));
    assert!(
        Path::new(&p).is_dir(),
        "{name}={} is not a folder: were the servers started by tests/servers/run-interop.sh?",
        p.display()
    );
    Some(p)
}

/// The connection and AUTH cases every server with a plain port `p` (STARTTLS offered) and an
/// implicit-TLS port `tls` shares: a send in each TLS mode, a send after AUTH with each of
/// `mechanisms` over STARTTLS and over implicit TLS, and a wrong password over STARTTLS for each
/// password mechanism among them.
fn tls_and_auth_cases(p: u16, tls: u16, mechanisms: &[AuthMechanism]) -> Vec<Case> {
    let mut cases = vec![
        Case::Send {
            label: "plain",
            port: p,
            mode: TlsMode::None,
            auth: None,
        },
        Case::Send {
            label: "starttls",
            port: p,
            mode: TlsMode::StartTls,
            auth: None,
        },
        Case::Send {
            label: "implicit-tls",
            port: tls,
            mode: TlsMode::Implicit,
            auth: None,
        },
    ];
    for (port, mode) in [(p, TlsMode::StartTls), (tls, TlsMode::Implicit)] {
        cases.extend(mechanisms.iter().map(|&mechanism| Case::Send {
            label: auth_label(mode, mechanism),
            port,
            mode,
            auth: Some(mechanism),
        }));
    }
    cases.extend(
        mechanisms
            .iter()
            .filter(|m| matches!(m, AuthMechanism::Plain | AuthMechanism::Login))
            .map(|&mechanism| Case::WrongPassword {
                port: p,
                mode: TlsMode::StartTls,
                mechanism,
            }),
    );
    cases
}

/// The matrix label of a send after AUTH with `mechanism` in `mode`.
fn auth_label(mode: TlsMode, mechanism: AuthMechanism) -> &'static str {
    use AuthMechanism::{Login, Plain, XOAuth2};
    match (mode, mechanism) {
        (TlsMode::StartTls, Plain) => "starttls+auth-plain",
        (TlsMode::StartTls, Login) => "starttls+auth-login",
        (TlsMode::StartTls, XOAuth2) => "starttls+auth-xoauth2",
        (TlsMode::Implicit, Plain) => "implicit+auth-plain",
        (TlsMode::Implicit, Login) => "implicit+auth-login",
        (TlsMode::Implicit, XOAuth2) => "implicit+auth-xoauth2",
        _ => "auth (other)",
    }
}

/// The cases every SMTP server with a capture folder gets (body, envelope, limits).
fn body_cases(pipelining: bool, chunking: bool, smtputf8: bool, size: bool) -> Vec<Case> {
    let mut v = Vec::new();
    if pipelining {
        v.push(Case::Pipelining(Use::WhenOffered));
    }
    v.push(Case::Pipelining(Use::Never));
    if chunking {
        v.push(Case::Chunking(Use::WhenOffered));
        v.push(Case::Chunking(Use::Never));
    }
    v.push(Case::EightBit);
    v.push(if smtputf8 {
        Case::Utf8Address
    } else {
        Case::Utf8RefusedLocally
    });
    v.push(Case::DotLines);
    v.push(Case::BareLf);
    v.push(Case::PartialRecipients);
    v.push(Case::RequireAllRecipients);
    v.push(Case::RequireAllPipelinedData);
    if size {
        v.push(Case::Oversize);
    }
    v.push(Case::Dsn);
    v.push(Case::Fifty);
    v.push(Case::Batch);
    v.push(Case::MailBuilder);
    v
}

// ------------------------------------------------------------------------------------ tests

#[test]
fn aiosmtpd() {
    if !enabled("aiosmtpd") {
        return;
    }
    let ctx = Ctx::from_env();
    let p = port("SMTP_INTEROP_AIOSMTPD_PORT");
    let tls = port("SMTP_INTEROP_AIOSMTPD_TLS_PORT");
    let t = Target {
        name: "aiosmtpd",
        port: p,
        mode: TlsMode::None,
        protocol: Protocol::Smtp,
        spool: spool("SMTP_INTEROP_AIOSMTPD_SPOOL"),
        capture: Capture::Exact,
    };
    let mut cases = vec![Case::Capabilities(&[
        "SIZE", "8BITMIME", "SMTPUTF8", "STARTTLS",
    ])];
    cases.extend(tls_and_auth_cases(
        p,
        tls,
        &[AuthMechanism::Plain, AuthMechanism::Login],
    ));
    cases.extend([Case::AuthNeedsTls { port: p }]);
    cases.extend(body_cases(false, false, true, true));
    run_matrix(&ctx, &t, &cases);
}

#[test]
fn node_smtp_server() {
    if !enabled("node_smtp_server") {
        return;
    }
    let ctx = Ctx::from_env();
    let p = port("SMTP_INTEROP_NODE_PORT");
    let tls = port("SMTP_INTEROP_NODE_TLS_PORT");
    let t = Target {
        name: "node",
        port: p,
        mode: TlsMode::None,
        protocol: Protocol::Smtp,
        spool: spool("SMTP_INTEROP_NODE_SPOOL"),
        capture: Capture::Exact,
    };
    let mut cases = vec![Case::Capabilities(&[
        "PIPELINING",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "DSN",
        "STARTTLS",
        "SIZE",
        "AUTH",
    ])];
    cases.extend(tls_and_auth_cases(
        p,
        tls,
        &[
            AuthMechanism::Plain,
            AuthMechanism::Login,
            AuthMechanism::XOAuth2,
        ],
    ));
    cases.extend([
        Case::WrongPassword {
            port: tls,
            mode: TlsMode::Implicit,
            mechanism: AuthMechanism::Plain,
        },
        Case::WrongToken {
            port: p,
            mode: TlsMode::StartTls,
        },
        Case::AuthNeedsTls { port: p },
    ]);
    cases.extend(body_cases(true, false, true, true));
    run_matrix(&ctx, &t, &cases);
}

#[test]
fn node_smtp_server_lmtp() {
    if !enabled("node_smtp_server_lmtp") {
        return;
    }
    let ctx = Ctx::from_env();
    let p = port("SMTP_INTEROP_NODE_LMTP_PORT");
    let t = Target {
        name: "node-lmtp",
        port: p,
        mode: TlsMode::None,
        protocol: Protocol::Lmtp,
        spool: spool("SMTP_INTEROP_NODE_SPOOL"),
        capture: Capture::Exact,
    };
    let cases = vec![
        Case::Capabilities(&["PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"]),
        Case::Send {
            label: "lmtp-plain",
            port: p,
            mode: TlsMode::None,
            auth: None,
        },
        Case::LmtpPerRecipient {
            port: p,
            capture: true,
        },
        Case::Pipelining(Use::WhenOffered),
        Case::Pipelining(Use::Never),
        Case::EightBit,
        Case::Utf8Address,
        Case::DotLines,
        Case::BareLf,
        Case::RequireAllRecipients,
        Case::Oversize,
        Case::Fifty,
        Case::Batch,
    ];
    run_matrix(&ctx, &t, &cases);
}

#[test]
fn postfix() {
    if !enabled("postfix") {
        return;
    }
    let ctx = Ctx::from_env();
    let p = port("SMTP_INTEROP_POSTFIX_PORT");
    let submit = port("SMTP_INTEROP_POSTFIX_SUBMIT_PORT");
    let tls = port("SMTP_INTEROP_POSTFIX_TLS_PORT");
    let t = Target {
        name: "postfix",
        port: p,
        mode: TlsMode::None,
        protocol: Protocol::Smtp,
        spool: spool("SMTP_INTEROP_POSTFIX_SPOOL"),
        capture: Capture::ReceivedLf,
    };
    let mut cases = vec![
        Case::Capabilities(&[
            "PIPELINING",
            "SIZE",
            "STARTTLS",
            "AUTH",
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            "DSN",
            "SMTPUTF8",
            "CHUNKING",
        ]),
        Case::Send {
            label: "plain",
            port: p,
            mode: TlsMode::None,
            auth: None,
        },
        Case::Send {
            label: "starttls",
            port: p,
            mode: TlsMode::StartTls,
            auth: None,
        },
        Case::Send {
            label: "plain+auth-plain",
            port: p,
            mode: TlsMode::None,
            auth: Some(AuthMechanism::Plain),
        },
        Case::Send {
            label: "submission+auth-plain",
            port: submit,
            mode: TlsMode::StartTls,
            auth: Some(AuthMechanism::Plain),
        },
        Case::Send {
            label: "submission+auth-login",
            port: submit,
            mode: TlsMode::StartTls,
            auth: Some(AuthMechanism::Login),
        },
        Case::Send {
            label: "implicit+auth-plain",
            port: tls,
            mode: TlsMode::Implicit,
            auth: Some(AuthMechanism::Plain),
        },
        Case::Send {
            label: "implicit+auth-login",
            port: tls,
            mode: TlsMode::Implicit,
            auth: Some(AuthMechanism::Login),
        },
        // Dovecot 2.3 derives the SCRAM keys from the stored plaintext password. It has no
        // SCRAM-SHA-256-PLUS (and Postfix does not pass TLS channel-binding data to its SASL
        // server), so -PLUS is not offered and not tested here.
        Case::Send {
            label: "submission+auth-scram-sha-256",
            port: submit,
            mode: TlsMode::StartTls,
            auth: Some(AuthMechanism::ScramSha256),
        },
        Case::Send {
            label: "implicit+auth-scram-sha-256",
            port: tls,
            mode: TlsMode::Implicit,
            auth: Some(AuthMechanism::ScramSha256),
        },
        Case::Send {
            label: "plain+auth-scram-sha-256",
            port: p,
            mode: TlsMode::None,
            auth: Some(AuthMechanism::ScramSha256),
        },
        Case::AutoLogin {
            port: submit,
            mode: TlsMode::StartTls,
            want: AuthMechanism::ScramSha256,
        },
        Case::WrongPassword {
            port: submit,
            mode: TlsMode::StartTls,
            mechanism: AuthMechanism::ScramSha256,
        },
        Case::WrongPassword {
            port: submit,
            mode: TlsMode::StartTls,
            mechanism: AuthMechanism::Plain,
        },
        Case::WrongPassword {
            port: submit,
            mode: TlsMode::StartTls,
            mechanism: AuthMechanism::Login,
        },
        Case::WrongPassword {
            port: tls,
            mode: TlsMode::Implicit,
            mechanism: AuthMechanism::Plain,
        },
        Case::AuthNeedsTls { port: submit },
        Case::MailNeedsTls { port: submit },
    ];
    cases.extend(body_cases(true, true, true, true));
    run_matrix(&ctx, &t, &cases);
}

#[test]
fn exim() {
    if !enabled("exim") {
        return;
    }
    let ctx = Ctx::from_env();
    let p = port("SMTP_INTEROP_EXIM_PORT");
    let tls = port("SMTP_INTEROP_EXIM_TLS_PORT");
    let t = Target {
        name: "exim",
        port: p,
        mode: TlsMode::None,
        protocol: Protocol::Smtp,
        spool: spool("SMTP_INTEROP_EXIM_SPOOL"),
        capture: Capture::ReceivedCrlf,
    };
    let mut cases = vec![Case::Capabilities(&[
        "SIZE",
        "8BITMIME",
        "DSN",
        "PIPELINING",
        "AUTH",
        "CHUNKING",
        "STARTTLS",
        "SMTPUTF8",
    ])];
    cases.extend(tls_and_auth_cases(
        p,
        tls,
        &[AuthMechanism::Plain, AuthMechanism::Login],
    ));
    cases.extend(body_cases(true, true, true, true));
    run_matrix(&ctx, &t, &cases);
}

#[test]
fn smtp_sink() {
    if !enabled("smtp_sink") {
        return;
    }
    let ctx = Ctx::from_env();
    let ports: BTreeMap<String, u16> = var("SMTP_INTEROP_SINK_PORTS")
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            (
                k.to_owned(),
                v.parse().expect("SMTP_INTEROP_SINK_PORTS: a bad port"),
            )
        })
        .collect();
    let sink = |name: &str| -> u16 {
        *ports.get(name).unwrap_or_else(|| {
            panic!("SMTP_INTEROP_SINK_PORTS has no {name:?} sink: run tests/servers/run-interop.sh")
        })
    };
    let t = Target {
        name: "smtp-sink",
        port: sink("basic"),
        mode: TlsMode::None,
        protocol: Protocol::Smtp,
        spool: spool("SMTP_INTEROP_SINK_SPOOL"),
        capture: Capture::SinkDump,
    };
    let cases = vec![
        Case::Capabilities(&["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "DSN"]),
        Case::Send {
            label: "plain",
            port: sink("basic"),
            mode: TlsMode::None,
            auth: None,
        },
        Case::Pipelining(Use::WhenOffered),
        Case::Pipelining(Use::Never),
        Case::EightBit,
        Case::Utf8RefusedLocally,
        Case::DotLines,
        Case::BareLf,
        Case::Dsn,
        Case::Fifty,
        Case::Batch,
        Case::LmtpPerRecipient {
            port: sink("lmtp"),
            capture: false,
        },
        Case::Fault {
            label: "fault: no PIPELINING (-p)",
            port: sink("nopipe"),
            fault: Fault::NoPipelining,
        },
        Case::Fault {
            label: "fault: EHLO refused (-f EHLO)",
            port: sink("noesmtp"),
            fault: Fault::NoEhlo,
        },
        Case::Fault {
            label: "fault: RCPT 5xx (-f RCPT)",
            port: sink("rcpt5xx"),
            fault: Fault::RcptRefused,
        },
        Case::Fault {
            label: "fault: MAIL 4xx (-r MAIL)",
            port: sink("mail4xx"),
            fault: Fault::MailDeferred,
        },
        Case::Fault {
            label: "fault: hang up on DATA (-q DATA)",
            port: sink("datahangup"),
            fault: Fault::DataHangup,
        },
        Case::Fault {
            label: "fault: 421 on RCPT (-Q RCPT)",
            port: sink("rcpt421"),
            fault: Fault::Rcpt421,
        },
        Case::Fault {
            label: "fault: 550 after 354 (-A 0)",
            port: sink("abort550"),
            fault: Fault::Abort550,
        },
        Case::Fault {
            label: "fault: 5xx after dot (-f .)",
            port: sink("dot5xx"),
            fault: Fault::Dot5xx,
        },
        Case::Fault {
            label: "fault: 4xx after dot (-r .)",
            port: sink("dot4xx"),
            fault: Fault::Dot4xx,
        },
    ];
    run_matrix(&ctx, &t, &cases);
}
