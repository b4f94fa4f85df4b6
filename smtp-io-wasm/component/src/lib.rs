//! A WASI 0.2 component that sends mail: it exports `smtp-rs:smtp/client` (`wit/smtp.wit` in
//! smtp-io-wasm) and does the work with smtp-io-wasm's WASI client. Everything here is glue
//! between the WIT types and the Rust API; the protocol is the engine's.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_dkim::{Canonicalization, DkimKey, DkimSigner};
use smtp_io_wasm as smtp;
use smtp_io_wasm::smtp_proto::body::normalized_len;
use smtp_io_wasm::smtp_proto::command::{
    BodyType, DsnReturn, EnvelopeId, Notify, OriginalRecipient,
};
use smtp_io_wasm::smtp_proto::connect::Proxy;
use smtp_io_wasm::wasi::{ConnectOptions, InputStreamBody, SmtpClient, TlsConfig, block_on};
use smtp_io_wasm::{
    AuthError, AuthMechanism, Blame, DataPipelining, ExtensionUse, MessageOptions, OutgoingMessage,
    Protocol, ProtocolError, RecipientPolicy, Reply, Secret, SendOutcome, SmtpOp, TlsMode,
    TranscriptSink,
};

use bindings::exports::smtp_rs::smtp::client as wit;

/// The generated bindings (canonical ABI glue: the only unsafe code of the crate). The
/// `wasi:io` types are the `wasip2` crate's, the ones smtp-io-wasm reads.
#[allow(unsafe_code, missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "smtp-sender",
        with: {
            "wasi:io/error@0.2.4": wasip2::io::error,
            "wasi:io/poll@0.2.4": wasip2::io::poll,
            "wasi:io/streams@0.2.4": wasip2::io::streams,
        },
    });

    use super::Component;
    export!(Component with_types_in self);
}

/// The exported `client` interface.
struct Component;

impl wit::Guest for Component {
    type Session = Session;

    fn send(
        mut options: wit::ConnectOptions,
        envelope: wit::Envelope,
        message: Vec<u8>,
    ) -> Result<wit::Delivery, wit::SmtpError> {
        // Signed before connecting: a key or a message that cannot be signed opens nothing.
        let message = match options.dkim.take() {
            Some(dkim) => dkim_sign(&dkim_signer(dkim)?, &message)?,
            None => message,
        };
        block_on(async {
            let (mut client, _, _) = open(options).await?;
            let delivery = send(
                &mut client,
                None,
                envelope,
                &MessageOptions::default(),
                None,
                wit::Body::Bytes(message),
            )
            .await?;
            // The message is accepted: a failed QUIT changes nothing for it.
            let _ = client.quit().await;
            Ok(delivery)
        })
    }
}

/// The `session` resource: one connection for many messages. `None` once QUIT was sent.
struct Session {
    client: RefCell<Option<SmtpClient>>,
    /// The transcript's last lines, when the connect options asked for them.
    transcript: Option<Transcript>,
    /// Signs every message with DKIM, when the connect options asked for it. Its key is wiped
    /// when the session is dropped.
    signer: Option<DkimSigner>,
}

/// The most transcript lines a session keeps, and the longest line kept (longer ones are cut):
/// a hostile server's replies cannot grow it past about 10 MB.
const MAX_TRANSCRIPT_LINES: u32 = 10_000;
const MAX_TRANSCRIPT_LINE: usize = 1_000;

/// The last lines of a session's transcript, as the engine redacts them (AUTH payloads, bodies).
#[derive(Clone)]
struct Transcript {
    lines: Arc<Mutex<VecDeque<String>>>,
    keep: usize,
}

impl Transcript {
    fn new(keep: u32) -> Transcript {
        let keep = keep.min(MAX_TRANSCRIPT_LINES) as usize;
        Transcript {
            lines: Arc::new(Mutex::new(VecDeque::with_capacity(keep.min(64)))),
            keep,
        }
    }

    fn push(&self, mut line: String) {
        if self.keep == 0 {
            return;
        }
        if line.len() > MAX_TRANSCRIPT_LINE {
            let mut cut = MAX_TRANSCRIPT_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push_str(" [cut]");
        }
        // A poisoned lock only means an earlier push panicked; the lines are still whole.
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == self.keep {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    fn lines(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().cloned().collect()
    }
}

impl TranscriptSink for Transcript {
    fn client(&self, line: &str) {
        self.push(format!("C: {line}"));
    }
    fn server(&self, reply: &Reply) {
        self.push(format!("S: {reply}"));
    }
    fn enabled(&self) -> bool {
        self.keep > 0
    }
}

impl Session {
    /// Run `f` on the open connection, or fail when the session has ended.
    fn with<T>(
        &self,
        f: impl AsyncFnOnce(&mut SmtpClient) -> Result<T, wit::SmtpError>,
    ) -> Result<T, wit::SmtpError> {
        let mut slot = self.client.borrow_mut();
        let client = slot.as_mut().ok_or_else(ended)?;
        block_on(f(client))
    }
}

fn ended() -> wit::SmtpError {
    wit::SmtpError::InvalidInput("the session has ended (quit was called)".to_owned())
}

impl wit::GuestSession for Session {
    fn open(options: wit::ConnectOptions) -> Result<wit::Session, wit::SmtpError> {
        let (client, transcript, signer) = block_on(open(options))?;
        Ok(wit::Session::new(Session {
            client: RefCell::new(Some(client)),
            transcript,
            signer,
        }))
    }

    fn login(
        &self,
        user: String,
        secret: String,
        mechanism: Option<wit::AuthMechanism>,
    ) -> Result<String, wit::SmtpError> {
        let secret = Secret::from(secret);
        self.with(async |client| {
            login(client, &user, &secret, mechanism.map(mechanism_of)).await?;
            Ok(auth_mechanism(client).unwrap_or_default())
        })
    }

    fn send(
        &self,
        envelope: wit::Envelope,
        options: wit::MessageOptions,
        body: wit::Body,
    ) -> Result<wit::Delivery, wit::SmtpError> {
        let (message_options, size) = message_options(&options)?;
        let signer = self.signer.as_ref();
        self.with(async |client| send(client, signer, envelope, &message_options, size, body).await)
    }

    fn send_batch(
        &self,
        messages: Vec<wit::Outgoing>,
    ) -> Vec<Result<wit::Delivery, wit::SmtpError>> {
        let mut slot = self.client.borrow_mut();
        let Some(client) = slot.as_mut() else {
            return messages.iter().map(|_| Err(ended())).collect();
        };
        // Each message's options and size checked here: one that fails gets its error and stays
        // out of the batch; the others go.
        let mut results: Vec<Option<Result<wit::Delivery, wit::SmtpError>>> =
            messages.iter().map(|_| None).collect();
        // With DKIM, each message signed here (its own copy, signature in front).
        let mut prepared: Vec<Prepared<'_>> = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let checked = message_options(&m.options).and_then(|(o, size)| {
                check_size(&m.message, &o, size)?;
                let signed = match &self.signer {
                    Some(signer) => Some(dkim_sign(signer, &m.message)?),
                    None => None,
                };
                Ok((o, signed))
            });
            match checked {
                Ok((o, signed)) => {
                    let to = m.envelope.recipients.iter().map(String::as_str).collect();
                    prepared.push((i, o, to, signed));
                }
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        let batch: Vec<OutgoingMessage<'_>> = prepared
            .iter()
            .map(|(i, o, to, signed)| {
                let m = &messages[*i];
                let body = signed.as_deref().unwrap_or(&m.message);
                OutgoingMessage::new(&m.envelope.sender, to, body).with_options(o)
            })
            .collect();
        let sent = block_on(client.send_batch(&batch));
        for ((i, _, _, _), result) in prepared.iter().zip(sent) {
            results[*i] = Some(match result {
                Ok(outcome) => Ok(delivery(client, outcome)),
                Err(e) => Err(error(&e)),
            });
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(wit::SmtpError::Other("no result".to_owned()))))
            .collect()
    }

    fn noop(&self) -> Result<wit::ServerReply, wit::SmtpError> {
        self.with(async |client| {
            client
                .noop()
                .await
                .map(|r| reply(&r))
                .map_err(|e| error(&e))
        })
    }

    fn capabilities(&self) -> Vec<String> {
        self.client
            .borrow()
            .as_ref()
            .map(|c| c.capabilities().to_vec())
            .unwrap_or_default()
    }

    fn transcript(&self) -> Vec<String> {
        self.transcript
            .as_ref()
            .map(Transcript::lines)
            .unwrap_or_default()
    }

    fn quit(&self) -> Result<(), wit::SmtpError> {
        let client = self.client.borrow_mut().take().ok_or_else(ended)?;
        block_on(client.quit()).map_err(|e| error(&e))
    }
}

/// A message of a batch that passed its checks: its index, options, recipients, and its signed
/// copy when the session signs with DKIM.
type Prepared<'a> = (usize, MessageOptions, Vec<&'a str>, Option<Vec<u8>>);

/// How to log in, from the connect options: checked before anything is opened.
enum Login {
    None,
    Password {
        user: String,
        password: Secret,
        mechanism: Option<AuthMechanism>,
    },
    Token {
        user: String,
        token: Secret,
        mechanism: AuthMechanism,
    },
}

fn is_token(m: AuthMechanism) -> bool {
    matches!(m, AuthMechanism::XOAuth2 | AuthMechanism::OAuthBearer)
}

fn login_plan(
    credentials: Option<wit::Credentials>,
    token: Option<wit::TokenCredentials>,
    mechanism: Option<wit::AuthMechanism>,
) -> Result<Login, wit::SmtpError> {
    let mechanism = mechanism.map(mechanism_of);
    let invalid = |what: &str| Err(wit::SmtpError::InvalidInput(what.to_owned()));
    match (credentials, token, mechanism) {
        (Some(_), Some(_), _) => invalid("give credentials or a token, not both"),
        (None, None, Some(_)) => invalid("auth-mechanism without credentials or a token"),
        (None, None, None) => Ok(Login::None),
        (Some(c), None, m) => {
            // Taken over at once, so the password is wiped even when the plan is refused.
            let password = Secret::from(c.password);
            match m {
                Some(m) if is_token(m) => {
                    invalid("auth-mechanism xoauth2 / oauthbearer takes a token, not a password")
                }
                m => Ok(Login::Password {
                    user: c.user,
                    password,
                    mechanism: m,
                }),
            }
        }
        (None, Some(t), m) => {
            let token = Secret::from(t.token);
            match m {
                None => Ok(Login::Token {
                    user: t.user,
                    token,
                    mechanism: AuthMechanism::XOAuth2,
                }),
                Some(m) if is_token(m) => Ok(Login::Token {
                    user: t.user,
                    token,
                    mechanism: m,
                }),
                Some(_) => invalid("a token needs auth-mechanism xoauth2 or oauthbearer"),
            }
        }
    }
}

fn mechanism_of(m: wit::AuthMechanism) -> AuthMechanism {
    match m {
        wit::AuthMechanism::Plain => AuthMechanism::Plain,
        wit::AuthMechanism::Login => AuthMechanism::Login,
        wit::AuthMechanism::Xoauth2 => AuthMechanism::XOAuth2,
        wit::AuthMechanism::Oauthbearer => AuthMechanism::OAuthBearer,
        wit::AuthMechanism::ScramSha256 => AuthMechanism::ScramSha256,
        wit::AuthMechanism::ScramSha256Plus => AuthMechanism::ScramSha256Plus,
    }
}

async fn login(
    client: &mut SmtpClient,
    user: &str,
    secret: &Secret,
    mechanism: Option<AuthMechanism>,
) -> Result<(), wit::SmtpError> {
    let Some(secret) = secret.expose_str() else {
        return Err(wit::SmtpError::InvalidInput(
            "the secret is not UTF-8".to_owned(),
        ));
    };
    match mechanism {
        None => client.login(user, secret).await,
        Some(m) => client.login_with(m, user, secret).await,
    }
    .map_err(|e| error(&e))
}

fn use_of(u: wit::ExtensionUse) -> ExtensionUse {
    match u {
        wit::ExtensionUse::WhenOffered => ExtensionUse::WhenOffered,
        wit::ExtensionUse::Never => ExtensionUse::Never,
    }
}

/// Connect, greet, and log in as the options say; the transcript when one was asked for, and
/// the DKIM signer (its key checked before anything is opened).
async fn open(
    options: wit::ConnectOptions,
) -> Result<(SmtpClient, Option<Transcript>, Option<DkimSigner>), wit::SmtpError> {
    let plan = login_plan(options.credentials, options.token, options.auth_mechanism)?;
    let signer = options.dkim.map(dkim_signer).transpose()?;
    let mode = match options.tls {
        wit::TlsMode::Implicit => TlsMode::Implicit,
        wit::TlsMode::Starttls => TlsMode::StartTls,
        wit::TlsMode::None => TlsMode::None,
    };
    let mut connect = ConnectOptions::new(mode);
    let mut tls = match &options.ca_pem {
        Some(pem) => Some(
            TlsConfig::from_ca_pem(pem.as_bytes())
                .map_err(|e| wit::SmtpError::InvalidInput(format!("ca-pem: {e}")))?,
        ),
        None => None,
    };
    if let Some(cert) = options.client_certificate {
        let key = Secret::from(cert.key_pem);
        let base = tls.take().unwrap_or_else(TlsConfig::webpki_roots);
        let with_cert = base
            .with_client_certificate_pem(cert.cert_pem.as_bytes(), key.expose())
            // The error never quotes the key (smtp-rustls says only what was wrong).
            .map_err(|e| wit::SmtpError::InvalidInput(format!("client-certificate: {e}")))?;
        tls = Some(with_cert);
    }
    if let Some(tls) = tls {
        connect = connect.with_tls(tls);
    }
    if let Some(name) = options.tls_server_name {
        // Checked when the connection opens: a name that cannot be a server name is an io
        // error (invalid-input) during connect, before any I/O.
        connect = connect.with_tls_server_name(name);
    }
    if let Some(url) = options.proxy {
        // Wiped when dropped: the URL may hold the proxy password. The parse error never
        // repeats it (smtp-proto's ProxyUrlError says only what was wrong).
        let url = Secret::from(url);
        let proxy = url
            .expose_str()
            .ok_or_else(|| wit::SmtpError::InvalidInput("proxy: not UTF-8".to_owned()))
            .and_then(|url| {
                Proxy::parse(url).map_err(|e| wit::SmtpError::InvalidInput(format!("proxy: {e}")))
            })?;
        connect = connect.with_proxy(proxy);
    }
    if let Some(address) = options.local_address {
        let ip = address.parse::<IpAddr>().map_err(|_| {
            wit::SmtpError::InvalidInput(format!("local-address: {address:?} is not an IP address"))
        })?;
        connect = connect.with_local_address(ip);
    }
    if let Some(ms) = options.connect_timeout_ms {
        connect = connect.with_connect_timeout(Duration::from_millis(ms.into()));
    }
    if options.allow_plaintext_auth {
        connect = connect.map_client_options(|o| o.allow_plaintext_auth());
    }
    if let Some(u) = options.pipelining {
        connect = connect.map_client_options(|o| o.with_pipelining(use_of(u)));
    }
    if let Some(u) = options.chunking {
        connect = connect.map_client_options(|o| o.with_chunking(use_of(u)));
    }
    if let Some(d) = options.data_pipelining {
        let d = match d {
            wit::DataPipelining::WhenSafe => DataPipelining::WhenSafe,
            wit::DataPipelining::Always => DataPipelining::Always,
        };
        connect = connect.map_client_options(|o| o.with_data_pipelining(d));
    }
    if let Some(p) = options.protocol {
        let p = match p {
            wit::Protocol::Smtp => Protocol::Smtp,
            wit::Protocol::Lmtp => Protocol::Lmtp,
        };
        connect = connect.map_client_options(|o| o.with_protocol(p));
    }
    let transcript = options.transcript_lines.map(Transcript::new);
    if let Some(t) = &transcript {
        let sink = t.clone();
        connect = connect.map_client_options(|o| o.with_transcript(Box::new(sink)));
    }
    if let Some(ms) = options.reply_timeout_ms {
        connect = connect.with_reply_timeout(Duration::from_millis(ms.into()));
    }
    if let Some(ms) = options.deadline_ms {
        // The session's deadline counts from before the connect (`ConnectClock`): the TCP
        // connect and an implicit-TLS handshake count against it.
        connect = connect.with_deadline(Duration::from_millis(ms.into()));
    }
    let mut client = connect
        .connect(&options.host, options.port, &options.ehlo_domain)
        .await
        .map_err(|e| error(&e))?;
    match plan {
        Login::None => {}
        Login::Password {
            user,
            password,
            mechanism,
        } => login(&mut client, &user, &password, mechanism).await?,
        Login::Token {
            user,
            token,
            mechanism,
        } => login(&mut client, &user, &token, Some(mechanism)).await?,
    }
    Ok((client, transcript, signer))
}

fn canonicalization(c: wit::DkimCanonicalization) -> Canonicalization {
    match c {
        wit::DkimCanonicalization::Relaxed => Canonicalization::Relaxed,
        wit::DkimCanonicalization::Simple => Canonicalization::Simple,
    }
}

/// The DKIM signer of the connect options. The key's PEM is taken over at once (wiped when
/// dropped, even when refused); no error quotes it (smtp-dkim's errors say only what is wrong).
fn dkim_signer(o: wit::DkimOptions) -> Result<DkimSigner, wit::SmtpError> {
    let pem = Secret::from(o.key_pem);
    let invalid = |e: smtp_dkim::Error| wit::SmtpError::InvalidInput(format!("dkim: {e}"));
    let pem = pem
        .expose_str()
        .ok_or_else(|| wit::SmtpError::InvalidInput("dkim: the key is not UTF-8".to_owned()))?;
    let key = DkimKey::from_pem(pem).map_err(|e| invalid(e.into()))?;
    let mut signer = DkimSigner::new(key, &o.domain, &o.selector).map_err(invalid)?;
    if let Some(headers) = &o.headers {
        signer = signer.with_headers(headers).map_err(invalid)?;
    }
    if o.header_canonicalization.is_some() || o.body_canonicalization.is_some() {
        let header = o
            .header_canonicalization
            .map_or_else(Default::default, canonicalization);
        let body = o
            .body_canonicalization
            .map_or_else(Default::default, canonicalization);
        signer = signer.with_canonicalization(header, body);
    }
    if let Some(seconds) = o.expire_after_secs {
        signer = signer.with_expiry(seconds).map_err(invalid)?;
    }
    Ok(signer)
}

/// `message` with its DKIM-Signature in front, signed at the WASI wall clock's time.
fn dkim_sign(signer: &DkimSigner, message: &[u8]) -> Result<Vec<u8>, wit::SmtpError> {
    signer.prepend_now(message).map_err(|e| match e {
        // The message cannot be signed (no From, a malformed header section): the caller's.
        smtp_dkim::Error::MissingFrom | smtp_dkim::Error::MalformedHeader { .. } => {
            wit::SmtpError::InvalidInput(format!("dkim: {e}"))
        }
        _ => wit::SmtpError::Other(format!("dkim: {e}")),
    })
}

/// The engine's per-message options for the WIT ones, and the declared size.
fn message_options(
    o: &wit::MessageOptions,
) -> Result<(MessageOptions, Option<u64>), wit::SmtpError> {
    let mut m = MessageOptions::default();
    m.dsn_return = o.dsn_return.map(|r| match r {
        wit::DsnReturn::Full => DsnReturn::Full,
        wit::DsnReturn::Headers => DsnReturn::Headers,
    });
    m.envelope_id = o
        .envelope_id
        .as_deref()
        .map(EnvelopeId::new)
        .transpose()
        .map_err(|e| error(&e.into()))?;
    m.notify = o.notify.map(|n| {
        if n.success || n.failure || n.delay {
            Notify::On {
                success: n.success,
                failure: n.failure,
                delay: n.delay,
            }
        } else {
            Notify::Never
        }
    });
    if let Some(list) = &o.original_recipients {
        m.original_recipients = list
            .iter()
            .map(|a| OriginalRecipient::new(a))
            .collect::<Result<_, _>>()
            .map_err(|e| error(&e.into()))?;
    }
    m.require_tls = o.require_tls;
    m.body_type = o.body_type.map(|b| match b {
        wit::BodyType::SevenBit => BodyType::SevenBit,
        wit::BodyType::EightBitMime => BodyType::EightBitMime,
        wit::BodyType::BinaryMime => BodyType::BinaryMime,
    });
    if o.accept_partial {
        m.recipient_policy = Some(RecipientPolicy::AcceptPartial);
    }
    Ok((m, o.size))
}

/// A size given with a body in memory must be the size it will be sent with.
fn check_size(
    body: &[u8],
    options: &MessageOptions,
    size: Option<u64>,
) -> Result<(), wit::SmtpError> {
    let Some(size) = size else { return Ok(()) };
    let actual = if options.body_type == Some(BodyType::BinaryMime) {
        u64::try_from(body.len()).unwrap_or(u64::MAX)
    } else {
        normalized_len(body)
    };
    if size == actual {
        Ok(())
    } else {
        Err(wit::SmtpError::InvalidInput(format!(
            "size {size} was declared, but the message is {actual} bytes as sent"
        )))
    }
}

async fn send(
    client: &mut SmtpClient,
    signer: Option<&DkimSigner>,
    envelope: wit::Envelope,
    options: &MessageOptions,
    size: Option<u64>,
    body: wit::Body,
) -> Result<wit::Delivery, wit::SmtpError> {
    let to: Vec<&str> = envelope.recipients.iter().map(String::as_str).collect();
    let outcome = match body {
        wit::Body::Bytes(mut bytes) => {
            check_size(&bytes, options, size)?;
            if let Some(signer) = signer {
                bytes = dkim_sign(signer, &bytes)?;
            }
            client
                .send_mail_bytes_with(&envelope.sender, &to, &bytes, options)
                .await
        }
        // A stream is read once, as it is sent: it cannot be hashed first. Refused before
        // anything of the message goes out; the session goes on.
        wit::Body::Stream(_) if signer.is_some() => {
            return Err(wit::SmtpError::InvalidInput(
                "dkim: a streamed body cannot be signed (it cannot be read twice); \
                 give the message as bytes, or send it on a session without dkim"
                    .to_owned(),
            ));
        }
        wit::Body::Stream(stream) => {
            let mut body = InputStreamBody::new(stream);
            if let Some(size) = size {
                body = body.with_size_hint(size);
            }
            client
                .send_mail_stream_with(&envelope.sender, &to, &mut body, options)
                .await
        }
    }
    .map_err(|e| error(&e))?;
    Ok(delivery(client, outcome))
}

fn auth_mechanism(client: &SmtpClient) -> Option<String> {
    client
        .session()
        .authenticated()
        .map(|m| m.name().to_owned())
}

fn delivery(client: &SmtpClient, outcome: SendOutcome) -> wit::Delivery {
    wit::Delivery {
        queue_id: outcome.queue_id,
        reply: reply(&outcome.reply),
        recipients: outcome
            .recipients
            .iter()
            .map(|r| recipient(&r.recipient, &r.reply))
            .collect(),
        size: outcome.size,
        tls_version: client
            .transport()
            .tls_info()
            .map(|(version, _)| format!("{version:?}")),
        auth_mechanism: auth_mechanism(client),
    }
}

fn reply(reply: &Reply) -> wit::ServerReply {
    wit::ServerReply {
        code: reply.code().get(),
        enhanced: reply.enhanced().map(|e| e.to_string()),
        text: reply.text().to_owned(),
    }
}

fn recipient(address: &str, r: &Reply) -> wit::RecipientResult {
    wit::RecipientResult {
        recipient: address.to_owned(),
        accepted: r.code().is_positive(),
        reply: reply(r),
    }
}

fn operation(op: SmtpOp) -> wit::Operation {
    use wit::Operation as O;
    match op {
        SmtpOp::Connect => O::Connect,
        SmtpOp::Greeting => O::Greeting,
        SmtpOp::Ehlo => O::Ehlo,
        SmtpOp::Helo => O::Helo,
        SmtpOp::Lhlo => O::Lhlo,
        SmtpOp::StartTls => O::Starttls,
        SmtpOp::TlsHandshake => O::TlsHandshake,
        SmtpOp::Auth => O::Auth,
        SmtpOp::MailFrom => O::MailFrom,
        SmtpOp::RcptTo => O::RcptTo,
        SmtpOp::Data => O::Data,
        SmtpOp::DataEnd => O::DataEnd,
        SmtpOp::Bdat => O::Bdat,
        SmtpOp::Rset => O::Rset,
        SmtpOp::Noop => O::Noop,
        SmtpOp::Quit => O::Quit,
        SmtpOp::ReadBody => O::ReadBody,
        SmtpOp::Close => O::Close,
        _ => O::Other,
    }
}

fn io_kind(kind: std::io::ErrorKind) -> wit::IoKind {
    use std::io::ErrorKind as E;
    use wit::IoKind as K;
    match kind {
        E::ConnectionRefused => K::ConnectionRefused,
        E::ConnectionReset => K::ConnectionReset,
        E::ConnectionAborted => K::ConnectionAborted,
        E::NotConnected => K::NotConnected,
        E::BrokenPipe => K::BrokenPipe,
        E::UnexpectedEof => K::UnexpectedEof,
        E::TimedOut => K::TimedOut,
        E::NotFound => K::NotFound,
        E::PermissionDenied => K::PermissionDenied,
        E::InvalidData => K::InvalidData,
        E::InvalidInput => K::InvalidInput,
        E::Unsupported => K::Unsupported,
        E::AddrNotAvailable => K::AddrNotAvailable,
        _ => K::Other,
    }
}

/// The operation an error happened in: the engine's own answer (`SmtpError::during`), never a
/// table of this component's.
fn during(err: &smtp::SmtpError) -> wit::Operation {
    err.during().map_or(wit::Operation::Other, operation)
}

/// Who is to blame: the engine's answer (`SmtpError::blame`).
fn blame(err: &smtp::SmtpError) -> wit::Blame {
    match err.blame() {
        Blame::ServerRefused => wit::Blame::ServerRefused,
        Blame::ServerMisbehaved => wit::Blame::ServerMisbehaved,
        Blame::LocalCheck => wit::Blame::LocalCheck,
        Blame::Caller => wit::Blame::Caller,
        Blame::Io => wit::Blame::Io,
        Blame::Timeout => wit::Blame::Timeout,
        _ => wit::Blame::Other,
    }
}

/// The typed WIT error for a client error: the same classes, the same blame.
fn error(err: &smtp::SmtpError) -> wit::SmtpError {
    let message = err.to_string();
    match err {
        smtp::SmtpError::Io { error, .. } => wit::SmtpError::Io(wit::IoError {
            during: during(err),
            kind: io_kind(error.kind),
            message,
        }),
        smtp::SmtpError::Timeout { after, .. } => wit::SmtpError::Timeout(wit::TimeoutError {
            during: during(err),
            after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
        }),
        smtp::SmtpError::DeadlineExceeded { after, .. } => {
            wit::SmtpError::DeadlineExceeded(wit::TimeoutError {
                during: during(err),
                after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
            })
        }
        smtp::SmtpError::Protocol(p) => {
            use wit::ProtocolErrorKind as K;
            let (kind, refused) = match p {
                ProtocolError::UnexpectedCode { .. } => (K::UnexpectedCode, Vec::new()),
                ProtocolError::ExtensionUnavailable { .. } => (K::ExtensionUnavailable, Vec::new()),
                ProtocolError::Malformed { .. } => (K::Malformed, Vec::new()),
                ProtocolError::OutOfSync { .. } => (K::OutOfSync, Vec::new()),
                ProtocolError::ResponseInjection { .. } => (K::ResponseInjection, Vec::new()),
                ProtocolError::UnsolicitedReply { .. } => (K::UnsolicitedReply, Vec::new()),
                ProtocolError::ConnectionClosed { .. } => (K::ConnectionClosed, Vec::new()),
                ProtocolError::RecipientsRefused { refused, .. } => (
                    K::RecipientsRefused,
                    refused
                        .iter()
                        .map(|r| recipient(&r.recipient, &r.reply))
                        .collect(),
                ),
                ProtocolError::MessageTooLarge { .. } => (K::MessageTooLarge, Vec::new()),
                _ => (K::Other, Vec::new()),
            };
            // The operation is the engine's own answer (`SmtpError::during`), never a table of
            // this component's.
            wit::SmtpError::Protocol(wit::ProtocolError {
                kind,
                blame: blame(err),
                during: err.during().map(operation),
                reply: err.reply().map(reply),
                refused,
                message,
            })
        }
        smtp::SmtpError::Auth(a) => {
            use wit::AuthErrorKind as K;
            let kind = match a {
                AuthError::UnsupportedMechanism { .. } => K::UnsupportedMechanism,
                AuthError::Rejected { .. } => K::Rejected,
                AuthError::MalformedChallenge { .. } => K::MalformedChallenge,
                AuthError::TooManyChallenges { .. } => K::TooManyChallenges,
                AuthError::Scram { .. } => K::Scram,
                AuthError::ChannelBindingUnavailable { .. } => K::ChannelBindingUnavailable,
                AuthError::PlaintextRefused { .. } => K::PlaintextRefused,
                _ => K::Other,
            };
            wit::SmtpError::Auth(wit::AuthError {
                kind,
                blame: blame(err),
                reply: err.reply().map(reply),
                message,
            })
        }
        smtp::SmtpError::InvalidInput(_) => wit::SmtpError::InvalidInput(message),
        smtp::SmtpError::Policy(_) => wit::SmtpError::Policy(message),
        _ => wit::SmtpError::Other(message),
    }
}
