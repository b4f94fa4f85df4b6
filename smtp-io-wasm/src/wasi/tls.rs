//! [`TlsConfig`]: which certificates the WASI client trusts, as a rustls configuration (rustls
//! runs inside the guest: `wasi:sockets` 0.2 has no TLS).

use std::fmt;
use std::io;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

/// The trust settings for TLS connections (implicit TLS and STARTTLS) of the WASI client.
///
/// The default, [`TlsConfig::webpki_roots`], verifies the server's chain against the Mozilla
/// root program (bundled by `webpki-roots`, so the guest needs no file system) and checks that
/// the certificate names the host that was dialled. The clock for validity dates is
/// `wasi:clocks/wall-clock`. Cloning is cheap.
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<ClientConfig>,
    trust: &'static str,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("trust", &self.trust)
            .finish_non_exhaustive()
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig::webpki_roots()
    }
}

fn with_roots(roots: RootCertStore) -> ClientConfig {
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
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
            trust: "webpki-roots",
        }
    }

    /// Trust only the CA certificates in `pem` (one or more `BEGIN CERTIFICATE` blocks), with
    /// the host name checked: a private relay or a test CA.
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
            trust: "custom CA",
        })
    }

    /// Use a rustls configuration built by the caller (client certificates, other roots...).
    pub fn from_rustls(config: Arc<ClientConfig>) -> TlsConfig {
        TlsConfig {
            config,
            trust: "caller's rustls config",
        }
    }

    /// The rustls configuration.
    pub fn rustls_config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }
}

/// Parse the name the certificate must carry: a DNS name or an IP address.
pub(crate) fn server_name(host: &str) -> io::Result<ServerName<'static>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{host:?} is not a valid TLS server name: {e}"),
        )
    })
}
