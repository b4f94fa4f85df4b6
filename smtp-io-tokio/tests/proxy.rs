//! Routes to the SMTP server, against real proxy software on loopback: SOCKS5 and HTTP CONNECT
//! tunnels from `pproxy` (`pip install pproxy`; `scripts/test.sh` installs it), with and without
//! credentials, a proxy that refuses, one that hangs (bounded by the connect timeout and by the
//! deadline), and a chosen local address. The proxy's own log proves each tunnel went through it.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use smtp_io_tokio::{ConnectOptions, Mailer, Proxy, SmtpError, SmtpOp, TlsMode};
use smtp_testkit::proxy::{Listen, Pproxy, Sink, free_port, hanging_listener};

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

/// The start of the tests through pproxy: the proxy, and the SMTP server with its port.
fn proxy_and_server() -> (Pproxy, Sink, u16) {
    let proxy = Pproxy::all();
    let sink = Sink::start();
    let port = sink.port();
    (proxy, sink, port)
}

/// Options without TLS that go through the proxy of `url`.
fn via(url: &str) -> ConnectOptions {
    ConnectOptions::new(TlsMode::None).with_proxy(Proxy::parse(url).unwrap())
}

/// How many tunnels to the SMTP server on `port` the proxy's log shows.
fn tunnels_to(proxy: &Pproxy, port: u16) -> usize {
    proxy.tunnels_to(&format!("127.0.0.1:{port}"))
}

#[tokio::test]
async fn socks5_and_http_tunnels_deliver_with_and_without_credentials() {
    let (proxy, sink, port) = proxy_and_server();
    let routes = proxy.routes();
    for (name, url) in &routes {
        send_through(via(url), port, &format!("{name}@test.example"))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let delivered = sink.delivered();
    assert_eq!(delivered.len(), 4, "{delivered:?}");
    // Each tunnel is in the proxy's own log, to the SMTP server's port.
    let log = proxy.log();
    assert_eq!(tunnels_to(&proxy, port), 4, "{log}");
    assert!(log.lines().any(|l| l.starts_with("socks5 ")), "{log}");
    assert!(log.lines().any(|l| l.starts_with("http ")), "{log}");
}

#[tokio::test]
async fn wrong_proxy_credentials_and_refusals_are_typed_connect_errors() {
    let (proxy, sink, port) = proxy_and_server();
    let cases = [
        format!(
            "http://user:wrong@127.0.0.1:{}",
            proxy.port(Listen::HttpAuth)
        ),
        format!("http://127.0.0.1:{}", proxy.port(Listen::HttpAuth)),
        format!(
            "socks5://user:wrong@127.0.0.1:{}",
            proxy.port(Listen::Socks5Auth)
        ),
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
        format!("socks5://127.0.0.1:{}", proxy.port(Listen::Socks5)),
        format!("http://127.0.0.1:{}", proxy.port(Listen::Http)),
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
    assert!(sink.delivered().is_empty());
}

/// A "proxy" that accepts and never answers: the connect timeout ends the wait, or the
/// deadline when it is nearer.
#[tokio::test]
async fn a_proxy_that_hangs_is_bounded_by_the_connect_timeout_and_the_deadline() {
    let hang = hanging_listener();
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
    let sink = Sink::start();
    let port = sink.port();
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
    let peers = sink.peers();
    assert_eq!(peers.len(), 2);
    assert!(peers.iter().all(|p| p.ip() == local), "{peers:?}");
}

/// A pool's connections all go through its proxy.
#[tokio::test]
async fn a_pool_sends_through_its_proxy() {
    let (proxy, sink, port) = proxy_and_server();
    let mailer = Mailer::builder("127.0.0.1", port, TlsMode::None, "client.test")
        .proxy(
            Proxy::parse(&format!(
                "socks5://127.0.0.1:{}",
                proxy.port(Listen::Socks5Auth)
            ))
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
    assert_eq!(sink.delivered().len(), 3);
    let log = proxy.log();
    assert_eq!(
        tunnels_to(&proxy, port),
        2,
        "two connections of the pool: {log}"
    );
}
