//! Errors: one [`SmtpError`], and [`SmtpError::blame`] to say who is to blame ([`Blame`]: the
//! server refused, the server misbehaved, a local check refused, the caller misused the API, I/O,
//! a timeout, or a bug here), so no caller has to work it out from the error's shape.
//!
//! * [`SmtpError::Io`] / [`SmtpError::Timeout`] / [`SmtpError::DeadlineExceeded`]: the transport or
//!   the clock ended the wait.
//! * [`SmtpError::Protocol`]: the server refused ([`ProtocolError::UnexpectedCode`], with its code,
//!   enhanced code and text) or broke the protocol (malformed reply, a reply out of step with the
//!   commands, bytes after the STARTTLS `220`, ...), or a check against its capabilities refused before sending
//!   ([`ProtocolError::ExtensionUnavailable`], [`ProtocolError::MessageTooLarge`]).
//! * [`SmtpError::Auth`]: authentication could not be done or was refused.
//! * [`SmtpError::InvalidInput`]: the caller passed a bad argument or called in the wrong state. Never
//!   caused by server data.
//! * [`SmtpError::Policy`]: the local [`Policy`](crate::Policy) refused before anything was sent.
//! * [`SmtpError::Internal`]: a bug here, reported instead of a panic.
//!
//! No variant ever holds a password, token or SASL payload.

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use core::fmt;
use core::time::Duration;

use crate::capabilities::Extension;
use crate::mechanism::AuthMechanism;
use crate::reply::{Reply, ReplyError};
use crate::state::{SessionState, SmtpOp};

/// Every error the engine and the client return.
///
/// Once the session is `Closed` after a fatal error, every later call returns an error too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpError {
    /// The transport failed (read, write, connect, TLS upgrade, close).
    #[error("I/O error during {during}: {error}")]
    Io {
        /// What the client was doing.
        during: SmtpOp,
        /// What the transport reported.
        error: IoError,
    },
    /// The server did not complete its reply within the wait's limit.
    #[error("timed out after {}s waiting for the server during {during}", after.as_secs_f64())]
    Timeout {
        /// The operation whose reply was awaited.
        during: SmtpOp,
        /// The limit that ran out.
        after: Duration,
    },
    /// The session's total deadline ([`Timeouts::total`](crate::Timeouts::total)) ran out,
    /// whatever the server was doing at the time.
    #[error("the session's deadline of {}s ran out during {during}", after.as_secs_f64())]
    DeadlineExceeded {
        /// What the client was doing when the deadline passed.
        during: SmtpOp,
        /// The deadline.
        after: Duration,
    },
    /// The server refused a command or broke the protocol.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// Authentication failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The caller passed an invalid argument or called in the wrong state.
    #[error(transparent)]
    InvalidInput(#[from] InvalidInputError),
    /// The configured policy refused the message before any command was sent.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// An invariant of this crate broke (a bug, reported rather than a panic). The session is
    /// closed.
    #[error("internal error: {what} (a bug in smtp-proto; please report it)")]
    Internal {
        /// What went wrong.
        what: &'static str,
    },
}

/// Who is to blame for an [`SmtpError`], from [`SmtpError::blame`]: what a caller, a retry loop
/// or an exit code needs, without looking into the error's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Blame {
    /// The server refused: a reply that does not let the operation go on (its code, enhanced
    /// code and text are in the error, with the step it answered).
    ServerRefused,
    /// The server broke the protocol: a malformed or unsolicited reply, bytes after the
    /// STARTTLS `220`, a SASL challenge the mechanism cannot take, a SCRAM server that could not
    /// prove it knows the password.
    ServerMisbehaved,
    /// A check made here refused before anything was sent: an extension the server does not
    /// offer, a message larger than a limit, the policy, credentials on a connection without
    /// TLS.
    LocalCheck,
    /// The caller misused the API: an invalid argument, a call in the wrong state, a feature
    /// compiled out, a body longer than it declared.
    Caller,
    /// The transport failed: connect, read, write, TLS handshake, or the connection closed.
    Io,
    /// A wait ran out: a reply, a write, or the session's deadline.
    Timeout,
    /// A bug in this crate ([`SmtpError::Internal`]).
    Internal,
}

impl SmtpError {
    /// Who is to blame.
    pub fn blame(&self) -> Blame {
        match self {
            SmtpError::Io { .. } => Blame::Io,
            SmtpError::Timeout { .. } | SmtpError::DeadlineExceeded { .. } => Blame::Timeout,
            SmtpError::Protocol(p) => match p {
                ProtocolError::UnexpectedCode { .. } | ProtocolError::RecipientsRefused { .. } => {
                    Blame::ServerRefused
                }
                ProtocolError::ExtensionUnavailable { .. }
                | ProtocolError::MessageTooLarge { .. } => Blame::LocalCheck,
                ProtocolError::ConnectionClosed { .. } => Blame::Io,
                ProtocolError::Malformed { .. }
                | ProtocolError::OutOfSync { .. }
                | ProtocolError::ResponseInjection { .. }
                | ProtocolError::UnsolicitedReply { .. } => Blame::ServerMisbehaved,
            },
            SmtpError::Auth(a) => match a {
                AuthError::Rejected { .. } => Blame::ServerRefused,
                AuthError::UnsupportedMechanism { .. }
                | AuthError::PlaintextRefused { .. }
                | AuthError::ChannelBindingUnavailable { .. } => Blame::LocalCheck,
                AuthError::MalformedChallenge { .. }
                | AuthError::TooManyChallenges { .. }
                | AuthError::Scram { .. } => Blame::ServerMisbehaved,
            },
            SmtpError::InvalidInput(_) => Blame::Caller,
            SmtpError::Policy(_) => Blame::LocalCheck,
            SmtpError::Internal { .. } => Blame::Internal,
        }
    }

    /// The step the error is about, when it is about one: the command whose reply was awaited
    /// or refused, [`SmtpOp::Auth`] for authentication, [`SmtpOp::StartTls`] for the STARTTLS
    /// barrier, [`SmtpOp::RcptTo`] for refused recipients, [`SmtpOp::MailFrom`] for the checks
    /// made before a message's first command.
    pub fn during(&self) -> Option<SmtpOp> {
        match self {
            SmtpError::Io { during, .. }
            | SmtpError::Timeout { during, .. }
            | SmtpError::DeadlineExceeded { during, .. } => Some(*during),
            SmtpError::Protocol(p) => Some(match p {
                ProtocolError::UnexpectedCode { during, .. }
                | ProtocolError::Malformed { during, .. }
                | ProtocolError::OutOfSync { during, .. }
                | ProtocolError::ConnectionClosed { during } => *during,
                ProtocolError::ResponseInjection { .. } => SmtpOp::StartTls,
                ProtocolError::ExtensionUnavailable {
                    name: Extension::StartTls,
                } => SmtpOp::StartTls,
                ProtocolError::RecipientsRefused { .. } => SmtpOp::RcptTo,
                ProtocolError::UnsolicitedReply { .. } => return None,
                ProtocolError::ExtensionUnavailable { .. }
                | ProtocolError::MessageTooLarge { .. } => SmtpOp::MailFrom,
            }),
            SmtpError::Auth(_) => Some(SmtpOp::Auth),
            SmtpError::InvalidInput(InvalidInputError::WrongState { op, .. }) => Some(*op),
            SmtpError::InvalidInput(_) | SmtpError::Policy(_) | SmtpError::Internal { .. } => None,
        }
    }

    /// The server reply behind this error, when there is one: the reply that refused the
    /// step. `None` for [`ProtocolError::OutOfSync`]: that reply was paired with a command it
    /// cannot answer (it belongs to another command, or to none), so it says nothing about
    /// the step and must not be read as a refusal; the error itself holds it.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            SmtpError::Protocol(ProtocolError::UnexpectedCode { reply, .. }) => Some(reply),
            SmtpError::Auth(AuthError::Rejected { reply, .. }) => Some(reply),
            _ => None,
        }
    }

    /// True when sending a message that failed with this error before its end of data again,
    /// once, on a new connection may succeed: the failure was the connection's or temporary
    /// (I/O, a timeout, a closed connection, a `4xx`, replies out of step), not a `5xx`, a local
    /// check or a caller error. The one retry rule of [`Delivery`](crate::client::Delivery) and
    /// of a pool.
    pub fn is_retryable_on_new_connection(&self) -> bool {
        self.is_transient() || self.blame() == Blame::Io
    }

    /// True when the server refused the credentials ([`AuthError::Rejected`]): AUTH ran to
    /// its end and the answer was no, as opposed to a local check, a mechanism not offered or
    /// an exchange the server broke. The one case where new credentials (a freshly fetched
    /// OAuth 2.0 token in place of a cached one) may succeed where the old ones failed; a pool
    /// with a token source asks it for a fresh token once on it.
    pub fn is_credentials_refused(&self) -> bool {
        matches!(self, SmtpError::Auth(AuthError::Rejected { .. }))
    }

    /// True when this is the server asking the client to slow down: a `421` at any step, or a
    /// temporary refusal of MAIL or of every recipient (rate limits, greylisting). A pool backs
    /// off on it rather than reconnecting at once.
    pub fn is_slow_down(&self) -> bool {
        match self {
            SmtpError::Protocol(ProtocolError::UnexpectedCode { during, reply }) => {
                reply.code() == crate::reply::ReplyCode::SERVICE_UNAVAILABLE
                    || (reply.code().is_transient()
                        && matches!(during, SmtpOp::MailFrom | SmtpOp::RcptTo))
            }
            SmtpError::Protocol(ProtocolError::RecipientsRefused { accepted: 0, .. }) => {
                self.is_transient()
            }
            _ => false,
        }
    }

    /// True when the TLS layer failed: a handshake or STARTTLS upgrade that failed, or, on an
    /// encrypted connection, a record the TLS layer refused. A transport reports such a record
    /// as [`InvalidData`](IoErrorKind::InvalidData) and uses that kind for nothing else
    /// ([`Transport::read`](crate::transport::Transport::read)). One example is the alert a
    /// TLS 1.3 server sends when it refuses the client's certificate (or its absence): it
    /// arrives after the client's side of the handshake, so the failure is reported during
    /// the greeting or EHLO, not [`SmtpOp::TlsHandshake`]. The connect step (a proxy's answer)
    /// and the body's source never count.
    pub fn is_tls_failure(&self) -> bool {
        match self {
            SmtpError::Io {
                during: SmtpOp::TlsHandshake | SmtpOp::StartTls,
                ..
            } => true,
            SmtpError::Io {
                during: SmtpOp::Connect | SmtpOp::ReadBody,
                ..
            } => false,
            SmtpError::Io { error, .. } => error.kind == IoErrorKind::InvalidData,
            _ => false,
        }
    }

    /// True when retrying later may succeed: a 4xx reply, a timeout, an I/O failure, or a reply
    /// out of step with the commands ([`ProtocolError::OutOfSync`]: the connection is lost, not
    /// the message; on a new connection the replies pair up again).
    pub fn is_transient(&self) -> bool {
        match self {
            SmtpError::Io { .. }
            | SmtpError::Timeout { .. }
            | SmtpError::DeadlineExceeded { .. }
            | SmtpError::Protocol(ProtocolError::OutOfSync { .. }) => true,
            SmtpError::Protocol(ProtocolError::RecipientsRefused { refused, .. }) => {
                refused.iter().all(|r| r.reply.code().is_transient())
            }
            _ => self.reply().is_some_and(|r| r.code().is_transient()),
        }
    }

    /// A shorthand for an I/O error.
    pub fn io(during: SmtpOp, kind: IoErrorKind, message: impl Into<String>) -> Self {
        SmtpError::Io {
            during,
            error: IoError {
                kind,
                message: message.into(),
            },
        }
    }
}

/// A transport failure, kept as its kind and message so errors stay `Clone` and comparable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoError {
    /// The kind of failure the transport reported.
    pub kind: IoErrorKind,
    /// The transport's message.
    pub message: String,
}

#[cfg(feature = "std")]
impl From<std::io::Error> for IoError {
    fn from(error: std::io::Error) -> IoError {
        IoError {
            kind: error.kind(),
            message: error.to_string(),
        }
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            f.write_str(&self.message)
        }
    }
}

/// The kind of an I/O failure: `std::io::ErrorKind` with the `std` feature (the default).
#[cfg(feature = "std")]
pub type IoErrorKind = std::io::ErrorKind;

/// The kind of an I/O failure, without the standard library: the kinds a driver on a bare-metal
/// target is likely to report, named as in `std::io::ErrorKind` (with the `std` feature this is
/// that type, so code written against these names builds either way).
#[cfg(not(feature = "std"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IoErrorKind {
    /// The peer refused the connection.
    ConnectionRefused,
    /// The peer reset the connection.
    ConnectionReset,
    /// The connection was aborted.
    ConnectionAborted,
    /// Not connected.
    NotConnected,
    /// The operation timed out.
    TimedOut,
    /// The stream ended early.
    UnexpectedEof,
    /// The data was not valid (e.g. a TLS certificate).
    InvalidData,
    /// An input to the operation was not valid.
    InvalidInput,
    /// The operation is not supported here.
    Unsupported,
    /// Anything else.
    Other,
}

#[cfg(not(feature = "std"))]
impl fmt::Display for IoErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(feature = "std")]
impl From<&std::io::Error> for IoError {
    fn from(e: &std::io::Error) -> Self {
        IoError {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

/// The server refused a command or did not follow the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The server answered with a code that does not let the operation go on (a refusal, or a
    /// `421` service shutdown). The reply is kept whole.
    #[error("server replied {reply} to {during}")]
    UnexpectedCode {
        /// The command the reply answered.
        during: SmtpOp,
        /// The server's reply: code, enhanced code and text.
        reply: Reply,
    },
    /// An extension the operation needs was not advertised in the EHLO reply (a check made
    /// here, before anything was sent): STARTTLS, SMTPUTF8 for a UTF-8 address, DSN, REQUIRETLS,
    /// BINARYMIME.
    #[error("the server does not offer {}", name.keyword())]
    ExtensionUnavailable {
        /// The extension.
        name: Extension,
    },
    /// A reply could not be parsed or went past a bound.
    #[error("malformed reply during {during}: {error}")]
    Malformed {
        /// The command whose reply was being read.
        during: SmtpOp,
        /// What was wrong.
        error: ReplyError,
    },
    /// A reply whose class cannot answer the command it was paired with: a `2xx` to DATA, a
    /// `3xx` to anything but DATA (`354`) or an AUTH step (`334`), any `1xx`. The server's
    /// replies and the client's commands are out of step (a reply too many, or one lost), so
    /// every later reply would answer the wrong command and the server may be reading commands
    /// as message text: the session is closed, never kept as after a refusal. The server
    /// refused nothing ([`SmtpError::reply`] is `None`); a message that failed with it before
    /// its end of data was not delivered, and may be sent again on a new connection
    /// ([`SmtpError::is_transient`] is true).
    #[error("replies out of step: the server replied {reply} to {during}, which cannot answer it")]
    OutOfSync {
        /// The command the reply was paired with.
        during: SmtpOp,
        /// The reply that cannot answer it.
        reply: Reply,
    },
    /// Bytes arrived after the STARTTLS `220` and before the TLS handshake: a response-injection
    /// attempt (CVE-2021-38371 / "NO STARTTLS" class). The session is closed.
    #[error(
        "{bytes} unexpected byte(s) after the STARTTLS 220 reply (possible response injection)"
    )]
    ResponseInjection {
        /// How many bytes were found.
        bytes: usize,
    },
    /// The server sent a reply when none was outstanding (unsolicited data while idle).
    #[error("unsolicited reply from the server while {state}")]
    UnsolicitedReply {
        /// The state the session was in.
        state: SessionState,
    },
    /// The connection was closed by the server before the awaited reply was complete.
    #[error("the server closed the connection during {during}")]
    ConnectionClosed {
        /// The command whose reply was awaited.
        during: SmtpOp,
    },
    /// Every recipient was refused (or, with [`RecipientPolicy::RequireAll`](crate::RecipientPolicy),
    /// at least one was); the message was not sent. The session stays usable.
    #[error("{} recipient(s) refused; message not sent", refused.len())]
    RecipientsRefused {
        /// Each refused recipient and the server's reply.
        refused: Vec<RecipientRefusal>,
        /// How many recipients the server accepted.
        accepted: usize,
    },
    /// The message is larger than the `SIZE` the server advertised; nothing was sent.
    #[error("message of {size} bytes exceeds the server's SIZE limit of {limit} bytes")]
    MessageTooLarge {
        /// The message size (after line-ending normalisation).
        size: u64,
        /// The limit from the EHLO `SIZE` keyword.
        limit: u64,
    },
}

/// One refused recipient, in the order they were given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientRefusal {
    /// The index of the recipient in the slice the caller gave.
    pub index: usize,
    /// The recipient address as given.
    pub recipient: String,
    /// The server's reply to its RCPT TO.
    pub reply: Reply,
}

/// Authentication could not be done or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The server did not advertise the mechanism (`None`: `login()` found no password mechanism
    /// it can use: SCRAM-SHA-256(-PLUS), PLAIN or LOGIN).
    #[error("{}", match mechanism {
        Some(m) => format!("the server does not offer AUTH {m}"),
        None => "the server offers no usable password mechanism (SCRAM-SHA-256, PLAIN, LOGIN)".to_owned(),
    })]
    UnsupportedMechanism {
        /// The mechanism that was asked for, if one was.
        mechanism: Option<AuthMechanism>,
    },
    /// The server refused the credentials. `detail` holds the decoded error challenge of XOAUTH2 /
    /// OAUTHBEARER (a JSON object such as `{"status":"401",...}`) when the server sent one.
    #[error("authentication rejected: {reply}{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rejected {
        /// The mechanism used.
        mechanism: AuthMechanism,
        /// The server's final reply.
        reply: Reply,
        /// The decoded error challenge, if any.
        detail: Option<String>,
    },
    /// A `334` challenge was not valid base64, or not what the mechanism allows.
    #[error("malformed AUTH {mechanism} challenge from the server")]
    MalformedChallenge {
        /// The mechanism in progress.
        mechanism: AuthMechanism,
    },
    /// The server sent more challenges than the mechanism has steps.
    #[error("too many AUTH {mechanism} challenges from the server")]
    TooManyChallenges {
        /// The mechanism in progress.
        mechanism: AuthMechanism,
    },
    /// A SCRAM exchange failed on the client's side of the checks (see [`ScramError`]). When
    /// [`ScramError::closes_session`] holds, the session is closed.
    #[error("AUTH {mechanism}: {error}")]
    Scram {
        /// The mechanism in progress.
        mechanism: AuthMechanism,
        /// What was wrong.
        error: ScramError,
    },
    /// The connection is not encrypted, so the credentials were not sent: a password or token
    /// would cross the network readable (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER), and SCRAM's
    /// advertisement could have been stripped by an attacker. Opt in with
    /// [`PlaintextAuth::Allow`](crate::session::PlaintextAuth::Allow) (in `SmtpClientOptions`:
    /// `allow_plaintext_auth`). Nothing was sent.
    #[error(
        "AUTH {mechanism} refused locally: the connection is not encrypted (use TLS, or allow plaintext authentication explicitly)"
    )]
    PlaintextRefused {
        /// The mechanism that would have been used.
        mechanism: AuthMechanism,
    },
    /// SCRAM-SHA-256-PLUS was asked for, but the connection has no channel-binding data (not on
    /// TLS 1.3, or the transport cannot export keying material). Nothing was sent.
    #[error("AUTH {mechanism} needs TLS 1.3 channel binding, which this connection lacks")]
    ChannelBindingUnavailable {
        /// The mechanism asked for.
        mechanism: AuthMechanism,
    },
}

/// What was wrong in a SCRAM exchange (RFC 5802). Each names the server's fault; the ones for which
/// [`closes_session`](ScramError::closes_session) is true mean the server has not proven it knows
/// the password, so it may not be the server it claims to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ScramError {
    /// The server-first message is not base64, or lacks `r=`, `s=` or `i=` in that order, or its
    /// nonce holds a character outside `printable`.
    #[error("malformed server-first message")]
    MalformedServerFirst,
    /// The server asked for a mandatory extension (`m=`) this client does not know.
    #[error("the server requires an unsupported mandatory extension (m=)")]
    MandatoryExtension,
    /// The server's nonce does not start with the client's nonce, or adds nothing to it.
    #[error("the server nonce does not extend the client nonce")]
    NonceMismatch,
    /// The salt is empty or not valid base64.
    #[error("the salt is empty or not valid base64")]
    InvalidSalt,
    /// The iteration count is outside the accepted range (see
    /// [`sasl::SCRAM_MIN_ITERATIONS`](crate::sasl::SCRAM_MIN_ITERATIONS) and
    /// [`sasl::SCRAM_MAX_ITERATIONS`](crate::sasl::SCRAM_MAX_ITERATIONS)). Saturates at
    /// `u64::MAX`.
    #[error("iteration count {count} is outside the accepted range")]
    IterationCount {
        /// The count the server asked for.
        count: u64,
    },
    /// The server-final message is neither `v=` with base64 nor `e=`.
    #[error("malformed server-final message")]
    MalformedServerFinal,
    /// The server's signature `v=` is wrong: it does not hold the keys derived from the password.
    #[error("the server signature is wrong (the server does not know the password)")]
    ServerSignatureMismatch,
    /// The server replied success before proving it knows the password with `v=`.
    #[error("the server reported success without proving it knows the password")]
    ServerNotVerified,
}

impl ScramError {
    /// True when the server failed to prove its identity after the client proof was sent
    /// ([`ServerSignatureMismatch`](ScramError::ServerSignatureMismatch),
    /// [`ServerNotVerified`](ScramError::ServerNotVerified)): the engine closes the session then,
    /// so nothing more (no other AUTH attempt, no message) goes to that server.
    pub fn closes_session(self) -> bool {
        matches!(
            self,
            ScramError::ServerSignatureMismatch | ScramError::ServerNotVerified
        )
    }
}

/// The caller passed an invalid argument or called a method in the wrong state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidInputError {
    /// An argument failed validation; nothing was queued.
    #[error("invalid {field}: {reason}")]
    Argument {
        /// Which argument.
        field: Field,
        /// Why.
        reason: ArgumentError,
    },
    /// The operation is not allowed in the current state (e.g. a second `login`).
    #[error("{op} is not allowed while the session is {state}")]
    WrongState {
        /// What was attempted.
        op: SmtpOp,
        /// The state the session was in.
        state: SessionState,
    },
    /// A streamed body yielded more bytes than it declared (its size hint, the size as sent:
    /// CRLF line endings, without dot-stuffing). The transaction was abandoned before its end of
    /// data, so nothing was delivered, and the session is closed.
    #[error("the message body is longer than the {declared} bytes it declared")]
    BodyLongerThanDeclared {
        /// The declared size.
        declared: u64,
    },
    /// The feature was compiled out (cargo feature off).
    #[error("{feature} support is not compiled in (enable the `{feature}` cargo feature)")]
    FeatureDisabled {
        /// The cargo feature name.
        feature: &'static str,
    },
}

impl InvalidInputError {
    /// A shorthand for [`InvalidInputError::Argument`].
    pub fn argument(field: Field, reason: ArgumentError) -> Self {
        InvalidInputError::Argument { field, reason }
    }
}

/// The argument an [`ArgumentError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The EHLO / HELO / LHLO domain or address literal.
    EhloDomain,
    /// The envelope sender (MAIL FROM).
    ReversePath,
    /// An envelope recipient (RCPT TO).
    ForwardPath,
    /// An ESMTP parameter of MAIL or RCPT.
    Parameter,
    /// The DSN envelope id (ENVID).
    EnvelopeId,
    /// The DSN original recipient (ORCPT).
    OriginalRecipient,
    /// The recipient list as a whole (e.g. empty).
    Recipients,
    /// A SASL user name or authorization identity.
    UserName,
    /// A password or token. Errors about it never show its bytes.
    Secret,
    /// The SCRAM client nonce.
    Nonce,
    /// The message body.
    Body,
    /// The server to connect to: its host, its port, or the name its certificate is checked
    /// for.
    Server,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::EhloDomain => "EHLO domain",
            Field::ReversePath => "sender address",
            Field::ForwardPath => "recipient address",
            Field::Parameter => "ESMTP parameter",
            Field::EnvelopeId => "DSN envelope id",
            Field::OriginalRecipient => "DSN original recipient",
            Field::Recipients => "recipient list",
            Field::UserName => "user name",
            Field::Secret => "secret",
            Field::Nonce => "SCRAM client nonce",
            Field::Body => "message body",
            Field::Server => "server",
        })
    }
}

/// Why an argument was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ArgumentError {
    /// The value is empty where a value is required.
    #[error("must not be empty")]
    Empty,
    /// The value is longer than allowed.
    #[error("longer than {max} bytes")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// A byte that may not appear (CR, LF, NUL, other C0 controls, DEL, or a byte the grammar
    /// forbids) was found. For secrets the byte itself is not shown.
    #[error("forbidden byte 0x{byte:02x} at index {index}")]
    ForbiddenByte {
        /// The byte.
        byte: u8,
        /// Its index in the argument.
        index: usize,
    },
    /// A character SASLprep (RFC 4013) prohibits, e.g. a private-use or display-changing code
    /// point. Only its byte index is shown.
    #[error("character prohibited by SASLprep at index {index}")]
    Prohibited {
        /// The byte index of the character.
        index: usize,
    },
    /// `<` and `>` do not pair up.
    #[error("unbalanced angle brackets")]
    UnbalancedBrackets,
    /// The value does not match the grammar.
    #[error("syntax: {0}")]
    Syntax(&'static str),
    /// The message cannot be DKIM-signed, and so is not sent (see [`Unsignable`]).
    #[error("cannot be DKIM-signed: {0}")]
    Unsignable(Unsignable),
}

/// Why a message cannot be DKIM-signed (`smtp-dkim` refused it): the caller's message to fix,
/// except [`Clock`](Unsignable::Clock). Typed, so that a caller can tell a message without
/// `From` from the others without reading the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Unsignable {
    /// No `From` header field, which a DKIM signature must cover.
    #[error("it has no From header field, which a DKIM signature needs")]
    MissingFrom,
    /// A line of the header section is neither `Name: value` nor a continuation.
    #[error("a line of its header section is neither `Name: value` nor a continuation")]
    MalformedHeader,
    /// The header section is larger than signing keeps in memory.
    #[error("its header section is larger than DKIM signing keeps")]
    HeadersTooLarge,
    /// The system clock is before 1970: there is no signing time to write.
    #[error("the system clock is before 1970: no DKIM signing time")]
    Clock,
    /// The signature could not be computed (the cryptographic library refused).
    #[error("the DKIM signature could not be computed")]
    Signature,
    /// The message goes as `BODY=BINARYMIME`, sent byte for byte, while DKIM signs text in
    /// CRLF lines: the signature would not match what is received (RFC 6376 section 5.3 asks
    /// for a 7-bit or 8-bit encoding before signing).
    #[error("it goes as BINARYMIME, which DKIM cannot sign (encode its binary parts instead)")]
    BinaryMime,
}

/// A local policy refused the message. Never sent to the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy refused: {reason}")]
pub struct PolicyError {
    /// A human-readable reason, e.g. `"too many recipients (51 > 50)"`.
    pub reason: String,
}

impl PolicyError {
    /// A policy error with this reason.
    pub fn new(reason: impl Into<String>) -> Self {
        PolicyError {
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests;
