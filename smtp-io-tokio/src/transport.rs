//! [`TokioTransport`]: a tokio TCP stream, plain or inside rustls, that can upgrade in place.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::ServerName;
use smtp_proto::{StartTlsCapable, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::tls::{TlsConfig, server_name};

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// A failed upgrade consumed the socket.
    Broken,
}

/// A connection to an SMTP server over tokio: TCP with `TCP_NODELAY`, optionally TLS (rustls).
///
/// It implements [`Transport`] (read, write and flush, close, tokio's timer) and
/// [`StartTlsCapable`] (upgrade the same socket to TLS, verifying the certificate against the
/// [`TlsConfig`] and the host name it was given).
pub struct TokioTransport {
    stream: Stream,
    tls: Option<(TlsConfig, ServerName<'static>)>,
    peer: Option<SocketAddr>,
}

impl fmt::Debug for TokioTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokioTransport")
            .field("peer", &self.peer)
            .field("tls_active", &self.is_tls())
            .finish_non_exhaustive()
    }
}

/// Resolve `host` and open a TCP connection to the first address that answers, within `timeout`
/// overall, with Nagle's algorithm off.
pub(crate) async fn tcp_connect(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let attempt = async {
        let mut last = None;
        for addr in tokio::net::lookup_host((host, port)).await? {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} has no address to connect to"),
            )
        }))
    };
    let stream = tokio::time::timeout(timeout, attempt).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("connecting to {host}:{port} took longer than {timeout:?}"),
        )
    })??;
    // Without this every command that fits in one segment waits for the previous ACK
    // (~40 ms per round trip on loopback with delayed ACKs).
    stream.set_nodelay(true)?;
    Ok(stream)
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
        let name = server_name(host)?;
        let mut transport = TokioTransport::plain(stream);
        transport.tls = Some((tls, name));
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
        matches!(self.stream, Stream::Tls(_))
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

    async fn handshake(&mut self) -> io::Result<()> {
        let Some((config, name)) = self.tls.clone() else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this connection was opened without TLS settings",
            ));
        };
        let tcp = match std::mem::replace(&mut self.stream, Stream::Broken) {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => {
                self.stream = Stream::Tls(tls);
                return Err(io::Error::other("TLS is already established"));
            }
            Stream::Broken => return Err(broken()),
        };
        let connector = TlsConnector::from(config.rustls_config());
        let tls = connector.connect(name, tcp).await?;
        self.stream = Stream::Tls(Box::new(tls));
        Ok(())
    }
}

fn broken() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the connection was lost in a failed TLS handshake",
    )
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
            Stream::Broken => Err(broken()),
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
            Stream::Broken => Err(broken()),
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
        tokio::time::sleep(duration)
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
        let conn = s.get_ref().1;
        if conn.protocol_version()? != rustls::ProtocolVersion::TLSv1_3 {
            return None;
        }
        conn.export_keying_material([0u8; 32], smtp_proto::sasl::TLS_EXPORTER_LABEL, Some(&[]))
            .ok()
    }
}

impl StartTlsCapable for TokioTransport {
    async fn upgrade_to_tls(&mut self) -> io::Result<()> {
        self.handshake().await
    }
}
