//! The capture server end to end: the real client (`smtp-io-tokio`) over STARTTLS, implicit TLS
//! and plaintext, and a raw socket for what a client would never send (over-long lines, a
//! message past the limit, hostile bytes). A panic in the server is a bug, never bad input: the
//! hostile cases check that the same connection, or the next, is still served.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use smtp_capture::{CaptureConfig, CaptureServer, Captured, TlsMode};
use smtp_io_tokio::{
    ConnectOptions, ProtocolError, SmtpClient, SmtpError, TlsConfig, TokioTransport,
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

/// A client of `server` over `mode`, trusting only the server's CA (through its rustls
/// configuration) and checking the name `localhost`.
async fn client(server: &CaptureServer, mode: TlsMode) -> SmtpClient<TokioTransport> {
    client_result(server, mode).await.expect("connect")
}

async fn client_result(
    server: &CaptureServer,
    mode: TlsMode,
) -> Result<SmtpClient<TokioTransport>, SmtpError> {
    ConnectOptions::new(mode)
        .with_tls_config(TlsConfig::from_rustls(server.client_config()))
        .with_tls_server_name("localhost")
        .with_client_options(smtp_io_tokio::SmtpClientOptions::new().allow_plaintext_auth())
        .connect("127.0.0.1", server.addr().port(), "client.example")
        .await
}

/// The reply code of a failed command.
fn code(e: &SmtpError) -> Option<u16> {
    e.reply().map(|r| r.code().get())
}

const MESSAGE: &str = "From: app@example.com\r\nTo: bob@example.org\r\nSubject: Hello\r\n\r\n\
    first line\r\n.leading dot\r\n..two dots\r\n.\r\nlast line\r\n";

#[tokio::test]
async fn starttls_and_auth_round_trip() {
    let server = start(
        CaptureConfig::default()
            .with_credentials("app", "s3cret-pw")
            .with_auth_required(),
    )
    .await;
    assert_eq!(server.config().tls, TlsMode::StartTls);

    // A wrong password is refused, and MAIL without AUTH too: nothing arrives.
    let mut c = client(&server, TlsMode::StartTls).await;
    let refused = c.login("app", "wrong").await.unwrap_err();
    assert_eq!(code(&refused), Some(535), "{refused:?}");
    let no_auth = c
        .send_mail("app@example.com", &["bob@example.org"], MESSAGE)
        .await
        .unwrap_err();
    assert_eq!(code(&no_auth), Some(530), "{no_auth:?}");
    let _ = c.quit().await;
    assert!(server.messages().is_empty());

    let mut c = client(&server, TlsMode::StartTls).await;
    c.login("app", "s3cret-pw").await.unwrap();
    let outcome = c
        .send_mail(
            "app@example.com",
            &["bob@example.org", "carol@example.net"],
            MESSAGE,
        )
        .await
        .unwrap();
    c.quit().await.unwrap();

    let got = server.wait_for(1, WAIT).await.unwrap();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(Some(&m.queue_id), outcome.queue_id.as_ref());
    assert!(m.tls, "the message came after STARTTLS");
    assert_eq!(m.ehlo, "client.example");
    assert_eq!(m.auth_user(), Some("app"));
    assert!(
        matches!(&m.auth, Some((mechanism, _)) if mechanism == "PLAIN" || mechanism == "LOGIN")
    );
    assert_eq!(m.mail_from, "app@example.com");
    assert!(
        m.mail_params.contains(&format!("SIZE={}", m.data.len())),
        "{:?}",
        m.mail_params
    );
    assert_eq!(m.rcpt_to, ["bob@example.org", "carol@example.net"]);
    // Exactly the message: the client's dot-stuffing is undone, the lone dot line kept.
    assert_eq!(m.data, MESSAGE.as_bytes());
    assert_eq!(m.header("subject").as_deref(), Some("Hello"));
    assert_eq!(m.eml_path, None);
    // The password is nowhere in what was kept.
    assert!(!format!("{m:?}").contains("s3cret-pw"));
    assert!(!format!("{:?}", server.config()).contains("s3cret-pw"));
}

#[tokio::test]
async fn plaintext_round_trip_two_messages_on_one_connection() {
    let server = start_plain(CaptureConfig::default()).await;
    // STARTTLS is not offered: a client that requires it fails before sending anything.
    let Err(e) = client_result(&server, TlsMode::StartTls).await else {
        panic!("STARTTLS to a server without TLS");
    };
    assert!(e.to_string().contains("STARTTLS"), "{e}");

    let mut c = client(&server, TlsMode::None).await;
    c.send_mail(
        "a@example.com",
        &["b@example.org"],
        "Subject: one\r\n\r\n1\r\n",
    )
    .await
    .unwrap();
    // A recipient with the default refused prefix `reject`: the client's default policy
    // (every recipient or nothing) gives up on that message, and nothing more is kept.
    let e = c
        .send_mail(
            "a@example.com",
            &["reject-me@example.org", "c@example.org"],
            "Subject: refused\r\n\r\n\r\n",
        )
        .await
        .unwrap_err();
    let SmtpError::Protocol(ProtocolError::RecipientsRefused { refused, accepted }) = e else {
        panic!("{e:?}");
    };
    assert_eq!((refused.len(), accepted), (1, 1));
    assert_eq!(refused[0].recipient, "reject-me@example.org");
    assert_eq!(refused[0].reply.code().get(), 550);
    c.send_mail("a@example.com", &["c@example.org"], "Subject: two\n\n2\n")
        .await
        .unwrap();
    c.quit().await.unwrap();

    let got = server.wait_for(2, WAIT).await.unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|m| !m.tls && m.auth.is_none()));
    assert_eq!(got[0].data, b"Subject: one\r\n\r\n1\r\n");
    assert_eq!(got[1].rcpt_to, ["c@example.org"]);
    // Bare LFs reach the server as CRLF.
    assert_eq!(got[1].data, b"Subject: two\r\n\r\n2\r\n");
    assert_ne!(got[0].queue_id, got[1].queue_id);

    // Taking them empties the store; waiting counts from zero again.
    assert_eq!(server.take_messages().len(), 2);
    assert!(server.messages().is_empty());
    let e = server
        .wait_for(1, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert_eq!(e.received(), 0);
}

#[tokio::test]
async fn implicit_tls_round_trip() {
    let server = start(CaptureConfig::default().with_tls(TlsMode::Implicit)).await;
    let mut c = client(&server, TlsMode::Implicit).await;
    c.login("anyone", "anything").await.unwrap();
    c.send_mail(
        "a@example.com",
        &["b@example.org"],
        "Subject: x\r\n\r\ny\r\n",
    )
    .await
    .unwrap();
    c.quit().await.unwrap();
    let m = &server.wait_for(1, WAIT).await.unwrap()[0];
    assert!(m.tls);
    assert_eq!(m.auth_user(), Some("anyone"));
}

/// A client that trusts other roots does not get through: the CA is the server's own.
#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_fails() {
    let server = start(CaptureConfig::default()).await;
    let other = start(CaptureConfig::default()).await;
    let result = ConnectOptions::new(TlsMode::StartTls)
        .with_tls_config(TlsConfig::from_ca_pem(other.ca_pem().as_bytes()).unwrap())
        .with_tls_server_name("localhost")
        .connect("127.0.0.1", server.addr().port(), "client.example")
        .await;
    assert!(result.is_err(), "a stranger's CA was accepted");
    assert!(server.messages().is_empty());
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("smtp-capture-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn each_message_is_written_as_an_eml_file() {
    let dir = temp_dir("eml");
    let server = start(CaptureConfig::default().with_eml_dir(&dir)).await;
    let mut c = client(&server, TlsMode::StartTls).await;
    for n in 0..3 {
        let body = format!("Subject: n{n}\r\n\r\n.dot {n}\r\n");
        c.send_mail("a@example.com", &["b@example.org"], &body)
            .await
            .unwrap();
    }
    c.quit().await.unwrap();
    let got = server.wait_for(3, WAIT).await.unwrap();
    for m in &got {
        let path = m.eml_path.as_ref().expect("written");
        assert_eq!(path.parent(), Some(dir.as_path()));
        assert_eq!(
            path.file_name().unwrap().to_str().unwrap(),
            format!("{}.eml", m.queue_id)
        );
        assert_eq!(std::fs::read(path).unwrap(), m.data);
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names.len(),
        3,
        "only the three messages, no partial file: {names:?}"
    );
    assert!(got[2].data.ends_with(b".dot 2\r\n"));

    // A folder that cannot be written: the message is refused (451), not kept.
    let server = start_plain(CaptureConfig::default().with_eml_dir(dir.join("missing"))).await;
    let mut c = client(&server, TlsMode::None).await;
    let e = c
        .send_mail(
            "a@example.com",
            &["b@example.org"],
            "Subject: x\r\n\r\nx\r\n",
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(451), "{e:?}");
    assert!(server.messages().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A raw client: write lines, read whole replies.
struct Raw<S> {
    io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Raw<S> {
    async fn send(&mut self, bytes: &[u8]) {
        self.io.get_mut().write_all(bytes).await.unwrap();
        self.io.get_mut().flush().await.unwrap();
    }

    /// One reply, all its lines joined by `\n` (CRLFs dropped); empty at the end of stream.
    async fn reply(&mut self) -> String {
        let mut out = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(WAIT, self.io.read_line(&mut line))
                .await
                .expect("a reply in time")
                .unwrap();
            if n == 0 {
                return out.join("\n");
            }
            let line = line.trim_end().to_owned();
            let last = line.as_bytes().get(3) != Some(&b'-');
            out.push(line);
            if last {
                return out.join("\n");
            }
        }
    }

    /// Send `command` (CRLF added) and read its reply.
    async fn ask(&mut self, command: &str) -> String {
        self.send(format!("{command}\r\n").as_bytes()).await;
        self.reply().await
    }
}

/// A raw connection to `server`, its greeting not read yet.
async fn connect(server: &CaptureServer) -> Raw<TcpStream> {
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    Raw {
        io: BufReader::new(tcp),
    }
}

/// A raw connection to `server`, past its `220` greeting.
async fn raw(server: &CaptureServer) -> Raw<TcpStream> {
    let mut raw = connect(server).await;
    assert!(raw.reply().await.starts_with("220 "));
    raw
}

/// A capture server with `config`, started.
async fn start(config: CaptureConfig) -> CaptureServer {
    CaptureServer::start(config).await.unwrap()
}

/// A capture server with `config` but no TLS at all, started.
async fn start_plain(config: CaptureConfig) -> CaptureServer {
    start(config.with_tls(TlsMode::None)).await
}

/// [`start_plain`] with a single connection's place, and `config`'s limits.
async fn one_place(config: CaptureConfig) -> CaptureServer {
    start_plain(CaptureConfig {
        max_connections: 1,
        ..config
    })
    .await
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_refused_with_552() {
    let server = start_plain(CaptureConfig::default().with_max_message_size(1000)).await;
    // Declared too large: refused at MAIL.
    let mut r = raw(&server).await;
    assert!(r.ask("EHLO raw").await.contains("250-SIZE 1000\n"));
    assert!(
        r.ask("MAIL FROM:<a@b> SIZE=1001")
            .await
            .starts_with("552 5.3.4")
    );
    assert!(r.ask("MAIL FROM:<a@b> SIZE=lots").await.starts_with("501 "));
    // Not declared, and larger once sent: refused after its end, the session goes on.
    assert!(r.ask("MAIL FROM:<a@b>").await.starts_with("250 "));
    assert!(r.ask("RCPT TO:<c@d>").await.starts_with("250 "));
    assert!(r.ask("DATA").await.starts_with("354 "));
    for _ in 0..100 {
        r.send(b"0123456789012345678901234567890123456789\r\n")
            .await;
    }
    assert!(r.ask(".").await.starts_with("552 5.3.4"));
    assert!(r.ask("NOOP").await.starts_with("250 "));
    // Exactly at the limit: accepted (998 bytes and a CRLF are 1000).
    assert!(r.ask("MAIL FROM:<a@b> SIZE=1000").await.starts_with("250 "));
    assert!(r.ask("RCPT TO:<c@d>").await.starts_with("250 "));
    assert!(r.ask("DATA").await.starts_with("354 "));
    r.send(&[b'x'; 998]).await;
    assert!(r.ask("\r\n.").await.starts_with("250 2.0.0 Ok: queued as "));
    assert_eq!(server.messages().len(), 1);
    assert_eq!(server.messages()[0].data.len(), 1000);
}

#[tokio::test]
async fn a_line_too_long_is_refused_and_the_session_goes_on() {
    let server = start_plain(CaptureConfig::default().with_max_line_length(64)).await;
    let mut r = raw(&server).await;
    let long = "x".repeat(100_000);
    assert!(
        r.ask(&format!("EHLO {long}"))
            .await
            .starts_with("500 5.5.2")
    );
    assert!(
        r.ask("EHLO raw")
            .await
            .starts_with("250-localhost greets raw")
    );
    // Exactly the limit is fine.
    let at_limit = format!("NOOP {}", "y".repeat(59));
    assert_eq!(at_limit.len(), 64);
    assert!(r.ask(&at_limit).await.starts_with("250 "));
    assert!(
        r.ask(&format!("{at_limit}z"))
            .await
            .starts_with("500 5.5.2")
    );
    // In a message: read to its end, then refused; nothing kept.
    assert!(r.ask("MAIL FROM:<a@b>").await.starts_with("250 "));
    assert!(r.ask("RCPT TO:<c@d>").await.starts_with("250 "));
    assert!(r.ask("DATA").await.starts_with("354 "));
    r.send(format!("short\r\n{long}\r\nafter\r\n").as_bytes())
        .await;
    assert!(r.ask(".").await.starts_with("500 5.5.2"));
    assert!(r.ask("QUIT").await.starts_with("221 "));
    assert!(server.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_connections_at_once() {
    const N: usize = 12;
    let server =
        std::sync::Arc::new(start(CaptureConfig::default().with_credentials("app", "pw")).await);
    let mut tasks = Vec::new();
    for i in 0..N {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = client(&server, TlsMode::StartTls).await;
            c.login("app", "pw").await.unwrap();
            let to = format!("user{i}@example.org");
            let body = format!("Subject: {i}\r\n\r\nbody {i}\r\n");
            c.send_mail("a@example.com", &[&to], &body).await.unwrap();
            c.quit().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let got = server.wait_for(N, WAIT).await.unwrap();
    assert_eq!(got.len(), N);
    let mut recipients: Vec<&str> = got.iter().map(|m| m.rcpt_to[0].as_str()).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), N);
    for m in &got {
        let i = m.header("Subject").unwrap();
        assert_eq!(m.rcpt_to, [format!("user{i}@example.org")]);
        assert!(m.tls);
    }
    let mut ids: Vec<&str> = got.iter().map(|m| m.queue_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), N);
}

#[tokio::test]
async fn connections_beyond_the_limit_are_turned_away() {
    let server = one_place(CaptureConfig::default()).await;
    let mut first = raw(&server).await;
    let mut second = connect(&server).await;
    assert!(second.reply().await.starts_with("421 4.3.2"));
    assert_eq!(second.reply().await, "", "then closed");
    assert!(first.ask("QUIT").await.starts_with("221 "));
    assert_eq!(first.reply().await, "");
    // The place is free again (the ended connection is reaped).
    let mut again = None;
    for _ in 0..100 {
        let mut r = connect(&server).await;
        if r.reply().await.starts_with("220 ") {
            again = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        again
            .expect("served again")
            .ask("NOOP")
            .await
            .starts_with("250 ")
    );
}

#[tokio::test]
async fn waiting_with_nothing_arriving_is_an_error() {
    let server = start_plain(CaptureConfig::default()).await;
    let start = std::time::Instant::now();
    let e = server
        .wait_for(1, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!((e.wanted(), e.received()), (1, 0));
    assert_eq!(e.waited(), Duration::from_millis(200));
    assert!(e.to_string().contains("0 arrived"), "{e}");

    // One arrives; waiting for two still fails and says one came; waiting for one returns it.
    let mut c = client(&server, TlsMode::None).await;
    c.send_mail("a@example.com", &["b@example.org"], "x\r\n")
        .await
        .unwrap();
    let e = server
        .wait_for(2, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!(e.received(), 1);
    assert_eq!(server.wait_for(1, WAIT).await.unwrap().len(), 1);
    // Waiting for zero returns at once.
    assert_eq!(server.wait_for(0, Duration::ZERO).await.unwrap().len(), 1);
}

/// A waiter started before the message is woken by it (not by polling).
#[tokio::test]
async fn a_waiter_is_woken_when_the_message_arrives() {
    let server = std::sync::Arc::new(start_plain(CaptureConfig::default()).await);
    let waiter = {
        let server = server.clone();
        tokio::spawn(async move { server.wait_for(1, WAIT).await })
    };
    tokio::task::yield_now().await;
    let mut c = client(&server, TlsMode::None).await;
    c.send_mail("a@example.com", &["b@example.org"], "x\r\n")
        .await
        .unwrap();
    let got: Vec<Captured> = waiter.await.unwrap().unwrap();
    assert_eq!(got[0].rcpt_to, ["b@example.org"]);
}

#[tokio::test]
async fn shutdown_closes_the_listener_and_every_connection() {
    let server = start_plain(CaptureConfig::default()).await;
    let addr = server.addr();
    let mut open = raw(&server).await;
    assert!(open.ask("EHLO raw").await.starts_with("250-"));
    server.shutdown().await;
    assert_eq!(open.reply().await, "", "the open connection was ended");
    assert!(TcpStream::connect(addr).await.is_err(), "still listening");

    // Dropping does the same.
    let server = start_plain(CaptureConfig::default()).await;
    let mut open = raw(&server).await;
    drop(server);
    assert_eq!(open.reply().await, "");
}

/// Hostile bytes: invalid UTF-8, NULs, bare CRs, garbage AUTH, commands out of order. Each gets
/// a reply; the connection is still served afterwards.
#[tokio::test]
async fn hostile_input_gets_replies_not_panics() {
    let server = start_plain(CaptureConfig::default()).await;
    let mut r = raw(&server).await;
    for (command, want) in [
        (&b"\xff\xfe\x00garbage\r\n"[..], "500 "),
        (b"MAIL FROM:<a@b>\r\n", "503 "),
        (b"AUTH PLAIN\r\n", "503 "),
        (b"EHLO\r\n", "501 "),
        (b"EHLO \xc3\xa9\r\n", "250-"),
        (b"AUTH PLAIN !!!notbase64\r\n", "501 "),
        (b"AUTH PLAIN AGE=\r\n", "501 "),
        (b"AUTH CRAM-MD5\r\n", "504 "),
        (b"AUTH\r\n", "501 "),
        (b"RCPT TO:<c@d>\r\n", "503 "),
        (b"MAIL FROM:a@b\r\n", "501 "),
        (b"MAIL FROM:<a@b\r\n", "501 "),
        // Not UTF-8: refused, never captured as something else.
        (b"MAIL FROM:<\xe9\xe9>\r\n", "500 "),
        (b"MAIL FROM:<x@y>\r\n", "250 "),
        (b"MAIL FROM:<x@y>\r\n", "503 "),
        (b"RCPT TO:<>\r\n", "501 "),
        (b"DATA\r\n", "554 "),
        (b"RCPT TO:<\xe9>\r\n", "500 "),
        (b"DATA extra\r\n", "501 "),
        (b"STARTTLS\r\n", "454 "),
        (b"\r\n", "502 "),
        (b"RSET\r\n", "250 "),
    ] {
        r.send(command).await;
        let reply = r.reply().await;
        assert!(
            reply.starts_with(want),
            "{:?} -> {reply:?}",
            String::from_utf8_lossy(command)
        );
    }
    // A LOGIN exchange cancelled, then one cut off by the client leaving.
    assert!(r.ask("AUTH LOGIN").await.starts_with("334 "));
    assert!(r.ask("*").await.starts_with("501 "));
    assert!(r.ask("AUTH LOGIN").await.starts_with("334 "));
    drop(r);
    // The server still serves.
    let mut c = client(&server, TlsMode::None).await;
    c.send_mail("a@example.com", &["b@example.org"], "x\r\n")
        .await
        .unwrap();
    assert_eq!(server.wait_for(1, WAIT).await.unwrap().len(), 1);
}

/// RFC 3207: commands pipelined behind STARTTLS are dropped, not answered inside TLS; and the
/// session (EHLO, AUTH) starts again after the upgrade.
#[tokio::test]
async fn commands_pipelined_behind_starttls_are_dropped() {
    let server = start(CaptureConfig::default()).await;
    let mut r = raw(&server).await;
    assert!(r.ask("EHLO raw").await.contains("250-STARTTLS"));
    r.send(b"STARTTLS\r\nMAIL FROM:<injected@evil>\r\n").await;
    assert!(r.reply().await.starts_with("220 "));
    let tcp = r.io.into_inner();
    let connector = tokio_rustls::TlsConnector::from(server.client_config());
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let mut r = Raw {
        io: BufReader::new(tls),
    };
    // No EHLO since the upgrade: MAIL is out of order, so the injected one was not taken.
    assert!(r.ask("MAIL FROM:<a@b>").await.starts_with("503 "));
    let ehlo = r.ask("EHLO raw").await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(r.ask("STARTTLS").await.starts_with("503 "));
}

/// The whole session in one write, as a pipelining client may send it: every reply comes, in
/// order, and the message is kept.
#[tokio::test]
async fn a_pipelined_session_gets_every_reply_in_order() {
    let server = start_plain(CaptureConfig::default()).await;
    let mut r = raw(&server).await;
    let plain_auth = STANDARD.encode(b"\0user\0secret");
    let session = format!(
        "EHLO tester\r\nAUTH PLAIN {plain_auth}\r\nMAIL FROM:<a@example.com> SIZE=20\r\n\
         RCPT TO:<b@example.org>\r\nRCPT TO:<reject-me@example.org>\r\nDATA\r\n\
         Subject: x\r\n\r\n..dot\r\nline\r\n.\r\nQUIT\r\n"
    );
    r.send(session.as_bytes()).await;
    let mut replies = Vec::new();
    loop {
        let reply = r.reply().await;
        if reply.is_empty() {
            break;
        }
        replies.push(
            reply
                .lines()
                .last()
                .unwrap_or_default()
                .get(..3)
                .unwrap_or("")
                .to_owned(),
        );
    }
    assert_eq!(
        replies,
        ["250", "235", "250", "250", "550", "354", "250", "221"]
    );
    let m = &server.messages()[0];
    assert_eq!(m.auth, Some(("PLAIN".to_owned(), "user".to_owned())));
    assert_eq!(m.mail_params, ["SIZE=20"]);
    assert_eq!(m.rcpt_to, ["b@example.org"]);
    assert_eq!(m.data, b"Subject: x\r\n\r\n.dot\r\nline\r\n");
}

/// AUTH LOGIN by hand (with and without an initial response) against given credentials, and
/// PLAIN with its empty challenge; the refused password stays refused.
#[tokio::test]
async fn auth_login_and_plain_exchanges() {
    let server = start_plain(CaptureConfig {
        refuse_password: Some("revoked".into()),
        ..CaptureConfig::default().with_credentials("me", "right")
    })
    .await;
    let b64 = |s: &str| STANDARD.encode(s.as_bytes());
    let mut r = raw(&server).await;
    assert!(r.ask("EHLO t").await.contains("250-AUTH PLAIN LOGIN\n"));
    // Username:, Password:, refused.
    assert_eq!(r.ask("AUTH LOGIN").await, "334 VXNlcm5hbWU6");
    assert_eq!(r.ask(&b64("me")).await, "334 UGFzc3dvcmQ6");
    assert!(r.ask(&b64("wrong")).await.starts_with("535 5.7.8"));
    // PLAIN without an initial response: an empty challenge; a revoked password is refused.
    assert_eq!(r.ask("AUTH PLAIN").await, "334"); // "334 " with its space trimmed
    assert!(r.ask(&b64("\0me\0revoked")).await.starts_with("535 "));
    // A third refusal ends the connection: no unlimited password guessing.
    assert!(
        r.ask(&format!("AUTH PLAIN {}", b64("\0you\0right")))
            .await
            .starts_with("421 ")
    );
    assert_eq!(r.reply().await, "", "closed");
    let mut r = raw(&server).await;
    assert!(r.ask("EHLO t").await.starts_with("250"));
    // LOGIN with the user as initial response, then the right password.
    assert_eq!(
        r.ask(&format!("AUTH LOGIN {}", b64("me"))).await,
        "334 UGFzc3dvcmQ6"
    );
    assert!(r.ask(&b64("right")).await.starts_with("235 "));
    assert!(
        r.ask("AUTH PLAIN").await.starts_with("503 "),
        "already authenticated"
    );
}

/// Messages kept count against `max_stored_bytes`; past it a message is refused (452) until
/// the store is taken, and refused before its `.eml` file is written (the file used to appear,
/// then vanish).
#[tokio::test]
async fn the_store_is_bounded_until_taken() {
    let dir = temp_dir("full");
    let server = start_plain(CaptureConfig {
        // Two messages of about 1,700 bytes each as kept (data, envelope, records), not three.
        max_stored_bytes: 4000,
        ..CaptureConfig::default().with_eml_dir(&dir)
    })
    .await;
    let files = || std::fs::read_dir(&dir).unwrap().count();
    let mut c = client(&server, TlsMode::None).await;
    let body = format!("Subject: x\r\n\r\n{}\r\n", "y".repeat(1000));
    for _ in 0..2 {
        c.send_mail("a@example.com", &["b@example.org"], &body)
            .await
            .unwrap();
    }
    let e = c
        .send_mail("a@example.com", &["b@example.org"], &body)
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(452), "{e:?}");
    assert_eq!(files(), 2, "no file for the refused message");
    assert_eq!(server.take_messages().len(), 2);
    c.send_mail("a@example.com", &["b@example.org"], &body)
        .await
        .unwrap();
    assert_eq!(server.messages().len(), 1);
    assert_eq!(files(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A client that pipelines commands and never reads the replies: once the replies no longer
/// fit in the socket's buffers, the server gives up on it within the idle timeout and its
/// connection's place is free again (the server waited for ever, holding the place).
#[tokio::test]
async fn a_client_that_takes_no_reply_is_disconnected() {
    let server =
        one_place(CaptureConfig::default().with_idle_timeout(Duration::from_secs(1))).await;
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let (_never_read, mut write) = tcp.into_split();
    let flood = tokio::spawn(async move {
        let commands = b"NOOP\r\n".repeat(10_000);
        // Until the server hangs up.
        while write.write_all(&commands).await.is_ok() {}
    });
    let mut served = false;
    for _ in 0..150 {
        let mut r = connect(&server).await;
        if r.reply().await.starts_with("220 ") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "the silent reader still holds the only place");
    tokio::time::timeout(WAIT, flood)
        .await
        .expect("the server hung up on the flood")
        .unwrap();
}

/// The end of DATA is CRLF "." CRLF exactly: a "." line with a bare LF on either side is
/// message text, so what follows it cannot run as commands (SMTP smuggling). It used to end
/// the message, and the rest was taken as a second message with a forged sender.
#[tokio::test]
async fn a_dot_with_a_bare_lf_does_not_end_data() {
    let server = start_plain(CaptureConfig::default()).await;
    let mut r = raw(&server).await;
    assert!(r.ask("EHLO t").await.starts_with("250"));
    assert!(r.ask("MAIL FROM:<a@x.test>").await.starts_with("250 "));
    assert!(r.ask("RCPT TO:<b@x.test>").await.starts_with("250 "));
    assert!(r.ask("DATA").await.starts_with("354 "));
    r.send(
        b"Subject: one\r\n\r\nbody\n.\nMAIL FROM:<smuggled@evil.test>\r\n\
          RCPT TO:<victim@x.test>\r\nDATA\r\n\r\nsmuggled\r\n.\r\n",
    )
    .await;
    assert!(r.reply().await.starts_with("250 2.0.0"));
    assert!(r.ask("QUIT").await.starts_with("221 "));
    let messages = server.messages();
    assert_eq!(messages.len(), 1, "one message");
    let m = &messages[0];
    assert_eq!(m.mail_from, "a@x.test");
    let data = String::from_utf8_lossy(&m.data);
    assert!(
        data.contains("MAIL FROM:<smuggled@evil.test>\r\n"),
        "{data}"
    );
    assert!(data.ends_with("DATA\r\n\r\nsmuggled\r\n"), "{data}");
}

/// Parameters of extensions the server does not offer are refused with 555 (RFC 5321 section
/// 4.1.1.11), a SIZE past any number with 552 (RFC 1870), and with a size limit of 0 no
/// `SIZE 0` ("no limit") is offered. They used to be taken, and NOTIFY dropped unseen.
#[tokio::test]
async fn parameters_not_offered_are_refused() {
    let server = start_plain(CaptureConfig::default()).await;
    let mut r = raw(&server).await;
    assert!(r.ask("EHLO t").await.starts_with("250"));
    for (command, want) in [
        ("MAIL FROM:<a@x> BODY=BINARYMIME", "555 "),
        ("MAIL FROM:<a@x> REQUIRETLS", "555 "),
        ("MAIL FROM:<a@x> SIZE=99999999999999999999999", "552 "),
        ("MAIL FROM:<a@x> SIZE=12x", "501 "),
        (
            "MAIL FROM:<a@x> BODY=8BITMIME SMTPUTF8 SIZE=10 AUTH=<>",
            "250 ",
        ),
        ("RCPT TO:<b@x> NOTIFY=SUCCESS", "555 "),
        ("RCPT TO:<b@x>", "250 "),
    ] {
        let reply = r.ask(command).await;
        assert!(reply.starts_with(want), "{command} -> {reply}");
    }
    let server = start_plain(CaptureConfig::default().with_max_message_size(0)).await;
    let mut r = raw(&server).await;
    let ehlo = r.ask("EHLO t").await;
    assert!(!ehlo.contains("SIZE"), "{ehlo}");
}

/// A connection lasts at most `max_session_time`, however busy: a client that is never idle
/// cannot hold the only place for ever. It used to hold it until the server stopped.
#[tokio::test]
async fn a_busy_connection_ends_at_the_session_limit() {
    let server =
        one_place(CaptureConfig::default().with_max_session_time(Duration::from_secs(1))).await;
    let mut busy = raw(&server).await;
    let started = std::time::Instant::now();
    loop {
        let reply = busy.ask("NOOP").await;
        if reply.is_empty() {
            break;
        }
        assert!(started.elapsed() < WAIT, "still served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The place is free again.
    assert!(raw(&server).await.ask("QUIT").await.starts_with("221 "));
}
