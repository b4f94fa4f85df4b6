//! A throw-away PKI generated at run time: a test CA ([`TestCa`]) and leaf certificates it signs
//! for any set of names ([`Leaf`]), as rustls server configurations.
//!
//! [`shared`] is the one PKI of a test binary (key generation is the slow part): a CA, a leaf for
//! `localhost` / `127.0.0.1` and a leaf for `wrong.example`.
//!
//! ```
//! use smtp_testkit::certs::TestCa;
//!
//! let ca = TestCa::new("example test CA")?;
//! let leaf = ca.issue(&["localhost", "127.0.0.1"])?;
//! let config = leaf.server_config()?;
//! assert!(ca.pem().starts_with("-----BEGIN CERTIFICATE-----"));
//! # let _ = config;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::{Arc, OnceLock};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Why a certificate or a server configuration could not be made.
#[derive(Debug)]
pub enum CertError {
    /// Key generation or signing failed.
    Generate(rcgen::Error),
    /// rustls refused the configuration.
    Tls(rustls::Error),
}

impl std::fmt::Display for CertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertError::Generate(e) => write!(f, "certificate generation failed: {e}"),
            CertError::Tls(e) => write!(f, "TLS server configuration refused: {e}"),
        }
    }
}

impl std::error::Error for CertError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CertError::Generate(e) => Some(e),
            CertError::Tls(e) => Some(e),
        }
    }
}

impl From<rcgen::Error> for CertError {
    fn from(e: rcgen::Error) -> Self {
        CertError::Generate(e)
    }
}

impl From<rustls::Error> for CertError {
    fn from(e: rustls::Error) -> Self {
        CertError::Tls(e)
    }
}

impl From<CertError> for std::io::Error {
    fn from(e: CertError) -> Self {
        std::io::Error::other(e)
    }
}

/// A self-signed certificate authority with its key, able to issue server certificates.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A fresh CA whose subject common name is `common_name`.
    pub fn new(common_name: &str) -> Result<TestCa, CertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key)?;
        Ok(TestCa { cert, key })
    }

    /// A server certificate for `names` (DNS names or IP addresses; the first is also the common
    /// name), signed by this CA. `names` must not be empty.
    pub fn issue(&self, names: &[&str]) -> Result<Leaf, CertError> {
        let first = names
            .first()
            .ok_or(rcgen::Error::CouldNotParseCertificate)?;
        let names = names.iter().map(|n| (*n).to_owned()).collect();
        let (cert, key) = self.sign(names, first, ExtendedKeyUsagePurpose::ServerAuth)?;
        Ok(Leaf::new(&cert, &key))
    }

    /// A client certificate (extended key usage `clientAuth`) for `common_name`, signed by this
    /// CA, for mutual TLS; with its certificate and key in PEM too, for files a CLI reads.
    pub fn issue_client(&self, common_name: &str) -> Result<ClientLeaf, CertError> {
        let (cert, key) =
            self.sign(Vec::new(), common_name, ExtendedKeyUsagePurpose::ClientAuth)?;
        Ok(ClientLeaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            leaf: Leaf::new(&cert, &key),
        })
    }

    /// A fresh key and a certificate for it signed by this CA: not a CA itself, for `names`
    /// (subject alternative names) and `common_name`, with the extended key usage `usage`.
    fn sign(
        &self,
        names: Vec<String>,
        common_name: &str,
        usage: ExtendedKeyUsagePurpose,
    ) -> Result<(rcgen::Certificate, KeyPair), CertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name.to_owned());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok((cert, key))
    }

    /// A server configuration presenting `leaf` that requires every client to present a
    /// certificate signed by this CA (mutual TLS).
    pub fn server_config_requiring_clients(
        &self,
        leaf: &Leaf,
    ) -> Result<Arc<ServerConfig>, CertError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.der().clone())?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|e| CertError::Tls(rustls::Error::General(e.to_string())))?;
        let config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![leaf.cert.clone()], leaf.key())?;
        Ok(Arc::new(config))
    }

    /// The CA certificate in PEM (what a client trusts, e.g. `TlsConfig::from_ca_pem`).
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA certificate in DER.
    pub fn der(&self) -> &CertificateDer<'static> {
        self.cert.der()
    }
}

/// A client certificate with its private key, in DER and PEM.
#[derive(Clone)]
pub struct ClientLeaf {
    /// The certificate in PEM.
    pub cert_pem: String,
    /// The private key in PEM (PKCS #8).
    pub key_pem: String,
    /// The same certificate and key in DER.
    leaf: Leaf,
}

impl std::fmt::Debug for ClientLeaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientLeaf").finish_non_exhaustive()
    }
}

impl ClientLeaf {
    /// The certificate in DER.
    pub fn cert(&self) -> &CertificateDer<'static> {
        self.leaf.cert()
    }

    /// The private key (PKCS #8).
    pub fn key(&self) -> PrivateKeyDer<'static> {
        self.leaf.key()
    }
}

/// A server certificate with its private key.
#[derive(Clone)]
pub struct Leaf {
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

impl std::fmt::Debug for Leaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaf").finish_non_exhaustive()
    }
}

impl Leaf {
    /// `cert` and its `key`, in DER.
    fn new(cert: &rcgen::Certificate, key: &KeyPair) -> Leaf {
        Leaf {
            cert: cert.der().clone(),
            key: key.serialize_der(),
        }
    }

    /// The certificate in DER.
    pub fn cert(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The private key (PKCS #8).
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()))
    }

    /// A rustls server configuration (ring, TLS 1.2 and 1.3) presenting this certificate.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, CertError> {
        self.server_config_with(rustls::DEFAULT_VERSIONS)
    }

    /// [`server_config`](Self::server_config) limited to `versions`.
    pub fn server_config_with(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Result<Arc<ServerConfig>, CertError> {
        let config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(versions)?
                .with_no_client_auth()
                .with_single_cert(vec![self.cert.clone()], self.key())?;
        Ok(Arc::new(config))
    }
}

/// A rustls client configuration (ring, TLS 1.2 and 1.3) that trusts only the CA certificates in
/// `ca_pem`, for a test client of a server using these certificates.
pub fn client_config(ca_pem: &[u8]) -> Result<Arc<ClientConfig>, CertError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| CertError::Tls(rustls::Error::General(e.to_string())))?;
        roots.add(cert)?;
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The PKI shared by the tests of one binary: a CA, a leaf for `localhost` / `127.0.0.1` and a
/// leaf for `wrong.example`.
pub struct TestPki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    localhost: Leaf,
    wrong_host: Leaf,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki").finish_non_exhaustive()
    }
}

impl TestPki {
    /// Generate a fresh one (use [`shared`] unless a test needs its own CA).
    pub fn generate() -> Result<TestPki, CertError> {
        let ca = TestCa::new("smtp-testkit throw-away CA")?;
        Ok(TestPki {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            localhost: ca.issue(&["localhost", "127.0.0.1"])?,
            wrong_host: ca.issue(&["wrong.example"])?,
        })
    }

    /// The CA certificate in PEM, for `TlsConfig::from_ca_pem`.
    pub fn ca_pem(&self) -> &[u8] {
        self.ca_pem.as_bytes()
    }

    /// The CA certificate in DER.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// The `localhost` / `127.0.0.1` leaf.
    pub fn localhost(&self) -> &Leaf {
        &self.localhost
    }

    /// A client configuration trusting only this CA ([`client_config`]).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        client_config(self.ca_pem()).expect("the CA PEM parses")
    }

    /// A server configuration presenting the `localhost` / `127.0.0.1` certificate.
    pub fn localhost_config(&self) -> Arc<ServerConfig> {
        self.localhost
            .server_config()
            .expect("valid server certificate and key")
    }

    /// [`localhost_config`](Self::localhost_config) limited to TLS 1.2 (no `tls-exporter`
    /// channel binding there).
    pub fn localhost_tls12_config(&self) -> Arc<ServerConfig> {
        self.localhost
            .server_config_with(&[&rustls::version::TLS12])
            .expect("valid server certificate and key")
    }

    /// A server configuration presenting a certificate for `wrong.example` (valid chain, wrong
    /// name for a client dialling localhost).
    pub fn wrong_host_config(&self) -> Arc<ServerConfig> {
        self.wrong_host
            .server_config()
            .expect("valid server certificate and key")
    }
}

/// The shared test PKI (generated on first use; panics if generation fails).
pub fn shared() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| TestPki::generate().expect("generate the test PKI"))
}

/// The shared test PKI ([`shared`], under the name the tests use).
pub fn pki() -> &'static TestPki {
    shared()
}

/// The CA PEM of the shared test PKI.
pub fn ca_pem() -> &'static [u8] {
    shared().ca_pem()
}

/// A server configuration with the shared `localhost` leaf.
pub fn localhost_server_config() -> Arc<ServerConfig> {
    shared().localhost_config()
}

/// A TLS 1.2-only server configuration with the shared `localhost` leaf.
pub fn localhost_tls12_server_config() -> Arc<ServerConfig> {
    shared().localhost_tls12_config()
}

/// A server configuration with the shared `wrong.example` leaf.
pub fn wrong_host_server_config() -> Arc<ServerConfig> {
    shared().wrong_host_config()
}

/// A client certificate for `common_name` from a fresh CA ("another CA") that no server trusts.
pub fn stranger_client(common_name: &str) -> ClientLeaf {
    TestCa::new("another CA")
        .and_then(|ca| ca.issue_client(common_name))
        .expect("a client certificate from another CA")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_are_signed_by_their_ca_and_make_server_configs() {
        let ca = TestCa::new("unit CA").unwrap();
        let leaf = ca.issue(&["localhost", "127.0.0.1"]).unwrap();
        assert_ne!(leaf.cert().as_ref(), ca.der().as_ref());
        assert!(leaf.server_config().is_ok());
        assert!(leaf.server_config_with(&[&rustls::version::TLS12]).is_ok());
        let pem = ca.pem();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        assert!(ca.issue(&[]).is_err(), "a leaf needs a name");
    }

    #[test]
    fn the_shared_pki_is_generated_once() {
        assert!(std::ptr::eq(shared(), pki()));
        assert_eq!(ca_pem(), shared().ca_pem());
    }
}
