//! [`SendError`]: what became of a message the pool did not deliver.

use std::fmt;
use std::time::Duration;

use crate::{ProtocolError, RecipientRefusal, SmtpError};

/// Why [`Mailer::send`](super::Mailer::send) did not deliver a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The message was not delivered: refused by the server (a `5xx`, or a `4xx` to its end of
    /// data), refused by a local check, failed before its end of data on every attempt, or its
    /// [send deadline](super::MailerBuilder::send_deadline) passed before its end of data was
    /// written.
    NotSent {
        /// The last attempt's error.
        error: SmtpError,
        /// How many connections it was tried on (0 when refused before any, 1 or 2).
        attempts: u32,
    },
    /// The message's end of data was written but its reply never came (the connection dropped,
    /// the server went silent, or the send deadline passed): it may or may not have been
    /// delivered. It was not sent again.
    Unknown {
        /// What ended the wait for the reply.
        error: SmtpError,
    },
    /// No connection became free within the [wait limit](super::MailerBuilder::wait_timeout).
    /// Nothing was sent.
    Busy {
        /// How long the call waited.
        waited: Duration,
    },
    /// The pool was shut down. Nothing was sent.
    Closed,
    /// The server asked the pool to slow down (a `421`, or a `4xx` to MAIL or to every RCPT)
    /// and the pool is pausing ([`MailerBuilder::backoff`](super::MailerBuilder::backoff)):
    /// this message was not sent. Try again after `retry_after`.
    Throttled {
        /// What the server said.
        error: SmtpError,
        /// How long the pause still lasts.
        retry_after: Duration,
    },
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NotSent { error, attempts } => {
                write!(f, "not delivered ({attempts} attempt(s)): {error}")
            }
            SendError::Unknown { error } => write!(
                f,
                "delivery unknown (the end of data was sent, no reply came): {error}"
            ),
            SendError::Busy { waited } => write!(
                f,
                "no SMTP connection became free within {}s",
                waited.as_secs_f64()
            ),
            SendError::Closed => f.write_str("the mail pool is shut down"),
            SendError::Throttled { error, retry_after } => write!(
                f,
                "not sent: the server asked to slow down ({error}); try again in {}s",
                retry_after.as_secs_f64()
            ),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::NotSent { error, .. }
            | SendError::Unknown { error }
            | SendError::Throttled { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl SendError {
    /// The SMTP error behind it, if there is one.
    pub fn smtp_error(&self) -> Option<&SmtpError> {
        match self {
            SendError::NotSent { error, .. }
            | SendError::Unknown { error }
            | SendError::Throttled { error, .. } => Some(error),
            _ => None,
        }
    }

    /// When to try again, when the server asked to slow down ([`SendError::Throttled`]).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SendError::Throttled { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The recipients the server refused, each with its reply, when that is why the message
    /// was not sent ([`ProtocolError::RecipientsRefused`]); empty otherwise.
    ///
    /// ```no_run
    /// # async fn demo(mailer: smtp_io_tokio::Mailer) {
    /// if let Err(e) = mailer.send("me@example.com", ["a@example.org", "b@example.org"], b"Hi\r\n").await {
    ///     for refusal in e.refused_recipients() {
    ///         eprintln!("{} refused with {}", refusal.recipient, refusal.reply.code());
    ///     }
    /// }
    /// # }
    /// ```
    pub fn refused_recipients(&self) -> &[RecipientRefusal] {
        match self.smtp_error() {
            Some(SmtpError::Protocol(ProtocolError::RecipientsRefused { refused, .. })) => refused,
            _ => &[],
        }
    }
}
