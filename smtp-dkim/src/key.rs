//! The private key: RSA (PKCS#1 or PKCS#8) or Ed25519 (PKCS#8), from PEM, DER or the key types
//! of the RustCrypto crates. Never shown by `Debug`.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use pkcs8::der::Decode as _;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::EncodePublicKey as _;
use rsa::traits::PublicKeyParts as _;

use crate::error::{Error, KeyError};

/// The signing algorithm (`a=`), decided by the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// `rsa-sha256` (RFC 6376): RSASSA-PKCS1-v1_5 with SHA-256.
    RsaSha256,
    /// `ed25519-sha256` (RFC 8463): Ed25519 over the SHA-256 of the signed data.
    Ed25519Sha256,
}

impl Algorithm {
    /// The name of the `a=` tag.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RsaSha256 => "rsa-sha256",
            Algorithm::Ed25519Sha256 => "ed25519-sha256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The smallest RSA modulus accepted, in bits (RFC 8301, section 3.2).
pub const MIN_RSA_BITS: usize = 1024;

#[derive(Clone)]
enum Inner {
    Rsa(rsa::PrivateKey),
    Ed25519(ed25519_dalek::SigningKey),
}

/// A DKIM private key. Its `Debug` shows the algorithm and size, never the key; the RSA and
/// Ed25519 libraries wipe their key material when it is dropped.
///
/// Load it once, before connecting: a malformed key is a [`KeyError`] here, not a failure in
/// the middle of a send.
#[derive(Clone)]
pub struct DkimKey {
    inner: Inner,
}

impl fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Rsa(key) => write!(f, "DkimKey(rsa, {} bits, [redacted])", key.size() * 8),
            Inner::Ed25519(_) => f.write_str("DkimKey(ed25519, [redacted])"),
        }
    }
}

const RSA_ENCRYPTION: pkcs8::ObjectIdentifier =
    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ED25519: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.3.101.112");

impl DkimKey {
    /// Load a PEM key: `RSA PRIVATE KEY` (PKCS#1) or `PRIVATE KEY` (PKCS#8, RSA or Ed25519), as
    /// written by `openssl genrsa`, `openssl genpkey -algorithm ed25519` or
    /// `openssl pkcs8 -topk8 -nocrypt`.
    pub fn from_pem(pem: &str) -> Result<DkimKey, KeyError> {
        // Text before the PEM block (openssl's "Bag Attributes", a comment) is skipped; the
        // decoded DER is a `SecretDocument`: wiped when dropped.
        let block = pem
            .find("-----BEGIN ")
            .and_then(|i| pem.get(i..))
            .unwrap_or(pem);
        let (label, der) = match pkcs8::SecretDocument::from_pem(block) {
            Ok(decoded) => decoded,
            Err(_) => {
                // Say what the document is when it has a label we do not take.
                return Err(match pem_label(pem) {
                    Some("ENCRYPTED PRIVATE KEY") => KeyError::Encrypted,
                    Some(label) if label != "RSA PRIVATE KEY" && label != "PRIVATE KEY" => {
                        KeyError::UnsupportedPemLabel(label.to_string())
                    }
                    _ => KeyError::NotPem,
                });
            }
        };
        match label {
            "RSA PRIVATE KEY" => DkimKey::from_pkcs1_der(der.as_bytes()),
            "PRIVATE KEY" => DkimKey::from_pkcs8_der(der.as_bytes()),
            "ENCRYPTED PRIVATE KEY" => Err(KeyError::Encrypted),
            other => Err(KeyError::UnsupportedPemLabel(other.to_string())),
        }
    }

    /// Load an RSA key in PKCS#1 DER (`RSAPrivateKey`).
    pub fn from_pkcs1_der(der: &[u8]) -> Result<DkimKey, KeyError> {
        let key = rsa::PrivateKey::from_pkcs1_der(der).map_err(|_| KeyError::Malformed {
            format: "PKCS#1 RSA",
        })?;
        DkimKey::from_rsa(key)
    }

    /// Load an RSA or Ed25519 key in PKCS#8 DER (`PrivateKeyInfo`, unencrypted).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<DkimKey, KeyError> {
        let info = pkcs8::PrivateKeyInfoRef::from_der(der)
            .map_err(|_| KeyError::Malformed { format: "PKCS#8" })?;
        let oid = info.algorithm.oid;
        if oid == RSA_ENCRYPTION {
            let key = rsa::PrivateKey::try_from(info).map_err(|_| KeyError::Malformed {
                format: "PKCS#8 RSA",
            })?;
            DkimKey::from_rsa(key)
        } else if oid == ED25519 {
            let key =
                ed25519_dalek::SigningKey::try_from(info).map_err(|_| KeyError::Malformed {
                    format: "PKCS#8 Ed25519",
                })?;
            Ok(DkimKey::from_ed25519(key))
        } else {
            Err(KeyError::UnsupportedAlgorithm {
                oid: oid.to_string(),
            })
        }
    }

    /// Use an RSA key of the `rsa` crate; refused below [`MIN_RSA_BITS`].
    pub fn from_rsa(key: rsa::PrivateKey) -> Result<DkimKey, KeyError> {
        let bits = key.size() * 8;
        if bits < MIN_RSA_BITS {
            return Err(KeyError::RsaTooSmall { bits });
        }
        Ok(DkimKey {
            inner: Inner::Rsa(key),
        })
    }

    /// Use an Ed25519 key of `ed25519-dalek`.
    pub fn from_ed25519(key: ed25519_dalek::SigningKey) -> DkimKey {
        DkimKey {
            inner: Inner::Ed25519(key),
        }
    }

    /// Use an Ed25519 key given by its 32-byte secret (the seed).
    pub fn from_ed25519_seed(seed: &[u8; 32]) -> DkimKey {
        DkimKey::from_ed25519(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        match self.inner {
            Inner::Rsa(_) => Algorithm::RsaSha256,
            Inner::Ed25519(_) => Algorithm::Ed25519Sha256,
        }
    }

    /// The text of the DNS TXT record to publish at `<selector>._domainkey.<domain>`:
    /// `v=DKIM1; k=rsa; p=<SubjectPublicKeyInfo, base64>` or `v=DKIM1; k=ed25519; p=<the raw
    /// 32-byte public key, base64>` (RFC 8463). A record of more than 255 bytes (any RSA key of
    /// 2048 bits) goes in DNS as several strings of one TXT record.
    pub fn dns_txt_record(&self) -> String {
        match &self.inner {
            Inner::Rsa(key) => {
                let p = key
                    .to_public_key()
                    .to_public_key_der()
                    .map(|der| STANDARD.encode(der.as_bytes()))
                    // Encoding a valid public key does not fail; an empty p= (a revoked key)
                    // is the harmless answer if it ever did.
                    .unwrap_or_default();
                format!("v=DKIM1; k=rsa; p={p}")
            }
            Inner::Ed25519(key) => {
                let p = STANDARD.encode(key.verifying_key().as_bytes());
                format!("v=DKIM1; k=ed25519; p={p}")
            }
        }
    }

    /// Sign the SHA-256 `digest` of the signed data (the `b=` value, raw).
    pub(crate) fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, Error> {
        match &self.inner {
            Inner::Rsa(key) => key
                .sign(rsa::pkcs1v15::Pkcs1v15Sign::new::<sha2::Sha256>(), digest)
                .map_err(|_| Error::Signing),
            Inner::Ed25519(key) => {
                use ed25519_dalek::Signer as _;
                // RFC 8463: PureEd25519 over the SHA-256 hash, not over the data.
                Ok(key.sign(digest).to_bytes().to_vec())
            }
        }
    }
}

/// The label of the first `-----BEGIN <label>-----` line, if any.
fn pem_label(pem: &str) -> Option<&str> {
    let start = pem.find("-----BEGIN ")? + "-----BEGIN ".len();
    let rest = pem.get(start..)?;
    let end = rest.find("-----")?;
    let label = rest.get(..end)?;
    (label.len() <= 64 && label.bytes().all(|b| b.is_ascii_uppercase() || b == b' '))
        .then_some(label)
}
