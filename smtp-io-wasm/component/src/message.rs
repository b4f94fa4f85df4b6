//! One message from the WIT types: its options, its DKIM signature, the size check, and
//! sending it (bytes or a `wasi:io` stream).

use super::*;

pub(crate) fn canonicalization(c: wit::DkimCanonicalization) -> Canonicalization {
    match c {
        wit::DkimCanonicalization::Relaxed => Canonicalization::Relaxed,
        wit::DkimCanonicalization::Simple => Canonicalization::Simple,
    }
}

/// The DKIM signer of the connect options. The key's PEM is taken over at once (wiped when
/// dropped, even when refused); no error quotes it (smtp-dkim's errors say only what is wrong).
pub(crate) fn dkim_signer(o: wit::DkimOptions) -> Result<DkimSigner, wit::SmtpError> {
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
pub(crate) fn dkim_sign(signer: &DkimSigner, message: &[u8]) -> Result<Vec<u8>, wit::SmtpError> {
    signer.prepend_now(message).map_err(|e| match e {
        // The message cannot be signed (no From, a malformed header section): the caller's.
        smtp_dkim::Error::MissingFrom | smtp_dkim::Error::MalformedHeader { .. } => {
            wit::SmtpError::InvalidInput(format!("dkim: {e}"))
        }
        _ => wit::SmtpError::Other(format!("dkim: {e}")),
    })
}

/// The engine's per-message options for the WIT ones, and the declared size.
pub(crate) fn message_options(
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
        // An envelope has a recipient at least: an empty list is always the wrong count (the
        // engine reads an empty list as none given).
        if list.is_empty() {
            return Err(wit::SmtpError::InvalidInput(
                "original-recipients: one per recipient, or none at all (leave it out)".to_owned(),
            ));
        }
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
pub(crate) fn check_size(
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

/// Send one message on `client` (signed first when `signer` is given): its delivery, or why
/// not and its fate.
pub(crate) async fn send(
    client: &mut SmtpClient,
    signer: Option<&DkimSigner>,
    envelope: wit::Envelope,
    options: &MessageOptions,
    size: Option<u64>,
    body: wit::Body,
) -> Result<wit::Delivery, wit::SendFailure> {
    let to: Vec<&str> = envelope.recipients.iter().map(String::as_str).collect();
    let delivery = match body {
        wit::Body::Bytes(mut bytes) => {
            check_size(&bytes, options, size).map_err(not_sent)?;
            if let Some(signer) = signer {
                bytes = dkim_sign(signer, &bytes).map_err(not_sent)?;
            }
            let message = OutgoingMessage::new(&envelope.sender, &to, &bytes).with_options(options);
            client.deliver(&message).await
        }
        // A stream is read once, as it is sent: it cannot be hashed first. Refused before
        // anything of the message goes out; the session goes on.
        wit::Body::Stream(_) if signer.is_some() => {
            return Err(not_sent(wit::SmtpError::InvalidInput(
                "dkim: a streamed body cannot be signed (it cannot be read twice); \
                 give the message as bytes, or send it on a session without dkim"
                    .to_owned(),
            )));
        }
        wit::Body::Stream(stream) => {
            let mut body = InputStreamBody::new(stream);
            if let Some(size) = size {
                body = body.with_size_hint(size);
            }
            client
                .deliver_stream(&envelope.sender, &to, &mut body, Some(options))
                .await
        }
    };
    delivered(client, delivery)
}
