//! The ledger of replies owed by the server: one [`InFlight`] entry per command sent, in order.

use crate::reply::ReplyCode;
use crate::state::SmtpOp;

/// What a queued command's reply will answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pending {
    Greeting,
    Hello(SmtpOp),
    StartTls,
    Auth,
    Rset { lazy: bool },
    Noop,
    Quit,
    Mail,
    Rcpt(usize),
    Data,
    DataEnd,
    Bdat { last: bool },
}

impl Pending {
    /// Replies that belong to a mail transaction (counted in [`Transaction::owed`]).
    pub(super) fn is_txn(self) -> bool {
        matches!(
            self,
            Pending::Rset { lazy: true }
                | Pending::Mail
                | Pending::Rcpt(_)
                | Pending::Data
                | Pending::DataEnd
                | Pending::Bdat { .. }
        )
    }

    /// Whether a reply with `code` can answer this command at all. One that cannot means the
    /// replies are out of step with the commands: a `2xx` to DATA; a `3xx` to anything but
    /// DATA (`354`) or an AUTH step (`334`); any `1xx`, which SMTP never sends. Every other
    /// code can answer it, as an acceptance or a refusal.
    pub(super) fn can_answer(self, code: ReplyCode) -> bool {
        match code.class() {
            2 => self != Pending::Data,
            3 => matches!(
                (self, code),
                (Pending::Data, ReplyCode::START_DATA) | (Pending::Auth, ReplyCode::AUTH_CHALLENGE)
            ),
            4 | 5 => true,
            _ => false,
        }
    }

    pub(super) fn op(self) -> SmtpOp {
        match self {
            Pending::Greeting => SmtpOp::Greeting,
            Pending::Hello(op) => op,
            Pending::StartTls => SmtpOp::StartTls,
            Pending::Auth => SmtpOp::Auth,
            Pending::Rset { .. } => SmtpOp::Rset,
            Pending::Noop => SmtpOp::Noop,
            Pending::Quit => SmtpOp::Quit,
            Pending::Mail => SmtpOp::MailFrom,
            Pending::Rcpt(_) => SmtpOp::RcptTo,
            Pending::Data => SmtpOp::Data,
            Pending::DataEnd | Pending::Bdat { last: true } => SmtpOp::DataEnd,
            Pending::Bdat { last: false } => SmtpOp::Bdat,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InFlight {
    pub(super) what: Pending,
    pub(super) bytes: usize,
}
