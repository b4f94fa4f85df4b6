//! The session's side of mail transactions: the checks before a message, starting it, queueing
//! what its [`Transaction`] allows, carrying out the [`Reaction`] to each reply, and batch
//! chaining (the next message's envelope behind the previous end of data, RFC 2920 section 3.1).

use super::transaction::{
    BodyEncoding, BodyLimit, BodyMode, Flight, LimitSource, Next, Reaction, Setup, Transaction,
};
use super::{
    BodyInfo, Envelope, Event, ExtensionUse, InFlight, MessageId, MessageOptions, Pending,
    Protocol, Session,
};
#[allow(unused_imports)]
use crate::alloc_prelude::*;
use crate::audit::AuditEvent;
use crate::capabilities::Extension;
use crate::command::{Address, BodyType, Command, MailParams};
use crate::error::{ArgumentError, Field, InvalidInputError, ProtocolError, SmtpError};
use crate::reply::Reply;
use crate::state::SmtpOp;

/// What the checks before a message found out.
struct Checked {
    known_size: Option<u64>,
    needs_utf8: bool,
    chunking: bool,
    body_type: Option<BodyType>,
}

impl Session {
    /// Start a message: checks (policy, SIZE, SMTPUTF8, DSN, REQUIRETLS) run first and queue
    /// nothing on failure; then MAIL, RCPT and DATA / BDAT are queued as pipelining allows.
    /// The body is asked for with [`Event::BodyWanted`]; the result is [`Event::Sent`] or
    /// [`Event::MessageFailed`], both carrying the returned [`MessageId`].
    pub fn start_mail(
        &mut self,
        envelope: Envelope,
        body: BodyInfo,
        options: &MessageOptions,
    ) -> Result<MessageId, SmtpError> {
        self.check_open(SmtpOp::MailFrom)?;
        let chain = self.can_chain();
        if !chain && (!self.standing.is_idle() || !self.pending.is_empty()) {
            return Err(self.wrong_state(SmtpOp::MailFrom));
        }
        let Checked {
            known_size,
            needs_utf8,
            chunking,
            body_type,
        } = self.check_message(&envelope, body, options)?;
        // This message's body, when it goes out, is held to the write-progress rule from its
        // own first byte.
        self.clock.body_ended();
        let caps = &self.caps;
        let mode = match (chunking, body) {
            (false, _) => BodyMode::Data,
            (true, BodyInfo::Known { size, .. }) => BodyMode::BdatWhole { size },
            (true, BodyInfo::Streamed { .. }) => BodyMode::BdatChunked,
        };
        let mail_params = MailParams {
            size: if caps.has(Extension::Size) {
                known_size
            } else {
                None
            },
            body: body_type,
            smtputf8: needs_utf8,
            ret: options.dsn_return,
            envid: options.envelope_id.clone(),
            requiretls: options.require_tls,
        };
        let encoding = if body_type == Some(BodyType::BinaryMime) {
            BodyEncoding::Binary
        } else {
            BodyEncoding::Lines
        };
        // What is sent is counted against the tightest known bound, so a stream cannot send
        // more than it declared, nor more than the policy or the server allow.
        let limit = [
            known_size.map(|bytes| BodyLimit {
                bytes,
                source: LimitSource::Declared,
            }),
            self.config
                .policy
                .max_message_size()
                .map(|bytes| BodyLimit {
                    bytes,
                    source: LimitSource::Policy,
                }),
            caps.size_limit().map(|bytes| BodyLimit {
                bytes,
                source: LimitSource::Server,
            }),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|l| l.bytes);
        if chain {
            // RFC 2920 section 3.1: MAIL may follow the end of the previous message's data in
            // the same group. That transaction's last replies are matched before ours.
            if let Some(previous) = self.txn.take() {
                self.finishing.push_back(previous);
            }
        }
        let id = self.last_message.next();
        self.last_message = id;
        let setup = Setup {
            mail_params,
            notify: options.notify,
            mode,
            size: known_size,
            policy: options
                .recipient_policy
                .unwrap_or(self.config.recipient_policy),
            original_recipients: options.original_recipients.clone(),
            limit,
            encoding,
        };
        self.txn = Some(Transaction::new(id, envelope, setup));
        self.standing.mail_started();
        self.pump();
        Ok(id)
    }

    /// Whether a streamed body's exact size as sent, known to be at most `at_most` bytes, can
    /// change what happens to it: only when the server advertised a SIZE limit (RFC 1870) that
    /// `at_most` exceeds. Otherwise the body fits whatever its exact size, and counting it first
    /// (a file read once more) would be work for nothing: the client then declares no `SIZE=`
    /// (the parameter is optional) and the body is sent as it comes.
    pub fn needs_exact_size(&self, at_most: u64) -> bool {
        matches!(self.caps.size_limit(), Some(limit) if at_most > limit)
    }

    /// Run every check [`start_mail`](Self::start_mail) makes before sending anything, without
    /// starting the message: the policy, and the server's capabilities (SMTPUTF8 for UTF-8
    /// addresses, SIZE, DSN, REQUIRETLS, BINARYMIME). A caller can run it right after the
    /// handshake, before authenticating, to refuse a message the server cannot take.
    pub fn check_mail(
        &self,
        envelope: &Envelope,
        body: BodyInfo,
        options: &MessageOptions,
    ) -> Result<(), SmtpError> {
        self.check_message(envelope, body, options).map(drop)
    }

    /// The checks of [`check_mail`](Self::check_mail), and what they found out.
    fn check_message(
        &self,
        envelope: &Envelope,
        body: BodyInfo,
        options: &MessageOptions,
    ) -> Result<Checked, SmtpError> {
        let known_size = match body {
            BodyInfo::Known { size, .. } => Some(size),
            BodyInfo::Streamed { size_hint } => size_hint,
        };
        // Local policy first: nothing about this message reaches the server if it refuses.
        let policy = &self.config.policy;
        if let Err(e) = policy
            .check_sender(&envelope.from)
            .and_then(|_| policy.check_recipients(&envelope.to))
            .and_then(|_| policy.check_message_size(known_size))
        {
            self.config.audit.record(&AuditEvent::PolicyRefused {
                reason: e.reason.clone(),
            });
            return Err(e.into());
        }
        let caps = &self.caps;
        // SMTPUTF8 (RFC 6531).
        let needs_utf8 =
            envelope.from.needs_smtputf8() || envelope.to.iter().any(Address::needs_smtputf8);
        if needs_utf8 && !caps.has(Extension::SmtpUtf8) {
            let field = if envelope.from.needs_smtputf8() {
                Field::ReversePath
            } else {
                Field::ForwardPath
            };
            let _ = field;
            return Err(ProtocolError::ExtensionUnavailable {
                name: Extension::SmtpUtf8,
            }
            .into());
        }
        // SIZE (RFC 1870): refuse before anything is sent.
        if let (Some(size), Some(limit)) = (known_size, caps.size_limit()) {
            if size > limit {
                return Err(ProtocolError::MessageTooLarge { size, limit }.into());
            }
        }
        // DSN (RFC 3461): never silently dropped.
        let wants_dsn = options.dsn_return.is_some()
            || options.envelope_id.is_some()
            || options.notify.is_some()
            || !options.original_recipients.is_empty();
        if !options.original_recipients.is_empty()
            && options.original_recipients.len() != envelope.to.len()
        {
            return Err(InvalidInputError::argument(
                Field::OriginalRecipient,
                ArgumentError::Syntax("give one original recipient per recipient, or none"),
            )
            .into());
        }
        if wants_dsn && !caps.has(Extension::Dsn) {
            return Err(ProtocolError::ExtensionUnavailable {
                name: Extension::Dsn,
            }
            .into());
        }
        // REQUIRETLS (RFC 8689): only on TLS, only when offered.
        if options.require_tls && (!self.tls || !caps.has(Extension::RequireTls)) {
            return Err(ProtocolError::ExtensionUnavailable {
                name: Extension::RequireTls,
            }
            .into());
        }
        let chunking =
            self.config.chunking == ExtensionUse::WhenOffered && caps.has(Extension::Chunking);
        let body_type = options.body_type.or(match body {
            BodyInfo::Known {
                eight_bit: true, ..
            } if caps.has(Extension::EightBitMime) => Some(BodyType::EightBitMime),
            BodyInfo::Streamed { .. } if caps.has(Extension::EightBitMime) => {
                Some(BodyType::EightBitMime)
            }
            _ => None,
        });
        if body_type == Some(BodyType::BinaryMime) && !(chunking && caps.has(Extension::BinaryMime))
        {
            return Err(ProtocolError::ExtensionUnavailable {
                name: Extension::BinaryMime,
            }
            .into());
        }
        Ok(Checked {
            known_size,
            needs_utf8,
            chunking,
            body_type,
        })
    }

    /// May the next transaction start before the current one's final reply (batch chaining)?
    /// Only with PIPELINING, once the current body is complete and its end (dot or `BDAT LAST`)
    /// is queued so the server will close that transaction whatever it answers, and while fewer
    /// than [`SessionConfig::max_chained`] earlier transactions are still owed replies.
    pub(super) fn can_chain(&self) -> bool {
        self.pipelining()
            && !self.standing.needs_rset()
            && self.finishing.len() < self.config.max_chained
            && self
                .txn
                .as_ref()
                .is_some_and(|t| t.end_queued() && !t.failed() && t.owes_replies())
    }

    /// True when [`start_mail`](Self::start_mail) would be accepted now as far as the session's
    /// state goes: the session is idle, or the current message's body is complete and the next
    /// one may be chained behind it.
    pub fn ready_for_mail(&self) -> bool {
        self.standing.fatal().is_none()
            && (self.can_chain() || (self.standing.is_idle() && self.pending.is_empty()))
    }

    /// Queue whatever the current transaction may send now.
    pub(super) fn pump(&mut self) {
        let flight = Flight {
            pipelining: self.pipelining(),
            needs_rset: self.standing.needs_rset(),
            data_pipelining: self.config.data_pipelining,
        };
        loop {
            let Some(txn) = self.txn.as_ref() else { return };
            let next = txn.next(flight);
            let before = self.out.len();
            match next {
                Next::Wait => return,
                Next::Refused => {
                    self.txn_mut().refuse();
                    self.maybe_complete_txn();
                    return;
                }
                Next::Rset => {
                    if !self.can_send(Command::Rset.encoded_len()) {
                        return;
                    }
                    Command::Rset.write_to(&mut self.out);
                }
                Next::Mail => {
                    let mail = Command::MailFrom(&txn.envelope.from, &txn.mail_params);
                    if !self.can_send(mail.encoded_len()) {
                        return;
                    }
                    mail.write_to(&mut self.out);
                }
                Next::Rcpt(i) => {
                    let params = txn.rcpt_params(i);
                    let rcpt = Command::RcptTo(&txn.envelope.to[i], &params);
                    if !self.can_send(rcpt.encoded_len()) {
                        return;
                    }
                    rcpt.write_to(&mut self.out);
                }
                Next::Body { pipelined } => {
                    if pipelined && !self.can_send(Command::Data.encoded_len()) {
                        return;
                    }
                    if txn.mode == BodyMode::Data {
                        Command::Data.write_to(&mut self.out);
                    }
                }
            }
            let written = self.out.len() - before;
            let txn = self.txn_mut();
            txn.queued(next);
            let (id, mode) = (txn.id, txn.mode);
            let what = match next {
                Next::Rset => Pending::Rset { lazy: true },
                Next::Mail => Pending::Mail,
                Next::Rcpt(i) => Pending::Rcpt(i),
                Next::Body { .. } if mode == BodyMode::Data => Pending::Data,
                Next::Body { .. } | Next::Refused | Next::Wait => {
                    // BDAT: the body goes after the envelope, framed by `send_body`.
                    self.standing.body_started();
                    self.events.push_back(Event::BodyWanted(id));
                    return;
                }
            };
            self.log_written(before);
            self.push_pending(what, written);
            if what == Pending::Data {
                return;
            }
        }
    }

    /// The current transaction (there is one whenever this is called).
    fn txn_mut(&mut self) -> &mut Transaction {
        self.txn.as_mut().expect("transaction present")
    }

    /// A reply to a transaction's command (`what.is_txn()`). It belongs to the oldest chained
    /// transaction still owed replies, or else to the current one.
    pub(super) fn on_txn_reply(&mut self, what: Pending, reply: Reply) {
        let lmtp = self.config.protocol == Protocol::Lmtp;
        let chained = !self.finishing.is_empty();
        let txn = match self.finishing.front_mut() {
            Some(oldest) => oldest,
            None => match self.txn.as_mut() {
                Some(current) => current,
                None => return,
            },
        };
        let id = txn.id;
        match txn.on_reply(what, reply, lmtp) {
            Reaction::Continue => {}
            Reaction::ResetDone => self.standing.set_needs_rset(false),
            Reaction::WantBody => {
                self.standing.body_started();
                self.events.push_back(Event::BodyWanted(id));
            }
            Reaction::LoneDot => {
                self.out.extend_from_slice(b".\r\n");
                self.push_pending(Pending::DataEnd, 0);
            }
            Reaction::AnotherLmtpReply => self.pending.push_front(InFlight {
                what: Pending::DataEnd,
                bytes: 0,
            }),
            Reaction::Close(error) => {
                self.fail(error);
                return;
            }
        }
        if chained && self.finishing.front().is_some_and(|t| t.is_complete(false)) {
            let done = self.finishing.pop_front().expect("checked");
            self.report(done);
        }
        self.pump();
        self.maybe_complete_txn();
    }

    /// Report the current transaction once every reply it is owed has arrived.
    pub(super) fn maybe_complete_txn(&mut self) {
        if self.standing.is_closed() {
            return;
        }
        let body_wanted = self.wants_body();
        if !self
            .txn
            .as_ref()
            .is_some_and(|t| t.is_complete(body_wanted))
        {
            return;
        }
        let txn = self.txn.take().expect("checked");
        self.standing.mail_ended();
        self.report(txn);
    }

    /// Emit a complete transaction's result.
    fn report(&mut self, txn: Transaction) {
        if txn.failed() {
            // A failed transaction the server still holds open must be reset before the next
            // MAIL.
            self.standing.set_needs_rset(txn.left_open());
        } else {
            // The server ended the transaction by taking the message, even after refusing the
            // RSET before it: nothing is left open.
            self.standing.set_needs_rset(false);
        }
        let (audit, event) = txn.into_report();
        self.config.audit.record(&audit);
        self.events.push_back(event);
    }
}
