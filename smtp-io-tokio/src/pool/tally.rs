//! What a pool counts: its connections against `max_connections` ([`Slot`]), and what it did
//! ([`PoolStats`]).
//!
//! A connection holds a [`Slot`] from the moment the pool decides to open it until its socket is
//! gone, whatever ends it: QUIT, a close, an error, or a caller dropping a send future half-way.
//! Dropping the slot is the one place a connection stops counting, so no path can leave a
//! phantom connection behind or open one past the limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::Notify;

/// What a pool did so far, from [`Mailer::stats`](super::Mailer::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Connections opened (greeting and EHLO done).
    pub opened: u64,
    /// Connections closed, by QUIT or otherwise (a send future dropped half-way included).
    pub closed: u64,
    /// Connections ended with QUIT answered.
    pub quit: u64,
    /// Full TLS handshakes.
    pub full_handshakes: u64,
    /// Resumed TLS handshakes.
    pub resumed_handshakes: u64,
    /// Messages sent on a connection that had already carried one.
    pub reused: u64,
    /// NOOP probes of connections idle longer than the probe threshold.
    pub probes: u64,
    /// Idle connections closed because the server sent something or hung up while they were
    /// idle (or failed a probe).
    pub out_of_step: u64,
    /// Idle connections ended past the idle timeout.
    pub expired: u64,
    /// Messages sent a second time after failing before their end of data.
    pub retries: u64,
}

/// The connections of a pool right now, from [`Mailer::connections`](super::Mailer::connections).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Connections {
    /// Connections counted against `max_connections`: being opened, carrying a message, idle,
    /// or being ended. Never more than `max_connections`.
    pub open: usize,
    /// The idle ones among them, ready for the next message.
    pub idle: usize,
}

/// The pool's counters, shared with every [`Slot`] (not with the pool itself, so that a
/// connection on the idle list does not keep the pool alive).
#[derive(Default)]
pub(super) struct Tally {
    /// Connections holding a slot now.
    live: AtomicUsize,
    /// Woken whenever a slot is given back or a connection goes idle: a caller that found
    /// neither may find one now.
    pub(super) freed: Notify,
    pub(super) opened: AtomicU64,
    closed: AtomicU64,
    pub(super) quit: AtomicU64,
    pub(super) full_handshakes: AtomicU64,
    pub(super) resumed_handshakes: AtomicU64,
    pub(super) reused: AtomicU64,
    pub(super) probes: AtomicU64,
    pub(super) out_of_step: AtomicU64,
    pub(super) expired: AtomicU64,
    pub(super) retries: AtomicU64,
}

/// Add one to a counter.
pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Tally {
    /// A slot for a new connection, unless `max` connections already hold one.
    pub(super) fn reserve(self: &Arc<Tally>, max: usize) -> Option<Slot> {
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |live| {
                (live < max).then_some(live + 1)
            })
            .ok()?;
        Some(Slot {
            tally: Arc::clone(self),
            opened: false,
        })
    }

    /// Connections holding a slot now.
    pub(super) fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// The counters as they are now.
    pub(super) fn stats(&self) -> PoolStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PoolStats {
            opened: get(&self.opened),
            closed: get(&self.closed),
            quit: get(&self.quit),
            full_handshakes: get(&self.full_handshakes),
            resumed_handshakes: get(&self.resumed_handshakes),
            reused: get(&self.reused),
            probes: get(&self.probes),
            out_of_step: get(&self.out_of_step),
            expired: get(&self.expired),
            retries: get(&self.retries),
        }
    }
}

/// One connection's place in the pool, from the decision to open it until its socket is gone.
/// Dropping it gives the place back (and counts the connection closed, if it was opened).
pub(super) struct Slot {
    tally: Arc<Tally>,
    /// Whether a connection was established in it (it counts as closed when the slot goes).
    opened: bool,
}

impl Slot {
    /// A connection is established in this slot.
    pub(super) fn mark_opened(&mut self) {
        bump(&self.tally.opened);
        self.opened = true;
    }

    /// The connection in this slot is closed, and the slot is kept for another one.
    pub(super) fn mark_closed(&mut self) {
        if std::mem::take(&mut self.opened) {
            bump(&self.tally.closed);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.mark_closed();
        self.tally.live.fetch_sub(1, Ordering::AcqRel);
        self.tally.freed.notify_waiters();
    }
}
