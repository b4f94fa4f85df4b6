//! Tests of the error classes: who is to blame and which step each is about, and the rules
//! read from them (`is_transient`, `is_tls_failure`, a refusal that asks to slow down, ...).

use super::*;
#[allow(unused_imports)]
use crate::alloc_prelude::*;
use crate::reply::ReplyCode;

fn reply(code: u16) -> Reply {
    Reply::new(ReplyCode::new(code).unwrap(), None, "text")
}

/// Each class of error says who is to blame and which step it is about, so a caller never
/// works it out from the error's shape.
#[test]
fn blame_and_step_by_class() {
    let cases: Vec<(SmtpError, Blame, Option<SmtpOp>)> = vec![
        (
            SmtpError::io(SmtpOp::Connect, IoErrorKind::ConnectionRefused, "no"),
            Blame::Io,
            Some(SmtpOp::Connect),
        ),
        (
            ProtocolError::UnexpectedCode {
                during: SmtpOp::MailFrom,
                reply: reply(550),
            }
            .into(),
            Blame::ServerRefused,
            Some(SmtpOp::MailFrom),
        ),
        (
            ProtocolError::ResponseInjection { bytes: 3 }.into(),
            Blame::ServerMisbehaved,
            Some(SmtpOp::StartTls),
        ),
        (
            ProtocolError::OutOfSync {
                during: SmtpOp::Data,
                reply: reply(250),
            }
            .into(),
            Blame::ServerMisbehaved,
            Some(SmtpOp::Data),
        ),
        (
            ProtocolError::ExtensionUnavailable {
                name: Extension::StartTls,
            }
            .into(),
            Blame::LocalCheck,
            Some(SmtpOp::StartTls),
        ),
        (
            ProtocolError::MessageTooLarge { size: 2, limit: 1 }.into(),
            Blame::LocalCheck,
            Some(SmtpOp::MailFrom),
        ),
        (
            AuthError::PlaintextRefused {
                mechanism: AuthMechanism::Plain,
            }
            .into(),
            Blame::LocalCheck,
            Some(SmtpOp::Auth),
        ),
        (
            AuthError::Rejected {
                mechanism: AuthMechanism::Login,
                reply: reply(535),
                detail: None,
            }
            .into(),
            Blame::ServerRefused,
            Some(SmtpOp::Auth),
        ),
        (
            InvalidInputError::argument(Field::ForwardPath, ArgumentError::Empty).into(),
            Blame::Caller,
            None,
        ),
        (PolicyError::new("no").into(), Blame::LocalCheck, None),
        (
            SmtpError::DeadlineExceeded {
                during: SmtpOp::DataEnd,
                after: Duration::from_secs(1),
            },
            Blame::Timeout,
            Some(SmtpOp::DataEnd),
        ),
        (SmtpError::Internal { what: "x" }, Blame::Internal, None),
    ];
    for (error, blame, during) in cases {
        assert_eq!(error.blame(), blame, "{error:?}");
        assert_eq!(error.during(), during, "{error:?}");
    }
}

/// Only a refusal of the credentials themselves: not a mechanism the server lacks, a
/// plaintext refusal, a broken exchange, or a refusal of anything but AUTH.
/// A TLS failure is told by step and kind: a failed handshake or upgrade, or a record the
/// TLS layer refused on an open connection; never a lost connection, the connect step or
/// the body's source.
#[test]
fn tls_failure_by_step_and_kind() {
    let io = |during, kind| SmtpError::io(during, kind, "x");
    for (error, tls) in [
        (io(SmtpOp::TlsHandshake, IoErrorKind::UnexpectedEof), true),
        (io(SmtpOp::StartTls, IoErrorKind::ConnectionReset), true),
        (io(SmtpOp::Greeting, IoErrorKind::InvalidData), true),
        (io(SmtpOp::Ehlo, IoErrorKind::InvalidData), true),
        (io(SmtpOp::DataEnd, IoErrorKind::InvalidData), true),
        (io(SmtpOp::Ehlo, IoErrorKind::ConnectionReset), false),
        (io(SmtpOp::Connect, IoErrorKind::InvalidData), false),
        (io(SmtpOp::ReadBody, IoErrorKind::InvalidData), false),
        (
            ProtocolError::ConnectionClosed {
                during: SmtpOp::Ehlo,
            }
            .into(),
            false,
        ),
    ] {
        assert_eq!(error.is_tls_failure(), tls, "{error:?}");
    }
}

#[test]
fn credentials_refused_is_an_auth_rejection_only() {
    let rejected: SmtpError = AuthError::Rejected {
        mechanism: AuthMechanism::XOAuth2,
        reply: reply(535),
        detail: Some("{\"status\":\"401\"}".to_owned()),
    }
    .into();
    assert!(rejected.is_credentials_refused());
    let not: [SmtpError; 4] = [
        AuthError::UnsupportedMechanism { mechanism: None }.into(),
        AuthError::PlaintextRefused {
            mechanism: AuthMechanism::Plain,
        }
        .into(),
        AuthError::TooManyChallenges {
            mechanism: AuthMechanism::Login,
        }
        .into(),
        ProtocolError::UnexpectedCode {
            during: SmtpOp::MailFrom,
            reply: reply(535),
        }
        .into(),
    ];
    for error in not {
        assert!(!error.is_credentials_refused(), "{error:?}");
    }
}

/// The server asking to slow down: a 421 anywhere, a 4xx to MAIL or to every RCPT; not a
/// 4xx to DATA, a 5xx, or a connection lost.
#[test]
fn slow_down_is_a_421_or_a_temporary_envelope_refusal() {
    let code = |during, n| -> SmtpError {
        ProtocolError::UnexpectedCode {
            during,
            reply: reply(n),
        }
        .into()
    };
    assert!(code(SmtpOp::Greeting, 421).is_slow_down());
    assert!(code(SmtpOp::DataEnd, 421).is_slow_down());
    assert!(code(SmtpOp::MailFrom, 451).is_slow_down());
    assert!(code(SmtpOp::RcptTo, 450).is_slow_down());
    assert!(!code(SmtpOp::Data, 451).is_slow_down());
    assert!(!code(SmtpOp::MailFrom, 550).is_slow_down());
    let all_deferred: SmtpError = ProtocolError::RecipientsRefused {
        refused: vec![RecipientRefusal {
            index: 0,
            recipient: "a@b.example".into(),
            reply: reply(450),
        }],
        accepted: 0,
    }
    .into();
    assert!(all_deferred.is_slow_down());
    let lost: SmtpError = ProtocolError::ConnectionClosed {
        during: SmtpOp::MailFrom,
    }
    .into();
    assert!(!lost.is_slow_down());
}

/// A reply out of step is the server's fault and the connection's, not a refusal: no reply
/// behind it (a driver must not read a refusal into it), and transient (a new connection
/// may succeed).
#[test]
fn out_of_sync_is_no_refusal_and_transient() {
    let error: SmtpError = ProtocolError::OutOfSync {
        during: SmtpOp::Data,
        reply: reply(250),
    }
    .into();
    assert_eq!(error.reply(), None);
    assert!(error.is_transient());
    assert_eq!(
        error.to_string(),
        "replies out of step: the server replied 250 text to DATA, which cannot answer it"
    );
}
