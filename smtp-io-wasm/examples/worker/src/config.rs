//! The Worker's settings, read from its environment (wrangler `[vars]` and secrets).
//!
//! Every value is looked up by name through a function, so the rules are tested on the host and
//! the Worker passes a lookup into its `env` object. Errors name the setting and the rule, never
//! the value (it may be a secret).

use std::fmt;
use std::time::Duration;

#[cfg(feature = "dkim")]
use smtp_dkim::{DkimKey, DkimSigner};
use smtp_io_wasm::smtp_proto::command::Domain;
use smtp_io_wasm::smtp_proto::connect::{Proxy, ProxyUrlError};
use smtp_io_wasm::smtp_proto::secret::Secret;
use smtp_io_wasm::{AuthMechanism, TlsMode, check_port};

/// The secret the caller's bearer token must equal.
pub const API_TOKEN: &str = "API_TOKEN";
/// The SMTP server's host name (the certificate is checked against it).
pub const SMTP_HOST: &str = "SMTP_HOST";
/// `implicit` (TLS from the first byte) or `starttls`. Plaintext is not offered.
pub const SMTP_TLS: &str = "SMTP_TLS";
/// The port: default 465 for `implicit`, 587 for `starttls`. 25 is refused.
pub const SMTP_PORT: &str = "SMTP_PORT";
/// The AUTH user name; without it, no AUTH.
pub const SMTP_USER: &str = "SMTP_USER";
/// The AUTH password (a secret); required with `SMTP_USER`. With a token mechanism
/// (`SMTP_AUTH_MECHANISM` XOAUTH2 or OAUTHBEARER): the OAuth 2.0 access token, optional (a
/// request may bring its own in [`ACCESS_TOKEN_HEADER`]).
pub const SMTP_PASSWORD: &str = "SMTP_PASSWORD";
/// The SASL mechanism by name: PLAIN, LOGIN, SCRAM-SHA-256, XOAUTH2 or OAUTHBEARER; default:
/// the best password mechanism the server offers.
pub const SMTP_AUTH_MECHANISM: &str = "SMTP_AUTH_MECHANISM";
/// The request header that may carry the OAuth 2.0 access token for `SMTP_USER` when
/// `SMTP_AUTH_MECHANISM` is XOAUTH2 or OAUTHBEARER (access tokens live about an hour: the
/// caller refreshes it, the Worker never stores it). Refused with any other mechanism.
pub const ACCESS_TOKEN_HEADER: &str = "smtp-access-token";
/// The EHLO name; default: the host name the Worker was called on.
pub const SMTP_EHLO: &str = "SMTP_EHLO";
/// Connect and per-reply timeout in milliseconds; default: the engine's RFC 5321 defaults.
pub const SMTP_TIMEOUT_MS: &str = "SMTP_TIMEOUT_MS";
/// The session's deadline in milliseconds: the whole delivery, from before the connection is
/// opened (the connect and the TLS handshake count) to the end of QUIT; default: none.
pub const SMTP_DEADLINE_MS: &str = "SMTP_DEADLINE_MS";
/// The largest request body accepted, in bytes; default [`DEFAULT_MAX_BODY_BYTES`].
pub const MAX_BODY_BYTES: &str = "MAX_BODY_BYTES";
/// A proxy to reach the SMTP server through: `socks5://[user:password@]host:port` or
/// `http://[user:password@]host:port` (HTTP CONNECT). It may hold a password: set it as a secret
/// (`wrangler secret put SMTP_PROXY`); no answer, error or `Debug` ever shows the password. TLS
/// still runs end to end with the SMTP server, checked for `SMTP_TLS_SERVER_NAME` or
/// `SMTP_HOST`, never the proxy's name. Default: a direct connection.
pub const SMTP_PROXY: &str = "SMTP_PROXY";
/// The name the SMTP server's certificate is checked for, instead of `SMTP_HOST` (a server
/// dialled by address, or by another name than its certificate's). Default: `SMTP_HOST`.
pub const SMTP_TLS_SERVER_NAME: &str = "SMTP_TLS_SERVER_NAME";

/// The DKIM private key (a secret), PEM: sign every message with it. With it, `DKIM_SELECTOR`
/// and `DKIM_DOMAIN` are required; without it, nothing is signed. Signing needs the `dkim`
/// feature: a Worker built without it refuses to run with any of the three DKIM settings set.
pub const DKIM_PRIVATE_KEY: &str = "DKIM_PRIVATE_KEY";
/// The DKIM selector (`s=`): the public key is published at `<selector>._domainkey.<domain>`.
pub const DKIM_SELECTOR: &str = "DKIM_SELECTOR";
/// The DKIM signing domain (`d=`).
pub const DKIM_DOMAIN: &str = "DKIM_DOMAIN";

/// 10 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;
/// The shortest `API_TOKEN` accepted: a short shared secret can be guessed.
pub const MIN_TOKEN_LEN: usize = 16;
/// The longest `SMTP_TIMEOUT_MS` accepted (10 minutes).
pub const MAX_TIMEOUT_MS: u64 = 600_000;
/// The longest `SMTP_DEADLINE_MS` accepted (1 hour).
pub const MAX_DEADLINE_MS: u64 = 3_600_000;

/// A setting that is missing or breaks its rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable's name.
    pub name: &'static str,
    /// What is wrong (never the value).
    pub problem: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.problem)
    }
}

fn fail<T>(name: &'static str, problem: &'static str) -> Result<T, ConfigError> {
    Err(ConfigError { name, problem })
}

/// A set, non-empty value (an empty variable counts as unset).
fn get(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    lookup(name).filter(|v| !v.is_empty())
}

/// The `API_TOKEN` secret (used as is: no trimming).
pub fn api_token(lookup: &impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let Some(token) = get(lookup, API_TOKEN) else {
        return fail(API_TOKEN, "not set (wrangler secret put API_TOKEN)");
    };
    if token.len() < MIN_TOKEN_LEN {
        return fail(API_TOKEN, "shorter than 16 bytes");
    }
    Ok(token)
}

/// The AUTH password from `SMTP_PASSWORD`: `Debug` prints `[redacted]`, and its buffer (the
/// very `String` the environment lookup returned, taken over, not copied) is overwritten with
/// zeros when it is dropped (`smtp_proto::secret::Secret`). Neither `Clone` nor `PartialEq`:
/// no stray copy, no comparison in variable time.
#[derive(Debug)]
pub struct Password(Secret);

impl Password {
    /// Take `password`'s buffer over.
    pub fn new(password: String) -> Password {
        Password(Secret::from(password))
    }

    /// The password, for the AUTH exchange. Every call site reveals it.
    pub fn expose(&self) -> &str {
        // Built from a `String` only, so always UTF-8.
        self.0.expose_str().unwrap_or_default()
    }
}

/// The AUTH user name, its password (or access token) and the mechanism.
#[derive(Debug)]
pub struct Credentials {
    /// `SMTP_USER`.
    pub user: String,
    /// `SMTP_PASSWORD`: a password, or for a token mechanism an access token; `None` only with
    /// a token mechanism, when each request brings its token ([`ACCESS_TOKEN_HEADER`]).
    pub password: Option<Password>,
    /// `SMTP_AUTH_MECHANISM`; `None`: the best password mechanism the server offers.
    pub mechanism: Option<AuthMechanism>,
}

impl Credentials {
    /// True when the secret is an OAuth 2.0 access token (XOAUTH2, OAUTHBEARER).
    pub fn takes_token(&self) -> bool {
        self.mechanism.is_some_and(AuthMechanism::takes_token)
    }
}

/// Where and how to send: everything but the token. Its `Debug` never shows the password
/// ([`Password`]), and the password is wiped when the settings are dropped (after each request).
#[derive(Debug)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub mode: TlsMode,
    /// The name the certificate is checked for; `None`: `host`.
    pub tls_server_name: Option<String>,
    /// The proxy to go through (its `Debug` shows no password); `None`: a direct connection.
    pub proxy: Option<Proxy>,
    /// User name and password, or `None` for no AUTH.
    pub credentials: Option<Credentials>,
    /// `None`: the host name of the request.
    pub ehlo: Option<String>,
    pub timeout: Option<Duration>,
    /// The session's deadline, counted from before the connect; `None`: no deadline.
    pub deadline: Option<Duration>,
    pub max_body_bytes: u64,
    /// Signs every message with DKIM (its `Debug` shows no key; the key is wiped when dropped);
    /// `None`: nothing is signed.
    #[cfg(feature = "dkim")]
    pub dkim: Option<DkimSigner>,
}

/// What a Worker built without the `dkim` feature says when a DKIM setting is set: it cannot
/// sign, and must not send unsigned what its operator wanted signed.
#[cfg(not(feature = "dkim"))]
pub const DKIM_NOT_BUILT: &str = "set, but this Worker was built without DKIM signing: build it with the `dkim` feature \
     (./build.sh --features dkim, or cargo build --features dkim), or unset DKIM_PRIVATE_KEY, \
     DKIM_SELECTOR and DKIM_DOMAIN";

/// Without the `dkim` feature: refuse any of `DKIM_PRIVATE_KEY`, `DKIM_SELECTOR` and
/// `DKIM_DOMAIN` (the first one set is named), so a Worker never sends unsigned mail its
/// operator configured to be signed.
#[cfg(not(feature = "dkim"))]
pub fn dkim(lookup: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    for name in [DKIM_PRIVATE_KEY, DKIM_SELECTOR, DKIM_DOMAIN] {
        if get(lookup, name).is_some() {
            return fail(name, DKIM_NOT_BUILT);
        }
    }
    Ok(())
}

/// The DKIM signer of `DKIM_PRIVATE_KEY`, `DKIM_SELECTOR` and `DKIM_DOMAIN` (all three, or none).
/// The key's text is taken over into a buffer wiped on drop, and no error quotes it.
#[cfg(feature = "dkim")]
pub fn dkim(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<DkimSigner>, ConfigError> {
    let key = get(lookup, DKIM_PRIVATE_KEY).map(Password::new);
    let selector = get(lookup, DKIM_SELECTOR);
    let domain = get(lookup, DKIM_DOMAIN);
    let Some(key) = key else {
        if selector.is_some() || domain.is_some() {
            return fail(
                DKIM_PRIVATE_KEY,
                "not set while DKIM_SELECTOR or DKIM_DOMAIN is (wrangler secret put DKIM_PRIVATE_KEY)",
            );
        }
        return Ok(None);
    };
    let Some(selector) = selector else {
        return fail(DKIM_SELECTOR, "not set while DKIM_PRIVATE_KEY is");
    };
    let Some(domain) = domain else {
        return fail(DKIM_DOMAIN, "not set while DKIM_PRIVATE_KEY is");
    };
    let Ok(key) = DkimKey::from_pem(key.expose()) else {
        return fail(
            DKIM_PRIVATE_KEY,
            "not a usable DKIM key: give an unencrypted PEM RSA (at least 1024 bits) or Ed25519 private key",
        );
    };
    match DkimSigner::new(key, domain.trim(), selector.trim()) {
        Ok(signer) => Ok(Some(signer)),
        Err(smtp_dkim::Error::InvalidSelector(_)) => {
            fail(DKIM_SELECTOR, "not labels of letters, digits and hyphens")
        }
        Err(_) => fail(
            DKIM_DOMAIN,
            "not an ASCII domain name (an IDN as its xn-- form)",
        ),
    }
}

/// True for a host that can be connected to, or a name a certificate can be checked for: an IP
/// address (IPv6 with or without brackets) or an ASCII host name, by the client's own rule
/// (`check_host`), so that a setting no connection could use fails here, at once.
fn is_host(host: &str) -> bool {
    smtp_io_wasm::smtp_proto::connect::check_host(host).is_ok()
}

/// The OAuth 2.0 access token a request brings in [`ACCESS_TOKEN_HEADER`] (`header`, its value
/// if present), taken over into a buffer wiped on drop. A header present but empty, or holding
/// a control character (a tab), is the request's mistake: refused here, before any connection,
/// rather than replacing a configured token or failing as a setting.
pub fn access_token(header: Option<String>) -> Result<Option<Password>, &'static str> {
    match header {
        None => Ok(None),
        Some(token) if token.is_empty() || token.bytes().any(|b| b < 0x20 || b == 0x7f) => {
            Err("SMTP-Access-Token is empty or holds a control character")
        }
        Some(token) => Ok(Some(Password::new(token))),
    }
}

/// The proxy of `SMTP_PROXY`, if set. The value is taken over into a buffer wiped on drop, and
/// no error quotes it (it may hold the proxy password).
fn proxy(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<Proxy>, ConfigError> {
    let Some(url) = get(lookup, SMTP_PROXY).map(Password::new) else {
        return Ok(None);
    };
    match Proxy::parse(url.expose().trim()) {
        Ok(proxy) => Ok(Some(proxy)),
        Err(ProxyUrlError::Scheme) => fail(
            SMTP_PROXY,
            "must be socks5://[user:password@]host:port or http://[user:password@]host:port",
        ),
        Err(ProxyUrlError::Address) => fail(
            SMTP_PROXY,
            "needs a host and a port from 1 to 65535 (socks5://host:port or http://host:port)",
        ),
        Err(ProxyUrlError::Userinfo) => fail(
            SMTP_PROXY,
            "its user or password is badly percent-encoded or holds a control character",
        ),
        Err(_) => fail(SMTP_PROXY, "not a proxy URL"),
    }
}

fn number(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    range: std::ops::RangeInclusive<u64>,
    problem: &'static str,
) -> Result<Option<u64>, ConfigError> {
    match get(lookup, name) {
        None => Ok(None),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(Some(n)),
            _ => fail(name, problem),
        },
    }
}

/// The setting `name`, a number of milliseconds from 1 to `max`, as a duration (`None`: unset).
fn millis(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    max: u64,
    problem: &'static str,
) -> Result<Option<Duration>, ConfigError> {
    Ok(number(lookup, name, 1..=max, problem)?.map(Duration::from_millis))
}

impl Smtp {
    /// Read and check every SMTP setting.
    pub fn from_env(lookup: &impl Fn(&str) -> Option<String>) -> Result<Smtp, ConfigError> {
        // Built without DKIM: a DKIM setting is refused first, whatever else is wrong.
        #[cfg(not(feature = "dkim"))]
        dkim(lookup)?;
        let Some(host) = get(lookup, SMTP_HOST).map(|h| h.trim().to_owned()) else {
            return fail(SMTP_HOST, "not set");
        };
        if !is_host(&host) {
            return fail(SMTP_HOST, "not a host name");
        }
        let mode = match get(lookup, SMTP_TLS).map(|m| m.trim().to_ascii_lowercase()) {
            Some(m) if m == "implicit" => TlsMode::Implicit,
            Some(m) if m == "starttls" => TlsMode::StartTls,
            Some(_) => {
                return fail(
                    SMTP_TLS,
                    "must be implicit or starttls (plaintext is not offered)",
                );
            }
            None => return fail(SMTP_TLS, "not set (implicit or starttls)"),
        };
        let port = match number(lookup, SMTP_PORT, 1..=65535, "not a port number")? {
            Some(p) => p as u16,
            None => mode.default_port(),
        };
        if check_port(port).is_err() {
            return fail(
                SMTP_PORT,
                "port 25 is blocked from Workers: use 587 (starttls) or 465 (implicit)",
            );
        }
        let mechanism = match get(lookup, SMTP_AUTH_MECHANISM) {
            None => None,
            Some(name) => match AuthMechanism::from_name(name.trim()) {
                // Workers sockets give no TLS exporter: -PLUS could never bind.
                Some(AuthMechanism::ScramSha256Plus) => {
                    return fail(
                        SMTP_AUTH_MECHANISM,
                        "SCRAM-SHA-256-PLUS needs TLS channel binding, which Workers sockets do not give",
                    );
                }
                Some(m) => Some(m),
                None => {
                    return fail(
                        SMTP_AUTH_MECHANISM,
                        "must be PLAIN, LOGIN, SCRAM-SHA-256, XOAUTH2 or OAUTHBEARER",
                    );
                }
            },
        };
        let token_mechanism = mechanism.is_some_and(AuthMechanism::takes_token);
        let credentials = match (get(lookup, SMTP_USER), get(lookup, SMTP_PASSWORD)) {
            (Some(user), password) if password.is_some() || token_mechanism => Some(Credentials {
                user,
                password: password.map(Password::new),
                mechanism,
            }),
            (Some(_), _) => {
                return fail(SMTP_PASSWORD, "not set while SMTP_USER is");
            }
            (None, Some(_)) => return fail(SMTP_USER, "not set while SMTP_PASSWORD is"),
            (None, None) if mechanism.is_some() => {
                return fail(SMTP_USER, "not set while SMTP_AUTH_MECHANISM is");
            }
            (None, None) => None,
        };
        let ehlo = match get(lookup, SMTP_EHLO) {
            Some(e) if Domain::new(e.trim()).is_ok() => Some(e.trim().to_owned()),
            Some(_) => return fail(SMTP_EHLO, "not a domain name"),
            None => None,
        };
        let timeout = millis(
            lookup,
            SMTP_TIMEOUT_MS,
            MAX_TIMEOUT_MS,
            "not a number of milliseconds from 1 to 600000",
        )?;
        let deadline = millis(
            lookup,
            SMTP_DEADLINE_MS,
            MAX_DEADLINE_MS,
            "not a number of milliseconds from 1 to 3600000",
        )?;
        let tls_server_name = match get(lookup, SMTP_TLS_SERVER_NAME) {
            Some(name) if is_host(name.trim()) => Some(name.trim().to_owned()),
            Some(_) => return fail(SMTP_TLS_SERVER_NAME, "not a host name"),
            None => None,
        };
        let proxy = proxy(lookup)?;
        let max_body_bytes = number(
            lookup,
            MAX_BODY_BYTES,
            1..=u64::MAX,
            "not a positive number of bytes",
        )?
        .unwrap_or(DEFAULT_MAX_BODY_BYTES);
        #[cfg(feature = "dkim")]
        let dkim = dkim(lookup)?;
        Ok(Smtp {
            host,
            port,
            mode,
            tls_server_name,
            proxy,
            credentials,
            ehlo,
            timeout,
            deadline,
            max_body_bytes,
            #[cfg(feature = "dkim")]
            dkim,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smtp_io_wasm::smtp_proto::connect::ProxyKind;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    fn problem(pairs: &[(&str, &str)]) -> ConfigError {
        Smtp::from_env(&env(pairs)).unwrap_err()
    }

    const BASE: [(&str, &str); 2] = [("SMTP_HOST", "smtp.example.com"), ("SMTP_TLS", "starttls")];

    /// smtp-dkim's test key (shared, not copied).
    #[cfg(feature = "dkim")]
    const DKIM_KEY: &str = include_str!("../../../../smtp-dkim/tests/keys/rsa2048-pkcs8.pem");

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        BASE.iter().chain(extra).copied().collect()
    }

    /// [`with`] the three DKIM settings.
    fn with_dkim(
        key: &'static str,
        selector: &'static str,
        domain: &'static str,
    ) -> Vec<(&'static str, &'static str)> {
        with(&[
            (DKIM_PRIVATE_KEY, key),
            (DKIM_SELECTOR, selector),
            (DKIM_DOMAIN, domain),
        ])
    }

    /// Built without the `dkim` feature: each DKIM setting alone, or all three, is refused with a
    /// problem that names the feature; empty ones count as unset.
    #[cfg(not(feature = "dkim"))]
    #[test]
    fn dkim_settings_need_the_feature() {
        let key = "-----BEGIN PRIVATE KEY-----\nSECRETBYTES\n-----END PRIVATE KEY-----\n";
        for (pairs, name) in [
            (with(&[(DKIM_PRIVATE_KEY, key)]), DKIM_PRIVATE_KEY),
            (with(&[(DKIM_SELECTOR, "s")]), DKIM_SELECTOR),
            (with(&[(DKIM_DOMAIN, "example.com")]), DKIM_DOMAIN),
            (with_dkim(key, "s", "example.com"), DKIM_PRIVATE_KEY),
            // Refused before any other setting is looked at.
            (vec![(DKIM_DOMAIN, "example.com")], DKIM_DOMAIN),
        ] {
            let e = problem(&pairs);
            assert_eq!((e.name, e.problem), (name, DKIM_NOT_BUILT));
            let text = e.to_string();
            assert!(
                text.contains("`dkim` feature") && text.contains("--features dkim"),
                "{text}"
            );
            assert!(!text.contains("SECRETBYTES"), "{text}");
        }
        assert!(Smtp::from_env(&env(&with_dkim("", "", ""))).is_ok());
    }

    #[cfg(feature = "dkim")]
    #[test]
    fn dkim_settings() {
        // None set: nothing signed.
        assert!(Smtp::from_env(&env(&BASE)).unwrap().dkim.is_none());
        let s = Smtp::from_env(&env(&with_dkim(DKIM_KEY, "sel2026", "Example.COM"))).unwrap();
        let signer = s.dkim.as_ref().unwrap();
        assert_eq!(
            (signer.domain(), signer.selector()),
            ("example.com", "sel2026")
        );
        let signed = signer
            .prepend(
                b"From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n",
                1_700_000_000,
            )
            .unwrap();
        assert!(signed.starts_with(b"DKIM-Signature: v=1; a=rsa-sha256;"));
        // The key's base64 never in Debug.
        let line = DKIM_KEY.lines().nth(1).unwrap();
        assert!(!format!("{s:?}").contains(line));

        // One without the others, each named.
        let e = problem(&with(&[
            (DKIM_PRIVATE_KEY, DKIM_KEY),
            (DKIM_DOMAIN, "example.com"),
        ]));
        assert_eq!(e.name, DKIM_SELECTOR);
        let e = problem(&with(&[(DKIM_PRIVATE_KEY, DKIM_KEY), (DKIM_SELECTOR, "s")]));
        assert_eq!(e.name, DKIM_DOMAIN);
        let e = problem(&with(&[(DKIM_SELECTOR, "s"), (DKIM_DOMAIN, "example.com")]));
        assert_eq!(e.name, DKIM_PRIVATE_KEY);

        // A malformed key, a bad selector or domain: named, the value never shown.
        let bogus =
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANSECRETBYTES\n-----END PRIVATE KEY-----\n";
        for (pairs, name) in [
            (with_dkim(bogus, "s", "example.com"), DKIM_PRIVATE_KEY),
            (
                with_dkim("SECRETBYTES", "s", "example.com"),
                DKIM_PRIVATE_KEY,
            ),
            (
                with_dkim(DKIM_KEY, "bad selector", "example.com"),
                DKIM_SELECTOR,
            ),
            (with_dkim(DKIM_KEY, "s", "exa mple.com"), DKIM_DOMAIN),
        ] {
            let e = problem(&pairs);
            assert_eq!(e.name, name);
            let text = e.to_string();
            assert!(
                !text.contains("SECRETBYTES") && !text.contains(line),
                "{text}"
            );
        }
    }

    #[test]
    fn minimal_and_defaults() {
        let s = Smtp::from_env(&env(&BASE)).unwrap();
        assert_eq!(s.host, "smtp.example.com");
        assert_eq!(s.mode, TlsMode::StartTls);
        assert_eq!(s.port, 587);
        assert!(s.credentials.is_none());
        assert_eq!(s.ehlo, None);
        assert_eq!(s.timeout, None);
        assert_eq!(s.deadline, None);
        assert_eq!(s.max_body_bytes, 10 * 1024 * 1024);
        let s = Smtp::from_env(&env(&[("SMTP_HOST", "h"), ("SMTP_TLS", "Implicit")])).unwrap();
        assert_eq!((s.mode, s.port), (TlsMode::Implicit, 465));
    }

    #[test]
    fn everything_set() {
        let s = Smtp::from_env(&env(&[
            ("SMTP_HOST", "mx.example.org"),
            ("SMTP_TLS", "implicit"),
            ("SMTP_PORT", "2465"),
            ("SMTP_USER", "me@example.org"),
            ("SMTP_PASSWORD", " pass with spaces "),
            ("SMTP_EHLO", "worker.example.org"),
            ("SMTP_TIMEOUT_MS", "1500"),
            ("SMTP_DEADLINE_MS", "90000"),
            ("MAX_BODY_BYTES", "4096"),
        ]))
        .unwrap();
        assert_eq!(s.port, 2465);
        let credentials = s.credentials.as_ref().unwrap();
        assert_eq!(credentials.user, "me@example.org");
        assert_eq!(
            credentials.password.as_ref().unwrap().expose(),
            " pass with spaces "
        );
        assert_eq!(credentials.mechanism, None);
        assert_eq!(s.ehlo.as_deref(), Some("worker.example.org"));
        assert_eq!(s.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(s.deadline, Some(Duration::from_secs(90)));
        assert_eq!(s.max_body_bytes, 4096);
    }

    #[test]
    fn plaintext_is_refused() {
        for mode in ["none", "plain", "off", "", "tls"] {
            let e = problem(&[("SMTP_HOST", "h"), ("SMTP_TLS", mode)]);
            assert_eq!(e.name, "SMTP_TLS", "{mode:?}");
        }
    }

    #[test]
    fn bad_settings() {
        assert_eq!(problem(&[("SMTP_TLS", "starttls")]).name, "SMTP_HOST");
        assert_eq!(
            problem(&[("SMTP_HOST", "a b"), ("SMTP_TLS", "starttls")]).name,
            "SMTP_HOST"
        );
        for port in ["0", "65536", "x", "-1", "25"] {
            let e = problem(&with(&[("SMTP_PORT", port)]));
            assert_eq!(e.name, "SMTP_PORT", "{port}");
        }
        assert_eq!(problem(&with(&[("SMTP_USER", "u")])).name, "SMTP_PASSWORD");
        assert_eq!(problem(&with(&[("SMTP_PASSWORD", "p")])).name, "SMTP_USER");
        let e = problem(&with(&[("SMTP_EHLO", "bad name\r\n")]));
        assert_eq!(e.name, "SMTP_EHLO");
        let e = problem(&with(&[("SMTP_TIMEOUT_MS", "0")]));
        assert_eq!(e.name, "SMTP_TIMEOUT_MS");
        for deadline in ["0", "3600001", "x", "-5", "1.5"] {
            let e = problem(&with(&[("SMTP_DEADLINE_MS", deadline)]));
            assert_eq!(e.name, "SMTP_DEADLINE_MS", "{deadline}");
        }
        let s = Smtp::from_env(&env(&with(&[("SMTP_DEADLINE_MS", "3600000")]))).unwrap();
        assert_eq!(s.deadline, Some(Duration::from_secs(3600)));
        let e = problem(&with(&[("MAX_BODY_BYTES", "0")]));
        assert_eq!(e.name, "MAX_BODY_BYTES");
    }

    #[test]
    fn mechanism_by_name() {
        let s = Smtp::from_env(&env(&with(&[
            ("SMTP_USER", "u"),
            ("SMTP_PASSWORD", "p"),
            ("SMTP_AUTH_MECHANISM", " login "),
        ])))
        .unwrap();
        let c = s.credentials.unwrap();
        assert_eq!(c.mechanism, Some(AuthMechanism::Login));
        assert!(!c.takes_token());
        // A token mechanism: the token may come with each request instead.
        let s = Smtp::from_env(&env(&with(&[
            ("SMTP_USER", "u"),
            ("SMTP_AUTH_MECHANISM", "XOAUTH2"),
        ])))
        .unwrap();
        let c = s.credentials.unwrap();
        assert!(c.takes_token() && c.password.is_none());
        // A password mechanism still needs its password; a mechanism needs a user.
        let e = problem(&with(&[
            ("SMTP_USER", "u"),
            ("SMTP_AUTH_MECHANISM", "PLAIN"),
        ]));
        assert_eq!(e.name, "SMTP_PASSWORD");
        let e = problem(&with(&[("SMTP_AUTH_MECHANISM", "OAUTHBEARER")]));
        assert_eq!(e.name, "SMTP_USER");
        for bad in ["CRAM-MD5", "SCRAM-SHA-256-PLUS", "plain login"] {
            let e = problem(&with(&[
                ("SMTP_USER", "u"),
                ("SMTP_PASSWORD", "p"),
                ("SMTP_AUTH_MECHANISM", bad),
            ]));
            assert_eq!(e.name, "SMTP_AUTH_MECHANISM", "{bad}");
        }
    }

    #[test]
    fn token_rules() {
        assert!(api_token(&env(&[])).is_err());
        assert!(api_token(&env(&[("API_TOKEN", "")])).is_err());
        assert!(api_token(&env(&[("API_TOKEN", "too-short")])).is_err());
        assert_eq!(
            api_token(&env(&[("API_TOKEN", "0123456789abcdef")])).unwrap(),
            "0123456789abcdef"
        );
    }

    /// The settings' `Debug` (what a stray `{:?}` in a log line would print) shows the user but
    /// never the password, and the password is a type that wipes itself on drop.
    #[test]
    fn the_password_is_redacted_and_wiped() {
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>(_: &T) {}
        let s = Smtp::from_env(&env(&[
            ("SMTP_HOST", "mx.example.org"),
            ("SMTP_TLS", "starttls"),
            ("SMTP_USER", "me@example.org"),
            ("SMTP_PASSWORD", "hunter2-secret"),
        ]))
        .unwrap();
        let shown = format!("{s:?} {s:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("me@example.org"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        let password = s.credentials.as_ref().unwrap().password.as_ref().unwrap();
        wiped_on_drop(&password.0);
        assert_eq!(password.expose(), "hunter2-secret");
    }

    #[test]
    fn proxy_and_tls_server_name() {
        // Unset (or empty): direct, the certificate checked for SMTP_HOST.
        let s =
            Smtp::from_env(&env(&with(&[(SMTP_PROXY, ""), (SMTP_TLS_SERVER_NAME, "")]))).unwrap();
        assert!(s.proxy.is_none() && s.tls_server_name.is_none());
        let s = Smtp::from_env(&env(&with(&[
            (SMTP_PROXY, " socks5://user:pa%3Ass@127.0.0.1:1080 "),
            (SMTP_TLS_SERVER_NAME, " mx.example.net "),
        ])))
        .unwrap();
        let proxy = s.proxy.as_ref().unwrap();
        assert_eq!(proxy.kind(), ProxyKind::Socks5);
        assert_eq!((proxy.host(), proxy.port()), ("127.0.0.1", 1080));
        let (user, password) = proxy.credentials().unwrap();
        assert_eq!((user, password.expose()), ("user", &b"pa:ss"[..]));
        assert_eq!(s.tls_server_name.as_deref(), Some("mx.example.net"));
        let s = Smtp::from_env(&env(&with(&[(SMTP_PROXY, "http://proxy.internal:3128")]))).unwrap();
        let proxy = s.proxy.as_ref().unwrap();
        assert_eq!(proxy.kind(), ProxyKind::HttpConnect);
        assert_eq!((proxy.host(), proxy.port()), ("proxy.internal", 3128));
        assert!(proxy.credentials().is_none());

        // What no certificate can be checked for (a port, an escape, a list): refused here,
        // not found by every request as a TLS failure worth retrying.
        for bad in [
            "mx.example.net/x",
            "a b",
            "me@mx",
            "mx.example.net:465",
            "mx%2eexample.net",
            "mx.example.net,backup.example.net",
            "192.0.2.1]",
        ] {
            let e = problem(&with(&[(SMTP_TLS_SERVER_NAME, bad)]));
            assert_eq!(e.name, SMTP_TLS_SERVER_NAME, "{bad:?}");
            let e = problem(&[(SMTP_HOST, bad), (SMTP_TLS, "starttls")]);
            assert_eq!(e.name, SMTP_HOST, "{bad:?}");
        }
        for good in ["192.0.2.1", "[2001:db8::25]", "2001:db8::25", "mx.example.net."] {
            let s = Smtp::from_env(&env(&with(&[(SMTP_TLS_SERVER_NAME, good)]))).unwrap();
            assert_eq!(s.tls_server_name.as_deref(), Some(good));
        }
    }

    /// The access token a request brings: absent is no token; empty, or holding a control
    /// character, is the request's mistake (a 400 before connecting), never a token.
    #[test]
    fn a_request_token_must_be_a_token() {
        assert!(access_token(None).unwrap().is_none());
        let token = access_token(Some("ya29.a0-token".into())).unwrap().unwrap();
        assert_eq!(token.expose(), "ya29.a0-token");
        for bad in ["", "abc\tdef", "abc\r\ndef", "\u{7f}"] {
            assert!(access_token(Some(bad.into())).is_err(), "{bad:?}");
        }
    }

    /// A malformed SMTP_PROXY is named, its value (password included) never shown; a good one
    /// shows host, port and user in `Debug`, never the password.
    #[test]
    fn the_proxy_password_never_shows() {
        for bad in [
            "ftp://user:hunter2-proxy@127.0.0.1:1080",
            "socks5://user:hunter2-proxy@127.0.0.1",
            "socks5://user:hunter2-proxy@127.0.0.1:0",
            "http://user:hunter2-proxy%zz@127.0.0.1:3128",
            "http://user:hunter2-proxy%0a@127.0.0.1:3128",
            "user:hunter2-proxy@127.0.0.1:3128",
        ] {
            let e = problem(&with(&[(SMTP_PROXY, bad)]));
            assert_eq!(e.name, SMTP_PROXY, "{bad}");
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        let s = Smtp::from_env(&env(&with(&[(
            SMTP_PROXY,
            "socks5://proxy-user:hunter2-proxy@127.0.0.1:1080",
        )])))
        .unwrap();
        let shown = format!("{s:?} {s:#?} {:?}", s.proxy);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("127.0.0.1") && shown.contains("proxy-user"),
            "{shown}"
        );
    }

    #[test]
    fn errors_never_show_values() {
        let e = problem(&[("SMTP_HOST", "h"), ("SMTP_TLS", "hunter2-secret")]);
        assert!(!e.to_string().contains("hunter2"));
    }
}
