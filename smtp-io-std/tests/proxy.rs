//! Routes to the SMTP server through real proxy software on loopback: SOCKS5 and HTTP CONNECT
//! tunnels from `pproxy` (`pip install pproxy`; `scripts/test.sh` installs it for the tokio
//! adapter's tests already), with and without credentials, wrong credentials, a proxy that
//! hangs (bounded by the connect timeout and by the deadline), implicit TLS through a tunnel,
//! and a chosen local address. pproxy's own log shows each tunnel went through it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_io_std::{ConnectOptions, Proxy, SmtpError, SmtpOp, TlsConfig, TlsMode};
use smtp_testkit::ScriptServer;
use smtp_testkit::certs::{localhost_server_config, pki};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `pproxy` serving SOCKS5 and HTTP, each without and with credentials `user:secret`
/// (`--auth 0`: asked on every connection), and what it logged.
struct Pproxy {
    child: Child,
    log: Arc<Mutex<String>>,
    socks: u16,
    http: u16,
    socks_auth: u16,
    http_auth: u16,
}

impl Pproxy {
    fn start() -> Pproxy {
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
            .spawn()
            .expect("python3 -m pproxy: install it with `pip install pproxy`");
        let log = Arc::new(Mutex::new(String::new()));
        let pipes: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for pipe in pipes {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let proxy = Pproxy {
            child,
            log,
            socks,
            http,
            socks_auth,
            http_auth,
        };
        for port in [socks, http, socks_auth, http_auth] {
            let up = (0..200).any(|_| {
                TcpStream::connect(("127.0.0.1", port)).is_ok() || {
                    std::thread::sleep(Duration::from_millis(50));
                    false
                }
            });
            assert!(up, "pproxy did not listen on {port}: {}", proxy.log());
        }
        proxy
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Pproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the SMTP server saw: each connection's peer and each message's `MAIL` line.
#[derive(Default)]
struct Seen {
    peers: Mutex<Vec<SocketAddr>>,
    mail: Mutex<Vec<String>>,
}

/// A small SMTP server on a thread per connection.
fn smtp_server(seen: Arc<Seen>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        while let Ok((tcp, peer)) = listener.accept() {
            seen.peers.lock().unwrap().push(peer);
            let seen = seen.clone();
            std::thread::spawn(move || serve(tcp, &seen));
        }
    });
    port
}

fn serve(tcp: TcpStream, seen: &Seen) -> Option<()> {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let mut out = tcp.try_clone().ok()?;
    let mut lines = BufReader::new(tcp);
    out.write_all(b"220 behind.proxy.test\r\n").ok()?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let reply: &[u8] = match line.get(..4).unwrap_or("").to_ascii_uppercase().as_str() {
            "EHLO" => b"250 behind.proxy.test\r\n",
            "MAIL" => {
                seen.mail.lock().unwrap().push(line.trim_end().to_owned());
                b"250 ok\r\n"
            }
            "DATA" => {
                out.write_all(b"354 go\r\n").ok()?;
                loop {
                    line.clear();
                    if lines.read_line(&mut line).ok()? == 0 {
                        return None;
                    }
                    if line == ".\r\n" {
                        break;
                    }
                }
                b"250 queued\r\n"
            }
            "QUIT" => {
                out.write_all(b"221 bye\r\n").ok()?;
                return Some(());
            }
            _ => b"250 ok\r\n",
        };
        out.write_all(reply).ok()?;
    }
}

fn send_through(options: ConnectOptions, port: u16, from: &str) -> Result<(), SmtpError> {
    let mut client = options.connect("127.0.0.1", port, "client.test")?;
    client.send_mail(
        from,
        &["b@test.example"],
        "Subject: via proxy\r\n\r\nhi\r\n",
    )?;
    client.quit()
}

#[test]
fn socks5_and_http_tunnels_deliver_with_and_without_credentials() {
    let proxy = Pproxy::start();
    let seen = Arc::new(Seen::default());
    let port = smtp_server(seen.clone());
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
        let options = ConnectOptions::new(TlsMode::None)
            .with_reply_timeout(Duration::from_secs(10))
            .with_proxy(Proxy::parse(url).unwrap());
        send_through(options, port, &format!("{name}@test.example"))
            .unwrap_or_else(|e| panic!("{name}: {e:?}\n{}", proxy.log()));
    }
    let mail = seen.mail.lock().unwrap().clone();
    assert_eq!(
        mail,
        routes
            .iter()
            .map(|(name, _)| format!("MAIL FROM:<{name}@test.example>"))
            .collect::<Vec<_>>()
    );
    // Each tunnel is in pproxy's log, to the SMTP server's port.
    let log = proxy.log();
    let target = format!("127.0.0.1:{port}");
    assert!(
        log.matches(&target).count() >= routes.len(),
        "pproxy's log: {log}"
    );
}

#[test]
fn wrong_proxy_credentials_are_a_typed_error_without_the_password() {
    let proxy = Pproxy::start();
    let seen = Arc::new(Seen::default());
    let port = smtp_server(seen.clone());
    for url in [
        format!("socks5://127.0.0.1:{}", proxy.socks_auth),
        format!("socks5://user:wrong-pw@127.0.0.1:{}", proxy.socks_auth),
        format!("http://user:wrong-pw@127.0.0.1:{}", proxy.http_auth),
    ] {
        let error = ConnectOptions::new(TlsMode::None)
            .with_proxy(Proxy::parse(&url).unwrap())
            .with_connect_timeout(Duration::from_secs(10))
            .connect("127.0.0.1", port, "client.test")
            .unwrap_err();
        assert!(
            matches!(
                error,
                SmtpError::Io {
                    during: SmtpOp::Connect,
                    ..
                }
            ),
            "{url}: {error:?}"
        );
        assert!(
            !format!("{error} {error:?}").contains("wrong-pw"),
            "{error:?}"
        );
    }
    assert!(seen.mail.lock().unwrap().is_empty());
}

/// A "proxy" that accepts and never answers.
fn hanging_proxy() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept() {
            held.push(socket);
        }
    });
    port
}

#[test]
fn a_hanging_proxy_is_bounded_by_the_connect_timeout_and_the_deadline() {
    let proxy = hanging_proxy();
    let limit = Duration::from_millis(300);
    for kind in [
        Proxy::socks5("127.0.0.1", proxy),
        Proxy::http("127.0.0.1", proxy),
    ] {
        let error = ConnectOptions::new(TlsMode::None)
            .with_proxy(kind.clone())
            .with_connect_timeout(limit)
            .connect("smtp.example", 25, "client.test")
            .unwrap_err();
        assert_eq!(
            error,
            SmtpError::Timeout {
                during: SmtpOp::Connect,
                after: limit
            },
            "{kind:?}"
        );
        let error = ConnectOptions::new(TlsMode::None)
            .with_proxy(kind.clone())
            .with_connect_timeout(Duration::from_secs(30))
            .with_deadline(limit)
            .connect("smtp.example", 25, "client.test")
            .unwrap_err();
        assert_eq!(
            error,
            SmtpError::DeadlineExceeded {
                during: SmtpOp::Connect,
                after: limit
            },
            "{kind:?}"
        );
    }
}

#[test]
fn implicit_tls_runs_end_to_end_through_a_socks5_tunnel() {
    let proxy = Pproxy::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let script = "S: 220 mx.test ESMTP\nC: EHLO client.test\nS: 250 mx.test\nC: QUIT\nS: 221 bye\n";
    let server = rt.block_on(ScriptServer::implicit_tls(
        script,
        localhost_server_config(),
    ));
    // The certificate is checked for the SMTP server's name, which the proxy resolves.
    let client = ConnectOptions::new(TlsMode::Implicit)
        .with_tls_config(TlsConfig::from_ca_pem(pki().ca_pem()).unwrap())
        .with_reply_timeout(Duration::from_secs(10))
        .with_proxy(Proxy::socks5("127.0.0.1", proxy.socks))
        .connect("localhost", server.port(), "client.test")
        .unwrap_or_else(|e| panic!("{e:?}\n{}", proxy.log()));
    assert!(client.session().is_tls());
    client.quit().unwrap();
    let report = rt.block_on(server.report());
    assert!(report.ok(), "{}", report.explain());
}

#[test]
fn the_local_address_is_the_one_the_server_sees() {
    let seen = Arc::new(Seen::default());
    let port = smtp_server(seen.clone());
    // All of 127/8 is loopback on Linux: 127.0.0.2 is a second local address.
    let local = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let options = ConnectOptions::new(TlsMode::None)
        .with_reply_timeout(Duration::from_secs(10))
        .with_local_address(local);
    send_through(options, port, "bound@test.example").unwrap();
    let peers = seen.peers.lock().unwrap().clone();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].ip(), local);
    // An address of the other family cannot reach the server: typed, before any SMTP.
    let error = ConnectOptions::new(TlsMode::None)
        .with_local_address("::1".parse().unwrap())
        .connect("127.0.0.1", port, "client.test")
        .unwrap_err();
    assert!(
        matches!(
            error,
            SmtpError::Io {
                during: SmtpOp::Connect,
                ..
            }
        ),
        "{error:?}"
    );
}
