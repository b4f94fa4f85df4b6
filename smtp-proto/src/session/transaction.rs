//! The mail transaction: MAIL, RCPT and DATA / BDAT queued as pipelining allows, their replies,
//! LMTP's reply per recipient, and batch chaining (the next message's envelope behind the
//! previous end of data).

use super::{
    BodyInfo, DataPipelining, Envelope, Event, InFlight, MessageId, MessageOptions, Pending,
    Protocol, RecipientOutcome, RecipientPolicy, SendOutcome, Session, SessionStatus, Use,
    queue_id,
};
use crate::audit::AuditEvent;
use crate::body::{DotStuffer, LineNormalizer};
use crate::capabilities::Extension;
use crate::command::{Address, BodyType, Command, MailParams, OriginalRecipient, RcptParams};
use crate::error::{
    ArgumentError, Field, InvalidInputError, PolicyError, ProtocolError, RecipientRefusal,
    SmtpError,
};
#[allow(unused_imports)]
use crate::prelude::*;
use crate::reply::{Reply, ReplyCode};
use crate::state::{SessionState, SmtpOp};

/// The most body bytes a transaction may send, and who set that bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BodyLimit {
    pub(super) bytes: u64,
    pub(super) source: LimitSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LimitSource {
    /// The size the caller declared (in memory: computed; streamed: the hint).
    Declared,
    /// [`Policy::max_message_size`](crate::policy::Policy::max_message_size).
    Policy,
    /// The server's `SIZE` limit.
    Server,
}

impl BodyLimit {
    /// The error for a body that went past this bound after `sent` bytes.
    pub(super) fn exceeded(self, sent: u64) -> SmtpError {
        match self.source {
            LimitSource::Declared => InvalidInputError::BodyLongerThanDeclared {
                declared: self.bytes,
            }
            .into(),
            LimitSource::Policy => PolicyError::new(format!(
                "message too large (more than {} bytes)",
                self.bytes
            ))
            .into(),
            LimitSource::Server => ProtocolError::MessageTooLarge {
                size: sent,
                limit: self.bytes,
            }
            .into(),
        }
    }
}

/// How body bytes are put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyEncoding {
    /// Bare CR and LF become CRLF, and a final CRLF is added when missing.
    Lines,
    /// `BODY=BINARYMIME` over BDAT: byte for byte (RFC 3030 section 3).
    Binary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyMode {
    /// DATA with dot-stuffing.
    Data,
    /// One `BDAT size LAST` whose size is known up front.
    BdatWhole { size: u64 },
    /// One `BDAT n` per chunk, then `BDAT m LAST`.
    BdatChunked,
}

/// The coarse phase of a transaction, derived from its [`Step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// MAIL / RCPT / DATA being queued or answered.
    Envelope,
    /// Waiting for body bytes from the caller.
    Body,
    /// The body is complete; waiting for the final reply(ies).
    Finishing,
}

/// How far a transaction has been sent, as one value: each step only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Nothing queued yet (RSET first when the previous transaction was left open).
    Start,
    /// RSET queued; MAIL next.
    Reset,
    /// MAIL queued, and the RCPTs of the recipients before `next_rcpt`.
    Envelope { next_rcpt: usize },
    /// DATA queued: its `354` is awaited.
    DataQueued,
    /// The caller gives the body. `bdat_header`: the header of the one `BDAT n LAST` of a body
    /// whose size is known is out.
    Body { bdat_header: bool },
    /// The body is over. `end_queued`: its end (the final dot or `BDAT LAST`) is queued, so the
    /// server will close the transaction whatever it answers.
    Finishing { end_queued: bool },
    /// The server answered the end of data: it closed the transaction.
    Ended,
}

#[derive(Debug)]
pub(super) struct Transaction {
    /// The message's handle.
    pub(super) id: MessageId,
    pub(super) envelope: Envelope,
    pub(super) mail_params: MailParams,
    pub(super) rcpt_params: RcptParams,
    pub(super) mode: BodyMode,
    pub(super) size: Option<u64>,
    pub(super) policy: RecipientPolicy,
    /// How far the transaction has been sent.
    pub(super) step: Step,
    /// The server accepted MAIL FROM.
    pub(super) mail_accepted: bool,
    pub(super) rcpt_replies: Vec<Option<Reply>>,
    /// `ORCPT=` per recipient (empty for none); each is moved into the RCPT line that uses it.
    pub(super) original_recipients: Vec<Option<OriginalRecipient>>,
    pub(super) rcpt_outstanding: usize,
    pub(super) accepted: usize,
    pub(super) refused: usize,
    pub(super) bdat_outstanding: usize,
    pub(super) body_written: u64,
    /// The most body bytes this transaction may send.
    pub(super) limit: Option<BodyLimit>,
    /// How the body is encoded.
    pub(super) encoding: BodyEncoding,
    /// LMTP: per-recipient replies still expected after the body.
    pub(super) lmtp_expected: usize,
    pub(super) lmtp_replies: Vec<Reply>,
    pub(super) final_reply: Option<Reply>,
    pub(super) failure: Option<SmtpError>,
    /// Replies still owed to this transaction (its entries in the pending queue).
    pub(super) owed: usize,
}

impl Transaction {
    /// The coarse phase of [`step`](Self::step).
    pub(super) fn phase(&self) -> Phase {
        match self.step {
            Step::Start | Step::Reset | Step::Envelope { .. } | Step::DataQueued => Phase::Envelope,
            Step::Body { .. } => Phase::Body,
            Step::Finishing { .. } | Step::Ended => Phase::Finishing,
        }
    }

    /// The end of data is queued (or answered): the server will close the transaction.
    pub(super) fn end_queued(&self) -> bool {
        matches!(
            self.step,
            Step::Finishing { end_queued: true } | Step::Ended
        )
    }

    /// The header of a whole `BDAT n LAST` is out.
    pub(super) fn bdat_header_sent(&self) -> bool {
        matches!(self.step, Step::Body { bdat_header: true })
    }

    /// The server still holds this transaction open (MAIL accepted, end of data not answered):
    /// the next MAIL needs a RSET first.
    pub(super) fn left_open(&self) -> bool {
        self.mail_accepted && self.step != Step::Ended
    }
}

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
        if !chain
            && (!matches!(
                self.state,
                SessionState::Authentication | SessionState::Ready
            ) || !self.pending.is_empty())
        {
            return Err(self.wrong_state(SmtpOp::MailFrom));
        }
        let Checked {
            known_size,
            needs_utf8,
            chunking,
            body_type,
        } = self.check_message(&envelope, body, options)?;
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
        let rcpt_params = RcptParams {
            notify: options.notify,
            orcpt: None,
        };
        let original_recipients = options
            .original_recipients
            .iter()
            .cloned()
            .map(Some)
            .collect();
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
        let n = envelope.to.len();
        if chain {
            // RFC 2920 section 3.1: MAIL may follow the end of the previous message's data in
            // the same group. That transaction's last replies are matched before ours.
            if let Some(previous) = self.txn.take() {
                self.finishing.push_back(previous);
            }
        }
        let id = self.last_message.next();
        self.last_message = id;
        self.txn = Some(Transaction {
            id,
            envelope,
            mail_params,
            rcpt_params,
            mode,
            size: known_size,
            policy: options
                .recipient_policy
                .unwrap_or(self.config.recipient_policy),
            step: Step::Start,
            mail_accepted: false,
            rcpt_replies: vec![None; n],
            original_recipients,
            rcpt_outstanding: 0,
            accepted: 0,
            refused: 0,
            bdat_outstanding: 0,
            body_written: 0,
            limit,
            encoding,
            lmtp_expected: 0,
            lmtp_replies: Vec::new(),
            final_reply: None,
            failure: None,
            owed: 0,
        });
        self.stuffer = DotStuffer::new();
        self.normalizer = LineNormalizer::new();
        self.scratch.clear();
        self.state = SessionState::Transaction;
        self.pump();
        Ok(id)
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
        let chunking = self.config.chunking == Use::WhenOffered && caps.has(Extension::Chunking);
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
            && !self.needs_rset
            && self.finishing.len() < self.config.max_chained
            && self
                .txn
                .as_ref()
                .is_some_and(|t| t.end_queued() && t.failure.is_none() && t.owed > 0)
    }

    /// True when [`start_mail`](Self::start_mail) would be accepted now as far as the session's
    /// state goes: the session is idle, or the current message's body is complete and the next
    /// one may be chained behind it.
    pub fn ready_for_mail(&self) -> bool {
        self.fatal.is_none()
            && (self.can_chain()
                || (matches!(
                    self.state,
                    SessionState::Authentication | SessionState::Ready
                ) && self.pending.is_empty()))
    }

    /// Queue whatever the transaction may send now.
    pub(super) fn pump(&mut self) {
        let pipelining = self.pipelining();
        loop {
            let Some(txn) = self.txn.as_ref() else { return };
            if txn.failure.is_some() {
                return;
            }
            match txn.step {
                Step::Start if self.needs_rset => {
                    // The previous transaction was left open: RSET first.
                    if !self.can_send(Command::Rset.encoded_len()) {
                        return;
                    }
                    self.txn_mut().step = Step::Reset;
                    self.queue(Command::Rset, Pending::Rset { lazy: true });
                }
                Step::Start | Step::Reset => {
                    // The first command of a flight always goes.
                    let len = Command::MailFrom(&txn.envelope.from, &txn.mail_params).encoded_len();
                    if !self.can_send(len) {
                        return;
                    }
                    let txn = self.txn.as_mut().expect("transaction present");
                    txn.step = Step::Envelope { next_rcpt: 0 };
                    let before = self.out.len();
                    Command::MailFrom(&txn.envelope.from, &txn.mail_params).write_to(&mut self.out);
                    let n = self.out.len() - before;
                    self.log_written(before);
                    self.push_pending(Pending::Mail, n);
                }
                Step::Envelope { next_rcpt: i } if i < txn.envelope.to.len() => {
                    let txn = self.txn.as_mut().expect("transaction present");
                    // This recipient's ORCPT, if any, is moved into the parameters for its line.
                    txn.rcpt_params.orcpt =
                        txn.original_recipients.get_mut(i).and_then(Option::take);
                    let len = Command::RcptTo(&txn.envelope.to[i], &txn.rcpt_params).encoded_len();
                    if !self.can_send(len) {
                        let txn = self.txn_mut();
                        if let Some(slot) = txn.original_recipients.get_mut(i) {
                            *slot = txn.rcpt_params.orcpt.take();
                        }
                        return;
                    }
                    let txn = self.txn.as_mut().expect("transaction present");
                    txn.step = Step::Envelope { next_rcpt: i + 1 };
                    txn.rcpt_outstanding += 1;
                    let before = self.out.len();
                    Command::RcptTo(&txn.envelope.to[i], &txn.rcpt_params).write_to(&mut self.out);
                    let n = self.out.len() - before;
                    self.log_written(before);
                    self.push_pending(Pending::Rcpt(i), n);
                }
                Step::Envelope { .. } => {
                    // Every RCPT is queued: DATA (or the body, for BDAT) when allowed.
                    let all_answered = txn.rcpt_outstanding == 0 && txn.mail_accepted;
                    if all_answered {
                        let refused_ok =
                            txn.policy == RecipientPolicy::AcceptPartial || txn.refused == 0;
                        if txn.accepted == 0 || !refused_ok {
                            let err = self.recipients_refused();
                            self.txn_mut().failure = Some(err);
                            self.maybe_complete_txn();
                            return;
                        }
                    } else {
                        let may_pipeline_data = pipelining
                            && (txn.policy == RecipientPolicy::AcceptPartial
                                || txn.envelope.to.len() == 1
                                || self.config.data_pipelining == DataPipelining::Always);
                        if !may_pipeline_data || !self.can_send(Command::Data.encoded_len()) {
                            return;
                        }
                    }
                    let txn = self.txn_mut();
                    match txn.mode {
                        BodyMode::Data => {
                            txn.step = Step::DataQueued;
                            self.queue(Command::Data, Pending::Data);
                        }
                        BodyMode::BdatWhole { .. } | BodyMode::BdatChunked => {
                            txn.step = Step::Body { bdat_header: false };
                            let id = txn.id;
                            self.state = SessionState::Data;
                            self.events.push_back(Event::BodyWanted(id));
                        }
                    }
                    return;
                }
                Step::DataQueued | Step::Body { .. } | Step::Finishing { .. } | Step::Ended => {
                    return;
                }
            }
        }
    }

    /// The current transaction (there is one whenever this is called).
    pub(super) fn txn_mut(&mut self) -> &mut Transaction {
        self.txn.as_mut().expect("transaction present")
    }

    pub(super) fn recipients_refused(&self) -> SmtpError {
        let txn = self.txn.as_ref().expect("transaction present");
        let refused = txn
            .rcpt_replies
            .iter()
            .enumerate()
            .filter_map(|(index, r)| {
                r.as_ref()
                    .filter(|r| !r.code().is_positive())
                    .map(|reply| RecipientRefusal {
                        index,
                        recipient: txn.envelope.to[index].as_str().to_owned(),
                        reply: reply.clone(),
                    })
            })
            .collect();
        ProtocolError::RecipientsRefused {
            refused,
            accepted: txn.accepted,
        }
        .into()
    }

    pub(super) fn on_data_reply(&mut self, reply: Reply) {
        let Some(txn) = self.txn.as_mut() else {
            return;
        };
        if reply.code() == ReplyCode::START_DATA {
            let refused_ok = txn.policy == RecipientPolicy::AcceptPartial || txn.refused == 0;
            if txn.failure.is_some() || txn.accepted == 0 || !refused_ok {
                if txn.accepted > 0 {
                    // The server waits for data addressed to some accepted recipients, which
                    // must not get it (a pipelined DATA under `RequireAll`): any end of data
                    // would deliver to them. Close without writing a body byte instead.
                    let err = match txn.failure.take() {
                        Some(err) => err,
                        None => self.recipients_refused(),
                    };
                    self.fail(err);
                    return;
                }
                // The server wants data no recipient will get (a refused MAIL or every
                // recipient refused): end the data at once with a lone dot, and report the
                // failure after its reply.
                if txn.failure.is_none() {
                    let err = self.recipients_refused();
                    if let Some(t) = self.txn.as_mut() {
                        t.failure = Some(err);
                    }
                }
                if let Some(t) = self.txn.as_mut() {
                    t.step = Step::Finishing { end_queued: true };
                }
                self.out.extend_from_slice(b".\r\n");
                self.push_pending(Pending::DataEnd, 0);
            } else {
                txn.step = Step::Body { bdat_header: false };
                let id = txn.id;
                self.state = SessionState::Data;
                self.events.push_back(Event::BodyWanted(id));
            }
        } else {
            if txn.failure.is_none() {
                let err = if txn.accepted == 0 && txn.mail_accepted && txn.rcpt_outstanding == 0 {
                    self.recipients_refused()
                } else {
                    ProtocolError::UnexpectedCode {
                        during: SmtpOp::Data,
                        reply,
                    }
                    .into()
                };
                if let Some(t) = self.txn.as_mut() {
                    t.failure = Some(err);
                }
            }
            self.maybe_complete_txn();
        }
    }

    pub(super) fn on_final_reply(&mut self, reply: Reply) {
        let lmtp = self.config.protocol == Protocol::Lmtp;
        let Some(txn) = self.txn.as_mut() else {
            return;
        };
        txn.step = Step::Ended;
        if txn.failure.is_some() {
            // The reply to a lone dot after refused recipients, or to a body sent anyway.
            self.maybe_complete_txn();
            return;
        }
        if lmtp && txn.accepted > 0 {
            // RFC 2033: one reply per accepted recipient, in RCPT order.
            if txn.lmtp_expected == 0 && txn.lmtp_replies.is_empty() {
                txn.lmtp_expected = txn.accepted;
            }
            txn.lmtp_replies.push(reply);
            txn.lmtp_expected -= 1;
            if txn.lmtp_expected > 0 {
                txn.owed += 1;
                self.pending.push_front(InFlight {
                    what: Pending::DataEnd,
                    bytes: 0,
                });
                return;
            }
            self.finish_lmtp();
            return;
        }
        if reply.code().is_positive() && txn.accepted > 0 {
            txn.final_reply = Some(reply);
        } else if txn.accepted == 0 {
            let err = self.recipients_refused();
            if let Some(t) = self.txn.as_mut() {
                t.failure = Some(err);
            }
        } else {
            txn.failure = Some(
                ProtocolError::UnexpectedCode {
                    during: SmtpOp::DataEnd,
                    reply,
                }
                .into(),
            );
        }
        self.maybe_complete_txn();
    }

    pub(super) fn finish_lmtp(&mut self) {
        let Some(txn) = self.txn.as_mut() else { return };
        let replies = core::mem::take(&mut txn.lmtp_replies);
        let mut it = replies.into_iter();
        let mut first_ok = None;
        let mut delivered = 0;
        for slot in txn.rcpt_replies.iter_mut() {
            if slot.as_ref().is_some_and(|r| r.code().is_positive()) {
                if let Some(r) = it.next() {
                    if r.code().is_positive() {
                        delivered += 1;
                        first_ok.get_or_insert_with(|| r.clone());
                    }
                    *slot = Some(r);
                }
            }
        }
        txn.accepted = delivered;
        txn.refused = txn.rcpt_replies.len() - delivered;
        let refused_ok = txn.policy == RecipientPolicy::AcceptPartial || txn.refused == 0;
        match first_ok {
            Some(reply) if refused_ok => txn.final_reply = Some(reply),
            _ => {
                let err = self.recipients_refused();
                if let Some(t) = self.txn.as_mut() {
                    t.failure = Some(err);
                }
            }
        }
        self.maybe_complete_txn();
    }

    pub(super) fn txn_fail(&mut self, during: SmtpOp, reply: Reply) {
        if let Some(t) = self.txn.as_mut() {
            if t.failure.is_none() {
                t.failure = Some(ProtocolError::UnexpectedCode { during, reply }.into());
            }
        }
    }

    pub(super) fn after_txn_reply(&mut self) {
        self.pump();
        self.maybe_complete_txn();
    }

    /// Emit the transaction's result once every reply it is owed has arrived.
    pub(super) fn maybe_complete_txn(&mut self) {
        if self.state == SessionState::Closed {
            return;
        }
        let done = match &self.txn {
            Some(t) if t.owed > 0 => false,
            Some(t) => {
                (t.failure.is_some() && t.phase() != Phase::Body)
                    || (t.failure.is_some() && !self.wants_body())
                    || t.final_reply.is_some()
            }
            None => false,
        };
        if !done {
            return;
        }
        let txn = self.txn.take().expect("transaction present");
        self.state = SessionState::Ready;
        // A failed transaction the server still holds open must be reset before the next MAIL.
        let left_open = txn.left_open();
        match txn.failure {
            Some(err) => {
                self.needs_rset = left_open;
                let (during, code) = match &err {
                    SmtpError::Protocol(ProtocolError::UnexpectedCode { during, reply }) => {
                        (*during, Some(reply.code()))
                    }
                    _ => (SmtpOp::RcptTo, None),
                };
                self.config
                    .audit
                    .record(&AuditEvent::MessageRefused { during, code });
                self.events.push_back(Event::MessageFailed {
                    message: txn.id,
                    error: err,
                    session: SessionStatus::Open,
                });
            }
            None => {
                let reply = txn.final_reply.expect("final reply present");
                let queue_id = queue_id(&reply);
                let size = txn.size.unwrap_or(txn.body_written);
                let recipients: Vec<RecipientOutcome> = txn
                    .envelope
                    .to
                    .into_iter()
                    .zip(txn.rcpt_replies)
                    .map(|(addr, reply)| RecipientOutcome {
                        message: txn.id,
                        recipient: addr.as_str().to_owned(),
                        reply: reply.unwrap_or_else(|| Reply::new(ReplyCode::OK, None, "")),
                    })
                    .collect();
                self.config.audit.record(&AuditEvent::MessageSent {
                    recipients: txn.accepted,
                    refused: txn.refused,
                    size,
                    queue_id: queue_id.clone(),
                });
                self.events.push_back(Event::Sent(SendOutcome {
                    message: txn.id,
                    recipients,
                    reply,
                    queue_id,
                    size,
                }));
            }
        }
    }

    /// A reply to one of the transaction's commands (`what.is_txn()`).
    pub(super) fn on_txn_reply(&mut self, what: Pending, reply: Reply) {
        let code = reply.code();
        match what {
            Pending::Rset { lazy: true } => {
                if code.is_positive() {
                    self.needs_rset = false;
                } else {
                    self.txn_fail(SmtpOp::Rset, reply);
                }
                self.after_txn_reply();
            }
            Pending::Mail => {
                if code.is_positive() {
                    if let Some(t) = self.txn.as_mut() {
                        t.mail_accepted = true;
                    }
                } else {
                    self.txn_fail(SmtpOp::MailFrom, reply);
                }
                self.after_txn_reply();
            }
            Pending::Rcpt(i) => {
                if let Some(t) = self.txn.as_mut() {
                    t.rcpt_outstanding = t.rcpt_outstanding.saturating_sub(1);
                    if code.is_positive() {
                        t.accepted += 1;
                    } else {
                        t.refused += 1;
                    }
                    if let Some(slot) = t.rcpt_replies.get_mut(i) {
                        *slot = Some(reply);
                    }
                }
                self.after_txn_reply();
            }
            Pending::Data => self.on_data_reply(reply),
            Pending::DataEnd | Pending::Bdat { last: true } => self.on_final_reply(reply),
            Pending::Bdat { last: false } => {
                if let Some(t) = self.txn.as_mut() {
                    t.bdat_outstanding = t.bdat_outstanding.saturating_sub(1);
                }
                if !code.is_positive() {
                    self.txn_fail(SmtpOp::Bdat, reply);
                }
                self.after_txn_reply();
            }
            _ => {}
        }
    }
}
