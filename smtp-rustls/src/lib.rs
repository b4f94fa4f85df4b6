//! # smtp-rustls: the rustls side of the smtp-rs adapters
//!
//! What every adapter that runs rustls itself (`smtp-io-tokio` over tokio-rustls, the WASI 0.2
//! client of `smtp-io-wasm` in the guest) needs, written once: which certificates to trust
//! ([`TlsConfig`], re-exported by both), the name the certificate must carry ([`server_name`]),
//! the RFC 9266 `tls-exporter` channel binding for SCRAM-SHA-256-PLUS ([`tls_exporter`]), and
//! the state of a connection that upgrades in place ([`Upgradable`], [`TlsTarget`]). The
//! sockets, the handshake loop and the timers stay in each adapter.
//!
//! Every configuration uses rustls' `ring` provider and its safe default protocol versions
//! (TLS 1.3 and 1.2), and checks that the certificate names the host that was dialled.
// docs.rs (`--cfg docsrs`, see Cargo.toml): each item that needs a feature says so.
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

mod upgrade;

pub use upgrade::{TlsTarget, Upgradable, debug_connection, lost_in_handshake};

/// The trust methods of an adapter's `ConnectOptions` that keeps a [`TlsConfig`] in a field
/// named `tls` (smtp-io-std, smtp-io-tokio, the WASI client): `with_tls_config` and
/// `tls_config`, with the same names and docs on each. Invoke it inside the `impl` block.
///
/// ```
/// use smtp_rustls::TlsConfig;
///
/// struct ConnectOptions {
///     tls: TlsConfig,
/// }
///
/// impl ConnectOptions {
///     smtp_rustls::tls_config_methods!();
/// }
///
/// let options = ConnectOptions { tls: TlsConfig::default() }
///     .with_tls_config(TlsConfig::insecure_accept_any_certificate_for_tests_only());
/// assert!(options.tls_config().is_insecure());
/// ```
#[macro_export]
macro_rules! tls_config_methods {
    () => {
        /// Which certificates to trust, and the client certificate to present when the
        /// configuration has one (mutual TLS). Default: the Mozilla roots (`webpki-roots`).
        pub fn with_tls_config(mut self, tls: $crate::TlsConfig) -> Self {
            self.tls = tls;
            self
        }

        /// The TLS configuration: the certificates trusted and any client certificate.
        pub fn tls_config(&self) -> &$crate::TlsConfig {
            &self.tls
        }
    };
}

/// The trust settings for TLS connections (implicit TLS and STARTTLS).
///
/// The default, [`TlsConfig::webpki_roots`], verifies the server's certificate chain against the
/// Mozilla root program (bundled by `webpki-roots`, so no file system is needed: it works in a
/// WASI guest too) and checks that the certificate names the host that was dialled. The clock
/// for validity dates is the system time (`wasi:clocks/wall-clock` in a WASI guest). Cloning is
/// cheap (the rustls configuration is shared).
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<ClientConfig>,
    trust: Trust,
    /// Whether a client certificate is presented (mutual TLS).
    client_certificate: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trust {
    WebPki,
    #[cfg(feature = "native-roots")]
    Native,
    CustomCa,
    Insecure,
    Rustls,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("trust", &self.trust)
            .field("client_certificate", &self.client_certificate)
            .finish_non_exhaustive()
    }
}

impl Default for TlsConfig {
    /// [`webpki_roots`](Self::webpki_roots), built once per process and shared (a clone is an
    /// `Arc` clone): every connection opened with the default trust uses one rustls
    /// `ClientConfig`, and so one TLS session cache.
    fn default() -> Self {
        static DEFAULT: std::sync::OnceLock<TlsConfig> = std::sync::OnceLock::new();
        DEFAULT.get_or_init(TlsConfig::webpki_roots).clone()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn with_roots(roots: RootCertStore) -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

impl TlsConfig {
    /// Trust the Mozilla root program (`webpki-roots`), with the host name checked. The default.
    pub fn webpki_roots() -> TlsConfig {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        TlsConfig {
            config: Arc::new(with_roots(roots)),
            trust: Trust::WebPki,
            client_certificate: false,
        }
    }

    /// Trust the operating system's certificate store (on Linux the CA bundle OpenSSL uses;
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR` override it), with the host name checked. Needs the
    /// `native-roots` feature.
    ///
    /// Fails with `NotFound` when no usable certificate is found; certificates that do not parse
    /// are skipped.
    #[cfg(feature = "native-roots")]
    pub fn native_roots() -> io::Result<TlsConfig> {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(found.certs);
        if roots.is_empty() {
            let why: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "no usable certificate in the platform store ({})",
                    why.join("; ")
                ),
            ));
        }
        Ok(TlsConfig {
            config: Arc::new(with_roots(roots)),
            trust: Trust::Native,
            client_certificate: false,
        })
    }

    /// Trust only the CA certificates in `pem` (one or more `BEGIN CERTIFICATE` blocks), with the
    /// host name checked. Use it for a private mail relay or a test CA.
    ///
    /// Fails with `InvalidData` when `pem` holds no usable certificate.
    pub fn from_ca_pem(pem: &[u8]) -> io::Result<TlsConfig> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            roots
                .add(cert)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
        if roots.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "no CA certificate found in the PEM data",
            ));
        }
        Ok(TlsConfig {
            config: Arc::new(with_roots(roots)),
            trust: Trust::CustomCa,
            client_certificate: false,
        })
    }

    /// [`from_ca_pem`](Self::from_ca_pem) with the PEM read from a file.
    pub fn from_ca_file(path: impl AsRef<Path>) -> io::Result<TlsConfig> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|e| {
            io::Error::new(e.kind(), format!("reading CA file {}: {e}", path.display()))
        })?;
        TlsConfig::from_ca_pem(&pem)
    }

    /// Use a rustls configuration built by the caller (client certificates, the platform's
    /// verifier, other ALPN...).
    pub fn from_rustls(config: Arc<ClientConfig>) -> TlsConfig {
        TlsConfig {
            config,
            trust: Trust::Rustls,
            client_certificate: false,
        }
    }

    /// **Accept any certificate for any host.** The connection is encrypted but not
    /// authenticated, so anyone on the path can read and change the mail and steal the password.
    /// For tests against throw-away servers only; the long name is on purpose.
    pub fn insecure_accept_any_certificate_for_tests_only() -> TlsConfig {
        let provider = provider();
        let verifier = Arc::new(AcceptAnyCertificate(provider.clone()));
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        TlsConfig {
            config: Arc::new(config),
            trust: Trust::Insecure,
            client_certificate: false,
        }
    }

    /// The same trust, presenting this client certificate (mutual TLS: relays that
    /// authenticate clients by certificate, with or without AUTH after it). `chain` is the
    /// certificate first, then any intermediates; `key` its private key (PKCS #8, PKCS #1 or
    /// SEC1). The key is never shown by `Debug` or in errors.
    ///
    /// Fails with `InvalidInput` when the chain is empty or the key is not one the crypto
    /// provider can sign with; a key that does not match the certificate fails at the
    /// handshake.
    pub fn with_client_certificate(
        &self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> io::Result<TlsConfig> {
        if chain.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the client certificate chain is empty",
            ));
        }
        let provider = self.config.crypto_provider().clone();
        let signing_key = provider.key_provider.load_private_key(key).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the client key is not a private key this TLS library can sign with",
            )
        })?;
        let mut config = (*self.config).clone();
        config.client_auth_cert_resolver = Arc::new(ClientCertificate(Arc::new(
            rustls::sign::CertifiedKey::new(chain, signing_key),
        )));
        Ok(TlsConfig {
            config: Arc::new(config),
            trust: self.trust,
            client_certificate: true,
        })
    }

    /// [`with_client_certificate`](Self::with_client_certificate) from PEM: the certificate
    /// (and any intermediates) in `cert_pem`, its private key in `key_pem`.
    pub fn with_client_certificate_pem(
        &self,
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> io::Result<TlsConfig> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("client certificate PEM: {e}"),
                )
            })?;
        // The key's own error text could quote it: say only what was wrong.
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "no private key (PKCS #8, PKCS #1 or SEC1 PEM) in the client key data",
            )
        })?;
        self.with_client_certificate(chain, key)
    }

    /// [`with_client_certificate_pem`](Self::with_client_certificate_pem) with both read from
    /// files.
    pub fn with_client_certificate_files(
        &self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> io::Result<TlsConfig> {
        let read = |path: &Path, what: &str| {
            std::fs::read(path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("reading the client {what} {}: {e}", path.display()),
                )
            })
        };
        let cert_pem = read(cert.as_ref(), "certificate")?;
        // The key's bytes are wiped when dropped.
        let key_pem = zeroize::Zeroizing::new(read(key.as_ref(), "key")?);
        self.with_client_certificate_pem(&cert_pem, &key_pem)
    }

    /// Whether a client certificate is presented.
    pub fn has_client_certificate(&self) -> bool {
        self.client_certificate
    }

    /// True for [`insecure_accept_any_certificate_for_tests_only`](Self::insecure_accept_any_certificate_for_tests_only).
    pub fn is_insecure(&self) -> bool {
        self.trust == Trust::Insecure
    }

    /// The rustls configuration.
    pub fn rustls_config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }
}

/// A client certificate presented to whatever the server asks.
#[derive(Debug)]
struct ClientCertificate(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for ClientCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Parse the name the certificate must carry: a DNS name or an IP address (an IPv6 literal may
/// keep its brackets, `[::1]`).
///
/// Fails with `InvalidInput`, naming the host, when it is neither.
pub fn server_name(host: &str) -> io::Result<ServerName<'static>> {
    // A matched pair of brackets only: `127.0.0.1]` is not a name.
    let host = (host.strip_prefix('[').and_then(|h| h.strip_suffix(']'))).unwrap_or(host);
    ServerName::try_from(host.to_owned()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{host:?} is not a valid TLS server name: {e}"),
        )
    })
}

/// Fail with [`SmtpError::InvalidInput`](smtp_proto::SmtpError::InvalidInput) when `name`
/// cannot be a TLS server name (a DNS name, or an IP address, an IPv6 one in brackets or not).
/// Checked before any I/O: found during the handshake, the mistake would look like a TLS
/// failure worth retrying.
pub fn check_server_name(name: &str) -> Result<(), smtp_proto::SmtpError> {
    use smtp_proto::error::{ArgumentError, Field, InvalidInputError};
    match server_name(name) {
        Ok(_) => Ok(()),
        Err(_) => Err(InvalidInputError::argument(
            Field::Server,
            ArgumentError::Syntax("not a valid TLS server name (a DNS name or an IP address)"),
        )
        .into()),
    }
}

/// The connection's RFC 9266 `tls-exporter` channel binding: rustls' keying material exporter
/// (RFC 8446 section 7.5) with the label [`TLS_EXPORTER_LABEL`](smtp_proto::sasl::TLS_EXPORTER_LABEL)
/// and an empty context, 32 bytes, on TLS 1.3 only: `None` on TLS 1.2 (RFC 9266 binds TLS 1.3)
/// and while no version is negotiated yet.
pub fn tls_exporter(conn: &ClientConnection) -> Option<[u8; 32]> {
    if conn.protocol_version()? != rustls::ProtocolVersion::TLSv1_3 {
        return None;
    }
    conn.export_keying_material([0u8; 32], smtp_proto::sasl::TLS_EXPORTER_LABEL, Some(&[]))
        .ok()
}

/// The verifier of [`TlsConfig::insecure_accept_any_certificate_for_tests_only`]: signatures are
/// still checked (so the handshake is sound), the certificate itself is not.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// An implicit-TLS handshake's I/O error, explained when the server is not speaking TLS at all:
/// a plaintext SMTP server answers the ClientHello with its `220` greeting (or a `500`), which
/// rustls reads as a record of no known content type. That is the 465/587 mix-up (implicit TLS
/// to a port that expects STARTTLS or no TLS), and the error then says what to change. Any
/// other error is returned as it is.
pub fn explain_handshake_error(error: io::Error) -> io::Error {
    let plaintext = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|e| {
            matches!(
                e,
                rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)
            )
        });
    if !plaintext {
        return error;
    }
    io::Error::new(
        io::ErrorKind::InvalidData,
        "the server answered the TLS handshake in plain text: this port speaks SMTP before TLS \
         (submission, usually 587, or 25). Connect with STARTTLS (TlsMode::StartTls, \
         smtp-send --tls starttls), or use the server's implicit-TLS port (usually 465)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default trust is built once: a pool that opens a connection per reconnect spent
    /// ~200 µs of CPU building the same webpki-roots configuration every time.
    #[test]
    fn the_default_is_built_once_and_shared() {
        let a = TlsConfig::default().rustls_config();
        let b = TlsConfig::default().rustls_config();
        assert!(Arc::ptr_eq(&a, &b));
        // An explicit call still builds a configuration (and session cache) of its own.
        assert!(!Arc::ptr_eq(&a, &TlsConfig::webpki_roots().rustls_config()));
    }

    #[test]
    fn ca_pem_without_certificates_is_refused() {
        let err = TlsConfig::from_ca_pem(b"not a pem").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn missing_ca_file_names_the_path() {
        let err = TlsConfig::from_ca_file("/nonexistent/ca.pem").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn server_names_accept_hosts_and_ip_literals() {
        assert!(server_name("smtp.example.com").is_ok());
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("[::1]").is_ok());
        assert!(server_name("bad host").is_err());
    }

    #[cfg(feature = "native-roots")]
    #[test]
    fn native_roots_load_the_system_store_or_say_why() {
        match TlsConfig::native_roots() {
            Ok(config) => assert!(format!("{config:?}").contains("Native")),
            Err(e) => assert!(e.to_string().contains("platform store"), "{e}"),
        }
    }

    #[test]
    fn insecure_mode_is_visible() {
        assert!(TlsConfig::insecure_accept_any_certificate_for_tests_only().is_insecure());
        assert!(!TlsConfig::default().is_insecure());
        let dbg = format!("{:?}", TlsConfig::default());
        assert!(dbg.contains("WebPki"), "{dbg}");
    }
}
