//! # smtp-io-std: a blocking SMTP client
//!
//! The [`smtp_proto`] engine driven over a blocking [`std::net::TcpStream`] (`TCP_NODELAY` on),
//! with implicit TLS or STARTTLS through rustls (`ring` provider): no async runtime, no tokio in
//! the dependency tree. For command-line tools, build scripts and servers without an event loop.
//! Its [`SmtpClient`] has the methods of the async client (`smtp_io_tokio::SmtpClient`) without
//! `.await`, and the same errors ([`SmtpError`], from the engine).
//!
//! ```no_run
//! use smtp_io_std::{SmtpError, connect_starttls};
//!
//! fn send() -> Result<(), SmtpError> {
//!     let mut client = connect_starttls("smtp.example.com", 587, "client.example.com")?;
//!     client.login("me@example.com", "app-password")?; // SCRAM-SHA-256(-PLUS), PLAIN, LOGIN
//!     let outcome = client.send_mail(
//!         "me@example.com",
//!         &["you@example.org"],
//!         "From: me@example.com\r\nTo: you@example.org\r\nSubject: hi\r\n\r\nHello!\r\n",
//!     )?;
//!     println!("queued as {:?}", outcome.queue_id);
//!     client.quit()
//! }
//! ```
//!
//! A whole session, run here against a tiny server on loopback (hidden lines start it in a
//! thread):
//!
//! ```
//! # use std::io::{BufRead, BufReader, Write};
//! # let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
//! # let port = listener.local_addr().unwrap().port();
//! # let server = std::thread::spawn(move || {
//! #     let (socket, _) = listener.accept().unwrap();
//! #     let mut out = socket.try_clone().unwrap();
//! #     let mut lines = BufReader::new(socket);
//! #     out.write_all(b"220 local ESMTP\r\n").unwrap();
//! #     let mut body = Vec::new();
//! #     let mut line = String::new();
//! #     while lines.read_line(&mut line).unwrap() > 0 {
//! #         let reply: &[u8] = match line.get(..4).unwrap_or("") {
//! #             "EHLO" => b"250-local\r\n250 8BITMIME\r\n",
//! #             "MAIL" | "RCPT" => b"250 ok\r\n",
//! #             "DATA" => {
//! #                 out.write_all(b"354 go\r\n").unwrap();
//! #                 loop {
//! #                     line.clear();
//! #                     lines.read_line(&mut line).unwrap();
//! #                     if line == ".\r\n" { break; }
//! #                     body.extend_from_slice(line.as_bytes());
//! #                 }
//! #                 b"250 2.0.0 queued as DOC1\r\n"
//! #             }
//! #             "QUIT" => { out.write_all(b"221 bye\r\n").unwrap(); break; }
//! #             _ => b"500 what\r\n",
//! #         };
//! #         out.write_all(reply).unwrap();
//! #         line.clear();
//! #     }
//! #     body
//! # });
//! use std::time::Duration;
//! use smtp_io_std::{ConnectOptions, TlsMode};
//!
//! let mut client = ConnectOptions::new(TlsMode::None) // loopback only: no TLS
//!     .with_reply_timeout(Duration::from_secs(10))
//!     .with_deadline(Duration::from_secs(30))
//!     .connect("127.0.0.1", port, "client.example")?;
//! let outcome = client.send_mail(
//!     "me@example.com",
//!     &["you@example.org"],
//!     "Subject: hi\r\n\r\n.a line starting with a dot\r\n",
//! )?;
//! assert_eq!(outcome.queue_id.as_deref(), Some("DOC1"));
//! client.quit()?;
//! # assert_eq!(server.join().unwrap(), b"Subject: hi\r\n\r\n..a line starting with a dot\r\n");
//! # Ok::<(), smtp_io_std::SmtpError>(())
//! ```
//!
//! A custom CA, timeouts, a deadline for the whole run, a policy: [`ConnectOptions`].
//!
//! ```no_run
//! use std::time::Duration;
//! use smtp_io_std::{ConnectOptions, TlsConfig, TlsMode};
//!
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut client = ConnectOptions::new(TlsMode::Implicit)
//!     .with_tls_config(TlsConfig::from_ca_file("relay-ca.pem")?)
//!     .with_connect_timeout(Duration::from_secs(10))
//!     .with_reply_timeout(Duration::from_secs(30))
//!     .with_deadline(Duration::from_secs(120))
//!     .connect("relay.internal", 465, "worker.example.com")?;
//! client.send_file("me@example.com", &["you@example.org"], "message.eml")?;
//! client.quit()?;
//! # Ok(()) }
//! ```
//!
//! ## How it runs
//!
//! [`SmtpClient`] is `smtp_proto`'s async driver, the one the tokio and WASI clients run, over
//! a blocking transport, each call polled to its end on the caller's thread with a waker that
//! does nothing: no runtime, and no thread of its own but for a name lookup (below). The
//! transport's futures do their blocking work in their first poll, so every protocol decision,
//! every wait and every error is the shared driver's and the engine's, the same as in the async
//! clients.
//!
//! ## Timeouts
//!
//! The engine keeps every clock: before each socket read, write or TLS upgrade the driver
//! gives the transport the engine's next timer ([`Transport::set_wait_limit`]), which bounds
//! each socket call as its timeout; when it passes, the engine's timer fires and the engine
//! says what it was ([`Session::handle_timeout`]). So each reply has its limit however many
//! reads it takes (a server dripping one byte at a time still times out), the body obeys the
//! write-progress rule, and the session deadline ([`ConnectOptions::with_deadline`]) counts
//! from before the TCP connect: the connect and an implicit-TLS handshake are bounded by
//! `smtp_proto::connect::ConnectClock`, like in every adapter. Under TLS each socket call is
//! bounded on its own too (rustls' `StreamOwned` would loop over reads until a whole record is
//! in). The DNS lookup is bounded too: `std` resolves names only with the system's blocking
//! resolver, so a name (never an IP address) is looked up on a short-lived thread of its own,
//! and a lookup that outlasts the connect step fails as the connect timeout. Closing a TLS
//! connection (its `close_notify`) gets what is left of the deadline, one second at most.
//!
//! What this client cannot bound is your own code: a [`ReaderBody`] reads with a blocking
//! [`Read::read`](std::io::Read::read), which no timer interrupts. A read that returns after
//! the deadline (or an owed reply's limit) finds the session failed, and none of its bytes go
//! out; a reader that may stall for longer than you can wait (a pipe, a network file) needs
//! its own timeout, or the body read into memory first.
//!
//! ## Proxies, a source address, client certificates
//!
//! [`ConnectOptions::with_proxy`] reaches the server through a SOCKS5 ([`Proxy::socks5`], with
//! a user and password when given) or HTTP CONNECT ([`Proxy::http`]) proxy, or
//! [`Proxy::parse`]`("socks5://user@proxy:1080")`; TLS still runs end to end with the SMTP
//! server, whose name the certificate must carry, and the proxy's handshake counts as part of
//! the connect. [`ConnectOptions::with_local_address`] picks the address to connect from. A
//! client certificate for mutual TLS goes in the [`TlsConfig`]
//! ([`TlsConfig::with_client_certificate_files`]).
//!
//! ## No pool
//!
//! There is no blocking pool here. A pool's value is in what it decides (when a connection is
//! reused, probed, retried), and the tokio `Mailer` already holds those rules; a second copy
//! behind a `Mutex`/`Condvar` would be a second place to keep them right. A blocking program
//! that sends from several threads can keep one client per thread, or one behind a
//! `Mutex<Option<SmtpClient>>`: [`SmtpClient::check_idle`] tells, without waiting, whether the
//! kept connection is still in step before it is used again, and [`SmtpClient::deliver`]
//! whether a failed message may be sent again on a new one ([`Delivery::is_retryable`]).
//!
//! ## Logging
//!
//! Give a [`TranscriptSink`] to [`ConnectOptions::with_transcript`] to see each command and
//! reply, with AUTH payloads redacted by the engine.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod block;
mod body;
mod client;
mod route;
mod stream;
mod transport;

use std::net::TcpStream;
use std::time::Duration;

use smtp_proto::connect::{ConnectClock, ConnectParts, ConnectSetting, ConnectSettings, Route};

pub use ::smtp_proto;
pub use ::smtp_proto::prelude::*;
pub use body::{ReaderBody, size_as_sent};
pub use client::SmtpClient;
pub use smtp_proto::Session;
pub use smtp_proto::connect::{Proxy, ProxyKind, ProxyUrlError};
pub use smtp_rustls::TlsConfig;
pub use stream::Stream;

use block::block_on;
use transport::{StdTransport, now};

/// How to open a connection: TLS mode and trust, connect timeout, and the engine's settings.
///
/// The defaults: certificates checked against `webpki-roots`, 30 s for the TCP connect and 30 s
/// for an implicit-TLS handshake, RFC 5321 reply timeouts, no deadline.
///
/// The settings every adapter shares, with the same names as `smtp-io-tokio`'s and
/// `smtp-io-wasm`'s (TLS mode, connect timeout, TLS server name, proxy, local address, the
/// client's options), come from [`smtp_proto::connect::ConnectSettings`]; the trust
/// ([`with_tls_config`](Self::with_tls_config), a client certificate with it) is this
/// crate's own. The engine's settings are the client's options ([`SmtpClientOptions`]): the
/// common ones have a method here, by the same name on every adapter, the rest go through
/// [`map_client_options`](Self::map_client_options) or, field by field of the
/// [`SessionConfig`], [`map_session_config`](Self::map_session_config).
#[derive(Debug)]
pub struct ConnectOptions {
    settings: ConnectSettings,
    tls: TlsConfig,
}

smtp_proto::connect_options! {
    ConnectOptions { tls: TlsConfig::default() }
}

impl ConnectOptions {
    smtp_rustls::tls_config_methods!();

    /// Connect to `host:port`, read the greeting, EHLO as `ehlo_domain`, and for
    /// [`TlsMode::StartTls`] upgrade and EHLO again. The client is then ready for `login` or
    /// `send_mail`.
    ///
    /// Errors: an invalid `ehlo_domain` before any I/O; a connect failure is
    /// [`SmtpError::Io`] during [`SmtpOp::Connect`] ([`SmtpError::Timeout`] when the connect
    /// timeout ran out, [`SmtpError::DeadlineExceeded`] when the deadline did; through a
    /// proxy, a refusal never shows the proxy's password); a bad certificate, or a server
    /// that does not speak TLS on an implicit-TLS port (the error then names the fix), is
    /// [`SmtpError::Io`] during [`SmtpOp::TlsHandshake`].
    pub fn connect(
        self,
        host: &str,
        port: u16,
        ehlo_domain: &str,
    ) -> Result<SmtpClient, SmtpError> {
        self.open(ehlo_domain, host, &[], Some(port), |clock, route, limit| {
            connect_tcp(clock, route, host, port, limit)
        })
    }

    /// Run the session on a TCP connection the caller opened (its own socket options, a
    /// route of its own): the TLS handshake for [`TlsMode::Implicit`], the greeting, EHLO, and
    /// STARTTLS for [`TlsMode::StartTls`], with these options. The certificate is checked for
    /// `server_name` (or the name set with [`with_tls_server_name`](Self::with_tls_server_name));
    /// the deadline counts from this call. The socket is put in blocking mode (this client's
    /// waits are blocking calls). Options with a proxy or a local address are refused
    /// ([`SmtpError::InvalidInput`], before any I/O): the socket is already connected, so
    /// neither could be honoured.
    pub fn connect_on(
        self,
        tcp: TcpStream,
        server_name: &str,
        ehlo_domain: &str,
    ) -> Result<SmtpClient, SmtpError> {
        // The caller's socket is its own route. It is put in blocking mode: every wait of this
        // client is a blocking call bounded by a socket timeout, and a non-blocking socket
        // would turn each into a loop that spins a core until the server answers.
        let route = [ConnectSetting::Proxy, ConnectSetting::LocalAddress];
        self.open(ehlo_domain, server_name, &route, None, |_, _, _| {
            tcp.set_nonblocking(false)
                .map_err(|e| SmtpError::io(SmtpOp::Connect, e.kind(), e.to_string()))?;
            Ok(tcp)
        })
    }

    /// Before any I/O, the EHLO name, the destination (`name` at `port`, when this call dials)
    /// and the TLS server name checked, and the clock started (the session's deadline covers
    /// the connect and the TLS handshake too); then the TCP connection from `tcp`, TLS for
    /// `name` (unless a server name is set), and the session.
    fn open(
        self,
        ehlo_domain: &str,
        name: &str,
        unsupported: &[ConnectSetting],
        port: Option<u16>,
        tcp: impl FnOnce(&ConnectClock, &Route, Duration) -> Result<TcpStream, SmtpError>,
    ) -> Result<SmtpClient, SmtpError> {
        let ConnectOptions { settings, tls } = self;
        let (clock, parts) = settings.start::<StdTransport>(ehlo_domain)?;
        parts.refuse(unsupported)?;
        if let Some(port) = port {
            parts.check_destination(name, port)?;
        }
        // Every shared setting is honoured here: destructured whole, a new one cannot be
        // missed.
        let ConnectParts {
            mode,
            connect_timeout,
            tls_server_name,
            route,
            client,
        } = parts;
        let name = tls_server_name.as_deref().unwrap_or(name);
        if mode != TlsMode::None {
            smtp_rustls::check_server_name(name)?;
        }
        let tcp = tcp(&clock, &route, connect_timeout)?;
        let transport = secure(mode, tcp, name, tls, &clock, connect_timeout)?;
        SmtpClient::open(transport, mode, ehlo_domain, client)
    }
}

/// How early a socket call bounded by a time may give up, by the clock's rounding.
const TIMER_SLACK: Duration = Duration::from_millis(10);

/// The TCP connect (through the proxy, if any) within the step's bound.
fn connect_tcp(
    clock: &ConnectClock,
    route: &Route,
    host: &str,
    port: u16,
    limit: Duration,
) -> Result<TcpStream, SmtpError> {
    let step = now();
    let (left, expired) = clock.bound(step, SmtpOp::Connect, limit);
    match route::connect(route, host, port, route::Until(step + left)) {
        Ok(tcp) => {
            let _ = tcp.set_nodelay(true);
            Ok(tcp)
        }
        // The bound ran out; a proxy's own refusal of kind `TimedOut` (SOCKS5 "TTL expired")
        // arrives before it and keeps its reason, as on every adapter.
        Err(e) if stream::is_timeout(&e) && now() + TIMER_SLACK >= step + left => Err(expired),
        Err(e) => Err(SmtpError::io(
            SmtpOp::Connect,
            e.kind(),
            format!("{host}:{port}: {e}"),
        )),
    }
}

/// The socket as the transport `mode` needs: plain, ready to upgrade (STARTTLS, which the
/// session runs), or past its implicit-TLS handshake, which is bounded by `limit` and what is
/// left of the deadline (a plaintext server's greeting explained as the 465/587 mix-up it is).
fn secure(
    mode: TlsMode,
    tcp: TcpStream,
    name: &str,
    tls: TlsConfig,
    clock: &ConnectClock,
    limit: Duration,
) -> Result<StdTransport, SmtpError> {
    let during = match mode {
        TlsMode::None => return Ok(StdTransport::new(Stream::plain(tcp))),
        TlsMode::StartTls => SmtpOp::StartTls,
        TlsMode::Implicit => SmtpOp::TlsHandshake,
    };
    let stream = Stream::with_tls(tcp, name, tls)
        .map_err(|e| SmtpError::io(during, e.kind(), e.to_string()))?;
    let mut transport = StdTransport::new(stream);
    if mode == TlsMode::StartTls {
        return Ok(transport);
    }
    // The handshake's socket calls end when the step does; `step` then sees its timer due.
    let at = now();
    let (left, _) = clock.bound(at, SmtpOp::TlsHandshake, limit);
    transport.set_wait_limit(Some((at + left).as_duration()));
    let handshake = async {
        let done = transport.upgrade_to_tls().await;
        done.map_err(smtp_rustls::explain_handshake_error)
    };
    let step = clock.step::<StdTransport, _>(SmtpOp::TlsHandshake, limit, handshake);
    match block_on(step) {
        Ok(()) => Ok(transport),
        Err(e) => {
            let _ = block_on(transport.close());
            Err(e)
        }
    }
}

smtp_proto::connect_functions!(blocking ConnectOptions => SmtpClient);
