//! SASL mechanisms for AUTH (RFC 4954): PLAIN (RFC 4616), LOGIN, XOAUTH2, OAUTHBEARER (RFC 7628),
//! SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677, RFC 9266).
//!
//! An exchange holds the credentials for the duration of one AUTH exchange only; the engine
//! drops it when the exchange ends, and its secrets are overwritten on drop. Nothing here prints a
//! secret: `Debug` redacts.
//!
//! What goes on the wire (`b64(...)` is standard base64 with padding):
//!
//! * PLAIN: `AUTH PLAIN b64("\0" user "\0" secret)`. An empty `334` (the server ignored the
//!   initial response) gets the same blob again, once.
//! * LOGIN: `AUTH LOGIN`, then `b64(user)` to the first challenge and `b64(secret)` to the second.
//!   The prompt text is not interpreted, only checked to be base64 (or empty).
//! * XOAUTH2: `AUTH XOAUTH2 b64("user=" user "^Aauth=Bearer " token "^A^A")`. A challenge is the
//!   error challenge (base64 JSON): it is answered with an empty line, and the server's `535`
//!   follows.
//! * OAUTHBEARER: `AUTH OAUTHBEARER b64("n,a=" saslname(user) ",^Aauth=Bearer " token "^A^A")`. The
//!   error challenge is answered with `b64(^A)` = `AQ==` (RFC 7628 section 3.2.3), then `535`.
//!
//! Any challenge beyond these is [`AuthError::TooManyChallenges`]; a challenge that is not base64
//! where base64 is required is [`AuthError::MalformedChallenge`]. The engine then cancels with `*`.
//!
//! Validation when an exchange starts, before anything is written:
//!
//! * PLAIN and LOGIN: the user name and the password must be non-empty and hold no NUL, CR or LF
//!   (NUL is PLAIN's separator; CR / LF would end the line).
//! * XOAUTH2 and OAUTHBEARER: the token must be non-empty; neither the user nor the token may hold a
//!   control byte (0x00–0x1F, 0x7F), since `^A` is the field separator. XOAUTH2 needs a user name;
//!   for OAUTHBEARER it is the optional authorization identity (`a=`), left out when empty, and its
//!   `=` and `,` are escaped as `=3D` and `=2C` (the `saslname` of RFC 5801) rather than refused.
//! * SCRAM-SHA-256 and -PLUS: the user name and the password go through SASLprep (RFC 4013, by the
//!   `stringprep` crate: non-ASCII spaces mapped, invisible characters removed, NFKC; controls,
//!   private-use, non-characters, display-changing, tagging and unassigned characters and text
//!   breaking the bidi rules refused with [`ArgumentError::ForbiddenByte`] /
//!   [`ArgumentError::Prohibited`]), then `=` and
//!   `,` in the user name are escaped as `=3D` and `=2C`. Both must be non-empty.
//! * A mechanism whose cargo feature (`xoauth2`, `oauthbearer`, `scram`) is off is
//!   [`InvalidInputError::FeatureDisabled`].
//!
//! SCRAM (RFC 5802, RFC 7677, RFC 9266) needs two things a sans-IO engine cannot make: a fresh
//! random [`ClientNonce`] and, for -PLUS, the TLS `tls-exporter` channel-binding data. The driver
//! obtains them (the `client` feature's `Transport` has hooks for both) and passes them in an
//! [`AuthInput`]. The engine then checks the server at every step: its nonce must extend ours,
//! the salt must be base64, the iteration count bounded, and its final signature right.

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use core::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use bytes::BytesMut;

use crate::error::{ArgumentError, AuthError, Field, InvalidInputError};
use crate::reply::Reply;
use crate::secret::Secret;

#[cfg(feature = "scram")]
mod saslprep;
#[cfg(feature = "scram")]
mod scram;

/// The smallest SCRAM iteration count accepted from a server (RFC 7677 section 4: at least 4096).
/// A smaller one is [`ScramError::IterationCount`](crate::error::ScramError::IterationCount): a
/// server (or an impostor) asking for few iterations makes a captured proof cheap to brute-force.
pub const SCRAM_MIN_ITERATIONS: u32 = 4096;

/// The largest SCRAM iteration count accepted from a server, so a hostile server cannot make the
/// client spend more than about half a second of CPU on PBKDF2.
pub const SCRAM_MAX_ITERATIONS: u32 = 1_000_000;

/// The label of the `tls-exporter` channel binding (RFC 9266 section 2): the binding data is 32
/// bytes of TLS exporter output with this label and an empty context.
pub const TLS_EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

pub use crate::mechanism::AuthMechanism;

impl AuthMechanism {
    /// `Err(`[`InvalidInputError::FeatureDisabled`]`)` when the mechanism's cargo feature is off.
    pub fn check_compiled_in(self) -> Result<(), InvalidInputError> {
        match self.disabled_feature() {
            Some(feature) => Err(InvalidInputError::FeatureDisabled { feature }),
            None => Ok(()),
        }
    }
}

/// A SCRAM client nonce (RFC 5802 `c-nonce`): printable ASCII except `,`, 16 to 255 characters.
///
/// It must be fresh and unpredictable for every exchange; the engine cannot make one (it has no
/// random source), so the driver does: [`ClientNonce::from_random`] over 18 bytes from the
/// operating system's CSPRNG is the usual way. Not secret, but never reused.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientNonce(String);

impl ClientNonce {
    /// The fewest characters accepted: 16 base64 characters carry 96 bits.
    pub const MIN_LEN: usize = 16;
    /// The most characters accepted.
    pub const MAX_LEN: usize = 255;

    /// The nonce made of the base64 of 18 random bytes (24 characters, 144 bits). The caller
    /// guarantees the bytes come from a cryptographically secure generator.
    pub fn from_random(bytes: [u8; 18]) -> ClientNonce {
        ClientNonce(STANDARD.encode(bytes))
    }

    /// A nonce given as text (e.g. a test vector). Refuses, with [`Field::Nonce`], a nonce shorter
    /// than [`MIN_LEN`](Self::MIN_LEN) ([`ArgumentError::Empty`] when empty), longer than
    /// [`MAX_LEN`](Self::MAX_LEN), or holding a byte outside `%x21-2B / %x2D-7E`.
    pub fn new(nonce: &str) -> Result<ClientNonce, InvalidInputError> {
        let err = |reason| Err(InvalidInputError::argument(Field::Nonce, reason));
        if nonce.is_empty() {
            return err(ArgumentError::Empty);
        }
        if let Some(index) = nonce
            .bytes()
            .position(|b| !(0x21..=0x7e).contains(&b) || b == b',')
        {
            return err(ArgumentError::ForbiddenByte {
                byte: nonce.as_bytes()[index],
                index,
            });
        }
        if nonce.len() < Self::MIN_LEN {
            return err(ArgumentError::Syntax(
                "a SCRAM nonce needs at least 16 characters",
            ));
        }
        if nonce.len() > Self::MAX_LEN {
            return err(ArgumentError::TooLong { max: Self::MAX_LEN });
        }
        Ok(ClientNonce(nonce.to_owned()))
    }

    /// The nonce.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ClientNonce").field(&self.0).finish()
    }
}

/// The SCRAM GS2 channel-binding flag (RFC 5802 section 7), as the engine chooses it.
///
/// The engine picks it in [`Session::login_with_input`](crate::Session::login_with_input), so a
/// downgrade is detected: a client that could bind but did not see `-PLUS` offered says `y`, and
/// a server that does support binding then refuses the exchange (an attacker removed `-PLUS`
/// from the EHLO reply).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ChannelBinding {
    /// `n`: the client has no channel-binding data on this connection (not TLS 1.3, or the
    /// transport cannot export keying material), or the server offers -PLUS and the caller chose
    /// plain SCRAM-SHA-256 explicitly.
    Unsupported,
    /// `y`: the client could bind, but the server did not advertise SCRAM-SHA-256-PLUS.
    NotOffered,
    /// `p=tls-exporter`: SCRAM-SHA-256-PLUS bound to this `tls-exporter` value (RFC 9266).
    TlsExporter([u8; 32]),
}

impl fmt::Debug for ChannelBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChannelBinding::Unsupported => "Unsupported",
            ChannelBinding::NotOffered => "NotOffered",
            ChannelBinding::TlsExporter(_) => "TlsExporter([redacted])",
        })
    }
}

/// What an AUTH exchange may need from the driver, because the sans-IO engine cannot make it: a
/// fresh random nonce (SCRAM) and the TLS `tls-exporter` channel-binding data (SCRAM-PLUS).
/// Mechanisms other than SCRAM ignore it; the default holds neither.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AuthInput {
    nonce: Option<ClientNonce>,
    tls_exporter: Option<[u8; 32]>,
}

impl AuthInput {
    /// Neither a nonce nor channel-binding data.
    pub fn new() -> AuthInput {
        AuthInput::default()
    }

    /// The SCRAM client nonce to use.
    pub fn with_nonce(mut self, nonce: ClientNonce) -> AuthInput {
        self.nonce = Some(nonce);
        self
    }

    /// The connection's RFC 9266 `tls-exporter` value: 32 bytes exported with
    /// [`TLS_EXPORTER_LABEL`] and an empty context, from a TLS 1.3 connection only. The engine
    /// ignores it on a connection it does not know to be TLS.
    pub fn with_tls_exporter(mut self, data: [u8; 32]) -> AuthInput {
        self.tls_exporter = Some(data);
        self
    }

    /// The nonce, if one was given.
    pub fn nonce(&self) -> Option<&ClientNonce> {
        self.nonce.as_ref()
    }

    /// The channel-binding data, if given.
    pub fn tls_exporter(&self) -> Option<&[u8; 32]> {
        self.tls_exporter.as_ref()
    }
}

impl fmt::Debug for AuthInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthInput")
            .field("nonce", &self.nonce)
            .field("tls_exporter", &self.tls_exporter.map(|_| "[redacted]"))
            .finish()
    }
}

/// What the client must do after a `334` challenge.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SaslStep {
    /// The response line (base64, or empty) has been appended to `out`, CRLF included. It holds
    /// secret material: do not log it.
    Respond,
    /// The challenge was an error challenge (XOAUTH2 / OAUTHBEARER); the mandated reply (empty line
    /// or `^A`) has been appended; the server's final `535` follows. `detail` is the decoded
    /// challenge (JSON text), kept for [`AuthError::Rejected`].
    #[cfg_attr(
        not(any(feature = "xoauth2", feature = "oauthbearer")),
        allow(dead_code)
    )]
    RespondToError {
        /// The decoded error challenge.
        detail: String,
    },
}

/// One AUTH exchange in progress. Created with the credentials; dropped when the exchange ends.
pub(crate) struct SaslExchange {
    mechanism: AuthMechanism,
    /// The user name as it goes into the payload (for OAUTHBEARER: already a `saslname`).
    user: Secret,
    /// The password or token.
    secret: Secret,
    /// How many `334` challenges have been answered (or refused) so far.
    challenges: u8,
    /// The SCRAM state (SCRAM mechanisms only).
    #[cfg(feature = "scram")]
    scram: Option<scram::Scram>,
}

impl fmt::Debug for SaslExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslExchange")
            .field("mechanism", &self.mechanism)
            .field("challenges", &self.challenges)
            .finish_non_exhaustive()
    }
}

/// Base64 for decoding challenges: the standard alphabet, padding optional (some servers omit it).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// PLAIN / LOGIN: NUL is PLAIN's separator, CR and LF would end the line.
fn is_forbidden_in_password_mech(b: u8) -> bool {
    matches!(b, b'\0' | b'\r' | b'\n')
}

/// XOAUTH2 / OAUTHBEARER: every C0 control (0x01 separates fields) and DEL.
#[cfg(any(feature = "xoauth2", feature = "oauthbearer"))]
fn is_forbidden_in_oauth_mech(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// Refuse `value` if it is empty (when `required`) or holds a byte `forbidden` says no to.
fn check(
    field: Field,
    value: &str,
    required: bool,
    forbidden: fn(u8) -> bool,
) -> Result<(), InvalidInputError> {
    if required && value.is_empty() {
        return Err(InvalidInputError::argument(field, ArgumentError::Empty));
    }
    match value.bytes().position(forbidden) {
        Some(index) => Err(InvalidInputError::argument(
            field,
            ArgumentError::ForbiddenByte {
                byte: value.as_bytes()[index],
                index,
            },
        )),
        None => Ok(()),
    }
}

/// The RFC 5801 `saslname` of `user`: `=` becomes `=3D` and `,` becomes `=2C`.
#[cfg(any(feature = "oauthbearer", feature = "scram"))]
fn saslname(user: &str) -> Secret {
    let escaped = user.bytes().filter(|b| matches!(b, b'=' | b',')).count();
    let mut out = Secret::with_capacity(user.len() + 2 * escaped);
    for chunk in user
        .as_bytes()
        .split_inclusive(|b| matches!(b, b'=' | b','))
    {
        match chunk.split_last() {
            Some((b'=', rest)) => {
                out.extend_from_slice(rest);
                out.extend_from_slice(b"=3D");
            }
            Some((b',', rest)) => {
                out.extend_from_slice(rest);
                out.extend_from_slice(b"=2C");
            }
            _ => out.extend_from_slice(chunk),
        }
    }
    out
}

/// Append the base64 of `raw` to `out`, encoding straight into `out`'s buffer.
fn put_base64(out: &mut BytesMut, raw: &[u8]) {
    let len = base64::encoded_len(raw.len(), true).expect("SASL payload length overflows usize");
    let start = out.len();
    out.resize(start + len, 0);
    let written = STANDARD
        .encode_slice(raw, &mut out[start..])
        .expect("buffer sized with encoded_len");
    debug_assert_eq!(written, len);
}

/// The text of a `334` challenge: each line trimmed, the lines joined (a challenge is one line in
/// practice; a multi-line one is read as one base64 string).
fn challenge_text(reply: &Reply) -> String {
    reply.lines().map(str::trim).collect()
}

/// A SCRAM user name or password through SASLprep, refused when it holds a prohibited
/// character or nothing is left of it.
#[cfg(feature = "scram")]
fn scram_prepare(field: Field, value: &str) -> Result<Secret, InvalidInputError> {
    let prepared = saslprep::prepare(value).map_err(|p| {
        let reason = match p.ascii_control {
            Some(byte) => ArgumentError::ForbiddenByte {
                byte,
                index: p.index,
            },
            None => ArgumentError::Prohibited { index: p.index },
        };
        InvalidInputError::argument(field, reason)
    })?;
    if prepared.is_empty() {
        return Err(InvalidInputError::argument(field, ArgumentError::Empty));
    }
    Ok(prepared)
}

impl AuthMechanism {
    /// Whether this mechanism can carry `user` and `secret`, by the checks a login makes
    /// (required and empty values, forbidden bytes such as CR, LF and NUL; SASLprep for SCRAM),
    /// without any I/O: for a caller that wants a credential no login could send refused before
    /// it connects. Errors name the field and the offending byte's index, never the secret.
    ///
    /// ```
    /// use smtp_proto::sasl::AuthMechanism;
    ///
    /// assert!(AuthMechanism::Plain.check_credentials("me", "hunter2").is_ok());
    /// assert!(AuthMechanism::Plain.check_credentials("", "hunter2").is_err());
    /// assert!(AuthMechanism::Login.check_credentials("me", "pa\rss").is_err());
    /// ```
    pub fn check_credentials(self, user: &str, secret: &str) -> Result<(), InvalidInputError> {
        match self {
            AuthMechanism::ScramSha256 | AuthMechanism::ScramSha256Plus => {
                self.check_compiled_in()?;
                #[cfg(feature = "scram")]
                {
                    scram_prepare(Field::UserName, user)?;
                    scram_prepare(Field::Secret, secret)?;
                }
                Ok(())
            }
            _ => SaslExchange::new(self, user, secret).map(drop),
        }
    }
}

impl SaslExchange {
    /// Start an exchange. Validates `user` and `secret` for the mechanism (PLAIN / LOGIN: no NUL,
    /// CR or LF; XOAUTH2 / OAUTHBEARER: no control bytes at all) and refuses a mechanism whose cargo
    /// feature is off with [`InvalidInputError::FeatureDisabled`], before anything is queued.
    ///
    /// Empty values: the password or token is always required ([`ArgumentError::Empty`] with
    /// [`Field::Secret`]); the user name is required except for OAUTHBEARER, where it is the
    /// optional authorization identity. Errors about the secret name the offending byte (always a
    /// control byte) and its index, never the secret itself.
    ///
    /// # Errors
    ///
    /// [`InvalidInputError::Argument`] for a value the mechanism cannot carry,
    /// [`InvalidInputError::FeatureDisabled`] for a mechanism compiled out.
    pub fn new(
        mechanism: AuthMechanism,
        user: &str,
        secret: &str,
    ) -> Result<SaslExchange, InvalidInputError> {
        mechanism.check_compiled_in()?;
        let user = match mechanism {
            AuthMechanism::ScramSha256 | AuthMechanism::ScramSha256Plus => {
                // SCRAM needs a nonce: see `new_scram`.
                return Err(InvalidInputError::argument(
                    Field::Nonce,
                    ArgumentError::Empty,
                ));
            }
            AuthMechanism::Plain | AuthMechanism::Login => {
                check(Field::UserName, user, true, is_forbidden_in_password_mech)?;
                check(Field::Secret, secret, true, is_forbidden_in_password_mech)?;
                Secret::from(user)
            }
            #[cfg(feature = "xoauth2")]
            AuthMechanism::XOAuth2 => {
                check(Field::UserName, user, true, is_forbidden_in_oauth_mech)?;
                check(Field::Secret, secret, true, is_forbidden_in_oauth_mech)?;
                Secret::from(user)
            }
            #[cfg(feature = "oauthbearer")]
            AuthMechanism::OAuthBearer => {
                check(Field::UserName, user, false, is_forbidden_in_oauth_mech)?;
                check(Field::Secret, secret, true, is_forbidden_in_oauth_mech)?;
                saslname(user)
            }
            // A mechanism whose feature is off was refused by `check_compiled_in` above.
            #[allow(unreachable_patterns)]
            _ => {
                return Err(InvalidInputError::FeatureDisabled {
                    feature: "this mechanism",
                });
            }
        };
        Ok(SaslExchange {
            mechanism,
            user,
            secret: Secret::from(secret),
            challenges: 0,
            #[cfg(feature = "scram")]
            scram: None,
        })
    }

    /// Start a SCRAM exchange: SCRAM-SHA-256-PLUS when `binding` is
    /// [`ChannelBinding::TlsExporter`], SCRAM-SHA-256 with the `n` or `y` flag otherwise.
    ///
    /// The user name and password go through SASLprep (the subset the module documentation
    /// lists) and must be non-empty afterwards; `=` and `,` in the user name are escaped. No
    /// authorization identity is sent. `nonce` must be fresh for this exchange.
    ///
    /// The exchange then checks the server: its nonce must extend ours, the salt must be base64,
    /// the iteration count within [`SCRAM_MIN_ITERATIONS`]`..=max_iterations` (itself capped at
    /// [`SCRAM_MAX_ITERATIONS`]; the key derivation runs in
    /// [`respond`](Self::respond), so this bounds the CPU a server can make it spend), and its
    /// final signature must prove it holds the password's keys; see
    /// [`ScramError`](crate::error::ScramError).
    ///
    /// # Errors
    ///
    /// [`InvalidInputError::FeatureDisabled`] without the `scram` feature;
    /// [`InvalidInputError::Argument`] for an empty or prohibited user name or password.
    pub fn new_scram(
        user: &str,
        password: &str,
        nonce: &ClientNonce,
        binding: ChannelBinding,
        max_iterations: u32,
    ) -> Result<SaslExchange, InvalidInputError> {
        let mechanism = match binding {
            ChannelBinding::TlsExporter(_) => AuthMechanism::ScramSha256Plus,
            _ => AuthMechanism::ScramSha256,
        };
        mechanism.check_compiled_in()?;
        #[cfg(feature = "scram")]
        {
            let user = scram_prepare(Field::UserName, user)?;
            let password = scram_prepare(Field::Secret, password)?;
            // SASLprep output is valid UTF-8: it is built from whole characters.
            let user = saslname(user.expose_str().unwrap_or_default());
            let scram = scram::Scram::new(user.expose(), password, nonce, binding, max_iterations);
            Ok(SaslExchange {
                mechanism,
                user,
                secret: Secret::default(),
                challenges: 0,
                scram: Some(scram),
            })
        }
        #[cfg(not(feature = "scram"))]
        {
            let _ = (user, password, nonce, max_iterations);
            Err(InvalidInputError::FeatureDisabled { feature: "scram" })
        }
    }

    /// Whether a success reply (`235`) may be believed now. For SCRAM it may only once the
    /// server's signature has been verified; otherwise
    /// [`ScramError::ServerNotVerified`](crate::error::ScramError::ServerNotVerified), and the
    /// engine closes the session. Other mechanisms do not authenticate the server: always `Ok`.
    ///
    /// # Errors
    ///
    /// [`AuthError::Scram`] as above.
    pub fn check_success(&self) -> Result<(), AuthError> {
        #[cfg(feature = "scram")]
        if let Some(scram) = &self.scram {
            if !scram.is_verified() {
                return Err(AuthError::Scram {
                    mechanism: self.mechanism,
                    error: crate::error::ScramError::ServerNotVerified,
                });
            }
        }
        Ok(())
    }

    /// The mechanism.
    pub fn mechanism(&self) -> AuthMechanism {
        self.mechanism
    }

    /// The raw (not yet base64) initial response, in a buffer sized exactly so it never
    /// reallocates; zeroed when dropped. `None` for LOGIN, which has no initial response.
    fn initial_response(&self) -> Option<Secret> {
        let user = self.user.expose();
        let secret = self.secret.expose();
        let parts: &[&[u8]] = match self.mechanism {
            AuthMechanism::Login => return None,
            AuthMechanism::ScramSha256 | AuthMechanism::ScramSha256Plus => {
                #[cfg(feature = "scram")]
                return self.scram.as_ref().map(scram::Scram::client_first);
                #[cfg(not(feature = "scram"))]
                return None;
            }
            AuthMechanism::Plain => &[b"\0", user, b"\0", secret],
            #[cfg(feature = "xoauth2")]
            AuthMechanism::XOAuth2 => &[b"user=", user, b"\x01auth=Bearer ", secret, b"\x01\x01"],
            #[cfg(feature = "oauthbearer")]
            AuthMechanism::OAuthBearer if user.is_empty() => {
                &[b"n,,\x01auth=Bearer ", secret, b"\x01\x01"]
            }
            #[cfg(feature = "oauthbearer")]
            AuthMechanism::OAuthBearer => {
                &[b"n,a=", user, b",\x01auth=Bearer ", secret, b"\x01\x01"]
            }
            // Never built without its feature.
            #[allow(unreachable_patterns)]
            _ => return None,
        };
        let mut raw = Secret::with_capacity(parts.iter().map(|p| p.len()).sum());
        for part in parts {
            raw.extend_from_slice(part);
        }
        Some(raw)
    }

    /// Append the `AUTH <MECH>[ <initial-response>]\r\n` line to `out`.
    ///
    /// The line holds secret material (except for LOGIN): do not log it.
    pub fn write_initial(&mut self, out: &mut BytesMut) {
        out.extend_from_slice(b"AUTH ");
        out.extend_from_slice(self.mechanism.name().as_bytes());
        if let Some(raw) = self.initial_response() {
            out.extend_from_slice(b" ");
            put_base64(out, raw.expose());
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Answer a `334` challenge (`reply` is the whole 334 reply; its text is the base64 challenge),
    /// appending the response line to `out`.
    ///
    /// The line holds secret material: do not log it.
    ///
    /// # Errors
    ///
    /// [`AuthError::TooManyChallenges`] past the mechanism's last step,
    /// [`AuthError::MalformedChallenge`] for a challenge the mechanism cannot accept (not base64
    /// for LOGIN, not empty for PLAIN). On error nothing is appended; the caller cancels the
    /// exchange (`*`, RFC 4954 section 4).
    pub fn respond(&mut self, reply: &Reply, out: &mut BytesMut) -> Result<SaslStep, AuthError> {
        let mechanism = self.mechanism;
        let allowed = match mechanism {
            AuthMechanism::Login | AuthMechanism::ScramSha256 | AuthMechanism::ScramSha256Plus => 2,
            AuthMechanism::Plain | AuthMechanism::XOAuth2 | AuthMechanism::OAuthBearer => 1,
        };
        if self.challenges >= allowed {
            return Err(AuthError::TooManyChallenges { mechanism });
        }
        self.challenges += 1;
        let text = challenge_text(reply);
        match mechanism {
            AuthMechanism::Plain => {
                // PLAIN has no challenges: an empty one means the server ignored (or did not get)
                // the initial response, so send it again, once.
                if !text.is_empty() {
                    return Err(AuthError::MalformedChallenge { mechanism });
                }
                if let Some(raw) = self.initial_response() {
                    put_base64(out, raw.expose());
                }
                out.extend_from_slice(b"\r\n");
                Ok(SaslStep::Respond)
            }
            AuthMechanism::Login => {
                // The prompt ("Username:", "Password:") is only checked, not interpreted: some
                // servers word or localise it differently.
                if LENIENT.decode(text.as_bytes()).is_err() {
                    return Err(AuthError::MalformedChallenge { mechanism });
                }
                let value = if self.challenges == 1 {
                    &self.user
                } else {
                    &self.secret
                };
                put_base64(out, value.expose());
                out.extend_from_slice(b"\r\n");
                Ok(SaslStep::Respond)
            }
            #[cfg(any(feature = "xoauth2", feature = "oauthbearer"))]
            AuthMechanism::XOAuth2 | AuthMechanism::OAuthBearer => {
                // The only challenge these mechanisms get is the error challenge (base64 JSON).
                let detail = match LENIENT.decode(text.as_bytes()) {
                    Ok(json) => String::from_utf8_lossy(&json).into_owned(),
                    Err(_) => reply.text().to_owned(),
                };
                out.extend_from_slice(if mechanism == AuthMechanism::XOAuth2 {
                    // XOAUTH2: an empty response; the server then sends its final 535.
                    b"\r\n"
                } else {
                    // RFC 7628 section 3.2.3: the client answers the error with a single %x01.
                    b"AQ==\r\n"
                });
                Ok(SaslStep::RespondToError { detail })
            }
            AuthMechanism::ScramSha256 | AuthMechanism::ScramSha256Plus => {
                self.respond_scram(&text, out)
            }
            // Never built without its feature.
            #[allow(unreachable_patterns)]
            _ => Err(AuthError::TooManyChallenges { mechanism }),
        }
    }
}

impl SaslExchange {
    #[cfg(feature = "scram")]
    fn respond_scram(&mut self, text: &str, out: &mut BytesMut) -> Result<SaslStep, AuthError> {
        let mechanism = self.mechanism;
        let Some(scram) = self.scram.as_mut() else {
            return Err(AuthError::TooManyChallenges { mechanism });
        };
        match scram.respond(text, out) {
            Ok(None | Some(scram::ServerFinal::Verified)) => Ok(SaslStep::Respond),
            Ok(Some(scram::ServerFinal::Error(detail))) => Ok(SaslStep::RespondToError { detail }),
            Err(error) => Err(AuthError::Scram { mechanism, error }),
        }
    }

    #[cfg(not(feature = "scram"))]
    fn respond_scram(&mut self, _text: &str, _out: &mut BytesMut) -> Result<SaslStep, AuthError> {
        // `new` refuses SCRAM without its feature, so there is no such exchange.
        Err(AuthError::TooManyChallenges {
            mechanism: self.mechanism,
        })
    }
}

#[cfg(test)]
mod tests;
