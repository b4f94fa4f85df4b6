//! What an adapter implements for the client and the connect layer to run over it:
//! [`Transport`], [`StartTlsCapable`] (also at their first home, `smtp_proto::client`). The
//! contract between the adapters and everything that does I/O through them, so it sits beside
//! [`connect`](crate::connect) and [`client`](crate::client), not inside either.

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use core::future::Future;
use core::time::Duration;
use std::io;

/// A connected byte stream plus the runtime's timer. Adapters implement this for their sockets.
///
/// The futures need not be `Send`; when an implementation's futures are `Send`, so are the
/// client's (tokio users can spawn them), because the compiler sees the concrete types.
///
/// The timer is part of the contract: a transport that gives none does not compile (without it
/// every wait for the server would be unbounded).
///
/// ```
/// use core::time::Duration;
/// use smtp_proto::client::Transport;
///
/// struct Loopback;
/// impl Transport for Loopback {
///     async fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> { Ok(0) }
///     async fn write_all(&mut self, _: &[u8]) -> std::io::Result<()> { Ok(()) }
///     async fn close(&mut self) -> std::io::Result<()> { Ok(()) }
///     fn sleep(_: Duration) -> impl Future<Output = ()> { core::future::ready(()) }
///     fn now() -> Duration { Duration::ZERO }
/// }
/// ```
///
/// ```compile_fail
/// use core::time::Duration;
/// use smtp_proto::client::Transport;
///
/// struct NoTimer;
/// impl Transport for NoTimer {
///     async fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> { Ok(0) }
///     async fn write_all(&mut self, _: &[u8]) -> std::io::Result<()> { Ok(()) }
///     async fn close(&mut self) -> std::io::Result<()> { Ok(()) }
///     fn now() -> Duration { Duration::ZERO }
/// }
/// ```
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// Read some bytes into `buf`. `Ok(0)` means the peer closed the connection. Must be
    /// cancel-safe: the client drops a pending read when a timeout fires. A record the TLS
    /// layer refuses (an alert from the server, a record that fails to decrypt) is an error of
    /// kind `InvalidData`, and no other failure of a read is: that is how
    /// [`SmtpError::is_tls_failure`](crate::SmtpError::is_tls_failure) tells a TLS failure after
    /// the handshake from a lost connection. rustls' streams already do this.
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    /// Write all of `buf` and flush it to the network before returning.
    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;

    /// Close the connection (TLS close_notify, then shutdown), best effort.
    async fn close(&mut self) -> io::Result<()>;

    /// A future that completes after `duration`, from the runtime's timer. The client races it
    /// against each wait for a reply and each write, so every wait is bounded by the engine's
    /// limit for it. Required: a transport without a timer would have no timeouts at all, and a
    /// silent server would hold the client forever. (A test transport may return a future that
    /// completes at once, or one driven by a fake clock.)
    fn sleep(duration: Duration) -> impl Future<Output = ()>;

    /// The runtime's monotonic clock: the time since an arbitrary origin that stays fixed while
    /// the process runs. The client reads it to enforce the session's total deadline
    /// ([`Timeouts::total`](crate::Timeouts::total)) and the write-progress rule
    /// ([`Timeouts::min_write_rate`](crate::Timeouts::min_write_rate)); it must agree with
    /// [`sleep`](Self::sleep) (what `sleep(d)` waits for is `now()` advancing by `d`).
    fn now() -> Duration;

    /// When the read, write or TLS upgrade the client starts next must end, on
    /// [`now`](Self::now)'s clock (`None`: nothing bounds it). The client says it before each
    /// of them: it is the engine's next timer ([`Session::poll_timeout`](crate::Session::poll_timeout)).
    ///
    /// A transport whose futures a runtime wakes ignores it (the default does nothing): the
    /// client races each of them against [`sleep`](Self::sleep). It is for a *blocking*
    /// transport, whose futures do their work in their first poll: it bounds the blocking call
    /// by this instant (a socket timeout) and, once the instant has passed, returns
    /// `Poll::Pending` instead of an error. The client then polls its timer, which is due, and
    /// the engine reports the timeout or the deadline as its own error. `smtp-io-std` runs the
    /// whole client this way, with a loop that polls it and no runtime.
    fn set_wait_limit(&mut self, until: Option<Duration>) {
        let _ = until;
    }

    /// Fill `buf` with bytes from a cryptographically secure random generator (the operating
    /// system's, or the platform's `crypto.getRandomValues`). The client uses it for the SCRAM
    /// nonce, which must be unpredictable.
    ///
    /// The default has no random source and returns [`io::ErrorKind::Unsupported`]: `login` then
    /// never picks SCRAM, and `login_with` a SCRAM mechanism fails with [`SmtpError::Io`]
    /// (during AUTH) before anything is sent.
    ///
    /// [`SmtpError::Io`]: crate::SmtpError::Io
    fn fill_random(&self, buf: &mut [u8]) -> io::Result<()> {
        let _ = buf;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this transport has no random source",
        ))
    }

    /// Whether anything (bytes, or the end of the stream) waits to be read, when the transport
    /// can tell at once, without consuming it: a look at the socket's buffer in the kernel and
    /// at what a TLS layer already holds decrypted. `Some(false)` must mean that a
    /// [`read`](Self::read) now would find nothing. `None` (the default): it cannot tell, and
    /// [`SmtpClient::check_idle`](super::SmtpClient::check_idle) polls `read` once instead, which
    /// only sees what the runtime already knows is readable.
    fn input_pending(&self) -> Option<bool> {
        None
    }

    /// True when the connection is encrypted now (implicit TLS, or after
    /// [`upgrade_to_tls`](StartTlsCapable::upgrade_to_tls)). The client asks it when it
    /// connects, so a caller never has to declare implicit TLS by hand; the engine refuses AUTH
    /// on a connection that is not encrypted unless allowed. The default is `false`: a transport
    /// that does not say gets the plaintext rules.
    fn is_encrypted(&self) -> bool {
        false
    }

    /// The RFC 9266 `tls-exporter` channel binding of this connection: 32 bytes of TLS exporter
    /// output with the label [`TLS_EXPORTER_LABEL`](crate::sasl::TLS_EXPORTER_LABEL) and an empty
    /// context. Must be `None` unless TLS 1.3 is established (RFC 9266 section 4: with TLS 1.2
    /// the exporter is not a safe binding). SCRAM-SHA-256-PLUS is used only when this is `Some`.
    /// The default is `None`.
    fn tls_exporter(&self) -> Option<[u8; 32]> {
        None
    }
}

/// A transport that can upgrade the same connection to TLS in place (STARTTLS, RFC 3207).
#[allow(async_fn_in_trait)]
pub trait StartTlsCapable: Transport {
    /// Run the TLS handshake on this connection; afterwards `read`/`write_all` go through TLS.
    /// On error the transport is unusable.
    async fn upgrade_to_tls(&mut self) -> io::Result<()>;
}
