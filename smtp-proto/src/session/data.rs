//! The message body going out: dot-stuffed after DATA, or framed in BDAT chunks (one whole
//! `BDAT n LAST`, or gathered chunks whose last carries `LAST`), counted against its limit.

use bytes::{Buf, BytesMut};

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use super::transaction::{BodyEncoding, BodyMode};
use super::{Pending, Session};
use crate::command::Command;
use crate::error::{ArgumentError, Field, InvalidInputError, SmtpError};
use crate::state::SmtpOp;

impl Session {
    /// True while the engine accepts body bytes through [`send_body`](Self::send_body). Becomes
    /// false when too many BDAT chunks are unanswered (read replies, then check again) or when the
    /// transaction failed before any body byte was committed.
    pub fn wants_body(&self) -> bool {
        let Some(txn) = &self.txn else { return false };
        if !txn.takes_body() || self.standing.is_closed() {
            return false;
        }
        match txn.mode {
            BodyMode::Data => true,
            BodyMode::BdatWhole { .. } => !txn.failed() || txn.bdat_header_sent(),
            BodyMode::BdatChunked => {
                !txn.failed() && txn.bdat_in_flight() < self.config.max_bdat_in_flight
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
            BodyMode::Data => txn.encoder().stuff(chunk, &mut self.out),
            BodyMode::BdatWhole { size } => {
                if failed && !header {
                    return Ok(());
                }
                if !header {
                    self.start_bdat_whole(size);
                }
                let before = self.out.len();
                if let Some(txn) = self.txn.as_mut() {
                    txn.encoder().frame(encoding, chunk, &mut self.out);
                }
                self.out.len() - before
            }
            BodyMode::BdatChunked => {
                if failed {
                    return Ok(());
                }
                self.gather_bdat(encoding, chunk)
            }
        };
        self.count_body(written)
    }

    /// Add `written` body bytes to the transaction's count; past its limit, abandon the message.
    pub(super) fn count_body(&mut self, written: usize) -> Result<(), SmtpError> {
        let Some(t) = self.txn.as_mut() else {
            return Ok(());
        };
        let counted = t.count_body(written);
        if let Err(err) = &counted {
            // Nothing queued is sent: `fail` drops the unsent bytes, this chunk and any end of
            // data with them, so the server never sees the end of this message.
            self.fail(err.clone());
        }
        counted
    }

    /// The body's source failed before its end (a file or a stream that could not be read):
    /// the message cannot be ended cleanly, so the session closes with [`SmtpError::Io`]
    /// during [`SmtpOp::ReadBody`], and the message fails as not sent (its end of data was never
    /// queued). Nothing queued for it is sent.
    pub fn body_unreadable(&mut self, kind: crate::error::IoErrorKind, message: &str) {
        if !self.standing.is_closed() {
            self.fail(SmtpError::io(SmtpOp::ReadBody, kind, message));
        }
    }

    /// End the body: the terminator (`.`) or the last BDAT is queued and the final reply awaited.
    /// The bytes that close the body (a final CRLF when it lacks one) are counted against its
    /// limit first: past it, the message is abandoned before its end of data, as in
    /// [`send_body`](Self::send_body), and it was not sent.
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
        self.standing.body_started();
        // Whether the end of data goes out: counted (and checked) first, then marked queued,
        // so a limit passed by the closing bytes leaves the message not sent.
        let end_queued = match mode {
            BodyMode::Data => {
                let before = self.out.len();
                if let Some(t) = self.txn.as_mut() {
                    t.encoder().stuff_end(&mut self.out);
                }
                self.count_body(self.out.len() - before - 3)?;
                let body = self
                    .txn
                    .as_ref()
                    .map_or(0, super::Transaction::body_written);
                self.log_client(format_args!("[message body: {body} bytes, dot-stuffed]"));
                self.log_client(format_args!("."));
                self.push_pending(Pending::DataEnd, 0);
                true
            }
            BodyMode::BdatWhole { size } if !failed || header => {
                if !header {
                    self.start_bdat_whole(size);
                }
                let mut written = 0;
                // Not a let chain: the MSRV (1.85) predates them.
                if let Some(t) = self.txn.as_mut() {
                    written = t.encoder().frame_end(encoding, &mut self.out);
                }
                let total = self
                    .txn
                    .as_ref()
                    .map_or(0, super::Transaction::body_written)
                    + written as u64;
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
                self.count_body(written)?;
                true
            }
            BodyMode::BdatChunked if !failed => {
                let mut held = BytesMut::new();
                let mut written = 0;
                if let Some(t) = self.txn.as_mut() {
                    held = t.encoder().take_held();
                    if held.is_empty() {
                        held.resize(FRAME_HEAD, 0);
                    }
                    written = t.encoder().frame_end(encoding, &mut held);
                }
                self.count_body(written)?;
                self.queue_bdat_frame(held, true);
                true
            }
            BodyMode::BdatWhole { .. } | BodyMode::BdatChunked => false,
        };
        if let Some(t) = self.txn.as_mut() {
            t.body_over(end_queued);
        }
        self.maybe_complete_txn();
        Ok(())
    }

    /// The body mode, whether the transaction failed, and whether a BDAT header is out, when the
    /// engine is waiting for body bytes.
    pub(super) fn body_phase(&self) -> Option<(BodyMode, bool, bool)> {
        self.txn
            .as_ref()
            .filter(|t| t.takes_body())
            .map(|t| (t.mode, t.failed(), t.bdat_header_sent()))
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

    /// Streamed BDAT: encode `chunk` into the chunk being gathered (`held`: [`FRAME_HEAD`]
    /// bytes kept free for its header, then its data), and queue each chunk of
    /// `bdat_chunk_size` bytes as soon as a byte beyond it arrives (the last chunk is held back
    /// to carry `LAST`). A chunk goes out as one buffer with its header written in front of its
    /// data, not copied again. Returns the body bytes written.
    fn gather_bdat(&mut self, encoding: BodyEncoding, chunk: &[u8]) -> usize {
        let size = self.config.bdat_chunk_size.max(1);
        let Some(txn) = self.txn.as_mut() else {
            return 0;
        };
        let mut held = txn.encoder().take_held();
        let mut rest = chunk;
        let mut written = 0;
        loop {
            if held.is_empty() {
                held.reserve(FRAME_HEAD + size);
                held.resize(FRAME_HEAD, 0);
            }
            let gathered = held.len() - FRAME_HEAD;
            // A byte beyond a full chunk means it is not the last: it goes out, and what lies
            // beyond it (line ends the normaliser grew) starts the next one.
            if gathered > size {
                let beyond = held.split_off(FRAME_HEAD + size);
                self.queue_bdat_frame(held, false);
                held = BytesMut::with_capacity(FRAME_HEAD + size.max(beyond.len()));
                held.resize(FRAME_HEAD, 0);
                held.extend_from_slice(&beyond);
                continue;
            }
            if rest.is_empty() {
                break;
            }
            // Up to the chunk's end; a full chunk takes one byte at a time until one comes out
            // of the normaliser (a CR may be held back until the next byte says what it ends).
            let room = (size - gathered).max(1);
            let (now, later) = rest.split_at(room.min(rest.len()));
            let before = held.len();
            if let Some(txn) = self.txn.as_mut() {
                txn.encoder().frame(encoding, now, &mut held);
            }
            written += held.len() - before;
            rest = later;
        }
        if let Some(txn) = self.txn.as_mut() {
            txn.encoder().hold(held);
        }
        written
    }

    /// Queue a gathered BDAT chunk (`frame`: [`FRAME_HEAD`] free bytes, then its data) with its
    /// header written just before the data, as one buffer: handed to `out` as it is when
    /// nothing else waits there.
    fn queue_bdat_frame(&mut self, mut frame: BytesMut, last: bool) {
        let size = frame.len().saturating_sub(FRAME_HEAD);
        let mut header = BytesMut::with_capacity(FRAME_HEAD);
        Command::Bdat {
            size: size as u64,
            last,
        }
        .write_to(&mut header);
        let at = FRAME_HEAD.saturating_sub(header.len());
        frame[at..FRAME_HEAD].copy_from_slice(&header[..FRAME_HEAD - at]);
        frame.advance(at);
        if let Some(t) = self.transcript() {
            let line = header.strip_suffix(b"\r\n").unwrap_or(&header);
            t.client(&String::from_utf8_lossy(line));
        }
        if self.out.is_empty() {
            self.out = frame;
        } else {
            self.out.extend_from_slice(&frame);
        }
        self.push_pending(Pending::Bdat { last }, 0);
        if let (false, Some(t)) = (last, self.txn.as_mut()) {
            t.bdat_queued();
        }
    }

    pub(super) fn write_bdat_header(&mut self, size: u64, last: bool) {
        let before = self.out.len();
        Command::Bdat { size, last }.write_to(&mut self.out);
        self.log_written(before);
    }
}

/// The room kept in front of a gathered BDAT chunk for its header: `BDAT `, 20 digits (a
/// `u64`), ` LAST` and CRLF.
const FRAME_HEAD: usize = 32;
