//! How a connection is protected ([`TlsMode`]), how long each step of opening it may take
//! ([`ConnectClock`]), and the one dispatch every adapter runs once its socket is open
//! ([`SmtpClient::open`]).

use core::future::Future;
use core::time::Duration;

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use crate::client::{SmtpClient, SmtpClientOptions};
use crate::error::SmtpError;
use crate::future::{Either, race};
use crate::state::SmtpOp;
use crate::time::Instant;
use crate::transport::{StartTlsCapable, Transport};

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsMode {
    /// TLS from the first byte (SMTPS, port 465). Recommended by RFC 8314.
    Implicit,
    /// Plain TCP, then STARTTLS before anything else (submission on 587, relay on 25). Fails
    /// closed: without STARTTLS nothing is sent in plaintext.
    StartTls,
    /// No TLS at all: everything crosses the network readable, and AUTH is refused unless
    /// allowed. Only for loopback test servers and trusted local relays.
    None,
}

impl TlsMode {
    /// The usual port for this mode: 465, 587 or 25.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::Implicit => 465,
            TlsMode::StartTls => 587,
            TlsMode::None => 25,
        }
    }
}

impl<T: StartTlsCapable> SmtpClient<T> {
    /// Read the greeting and EHLO on a transport an adapter has just opened for `mode` (for
    /// [`TlsMode::Implicit`], past its TLS handshake), then for [`TlsMode::StartTls`] upgrade it
    /// and EHLO again. Whether the connection is encrypted comes from the transport
    /// ([`Transport::is_encrypted`]).
    pub async fn open(
        transport: T,
        mode: TlsMode,
        ehlo_domain: &str,
        options: SmtpClientOptions,
    ) -> Result<SmtpClient<T>, SmtpError> {
        match mode {
            TlsMode::StartTls => {
                SmtpClient::connect_starttls_with(transport, ehlo_domain, options).await
            }
            TlsMode::Implicit | TlsMode::None => {
                SmtpClient::connect_with(transport, ehlo_domain, options).await
            }
        }
    }
}

/// The clock of one connection attempt, from its first step: each step of opening the
/// connection (DNS and TCP connect, an implicit-TLS handshake) is bounded by its own limit and
/// by what is left of the session's deadline ([`Timeouts::total`](crate::Timeouts::total)),
/// and the session that follows counts its deadline from the same start. Every adapter opens
/// its connections through one, so the connect phase counts the same way everywhere.
///
/// ```
/// # async fn demo<T: smtp_proto::client::Transport>(open_socket: impl core::future::Future<Output = std::io::Result<T>>) -> Result<(), smtp_proto::SmtpError> {
/// use core::time::Duration;
/// use smtp_proto::client::SmtpClientOptions;
/// use smtp_proto::connect::ConnectClock;
/// use smtp_proto::SmtpOp;
///
/// let options = SmtpClientOptions::new().with_deadline(Duration::from_secs(60));
/// let (clock, options) = ConnectClock::start::<T>(options);
/// let transport = clock
///     .step::<T, _>(SmtpOp::Connect, Duration::from_secs(30), open_socket)
///     .await?;
/// // ... then `SmtpClient::open(transport, mode, "client.example", options)`.
/// # let _ = (transport, options); Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ConnectClock {
    started: Instant,
    total: Option<Duration>,
}

impl ConnectClock {
    /// Start now, on `T`'s clock; the options are marked with the start
    /// ([`SmtpClientOptions::with_start`]), so the session's deadline counts from here.
    pub fn start<T: Transport>(options: SmtpClientOptions) -> (ConnectClock, SmtpClientOptions) {
        let started = Instant::from(T::now());
        let clock = ConnectClock {
            started,
            total: options.session_config().timeouts.total,
        };
        (clock, options.with_start(started))
    }

    /// How long a step whose own limit is `limit` may take from `now`, and the error to report
    /// when it runs out: [`SmtpError::Timeout`] when its own limit is the nearer,
    /// [`SmtpError::DeadlineExceeded`] when the session's deadline is.
    pub fn bound(&self, now: Instant, during: SmtpOp, limit: Duration) -> (Duration, SmtpError) {
        match self.total {
            Some(total) => {
                let left = (self.started + total).saturating_duration_since(now);
                if left < limit {
                    return (
                        left,
                        SmtpError::DeadlineExceeded {
                            during,
                            after: total,
                        },
                    );
                }
                (
                    limit,
                    SmtpError::Timeout {
                        during,
                        after: limit,
                    },
                )
            }
            None => (
                limit,
                SmtpError::Timeout {
                    during,
                    after: limit,
                },
            ),
        }
    }

    /// Run one step (`work`), bounded as [`bound`](Self::bound) says with `T`'s timer. An
    /// I/O error of the step is [`SmtpError::Io`] during `during`.
    pub async fn step<T: Transport, R>(
        &self,
        during: SmtpOp,
        limit: Duration,
        work: impl Future<Output = std::io::Result<R>>,
    ) -> Result<R, SmtpError> {
        let (left, expired) = self.bound(Instant::from(T::now()), during, limit);
        match race(work, T::sleep(left)).await {
            Either::Left(Ok(value)) => Ok(value),
            Either::Left(Err(e)) => Err(SmtpError::io(during, e.kind(), e.to_string())),
            Either::Right(()) => Err(expired),
        }
    }
}
