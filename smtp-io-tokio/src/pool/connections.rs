//! A pool's connections: opening one (and logging in), checking one out, reviving an idle
//! one, putting one back, ending one, and the reaper of idle ones.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use smtp_proto::session::IdleStatus;
use tokio::time::Instant;

use super::Inner;
use super::credentials::Login;
use super::tally::{Slot, bump};
use crate::{ConnectOptions, SessionState, SmtpClient, SmtpError, TokioTransport};

/// The longest a connection being ended waits for the reply to its QUIT (and its close).
const QUIT_LIMIT: Duration = Duration::from_secs(2);

/// A connection of the pool. The client is boxed: a `Pooled` moves in and out of the idle list
/// and through the futures of every message, and an unboxed client (~1.7 KB) made those moves
/// cost more than the pool's own work (measured: ~2,000 instructions a message).
pub(super) struct Pooled {
    // Dropped first: the socket is closed before the slot counts it closed.
    pub(super) client: Box<SmtpClient<TokioTransport>>,
    pub(super) slot: Slot,
    /// Messages started on it.
    pub(super) messages: usize,
    /// When it was last put back.
    pub(super) since: Instant,
}

impl Inner {
    pub(super) fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Pooled>> {
        // A panic while holding the lock leaves a valid Vec: keep going.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start the idle reaper, once, in the runtime of the first message.
    pub(super) fn start_reaper(self: &Arc<Inner>) {
        if !self.reaping.swap(true, Ordering::AcqRel) {
            tokio::spawn(reap(Arc::downgrade(self)));
        }
    }

    /// A new connection in `slot`, logged in when the pool has credentials. A rejected OAuth
    /// token is asked for afresh and tried once more on a new connection. On failure the slot
    /// is given back.
    pub(super) async fn open(&self, mut slot: Slot) -> Result<Pooled, SmtpError> {
        let mut refresh = false;
        loop {
            let mut conn = self.connect(slot).await?;
            let Some(credentials) = &self.credentials else {
                return Ok(conn);
            };
            match credentials.login(&mut conn.client, refresh).await {
                Ok(Login::Done) => return Ok(conn),
                Ok(Login::TokenRejected) => {
                    // The server may hold the connection in any state after a failed AUTH:
                    // a fresh one, in the same place, for the fresh token.
                    slot = self.release(conn).await;
                    refresh = true;
                }
                Err(e) => {
                    self.end(conn).await;
                    return Err(e);
                }
            }
        }
    }

    /// The options of a new connection: the pool's connect options (a copy sharing their
    /// policy and sinks), then the caller's change of each connection's client options.
    pub(super) fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            settings: self.connect.settings().map_client_options(&*self.options),
            tls: self.tls.clone(),
        }
    }

    /// Connect in `slot` (greeting, EHLO, STARTTLS); on failure the slot is given back.
    pub(super) async fn connect(&self, mut slot: Slot) -> Result<Pooled, SmtpError> {
        let options = self.connect_options();
        // A signing pool's messages cannot all go as BINARYMIME (see `MailerBuilder::dkim`).
        #[cfg(feature = "dkim")]
        if self.dkim.is_some() {
            let defaults = options.settings().client_options().message_options();
            crate::dkim::check_signable(Some(defaults))?;
        }
        let client = options
            .connect(&self.host, self.port, &self.ehlo_domain)
            .await?;
        slot.mark_opened();
        match client.transport().tls_handshake_kind() {
            Some(rustls::HandshakeKind::Resumed) => bump(&self.tally.resumed_handshakes),
            Some(_) => bump(&self.tally.full_handshakes),
            None => {}
        }
        Ok(Pooled {
            client: Box::new(client),
            slot,
            messages: 0,
            since: Instant::now(),
        })
    }

    /// An idle connection fit for another message, or a new one when the pool has room. When
    /// it has neither (only for as long as another caller takes to give a place back), waits.
    pub(super) async fn checkout(self: &Arc<Self>) -> Result<Pooled, SmtpError> {
        loop {
            // Registered before looking, so that a place given back meanwhile is not missed.
            let freed = self.tally.freed.notified();
            let popped = self.lock_idle().pop();
            if let Some(conn) = popped {
                match self.revive(conn).await {
                    Some(conn) => return Ok(conn),
                    None => continue,
                }
            }
            if let Some(slot) = self.tally.reserve(self.settings.max_connections) {
                return self.open(slot).await;
            }
            freed.await;
        }
    }

    /// An idle connection made ready for a message, or ended: past the idle timeout, out of
    /// step, or failing its probe.
    pub(super) async fn revive(self: &Arc<Self>, mut conn: Pooled) -> Option<Pooled> {
        let idle_for = conn.since.elapsed();
        if idle_for >= self.settings.idle_timeout {
            bump(&self.tally.expired);
            // Its QUIT is not the caller's business: it goes on in the background (its place
            // is given back when it is over, within QUIT_LIMIT).
            self.retire_in_background(conn);
            return None;
        }
        if conn.client.check_idle().await != IdleStatus::Quiet {
            bump(&self.tally.out_of_step);
            self.end(conn).await;
            return None;
        }
        if idle_for >= self.settings.probe_after {
            bump(&self.tally.probes);
            // The engine takes a 221 to NOOP for what it is, the server closing (lettre
            // #743): an error like any other failed probe.
            if conn.client.noop().await.is_err() {
                bump(&self.tally.out_of_step);
                self.end(conn).await;
                return None;
            }
        }
        Some(conn)
    }

    /// A new connection for a retry, in place of `failed`, the one the first attempt failed
    /// on: `failed` goes back to the idle list when it is still fit and the pool has room for
    /// both; otherwise it is ended first and the new connection takes its place.
    pub(super) async fn reconnect(&self, failed: Pooled) -> Result<Pooled, SmtpError> {
        let fit = failed.client.state() != SessionState::Closed;
        let slot = match self.tally.reserve(self.settings.max_connections) {
            Some(slot) if fit => {
                if let Some(spent) = self.park(failed) {
                    self.retire(spent).await;
                }
                slot
            }
            // The new one needs no room of its own.
            Some(slot) => {
                drop(self.release(failed).await);
                slot
            }
            None => self.release(failed).await,
        };
        self.open(slot).await
    }

    /// [`reconnect`](Self::reconnect) for a chained flight's retries, which wait in the
    /// lobby where any flight may take them: `failed`, when still fit and the pool has room
    /// for both, is handed back (with the new connection) instead of parked, for the caller to
    /// park once the retries' flight is over.
    pub(super) async fn reconnect_keeping(
        &self,
        failed: Pooled,
    ) -> (Option<Pooled>, Result<Pooled, SmtpError>) {
        let fit = failed.client.state() != SessionState::Closed;
        let (kept, slot) = match self.tally.reserve(self.settings.max_connections) {
            Some(slot) if fit => (Some(failed), slot),
            Some(slot) => {
                drop(self.release(failed).await);
                (None, slot)
            }
            None => (None, self.release(failed).await),
        };
        (kept, self.open(slot).await)
    }

    /// Put a connection fit for another message on the idle list; hand back one that must be
    /// ended.
    #[must_use]
    pub(super) fn park(&self, mut conn: Pooled) -> Option<Pooled> {
        let spent = conn.messages >= self.settings.max_messages;
        if spent
            || conn.client.state() == SessionState::Closed
            || self.closed.load(Ordering::Acquire)
        {
            return Some(conn);
        }
        conn.since = Instant::now();
        self.lock_idle().push(conn);
        self.tally.freed.notify_waiters();
        None
    }

    /// End a connection and keep its place for another: QUIT when its session is open and in
    /// step, otherwise just close it.
    pub(super) async fn release(&self, conn: Pooled) -> Slot {
        let Pooled {
            mut client,
            mut slot,
            ..
        } = conn;
        // `check_idle` closes a closed or out-of-step connection itself.
        if client.check_idle().await == IdleStatus::Quiet {
            // Nobody waits for the 221: a server slow to give it must not hold the place.
            client.set_deadline(Some(QUIT_LIMIT), Duration::ZERO);
            if client.quit().await.is_ok() {
                bump(&self.tally.quit);
            }
        } else {
            client.close().await;
        }
        slot.mark_closed();
        slot
    }

    /// End a connection politely (see [`release`](Self::release)) and give its place back.
    pub(super) async fn retire(&self, conn: Pooled) {
        drop(self.release(conn).await);
    }

    /// [`retire`](Self::retire) on a task of its own, for a caller that does not wait for it.
    pub(super) fn retire_in_background(self: &Arc<Self>, conn: Pooled) {
        let inner = Arc::clone(self);
        tokio::spawn(async move { inner.retire(conn).await });
    }

    /// Close a connection without QUIT (its session is closed or out of step) and give its
    /// place back.
    pub(super) async fn end(&self, conn: Pooled) {
        let Pooled { client, slot, .. } = conn;
        client.close().await;
        drop(slot);
    }
}

/// The background task of a pool: ends connections idle past the idle timeout, until the pool
/// is dropped or shut down.
async fn reap(pool: Weak<Inner>) {
    loop {
        let Some(inner) = pool.upgrade() else { return };
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        let limit = inner.settings.idle_timeout;
        let expired: Vec<Pooled> = {
            let mut idle = inner.lock_idle();
            let (old, fresh): (Vec<Pooled>, Vec<Pooled>) =
                idle.drain(..).partition(|c| c.since.elapsed() >= limit);
            *idle = fresh;
            old
        };
        for conn in expired {
            bump(&inner.tally.expired);
            // All at once: one server slow to answer QUIT holds none of the others.
            inner.retire_in_background(conn);
        }
        // Awake when the next idle connection expires (within 100 ms), or after a whole
        // idle timeout when none is idle.
        let next = inner
            .lock_idle()
            .iter()
            .map(|c| limit.saturating_sub(c.since.elapsed()))
            .min()
            .unwrap_or(limit);
        let period = next.max(Duration::from_millis(100));
        drop(inner);
        tokio::time::sleep(period).await;
    }
}
