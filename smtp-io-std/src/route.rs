//! How a connection reaches the SMTP server: directly or through a proxy ([`Proxy`]: SOCKS5,
//! HTTP CONNECT), from a chosen local address or the system's. Whatever the route, TLS
//! (implicit or STARTTLS) runs end to end with the SMTP server, and the certificate is checked
//! for the SMTP server's name, never the proxy's. Every socket call of the route is bounded by
//! what is left of the connect step (its timeout and the session's deadline).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use smtp_proto::Instant;
use smtp_proto::connect::{MAX_PROXY_READ, Proxy, ProxyHandshake, Route, TunnelProgress};

use crate::transport::now;

/// The end of the connect step: every socket call of the route is bounded by the time left.
#[derive(Clone, Copy)]
pub(crate) struct Until(pub(crate) Instant);

impl Until {
    /// The time left, or a `TimedOut` error once there is none.
    fn left(self) -> io::Result<Duration> {
        let left = self.0.saturating_duration_since(now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        Ok(left)
    }

    fn write_all(self, socket: &mut TcpStream, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            socket.set_write_timeout(Some(self.left()?))?;
            match socket.write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// One read, bounded by the time left; `Ok(0)` at the end of the stream.
    fn read(self, socket: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            socket.set_read_timeout(Some(self.left()?))?;
            match socket.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                result => return result,
            }
        }
    }
}

/// A TCP connection to `host:port` along `route` (through its proxy, from its local address),
/// every socket call bounded by `until`. A timeout is an error of kind `TimedOut` or
/// `WouldBlock`.
pub(crate) fn connect(route: &Route, host: &str, port: u16, until: Until) -> io::Result<TcpStream> {
    let host = Route::dial_host(host);
    match &route.proxy {
        None => tcp(route, host, port, until),
        Some(proxy) => {
            let socket =
                tcp(route, proxy.host(), proxy.port(), until).map_err(|e| proxy.unreachable(e))?;
            tunnel(proxy, socket, host, port, until)
        }
    }
}

/// Resolve `host` and connect to the first address that answers, from the local address.
fn tcp(route: &Route, host: &str, port: u16, until: Until) -> io::Result<TcpStream> {
    let host = Route::dial_host(host);
    let addrs = route.reachable(host, resolve(host, port, until)?)?;
    first_to_answer(&addrs, until, |addr, limit| tcp_to(route, addr, limit))
        .map_err(|e| e.unwrap_or_else(|| io::Error::other("no address to connect to")))
}

/// `connect` to each of `addrs` in turn until one answers, each within its share of the time
/// left ([`Route::address_share`]): an address that never answers leaves the next its turn.
/// The last error (`None`: no address at all) when none answers.
fn first_to_answer<T>(
    addrs: &[SocketAddr],
    until: Until,
    mut connect: impl FnMut(SocketAddr, Duration) -> io::Result<T>,
) -> Result<T, Option<io::Error>> {
    let mut last = None;
    for (i, &addr) in addrs.iter().enumerate() {
        let left = until.left().map_err(Some)?;
        match connect(addr, Route::address_share(left, addrs.len() - i)) {
            Ok(connected) => return Ok(connected),
            Err(e) => last = Some(e),
        }
    }
    Err(last)
}

/// The addresses of `host:port`, within the time left. An IP address is taken as it is; a name
/// goes to the system's resolver on a thread of its own, so a lookup that outlasts `until` is a
/// `TimedOut` error here (the thread ends when the resolver answers; nothing waits for it).
fn resolve(host: &str, port: u16, until: Until) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let name = host.to_owned();
    within_time(until, move || {
        (name.as_str(), port)
            .to_socket_addrs()
            .map(Iterator::collect)
    })
}

/// `lookup`'s answer, run on a thread of its own, or `TimedOut` once `until` passes first.
fn within_time<R: Send + 'static>(
    until: Until,
    lookup: impl FnOnce() -> io::Result<R> + Send + 'static,
) -> io::Result<R> {
    let (answer, answered) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("smtp-io-std resolver".to_owned())
        .spawn(move || {
            // The caller may have given up; then nobody listens.
            let _ = answer.send(lookup());
        })?;
    match answered.recv_timeout(until.left()?) {
        Ok(result) => result,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the name lookup took longer than the connect timeout",
        )),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            Err(io::Error::other("the name lookup ended without an answer"))
        }
    }
}

fn tcp_to(route: &Route, addr: SocketAddr, limit: Duration) -> io::Result<TcpStream> {
    let Some(local) = route.bind_for(addr)? else {
        return TcpStream::connect_timeout(&addr, limit);
    };
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.bind(&local.into())?;
    socket.connect_timeout(&addr.into(), limit)?;
    Ok(socket.into())
}

/// A tunnel to `host:port` through `proxy` over `socket` (connected to the proxy): the
/// handshake is the engine's ([`ProxyHandshake`], SOCKS5 or HTTP CONNECT); this writes what it
/// says and reads no more than it asks for, so not a byte of the tunnel is taken.
fn tunnel(
    proxy: &Proxy,
    mut socket: TcpStream,
    host: &str,
    port: u16,
    until: Until,
) -> io::Result<TcpStream> {
    let mut handshake = ProxyHandshake::new(proxy, host, port)?;
    let mut answer = [0u8; MAX_PROXY_READ];
    loop {
        // What is written may hold the proxy password: a Secret, wiped when dropped.
        if let Some(bytes) = handshake.poll_transmit() {
            until.write_all(&mut socket, bytes.expose())?;
        }
        let n = until.read(&mut socket, &mut answer[..handshake.wants()])?;
        if n == 0 {
            return Err(handshake.closed_early());
        }
        if handshake.feed(&answer[..n])? == TunnelProgress::Open {
            return Ok(socket);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// A lookup that outlasts the connect step is given up at its end, without waiting for
    /// the resolver (it used to be the one wait nothing bounded).
    #[test]
    fn a_slow_name_lookup_ends_with_the_connect_step() {
        let answered = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&answered);
        let slow = move || {
            std::thread::sleep(Duration::from_secs(5));
            flag.store(true, Ordering::SeqCst);
            Ok(Vec::<SocketAddr>::new())
        };
        let until = Until(now() + Duration::from_millis(50));
        let err = within_time(until, slow).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(
            !answered.load(Ordering::SeqCst),
            "it waited for the resolver"
        );
    }

    #[test]
    fn a_lookup_in_time_gives_its_answer_and_an_address_needs_none() {
        let until = Until(now() + Duration::from_secs(30));
        let addr: SocketAddr = "127.0.0.1:25".parse().unwrap();
        assert_eq!(within_time(until, move || Ok(vec![addr])).unwrap(), [addr]);
        assert_eq!(
            resolve("::1", 587, until).unwrap(),
            ["[::1]:587".parse().unwrap()]
        );
        let err = within_time(until, || Err::<(), _>(io::ErrorKind::NotFound.into()));
        assert_eq!(err.unwrap_err().kind(), io::ErrorKind::NotFound);
        assert!(!resolve("localhost", 25, until).unwrap().is_empty());
    }

    /// Of two addresses, the first that never answers gets half the time left, and the second
    /// its turn with the rest (the first used to take it all, and end the connect).
    #[test]
    fn an_address_that_never_answers_leaves_the_next_its_turn() {
        let addrs: Vec<SocketAddr> = ["[2001:db8::1]:25", "192.0.2.1:25"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let until = Until(now() + Duration::from_secs(30));
        let mut limits = Vec::new();
        let connected = first_to_answer(&addrs, until, |addr, limit| {
            limits.push(limit);
            match addr {
                SocketAddr::V6(_) => Err(io::ErrorKind::TimedOut.into()),
                SocketAddr::V4(_) => Ok(addr),
            }
        });
        assert_eq!(connected.unwrap(), addrs[1]);
        assert!(limits[0] <= Duration::from_secs(15), "{limits:?}");
        assert!(limits[0] > Duration::from_secs(14), "{limits:?}");
        assert!(limits[1] > Duration::from_secs(29), "{limits:?}");
        let none = first_to_answer(&addrs, until, |_, _| -> io::Result<()> {
            Err(io::ErrorKind::ConnectionRefused.into())
        });
        assert_eq!(
            none.unwrap_err().map(|e| e.kind()),
            Some(io::ErrorKind::ConnectionRefused)
        );
        assert!(
            first_to_answer(&[], until, |_, _| Ok(()))
                .unwrap_err()
                .is_none()
        );
    }
}
