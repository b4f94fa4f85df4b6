//! The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) and SCRAM-SHA-256-PLUS with the
//! `tls-exporter` channel binding (RFC 9266).
//!
//! The exchange, as the engine runs it (`b64` is base64):
//!
//! ```text
//! C: AUTH SCRAM-SHA-256 b64(gs2-header "n=" saslname ",r=" client-nonce)
//! S: 334 b64("r=" client-nonce server-nonce ",s=" b64(salt) ",i=" iterations)
//! C: b64("c=" b64(gs2-header [tls-exporter]) ",r=" nonce ",p=" b64(ClientProof))
//! S: 334 b64("v=" b64(ServerSignature))         or  334 b64("e=" error)
//! C: (empty line)
//! S: 235 ...                                     or  535 ...
//! ```
//!
//! What is checked, each failure a typed [`ScramError`]:
//!
//! * the server's nonce starts with ours and adds at least one printable character;
//! * the salt is non-empty, valid base64;
//! * the iteration count is a decimal number in
//!   [`SCRAM_MIN_ITERATIONS`]`..=`[`SCRAM_MAX_ITERATIONS`] (RFC 7677 asks for at least 4096; the upper bound
//!   keeps a hostile server from making the client burn seconds of CPU);
//! * no mandatory extension (`m=`) is asked for;
//! * the server's signature `v=` is exactly the one only a holder of the password's keys can
//!   compute, compared in constant time. A missing, malformed or wrong signature, or a success
//!   reply before it, means the server has not proven it knows the password.
//!
//! The password and every key derived from it are zeroed (with `zeroize`, like [`Secret`]) as soon
//! as the client proof is written; only the expected server signature is kept until the server has
//! shown it. Intermediate state inside the `hmac`, `sha2` and `pbkdf2` crates is not reached.

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::BytesMut;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{
    ChannelBinding, ClientNonce, LENIENT, SCRAM_MAX_ITERATIONS, SCRAM_MIN_ITERATIONS, put_base64,
};
use crate::error::ScramError;
use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

/// 32 bytes of key material (salted password, client and server keys, signatures, proof),
/// zeroed on drop with `zeroize`.
struct Key([u8; 32]);

impl Zeroize for Key {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for Key {}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Key {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    Key(mac.finalize().into_bytes().into())
}

/// Where the exchange is.
enum State {
    /// `AUTH` sent; waiting for the server-first message.
    Started {
        /// The prepared password.
        password: Secret,
    },
    /// The client proof sent; waiting for the server's signature.
    ProofSent {
        /// The signature the server must show.
        server_signature: Key,
    },
    /// The server proved it knows the password.
    Verified,
    /// The server sent `e=`, or a check failed: nothing more to do.
    Done,
}

/// The client side of one SCRAM exchange.
pub(crate) struct Scram {
    state: State,
    /// `"n,,"`, `"y,,"` or `"p=tls-exporter,,"`.
    gs2_header: &'static str,
    /// The channel-binding data sent in `c=` after the GS2 header (`-PLUS` only).
    cbind_data: Option<[u8; 32]>,
    /// `n=<saslname>,r=<client nonce>`.
    client_first_bare: Secret,
    /// Length of the client nonce, the tail of `client_first_bare`.
    nonce_len: usize,
    /// The most PBKDF2 iterations this client will run (at most [`SCRAM_MAX_ITERATIONS`]).
    max_iterations: u32,
}

/// What the server's final message said.
pub(crate) enum ServerFinal {
    /// `v=` matched.
    Verified,
    /// `e=<value>`: the server refused; the value is kept for the error.
    Error(String),
}

impl Scram {
    /// Start an exchange for an already prepared and escaped user name and a prepared password.
    pub(crate) fn new(
        saslname: &[u8],
        password: Secret,
        nonce: &ClientNonce,
        binding: ChannelBinding,
        max_iterations: u32,
    ) -> Scram {
        let (gs2_header, cbind_data) = match binding {
            ChannelBinding::Unsupported => ("n,,", None),
            ChannelBinding::NotOffered => ("y,,", None),
            ChannelBinding::TlsExporter(data) => ("p=tls-exporter,,", Some(data)),
        };
        let nonce = nonce.as_str().as_bytes();
        let parts: [&[u8]; 4] = [b"n=", saslname, b",r=", nonce];
        let mut bare = Secret::with_capacity(parts.iter().map(|p| p.len()).sum());
        for p in parts {
            bare.extend_from_slice(p);
        }
        Scram {
            state: State::Started { password },
            gs2_header,
            cbind_data,
            client_first_bare: bare,
            nonce_len: nonce.len(),
            max_iterations,
        }
    }

    /// The client-first message (not yet base64).
    pub(crate) fn client_first(&self) -> Secret {
        let bare = self.client_first_bare.expose();
        let mut out = Secret::with_capacity(self.gs2_header.len() + bare.len());
        out.extend_from_slice(self.gs2_header.as_bytes());
        out.extend_from_slice(bare);
        out
    }

    /// True once the server's signature has been checked.
    pub(crate) fn is_verified(&self) -> bool {
        matches!(self.state, State::Verified)
    }

    /// Answer a `334` challenge (its text, still base64): the server-first message, then the
    /// server-final one. Appends the response line, CRLF included, to `out`; on error appends
    /// nothing.
    pub(crate) fn respond(
        &mut self,
        challenge: &str,
        out: &mut BytesMut,
    ) -> Result<Option<ServerFinal>, ScramError> {
        match core::mem::replace(&mut self.state, State::Done) {
            State::Started { password } => {
                let decoded = LENIENT
                    .decode(challenge.as_bytes())
                    .map_err(|_| ScramError::MalformedServerFirst)?;
                let (line, server_signature) = self.client_final(&decoded, &password)?;
                put_base64(out, line.expose());
                out.extend_from_slice(b"\r\n");
                self.state = State::ProofSent { server_signature };
                Ok(None)
            }
            State::ProofSent { server_signature } => {
                let decoded = LENIENT
                    .decode(challenge.as_bytes())
                    .map_err(|_| ScramError::MalformedServerFinal)?;
                let result = check_server_final(&decoded, &server_signature)?;
                if matches!(result, ServerFinal::Verified) {
                    self.state = State::Verified;
                }
                // RFC 4954 section 4: additional data with success is sent as a challenge, and
                // answered with an empty line. After `e=` the same empty line lets the server send
                // its final refusal.
                out.extend_from_slice(b"\r\n");
                Ok(Some(result))
            }
            // Unreachable through the engine, which counts challenges first.
            State::Verified | State::Done => Err(ScramError::MalformedServerFinal),
        }
    }

    /// Check the server-first message and compute the client-final message (not yet base64) and
    /// the server signature to expect.
    fn client_final(
        &self,
        server_first: &[u8],
        password: &Secret,
    ) -> Result<(Secret, Key), ScramError> {
        let first = parse_server_first(server_first)?;
        let bare = self.client_first_bare.expose();
        let client_nonce = &bare[bare.len() - self.nonce_len..];
        if !first.nonce.starts_with(client_nonce) || first.nonce.len() == client_nonce.len() {
            return Err(ScramError::NonceMismatch);
        }
        let salt = LENIENT
            .decode(first.salt)
            .map_err(|_| ScramError::InvalidSalt)?;
        if salt.is_empty() {
            return Err(ScramError::InvalidSalt);
        }
        let iterations = parse_iterations(first.iterations, self.max_iterations)?;

        // c=base64(gs2-header [cbind-data])
        let mut cbind_input = Vec::with_capacity(self.gs2_header.len() + 32);
        cbind_input.extend_from_slice(self.gs2_header.as_bytes());
        if let Some(data) = &self.cbind_data {
            cbind_input.extend_from_slice(data);
        }
        let cbind = STANDARD.encode(&cbind_input);
        let without_proof_parts: [&[u8]; 4] = [b"c=", cbind.as_bytes(), b",r=", first.nonce];
        let without_proof_len: usize = without_proof_parts.iter().map(|p| p.len()).sum();

        // AuthMessage = client-first-bare "," server-first "," client-final-without-proof
        let mut auth_message =
            Secret::with_capacity(bare.len() + server_first.len() + without_proof_len + 2);
        for part in [bare, b",", server_first, b","]
            .into_iter()
            .chain(without_proof_parts)
        {
            auth_message.extend_from_slice(part);
        }

        let mut salted = Key([0; 32]);
        pbkdf2::pbkdf2_hmac::<Sha256>(password.expose(), &salt, iterations, &mut salted.0);
        let client_key = hmac(&salted.0, &[b"Client Key"]);
        let stored_key = Key(Sha256::digest(client_key.0).into());
        let client_signature = hmac(&stored_key.0, &[auth_message.expose()]);
        let mut proof = Key(client_key.0);
        for (p, s) in proof.0.iter_mut().zip(client_signature.0.iter()) {
            *p ^= s;
        }
        let server_key = hmac(&salted.0, &[b"Server Key"]);
        let server_signature = hmac(&server_key.0, &[auth_message.expose()]);

        let proof_b64 = base64::encoded_len(32, true).unwrap_or(44);
        let mut line = Secret::with_capacity(without_proof_len + 3 + proof_b64);
        for part in without_proof_parts {
            line.extend_from_slice(part);
        }
        line.extend_from_slice(b",p=");
        let mut encoded = [0u8; 44];
        let n = STANDARD
            .encode_slice(proof.0, &mut encoded)
            .expect("44 bytes hold the base64 of 32");
        line.extend_from_slice(&encoded[..n]);
        encoded.zeroize();
        Ok((line, server_signature))
    }
}

/// The attributes of a server-first message.
struct ServerFirst<'a> {
    nonce: &'a [u8],
    salt: &'a [u8],
    iterations: &'a [u8],
}

/// `server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions]`
fn parse_server_first(message: &[u8]) -> Result<ServerFirst<'_>, ScramError> {
    if message.starts_with(b"m=") {
        return Err(ScramError::MandatoryExtension);
    }
    let mut attrs = message.split(|&b| b == b',');
    let mut next = |name: &[u8]| {
        attrs
            .next()
            .and_then(|a| a.strip_prefix(name))
            .ok_or(ScramError::MalformedServerFirst)
    };
    let nonce = next(b"r=")?;
    let salt = next(b"s=")?;
    let iterations = next(b"i=")?;
    // printable = %x21-2B / %x2D-7E (the comma is the separator, already split off).
    if !nonce.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(ScramError::MalformedServerFirst);
    }
    Ok(ServerFirst {
        nonce,
        salt,
        iterations,
    })
}

/// A decimal iteration count from [`SCRAM_MIN_ITERATIONS`] to `max` (itself capped at
/// [`SCRAM_MAX_ITERATIONS`]).
fn parse_iterations(text: &[u8], max: u32) -> Result<u32, ScramError> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return Err(ScramError::MalformedServerFirst);
    }
    let count = text.iter().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    match u32::try_from(count) {
        Ok(c) if (SCRAM_MIN_ITERATIONS..=max.min(SCRAM_MAX_ITERATIONS)).contains(&c) => Ok(c),
        _ => Err(ScramError::IterationCount { count }),
    }
}

/// `server-final-message = (server-error / verifier) ["," extensions]`
fn check_server_final(message: &[u8], expected: &Key) -> Result<ServerFinal, ScramError> {
    let first = message.split(|&b| b == b',').next().unwrap_or_default();
    if let Some(error) = first.strip_prefix(b"e=") {
        return Ok(ServerFinal::Error(
            String::from_utf8_lossy(error).into_owned(),
        ));
    }
    let Some(verifier) = first.strip_prefix(b"v=") else {
        return Err(ScramError::MalformedServerFinal);
    };
    let signature = LENIENT
        .decode(verifier)
        .map_err(|_| ScramError::MalformedServerFinal)?;
    if signature.len() != expected.0.len() {
        return Err(ScramError::ServerSignatureMismatch);
    }
    // Constant time: every byte is compared whatever the first difference.
    let diff = signature
        .iter()
        .zip(expected.0.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if core::hint::black_box(diff) == 0 {
        Ok(ServerFinal::Verified)
    } else {
        Err(ScramError::ServerSignatureMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key is wiped by `zeroize` on drop (the type says so); an explicit `zeroize()` shows
    /// the bytes become zeros.
    #[test]
    fn keys_are_zeroized() {
        fn zeroize_on_drop<T: Zeroize + ZeroizeOnDrop>(_: &T) {}
        let mut key = hmac(b"salted password", &[b"Client Key"]);
        zeroize_on_drop(&key);
        assert_ne!(key.0, [0; 32]);
        key.zeroize();
        assert_eq!(key.0, [0; 32]);
    }
}
