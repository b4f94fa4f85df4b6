//! [`SharedRateLimit`]: one rate limit for every process that sends through the same provider
//! account (SES: so many messages a second per account, whatever the number of replicas), kept
//! in Redis (feature `redis`).
//!
//! The limit is GCRA, like the in-process [`RateLimit`](super::RateLimit), run as one Lua script
//! on one key, on Redis' own clock (`TIME`), so that the processes' clocks never matter and two
//! of them can never both take the last place.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;

use super::throttle::{Throttle, ThrottleFuture, Turn};

/// How long connecting to Redis, and then each answer, may take unless set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// GCRA on one key: `ARGV[1]` the interval between messages and `ARGV[2]` the burst's
/// tolerance, both in microseconds. Returns 0 when a message may go now (it is counted), else
/// the microseconds to wait. The key holds the theoretical arrival time and expires once idle.
const GCRA: &str = r#"
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allowed_at = tat - tolerance
if now < allowed_at then
  return allowed_at - now
end
local new_tat = tat + interval
local ttl_ms = math.ceil((new_tat - now + tolerance) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
return 0
"#;

/// A rate limit shared through Redis by every pool (in any number of processes) built with
/// the same URL and key: at most `n` messages per period together, in bursts of at most
/// `burst`. A Redis that cannot be reached fails the message unsent (the limit is never
/// exceeded for want of asking). Connecting to Redis and each answer are bounded
/// ([`with_timeout`](Self::with_timeout), default 2 s; the pool's wait limit and send deadline
/// bound the whole turn too), and a connection that failed is replaced on the next message: a
/// Redis restart or an idle connection it closed costs the messages of that moment, not every
/// later one.
///
/// ```no_run
/// use std::num::NonZeroU32;
/// use smtp_io_tokio::{Mailer, SharedRateLimit, TlsMode};
///
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// // SES: 14 messages a second for the account, shared by every replica.
/// let limit = SharedRateLimit::per_second(
///     "redis://127.0.0.1:6379",
///     "smtp:ses:account-1",
///     NonZeroU32::new(14).unwrap(),
/// )?;
/// let mailer = Mailer::builder("email-smtp.eu-west-1.amazonaws.com", 587, TlsMode::StartTls, "app.example.com")
///     .throttle(limit)
///     .build()?;
/// # drop(mailer); Ok(()) }
/// ```
pub struct SharedRateLimit {
    client: redis::Client,
    /// The connection in use and its number (counting the connections made); `None` before
    /// the first message and after a failure.
    connection: Mutex<Option<(u64, MultiplexedConnection)>>,
    /// How many connections were made.
    made: AtomicU64,
    timeout: Duration,
    key: String,
    interval: Duration,
    tolerance: Duration,
    script: Arc<redis::Script>,
}

impl std::fmt::Debug for SharedRateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold Redis' password: only the key and the rate.
        f.debug_struct("SharedRateLimit")
            .field("key", &self.key)
            .field("interval", &self.interval)
            .field("tolerance", &self.tolerance)
            .finish_non_exhaustive()
    }
}

impl SharedRateLimit {
    /// At most `n` messages per `period` through Redis at `url` (`redis://host:port`,
    /// `redis+unix:///path`), on `key`, in bursts of up to `burst`. Connects on first use.
    pub fn new(
        url: &str,
        key: impl Into<String>,
        n: NonZeroU32,
        period: Duration,
        burst: NonZeroU32,
    ) -> redis::RedisResult<SharedRateLimit> {
        let interval = period / n.get();
        Ok(SharedRateLimit {
            client: redis::Client::open(url)?,
            connection: Mutex::new(None),
            made: AtomicU64::new(0),
            timeout: DEFAULT_TIMEOUT,
            key: key.into(),
            interval,
            tolerance: interval.saturating_mul(burst.get() - 1),
            script: Arc::new(redis::Script::new(GCRA)),
        })
    }

    /// At most `n` messages a second, one at a time (no burst).
    pub fn per_second(
        url: &str,
        key: impl Into<String>,
        n: NonZeroU32,
    ) -> redis::RedisResult<SharedRateLimit> {
        SharedRateLimit::new(url, key, n, Duration::from_secs(1), NonZeroU32::MIN)
    }

    /// The longest connecting to Redis, and then each of its answers, may take (default 2 s,
    /// at least 1 ms); past it the message fails unsent, like with a Redis that cannot be
    /// reached.
    pub fn with_timeout(mut self, timeout: Duration) -> SharedRateLimit {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The connection in use, or a new one (bounded by the timeout), with its number; one
    /// message at a time connects, the others then share its connection. `true` when it was
    /// kept from an earlier message.
    async fn connection(&self) -> redis::RedisResult<(MultiplexedConnection, u64, bool)> {
        let mut slot = self.connection.lock().await;
        if let Some((number, connection)) = slot.as_ref() {
            return Ok((connection.clone(), *number, true));
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout);
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let number = self.made.fetch_add(1, Ordering::Relaxed);
        *slot = Some((number, connection.clone()));
        Ok((connection, number, false))
    }

    async fn ask(&self) -> redis::RedisResult<Turn> {
        let mut asked_before = false;
        let wait_us = loop {
            let (mut connection, number, kept) = self.connection().await?;
            let asked: redis::RedisResult<u64> = self
                .script
                .key(&self.key)
                .arg(self.interval.as_micros() as u64)
                .arg(self.tolerance.as_micros() as u64)
                .invoke_async(&mut connection)
                .await;
            match asked {
                Ok(wait_us) => break wait_us,
                Err(e) => {
                    // A multiplexed connection that failed does not come back: drop it, unless
                    // another message has replaced it already.
                    let mut slot = self.connection.lock().await;
                    if slot.as_ref().is_some_and(|(n, _)| *n == number) {
                        *slot = None;
                    }
                    drop(slot);
                    // One kept from earlier messages and since closed (Redis restarted, or
                    // closed it when idle): ask once more, on a new one. Asking twice can only
                    // count one message twice, never let one more through.
                    let closed = e.is_connection_dropped() || e.is_io_error();
                    if asked_before || !(kept && closed) {
                        return Err(e);
                    }
                    asked_before = true;
                }
            }
        };
        Ok(match wait_us {
            0 => Turn::Go,
            us => Turn::WaitFor(Duration::from_micros(us)),
        })
    }
}

impl Throttle for SharedRateLimit {
    fn acquire(&self) -> ThrottleFuture<'_> {
        Box::pin(async move {
            self.ask()
                .await
                .map_err(|e| std::io::Error::other(format!("redis: {e}")))
        })
    }
}
