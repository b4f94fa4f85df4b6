//! What the pool tests share.

// Each test file uses a part of it.
#![allow(dead_code)]

use smtp_io_tokio::{Mailer, SendError, SendOutcome, SmtpError};
use tokio::task::JoinHandle;

/// `mailer.send(from, [to], body)` in a task of its own, to look at the pool while it waits.
pub fn send_in_background(
    mailer: &Mailer,
    from: &'static str,
    to: &'static str,
    body: &'static [u8],
) -> JoinHandle<Result<SendOutcome, SendError>> {
    let mailer = mailer.clone();
    tokio::spawn(async move { mailer.send(from, [to], body).await })
}

/// A short message from `from` to `b@test.example`.
pub async fn send_from(mailer: &Mailer, from: &str) -> Result<SendOutcome, SendError> {
    mailer.send(from, ["b@test.example"], b"hi\r\n").await
}

/// Wait until `done` holds, polling every 10 ms (at most 10 s of the runtime's time).
pub async fn until(done: impl Fn() -> bool) {
    smtp_testkit::wait::until(done).await;
}

/// Panics unless `sent` is `NotSent` with `DeadlineExceeded` and no attempt: the send
/// deadline ran out before the message had a connection.
pub fn assert_ran_out_unsent(sent: &Result<SendOutcome, SendError>) {
    assert!(
        matches!(
            sent,
            Err(SendError::NotSent {
                error: SmtpError::DeadlineExceeded { .. },
                attempts: 0
            })
        ),
        "{sent:?}"
    );
}
