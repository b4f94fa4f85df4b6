//! The Rust API's results as WIT types: deliveries, replies, and errors with their operation,
//! kind and blame.

use super::*;

pub(crate) fn auth_mechanism(client: &SmtpClient) -> Option<String> {
    client
        .session()
        .authenticated()
        .map(|m| m.name().to_owned())
}

pub(crate) fn delivery_of(client: &SmtpClient, outcome: SendOutcome) -> wit::Delivery {
    wit::Delivery {
        queue_id: outcome.queue_id,
        reply: reply(&outcome.reply),
        recipients: outcome
            .recipients
            .iter()
            .map(|r| recipient(&r.recipient, &r.reply))
            .collect(),
        size: outcome.size,
        tls_version: client
            .transport()
            .tls_info()
            .map(|(version, _)| format!("{version:?}")),
        auth_mechanism: auth_mechanism(client),
    }
}

pub(crate) fn reply(reply: &Reply) -> wit::ServerReply {
    wit::ServerReply {
        code: reply.code().get(),
        enhanced: reply.enhanced().map(|e| e.to_string()),
        text: reply.text().to_owned(),
    }
}

pub(crate) fn recipient(address: &str, r: &Reply) -> wit::RecipientResult {
    wit::RecipientResult {
        recipient: address.to_owned(),
        accepted: r.code().is_positive(),
        reply: reply(r),
    }
}

pub(crate) fn operation(op: SmtpOp) -> wit::Operation {
    use wit::Operation as O;
    match op {
        SmtpOp::Connect => O::Connect,
        SmtpOp::Greeting => O::Greeting,
        SmtpOp::Ehlo => O::Ehlo,
        SmtpOp::Helo => O::Helo,
        SmtpOp::Lhlo => O::Lhlo,
        SmtpOp::StartTls => O::Starttls,
        SmtpOp::TlsHandshake => O::TlsHandshake,
        SmtpOp::Auth => O::Auth,
        SmtpOp::MailFrom => O::MailFrom,
        SmtpOp::RcptTo => O::RcptTo,
        SmtpOp::Data => O::Data,
        SmtpOp::DataEnd => O::DataEnd,
        SmtpOp::Bdat => O::Bdat,
        SmtpOp::Rset => O::Rset,
        SmtpOp::Noop => O::Noop,
        SmtpOp::Quit => O::Quit,
        SmtpOp::ReadBody => O::ReadBody,
        SmtpOp::Close => O::Close,
        _ => O::Other,
    }
}

pub(crate) fn io_kind(kind: std::io::ErrorKind) -> wit::IoKind {
    use std::io::ErrorKind as E;
    use wit::IoKind as K;
    match kind {
        E::ConnectionRefused => K::ConnectionRefused,
        E::ConnectionReset => K::ConnectionReset,
        E::ConnectionAborted => K::ConnectionAborted,
        E::NotConnected => K::NotConnected,
        E::BrokenPipe => K::BrokenPipe,
        E::UnexpectedEof => K::UnexpectedEof,
        E::TimedOut => K::TimedOut,
        E::NotFound => K::NotFound,
        E::PermissionDenied => K::PermissionDenied,
        E::InvalidData => K::InvalidData,
        E::InvalidInput => K::InvalidInput,
        E::Unsupported => K::Unsupported,
        E::AddrNotAvailable => K::AddrNotAvailable,
        _ => K::Other,
    }
}

/// The operation an error happened in: the engine's own answer (`SmtpError::during`), never a
/// table of this component's.
pub(crate) fn during(err: &smtp::SmtpError) -> wit::Operation {
    err.during().map_or(wit::Operation::Other, operation)
}

/// Who is to blame: the engine's answer (`SmtpError::blame`).
pub(crate) fn blame(err: &smtp::SmtpError) -> wit::Blame {
    match err.blame() {
        Blame::ServerRefused => wit::Blame::ServerRefused,
        Blame::ServerMisbehaved => wit::Blame::ServerMisbehaved,
        Blame::LocalCheck => wit::Blame::LocalCheck,
        Blame::Caller => wit::Blame::Caller,
        Blame::Io => wit::Blame::Io,
        Blame::Timeout => wit::Blame::Timeout,
        _ => wit::Blame::Other,
    }
}

/// A message's result as WIT gives it: its delivery, or why it failed and its fate (the
/// engine's verdict: the failure's shape never decides it).
pub(crate) fn delivered(
    client: &SmtpClient,
    delivery: smtp::Delivery,
) -> Result<wit::Delivery, wit::SendFailure> {
    let fate = match delivery.fate() {
        None | Some(Fate::NotSent) => wit::Fate::NotSent,
        Some(Fate::Refused) => wit::Fate::Refused,
        Some(Fate::Unknown) => wit::Fate::Unknown,
    };
    match delivery {
        smtp::Delivery::Sent(outcome) => Ok(delivery_of(client, outcome)),
        smtp::Delivery::NotSent { error: e, .. } | smtp::Delivery::Unknown(e) => {
            Err(wit::SendFailure {
                error: error(&e),
                fate,
            })
        }
    }
}

/// A failure before the message was handed to the server (a local check, a connection that
/// could not be opened): nothing of it was sent.
pub(crate) fn not_sent(error: wit::SmtpError) -> wit::SendFailure {
    wit::SendFailure {
        error,
        fate: wit::Fate::NotSent,
    }
}

/// The typed WIT error for a client error: the same classes, the same blame.
pub(crate) fn error(err: &smtp::SmtpError) -> wit::SmtpError {
    let message = err.to_string();
    match err {
        smtp::SmtpError::Io { error, .. } => wit::SmtpError::Io(wit::IoError {
            during: during(err),
            kind: io_kind(error.kind),
            message,
        }),
        smtp::SmtpError::Timeout { after, .. } => wit::SmtpError::Timeout(wit::TimeoutError {
            during: during(err),
            after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
        }),
        smtp::SmtpError::DeadlineExceeded { after, .. } => {
            wit::SmtpError::DeadlineExceeded(wit::TimeoutError {
                during: during(err),
                after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
            })
        }
        smtp::SmtpError::Protocol(p) => {
            use wit::ProtocolErrorKind as K;
            let (kind, refused) = match p {
                ProtocolError::UnexpectedCode { .. } => (K::UnexpectedCode, Vec::new()),
                ProtocolError::ExtensionUnavailable { .. } => (K::ExtensionUnavailable, Vec::new()),
                ProtocolError::Malformed { .. } => (K::Malformed, Vec::new()),
                ProtocolError::OutOfSync { .. } => (K::OutOfSync, Vec::new()),
                ProtocolError::ResponseInjection { .. } => (K::ResponseInjection, Vec::new()),
                ProtocolError::UnsolicitedReply { .. } => (K::UnsolicitedReply, Vec::new()),
                ProtocolError::ConnectionClosed { .. } => (K::ConnectionClosed, Vec::new()),
                ProtocolError::RecipientsRefused { refused, .. } => (
                    K::RecipientsRefused,
                    refused
                        .iter()
                        .map(|r| recipient(&r.recipient, &r.reply))
                        .collect(),
                ),
                ProtocolError::MessageTooLarge { .. } => (K::MessageTooLarge, Vec::new()),
                _ => (K::Other, Vec::new()),
            };
            // The operation is the engine's own answer (`SmtpError::during`), never a table of
            // this component's.
            wit::SmtpError::Protocol(wit::ProtocolError {
                kind,
                blame: blame(err),
                during: err.during().map(operation),
                reply: err.reply().map(reply),
                refused,
                message,
            })
        }
        smtp::SmtpError::Auth(a) => {
            use wit::AuthErrorKind as K;
            let kind = match a {
                AuthError::UnsupportedMechanism { .. } => K::UnsupportedMechanism,
                AuthError::Rejected { .. } => K::Rejected,
                AuthError::MalformedChallenge { .. } => K::MalformedChallenge,
                AuthError::TooManyChallenges { .. } => K::TooManyChallenges,
                AuthError::Scram { .. } => K::Scram,
                AuthError::ChannelBindingUnavailable { .. } => K::ChannelBindingUnavailable,
                AuthError::PlaintextRefused { .. } => K::PlaintextRefused,
                _ => K::Other,
            };
            wit::SmtpError::Auth(wit::AuthError {
                kind,
                blame: blame(err),
                reply: err.reply().map(reply),
                message,
            })
        }
        smtp::SmtpError::InvalidInput(_) => wit::SmtpError::InvalidInput(message),
        smtp::SmtpError::Policy(_) => wit::SmtpError::Policy(message),
        _ => wit::SmtpError::Other(message),
    }
}
