//! A throw-away PKI generated at run time: one CA, a leaf for `localhost` / `127.0.0.1` and a leaf
//! for `wrong.example`, both signed by the CA.
//!
//! Generated once per test binary (key generation is the slow part) and shared.

use std::sync::{Arc, OnceLock};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// One issued certificate with its private key.
struct Leaf {
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

/// The test PKI.
pub struct TestPki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    localhost: Leaf,
    wrong_host: Leaf,
}

fn issue(names: &[&str], ca: &rcgen::Certificate, ca_key: &KeyPair) -> Leaf {
    let key = KeyPair::generate().expect("leaf key");
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("leaf params");
    params
        .distinguished_name
        .push(DnType::CommonName, names[0].to_owned());
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, ca, ca_key).expect("sign leaf");
    Leaf {
        cert: cert.der().clone(),
        key: key.serialize_der(),
    }
}

impl TestPki {
    fn generate() -> TestPki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(DnType::CommonName, "smtp-tests throw-away CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = params.self_signed(&ca_key).expect("self-sign CA");
        let localhost = issue(&["localhost", "127.0.0.1"], &ca, &ca_key);
        let wrong_host = issue(&["wrong.example"], &ca, &ca_key);
        TestPki {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            localhost,
            wrong_host,
        }
    }

    /// The CA certificate in PEM, for `TlsConfig::from_ca_pem`.
    pub fn ca_pem(&self) -> &[u8] {
        self.ca_pem.as_bytes()
    }

    /// The CA certificate in DER.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// A server configuration presenting the `localhost` / `127.0.0.1` certificate.
    pub fn localhost_config(&self) -> Arc<ServerConfig> {
        server_config(&self.localhost)
    }

    /// [`localhost_config`](Self::localhost_config) limited to TLS 1.2 (no `tls-exporter`
    /// channel binding there).
    pub fn localhost_tls12_config(&self) -> Arc<ServerConfig> {
        server_config_with(&self.localhost, &[&rustls::version::TLS12])
    }

    /// A server configuration presenting a certificate for `wrong.example` (valid chain, wrong
    /// name for a client dialling localhost).
    pub fn wrong_host_config(&self) -> Arc<ServerConfig> {
        server_config(&self.wrong_host)
    }
}

fn server_config(leaf: &Leaf) -> Arc<ServerConfig> {
    server_config_with(leaf, rustls::DEFAULT_VERSIONS)
}

fn server_config_with(
    leaf: &Leaf,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ServerConfig> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key.clone()));
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .expect("ring supports these versions")
            .with_no_client_auth()
            .with_single_cert(vec![leaf.cert.clone()], key)
            .expect("valid server certificate and key");
    Arc::new(config)
}

/// The shared test PKI (generated on first use).
pub fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(TestPki::generate)
}

/// The CA PEM of the shared test PKI.
pub fn ca_pem() -> &'static [u8] {
    pki().ca_pem()
}

/// A server configuration with the `localhost` leaf.
pub fn localhost_server_config() -> Arc<ServerConfig> {
    pki().localhost_config()
}

/// A TLS 1.2-only server configuration with the `localhost` leaf.
pub fn localhost_tls12_server_config() -> Arc<ServerConfig> {
    pki().localhost_tls12_config()
}

/// A server configuration with the `wrong.example` leaf.
pub fn wrong_host_server_config() -> Arc<ServerConfig> {
    pki().wrong_host_config()
}
