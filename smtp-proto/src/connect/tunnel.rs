//! [`ProxyHandshake`]: opening a tunnel through a proxy of either kind (SOCKS5, HTTP CONNECT)
//! as bytes, behind one calling order, and [`open_tunnel`]: that handshake driven over any
//! [`Transport`]. An adapter that dials TCP itself writes one loop (or calls
//! [`open_tunnel`]) whatever the proxy's kind.

use std::io;

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use crate::secret::Secret;
use crate::transport::Transport;

use super::Route;
use super::proxy::{ConnectAnswer, Proxy, ProxyKind, TunnelProgress};
use super::socks5::{MAX_SOCKS5_READ, Socks5Handshake};

/// The most bytes [`ProxyHandshake::wants`] ever asks for at once, so an adapter's read buffer
/// of this size is always enough.
pub const MAX_PROXY_READ: usize = MAX_SOCKS5_READ;

/// The HTTP CONNECT exchange: the request once, then the answer's head a byte at a time.
#[derive(Debug)]
struct HttpConnect {
    /// The request, until handed out (it may hold the proxy password).
    request: Option<Secret>,
    answer: ConnectAnswer,
    /// `Some` once the answer's head is complete: whether the tunnel opened.
    ended: Option<bool>,
}

#[derive(Debug)]
enum Kind {
    Socks5(Socks5Handshake),
    HttpConnect(HttpConnect),
}

/// The client side of opening a tunnel to `host:port` through a [`Proxy`], whatever its kind;
/// no I/O. The calling order is the same for both kinds: write what
/// [`poll_transmit`](Self::poll_transmit) hands out, read exactly [`wants`](Self::wants) bytes
/// (or fewer) and [`feed`](Self::feed) them, until [`TunnelProgress::Open`] or an error.
///
/// Guarantees:
/// - [`wants`](Self::wants) is exact: reading no more than it says never takes a byte of the
///   tunnel (an HTTP proxy's answer is therefore taken a byte at a time, its end being unknown);
/// - the proxy's credentials only ever sit in a [`Secret`] and never show in `Debug` or errors;
/// - bounded: a SOCKS5 handshake holds a few hundred bytes, an HTTP answer at most
///   [`MAX_CONNECT_ANSWER`](super::MAX_CONNECT_ANSWER);
/// - errors are `io::Error`s naming the proxy: `PermissionDenied` for refused or missing
///   credentials, `ConnectionRefused` (and the other kinds SOCKS5 reply codes map to) for a
///   refused tunnel, `InvalidData` for an answer that is not the protocol, `InvalidInput` for a
///   host that cannot be put into the request or a caller that breaks the calling order. After
///   an error every later `feed` fails too.
///
/// ```
/// use smtp_proto::connect::{Proxy, ProxyHandshake, TunnelProgress};
///
/// let proxy = Proxy::parse("http://proxy.internal:3128").unwrap();
/// let mut handshake = ProxyHandshake::new(&proxy, "smtp.example.com", 587).unwrap();
/// let request = handshake.poll_transmit().unwrap();
/// assert!(request.expose().starts_with(b"CONNECT smtp.example.com:587 HTTP/1.1\r\n"));
/// let mut progress = TunnelProgress::Continue;
/// for byte in b"HTTP/1.1 200 Connection established\r\n\r\n" {
///     assert_eq!(handshake.wants(), 1);
///     progress = handshake.feed(&[*byte]).unwrap();
/// }
/// assert_eq!(progress, TunnelProgress::Open);
/// assert!(handshake.is_open());
/// ```
#[derive(Debug)]
pub struct ProxyHandshake {
    kind: Kind,
}

impl ProxyHandshake {
    /// A handshake through `proxy` to `host:port`. `host` is a name (resolved by the proxy) or
    /// an IP address, with or without brackets. Refused before any I/O, as `InvalidInput`: a
    /// host that would put a space, a control character, CR or LF into an HTTP request, or a
    /// name, user or password past SOCKS5's 255 bytes.
    pub fn new(proxy: &Proxy, host: &str, port: u16) -> io::Result<ProxyHandshake> {
        let host = Route::dial_host(host);
        let kind = match proxy.kind() {
            ProxyKind::Socks5 => Kind::Socks5(Socks5Handshake::new(proxy, host, port)?),
            ProxyKind::HttpConnect => Kind::HttpConnect(HttpConnect {
                request: Some(proxy.connect_request(host, port)?),
                answer: ConnectAnswer::new(),
                ended: None,
            }),
        };
        Ok(ProxyHandshake { kind })
    }

    /// The bytes to write to the proxy next, handed out once (a [`Secret`]: they may hold the
    /// proxy password); `None` when there is nothing to write. Write them all before reading.
    pub fn poll_transmit(&mut self) -> Option<Secret> {
        match &mut self.kind {
            Kind::Socks5(socks5) => socks5.poll_transmit(),
            Kind::HttpConnect(http) => http.request.take(),
        }
    }

    /// Exactly how many bytes of the proxy's answer to read next, at most
    /// [`MAX_PROXY_READ`]; 0 once the tunnel is open or the handshake failed.
    pub fn wants(&self) -> usize {
        match &self.kind {
            Kind::Socks5(socks5) => socks5.wants(),
            Kind::HttpConnect(http) => usize::from(http.ended.is_none()),
        }
    }

    /// Whether the proxy opened the tunnel.
    pub fn is_open(&self) -> bool {
        match &self.kind {
            Kind::Socks5(socks5) => socks5.is_open(),
            Kind::HttpConnect(http) => http.ended == Some(true),
        }
    }

    /// Take bytes of the proxy's answer: any number up to [`wants`](Self::wants), after
    /// [`poll_transmit`](Self::poll_transmit)'s bytes were taken. `Ok(Open)` when the tunnel is
    /// open, `Ok(Continue)` while the handshake goes on, or the error that ends it.
    pub fn feed(&mut self, bytes: &[u8]) -> io::Result<TunnelProgress> {
        let http = match &mut self.kind {
            Kind::Socks5(socks5) => return socks5.feed(bytes),
            Kind::HttpConnect(http) => http,
        };
        let misuse = |why: &str| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the HTTP proxy: {why}"),
            )
        };
        match http.ended {
            Some(true) if bytes.is_empty() => return Ok(TunnelProgress::Open),
            Some(true) => return Err(misuse("bytes were fed after the tunnel opened")),
            Some(false) => return Err(misuse("the handshake has already failed")),
            None => {}
        }
        if http.request.is_some() && !bytes.is_empty() {
            return Err(misuse("an answer was fed before the request was written"));
        }
        if bytes.len() > 1 {
            return Err(misuse("more bytes were fed than the handshake asked for"));
        }
        let Some(&byte) = bytes.first() else {
            return Ok(TunnelProgress::Continue);
        };
        match http.answer.push(byte) {
            None => Ok(TunnelProgress::Continue),
            Some(Ok(())) => {
                http.ended = Some(true);
                Ok(TunnelProgress::Open)
            }
            Some(Err(e)) => {
                http.ended = Some(false);
                Err(e)
            }
        }
    }

    /// The error for a proxy that closed the connection before the tunnel opened.
    pub fn closed_early(&self) -> io::Error {
        let who = match self.kind {
            Kind::Socks5(_) => "SOCKS5",
            Kind::HttpConnect(_) => "HTTP",
        };
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the {who} proxy closed the connection before the tunnel opened"),
        )
    }
}

/// Open a tunnel to `host:port` through `proxy` over `transport`, connected to the proxy and
/// not yet encrypted: write what the [`ProxyHandshake`] says and read exactly what it asks for,
/// so the first byte [`Transport::read`] gives afterwards is the SMTP server's (for implicit
/// TLS, start the handshake next). Unbounded in time: the caller bounds it (an adapter runs it
/// inside [`ConnectClock::step`](super::ConnectClock::step)).
pub async fn open_tunnel<T: Transport>(
    transport: &mut T,
    proxy: &Proxy,
    host: &str,
    port: u16,
) -> io::Result<()> {
    let mut handshake = ProxyHandshake::new(proxy, host, port)?;
    let mut answer = [0u8; MAX_PROXY_READ];
    loop {
        if let Some(bytes) = handshake.poll_transmit() {
            transport.write_all(bytes.expose()).await?;
        }
        let want = handshake.wants();
        let n = transport.read(&mut answer[..want]).await?;
        if n == 0 {
            return Err(handshake.closed_early());
        }
        if handshake.feed(&answer[..n.min(want)])? == TunnelProgress::Open {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(result: io::Result<TunnelProgress>) -> Option<io::ErrorKind> {
        result.err().map(|e| e.kind())
    }

    /// An HTTP handshake whose request was written.
    fn http(proxy: &Proxy) -> ProxyHandshake {
        let mut handshake = ProxyHandshake::new(proxy, "mx.example", 25).unwrap();
        assert!(handshake.poll_transmit().is_some());
        assert!(handshake.poll_transmit().is_none());
        handshake
    }

    #[test]
    fn an_http_answer_is_taken_a_byte_at_a_time_until_its_blank_line() {
        let mut handshake = http(&Proxy::http("proxy", 3128));
        for &byte in b"HTTP/1.1 200 OK\r\n\r" {
            assert_eq!(handshake.wants(), 1);
            assert_eq!(handshake.feed(&[byte]).unwrap(), TunnelProgress::Continue);
        }
        assert!(!handshake.is_open());
        assert_eq!(handshake.feed(b"\n").unwrap(), TunnelProgress::Open);
        assert!(handshake.is_open());
        assert_eq!(handshake.wants(), 0);
        // Nothing more is taken: a byte of the tunnel fed by mistake is refused.
        assert_eq!(
            kind(handshake.feed(b"2")),
            Some(io::ErrorKind::InvalidInput)
        );
    }

    #[test]
    fn an_http_refusal_ends_the_handshake_for_good() {
        let mut handshake = http(&Proxy::http("proxy", 3128));
        let mut last = Ok(TunnelProgress::Continue);
        for &byte in b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n" {
            last = handshake.feed(&[byte]);
        }
        assert_eq!(kind(last), Some(io::ErrorKind::PermissionDenied));
        assert_eq!(handshake.wants(), 0);
        assert!(!handshake.is_open());
        assert_eq!(
            kind(handshake.feed(b"H")),
            Some(io::ErrorKind::InvalidInput)
        );
    }

    #[test]
    fn the_calling_order_is_checked() {
        let proxy = Proxy::http("proxy", 3128);
        let mut unwritten = ProxyHandshake::new(&proxy, "mx.example", 25).unwrap();
        assert_eq!(
            kind(unwritten.feed(b"H")),
            Some(io::ErrorKind::InvalidInput)
        );
        let mut handshake = http(&proxy);
        assert_eq!(
            kind(handshake.feed(b"HT")),
            Some(io::ErrorKind::InvalidInput)
        );
        assert_eq!(handshake.feed(b"").unwrap(), TunnelProgress::Continue);
    }

    #[test]
    fn both_kinds_take_a_bracketed_address() {
        let mut http = ProxyHandshake::new(&Proxy::http("proxy", 3128), "[::1]", 25).unwrap();
        let request = http.poll_transmit().unwrap();
        assert!(
            request
                .expose()
                .starts_with(b"CONNECT [::1]:25 HTTP/1.1\r\n")
        );
        let mut socks5 = ProxyHandshake::new(&Proxy::socks5("proxy", 1080), "[::1]", 25).unwrap();
        assert_eq!(socks5.poll_transmit().unwrap().expose(), [5, 1, 0]);
        assert_eq!(socks5.feed(&[5, 0]).unwrap(), TunnelProgress::Continue);
        let connect = socks5.poll_transmit().unwrap();
        // An IPv6 address (type 4), not a name.
        assert_eq!(&connect.expose()[..4], [5, 1, 0, 4]);
        assert_eq!(connect.expose().len(), 4 + 16 + 2);
    }

    #[test]
    fn what_is_refused_before_any_io() {
        let http = Proxy::http("proxy", 3128);
        let socks5 = Proxy::socks5("proxy", 1080);
        let long = "a".repeat(256);
        for (proxy, host) in [(&http, "mx.example\r\nX: 1"), (&socks5, long.as_str())] {
            let refused = ProxyHandshake::new(proxy, host, 25).err().map(|e| e.kind());
            assert_eq!(refused, Some(io::ErrorKind::InvalidInput), "{host:?}");
        }
    }

    #[test]
    fn the_password_never_shows_and_an_early_close_names_the_proxy() {
        for proxy in [Proxy::http("proxy", 3128), Proxy::socks5("proxy", 1080)] {
            let proxy = proxy.with_credentials("me", "hunter2");
            let handshake = ProxyHandshake::new(&proxy, "mx.example", 25).unwrap();
            assert!(!format!("{handshake:?}").contains("hunter2"));
            let closed = handshake.closed_early();
            assert_eq!(closed.kind(), io::ErrorKind::UnexpectedEof);
            let who = match proxy.kind() {
                ProxyKind::Socks5 => "SOCKS5",
                ProxyKind::HttpConnect => "HTTP",
            };
            assert!(closed.to_string().contains(who), "{closed}");
        }
    }
}
