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
//! does nothing: no runtime, no thread of its own. The transport's futures do their blocking
//! work in their first poll, so every protocol decision, every wait and every error is the
//! shared driver's and the engine's, the same as in the async clients.
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
//! `smtp_proto::client::ConnectClock`, like in every adapter. Under TLS each socket call is
//! bounded on its own too (rustls' `StreamOwned` would loop over reads until a whole record is
//! in). The one wait nothing bounds is the DNS lookup: `std` resolves names with the system's
//! blocking resolver, which has its own timeouts.
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
mod options;
mod route;
mod stream;
mod transport;

use std::net::{IpAddr, TcpStream};
use std::time::Duration;

use smtp_proto::client::ConnectClock;
use smtp_proto::command::Domain;

pub use ::smtp_proto;
pub use ::smtp_proto::prelude::*;
pub use body::{ReaderBody, size_as_sent};
pub use client::SmtpClient;
pub use smtp_proto::Session;
pub use smtp_proto::client::{Proxy, ProxyKind, ProxyUrlError};
pub use smtp_rustls::TlsConfig;
pub use stream::Stream;

use block::block_on;
use transport::{StdTransport, now};

/// How to open a connection: TLS mode and trust, connect timeout, and the engine's settings.
///
/// The defaults: certificates checked against `webpki-roots`, 30 s for the TCP connect and 30 s
/// for an implicit-TLS handshake, RFC 5321 reply timeouts, no deadline.
///
/// The engine's settings are a [`SessionConfig`] (every knob of
/// [`SmtpClientOptions`], the async driver's options,
/// is one of its fields): the common ones have a method here, the rest go through
/// [`map_session_config`](Self::map_session_config).
#[derive(Debug)]
pub struct ConnectOptions {
    mode: TlsMode,
    tls: TlsConfig,
    connect_timeout: Duration,
    tls_server_name: Option<String>,
    route: route::Route,
    config: SessionConfig,
    message: MessageOptions,
    read_buffer: usize,
}

impl ConnectOptions {
    /// Defaults for `mode`.
    pub fn new(mode: TlsMode) -> ConnectOptions {
        ConnectOptions {
            mode,
            tls: TlsConfig::default(),
            connect_timeout: Duration::from_secs(30),
            tls_server_name: None,
            route: route::Route::default(),
            config: SessionConfig::default(),
            message: MessageOptions::default(),
            read_buffer: 8 * 1024,
        }
    }

    /// Options from a connection URL ([`SmtpUrl`]): its TLS mode, LMTP, reply timeout, connect
    /// timeout and deadline. Its host, port, EHLO name and credentials are for
    /// [`connect_url`].
    pub fn from_url(url: &SmtpUrl) -> ConnectOptions {
        let protocol = url.protocol;
        let mut options =
            ConnectOptions::new(url.tls).map_session_config(|c| c.protocol = protocol);
        if let Some(limit) = url.timeout {
            options = options.with_reply_timeout(limit);
        }
        if let Some(limit) = url.connect_timeout {
            options = options.with_connect_timeout(limit);
        }
        if let Some(limit) = url.deadline {
            options = options.with_deadline(limit);
        }
        options
    }

    /// Which certificates to trust (and a client certificate to present, see
    /// [`TlsConfig::with_client_certificate_files`]).
    pub fn with_tls_config(mut self, tls: TlsConfig) -> ConnectOptions {
        self.tls = tls;
        self
    }

    /// The longest the TCP connect may take, and then the longest an implicit-TLS handshake
    /// may take (each also bounded by what is left of the deadline).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> ConnectOptions {
        self.connect_timeout = timeout;
        self
    }

    /// Check the certificate for this name instead of the host dialled.
    pub fn with_tls_server_name(mut self, name: impl Into<String>) -> ConnectOptions {
        self.tls_server_name = Some(name.into());
        self
    }

    /// Reach the server through this proxy (SOCKS5 or HTTP CONNECT). TLS still runs end to end
    /// with the SMTP server, and its certificate is checked for the SMTP server's name. The
    /// proxy's handshake is part of the connect (its timeout and the deadline); a refusal is
    /// [`SmtpError::Io`] during [`SmtpOp::Connect`], which never shows the proxy's password.
    pub fn with_proxy(mut self, proxy: Proxy) -> ConnectOptions {
        self.route.proxy = Some(proxy);
        self
    }

    /// Connect from this local address; with a proxy, the connection to the proxy starts
    /// from it.
    pub fn with_local_address(mut self, address: IpAddr) -> ConnectOptions {
        self.route.local_address = Some(address);
        self
    }

    /// The engine's settings, replacing the ones set so far.
    pub fn with_session_config(mut self, config: SessionConfig) -> ConnectOptions {
        self.config = config;
        self
    }

    /// Change the engine's settings in place (any field of [`SessionConfig`]; for now
    /// [`max_bdat_in_flight`](SessionConfig::max_bdat_in_flight) and
    /// [`bdat_chunk_size`](SessionConfig::bdat_chunk_size) must keep their defaults: the
    /// driver's options cannot carry them yet, and `connect` refuses them rather than drop
    /// them).
    pub fn map_session_config(mut self, f: impl FnOnce(&mut SessionConfig)) -> ConnectOptions {
        f(&mut self.config);
        self
    }

    /// Wait limits by phase ([`Timeouts`]); keeps nothing of the earlier ones.
    pub fn with_timeouts(self, timeouts: Timeouts) -> ConnectOptions {
        self.map_session_config(|c| c.timeouts = timeouts)
    }

    /// The same limit for every wait on a server reply, keeping the deadline and the
    /// write-progress rule.
    pub fn with_reply_timeout(self, limit: Duration) -> ConnectOptions {
        self.map_session_config(|c| c.timeouts = c.timeouts.with_reply_limit(limit))
    }

    /// A deadline for the whole run: TCP connect, TLS handshake, the SMTP session up to the end
    /// of QUIT. Past it every call fails with [`SmtpError::DeadlineExceeded`] and the
    /// connection is closed.
    pub fn with_deadline(self, limit: Duration) -> ConnectOptions {
        self.map_session_config(|c| c.timeouts.total = Some(limit))
    }

    /// Allow AUTH without TLS: the password then crosses the network readable. Without it,
    /// `login*` on a [`TlsMode::None`] connection fails with [`AuthError::PlaintextRefused`]
    /// before anything is sent.
    pub fn allow_plaintext_auth(self) -> ConnectOptions {
        self.map_session_config(|c| c.plaintext_auth = PlaintextAuth::Allow)
    }

    /// Check every message with this policy before sending.
    pub fn with_policy(self, policy: Box<dyn Policy>) -> ConnectOptions {
        self.map_session_config(|c| c.policy = policy)
    }

    /// Send audit events to this sink.
    pub fn with_audit_sink(self, sink: Box<dyn AuditSink>) -> ConnectOptions {
        self.map_session_config(|c| c.audit = sink)
    }

    /// Send a redacted transcript (one line per command and reply) to this sink.
    pub fn with_transcript(self, sink: Box<dyn TranscriptSink>) -> ConnectOptions {
        self.map_session_config(|c| c.transcript = Some(sink))
    }

    /// What to do when some recipients are refused (default: send nothing unless all are
    /// accepted).
    pub fn with_recipient_policy(self, policy: RecipientPolicy) -> ConnectOptions {
        self.map_session_config(|c| c.recipient_policy = policy)
    }

    /// Speak LMTP (RFC 2033) instead of SMTP.
    pub fn with_protocol(self, protocol: Protocol) -> ConnectOptions {
        self.map_session_config(|c| c.protocol = protocol)
    }

    /// Whether to pipeline when the server offers PIPELINING.
    pub fn with_pipelining(self, mode: ExtensionUse) -> ConnectOptions {
        self.map_session_config(|c| c.pipelining = mode)
    }

    /// Whether to use BDAT when the server offers CHUNKING.
    pub fn with_chunking(self, mode: ExtensionUse) -> ConnectOptions {
        self.map_session_config(|c| c.chunking = mode)
    }

    /// Default per-message options (DSN, REQUIRETLS, ...), used by every `send_mail*` call.
    pub fn with_message_options(mut self, options: MessageOptions) -> ConnectOptions {
        self.message = options;
        self
    }

    /// Size of the read buffer (default 8 KiB, at least 512 bytes).
    pub fn with_read_buffer(mut self, bytes: usize) -> ConnectOptions {
        self.read_buffer = bytes.max(512);
        self
    }

    /// Connect to `host:port`, read the greeting, EHLO as `ehlo_domain`, and for
    /// [`TlsMode::StartTls`] upgrade and EHLO again. The client is then ready for `login` or
    /// `send_mail`.
    ///
    /// Errors: an invalid `ehlo_domain` before any I/O; a connect failure is
    /// [`SmtpError::Io`] during [`SmtpOp::Connect`] ([`SmtpError::Timeout`] when the connect
    /// timeout ran out, [`SmtpError::DeadlineExceeded`] when the deadline did); a bad
    /// certificate, or a server that does not speak TLS on an implicit-TLS port (the error then
    /// names the fix), is [`SmtpError::Io`] during [`SmtpOp::TlsHandshake`]; a setting the
    /// driver cannot take (see [`map_session_config`](Self::map_session_config)) is
    /// [`SmtpError::Internal`], before any I/O.
    pub fn connect(
        self,
        host: &str,
        port: u16,
        ehlo_domain: &str,
    ) -> Result<SmtpClient, SmtpError> {
        Domain::new(ehlo_domain)?;
        let options = options::client_options(self.config, self.message, self.read_buffer)?;
        // The session's deadline covers the connect and the TLS handshake too: the clock of
        // the connect steps and the session start together.
        let (clock, options) = ConnectClock::start::<StdTransport>(options);
        let tcp = connect_tcp(&clock, &self.route, host, port, self.connect_timeout)?;
        let name = self.tls_server_name.as_deref().unwrap_or(host);
        let transport = secure(self.mode, tcp, name, self.tls, &clock, self.connect_timeout)?;
        SmtpClient::open(transport, self.mode, ehlo_domain, options)
    }

    /// Run the session on a TCP connection the caller opened (its own socket options, a
    /// route of its own): the TLS handshake for [`TlsMode::Implicit`], the greeting, EHLO, and
    /// STARTTLS for [`TlsMode::StartTls`], with these options. The certificate is checked for
    /// `server_name` (or the name set with [`with_tls_server_name`](Self::with_tls_server_name));
    /// the deadline counts from this call. The proxy and local address options do not apply.
    pub fn connect_on(
        self,
        tcp: TcpStream,
        server_name: &str,
        ehlo_domain: &str,
    ) -> Result<SmtpClient, SmtpError> {
        Domain::new(ehlo_domain)?;
        let options = options::client_options(self.config, self.message, self.read_buffer)?;
        let (clock, options) = ConnectClock::start::<StdTransport>(options);
        let name = self.tls_server_name.as_deref().unwrap_or(server_name);
        let transport = secure(self.mode, tcp, name, self.tls, &clock, self.connect_timeout)?;
        SmtpClient::open(transport, self.mode, ehlo_domain, options)
    }
}

/// The TCP connect (through the proxy, if any) within the step's bound.
fn connect_tcp(
    clock: &ConnectClock,
    route: &route::Route,
    host: &str,
    port: u16,
    limit: Duration,
) -> Result<TcpStream, SmtpError> {
    let step = now();
    let (left, expired) = clock.bound(step, SmtpOp::Connect, limit);
    match route.connect(host, port, route::Until(step + left)) {
        Ok(tcp) => {
            let _ = tcp.set_nodelay(true);
            Ok(tcp)
        }
        Err(e) if stream::is_timeout(&e) => Err(expired),
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

/// Connect to the server a connection URL names, with its options
/// ([`ConnectOptions::from_url`]), saying EHLO as its `helo` (or `ehlo_domain`), and log in
/// when it has a user and a password (with its `auth` mechanism, or the best password one).
pub fn connect_url(url: &SmtpUrl, ehlo_domain: &str) -> Result<SmtpClient, SmtpError> {
    let ehlo = url.helo.as_ref().map_or(ehlo_domain, |d| d.as_str());
    let mut client = ConnectOptions::from_url(url).connect(&url.host, url.port, ehlo)?;
    let password = url.password.as_ref().and_then(|p| p.expose_str());
    if let (Some(user), Some(password)) = (&url.user, password) {
        match url.mechanism {
            Some(mechanism) => client.login_with(mechanism, user, password)?,
            None => client.login(user, password)?,
        }
    }
    Ok(client)
}

/// Connect with implicit TLS (SMTPS, usually port 465), certificates checked against
/// `webpki-roots`.
pub fn connect_smtps(host: &str, port: u16, ehlo_domain: &str) -> Result<SmtpClient, SmtpError> {
    ConnectOptions::new(TlsMode::Implicit).connect(host, port, ehlo_domain)
}

/// Connect in plaintext and upgrade with STARTTLS (usually port 587), certificates checked
/// against `webpki-roots`. Fails closed when the server does not offer STARTTLS.
pub fn connect_starttls(host: &str, port: u16, ehlo_domain: &str) -> Result<SmtpClient, SmtpError> {
    ConnectOptions::new(TlsMode::StartTls).connect(host, port, ehlo_domain)
}

/// Connect **without any encryption**: only for loopback test servers and trusted local
/// relays.
pub fn connect_plain(host: &str, port: u16, ehlo_domain: &str) -> Result<SmtpClient, SmtpError> {
    ConnectOptions::new(TlsMode::None).connect(host, port, ehlo_domain)
}
