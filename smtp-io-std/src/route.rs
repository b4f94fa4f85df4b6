//! How a connection reaches the SMTP server: directly or through a proxy ([`Proxy`]: SOCKS5,
//! HTTP CONNECT), from a chosen local address or the system's. Whatever the route, TLS
//! (implicit or STARTTLS) runs end to end with the SMTP server, and the certificate is checked
//! for the SMTP server's name, never the proxy's. Every socket call of the route is bounded by
//! what is left of the connect step (its timeout and the session's deadline).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use smtp_proto::{Instant, Secret};

use crate::client::now;

/// The most bytes of an HTTP proxy's answer to CONNECT read before giving up on it.
const MAX_CONNECT_ANSWER: usize = 8 * 1024;

/// A proxy to reach the SMTP server through. `Debug` never shows its password.
#[derive(Clone)]
pub struct Proxy {
    kind: ProxyKind,
    host: String,
    port: u16,
    credentials: Option<Arc<(String, Secret)>>,
}

/// Which proxy protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyKind {
    /// SOCKS5 (RFC 1928), with user and password (RFC 1929) when given. The proxy resolves the
    /// SMTP server's name.
    Socks5,
    /// An HTTP proxy's CONNECT tunnel, with Basic authentication when given.
    HttpConnect,
}

/// Why a proxy URL was refused (never repeating its password).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyUrlError {
    /// Not `socks5://` or `http://`.
    Scheme,
    /// No host, or no valid port.
    Address,
    /// The user or password holds a bad percent escape or a control character.
    Userinfo,
}

impl fmt::Display for ProxyUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProxyUrlError::Scheme => {
                "the proxy must be socks5://[user@]host:port or http://[user@]host:port"
            }
            ProxyUrlError::Address => "the proxy URL needs a host and a port from 1 to 65535",
            ProxyUrlError::Userinfo => "the proxy URL's user or password is badly encoded",
        })
    }
}

impl std::error::Error for ProxyUrlError {}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user())
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// A SOCKS5 proxy at `host:port`.
    pub fn socks5(host: impl Into<String>, port: u16) -> Proxy {
        Proxy {
            kind: ProxyKind::Socks5,
            host: host.into(),
            port,
            credentials: None,
        }
    }

    /// An HTTP proxy at `host:port`, used through CONNECT.
    pub fn http(host: impl Into<String>, port: u16) -> Proxy {
        Proxy {
            kind: ProxyKind::HttpConnect,
            ..Proxy::socks5(host, port)
        }
    }

    /// Log in to the proxy as `user` with `password` (kept as a [`Secret`], wiped when the
    /// last copy of the proxy goes).
    pub fn with_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Proxy {
        self.credentials = Some(Arc::new((user.into(), Secret::from(password.into()))));
        self
    }

    /// `socks5://[user[:password]@]host:port` or `http://[user[:password]@]host:port` (user and
    /// password percent-encoded). Keep a password out of URLs where you can:
    /// [`with_credentials`](Self::with_credentials) takes one from elsewhere.
    pub fn parse(url: &str) -> Result<Proxy, ProxyUrlError> {
        let (scheme, rest) = url.split_once("://").ok_or(ProxyUrlError::Scheme)?;
        let http = match scheme.to_ascii_lowercase().as_str() {
            "socks5" | "socks5h" => false,
            "http" => true,
            _ => return Err(ProxyUrlError::Scheme),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (userinfo, address) = match rest.rsplit_once('@') {
            Some((info, address)) => (Some(info), address),
            None => (None, rest),
        };
        let (host, port) = match address.strip_prefix('[') {
            Some(v6) => v6.split_once("]:").ok_or(ProxyUrlError::Address)?,
            None => address.rsplit_once(':').ok_or(ProxyUrlError::Address)?,
        };
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or(ProxyUrlError::Address)?;
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b));
        if !host_ok {
            return Err(ProxyUrlError::Address);
        }
        let mut proxy = if http {
            Proxy::http(host, port)
        } else {
            Proxy::socks5(host, port)
        };
        if let Some(info) = userinfo {
            let (user, password) = info.split_once(':').unwrap_or((info, ""));
            let user = percent_decode(user).ok_or(ProxyUrlError::Userinfo)?;
            let password = percent_decode(password).ok_or(ProxyUrlError::Userinfo)?;
            if !user.is_empty() {
                proxy = proxy.with_credentials(user, password);
            }
        }
        Ok(proxy)
    }

    /// The protocol.
    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    /// The proxy's host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user it logs in as, if any.
    pub fn user(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.0.as_str())
    }

    /// Whether a password is set.
    pub fn has_password(&self) -> bool {
        self.credentials.as_ref().is_some_and(|c| !c.1.is_empty())
    }
}

/// Percent-decode; `None` on a bad escape, invalid UTF-8 or a control character.
fn percent_decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.extend_from_slice(&rest.as_bytes()[..at]);
        let hex = rest.get(at + 1..at + 3)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        out.push(u8::from_str_radix(hex, 16).ok()?);
        rest = &rest[at + 3..];
    }
    out.extend_from_slice(rest.as_bytes());
    let text = String::from_utf8(out).ok()?;
    (!text.chars().any(char::is_control)).then_some(text)
}

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

    fn read_exact(self, socket: &mut TcpStream, mut buf: &mut [u8], who: &str) -> io::Result<()> {
        while !buf.is_empty() {
            socket.set_read_timeout(Some(self.left()?))?;
            match socket.read(buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{who} closed the connection in its handshake"),
                    ));
                }
                Ok(n) => buf = &mut buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// How to reach a server: the proxy (if any) and the local address to connect from (if any).
#[derive(Debug, Clone, Default)]
pub(crate) struct Route {
    pub(crate) proxy: Option<Proxy>,
    pub(crate) local_address: Option<IpAddr>,
}

impl Route {
    /// A TCP connection to `host:port` (through the proxy, from the local address), every
    /// socket call bounded by `until`. A timeout is an error of kind `TimedOut` or `WouldBlock`.
    pub(crate) fn connect(&self, host: &str, port: u16, until: Until) -> io::Result<TcpStream> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match &self.proxy {
            None => self.tcp(host, port, until),
            Some(proxy) => {
                let socket = self.tcp(&proxy.host, proxy.port, until).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot reach the proxy {}:{}: {e}", proxy.host, proxy.port),
                    )
                })?;
                match proxy.kind {
                    ProxyKind::Socks5 => socks5(proxy, socket, host, port, until),
                    ProxyKind::HttpConnect => http_connect(proxy, socket, host, port, until),
                }
            }
        }
    }

    /// Resolve `host` and connect to the first address that answers, from the local address.
    fn tcp(&self, host: &str, port: u16, until: Until) -> io::Result<TcpStream> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let mut last = None;
        for addr in (host, port).to_socket_addrs()? {
            match self.tcp_to(addr, until.left()?) {
                Ok(stream) => return Ok(stream),
                Err(e) if crate::stream::is_timeout(&e) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} has no address to connect to"),
            )
        }))
    }

    fn tcp_to(&self, addr: SocketAddr, limit: Duration) -> io::Result<TcpStream> {
        let Some(local) = self.local_address else {
            return TcpStream::connect_timeout(&addr, limit);
        };
        if local.is_ipv4() != addr.is_ipv4() {
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("the local address {local} cannot reach {addr}"),
            ));
        }
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.bind(&SocketAddr::new(local, 0).into())?;
        socket.connect_timeout(&addr.into(), limit)?;
        Ok(socket.into())
    }
}

/// RFC 1928 (and RFC 1929 for the user and password): a tunnel to `host:port`, the name
/// resolved by the proxy.
fn socks5(
    proxy: &Proxy,
    mut socket: TcpStream,
    host: &str,
    port: u16,
    until: Until,
) -> io::Result<TcpStream> {
    let who = "the SOCKS5 proxy";
    let refused = |kind: io::ErrorKind, why: &str| io::Error::new(kind, format!("{who}: {why}"));
    // Methods: no authentication, and user/password when we have them.
    let methods: &[u8] = if proxy.credentials.is_some() {
        &[5, 2, 0, 2]
    } else {
        &[5, 1, 0]
    };
    until.write_all(&mut socket, methods)?;
    let mut chosen = [0u8; 2];
    until.read_exact(&mut socket, &mut chosen, who)?;
    match chosen {
        [5, 0] => {}
        [5, 2] => {
            let Some(c) = proxy.credentials.as_deref() else {
                return Err(refused(
                    io::ErrorKind::PermissionDenied,
                    "asks for a user and password, and none was given",
                ));
            };
            let (user, password) = (c.0.as_bytes(), c.1.expose());
            let (Ok(ulen), Ok(plen)) = (u8::try_from(user.len()), u8::try_from(password.len()))
            else {
                return Err(refused(
                    io::ErrorKind::InvalidInput,
                    "the user or password is longer than 255 bytes",
                ));
            };
            let mut login = Secret::from(&[1, ulen][..]);
            login.extend_from_slice(user);
            login.extend_from_slice(&[plen]);
            login.extend_from_slice(password);
            until.write_all(&mut socket, login.expose())?;
            let mut status = [0u8; 2];
            until.read_exact(&mut socket, &mut status, who)?;
            if status[1] != 0 {
                return Err(refused(
                    io::ErrorKind::PermissionDenied,
                    "refused the user and password",
                ));
            }
        }
        [5, 0xff] => {
            return Err(refused(
                io::ErrorKind::PermissionDenied,
                "accepts none of the authentication methods offered",
            ));
        }
        _ => {
            return Err(refused(
                io::ErrorKind::InvalidData,
                "answered the greeting with something that is not SOCKS5",
            ));
        }
    }
    let mut request = vec![5, 1, 0];
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            request.push(1);
            request.extend_from_slice(&ip.octets());
        }
        Ok(IpAddr::V6(ip)) => {
            request.push(4);
            request.extend_from_slice(&ip.octets());
        }
        Err(_) => {
            let name = u8::try_from(host.len())
                .map_err(|_| refused(io::ErrorKind::InvalidInput, "the host name is too long"))?;
            request.extend_from_slice(&[3, name]);
            request.extend_from_slice(host.as_bytes());
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    until.write_all(&mut socket, &request)?;
    let mut head = [0u8; 4];
    until.read_exact(&mut socket, &mut head, who)?;
    if head[0] != 5 {
        return Err(refused(
            io::ErrorKind::InvalidData,
            "answered CONNECT with something that is not SOCKS5",
        ));
    }
    if head[1] != 0 {
        let (kind, why) = match head[1] {
            2 => (
                io::ErrorKind::ConnectionRefused,
                "connection not allowed by its rules",
            ),
            3 => (io::ErrorKind::NetworkUnreachable, "network unreachable"),
            4 => (io::ErrorKind::HostUnreachable, "host unreachable"),
            5 => (
                io::ErrorKind::ConnectionRefused,
                "connection refused by the server",
            ),
            6 => (io::ErrorKind::TimedOut, "TTL expired"),
            7 | 8 => (io::ErrorKind::Unsupported, "request not supported"),
            _ => (io::ErrorKind::ConnectionRefused, "general failure"),
        };
        return Err(refused(kind, why));
    }
    // The address it bound: skipped (IPv4, IPv6 or a name, then the port).
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut len = [0u8; 1];
            until.read_exact(&mut socket, &mut len, who)?;
            usize::from(len[0]) + 2
        }
        _ => {
            return Err(refused(
                io::ErrorKind::InvalidData,
                "answered with an unknown address type",
            ));
        }
    };
    let mut bound = [0u8; 258];
    until.read_exact(&mut socket, &mut bound[..rest], who)?;
    Ok(socket)
}

/// An HTTP CONNECT tunnel to `host:port`, with Basic credentials when given.
fn http_connect(
    proxy: &Proxy,
    mut socket: TcpStream,
    host: &str,
    port: u16,
    until: Until,
) -> io::Result<TcpStream> {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    // No CR, LF, space or control may reach the request line.
    if authority.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the SMTP server's name cannot go into a CONNECT request",
        ));
    }
    let mut request = Secret::from(format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
    ));
    if let Some(c) = proxy.credentials.as_deref() {
        let mut pair = Secret::from(c.0.as_str());
        pair.extend_from_slice(b":");
        pair.extend_from_slice(c.1.expose());
        let token = Secret::from(base64::engine::general_purpose::STANDARD.encode(pair.expose()));
        request.extend_from_slice(b"Proxy-Authorization: Basic ");
        request.extend_from_slice(token.expose());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    until.write_all(&mut socket, request.expose())?;
    // The answer's head, a byte at a time: not a byte of the tunnel may be taken from it.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_CONNECT_ANSWER {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the HTTP proxy's answer to CONNECT is too long",
            ));
        }
        let mut byte = [0u8; 1];
        until.read_exact(&mut socket, &mut byte, "the HTTP proxy")?;
        head.push(byte[0]);
    }
    let status_line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let status_line = String::from_utf8_lossy(status_line);
    let status = status_line.split(' ').nth(1).unwrap_or("");
    if status_line.starts_with("HTTP/1.") && status.starts_with('2') {
        return Ok(socket);
    }
    let shown: String = status_line
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect();
    let kind = if status == "407" {
        io::ErrorKind::PermissionDenied
    } else {
        io::ErrorKind::ConnectionRefused
    };
    Err(io::Error::new(
        kind,
        format!("the HTTP proxy refused the tunnel: {shown}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls() {
        let p = Proxy::parse("socks5://127.0.0.1:1080").unwrap();
        assert_eq!(
            (p.kind(), p.host(), p.port(), p.user()),
            (ProxyKind::Socks5, "127.0.0.1", 1080, None)
        );
        let p = Proxy::parse("http://me%40corp:p%3Ass@proxy.corp.example:3128/").unwrap();
        assert_eq!(
            (p.kind(), p.host(), p.port()),
            (ProxyKind::HttpConnect, "proxy.corp.example", 3128)
        );
        assert_eq!(p.user(), Some("me@corp"));
        assert!(p.has_password());
        assert!(!format!("{p:?}").contains("p:ss"));
        let p = Proxy::parse("socks5://user@[::1]:1080").unwrap();
        assert_eq!(
            (p.host(), p.user(), p.has_password()),
            ("::1", Some("user"), false)
        );
        for (bad, want) in [
            ("ftp://h:1", ProxyUrlError::Scheme),
            ("h:1", ProxyUrlError::Scheme),
            ("socks5://h", ProxyUrlError::Address),
            ("socks5://h:0", ProxyUrlError::Address),
            ("http://:8080", ProxyUrlError::Address),
            ("http://bad host:8080", ProxyUrlError::Address),
            ("http://u:p%zz@h:1", ProxyUrlError::Userinfo),
            ("http://u:p%4@h:1", ProxyUrlError::Userinfo),
            ("http://u:p%+4@h:1", ProxyUrlError::Userinfo),
            ("http://u%0d%0a:p@h:1", ProxyUrlError::Userinfo),
        ] {
            assert_eq!(Proxy::parse(bad).err(), Some(want), "{bad}");
        }
    }
}
