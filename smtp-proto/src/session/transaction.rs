//! One mail transaction and its rules: which command of the envelope may go next, what each
//! reply to MAIL, RCPT, DATA, BDAT and the end of data means (LMTP's reply per recipient too),
//! and the message's result. The [`Session`](super::Session) writes the commands and carries out
//! the [`Reaction`]s (`mail.rs`); a transaction never sees the session.

use super::{
    DataPipelining, Envelope, Event, Fate, MessageId, Pending, RecipientOutcome, RecipientPolicy,
    SendOutcome, SessionAfter, queue_id,
};
use bytes::BytesMut;

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use crate::audit::AuditEvent;
use crate::body::{DotStuffer, LineNormalizer};
use crate::command::{MailParams, Notify, OriginalRecipient, RcptParams};
use crate::error::{InvalidInputError, PolicyError, ProtocolError, RecipientRefusal, SmtpError};
use crate::reply::{Reply, ReplyCode};
use crate::state::SmtpOp;

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
    /// The caller gives the body; `whole`: how far the one `BDAT n LAST` of a body whose size
    /// is known has gone out.
    Body { whole: WholeChunk },
    /// The body is over. `end_queued`: its end (the final dot or `BDAT LAST`) is queued, so the
    /// server will close the transaction whatever it answers.
    Finishing { end_queued: bool },
    /// The server answered the end of data: it closed the transaction.
    Ended,
}

/// How far the one `BDAT n LAST` of a body whose size is known has gone out, while the caller
/// gives the body (for other bodies it stays [`NotStarted`](WholeChunk::NotStarted)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum WholeChunk {
    /// Its header is not queued yet.
    NotStarted,
    /// Its header is queued with some of its `n` bytes: no reply to it can come yet.
    Started,
    /// All its `n` bytes are queued: the server can end the message without anything more,
    /// before [`Session::finish_body`](super::Session::finish_body) is called.
    Complete,
}

/// How far along `step` is, for the rule that a step only moves forward.
fn step_rank(step: Step) -> (u8, usize) {
    match step {
        Step::Start => (0, 0),
        Step::Reset => (1, 0),
        Step::Envelope { next_rcpt } => (2, next_rcpt),
        Step::DataQueued => (3, 0),
        Step::Body { whole } => (4, whole as usize),
        Step::Finishing { end_queued } => (5, usize::from(end_queued)),
        Step::Ended => (6, 0),
    }
}

/// A message body's encoder state: the DATA dot-stuffer, the BDAT line normaliser, and the
/// streamed BDAT chunk being gathered (the last one is held back to carry `LAST`). Its state
/// changes only through its methods.
#[derive(Debug, Default)]
pub(super) struct BodyEncoder {
    stuffer: DotStuffer,
    normalizer: LineNormalizer,
    held: BytesMut,
}

impl BodyEncoder {
    /// DATA: `chunk` dot-stuffed into `out`; the message bytes taken (not the added dots).
    pub(super) fn stuff(&mut self, chunk: &[u8], out: &mut BytesMut) -> usize {
        self.stuffer.encode(chunk, out)
    }

    /// DATA: the end of the body (a final CRLF if missing) and the lone dot.
    pub(super) fn stuff_end(&mut self, out: &mut BytesMut) {
        self.stuffer.finish(out);
    }

    /// BDAT: `chunk` into `out`, line ends normalised, or as it is for BINARYMIME.
    pub(super) fn frame(&mut self, encoding: BodyEncoding, chunk: &[u8], out: &mut BytesMut) {
        match encoding {
            BodyEncoding::Lines => self.normalizer.encode(chunk, out),
            BodyEncoding::Binary => out.extend_from_slice(chunk),
        }
    }

    /// BDAT: the end of the body into `out` (a final CRLF if missing, for lines); the bytes
    /// added.
    pub(super) fn frame_end(&mut self, encoding: BodyEncoding, out: &mut BytesMut) -> usize {
        let before = out.len();
        if encoding == BodyEncoding::Lines {
            self.normalizer.finish(out);
        }
        out.len() - before
    }

    /// Streamed BDAT: the chunk being gathered, taken out to add to it.
    pub(super) fn take_held(&mut self) -> BytesMut {
        core::mem::take(&mut self.held)
    }

    /// Streamed BDAT: the chunk being gathered, put back.
    pub(super) fn hold(&mut self, held: BytesMut) {
        self.held = held;
    }
}

#[derive(Debug)]
pub(super) struct Transaction {
    /// The message's handle.
    pub(super) id: MessageId,
    pub(super) envelope: Envelope,
    pub(super) mail_params: MailParams,
    /// `NOTIFY=` for every RCPT line.
    pub(super) notify: Option<Notify>,
    pub(super) mode: BodyMode,
    pub(super) size: Option<u64>,
    pub(super) policy: RecipientPolicy,
    /// How far the transaction has been sent.
    pub(super) step: Step,
    /// The server accepted MAIL FROM.
    pub(super) mail_accepted: bool,
    pub(super) rcpt_replies: Vec<Option<Reply>>,
    /// `ORCPT=` per recipient (empty for none).
    pub(super) original_recipients: Vec<OriginalRecipient>,
    pub(super) rcpt_outstanding: usize,
    pub(super) accepted: usize,
    pub(super) refused: usize,
    bdat_outstanding: usize,
    body_written: u64,
    /// The most body bytes this transaction may send.
    pub(super) limit: Option<BodyLimit>,
    /// How the body is encoded.
    pub(super) encoding: BodyEncoding,
    /// The body's encoder state (dot-stuffing, CRLF normalisation, a streamed BDAT chunk being
    /// gathered): this message's own, so nothing carries over from one message to the next.
    encoder: BodyEncoder,
    /// LMTP: per-recipient replies still expected after the body.
    pub(super) lmtp_expected: usize,
    pub(super) lmtp_replies: Vec<Reply>,
    pub(super) final_reply: Option<Reply>,
    /// The message's own failure, the first one: its MAIL, DATA, a BDAT chunk or its end of
    /// data refused, or its recipients ([`take_error`](Self::take_error) says which failure is
    /// reported).
    failure: Option<SmtpError>,
    /// The refusal of the RSET queued before this message's MAIL (the previous transaction's
    /// cleanup, not this message's): it stops the envelope like a failure of the message, but
    /// a server that goes on to take the message has shown it did not matter ([`settle`]).
    ///
    /// [`settle`]: Self::settle
    reset_failure: Option<SmtpError>,
    /// The server refused MAIL FROM: it holds no transaction for this message.
    mail_refused: bool,
    /// The data was ended with a lone dot (every recipient refused, a `354` came anyway): an
    /// end of data without the body, which delivers nothing.
    lone_dot: bool,
    /// The fate of the failure, should the message fail: [`Fate::Refused`] once the server
    /// judged the message at its end of data ([`settle`](Self::settle)), otherwise
    /// [`Fate::NotSent`].
    fate: Fate,
    /// Replies still owed to this transaction (its entries in the pending queue).
    owed: usize,
}

impl Transaction {
    /// The caller is giving the body now.
    pub(super) fn takes_body(&self) -> bool {
        matches!(self.step, Step::Body { .. })
    }

    /// The body has begun (it is being given, or it is over).
    pub(super) fn body_begun(&self) -> bool {
        matches!(
            self.step,
            Step::Body { .. } | Step::Finishing { .. } | Step::Ended
        )
    }

    /// What became of the message should the session end now, before its result: unknown once
    /// its own end of data is queued (with its body: not the lone dot that ends the data of a
    /// message already refused), whatever failed before, unless the server's replies show that
    /// nothing can be delivered ([`nothing_deliverable`](Self::nothing_deliverable));
    /// otherwise provably not delivered.
    pub(super) fn fate_if_lost(&self) -> Fate {
        if self.own_end_queued() && !self.nothing_deliverable() {
            Fate::Unknown
        } else {
            Fate::NotSent
        }
    }

    /// The message failed (its own failure, or the RSET before its MAIL refused): nothing more
    /// of its envelope goes out.
    pub(super) fn failed(&self) -> bool {
        self.failure.is_some() || self.reset_failure.is_some()
    }

    /// The error reported for the failed message: the first failure, the refused RSET before
    /// anything of the message's own.
    fn take_error(&mut self) -> Option<SmtpError> {
        self.reset_failure.take().or_else(|| self.failure.take())
    }

    /// This message's own end of data is queued: its final dot after the body, or its
    /// `BDAT ... LAST` (not a lone dot abandoning the data).
    fn own_end_queued(&self) -> bool {
        let whole_chunk = self.step
            == Step::Body {
                whole: WholeChunk::Complete,
            };
        (self.end_queued() || whole_chunk) && !self.lone_dot
    }

    /// The server's replies show the message cannot have been delivered, whatever it answers
    /// to the end of data: it refused MAIL (no transaction), or it answered every RCPT and
    /// accepted none (no recipient).
    fn nothing_deliverable(&self) -> bool {
        self.mail_refused || (self.accepted == 0 && self.rcpt_replies.iter().all(Option::is_some))
    }

    /// The body's encoder.
    pub(super) fn encoder(&mut self) -> &mut BodyEncoder {
        &mut self.encoder
    }

    /// `n` more body bytes went out: `Err` with the error for the bound they passed, if any
    /// (the message is then abandoned before its end).
    pub(super) fn count_body(&mut self, n: usize) -> Result<(), SmtpError> {
        self.body_written = self.body_written.saturating_add(n as u64);
        match self.limit {
            Some(limit) if self.body_written > limit.bytes => {
                return Err(limit.exceeded(self.body_written));
            }
            _ => {}
        }
        if let (BodyMode::BdatWhole { size }, true) = (self.mode, self.bdat_header_sent()) {
            if self.body_written >= size {
                self.advance(Step::Body {
                    whole: WholeChunk::Complete,
                });
            }
        }
        Ok(())
    }

    /// How many body bytes went out so far.
    pub(super) fn body_written(&self) -> u64 {
        self.body_written
    }

    /// A `BDAT n` (not `LAST`) chunk is queued: one more chunk reply owed.
    pub(super) fn bdat_queued(&mut self) {
        self.bdat_outstanding += 1;
    }

    /// `BDAT n` chunks queued and not yet answered.
    pub(super) fn bdat_in_flight(&self) -> usize {
        self.bdat_outstanding
    }

    /// Whether replies to this transaction's commands are still owed.
    pub(super) fn owes_replies(&self) -> bool {
        self.owed > 0
    }

    /// A command of this transaction is queued: one more reply owed to it.
    pub(super) fn owe_reply(&mut self) {
        self.owed += 1;
    }

    /// The body is over; `end_queued`: its end (final dot or `BDAT LAST`) is queued with it.
    pub(super) fn body_over(&mut self, end_queued: bool) {
        self.advance(Step::Finishing { end_queued });
    }

    /// The header of the body's one `BDAT n LAST` is queued: with its first bytes, or at the
    /// end of an empty body.
    pub(super) fn bdat_whole_started(&mut self) {
        let next = match self.step {
            Step::Body { .. } => Step::Body {
                whole: WholeChunk::Started,
            },
            _ => Step::Finishing { end_queued: true },
        };
        self.advance(next);
    }

    /// Move to `next`: the one place a step changes, and it only moves forward.
    fn advance(&mut self, next: Step) {
        debug_assert!(
            step_rank(next) >= step_rank(self.step),
            "a transaction's step moved back: {:?} -> {next:?}",
            self.step
        );
        self.step = next;
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
        matches!(self.step, Step::Body { whole } if whole >= WholeChunk::Started)
    }

    /// The server still holds this transaction open (MAIL accepted, end of data not answered):
    /// the next MAIL needs a RSET first.
    pub(super) fn left_open(&self) -> bool {
        self.mail_accepted && self.step != Step::Ended
    }
}

/// What [`Transaction::new`] needs beyond its id and envelope: what the checks concluded.
pub(super) struct Setup {
    pub(super) mail_params: MailParams,
    pub(super) notify: Option<Notify>,
    pub(super) mode: BodyMode,
    pub(super) size: Option<u64>,
    pub(super) policy: RecipientPolicy,
    pub(super) original_recipients: Vec<OriginalRecipient>,
    pub(super) limit: Option<BodyLimit>,
    pub(super) encoding: BodyEncoding,
}

/// The rules of the flight the envelope goes in.
#[derive(Debug, Clone, Copy)]
pub(super) struct Flight {
    /// PIPELINING is offered and used.
    pub(super) pipelining: bool,
    /// The previous transaction was left open on the server.
    pub(super) needs_rset: bool,
    /// When DATA may join the envelope's flight.
    pub(super) data_pipelining: DataPipelining,
}

/// What the envelope may queue next ([`Transaction::next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// RSET: the previous message left its transaction open.
    Rset,
    /// MAIL FROM.
    Mail,
    /// RCPT TO for the recipient at this index.
    Rcpt(usize),
    /// The envelope is complete: DATA, or the body for BDAT. `pipelined`: some RCPT replies
    /// are still owed, so it goes only within the flight limit.
    Body { pipelined: bool },
    /// The RCPT replies refuse the message: it ends without DATA.
    Refused,
    /// Nothing until more replies come (or the body, or the end).
    Wait,
}

/// What the session must do after a transaction took a reply ([`Transaction::on_reply`]).
#[derive(Debug)]
pub(super) enum Reaction {
    /// Queue what may go now and report the transaction if it is complete.
    Continue,
    /// The RSET before this transaction's MAIL was accepted: the previous one is closed.
    ResetDone,
    /// `354`: ask the caller for the body.
    WantBody,
    /// `354` for data no recipient will get: end it at once with a lone dot.
    LoneDot,
    /// LMTP: another reply (for the next accepted recipient) follows this one.
    AnotherLmtpReply,
    /// `354` for data the policy forbids sending to the accepted recipients: any end of data
    /// would deliver it, so the session must close without one.
    Close(SmtpError),
}

impl Transaction {
    /// A transaction for `envelope`, nothing sent yet.
    pub(super) fn new(id: MessageId, envelope: Envelope, setup: Setup) -> Transaction {
        let n = envelope.to.len();
        Transaction {
            id,
            envelope,
            mail_params: setup.mail_params,
            notify: setup.notify,
            mode: setup.mode,
            size: setup.size,
            policy: setup.policy,
            step: Step::Start,
            mail_accepted: false,
            rcpt_replies: vec![None; n],
            original_recipients: setup.original_recipients,
            rcpt_outstanding: 0,
            accepted: 0,
            refused: 0,
            bdat_outstanding: 0,
            body_written: 0,
            limit: setup.limit,
            encoding: setup.encoding,
            encoder: BodyEncoder::default(),
            lmtp_expected: 0,
            lmtp_replies: Vec::new(),
            final_reply: None,
            failure: None,
            reset_failure: None,
            mail_refused: false,
            lone_dot: false,
            fate: Fate::NotSent,
            owed: 0,
        }
    }

    /// The parameters of recipient `i`'s RCPT line.
    pub(super) fn rcpt_params(&self, i: usize) -> RcptParams {
        RcptParams {
            notify: self.notify,
            orcpt: self.original_recipients.get(i).cloned(),
        }
    }

    /// What the envelope may queue next under `flight`'s rules.
    pub(super) fn next(&self, flight: Flight) -> Next {
        if self.failed() {
            return Next::Wait;
        }
        match self.step {
            Step::Start if flight.needs_rset => Next::Rset,
            Step::Start | Step::Reset => Next::Mail,
            Step::Envelope { next_rcpt } if next_rcpt < self.envelope.to.len() => {
                Next::Rcpt(next_rcpt)
            }
            Step::Envelope { .. } if self.rcpt_outstanding == 0 && self.mail_accepted => {
                if self.accepted == 0 || !self.refusals_acceptable() {
                    Next::Refused
                } else {
                    Next::Body { pipelined: false }
                }
            }
            Step::Envelope { .. } => {
                // Replies are still owed: DATA joins their flight only when no refusal among
                // them could stop the message, or when such a refusal may close the session
                // (DATA only: the server answers DATA with 354 and waits, while a BDAT body
                // would carry its LAST and be delivered to whoever was accepted).
                let safe = self.policy == RecipientPolicy::AcceptPartial
                    || self.envelope.to.len() == 1
                    || (flight.data_pipelining == DataPipelining::Always
                        && self.mode == BodyMode::Data);
                if flight.pipelining && safe {
                    Next::Body { pipelined: true }
                } else {
                    Next::Wait
                }
            }
            Step::DataQueued | Step::Body { .. } | Step::Finishing { .. } | Step::Ended => {
                Next::Wait
            }
        }
    }

    /// Record that `next` was queued: for [`Next::Body`], DATA was written (DATA mode) or the
    /// body is asked for (BDAT).
    pub(super) fn queued(&mut self, next: Next) {
        let next = match next {
            Next::Rset => Step::Reset,
            Next::Mail => Step::Envelope { next_rcpt: 0 },
            Next::Rcpt(i) => {
                self.rcpt_outstanding += 1;
                Step::Envelope { next_rcpt: i + 1 }
            }
            Next::Body { .. } if self.mode == BodyMode::Data => Step::DataQueued,
            Next::Body { .. } => Step::Body {
                whole: WholeChunk::NotStarted,
            },
            Next::Refused | Next::Wait => self.step,
        };
        self.advance(next);
    }

    /// The recipients refused so far are ones the policy lets the message go without.
    fn refusals_acceptable(&self) -> bool {
        self.policy == RecipientPolicy::AcceptPartial || self.refused == 0
    }

    /// Fail the message with `reply` to `during`, unless it already failed on its own.
    fn fail_with(&mut self, during: SmtpOp, reply: Reply) {
        if self.failure.is_none() {
            self.failure = Some(ProtocolError::UnexpectedCode { during, reply }.into());
        }
    }

    /// The message failed before DATA because of its recipients' replies.
    pub(super) fn refuse(&mut self) {
        self.failure = Some(self.recipients_refused());
    }

    /// The error for the recipients refused so far.
    fn recipients_refused(&self) -> SmtpError {
        let refused = self
            .rcpt_replies
            .iter()
            .enumerate()
            .filter_map(|(index, r)| {
                r.as_ref()
                    .filter(|r| !r.code().is_positive())
                    .map(|reply| RecipientRefusal {
                        index,
                        recipient: self.envelope.to[index].as_str().to_owned(),
                        reply: reply.clone(),
                    })
            })
            .collect();
        ProtocolError::RecipientsRefused {
            refused,
            accepted: self.accepted,
        }
        .into()
    }

    /// Take a reply to one of this transaction's commands (`what.is_txn()`; a `421` never gets
    /// here, nor a reply that cannot answer its command such as a `2xx` to DATA or a `3xx` to
    /// anything else: both close the session). `lmtp`: the session speaks LMTP.
    pub(super) fn on_reply(&mut self, what: Pending, reply: Reply, lmtp: bool) -> Reaction {
        self.owed = self.owed.saturating_sub(1);
        let positive = reply.code().is_positive();
        match what {
            Pending::Rset { .. } if positive => return Reaction::ResetDone,
            Pending::Rset { .. } => {
                if !self.failed() {
                    self.reset_failure = Some(
                        ProtocolError::UnexpectedCode {
                            during: SmtpOp::Rset,
                            reply,
                        }
                        .into(),
                    );
                }
            }
            Pending::Mail if positive => self.mail_accepted = true,
            Pending::Mail => {
                self.mail_refused = true;
                self.fail_with(SmtpOp::MailFrom, reply);
            }
            Pending::Rcpt(i) => {
                self.rcpt_outstanding = self.rcpt_outstanding.saturating_sub(1);
                if positive {
                    self.accepted += 1;
                } else {
                    self.refused += 1;
                }
                if let Some(slot) = self.rcpt_replies.get_mut(i) {
                    *slot = Some(reply);
                }
            }
            Pending::Data => return self.on_data_reply(reply),
            Pending::Bdat { last: true } if matches!(self.step, Step::Body { whole } if whole < WholeChunk::Complete) =>
            {
                // The server cannot have read the whole chunk yet: the reply answers nothing
                // sent, and the rest of the chunk would be read as anything but data.
                return Reaction::Close(
                    ProtocolError::OutOfSync {
                        during: SmtpOp::Bdat,
                        reply,
                    }
                    .into(),
                );
            }
            Pending::DataEnd | Pending::Bdat { last: true } => {
                return self.on_final_reply(reply, lmtp);
            }
            Pending::Bdat { last: false } => {
                self.bdat_outstanding = self.bdat_outstanding.saturating_sub(1);
                if !positive {
                    self.fail_with(SmtpOp::Bdat, reply);
                }
            }
            Pending::Greeting
            | Pending::Hello(_)
            | Pending::StartTls
            | Pending::Auth
            | Pending::Noop
            | Pending::Quit => {}
        }
        Reaction::Continue
    }

    fn on_data_reply(&mut self, reply: Reply) -> Reaction {
        if reply.code() != ReplyCode::START_DATA {
            if !self.failed() {
                self.failure = Some(
                    if self.accepted == 0 && self.mail_accepted && self.rcpt_outstanding == 0 {
                        self.recipients_refused()
                    } else {
                        ProtocolError::UnexpectedCode {
                            during: SmtpOp::Data,
                            reply,
                        }
                        .into()
                    },
                );
            }
            return Reaction::Continue;
        }
        if !self.failed() && self.accepted > 0 && self.refusals_acceptable() {
            self.advance(Step::Body {
                whole: WholeChunk::NotStarted,
            });
            return Reaction::WantBody;
        }
        // The server wants data that must not be sent (a refused MAIL or recipients).
        if self.accepted > 0 {
            // Some recipients were accepted (a pipelined DATA under `RequireAll`): any end of
            // data would deliver to them. Only closing the connection ends it.
            let err = match self.take_error() {
                Some(err) => err,
                None => self.recipients_refused(),
            };
            return Reaction::Close(err);
        }
        // No recipient will get anything: end the data at once with a lone dot, and report
        // the failure after its reply.
        if !self.failed() {
            self.refuse();
        }
        self.lone_dot = true;
        self.advance(Step::Finishing { end_queued: true });
        Reaction::LoneDot
    }

    fn on_final_reply(&mut self, reply: Reply, lmtp: bool) -> Reaction {
        self.advance(Step::Ended);
        if self.lone_dot {
            // The reply to a lone dot: the message already failed (no recipient accepted) and
            // nothing was delivered, whatever the server says.
            return Reaction::Continue;
        }
        if lmtp && self.accepted > 0 {
            // RFC 2033: one reply per accepted recipient, in RCPT order, whatever failed
            // before (a refused chunk too): each of them is this message's, and the next
            // message's replies come only after them.
            if self.lmtp_expected == 0 && self.lmtp_replies.is_empty() {
                self.lmtp_expected = self.accepted;
            }
            self.lmtp_replies.push(reply);
            self.lmtp_expected -= 1;
            if self.lmtp_expected > 0 {
                self.owed += 1;
                return Reaction::AnotherLmtpReply;
            }
            self.finish_lmtp();
            return Reaction::Continue;
        }
        let nothing_deliverable = self.nothing_deliverable();
        if reply.code().is_positive() {
            self.settle(Some(reply), nothing_deliverable, None);
        } else {
            let error = ProtocolError::UnexpectedCode {
                during: SmtpOp::DataEnd,
                reply,
            };
            self.settle(None, nothing_deliverable, Some(error.into()));
        }
        Reaction::Continue
    }

    /// LMTP: every accepted recipient has its reply; they replace the RCPT replies.
    fn finish_lmtp(&mut self) {
        // Before the RCPT counts give way to the replies after the data.
        let nothing_deliverable = self.nothing_deliverable();
        let replies = core::mem::take(&mut self.lmtp_replies);
        let mut it = replies.into_iter();
        let mut first_ok = None;
        let mut delivered = 0;
        for slot in self.rcpt_replies.iter_mut() {
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
        self.accepted = delivered;
        self.refused = self.rcpt_replies.len() - delivered;
        // The recipients' own replies say why, when no earlier failure does.
        self.settle(first_ok, nothing_deliverable, None);
    }

    /// The server answered this message's own end of data (its final dot after the body, or
    /// its `BDAT ... LAST`; for LMTP, the last of the replies per recipient): decide its result.
    /// `taken`: the reply taking the message (for LMTP, the first recipient's that did), `None`
    /// when it refused. `nothing_deliverable`: [`nothing_deliverable`](Self::nothing_deliverable)
    /// before the reply. `end_error`: the refusal of the end of data, for a message with no
    /// other error to report.
    ///
    /// Once the message's end of data with its body was written, the server may have delivered
    /// it, so it is never [`Fate::NotSent`] unless the server's replies prove that nothing could
    /// be delivered:
    ///
    /// - taken, with no failure of the message's own (a refused RSET before its MAIL concerns
    ///   the previous transaction: the server went on), MAIL accepted, and the recipients'
    ///   replies satisfying the recipient policy: sent;
    /// - refused, and MAIL refused or every recipient refused: [`Fate::NotSent`] (nothing can
    ///   have been delivered, and a temporary refusal stays retryable), with the first failure;
    /// - otherwise, taken or not: a failure with [`Fate::Refused`], never retried, with the
    ///   message's own first failure (a refused chunk, MAIL) or else the recipients refused or
    ///   the end of data's refusal. A message taken after a refused chunk may have lost that
    ///   chunk, and one taken against a refused envelope contradicts it: neither is reported
    ///   sent, and neither may be sent again.
    ///
    /// No reply at all is [`Fate::Unknown`] ([`fate_if_lost`](Self::fate_if_lost)).
    fn settle(
        &mut self,
        taken: Option<Reply>,
        nothing_deliverable: bool,
        end_error: Option<SmtpError>,
    ) {
        let envelope_holds = self.mail_accepted && self.accepted > 0 && self.refusals_acceptable();
        match taken {
            Some(reply) if self.failure.is_none() && envelope_holds => {
                self.reset_failure = None;
                self.final_reply = Some(reply);
            }
            None if nothing_deliverable => {
                if !self.failed() {
                    self.refuse();
                }
            }
            taken => {
                // The server judged this message: its error is the message's own.
                self.reset_failure = None;
                if self.failure.is_none() {
                    self.failure = Some(match end_error {
                        Some(error) if taken.is_none() && envelope_holds => error,
                        _ => self.recipients_refused(),
                    });
                }
                self.fate = Fate::Refused;
            }
        }
    }

    /// Every reply owed has come and the result is known. `body_wanted`: the session still
    /// takes body bytes for it (a failed transaction waits until its body is given up).
    pub(super) fn is_complete(&self, body_wanted: bool) -> bool {
        self.owed == 0
            && (self.final_reply.is_some()
                || (self.failed() && (!self.takes_body() || !body_wanted)))
    }

    /// The message's result, once [complete](Self::is_complete): its audit record and event.
    pub(super) fn into_report(mut self) -> (AuditEvent, Event) {
        if let Some(error) = self.take_error() {
            let (during, code) = match &error {
                SmtpError::Protocol(ProtocolError::UnexpectedCode { during, reply }) => {
                    (*during, Some(reply.code()))
                }
                _ => (SmtpOp::RcptTo, None),
            };
            let event = Event::MessageFailed {
                message: self.id,
                error,
                fate: self.fate,
                session: SessionAfter::Open,
            };
            return (AuditEvent::MessageRefused { during, code }, event);
        }
        let reply = self
            .final_reply
            .expect("a complete transaction without failure has its reply");
        let queue_id = queue_id(&reply);
        let size = self.size.unwrap_or(self.body_written);
        let message = self.id;
        let recipients = self
            .envelope
            .to
            .into_iter()
            .zip(self.rcpt_replies)
            .map(|(addr, reply)| RecipientOutcome {
                message,
                recipient: addr.as_str().to_owned(),
                reply: reply.unwrap_or_else(|| Reply::new(ReplyCode::OK, None, "")),
            })
            .collect();
        let audit = AuditEvent::MessageSent {
            recipients: self.accepted,
            refused: self.refused,
            size,
            queue_id: queue_id.clone(),
        };
        let outcome = SendOutcome {
            message,
            recipients,
            reply,
            queue_id,
            size,
        };
        (audit, Event::Sent(outcome))
    }
}
