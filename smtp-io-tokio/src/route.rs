//! How a connection reaches the SMTP server: directly or through a proxy ([`Proxy`]: SOCKS5,
//! HTTP CONNECT), from a chosen local address or the system's. Whatever the route, TLS (implicit
//! or STARTTLS) runs end to end with the SMTP server, and the certificate is checked for the
//! SMTP server's name, never the proxy's.

use std::io;
use std::net::SocketAddr;

use smtp_proto::connect::{Proxy, Route, open_tunnel};
use tokio::net::{TcpSocket, TcpStream};

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
/// with Nagle's algorithm off. Unbounded: the caller bounds it (`ConnectClock::step`).
pub(crate) async fn connect(route: &Route, host: &str, port: u16) -> io::Result<TcpStream> {
    let host = Route::dial_host(host);
    let stream = match &route.proxy {
        None => tcp(route, host, port).await?,
        Some(proxy) => {
            let socket = tcp(route, proxy.host(), proxy.port())
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

/// Resolve `host` and connect to the first address that answers, from the local address.
async fn tcp(route: &Route, host: &str, port: u16) -> io::Result<TcpStream> {
    let host = Route::dial_host(host);
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        match tcp_to(route, addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host} has no address to connect to (from the local address asked for)"),
        )
    }))
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
