//! Routes to the SMTP server through real proxy software on loopback: SOCKS5 and HTTP CONNECT
//! tunnels from `pproxy` (`pip install pproxy`; `scripts/test.sh` installs it for the tokio
//! adapter's tests already), with and without credentials, wrong credentials, a proxy that
//! hangs (bounded by the connect timeout and by the deadline), implicit TLS through a tunnel,
//! and a chosen local address. pproxy's own log shows each tunnel went through it.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use smtp_io_std::{ConnectOptions, Proxy, SmtpError, SmtpOp, TlsConfig, TlsMode};
use smtp_testkit::ScriptServer;
use smtp_testkit::certs::{localhost_server_config, pki};
use smtp_testkit::expect::{assert_io_during, is_io_during};
use smtp_testkit::proxy::{Listen, Pproxy, Sink, hanging_listener};

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
    let proxy = Pproxy::all();
    let sink = Sink::start();
    let port = sink.port();
    let routes = proxy.routes();
    for (name, url) in &routes {
        let options = ConnectOptions::new(TlsMode::None)
            .with_reply_timeout(Duration::from_secs(10))
            .with_proxy(Proxy::parse(url).unwrap());
        send_through(options, port, &format!("{name}@test.example"))
            .unwrap_or_else(|e| panic!("{name}: {e:?}\n{}", proxy.log()));
    }
    let mail = sink.mail();
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
    let proxy = Pproxy::all();
    let sink = Sink::start();
    let port = sink.port();
    for url in [
        format!("socks5://127.0.0.1:{}", proxy.port(Listen::Socks5Auth)),
        format!(
            "socks5://user:wrong-pw@127.0.0.1:{}",
            proxy.port(Listen::Socks5Auth)
        ),
        format!(
            "http://user:wrong-pw@127.0.0.1:{}",
            proxy.port(Listen::HttpAuth)
        ),
    ] {
        let error = ConnectOptions::new(TlsMode::None)
            .with_proxy(Proxy::parse(&url).unwrap())
            .with_connect_timeout(Duration::from_secs(10))
            .connect("127.0.0.1", port, "client.test")
            .unwrap_err();
        assert!(is_io_during(&error, SmtpOp::Connect), "{url}: {error:?}");
        assert!(
            !format!("{error} {error:?}").contains("wrong-pw"),
            "{error:?}"
        );
    }
    assert!(sink.mail().is_empty());
}

#[test]
fn a_hanging_proxy_is_bounded_by_the_connect_timeout_and_the_deadline() {
    let proxy = hanging_listener();
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
    let proxy = Pproxy::all();
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
        .with_proxy(Proxy::socks5("127.0.0.1", proxy.port(Listen::Socks5)))
        .connect("localhost", server.port(), "client.test")
        .unwrap_or_else(|e| panic!("{e:?}\n{}", proxy.log()));
    assert!(client.session().is_tls());
    client.quit().unwrap();
    let report = rt.block_on(server.report());
    assert!(report.ok(), "{}", report.explain());
}

#[test]
fn the_local_address_is_the_one_the_server_sees() {
    let sink = Sink::start();
    let port = sink.port();
    // All of 127/8 is loopback on Linux: 127.0.0.2 is a second local address.
    let local = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let options = ConnectOptions::new(TlsMode::None)
        .with_reply_timeout(Duration::from_secs(10))
        .with_local_address(local);
    send_through(options, port, "bound@test.example").unwrap();
    let peers = sink.peers();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].ip(), local);
    // An address of the other family cannot reach the server: typed, before any SMTP.
    let error = ConnectOptions::new(TlsMode::None)
        .with_local_address("::1".parse().unwrap())
        .connect("127.0.0.1", port, "client.test")
        .unwrap_err();
    assert_io_during(&error, SmtpOp::Connect);
}

/// A SOCKS5 proxy that answers CONNECT with "TTL expired" (reply 6, an error of kind
/// `TimedOut`) at once: the proxy's reason as an I/O error during the connect, not the connect
/// timeout (30 s) said to have run out.
#[test]
fn a_socks5_ttl_expired_answer_is_the_proxys_reason_not_a_timeout() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let proxy = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut buf = [0u8; 512];
        let _ = socket.read(&mut buf).unwrap();
        socket.write_all(&[5, 0]).unwrap();
        let _ = socket.read(&mut buf).unwrap();
        socket.write_all(&[5, 6, 0, 1, 0, 0, 0, 0, 0, 0]).unwrap();
        let _ = socket.read(&mut buf);
    });
    let error = ConnectOptions::new(TlsMode::None)
        .with_proxy(Proxy::socks5("127.0.0.1", port))
        .with_connect_timeout(Duration::from_secs(30))
        .connect("mx.example", 25, "client.test")
        .unwrap_err();
    assert!(
        matches!(&error, SmtpError::Io { during: SmtpOp::Connect, error }
            if error.message.contains("TTL")),
        "{error:?}"
    );
    proxy.join().unwrap();
}
