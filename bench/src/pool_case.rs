//! What the pool measurements measure: the columns (flavours), the kinds of rows, and one
//! row's cases with each column's child arguments. Shared by the runner (`pool.rs`) and the
//! table (`pool_table.rs`).

use std::collections::HashMap;

/// The columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Col {
    /// Our `Mailer` as built (default settings: 100 messages per connection, then QUIT).
    Ours,
    /// Our `Mailer` with no per-connection message cap (the pool's mechanics alone).
    OursUncapped,
    Lettre,
    /// One `SmtpClient` per task, never reconnecting.
    Bare,
    /// One `SmtpClient` per task, ending its connection with QUIT and opening a new one every
    /// 100 messages, as the `Mailer` does by default (the pool's cost at the same work).
    BareCapped,
}

impl Col {
    /// The child's `--flavour`.
    pub fn flavour(self) -> &'static str {
        match self {
            Col::Ours | Col::OursUncapped => "ours",
            Col::Lettre => "lettre",
            Col::Bare | Col::BareCapped => "bare",
        }
    }

    /// The name in the progress lines and the table's notes.
    pub fn name(self) -> &'static str {
        match self {
            Col::OursUncapped => "ours-uncapped",
            Col::BareCapped => "bare-capped",
            c => c.flavour(),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Throughput {
        tls: bool,
        tasks: usize,
    },
    /// Through the delay line; `Some(mode)`: ours with that `--data-pipelining`.
    RoundTrips(Option<&'static str>),
    Handshakes,
    Rss,
}

pub struct Case {
    pub kind: Kind,
    pub label: String,
    pub cols: Vec<Col>,
    /// The child's arguments for one column.
    pub args: HashMap<Col, Vec<String>>,
}
