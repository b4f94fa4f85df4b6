//! [`AuthMechanism`]: the SASL mechanisms this crate speaks, by name. A leaf module: the errors
//! name a mechanism, and the SASL code builds on both.

use core::fmt;

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
    /// SCRAM-SHA-256 (RFC 5802, RFC 7677): the password never crosses the wire, and the server
    /// proves it knows it too.
    ScramSha256,
    /// SCRAM-SHA-256-PLUS: SCRAM-SHA-256 bound to the TLS connection with `tls-exporter`
    /// (RFC 9266), so a man in the middle terminating TLS cannot relay the exchange.
    ScramSha256Plus,
}

impl AuthMechanism {
    /// The name used on the wire, e.g. `"PLAIN"`.
    pub const fn name(self) -> &'static str {
        match self {
            AuthMechanism::Plain => "PLAIN",
            AuthMechanism::Login => "LOGIN",
            AuthMechanism::XOAuth2 => "XOAUTH2",
            AuthMechanism::OAuthBearer => "OAUTHBEARER",
            AuthMechanism::ScramSha256 => "SCRAM-SHA-256",
            AuthMechanism::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
        }
    }

    /// True for SCRAM-SHA-256 and SCRAM-SHA-256-PLUS, the mechanisms that need an
    /// [`AuthInput`](crate::sasl::AuthInput).
    pub const fn is_scram(self) -> bool {
        matches!(
            self,
            AuthMechanism::ScramSha256 | AuthMechanism::ScramSha256Plus
        )
    }

    /// True for XOAUTH2 and OAUTHBEARER, whose credential is an OAuth 2.0 access token rather
    /// than a password (automatic selection never picks them).
    pub const fn takes_token(self) -> bool {
        matches!(self, AuthMechanism::XOAuth2 | AuthMechanism::OAuthBearer)
    }

    /// The cargo feature the mechanism needs, when it has one and it is off.
    pub(crate) const fn disabled_feature(self) -> Option<&'static str> {
        match self {
            AuthMechanism::XOAuth2 if !cfg!(feature = "xoauth2") => Some("xoauth2"),
            AuthMechanism::OAuthBearer if !cfg!(feature = "oauthbearer") => Some("oauthbearer"),
            AuthMechanism::ScramSha256 | AuthMechanism::ScramSha256Plus
                if !cfg!(feature = "scram") =>
            {
                Some("scram")
            }
            _ => None,
        }
    }

    /// Every mechanism this crate implements, in declaration order.
    pub(crate) const ALL: [AuthMechanism; 6] = [
        AuthMechanism::Plain,
        AuthMechanism::Login,
        AuthMechanism::XOAuth2,
        AuthMechanism::OAuthBearer,
        AuthMechanism::ScramSha256,
        AuthMechanism::ScramSha256Plus,
    ];

    /// The mechanism for a wire name (case-insensitive), if it is one we implement.
    pub fn from_name(name: &str) -> Option<AuthMechanism> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for AuthMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
