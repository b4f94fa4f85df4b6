//! What becomes of one call's attempts: its send deadline ([`SendClock`]), the pool's one rule
//! for what follows an attempt ([`Inner::next_step`]: answer, or retry once), the server asking
//! to slow down, and waiting for a turn (the pool's pause and its throttle).

use std::future::Future;
use std::time::Duration;

use smtp_proto::client::Delivery;
use tokio::time::Instant;

use super::backoff;
use super::{Inner, SendError, Turn};
use crate::{SendOutcome, SmtpError, SmtpOp};

/// The send deadline of one call, when the pool has one.
#[derive(Clone, Copy)]
pub(super) struct SendClock {
    pub(super) started: Instant,
    pub(super) limit: Option<Duration>,
}

impl SendClock {
    pub(super) fn start(limit: Option<Duration>) -> SendClock {
        SendClock {
            started: Instant::now(),
            limit,
        }
    }

    /// The time left (zero once passed), or `None` without a deadline.
    pub(super) fn left(&self) -> Option<Duration> {
        self.limit
            .map(|limit| limit.saturating_sub(self.started.elapsed()))
    }

    pub(super) fn passed(&self) -> bool {
        self.left() == Some(Duration::ZERO)
    }

    /// The error of a deadline that passed `during` an operation.
    pub(super) fn exceeded(&self, during: SmtpOp) -> SmtpError {
        SmtpError::DeadlineExceeded {
            during,
            after: self.limit.unwrap_or_default(),
        }
    }

    /// `wait` for a connection, given up when the wait limit (`wait`, counted from the call, a
    /// turn under the throttle included) or the send deadline ends first: the caller's answer.
    pub(super) async fn wait_for_place<F: Future>(
        &self,
        wait: Duration,
        place: F,
    ) -> Result<F::Output, SendError> {
        let wait_left = wait.saturating_sub(self.started.elapsed());
        let (limit, by_deadline) = match self.left() {
            Some(left) if left < wait_left => (left, true),
            _ => (wait_left, false),
        };
        tokio::time::timeout(limit, place).await.map_err(|_| {
            if by_deadline {
                let error = self.exceeded(SmtpOp::Connect);
                SendError::NotSent { error, attempts: 0 }
            } else {
                SendError::Busy { waited: wait }
            }
        })
    }

    /// `work`, unless the deadline passes first (`None`; `work` is dropped).
    pub(super) async fn within<F: Future>(&self, work: F) -> Option<F::Output> {
        match self.left() {
            None => Some(work.await),
            Some(left) => tokio::time::timeout(left, work).await.ok(),
        }
    }
}

/// What the pool does after an attempt: answer the caller, or try the message once more.
pub(super) enum Next {
    Answer(Result<SendOutcome, SendError>),
    Retry,
}

impl Inner {
    /// The pool's one rule for what became of a message's `attempts`-th attempt (a connection
    /// that could not be had counts as `NotSent` before the end of data): sent; unknown, never
    /// sent again; the server asking to slow down (when the pool backs off); provably not
    /// delivered and worth one more try on another connection, when it was the first and the
    /// send deadline has not passed; otherwise not sent. Used alike by a call on a connection
    /// of its own and by a chained flight.
    pub(super) fn next_step(&self, delivery: Delivery, attempts: u32, clock: &SendClock) -> Next {
        let slowed = match &delivery {
            Delivery::NotSent { error, .. } => self.slowed_down(error),
            _ => None,
        };
        Next::Answer(match delivery {
            Delivery::Sent(outcome) => {
                if let Some(pause) = &self.pause {
                    pause.got_through();
                }
                Ok(outcome)
            }
            Delivery::Unknown(error) => Err(SendError::Unknown { error }),
            _ if slowed.is_some() => Err(slowed.unwrap_or(SendError::Closed)),
            d if d.is_retryable() && attempts == 1 && !clock.passed() => return Next::Retry,
            Delivery::NotSent { error, .. } => Err(SendError::NotSent { error, attempts }),
        })
    }

    /// When the pool backs off and `error` is the server asking to slow down: pause, and the
    /// caller's answer.
    pub(super) fn slowed_down(&self, error: &SmtpError) -> Option<SendError> {
        let pause = self.pause.as_ref()?;
        if !error.is_slow_down() {
            return None;
        }
        let retry_after = pause.slow_down(error);
        Some(SendError::Throttled {
            error: error.clone(),
            retry_after,
        })
    }

    /// Wait until the pool's pause (if any) is over and the throttle lets one more message go,
    /// within the send deadline or the wait limit.
    pub(super) async fn take_turn(
        &self,
        clock: &SendClock,
        wait: Duration,
    ) -> Result<(), SendError> {
        if let Some((left, because)) = self.pause.as_ref().and_then(backoff::Pause::remaining) {
            let allowed = clock.left().unwrap_or(wait);
            if left > allowed {
                return Err(SendError::Throttled {
                    error: because,
                    retry_after: left,
                });
            }
            tokio::time::sleep(left).await;
        }
        let Some(throttle) = &self.throttle else {
            return Ok(());
        };
        let started = Instant::now();
        loop {
            // Asking is bounded too (a shared limit asks a store across the network): by the
            // send deadline, or else by what is left of the wait limit.
            let asked = match clock.left() {
                Some(left) => tokio::time::timeout(left, throttle.acquire())
                    .await
                    .map_err(|_| SendError::NotSent {
                        error: clock.exceeded(SmtpOp::Connect),
                        attempts: 0,
                    }),
                None => {
                    let wait_left = wait.saturating_sub(started.elapsed());
                    tokio::time::timeout(wait_left, throttle.acquire())
                        .await
                        .map_err(|_| SendError::Busy { waited: wait })
                }
            };
            let pause = match asked? {
                Ok(Turn::Go) => return Ok(()),
                Ok(Turn::WaitFor(pause)) => pause,
                Err(e) => {
                    let error = SmtpError::io(
                        SmtpOp::Connect,
                        e.kind(),
                        format!("the rate limit could not be asked: {e}"),
                    );
                    return Err(SendError::NotSent { error, attempts: 0 });
                }
            };
            if let Some(left) = clock.left() {
                if left <= pause {
                    tokio::time::sleep(left).await;
                    let error = clock.exceeded(SmtpOp::Connect);
                    return Err(SendError::NotSent { error, attempts: 0 });
                }
            } else if started.elapsed().saturating_add(pause) > wait {
                return Err(SendError::Busy { waited: wait });
            }
            tokio::time::sleep(pause).await;
        }
    }
}
