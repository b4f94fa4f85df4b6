//! What a connection needs before it exists: the TLS mode, the connect options (one type for
//! Workers and WASI) and the port check. Compiled on every target, so it is tested on the host.

use smtp_proto::SmtpError;
use smtp_proto::connect::ConnectSettings;
use smtp_proto::error::{ArgumentError, Field, InvalidInputError};

/// How the connection is protected: smtp-proto's, shared by every adapter. On Workers,
/// [`TlsMode::Implicit`] opens the socket with `secureTransport: "on"` and [`TlsMode::StartTls`]
/// with `"starttls"`; [`TlsMode::None`]'s usual port 25 is blocked there ([`check_port`]), so a
/// plaintext test server listens elsewhere (2525 is common).
pub use smtp_proto::TlsMode;

/// The port Cloudflare blocks for outbound connections from Workers.
pub const BLOCKED_PORT: u16 = 25;

/// Refuse port 25 before connecting: Cloudflare blocks outbound connections to it from Workers
/// in production (`connect()` would fail later and less clearly). Use 587 (STARTTLS) or 465
/// (implicit TLS) of a submission server instead.
///
/// The error is [`SmtpError::InvalidInput`] (not transient: retrying cannot help). Every other
/// port passes, so loopback tests use any other port.
///
/// ```
/// use smtp_io_wasm::{SmtpError, check_port};
///
/// assert!(check_port(587).is_ok());
/// assert!(matches!(check_port(25), Err(SmtpError::InvalidInput(_))));
/// ```
pub fn check_port(port: u16) -> Result<(), SmtpError> {
    if port == BLOCKED_PORT {
        return Err(InvalidInputError::Argument {
            field: Field::Parameter,
            reason: ArgumentError::Syntax(
                "port 25 is blocked for outbound connections from Cloudflare Workers; use a \
                 submission port: 587 (STARTTLS) or 465 (implicit TLS)",
            ),
        }
        .into());
    }
    Ok(())
}

/// How to open a connection, on either runtime: TLS mode, connect timeout, the client's options,
/// and what only one runtime has (Workers: the port-25 rule; WASI: the rustls trust).
///
/// The settings every adapter shares, with the same names as `smtp-io-tokio`'s, come from
/// [`smtp_proto::connect::ConnectSettings`]: both runtimes honour a TLS server name and a proxy
/// (SOCKS5 or HTTP CONNECT, TLS still end to end with the SMTP server), and WASI a local
/// address. What a runtime cannot do is refused before any I/O with
/// [`SmtpError::InvalidInput`], never skipped: a local address on Workers.
///
/// The defaults: 30 s to open the connection, RFC 5321 reply timeouts (on the runtime's timer:
/// `setTimeout` on Workers, `wasi:clocks` on WASI). On Workers the runtime checks certificates
/// against its roots and the host name, and port 25 is refused ([`check_port`],
/// `allow_port_25`). On WASI rustls checks them, against `webpki-roots` by
/// default (`with_tls_config`), and port 25 is not refused: a WASI host may well reach it.
///
/// ```
/// use std::time::Duration;
/// use smtp_io_wasm::{BoundedPolicy, ConnectOptions, SmtpClientOptions, TlsMode};
///
/// let options = ConnectOptions::new(TlsMode::StartTls)
///     .with_connect_timeout(Duration::from_secs(10))
///     .with_reply_timeout(Duration::from_secs(20))
///     .map_client_options(|o| o.with_policy(Box::new(BoundedPolicy::new().max_recipients(20))));
/// assert_eq!(options.mode(), TlsMode::StartTls);
/// // In a Worker or a WASI component: options.connect("smtp.example.com", 587, "me.example").await?
/// ```
#[derive(Debug)]
pub struct ConnectOptions {
    pub(crate) settings: ConnectSettings,
    /// Workers only: let port 25 through [`check_port`].
    #[cfg(not(all(target_arch = "wasm32", target_os = "wasi", target_env = "p2")))]
    pub(crate) allow_port_25: bool,
    /// WASI only: the certificates rustls trusts.
    #[cfg(all(target_arch = "wasm32", target_os = "wasi", target_env = "p2"))]
    pub(crate) tls: crate::wasi::TlsConfig,
}

smtp_proto::connect_options! {
    ConnectOptions {
        #[cfg(not(all(target_arch = "wasm32", target_os = "wasi", target_env = "p2")))]
        allow_port_25: false,
        #[cfg(all(target_arch = "wasm32", target_os = "wasi", target_env = "p2"))]
        tls: crate::wasi::TlsConfig::default(),
    }
}

/// The Workers part: Cloudflare's port-25 rule (here and on the host, where it is tested).
#[cfg(not(all(target_arch = "wasm32", target_os = "wasi", target_env = "p2")))]
impl ConnectOptions {
    /// Let port 25 through [`check_port`]: only for workerd run outside Cloudflare's network
    /// (self-hosted, or local with a relay on 25). On Cloudflare the connection would fail.
    pub fn allow_port_25(mut self, allow: bool) -> ConnectOptions {
        self.allow_port_25 = allow;
        self
    }

    /// Check the port against the rule above (and the override).
    pub fn check_port(&self, port: u16) -> Result<(), SmtpError> {
        if self.allow_port_25 {
            Ok(())
        } else {
            check_port(port)
        }
    }
}

/// The WASI part: the certificates rustls trusts.
#[cfg(all(target_arch = "wasm32", target_os = "wasi", target_env = "p2"))]
impl ConnectOptions {
    smtp_rustls::tls_config_methods!();

    /// The former name of [`with_tls_config`](Self::with_tls_config), kept for existing callers.
    pub fn with_tls(self, tls: crate::wasi::TlsConfig) -> ConnectOptions {
        self.with_tls_config(tls)
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::*;

    #[test]
    fn port_25_is_refused_before_connecting() {
        let err = check_port(25).unwrap_err();
        assert!(matches!(err, SmtpError::InvalidInput(_)), "{err:?}");
        assert!(!err.is_transient());
        let text = err.to_string();
        assert!(text.contains("port 25") && text.contains("587"), "{text}");
        for port in [2525, 587, 465, 1025, 0, 65535] {
            assert!(check_port(port).is_ok(), "{port}");
        }
    }

    #[cfg(not(all(target_arch = "wasm32", target_os = "wasi", target_env = "p2")))]
    #[test]
    fn port_25_override() {
        let options = ConnectOptions::new(TlsMode::None);
        assert!(options.check_port(25).is_err());
        let options = options.allow_port_25(true);
        assert!(options.check_port(25).is_ok());
    }

    #[test]
    fn defaults() {
        assert_eq!(TlsMode::Implicit.default_port(), 465);
        assert_eq!(TlsMode::StartTls.default_port(), 587);
        // The shared mode's usual plaintext port is the one Workers cannot reach.
        assert_eq!(TlsMode::None.default_port(), BLOCKED_PORT);
        assert!(check_port(TlsMode::None.default_port()).is_err());
        let options = ConnectOptions::new(TlsMode::Implicit);
        assert_eq!(options.mode(), TlsMode::Implicit);
        assert_eq!(
            options.settings().connect_timeout(),
            Duration::from_secs(30)
        );
    }

    /// A reply timeout set after a deadline keeps the deadline and the write-progress rule
    /// (it used to replace every timeout, dropping both).
    #[test]
    fn reply_timeout_keeps_the_deadline() {
        let options = ConnectOptions::new(TlsMode::Implicit)
            .map_client_options(|o| o.with_deadline(Duration::from_secs(90)))
            .with_reply_timeout(Duration::from_secs(7));
        let timeouts = options.settings().session_config().timeouts;
        assert_eq!(timeouts.total, Some(Duration::from_secs(90)));
        assert_eq!(timeouts.command, Duration::from_secs(7));
        assert_eq!(timeouts.data_end, Duration::from_secs(7));
        assert_eq!(
            timeouts.min_write_rate,
            smtp_proto::Timeouts::default().min_write_rate
        );
    }
}
