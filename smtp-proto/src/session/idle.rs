//! A connection between two operations: what a look at it found ([`IdleInput`]) and whether it
//! can be used again ([`IdleStatus`]).

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use super::Session;
use crate::error::IoErrorKind;

/// The most unsolicited bytes [`IdleStatus::Unsolicited`] keeps, for a log line.
const KEPT: usize = 512;

/// What a look at a connection between two operations found, without waiting (see
/// [`Session::idle_input`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleInput<'a> {
    /// Nothing to read.
    Nothing,
    /// Nothing was read, but the transport knows that input waits (its runtime has not noticed
    /// it yet).
    Waiting,
    /// The server closed the connection (a read returned 0 bytes).
    Eof,
    /// These bytes arrived.
    Bytes(&'a [u8]),
    /// The read failed.
    Error(IoErrorKind, &'a str),
}

/// Whether a connection that sat idle can be used again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdleStatus {
    /// Nothing arrived: the connection can be used.
    Quiet,
    /// The server closed the connection (or the session was already closed).
    Closed,
    /// The server sent bytes nobody asked for (a `421` before it hangs up, or a stray reply).
    /// The connection is out of step: any reply read from now on could belong to the wrong
    /// command, so the session has been closed.
    Unsolicited {
        /// The first bytes that arrived (at most 512), for a log line.
        bytes: Vec<u8>,
    },
}

impl Session {
    /// Judge what a look at the connection between two operations found, for a caller that
    /// keeps connections idle (a pool) and checks one before using it again. Anything at all
    /// means it cannot be: an end of stream or a failed read is [`IdleStatus::Closed`], input
    /// is [`IdleStatus::Unsolicited`] (e.g. a `421` the server sent before hanging up), and so
    /// is nothing read while the engine holds part of a reply
    /// ([`holds_partial_reply`](Self::holds_partial_reply)). Then the session is closed (its
    /// events say why: drain them and close the transport), and the bytes are never parsed or
    /// paired with the next command. A session already closed is [`IdleStatus::Closed`]. Call
    /// it only between operations (nothing awaited).
    pub fn idle_input(&mut self, found: IdleInput<'_>) -> IdleStatus {
        if self.standing.is_closed() {
            return IdleStatus::Closed;
        }
        match found {
            IdleInput::Nothing if !self.holds_partial_reply() => IdleStatus::Quiet,
            IdleInput::Nothing | IdleInput::Waiting => {
                self.handle_io_error(
                    IoErrorKind::InvalidData,
                    "unsolicited input from the server while idle",
                );
                IdleStatus::Unsolicited { bytes: Vec::new() }
            }
            IdleInput::Eof => {
                self.handle_eof();
                IdleStatus::Closed
            }
            IdleInput::Bytes(bytes) => {
                self.handle_io_error(
                    IoErrorKind::InvalidData,
                    &format!(
                        "{} unsolicited byte(s) from the server while idle",
                        bytes.len()
                    ),
                );
                let kept = &bytes[..bytes.len().min(KEPT)];
                IdleStatus::Unsolicited {
                    bytes: kept.to_vec(),
                }
            }
            IdleInput::Error(kind, message) => {
                self.handle_io_error(kind, message);
                IdleStatus::Closed
            }
        }
    }
}
