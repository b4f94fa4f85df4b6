//! A TCP connection over `wasi:sockets`: name lookup, connect, and non-blocking reads and writes
//! that wait on pollables (see [`reactor`](super::reactor)).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use smtp_proto::connect::Route;
use wasip2::io::streams::{InputStream, OutputStream, StreamError};
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::ip_name_lookup::resolve_addresses;
use wasip2::sockets::network::{
    ErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
    Network,
};
use wasip2::sockets::tcp::{ShutdownType, TcpSocket};
use wasip2::sockets::tcp_create_socket::create_tcp_socket;

use std::time::Duration;

use smtp_proto::future::{Either, race};

use super::reactor::{now, ready, sleep};

/// The most bytes one read asks the host for.
pub(crate) const READ_CHUNK: u64 = 16 * 1024 + 512;

/// An open TCP connection. Field order is drop order: the streams are children of the socket and
/// must go first.
pub(crate) struct TcpConn {
    input: InputStream,
    output: OutputStream,
    socket: TcpSocket,
    peer: SocketAddr,
}

/// A `wasi:sockets` error code as an `io::Error` with the matching kind.
pub(crate) fn socket_error(what: &str, code: ErrorCode) -> io::Error {
    use io::ErrorKind as K;
    let kind = match code {
        ErrorCode::ConnectionRefused => K::ConnectionRefused,
        ErrorCode::ConnectionReset => K::ConnectionReset,
        ErrorCode::ConnectionAborted => K::ConnectionAborted,
        ErrorCode::Timeout => K::TimedOut,
        ErrorCode::AccessDenied => K::PermissionDenied,
        ErrorCode::NotSupported => K::Unsupported,
        ErrorCode::InvalidArgument => K::InvalidInput,
        ErrorCode::OutOfMemory => K::OutOfMemory,
        ErrorCode::WouldBlock => K::WouldBlock,
        ErrorCode::AddressInUse => K::AddrInUse,
        ErrorCode::AddressNotBindable => K::AddrNotAvailable,
        ErrorCode::RemoteUnreachable => K::HostUnreachable,
        ErrorCode::NameUnresolvable | ErrorCode::PermanentResolverFailure => K::NotFound,
        _ => K::Other,
    };
    io::Error::new(
        kind,
        format!("{what}: {} ({})", code.message(), code.name()),
    )
}

fn to_wasi(ip: IpAddr) -> IpAddress {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            IpAddress::Ipv4((a, b, c, d))
        }
        IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.segments();
            IpAddress::Ipv6((a, b, c, d, e, f, g, h))
        }
    }
}

fn to_std(ip: IpAddress) -> IpAddr {
    match ip {
        IpAddress::Ipv4((a, b, c, d)) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
        }
    }
}

/// `addr` as a `wasi:sockets` address (no flow label, no scope).
fn socket_address(addr: SocketAddr) -> IpSocketAddress {
    match to_wasi(addr.ip()) {
        IpAddress::Ipv4(address) => IpSocketAddress::Ipv4(Ipv4SocketAddress {
            port: addr.port(),
            address,
        }),
        IpAddress::Ipv6(address) => IpSocketAddress::Ipv6(Ipv6SocketAddress {
            port: addr.port(),
            address,
            flow_info: 0,
            scope_id: 0,
        }),
    }
}

/// Bind `socket` to `local` (port 0: the host picks the port), so that the connection made next
/// leaves from `local`.
async fn bind(network: &Network, socket: &TcpSocket, local: SocketAddr) -> io::Result<()> {
    let what = || format!("binding to the local address {}", local.ip());
    socket
        .start_bind(network, socket_address(local))
        .map_err(|e| socket_error(&what(), e))?;
    loop {
        match socket.finish_bind() {
            Ok(()) => return Ok(()),
            Err(ErrorCode::WouldBlock) => ready(socket.subscribe()).await,
            Err(e) => return Err(socket_error(&what(), e)),
        }
    }
}

/// The addresses of `host`: an IP literal as is, a name through `wasi:sockets/ip-name-lookup`.
async fn resolve(network: &Network, host: &str) -> io::Result<Vec<IpAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let what = || format!("resolving {host}");
    let stream = resolve_addresses(network, host).map_err(|e| socket_error(&what(), e))?;
    let mut found = Vec::new();
    loop {
        match stream.resolve_next_address() {
            Ok(Some(ip)) => found.push(to_std(ip)),
            Ok(None) => break,
            Err(ErrorCode::WouldBlock) => ready(stream.subscribe()).await,
            Err(e) => return Err(socket_error(&what(), e)),
        }
    }
    if found.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host} has no address to connect to"),
        ));
    }
    Ok(found)
}

impl TcpConn {
    /// Resolve `host` and connect to the first of its addresses that accepts, from the route's
    /// local address when it has one (bound to it, port 0, before connecting; an address of
    /// the other family is skipped with an `AddrNotAvailable` error naming both). The route's
    /// proxy is the caller's to use. Not bounded in time: the caller races it with a timer,
    /// and says when that ends (`until`, on [`now`](super::reactor::now)'s clock) for the
    /// addresses to share it ([`Route::address_share`]): one that never answers then leaves
    /// the next its turn.
    pub(crate) async fn connect(
        host: &str,
        port: u16,
        route: &Route,
        until: Option<Duration>,
    ) -> io::Result<TcpConn> {
        let host = Route::dial_host(host);
        let network = instance_network();
        let resolved = resolve(&network, host).await?;
        let addrs = route.reachable(
            host,
            resolved.into_iter().map(|ip| (ip, port).into()).collect(),
        )?;
        let mut last = None;
        for (i, &peer) in addrs.iter().enumerate() {
            let attempt = TcpConn::connect_addr(&network, peer, route);
            let result = match until {
                // The last address has all that is left: the caller's bound ends it.
                Some(until) if i + 1 < addrs.len() => {
                    let left = until.saturating_sub(now());
                    let share = Route::address_share(left, addrs.len() - i);
                    match race(attempt, sleep(share)).await {
                        Either::Left(result) => result,
                        Either::Right(()) => Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("{peer} did not answer within {} ms", share.as_millis()),
                        )),
                    }
                }
                _ => attempt.await,
            };
            match result {
                Ok(conn) => return Ok(conn),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no address to connect to")))
    }

    async fn connect_addr(
        network: &Network,
        peer: SocketAddr,
        route: &Route,
    ) -> io::Result<TcpConn> {
        let what = || format!("connecting to {peer}");
        let local = route.bind_for(peer)?;
        let family = match peer.ip() {
            IpAddr::V4(_) => IpAddressFamily::Ipv4,
            IpAddr::V6(_) => IpAddressFamily::Ipv6,
        };
        let socket = create_tcp_socket(family).map_err(|e| socket_error(&what(), e))?;
        if let Some(local) = local {
            bind(network, &socket, local).await?;
        }
        socket
            .start_connect(network, socket_address(peer))
            .map_err(|e| socket_error(&what(), e))?;
        loop {
            match socket.finish_connect() {
                Ok((input, output)) => {
                    return Ok(TcpConn {
                        input,
                        output,
                        socket,
                        peer,
                    });
                }
                Err(ErrorCode::WouldBlock) => ready(socket.subscribe()).await,
                Err(e) => return Err(socket_error(&what(), e)),
            }
        }
    }

    /// A connection from its parts (tests: the server side of an accepted socket).
    #[cfg(test)]
    pub(crate) fn from_parts(
        input: InputStream,
        output: OutputStream,
        socket: TcpSocket,
        peer: SocketAddr,
    ) -> TcpConn {
        TcpConn {
            input,
            output,
            socket,
            peer,
        }
    }

    /// The server's address.
    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Read what has arrived, at most `max` bytes, waiting until something has; an empty vector
    /// means the peer closed. Cancel-safe: bytes are taken from the host only when this returns.
    pub(crate) async fn read(&mut self, max: u64) -> io::Result<Vec<u8>> {
        loop {
            match self.input.read(max) {
                Ok(bytes) if bytes.is_empty() => ready(self.input.subscribe()).await,
                Ok(bytes) => return Ok(bytes),
                Err(StreamError::Closed) => return Ok(Vec::new()),
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        format!("reading from {}: {}", self.peer, e.to_debug_string()),
                    ));
                }
            }
        }
    }

    fn write_error(&self, e: StreamError) -> io::Error {
        match e {
            StreamError::Closed => io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("writing to {}: the connection is closed", self.peer),
            ),
            StreamError::LastOperationFailed(e) => io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("writing to {}: {}", self.peer, e.to_debug_string()),
            ),
        }
    }

    /// Write a prefix of `buf` (as much as the host takes now, at least one byte), waiting until
    /// it takes some. Returns how many bytes were written.
    pub(crate) async fn write_some(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.output.check_write() {
                Ok(0) => ready(self.output.subscribe()).await,
                Ok(permit) => {
                    let n = usize::try_from(permit).unwrap_or(usize::MAX).min(buf.len());
                    self.output
                        .write(&buf[..n])
                        .map_err(|e| self.write_error(e))?;
                    return Ok(n);
                }
                Err(e) => return Err(self.write_error(e)),
            }
        }
    }

    /// Push what was written to the network and wait until the host has done it.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        self.output.flush().map_err(|e| self.write_error(e))?;
        loop {
            // After a flush, `check-write` reports 0 until the flush is done (or an error).
            match self.output.check_write() {
                Ok(0) => ready(self.output.subscribe()).await,
                Ok(_) => return Ok(()),
                Err(e) => return Err(self.write_error(e)),
            }
        }
    }

    /// Write all of `buf` and flush it.
    pub(crate) async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.write_some(buf).await?;
            buf = &buf[n..];
        }
        self.flush().await
    }

    /// Shut both directions down (best effort: the peer may be gone already).
    pub(crate) fn shutdown(&mut self) -> io::Result<()> {
        self.socket
            .shutdown(ShutdownType::Both)
            .map_err(|e| socket_error("closing the connection", e))
    }
}
