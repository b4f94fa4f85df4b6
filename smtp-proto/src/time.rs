//! The engine's view of time: an [`Instant`] the driver reads from its own monotonic clock and
//! hands in, and the [`Timer`] the engine answers with.
//!
//! The engine never reads a clock. Every call that can start or end a wait takes `now`
//! ([`Session::start`](crate::Session::start), [`Session::poll_timeout`](crate::Session::poll_timeout),
//! [`Session::wrote`](crate::Session::wrote), [`Session::handle_timeout`](crate::Session::handle_timeout)),
//! and the engine says when the next thing is due and what it is: the reply it awaits, the
//! write in progress, the body's write-progress rule, the TLS upgrade, the session's deadline
//! or a caller's. A driver only sleeps until then and says so.

use core::fmt;
use core::ops::{Add, Sub};
use core::time::Duration;

use crate::state::SmtpOp;

/// A point in time on the driver's monotonic clock: the time since an origin the driver chose
/// (its start, the boot of the device, ...). Only differences between instants of the same
/// driver mean anything. `no_std`: no platform clock behind it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(Duration);

impl Instant {
    /// The origin of the clock.
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// The instant `since_origin` after the clock's origin.
    pub const fn from_duration(since_origin: Duration) -> Instant {
        Instant(since_origin)
    }

    /// The time since the clock's origin.
    pub const fn as_duration(self) -> Duration {
        self.0
    }

    /// The time from `earlier` to `self`; zero when `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Instant({:?})", self.0)
    }
}

impl From<Duration> for Instant {
    fn from(since_origin: Duration) -> Instant {
        Instant(since_origin)
    }
}

/// Saturates at the largest instant instead of overflowing.
impl Add<Duration> for Instant {
    type Output = Instant;

    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(rhs))
    }
}

/// Saturates at the clock's origin instead of underflowing.
impl Sub<Duration> for Instant {
    type Output = Instant;

    fn sub(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_sub(rhs))
    }
}

/// What the engine waits for next, and until when: from
/// [`Session::poll_timeout`](crate::Session::poll_timeout). When `at` has passed, call
/// [`Session::handle_timeout`](crate::Session::handle_timeout); the engine decides what fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    /// When it is due.
    pub at: Instant,
    /// What is due then.
    pub reason: TimerReason,
}

impl Timer {
    /// The time left from `now` until it is due (zero once due).
    pub fn left(&self, now: Instant) -> Duration {
        self.at.saturating_duration_since(now)
    }
}

/// What a [`Timer`] bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimerReason {
    /// The reply to this operation (its limit from [`Timeouts`](crate::Timeouts)).
    Reply(SmtpOp),
    /// The write in progress ([`Timeouts::data_block`](crate::Timeouts::data_block) for each
    /// write).
    Write,
    /// The body's write-progress rule ([`Timeouts::min_write_rate`](crate::Timeouts::min_write_rate)).
    WriteProgress,
    /// The TLS upgrade after STARTTLS ([`Timeouts::command`](crate::Timeouts::command)).
    TlsHandshake,
    /// The session's deadline ([`Timeouts::total`](crate::Timeouts::total)).
    SessionDeadline,
    /// A deadline a caller set ([`Session::set_deadline`](crate::Session::set_deadline)).
    CallDeadline,
}
