//! [`Proxy`]: a SOCKS5 or HTTP CONNECT proxy to reach the SMTP server through, its URL, and the
//! HTTP CONNECT exchange as bytes (the request, and `ConnectAnswer` reading the answer's head);
//! [`ProxyHandshake`](super::ProxyHandshake) drives it, and the SOCKS5 handshake (`socks5.rs`),
//! for every adapter. The sockets stay in the adapters; TLS always runs end to end with the
//! SMTP server, never with the proxy.
use std::fmt;
use std::io;
use std::sync::Arc;

use base64::Engine as _;

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use crate::secret::Secret;

use super::url::{decode, split_host_port};

/// The most bytes of an HTTP proxy's answer to CONNECT taken before giving up on it.
pub const MAX_CONNECT_ANSWER: usize = 8 * 1024;

/// Where a [`ProxyHandshake`](super::ProxyHandshake) stands after [`feed`](super::ProxyHandshake::feed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum TunnelProgress {
    /// Not done: write what [`poll_transmit`](super::ProxyHandshake::poll_transmit) hands out, if
    /// anything, then read [`wants`](super::ProxyHandshake::wants) bytes.
    Continue,
    /// The proxy opened the tunnel: every byte read from the socket from now on is the SMTP
    /// server's.
    Open,
}

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
            .field("user", &self.user())
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
    #[error(
        "the proxy URL needs a host (an IPv6 address in brackets) and a port from 1 to 65535, \
         and nothing after them but a /"
    )]
    Address,
    /// The user or password holds a bad percent escape or a control character, or an HTTP
    /// proxy's user holds a `:` (Basic authentication splits the pair at its first `:`).
    #[error(
        "the proxy URL's user or password is badly encoded (or an HTTP proxy's user holds a ':')"
    )]
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
        // No path, query or fragment: an `@` in one must never pass for the end of a user and
        // password (`http://proxy:3128#@elsewhere:8080` names proxy, as any URL parser reads it).
        if rest.contains(['/', '?', '#']) {
            return Err(ProxyUrlError::Address);
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (host, port) = split_host_port(hostport).map_err(|_| ProxyUrlError::Address)?;
        let port = port.ok_or(ProxyUrlError::Address)?;
        let mut proxy = Proxy::new(kind, host, port);
        if let Some(info) = userinfo {
            let (user, password) = info.split_once(':').unwrap_or((info, ""));
            let user = decode(user).ok_or(ProxyUrlError::Userinfo)?;
            let password = decode(password).ok_or(ProxyUrlError::Userinfo)?;
            // RFC 7617 2: the proxy reads `user:password` up to its first `:`, so a user with
            // one would log in as someone else, the rest of the name in the password.
            if kind == ProxyKind::HttpConnect && user.contains(':') {
                return Err(ProxyUrlError::Userinfo);
            }
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

    /// The proxy's host (a name or an IP address, without brackets).
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

    /// Whether a password is set (for a CLI that takes it from the environment otherwise).
    pub fn has_password(&self) -> bool {
        self.credentials.as_ref().is_some_and(|c| !c.1.is_empty())
    }

    /// The error for this proxy not answering a connection (`error`, of its kind), naming the
    /// proxy: "cannot reach the proxy host:port: ...". Never its credentials.
    pub fn unreachable(&self, error: io::Error) -> io::Error {
        io::Error::new(
            error.kind(),
            format!(
                "cannot reach the proxy {}:{}: {error}",
                self.host, self.port
            ),
        )
    }

    /// The user and password to log in with (the password only as a [`Secret`]), as
    /// the SOCKS5 handshake sends them.
    pub fn credentials(&self) -> Option<(&str, &Secret)> {
        self.credentials
            .as_deref()
            .map(|(user, password)| (user.as_str(), password))
    }

    /// The CONNECT request for a tunnel to `host:port` (with Basic credentials when given), as
    /// a [`Secret`]: it may hold the proxy's password. A host that would put a space, a control
    /// character, CR or LF into the request is refused.
    pub(crate) fn connect_request(&self, host: &str, port: u16) -> io::Result<Secret> {
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
        let mut request = Secret::from(format!(
            "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
        ));
        if let Some((user, password)) = self.credentials() {
            // Set with `with_credentials` (the URL refuses it): as in `parse`, RFC 7617 2.
            if user.contains(':') {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "an HTTP proxy's user cannot hold a ':' (Basic authentication)",
                ));
            }
            let mut pair = Secret::from(user);
            pair.extend_from_slice(b":");
            pair.extend_from_slice(password.expose());
            let token =
                Secret::from(base64::engine::general_purpose::STANDARD.encode(pair.expose()));
            request.extend_from_slice(b"Proxy-Authorization: Basic ");
            request.extend_from_slice(token.expose());
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"\r\n");
        Ok(request)
    }
}

/// The head of an HTTP proxy's answer to CONNECT, taken one byte at a time, so that not a byte
/// of the tunnel behind it is read: [`push`](ConnectAnswer::push) says when it is complete and
/// whether the tunnel is open. At most [`MAX_CONNECT_ANSWER`] bytes.
#[derive(Debug, Default)]
pub(crate) struct ConnectAnswer {
    head: Vec<u8>,
}

impl ConnectAnswer {
    /// An answer not yet begun.
    pub(crate) fn new() -> ConnectAnswer {
        ConnectAnswer::default()
    }

    /// Take the answer's next byte: `None` while its head goes on; then `Ok` when the proxy
    /// opened the tunnel (a `2xx`), or the refusal as an I/O error (`PermissionDenied` for a
    /// `407`, `ConnectionRefused` otherwise, `InvalidData` for a head past the limit) naming
    /// the status line, control characters left out.
    pub(crate) fn push(&mut self, byte: u8) -> Option<io::Result<()>> {
        if self.head.len() >= MAX_CONNECT_ANSWER {
            return Some(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the HTTP proxy's answer to CONNECT is too long",
            )));
        }
        if byte == b'\n' && self.head.last() != Some(&b'\r') {
            // Lines end with CRLF; a bare LF would leave the head's end unseen, and the
            // server's greeting taken into it until the timeout.
            return Some(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the HTTP proxy's answer to CONNECT has a bare LF (not HTTP/1.1 line ends)",
            )));
        }
        self.head.push(byte);
        if !self.head.ends_with(b"\r\n\r\n") {
            return None;
        }
        let status_line = self.head.split(|&b| b == b'\r').next().unwrap_or_default();
        let status_line = String::from_utf8_lossy(status_line);
        let status = status_line.split(' ').nth(1).unwrap_or("");
        // A 2xx status: three digits, the first a 2 (RFC 9110 section 15).
        let success = status.len() == 3
            && status.starts_with('2')
            && status.bytes().all(|b| b.is_ascii_digit());
        if status_line.starts_with("HTTP/1.") && success {
            return Some(Ok(()));
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
        Some(Err(io::Error::new(
            kind,
            format!("the HTTP proxy refused the tunnel: {shown}"),
        )))
    }
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
            ("http://me%3Aadmin:pw@h:1", ProxyUrlError::Userinfo),
            ("socks5://::1:1080", ProxyUrlError::Address),
            ("http://2001:db8::1:3128", ProxyUrlError::Address),
            ("socks5://[evil.example]:1080", ProxyUrlError::Address),
            ("socks5://evil:25:1080", ProxyUrlError::Address),
            ("http://proxy:+3128", ProxyUrlError::Address),
        ] {
            assert_eq!(Proxy::parse(bad).err(), Some(want), "{bad}");
        }
    }

    /// An `@` after the authority (in a path, a query or a fragment) is never read as the end
    /// of a user and password: such URLs are refused, where they used to name the host after
    /// the `@` (found in review; `url` reads `proxy.corp` as the host of the first).
    #[test]
    fn an_at_sign_past_the_authority_never_moves_the_proxy() {
        for bad in [
            "http://proxy.corp:3128#@evil.example:8080",
            "http://proxy.corp:3128/#@evil.example:8080",
            "http://u:pw@proxy.corp:3128/#@evil.example:8080",
            "http://proxy.corp:3128?@evil.example:8080",
            "socks5://proxy.corp:1080/x@evil.example:1080",
        ] {
            assert_eq!(
                Proxy::parse(bad).err(),
                Some(ProxyUrlError::Address),
                "{bad}"
            );
        }
        let p = Proxy::parse("socks5://Proxy.Corp:1080/").unwrap();
        assert_eq!((p.host(), p.port()), ("proxy.corp", 1080));
    }

    #[test]
    fn the_connect_request_carries_basic_credentials_and_refuses_line_breaks() {
        let plain = Proxy::http("proxy", 3128).connect_request("mx.example", 587);
        assert_eq!(
            plain.unwrap().expose(),
            b"CONNECT mx.example:587 HTTP/1.1\r\nHost: mx.example:587\r\n\r\n"
        );
        let v6 = Proxy::http("proxy", 3128)
            .connect_request("::1", 25)
            .unwrap();
        assert!(v6.expose().starts_with(b"CONNECT [::1]:25 HTTP/1.1\r\n"));
        let with = Proxy::http("proxy", 3128)
            .with_credentials("me", "pw")
            .connect_request("mx.example", 25)
            .unwrap();
        // "me:pw" in Base64.
        let header: &[u8] = b"\r\nProxy-Authorization: Basic bWU6cHc=\r\n\r\n";
        assert!(with.expose().ends_with(header));
        // A user with a `:` would be read as another user (RFC 7617 2): refused.
        let colon = Proxy::http("proxy", 3128).with_credentials("me:admin", "pw");
        let refused = colon.connect_request("mx.example", 25);
        assert_eq!(
            refused.err().map(|e| e.kind()),
            Some(io::ErrorKind::InvalidInput)
        );
        for host in ["mx.example\r\nX-Evil: 1", "mx example", "mx\0"] {
            let refused = Proxy::http("proxy", 3128).connect_request(host, 25);
            assert_eq!(
                refused.err().map(|e| e.kind()),
                Some(io::ErrorKind::InvalidInput)
            );
        }
    }

    fn answer(bytes: &[u8]) -> Vec<Option<io::ErrorKind>> {
        let mut answer = ConnectAnswer::new();
        bytes
            .iter()
            .filter_map(|&b| answer.push(b))
            .map(|r| r.err().map(|e| e.kind()))
            .collect()
    }

    #[test]
    fn the_connect_answer_is_complete_at_its_blank_line() {
        assert_eq!(
            answer(b"HTTP/1.1 200 Connection established\r\n\r\n"),
            [None]
        );
        assert_eq!(
            answer(b"HTTP/1.1 407 Proxy Authentication Required\r\nX: y\r\n\r\n"),
            [Some(io::ErrorKind::PermissionDenied)]
        );
        assert_eq!(
            answer(b"HTTP/1.0 403 Forbidden\r\n\r\n"),
            [Some(io::ErrorKind::ConnectionRefused)]
        );
        assert_eq!(
            answer(b"SSH-2.0-OpenSSH\r\n\r\n"),
            [Some(io::ErrorKind::ConnectionRefused)]
        );
        // Only a three-digit 2xx status opens the tunnel.
        for bad in [
            &b"HTTP/1.1 2xx-junk\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
        ] {
            assert_eq!(answer(bad), [Some(io::ErrorKind::ConnectionRefused)]);
        }
        // Not complete: nothing said yet.
        assert!(answer(b"HTTP/1.1 200 OK\r\n").is_empty());
        let endless = vec![b'a'; MAX_CONNECT_ANSWER + 1];
        assert_eq!(answer(&endless), [Some(io::ErrorKind::InvalidData)]);
        // A bare LF is refused at once: the head's end would never be seen (the server's
        // greeting was taken into it, until the connect timeout).
        let bare = answer(b"HTTP/1.0 200 OK\n\n220 mx ESMTP\r\n");
        assert_eq!(bare.first(), Some(&Some(io::ErrorKind::InvalidData)));
    }
}
