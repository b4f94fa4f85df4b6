//! Tests of the WASI adapter inside the guest: the executor, the timer, and the transport over a
//! loopback socket served by the same test (`wasi:sockets` listen and accept). They run under
//! jco: `cargo test -p smtp-io-wasm --target wasm32-wasip2 --no-run`, then `jco run` the test
//! binary (wasi-e2e/run.sh does both).

use core::future::{Future, poll_fn};
use core::pin::pin;
use core::task::Poll;
use core::time::Duration;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use smtp_proto::Transport;
use smtp_proto::connect::Proxy;
use smtp_proto::future::{Either, race};
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::{ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
use wasip2::sockets::tcp::TcpSocket;
use wasip2::sockets::tcp_create_socket::create_tcp_socket;

use super::reactor::{now, ready};
use super::tcp::TcpConn;
use super::{TlsConfig, WasiTransport, block_on, sleep};
use crate::TlsMode;
use crate::connect::Route;

/// Run both futures to completion, concurrently.
async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let mut a = pin!(a);
    let mut b = pin!(b);
    let (mut x, mut y) = (None, None);
    poll_fn(|cx| {
        if x.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                x = Some(v);
            }
        }
        if y.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                y = Some(v);
            }
        }
        match (x.take(), y.take()) {
            (Some(v), Some(w)) => Poll::Ready((v, w)),
            (v, w) => {
                x = v;
                y = w;
                Poll::Pending
            }
        }
    })
    .await
}

/// A listening socket on 127.0.0.1 and a free port.
struct Listener {
    socket: TcpSocket,
    port: u16,
}

fn finish(socket: &TcpSocket, step: impl Fn(&TcpSocket) -> Result<(), ErrorCode>) {
    loop {
        match step(socket) {
            Ok(()) => return,
            Err(ErrorCode::WouldBlock) => socket.subscribe().block(),
            Err(e) => panic!("listen setup: {e:?}"),
        }
    }
}

fn listen() -> Listener {
    let network = instance_network();
    let socket = create_tcp_socket(IpAddressFamily::Ipv4).expect("a socket");
    let local = IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: 0,
        address: (127, 0, 0, 1),
    });
    socket.start_bind(&network, local).expect("bind");
    finish(&socket, TcpSocket::finish_bind);
    socket.start_listen().expect("listen");
    finish(&socket, TcpSocket::finish_listen);
    let port = match socket.local_address().expect("the bound address") {
        IpSocketAddress::Ipv4(a) => a.port,
        IpSocketAddress::Ipv6(a) => a.port,
    };
    Listener { socket, port }
}

impl Listener {
    async fn accept(&self) -> TcpConn {
        self.accept_from().await.0
    }

    /// The next connection and the address it came from.
    async fn accept_from(&self) -> (TcpConn, SocketAddr) {
        loop {
            match self.socket.accept() {
                Ok((socket, input, output)) => {
                    let from = match socket.remote_address().expect("the peer's address") {
                        IpSocketAddress::Ipv4(a) => {
                            let (w, x, y, z) = a.address;
                            SocketAddr::from(([w, x, y, z], a.port))
                        }
                        IpSocketAddress::Ipv6(a) => panic!("an IPv6 peer on 127.0.0.1: {a:?}"),
                    };
                    let peer = SocketAddr::from(([127, 0, 0, 1], 0));
                    return (TcpConn::from_parts(input, output, socket, peer), from);
                }
                Err(ErrorCode::WouldBlock) => ready(self.socket.subscribe()).await,
                Err(e) => panic!("accept: {e:?}"),
            }
        }
    }
}

/// Read exactly `n` bytes on the server side (panics if the client closes first).
async fn take(conn: &mut TcpConn, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n {
        let chunk = conn
            .read((n - got.len()) as u64)
            .await
            .expect("server read");
        assert!(!chunk.is_empty(), "closed after {got:?}");
        got.extend_from_slice(&chunk);
    }
    got
}

/// A route through `proxy`, from `local` when given.
fn through(proxy: Option<Proxy>, local: Option<IpAddr>) -> Route {
    Route {
        proxy,
        local_address: local,
    }
}

/// Open a plaintext connection to `host:port` by `route`.
async fn open_plain(host: &str, port: u16, route: &Route) -> io::Result<WasiTransport> {
    let tls = TlsConfig::default();
    WasiTransport::open_routed(host, port, host, TlsMode::None, &tls, route, None).await
}

/// `future`'s output, or a panic after ten seconds (a test whose client failed must not hang on
/// a server still waiting for it).
async fn within<F: Future>(future: F) -> F::Output {
    match race(future, sleep(Duration::from_secs(10))).await {
        Either::Left(out) => out,
        Either::Right(()) => panic!("the test's server side waited ten seconds"),
    }
}

const LOOPBACK_2: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Read from `t` until `n` bytes have arrived (or the peer closed).
async fn read_exactly(t: &mut WasiTransport, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while got.len() < n {
        let k = t.read(&mut buf).await.expect("read");
        if k == 0 {
            break;
        }
        got.extend_from_slice(&buf[..k]);
    }
    got
}

#[test]
fn sleep_lasts_its_duration_on_the_wasi_clock() {
    let start = now();
    block_on(sleep(Duration::from_millis(40)));
    let slept = now() - start;
    assert!(
        slept >= Duration::from_millis(40) && slept < Duration::from_secs(2),
        "{slept:?}"
    );
    let start = now();
    block_on(sleep(Duration::ZERO));
    assert!(now() - start < Duration::from_millis(50));
    // The transport's clock is the one `sleep` waits on.
    let (a, b, c) = (now(), <WasiTransport as Transport>::now(), now());
    assert!(a <= b && b <= c, "{a:?} {b:?} {c:?}");
}

/// `race` itself is tested in smtp-proto (`smtp_proto::future`); this is the executor waking for the
/// first of two timers and dropping the other.
#[test]
fn block_on_ends_a_race_with_the_first_timer() {
    let start = now();
    let first = block_on(race(
        sleep(Duration::from_millis(10)),
        sleep(Duration::from_secs(30)),
    ));
    assert!(matches!(first, Either::Left(())));
    assert!(now() - start < Duration::from_secs(2));
}

#[test]
fn a_closed_port_is_connection_refused() {
    let port = listen().port; // the listener is dropped: nothing listens there any more
    let err = block_on(WasiTransport::connect_plain("127.0.0.1", port)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
}

#[test]
fn a_read_dropped_by_a_timeout_loses_nothing() {
    let listener = listen();
    block_on(async {
        let server = async {
            let mut conn = listener.accept().await;
            sleep(Duration::from_millis(150)).await;
            conn.write_all(b"220 ready\r\n")
                .await
                .expect("server write");
            conn.read(64).await.expect("server read")
        };
        let client = async {
            let mut t = WasiTransport::connect_plain("127.0.0.1", listener.port)
                .await
                .expect("connect");
            let mut buf = [0u8; 64];
            // A read that loses to the timer, and one abandoned in the poll that registered it.
            let timed_out = race(t.read(&mut buf), sleep(Duration::from_millis(30))).await;
            assert!(matches!(timed_out, Either::Right(())));
            let abandoned = race(t.read(&mut buf), sleep(Duration::ZERO)).await;
            assert!(matches!(abandoned, Either::Right(())));
            assert_eq!(read_exactly(&mut t, 11).await, b"220 ready\r\n");
            t.write_all(b"QUIT\r\n").await.expect("client write");
            t
        };
        let (got, t) = join(server, client).await;
        assert_eq!(got, b"QUIT\r\n");
        assert!(t.tls_exporter().is_none());
        drop(t);
    });
}

#[test]
fn a_transport_dropped_with_a_wait_registered_does_not_trap() {
    // A pollable must go before the stream it belongs to: the executor holds waits weakly.
    let listener = listen();
    block_on(async {
        let (_server, ()) = join(listener.accept(), async {
            let mut t = WasiTransport::connect_plain("127.0.0.1", listener.port)
                .await
                .expect("connect");
            let mut buf = [0u8; 8];
            let r = race(t.read(&mut buf), sleep(Duration::ZERO)).await;
            assert!(matches!(r, Either::Right(())));
            drop(t);
        })
        .await;
    });
}

#[test]
fn a_large_write_arrives_whole_through_the_hosts_flow_control() {
    let listener = listen();
    let data: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
    block_on(async {
        let server = async {
            let mut conn = listener.accept().await;
            let mut got = Vec::new();
            while got.len() < data.len() {
                let chunk = conn.read(64 * 1024).await.expect("server read");
                assert!(!chunk.is_empty(), "closed after {} bytes", got.len());
                got.extend_from_slice(&chunk);
            }
            got
        };
        let client = async {
            let mut t = WasiTransport::connect_plain("127.0.0.1", listener.port)
                .await
                .expect("connect");
            t.write_all(&data).await.expect("client write");
            t
        };
        let (got, mut t) = join(server, client).await;
        assert!(got == data, "{} bytes received", got.len());
        t.close().await.expect("close");
    });
}

#[test]
fn random_bytes_come_from_wasi_random() {
    let listener = listen();
    block_on(async {
        let (_server, t) = join(
            listener.accept(),
            WasiTransport::connect_plain("127.0.0.1", listener.port),
        )
        .await;
        let t = t.expect("connect");
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        t.fill_random(&mut a).expect("random");
        t.fill_random(&mut b).expect("random");
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    });
}

/// A SOCKS5 proxy played by the test answers its CONNECT reply and the server's greeting in one
/// write: the tunnel handshake takes its bytes only, the greeting is the transport's first read.
#[test]
fn a_socks5_tunnel_takes_none_of_the_servers_bytes() {
    let proxy = listen();
    block_on(async {
        let server = async {
            let mut conn = proxy.accept().await;
            assert_eq!(
                take(&mut conn, 3).await,
                [5, 1, 0],
                "no credentials offered"
            );
            conn.write_all(&[5, 0]).await.expect("method");
            // CONNECT to the name mx.example (type 3), port 25.
            let mut want = vec![5, 1, 0, 3, 10];
            want.extend_from_slice(b"mx.example");
            want.extend_from_slice(&25u16.to_be_bytes());
            assert_eq!(take(&mut conn, want.len()).await, want);
            let mut reply = vec![5, 0, 0, 1, 127, 0, 0, 1, 0, 25];
            reply.extend_from_slice(b"220 behind the proxy\r\n");
            conn.write_all(&reply).await.expect("reply and greeting");
            take(&mut conn, 6).await
        };
        let client = async {
            let route = through(Some(Proxy::socks5("127.0.0.1", proxy.port)), None);
            let mut t = open_plain("mx.example", 25, &route).await.expect("tunnel");
            assert_eq!(t.peer_addr().port(), proxy.port, "TCP goes to the proxy");
            assert_eq!(read_exactly(&mut t, 22).await, b"220 behind the proxy\r\n");
            t.write_all(b"QUIT\r\n").await.expect("write");
        };
        let (got, ()) = join(within(server), client).await;
        assert_eq!(got, b"QUIT\r\n");
    });
}

/// The same with an HTTP proxy, whose answer's end is unknown: read a byte at a time, it stops
/// at the blank line.
#[test]
fn an_http_connect_tunnel_takes_none_of_the_servers_bytes() {
    let proxy = listen();
    block_on(async {
        let server = async {
            let mut conn = proxy.accept().await;
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                request.extend(take(&mut conn, 1).await);
            }
            let request = String::from_utf8(request).expect("ASCII");
            assert!(
                request.starts_with("CONNECT mx.example:25 HTTP/1.1\r\n"),
                "{request}"
            );
            assert!(!request.contains("Proxy-Authorization"), "{request}");
            conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n220 hi\r\n")
                .await
                .expect("answer and greeting");
        };
        let client = async {
            let route = through(Some(Proxy::http("127.0.0.1", proxy.port)), None);
            let mut t = open_plain("mx.example", 25, &route).await.expect("tunnel");
            assert_eq!(read_exactly(&mut t, 8).await, b"220 hi\r\n");
        };
        join(within(server), client).await;
    });
}

/// Refused credentials are `PermissionDenied`, and the error never shows the password.
#[test]
fn a_socks5_proxy_refusing_the_credentials_is_permission_denied_without_the_password() {
    let proxy = listen();
    let socks5 = Proxy::socks5("127.0.0.1", proxy.port).with_credentials("me", "hunter2-secret");
    block_on(async {
        let server = async {
            let mut conn = proxy.accept().await;
            assert_eq!(
                take(&mut conn, 4).await,
                [5, 2, 0, 2],
                "user/password offered"
            );
            conn.write_all(&[5, 2]).await.expect("method");
            let head = take(&mut conn, 2).await;
            assert_eq!(head, [1, 2]);
            let rest = take(&mut conn, 2 + 1 + 14).await;
            assert_eq!(&rest[..2], b"me");
            conn.write_all(&[1, 1]).await.expect("refusal");
        };
        let client = async {
            open_plain("mx.example", 25, &through(Some(socks5.clone()), None))
                .await
                .unwrap_err()
        };
        let ((), err) = join(within(server), client).await;
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
    });
}

#[test]
fn a_proxy_that_cannot_be_reached_is_named() {
    let port = listen().port; // closed again
    let route = through(Some(Proxy::http("127.0.0.1", port)), None);
    let err = block_on(open_plain("mx.example", 25, &route)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot reach the proxy 127.0.0.1:{port}: ")),
        "{text}"
    );
}

/// A host the proxy's request cannot carry is refused before anything is connected (the proxy's
/// port is closed: an attempt would fail as "cannot reach").
#[test]
fn a_host_the_proxy_request_cannot_carry_is_refused_before_any_io() {
    let port = listen().port;
    let route = through(Some(Proxy::http("127.0.0.1", port)), None);
    let err = block_on(open_plain("mx.example\r\nX-Evil: 1", 25, &route)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(!err.to_string().contains("cannot reach"), "{err}");
}

/// Bound to 127.0.0.2 before connecting: the server sees the connection come from there (Linux
/// routes all of 127.0.0.0/8 on loopback).
#[test]
fn a_local_address_is_where_the_connection_comes_from() {
    let listener = listen();
    block_on(async {
        let (accepted, t) = join(
            within(listener.accept_from()),
            open_plain("127.0.0.1", listener.port, &through(None, Some(LOOPBACK_2))),
        )
        .await;
        let t = t.expect("connect from 127.0.0.2");
        assert_eq!(accepted.1.ip(), LOOPBACK_2);
        assert_ne!(accepted.1.port(), 0);
        assert_eq!(
            t.peer_addr(),
            SocketAddr::from(([127, 0, 0, 1], listener.port))
        );
    });
}

/// With a proxy, the connection to the proxy leaves from the local address.
#[test]
fn with_a_proxy_the_local_address_is_the_proxys_peer() {
    let proxy = listen();
    block_on(async {
        let server = async {
            let (mut conn, from) = proxy.accept_from().await;
            take(&mut conn, 3).await;
            conn.write_all(&[5, 0]).await.expect("method");
            take(&mut conn, 4 + 4 + 2).await; // CONNECT to the IPv4 address 192.0.2.1:25
            conn.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0, b'2'])
                .await
                .expect("reply");
            from
        };
        let client = async {
            let route = through(
                Some(Proxy::socks5("127.0.0.1", proxy.port)),
                Some(LOOPBACK_2),
            );
            let mut t = open_plain("192.0.2.1", 25, &route).await.expect("tunnel");
            read_exactly(&mut t, 1).await
        };
        let (from, first) = join(within(server), client).await;
        assert_eq!(from.ip(), LOOPBACK_2);
        assert_eq!(first, b"2");
    });
}

/// A local address of the other family cannot reach the server: `AddrNotAvailable`, naming both,
/// before any socket is bound.
#[test]
fn a_local_address_of_the_other_family_is_addr_not_available() {
    let local = IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]);
    let err = block_on(open_plain("127.0.0.1", 25, &through(None, Some(local)))).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrNotAvailable, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("::1") && text.contains("127.0.0.1:25"),
        "{text}"
    );
}

// ------------------------------------------------------------------------------------- TLS

/// A CA made for the test, and a server configuration for `localhost` signed by it.
fn tls_server() -> (TlsConfig, std::sync::Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("a CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).expect("the CA");
    let key = KeyPair::generate().expect("a server key");
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("server parameters")
        .signed_by(&key, &ca, &ca_key)
        .expect("the server certificate");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("the server configuration");
    let trust = TlsConfig::from_ca_pem(ca.pem().as_bytes()).expect("the CA as trust");
    (trust, std::sync::Arc::new(config))
}

/// Write what `tls` has queued to `conn`, with `extra` bytes after it in the same write.
async fn send_records(conn: &mut TcpConn, tls: &mut rustls::ServerConnection, extra: &[u8]) {
    let mut out = Vec::new();
    while tls.wants_write() {
        tls.write_tls(&mut out).expect("records");
    }
    out.extend_from_slice(extra);
    if !out.is_empty() {
        conn.write_all(&out).await.expect("server write");
    }
}

/// The server's side of a TLS handshake over `conn`.
async fn accept_tls(
    conn: &mut TcpConn,
    config: std::sync::Arc<rustls::ServerConfig>,
) -> rustls::ServerConnection {
    let mut tls = rustls::ServerConnection::new(config).expect("a server connection");
    while tls.is_handshaking() {
        send_records(conn, &mut tls, &[]).await;
        if !tls.is_handshaking() {
            break;
        }
        let bytes = conn.read(64 * 1024).await.expect("server read");
        assert!(!bytes.is_empty(), "the client closed during the handshake");
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            tls.read_tls(&mut rest).expect("records in");
            tls.process_new_packets().expect("the client's handshake");
        }
    }
    send_records(conn, &mut tls, &[]).await;
    tls
}

/// A server that writes a reply, its close_notify and then more bytes in one TCP write: the
/// reply, then the end. rustls takes nothing after a close_notify, and the read used to feed it
/// the rest for ever, in a loop no timer could stop (found in review).
#[test]
fn bytes_after_the_close_notify_end_the_read() {
    let listener = listen();
    let (trust, config) = tls_server();
    block_on(async {
        let server = async {
            let mut conn = listener.accept().await;
            let mut tls = accept_tls(&mut conn, config).await;
            std::io::Write::write_all(&mut tls.writer(), b"220 hi\r\n").expect("plaintext");
            tls.send_close_notify();
            send_records(&mut conn, &mut tls, &[0u8; 6000]).await;
            sleep(Duration::from_secs(3)).await;
        };
        let client = async {
            let mut t = WasiTransport::open_routed(
                "localhost",
                listener.port,
                "localhost",
                TlsMode::Implicit,
                &trust,
                &Route::default(),
                None,
            )
            .await
            .expect("implicit TLS");
            let read = async {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = t.read(&mut buf).await {
                    got.extend_from_slice(&buf[..n]);
                }
                got
            };
            match race(read, sleep(Duration::from_secs(2))).await {
                Either::Left(got) => assert_eq!(got, b"220 hi\r\n"),
                Either::Right(()) => panic!("the read did not end"),
            }
        };
        join(server, client).await;
    });
}
