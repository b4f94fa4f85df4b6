//! [`Stream`]: a blocking `TcpStream`, plain or inside a rustls [`ClientConnection`], where
//! every system call is bounded by a limit the caller gives (the engine's next timer).
//!
//! rustls' `StreamOwned` is not used for reading and writing: its `read` loops over socket
//! reads until a whole TLS record has arrived, so a server that drips one byte at a time would
//! get the full limit again for each byte. Here each call makes at most one socket read or one
//! socket write, and the driver asks the engine for the time left before the next one.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use rustls::ClientConnection;
use rustls::pki_types::ServerName;
use smtp_rustls::{TlsConfig, server_name};

/// The longest a best-effort TLS `close_notify` may take when a connection is closed.
const CLOSE_LIMIT: Duration = Duration::from_secs(1);

/// What one bounded read produced.
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

enum Inner {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
    /// A failed TLS handshake consumed the socket.
    Broken,
}

struct TlsStream {
    conn: ClientConnection,
    tcp: TcpStream,
}

/// A connection to an SMTP server: TCP (`TCP_NODELAY` on), optionally TLS through rustls, with
/// the settings to upgrade it in place (STARTTLS).
pub struct Stream {
    inner: Inner,
    tls: Option<(TlsConfig, ServerName<'static>)>,
    peer: Option<SocketAddr>,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("peer", &self.peer)
            .field("tls_active", &self.is_tls())
            .finish_non_exhaustive()
    }
}

/// A limit for a socket call: `set_read_timeout` and `set_write_timeout` refuse zero.
fn positive(limit: Duration) -> Duration {
    limit.max(Duration::from_millis(1))
}

/// A socket timeout, as std reports it (`WouldBlock` on Unix, `TimedOut` on Windows).
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn broken() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the connection was lost in a failed TLS handshake",
    )
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
        let name = server_name(host)?;
        let mut stream = Stream::plain(tcp);
        stream.tls = Some((tls, name));
        Ok(stream)
    }

    /// True once TLS is established.
    pub fn is_tls(&self) -> bool {
        matches!(self.inner, Inner::Tls(_))
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
        let Some((config, name)) = self.tls.clone() else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this connection was opened without TLS settings",
            ));
        };
        let tcp = match std::mem::replace(&mut self.inner, Inner::Broken) {
            Inner::Plain(tcp) => tcp,
            Inner::Tls(tls) => {
                self.inner = Inner::Tls(tls);
                return Err(io::Error::other("TLS is already established"));
            }
            Inner::Broken => return Err(broken()),
        };
        let conn = ClientConnection::new(config.rustls_config(), name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.inner = Inner::Tls(Box::new(TlsStream { conn, tcp }));
        Ok(())
    }

    /// Whether a TLS handshake is under way.
    pub(crate) fn is_handshaking(&self) -> bool {
        matches!(&self.inner, Inner::Tls(s) if s.conn.is_handshaking())
    }

    /// One socket write or read of the TLS handshake, bounded by `limit`. A timeout is an
    /// error of kind `WouldBlock` or `TimedOut` ([`is_timeout`]); a refused certificate or a
    /// peer that does not speak TLS is `InvalidData` wrapping the `rustls::Error`.
    pub(crate) fn handshake_step(&mut self, limit: Duration) -> io::Result<()> {
        let Inner::Tls(s) = &mut self.inner else {
            return Err(broken());
        };
        if s.conn.wants_write() {
            return s.write_records(limit);
        }
        if !s.conn.is_handshaking() {
            return Ok(());
        }
        s.tcp.set_read_timeout(Some(positive(limit)))?;
        if s.conn.read_tls(&mut s.tcp)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection during the TLS handshake",
            ));
        }
        if let Err(e) = s.conn.process_new_packets() {
            // Tell the server why (the alert rustls queued), best effort.
            let _ = s.tcp.set_write_timeout(Some(CLOSE_LIMIT));
            let _ = s.conn.write_tls(&mut s.tcp);
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        Ok(())
    }

    /// One bounded read.
    pub(crate) fn read(&mut self, buf: &mut [u8], limit: Duration) -> io::Result<Got> {
        match &mut self.inner {
            Inner::Plain(tcp) => {
                tcp.set_read_timeout(Some(positive(limit)))?;
                match tcp.read(buf)? {
                    0 => Ok(Got::Eof),
                    n => Ok(Got::Data(n)),
                }
            }
            Inner::Tls(s) => {
                if let Some(got) = s.plaintext(buf)? {
                    return Ok(got);
                }
                s.tcp.set_read_timeout(Some(positive(limit)))?;
                let n = s.conn.read_tls(&mut s.tcp)?;
                if let Err(e) = s.conn.process_new_packets() {
                    let _ = s.tcp.set_write_timeout(Some(CLOSE_LIMIT));
                    let _ = s.conn.write_tls(&mut s.tcp);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
                match s.plaintext(buf)? {
                    Some(got) => Ok(got),
                    None if n == 0 => Ok(Got::Eof),
                    None => Ok(Got::Partial),
                }
            }
            Inner::Broken => Err(broken()),
        }
    }

    /// What has arrived without being asked for, without waiting: `None` when nothing has.
    /// Reads what is there (the caller closes the connection when anything was).
    pub(crate) fn poll_idle(&mut self, buf: &mut [u8]) -> io::Result<Option<Got>> {
        fn at_once<R>(tcp: &TcpStream, read: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
            tcp.set_nonblocking(true)?;
            let result = read();
            tcp.set_nonblocking(false)?;
            result
        }
        let would_block = |e: io::Error| match e.kind() {
            io::ErrorKind::WouldBlock => Ok(None),
            _ => Err(e),
        };
        match &mut self.inner {
            Inner::Plain(tcp) => {
                let mut reader: &TcpStream = tcp;
                match at_once(tcp, || reader.read(buf)) {
                    Ok(0) => Ok(Some(Got::Eof)),
                    Ok(n) => Ok(Some(Got::Data(n))),
                    Err(e) => would_block(e),
                }
            }
            Inner::Tls(s) => {
                if let Some(got) = s.plaintext(buf)? {
                    return Ok(Some(got));
                }
                let TlsStream { conn, tcp } = &mut **s;
                let mut reader: &TcpStream = tcp;
                match at_once(tcp, || conn.read_tls(&mut reader)) {
                    Ok(0) => return Ok(Some(Got::Eof)),
                    Ok(_) => {}
                    Err(e) => return would_block(e),
                }
                if s.conn.process_new_packets().is_err() {
                    return Ok(Some(Got::Partial));
                }
                Ok(Some(s.plaintext(buf)?.unwrap_or(Got::Partial)))
            }
            Inner::Broken => Ok(Some(Got::Eof)),
        }
    }

    /// One bounded socket write. Returns how many bytes of `buf` were taken: at least one,
    /// or 0 under TLS when the write sent records of bytes taken earlier (the caller tries
    /// again, with the time left). Under TLS bytes are taken into rustls (at most its buffer
    /// limit ahead of the socket) and their records written at once; the caller sends what is
    /// left with [`flush_step`](Self::flush_step) before it waits for a reply.
    pub(crate) fn write(&mut self, buf: &[u8], limit: Duration) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(tcp) => {
                tcp.set_write_timeout(Some(positive(limit)))?;
                match tcp.write(buf)? {
                    0 => Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the socket took nothing",
                    )),
                    n => Ok(n),
                }
            }
            Inner::Tls(s) => {
                if s.conn.wants_write() {
                    s.write_records(limit)?;
                    return Ok(0);
                }
                let n = s.conn.writer().write(buf)?;
                if s.conn.wants_write() {
                    s.write_records(limit)?;
                }
                Ok(n)
            }
            Inner::Broken => Err(broken()),
        }
    }

    /// Under TLS, one bounded socket write of the records still waiting (see
    /// [`pending_tls`](Self::pending_tls)).
    pub(crate) fn flush_step(&mut self, limit: Duration) -> io::Result<()> {
        match &mut self.inner {
            Inner::Tls(s) if s.conn.wants_write() => s.write_records(limit),
            _ => Ok(()),
        }
    }

    /// Whether TLS records are still waiting for the socket.
    pub(crate) fn pending_tls(&self) -> bool {
        matches!(&self.inner, Inner::Tls(s) if s.conn.wants_write())
    }

    /// Close: a TLS `close_notify` (best effort, within one second), then shut the socket.
    pub(crate) fn close(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(tcp) => tcp.shutdown(Shutdown::Both),
            Inner::Tls(s) => {
                s.conn.send_close_notify();
                let _ = s.tcp.set_write_timeout(Some(CLOSE_LIMIT));
                while s.conn.wants_write() {
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
    /// One socket write of waiting TLS records, bounded by `limit`.
    fn write_records(&mut self, limit: Duration) -> io::Result<()> {
        self.tcp.set_write_timeout(Some(positive(limit)))?;
        match self.conn.write_tls(&mut self.tcp)? {
            0 => Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "the socket took nothing",
            )),
            _ => Ok(()),
        }
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
