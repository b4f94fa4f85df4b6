//! How a connection reaches the SMTP server: directly or through a proxy ([`Proxy`]: SOCKS5,
//! HTTP CONNECT), from a chosen local address or the system's. Whatever the route, TLS (implicit
//! or STARTTLS) runs end to end with the SMTP server, and the certificate is checked for the
//! SMTP server's name, never the proxy's.

use std::io;
use std::net::{IpAddr, SocketAddr};

use smtp_proto::connect::{
    ConnectAnswer, MAX_SOCKS5_READ, Proxy, ProxyKind, Socks5Handshake, Socks5Progress,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A tunnel to `host:port` through `proxy`, over `socket` (connected to the proxy).
async fn tunnel(proxy: &Proxy, socket: TcpStream, host: &str, port: u16) -> io::Result<TcpStream> {
    match proxy.kind() {
        ProxyKind::Socks5 => socks5(proxy, socket, host, port).await,
        ProxyKind::HttpConnect => http_connect(proxy, socket, host, port).await,
    }
}

/// A SOCKS5 tunnel to `host:port` through `proxy`, the name resolved by the proxy: the
/// handshake is the engine's ([`Socks5Handshake`]); this writes what it says and reads exactly
/// as many bytes as it asks for, so not a byte of the tunnel is taken.
async fn socks5(
    proxy: &Proxy,
    mut socket: TcpStream,
    host: &str,
    port: u16,
) -> io::Result<TcpStream> {
    let mut handshake = Socks5Handshake::new(proxy, host, port)?;
    let mut buf = [0u8; MAX_SOCKS5_READ];
    loop {
        // Credentials, when sent, are in a Secret, wiped when dropped.
        while let Some(bytes) = handshake.poll_transmit() {
            socket.write_all(bytes.expose()).await?;
        }
        let want = handshake.wants().min(buf.len());
        socket.read_exact(&mut buf[..want]).await.map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(
                    e.kind(),
                    "the SOCKS5 proxy closed the connection mid-handshake",
                )
            } else {
                e
            }
        })?;
        if handshake.feed(&buf[..want])? == Socks5Progress::Open {
            return Ok(socket);
        }
    }
}

/// An HTTP CONNECT tunnel to `host:port` through `proxy`: the request and the reading of the
/// answer are the engine's ([`Proxy::connect_request`], [`ConnectAnswer`]).
async fn http_connect(
    proxy: &Proxy,
    mut socket: TcpStream,
    host: &str,
    port: u16,
) -> io::Result<TcpStream> {
    // The request may hold the proxy password: a Secret, wiped when dropped.
    let request = proxy.connect_request(host, port)?;
    socket.write_all(request.expose()).await?;
    drop(request);
    // The answer's head byte by byte: not a byte of the tunnel may be taken from it.
    let mut answer = ConnectAnswer::new();
    loop {
        let mut byte = [0u8; 1];
        if socket.read(&mut byte).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the HTTP proxy closed the connection before answering CONNECT",
            ));
        }
        if let Some(opened) = answer.push(byte[0]) {
            return opened.map(|()| socket);
        }
    }
}

/// How to reach a server: the proxy (if any) and the local address to connect from (if any).
#[derive(Debug, Clone, Default)]
pub(crate) struct Route {
    pub(crate) proxy: Option<Proxy>,
    pub(crate) local_address: Option<IpAddr>,
}

impl Route {
    /// A TCP connection to `host:port` (through the proxy, from the local address), with
    /// Nagle's algorithm off. Unbounded: the caller bounds it (`ConnectClock::step`).
    pub(crate) async fn connect(&self, host: &str, port: u16) -> io::Result<TcpStream> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let stream = match &self.proxy {
            None => self.tcp(host, port).await?,
            Some(proxy) => {
                let socket = self.tcp(proxy.host(), proxy.port()).await.map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "cannot reach the proxy {}:{}: {e}",
                            proxy.host(),
                            proxy.port()
                        ),
                    )
                })?;
                tunnel(proxy, socket, host, port).await?
            }
        };
        // Without this every command that fits in one segment waits for the previous ACK
        // (~40 ms per round trip on loopback with delayed ACKs).
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// Resolve `host` and connect to the first address that answers, from the local address.
    async fn tcp(&self, host: &str, port: u16) -> io::Result<TcpStream> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let mut last = None;
        for addr in tokio::net::lookup_host((host, port)).await? {
            match self.tcp_to(addr).await {
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

    async fn tcp_to(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let Some(local) = self.local_address else {
            return TcpStream::connect(addr).await;
        };
        if local.is_ipv4() != addr.is_ipv4() {
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("the local address {local} cannot reach {addr}"),
            ));
        }
        let socket = if local.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.bind(SocketAddr::new(local, 0))?;
        socket.connect(addr).await
    }
}
