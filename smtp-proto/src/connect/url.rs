//! [`SmtpUrl`]: a connection described by one string.

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use core::time::Duration;

use super::TlsMode;
use crate::command::Domain;
use crate::sasl::AuthMechanism;
use crate::secret::Secret;
use crate::session::Protocol;

/// A parsed connection URL: where to connect, how, and as whom, as twelve-factor services
/// configure mail (`SMTP_URL=smtps://user@mail.example.com`). `Debug` never shows the password.
///
/// ```text
/// smtp://[user[:password]@]host[:port][?param=value&...]    STARTTLS required (port 587)
/// smtps://...                                              implicit TLS (port 465)
/// smtp://host:25?tls=none                                  no TLS at all
/// lmtp://host:24                                           LMTP (LHLO, a reply per recipient)
/// ```
///
/// Parameters: `tls=starttls|implicit|none`, `helo=DOMAIN` (the name given in EHLO),
/// `auth=plain|login|xoauth2|oauthbearer|scram-sha-256|...` (the mechanism to ask for),
/// `timeout=SECS` (each reply), `connect_timeout=SECS`, `deadline=SECS` (the whole session).
/// User and password are percent-decoded. A password in a URL ends up wherever the URL is
/// logged or shown: keep it in an environment variable of its own where you can. Errors never
/// repeat the password, nor the part of the URL it was in.
///
/// ```
/// use smtp_proto::connect::{SmtpUrl, TlsMode};
///
/// let url: SmtpUrl = "smtps://me%40example.com@mail.example.com?timeout=20".parse().unwrap();
/// assert_eq!((url.tls, url.port), (TlsMode::Implicit, 465));
/// assert_eq!(url.user.as_deref(), Some("me@example.com"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct SmtpUrl {
    /// SMTP or LMTP.
    pub protocol: Protocol,
    /// How the connection is protected.
    pub tls: TlsMode,
    /// The host: a name or an IP address (an IPv6 address without its brackets).
    pub host: String,
    /// The port: given, or the usual one for the scheme and TLS mode (465, 587, 25; LMTP 24).
    pub port: u16,
    /// The user to log in as, percent-decoded.
    pub user: Option<String>,
    /// The password, percent-decoded.
    pub password: Option<Secret>,
    /// The mechanism to log in with (`auth=`); `None`: the best the server offers.
    pub mechanism: Option<AuthMechanism>,
    /// The name to give in EHLO (`helo=`).
    pub helo: Option<Domain>,
    /// The limit of each reply (`timeout=`).
    pub timeout: Option<Duration>,
    /// The limit of opening the connection (`connect_timeout=`).
    pub connect_timeout: Option<Duration>,
    /// The whole session's deadline (`deadline=`).
    pub deadline: Option<Duration>,
}

/// Why a URL was refused. Its text names the part that is wrong, never the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Not `smtp://`, `smtps://` or `lmtp://`.
    #[error("the URL must start with smtp://, smtps:// or lmtp://")]
    Scheme,
    /// No host, or a host that is not a name or an IP address.
    #[error("the URL's host is missing or not a host name or IP address")]
    Host,
    /// A port that is not a number from 1 to 65535.
    #[error("the URL's port is not a number from 1 to 65535")]
    Port,
    /// The user or password holds a bad percent escape, an unescaped `?` or, decoded, a
    /// control character or invalid UTF-8.
    #[error("the URL's {0} is badly encoded or holds a control character")]
    Userinfo(&'static str),
    /// A parameter this parser does not know (a typo must not be silently ignored).
    #[error("unknown URL parameter {0:?}")]
    UnknownParameter(String),
    /// A parameter given twice.
    #[error("the URL parameter {0:?} is given twice")]
    RepeatedParameter(&'static str),
    /// A known parameter with a value it cannot take.
    #[error("the URL parameter {0:?} has a value it cannot take")]
    BadValue(&'static str),
    /// `smtps://` with `tls=` other than `implicit`, or a password without a user.
    #[error("{0}")]
    Conflict(&'static str),
}

impl SmtpUrl {
    /// Parse a connection URL (the forms are above).
    pub fn parse(url: &str) -> Result<SmtpUrl, UrlError> {
        let (scheme, rest) = url.split_once("://").ok_or(UrlError::Scheme)?;
        let (protocol, mut tls) = match scheme.to_ascii_lowercase().as_str() {
            "smtp" => (Protocol::Smtp, TlsMode::StartTls),
            "smtps" => (Protocol::Smtp, TlsMode::Implicit),
            "lmtp" => (Protocol::Lmtp, TlsMode::StartTls),
            _ => return Err(UrlError::Scheme),
        };
        let (authority, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        // No parameter holds an `@`: one after the `?` ends a user or password that holds an
        // unescaped `?`. Refused without echoing any of it (as an unknown parameter would).
        if query.is_some_and(|q| q.contains('@')) {
            return Err(UrlError::Userinfo("user or password"));
        }
        // A path (`/`) has no meaning here: only a bare trailing slash is tolerated.
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        if authority.contains(['/', '#']) {
            return Err(UrlError::Host);
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, password) = match info.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (info, None),
                };
                let user = decode(user).ok_or(UrlError::Userinfo("user"))?;
                let password = match password {
                    Some(p) => Some(decode(p).ok_or(UrlError::Userinfo("password"))?),
                    None => None,
                };
                if user.is_empty() {
                    if password.is_some() {
                        return Err(UrlError::Conflict("the URL has a password but no user"));
                    }
                    (None, None)
                } else {
                    (Some(user), password.map(Secret::from))
                }
            }
        };
        let (host, port) = split_host_port(hostport)?;
        let mut url = SmtpUrl {
            protocol,
            tls,
            host,
            port: 0,
            user,
            password,
            mechanism: None,
            helo: None,
            timeout: None,
            connect_timeout: None,
            deadline: None,
        };
        let mut tls_given = false;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "tls" => {
                    if core::mem::replace(&mut tls_given, true) {
                        return Err(UrlError::RepeatedParameter("tls"));
                    }
                    tls = match value.to_ascii_lowercase().as_str() {
                        "starttls" => TlsMode::StartTls,
                        "implicit" => TlsMode::Implicit,
                        "none" => TlsMode::None,
                        _ => return Err(UrlError::BadValue("tls")),
                    };
                    if scheme.eq_ignore_ascii_case("smtps") && tls != TlsMode::Implicit {
                        return Err(UrlError::Conflict(
                            "smtps:// is implicit TLS: tls= can only say implicit",
                        ));
                    }
                }
                "helo" | "ehlo" => {
                    let value = decode(value).ok_or(UrlError::BadValue("helo"))?;
                    let domain = Domain::new(&value).map_err(|_| UrlError::BadValue("helo"))?;
                    set(&mut url.helo, domain, "helo")?;
                }
                "auth" => {
                    let mechanism = AuthMechanism::from_name(&value.to_ascii_uppercase())
                        .ok_or(UrlError::BadValue("auth"))?;
                    set(&mut url.mechanism, mechanism, "auth")?;
                }
                "timeout" => set(&mut url.timeout, seconds(value, "timeout")?, "timeout")?,
                "connect_timeout" => set(
                    &mut url.connect_timeout,
                    seconds(value, "connect_timeout")?,
                    "connect_timeout",
                )?,
                "deadline" => set(&mut url.deadline, seconds(value, "deadline")?, "deadline")?,
                other => {
                    let shown: String =
                        other.chars().filter(|c| !c.is_control()).take(40).collect();
                    return Err(UrlError::UnknownParameter(shown));
                }
            }
        }
        url.tls = tls;
        url.port = match port {
            Some(port) => port,
            None => match (protocol, tls) {
                (Protocol::Lmtp, _) => 24,
                (_, TlsMode::Implicit) => 465,
                (_, TlsMode::StartTls) => 587,
                (_, TlsMode::None) => 25,
            },
        };
        Ok(url)
    }
}

impl core::str::FromStr for SmtpUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<SmtpUrl, UrlError> {
        SmtpUrl::parse(s)
    }
}

/// Set a parameter given once.
fn set<T>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), UrlError> {
    if slot.replace(value).is_some() {
        return Err(UrlError::RepeatedParameter(name));
    }
    Ok(())
}

/// Seconds (fractions allowed), from 0.001 (a shorter limit would round to nothing) to a day.
fn seconds(value: &str, name: &'static str) -> Result<Duration, UrlError> {
    let secs: f64 = value.parse().map_err(|_| UrlError::BadValue(name))?;
    if !(0.001..=86_400.0).contains(&secs) {
        return Err(UrlError::BadValue(name));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` (the proxy URL's too): a host as
/// [`check_host`](super::check_host) takes it (a name is lowercased), or an IPv6 address in
/// brackets (canonical, without them); a port of digits alone, 1 to 65535.
pub(super) fn split_host_port(hostport: &str) -> Result<(String, Option<u16>), UrlError> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or(UrlError::Host)?;
        let ip: core::net::Ipv6Addr = v6.parse().map_err(|_| UrlError::Host)?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(UrlError::Port)?),
        };
        (ip.to_string(), port)
    } else {
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        };
        // RFC 3986 3.2.2: an IPv6 address is in brackets; without them its last group and a
        // port cannot be told apart (`2001:db8::1:25`), and a name holds no `:`.
        if host.contains(':') {
            return Err(UrlError::Host);
        }
        super::check_host(host).map_err(|_| UrlError::Host)?;
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => None,
        // Digits alone: `parse` would take a sign (`+25`).
        Some(p) if !p.bytes().all(|b| b.is_ascii_digit()) => return Err(UrlError::Port),
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(UrlError::Port),
            Ok(port) => Some(port),
        },
    };
    Ok((host, port))
}

/// Percent-decode `text` into UTF-8 without control characters; `None` when it cannot be (the
/// proxy URL's user and password too).
pub(super) fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            // Two hex digits, nothing else (`from_str_radix` alone would take "+4").
            let hex = text.get(i + 1..i + 3)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    let decoded = String::from_utf8(out).ok()?;
    if decoded.chars().any(char::is_control) {
        return None;
    }
    Some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(url: &str) -> SmtpUrl {
        SmtpUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn every_scheme_and_its_defaults() {
        let cases: &[(&str, Protocol, TlsMode, &str, u16)] = &[
            (
                "smtp://mail.example.com",
                Protocol::Smtp,
                TlsMode::StartTls,
                "mail.example.com",
                587,
            ),
            (
                "smtps://mail.example.com",
                Protocol::Smtp,
                TlsMode::Implicit,
                "mail.example.com",
                465,
            ),
            (
                "smtp://mx.example.com:25?tls=none",
                Protocol::Smtp,
                TlsMode::None,
                "mx.example.com",
                25,
            ),
            (
                "smtp://relay.example.com?tls=none",
                Protocol::Smtp,
                TlsMode::None,
                "relay.example.com",
                25,
            ),
            (
                "smtp://h.example?tls=implicit",
                Protocol::Smtp,
                TlsMode::Implicit,
                "h.example",
                465,
            ),
            (
                "lmtp://store.example",
                Protocol::Lmtp,
                TlsMode::StartTls,
                "store.example",
                24,
            ),
            (
                "lmtp://store.example:2424?tls=none",
                Protocol::Lmtp,
                TlsMode::None,
                "store.example",
                2424,
            ),
            (
                "SMTPS://Mail.Example.COM:4650/",
                Protocol::Smtp,
                TlsMode::Implicit,
                "mail.example.com",
                4650,
            ),
            (
                "smtp://192.0.2.7:2525",
                Protocol::Smtp,
                TlsMode::StartTls,
                "192.0.2.7",
                2525,
            ),
            (
                "smtp://[2001:db8::1]:587",
                Protocol::Smtp,
                TlsMode::StartTls,
                "2001:db8::1",
                587,
            ),
            (
                "smtp://[::1]",
                Protocol::Smtp,
                TlsMode::StartTls,
                "::1",
                587,
            ),
        ];
        for &(url, protocol, tls, host, port) in cases {
            let parsed = ok(url);
            assert_eq!(
                (
                    parsed.protocol,
                    parsed.tls,
                    parsed.host.as_str(),
                    parsed.port
                ),
                (protocol, tls, host, port),
                "{url}"
            );
            assert_eq!(parsed.user, None);
        }
    }

    #[test]
    fn user_and_password_are_percent_decoded() {
        let url = ok("smtps://me%40example.com:p%3Ass%20w%C3%B6rd@mail.example.com");
        assert_eq!(url.user.as_deref(), Some("me@example.com"));
        assert_eq!(
            url.password.as_ref().and_then(Secret::expose_str),
            Some("p:ss wörd")
        );
        let url = ok("smtp://only-user@mail.example.com");
        assert_eq!(url.user.as_deref(), Some("only-user"));
        assert!(url.password.is_none());
    }

    #[test]
    fn every_parameter() {
        let url = ok(
            "smtp://u@h.example?helo=client.example&auth=xoauth2&timeout=20&connect_timeout=5.5&deadline=90",
        );
        assert_eq!(url.helo, Some(Domain::new("client.example").unwrap()));
        assert_eq!(url.mechanism, Some(AuthMechanism::XOAuth2));
        assert_eq!(url.timeout, Some(Duration::from_secs(20)));
        assert_eq!(url.connect_timeout, Some(Duration::from_millis(5500)));
        assert_eq!(url.deadline, Some(Duration::from_secs(90)));
        for (name, mechanism) in [
            ("plain", AuthMechanism::Plain),
            ("LOGIN", AuthMechanism::Login),
            ("oauthbearer", AuthMechanism::OAuthBearer),
            ("scram-sha-256", AuthMechanism::ScramSha256),
        ] {
            let url = ok(&format!("smtp://h.example?auth={name}"));
            assert_eq!(url.mechanism, Some(mechanism), "{name}");
        }
    }

    #[test]
    fn malformed_urls_are_refused_by_name() {
        let cases: &[(&str, UrlError)] = &[
            ("http://h.example", UrlError::Scheme),
            ("h.example:587", UrlError::Scheme),
            ("smtp://", UrlError::Host),
            ("smtp://:587", UrlError::Host),
            ("smtp://bad host.example", UrlError::Host),
            ("smtp://h.example/path", UrlError::Host),
            ("smtp://h\r\n.example", UrlError::Host),
            ("smtp://[nope]:25", UrlError::Host),
            // RFC 3986: an IPv6 address only in brackets; these would split at the wrong `:`.
            ("smtp://2001:db8::1:25", UrlError::Host),
            ("smtp://::1:2525", UrlError::Host),
            ("smtps://u:p@fe80::1:465", UrlError::Host),
            // A hexadecimal number that resolvers read as 127.0.0.1.
            ("smtp://0x7f000001", UrlError::Host),
            ("smtp://h.example:0", UrlError::Port),
            ("smtp://h.example:65536", UrlError::Port),
            ("smtp://h.example:x", UrlError::Port),
            ("smtp://h.example:+25", UrlError::Port),
            ("smtp://u%0D%0AMAIL:p@h.example", UrlError::Userinfo("user")),
            ("smtp://u:p%zz@h.example", UrlError::Userinfo("password")),
            ("smtp://u:p%00@h.example", UrlError::Userinfo("password")),
            ("smtp://u:p%+A@h.example", UrlError::Userinfo("password")),
            ("smtp://h.example?tls=maybe", UrlError::BadValue("tls")),
            (
                "smtp://h.example?helo=bad%0D%0Aname",
                UrlError::BadValue("helo"),
            ),
            ("smtp://h.example?auth=cram-md5", UrlError::BadValue("auth")),
            (
                "smtp://h.example?timeout=1&timeout=2",
                UrlError::RepeatedParameter("timeout"),
            ),
            (
                "smtp://h.example?tls=none&tls=none",
                UrlError::RepeatedParameter("tls"),
            ),
            (
                "smtp://h.example?helo_name=x",
                UrlError::UnknownParameter("helo_name".into()),
            ),
        ];
        // A limit is 0.001 to 86400 seconds: less would round to nothing.
        for (name, value) in [
            ("timeout", "0"),
            ("timeout", "1e-10"),
            ("timeout", "NaN"),
            ("timeout", "86401"),
            ("deadline", "-1"),
            ("deadline", "0.0009"),
            ("connect_timeout", "4.9e-324"),
        ] {
            let url = format!("smtp://h.example?{name}={value}");
            assert_eq!(
                SmtpUrl::parse(&url).err(),
                Some(UrlError::BadValue(name)),
                "{url}"
            );
        }
        for (url, want) in cases {
            assert_eq!(SmtpUrl::parse(url).err().as_ref(), Some(want), "{url}");
        }
        assert!(matches!(
            SmtpUrl::parse("smtps://h.example?tls=starttls"),
            Err(UrlError::Conflict(_))
        ));
        assert!(matches!(
            SmtpUrl::parse("smtp://:secret@h.example"),
            Err(UrlError::Conflict(_))
        ));
    }

    #[test]
    fn the_password_never_shows() {
        let url = ok("smtp://me:hunter2@h.example");
        assert!(!format!("{url:?}").contains("hunter2"));
        for bad in [
            "smtp://me:hunter2@h.example:99999",
            "smtp://me:hunter2%zz@h.example",
            "smtp://me:hunter2@bad host",
            "smtp://me:hunter2@h.example?x=hunter2",
            // An unescaped `?` in the password: what follows it is no parameter.
            "smtp://me:2024?hunter2@h.example",
            "smtp://me:pass?hunter2@h.example:587?tls=starttls",
        ] {
            let error = SmtpUrl::parse(bad).unwrap_err();
            assert!(
                !format!("{error}{error:?}").contains("hunter2"),
                "{bad}: {error}"
            );
        }
    }

    proptest! {
        /// Whatever the input, a URL that parses puts no CR, LF, NUL or other control character
        /// into anything that becomes a command or an AUTH payload.
        #[test]
        fn no_url_carries_a_control_character(url in "(smtps?|lmtp)://[ -~\\r\\n\\x00%]{0,60}") {
            if let Ok(parsed) = SmtpUrl::parse(&url) {
                let clean = |s: &str| !s.chars().any(char::is_control);
                prop_assert!(clean(&parsed.host));
                prop_assert!(parsed.user.as_deref().is_none_or(clean));
                prop_assert!(parsed
                    .password
                    .as_ref()
                    .is_none_or(|p| p.expose_str().is_some_and(clean)));
                prop_assert!(parsed.port != 0);
            }
        }
    }
}
