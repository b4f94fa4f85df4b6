//! The session's timers: every wait's limit, the session's deadline, a caller's deadline and
//! the write-progress rule, kept against the [`Instant`]s the driver hands in.
//!
//! A driver asks [`Session::poll_timeout`] when the next thing is due, sleeps until then (while
//! it writes or reads), and calls [`Session::handle_timeout`]; it reports each completed write
//! with [`Session::wrote`]. It keeps no deadline of its own and never reads
//! [`Timeouts`]. A wait is stamped the first time the engine is asked about it, so each awaited
//! reply has one deadline however many reads it takes, and a server that drips one byte at a
//! time still times out.

use core::time::Duration;

use super::Session;
use crate::error::SmtpError;
use crate::session::Timeouts;
use crate::state::SmtpOp;
use crate::time::{Instant, Timer, TimerReason};

/// What the session waits for now, besides a write in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Awaiting {
    /// Nothing: no reply is owed and no upgrade is due.
    Nothing,
    /// The reply numbered `seq` (counting completed replies), to `op`.
    Reply { seq: u64, op: SmtpOp },
    /// The driver's TLS upgrade after STARTTLS.
    Upgrade,
    /// The caller's body bytes, no reply owed meanwhile: only the deadlines bound the wait (a
    /// body source that stalls must not hold the session past them).
    Body,
}

/// What fired, with what the error reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    SessionDeadline(Duration),
    CallDeadline(Duration),
    Write(Duration),
    WriteProgress(Duration),
    Reply(SmtpOp, Duration),
    TlsHandshake(Duration),
}

/// Bytes handed to the driver and not yet reported written.
#[derive(Debug, Clone, Copy)]
struct Write {
    unwritten: usize,
    /// When the current write began (stamped when first asked about).
    since: Option<Instant>,
}

/// A message body going out, for the write-progress rule.
#[derive(Debug, Clone, Copy)]
struct Progress {
    since: Option<Instant>,
    written: u64,
    /// Its end is queued: the rule ends once everything handed out is written.
    finishing: bool,
}

/// The session's timers.
#[derive(Debug, Default)]
pub(super) struct Clock {
    /// When the session began (`Session::start`, or the first time the engine was asked).
    started: Option<Instant>,
    /// When the session's deadline passes, and its limit.
    deadline: Option<(Instant, Duration)>,
    /// A caller's deadline: when it passes, and its limit.
    call: Option<(Instant, Duration)>,
    /// The awaited reply's number and since when it has been awaited.
    reply: Option<(u64, Instant)>,
    write: Option<Write>,
    body: Option<Progress>,
    /// Since when the TLS upgrade has been due.
    upgrade: Option<Instant>,
}

impl Clock {
    /// The session began at `now`: its deadline (if any) counts from here. Only the first call
    /// counts.
    fn start(&mut self, now: Instant, total: Option<Duration>) {
        if self.started.is_none() {
            self.started = Some(now);
            self.deadline = total.map(|total| (now + total, total));
        }
    }

    /// `len` more bytes were handed to the driver to write.
    pub(super) fn handed_out(&mut self, len: usize) {
        let write = self.write.get_or_insert(Write {
            unwritten: 0,
            since: None,
        });
        write.unwritten = write.unwritten.saturating_add(len);
    }

    /// A message body starts going out (a no-op while one already is).
    pub(super) fn body_started(&mut self) {
        self.body.get_or_insert(Progress {
            since: None,
            written: 0,
            finishing: false,
        });
    }

    /// The body's end is queued: the rule holds until it is written, and no longer (the
    /// commands that follow are not body).
    pub(super) fn body_finishing(&mut self) {
        if let Some(body) = &mut self.body {
            body.finishing = true;
        }
        if self.write.is_none() {
            self.body = None;
        }
    }

    /// No body is going out (a new message, RSET, NOOP, QUIT): the next one starts its own
    /// progress.
    pub(super) fn body_ended(&mut self) {
        self.body = None;
    }

    /// `len` bytes were written at `now`.
    fn wrote(&mut self, now: Instant, len: usize) {
        if let Some(write) = &mut self.write {
            write.unwritten = write.unwritten.saturating_sub(len);
            write.since = Some(now);
            if write.unwritten == 0 {
                self.write = None;
            }
        }
        if let Some(body) = &mut self.body {
            body.since.get_or_insert(now);
            body.written = body.written.saturating_add(len as u64);
            if body.finishing && self.write.is_none() {
                self.body = None;
            }
        }
    }

    /// The earliest timer at `now`, stamping the waits that begin now. `None` when nothing is
    /// awaited and nothing is being written: no deadline matters then.
    fn next(
        &mut self,
        now: Instant,
        awaiting: Awaiting,
        timeouts: &Timeouts,
    ) -> Option<(Timer, Expiry)> {
        self.start(now, timeouts.total);
        if awaiting != Awaiting::Upgrade {
            self.upgrade = None;
        }
        if self.write.is_none() && awaiting == Awaiting::Nothing {
            return None;
        }
        let mut best: Option<(Timer, Expiry)> = None;
        // On a tie the first considered wins: the deadlines, then the wait's own limit.
        let mut consider = |at: Instant, reason: TimerReason, expiry: Expiry| {
            if best.is_none_or(|(timer, _)| at < timer.at) {
                best = Some((Timer { at, reason }, expiry));
            }
        };
        if let Some((at, total)) = self.deadline {
            consider(
                at,
                TimerReason::SessionDeadline,
                Expiry::SessionDeadline(total),
            );
        }
        if let Some((at, limit)) = self.call {
            consider(at, TimerReason::CallDeadline, Expiry::CallDeadline(limit));
        }
        let block = timeouts.data_block;
        if let Some(write) = &mut self.write {
            let since = *write.since.get_or_insert(now);
            consider(since + block, TimerReason::Write, Expiry::Write(block));
            if let (Some(body), Some(rate)) = (&mut self.body, timeouts.min_write_rate) {
                // The body may take `data_block` plus one second per `rate` bytes, counted from
                // its first byte, including the bytes being written now.
                let since = *body.since.get_or_insert(now);
                let bytes = body.written.saturating_add(write.unwritten as u64);
                let allowed = block.saturating_add(Duration::from_secs_f64(
                    bytes as f64 / f64::from(rate.max(1)),
                ));
                consider(
                    since + allowed,
                    TimerReason::WriteProgress,
                    Expiry::WriteProgress(allowed),
                );
            }
            return best;
        }
        match awaiting {
            Awaiting::Reply { seq, op } => {
                let since = match self.reply {
                    Some((stamped, since)) if stamped == seq => since,
                    _ => {
                        self.reply = Some((seq, now));
                        now
                    }
                };
                let limit = timeouts.for_reply(op);
                consider(
                    since + limit,
                    TimerReason::Reply(op),
                    Expiry::Reply(op, limit),
                );
            }
            Awaiting::Upgrade => {
                let since = *self.upgrade.get_or_insert(now);
                let limit = timeouts.tls_handshake;
                consider(
                    since + limit,
                    TimerReason::TlsHandshake,
                    Expiry::TlsHandshake(limit),
                );
            }
            Awaiting::Body | Awaiting::Nothing => {}
        }
        best
    }
}

/// Time: the inputs and the one output of the session's timers.
impl Session {
    /// The session began at `now`, before the connection was opened: its deadline
    /// ([`Timeouts::total`]) counts from here, so connecting and a TLS handshake count against
    /// it the same way in every driver. Only the first call counts; without one the deadline
    /// counts from the first [`poll_timeout`](Self::poll_timeout).
    pub fn start(&mut self, now: Instant) {
        self.clock.start(now, self.config.timeouts.total);
    }

    /// A deadline of `limit` counted from `since`, for the operations that follow, on top of
    /// the session's own (the earlier wins): a pool gives each message its own this way,
    /// counted from the caller's request. Past it the session fails with
    /// [`SmtpError::DeadlineExceeded`] whose `after` is `limit`.
    pub fn set_deadline(&mut self, since: Instant, limit: Duration) {
        self.clock.call = Some((since + limit, limit));
    }

    /// Lift the deadline of [`set_deadline`](Self::set_deadline).
    pub fn clear_deadline(&mut self) {
        self.clock.call = None;
    }

    /// How long closing the connection may take from `now`: `limit`, or less when the
    /// session's deadline or the call's comes first (zero once one has passed). A driver
    /// closes within it (a TLS `close_notify` to a server that stopped reading can wait for
    /// ever), then drops the connection as it stands, so a close never holds a caller past
    /// its deadline.
    pub fn close_limit(&self, now: Instant, limit: Duration) -> Duration {
        [self.clock.deadline, self.clock.call]
            .into_iter()
            .flatten()
            .map(|(at, _)| at.saturating_duration_since(now))
            .fold(limit, Duration::min)
    }

    /// `len` bytes of what [`poll_transmit`](Self::poll_transmit) handed out were written, at
    /// `now`. Feeds the write-progress rule and ends the current write's limit.
    pub fn wrote(&mut self, now: Instant, len: usize) {
        self.clock.wrote(now, len);
    }

    /// When the next thing is due, and what it is: the limit of the write in progress (bytes
    /// handed out by [`poll_transmit`](Self::poll_transmit) and not yet reported with
    /// [`wrote`](Self::wrote)), the body's write-progress rule, the reply awaited, the TLS
    /// upgrade, or a deadline, whichever comes first. `None` when nothing is awaited. A driver
    /// waits until [`Timer::at`] at most, then calls [`handle_timeout`](Self::handle_timeout).
    #[must_use = "the wait must be bounded by this timer"]
    pub fn poll_timeout(&mut self, now: Instant) -> Option<Timer> {
        let awaiting = self.awaiting();
        self.clock
            .next(now, awaiting, &self.config.timeouts)
            .map(|(timer, _)| timer)
    }

    /// Time passed: whatever is due at `now` fires. A reply, a write or a TLS upgrade past its
    /// limit is [`SmtpError::Timeout`] (during [`SmtpOp::TlsHandshake`] for the upgrade), a
    /// deadline [`SmtpError::DeadlineExceeded`]; each is fatal. Nothing happens when nothing
    /// is due yet (a timer woke early) or the session is closed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.standing.is_closed() {
            return;
        }
        let awaiting = self.awaiting();
        let Some((timer, expiry)) = self.clock.next(now, awaiting, &self.config.timeouts) else {
            return;
        };
        if timer.at > now {
            return;
        }
        match expiry {
            Expiry::SessionDeadline(after) | Expiry::CallDeadline(after) => {
                self.handle_deadline_after(after);
            }
            Expiry::Write(after) | Expiry::WriteProgress(after) => {
                let during = self.current_op();
                self.fail(SmtpError::Timeout { during, after });
            }
            Expiry::Reply(during, after) => self.fail(SmtpError::Timeout { during, after }),
            // As an implicit-TLS handshake past its limit reports it (`ConnectClock::step`).
            Expiry::TlsHandshake(after) => self.fail(SmtpError::Timeout {
                during: SmtpOp::TlsHandshake,
                after,
            }),
        }
    }

    /// What the session waits for now.
    fn awaiting(&self) -> Awaiting {
        if self.standing.is_closed() {
            return Awaiting::Nothing;
        }
        if self.standing.awaiting_upgrade() {
            return Awaiting::Upgrade;
        }
        match self.pending.front() {
            Some(p) => Awaiting::Reply {
                seq: self.reply_seq,
                op: p.what.op(),
            },
            None if self.wants_body() => Awaiting::Body,
            None => Awaiting::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_duration(Duration::from_millis(ms))
    }

    fn timeouts() -> Timeouts {
        let mut t = Timeouts::uniform(Duration::from_secs(10));
        t.min_write_rate = Some(1000);
        t
    }

    const REPLY: Awaiting = Awaiting::Reply {
        seq: 1,
        op: SmtpOp::MailFrom,
    };

    /// A clock whose body has started, with `bytes` of it handed out to be written.
    fn writing_body(bytes: usize) -> Clock {
        let mut clock = Clock::default();
        clock.body_started();
        clock.handed_out(bytes);
        clock
    }

    #[test]
    fn nothing_awaited_means_no_timer() {
        let mut clock = Clock::default();
        assert_eq!(clock.next(at(0), Awaiting::Nothing, &timeouts()), None);
    }

    #[test]
    fn a_reply_keeps_one_deadline_however_often_asked() {
        let mut clock = Clock::default();
        let first = clock.next(at(1_000), REPLY, &timeouts()).unwrap();
        let later = clock.next(at(9_000), REPLY, &timeouts()).unwrap();
        assert_eq!(first, later);
        assert_eq!(first.0.at, at(11_000));
        assert_eq!(first.0.reason, TimerReason::Reply(SmtpOp::MailFrom));
        // The next reply starts its own wait.
        let next = Awaiting::Reply {
            seq: 2,
            op: SmtpOp::RcptTo,
        };
        assert_eq!(
            clock.next(at(9_500), next, &timeouts()).unwrap().0.at,
            at(19_500)
        );
    }

    #[test]
    fn the_session_deadline_counts_from_the_start() {
        let mut clock = Clock::default();
        clock.start(at(0), Some(Duration::from_secs(60)));
        let reply = Awaiting::Reply {
            seq: 7,
            op: SmtpOp::DataEnd,
        };
        let (timer, expiry) = clock.next(at(55_000), reply, &timeouts()).unwrap();
        assert_eq!(timer.at, at(60_000));
        assert_eq!(expiry, Expiry::SessionDeadline(Duration::from_secs(60)));
    }

    #[test]
    fn a_write_is_bounded_and_its_end_ends_the_bound() {
        let mut clock = Clock::default();
        clock.handed_out(100);
        let (timer, _) = clock.next(at(0), REPLY, &timeouts()).unwrap();
        assert_eq!((timer.at, timer.reason), (at(10_000), TimerReason::Write));
        clock.wrote(at(2_000), 100);
        // Written: the reply's wait starts now.
        let (timer, _) = clock.next(at(2_000), REPLY, &timeouts()).unwrap();
        assert_eq!(timer.at, at(12_000));
    }

    #[test]
    fn a_slow_body_meets_the_write_progress_rule() {
        let mut clock = writing_body(5_000);
        let (timer, expiry) = clock.next(at(0), Awaiting::Nothing, &timeouts()).unwrap();
        // 10 s plus 5 s for 5,000 bytes at 1,000 bytes/s, against 10 s for the write itself:
        // the write's own limit comes first.
        assert_eq!(
            (timer.at, expiry),
            (at(10_000), Expiry::Write(Duration::from_secs(10)))
        );
        // Each write restarts the write's limit, but not the body's.
        for second in 1..=9u64 {
            clock.wrote(at(second * 1_000), 100);
        }
        let (timer, expiry) = clock
            .next(at(9_000), Awaiting::Nothing, &timeouts())
            .unwrap();
        assert_eq!(expiry, Expiry::WriteProgress(Duration::from_secs(15)));
        assert_eq!(timer.at, at(15_000));
    }

    #[test]
    fn the_rule_ends_with_the_body() {
        let mut clock = writing_body(1_000);
        clock.body_finishing();
        assert!(clock.next(at(0), Awaiting::Nothing, &timeouts()).is_some());
        clock.wrote(at(1_000), 1_000);
        // Much later, a NOOP on the same connection: its write has its own limit only.
        clock.handed_out(6);
        let (timer, expiry) = clock.next(at(900_000), REPLY, &timeouts()).unwrap();
        assert_eq!(
            (timer.at, expiry),
            (at(910_000), Expiry::Write(Duration::from_secs(10)))
        );
    }

    #[test]
    fn a_call_deadline_wins_when_earlier() {
        let mut clock = Clock {
            call: Some((at(3_000), Duration::from_secs(3))),
            ..Clock::default()
        };
        let (timer, expiry) = clock.next(at(0), REPLY, &timeouts()).unwrap();
        assert_eq!(timer.reason, TimerReason::CallDeadline);
        assert_eq!(expiry, Expiry::CallDeadline(Duration::from_secs(3)));
    }
}
