//! [`TokioTransport`]: a tokio TCP stream, plain or inside rustls, that can upgrade in place.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use smtp_proto::{StartTlsCapable, Transport};
use smtp_rustls::{TlsConfig, TlsTarget, Upgradable, lost_in_handshake};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The socket: plain, inside tokio-rustls, or lost in a failed upgrade.
type Stream = Upgradable<TcpStream, TlsStream<TcpStream>>;

/// A connection to an SMTP server over tokio: TCP with `TCP_NODELAY`, optionally TLS (rustls).
///
/// It implements [`Transport`] (read, write and flush, close, tokio's timer) and
/// [`StartTlsCapable`] (upgrade the same socket to TLS, verifying the certificate against the
/// [`TlsConfig`] and the host name it was given).
pub struct TokioTransport {
    stream: Stream,
    tls: Option<TlsTarget>,
    peer: Option<SocketAddr>,
}

impl fmt::Debug for TokioTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        smtp_rustls::debug_connection(f, "TokioTransport", &self.peer, self.is_tls())
    }
}

impl TokioTransport {
    /// A plain connection that cannot upgrade to TLS (STARTTLS will fail closed).
    pub fn plain(stream: TcpStream) -> TokioTransport {
        let peer = stream.peer_addr().ok();
        TokioTransport {
            stream: Stream::Plain(stream),
            tls: None,
            peer,
        }
    }

    /// A plain connection that will upgrade with STARTTLS, checking the server's certificate for
    /// `host` against `tls`.
    pub fn plain_with_starttls(
        stream: TcpStream,
        host: &str,
        tls: TlsConfig,
    ) -> io::Result<TokioTransport> {
        let target = TlsTarget::new(host, tls)?;
        let mut transport = TokioTransport::plain(stream);
        transport.tls = Some(target);
        Ok(transport)
    }

    /// Run the TLS handshake on `stream` now (implicit TLS, port 465), checking the certificate
    /// for `host` against `tls`.
    pub async fn implicit_tls(
        stream: TcpStream,
        host: &str,
        tls: TlsConfig,
    ) -> io::Result<TokioTransport> {
        let mut transport = TokioTransport::plain_with_starttls(stream, host, tls)?;
        transport.handshake().await?;
        Ok(transport)
    }

    /// True once TLS is established.
    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// The server's address.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The negotiated TLS version and cipher suite, once TLS is established.
    pub fn tls_info(&self) -> Option<(rustls::ProtocolVersion, rustls::SupportedCipherSuite)> {
        match &self.stream {
            Stream::Tls(s) => {
                let conn = s.get_ref().1;
                Some((conn.protocol_version()?, conn.negotiated_cipher_suite()?))
            }
            _ => None,
        }
    }

    /// Whether the TLS handshake was a full one or resumed an earlier session (rustls shares
    /// its session cache between connections made with the same `ClientConfig`); `None`
    /// before TLS.
    pub fn tls_handshake_kind(&self) -> Option<rustls::HandshakeKind> {
        match &self.stream {
            Stream::Tls(s) => s.get_ref().1.handshake_kind(),
            _ => None,
        }
    }

    /// The TCP stream back while the connection is still plain (the route opens a proxy
    /// tunnel over it before any TLS); `None` once TLS is established or lost.
    pub(crate) fn into_plain(self) -> Option<TcpStream> {
        match self.stream {
            Stream::Plain(tcp) => Some(tcp),
            _ => None,
        }
    }

    async fn handshake(&mut self) -> io::Result<()> {
        let target = TlsTarget::required(self.tls.as_ref())?;
        let tcp = self.stream.take_plain()?;
        let connector = TlsConnector::from(target.config().rustls_config());
        let tls = connector.connect(target.name().clone(), tcp).await?;
        self.stream = Stream::Tls(Box::new(tls));
        Ok(())
    }
}

impl Transport for TokioTransport {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.stream {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => match s.read(buf).await {
                // A server that closes without close_notify: for SMTP that is the end of the
                // conversation, and every reply is self-delimiting, so no truncation goes unseen.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
            Stream::Broken => Err(lost_in_handshake()),
        }
    }

    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.stream {
            Stream::Plain(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
            Stream::Tls(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
            Stream::Broken => Err(lost_in_handshake()),
        }
    }

    async fn close(&mut self) -> io::Result<()> {
        match &mut self.stream {
            Stream::Plain(s) => s.shutdown().await,
            Stream::Tls(s) => s.shutdown().await,
            Stream::Broken => Ok(()),
        }
    }

    fn sleep(duration: Duration) -> impl Future<Output = ()> {
        stepped_sleep(duration)
    }

    /// tokio's clock (so a test runtime with paused time moves it too), from the first call.
    fn now() -> Duration {
        static ORIGIN: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
        let origin = *ORIGIN.get_or_init(tokio::time::Instant::now);
        tokio::time::Instant::now().saturating_duration_since(origin)
    }

    /// A `MSG_PEEK` of the socket (one non-blocking `recv` through a borrowed `socket2` handle,
    /// nothing consumed), and under TLS whether rustls already holds decrypted input. Unlike a
    /// poll of `read`, the peek does not depend on the readiness tokio's reactor cached, which
    /// lags until its event loop has turned since the bytes arrived. Under TLS any record counts
    /// (idle SMTP gets none).
    fn input_pending(&self) -> Option<bool> {
        let (tcp, buffered) = match &self.stream {
            Stream::Plain(s) => (s, false),
            // rustls wants more from the socket unless it holds plaintext (or a close) already.
            Stream::Tls(s) => (s.get_ref().0, !s.get_ref().1.wants_read()),
            Stream::Broken => return Some(true),
        };
        if buffered {
            return Some(true);
        }
        let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        match socket2::SockRef::from(tcp).peek(&mut byte) {
            // Bytes, or the end of the stream.
            Ok(_) => Some(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Some(false),
            // A reset or another error: a read would report it.
            Err(_) => Some(true),
        }
    }

    fn is_encrypted(&self) -> bool {
        self.stream.is_tls()
    }

    /// The operating system's CSPRNG, through `getrandom`.
    fn fill_random(&self, buf: &mut [u8]) -> io::Result<()> {
        getrandom::fill(buf).map_err(|e| io::Error::other(e.to_string()))
    }

    /// rustls' keying material exporter (RFC 8446 section 7.5) with the RFC 9266 label and an
    /// empty context, on TLS 1.3 only; `None` on plaintext and on TLS 1.2.
    fn tls_exporter(&self) -> Option<[u8; 32]> {
        let Stream::Tls(s) = &self.stream else {
            return None;
        };
        smtp_rustls::tls_exporter(s.get_ref().1)
    }
}

/// The longest single timer [`stepped_sleep`] registers.
const TIMER_STEP: Duration = Duration::from_secs(1);

/// The instant `duration` from now; a duration too large for the clock (`Duration::MAX` for
/// "no limit") gives one thirty years away instead of a panic.
pub(crate) fn instant_in(duration: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(duration)
        .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 24 * 3600))
}

/// Sleep for `duration`, registering timers of at most [`TIMER_STEP`] each.
///
/// The client arms a new timer for every reply it awaits, with RFC 5321's limit for that phase:
/// 5 minutes for the envelope, 10 for the final dot. Tokio writes to its driver's eventfd
/// whenever a timer is registered earlier than the wake-up time the driver last parked with, so
/// with plain `tokio::time::sleep` every message after the first costs one extra `write(2)` and
/// one extra `epoll_wait` event (the envelope's 5 minutes come before the previous message's
/// 10). Registering at most `now + 1 s` makes each registration later than the one before, so
/// that wake-up never happens. A wait longer than a second wakes once a second to re-arm, which
/// is nothing beside what it waits for. The deadline is the same as `sleep(duration)`'s.
/// A duration too large for the clock (e.g. `Duration::MAX` for "no limit") never ends.
pub(crate) async fn stepped_sleep(duration: Duration) {
    let deadline = tokio::time::Instant::now().checked_add(duration);
    loop {
        let now = tokio::time::Instant::now();
        let step = now + TIMER_STEP;
        match deadline {
            Some(deadline) if now >= deadline => return,
            Some(deadline) => tokio::time::sleep_until(deadline.min(step)).await,
            None => tokio::time::sleep_until(step).await,
        }
    }
}

impl StartTlsCapable for TokioTransport {
    async fn upgrade_to_tls(&mut self) -> io::Result<()> {
        self.handshake().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn stepped_sleep_ends_at_the_deadline_for_long_waits() {
        for secs in [600, 300, 61] {
            let start = Instant::now();
            stepped_sleep(Duration::from_secs(secs)).await;
            let slept = start.elapsed();
            assert!(
                slept >= Duration::from_secs(secs),
                "{secs} s: woke after {slept:?}"
            );
            assert!(
                slept < Duration::from_secs(secs) + Duration::from_millis(5),
                "{slept:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stepped_sleep_short_and_zero_waits() {
        let start = Instant::now();
        stepped_sleep(Duration::from_millis(250)).await;
        let slept = start.elapsed();
        assert!(slept >= Duration::from_millis(250) && slept < Duration::from_millis(255));
        let start = Instant::now();
        stepped_sleep(Duration::ZERO).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn stepped_sleep_of_an_unrepresentable_duration_never_ends() {
        // tokio::time::sleep(Duration::MAX) sleeps "forever"; so must this (no overflow panic).
        tokio::select! {
            _ = stepped_sleep(Duration::MAX) => panic!("Duration::MAX ended"),
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stepped_sleep_is_not_woken_early_by_other_timers() {
        // A competing shorter timer completing first must not end the long wait.
        let long = stepped_sleep(Duration::from_secs(5));
        let short = tokio::time::sleep(Duration::from_millis(1500));
        let start = Instant::now();
        tokio::select! {
            _ = long => panic!("the 5 s wait ended before the 1.5 s one"),
            _ = short => {}
        }
        assert!(start.elapsed() >= Duration::from_millis(1500));
    }
}
