//! How a connection reaches the SMTP server: directly or through a proxy ([`Proxy`]: SOCKS5,
//! HTTP CONNECT), from a chosen local address or the system's. Whatever the route, TLS (implicit
//! or STARTTLS) runs end to end with the SMTP server, and the certificate is checked for the
//! SMTP server's name, never the proxy's.

use std::io;
use std::net::SocketAddr;

use smtp_proto::connect::{Proxy, Route, open_tunnel};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use crate::transport::TokioTransport;

/// A tunnel to `host:port` through `proxy` over `socket` (connected to the proxy): the engine's
/// [`open_tunnel`] (SOCKS5 or HTTP CONNECT) over the still-plain transport, which reads no more
/// than the handshake asks for, so not a byte of the tunnel is taken.
async fn tunnel(proxy: &Proxy, socket: TcpStream, host: &str, port: u16) -> io::Result<TcpStream> {
    let mut transport = TokioTransport::plain(socket);
    open_tunnel(&mut transport, proxy, host, port).await?;
    Ok(transport
        .into_plain()
        .expect("open_tunnel leaves the transport plain"))
}

/// A TCP connection to `host:port` along `route` (through its proxy, from its local address),
/// with Nagle's algorithm off. The caller bounds it (`ConnectClock::step`) and says when that
/// bound ends (`until`), which the host's addresses share.
pub(crate) async fn connect(
    route: &Route,
    host: &str,
    port: u16,
    until: Instant,
) -> io::Result<TcpStream> {
    let host = Route::dial_host(host);
    let stream = match &route.proxy {
        None => tcp(route, host, port, until).await?,
        Some(proxy) => {
            let socket = tcp(route, proxy.host(), proxy.port(), until)
                .await
                .map_err(|e| proxy.unreachable(e))?;
            tunnel(proxy, socket, host, port).await?
        }
    };
    // Without this every command that fits in one segment waits for the previous ACK
    // (~40 ms per round trip on loopback with delayed ACKs).
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Resolve `host` and connect to the first address that answers, from the local address, each
/// within its share of the time left until `until`.
async fn tcp(route: &Route, host: &str, port: u16, until: Instant) -> io::Result<TcpStream> {
    let host = Route::dial_host(host);
    let addrs = route.reachable(host, tokio::net::lookup_host((host, port)).await?.collect())?;
    first_to_answer(&addrs, until, |addr| tcp_to(route, addr))
        .await
        .map_err(|e| e.unwrap_or_else(|| io::Error::other("no address to connect to")))
}

/// `connect` to each of `addrs` in turn until one answers, each within its share of the time
/// left ([`Route::address_share`]): an address that never answers leaves the next its turn.
/// The last error (`None`: no address at all) when none answers.
async fn first_to_answer<T, F: Future<Output = io::Result<T>>>(
    addrs: &[SocketAddr],
    until: Instant,
    mut connect: impl FnMut(SocketAddr) -> F,
) -> Result<T, Option<io::Error>> {
    let mut last = None;
    for (i, &addr) in addrs.iter().enumerate() {
        if i + 1 == addrs.len() {
            // The last one has all that is left: the caller's own bound ends it, with its own
            // error (the step's timeout, not this function's).
            return connect(addr).await.map_err(Some);
        }
        let left = until.saturating_duration_since(Instant::now());
        let share = Route::address_share(left, addrs.len() - i);
        match tokio::time::timeout(share, connect(addr)).await {
            Ok(Ok(connected)) => return Ok(connected),
            Ok(Err(e)) => last = Some(e),
            Err(_) => {
                last = Some(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{addr} did not answer within {} ms", share.as_millis()),
                ));
            }
        }
    }
    Err(last)
}

async fn tcp_to(route: &Route, addr: SocketAddr) -> io::Result<TcpStream> {
    let Some(local) = route.bind_for(addr)? else {
        return TcpStream::connect(addr).await;
    };
    let socket = if local.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(local)?;
    socket.connect(addr).await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Of two addresses, the first that never answers is given up after half the time left,
    /// and the second gets its turn (the first used to hold the whole connect step).
    #[tokio::test(start_paused = true)]
    async fn an_address_that_never_answers_leaves_the_next_its_turn() {
        let addrs: Vec<SocketAddr> = ["[2001:db8::1]:25", "192.0.2.1:25"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let start = Instant::now();
        let until = start + Duration::from_secs(30);
        let connected = first_to_answer(&addrs, until, |addr| async move {
            if addr.is_ipv6() {
                std::future::pending::<()>().await;
            }
            Ok(addr)
        })
        .await;
        assert_eq!(connected.unwrap(), addrs[1]);
        assert_eq!(start.elapsed(), Duration::from_secs(15));
        // The last one is not bounded here (the caller's step is): its own error comes back.
        let refused = first_to_answer(&addrs, until, |addr| async move {
            if addr.is_ipv6() {
                std::future::pending::<()>().await;
            }
            Err::<(), _>(io::Error::from(io::ErrorKind::ConnectionRefused))
        })
        .await
        .unwrap_err()
        .unwrap();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        // Half of the 15 s that were left.
        assert_eq!(start.elapsed(), Duration::from_millis(22_500));
    }
}
