//! Backing off when the server says to slow down (the engine's
//! [`SmtpError::is_slow_down`]: a `421`, or a `4xx` to MAIL or to every RCPT). With a [`Backoff`], the pool then does not retry
//! at once, and holds every caller until the pause is over; the caller that met it, and those
//! the pause would hold past their wait limit or deadline, get
//! [`SendError::Throttled`](super::SendError::Throttled) with the time to try again.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::SmtpError;

/// How long a pool pauses after the server asked it to slow down: `initial` the first time,
/// doubling each time it asks again before a message gets through, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
}

impl Backoff {
    /// A pause of `initial`, doubling up to `max` while the server keeps asking.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max: max.max(initial),
        }
    }
}

/// A pool's pause: how many times in a row the server asked, until when, and what it said.
pub(super) struct Pause {
    policy: Backoff,
    state: Mutex<PauseState>,
}

#[derive(Default)]
struct PauseState {
    level: u32,
    until: Option<Instant>,
    because: Option<SmtpError>,
}

impl Pause {
    pub(super) fn new(policy: Backoff) -> Pause {
        Pause {
            policy,
            state: Mutex::new(PauseState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PauseState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The server asked to slow down: pause (longer each time in a row). Returns the pause.
    pub(super) fn slow_down(&self, because: &SmtpError) -> Duration {
        let mut state = self.lock();
        let pause = self
            .policy
            .initial
            .saturating_mul(1u32 << state.level.min(16))
            .min(self.policy.max);
        state.level = state.level.saturating_add(1);
        // A pause too long for the clock (a `max` of `Duration::MAX`) lasts thirty years.
        let until = crate::transport::instant_in(pause);
        state.until = Some(state.until.map_or(until, |u| u.max(until)));
        state.because = Some(because.clone());
        pause
    }

    /// A message got through: the next slow-down starts from the first pause again.
    pub(super) fn got_through(&self) {
        self.lock().level = 0;
    }

    /// What is left of the pause, and why it was made; `None` when there is none.
    pub(super) fn remaining(&self) -> Option<(Duration, SmtpError)> {
        let state = self.lock();
        let left = state.until?.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        Some((left, state.because.clone()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pause longer than the clock can count (a policy of `Duration::MAX`) is a very long
    /// pause, never a panic.
    #[tokio::test]
    async fn a_pause_too_long_for_the_clock_is_held_not_a_panic() {
        let pause = Pause::new(Backoff::new(Duration::MAX, Duration::MAX));
        let error = SmtpError::Internal { what: "slow down" };
        assert_eq!(pause.slow_down(&error), Duration::MAX);
        let (left, because) = pause.remaining().expect("paused");
        assert!(left > Duration::from_secs(365 * 24 * 3600), "{left:?}");
        assert_eq!(because, error);
    }
}
