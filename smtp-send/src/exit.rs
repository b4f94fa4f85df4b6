//! Exit codes and the one-line failure report: [`Exit`], [`Failure`], and the mapping from
//! [`SmtpError`] ([`Failure::from_smtp`]).

use std::fmt;

use smtp_io_tokio::{
    AuthError, Blame, Extension, InvalidInputError, ProtocolError, SmtpError, SmtpOp,
};

/// The process exit codes of `smtp-send`. Each failure class has its own code, so scripts can tell
/// "try again later" (connect, timeout) from "fix the command" (usage, auth, recipients), and
/// both from "it may have been delivered" ([`Exit::DeliveryUnknown`]: never retry that one
/// blindly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Exit {
    /// 0: the server accepted the message.
    Accepted,
    /// 1: an internal error (a bug in smtp-send or the library; should not happen).
    Internal,
    /// 2: the command line is wrong (clap's usual code, also used for invalid addresses).
    Usage,
    /// 3: cannot connect (DNS, refused, unreachable), or the connection broke before the end of
    /// the message was written (nothing was delivered).
    Connect,
    /// 4: TLS failed: certificate not trusted, handshake error, STARTTLS missing or refused.
    Tls,
    /// 5: authentication refused or impossible (mechanism not offered).
    Auth,
    /// 6: the server refused the recipient(s); nothing was sent.
    Recipients,
    /// 7: the server refused the sender or the message, or broke the protocol.
    Refused,
    /// 8: the server did not answer in time (`--timeout`, or the RFC 5321 defaults), or the
    /// whole run took longer than `--deadline` (a wait for the reply to the end of the message
    /// is [`Exit::DeliveryUnknown`] instead).
    Timeout,
    /// 9: a local file could not be read (message, CA file, password file, standard input).
    LocalIo,
    /// 10: delivery unknown. The end of the message (the final dot) was written, and the
    /// server's reply to it never came (the connection closed, the server went silent, the
    /// reply was garbled, or `--deadline` ran out): the server may have queued the message.
    /// Sending it again may deliver it twice.
    DeliveryUnknown,
    /// 11: delivered to some recipients only: an LMTP server took the message for some and
    /// refused it for others, each in its own reply to the end of the message. Sending it again
    /// delivers it twice to those that have it.
    PartlyDelivered,
    /// 130: interrupted by Ctrl-C.
    Interrupted,
}

impl Exit {
    /// The numeric exit code.
    pub const fn code(self) -> u8 {
        match self {
            Exit::Accepted => 0,
            Exit::Internal => 1,
            Exit::Usage => 2,
            Exit::Connect => 3,
            Exit::Tls => 4,
            Exit::Auth => 5,
            Exit::Recipients => 6,
            Exit::Refused => 7,
            Exit::Timeout => 8,
            Exit::LocalIo => 9,
            Exit::DeliveryUnknown => 10,
            Exit::PartlyDelivered => 11,
            Exit::Interrupted => 130,
        }
    }

    /// Every exit code, in numeric order, with a short description (used for `--help` and tests).
    pub const ALL: [(Exit, &'static str); 13] = [
        (Exit::Accepted, "the server accepted the message"),
        (Exit::Internal, "internal error"),
        (
            Exit::Usage,
            "usage error (bad or missing arguments, invalid address)",
        ),
        (
            Exit::Connect,
            "cannot connect (DNS, refused, unreachable) or connection lost; nothing was delivered",
        ),
        (
            Exit::Tls,
            "TLS failure (untrusted certificate, handshake, STARTTLS unavailable, a client \
             certificate refused)",
        ),
        (Exit::Auth, "authentication refused or not possible"),
        (Exit::Recipients, "recipient(s) refused; nothing was sent"),
        (
            Exit::Refused,
            "sender or message refused, or other protocol error",
        ),
        (
            Exit::Timeout,
            "timed out waiting for the server, or --deadline ran out",
        ),
        (
            Exit::LocalIo,
            "local I/O error (message file, CA file, password file unreadable)",
        ),
        (
            Exit::DeliveryUnknown,
            "delivery unknown: no reply once the message was sent; it may have been \
             delivered, do not send it again blindly",
        ),
        (
            Exit::PartlyDelivered,
            "delivered to some recipients only (LMTP), refused for the others; do not send it \
             again to those that have it",
        ),
        (Exit::Interrupted, "interrupted (Ctrl-C)"),
    ];
}

/// The exit-code table shown at the end of `--help`.
pub fn exit_code_help() -> String {
    let mut s = String::from("Exit codes:\n");
    for (exit, what) in Exit::ALL {
        s.push_str(&format!("  {:>3}  {what}\n", exit.code()));
    }
    s
}

/// A failure: its exit code and one line of explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The exit code.
    pub exit: Exit,
    /// What went wrong, one line, never holding a secret.
    pub message: String,
}

impl Failure {
    /// A failure with this code and message.
    pub fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            message: message.into(),
        }
    }

    /// Classify an [`SmtpError`] from a session with `server` (shown in the message): the exit
    /// code comes from who is to blame ([`SmtpError::blame`]), the step it is about
    /// ([`SmtpError::during`]) and whether the TLS layer failed
    /// ([`SmtpError::is_tls_failure`]: also an alert after the handshake), nothing else.
    pub fn from_smtp(err: &SmtpError, server: &str) -> Failure {
        use SmtpOp as Op;
        let exit = match (err.blame(), err.during()) {
            _ if err.is_tls_failure() => Exit::Tls,
            (Blame::Timeout, _) => Exit::Timeout,
            (Blame::Io, Some(Op::ReadBody)) => Exit::LocalIo,
            (
                Blame::Io | Blame::ServerRefused | Blame::ServerMisbehaved | Blame::LocalCheck,
                Some(Op::TlsHandshake | Op::StartTls),
            ) => Exit::Tls,
            (Blame::Io, _) => Exit::Connect,
            (
                Blame::ServerRefused | Blame::ServerMisbehaved | Blame::LocalCheck,
                Some(Op::Auth),
            ) => Exit::Auth,
            (Blame::ServerRefused, Some(Op::RcptTo)) => Exit::Recipients,
            (Blame::ServerRefused | Blame::ServerMisbehaved | Blame::LocalCheck, _) => {
                Exit::Refused
            }
            // The body stream yielded more than the file's size: the file changed under us.
            (Blame::Caller, _)
                if matches!(
                    err,
                    SmtpError::InvalidInput(InvalidInputError::BodyLongerThanDeclared { .. })
                ) =>
            {
                Exit::LocalIo
            }
            (Blame::Caller, None) => Exit::Usage,
            // A call in the wrong state, or a bug.
            _ => Exit::Internal,
        };
        Failure::new(exit, describe(err, server))
    }

    /// The failure of a message whose end of data was written and whose reply never came
    /// ([`Delivery::Unknown`](smtp_io_tokio::Delivery::Unknown)): [`Exit::DeliveryUnknown`]
    /// whatever `err` is (a closed connection, a timeout, a garbled reply), with a message that
    /// says the message may have been delivered and must not be sent again blindly.
    pub fn delivery_unknown(err: &SmtpError, server: &str) -> Failure {
        Failure::new(
            Exit::DeliveryUnknown,
            format!(
                "delivery unknown: the whole message was sent to {server}, but no reply to its \
                 end came ({}); the server may have accepted it, so do not send it again \
                 without checking (the recipient's mailbox, the server's log), or it may be \
                 delivered twice",
                describe(err, server)
            ),
        )
    }
}

impl Failure {
    /// The failure of a message the server judged at its end of data that some recipients got
    /// and others refused (an LMTP server's replies, one for each recipient):
    /// [`Exit::PartlyDelivered`], naming those refused. `None` when `err` is not such a partial
    /// refusal.
    pub fn partly_delivered(err: &SmtpError, server: &str) -> Option<Failure> {
        let SmtpError::Protocol(ProtocolError::RecipientsRefused { refused, accepted }) = err
        else {
            return None;
        };
        if *accepted == 0 {
            return None;
        }
        Some(Failure::new(
            Exit::PartlyDelivered,
            format!(
                "partly delivered: {server} delivered the message to {accepted} recipient(s) and \
                 refused it for {}: {}; do not send it again to those that have it",
                refused.len(),
                refusals(refused)
            ),
        ))
    }
}

/// Each refused recipient with the server's reply: `<a@x>: 550 ...; <b@y>: 550 ...`.
fn refusals(refused: &[smtp_io_tokio::RecipientRefusal]) -> String {
    let list: Vec<String> = refused
        .iter()
        .map(|r| format!("<{}>: {}", r.recipient, r.reply))
        .collect();
    list.join("; ")
}

/// The one-line explanation of `err`: the error's own text with the server named, and advice
/// where there is one to give.
fn describe(err: &SmtpError, server: &str) -> String {
    match err {
        SmtpError::Io {
            during: SmtpOp::Connect,
            error,
        } => {
            format!("cannot connect to {server}: {error}")
        }
        SmtpError::Io { during, error } if err.is_tls_failure() => {
            format!("TLS failure with {server} ({during}): {error}")
        }
        SmtpError::Io {
            during: SmtpOp::ReadBody,
            error,
        } => {
            format!("cannot read the message: {error}")
        }
        SmtpError::Io { during, error } => {
            format!("connection to {server} failed during {during}: {error}")
        }
        SmtpError::DeadlineExceeded { during, .. } => {
            format!("{server}: the run's deadline (--deadline) ran out during {during}")
        }
        SmtpError::InvalidInput(InvalidInputError::BodyLongerThanDeclared { .. }) => {
            format!("the message file changed while it was sent: {err}")
        }
        SmtpError::InvalidInput(InvalidInputError::Argument { .. }) | SmtpError::Policy(_) => {
            err.to_string()
        }
        SmtpError::Protocol(p) => describe_protocol(p, server),
        SmtpError::Auth(a) => describe_auth(a, server),
        _ => format!("{server}: {err}"),
    }
}

fn describe_protocol(p: &ProtocolError, server: &str) -> String {
    match p {
        ProtocolError::UnexpectedCode { during, reply } => match during {
            SmtpOp::StartTls | SmtpOp::TlsHandshake => {
                format!("{server} refused STARTTLS: {reply}")
            }
            SmtpOp::Auth => format!("{server} refused AUTH: {reply}"),
            SmtpOp::RcptTo => format!("{server} refused the recipient: {reply}"),
            SmtpOp::MailFrom => format!("{server} refused the sender: {reply}"),
            SmtpOp::Data | SmtpOp::DataEnd | SmtpOp::Bdat => {
                format!("{server} refused the message: {reply}")
            }
            _ => format!("{server} replied {reply} to {during}"),
        },
        ProtocolError::ExtensionUnavailable {
            name: Extension::StartTls,
        } => format!(
            "{server} does not offer STARTTLS; nothing was sent in plaintext \
             (use --tls implicit for port 465, or --tls none for a trusted local relay)"
        ),
        ProtocolError::RecipientsRefused { refused, accepted } => format!(
            "{server} refused {} recipient(s) ({accepted} accepted), message not sent: {}",
            refused.len(),
            refusals(refused)
        ),
        ProtocolError::ConnectionClosed { during } => {
            format!("{server} closed the connection during {during}")
        }
        ProtocolError::MessageTooLarge { .. } => format!("{server} refused the message: {p}"),
        _ => format!("protocol error with {server}: {p}"),
    }
}

fn describe_auth(a: &AuthError, server: &str) -> String {
    match a {
        AuthError::PlaintextRefused { mechanism } => format!(
            "not sending the credentials to {server}: the connection is not encrypted, so AUTH \
             {mechanism} would expose them (use --tls starttls or implicit, or pass \
             --allow-plaintext-auth to send them anyway); nothing was sent"
        ),
        AuthError::Rejected { .. } => format!("{server}: {a}"),
        _ => format!("authentication with {server} failed: {a}"),
    }
}

impl fmt::Display for Failure {
    /// `smtp-send: error: <message>` on one line (line breaks in server text become spaces, other
    /// control characters are spelled out, see [`sanitize`](crate::sanitize)).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let one_line = crate::sanitize::one_line(&self.message);
        write!(f, "smtp-send: error: {one_line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smtp_io_tokio::{IoError, RecipientRefusal, Reply, ReplyCode};
    use std::collections::HashSet;
    use std::io::ErrorKind;
    use std::time::Duration;

    fn io(during: SmtpOp) -> SmtpError {
        SmtpError::Io {
            during,
            error: IoError {
                kind: ErrorKind::ConnectionRefused,
                message: "Connection refused".into(),
            },
        }
    }

    fn reply(code: u16, text: &str) -> Reply {
        Reply::new(ReplyCode::new(code).unwrap(), None, text)
    }

    #[test]
    fn codes_are_distinct() {
        let codes: HashSet<u8> = Exit::ALL.iter().map(|(e, _)| e.code()).collect();
        assert_eq!(codes.len(), Exit::ALL.len());
        assert_eq!(Exit::Usage.code(), 2);
        assert!(exit_code_help().contains("  6  recipient(s) refused"));
    }

    #[test]
    fn io_errors_by_phase() {
        for (during, exit) in [
            (SmtpOp::Connect, Exit::Connect),
            (SmtpOp::TlsHandshake, Exit::Tls),
            (SmtpOp::StartTls, Exit::Tls),
            (SmtpOp::ReadBody, Exit::LocalIo),
            (SmtpOp::MailFrom, Exit::Connect),
        ] {
            let got = Failure::from_smtp(&io(during), "s").exit;
            assert_eq!(got, exit, "{during:?}");
        }
        // A record the TLS layer refused on an open connection (an alert after the handshake)
        // is a TLS failure; a reset at the same step is a lost connection.
        for (kind, exit) in [
            (ErrorKind::InvalidData, Exit::Tls),
            (ErrorKind::ConnectionReset, Exit::Connect),
        ] {
            let error = SmtpError::io(SmtpOp::Greeting, kind, "x");
            let failure = Failure::from_smtp(&error, "s");
            assert_eq!(failure.exit, exit, "{kind:?}");
            assert_eq!(
                failure.message.starts_with("TLS failure"),
                exit == Exit::Tls
            );
        }
    }

    #[test]
    fn protocol_and_auth_errors() {
        let timeout = SmtpError::Timeout {
            during: SmtpOp::Greeting,
            after: Duration::from_secs(1),
        };
        assert_eq!(Failure::from_smtp(&timeout, "s").exit, Exit::Timeout);
        let refused: SmtpError = ProtocolError::RecipientsRefused {
            refused: vec![RecipientRefusal {
                index: 0,
                recipient: "reject@example.org".into(),
                reply: reply(550, "no such user"),
            }],
            accepted: 0,
        }
        .into();
        let f = Failure::from_smtp(&refused, "mx");
        assert_eq!(f.exit, Exit::Recipients);
        assert!(
            f.message.contains("<reject@example.org>: 550 no such user"),
            "{f}"
        );
        let auth: SmtpError = AuthError::Rejected {
            mechanism: smtp_io_tokio::AuthMechanism::Plain,
            reply: reply(535, "bad"),
            detail: None,
        }
        .into();
        assert_eq!(Failure::from_smtp(&auth, "s").exit, Exit::Auth);
        let no_tls: SmtpError = ProtocolError::ExtensionUnavailable {
            name: Extension::StartTls,
        }
        .into();
        assert_eq!(Failure::from_smtp(&no_tls, "s").exit, Exit::Tls);
        let data: SmtpError = ProtocolError::UnexpectedCode {
            during: SmtpOp::DataEnd,
            reply: reply(554, "spam"),
        }
        .into();
        assert_eq!(Failure::from_smtp(&data, "s").exit, Exit::Refused);
        let starttls: SmtpError = ProtocolError::UnexpectedCode {
            during: SmtpOp::StartTls,
            reply: reply(454, "no"),
        }
        .into();
        assert_eq!(Failure::from_smtp(&starttls, "s").exit, Exit::Tls);
    }

    /// Whatever ended the wait for the reply to the end of data, the code is 10 and the
    /// message says the message may have been delivered.
    #[test]
    fn delivery_unknown_has_its_own_code() {
        let closed: SmtpError = ProtocolError::ConnectionClosed {
            during: SmtpOp::DataEnd,
        }
        .into();
        let silent = SmtpError::Timeout {
            during: SmtpOp::DataEnd,
            after: Duration::from_secs(1),
        };
        for err in [closed, silent, io(SmtpOp::DataEnd)] {
            assert_ne!(Failure::from_smtp(&err, "mx").exit, Exit::DeliveryUnknown);
            let f = Failure::delivery_unknown(&err, "mx");
            assert_eq!(f.exit, Exit::DeliveryUnknown);
            assert_eq!(f.exit.code(), 10);
            assert!(f.message.contains("may have accepted it"), "{f}");
            assert!(f.message.contains("do not send it again"), "{f}");
            assert!(!f.to_string().contains('\n'), "{f}");
        }
        assert!(exit_code_help().contains(" 10  delivery unknown"));
    }

    #[test]
    fn display_is_one_line() {
        let f = Failure::new(Exit::Refused, "550 first\nsecond\r\n");
        let s = f.to_string();
        assert!(s.starts_with("smtp-send: error: 550 first second"), "{s}");
        assert!(!s.contains('\n'));
    }
}
