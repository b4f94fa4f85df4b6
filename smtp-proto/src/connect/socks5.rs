//! `Socks5Handshake`: the client side of a SOCKS5 handshake (RFC 1928, with RFC 1929's user
//! and password) as bytes, one of the two kinds [`ProxyHandshake`](super::ProxyHandshake)
//! drives: what to write, exactly how many bytes to read (never a byte of the tunnel behind the
//! handshake), and what the answer means.
use std::fmt;
use std::io;
use std::net::IpAddr;

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use crate::secret::Secret;

use super::proxy::{Proxy, ProxyKind, TunnelProgress};

/// The most bytes [`Socks5Handshake::wants`] ever asks for at once (a bound address given as a
/// name: up to 255 bytes of it, then the port), so an adapter's read buffer of this size is
/// always enough.
pub(crate) const MAX_SOCKS5_READ: usize = 255 + 2;

/// The step the handshake waits in, and so what the proxy's next bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The method the proxy chose (2 bytes).
    Method,
    /// The proxy's verdict on the user and password (2 bytes).
    Login,
    /// The head of the proxy's reply to CONNECT (4 bytes).
    Reply,
    /// The length of the bound address, given as a name (1 byte).
    BoundNameLength,
    /// The bound address and port, skipped (`len` bytes, at most [`MAX_SOCKS5_READ`]).
    Bound { len: usize },
    /// The tunnel is open.
    Open,
    /// The handshake failed; nothing more is taken.
    Failed,
}

impl Step {
    /// How many bytes of the proxy's this step takes in all.
    fn len(self) -> usize {
        match self {
            Step::Method | Step::Login => 2,
            Step::Reply => 4,
            Step::BoundNameLength => 1,
            Step::Bound { len } => len,
            Step::Open | Step::Failed => 0,
        }
    }
}

/// A SOCKS5 client handshake (RFC 1928, RFC 1929) for a tunnel to `host:port`, the name
/// resolved by the proxy; no I/O. Offered methods: no authentication, and user/password when
/// the [`Proxy`] has credentials.
///
/// Guarantees:
/// - the user and password only ever sit in a [`Secret`] (wiped on drop, as soon as the proxy
///   chose a method that does not need them), and never appear in `Debug` or in an error;
/// - [`wants`](Self::wants) is exact: an adapter that reads no more than it says never takes a
///   byte of the tunnel;
/// - bounded: the handshake holds at most the request (262 bytes), the login (513 bytes) and a
///   4-byte head, and never stores the bound address it skips;
/// - it ends in [`TunnelProgress::Open`] or in an I/O error, `the SOCKS5 proxy: ...`, of kind
///   `PermissionDenied` (credentials missing or refused, no acceptable method), `InvalidData`
///   (an answer that is not SOCKS5, an unknown address type), `InvalidInput` (a host name or
///   user or password past 255 bytes, a caller that breaks the calling order), or the kind
///   each RFC 1928 reply code maps to (`ConnectionRefused`, `NetworkUnreachable`,
///   `HostUnreachable`, `TimedOut`, `Unsupported`).
pub(crate) struct Socks5Handshake {
    step: Step,
    /// Bytes to write next, not yet handed out.
    output: Option<Secret>,
    /// RFC 1929's login, kept until the proxy asks for it (or wiped when it does not).
    login: Option<Secret>,
    /// The CONNECT request, written once a method is settled.
    request: Option<Secret>,
    /// The bytes of the current step's answer so far (`Method`, `Login`, `Reply`,
    /// `BoundNameLength`; `Bound` only counts them).
    head: [u8; 4],
    have: usize,
}

impl fmt::Debug for Socks5Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socks5Handshake")
            .field("step", &self.step)
            .field("wants", &self.wants())
            .finish_non_exhaustive()
    }
}

/// An error of the handshake, named for the proxy.
fn refused(kind: io::ErrorKind, why: &str) -> io::Error {
    io::Error::new(kind, format!("the SOCKS5 proxy: {why}"))
}

impl Socks5Handshake {
    /// A handshake through `proxy` (which must be a SOCKS5 one) to `host:port`. `host` is an
    /// IPv4 or IPv6 address (without brackets) or a name the proxy resolves. Refused before
    /// any I/O, as `InvalidInput`: a proxy that is not SOCKS5, a name longer than 255 bytes, a
    /// user or password longer than 255 bytes.
    pub(crate) fn new(proxy: &Proxy, host: &str, port: u16) -> io::Result<Socks5Handshake> {
        if proxy.kind() != ProxyKind::Socks5 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a SOCKS5 proxy",
            ));
        }
        let login = match proxy.credentials() {
            None => None,
            Some((user, password)) => {
                let (user, password) = (user.as_bytes(), password.expose());
                let (Ok(ulen), Ok(plen)) = (u8::try_from(user.len()), u8::try_from(password.len()))
                else {
                    return Err(refused(
                        io::ErrorKind::InvalidInput,
                        "the user or password is longer than 255 bytes",
                    ));
                };
                // Sized up front: the buffer never moves, so no copy of the password is left.
                let mut login = Secret::with_capacity(3 + user.len() + password.len());
                login.extend_from_slice(&[1, ulen]);
                login.extend_from_slice(user);
                login.extend_from_slice(&[plen]);
                login.extend_from_slice(password);
                Some(login)
            }
        };
        let mut request = Vec::with_capacity(4 + 1 + 255 + 2);
        request.extend_from_slice(&[5, 1, 0]);
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
                let len = u8::try_from(host.len()).map_err(|_| {
                    refused(io::ErrorKind::InvalidInput, "the host name is too long")
                })?;
                request.extend_from_slice(&[3, len]);
                request.extend_from_slice(host.as_bytes());
            }
        }
        request.extend_from_slice(&port.to_be_bytes());
        // Methods: no authentication, and user/password when we have them.
        let greeting: &[u8] = if login.is_some() {
            &[5, 2, 0, 2]
        } else {
            &[5, 1, 0]
        };
        Ok(Socks5Handshake {
            step: Step::Method,
            output: Some(Secret::from(greeting)),
            login,
            request: Some(Secret::from(request)),
            head: [0; 4],
            have: 0,
        })
    }

    /// The bytes to write to the proxy next, handed out once (a [`Secret`]: the login holds
    /// the password); `None` when there is nothing to write. Write them all before reading.
    pub(crate) fn poll_transmit(&mut self) -> Option<Secret> {
        self.output.take()
    }

    /// Exactly how many bytes of the proxy's answer to read next, at most
    /// [`MAX_SOCKS5_READ`]; 0 once the tunnel is open or the handshake failed. Reading no more
    /// than this never takes a byte of the tunnel.
    pub(crate) fn wants(&self) -> usize {
        self.step.len() - self.have
    }

    /// Whether the proxy opened the tunnel.
    pub(crate) fn is_open(&self) -> bool {
        self.step == Step::Open
    }

    /// Take bytes of the proxy's answer: any number up to [`wants`](Self::wants), after
    /// [`poll_transmit`](Self::poll_transmit)'s bytes were taken. `Ok(Open)` when the tunnel
    /// is open, `Ok(Continue)` while the handshake goes on, or the error that ends it (see
    /// [`Socks5Handshake`]); after an error, every later call fails too. More bytes than
    /// asked for, or bytes fed before the pending output was taken, are refused as
    /// `InvalidInput`.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> io::Result<TunnelProgress> {
        if self.step == Step::Failed {
            return Err(refused(
                io::ErrorKind::InvalidInput,
                "the handshake has already failed",
            ));
        }
        if self.output.is_some() && !bytes.is_empty() {
            return Err(refused(
                io::ErrorKind::InvalidInput,
                "an answer was fed before the request was written",
            ));
        }
        if bytes.len() > self.wants() {
            return Err(refused(
                io::ErrorKind::InvalidInput,
                "more bytes were fed than the handshake asked for",
            ));
        }
        match self.step {
            Step::Bound { .. } => {}
            Step::Open => return Ok(TunnelProgress::Open),
            _ => self.head[self.have..self.have + bytes.len()].copy_from_slice(bytes),
        }
        self.have += bytes.len();
        if self.wants() > 0 {
            return Ok(TunnelProgress::Continue);
        }
        match self.advance() {
            Ok(()) if self.step == Step::Open => Ok(TunnelProgress::Open),
            Ok(()) => Ok(TunnelProgress::Continue),
            Err(e) => {
                self.step = Step::Failed;
                self.output = None;
                self.login = None;
                self.request = None;
                Err(e)
            }
        }
    }

    /// The current step's answer is complete in `head`: move to the next step.
    fn advance(&mut self) -> io::Result<()> {
        let head = self.head;
        self.have = 0;
        self.step = match self.step {
            Step::Method => match [head[0], head[1]] {
                [5, 0] => {
                    // The password is not needed: wiped now.
                    self.login = None;
                    self.output = self.request.take();
                    Step::Reply
                }
                [5, 2] => {
                    let Some(login) = self.login.take() else {
                        return Err(refused(
                            io::ErrorKind::PermissionDenied,
                            "asks for a user and password, and none was given",
                        ));
                    };
                    self.output = Some(login);
                    Step::Login
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
            },
            Step::Login => {
                if head[1] != 0 {
                    return Err(refused(
                        io::ErrorKind::PermissionDenied,
                        "refused the user and password",
                    ));
                }
                self.output = self.request.take();
                Step::Reply
            }
            Step::Reply => {
                if head[0] != 5 {
                    return Err(refused(
                        io::ErrorKind::InvalidData,
                        "answered CONNECT with something that is not SOCKS5",
                    ));
                }
                if head[1] != 0 {
                    let (kind, why) = reply_error(head[1]);
                    return Err(refused(kind, why));
                }
                // The address it bound: skipped (IPv4, IPv6 or a name, then the port).
                match head[3] {
                    1 => Step::Bound { len: 4 + 2 },
                    4 => Step::Bound { len: 16 + 2 },
                    3 => Step::BoundNameLength,
                    _ => {
                        return Err(refused(
                            io::ErrorKind::InvalidData,
                            "answered with an unknown address type",
                        ));
                    }
                }
            }
            Step::BoundNameLength => Step::Bound {
                len: usize::from(head[0]) + 2,
            },
            Step::Bound { .. } => Step::Open,
            // `wants` is 0 in these: never reached with a complete answer.
            Step::Open | Step::Failed => self.step,
        };
        Ok(())
    }
}

/// What an RFC 1928 reply code (not 0) means, as an I/O error kind and words.
fn reply_error(code: u8) -> (io::ErrorKind, &'static str) {
    match code {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run a handshake against the proxy's answers, one per read: what was written, and how it
    /// ended (`Ok` for an open tunnel, the error otherwise).
    fn run(
        proxy: &Proxy,
        host: &str,
        answers: &[&[u8]],
    ) -> (Vec<Vec<u8>>, io::Result<TunnelProgress>) {
        let mut handshake = Socks5Handshake::new(proxy, host, 25).unwrap();
        let mut written = Vec::new();
        let mut answers = answers.iter();
        loop {
            if let Some(out) = handshake.poll_transmit() {
                written.push(out.expose().to_vec());
            }
            let Some(answer) = answers.next() else {
                return (written, Ok(TunnelProgress::Continue));
            };
            assert!(answer.len() <= handshake.wants(), "{handshake:?}");
            match handshake.feed(answer) {
                Ok(TunnelProgress::Continue) => {}
                Ok(TunnelProgress::Open) => {
                    assert!(handshake.is_open());
                    assert_eq!(handshake.wants(), 0);
                    return (written, Ok(TunnelProgress::Open));
                }
                Err(e) => {
                    assert_eq!(handshake.wants(), 0);
                    assert!(handshake.poll_transmit().is_none());
                    return (written, Err(e));
                }
            }
        }
    }

    fn kind(result: io::Result<TunnelProgress>) -> Option<io::ErrorKind> {
        result.err().map(|e| e.kind())
    }

    const OK_V4: &[u8] = &[5, 0, 0, 1];
    const BOUND_V4: &[u8] = &[127, 0, 0, 1, 0, 25];

    #[test]
    fn no_auth_greeting_and_an_ipv4_request() {
        let proxy = Proxy::socks5("proxy", 1080);
        let (written, end) = run(&proxy, "192.0.2.7", &[&[5, 0], OK_V4, BOUND_V4]);
        assert_eq!(
            written,
            [vec![5, 1, 0], vec![5, 1, 0, 1, 192, 0, 2, 7, 0, 25],]
        );
        assert_eq!(end.unwrap(), TunnelProgress::Open);
    }

    #[test]
    fn user_password_greeting_and_login() {
        let proxy = Proxy::socks5("proxy", 1080).with_credentials("me", "pw");
        let (written, end) = run(&proxy, "192.0.2.7", &[&[5, 2], &[1, 0], OK_V4, BOUND_V4]);
        assert_eq!(
            written,
            [
                vec![5, 2, 0, 2],
                vec![1, 2, b'm', b'e', 2, b'p', b'w'],
                vec![5, 1, 0, 1, 192, 0, 2, 7, 0, 25],
            ]
        );
        assert_eq!(end.unwrap(), TunnelProgress::Open);
        // Offered, but the proxy needs none: no login is written.
        let (written, end) = run(&proxy, "192.0.2.7", &[&[5, 0], OK_V4, BOUND_V4]);
        assert_eq!(written.len(), 2);
        assert_eq!(written[1][..3], [5, 1, 0]);
        assert_eq!(end.unwrap(), TunnelProgress::Open);
    }

    #[test]
    fn ipv6_and_name_requests() {
        let proxy = Proxy::socks5("proxy", 1080);
        let (written, _) = run(&proxy, "2001:db8::1", &[&[5, 0]]);
        let mut want = vec![5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8];
        want.extend_from_slice(&[0; 11]);
        want.extend_from_slice(&[1, 0, 25]);
        assert_eq!(written[1], want);
        let (written, _) = run(&proxy, "mx.example", &[&[5, 0]]);
        let mut want = vec![5, 1, 0, 3, 10];
        want.extend_from_slice(b"mx.example");
        want.extend_from_slice(&[0, 25]);
        assert_eq!(written[1], want);
        // 255 bytes is the most a name can have.
        assert!(Socks5Handshake::new(&proxy, &"a".repeat(255), 25).is_ok());
    }

    #[test]
    fn every_bound_address_is_skipped_to_the_byte() {
        let proxy = Proxy::socks5("proxy", 1080);
        let mut v6 = [0u8; 18];
        v6[15] = 1;
        let (_, end) = run(&proxy, "mx.example", &[&[5, 0], &[5, 0, 0, 4], &v6]);
        assert_eq!(end.unwrap(), TunnelProgress::Open);
        // A name: its length, then the name and port, the longest one asked in one read.
        let mut handshake = Socks5Handshake::new(&proxy, "mx.example", 25).unwrap();
        let _ = handshake.poll_transmit();
        assert_eq!(handshake.wants(), 2);
        assert_eq!(handshake.feed(&[5, 0]).unwrap(), TunnelProgress::Continue);
        let _ = handshake.poll_transmit();
        assert_eq!(handshake.wants(), 4);
        assert_eq!(
            handshake.feed(&[5, 0, 0, 3]).unwrap(),
            TunnelProgress::Continue
        );
        assert_eq!(handshake.wants(), 1);
        assert_eq!(handshake.feed(&[255]).unwrap(), TunnelProgress::Continue);
        assert_eq!(handshake.wants(), MAX_SOCKS5_READ);
        // A byte at a time works the same.
        for left in (1..MAX_SOCKS5_READ).rev() {
            assert_eq!(handshake.feed(b"x").unwrap(), TunnelProgress::Continue);
            assert_eq!(handshake.wants(), left);
        }
        assert_eq!(handshake.feed(b"x").unwrap(), TunnelProgress::Open);
        assert_eq!(handshake.wants(), 0);
        // Not a byte of the tunnel is taken.
        assert_eq!(
            handshake.feed(b"2").err().map(|e| e.kind()),
            Some(io::ErrorKind::InvalidInput)
        );
        assert_eq!(handshake.feed(b"").unwrap(), TunnelProgress::Open);
    }

    #[test]
    fn refusals_of_the_method_and_the_login() {
        let plain = Proxy::socks5("proxy", 1080);
        let with = Proxy::socks5("proxy", 1080).with_credentials("me", "pw");
        for (proxy, answers, want) in [
            (
                &plain,
                &[&[5u8, 2][..]][..],
                io::ErrorKind::PermissionDenied,
            ),
            (&plain, &[&[5, 0xff]], io::ErrorKind::PermissionDenied),
            (&with, &[&[5, 0xff]], io::ErrorKind::PermissionDenied),
            (&with, &[&[5, 2], &[1, 1]], io::ErrorKind::PermissionDenied),
            (&plain, &[&[4, 0]], io::ErrorKind::InvalidData),
            (&plain, &[&[5, 1]], io::ErrorKind::InvalidData),
            (&plain, &[b"HT"], io::ErrorKind::InvalidData),
        ] {
            let (_, end) = run(proxy, "mx.example", answers);
            assert_eq!(kind(end), Some(want), "{answers:?}");
        }
        let (_, end) = run(&plain, "mx.example", &[&[5, 2]]);
        assert_eq!(
            end.unwrap_err().to_string(),
            "the SOCKS5 proxy: asks for a user and password, and none was given"
        );
    }

    #[test]
    fn every_reply_code_maps_to_its_kind() {
        use io::ErrorKind as K;
        let proxy = Proxy::socks5("proxy", 1080);
        for (code, want, words) in [
            (1, K::ConnectionRefused, "general failure"),
            (
                2,
                K::ConnectionRefused,
                "connection not allowed by its rules",
            ),
            (3, K::NetworkUnreachable, "network unreachable"),
            (4, K::HostUnreachable, "host unreachable"),
            (5, K::ConnectionRefused, "connection refused by the server"),
            (6, K::TimedOut, "TTL expired"),
            (7, K::Unsupported, "request not supported"),
            (8, K::Unsupported, "request not supported"),
            (9, K::ConnectionRefused, "general failure"),
            (0xff, K::ConnectionRefused, "general failure"),
        ] {
            let (_, end) = run(&proxy, "mx.example", &[&[5, 0], &[5, code, 0, 1]]);
            let error = end.unwrap_err();
            assert_eq!(error.kind(), want, "{code}");
            assert_eq!(error.to_string(), format!("the SOCKS5 proxy: {words}"));
        }
    }

    #[test]
    fn hostile_answers_to_connect() {
        let proxy = Proxy::socks5("proxy", 1080);
        for reply in [[4u8, 0, 0, 1], [0, 0, 0, 1], [5, 0, 0, 2], [5, 0, 0, 0xff]] {
            let (_, end) = run(&proxy, "mx.example", &[&[5, 0], &reply]);
            assert_eq!(kind(end), Some(io::ErrorKind::InvalidData), "{reply:?}");
        }
        // After an error, nothing more is taken.
        let mut handshake = Socks5Handshake::new(&proxy, "mx.example", 25).unwrap();
        let _ = handshake.poll_transmit();
        assert!(handshake.feed(&[9, 9]).is_err());
        assert!(handshake.feed(&[]).is_err());
        assert_eq!(handshake.wants(), 0);
        // Nor before the request was taken to be written, nor past what it asks for.
        let mut handshake = Socks5Handshake::new(&proxy, "mx.example", 25).unwrap();
        assert_eq!(
            handshake.feed(&[5, 0]).err().map(|e| e.kind()),
            Some(io::ErrorKind::InvalidInput)
        );
        let mut handshake = Socks5Handshake::new(&proxy, "mx.example", 25).unwrap();
        let _ = handshake.poll_transmit();
        assert_eq!(
            handshake.feed(&[5, 0, 5]).err().map(|e| e.kind()),
            Some(io::ErrorKind::InvalidInput)
        );
    }

    #[test]
    fn what_is_refused_before_any_io() {
        let proxy = Proxy::socks5("proxy", 1080);
        let long = "a".repeat(256);
        let error = Socks5Handshake::new(&proxy, &long, 25).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            error.to_string(),
            "the SOCKS5 proxy: the host name is too long"
        );
        for (user, password) in [(long.as_str(), "pw"), ("me", long.as_str())] {
            let proxy = Proxy::socks5("proxy", 1080).with_credentials(user, password);
            let error = Socks5Handshake::new(&proxy, "mx.example", 25).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
            assert_eq!(
                error.to_string(),
                "the SOCKS5 proxy: the user or password is longer than 255 bytes"
            );
        }
        let http = Proxy::http("proxy", 3128);
        let error = Socks5Handshake::new(&http, "mx.example", 25).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn the_password_never_shows() {
        let proxy = Proxy::socks5("proxy", 1080).with_credentials("me", "hunter2-secret");
        let mut handshake = Socks5Handshake::new(&proxy, "mx.example", 25).unwrap();
        assert!(!format!("{handshake:?}").contains("hunter2"));
        let greeting = handshake.poll_transmit().unwrap();
        assert_eq!(greeting.expose(), [5, 2, 0, 2]);
        assert_eq!(handshake.feed(&[5, 2]).unwrap(), TunnelProgress::Continue);
        assert!(!format!("{handshake:?}").contains("hunter2"));
        let login = handshake.poll_transmit().unwrap();
        assert!(!format!("{login:?} {login}").contains("hunter2"));
        let error = handshake.feed(&[1, 1]).unwrap_err();
        assert!(!format!("{error} {error:?}").contains("hunter2"));
        assert!(!format!("{handshake:?}").contains("hunter2"));
        // Too long a password: refused without being repeated.
        let long = format!("hunter2-{}", "x".repeat(300));
        let proxy = Proxy::socks5("proxy", 1080).with_credentials("me", long);
        let error = Socks5Handshake::new(&proxy, "mx.example", 25).unwrap_err();
        assert!(!format!("{error} {error:?}").contains("hunter2"));
    }
}
