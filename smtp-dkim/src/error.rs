//! Errors: [`KeyError`] when a key is loaded, [`Error`] when a signer is configured or a message
//! is signed. No error holds or shows any byte of a key.

use alloc::string::String;

/// A private key that cannot be used for DKIM. Returned when the key is loaded, so a bad key
/// fails before any connection is opened. Its text names what is wrong, never the key's bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not a PEM document (no `-----BEGIN ...-----` block that decodes).
    #[error("the key is not a PEM document")]
    NotPem,
    /// A PEM document of another kind than `RSA PRIVATE KEY` (PKCS#1) or `PRIVATE KEY` (PKCS#8).
    #[error(
        "unsupported PEM label {0:?}: expected RSA PRIVATE KEY (PKCS#1) or PRIVATE KEY (PKCS#8)"
    )]
    UnsupportedPemLabel(String),
    /// An encrypted PKCS#8 key: decrypt it first (`openssl pkcs8 -in key.pem -out plain.pem`).
    #[error("the key is encrypted (ENCRYPTED PRIVATE KEY): give the decrypted key")]
    Encrypted,
    /// The DER structure does not decode as the expected kind of key.
    #[error("malformed {format} key")]
    Malformed {
        /// Which format was expected: `PKCS#1 RSA`, `PKCS#8`, `PKCS#8 RSA` or `PKCS#8 Ed25519`.
        format: &'static str,
    },
    /// A PKCS#8 key of an algorithm DKIM cannot sign with here (for example an EC key).
    #[error("unsupported key algorithm (OID {oid}): DKIM signs with RSA or Ed25519 keys")]
    UnsupportedAlgorithm {
        /// The algorithm's object identifier, dotted.
        oid: String,
    },
    /// An RSA key shorter than 1024 bits, which verifiers must refuse (RFC 8301, section 3.2).
    #[error("the RSA key has {bits} bits: DKIM needs at least 1024 (2048 recommended)")]
    RsaTooSmall {
        /// The modulus size.
        bits: usize,
    },
}

/// Why a signer cannot be configured or a message cannot be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key cannot be used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The signing domain (`d=`) is not a domain name in ASCII (an IDN must be given as its
    /// A-label, `xn--...`).
    #[error("invalid DKIM domain {0:?}: expected an ASCII domain name")]
    InvalidDomain(String),
    /// The selector (`s=`) is not a sequence of dot-separated labels.
    #[error("invalid DKIM selector {0:?}: expected labels of letters, digits and hyphens")]
    InvalidSelector(String),
    /// A name in the list of headers to sign is not a header field name (printable ASCII
    /// without `:`).
    #[error("invalid header name to sign {0:?}")]
    InvalidHeaderName(String),
    /// The list of headers to sign does not include `From` (RFC 6376, section 5.4: it must).
    #[error("the headers to sign must include From")]
    FromNotSigned,
    /// The expiry (`x=`) must be at least one second after the signing time.
    #[error("the signature's lifetime (x=) must be at least one second")]
    ZeroExpiry,
    /// The message has no `From` header field: it cannot be signed.
    #[error("the message has no From header field")]
    MissingFrom,
    /// A line of the header section is neither a header field (`Name: value`) nor the
    /// continuation of one (it starts with a space or tab).
    #[error("the message's header section is malformed at line {line} (not `Name: value`)")]
    MalformedHeader {
        /// The line's number, from 1.
        line: usize,
    },
    /// The header section of a streamed message is larger than the limit
    /// ([`MAX_HEADER_BYTES`](crate::MAX_HEADER_BYTES)).
    #[error("the message's header section is larger than {limit} bytes")]
    HeadersTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The signature could not be computed (the cryptographic library refused).
    #[error("the signature could not be computed")]
    Signing,
    /// The system clock is before 1970 (`sign_now`).
    #[error("the system clock is before 1970")]
    Clock,
}
