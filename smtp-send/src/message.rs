//! The message as a body to send, opened before any connection (an unreadable file fails
//! without network traffic): a file, standard input, the composed message or the sample, and
//! with `--dkim-key` its signature in front.

use std::fmt;
use std::io::IsTerminal;
use std::path::Path;

use smtp_io_tokio::ReaderBody;
use tokio::io::AsyncRead;

use crate::exit::{Exit, Failure};
use crate::plan::{Dkim, MessageSource, Plan, sample_message};
use crate::progress;

/// A streamed message body.
pub type Body = ReaderBody<Box<dyn AsyncRead + Unpin + Send>>;

/// Open the message before connecting, so an unreadable file fails without any network traffic.
/// With `--dkim-key` it is signed now too: a message in memory directly, a regular file by a
/// first read that hashes it (the second read sends it), standard input after reading it whole.
pub async fn open_message(plan: &Plan) -> Result<Body, Failure> {
    let dkim = plan.dkim.as_ref();
    match &plan.message {
        MessageSource::File(path) => open_file(path, dkim).await,
        MessageSource::Stdin => {
            if std::io::stdin().is_terminal() {
                eprintln!("smtp-send: reading the message from standard input (end with Ctrl-D)");
            }
            match dkim {
                // Signing needs the whole message before its first byte is sent.
                Some(dkim) => {
                    let mut bytes = Vec::new();
                    tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut bytes)
                        .await
                        .map_err(|e| {
                            Failure::new(
                                Exit::LocalIo,
                                format!("cannot read the message from standard input: {e}"),
                            )
                        })?;
                    Ok(in_memory(dkim_prepend(dkim, bytes)?))
                }
                None => Ok(ReaderBody::new(progress::wrap(tokio::io::stdin(), None))),
            }
        }
        MessageSource::Sample => Ok(in_memory(maybe_sign(
            dkim,
            sample_message(&plan.from, &plan.to)
                .replace('\n', "\r\n")
                .into_bytes(),
        )?)),
        MessageSource::Compose(compose) => Ok(in_memory(maybe_sign(
            dkim,
            compose.build(&plan.from, &plan.to, &plan.ehlo).await?,
        )?)),
    }
}

/// `message`, signed when `dkim` is given.
fn maybe_sign(dkim: Option<&Dkim>, message: Vec<u8>) -> Result<Vec<u8>, Failure> {
    match dkim {
        Some(dkim) => dkim_prepend(dkim, message),
        None => Ok(message),
    }
}

/// The message with its `DKIM-Signature` field in front, signed at the system clock's time.
fn dkim_prepend(dkim: &Dkim, message: Vec<u8>) -> Result<Vec<u8>, Failure> {
    dkim.0.prepend_now(&message).map_err(|e| dkim_failure(&e))
}

/// A message that cannot be signed (no From, a malformed header section): the user's to fix.
fn dkim_failure(e: &smtp_dkim::Error) -> Failure {
    Failure::new(Exit::Usage, format!("cannot DKIM-sign the message: {e}"))
}

/// The `DKIM-Signature` field of the file, read from its position to its end, which is then
/// sought back: the first of the two reads of a signed file (constant memory).
async fn dkim_header_of_file(
    dkim: &Dkim,
    file: &mut tokio::fs::File,
) -> Result<Result<smtp_dkim::DkimHeader, smtp_dkim::Error>, std::io::Error> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let start = file.stream_position().await?;
    let mut hasher = dkim.0.message_hasher();
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if let Err(e) = hasher.update(buf.get(..n).unwrap_or_default()) {
            file.seek(std::io::SeekFrom::Start(start)).await?;
            return Ok(Err(e));
        }
    }
    file.seek(std::io::SeekFrom::Start(start)).await?;
    Ok(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| smtp_dkim::Error::Clock)
        .and_then(|now| hasher.finish(now.as_secs())))
}

/// A message held in memory: its size as sent is known exactly.
fn in_memory(bytes: Vec<u8>) -> Body {
    let size = smtp_io_tokio::normalized_len(&bytes);
    let len = bytes.len() as u64;
    ReaderBody::new(progress::wrap(std::io::Cursor::new(bytes), Some(len))).with_size_hint(size)
}

async fn open_file(path: &Path, dkim: Option<&Dkim>) -> Result<Body, Failure> {
    let unreadable = |e: &dyn fmt::Display| {
        Failure::new(
            Exit::LocalIo,
            format!("cannot read the message file {}: {e}", path.display()),
        )
    };
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| unreadable(&e))?;
    let meta = file.metadata().await.map_err(|e| unreadable(&e))?;
    if meta.is_dir() {
        return Err(unreadable(&"it is a directory"));
    }
    // A regular file is read once first for its size as sent (RFC 1870's SIZE counts CRLF line
    // endings, so a file with bare LFs is larger on the wire than on disk).
    let size = if meta.is_file() {
        Some(
            smtp_io_tokio::size_as_sent(&mut file)
                .await
                .map_err(|e| unreadable(&e))?,
        )
    } else {
        None
    };
    let Some(dkim) = dkim else {
        let body = ReaderBody::new(progress::wrap(file, meta.is_file().then_some(meta.len())));
        return Ok(match size {
            Some(size) => body.with_size_hint(size),
            None => body,
        });
    };
    if !meta.is_file() {
        // A pipe or a device cannot be read twice: signed in memory.
        let mut bytes = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut file, &mut bytes)
            .await
            .map_err(|e| unreadable(&e))?;
        return Ok(in_memory(dkim_prepend(dkim, bytes)?));
    }
    // Read twice: once now to sign it, once to send it behind its signature.
    let header = dkim_header_of_file(dkim, &mut file)
        .await
        .map_err(|e| unreadable(&e))?
        .map_err(|e| dkim_failure(&e))?
        .into_string()
        .into_bytes();
    let extra = header.len() as u64;
    let reader = tokio::io::AsyncReadExt::chain(std::io::Cursor::new(header), file);
    let body = ReaderBody::new(progress::wrap(reader, Some(meta.len() + extra)));
    Ok(match size {
        Some(size) => body.with_size_hint(size + extra),
        None => body,
    })
}
