//! What becomes of one call's attempts: its send deadline ([`SendClock`]), the pool's one rule
//! for what follows an attempt ([`Inner::next_step`]: answer, or retry once), the server asking
//! to slow down, and waiting for a turn (the pool's pause and its throttle).

use std::future::Future;
use std::sync::atomic::Ordering;
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

    /// What ends a wait of this call that began at `since`: the wait limit (`wait` from
    /// `since`) or the send deadline, whichever comes first.
    pub(super) fn wait_bound(&self, wait: Duration, since: Instant) -> WaitBound {
        let wait_left = wait.saturating_sub(since.elapsed());
        let (left, by_deadline) = match self.left() {
            Some(left) if left < wait_left => (left, true),
            _ => (wait_left, false),
        };
        WaitBound {
            until: crate::transport::instant_in(left),
            by_deadline,
            wait,
            clock: *self,
        }
    }

    /// `place` (a connection), given up when the wait limit counted from the call (a turn
    /// under the throttle included) or the send deadline ends first: the caller's answer.
    pub(super) async fn wait_for_place<F: Future>(
        &self,
        wait: Duration,
        place: F,
    ) -> Result<F::Output, SendError> {
        self.wait_bound(wait, self.started).within(place).await
    }

    /// `work`, unless the deadline passes first (`None`; `work` is dropped).
    pub(super) async fn within<F: Future>(&self, work: F) -> Option<F::Output> {
        match self.left() {
            None => Some(work.await),
            Some(left) => tokio::time::timeout(left, work).await.ok(),
        }
    }
}

/// The end of a caller's wait ([`SendClock::wait_bound`]) and the answer when it comes.
#[derive(Clone, Copy)]
pub(super) struct WaitBound {
    until: Instant,
    /// The send deadline ends it (else the wait limit).
    by_deadline: bool,
    wait: Duration,
    clock: SendClock,
}

impl WaitBound {
    /// The time left.
    pub(super) fn left(&self) -> Duration {
        self.until.saturating_duration_since(Instant::now())
    }

    /// The answer of a caller whose wait ends: `Busy`, or `NotSent` past the send deadline.
    pub(super) fn gave_up(&self) -> SendError {
        if self.by_deadline {
            let error = self.clock.exceeded(SmtpOp::Connect);
            SendError::NotSent { error, attempts: 0 }
        } else {
            SendError::Busy { waited: self.wait }
        }
    }

    /// `work`, unless the wait ends first.
    pub(super) async fn within<F: Future>(&self, work: F) -> Result<F::Output, SendError> {
        tokio::time::timeout(self.left(), work)
            .await
            .map_err(|_| self.gave_up())
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

    /// Wait until the pool's pause (if any) is over, within the send deadline and the wait limit
    /// counted from `since`; a pause that would outlast them is `Throttled` at once. Also once a
    /// caller holds its place: a pause may have begun while it waited for one. A pause that
    /// grows while the caller sleeps (another message met a slow-down) holds it to the new end;
    /// a pool that shuts down meanwhile answers `Closed`.
    pub(super) async fn wait_out_pause(
        &self,
        clock: &SendClock,
        wait: Duration,
        since: Instant,
    ) -> Result<(), SendError> {
        while let Some((left, because)) = self.pause.as_ref().and_then(backoff::Pause::remaining) {
            if left > clock.wait_bound(wait, since).left() {
                return Err(SendError::Throttled {
                    error: because,
                    retry_after: left,
                });
            }
            if !self.pause_over(left).await {
                return Err(SendError::Closed);
            }
        }
        Ok(())
    }

    /// Sleep `left` of a pause: `false`, at once, when the pool is (or gets) shut down.
    pub(super) async fn pause_over(&self, left: Duration) -> bool {
        let shut = self.shut.notified();
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        let slept = smtp_proto::future::race(tokio::time::sleep(left), shut).await;
        matches!(slept, smtp_proto::future::Either::Left(()))
    }

    /// Wait until the pool's pause (if any) is over and the throttle lets one more message go,
    /// within the send deadline and the wait limit counted from `since` (the call, for its
    /// first turn; now, for a retry's): a turn that cannot come in time is answered at once
    /// (`Throttled` for the pool's pause, `Busy` or `NotSent`), without waiting for it and
    /// without taking the throttle's place.
    pub(super) async fn take_turn(
        &self,
        clock: &SendClock,
        wait: Duration,
        since: Instant,
    ) -> Result<(), SendError> {
        self.wait_out_pause(clock, wait, since).await?;
        let bound = clock.wait_bound(wait, since);
        let Some(throttle) = &self.throttle else {
            return Ok(());
        };
        loop {
            // Asking is bounded too (a shared limit asks a store across the network).
            let pause = match bound.within(throttle.acquire()).await? {
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
            if pause >= bound.left() {
                return Err(bound.gave_up());
            }
            tokio::time::sleep(pause).await;
        }
    }
}
