//! The server side of SCRAM-SHA-256 and -PLUS (RFC 5802, RFC 7677, RFC 9266), as a [`Responder`]
//! for the scripted server: it checks the client's GS2 header, channel binding and proof against
//! a password it knows, and answers with a correct (or deliberately broken) server signature.
//!
//! Written from the RFCs independently of the client in `smtp-proto`, on the same primitives.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::server::{Answer, Responder};

/// The salt every test server uses.
pub const SALT: &[u8] = b"smtp-rs test salt";
/// The iteration count every test server uses.
pub const ITERATIONS: u32 = 4096;

/// How the server ends the exchange after the client's proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// A correct `v=`, then `235` (a wrong proof gets `e=invalid-proof` and `535`).
    Normal,
    /// A `v=` that does not match: an impostor that does not know the password.
    WrongSignature,
    /// `235` straight after the proof, without `v=`.
    SuccessWithoutSignature,
}

/// What the client did, for the test to check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// The mechanism named in `AUTH`.
    pub mechanism: String,
    /// The GS2 header, e.g. `"n,,"`, `"y,,"`, `"p=tls-exporter,,"`.
    pub gs2_header: String,
    /// The user name as sent (saslname).
    pub user: String,
    /// The client nonce.
    pub client_nonce: String,
    /// Whether the proof matched the password.
    pub proof_ok: bool,
    /// Whether `c=` matched the GS2 header and, for -PLUS, the server's own exporter value.
    pub binding_ok: bool,
}

/// A SCRAM-SHA-256(-PLUS) server for one exchange.
pub struct ScramServer {
    ending: Ending,
    step: u8,
    client_first_bare: String,
    gs2_header: String,
    server_first: String,
    nonce: String,
    salted: [u8; 32],
    seen: Arc<Mutex<Seen>>,
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn decode(text: &[u8]) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

fn reply334(raw: &str) -> Vec<String> {
    vec![format!("334 {}", STANDARD.encode(raw))]
}

impl ScramServer {
    /// A server knowing `password`, ending as `ending`. The returned handle shows what the client
    /// did once the exchange ran.
    pub fn new(password: &str, ending: Ending) -> (ScramServer, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), SALT, ITERATIONS, &mut salted);
        let server = ScramServer {
            ending,
            step: 0,
            client_first_bare: String::new(),
            gs2_header: String::new(),
            server_first: String::new(),
            nonce: String::new(),
            salted,
            seen: seen.clone(),
        };
        (server, seen)
    }

    fn auth(&mut self, line: &[u8]) -> Result<Answer, String> {
        let line = String::from_utf8(line.to_vec()).map_err(|_| "AUTH line not UTF-8")?;
        let mut words = line.splitn(3, ' ');
        let (Some("AUTH"), Some(mechanism), Some(initial)) =
            (words.next(), words.next(), words.next())
        else {
            return Err(format!(
                "expected AUTH <mech> <initial response>, got {line:?}"
            ));
        };
        let first = decode(initial.as_bytes()).ok_or("initial response not base64")?;
        let first = String::from_utf8(first).map_err(|_| "client-first not UTF-8")?;
        // gs2-header = cbind-flag "," [authzid] ","
        let mut parts = first.splitn(3, ',');
        let (Some(flag), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("malformed client-first {first:?}"));
        };
        let gs2_header = format!("{flag},{authzid},");
        let user = bare
            .split(',')
            .next()
            .and_then(|a| a.strip_prefix("n="))
            .ok_or("no n= in client-first")?;
        let client_nonce = bare
            .split(',')
            .nth(1)
            .and_then(|a| a.strip_prefix("r="))
            .ok_or("no r= in client-first")?;
        {
            let mut seen = self.seen.lock().unwrap();
            seen.mechanism = mechanism.to_owned();
            seen.gs2_header = gs2_header.clone();
            seen.user = user.to_owned();
            seen.client_nonce = client_nonce.to_owned();
        }
        self.nonce = format!("{client_nonce}+server-part/42");
        self.server_first = format!(
            "r={},s={},i={ITERATIONS}",
            self.nonce,
            STANDARD.encode(SALT)
        );
        self.client_first_bare = bare.to_owned();
        self.gs2_header = gs2_header;
        Ok(Answer::Continue(reply334(&self.server_first)))
    }

    fn client_final(&mut self, line: &[u8], exporter: Option<[u8; 32]>) -> Result<Answer, String> {
        let text = decode(line).ok_or("client-final not base64")?;
        let text = String::from_utf8(text).map_err(|_| "client-final not UTF-8")?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or("no p= in client-final")?;
        let mut attrs = without_proof.split(',');
        let cbind = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or("no c=")?;
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or("no r=")?;
        if nonce != self.nonce {
            return Err(format!(
                "client-final nonce {nonce:?} is not {:?}",
                self.nonce
            ));
        }
        let mut expected_cbind = self.gs2_header.as_bytes().to_vec();
        if self.gs2_header.starts_with("p=tls-exporter") {
            expected_cbind
                .extend_from_slice(&exporter.ok_or("-PLUS over a connection without TLS 1.3")?);
        }
        let binding_ok = decode(cbind.as_bytes()) == Some(expected_cbind);

        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let client_key = hmac(&self.salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let client_signature = hmac(&stored_key, auth_message.as_bytes());
        let proof = decode(proof.as_bytes()).ok_or("proof not base64")?;
        let recovered: Vec<u8> = proof
            .iter()
            .zip(client_signature.iter())
            .map(|(p, s)| p ^ s)
            .collect();
        let proof_ok = proof.len() == 32 && Sha256::digest(&recovered)[..] == stored_key[..];
        {
            let mut seen = self.seen.lock().unwrap();
            seen.proof_ok = proof_ok;
            seen.binding_ok = binding_ok;
        }
        if !binding_ok {
            return Ok(Answer::Continue(reply334("e=channel-bindings-dont-match")));
        }
        if !proof_ok {
            return Ok(Answer::Continue(reply334("e=invalid-proof")));
        }
        let server_key = hmac(&self.salted, b"Server Key");
        let mut signature = hmac(&server_key, auth_message.as_bytes());
        match self.ending {
            Ending::Normal => {}
            Ending::WrongSignature => {
                // The impostor's last word: the client must hang up without answering it.
                signature[0] ^= 1;
                let v = format!("v={}", STANDARD.encode(signature));
                return Ok(Answer::Done(reply334(&v)));
            }
            Ending::SuccessWithoutSignature => {
                return Ok(Answer::Done(vec![
                    "235 2.7.0 Authentication successful".into(),
                ]));
            }
        }
        let v = format!("v={}", STANDARD.encode(signature));
        Ok(Answer::Continue(reply334(&v)))
    }
}

impl Responder for ScramServer {
    fn line(&mut self, line: &[u8], tls_exporter: Option<[u8; 32]>) -> Answer {
        self.step += 1;
        let result = match self.step {
            1 => self.auth(line),
            2 => self.client_final(line, tls_exporter),
            3 if line == b"*" => Ok(Answer::Done(vec!["501 5.7.0 cancelled".into()])),
            3 if !line.is_empty() => Err(format!(
                "expected an empty line after the server-final message, got {:?}",
                String::from_utf8_lossy(line)
            )),
            3 => {
                let seen = self.seen.lock().unwrap().clone();
                if seen.proof_ok && seen.binding_ok {
                    Ok(Answer::Done(vec![
                        "235 2.7.0 Authentication successful".into(),
                    ]))
                } else {
                    Ok(Answer::Done(vec![
                        "535 5.7.8 Authentication credentials invalid".into(),
                    ]))
                }
            }
            _ => Err("the exchange is over".into()),
        };
        result.unwrap_or_else(Answer::Fail)
    }
}
