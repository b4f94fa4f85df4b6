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
    AuthError, AuthMechanism, Blame, DataPipelining, ExtensionUse, Fate, MessageOptions,
    OutgoingMessage, Protocol, ProtocolError, RecipientPolicy, Reply, Secret, SendOutcome, SmtpOp,
    TlsMode, TranscriptSink,
};

use bindings::exports::smtp_rs::smtp::client as wit;
use connect::*;
use convert::*;
use message::*;

mod connect;
mod convert;
mod message;

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
    ) -> Result<wit::Delivery, wit::SendFailure> {
        // Signed before connecting: a key or a message that cannot be signed opens nothing.
        let message = match options.dkim.take() {
            Some(dkim) => dkim_signer(dkim)
                .and_then(|signer| dkim_sign(&signer, &message))
                .map_err(not_sent)?,
            None => message,
        };
        block_on(async {
            let (mut client, _, _) = open(options).await.map_err(not_sent)?;
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
    ) -> Result<wit::Delivery, wit::SendFailure> {
        let (message_options, size) = message_options(&options).map_err(not_sent)?;
        let signer = self.signer.as_ref();
        let mut slot = self.client.borrow_mut();
        let client = slot.as_mut().ok_or_else(|| not_sent(ended()))?;
        block_on(send(client, signer, envelope, &message_options, size, body))
    }

    fn send_batch(
        &self,
        messages: Vec<wit::Outgoing>,
    ) -> Vec<Result<wit::Delivery, wit::SendFailure>> {
        let mut slot = self.client.borrow_mut();
        let Some(client) = slot.as_mut() else {
            return messages.iter().map(|_| Err(not_sent(ended()))).collect();
        };
        // Each message's options and size checked here: one that fails gets its error and stays
        // out of the batch; the others go.
        let mut results: Vec<Option<Result<wit::Delivery, wit::SendFailure>>> =
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
                Err(e) => results[i] = Some(Err(not_sent(e))),
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
        let sent = block_on(client.deliver_batch(&batch));
        for ((i, _, _, _), delivery) in prepared.iter().zip(sent) {
            results[*i] = Some(delivered(client, delivery));
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| Err(not_sent(wit::SmtpError::Other("no result".to_owned()))))
            })
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
