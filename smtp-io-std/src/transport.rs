//! [`StdTransport`]: the blocking [`Stream`] as the shared driver's [`Transport`], and the
//! process's monotonic clock ([`now`]).
//!
//! A blocking transport inside an async driver: each future does its blocking work in its
//! first poll, every socket call bounded by the wait limit the driver set just before
//! ([`Transport::set_wait_limit`]: the engine's next timer). When that instant passes before
//! the operation is done, the future returns `Poll::Pending` (never an error), keeping what it
//! has done so far; the driver, which races every read, write and TLS upgrade against
//! [`Transport::sleep`], then polls the sleep, which is due at once, and the engine's timer
//! fires: the engine reports its own `Timeout` or `DeadlineExceeded`, as with any transport.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use smtp_proto::Instant;
use smtp_proto::client::{StartTlsCapable, Transport};

use crate::stream::{Got, Stream, Wait, is_timeout};

/// Now, on the process's monotonic clock (`std::time::Instant` from its first use): the clock
/// of [`StdTransport::now`] and [`StdTransport::sleep`], as the engine's instant.
pub(crate) fn now() -> Instant {
    Instant::from(StdTransport::now())
}

/// A [`Stream`] as the driver's [`Transport`]: blocking sockets, bounded by the wait limit.
pub(crate) struct StdTransport {
    stream: Stream,
    /// When the operation the driver starts next must end ([`Transport::set_wait_limit`]).
    until: Option<Instant>,
}

impl StdTransport {
    /// The transport over `stream`, with no wait limit yet.
    pub(crate) fn new(stream: Stream) -> StdTransport {
        StdTransport {
            stream,
            until: None,
        }
    }

    /// The connection.
    pub(crate) fn stream(&self) -> &Stream {
        &self.stream
    }

    /// How long the next socket call may block: until the wait limit.
    fn wait(&self) -> Wait {
        match self.until {
            None => Wait::Forever,
            Some(until) => match until.saturating_duration_since(now()) {
                left if left.is_zero() => Wait::NotAtAll,
                left => Wait::For(left),
            },
        }
    }

    /// One socket call of an operation, within the wait limit: `Some` with its result when it
    /// did something; `None` when it was interrupted or timed out, after one `Pending` if the
    /// wait limit has passed (the driver's timer is then due, and fires before any later poll).
    async fn bounded<R>(
        &mut self,
        call: impl FnOnce(&mut Stream, Wait) -> io::Result<R>,
    ) -> io::Result<Option<R>> {
        let wait = self.wait();
        match call(&mut self.stream, wait) {
            Ok(done) => Ok(Some(done)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) if is_timeout(&e) => {
                if self.until.is_some_and(|until| until <= now()) {
                    LimitPassed(false).await;
                }
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// `Pending` once, then ready: how a blocking future tells the driver its wait limit passed.
/// It wakes its waker first, so it is correct under any executor; under the crate's
/// [`block_on`](crate::block::block_on) the driver never lets it reach the executor (it
/// polls its due timer next).
struct LimitPassed(bool);

impl Future for LimitPassed {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Transport for StdTransport {
    /// Blocks until bytes (plaintext, under TLS) or the end of the stream arrive, or the wait
    /// limit passes (then `Pending`). Cancel-safe: bytes read are returned at once, and TLS
    /// records not yet whole stay in rustls.
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.bounded(|stream, wait| stream.read(buf, wait)).await? {
                Some(Got::Data(n)) => return Ok(n),
                Some(Got::Eof) => return Ok(0),
                Some(Got::Partial) | None => {}
            }
        }
    }

    /// Blocks until all of `buf` (and, under TLS, every record) is on the socket, or the wait
    /// limit passes (then `Pending`, keeping its progress).
    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut rest = buf;
        while !rest.is_empty() || self.stream.pending_tls() {
            if let Some(n) = self
                .bounded(|stream, wait| stream.write(rest, wait))
                .await?
            {
                rest = &rest[n.min(rest.len())..];
            }
        }
        Ok(())
    }

    /// A TLS `close_notify` (within one second), then the socket is shut. A peer that hung up
    /// first (after its `221`) is no error.
    async fn close(&mut self) -> io::Result<()> {
        match self.stream.close(self.wait()) {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        }
    }

    /// Blocks the thread until `duration` after the call, then is ready: the driver polls it
    /// only after the read or write it races has given up at the same instant, so it sleeps
    /// what is left of the engine's timer, if anything.
    fn sleep(duration: Duration) -> impl Future<Output = ()> {
        let until = now() + duration;
        poll_fn(move |_| {
            let left = until.saturating_duration_since(now());
            if !left.is_zero() {
                std::thread::sleep(left);
            }
            Poll::Ready(())
        })
    }

    fn now() -> Duration {
        static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
        ORIGIN.get_or_init(std::time::Instant::now).elapsed()
    }

    fn set_wait_limit(&mut self, until: Option<Duration>) {
        self.until = until.map(Instant::from);
    }

    /// The operating system's CSPRNG, through `getrandom`.
    fn fill_random(&self, buf: &mut [u8]) -> io::Result<()> {
        getrandom::fill(buf).map_err(|e| io::Error::other(e.to_string()))
    }

    /// Plaintext or a close rustls holds, else a look at the socket that does not wait.
    fn input_pending(&self) -> Option<bool> {
        self.stream.input_pending()
    }

    fn is_encrypted(&self) -> bool {
        self.stream.is_tls()
    }

    fn tls_exporter(&self) -> Option<[u8; 32]> {
        self.stream.tls_exporter()
    }
}

impl StartTlsCapable for StdTransport {
    /// The handshake, one socket call at a time within the wait limit (then `Pending`). An
    /// error leaves the connection unusable.
    async fn upgrade_to_tls(&mut self) -> io::Result<()> {
        self.stream.begin_tls()?;
        while self.stream.is_handshaking() || self.stream.pending_tls() {
            self.bounded(|stream, wait| stream.handshake_step(wait))
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::pin::pin;
    use std::task::Waker;

    use super::*;

    /// A transport over a loopback connection, and the server's end of it.
    fn pair() -> (StdTransport, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (StdTransport::new(Stream::plain(client)), server)
    }

    fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
        pin!(future).poll(&mut Context::from_waker(Waker::noop()))
    }

    /// Whether `input_pending` turns true within five seconds (the peer's bytes or its close
    /// travel through the loopback on their own time).
    fn input_arrives(transport: &StdTransport) -> bool {
        (0..500).any(|_| {
            let seen = transport.input_pending() == Some(true);
            if !seen {
                std::thread::sleep(Duration::from_millis(10));
            }
            seen
        })
    }

    /// Whether input waits is answered without consuming it: nothing, then bytes (still
    /// there for the read), then the end of the stream.
    #[test]
    fn input_pending_looks_without_taking() {
        let (mut transport, mut server) = pair();
        assert_eq!(transport.input_pending(), Some(false));
        server.write_all(b"421 bye\r\n").unwrap();
        assert!(input_arrives(&transport));
        assert_eq!(transport.input_pending(), Some(true));
        let mut buf = [0u8; 64];
        let n = crate::block::block_on(transport.read(&mut buf)).unwrap();
        assert_eq!(&buf[..n], b"421 bye\r\n");
        drop(server);
        assert!(
            input_arrives(&transport),
            "the end of the stream is input too"
        );
        assert_eq!(crate::block::block_on(transport.read(&mut buf)).unwrap(), 0);
    }

    /// A read whose limit has passed looks once without waiting: `Pending` when nothing is
    /// there (never an error, and the socket stays blocking for the next call), the bytes when
    /// they are.
    #[test]
    fn a_read_past_its_limit_does_not_wait() {
        let (mut transport, mut server) = pair();
        let mut buf = [0u8; 16];
        transport.set_wait_limit(Some(StdTransport::now()));
        assert!(poll_once(transport.read(&mut buf)).is_pending());
        // The limit lifted: the next read blocks until the bytes come.
        transport.set_wait_limit(None);
        server.write_all(b"250 ok\r\n").unwrap();
        let n = crate::block::block_on(transport.read(&mut buf)).unwrap();
        assert_eq!(&buf[..n], b"250 ok\r\n");
    }

    /// A read with a limit ahead waits for it, then is `Pending` (the driver's timer is due).
    #[test]
    fn a_read_waits_until_its_limit_then_is_pending() {
        let (mut transport, _server) = pair();
        let limit = Duration::from_millis(50);
        let started = std::time::Instant::now();
        transport.set_wait_limit(Some(StdTransport::now() + limit));
        let mut buf = [0u8; 16];
        assert!(poll_once(transport.read(&mut buf)).is_pending());
        assert!(started.elapsed() >= limit);
    }

    /// `sleep(d)` is ready in its first poll, at least `d` later on `now`'s clock.
    #[test]
    fn sleep_blocks_for_its_duration_on_the_same_clock() {
        let before = StdTransport::now();
        let d = Duration::from_millis(30);
        assert!(poll_once(StdTransport::sleep(d)).is_ready());
        assert!(StdTransport::now() - before >= d);
    }
}
