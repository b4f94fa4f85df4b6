//! [`WasiTransport`]: a `wasi:sockets` TCP connection, plain or inside rustls, as the client's
//! [`Transport`] and [`StartTlsCapable`].

use core::future::Future;
use core::time::Duration;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

use rustls::ClientConnection;
use smtp_proto::connect::{ProxyHandshake, open_tunnel};
use smtp_proto::{StartTlsCapable, Transport};
use smtp_rustls::{TlsConfig, TlsTarget};

use super::reactor;
use super::tcp::{READ_CHUNK, TcpConn};
use crate::TlsMode;
use crate::connect::Route;

/// A connection to an SMTP server from a WASI 0.2 component: TCP through `wasi:sockets`,
/// optionally TLS with rustls in the guest.
///
/// It implements [`Transport`] (read, write and flush, close; the timer is
/// `wasi:clocks/monotonic-clock`, the random source `wasi:random/random`, and on TLS 1.3 the
/// `tls-exporter` channel binding for SCRAM-SHA-256-PLUS) and [`StartTlsCapable`] (the rustls
/// handshake on the same socket, checking the certificate against the [`TlsConfig`] and the host
/// name it was given).
///
/// Reads are cancel-safe (the client drops a read when a timeout fires): bytes leave the host
/// only when a read returns, and TLS records are decrypted in the same step. Its futures run
/// under [`block_on`](super::block_on).
pub struct WasiTransport {
    tcp: Option<TcpConn>,
    tls: Option<Box<ClientConnection>>,
    settings: Option<TlsTarget>,
    /// TLS records produced by rustls and not yet taken by the host.
    out: Vec<u8>,
    peer: SocketAddr,
}

impl fmt::Debug for WasiTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        smtp_rustls::debug_connection(f, "WasiTransport", &self.peer, self.is_tls())
    }
}

fn broken() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the connection is closed (or was lost in a failed TLS handshake)",
    )
}

/// Whether `e` says the peer has already closed the connection.
fn is_hung_up(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::NotConnected
    )
}

fn tls_error(e: rustls::Error) -> io::Error {
    if matches!(
        e,
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)
    ) {
        // A plaintext server's greeting read as a TLS record: the 465/587 mix-up, explained.
        return smtp_rustls::explain_handshake_error(io::Error::new(io::ErrorKind::InvalidData, e));
    }
    io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}"))
}

impl WasiTransport {
    /// A plain transport over `tcp`, without TLS settings.
    fn plain(tcp: TcpConn) -> WasiTransport {
        WasiTransport {
            peer: tcp.peer(),
            tcp: Some(tcp),
            tls: None,
            settings: None,
            out: Vec::new(),
        }
    }

    /// Open a plain TCP connection to `host:port` (the first resolved address that accepts). It
    /// cannot upgrade: STARTTLS fails closed. Not bounded in time; the connect helpers race it
    /// with a timer.
    pub async fn connect_plain(host: &str, port: u16) -> io::Result<WasiTransport> {
        Ok(WasiTransport::plain(
            TcpConn::connect(host, port, &Route::default(), None).await?,
        ))
    }

    /// Open a plain TCP connection that will upgrade with STARTTLS, checking the server's
    /// certificate for `host` against `tls`.
    pub async fn connect_starttls(
        host: &str,
        port: u16,
        tls: TlsConfig,
    ) -> io::Result<WasiTransport> {
        let target = TlsTarget::new(host, tls)?;
        let mut transport = WasiTransport::connect_plain(host, port).await?;
        transport.settings = Some(target);
        Ok(transport)
    }

    /// Open a TCP connection and run the TLS handshake at once (implicit TLS, port 465),
    /// checking the certificate for `host` against `tls`.
    pub async fn connect_implicit_tls(
        host: &str,
        port: u16,
        tls: TlsConfig,
    ) -> io::Result<WasiTransport> {
        let mut transport = WasiTransport::connect_starttls(host, port, tls).await?;
        transport.handshake().await?;
        Ok(transport)
    }

    /// Open a connection to `host:port` by `route` for `mode`: plain, plain ready for
    /// STARTTLS, or implicit TLS (the handshake done), checking the certificate for `name` (the
    /// host, or the name the caller set; never the proxy's) against `tls`.
    ///
    /// Through a proxy, TCP goes to the proxy and [`open_tunnel`] opens the tunnel to
    /// `host:port` on the still-plain transport (the proxy resolves `host`); TLS then runs end to
    /// end with the SMTP server. A proxy that cannot be reached is "cannot reach the proxy
    /// host:port: ...". From a local address, the socket is bound to it (port 0) before it
    /// connects, to the proxy when there is one. A `name` that cannot be a server name, and a
    /// `host` that cannot go into the proxy's request, fail before any I/O. Not bounded in time.
    pub(crate) async fn open_routed(
        host: &str,
        port: u16,
        name: &str,
        mode: TlsMode,
        tls: &TlsConfig,
        route: &Route,
        until: Option<Duration>,
    ) -> io::Result<WasiTransport> {
        let settings = match mode {
            TlsMode::None => None,
            _ => Some(TlsTarget::new(name, tls.clone())?),
        };
        let mut transport = match &route.proxy {
            None => WasiTransport::plain(TcpConn::connect(host, port, route, until).await?),
            Some(proxy) => {
                // Refused before any I/O: a host the request cannot carry (checked again, and
                // the request built, by open_tunnel; the copy here is wiped when dropped).
                drop(ProxyHandshake::new(proxy, host, port)?);
                let tcp = TcpConn::connect(proxy.host(), proxy.port(), route, until)
                    .await
                    .map_err(|e| proxy.unreachable(e))?;
                let mut transport = WasiTransport::plain(tcp);
                // Plain reads ask the host for no more than the buffer holds, so the tunnel
                // handshake takes not a byte of the SMTP server's.
                open_tunnel(&mut transport, proxy, host, port).await?;
                transport
            }
        };
        transport.settings = settings;
        if mode == TlsMode::Implicit {
            transport.handshake().await?;
        }
        Ok(transport)
    }

    /// True once TLS is established.
    pub fn is_tls(&self) -> bool {
        self.tls.as_ref().is_some_and(|c| !c.is_handshaking())
    }

    /// The address the TCP connection goes to: the SMTP server's, or the proxy's when the
    /// connection was opened through one.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The negotiated TLS version and cipher suite, once TLS is established.
    pub fn tls_info(&self) -> Option<(rustls::ProtocolVersion, rustls::SupportedCipherSuite)> {
        let conn = self.tls.as_ref()?;
        Some((conn.protocol_version()?, conn.negotiated_cipher_suite()?))
    }

    /// Move the records rustls wants to send into `out`.
    fn queue_tls(&mut self) -> io::Result<()> {
        if let Some(conn) = self.tls.as_mut() {
            while conn.wants_write() {
                conn.write_tls(&mut self.out)?;
            }
        }
        Ok(())
    }

    /// Write `out` to the network. Cancel-safe: what the host took is removed as it goes.
    async fn flush_out(&mut self) -> io::Result<()> {
        let tcp = self.tcp.as_mut().ok_or_else(broken)?;
        while !self.out.is_empty() {
            let n = tcp.write_some(&self.out).await?;
            self.out.drain(..n);
        }
        tcp.flush().await
    }

    /// Read from the network once and feed it to rustls. `Ok(false)`: the peer closed.
    async fn receive_tls(&mut self) -> io::Result<bool> {
        let tcp = self.tcp.as_mut().ok_or_else(broken)?;
        let bytes = tcp.read(READ_CHUNK).await?;
        if bytes.is_empty() {
            return Ok(false);
        }
        let conn = self.tls.as_mut().ok_or_else(broken)?;
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            // 0: a close_notify came, and rustls takes nothing after it (RFC 8446 6.1): what
            // follows is dropped, or this loop would never end.
            if conn.read_tls(&mut rest)? == 0 {
                break;
            }
            if let Err(e) = conn.process_new_packets() {
                // Send the alert rustls queued (best effort), then fail.
                let _ = self.queue_tls();
                let _ = self.flush_out().await;
                return Err(tls_error(e));
            }
        }
        Ok(true)
    }

    async fn handshake(&mut self) -> io::Result<()> {
        let target = TlsTarget::required(self.settings.as_ref())?;
        if self.tls.is_some() {
            return Err(io::Error::other("TLS is already established"));
        }
        let conn = ClientConnection::new(target.config().rustls_config(), target.name().clone())
            .map_err(tls_error)?;
        self.tls = Some(Box::new(conn));
        let result = self.drive_handshake().await;
        if result.is_err() {
            // The socket is in an unknown TLS state: nothing more may go through it.
            self.tls = None;
            if let Some(mut tcp) = self.tcp.take() {
                let _ = tcp.shutdown();
            }
        }
        result
    }

    async fn drive_handshake(&mut self) -> io::Result<()> {
        loop {
            self.queue_tls()?;
            self.flush_out().await?;
            let conn = self.tls.as_ref().ok_or_else(broken)?;
            if !conn.is_handshaking() {
                return Ok(());
            }
            if conn.wants_read() && !self.receive_tls().await? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection during the TLS handshake",
                ));
            }
        }
    }
}

impl Transport for WasiTransport {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.tls.is_none() {
            let tcp = self.tcp.as_mut().ok_or_else(broken)?;
            let bytes = tcp
                .read(u64::try_from(buf.len()).unwrap_or(READ_CHUNK))
                .await?;
            // A host that hands over more than was asked for breaks the stream's contract:
            // an error, never a panic.
            let Some(into) = buf.get_mut(..bytes.len()) else {
                return Err(io::Error::other(
                    "the host returned more bytes than were asked for",
                ));
            };
            into.copy_from_slice(&bytes);
            return Ok(bytes.len());
        }
        loop {
            let conn = self.tls.as_mut().ok_or_else(broken)?;
            match conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // A server that closes without close_notify: for SMTP that is the end of the
                // conversation, and every reply is self-delimiting, so no truncation goes unseen.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            // Anything rustls has to say first (a key update, an alert), best effort: a peer
            // that stopped reading and hung up may have written why before, and that must
            // still be read (the driver reads after a failed write for that reply).
            self.queue_tls()?;
            if let Err(e) = self.flush_out().await {
                if !is_hung_up(&e) {
                    return Err(e);
                }
                self.out.clear();
            }
            if !self.receive_tls().await? {
                return Ok(0);
            }
        }
    }

    async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        if self.tls.is_none() {
            return self.tcp.as_mut().ok_or_else(broken)?.write_all(buf).await;
        }
        while !buf.is_empty() {
            let conn = self.tls.as_mut().ok_or_else(broken)?;
            let n = conn.writer().write(buf)?;
            buf = &buf[n..];
            self.queue_tls()?;
            self.flush_out().await?;
        }
        self.queue_tls()?;
        self.flush_out().await
    }

    async fn close(&mut self) -> io::Result<()> {
        if let Some(conn) = self.tls.as_mut() {
            conn.send_close_notify();
            let sent = match self.queue_tls() {
                Ok(()) => self.flush_out().await,
                Err(e) => Err(e),
            };
            self.tls = None;
            if let Some(mut tcp) = self.tcp.take() {
                let _ = tcp.shutdown();
            }
            return match sent {
                // The peer hung up first (after its 221, and through a proxy that drops both
                // sides at once, before the close_notify goes out): the connection is closed,
                // which is all this was for.
                Err(e) if is_hung_up(&e) => Ok(()),
                other => other,
            };
        }
        match self.tcp.take() {
            Some(mut tcp) => tcp.shutdown(),
            None => Ok(()),
        }
    }

    fn sleep(duration: Duration) -> impl Future<Output = ()> {
        reactor::sleep(duration)
    }

    fn is_encrypted(&self) -> bool {
        self.tls.is_some()
    }

    /// `wasi:clocks/monotonic-clock`, the clock [`sleep`](Self::sleep) waits on.
    fn now() -> Duration {
        reactor::now()
    }

    /// `wasi:random/random`, the host's cryptographically secure generator.
    fn fill_random(&self, buf: &mut [u8]) -> io::Result<()> {
        let bytes = wasip2::random::random::get_random_bytes(buf.len() as u64);
        if bytes.len() != buf.len() {
            return Err(io::Error::other("wasi:random returned too few bytes"));
        }
        buf.copy_from_slice(&bytes);
        Ok(())
    }

    /// rustls' keying material exporter (RFC 8446 section 7.5) with the RFC 9266 label and an
    /// empty context, on TLS 1.3 only; `None` on plaintext and on TLS 1.2.
    fn tls_exporter(&self) -> Option<[u8; 32]> {
        smtp_rustls::tls_exporter(self.tls.as_ref()?)
    }
}

impl StartTlsCapable for WasiTransport {
    async fn upgrade_to_tls(&mut self) -> io::Result<()> {
        self.handshake().await
    }
}
