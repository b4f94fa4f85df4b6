//! DKIM signing (feature `dkim`, which needs Rust 1.88): the `smtp-dkim` signer, and helpers
//! to sign what a connected [`SmtpClient`](crate::SmtpClient) sends.
//!
//! Signing stays out of the client itself: a message is signed first, then sent as usual. A
//! [`Mailer`](crate::Mailer) signs every message it sends once it is given a signer
//! ([`MailerBuilder::dkim`](crate::MailerBuilder::dkim)); with a connected client:
//!
//! - **in memory**: [`DkimSigner::prepend_now`] gives the message with its `DKIM-Signature`
//!   field in front, sent with `send_mail_bytes` (or any other way of sending bytes);
//! - **a file**: [`sign_file`] reads it once (to hash it and count its size) and gives a body
//!   that sends the field and then the file, read a second time;
//! - **any other streamed body that can be read twice**: [`sign_stream`] hashes one copy, and
//!   the field goes before a second copy in a [`PrefixedBody`].
//!
//! A body that can be read only once (standard input, a network stream) cannot be signed
//! without keeping it: the signature goes before the message, and covers all of it. What is
//! signed is the message as the client sends it (line endings normalised by the same code,
//! dot-stuffing undone by the server), so a message with bare LF line endings verifies as the
//! server receives it.
//!
//! ```no_run
//! use smtp_io_tokio::dkim::{DkimKey, DkimSigner, sign_file};
//!
//! # async fn demo(client: &mut smtp_io_tokio::SmtpClient<smtp_io_tokio::TokioTransport>)
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! let key = DkimKey::from_pem(&std::fs::read_to_string("/etc/app/dkim.pem")?)?;
//! let signer = DkimSigner::new(key, "example.com", "sel2026")?;
//!
//! // In memory: the field in front of the message.
//! let message = b"From: me@example.com\r\nTo: you@example.org\r\nSubject: hi\r\n\r\nHello!\r\n";
//! let signed = signer.prepend_now(message)?;
//! client.send_mail_bytes("me@example.com", &["you@example.org"], &signed).await?;
//!
//! // Streamed: the file is read once to sign it, once to send it.
//! let mut body = sign_file(&signer, "/var/spool/app/report.eml").await?;
//! client.send_mail_stream("me@example.com", &["you@example.org"], &mut body).await?;
//! # Ok(()) }
//! ```

use std::io::{self, Read as _};
use std::path::Path;

use smtp_proto::body::SizeCounter;
use smtp_proto::error::{ArgumentError, Field, InvalidInputError, Unsignable};

use crate::{MessageBody, ReaderBody, SmtpError, SmtpOp};

pub use smtp_dkim::{
    Algorithm, Canonicalization, DEFAULT_SIGNED_HEADERS, DkimHeader, DkimKey, DkimSigner,
    Error as DkimError, KeyError, MAX_HEADER_BYTES,
};
pub use smtp_proto::client::PrefixedBody;

/// How much of a file [`sign_file`] reads at a time (as [`ReaderBody::open`] does).
const FILE_CHUNK: usize = 1024 * 1024;

/// Why a message could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The message could not be read (to hash it).
    #[error("reading the message to DKIM-sign it: {0}")]
    Read(#[source] io::Error),
    /// The message cannot be signed: no `From` field, a malformed header section, one larger
    /// than [`MAX_HEADER_BYTES`].
    #[error("the message cannot be DKIM-signed: {0}")]
    Dkim(#[from] DkimError),
}

/// A message that could not be signed, as a client or pool error: a read failure is
/// [`SmtpError::Io`] during [`SmtpOp::ReadBody`]; a message that cannot be signed is
/// [`SmtpError::InvalidInput`], an invalid [message body](Field::Body) (the caller's to fix)
/// whose reason, [`ArgumentError::Unsignable`], says why ([`Unsignable`]).
impl From<SignError> for SmtpError {
    fn from(e: SignError) -> SmtpError {
        match e {
            SignError::Read(e) => SmtpError::io(
                SmtpOp::ReadBody,
                e.kind(),
                format!("reading the message to DKIM-sign it: {e}"),
            ),
            SignError::Dkim(e) => unsignable(&e),
        }
    }
}

/// A pool that signs refuses a message that goes as `BODY=BINARYMIME` ([`Unsignable::BinaryMime`]):
/// sent byte for byte, it would not match its signature. `options` are the message's own; the
/// pool's defaults are checked when it is built.
pub(crate) fn check_signable(
    options: Option<&smtp_proto::MessageOptions>,
) -> Result<(), SmtpError> {
    if options.and_then(|o| o.body_type) != Some(smtp_proto::command::BodyType::BinaryMime) {
        return Ok(());
    }
    let why = ArgumentError::Unsignable(Unsignable::BinaryMime);
    Err(InvalidInputError::argument(Field::Body, why).into())
}

/// The error of a message `smtp-dkim` refused to sign (none of its errors holds key bytes).
pub(crate) fn unsignable(e: &DkimError) -> SmtpError {
    let why = match e {
        DkimError::MissingFrom => Unsignable::MissingFrom,
        DkimError::MalformedHeader { .. } => Unsignable::MalformedHeader,
        DkimError::HeadersTooLarge { .. } => Unsignable::HeadersTooLarge,
        DkimError::Clock => Unsignable::Clock,
        _ => Unsignable::Signature,
    };
    tracing::warn!(error = %e, "DKIM signing failed");
    InvalidInputError::argument(Field::Body, ArgumentError::Unsignable(why)).into()
}

/// Seconds since 1970 by the system clock: a signature's `t=`.
pub(crate) fn unix_now() -> Result<u64, DkimError> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| DkimError::Clock)
}

/// Sign a streamed message (a whole RFC 5322 message, any line endings) by reading `body` to
/// its end, at the time of the system clock. Memory stays constant (the header section is
/// kept, at most [`MAX_HEADER_BYTES`]). `body` is consumed: send a second copy of the same
/// message behind the field, `PrefixedBody::new(header.into_string().into_bytes(), copy)`.
pub async fn sign_stream<B: MessageBody>(
    signer: &DkimSigner,
    body: &mut B,
) -> Result<DkimHeader, SignError> {
    sign_and_count(signer, body).await.map(|(header, _)| header)
}

/// [`sign_stream`], and the message's size as sent (CRLF line ends and a final CRLF, as the
/// engine counts it), from the same pass.
pub(crate) async fn sign_and_count<B: MessageBody>(
    signer: &DkimSigner,
    body: &mut B,
) -> Result<(DkimHeader, u64), SignError> {
    let mut hasher = signer.message_hasher();
    let mut counter = SizeCounter::new();
    let mut buf = vec![0; body.chunk_size().max(1)];
    loop {
        let n = body.read_chunk(&mut buf).await.map_err(SignError::Read)?;
        let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
            break;
        };
        hasher.update(chunk)?;
        counter.update(chunk);
    }
    Ok((hasher.finish(unix_now()?)?, counter.total()))
}

/// Sign the message in the file at `path` and make it ready to send with
/// [`SmtpClient::send_mail_stream`](crate::SmtpClient::send_mail_stream): one pass over the
/// file (on tokio's blocking pool) hashes it and counts its size as sent; the body returned
/// yields the `DKIM-Signature` field, then the file from its start (the second pass), 1 MiB at
/// a time, with the whole size as its hint. The file must not change in between.
pub async fn sign_file(
    signer: &DkimSigner,
    path: impl AsRef<Path>,
) -> Result<PrefixedBody<ReaderBody<tokio::fs::File>>, SignError> {
    let path = path.as_ref().to_owned();
    let signer = signer.clone();
    let now = unix_now()?;
    let pass = tokio::task::spawn_blocking(move || -> Result<_, SignError> {
        let mut file = std::fs::File::open(&path).map_err(SignError::Read)?;
        let mut hasher = signer.message_hasher();
        let mut counter = SizeCounter::new();
        let mut buf = vec![0; FILE_CHUNK];
        loop {
            let n = match file.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(SignError::Read(e)),
            };
            let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                break;
            };
            hasher.update(chunk)?;
            counter.update(chunk);
        }
        let header = hasher.finish(now)?;
        std::io::Seek::rewind(&mut file).map_err(SignError::Read)?;
        Ok((header, file, counter.total()))
    });
    let (header, file, size) = pass
        .await
        .map_err(|e| SignError::Read(io::Error::other(e.to_string())))??;
    let body = ReaderBody::new(tokio::fs::File::from_std(file))
        .with_chunk_size(FILE_CHUNK)
        .with_size_hint(size);
    Ok(PrefixedBody::new(header.into_string().into_bytes(), body))
}
