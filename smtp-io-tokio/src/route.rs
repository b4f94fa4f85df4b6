//! How a connection reaches the SMTP server: directly or through a proxy ([`Proxy`]: SOCKS5,
//! HTTP CONNECT), from a chosen local address or the system's. Whatever the route, TLS (implicit
//! or STARTTLS) runs end to end with the SMTP server, and the certificate is checked for the
//! SMTP server's name, never the proxy's.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use base64::Engine as _;
use smtp_proto::Secret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

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

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.credentials.as_ref().map(|c| c.0.as_str()))
            .finish_non_exhaustive()
    }
}

/// Why a proxy URL was refused (never repeating its password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyUrlError {
    /// Not `socks5://` or `http://`.
    #[error("the proxy must be socks5://[user@]host:port or http://[user@]host:port")]
    Scheme,
    /// No host, or no valid port.
    #[error("the proxy URL needs a host and a port from 1 to 65535")]
    Address,
    /// The user or password holds a bad percent escape or a control character.
    #[error("the proxy URL's user or password is badly encoded")]
    Userinfo,
}

impl Proxy {
    /// A SOCKS5 proxy at `host:port`.
    pub fn socks5(host: impl Into<String>, port: u16) -> Proxy {
        Proxy::new(ProxyKind::Socks5, host.into(), port)
    }

    /// An HTTP proxy at `host:port`, used through CONNECT.
    pub fn http(host: impl Into<String>, port: u16) -> Proxy {
        Proxy::new(ProxyKind::HttpConnect, host.into(), port)
    }

    fn new(kind: ProxyKind, host: String, port: u16) -> Proxy {
        Proxy {
            kind,
            host,
            port,
            credentials: None,
        }
    }

    /// Log in to the proxy as `user` with `password` (taken over, wiped when the last copy of
    /// the proxy goes).
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
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "socks5" | "socks5h" => ProxyKind::Socks5,
            "http" => ProxyKind::HttpConnect,
            _ => return Err(ProxyUrlError::Scheme),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, port) = v6.split_once("]:").ok_or(ProxyUrlError::Address)?;
            (host, port)
        } else {
            hostport.rsplit_once(':').ok_or(ProxyUrlError::Address)?
        };
        let port = match port.parse::<u16>() {
            Ok(0) | Err(_) => return Err(ProxyUrlError::Address),
            Ok(port) => port,
        };
        let valid_host = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
        if !valid_host {
            return Err(ProxyUrlError::Address);
        }
        let mut proxy = Proxy::new(kind, host.to_owned(), port);
        if let Some(info) = userinfo {
            let (user, password) = info.split_once(':').unwrap_or((info, ""));
            let user = decode(user).ok_or(ProxyUrlError::Userinfo)?;
            let password = decode(password).ok_or(ProxyUrlError::Userinfo)?;
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

    /// The user it logs in as, if any.
    pub fn user(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.0.as_str())
    }

    /// Whether a password is set (for a CLI that takes it from the environment otherwise).
    pub fn has_password(&self) -> bool {
        self.credentials.as_ref().is_some_and(|c| !c.1.is_empty())
    }

    /// A tunnel to `host:port` through this proxy, over `socket` (connected to the proxy).
    async fn tunnel(&self, socket: TcpStream, host: &str, port: u16) -> io::Result<TcpStream> {
        match self.kind {
            ProxyKind::Socks5 => {
                let target = (host, port);
                let stream = match &self.credentials {
                    None => {
                        tokio_socks::tcp::Socks5Stream::connect_with_socket(socket, target).await
                    }
                    Some(c) => {
                        let password = c.1.expose_str().unwrap_or_default();
                        tokio_socks::tcp::Socks5Stream::connect_with_password_and_socket(
                            socket, target, &c.0, password,
                        )
                        .await
                    }
                };
                stream.map(|s| s.into_inner()).map_err(socks_error)
            }
            ProxyKind::HttpConnect => self.http_connect(socket, host, port).await,
        }
    }

    async fn http_connect(
        &self,
        mut socket: TcpStream,
        host: &str,
        port: u16,
    ) -> io::Result<TcpStream> {
        // The target is a host name or an IP address: no CR, LF or space can reach the request
        // (the connect options checked it; an IPv6 address goes in brackets).
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        if authority.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the SMTP server's name cannot go into a CONNECT request",
            ));
        }
        let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(c) = &self.credentials {
            let mut pair = Secret::from(c.0.as_str());
            pair.extend_from_slice(b":");
            pair.extend_from_slice(c.1.expose());
            let token =
                Secret::from(base64::engine::general_purpose::STANDARD.encode(pair.expose()));
            request.push_str("Proxy-Authorization: Basic ");
            request.push_str(token.expose_str().unwrap_or_default());
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        let sent = socket.write_all(request.as_bytes()).await;
        // The request may hold the proxy password: wipe it.
        drop(Secret::from(request));
        sent?;
        // Read the answer's head byte by byte: not a byte of the tunnel may be taken from it.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() >= MAX_CONNECT_ANSWER {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the HTTP proxy's answer to CONNECT is too long",
                ));
            }
            let mut byte = [0u8; 1];
            if socket.read(&mut byte).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the HTTP proxy closed the connection before answering CONNECT",
                ));
            }
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
        let kind = match status {
            "407" => io::ErrorKind::PermissionDenied,
            _ => io::ErrorKind::ConnectionRefused,
        };
        Err(io::Error::new(
            kind,
            format!("the HTTP proxy refused the tunnel: {shown}"),
        ))
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

/// Percent-decode; `None` on a bad escape, invalid UTF-8 or a control character.
fn decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(text.get(i + 1..i + 3)?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(out).ok()?;
    (!text.chars().any(char::is_control)).then_some(text)
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
                let socket = self.tcp(&proxy.host, proxy.port).await.map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot reach the proxy {}:{}: {e}", proxy.host, proxy.port),
                    )
                })?;
                proxy.tunnel(socket, host, port).await?
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls() {
        let p = Proxy::parse("socks5://127.0.0.1:1080").unwrap();
        assert_eq!(
            (p.kind(), p.host.as_str(), p.port, p.user()),
            (ProxyKind::Socks5, "127.0.0.1", 1080, None)
        );
        let p = Proxy::parse("http://me%40corp:p%3Ass@proxy.corp.example:3128/").unwrap();
        assert_eq!(
            (p.kind(), p.host.as_str(), p.port),
            (ProxyKind::HttpConnect, "proxy.corp.example", 3128)
        );
        assert_eq!(p.user(), Some("me@corp"));
        assert!(p.has_password());
        assert!(!format!("{p:?}").contains("p:ss"));
        let p = Proxy::parse("socks5://user@[::1]:1080").unwrap();
        assert_eq!(
            (p.host.as_str(), p.user(), p.has_password()),
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
            ("http://u%0d%0a:p@h:1", ProxyUrlError::Userinfo),
        ] {
            assert_eq!(Proxy::parse(bad).err(), Some(want), "{bad}");
        }
    }
}
