//! [`WorkersTransport`]: a `cloudflare:sockets` socket as the client's [`Transport`]: opening
//! it (directly or through a proxy), reading and writing, the in-place TLS upgrade.

use core::future::Future;
use core::time::Duration;
use std::fmt;
use std::io;

use js_sys::Uint8Array;
use smtp_proto::connect::{ProxyHandshake, open_tunnel};
use smtp_proto::future::{Either, race};
use smtp_proto::{StartTlsCapable, Transport};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

use crate::TlsMode;
use crate::connect::Route;
use crate::streams::{Streams, settle_quietly};
use crate::sys::{self, Socket};
use crate::timer::sleep;

/// A connection to an SMTP server from a Cloudflare Worker: a socket from `connect()` of
/// `cloudflare:sockets`, plain, TLS from the start (`secureTransport: "on"`), or plain with a
/// later in-place upgrade (`secureTransport: "starttls"`).
///
/// It implements [`Transport`] (read, write, close, and the timer: [`Sleep`](crate::Sleep), a `setTimeout`
/// promise) and [`StartTlsCapable`] (the socket's `startTls()`). The runtime checks the server's
/// certificate against the platform's roots and the host name that was dialled (or, when the
/// connect helpers were given a TLS server name or a proxy, the name passed to `startTls()` as
/// `expectedServerHostname`: the TLS server name, else the SMTP server's host, never the
/// proxy's); there is no way to turn that off, and none is needed.
///
/// Reads are cancel-safe: a read dropped by a timeout keeps its promise, and the next read picks
/// up its result. A read never hands out more than the buffer it was given; the rest of a chunk
/// stays buffered for the next read (so a proxy handshake takes no byte of the tunnel).
pub struct WorkersTransport {
    streams: Option<Streams>,
    mode: TlsMode,
    /// Opened with `secureTransport: "starttls"`: `startTls()` may upgrade it (once).
    upgradable: bool,
    upgraded: bool,
    host: String,
    port: u16,
    /// Given to `startTls()` as `expectedServerHostname`; `None`: the name dialled.
    tls_name: Option<String>,
    /// The proxy's host and port, when the connection goes through one.
    proxy: Option<(String, u16)>,
}

impl fmt::Debug for WorkersTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("WorkersTransport");
        d.field("host", &self.host)
            .field("port", &self.port)
            .field("mode", &self.mode)
            .field("tls_active", &self.is_tls());
        if let Some(name) = &self.tls_name {
            d.field("tls_server_name", name);
        }
        if let Some((host, port)) = &self.proxy {
            // Host and port only: the proxy's credentials are not kept here.
            d.field("proxy", &format_args!("{host}:{port}"));
        }
        d.finish_non_exhaustive()
    }
}

fn broken() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the socket is closed (or was lost in a failed TLS upgrade)",
    )
}

impl WorkersTransport {
    /// Open a socket to `host:port` with `connect()` and wait until it is open.
    /// [`TlsMode::Implicit`] opens it with `secureTransport: "on"`, [`TlsMode::StartTls`] with
    /// `"starttls"` (so that [`StartTlsCapable::upgrade_to_tls`] can upgrade it),
    /// [`TlsMode::None`] with `"off"`. Not bounded in time: race it with [`sleep`] (the connect
    /// helpers do).
    ///
    /// This does not check the port: the connect helpers refuse port 25 before calling it.
    ///
    /// With implicit TLS, a certificate the runtime does not trust is reported by the first read
    /// or write, not here: the socket opens before the handshake.
    pub async fn open(host: &str, port: u16, mode: TlsMode) -> io::Result<WorkersTransport> {
        WorkersTransport::open_routed(host, port, mode, None, &Route::default()).await
    }

    /// Open a connection to the SMTP server `host:port` the way `route` says, for the connect
    /// helpers:
    /// - direct, without `server_name`: as [`open`](Self::open) (the socket opened with
    ///   `secureTransport` `"on"`, `"starttls"` or `"off"`);
    /// - through `route.proxy`: a socket to the proxy (`"starttls"` for implicit TLS and
    ///   STARTTLS, `"off"` without TLS), then the tunnel to `host:port`
    ///   ([`open_tunnel`], SOCKS5 or HTTP CONNECT);
    /// - with implicit TLS and a `server_name` or a proxy: upgraded with `startTls()` at once,
    ///   before any SMTP byte.
    ///
    /// Whenever `startTls()` is called (here, or later for STARTTLS), the certificate is checked
    /// for `server_name`, else, through a proxy, for `host`: never for the proxy's name.
    /// A `route.local_address` is refused (`Unsupported`, before any I/O): Workers sockets
    /// cannot choose one (the connect helpers refuse it earlier).
    ///
    /// Errors are `io::Error`s: a `host` the proxy's request cannot carry (`InvalidInput`,
    /// before any I/O), "cannot reach the proxy host:port: ..." when the proxy cannot be
    /// reached, the proxy's refusal (see `ProxyHandshake`; its password is in none), a failed
    /// `connect()` or `startTls()`. Unbounded in time: the caller bounds it.
    pub(crate) async fn open_routed(
        host: &str,
        port: u16,
        mode: TlsMode,
        server_name: Option<&str>,
        route: &Route,
    ) -> io::Result<WorkersTransport> {
        if route.local_address.is_some() {
            // The connect helpers refuse it before any I/O; refused here too, never ignored.
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "Workers sockets cannot choose the local address a connection leaves from",
            ));
        }
        let proxy = route.proxy.as_ref();
        if let Some(proxy) = proxy {
            // Refused before any I/O: a host the proxy's request cannot carry (open_tunnel
            // builds the request again; this copy is wiped when dropped).
            drop(ProxyHandshake::new(proxy, host, port)?);
        }
        let bare = |name: &str| Route::dial_host(name).to_owned();
        // The name the certificate is checked for, when the runtime must be told: a TLS server
        // name, or through a proxy the SMTP server's host (the socket is the proxy's).
        let tls_name = match (server_name, proxy) {
            (Some(name), _) => Some(bare(name)),
            (None, Some(_)) => Some(bare(host)),
            (None, None) => None,
        };
        // Implicit TLS checked for another name than the one dialled: upgraded at once below.
        let upgrade_now = mode == TlsMode::Implicit && tls_name.is_some();
        let secure = match mode {
            TlsMode::Implicit if upgrade_now => "starttls",
            TlsMode::Implicit => "on",
            TlsMode::StartTls => "starttls",
            TlsMode::None => "off",
        };
        let streams = match proxy {
            None => {
                open_socket(host, port, secure, &|| {
                    format!("connecting to {host}:{port}")
                })
                .await?
            }
            Some(proxy) => {
                let (phost, pport) = (proxy.host(), proxy.port());
                open_socket(phost, pport, secure, &|| {
                    format!("cannot reach the proxy {phost}:{pport}")
                })
                .await?
            }
        };
        let mut transport = WorkersTransport {
            streams: Some(streams),
            mode,
            upgradable: secure == "starttls",
            upgraded: false,
            host: host.to_owned(),
            port,
            tls_name,
            proxy: proxy.map(|p| (p.host().to_owned(), p.port())),
        };
        if let Some(proxy) = proxy {
            if let Err(e) = open_tunnel(&mut transport, proxy, host, port).await {
                transport.abort();
                return Err(e);
            }
        }
        if upgrade_now {
            if let Err(e) = transport.start_tls().await {
                transport.abort();
                return Err(e);
            }
        }
        Ok(transport)
    }

    /// Close the socket without waiting (a failed open, or the transport dropped unclosed).
    fn abort(&mut self) {
        if let Some(Streams {
            socket,
            reader,
            writer,
        }) = self.streams.take()
        {
            reader.release();
            let _ = writer.release_lock();
            close_quietly(&socket);
        }
    }

    /// True once the connection is encrypted (implicit TLS, or after a STARTTLS upgrade).
    pub fn is_tls(&self) -> bool {
        (self.mode == TlsMode::Implicit && !self.upgradable) || self.upgraded
    }

    /// The mode the socket was opened with.
    pub fn mode(&self) -> TlsMode {
        self.mode
    }

    /// The SMTP server's host and port, as dialled (through a proxy: the tunnel's end, not the
    /// proxy).
    pub fn peer(&self) -> (&str, u16) {
        (&self.host, self.port)
    }
}

/// `connect()` to `hostname:port` with `secureTransport: secure`, waiting until the socket is
/// open; `context()` starts every error's text.
async fn open_socket(
    hostname: &str,
    port: u16,
    secure: &str,
    context: &dyn Fn() -> String,
) -> io::Result<Streams> {
    let hostname = Route::dial_host(hostname);
    let address = sys::object(&[
        ("hostname", JsValue::from_str(hostname)),
        ("port", JsValue::from_f64(f64::from(port))),
    ]);
    let options = sys::object(&[
        ("secureTransport", JsValue::from_str(secure)),
        ("allowHalfOpen", JsValue::FALSE),
    ]);
    let socket = sys::connect(&address, &options).map_err(|e| sys::io_error(&context(), &e))?;
    // Closed on every way out but success, this future dropped (the connect timeout) included.
    let opening = Opening(Some(socket.clone()));
    let opened = socket.opened().map_err(|e| sys::io_error(&context(), &e))?;
    JsFuture::from(opened)
        .await
        .map_err(|e| sys::io_error(&context(), &e))?;
    let streams = Streams::of(socket)?;
    opening.keep();
    Ok(streams)
}

/// A socket being opened or upgraded, closed when this is dropped unless it is kept: an open
/// cut short (its future dropped at the connect timeout, or an error) leaves no socket open for
/// the rest of the invocation.
struct Opening(Option<Socket>);

impl Opening {
    /// The open succeeded: the socket is the transport's now.
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for Opening {
    fn drop(&mut self) {
        if let Some(socket) = self.0.take() {
            close_quietly(&socket);
        }
    }
}

/// Close a socket without waiting, swallowing its result.
fn close_quietly(socket: &Socket) {
    if let Ok(p) = socket.close() {
        settle_quietly(p);
    }
}

/// A transport dropped without [`Transport::close`] (a client dropped without `quit`, an open
/// cut short by a timeout) closes its socket: it would otherwise stay open, its streams locked,
/// until the invocation ends.
impl Drop for WorkersTransport {
    fn drop(&mut self) {
        self.abort();
    }
}

impl Transport for WorkersTransport {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let streams = self.streams.as_mut().ok_or_else(broken)?;
        streams.reader.read(buf, "from the socket").await
    }

    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let streams = self.streams.as_mut().ok_or_else(broken)?;
        if buf.is_empty() {
            return Ok(());
        }
        // A copy: the write completes later, and the wasm memory may move under a view.
        let chunk = Uint8Array::from(buf);
        let promise = streams
            .writer
            .write(&chunk)
            .map_err(|e| sys::io_error("writing to the socket", &e))?;
        JsFuture::from(promise)
            .await
            .map(drop)
            .map_err(|e| sys::io_error("writing to the socket", &e))
    }

    async fn close(&mut self) -> io::Result<()> {
        let Some(streams) = self.streams.take() else {
            return Ok(());
        };
        let Streams {
            socket,
            reader,
            writer,
        } = streams;
        reader.release();
        let _ = writer.release_lock();
        let promise = socket
            .close()
            .map_err(|e| sys::io_error("closing the socket", &e))?;
        match race(JsFuture::from(promise), sleep(Duration::from_secs(5))).await {
            Either::Left(Ok(_)) | Either::Right(()) => Ok(()),
            Either::Left(Err(e)) => Err(sys::io_error("closing the socket", &e)),
        }
    }

    fn sleep(duration: Duration) -> impl Future<Output = ()> {
        sleep(duration)
    }

    fn is_encrypted(&self) -> bool {
        self.is_tls()
    }

    /// `Date.now()`: the Workers runtime's clock (it moves on across I/O, which is what the
    /// deadline measures).
    fn now() -> Duration {
        Duration::from_secs_f64(js_sys::Date::now().max(0.0) / 1000.0)
    }

    /// Web Crypto's `crypto.getRandomValues` (the Workers runtime's CSPRNG), 65536 bytes a call.
    /// There is no `tls_exporter`: Workers sockets do not expose TLS keying material, so
    /// SCRAM-SHA-256-PLUS is never used here (SCRAM-SHA-256 is).
    fn fill_random(&self, buf: &mut [u8]) -> io::Result<()> {
        for chunk in buf.chunks_mut(65536) {
            sys::get_random_values(chunk)
                .map_err(|e| sys::io_error("crypto.getRandomValues", &e))?;
        }
        Ok(())
    }
}

impl StartTlsCapable for WorkersTransport {
    /// Upgrade with the socket's `startTls()` (with `expectedServerHostname` when the connect
    /// helpers were given a TLS server name or a proxy). Refused (and the transport left as it
    /// was) when the socket was not opened for STARTTLS, when TLS is already on, or when bytes
    /// arrived after the server's `220` (they would be silently dropped by the upgrade: a
    /// response injection, refused instead; through a proxy too, as the tunnel's handshake
    /// leaves nothing buffered).
    async fn upgrade_to_tls(&mut self) -> io::Result<()> {
        if self.mode != TlsMode::StartTls {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this socket was not opened for STARTTLS (secureTransport: \"starttls\")",
            ));
        }
        self.start_tls().await
    }
}

impl WorkersTransport {
    /// The upgrade itself: `startTls()`, or `startTls({ expectedServerHostname })` with a
    /// name. For STARTTLS, and for implicit TLS opened as `"starttls"` (a TLS server name or a
    /// proxy), before any SMTP byte. Refused, the transport left as it was, when bytes are
    /// buffered (they came before the handshake and would be lost) or a read is pending; on a
    /// failure of `startTls()` itself the socket is closed.
    async fn start_tls(&mut self) -> io::Result<()> {
        if !self.upgradable {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this socket was not opened for STARTTLS (secureTransport: \"starttls\")",
            ));
        }
        if self.upgraded {
            return Err(io::Error::other("TLS is already established"));
        }
        let streams = self.streams.as_ref().ok_or_else(broken)?;
        let residue = streams.reader.buffered();
        if residue > 0 {
            let when = if self.mode == TlsMode::StartTls {
                "after the STARTTLS reply"
            } else {
                "from the server"
            };
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{residue} byte(s) arrived {when}, before the TLS handshake \
                     (possible response injection)"
                ),
            ));
        }
        if streams.reader.read_in_flight() {
            // Its result could be plaintext from before the upgrade; the engine never leaves a
            // read pending here, so this is a driver bug, reported instead of guessed at.
            return Err(io::Error::other(
                "a read was still pending when the TLS upgrade was asked for",
            ));
        }
        let Some(Streams {
            socket,
            reader,
            writer,
        }) = self.streams.take()
        else {
            return Err(broken());
        };
        // startTls() detaches both streams: their locks must be free.
        reader.release();
        let _ = writer.release_lock();
        let started = match &self.tls_name {
            // Without a name, called as it always was: the certificate is checked for the name
            // dialled.
            None => socket.start_tls(),
            Some(name) => {
                let options = sys::object(&[("expectedServerHostname", JsValue::from_str(name))]);
                socket.start_tls_with(&options)
            }
        };
        let tls = match started {
            Ok(tls) => tls,
            Err(e) => {
                close_quietly(&socket);
                return Err(sys::io_error("starting TLS", &e));
            }
        };
        // Closed on every way out but success, this future dropped (a timeout) included.
        let opening = Opening(Some(tls.clone()));
        let streams = Streams::of(tls.clone())?;
        // Await the TLS socket's `opened` so that a failure it reports lands on this call. In
        // workerd it can settle before the handshake ends: a certificate it does not trust then
        // fails the first write after the upgrade (the second EHLO), or with implicit TLS the
        // greeting's read (which then sees the connection closed). The client bounds this call
        // with the command timeout (for implicit TLS, the connect step's).
        let opened = tls
            .opened()
            .map_err(|e| sys::io_error("the TLS handshake", &e))?;
        JsFuture::from(opened)
            .await
            .map_err(|e| sys::io_error("the TLS handshake", &e))?;
        opening.keep();
        self.streams = Some(streams);
        self.upgraded = true;
        Ok(())
    }
}
