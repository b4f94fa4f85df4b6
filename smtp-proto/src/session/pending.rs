//! The ledger of replies owed by the server: one [`InFlight`] entry per command sent, in order.

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
