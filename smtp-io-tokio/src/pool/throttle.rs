//! Pacing a pool's messages: [`Throttle`], asked before each message (a retry included), and
//! [`RateLimit`], the in-process one (GCRA through `governor`): so many messages per second or
//! minute, with a burst. A throttle shared by several processes (one provider account, several
//! replicas) implements the same trait.

use std::fmt;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};

/// A throttle's answer's future.
pub type ThrottleFuture<'a> = Pin<Box<dyn Future<Output = std::io::Result<Turn>> + Send + 'a>>;

/// A throttle's answer: the message may go now (it is counted), or not before a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Go now; the message is counted.
    Go,
    /// Not before this has passed; nothing is counted (the pool asks again then).
    WaitFor(Duration),
}

/// Decides when a pool's next message may go. The pool asks before it waits for a connection,
/// so callers held back hold none. An error (a shared limit that cannot be reached) fails the
/// message, unsent: a limit is never exceeded because it could not be asked.
pub trait Throttle: Send + Sync + 'static {
    /// Count one message now ([`Turn::Go`]), or say how long until one may go.
    fn acquire(&self) -> ThrottleFuture<'_>;
}

/// An in-process rate limit: at most `n` messages per period, in bursts of at most `burst`
/// (GCRA: after a burst, messages are spaced evenly).
///
/// ```
/// use std::num::NonZeroU32;
/// use smtp_io_tokio::{Mailer, RateLimit, TlsMode};
///
/// // SES in a sandbox: 1 message a second; a relay's 100 a minute in bursts of 10:
/// let ses = RateLimit::per_second(NonZeroU32::MIN);
/// let relay = RateLimit::per_minute(NonZeroU32::new(100).unwrap())
///     .with_burst(NonZeroU32::new(10).unwrap());
/// let mailer = Mailer::builder("relay.example.com", 587, TlsMode::StartTls, "app.example.com")
///     .rate_limit(relay)
///     .build();
/// # drop((ses, mailer));
/// ```
pub struct RateLimit {
    quota: Quota,
    limiter: DefaultDirectRateLimiter,
}

impl fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("quota", &self.quota)
            .finish_non_exhaustive()
    }
}

impl RateLimit {
    /// At most `n` messages a second (in bursts of up to `n`).
    pub fn per_second(n: NonZeroU32) -> RateLimit {
        RateLimit::from_quota(Quota::per_second(n))
    }

    /// At most `n` messages a minute (in bursts of up to `n`).
    pub fn per_minute(n: NonZeroU32) -> RateLimit {
        RateLimit::from_quota(Quota::per_minute(n))
    }

    /// Bursts of at most `burst` messages (the rate stays the same).
    pub fn with_burst(self, burst: NonZeroU32) -> RateLimit {
        RateLimit::from_quota(self.quota.allow_burst(burst))
    }

    fn from_quota(quota: Quota) -> RateLimit {
        RateLimit {
            quota,
            limiter: DefaultDirectRateLimiter::direct(quota),
        }
    }
}

impl Throttle for RateLimit {
    fn acquire(&self) -> ThrottleFuture<'_> {
        let turn = match self.limiter.check() {
            Ok(()) => Turn::Go,
            Err(not_until) => Turn::WaitFor(
                not_until
                    .wait_time_from(DefaultClock::default().now())
                    .max(Duration::from_millis(1)),
            ),
        };
        Box::pin(std::future::ready(Ok(turn)))
    }
}
