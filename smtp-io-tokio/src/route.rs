//! How a connection reaches the SMTP server: directly or through a proxy ([`Proxy`]: SOCKS5,
//! HTTP CONNECT), from a chosen local address or the system's. Whatever the route, TLS (implicit
//! or STARTTLS) runs end to end with the SMTP server, and the certificate is checked for the
//! SMTP server's name, never the proxy's.

use std::io;
use std::net::{IpAddr, SocketAddr};

use smtp_proto::connect::{ConnectAnswer, Proxy, ProxyKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A tunnel to `host:port` through `proxy`, over `socket` (connected to the proxy).
async fn tunnel(proxy: &Proxy, socket: TcpStream, host: &str, port: u16) -> io::Result<TcpStream> {
    match proxy.kind() {
        ProxyKind::Socks5 => {
            let target = (host, port);
            let stream = match proxy.credentials() {
                None => tokio_socks::tcp::Socks5Stream::connect_with_socket(socket, target).await,
                Some((user, password)) => {
                    let password = password.expose_str().unwrap_or_default();
                    tokio_socks::tcp::Socks5Stream::connect_with_password_and_socket(
                        socket, target, user, password,
                    )
                    .await
                }
            };
            stream.map(|s| s.into_inner()).map_err(socks_error)
        }
        ProxyKind::HttpConnect => http_connect(proxy, socket, host, port).await,
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

/// A SOCKS error as an I/O error of its own kind.
fn socks_error(e: tokio_socks::Error) -> io::Error {
    use tokio_socks::Error as E;
    let kind = match &e {
        E::Io(io) => io.kind(),
        E::PasswordAuthFailure(_) | E::NoAcceptableAuthMethods => io::ErrorKind::PermissionDenied,
        E::ConnectionRefused | E::ConnectionNotAllowedByRuleset => io::ErrorKind::ConnectionRefused,
        E::HostUnreachable | E::NetworkUnreachable => io::ErrorKind::HostUnreachable,
        E::TtlExpired => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, format!("the SOCKS5 proxy: {e}"))
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
