//! A WASI 0.2 component that sends mail: it exports `smtp-rs:smtp/client` (`wit/smtp.wit` in
//! smtp-io-wasm) and does the work with smtp-io-wasm's WASI client. Everything here is glue
//! between the WIT types and the Rust API; the protocol is the engine's.

use std::time::Duration;

use smtp_io_wasm as smtp;
use smtp_io_wasm::wasi::{ConnectOptions, TlsConfig, block_on};
use smtp_io_wasm::{AuthError, ProtocolError, Reply, SmtpOp, TlsMode};

use bindings::exports::smtp_rs::smtp::client as wit;

/// The generated bindings (canonical ABI glue: the only unsafe code of the crate).
#[allow(unsafe_code, missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "smtp-sender",
    });

    use super::Component;
    export!(Component with_types_in self);
}

/// The exported `client` interface.
struct Component;

impl wit::Guest for Component {
    fn send(
        options: wit::ConnectOptions,
        envelope: wit::Envelope,
        message: Vec<u8>,
    ) -> Result<wit::Delivery, wit::SmtpError> {
        block_on(send(options, envelope, message))
    }
}

async fn send(
    options: wit::ConnectOptions,
    envelope: wit::Envelope,
    message: Vec<u8>,
) -> Result<wit::Delivery, wit::SmtpError> {
    let mode = match options.tls {
        wit::TlsMode::Implicit => TlsMode::Implicit,
        wit::TlsMode::Starttls => TlsMode::StartTls,
        wit::TlsMode::None => TlsMode::None,
    };
    let mut connect = ConnectOptions::new(mode);
    if let Some(pem) = &options.ca_pem {
        let tls = TlsConfig::from_ca_pem(pem.as_bytes())
            .map_err(|e| wit::SmtpError::InvalidInput(format!("ca-pem: {e}")))?;
        connect = connect.with_tls(tls);
    }
    if let Some(ms) = options.connect_timeout_ms {
        connect = connect.with_connect_timeout(Duration::from_millis(ms.into()));
    }
    if options.allow_plaintext_auth {
        connect = connect.map_client_options(|o| o.allow_plaintext_auth());
    }
    if let Some(ms) = options.reply_timeout_ms {
        connect = connect.with_reply_timeout(Duration::from_millis(ms.into()));
    }
    if let Some(ms) = options.deadline_ms {
        // The session's deadline counts from before the connect (`ConnectClock`): the TCP
        // connect and an implicit-TLS handshake count against it.
        let deadline = Duration::from_millis(ms.into());
        connect = connect.with_deadline(deadline);
    }
    let mut client = connect
        .connect(&options.host, options.port, &options.ehlo_domain)
        .await
        .map_err(|e| error(&e))?;
    if let Some(credentials) = &options.credentials {
        client
            .login(&credentials.user, &credentials.password)
            .await
            .map_err(|e| error(&e))?;
    }
    let to: Vec<&str> = envelope.recipients.iter().map(String::as_str).collect();
    let outcome = client
        .send_mail_bytes(&envelope.sender, &to, &message)
        .await
        .map_err(|e| error(&e))?;
    let tls_version = client
        .transport()
        .tls_info()
        .map(|(version, _)| format!("{version:?}"));
    let auth_mechanism = client
        .session()
        .authenticated()
        .map(|m| m.name().to_owned());
    // The message is accepted: a failed QUIT changes nothing for it.
    let _ = client.quit().await;
    Ok(wit::Delivery {
        queue_id: outcome.queue_id,
        reply: reply(&outcome.reply),
        recipients: outcome
            .recipients
            .iter()
            .map(|r| recipient(&r.recipient, &r.reply))
            .collect(),
        size: outcome.size,
        tls_version,
        auth_mechanism,
    })
}

fn reply(reply: &Reply) -> wit::ServerReply {
    wit::ServerReply {
        code: reply.code().get(),
        enhanced: reply.enhanced().map(|e| e.to_string()),
        text: reply.text().to_owned(),
    }
}

fn recipient(address: &str, r: &Reply) -> wit::RecipientResult {
    wit::RecipientResult {
        recipient: address.to_owned(),
        accepted: r.code().is_positive(),
        reply: reply(r),
    }
}

fn operation(op: SmtpOp) -> wit::Operation {
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

fn io_kind(kind: std::io::ErrorKind) -> wit::IoKind {
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
        _ => K::Other,
    }
}

/// The typed WIT error for a client error: the same classes, the same blame.
fn error(err: &smtp::SmtpError) -> wit::SmtpError {
    let message = err.to_string();
    match err {
        smtp::SmtpError::Io { during, error } => wit::SmtpError::Io(wit::IoError {
            during: operation(*during),
            kind: io_kind(error.kind),
            message,
        }),
        smtp::SmtpError::Timeout { during, after } => wit::SmtpError::Timeout(wit::TimeoutError {
            during: operation(*during),
            after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
        }),
        smtp::SmtpError::DeadlineExceeded { during, after } => {
            wit::SmtpError::DeadlineExceeded(wit::TimeoutError {
                during: operation(*during),
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
                reply: err.reply().map(reply),
                message,
            })
        }
        smtp::SmtpError::InvalidInput(_) => wit::SmtpError::InvalidInput(message),
        smtp::SmtpError::Policy(_) => wit::SmtpError::Policy(message),
        _ => wit::SmtpError::Other(message),
    }
}
