//! Routes to the SMTP server, against real proxy software on loopback: SOCKS5 and HTTP CONNECT
//! tunnels from `pproxy` (`pip install pproxy`; `scripts/test.sh` installs it), with and without
//! credentials, a proxy that refuses, one that hangs (bounded by the connect timeout and by the
//! deadline), and a chosen local address. The proxy's own log proves each tunnel went through it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_io_tokio::{ConnectOptions, Mailer, Proxy, SmtpError, SmtpOp, TlsMode};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

/// A free loopback port (bound and released: the proxy binds it next).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `pproxy` serving SOCKS5 and HTTP, each without and with credentials `user:secret` (asked on
/// every connection: `--auth 0`, or pproxy trusts an address for 30 days once it logged in),
/// and everything it logged.
struct Pproxy {
    child: Child,
    log: Arc<Mutex<String>>,
    socks: u16,
    http: u16,
    socks_auth: u16,
    http_auth: u16,
}

impl Pproxy {
    async fn start() -> Pproxy {
        let (socks, http, socks_auth, http_auth) =
            (free_port(), free_port(), free_port(), free_port());
        let mut child = Command::new("python3")
            .args(["-u", "-m", "pproxy", "-v", "--auth", "0"])
            .args(["-l", &format!("socks5://127.0.0.1:{socks}")])
            .args(["-l", &format!("http://127.0.0.1:{http}")])
            .args([
                "-l",
                &format!("socks5://127.0.0.1:{socks_auth}#user:secret"),
            ])
            .args(["-l", &format!("http://127.0.0.1:{http_auth}#user:secret")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 -m pproxy: install it with `pip install pproxy`");
        let log = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(pipe).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        for port in [socks, http, socks_auth, http_auth] {
            let mut up = false;
            for _ in 0..200 {
                if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                    up = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let log = log.lock().unwrap().clone();
            assert!(
                up,
                "pproxy did not listen on {port} (is it installed?): {log}"
            );
        }
        Pproxy {
            child,
            log,
            socks,
            http,
            socks_auth,
            http_auth,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Pproxy {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// What the SMTP server saw: each connection's peer address and each message's sender.
#[derive(Default)]
struct Seen {
    peers: Mutex<Vec<SocketAddr>>,
    delivered: Mutex<Vec<String>>,
}

async fn smtp_server(seen: Arc<Seen>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, peer)) = listener.accept().await {
            seen.peers.lock().unwrap().push(peer);
            tokio::spawn(serve(tcp, seen.clone()));
        }
    });
    port
}

async fn serve(tcp: TcpStream, seen: Arc<Seen>) {
    let mut io = BufReader::new(tcp);
    let _ = io.get_mut().write_all(b"220 behind.proxy.test\r\n").await;
    let mut line = String::new();
    let mut from = String::new();
    loop {
        line.clear();
        if io.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250 behind.proxy.test\r\n",
            "MAIL" => {
                from = line.trim_end().to_string();
                b"250 ok\r\n"
            }
            "DATA" => {
                let _ = io.get_mut().write_all(b"354 go\r\n").await;
                loop {
                    line.clear();
                    if io.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if line == ".\r\n" {
                        break;
                    }
                }
                seen.delivered.lock().unwrap().push(from.clone());
                b"250 queued\r\n"
            }
            "QUIT" => {
                let _ = io.get_mut().write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"250 ok\r\n",
        };
        if io.get_mut().write_all(reply).await.is_err() {
            return;
        }
    }
}

async fn send_through(options: ConnectOptions, port: u16, from: &str) -> Result<(), SmtpError> {
    let mut client = options.connect("127.0.0.1", port, "client.test").await?;
    client
        .send_mail(
            from,
            &["b@test.example"],
            "Subject: via proxy\r\n\r\nhi\r\n",
        )
        .await?;
    client.quit().await
}

/// The start of the tests through pproxy: the proxy, and the SMTP server with what it saw and
/// its port.
async fn proxy_and_server() -> (Pproxy, Arc<Seen>, u16) {
    let proxy = Pproxy::start().await;
    let seen = Arc::new(Seen::default());
    let port = smtp_server(seen.clone()).await;
    (proxy, seen, port)
}

/// Options without TLS that go through the proxy of `url`.
fn via(url: &str) -> ConnectOptions {
    ConnectOptions::new(TlsMode::None).with_proxy(Proxy::parse(url).unwrap())
}

/// How many tunnels to the SMTP server on `port` the proxy's `log` shows.
fn tunnels_to(log: &str, port: u16) -> usize {
    log.lines()
        .filter(|l| l.contains(&format!("-> 127.0.0.1:{port}")))
        .count()
}

#[tokio::test]
async fn socks5_and_http_tunnels_deliver_with_and_without_credentials() {
    let (proxy, seen, port) = proxy_and_server().await;
    let routes = [
        ("socks", format!("socks5://127.0.0.1:{}", proxy.socks)),
        ("http", format!("http://127.0.0.1:{}", proxy.http)),
        (
            "socks-auth",
            format!("socks5://user:secret@127.0.0.1:{}", proxy.socks_auth),
        ),
        (
            "http-auth",
            format!("http://user:secret@127.0.0.1:{}", proxy.http_auth),
        ),
    ];
    for (name, url) in &routes {
        send_through(via(url), port, &format!("{name}@test.example"))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let delivered = seen.delivered.lock().unwrap().clone();
    assert_eq!(delivered.len(), 4, "{delivered:?}");
    // Each tunnel is in the proxy's own log, to the SMTP server's port.
    let log = proxy.log();
    assert_eq!(tunnels_to(&log, port), 4, "{log}");
    assert!(log.lines().any(|l| l.starts_with("socks5 ")), "{log}");
    assert!(log.lines().any(|l| l.starts_with("http ")), "{log}");
}

#[tokio::test]
async fn wrong_proxy_credentials_and_refusals_are_typed_connect_errors() {
    let (proxy, seen, port) = proxy_and_server().await;
    let cases = [
        format!("http://user:wrong@127.0.0.1:{}", proxy.http_auth),
        format!("http://127.0.0.1:{}", proxy.http_auth),
        format!("socks5://user:wrong@127.0.0.1:{}", proxy.socks_auth),
    ];
    for url in &cases {
        let error = send_through(via(url), port, "a@test.example")
            .await
            .unwrap_err();
        match &error {
            SmtpError::Io {
                during: SmtpOp::Connect,
                ..
            } => {}
            other => panic!("{url}: {other:?}"),
        }
        assert!(!error.to_string().contains("wrong"), "{error}");
    }
    // A tunnel to a closed port: the proxy gives up, and so does the client, typed. (pproxy
    // grants a SOCKS5 tunnel before it connects and then closes it, so that one shows as the
    // connection closed before the greeting; the HTTP side closes before answering CONNECT.)
    let closed = free_port();
    for url in [
        format!("socks5://127.0.0.1:{}", proxy.socks),
        format!("http://127.0.0.1:{}", proxy.http),
    ] {
        let error = send_through(via(&url), closed, "a@test.example")
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                SmtpError::Io {
                    during: SmtpOp::Connect,
                    ..
                } | SmtpError::Protocol(smtp_io_tokio::ProtocolError::ConnectionClosed {
                    during: SmtpOp::Greeting
                })
            ),
            "{url}: {error:?}"
        );
    }
    assert!(seen.delivered.lock().unwrap().is_empty());
}

/// A "proxy" that accepts and never answers: the connect timeout ends the wait, or the
/// deadline when it is nearer.
#[tokio::test]
async fn a_proxy_that_hangs_is_bounded_by_the_connect_timeout_and_the_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut buf = [0u8; 64];
            let _ = tcp.read(&mut buf).await;
            held.push(tcp);
        }
    });
    for kind in ["socks5", "http"] {
        let proxy = Proxy::parse(&format!("{kind}://127.0.0.1:{hang}")).unwrap();
        let through = || ConnectOptions::new(TlsMode::None).with_proxy(proxy.clone());
        // Each bound, and the error it must end the wait with.
        type Ends = fn(&SmtpError) -> bool;
        let bounds: [(ConnectOptions, Ends); 2] = [
            (
                through().with_connect_timeout(Duration::from_millis(400)),
                |e| {
                    matches!(
                        e,
                        SmtpError::Timeout {
                            during: SmtpOp::Connect,
                            ..
                        }
                    )
                },
            ),
            (through().with_deadline(Duration::from_millis(300)), |e| {
                matches!(
                    e,
                    SmtpError::DeadlineExceeded {
                        during: SmtpOp::Connect,
                        ..
                    }
                )
            }),
        ];
        for (options, expected) in bounds {
            let error = send_through(options, 25, "a@test.example")
                .await
                .unwrap_err();
            assert!(expected(&error), "{kind}: {error:?}");
        }
    }
}

/// A chosen local address is the source the server sees, for one client and for a pool.
#[tokio::test]
async fn the_local_address_is_the_source_the_server_sees() {
    let seen = Arc::new(Seen::default());
    let port = smtp_server(seen.clone()).await;
    let local = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let options = ConnectOptions::new(TlsMode::None).with_local_address(local);
    send_through(options, port, "a@test.example").await.unwrap();
    let mailer = Mailer::builder("127.0.0.1", port, TlsMode::None, "client.test")
        .local_address(local)
        .build()
        .unwrap();
    mailer
        .send("pool@test.example", ["b@test.example"], b"hi\r\n")
        .await
        .unwrap();
    mailer.shutdown().await;
    let peers = seen.peers.lock().unwrap().clone();
    assert_eq!(peers.len(), 2);
    assert!(peers.iter().all(|p| p.ip() == local), "{peers:?}");
}

/// A pool's connections all go through its proxy.
#[tokio::test]
async fn a_pool_sends_through_its_proxy() {
    let (proxy, seen, port) = proxy_and_server().await;
    let mailer = Mailer::builder("127.0.0.1", port, TlsMode::None, "client.test")
        .proxy(
            Proxy::parse(&format!("socks5://127.0.0.1:{}", proxy.socks_auth))
                .unwrap()
                .with_credentials("user", "secret"),
        )
        .max_messages_per_connection(2)
        .build()
        .unwrap();
    for n in 0..3 {
        mailer
            .send(&format!("m{n}@test.example"), ["b@test.example"], b"hi\r\n")
            .await
            .unwrap();
    }
    mailer.shutdown().await;
    assert_eq!(seen.delivered.lock().unwrap().len(), 3);
    let log = proxy.log();
    assert_eq!(
        tunnels_to(&log, port),
        2,
        "two connections of the pool: {log}"
    );
}
