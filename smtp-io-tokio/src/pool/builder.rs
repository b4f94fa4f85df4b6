//! [`MailerBuilder`]: where a pool connects, how, and its limits.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::backoff::{Backoff, Pause};
use super::credentials::{Credentials, TokenMechanism, TokenSource};
use super::throttle::{RateLimit, Throttle};
use super::{Inner, Mailer, Tally};
use crate::{
    AuthMechanism, ConnectOptions, DataPipelining, Proxy, SmtpClientOptions, SmtpError, SmtpUrl,
    TlsConfig,
};

/// The most connections a pool may have: what its semaphore can count, and what
/// [`Mailer::shutdown`] can take back in one call.
const MOST_CONNECTIONS: usize = {
    let u32_max = u32::MAX as usize;
    if Semaphore::MAX_PERMITS < u32_max {
        Semaphore::MAX_PERMITS
    } else {
        u32_max
    }
};

/// The caller's change of each new connection's client options ([`MailerBuilder::client_options`]).
pub(super) type OptionsFn = dyn Fn(SmtpClientOptions) -> SmtpClientOptions + Send + Sync;

/// Builds a [`Mailer`]: where to connect, how (one [`ConnectOptions`] for every connection),
/// and the pool's limits.
pub struct MailerBuilder {
    host: String,
    port: u16,
    ehlo_domain: String,
    connect: ConnectOptions,
    options: Box<OptionsFn>,
    credentials: Option<Credentials>,
    throttle: Option<Arc<dyn Throttle>>,
    backoff: Option<Backoff>,
    #[cfg(feature = "dkim")]
    dkim: Option<crate::dkim::DkimSigner>,
    settings: Settings,
}

impl fmt::Debug for MailerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("MailerBuilder");
        f.field("host", &self.host)
            .field("port", &self.port)
            .field("mode", &self.connect.mode())
            .field("credentials", &self.credentials)
            .field("settings", &self.settings);
        #[cfg(feature = "dkim")]
        f.field("dkim", &self.dkim.as_ref().map(super::DkimName));
        f.finish_non_exhaustive()
    }
}

/// The pool's limits.
#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    pub(super) max_connections: usize,
    pub(super) max_messages: usize,
    pub(super) idle_timeout: Duration,
    pub(super) probe_after: Duration,
    pub(super) wait_timeout: Duration,
    pub(super) send_deadline: Option<Duration>,
    /// The most messages of a chained flight (1: no chaining).
    pub(super) chain: usize,
}

impl MailerBuilder {
    /// A builder for a pool of connections to `host:port`, saying EHLO as `ehlo_domain`, each
    /// opened with `connect` (TLS mode and trust, connect timeout, TLS server name, proxy,
    /// local address, client options): the same options as one connection's, given once.
    /// [`Mailer::builder`] is this with [`ConnectOptions::new`].
    ///
    /// The options are taken as given: the pool changes none of their settings. So the pool's
    /// default DATA pipelining ([`DataPipelining::Always`], see
    /// [`data_pipelining`](Self::data_pipelining)) applies only to the options the pool makes
    /// itself ([`Mailer::builder`], [`from_url`](Self::from_url)); with options of your own,
    /// DATA pipelining is what their client options say (the engine's `WhenSafe` unless
    /// changed).
    ///
    /// Every connection gets the same settings and shares the policy, the audit sink and the
    /// transcript sink of the client options (each is `Send + Sync`; for one of each per
    /// connection, use [`client_options`](Self::client_options)). A deadline in them
    /// ([`ConnectOptions::with_deadline`]) bounds each connection from its start, every message
    /// it carries included: for a limit per message, use
    /// [`send_deadline`](Self::send_deadline).
    ///
    /// ```
    /// use std::time::Duration;
    /// use smtp_io_tokio::{ConnectOptions, MailerBuilder, TlsMode};
    ///
    /// let options = ConnectOptions::new(TlsMode::StartTls)
    ///     .with_connect_timeout(Duration::from_secs(10))
    ///     .with_reply_timeout(Duration::from_secs(20));
    /// let mailer = MailerBuilder::new("smtp.example.com", 587, "app.example.com", options)
    ///     .max_connections(8)
    ///     .build();
    /// # drop(mailer);
    /// ```
    pub fn new(
        host: impl Into<String>,
        port: u16,
        ehlo_domain: impl Into<String>,
        connect: ConnectOptions,
    ) -> MailerBuilder {
        MailerBuilder {
            host: host.into(),
            port,
            ehlo_domain: ehlo_domain.into(),
            connect,
            options: Box::new(|options| options),
            credentials: None,
            throttle: None,
            backoff: None,
            #[cfg(feature = "dkim")]
            dkim: None,
            settings: Settings {
                max_connections: 4,
                max_messages: 100,
                idle_timeout: Duration::from_secs(60),
                probe_after: Duration::from_secs(10),
                wait_timeout: Duration::from_secs(30),
                send_deadline: None,
                chain: 1,
            },
        }
    }

    /// A pool for the server a connection URL names ([`SmtpUrl`]): its host, port, EHLO name
    /// (its `helo`, or `ehlo_domain`), the options it gives ([`ConnectOptions::from_url`]: TLS
    /// mode, LMTP, reply and connect timeouts) with the pool's DATA pipelining
    /// ([`data_pipelining`](Self::data_pipelining)), and its user and password with its `auth`
    /// mechanism when it has both. Its `deadline` becomes the
    /// [send deadline](Self::send_deadline) of each message (a pooled connection outlives any
    /// one message). The rest of the builder's settings are added as usual
    /// ([`map_connect_options`](Self::map_connect_options) for the connect options).
    pub fn from_url(url: &SmtpUrl, ehlo_domain: &str) -> MailerBuilder {
        let connect = pool_defaults(ConnectOptions::from_url(url)).map_client_options(|o| {
            let mut timeouts = o.session_config().timeouts;
            timeouts.total = None;
            o.with_timeouts(timeouts)
        });
        let mut builder = MailerBuilder::new(
            url.host.clone(),
            url.port,
            url.ehlo_domain(ehlo_domain),
            connect,
        );
        if let Some(limit) = url.deadline {
            builder = builder.send_deadline(limit);
        }
        if let (Some(user), Some(password)) = (&url.user, &url.password) {
            builder.credentials = Some(Credentials::Password {
                user: user.clone(),
                password: smtp_proto::Secret::from(password.expose()),
                mechanism: url.mechanism,
            });
        }
        builder
    }

    /// Change the connect options of every connection (given to [`new`](Self::new), or made
    /// by [`from_url`](Self::from_url) or [`Mailer::builder`]), keeping the others.
    ///
    /// ```
    /// use smtp_io_tokio::{MailerBuilder, SmtpUrl, TlsConfig};
    ///
    /// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let url: SmtpUrl = "smtp://relay.internal:587".parse()?;
    /// let mailer = MailerBuilder::from_url(&url, "app.example.com")
    ///     .map_connect_options(|o| o.with_tls_config(TlsConfig::webpki_roots()))
    ///     .build()?;
    /// # drop(mailer); Ok(()) }
    /// ```
    pub fn map_connect_options(
        mut self,
        f: impl FnOnce(ConnectOptions) -> ConnectOptions,
    ) -> MailerBuilder {
        self.connect = f(self.connect);
        self
    }

    /// At most this many connections at once (default 4, at least 1, at most `u32::MAX`),
    /// counting every connection the pool holds: being opened, carrying a message, idle, or
    /// being ended with QUIT.
    pub fn max_connections(mut self, n: usize) -> MailerBuilder {
        self.settings.max_connections = n.clamp(1, MOST_CONNECTIONS);
        self
    }

    /// End a connection with QUIT after this many messages (default 100, at least 1), before a
    /// server's own cap closes it in the middle of one.
    pub fn max_messages_per_connection(mut self, n: usize) -> MailerBuilder {
        self.settings.max_messages = n.max(1);
        self
    }

    /// Chain waiting messages (default 1: off): when messages sent with
    /// [`send`](Mailer::send), [`send_with`](Mailer::send_with) or `send_message` wait for a
    /// connection, a connection that comes free carries them one after another as one flight,
    /// with up to `n` unanswered at once, as
    /// [`SmtpClient::send_batch`](crate::SmtpClient::send_batch) does: each message's MAIL
    /// rides behind the previous one's end of data (with CHUNKING, whole `BDAT ... LAST`
    /// transactions follow each other), and the flight goes on while messages wait. About one
    /// round trip a message instead of two over DATA, several messages a round trip over BDAT:
    /// what decides throughput to a relay across a WAN (bench/README.md, "pool-wan"). Each
    /// caller hears its own answer as soon as its reply arrives, under the same retry rule (a
    /// message that provably was not delivered is tried once more, on another connection; one
    /// whose end of data was written is never sent twice).
    ///
    /// What changes: the message is copied (it waits in the pool, not in the caller's future);
    /// a flight runs under the [send deadline](Self::send_deadline) of its oldest unanswered
    /// message, and carries only messages with the same kind of deadline; a failure that ends
    /// the connection ends every message on it at that moment (each with its own fate, and its
    /// own one retry); and a message taken into a flight is sent even if its caller stops
    /// waiting (one still waiting is withdrawn). Streamed bodies
    /// ([`send_stream`](Mailer::send_stream), [`send_file`](Mailer::send_file)) are never
    /// chained.
    pub fn chain_messages(mut self, n: usize) -> MailerBuilder {
        self.settings.chain = n.max(1);
        self
    }

    /// End a connection idle this long (default 60 s; RFC 5321 servers wait at least 5 min).
    pub fn idle_timeout(mut self, limit: Duration) -> MailerBuilder {
        self.settings.idle_timeout = limit;
        self
    }

    /// Probe with NOOP before reusing a connection idle longer than this (default 10 s). A
    /// connection reused sooner costs no round trip; it is still checked without blocking for
    /// anything the server sent meanwhile.
    pub fn probe_after(mut self, threshold: Duration) -> MailerBuilder {
        self.settings.probe_after = threshold;
        self
    }

    /// The longest [`Mailer::send`] waits for a free connection before failing with
    /// [`SendError::Busy`](super::SendError::Busy) (default 30 s), counted from the call: a
    /// turn under a [rate limit](Self::rate_limit) or [throttle](Self::throttle) counts against
    /// it too. A retry's turn has a wait limit of its own, counted from the retry. The wait is
    /// never unbounded.
    pub fn wait_timeout(mut self, limit: Duration) -> MailerBuilder {
        self.settings.wait_timeout = limit;
        self
    }

    /// A deadline for each message (default none): from the call to its answer, covering the
    /// wait for a connection, connecting, logging in, a retry and the message itself. Unlike
    /// [`Timeouts::total`](crate::Timeouts::total), which counts from a connection's start and so
    /// spans every message a pooled connection carries, it counts from each call. Past it the
    /// message is [`SendError::NotSent`](super::SendError::NotSent) (with
    /// [`SmtpError::DeadlineExceeded`]) when its end of data had not been written, and
    /// [`SendError::Unknown`](super::SendError::Unknown) when it had; the connection it was
    /// on is closed. Unlike dropping the future, the caller learns which. For some calls only:
    /// [`Mailer::with_send_deadline`].
    pub fn send_deadline(mut self, limit: Duration) -> MailerBuilder {
        self.settings.send_deadline = Some(limit);
        self
    }

    /// When DATA joins the envelope's pipelined flight on the pool's connections:
    /// `with_data_pipelining(mode)` on the client options of the connect options. The pool's
    /// default is [`DataPipelining::Always`] (the engine's own default is
    /// [`WhenSafe`](DataPipelining::WhenSafe)): a message to several recipients costs one
    /// round trip less, and when the server refuses some of them while it already waits for
    /// data, the connection is closed before the body (nothing is delivered to the accepted
    /// part) and the pool opens another for the next message.
    ///
    /// The default is set when the pool makes the connect options ([`Mailer::builder`],
    /// [`from_url`](Self::from_url)), before any change of yours, and never on options you
    /// give ([`new`](Self::new)): a choice made anywhere (here, in the connect options, in
    /// [`map_connect_options`](Self::map_connect_options)) is never overridden; the last one
    /// made wins, and a change in [`client_options`](Self::client_options), made for each
    /// connection, comes after all of them.
    pub fn data_pipelining(self, mode: DataPipelining) -> MailerBuilder {
        self.map_connect_options(|o| o.map_client_options(|c| c.with_data_pipelining(mode)))
    }

    /// Which certificates to trust: [`ConnectOptions::with_tls_config`] on the connect
    /// options. Every connection of the pool shares this configuration (and its TLS session
    /// cache).
    pub fn tls_config(self, tls: TlsConfig) -> MailerBuilder {
        self.map_connect_options(|o| o.with_tls_config(tls))
    }

    /// The longest each step of opening a connection may take (default 30 s):
    /// [`ConnectOptions::with_connect_timeout`] on the connect options.
    pub fn connect_timeout(self, limit: Duration) -> MailerBuilder {
        self.map_connect_options(|o| o.with_connect_timeout(limit))
    }

    /// Pace the pool's messages with an in-process rate limit (see [`RateLimit`]): every
    /// message, a retry included, waits its turn once it holds a connection's place, just
    /// before it goes, so that messages that waited for a busy connection still leave spaced
    /// out. (A chained message, [`chain_messages`](Self::chain_messages), takes its turn when it
    /// joins the queue, before it waits for a flight: messages that waited long for one can
    /// leave in a burst.) The wait counts against the [wait limit](Self::wait_timeout) (past
    /// it: [`SendError::Busy`]) or the [send deadline](Self::send_deadline).
    ///
    /// [`SendError::Busy`]: super::SendError::Busy
    pub fn rate_limit(self, limit: RateLimit) -> MailerBuilder {
        self.throttle(limit)
    }

    /// Pace the pool's messages with any [`Throttle`] (a limit shared by several processes,
    /// say), as [`rate_limit`](Self::rate_limit) does.
    pub fn throttle(mut self, throttle: impl Throttle) -> MailerBuilder {
        self.throttle = Some(Arc::new(throttle));
        self
    }

    /// Pause when the server says to slow down (a `421`, or a `4xx` to MAIL or to every
    /// RCPT: rate limits, greylisting) instead of retrying at once on a new connection: the
    /// message that met it is [`SendError::Throttled`] with the time to try again, and every
    /// caller waits for the pause to end before its message (within its wait limit or send
    /// deadline, else `Throttled` at once). The pause doubles while the server keeps asking
    /// and starts again from `initial` once a message gets through. Off by default.
    ///
    /// [`SendError::Throttled`]: super::SendError::Throttled
    pub fn backoff(mut self, backoff: Backoff) -> MailerBuilder {
        self.backoff = Some(backoff);
        self
    }

    /// Reach the server through this proxy (SOCKS5 or HTTP CONNECT), every connection of the
    /// pool: [`ConnectOptions::with_proxy`] on the connect options.
    pub fn proxy(self, proxy: Proxy) -> MailerBuilder {
        self.map_connect_options(|o| o.with_proxy(proxy))
    }

    /// Connect from this local address, every connection of the pool:
    /// [`ConnectOptions::with_local_address`] on the connect options.
    pub fn local_address(self, address: std::net::IpAddr) -> MailerBuilder {
        self.map_connect_options(|o| o.with_local_address(address))
    }

    /// Check the certificate for this name instead of the host dialled:
    /// [`ConnectOptions::with_tls_server_name`] on the connect options.
    pub fn tls_server_name(self, name: impl Into<String>) -> MailerBuilder {
        let name = name.into();
        self.map_connect_options(|o| o.with_tls_server_name(name))
    }

    /// Log in with `user` and `password` on every new connection (`login`: the best password
    /// mechanism the server offers). A `String` password is taken over, not copied, and wiped
    /// when the pool is dropped.
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::Password {
            user: user.into(),
            password: smtp_proto::Secret::from(password.into()),
            mechanism: None,
        });
        self
    }

    /// [`credentials`](Self::credentials) with this mechanism, whatever else the server offers
    /// (a server that does not offer it fails the connection with
    /// [`AuthError::UnsupportedMechanism`](crate::AuthError::UnsupportedMechanism)).
    pub fn credentials_with(
        mut self,
        mechanism: AuthMechanism,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.credentials = Some(Credentials::Password {
            user: user.into(),
            password: smtp_proto::Secret::from(password.into()),
            mechanism: Some(mechanism),
        });
        self
    }

    /// Log in with an OAuth 2.0 access token on every new connection (Google Workspace,
    /// Microsoft 365): `source` is asked for a token for each new connection, and once more,
    /// with `refresh: true`, when the server rejects the one it gave (an expired token); the
    /// pool then logs in on a fresh connection. A token rejected twice fails the connection
    /// with [`AuthError::Rejected`](crate::AuthError::Rejected). Tokens are held as secrets:
    /// never in `Debug`, logs or errors. See [`TokenSource`].
    pub fn oauth2(
        mut self,
        mechanism: TokenMechanism,
        user: impl Into<String>,
        source: impl TokenSource,
    ) -> Self {
        self.credentials = Some(Credentials::Token {
            user: user.into(),
            mechanism,
            source: Arc::new(source),
        });
        self
    }

    /// Change the client options of each new connection (policy, audit sink, timeouts, default
    /// message options), starting from those of the connect options (from
    /// [`Mailer::builder`]: [`SmtpClientOptions::new`] with the `tracing` transcript and the
    /// pool's [`data_pipelining`](Self::data_pipelining)). A function, called once per
    /// connection: a sink or policy made here is one per connection, where one set in the
    /// connect options is shared by all. Calls add up: each change applies after the earlier
    /// ones.
    ///
    /// ```
    /// use std::time::Duration;
    /// use smtp_io_tokio::{Mailer, Timeouts, TlsMode};
    ///
    /// let mailer = Mailer::builder("smtp.example.com", 587, TlsMode::StartTls, "app.example.com")
    ///     .client_options(|o| o.with_timeouts(Timeouts::uniform(Duration::from_secs(20))))
    ///     .build();
    /// # drop(mailer);
    /// ```
    pub fn client_options(
        mut self,
        change: impl Fn(SmtpClientOptions) -> SmtpClientOptions + Send + Sync + 'static,
    ) -> MailerBuilder {
        let before = self.options;
        self.options = Box::new(move |options| change(before(options)));
        self
    }

    /// Sign every message the pool sends with DKIM (feature `dkim`, which needs Rust 1.88):
    /// each message is signed **once per call**, before its first attempt, so a retry on a
    /// new connection sends the same bytes with the same signature.
    ///
    /// - In memory ([`send`](Mailer::send), [`send_with`](Mailer::send_with), `send_message`,
    ///   chained flights too): the `DKIM-Signature` field is put in front of a copy of the
    ///   message.
    /// - Streamed ([`send_stream`](Mailer::send_stream), [`send_file`](Mailer::send_file)): the
    ///   body is opened **once more** than without signing, and read whole to hash it (memory
    ///   stays constant); each attempt then sends the field followed by the body opened
    ///   afresh. A body whose `open` cannot yield the same bytes again (standard input, a
    ///   network stream) cannot be signed this way: keep it in memory or in a file first.
    ///
    /// A message that cannot be signed (no `From` field, a malformed header section) is
    /// [`SendError::NotSent`](super::SendError::NotSent) with `attempts: 0` and an
    /// [`SmtpError::InvalidInput`] about the message body; a body that fails to read while it
    /// is hashed is an [`SmtpError::Io`] during [`SmtpOp::ReadBody`](crate::SmtpOp::ReadBody).
    /// The signer's key never appears in the pool's or the builder's `Debug` output.
    ///
    /// A message sent as `BODY=BINARYMIME` goes byte for byte and would not match its
    /// signature: it is refused unsent ([`Unsignable::BinaryMime`](crate::Unsignable)), as
    /// options that make BINARYMIME every message's default are (when the pool is built, or,
    /// set by [`client_options`](Self::client_options), for each connection).
    ///
    /// ```no_run
    /// use smtp_io_tokio::dkim::{DkimKey, DkimSigner};
    /// use smtp_io_tokio::{Mailer, TlsMode};
    ///
    /// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let key = DkimKey::from_pem(&std::fs::read_to_string("/etc/app/dkim.pem")?)?;
    /// let mailer = Mailer::builder("smtp.example.com", 587, TlsMode::StartTls, "app.example.com")
    ///     .dkim(DkimSigner::new(key, "example.com", "sel2026")?)
    ///     .build()?;
    /// # drop(mailer); Ok(()) }
    /// ```
    #[cfg(feature = "dkim")]
    #[cfg_attr(docsrs, doc(cfg(feature = "dkim")))]
    pub fn dkim(mut self, signer: crate::dkim::DkimSigner) -> MailerBuilder {
        self.dkim = Some(signer);
        self
    }

    /// The pool. Checks the EHLO domain; connects lazily, on the first message. Needs no
    /// runtime: the background task that ends connections idle past the idle timeout starts
    /// with the first message, inside the runtime that sends it.
    pub fn build(self) -> Result<Mailer, SmtpError> {
        smtp_proto::command::Domain::new(&self.ehlo_domain)?;
        let settings = self.settings;
        let ConnectOptions {
            settings: connect,
            tls,
        } = self.connect;
        if tls.is_insecure() {
            tracing::warn!(
                "a pool with TLS without certificate checks \
                 (insecure_accept_any_certificate_for_tests_only)"
            );
        }
        let connect = connect.into_shared();
        // A pool that signs cannot send every message as BINARYMIME (see `dkim`). The
        // `client_options` closure runs per connection, and its result is checked there.
        #[cfg(feature = "dkim")]
        if self.dkim.is_some() {
            let settings = connect.settings();
            crate::dkim::check_signable(Some(settings.client_options().message_options()))?;
        }
        let inner = Arc::new(Inner {
            host: self.host,
            port: self.port,
            ehlo_domain: self.ehlo_domain,
            connect,
            tls,
            options: self.options,
            credentials: self.credentials,
            throttle: self.throttle,
            pause: self.backoff.map(Pause::new),
            settings,
            permits: Arc::new(Semaphore::new(settings.max_connections)),
            idle: Default::default(),
            closed: Default::default(),
            shut: Default::default(),
            reaping: Default::default(),
            tally: Arc::new(Tally::default()),
            lobby: Default::default(),
            #[cfg(feature = "dkim")]
            dkim: self.dkim,
        });
        Ok(Mailer {
            inner,
            send_deadline: settings.send_deadline,
        })
    }
}

/// The pool's defaults on connect options it makes itself ([`Mailer::builder`],
/// [`MailerBuilder::from_url`]): DATA pipelined with the envelope
/// ([`MailerBuilder::data_pipelining`]). Never applied to options a caller gives.
pub(super) fn pool_defaults(options: ConnectOptions) -> ConnectOptions {
    options.map_client_options(|o| o.with_data_pipelining(DataPipelining::Always))
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::{Mailer, Protocol, TlsMode};

    /// The client options a new connection of the pool would get.
    fn connection_options(builder: MailerBuilder) -> ConnectOptions {
        builder.build().unwrap().inner.connect_options()
    }

    fn data_pipelining(builder: MailerBuilder) -> DataPipelining {
        connection_options(builder)
            .settings()
            .session_config()
            .data_pipelining
    }

    fn pool() -> MailerBuilder {
        Mailer::builder("mx.example", 587, TlsMode::StartTls, "app.example")
    }

    /// The pool's default DATA pipelining applies to the options it makes, before any change,
    /// and never overrides a choice.
    #[test]
    fn the_pools_data_pipelining_never_overrides_a_choice() {
        assert_eq!(data_pipelining(pool()), DataPipelining::Always);
        let url = SmtpUrl::parse("smtp://mx.example").unwrap();
        assert_eq!(
            data_pipelining(MailerBuilder::from_url(&url, "app.example")),
            DataPipelining::Always
        );
        // Chosen with the builder, in the connect options, or per connection.
        assert_eq!(
            data_pipelining(pool().data_pipelining(DataPipelining::WhenSafe)),
            DataPipelining::WhenSafe
        );
        assert_eq!(
            data_pipelining(pool().map_connect_options(|o| {
                o.map_client_options(|c| c.with_data_pipelining(DataPipelining::WhenSafe))
            })),
            DataPipelining::WhenSafe
        );
        assert_eq!(
            data_pipelining(
                pool()
                    .data_pipelining(DataPipelining::WhenSafe)
                    .client_options(|c| c.with_data_pipelining(DataPipelining::Always))
            ),
            DataPipelining::Always
        );
        // Options the caller gives are taken as they are: the engine's default stays.
        let given = |options: ConnectOptions| {
            data_pipelining(MailerBuilder::new(
                "mx.example",
                587,
                "app.example",
                options,
            ))
        };
        assert_eq!(
            given(ConnectOptions::new(TlsMode::StartTls)),
            DataPipelining::WhenSafe
        );
        assert_eq!(
            given(
                ConnectOptions::new(TlsMode::StartTls).map_client_options(|c| {
                    c.with_data_pipelining(DataPipelining::WhenSafe)
                        .with_max_chained(2)
                })
            ),
            DataPipelining::WhenSafe
        );
        assert_eq!(
            given(
                ConnectOptions::new(TlsMode::StartTls)
                    .map_client_options(|c| c.with_data_pipelining(DataPipelining::Always))
            ),
            DataPipelining::Always
        );
        // The last choice wins.
        assert_eq!(
            data_pipelining(
                MailerBuilder::new(
                    "mx.example",
                    587,
                    "app.example",
                    ConnectOptions::new(TlsMode::StartTls)
                        .map_client_options(|c| c.with_data_pipelining(DataPipelining::Always))
                )
                .data_pipelining(DataPipelining::WhenSafe)
            ),
            DataPipelining::WhenSafe
        );
    }

    /// The builder's connection methods are the connect options' own.
    #[test]
    fn the_builders_connection_methods_set_the_connect_options() {
        let local: IpAddr = "192.0.2.9".parse().unwrap();
        let options = connection_options(
            pool()
                .connect_timeout(Duration::from_secs(4))
                .tls_server_name("cert.example")
                .proxy(Proxy::parse("socks5://proxy.example:1080").unwrap())
                .local_address(local)
                .tls_config(TlsConfig::insecure_accept_any_certificate_for_tests_only()),
        );
        let settings = options.settings();
        assert_eq!(options.mode(), TlsMode::StartTls);
        assert_eq!(settings.connect_timeout(), Duration::from_secs(4));
        assert_eq!(settings.tls_server_name(), Some("cert.example"));
        assert_eq!(
            settings.proxy().map(|p| p.host().to_owned()),
            Some("proxy.example".to_owned())
        );
        assert_eq!(settings.local_address(), Some(local));
        assert!(options.tls_config().is_insecure());
        // The default transcript (to `tracing`) is kept.
        let client = options.settings.into_parts().client.into_parts();
        assert!(client.config.transcript.is_some());
    }

    /// From a URL: its deadline bounds each message, not each pooled connection.
    #[test]
    fn from_url_makes_the_deadline_a_send_deadline() {
        let url =
            SmtpUrl::parse("lmtp://u:p@mx.example:24?timeout=9&connect_timeout=3&deadline=60")
                .unwrap();
        let builder = MailerBuilder::from_url(&url, "app.example");
        assert_eq!(
            builder.settings.send_deadline,
            Some(Duration::from_secs(60))
        );
        assert!(builder.credentials.is_some());
        let options = connection_options(builder);
        let config = options.settings().session_config();
        assert_eq!(config.timeouts.total, None);
        assert_eq!(config.timeouts.command, Duration::from_secs(9));
        assert_eq!(config.protocol, Protocol::Lmtp);
        assert_eq!(options.settings().connect_timeout(), Duration::from_secs(3));
    }

    #[derive(Default)]
    struct Count(std::sync::atomic::AtomicUsize);

    impl smtp_proto::TranscriptSink for Count {
        fn client(&self, _: &str) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        fn server(&self, _: &smtp_proto::Reply) {}
    }

    struct ToCount(Arc<Count>);

    impl smtp_proto::TranscriptSink for ToCount {
        fn client(&self, line: &str) {
            self.0.client(line)
        }
        fn server(&self, _: &smtp_proto::Reply) {}
    }

    /// Every connection gets the given options, their transcript sink shared.
    #[test]
    fn every_connection_shares_the_given_sinks() {
        let count = Arc::new(Count::default());
        let options = ConnectOptions::new(TlsMode::StartTls)
            .map_client_options(|c| c.with_transcript(Box::new(ToCount(count.clone()))));
        let mailer = MailerBuilder::new("mx.example", 587, "app.example", options)
            .build()
            .unwrap();
        for _ in 0..2 {
            let client = mailer
                .inner
                .connect_options()
                .settings
                .into_parts()
                .client
                .into_parts();
            client.config.transcript.unwrap().client("EHLO app.example");
        }
        assert_eq!(count.0.load(std::sync::atomic::Ordering::Relaxed), 2);
    }
}
