//! Checks of the client's errors that the tests of several adapters repeat (the blocking
//! client's, the workspace's loopback tests): an I/O error during a given step, a timeout with
//! its limit. They take `smtp_proto`'s own types, which every adapter re-exports.

use core::time::Duration;

use smtp_proto::{SmtpError, SmtpOp};

/// Whether `error` is an I/O error during `during`.
pub fn is_io_during(error: &SmtpError, during: SmtpOp) -> bool {
    matches!(error, SmtpError::Io { during: got, .. } if *got == during)
}

/// `error` is an I/O error during `during` (shown when it is not).
#[track_caller]
pub fn assert_io_during(error: &SmtpError, during: SmtpOp) {
    assert!(is_io_during(error, during), "{error:?}");
}

/// The error of a `during` step that `after` ended.
pub fn timeout(during: SmtpOp, after: Duration) -> SmtpError {
    SmtpError::Timeout { during, after }
}
