//! [`SmtpClient`]: the shared driver (`smtp_proto::client::SmtpClient`) over the blocking
//! transport, each call run to its end on the caller's thread ([`block_on`]).
//!
//! Nothing here decides anything: the engine makes every protocol decision and keeps every
//! clock, the driver writes, reads and sleeps as the engine says (the same code as the tokio
//! and WASI clients), and each method below is one call to it.

use std::io;
use std::path::Path;
use std::time::Duration;

use smtp_proto::client::{self, Delivery, IdleStatus, SmtpClientOptions};

use smtp_proto::connect::{SmtpUrl, TlsMode};
use smtp_proto::{
    AuthMechanism, MessageOptions, OutgoingMessage, Reply, SendOutcome, Session, SessionState,
    SmtpError, SmtpOp,
};

use crate::block::block_on;
use crate::body::ReaderBody;
use crate::stream::Stream;
use crate::transport::StdTransport;

/// An SMTP client on one connection, blocking: each method returns when the engine has the
/// answer, or when one of its limits ran out (the reply's, the write's, the body's
/// write-progress rule, the session's deadline or one set with
/// [`set_deadline`](Self::set_deadline)).
///
/// Made by [`ConnectOptions::connect`](crate::ConnectOptions::connect) and the `connect_*`
/// helpers. The lifecycle is the async client's:
///
/// ```text
/// connect (greeting + EHLO, + STARTTLS + EHLO)
///   -> login*()        only right after connect (or after a refused attempt)
///   -> send_mail*()    any number of times, send_batch()
///   -> quit()          consumes the client
/// ```
///
/// When an error closes the session ([`state`](Self::state) is [`SessionState::Closed`]) the
/// socket is closed too, and every later call fails with the same error.
///
/// It is the async driver of `smtp_proto` run on this thread: the same methods with the same
/// meaning and the same errors as the tokio client's, without `.await`.
pub struct SmtpClient {
    inner: client::SmtpClient<StdTransport>,
}

impl std::fmt::Debug for SmtpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpClient")
            .field("stream", self.stream())
            .field("session", self.session())
            .finish_non_exhaustive()
    }
}

impl SmtpClient {
    /// Read the greeting and EHLO on `transport` (past its TLS handshake for implicit TLS),
    /// then for [`TlsMode::StartTls`] upgrade and EHLO again. The deadline counts from the
    /// start marked in `options` (before the connect).
    pub(crate) fn open(
        transport: StdTransport,
        mode: TlsMode,
        ehlo_domain: &str,
        options: SmtpClientOptions,
    ) -> Result<SmtpClient, SmtpError> {
        let opened = client::SmtpClient::open(transport, mode, ehlo_domain, options);
        block_on(opened).map(|inner| SmtpClient { inner })
    }

    /// The capability lines of the latest EHLO reply, without its first (greeting) line, e.g.
    /// `"AUTH LOGIN PLAIN"`. Parsed values: [`Self::session`]`().capabilities()`.
    pub fn capabilities(&self) -> &[String] {
        self.inner.capabilities()
    }

    /// The session state.
    pub fn state(&self) -> SessionState {
        self.inner.state()
    }

    /// The engine, for its getters (parsed capabilities, TLS, authentication).
    pub fn session(&self) -> &Session {
        self.inner.session()
    }

    /// The connection (peer address, TLS version).
    pub fn stream(&self) -> &Stream {
        self.inner.transport().stream()
    }

    /// Upgrade this connection with STARTTLS (RFC 3207) and EHLO again. Allowed only right
    /// after connect (the `connect_*` helpers and [`TlsMode::StartTls`](crate::TlsMode::StartTls)
    /// do it). Fails closed: if STARTTLS is not offered or is refused, the session is closed.
    pub fn starttls(&mut self) -> Result<(), SmtpError> {
        block_on(self.inner.starttls())
    }

    /// Authenticate with the best password mechanism the server offers: SCRAM-SHA-256-PLUS
    /// (TLS 1.3), SCRAM-SHA-256, PLAIN, LOGIN, in that order (the engine chooses; SCRAM only
    /// with the `scram` feature). Never XOAUTH2 or OAUTHBEARER. Allowed only right after connect.
    /// The credentials are not kept after the call.
    pub fn login(&mut self, user: &str, pass: &str) -> Result<(), SmtpError> {
        block_on(self.inner.login(user, pass))
    }

    /// Authenticate with a given mechanism. `credential` is a password (PLAIN, LOGIN, SCRAM) or
    /// an OAuth 2.0 access token (XOAUTH2, OAUTHBEARER). A mechanism whose cargo feature is off
    /// fails with [`InvalidInputError::FeatureDisabled`](crate::InvalidInputError::FeatureDisabled)
    /// before any I/O.
    pub fn login_with(
        &mut self,
        mechanism: AuthMechanism,
        user: &str,
        credential: &str,
    ) -> Result<(), SmtpError> {
        block_on(self.inner.login_with(mechanism, user, credential))
    }

    /// Authenticate with XOAUTH2 (Google / Microsoft). A refused token gives
    /// [`AuthError::Rejected`](crate::AuthError::Rejected) with the server's decoded error.
    pub fn login_xoauth2(&mut self, user: &str, access_token: &str) -> Result<(), SmtpError> {
        block_on(self.inner.login_xoauth2(user, access_token))
    }

    /// Authenticate with OAUTHBEARER (RFC 7628).
    pub fn login_oauthbearer(&mut self, user: &str, access_token: &str) -> Result<(), SmtpError> {
        block_on(self.inner.login_oauthbearer(user, access_token))
    }

    /// Log in as a connection URL ([`SmtpUrl`]) says: with its user and password when it has
    /// both, with its `auth` mechanism or else the best password mechanism the server offers
    /// ([`login`](Self::login)); without them, do nothing.
    pub fn login_url(&mut self, url: &SmtpUrl) -> Result<(), SmtpError> {
        block_on(self.inner.login_url(url))
    }

    /// Send one message held in a string (a complete RFC 5322 message). Line endings are
    /// normalised to CRLF and lines starting with `.` are dot-stuffed.
    pub fn send_mail(
        &mut self,
        from: &str,
        to: &[&str],
        body: &str,
    ) -> Result<SendOutcome, SmtpError> {
        block_on(self.inner.send_mail(from, to, body))
    }

    /// Send one message held in bytes (need not be UTF-8), encoded and written 256 KiB at a
    /// time. The size declared to the server is the size after line-ending normalisation.
    pub fn send_mail_bytes(
        &mut self,
        from: &str,
        to: &[&str],
        body: &[u8],
    ) -> Result<SendOutcome, SmtpError> {
        block_on(self.inner.send_mail_bytes(from, to, body))
    }

    /// [`send_mail_bytes`](Self::send_mail_bytes) with per-message options (DSN, REQUIRETLS,
    /// ...).
    pub fn send_mail_bytes_with(
        &mut self,
        from: &str,
        to: &[&str],
        body: &[u8],
        options: &MessageOptions,
    ) -> Result<SendOutcome, SmtpError> {
        block_on(self.inner.send_mail_bytes_with(from, to, body, options))
    }

    /// Send a message read from a [`std::io::Read`] (a file, a pipe, standard input) in
    /// chunks: memory stays O(chunk) whatever the message size. The size hint, when the body
    /// has one, is declared as `SIZE=` and enforced. A failing read closes the session with
    /// [`SmtpError::Io`] during [`SmtpOp::ReadBody`]: the message cannot be ended cleanly.
    pub fn send_mail_stream<R: io::Read>(
        &mut self,
        from: &str,
        to: &[&str],
        body: &mut ReaderBody<R>,
    ) -> Result<SendOutcome, SmtpError> {
        block_on(self.inner.send_mail_stream(from, to, body))
    }

    /// [`send_mail_stream`](Self::send_mail_stream) with per-message options.
    pub fn send_mail_stream_with<R: io::Read>(
        &mut self,
        from: &str,
        to: &[&str],
        body: &mut ReaderBody<R>,
        options: &MessageOptions,
    ) -> Result<SendOutcome, SmtpError> {
        block_on(self.inner.send_mail_stream_with(from, to, body, options))
    }

    /// Send the message in the file at `path` (see [`ReaderBody::open`]: its size as sent is
    /// counted first and declared when the server's SIZE limit can matter). A file that cannot
    /// be opened is [`SmtpError::Io`] during [`SmtpOp::ReadBody`], before anything is sent (on a
    /// closed session, the session's error comes first).
    pub fn send_file(
        &mut self,
        from: &str,
        to: &[&str],
        path: impl AsRef<Path>,
    ) -> Result<SendOutcome, SmtpError> {
        if self.state() == SessionState::Closed {
            self.session().check_usable()?;
        }
        let path = path.as_ref();
        let mut body = ReaderBody::open(path).map_err(|e| {
            let what = format!("{}: {e}", path.display());
            SmtpError::io(SmtpOp::ReadBody, e.kind(), what)
        })?;
        self.send_mail_stream(from, to, &mut body)
    }

    /// Look, without waiting, whether the server sent anything since the last operation
    /// ended, for a client that sat idle (kept between uses, e.g. behind a `Mutex`). Anything
    /// at all means the connection cannot be reused: the end of the stream
    /// ([`IdleStatus::Closed`]) or unsolicited bytes ([`IdleStatus::Unsolicited`], e.g. a `421`
    /// before the server hung up; under TLS the bytes are those decrypted, possibly none). They
    /// are never fed to the engine: the session is closed and the socket with it. Call it only
    /// between operations.
    pub fn check_idle(&mut self) -> IdleStatus {
        block_on(self.inner.check_idle())
    }

    /// Send one message and say what became of it, telling a message that provably was not
    /// delivered from one whose fate is unknown ([`Delivery`]), for a caller that retries.
    pub fn deliver(&mut self, message: &OutgoingMessage<'_>) -> Delivery {
        block_on(self.inner.deliver(message))
    }

    /// [`deliver`](Self::deliver) for a body read from a [`std::io::Read`] (as
    /// [`send_mail_stream_with`](Self::send_mail_stream_with)), with `options` or the client's
    /// defaults. A body that fails to read before its end is [`Delivery::NotSent`] with
    /// `before_end_of_data: true` (the session is closed, nothing was delivered); sending it
    /// again needs the body again from its start.
    pub fn deliver_stream<R: io::Read>(
        &mut self,
        from: &str,
        to: &[&str],
        body: &mut ReaderBody<R>,
        options: Option<&MessageOptions>,
    ) -> Delivery {
        block_on(self.inner.deliver_stream(from, to, body, options))
    }

    /// Send many messages over this connection, one result per message, in order. With
    /// PIPELINING the next message's envelope goes out with the previous end of data (batch
    /// chaining, RFC 2920 section 3.1), each reply still matched to its own message. One
    /// message failing does not stop the others; an error that closes the session ends the
    /// batch, and every message without a result gets it.
    pub fn send_batch(
        &mut self,
        messages: &[OutgoingMessage<'_>],
    ) -> Vec<Result<SendOutcome, SmtpError>> {
        block_on(self.inner.send_batch(messages))
    }

    /// [`send_batch`](Self::send_batch), saying for each message what became of it
    /// ([`Delivery`]): accepted, provably not delivered, or unknown. When one error ends the
    /// session with several messages in flight, a message whose end of data was written is
    /// [`Delivery::Unknown`], one not yet started or whose body was not finished is
    /// [`Delivery::NotSent`].
    pub fn deliver_batch(&mut self, messages: &[OutgoingMessage<'_>]) -> Vec<Delivery> {
        block_on(self.inner.deliver_batch(messages))
    }

    /// Send RSET.
    pub fn rset(&mut self) -> Result<Reply, SmtpError> {
        block_on(self.inner.rset())
    }

    /// Send NOOP (e.g. to check the connection is alive).
    pub fn noop(&mut self) -> Result<Reply, SmtpError> {
        block_on(self.inner.noop())
    }

    /// Send QUIT, wait for its reply and close the connection. On a closed session this only
    /// closes the socket. A failure to close is [`SmtpError::Io`] during [`SmtpOp::Close`].
    pub fn quit(self) -> Result<(), SmtpError> {
        block_on(self.inner.quit())
    }

    /// Close the connection without QUIT (for a connection that is out of step). Best effort.
    pub fn close(self) {
        block_on(self.inner.close())
    }

    /// Bound every call from now on by a deadline of `limit`, counted from a start
    /// `already_spent` ago, on top of the session's own (the earlier wins), until it is lifted
    /// with `None`. Past it the call fails with [`SmtpError::DeadlineExceeded`] whose `after`
    /// is `limit`, and the session is closed. The engine keeps it ([`Session::set_deadline`]).
    pub fn set_deadline(&mut self, limit: Option<Duration>, already_spent: Duration) {
        self.inner.set_deadline(limit, already_spent);
    }
}
