//! Where a session is ([`SessionState`]) and what it was doing ([`SmtpOp`]).

use core::fmt;

/// The state of an SMTP session, as seen by the caller.
///
/// ```text
/// Greeting -> Ehlo -> Authentication --login--> Authenticating -> Ready
///                        |   ^  \--starttls--> StartTls -> Ehlo (again, on TLS)
///                        |   |
///                        +---+--send--> Transaction -> Data -> Ready
/// any state --quit--> Quit -> Closed;   any fatal error -> Closed
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionState {
    /// Waiting for the server's greeting.
    Greeting,
    /// EHLO (or HELO / LHLO) sent, waiting for the reply.
    Ehlo,
    /// STARTTLS sent or the TLS upgrade in progress.
    StartTls,
    /// Right after the EHLO handshake: `login`, `starttls` and sending are allowed.
    Authentication,
    /// An AUTH exchange is in progress.
    Authenticating,
    /// Authenticated, or a transaction has completed: sending is allowed, `login` and `starttls`
    /// are not.
    Ready,
    /// MAIL / RCPT (and possibly DATA) are in flight.
    Transaction,
    /// The message body is being sent or its final reply awaited.
    Data,
    /// A RSET or NOOP is in flight.
    Command,
    /// QUIT sent.
    Quit,
    /// The session is over; every call fails.
    Closed,
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionState::Greeting => "waiting for the greeting",
            SessionState::Ehlo => "in the EHLO handshake",
            SessionState::StartTls => "upgrading to TLS",
            SessionState::Authentication => "ready to authenticate",
            SessionState::Authenticating => "authenticating",
            SessionState::Ready => "ready",
            SessionState::Transaction => "in a mail transaction",
            SessionState::Data => "sending a message body",
            SessionState::Command => "running a command",
            SessionState::Quit => "quitting",
            SessionState::Closed => "closed",
        })
    }
}

/// The SMTP operation an error or a wait is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SmtpOp {
    /// Opening the connection (and, for implicit TLS, the handshake).
    Connect,
    /// Waiting for the `220` greeting.
    Greeting,
    /// EHLO.
    Ehlo,
    /// HELO (fallback when EHLO is refused with 500 / 502).
    Helo,
    /// LHLO (LMTP).
    Lhlo,
    /// STARTTLS command.
    StartTls,
    /// The TLS handshake after STARTTLS.
    TlsHandshake,
    /// AUTH and its challenges.
    Auth,
    /// MAIL FROM.
    MailFrom,
    /// RCPT TO.
    RcptTo,
    /// DATA (waiting for `354`).
    Data,
    /// The message body and the reply after the final dot (or after `BDAT ... LAST`).
    DataEnd,
    /// A BDAT chunk.
    Bdat,
    /// RSET.
    Rset,
    /// NOOP.
    Noop,
    /// QUIT.
    Quit,
    /// Reading the message body from the caller's stream.
    ReadBody,
    /// Closing the transport.
    Close,
    /// No command in particular: the session was between commands (e.g. its deadline passed
    /// while nothing was awaited, or a call came after QUIT).
    Idle,
}

impl fmt::Display for SmtpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SmtpOp::Connect => "connect",
            SmtpOp::Greeting => "greeting",
            SmtpOp::Ehlo => "EHLO",
            SmtpOp::Helo => "HELO",
            SmtpOp::Lhlo => "LHLO",
            SmtpOp::StartTls => "STARTTLS",
            SmtpOp::TlsHandshake => "TLS handshake",
            SmtpOp::Auth => "AUTH",
            SmtpOp::MailFrom => "MAIL FROM",
            SmtpOp::RcptTo => "RCPT TO",
            SmtpOp::Data => "DATA",
            SmtpOp::DataEnd => "end of data",
            SmtpOp::Bdat => "BDAT",
            SmtpOp::Rset => "RSET",
            SmtpOp::Noop => "NOOP",
            SmtpOp::Quit => "QUIT",
            SmtpOp::ReadBody => "reading the message body",
            SmtpOp::Close => "close",
            SmtpOp::Idle => "idle",
        })
    }
}
