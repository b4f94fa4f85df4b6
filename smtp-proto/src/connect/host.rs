//! [`check_host`]: the one rule for the host a connection goes to, applied before any I/O by
//! every adapter ([`ConnectParts::check_destination`](super::ConnectParts::check_destination))
//! and by the URL parser, so that nothing that cannot be a host reaches a resolver or a proxy.

use core::fmt;
use core::net::{IpAddr, Ipv6Addr};

/// The longest host name, in bytes, without a final dot (RFC 1035 §2.3.4).
const MAX_NAME: usize = 253;
/// The longest label of a host name, in bytes (RFC 1035 §2.3.4).
const MAX_LABEL: usize = 63;

/// Why a host was refused by [`check_host`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HostError {
    /// Nothing, or only a dot.
    Empty,
    /// A name longer than 253 bytes, or a label (the part between two dots) longer than 63.
    TooLong,
    /// A byte a host name cannot hold, an empty label (`a..b`), a label starting with `-`, or
    /// brackets around something other than an IPv6 address: a URL, a `host:port`, a stray
    /// bracket or a name outside ASCII all end here.
    Character,
    /// A name whose last label is a number that is not a dotted IPv4 address (`127.1`,
    /// `999.0.0.1`, `0x7f000001`): resolvers read such names as addresses of their own
    /// making, so none is guessed.
    Numeric,
}

impl HostError {
    /// What is wrong, in words fit for an error message (never the host itself).
    pub fn reason(self) -> &'static str {
        match self {
            HostError::Empty => "the host is empty",
            HostError::TooLong => {
                "the host name is longer than 253 bytes, or one of its labels than 63"
            }
            HostError::Character => {
                "a host is an IP address (IPv6 with or without brackets) or a name of ASCII \
                 letters, digits, '-' and '_' between dots (an international name in its xn-- \
                 form)"
            }
            HostError::Numeric => {
                "a host name cannot end in a number: an IPv4 address is four numbers from 0 to 255"
            }
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl core::error::Error for HostError {}

/// Check that `host` can be connected to as given: an IPv4 address, an IPv6 address (with or
/// without brackets, `[::1]` or `::1`), or a host name of ASCII letters, digits, `-` and `_` in labels of 1 to 63 bytes
/// between dots (253 bytes at most, a final dot allowed, no label starting with `-`, the last
/// label not a number).
///
/// ```
/// use smtp_proto::connect::{HostError, check_host};
///
/// assert!(check_host("mx1.example.com").is_ok());
/// assert!(check_host("192.0.2.7").is_ok());
/// assert!(check_host("2001:db8::25").is_ok());
/// assert!(check_host("[2001:db8::25]").is_ok());
/// assert_eq!(check_host("192.0.2.7]"), Err(HostError::Character));
/// assert_eq!(check_host("smtp://mx.example"), Err(HostError::Character));
/// assert_eq!(check_host("127.1"), Err(HostError::Numeric));
/// ```
pub fn check_host(host: &str) -> Result<(), HostError> {
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return match inner.parse::<Ipv6Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(HostError::Character),
        };
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() {
        return Err(HostError::Empty);
    }
    if name.len() > MAX_NAME {
        return Err(HostError::TooLong);
    }
    let mut last = "";
    for label in name.split('.') {
        if label.len() > MAX_LABEL {
            return Err(HostError::TooLong);
        }
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        if label.is_empty() || label.starts_with('-') || !label.bytes().all(allowed) {
            return Err(HostError::Character);
        }
        last = label;
    }
    // Not an IPv4 address (that parsed above), yet read as one by resolvers (glibc's through
    // inet_aton) and proxies: a number, in decimal or in hexadecimal (`0x7f000001` is
    // 127.0.0.1), as the WHATWG URL standard's "ends in a number" says.
    let hex = (last.strip_prefix("0x").or_else(|| last.strip_prefix("0X")))
        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    if hex || last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HostError::Numeric);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use crate::alloc_prelude::*;

    #[test]
    fn names_and_addresses_that_can_be_connected_to() {
        for host in [
            "localhost",
            "mx.example",
            "MX.Example.COM.",
            "_smtp.example",
            "a-b.example",
            "xn--bcher-kva.example",
            "1password.example",
            "mx.123abc",
            "mx.0xg1",
            "0x.example",
            "127.0.0.1",
            "::1",
            "fe80::1",
            "[::1]",
            "[2001:db8::25]",
        ] {
            assert_eq!(check_host(host), Ok(()), "{host}");
        }
        let longest = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ]
        .join(".");
        assert_eq!(longest.len(), 253);
        assert_eq!(check_host(&longest), Ok(()));
        assert_eq!(check_host(&format!("{longest}.")), Ok(()));
    }

    #[test]
    fn everything_else_is_refused_with_its_reason() {
        let long_label = "a".repeat(64);
        let long_name = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(62),
        ]
        .join(".");
        for (host, why) in [
            ("", HostError::Empty),
            (".", HostError::Empty),
            (long_label.as_str(), HostError::TooLong),
            (long_name.as_str(), HostError::TooLong),
            ("127.0.0.1]", HostError::Character),
            ("[::1", HostError::Character),
            ("::1]", HostError::Character),
            ("[127.0.0.1]", HostError::Character),
            ("[mx.example]", HostError::Character),
            ("[[::1]]", HostError::Character),
            ("mx.example:25", HostError::Character),
            ("smtp://mx.example", HostError::Character),
            ("user@mx.example", HostError::Character),
            ("mx example", HostError::Character),
            ("mx.example\r\nRCPT", HostError::Character),
            ("mx\0.example", HostError::Character),
            ("bücher.example", HostError::Character),
            ("a..b", HostError::Character),
            (".mx.example", HostError::Character),
            ("mx.example..", HostError::Character),
            ("-mx.example", HostError::Character),
            ("127.1", HostError::Numeric),
            ("999.0.0.1", HostError::Numeric),
            ("12345", HostError::Numeric),
            ("1.2.3.4.5", HostError::Numeric),
            ("0x7f000001", HostError::Numeric),
            ("127.0.0.0x1", HostError::Numeric),
            ("0X7F.1.0x0.0x1", HostError::Numeric),
            ("10.0x1", HostError::Numeric),
            ("0x", HostError::Numeric),
        ] {
            assert_eq!(check_host(host), Err(why), "{host:?}");
        }
        assert!(!HostError::Character.to_string().contains("example"));
    }
}
