//! [`Stream`]: a blocking `TcpStream`, plain or inside a rustls [`ClientConnection`], where
//! every system call waits at most as long as the caller says ([`Wait`]: the time left until
//! the engine's next timer).
//!
//! rustls' `StreamOwned` is not used for reading and writing: its `read` loops over socket
//! reads until a whole TLS record has arrived, so a server that drips one byte at a time would
//! get the full limit again for each byte. Here each call makes at most one socket read or one
//! socket write, and the caller works out the time left before the next one.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use rustls::ClientConnection;
use smtp_rustls::{TlsConfig, TlsTarget, Upgradable, lost_in_handshake};

/// The longest a best-effort TLS `close_notify` may take when a connection is closed.
const CLOSE_LIMIT: Duration = Duration::from_secs(1);

/// How long one socket call may block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Until it completes (nothing bounds it).
    Forever,
    /// This long at most (never zero).
    For(Duration),
    /// Not at all: what the socket can do at once, or `WouldBlock`.
    NotAtAll,
}

/// What one read produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Got {
    /// This many bytes of plaintext (at least one).
    Data(usize),
    /// The peer closed the connection.
    Eof,
    /// Bytes arrived that are not plaintext yet (part of a TLS record): read again, with the
    /// time left.
    Partial,
}

/// The socket: plain, inside rustls, or lost in a failed TLS handshake.
type Inner = Upgradable<TcpStream, TlsStream>;

struct TlsStream {
    conn: ClientConnection,
    tcp: TcpStream,
}

/// A connection to an SMTP server: TCP (`TCP_NODELAY` on), optionally TLS through rustls, with
/// the settings to upgrade it in place (STARTTLS).
pub struct Stream {
    inner: Inner,
    tls: Option<TlsTarget>,
    peer: Option<SocketAddr>,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        smtp_rustls::debug_connection(f, "Stream", &self.peer, self.is_tls())
    }
}

/// A socket timeout, as std reports it (`WouldBlock` on Unix, `TimedOut` on Windows), or a
/// socket in non-blocking mode with nothing to do.
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Which way a socket call moves bytes: which of the socket's two timeouts bounds it.
#[derive(Clone, Copy)]
enum Direction {
    Read,
    Write,
}

/// Run one socket call on `tcp`, reading or writing, within `wait`. The socket is left in
/// blocking mode whatever happens (a [`Wait::NotAtAll`] call switches it to non-blocking for
/// its own duration), and std never sees a zero timeout (it refuses one).
fn within<R>(
    tcp: &TcpStream,
    direction: Direction,
    wait: Wait,
    call: impl FnOnce() -> io::Result<R>,
) -> io::Result<R> {
    let set_timeout = match direction {
        Direction::Read => TcpStream::set_read_timeout,
        Direction::Write => TcpStream::set_write_timeout,
    };
    match wait {
        Wait::Forever => set_timeout(tcp, None)?,
        Wait::For(limit) => set_timeout(tcp, Some(limit.max(Duration::from_nanos(1))))?,
        Wait::NotAtAll => {
            tcp.set_nonblocking(true)?;
            let result = call();
            tcp.set_nonblocking(false)?;
            return result;
        }
    }
    call()
}

impl Stream {
    /// A plain connection that cannot upgrade (STARTTLS then fails closed).
    pub fn plain(tcp: TcpStream) -> Stream {
        let _ = tcp.set_nodelay(true);
        let peer = tcp.peer_addr().ok();
        Stream {
            inner: Inner::Plain(tcp),
            tls: None,
            peer,
        }
    }

    /// A plain connection that upgrades with STARTTLS (or an implicit-TLS handshake), checking
    /// the server's certificate for `host` against `tls`.
    pub fn with_tls(tcp: TcpStream, host: &str, tls: TlsConfig) -> io::Result<Stream> {
        let target = TlsTarget::new(host, tls)?;
        let mut stream = Stream::plain(tcp);
        stream.tls = Some(target);
        Ok(stream)
    }

    /// True once TLS is established.
    pub fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }

    /// The server's address (the proxy's, through a proxy).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The negotiated TLS version and cipher suite, once TLS is established.
    pub fn tls_info(&self) -> Option<(rustls::ProtocolVersion, rustls::SupportedCipherSuite)> {
        match &self.inner {
            Inner::Tls(s) => Some((
                s.conn.protocol_version()?,
                s.conn.negotiated_cipher_suite()?,
            )),
            _ => None,
        }
    }

    /// The RFC 9266 `tls-exporter` (TLS 1.3 only), for SCRAM-SHA-256-PLUS.
    pub(crate) fn tls_exporter(&self) -> Option<[u8; 32]> {
        match &self.inner {
            Inner::Tls(s) => smtp_rustls::tls_exporter(&s.conn),
            _ => None,
        }
    }

    /// Start the TLS handshake: the socket is wrapped, the handshake itself runs in
    /// [`handshake_step`](Self::handshake_step) calls while [`is_handshaking`](Self::is_handshaking) or
    /// [`pending_tls`](Self::pending_tls) holds.
    pub(crate) fn begin_tls(&mut self) -> io::Result<()> {
        let target = TlsTarget::required(self.tls.as_ref())?;
        let tcp = self.inner.take_plain()?;
        let conn = ClientConnection::new(target.config().rustls_config(), target.name().clone())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.inner = Inner::Tls(Box::new(TlsStream { conn, tcp }));
        Ok(())
    }

    /// Whether a TLS handshake is under way.
    pub(crate) fn is_handshaking(&self) -> bool {
        matches!(&self.inner, Inner::Tls(s) if s.conn.is_handshaking())
    }

    /// One socket write or read of the TLS handshake, within `wait`. A timeout is an error of
    /// kind `WouldBlock` or `TimedOut` ([`is_timeout`]); a refused certificate or a peer that
    /// does not speak TLS is `InvalidData` wrapping the `rustls::Error`.
    pub(crate) fn handshake_step(&mut self, wait: Wait) -> io::Result<()> {
        let Inner::Tls(s) = &mut self.inner else {
            return Err(lost_in_handshake());
        };
        if s.conn.wants_write() {
            return s.write_records(wait);
        }
        if !s.conn.is_handshaking() {
            return Ok(());
        }
        if s.read_records(wait)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection during the TLS handshake",
            ));
        }
        Ok(())
    }

    /// One read within `wait`: plaintext rustls already holds, else one socket read.
    pub(crate) fn read(&mut self, buf: &mut [u8], wait: Wait) -> io::Result<Got> {
        match &mut self.inner {
            Inner::Plain(tcp) => {
                let mut reader: &TcpStream = tcp;
                match within(tcp, Direction::Read, wait, || reader.read(buf))? {
                    0 => Ok(Got::Eof),
                    n => Ok(Got::Data(n)),
                }
            }
            Inner::Tls(s) => {
                if let Some(got) = s.plaintext(buf)? {
                    return Ok(got);
                }
                let n = s.read_records(wait)?;
                match s.plaintext(buf)? {
                    Some(got) => Ok(got),
                    None if n == 0 => Ok(Got::Eof),
                    None => Ok(Got::Partial),
                }
            }
            Inner::Broken => Err(lost_in_handshake()),
        }
    }

    /// Whether a read would find something now (bytes, the end of the stream, an error),
    /// without consuming it: plaintext or a `close_notify` rustls holds, else a look at the
    /// socket's buffer that does not wait. `None` when the socket cannot be asked.
    pub(crate) fn input_pending(&self) -> Option<bool> {
        let tcp = match &self.inner {
            Inner::Plain(tcp) => tcp,
            // rustls wants more from the socket unless it holds plaintext (or a close) already.
            Inner::Tls(s) if !s.conn.wants_read() => return Some(true),
            Inner::Tls(s) => &s.tcp,
            Inner::Broken => return Some(true),
        };
        match within(tcp, Direction::Read, Wait::NotAtAll, || {
            tcp.peek(&mut [0u8; 1])
        }) {
            // Bytes, or the end of the stream.
            Ok(_) => Some(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Some(false),
            // A reset or another error: a read would report it.
            Err(_) => Some(true),
        }
    }

    /// One write within `wait`. Returns how many bytes of `buf` were taken: at least one on a
    /// plain connection; under TLS either bytes taken into rustls (at most its buffer limit
    /// ahead of the socket), or 0 after one socket write of the records already waiting (see
    /// [`pending_tls`](Self::pending_tls)), which the caller sends before it is done.
    pub(crate) fn write(&mut self, buf: &[u8], wait: Wait) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(tcp) => {
                let mut writer: &TcpStream = tcp;
                match within(tcp, Direction::Write, wait, || writer.write(buf))? {
                    0 => Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the socket took nothing",
                    )),
                    n => Ok(n),
                }
            }
            Inner::Tls(s) if s.conn.wants_write() => s.write_records(wait).map(|()| 0),
            Inner::Tls(s) => s.conn.writer().write(buf),
            Inner::Broken => Err(lost_in_handshake()),
        }
    }

    /// Whether TLS records are still waiting for the socket.
    pub(crate) fn pending_tls(&self) -> bool {
        matches!(&self.inner, Inner::Tls(s) if s.conn.wants_write())
    }

    /// Close: a TLS `close_notify` and the records still waiting (best effort, within one
    /// second and within `wait` altogether, none of them with no wait left), then shut the
    /// socket.
    pub(crate) fn close(&mut self, wait: Wait) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(tcp) => tcp.shutdown(Shutdown::Both),
            Inner::Tls(s) => {
                let limit = match wait {
                    Wait::Forever => CLOSE_LIMIT,
                    Wait::For(left) => left.min(CLOSE_LIMIT),
                    Wait::NotAtAll => Duration::ZERO,
                };
                let until = std::time::Instant::now() + limit;
                s.conn.send_close_notify();
                while s.conn.wants_write() {
                    // Each write gets what is left of the one limit, not a limit of its own.
                    let left = until.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() || s.tcp.set_write_timeout(Some(left)).is_err() {
                        break;
                    }
                    if s.conn.write_tls(&mut s.tcp).is_err() {
                        break;
                    }
                }
                s.tcp.shutdown(Shutdown::Both)
            }
            Inner::Broken => Ok(()),
        }
    }
}

impl TlsStream {
    /// One socket write of waiting TLS records, within `wait`.
    fn write_records(&mut self, wait: Wait) -> io::Result<()> {
        let TlsStream { conn, tcp } = self;
        let mut writer: &TcpStream = tcp;
        match within(tcp, Direction::Write, wait, || conn.write_tls(&mut writer))? {
            0 => Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "the socket took nothing",
            )),
            _ => Ok(()),
        }
    }

    /// One socket read of TLS records within `wait`, processed at once: how many bytes came
    /// (0: the end of the stream). A record rustls refuses is `InvalidData`, after the alert it
    /// queued was sent (best effort).
    fn read_records(&mut self, wait: Wait) -> io::Result<usize> {
        let TlsStream { conn, tcp } = self;
        let mut reader: &TcpStream = tcp;
        let n = within(tcp, Direction::Read, wait, || conn.read_tls(&mut reader))?;
        if let Err(e) = self.conn.process_new_packets() {
            let _ = self.tcp.set_write_timeout(Some(CLOSE_LIMIT));
            let _ = self.conn.write_tls(&mut self.tcp);
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        Ok(n)
    }

    /// Plaintext rustls already holds, or the end of the stream; `None` when it needs more from
    /// the socket.
    fn plaintext(&mut self, buf: &mut [u8]) -> io::Result<Option<Got>> {
        match self.conn.reader().read(buf) {
            Ok(0) => Ok(Some(Got::Eof)),
            Ok(n) => Ok(Some(Got::Data(n))),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            // A server that closes without close_notify: for SMTP the end of the conversation
            // (every reply is self-delimiting, so no truncation goes unseen).
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some(Got::Eof)),
            Err(e) => Err(e),
        }
    }
}
