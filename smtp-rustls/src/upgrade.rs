//! The state of a connection that upgrades to TLS in place (STARTTLS, or implicit TLS right
//! after connecting): which layer its socket is in ([`Upgradable`]) and what it upgrades with
//! ([`TlsTarget`]). The handshake itself stays in each adapter.

use std::fmt;
use std::io;

use rustls::pki_types::ServerName;

use crate::{TlsConfig, server_name};

/// Where a connection's socket is: plain (`P`), inside TLS (`T`, the TLS stream over it), or
/// lost in a failed TLS handshake.
#[derive(Debug)]
pub enum Upgradable<P, T> {
    /// Plain TCP, before any TLS.
    Plain(P),
    /// TLS, established over the plain socket.
    Tls(Box<T>),
    /// A failed TLS handshake consumed the socket: every I/O fails with
    /// [`lost_in_handshake`].
    Broken,
}

impl<P, T> Upgradable<P, T> {
    /// True once TLS is established.
    pub fn is_tls(&self) -> bool {
        matches!(self, Upgradable::Tls(_))
    }

    /// Take the plain socket out for a TLS handshake. `self` is then [`Broken`](Self::Broken)
    /// until the caller puts the TLS stream in, so a handshake that fails leaves no socket in
    /// an unknown state behind.
    ///
    /// Fails, with `self` unchanged, when TLS is already established (`Other`, "TLS is already
    /// established") or the socket was lost ([`lost_in_handshake`]).
    pub fn take_plain(&mut self) -> io::Result<P> {
        match std::mem::replace(self, Upgradable::Broken) {
            Upgradable::Plain(plain) => Ok(plain),
            Upgradable::Tls(tls) => {
                *self = Upgradable::Tls(tls);
                Err(io::Error::other("TLS is already established"))
            }
            Upgradable::Broken => Err(lost_in_handshake()),
        }
    }
}

/// Writes a connection's `Debug` form, the same in every adapter: its type's name, the address
/// it reached and whether TLS is established. Keys, certificates and buffered bytes never
/// appear.
pub fn debug_connection(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    peer: &dyn fmt::Debug,
    tls_active: bool,
) -> fmt::Result {
    f.debug_struct(name)
        .field("peer", peer)
        .field("tls_active", &tls_active)
        .finish_non_exhaustive()
}

/// The error of I/O on a connection whose socket a failed TLS handshake consumed
/// ([`Upgradable::Broken`]): `NotConnected`.
pub fn lost_in_handshake() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the connection was lost in a failed TLS handshake",
    )
}

/// What a plain connection upgrades to TLS with: the trust settings and the name the server's
/// certificate must carry (the SMTP server's, never a proxy's).
#[derive(Debug, Clone)]
pub struct TlsTarget {
    config: TlsConfig,
    name: ServerName<'static>,
}

impl TlsTarget {
    /// Check the certificate for `host` against `config`. Fails as [`server_name`] does
    /// (`InvalidInput`) when `host` cannot be a server name.
    pub fn new(host: &str, config: TlsConfig) -> io::Result<TlsTarget> {
        Ok(TlsTarget {
            name: server_name(host)?,
            config,
        })
    }

    /// `target`, or for a connection opened without one (whose STARTTLS fails closed) the
    /// `Unsupported` error "this connection was opened without TLS settings".
    pub fn required(target: Option<&TlsTarget>) -> io::Result<&TlsTarget> {
        target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "this connection was opened without TLS settings",
            )
        })
    }

    /// The trust settings.
    pub fn config(&self) -> &TlsConfig {
        &self.config
    }

    /// The name the certificate must carry.
    pub fn name(&self) -> &ServerName<'static> {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Socket = Upgradable<&'static str, &'static str>;

    #[test]
    fn taking_the_plain_socket_leaves_the_connection_broken() {
        let mut socket = Socket::Plain("tcp");
        assert_eq!(socket.take_plain().unwrap(), "tcp");
        assert!(matches!(socket, Socket::Broken));
        // A second upgrade finds nothing to take.
        let err = socket.take_plain().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotConnected);
        assert_eq!(
            err.to_string(),
            "the connection was lost in a failed TLS handshake"
        );
        assert!(matches!(socket, Socket::Broken));
    }

    #[test]
    fn an_established_tls_stream_stays_in_place() {
        let mut socket = Socket::Tls(Box::new("tls"));
        assert!(socket.is_tls());
        let err = socket.take_plain().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Other);
        assert_eq!(err.to_string(), "TLS is already established");
        assert!(matches!(socket, Socket::Tls(ref tls) if **tls == "tls"));
        assert!(!Socket::Plain("tcp").is_tls());
        assert!(!Socket::Broken.is_tls());
    }

    #[test]
    fn a_connection_without_a_target_cannot_upgrade() {
        let err = TlsTarget::required(None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        assert_eq!(
            err.to_string(),
            "this connection was opened without TLS settings"
        );
        let target = TlsTarget::new("[::1]", TlsConfig::default()).unwrap();
        let required = TlsTarget::required(Some(&target)).unwrap();
        assert_eq!(required.name().to_str(), "::1");
    }

    /// The Debug form every transport shows: its name, the peer and whether TLS is on, and
    /// nothing else.
    #[test]
    fn a_connection_shows_its_peer_and_tls_state_only() {
        struct Conn(Option<std::net::SocketAddr>, bool);
        impl fmt::Debug for Conn {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                debug_connection(f, "Conn", &self.0, self.1)
            }
        }
        let peer = "192.0.2.1:465".parse().ok();
        assert_eq!(
            format!("{:?}", Conn(peer, true)),
            "Conn { peer: Some(192.0.2.1:465), tls_active: true, .. }"
        );
        assert_eq!(
            format!("{:?}", Conn(None, false)),
            "Conn { peer: None, tls_active: false, .. }"
        );
    }

    #[test]
    fn a_target_needs_a_valid_server_name() {
        for bad in ["bad host", "127.0.0.1]", "[::1"] {
            let err = TlsTarget::new(bad, TlsConfig::default()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad}");
        }
        let target = TlsTarget::new("smtp.example.com", TlsConfig::default()).unwrap();
        assert_eq!(target.name().to_str(), "smtp.example.com");
        assert!(!target.config().is_insecure());
    }
}
