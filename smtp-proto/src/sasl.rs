//! SASL mechanisms for AUTH (RFC 4954): PLAIN (RFC 4616), LOGIN, XOAUTH2, OAUTHBEARER (RFC 7628).
//!
//! (Helper D implements; the public signatures here are fixed.)
//!
//! A [`SaslExchange`] holds the credentials for the duration of one AUTH exchange only; the engine
//! drops it when the exchange ends, and its secrets are overwritten on drop. Nothing here prints a
//! secret: `Debug` redacts.

use core::fmt;

use bytes::BytesMut;

use crate::error::{AuthError, InvalidInputError};
use crate::reply::Reply;

/// An AUTH mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMechanism {
    /// PLAIN (RFC 4616): one round trip with an initial response.
    Plain,
    /// LOGIN: user name and password in two challenges.
    Login,
    /// XOAUTH2: Google / Microsoft OAuth 2.0 bearer tokens.
    XOAuth2,
    /// OAUTHBEARER (RFC 7628): the IETF OAuth 2.0 mechanism with GS2 framing.
    OAuthBearer,
}

impl AuthMechanism {
    /// The name used on the wire, e.g. `"PLAIN"`.
    pub const fn name(self) -> &'static str {
        match self {
            AuthMechanism::Plain => "PLAIN",
            AuthMechanism::Login => "LOGIN",
            AuthMechanism::XOAuth2 => "XOAUTH2",
            AuthMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The mechanism for a wire name (case-insensitive), if it is one we implement.
    pub fn from_name(name: &str) -> Option<AuthMechanism> {
        [
            AuthMechanism::Plain,
            AuthMechanism::Login,
            AuthMechanism::XOAuth2,
            AuthMechanism::OAuthBearer,
        ]
        .into_iter()
        .find(|m| m.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for AuthMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the client must do after a `334` challenge.
#[derive(Debug, PartialEq, Eq)]
pub enum SaslStep {
    /// The response line (base64, or empty) has been appended to `out`, CRLF included. It holds
    /// secret material: do not log it.
    Respond,
    /// The challenge was an error challenge (XOAUTH2 / OAUTHBEARER); the mandated reply (empty line
    /// or `^A`) has been appended; the server's final `535` follows. `detail` is the decoded
    /// challenge (JSON text), kept for [`AuthError::Rejected`].
    RespondToError {
        /// The decoded error challenge.
        detail: String,
    },
}

/// One AUTH exchange in progress. Created with the credentials; dropped when the exchange ends.
pub struct SaslExchange {
    mechanism: AuthMechanism,
    // helper D: credentials (overwritten on drop), step counter.
}

impl fmt::Debug for SaslExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslExchange")
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

impl SaslExchange {
    /// Start an exchange. Validates `user` and `secret` for the mechanism (PLAIN / LOGIN: no NUL,
    /// CR or LF; XOAUTH2 / OAUTHBEARER: no control bytes at all) and refuses a mechanism whose cargo
    /// feature is off with [`InvalidInputError::FeatureDisabled`], before anything is queued.
    pub fn new(
        mechanism: AuthMechanism,
        user: &str,
        secret: &str,
    ) -> Result<SaslExchange, InvalidInputError> {
        let _ = (user, secret);
        todo!()
    }

    /// The mechanism.
    pub fn mechanism(&self) -> AuthMechanism {
        self.mechanism
    }

    /// Append the `AUTH <MECH>[ <initial-response>]\r\n` line to `out`.
    pub fn write_initial(&mut self, out: &mut BytesMut) {
        let _ = out;
        todo!()
    }

    /// Answer a `334` challenge (`reply` is the whole 334 reply; its text is the base64 challenge),
    /// appending the response line to `out`.
    pub fn respond(&mut self, reply: &Reply, out: &mut BytesMut) -> Result<SaslStep, AuthError> {
        let _ = (reply, out);
        todo!()
    }
}
