//! [`Route`]: how a connection reaches the SMTP server, the part of the connect settings each
//! adapter's socket code follows.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::io;

use super::Proxy;
#[allow(unused_imports)]
use crate::alloc_prelude::*;

/// How a connection reaches the SMTP server: directly or through a proxy (SOCKS5, HTTP
/// CONNECT), from a chosen local address or the system's. Whatever the route, TLS runs end to
/// end with the SMTP server and its certificate is checked for the SMTP server's name, never
/// the proxy's. The default is a direct connection from the system's address.
#[derive(Debug, Clone, Default)]
pub struct Route {
    /// The proxy to connect through, if any.
    pub proxy: Option<Proxy>,
    /// The local address to connect from, if chosen.
    pub local_address: Option<IpAddr>,
}

impl Route {
    /// `host` as a name to resolve or dial: an IPv6 literal loses its brackets (`[::1]` is
    /// `::1`), any other name is unchanged (a stray bracket too: the host is refused before,
    /// by [`check_host`](crate::connect::check_host)).
    pub fn dial_host(host: &str) -> &str {
        host.strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .unwrap_or(host)
    }

    /// How long the next of the `remaining` addresses of a name may take to connect, when
    /// the connect step has `left`: an equal share, so that an address that never answers (a
    /// broken IPv6 path that drops packets) leaves the others their turn; the last one gets
    /// all that is left. Every adapter tries a name's addresses in order by this rule.
    pub fn address_share(left: Duration, remaining: usize) -> Duration {
        match u32::try_from(remaining) {
            Ok(0 | 1) => left,
            Ok(n) => left / n,
            Err(_) => left / u32::MAX,
        }
    }

    /// The addresses of `host` (resolved as `addrs`) this route can connect to, in order: one
    /// of the other family than the local address chosen cannot be reached from it
    /// ([`bind_for`](Self::bind_for)), so it is left out rather than given a share of the
    /// connect step ([`address_share`](Self::address_share)). When none is left: `bind_for`'s
    /// error for the first (naming both addresses), or `NotFound` when there were none.
    pub fn reachable(&self, host: &str, addrs: Vec<SocketAddr>) -> io::Result<Vec<SocketAddr>> {
        let Some(&first) = addrs.first() else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} has no address to connect to"),
            ));
        };
        let reachable: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|&addr| self.bind_for(addr).is_ok())
            .collect();
        match self.bind_for(first) {
            Err(e) if reachable.is_empty() => Err(e),
            _ => Ok(reachable),
        }
    }

    /// The address to bind a socket to before it connects to `peer`: the local address chosen,
    /// port 0 (`None`: leave it to the system). A local address of the other family than
    /// `peer` cannot reach it: an error of kind `AddrNotAvailable` naming both, so that the
    /// next of the host's addresses can be tried.
    pub fn bind_for(&self, peer: SocketAddr) -> io::Result<Option<SocketAddr>> {
        let Some(local) = self.local_address else {
            return Ok(None);
        };
        if local.is_ipv4() != peer.is_ipv4() {
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("the local address {local} cannot reach {peer}"),
            ));
        }
        Ok(Some(SocketAddr::new(local, 0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_literal_is_dialled_without_its_brackets() {
        assert_eq!(Route::dial_host("[::1]"), "::1");
        assert_eq!(Route::dial_host("mx.example"), "mx.example");
        assert_eq!(Route::dial_host("192.0.2.1"), "192.0.2.1");
        assert_eq!(Route::dial_host("192.0.2.1]"), "192.0.2.1]");
    }

    /// No local address: the system chooses. One of the peer's family: bound, port 0. One of
    /// the other family: `AddrNotAvailable`, naming both.
    #[test]
    fn the_local_address_is_bound_only_for_a_peer_of_its_family() {
        let v4: SocketAddr = "192.0.2.1:25".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:25".parse().unwrap();
        assert_eq!(Route::default().bind_for(v4).unwrap(), None);
        let route = Route {
            proxy: None,
            local_address: Some("127.0.0.2".parse().unwrap()),
        };
        assert_eq!(
            route.bind_for(v4).unwrap(),
            Some("127.0.0.2:0".parse().unwrap())
        );
        let err = route.bind_for(v6).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrNotAvailable);
        let text = err.to_string();
        assert!(
            text.contains("127.0.0.2") && text.contains("2001:db8::1"),
            "{text}"
        );
    }

    #[test]
    fn each_address_gets_an_equal_share_and_the_last_all_that_is_left() {
        let left = Duration::from_secs(30);
        assert_eq!(Route::address_share(left, 3), Duration::from_secs(10));
        assert_eq!(Route::address_share(left, 2), Duration::from_secs(15));
        assert_eq!(Route::address_share(left, 1), left);
        assert_eq!(Route::address_share(left, 0), left);
        assert!(Route::address_share(left, usize::MAX) < Duration::from_micros(10));
    }

    #[test]
    fn only_the_addresses_the_local_address_can_reach_are_tried() {
        let v6: SocketAddr = "[2001:db8::1]:25".parse().unwrap();
        let v4: SocketAddr = "192.0.2.1:25".parse().unwrap();
        let from_v4 = Route {
            proxy: None,
            local_address: Some("127.0.0.2".parse().unwrap()),
        };
        assert_eq!(from_v4.reachable("mx", vec![v6, v4]).unwrap(), [v4]);
        assert_eq!(
            Route::default().reachable("mx", vec![v6, v4]).unwrap(),
            [v6, v4]
        );
        let none = from_v4.reachable("mx", vec![v6]).unwrap_err();
        assert_eq!(none.kind(), io::ErrorKind::AddrNotAvailable);
        let empty = Route::default()
            .reachable("mx.example", Vec::new())
            .unwrap_err();
        assert_eq!(empty.kind(), io::ErrorKind::NotFound);
        assert!(empty.to_string().contains("mx.example"), "{empty}");
    }
}
