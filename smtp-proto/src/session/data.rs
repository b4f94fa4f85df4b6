//! The message body going out: dot-stuffed after DATA, or framed in BDAT chunks (one whole
//! `BDAT n LAST`, or gathered chunks whose last carries `LAST`), counted against its limit.

use bytes::BytesMut;

use super::transaction::{BodyEncoding, BodyMode, Phase};
use super::{Pending, Session};
use crate::body::LineNormalizer;
use crate::command::Command;
use crate::error::{ArgumentError, Field, InvalidInputError, SmtpError};
use crate::state::{SessionState, SmtpOp};

impl Session {
    /// True while the engine accepts body bytes through [`send_body`](Self::send_body). Becomes
    /// false when too many BDAT chunks are unanswered (read replies, then check again) or when the
    /// transaction failed before any body byte was committed.
    pub fn wants_body(&self) -> bool {
        let Some(txn) = &self.txn else { return false };
        if txn.phase() != Phase::Body || self.state == SessionState::Closed {
            return false;
        }
        match txn.mode {
            BodyMode::Data => true,
            BodyMode::BdatWhole { .. } => txn.failure.is_none() || txn.bdat_header_sent(),
            BodyMode::BdatChunked => {
                txn.failure.is_none() && txn.bdat_outstanding < self.config.max_bdat_in_flight
            }
        }
    }

    /// Give body bytes (any chunking; CRLF normalisation and dot-stuffing are applied, except
    /// for `BODY=BINARYMIME`, which goes out byte for byte). Call only while
    /// [`wants_body`](Self::wants_body) is true; bytes given after the transaction failed before
    /// any body byte was committed are discarded.
    ///
    /// The bytes sent are counted: past the size the message declared (its [`BodyInfo`](super::BodyInfo)), the
    /// policy's [`max_message_size`](crate::policy::Policy::max_message_size) or the server's
    /// `SIZE`, whichever is smallest, the message is abandoned before its end of data (nothing
    /// of this chunk is sent, no final dot, no `BDAT LAST`) and the session is closed with
    /// [`InvalidInputError::BodyLongerThanDeclared`], a [`PolicyError`](crate::PolicyError) or
    /// [`ProtocolError::MessageTooLarge`](crate::ProtocolError::MessageTooLarge).
    ///
    /// With streamed BDAT the bytes are gathered into chunks of
    /// [`SessionConfig::bdat_chunk_size`](super::SessionConfig::bdat_chunk_size), and the last chunk is held back until
    /// [`finish_body`](Self::finish_body) so that it carries `LAST`.
    pub fn send_body(&mut self, chunk: &[u8]) -> Result<(), SmtpError> {
        self.check_open(SmtpOp::DataEnd)?;
        let Some((mode, failed, header)) = self.body_phase() else {
            return Err(self.wrong_state(SmtpOp::DataEnd));
        };
        self.clock.body_started();
        let Some(txn) = self.txn.as_mut() else {
            return Err(self.wrong_state(SmtpOp::DataEnd));
        };
        let encoding = txn.encoding;
        let written = match mode {
            // Count the message bytes, not the stuffed dots: the outcome's size is what the
            // server stores, the same for DATA and BDAT.
            BodyMode::Data => txn.encoder.stuffer.encode(chunk, &mut self.out),
            BodyMode::BdatWhole { size } => {
                if failed && !header {
                    return Ok(());
                }
                if !header {
                    self.start_bdat_whole(size);
                }
                let before = self.out.len();
                if let Some(txn) = self.txn.as_mut() {
                    encode_bdat(encoding, &mut txn.encoder.normalizer, chunk, &mut self.out);
                }
                self.out.len() - before
            }
            BodyMode::BdatChunked => {
                if failed {
                    return Ok(());
                }
                let mut held = core::mem::take(&mut txn.encoder.held);
                let before = held.len();
                encode_bdat(encoding, &mut txn.encoder.normalizer, chunk, &mut held);
                let n = held.len() - before;
                // Keep at least one byte back: the last chunk goes out with LAST.
                let size = self.config.bdat_chunk_size.max(1);
                while held.len() > size {
                    let piece = held.split_to(size);
                    self.write_bdat_header(size as u64, false);
                    self.out.extend_from_slice(&piece);
                    self.push_pending(Pending::Bdat { last: false }, 0);
                    if let Some(t) = self.txn.as_mut() {
                        t.bdat_outstanding += 1;
                    }
                }
                if let Some(t) = self.txn.as_mut() {
                    t.encoder.held = held;
                }
                n
            }
        };
        self.count_body(written)
    }

    /// Add `written` body bytes to the transaction's count; past its limit, abandon the message.
    pub(super) fn count_body(&mut self, written: usize) -> Result<(), SmtpError> {
        let Some(t) = self.txn.as_mut() else {
            return Ok(());
        };
        t.body_written = t.body_written.saturating_add(written as u64);
        match t.limit {
            Some(limit) if t.body_written > limit.bytes => {
                // Nothing queued is sent: `fail` drops the unsent bytes, this chunk and any end
                // of data with them, so the server never sees the end of this message.
                let err = limit.exceeded(t.body_written);
                self.fail(err.clone());
                Err(err)
            }
            _ => Ok(()),
        }
    }

    /// End the body: the terminator (`.`) or the last BDAT is queued and the final reply awaited.
    pub fn finish_body(&mut self) -> Result<(), SmtpError> {
        self.clock.body_finishing();
        self.check_open(SmtpOp::DataEnd)?;
        let Some((mode, failed, header)) = self.body_phase() else {
            return Err(self.wrong_state(SmtpOp::DataEnd));
        };
        let encoding = self
            .txn
            .as_ref()
            .map_or(BodyEncoding::Lines, |t| t.encoding);
        if let Some(t) = self.txn.as_mut() {
            // A whole BDAT's header (sent with the first body bytes) already carries LAST.
            let end_queued = t.bdat_header_sent();
            t.body_over(end_queued);
        }
        self.state = SessionState::Data;
        let mut written = 0;
        match mode {
            BodyMode::Data => {
                let before = self.out.len();
                if let Some(t) = self.txn.as_mut() {
                    t.encoder.stuffer.finish(&mut self.out);
                }
                let body = self.txn.as_ref().map_or(0, |t| t.body_written);
                self.log_client(format_args!("[message body: {body} bytes, dot-stuffed]"));
                self.log_client(format_args!("."));
                written = self.out.len() - before - 3;
                self.push_pending(Pending::DataEnd, 0);
                if let Some(t) = self.txn.as_mut() {
                    t.body_over(true);
                }
            }
            BodyMode::BdatWhole { size } => {
                if !failed || header {
                    if !header {
                        self.start_bdat_whole(size);
                    }
                    if let Some(t) = self.txn.as_mut()
                        && encoding == BodyEncoding::Lines
                    {
                        let before = self.out.len();
                        t.encoder.normalizer.finish(&mut self.out);
                        written = self.out.len() - before;
                    }
                    let total = self.txn.as_ref().map_or(0, |t| t.body_written) + written as u64;
                    if total != size {
                        // The body differs from the size declared in BDAT: the framing is now
                        // wrong, so the connection cannot be trusted any more.
                        let err: SmtpError = InvalidInputError::argument(
                            Field::Body,
                            ArgumentError::Syntax("body length differs from the declared size"),
                        )
                        .into();
                        self.fail(err.clone());
                        return Err(err);
                    }
                }
            }
            BodyMode::BdatChunked => {
                if !failed {
                    let mut held = BytesMut::new();
                    if let Some(t) = self.txn.as_mut() {
                        held = core::mem::take(&mut t.encoder.held);
                        if encoding == BodyEncoding::Lines {
                            let before = held.len();
                            t.encoder.normalizer.finish(&mut held);
                            written = held.len() - before;
                        }
                    }
                    self.write_bdat_header(held.len() as u64, true);
                    self.out.extend_from_slice(&held);
                    self.push_pending(Pending::Bdat { last: true }, 0);
                    if let Some(t) = self.txn.as_mut() {
                        t.body_over(true);
                    }
                }
            }
        }
        self.count_body(written)?;
        self.maybe_complete_txn();
        Ok(())
    }

    /// The body mode, whether the transaction failed, and whether a BDAT header is out, when the
    /// engine is waiting for body bytes.
    pub(super) fn body_phase(&self) -> Option<(BodyMode, bool, bool)> {
        self.txn
            .as_ref()
            .filter(|t| t.phase() == Phase::Body)
            .map(|t| (t.mode, t.failure.is_some(), t.bdat_header_sent()))
    }

    /// Write the one `BDAT size LAST` header of a body whose size is known: during the body
    /// (before its first bytes) or at its end (an empty body).
    pub(super) fn start_bdat_whole(&mut self, size: u64) {
        self.write_bdat_header(size, true);
        self.log_client(format_args!("[message body: {size} bytes]"));
        self.push_pending(Pending::Bdat { last: true }, 0);
        if let Some(t) = self.txn.as_mut() {
            t.bdat_whole_started();
        }
    }

    pub(super) fn write_bdat_header(&mut self, size: u64, last: bool) {
        let before = self.out.len();
        Command::Bdat { size, last }.write_to(&mut self.out);
        self.log_written(before);
    }
}

/// Put body bytes for BDAT into `out`: line endings normalised, or as they are for BINARYMIME.
pub(super) fn encode_bdat(
    encoding: BodyEncoding,
    normalizer: &mut LineNormalizer,
    chunk: &[u8],
    out: &mut BytesMut,
) {
    match encoding {
        BodyEncoding::Lines => normalizer.encode(chunk, out),
        BodyEncoding::Binary => out.extend_from_slice(chunk),
    }
}
