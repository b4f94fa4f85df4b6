//! Tests of the WASI adapter inside the guest: the executor, the timer, and the transport over a
//! loopback socket served by the same test (`wasi:sockets` listen and accept). They run under
//! jco: `cargo test -p smtp-io-wasm --target wasm32-wasip2 --no-run`, then `jco run` the test
//! binary (wasi-e2e/run.sh does both).

use core::future::{Future, poll_fn};
use core::pin::pin;
use core::task::Poll;
use core::time::Duration;
use std::io;
use std::net::SocketAddr;

use smtp_proto::Transport;
use smtp_proto::client::future::{Either, race};
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::{ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
use wasip2::sockets::tcp::TcpSocket;
use wasip2::sockets::tcp_create_socket::create_tcp_socket;

use super::reactor::{now, ready};
use super::tcp::TcpConn;
use super::{WasiTransport, block_on, sleep};

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
        loop {
            match self.socket.accept() {
                Ok((socket, input, output)) => {
                    let peer = SocketAddr::from(([127, 0, 0, 1], 0));
                    return TcpConn::from_parts(input, output, socket, peer);
                }
                Err(ErrorCode::WouldBlock) => ready(self.socket.subscribe()).await,
                Err(e) => panic!("accept: {e:?}"),
            }
        }
    }
}

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

/// `race` itself is tested in smtp-proto (`client::future`); this is the executor waking for the
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
