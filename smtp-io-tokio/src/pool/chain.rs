//! Chained flights ([`MailerBuilder::chain_messages`](super::MailerBuilder::chain_messages)):
//! when more messages wait than connections are free, one connection carries several callers'
//! messages as one flight ([`SmtpClient::deliver_batch`]: the next MAIL rides behind the
//! previous end of data, and with CHUNKING whole `BDAT ... LAST` transactions follow each
//! other), each caller still getting its own answer and its own retry rule.
//!
//! Callers put their message in the [`Lobby`] and wait for its answer. A free connection place
//! starts a worker ([`Inner::work`]), a task of its own, so that a caller who stops waiting
//! never takes the other callers' messages down with it: the worker takes the longest-waiting
//! messages, up to the flight size, sends them, answers each caller, and goes on while messages
//! wait. A message taken into a flight is sent even if its caller stopped waiting; one still in
//! the lobby is withdrawn when its caller stops waiting (dropped future, wait limit, deadline).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_proto::Delivery;
use smtp_proto::flight::{Flight, FlightMessage};
use smtp_proto::session::Envelope;
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use super::attempt::{Next, SendClock};
use super::backoff::Pause;
use super::connections::Pooled;
use super::tally::bump;
use super::{Inner, SendError};
use crate::{MessageOptions, OutgoingMessage, SendOutcome, SmtpError, SmtpOp};

/// What a caller waits for.
type Answer = Result<SendOutcome, SendError>;

/// One caller's message, owned: it crosses from the caller's task to a worker's.
pub(super) struct Job {
    id: u64,
    envelope: Envelope,
    body: Vec<u8>,
    options: Option<MessageOptions>,
    clock: SendClock,
    /// Where its wait limit counts from: the call, or its retry's turn.
    waiting_since: tokio::time::Instant,
    /// The connections it was tried on so far.
    attempts: u32,
    answer: oneshot::Sender<Answer>,
}

impl Job {
    pub(super) fn reply(self, answer: Answer) {
        // A caller who stopped waiting no longer hears it.
        let _ = self.answer.send(answer);
    }
}

/// The messages waiting for a flight, the longest-waiting first.
#[derive(Default)]
pub(super) struct Lobby {
    queue: Mutex<VecDeque<Job>>,
    next_id: AtomicU64,
}

impl Lobby {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Job>> {
        // A panic while holding the lock leaves a valid queue: keep going.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Withdraw a message that no flight took yet; false when one did.
    fn withdraw(&self, id: u64) -> bool {
        let mut queue = self.lock();
        match queue.iter().position(|job| job.id == id) {
            Some(at) => {
                queue.remove(at);
                true
            }
            None => false,
        }
    }

    /// Every waiting message, for a pool that shuts down.
    pub(super) fn drain(&self) -> Vec<Job> {
        self.lock().drain(..).collect()
    }

    /// The clock of the longest-waiting message, if any waits.
    fn head(&self) -> Option<SendClock> {
        self.lock().front().map(|job| job.clock)
    }

    /// The longest-waiting message whose send deadline is of the `kind` given (none, or the
    /// same length; any kind when `None`): a flight runs under the deadline of its oldest
    /// message, which then passes no later than any other's. Messages whose deadline already
    /// passed are answered instead.
    fn take_next(&self, kind: Option<Option<Duration>>) -> Option<Job> {
        let mut expired = Vec::new();
        let taken = {
            let mut queue = self.lock();
            let mut at = 0;
            loop {
                let Some(job) = queue.get(at) else { break None };
                if job.clock.passed() {
                    expired.extend(queue.remove(at));
                } else if kind.is_none_or(|limit| limit == job.clock.limit) {
                    break queue.remove(at);
                } else {
                    at += 1;
                }
            }
        };
        answer_expired(expired);
        taken
    }

    /// Answer the messages whose send deadline passed while they waited.
    fn expire(&self) {
        answer_expired(self.take_where(|job| job.clock.passed()));
    }

    /// Take out the waiting messages that `which` picks, in their order.
    fn take_where(&self, which: impl Fn(&Job) -> bool) -> Vec<Job> {
        let mut queue = self.lock();
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(queue.len());
        for job in queue.drain(..) {
            if which(&job) {
                taken.push(job);
            } else {
                kept.push_back(job);
            }
        }
        *queue = kept;
        taken
    }

    /// Put messages back at the front, for their retry, in their order.
    fn requeue(&self, jobs: Vec<Job>) {
        let mut queue = self.lock();
        for job in jobs.into_iter().rev() {
            queue.push_front(job);
        }
    }
}

/// Messages whose send deadline passed before anything of them was written.
fn answer_expired(expired: Vec<Job>) {
    for job in expired {
        let error = job.clock.exceeded(SmtpOp::Connect);
        let attempts = job.attempts;
        job.reply(Err(SendError::NotSent { error, attempts }));
    }
}

/// A caller's message in the lobby: withdrawn when the caller stops waiting before a flight
/// took it.
struct Waiting<'a> {
    lobby: &'a Lobby,
    id: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.lobby.withdraw(self.id);
    }
}

impl Inner {
    /// Send `message` in a chained flight: wait in the lobby until a worker takes it, within
    /// the wait limit or the send deadline, then for its answer.
    pub(super) async fn send_chained(
        self: &Arc<Self>,
        message: &OutgoingMessage<'_>,
        clock: SendClock,
    ) -> Answer {
        let envelope = Envelope::new(message.from, message.to).map_err(|e| SendError::NotSent {
            error: e.into(),
            attempts: 0,
        })?;
        let wait = self.settings.wait_timeout;
        self.take_turn(&clock, wait, clock.started).await?;
        let (answer, mut answered) = oneshot::channel();
        let id = self.lobby.next_id.fetch_add(1, Ordering::Relaxed);
        self.lobby.lock().push_back(Job {
            id,
            envelope,
            body: message.body.to_vec(),
            options: message.options.cloned(),
            clock,
            waiting_since: clock.started,
            attempts: 0,
            answer,
        });
        let waiting = Waiting {
            lobby: &self.lobby,
            id,
        };
        // Shut down meanwhile: no worker would take it.
        if self.closed.load(Ordering::Acquire) && self.lobby.withdraw(id) {
            return Err(SendError::Closed);
        }
        self.dispatch();
        let lost = || SendError::Unknown {
            error: SmtpError::Internal {
                what: "the flight carrying the message ended without an answer",
            },
        };
        match clock.wait_for_place(wait, &mut answered).await {
            Ok(answer) => return answer.unwrap_or_else(|_| Err(lost())),
            Err(gave_up) if self.lobby.withdraw(id) => return Err(gave_up),
            // Taken: its flight answers within the flight's deadline, no later than ours.
            Err(_) => {}
        }
        // Taken into a flight, it is sent whatever this call does now: the guard must not
        // withdraw it again, which could take its retry out of the lobby (requeued meanwhile)
        // and leave this call an answer of "unknown" for a message that was not sent.
        std::mem::forget(waiting);
        answered.await.unwrap_or_else(|_| Err(lost()))
    }

    /// Start a worker when messages wait and a connection's place is free.
    pub(super) fn dispatch(self: &Arc<Self>) {
        if self.lobby.is_empty() {
            return;
        }
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            tokio::spawn(Arc::clone(self).work(permit));
        }
    }

    /// A worker: flights on one connection's place while messages wait, then the connection
    /// back to the idle list and the place given back.
    async fn work(self: Arc<Self>, permit: OwnedSemaphorePermit) {
        let mut conn: Option<Pooled> = None;
        // The connection a flight failed on, for the retries to replace.
        let mut failed: Option<Pooled> = None;
        loop {
            if self.closed.load(Ordering::Acquire) {
                for job in self.lobby.drain() {
                    job.reply(Err(SendError::Closed));
                }
                break;
            }
            let Some(clock) = self.lobby.head() else {
                break;
            };
            if let Some((left, because)) = self.pause.as_ref().and_then(Pause::remaining) {
                // The connection kept waits among the idle ones: after the pause it is looked
                // at (and probed) like any other before it carries a message again.
                self.put_back(conn.take()).await;
                self.hold_back(left, &because).await;
                continue;
            }
            // The connection the retries failed on, still fit: parked only once their flight
            // is over, so that no other flight takes it and carries a retry back onto it.
            let mut aside = None;
            let got = match (conn.take(), failed.take()) {
                (Some(conn), _) => Some(Ok(conn)),
                (None, Some(failed)) => {
                    let replaced = clock.within(self.reconnect_keeping(failed)).await;
                    replaced.map(|(kept, got)| {
                        aside = kept;
                        got
                    })
                }
                (None, None) => clock.within(self.checkout()).await,
            };
            let mut open = match got {
                Some(Ok(open)) => open,
                Some(Err(error)) => {
                    self.put_back(aside).await;
                    self.connect_failed(error).await;
                    continue;
                }
                None => {
                    // The first message's deadline passed while connecting.
                    self.lobby.expire();
                    continue;
                }
            };
            let room = self.settings.max_messages.saturating_sub(open.messages);
            if room == 0 {
                self.retire(open).await;
                self.put_back(aside).await;
                continue;
            }
            let mut carried = Carried {
                inner: &self,
                jobs: Vec::new(),
                unsettled: 0,
                room,
                kind: None,
                retries: Vec::new(),
            };
            open.client.set_deadline(None, Duration::ZERO);
            open.client.deliver_flight(&mut carried).await;
            open.client.set_deadline(None, Duration::ZERO);
            self.put_back(aside.take()).await;
            let (count, retries) = (carried.jobs.len(), carried.retries);
            if count == 0 {
                // Another worker took what waited.
                conn = Some(open);
                break;
            }
            let reused = if open.messages > 0 { count } else { count - 1 };
            for _ in 0..reused {
                bump(&self.tally.reused);
            }
            open.messages += count;
            if retries.is_empty() {
                conn = self.park_or_retire(open).await;
            } else {
                failed = Some(open);
                self.requeue(retries).await;
            }
        }
        for open in conn.into_iter().chain(failed) {
            if let Some(spent) = self.park(open) {
                self.retire(spent).await;
            }
        }
        drop(permit);
        // A message queued while this worker held the last place: start its worker.
        self.dispatch();
    }

    /// The server asked to slow down: the waiting messages wait for the pause too, as every
    /// caller does (they passed their turn before it began); one that cannot wait `left` more
    /// (its send deadline or its wait limit, whichever ends first) is throttled at once.
    async fn hold_back(&self, left: Duration, because: &SmtpError) {
        let wait = self.settings.wait_timeout;
        let cannot_wait = |job: &Job| job.clock.wait_bound(wait, job.waiting_since).left() < left;
        for job in self.lobby.take_where(cannot_wait) {
            job.reply(Err(SendError::Throttled {
                error: because.clone(),
                retry_after: left,
            }));
        }
        // Cut short by a shutdown, which answers the waiting messages `Closed`.
        self.pause_over(left).await;
    }

    /// A connection back to the idle list, or ended when it cannot take another message.
    async fn put_back(&self, conn: Option<Pooled>) {
        if let Some(spent) = conn.and_then(|conn| self.park(conn)) {
            self.retire(spent).await;
        }
    }

    /// Keep a connection for the next flight, unless it is spent or closed (then ended).
    async fn park_or_retire(&self, open: Pooled) -> Option<Pooled> {
        let spent = open.messages >= self.settings.max_messages;
        if spent || open.client.state() == crate::SessionState::Closed {
            if let Some(open) = self.park(open) {
                self.retire(open).await;
            }
            return None;
        }
        Some(open)
    }

    /// No connection for the flight (nothing of it was written): the waiting messages with
    /// one attempt behind them each get it counted, and are tried once more or answered.
    async fn connect_failed(&self, error: SmtpError) {
        let mut flight = Vec::new();
        while flight.len() < self.settings.chain {
            let kind = flight.first().map(|job: &Job| job.clock.limit);
            match self.lobby.take_next(kind) {
                Some(job) => flight.push(job),
                None => break,
            }
        }
        let mut retries = Vec::new();
        for mut job in flight {
            job.attempts += 1;
            let delivery = Delivery::NotSent {
                error: error.clone(),
                before_end_of_data: true,
            };
            match self.next_step(delivery, job.attempts, &job.clock) {
                Next::Retry => retries.push(job),
                Next::Answer(answer) => job.reply(answer),
            }
        }
        self.requeue(retries).await;
    }

    /// Messages to try once more: each waits its turn (a retry is one more message for the
    /// server), then goes back to the front of the lobby.
    async fn requeue(&self, jobs: Vec<Job>) {
        let mut ready = Vec::with_capacity(jobs.len());
        for mut job in jobs {
            job.waiting_since = tokio::time::Instant::now();
            let (clock, wait) = (&job.clock, self.settings.wait_timeout);
            match self.take_turn(clock, wait, job.waiting_since).await {
                Ok(()) => {
                    bump(&self.tally.retries);
                    ready.push(job);
                }
                Err(e) => job.reply(Err(e)),
            }
        }
        self.lobby.requeue(ready);
    }
}

/// The messages one connection carries in one flight, taken from the lobby while the
/// connection can take more: at most the pool's chain length unanswered at once, at most
/// `room` in all (the connection's message cap).
struct Carried<'p> {
    inner: &'p Inner,
    /// Every message taken, by number; `None` once answered.
    jobs: Vec<Option<Job>>,
    unsettled: usize,
    room: usize,
    /// The deadline kind of the flight (its first message's).
    kind: Option<Option<Duration>>,
    /// Messages to try once more, on another connection.
    retries: Vec<Job>,
}

impl Flight for Carried<'_> {
    fn next(&mut self) -> Option<usize> {
        let inner = self.inner;
        if self.unsettled >= inner.settings.chain
            || self.jobs.len() >= self.room
            || inner.closed.load(Ordering::Acquire)
            // A slow-down holds the flight too: no message goes out during the pause.
            || inner.pause.as_ref().is_some_and(|p| p.remaining().is_some())
        {
            return None;
        }
        let job = inner.lobby.take_next(self.kind)?;
        self.kind.get_or_insert(job.clock.limit);
        self.unsettled += 1;
        self.jobs.push(Some(job));
        Some(self.jobs.len() - 1)
    }

    fn message(&self, n: usize) -> Option<FlightMessage<'_>> {
        let job = self.jobs.get(n)?.as_ref()?;
        Some(FlightMessage {
            envelope: &job.envelope,
            body: &job.body,
            options: job.options.as_ref(),
        })
    }

    fn settle(&mut self, n: usize, delivery: Delivery) {
        let Some(mut job) = self.jobs.get_mut(n).and_then(Option::take) else {
            return;
        };
        self.unsettled -= 1;
        job.attempts += 1;
        match self.inner.next_step(delivery, job.attempts, &job.clock) {
            Next::Retry => self.retries.push(job),
            Next::Answer(answer) => job.reply(answer),
        }
    }

    /// The deadline of the oldest message still unanswered: it passes first.
    fn deadline(&self) -> Option<(Duration, Duration)> {
        // The earliest started, not the first taken: a throttle or a pause can let a later
        // caller in first.
        let oldest = self
            .jobs
            .iter()
            .flatten()
            .min_by_key(|job| job.clock.started)?;
        let limit = oldest.clock.limit?;
        Some((limit, oldest.clock.started.elapsed()))
    }

    /// The connection is gone: the messages still waiting in the lobby were never on it. They
    /// stay there for the next connection, each with its attempts (and its one retry) intact.
    fn abandon(&mut self, _error: &SmtpError) {}
}
