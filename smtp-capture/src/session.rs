//! One connection: the command loop, STARTTLS, AUTH, and DATA.
//!
//! Commands are read line by line (bounded, see `line.rs`) and answered one by one, so pipelined
//! commands get their replies in order. Every reply is a fixed text or built from the client's
//! own (already bounded) words; nothing here panics on what a client sends.

use std::io;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::line::{Ending, Line, read_line};
use crate::{CaptureConfig, Captured, Refusal, Shared, TlsMode, next_queue_id};

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
    /// AUTH attempts refused so far on this connection.
    auth_failures: u32,
}

/// Refused AUTH attempts after which the connection is closed (no unlimited password guessing).
const MAX_AUTH_FAILURES: u32 = 3;

impl Conn {
    fn reset_transaction(&mut self) {
        self.mail = None;
        self.rcpt.clear();
    }
}

const TIMEOUT: &str = "421 4.4.2 localhost Error: timeout exceeded\r\n";

/// Serve one connection to its end.
pub(crate) async fn serve(tcp: TcpStream, shared: Arc<Shared>) -> io::Result<()> {
    let _ = tcp.set_nodelay(true);
    let greeting = format!("220 {}\r\n", shared.greeting);
    let mut conn = Conn::default();
    if shared.config.tls == TlsMode::Implicit {
        let tls = handshake(tcp, &shared).await?;
        conn.tls = true;
        let mut io = BufReader::new(tls);
        send(&mut io, &shared.config, &greeting).await?;
        commands(&mut io, &mut conn, &shared).await?;
        return io.shutdown().await;
    }
    let mut io = BufReader::new(tcp);
    send(&mut io, &shared.config, &greeting).await?;
    match commands(&mut io, &mut conn, &shared).await? {
        Next::Close => io.shutdown().await,
        Next::StartTls => {
            // Anything the client pipelined after STARTTLS is dropped unread with the plaintext
            // buffer (RFC 3207 section 5: it must not be trusted).
            let tls = handshake(io.into_inner(), &shared).await?;
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

/// The server side of the TLS handshake, within the idle timeout.
async fn handshake(
    tcp: TcpStream,
    shared: &Shared,
) -> io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
    let acceptor = shared
        .acceptor
        .clone()
        .ok_or_else(|| io::Error::other("TLS is not configured"))?;
    tokio::time::timeout(shared.config.idle_timeout, acceptor.accept(tcp))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake"))?
}

/// Write `reply`, within the idle timeout: a client that takes no reply for that long (it
/// pipelines commands and never reads) is disconnected instead of holding its connection's
/// place for ever.
async fn send<W: AsyncWrite + Unpin>(
    io: &mut W,
    config: &CaptureConfig,
    reply: &str,
) -> io::Result<()> {
    let write = async {
        io.write_all(reply.as_bytes()).await?;
        io.flush().await
    };
    tokio::time::timeout(config.idle_timeout, write)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the client takes no reply"))?
}

/// The next line within the idle timeout; `None` when it ran out (the `421` has been sent).
async fn next_line<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    config: &CaptureConfig,
) -> io::Result<Option<Line>> {
    match tokio::time::timeout(config.idle_timeout, read_line(io, config.max_line_length)).await {
        Ok(line) => line.map(Some),
        Err(_) => {
            send(io, config, TIMEOUT).await?;
            Ok(None)
        }
    }
}

/// Answer commands until QUIT, end of stream, a timeout, or STARTTLS.
async fn commands<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    conn: &mut Conn,
    shared: &Shared,
) -> io::Result<Next> {
    let config = &shared.config;
    loop {
        let line = match next_line(io, config).await? {
            None | Some(Line::Eof) => return Ok(Next::Close),
            Some(Line::TooLong) => {
                send(io, config, "500 5.5.2 Error: line too long\r\n").await?;
                continue;
            }
            Some(Line::Text(line, _)) => match String::from_utf8(line) {
                Ok(line) => line,
                Err(_) => {
                    // An address or a parameter in other bytes than UTF-8 would be captured
                    // as something it is not.
                    send(
                        io,
                        config,
                        "500 5.5.2 Error: a command that is not UTF-8\r\n",
                    )
                    .await?;
                    continue;
                }
            },
        };
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim()),
            None => (line.to_ascii_uppercase(), ""),
        };
        match verb.as_str() {
            "EHLO" | "HELO" => {
                if arg.is_empty() {
                    send(io, config, "501 5.5.4 Syntax: EHLO hostname\r\n").await?;
                    continue;
                }
                conn.reset_transaction();
                conn.ehlo = Some(arg.to_owned());
                if verb == "HELO" {
                    send(io, config, "250 localhost\r\n").await?;
                    continue;
                }
                send(io, config, &ehlo_reply(arg, config, conn.tls)).await?;
            }
            "STARTTLS" => {
                if !arg.is_empty() {
                    send(io, config, "501 5.5.4 Syntax: STARTTLS\r\n").await?;
                } else if conn.tls {
                    send(io, config, "503 5.5.1 Error: TLS already active\r\n").await?;
                } else if config.tls != TlsMode::StartTls || shared.acceptor.is_none() {
                    send(io, config, "454 4.7.0 TLS not available\r\n").await?;
                } else {
                    send(io, config, "220 2.0.0 Ready to start TLS\r\n").await?;
                    return Ok(Next::StartTls);
                }
            }
            "AUTH" => {
                if !auth(io, conn, config, arg).await? {
                    return Ok(Next::Close);
                }
            }
            "MAIL" => {
                let reply = mail(conn, config, arg);
                send(io, config, reply).await?;
            }
            "RCPT" => {
                let reply = rcpt(conn, config, arg);
                send(io, config, &reply).await?;
            }
            "DATA" => {
                if !arg.is_empty() {
                    send(io, config, "501 5.5.4 Syntax: DATA\r\n").await?;
                } else if conn.mail.is_none() {
                    send(io, config, "503 5.5.1 Error: need MAIL command\r\n").await?;
                } else if conn.rcpt.is_empty() {
                    send(io, config, "554 5.5.1 Error: no valid recipients\r\n").await?;
                } else {
                    send(io, config, "354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                    if !data(io, conn, shared).await? {
                        return Ok(Next::Close);
                    }
                }
            }
            "RSET" => {
                conn.reset_transaction();
                send(io, config, "250 2.0.0 Ok\r\n").await?;
            }
            "NOOP" => send(io, config, "250 2.0.0 Ok\r\n").await?,
            "QUIT" => {
                send(io, config, "221 2.0.0 Bye\r\n").await?;
                return Ok(Next::Close);
            }
            "VRFY" => send(io, config, "252 2.0.0 Cannot VRFY user\r\n").await?,
            _ => send(io, config, "502 5.5.2 Error: command not recognized\r\n").await?,
        }
    }
}

/// The multi-line `250` to EHLO.
fn ehlo_reply(client: &str, config: &CaptureConfig, tls: bool) -> String {
    let mut lines = vec![
        format!("localhost greets {}", printable(client)),
        "PIPELINING".to_owned(),
        "8BITMIME".to_owned(),
        "SMTPUTF8".to_owned(),
    ];
    if config.max_message_size > 0 {
        // `SIZE 0` would say "no limit" (RFC 1870); with a limit of 0 no SIZE is offered.
        lines.push(format!("SIZE {}", config.max_message_size));
    }
    if config.tls == TlsMode::StartTls && !tls {
        lines.push("STARTTLS".to_owned());
    }
    lines.push("AUTH PLAIN LOGIN".to_owned());
    lines.push("ENHANCEDSTATUSCODES".to_owned());
    let mut reply = String::new();
    let last = lines.len().saturating_sub(1);
    for (i, l) in lines.iter().enumerate() {
        let sep = if i == last { ' ' } else { '-' };
        reply.push_str(&format!("250{sep}{l}\r\n"));
    }
    reply
}

/// `s` as it may be echoed in a reply: every control character (a bare CR, a NUL, an escape)
/// becomes `?`, so a client's argument can never end a reply line early or reach a terminal.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Strip `prefix` (case-insensitive) from `s`.
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    let rest = s.get(prefix.len()..)?;
    head.eq_ignore_ascii_case(prefix).then_some(rest)
}

/// Parse `FROM:<path> params` / `TO:<path> params`: the path without brackets and the parameters.
fn parse_path<'a>(arg: &'a str, keyword: &str) -> Option<(&'a str, Vec<String>)> {
    let rest = strip_prefix_ci(arg, keyword)?.trim_start();
    let rest = rest.strip_prefix('<')?;
    let (path, params) = rest.split_once('>')?;
    let params = params.split_ascii_whitespace().map(str::to_owned).collect();
    Some((path, params))
}

fn mail(conn: &mut Conn, config: &CaptureConfig, arg: &str) -> &'static str {
    if conn.ehlo.is_none() {
        return "503 5.5.1 Error: send HELO/EHLO first\r\n";
    }
    if conn.mail.is_some() {
        return "503 5.5.1 Error: nested MAIL command\r\n";
    }
    if config.require_auth && conn.auth.is_none() {
        return "530 5.7.0 Authentication required\r\n";
    }
    let Some((path, params)) = parse_path(arg, "FROM:") else {
        return "501 5.5.4 Syntax: MAIL FROM:<address>\r\n";
    };
    for p in &params {
        if let Some(size) = strip_prefix_ci(p, "SIZE=") {
            let digits = !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit());
            match size.parse::<u64>() {
                Ok(n) if n <= config.max_message_size => {}
                // Digits past u64 are a size past any limit too (RFC 1870: 552).
                _ if digits => return "552 5.3.4 Error: message file too big\r\n",
                _ => return "501 5.5.4 Bad SIZE parameter\r\n",
            }
        } else if !offered_mail_parameter(p) {
            // RFC 5321 section 4.1.1.11: a parameter of an extension not offered.
            return "555 5.5.4 Error: MAIL parameter not recognized or not offered\r\n";
        }
    }
    conn.mail = Some((path.to_owned(), params));
    "250 2.1.0 Ok\r\n"
}

/// A MAIL parameter of an extension the server offers (besides `SIZE=`, checked on its own):
/// `BODY=7BIT` or `BODY=8BITMIME`, `SMTPUTF8`, `AUTH=`.
fn offered_mail_parameter(param: &str) -> bool {
    let body = strip_prefix_ci(param, "BODY=")
        .is_some_and(|b| b.eq_ignore_ascii_case("7BIT") || b.eq_ignore_ascii_case("8BITMIME"));
    body || param.eq_ignore_ascii_case("SMTPUTF8") || strip_prefix_ci(param, "AUTH=").is_some()
}

fn rcpt(conn: &mut Conn, config: &CaptureConfig, arg: &str) -> String {
    if conn.mail.is_none() {
        return "503 5.5.1 Error: need MAIL command\r\n".to_owned();
    }
    let Some((path, params)) = parse_path(arg, "TO:") else {
        return "501 5.5.4 Syntax: RCPT TO:<address>\r\n".to_owned();
    };
    if !params.is_empty() {
        // No extension with RCPT parameters (DSN's NOTIFY and ORCPT) is offered.
        return "555 5.5.4 Error: RCPT parameter not recognized or not offered\r\n".to_owned();
    }
    if path.is_empty() {
        return "501 5.1.3 Bad recipient address syntax\r\n".to_owned();
    }
    let refused = config
        .reject_recipient_prefix
        .as_deref()
        .is_some_and(|prefix| strip_prefix_ci(path, prefix).is_some());
    if refused {
        let path = printable(path);
        return format!("550 5.1.1 <{path}>: Recipient address rejected: User unknown\r\n");
    }
    if conn.rcpt.len() >= config.max_recipients {
        return "452 4.5.3 Error: too many recipients\r\n".to_owned();
    }
    conn.rcpt.push(path.to_owned());
    "250 2.1.5 Ok\r\n".to_owned()
}

/// Read the message after `354` up to the lone dot, unstuff it, keep it and reply. False when
/// the connection ended (or timed out) inside the message.
async fn data<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    conn: &mut Conn,
    shared: &Shared,
) -> io::Result<bool> {
    let config = &shared.config;
    let mut message = Vec::new();
    let mut too_big = false;
    let mut too_long = false;
    // The end of DATA is CRLF "." CRLF exactly: a "." line with a bare LF on either side is
    // data (as Postfix's `smtpd_forbid_bare_newline = normalize` takes it), or what follows it
    // would run as commands the client never meant (SMTP smuggling).
    let mut after_crlf = true;
    loop {
        let (line, ending) = match next_line(io, config).await? {
            None | Some(Line::Eof) => return Ok(false),
            Some(Line::TooLong) => {
                too_long = true;
                after_crlf = true;
                continue;
            }
            Some(Line::Text(line, ending)) => (line, ending),
        };
        if line == b"." && ending == Ending::Crlf && after_crlf {
            break;
        }
        after_crlf = ending == Ending::Crlf;
        // A leading dot is the client's stuffing when more follows (RFC 5321 section 4.5.2).
        let content = match line.strip_prefix(b".") {
            Some(rest) if !rest.is_empty() => rest,
            _ => &line,
        };
        let size = (message.len() as u64)
            .saturating_add(content.len() as u64)
            .saturating_add(2);
        if too_big || size > config.max_message_size {
            // Read on to the end of the message, keeping nothing more.
            too_big = true;
            message = Vec::new();
            continue;
        }
        message.extend_from_slice(content);
        message.extend_from_slice(b"\r\n");
    }
    // Kept as long as it is, not with the room it grew by.
    message.shrink_to_fit();
    let (from, params) = conn.mail.take().unwrap_or_default();
    let rcpt = std::mem::take(&mut conn.rcpt);
    if too_big {
        send(io, config, "552 5.3.4 Error: message file too big\r\n").await?;
        return Ok(true);
    }
    if too_long {
        send(io, config, "500 5.5.2 Error: message line too long\r\n").await?;
        return Ok(true);
    }
    let queue_id = next_queue_id();
    let mut captured = Captured {
        queue_id: queue_id.clone(),
        ehlo: conn.ehlo.clone().unwrap_or_default(),
        tls: conn.tls,
        auth: conn.auth.clone(),
        mail_from: from,
        mail_params: params,
        rcpt_to: rcpt,
        data: message,
        eml_path: None,
    };
    if !shared.has_room(captured.footprint()) {
        // Refused before its `.eml` file is written: nothing watching the folder sees it.
        send(
            io,
            config,
            "452 4.3.1 Error: insufficient system storage\r\n",
        )
        .await?;
        return Ok(true);
    }
    if let Some(dir) = &config.eml_dir {
        match write_eml(dir, &queue_id, &captured.data).await {
            Ok(path) => captured.eml_path = Some(path),
            Err(_) => {
                send(
                    io,
                    config,
                    "451 4.3.0 Error: cannot write the message file\r\n",
                )
                .await?;
                return Ok(true);
            }
        }
    }
    let eml_path = captured.eml_path.clone();
    match shared.keep(captured) {
        Ok(()) => {
            send(
                io,
                config,
                &format!("250 2.0.0 Ok: queued as {queue_id}\r\n"),
            )
            .await?
        }
        Err(Refusal::Full) => {
            if let Some(path) = eml_path {
                let _ = tokio::fs::remove_file(path).await;
            }
            send(
                io,
                config,
                "452 4.3.1 Error: insufficient system storage\r\n",
            )
            .await?;
        }
    }
    Ok(true)
}

/// Write `data` to `<dir>/<queue_id>.eml`: to a hidden name first, then renamed, so that a
/// reader of the folder never sees half a message.
async fn write_eml(dir: &Path, queue_id: &str, data: &[u8]) -> io::Result<std::path::PathBuf> {
    let path = dir.join(format!("{queue_id}.eml"));
    let partial = dir.join(format!(".{queue_id}.eml.partial"));
    if let Err(e) = tokio::fs::write(&partial, data).await {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(e);
    }
    tokio::fs::rename(&partial, &path).await?;
    Ok(path)
}

/// What one SASL step gave: the decoded response, or the reply that ends the exchange.
type Step = Result<Vec<u8>, &'static str>;

/// Read one SASL response line after `334 challenge`. `Ok(None)` when the connection ended or
/// timed out (the `421` has been sent).
async fn sasl_response<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    config: &CaptureConfig,
    challenge: &str,
) -> io::Result<Option<Step>> {
    send(io, config, &format!("334 {challenge}\r\n")).await?;
    Ok(match next_line(io, config).await? {
        None | Some(Line::Eof) => None,
        Some(Line::TooLong) => Some(Err(
            "500 5.5.6 Authentication exchange line is too long\r\n",
        )),
        Some(Line::Text(l, _)) if l == b"*" => Some(Err("501 5.7.0 Authentication aborted\r\n")),
        Some(Line::Text(l, _)) => Some(decode(&l)),
    })
}

fn decode(b64: &[u8]) -> Step {
    if b64 == b"=" {
        return Ok(Vec::new());
    }
    STANDARD
        .decode(b64.trim_ascii())
        .map_err(|_| "501 5.5.2 Cannot decode response\r\n")
}

/// Run one AUTH exchange. False when the connection ended inside it.
async fn auth<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    conn: &mut Conn,
    config: &CaptureConfig,
    arg: &str,
) -> io::Result<bool> {
    if conn.ehlo.is_none() {
        send(io, config, "503 5.5.1 Error: send EHLO first\r\n").await?;
        return Ok(true);
    }
    if conn.auth.is_some() {
        send(io, config, "503 5.5.1 Error: already authenticated\r\n").await?;
        return Ok(true);
    }
    if conn.mail.is_some() {
        send(
            io,
            config,
            "503 5.5.1 Error: MAIL transaction in progress\r\n",
        )
        .await?;
        return Ok(true);
    }
    let (mechanism, initial) = match arg.split_once(' ') {
        Some((m, i)) => (m.to_ascii_uppercase(), Some(i.trim())),
        None => (arg.to_ascii_uppercase(), None),
    };
    let credentials: Result<(Vec<u8>, Vec<u8>), &str> = match mechanism.as_str() {
        "PLAIN" => {
            let response = match initial {
                Some(i) => decode(i.as_bytes()),
                None => match sasl_response(io, config, "").await? {
                    Some(step) => step,
                    None => return Ok(false),
                },
            };
            response.and_then(|mut r| {
                let parsed = {
                    let mut parts = r.split(|&b| b == 0);
                    match (parts.next(), parts.next(), parts.next(), parts.next()) {
                        (Some(_authzid), Some(user), Some(pass), None) => {
                            Ok((user.to_vec(), pass.to_vec()))
                        }
                        _ => Err("501 5.5.2 Malformed PLAIN response\r\n"),
                    }
                };
                r.fill(0);
                parsed
            })
        }
        "LOGIN" => {
            let user = match initial {
                Some(i) => decode(i.as_bytes()),
                None => match sasl_response(io, config, "VXNlcm5hbWU6").await? {
                    Some(step) => step,
                    None => return Ok(false),
                },
            };
            match user {
                Ok(user) => match sasl_response(io, config, "UGFzc3dvcmQ6").await? {
                    Some(pass) => pass.map(|pass| (user, pass)),
                    None => return Ok(false),
                },
                Err(e) => Err(e),
            }
        }
        "" => Err("501 5.5.4 Syntax: AUTH mechanism\r\n"),
        _ => Err("504 5.5.4 Unrecognized authentication type\r\n"),
    };
    match credentials {
        Err(reply) => send(io, config, reply).await?,
        Ok((user, mut pass)) => {
            let accepted = accepts(config, &user, &pass);
            pass.fill(0);
            if accepted {
                let user = String::from_utf8_lossy(&user).into_owned();
                conn.auth = Some((mechanism, user));
                send(io, config, "235 2.7.0 Authentication successful\r\n").await?;
            } else {
                conn.auth_failures += 1;
                if conn.auth_failures >= MAX_AUTH_FAILURES {
                    send(
                        io,
                        config,
                        "421 4.7.0 Error: too many failed authentications\r\n",
                    )
                    .await?;
                    return Ok(false);
                }
                send(io, config, "535 5.7.8 Error: authentication failed\r\n").await?;
            }
        }
    }
    Ok(true)
}

/// Whether `user` with `pass` may log in.
fn accepts(config: &CaptureConfig, user: &[u8], pass: &[u8]) -> bool {
    if user.is_empty() {
        return false;
    }
    if config
        .refuse_password
        .as_ref()
        .is_some_and(|p| p.as_bytes() == pass)
    {
        return false;
    }
    match &config.credentials {
        Some(c) => c.user.as_bytes() == user && c.password.as_bytes() == pass,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(parse_path("TO:<a@b", "TO:"), None);
        // Multi-byte characters where the keyword would end: no panic, no match.
        assert_eq!(parse_path("T\u{e9}:<a@b>", "TO:"), None);
        assert_eq!(strip_prefix_ci("\u{e9}\u{e9}", "rej"), None);
    }

    #[test]
    fn who_may_log_in() {
        let any = CaptureConfig::default();
        assert!(accepts(&any, b"u", b"p"));
        assert!(!accepts(&any, b"", b"p"));
        let refusing = CaptureConfig {
            refuse_password: Some("bad".into()),
            ..CaptureConfig::default()
        };
        assert!(!accepts(&refusing, b"u", b"bad"));
        assert!(accepts(&refusing, b"u", b"good"));
        let only = CaptureConfig::default().with_credentials("me", "pw");
        assert!(accepts(&only, b"me", b"pw"));
        assert!(!accepts(&only, b"me", b"pw2"));
        assert!(!accepts(&only, b"you", b"pw"));
    }

    /// What a client wrote is echoed (EHLO's name, a refused recipient) without its control
    /// characters: a bare CR cannot split a reply, an escape cannot reach a terminal.
    #[test]
    fn echoed_arguments_carry_no_control_characters() {
        let config = CaptureConfig::default();
        let echoed = ehlo_reply("c\rd\x1b[2J", &config, false);
        assert!(
            echoed.starts_with("250-localhost greets c?d?[2J\r\n"),
            "{echoed:?}"
        );
        assert_eq!(echoed.matches('\r').count(), echoed.matches("\r\n").count());
        let mut conn = Conn {
            mail: Some(("a@x.test".to_owned(), Vec::new())),
            ..Conn::default()
        };
        let refused = rcpt(&mut conn, &config, "TO:<reject\r250 ok@x.test>");
        assert_eq!(
            refused,
            "550 5.1.1 <reject?250 ok@x.test>: Recipient address rejected: User unknown\r\n"
        );
    }

    #[test]
    fn ehlo_offers_starttls_only_before_tls() {
        let config = CaptureConfig::default();
        assert!(ehlo_reply("c", &config, false).contains("250-STARTTLS\r\n"));
        assert!(!ehlo_reply("c", &config, true).contains("STARTTLS"));
        let plain = ehlo_reply("c", &config.with_tls(TlsMode::None), false);
        assert!(!plain.contains("STARTTLS"));
        assert!(plain.ends_with("250 ENHANCEDSTATUSCODES\r\n"));
    }
}
