//! # smtp-dkim: DKIM signing for the smtp-rs clients
//!
//! Signs messages with DKIM (RFC 6376): `rsa-sha256` and `ed25519-sha256` (RFC 8463),
//! `relaxed` or `simple` canonicalisation for the header and the body separately (default
//! `relaxed/relaxed`), a chosen list of header fields ([`DEFAULT_SIGNED_HEADERS`] by default,
//! each signed only when present, `From` always required), an optional expiry (`x=`).
//!
//! ```
//! use smtp_dkim::{DkimKey, DkimSigner};
//!
//! # fn main() -> Result<(), smtp_dkim::Error> {
//! // In a real program: DkimKey::from_pem(&std::fs::read_to_string("dkim.pem")?)?
//! let key = DkimKey::from_ed25519_seed(&[7; 32]);
//! // Publish this at sel2026._domainkey.example.com (TXT):
//! let record = key.dns_txt_record();
//! assert!(record.starts_with("v=DKIM1; k=ed25519; p="));
//!
//! let signer = DkimSigner::new(key, "example.com", "sel2026")?.with_expiry(7 * 24 * 3600)?;
//! let message = b"From: me@example.com\nTo: you@example.org\nSubject: hi\n\nHello!\n";
//! let now = 1_800_000_000; // seconds since 1970: t=
//! let signed = signer.prepend(message, now)?;
//! assert!(signed.starts_with(b"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;"));
//!
//! // A streamed message, never held whole: hash it once, then send the field and the message.
//! let mut hasher = signer.message_hasher();
//! for chunk in message.chunks(10) {
//!     hasher.update(chunk)?;
//! }
//! assert_eq!(hasher.finish(now)?, signer.sign(message, now)?);
//! # Ok(())
//! # }
//! ```
//!
//! ## What is signed: the message as sent
//!
//! The clients of this workspace put every message on the wire through smtp-proto's line
//! normaliser (each bare CR and bare LF becomes CRLF, an unterminated last line is closed) and,
//! for `DATA`, its dot-stuffer. The receiver undoes the dot-stuffing, not the normalisation, so
//! the signature is computed over the normalised message, by the same `LineNormalizer` the
//! clients use: a message with bare LF line endings verifies as the server receives it.
//!
//! ## Which bodies can be signed
//!
//! - In memory: [`DkimSigner::sign`] / [`DkimSigner::prepend`].
//! - Streamed, from a source that can be read twice (a file, a body that can be opened again):
//!   read it once through [`DkimSigner::message_hasher`] (or a [`BodyHasher`] when the header
//!   section is apart), then send the field followed by a second read. Memory stays constant
//!   (the header section is kept, at most [`MAX_HEADER_BYTES`]).
//! - Streamed from a source read once (standard input, a network stream): the signature must
//!   come before the body, so such a body has to be kept (in memory or a file) to be signed.
//!
//! ## Why not `mail-auth`
//!
//! Stalwart's `mail-auth` was evaluated first (December 2026). Its releases that build without
//! the hickory DNS resolver (0.14, 0.15) depend on `mail-parser` 1.x, which needs Rust 1.98
//! (this workspace builds with 1.95); the older ones (up to 0.13) do not compile without
//! `dns-hickory`, which brings tokio. Its signer also takes the whole message in memory, so a
//! streamed body would still need a canonicaliser of our own. This crate therefore uses the
//! RustCrypto primitives directly (`rsa` 0.10, constant-time; `ed25519-dalek`; `sha2`) and its
//! own canonicalisation: small (section 3.4 of RFC 6376), streaming, and checked against an
//! independent verifier (Python's `dkimpy`) in the tests, on random messages as well as on
//! the cases that matter (dot lines, bare LF, 8-bit, folded headers, 5 MiB streamed bodies).
//!
//! ## Features
//!
//! - `std` (default): [`DkimSigner::sign_now`] and [`DkimSigner::prepend_now`] read the system
//!   clock, and RSA signing is blinded with the operating system's random numbers (defence in
//!   depth: the RSA arithmetic is constant-time already). Without it the crate is `no_std` +
//!   `alloc` and builds for `wasm32-unknown-unknown`, where a Worker passes the time in (build
//!   it there without `std`: the system clock and the operating system's random numbers do not
//!   exist on that target).
//!
//! ## Keys
//!
//! [`DkimKey`] loads PEM (PKCS#1 `RSA PRIVATE KEY`, PKCS#8 `PRIVATE KEY` for RSA and Ed25519),
//! DER, or the RustCrypto key types. A malformed key is a [`KeyError`] when it is loaded; the
//! key never appears in `Debug` output or in any error.
#![cfg_attr(not(feature = "std"), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;

mod canon;
mod error;
mod key;
mod signer;

pub use canon::Canonicalization;
pub use error::{Error, KeyError};
pub use key::{Algorithm, DkimKey, MIN_RSA_BITS};
pub use signer::{
    BodyHasher, DEFAULT_SIGNED_HEADERS, DkimHeader, DkimSigner, MAX_HEADER_BYTES, MessageHasher,
};

/// The RSA and Ed25519 crates whose key types [`DkimKey::from_rsa`] and
/// [`DkimKey::from_ed25519`] take.
pub mod crypto {
    pub use ed25519_dalek;
    pub use rsa;
}

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
