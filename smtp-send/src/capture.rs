//! A small local SMTP server that records what it receives: the target of `smtp-send` when no
//! `--server` is given, and the test double of the integration tests.
//!
//! It listens on `127.0.0.1:0`, serves each connection in its own task, and speaks enough ESMTP to
//! exercise a real client: EHLO advertising `PIPELINING`, `8BITMIME`, `SMTPUTF8`, `SIZE`,
//! `STARTTLS`, `AUTH PLAIN LOGIN` and `ENHANCEDSTATUSCODES`; STARTTLS (or implicit TLS) with a
//! certificate for `localhost` and `127.0.0.1` signed by a CA generated at start-up; AUTH PLAIN and
//! LOGIN accepting any credentials (except one password that can be configured to be refused);
//! MAIL, RCPT (refusing recipients that start with a configurable prefix), DATA with
//! dot-unstuffing, RSET, NOOP and QUIT. Commands are read line by line and answered one by one, so
//! pipelined commands get their replies in order. Lines and messages are bounded.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use smtp_send::capture::{CaptureConfig, CaptureServer};
//!
//! let server = CaptureServer::start(CaptureConfig::default()).await?;
//! println!("listening on {}, trust this CA:\n{}", server.addr(), server.ca_pem());
//! // ... send a message to server.addr() ...
//! for message in server.messages() {
//!     println!("{} -> {:?}", message.mail_from, message.rcpt_to);
//! }
//! # Ok(()) }
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use smtp_io_tokio::TlsMode;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::base64;

/// What the capture server offers and refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureConfig {
    /// [`TlsMode::StartTls`] (the default) offers STARTTLS; [`TlsMode::Implicit`] starts TLS on
    /// connect; [`TlsMode::None`] offers no TLS at all.
    pub tls: TlsMode,
    /// RCPT TO addresses starting with this prefix (case-insensitive) are refused with `550 5.1.1`.
    /// Default: `Some("reject")`.
    pub reject_recipient_prefix: Option<String>,
    /// AUTH with exactly this password is refused with `535 5.7.8`; any other is accepted.
    pub refuse_password: Option<String>,
    /// The `SIZE` advertised and enforced, in bytes. Default: 10 MiB.
    pub max_message_size: u64,
    /// The longest command or message line accepted, in bytes without CRLF. Default: 16 KiB.
    pub max_line_length: usize,
    /// How long the server waits for the client's next line before closing. Default: 5 minutes.
    pub idle_timeout: Duration,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            tls: TlsMode::StartTls,
            reject_recipient_prefix: Some("reject".to_owned()),
            refuse_password: None,
            max_message_size: 10 * 1024 * 1024,
            max_line_length: 16 * 1024,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// One message as the capture server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// The queue id given in the `250` reply.
    pub queue_id: String,
    /// The EHLO (or HELO) argument.
    pub ehlo: String,
    /// Whether TLS was active when the message was received.
    pub tls: bool,
    /// The AUTH mechanism and user name, when the client authenticated (never the password).
    pub auth: Option<(String, String)>,
    /// The reverse-path of MAIL FROM, without angle brackets.
    pub mail_from: String,
    /// The ESMTP parameters of MAIL FROM (e.g. `SIZE=120`, `BODY=8BITMIME`).
    pub mail_params: Vec<String>,
    /// The accepted forward-paths of RCPT TO, without angle brackets, in order.
    pub rcpt_to: Vec<String>,
    /// The message as received: dot-unstuffed, every line ended by CRLF, without the final `.`.
    pub data: Vec<u8>,
}

struct Shared {
    config: CaptureConfig,
    acceptor: Option<TlsAcceptor>,
    messages: Mutex<Vec<Captured>>,
    next_id: AtomicU64,
}

/// A running capture server. Dropping it stops accepting connections.
pub struct CaptureServer {
    addr: SocketAddr,
    ca_pem: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for CaptureServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureServer")
            .field("addr", &self.addr)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Drop for CaptureServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A fresh CA (its PEM, for the client to trust) and a TLS acceptor presenting a `localhost` /
/// `127.0.0.1` certificate it signed, made with `rcgen`. The CA's private key never leaves this
/// function: it signs the one certificate and is dropped, so nothing else can carry its name.
fn generate_tls() -> io::Result<(String, TlsAcceptor)> {
    let failed = |e: rcgen::Error| io::Error::other(format!("certificate generation: {e}"));
    let ca_key = KeyPair::generate().map_err(failed)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    ca.distinguished_name
        .push(DnType::CommonName, "smtp-send capture CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca.self_signed(&ca_key).map_err(failed)?;

    let leaf_key = KeyPair::generate().map_err(failed)?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .map_err(failed)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    let leaf = leaf.signed_by(&leaf_key, &ca, &ca_key).map_err(failed)?;

    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|b| {
                b.with_no_client_auth()
                    .with_single_cert(vec![leaf.der().clone()], key)
            })
            .map_err(|e| io::Error::other(format!("TLS server configuration: {e}")))?;
    Ok((ca.pem(), TlsAcceptor::from(Arc::new(config))))
}

impl CaptureServer {
    /// Generate the CA and certificate, bind `127.0.0.1:0` and start serving in the background
    /// (needs a running tokio runtime).
    pub async fn start(config: CaptureConfig) -> io::Result<CaptureServer> {
        let (ca_pem, acceptor) = generate_tls()?;
        let acceptor = match config.tls {
            TlsMode::None => None,
            _ => Some(acceptor),
        };
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            acceptor,
            messages: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
        });
        let accept_shared = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = accept_shared.clone();
                tokio::spawn(async move {
                    // A failed connection concerns only its client.
                    let _ = serve_connection(stream, shared).await;
                });
            }
        });
        Ok(CaptureServer {
            addr,
            ca_pem,
            shared,
            task,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PEM of the CA that signed the server's certificate (for `localhost` and `127.0.0.1`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The configuration in use.
    pub fn config(&self) -> &CaptureConfig {
        &self.shared.config
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Captured> {
        lock(&self.shared.messages).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One line from the client.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A line without its CRLF (or bare LF).
    Text(Vec<u8>),
    /// Longer than the limit; the whole line was consumed.
    TooLong,
    /// End of stream (a trailing partial line is dropped).
    Eof,
}

/// Read one line of at most `max` bytes (without the line ending), holding at most `max` plus
/// one buffer of bytes whatever the client sends.
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R, max: usize) -> io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Line::Eof);
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if !too_long {
            line.extend_from_slice(&buf[..take]);
        }
        reader.consume(take);
        if line.len() > max + 2 {
            too_long = true;
            line = Vec::new();
        }
        if done {
            break;
        }
    }
    if too_long {
        return Ok(Line::TooLong);
    }
    line.pop(); // the LF
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if line.len() > max {
        return Ok(Line::TooLong);
    }
    Ok(Line::Text(line))
}

/// What to do when a command loop ends.
enum Next {
    /// Close the connection.
    Close,
    /// The `220` to STARTTLS was sent: run the TLS handshake and go on.
    StartTls,
}

/// The per-connection session state.
#[derive(Default)]
struct Conn {
    ehlo: Option<String>,
    tls: bool,
    auth: Option<(String, String)>,
    mail: Option<(String, Vec<String>)>,
    rcpt: Vec<String>,
}

impl Conn {
    fn reset_transaction(&mut self) {
        self.mail = None;
        self.rcpt.clear();
    }
}

async fn serve_connection(tcp: TcpStream, shared: Arc<Shared>) -> io::Result<()> {
    let mut conn = Conn::default();
    if shared.config.tls == TlsMode::Implicit {
        let acceptor = shared.acceptor.clone().ok_or_else(no_tls)?;
        let tls = acceptor.accept(tcp).await?;
        conn.tls = true;
        let mut io = BufReader::new(tls);
        send(&mut io, "220 localhost ESMTP smtp-send capture server\r\n").await?;
        commands(&mut io, &mut conn, &shared).await?;
        return io.shutdown().await;
    }
    let mut io = BufReader::new(tcp);
    send(&mut io, "220 localhost ESMTP smtp-send capture server\r\n").await?;
    match commands(&mut io, &mut conn, &shared).await? {
        Next::Close => io.shutdown().await,
        Next::StartTls => {
            // Anything the client pipelined after STARTTLS is dropped unread with the plaintext
            // buffer (RFC 3207 section 5: it must not be trusted).
            let tcp = io.into_inner();
            let acceptor = shared.acceptor.clone().ok_or_else(no_tls)?;
            let tls = acceptor.accept(tcp).await?;
            // RFC 3207 section 4.2: forget everything learnt before TLS.
            conn = Conn {
                tls: true,
                ..Conn::default()
            };
            let mut io = BufReader::new(tls);
            commands(&mut io, &mut conn, &shared).await?;
            io.shutdown().await
        }
    }
}

fn no_tls() -> io::Error {
    io::Error::other("TLS is not configured")
}

async fn send<W: AsyncWrite + Unpin>(io: &mut W, reply: &str) -> io::Result<()> {
    io.write_all(reply.as_bytes()).await?;
    io.flush().await
}

/// Answer commands until QUIT, end of stream, or STARTTLS.
async fn commands<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    conn: &mut Conn,
    shared: &Shared,
) -> io::Result<Next> {
    let config = &shared.config;
    loop {
        let line =
            match tokio::time::timeout(config.idle_timeout, read_line(io, config.max_line_length))
                .await
            {
                Ok(line) => line?,
                Err(_) => {
                    send(io, "421 4.4.2 localhost Error: timeout exceeded\r\n").await?;
                    return Ok(Next::Close);
                }
            };
        let line = match line {
            Line::Eof => return Ok(Next::Close),
            Line::TooLong => {
                send(io, "500 5.5.2 Error: line too long\r\n").await?;
                continue;
            }
            Line::Text(line) => String::from_utf8_lossy(&line).into_owned(),
        };
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim()),
            None => (line.to_ascii_uppercase(), ""),
        };
        match verb.as_str() {
            "EHLO" | "HELO" => {
                if arg.is_empty() {
                    send(io, "501 5.5.4 Syntax: EHLO hostname\r\n").await?;
                    continue;
                }
                conn.reset_transaction();
                conn.ehlo = Some(arg.to_owned());
                if verb == "HELO" {
                    send(io, "250 localhost\r\n").await?;
                    continue;
                }
                let mut lines = vec![
                    format!("localhost greets {arg}"),
                    "PIPELINING".to_owned(),
                    "8BITMIME".to_owned(),
                    "SMTPUTF8".to_owned(),
                    format!("SIZE {}", config.max_message_size),
                ];
                if config.tls == TlsMode::StartTls && !conn.tls {
                    lines.push("STARTTLS".to_owned());
                }
                lines.push("AUTH PLAIN LOGIN".to_owned());
                lines.push("ENHANCEDSTATUSCODES".to_owned());
                let mut reply = String::new();
                for (i, l) in lines.iter().enumerate() {
                    let sep = if i + 1 == lines.len() { ' ' } else { '-' };
                    reply.push_str(&format!("250{sep}{l}\r\n"));
                }
                send(io, &reply).await?;
            }
            "STARTTLS" => {
                if !arg.is_empty() {
                    send(io, "501 5.5.4 Syntax: STARTTLS\r\n").await?;
                } else if conn.tls {
                    send(io, "503 5.5.1 Error: TLS already active\r\n").await?;
                } else if config.tls != TlsMode::StartTls || shared.acceptor.is_none() {
                    send(io, "454 4.7.0 TLS not available\r\n").await?;
                } else {
                    send(io, "220 2.0.0 Ready to start TLS\r\n").await?;
                    return Ok(Next::StartTls);
                }
            }
            "AUTH" => auth(io, conn, config, arg).await?,
            "MAIL" => {
                let reply = mail(conn, config, arg);
                send(io, reply).await?;
            }
            "RCPT" => {
                let reply = rcpt(conn, config, arg);
                send(io, &reply).await?;
            }
            "DATA" => {
                if !arg.is_empty() {
                    send(io, "501 5.5.4 Syntax: DATA\r\n").await?;
                } else if conn.mail.is_none() {
                    send(io, "503 5.5.1 Error: need MAIL command\r\n").await?;
                } else if conn.rcpt.is_empty() {
                    send(io, "554 5.5.1 Error: no valid recipients\r\n").await?;
                } else {
                    send(io, "354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                    if !data(io, conn, shared).await? {
                        return Ok(Next::Close);
                    }
                }
            }
            "RSET" => {
                conn.reset_transaction();
                send(io, "250 2.0.0 Ok\r\n").await?;
            }
            "NOOP" => send(io, "250 2.0.0 Ok\r\n").await?,
            "QUIT" => {
                send(io, "221 2.0.0 Bye\r\n").await?;
                return Ok(Next::Close);
            }
            "VRFY" => send(io, "252 2.0.0 Cannot VRFY user\r\n").await?,
            _ => send(io, "502 5.5.2 Error: command not recognized\r\n").await?,
        }
    }
}

/// Strip `prefix` (case-insensitive) from `s`.
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Parse `FROM:<path> params` / `TO:<path> params`: the path without brackets and the parameters.
fn parse_path<'a>(arg: &'a str, keyword: &str) -> Option<(&'a str, Vec<String>)> {
    let rest = strip_prefix_ci(arg, keyword)?.trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    let path = &rest[..end];
    let params = rest[end + 1..]
        .split_ascii_whitespace()
        .map(str::to_owned)
        .collect();
    Some((path, params))
}

fn mail(conn: &mut Conn, config: &CaptureConfig, arg: &str) -> &'static str {
    if conn.ehlo.is_none() {
        return "503 5.5.1 Error: send HELO/EHLO first\r\n";
    }
    if conn.mail.is_some() {
        return "503 5.5.1 Error: nested MAIL command\r\n";
    }
    let Some((path, params)) = parse_path(arg, "FROM:") else {
        return "501 5.5.4 Syntax: MAIL FROM:<address>\r\n";
    };
    for p in &params {
        if let Some(size) = strip_prefix_ci(p, "SIZE=") {
            match size.parse::<u64>() {
                Ok(n) if n > config.max_message_size => {
                    return "552 5.3.4 Error: message file too big\r\n";
                }
                Ok(_) => {}
                Err(_) => return "501 5.5.4 Bad SIZE parameter\r\n",
            }
        }
    }
    conn.mail = Some((path.to_owned(), params));
    "250 2.1.0 Ok\r\n"
}

/// The most recipients per message.
const MAX_RECIPIENTS: usize = 100;

fn rcpt(conn: &mut Conn, config: &CaptureConfig, arg: &str) -> String {
    if conn.mail.is_none() {
        return "503 5.5.1 Error: need MAIL command\r\n".to_owned();
    }
    let Some((path, _params)) = parse_path(arg, "TO:") else {
        return "501 5.5.4 Syntax: RCPT TO:<address>\r\n".to_owned();
    };
    if path.is_empty() {
        return "501 5.1.3 Bad recipient address syntax\r\n".to_owned();
    }
    if let Some(prefix) = &config.reject_recipient_prefix
        && strip_prefix_ci(path, prefix).is_some()
    {
        return format!("550 5.1.1 <{path}>: Recipient address rejected: User unknown\r\n");
    }
    if conn.rcpt.len() >= MAX_RECIPIENTS {
        return "452 4.5.3 Error: too many recipients\r\n".to_owned();
    }
    conn.rcpt.push(path.to_owned());
    "250 2.1.5 Ok\r\n".to_owned()
}

/// Read the message after `354` up to the lone dot, unstuff it, store it and reply. False when
/// the connection ended inside the message.
async fn data<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    conn: &mut Conn,
    shared: &Shared,
) -> io::Result<bool> {
    let config = &shared.config;
    let mut message = Vec::new();
    let mut too_big = false;
    let mut too_long = false;
    loop {
        let line =
            match tokio::time::timeout(config.idle_timeout, read_line(io, config.max_line_length))
                .await
            {
                Ok(line) => line?,
                Err(_) => {
                    send(io, "421 4.4.2 localhost Error: timeout exceeded\r\n").await?;
                    return Ok(false);
                }
            };
        let line = match line {
            Line::Eof => return Ok(false),
            Line::TooLong => {
                too_long = true;
                continue;
            }
            Line::Text(line) => line,
        };
        if line == b"." {
            break;
        }
        let content = line.strip_prefix(b".").unwrap_or(&line);
        if too_big || message.len() as u64 + content.len() as u64 + 2 > config.max_message_size {
            too_big = true;
            continue;
        }
        message.extend_from_slice(content);
        message.extend_from_slice(b"\r\n");
    }
    let (from, params) = conn.mail.take().unwrap_or_default();
    let rcpt = std::mem::take(&mut conn.rcpt);
    if too_big {
        send(io, "552 5.3.4 Error: message file too big\r\n").await?;
        return Ok(true);
    }
    if too_long {
        send(io, "500 5.5.2 Error: message line too long\r\n").await?;
        return Ok(true);
    }
    let n = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let queue_id = format!("CAP{:X}{n:04X}", std::process::id());
    lock(&shared.messages).push(Captured {
        queue_id: queue_id.clone(),
        ehlo: conn.ehlo.clone().unwrap_or_default(),
        tls: conn.tls,
        auth: conn.auth.clone(),
        mail_from: from,
        mail_params: params,
        rcpt_to: rcpt,
        data: message,
    });
    send(io, &format!("250 2.0.0 Ok: queued as {queue_id}\r\n")).await?;
    Ok(true)
}

/// Read one SASL response line: `None` when the client cancelled (`*`) or the line was unusable
/// (the reply has then been sent), `Some(decoded)` otherwise.
async fn sasl_response<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    config: &CaptureConfig,
    challenge: &str,
) -> io::Result<Result<Vec<u8>, &'static str>> {
    send(io, &format!("334 {challenge}\r\n")).await?;
    let line = match tokio::time::timeout(
        config.idle_timeout,
        read_line(io, config.max_line_length),
    )
    .await
    {
        Ok(line) => line?,
        Err(_) => return Ok(Err("421 4.4.2 localhost Error: timeout exceeded\r\n")),
    };
    match line {
        Line::Eof => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "client left during AUTH",
        )),
        Line::TooLong => Ok(Err(
            "500 5.5.6 Authentication exchange line is too long\r\n",
        )),
        Line::Text(l) if l == b"*" => Ok(Err("501 5.7.0 Authentication aborted\r\n")),
        Line::Text(l) => Ok(decode_or_err(&l)),
    }
}

fn decode_or_err(b64: &[u8]) -> Result<Vec<u8>, &'static str> {
    if b64 == b"=" {
        return Ok(Vec::new());
    }
    base64::decode(b64).ok_or("501 5.5.2 Cannot decode response\r\n")
}

async fn auth<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    conn: &mut Conn,
    config: &CaptureConfig,
    arg: &str,
) -> io::Result<()> {
    if conn.ehlo.is_none() {
        return send(io, "503 5.5.1 Error: send EHLO first\r\n").await;
    }
    if conn.auth.is_some() {
        return send(io, "503 5.5.1 Error: already authenticated\r\n").await;
    }
    if conn.mail.is_some() {
        return send(io, "503 5.5.1 Error: MAIL transaction in progress\r\n").await;
    }
    let (mechanism, initial) = match arg.split_once(' ') {
        Some((m, i)) => (m.to_ascii_uppercase(), Some(i.trim())),
        None => (arg.to_ascii_uppercase(), None),
    };
    let credentials = match mechanism.as_str() {
        "PLAIN" => {
            let response = match initial {
                Some(i) => decode_or_err(i.as_bytes()),
                None => sasl_response(io, config, "").await?,
            };
            response.and_then(|r| {
                let mut parts = r.split(|&b| b == 0);
                match (parts.next(), parts.next(), parts.next(), parts.next()) {
                    (Some(_authzid), Some(user), Some(pass), None) => {
                        Ok((String::from_utf8_lossy(user).into_owned(), pass.to_vec()))
                    }
                    _ => Err("501 5.5.2 Malformed PLAIN response\r\n"),
                }
            })
        }
        "LOGIN" => {
            let user = match initial {
                Some(i) => decode_or_err(i.as_bytes()),
                None => sasl_response(io, config, &base64::encode(b"Username:")).await?,
            };
            match user {
                Ok(user) => sasl_response(io, config, &base64::encode(b"Password:"))
                    .await?
                    .map(|pass| (String::from_utf8_lossy(&user).into_owned(), pass)),
                Err(e) => Err(e),
            }
        }
        "" => Err("501 5.5.4 Syntax: AUTH mechanism\r\n"),
        _ => Err("504 5.5.4 Unrecognized authentication type\r\n"),
    };
    match credentials {
        Err(reply) => send(io, reply).await,
        Ok((user, mut pass)) => {
            let refused = config
                .refuse_password
                .as_ref()
                .is_some_and(|p| p.as_bytes() == pass.as_slice());
            pass.fill(0);
            if refused || user.is_empty() {
                send(io, "535 5.7.8 Error: authentication failed\r\n").await
            } else {
                conn.auth = Some((mechanism, user));
                send(io, "235 2.7.0 Authentication successful\r\n").await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smtp_testkit::ScriptClient;

    async fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let mut reader = BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        loop {
            let line = read_line(&mut reader, max).await.unwrap();
            let eof = line == Line::Eof;
            out.push(line);
            if eof {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn lines_are_split_and_bounded() {
        let got = lines(b"EHLO a\r\nNOOP\n0123456789ABC\r\nok\r\npartial", 10).await;
        assert_eq!(
            got,
            vec![
                Line::Text(b"EHLO a".to_vec()),
                Line::Text(b"NOOP".to_vec()),
                Line::TooLong,
                Line::Text(b"ok".to_vec()),
                Line::Eof,
            ]
        );
    }

    #[test]
    fn paths_and_parameters() {
        assert_eq!(
            parse_path("FROM:<a@b> SIZE=10 BODY=8BITMIME", "FROM:"),
            Some((
                "a@b",
                vec!["SIZE=10".to_owned(), "BODY=8BITMIME".to_owned()]
            ))
        );
        assert_eq!(parse_path("from: <>", "FROM:"), Some(("", vec![])));
        assert_eq!(parse_path("TO:a@b", "TO:"), None);
        assert_eq!(parse_path("T", "TO:"), None);
    }

    /// The capture server's EHLO reply to `client`, as script lines.
    fn ehlo(client: &str, starttls: bool) -> String {
        let starttls = if starttls { "S: 250-STARTTLS\n" } else { "" };
        format!(
            "S: 250-localhost greets {client}\nS: 250-PIPELINING\nS: 250-8BITMIME\n\
             S: 250-SMTPUTF8\nS: 250-SIZE 10485760\n{starttls}S: 250-AUTH PLAIN LOGIN\n\
             S: 250 ENHANCEDSTATUSCODES\n"
        )
    }

    const GREETING: &str = "S: 220 localhost ESMTP smtp-send capture server\n";

    async fn plain_server(config: CaptureConfig) -> CaptureServer {
        CaptureServer::start(CaptureConfig {
            tls: TlsMode::None,
            ..config
        })
        .await
        .unwrap()
    }

    /// Run `script` (the client's side) against `server`; it must pass.
    async fn run(server: &CaptureServer, script: &str) -> Vec<String> {
        let exchange = ScriptClient::new(script).run(server.addr()).await;
        assert!(exchange.ok(), "{}", exchange.explain());
        exchange.transcript
    }

    /// Pipeline the whole session after the greeting, and check every reply and what was
    /// stored.
    #[tokio::test]
    async fn raw_pipelined_session_without_tls() {
        let server = plain_server(CaptureConfig::default()).await;
        let plain = base64::encode(b"\0user\0secret");
        let script = format!(
            "{GREETING}
            C: EHLO tester
            C: AUTH PLAIN {plain}
            C: MAIL FROM:<a@example.com> SIZE=20
            C: RCPT TO:<b@example.org>
            C: RCPT TO:<reject-me@example.org>
            C: DATA
            C: Subject: x
            C:
            C: ..dot
            C: line
            C: .
            C: QUIT
            {}
            S: 235 2.7.0 Authentication successful
            S: 250 2.1.0 Ok
            S: 250 2.1.5 Ok
            S: 550 5.1.1 *
            S: 354 End data with <CR><LF>.<CR><LF>
            S: 250 2.0.0 Ok: queued as *
            S: 221 2.0.0 Bye
            X: eof",
            ehlo("tester", false)
        );
        let transcript = run(&server, &script).await;
        let messages = server.messages();
        assert_eq!(messages.len(), 1);
        let m = &messages[0];
        assert_eq!(m.mail_from, "a@example.com");
        assert_eq!(m.mail_params, ["SIZE=20"]);
        assert_eq!(m.rcpt_to, ["b@example.org"]);
        assert_eq!(m.auth, Some(("PLAIN".to_owned(), "user".to_owned())));
        assert!(!m.tls);
        assert_eq!(m.data, b"Subject: x\r\n\r\n.dot\r\nline\r\n");
        let queued = format!("S: 250 2.0.0 Ok: queued as {}", m.queue_id);
        assert!(transcript.contains(&queued), "{transcript:?}");
    }

    /// STARTTLS with a rustls client that trusts only the generated CA and checks the name
    /// `localhost`: the upgrade works, and STARTTLS is no longer offered afterwards.
    #[tokio::test]
    async fn starttls_upgrade_with_the_generated_ca() {
        let server = CaptureServer::start(CaptureConfig::default())
            .await
            .unwrap();
        let script = format!(
            "{GREETING}
            C: EHLO t
            {}
            C: STARTTLS
            S: 220 2.0.0 Ready to start TLS
            T: tls
            C: EHLO t
            C: MAIL FROM:<a@b>
            C: RCPT TO:<c@d>
            C: DATA
            {}
            S: 250 2.1.0 Ok
            S: 250 2.1.5 Ok
            S: 354 *
            C: hi
            C: .
            C: QUIT
            S: 250 2.0.0 Ok: queued as *
            S: 221 *",
            ehlo("t", true),
            ehlo("t", false)
        );
        let tls = smtp_testkit::certs::client_config(server.ca_pem().as_bytes()).unwrap();
        let exchange = ScriptClient::new(&script)
            .with_tls(tls, "localhost")
            .run(server.addr())
            .await;
        assert!(exchange.ok(), "{}", exchange.explain());
        let m = &server.messages()[0];
        assert!(m.tls);
        assert_eq!(m.data, b"hi\r\n");
    }

    #[tokio::test]
    async fn refused_password_and_login_exchange() {
        let server = plain_server(CaptureConfig {
            refuse_password: Some("wrong".into()),
            ..CaptureConfig::default()
        })
        .await;
        let script = format!(
            "{GREETING}
            C: EHLO t
            C: AUTH LOGIN
            C: {}
            C: {}
            C: AUTH LOGIN {}
            C: {}
            C: QUIT
            {}
            S: 334 VXNlcm5hbWU6
            S: 334 UGFzc3dvcmQ6
            S: 535 5.7.8 Error: authentication failed
            S: 334 UGFzc3dvcmQ6
            S: 235 2.7.0 Authentication successful
            S: 221 *",
            base64::encode(b"u"),
            base64::encode(b"wrong"),
            base64::encode(b"u"),
            base64::encode(b"right"),
            ehlo("t", false)
        );
        run(&server, &script).await;
    }

    #[tokio::test]
    async fn data_without_recipients_and_oversized_lines() {
        let server = plain_server(CaptureConfig {
            max_line_length: 64,
            ..CaptureConfig::default()
        })
        .await;
        let long = "x".repeat(200);
        let script = format!(
            "{GREETING}
            C: MAIL FROM:<a@b>
            C: EHLO t
            C: MAIL FROM:<a@b>
            C: DATA
            C: {long}
            C: RSET
            C: QUIT
            S: 503 *
            {}
            S: 250 2.1.0 Ok
            S: 554 5.5.1 Error: no valid recipients
            S: 500 5.5.2 Error: line too long
            S: 250 2.0.0 Ok
            S: 221 *",
            ehlo("t", false)
        );
        run(&server, &script).await;
        assert!(server.messages().is_empty());
    }
}
