//! # smtp-proto: a sans-IO SMTP client engine
//!
//! This crate holds every piece of SMTP client protocol knowledge, and nothing else. It **never
//! opens a socket, never reads a clock and never depends on an async runtime**: bytes go in with
//! [`Session::feed`](session::Session::feed), bytes to write come out of
//! [`poll_transmit`](session::Session::poll_transmit), typed events out of
//! [`poll_event`](session::Session::poll_event). Time comes in too: the driver hands its clock's
//! [`Instant`] to every call that can start or end a wait, and the engine says when the next
//! thing is due ([`poll_timeout`](session::Session::poll_timeout)) and decides what ran out
//! ([`handle_timeout`](session::Session::handle_timeout)).
//!
//! On top of the engine, the `client` feature (on by default) provides [`client::SmtpClient`], an
//! async driver written once over two small traits ([`client::Transport`],
//! [`client::StartTlsCapable`]) that adapters implement: `smtp-io-tokio` for tokio + rustls,
//! `smtp-io-wasm` for Cloudflare Workers and WASI sockets, `smtp-io-std` for blocking sockets
//! (it polls the same driver to its end on the calling thread). [`connect`] holds what every
//! adapter needs to open a connection: the options they share, URLs, proxies, the connect clock.
//!
//! ## Layers
//!
//! * codec (pure functions and small types): [`reply`] (incremental reply parser),
//!   [`capabilities`] (EHLO keywords), [`command`] (typed, validated commands), [`body`]
//!   (dot-stuffing and CRLF normalisation), [`sasl`] (AUTH mechanisms), [`secret`].
//! * engine: [`session::Session`], the only place with session state and protocol rules;
//!   [`flight`], which chains many messages over one session and settles each by its fate.
//! * driver: [`client::SmtpClient`], which only moves bytes; [`connect`], the opening of a
//!   connection around it; [`future::race`], the one combinator both (and the adapters) bound
//!   their waits with.
//!
//! ## `no_std`
//!
//! The engine and the codec need only `core` and `alloc`: build with `default-features = false`
//! for a bare-metal target (the test suite builds `thumbv7em-none-eabihf`), and drive
//! [`Session`] from your own loop. The `std` feature (default) adds
//! `std::io::ErrorKind` in I/O errors and memchr's run-time CPU detection; `client` (the async
//! driver) and `scram` (whose SASLprep needs `std`) turn it on.
//!
//! ## RFCs
//!
//! 5321 (SMTP), 3207 (STARTTLS), 4954 (AUTH), 4616 (PLAIN), 7628 (OAUTHBEARER), 5802, 7677 and
//! 9266 (SCRAM-SHA-256, -PLUS with `tls-exporter`), 4013 (SASLprep), the XOAUTH2 and
//! LOGIN mechanisms, 2920 (PIPELINING), 3030 (CHUNKING, BINARYMIME), 6152 (8BITMIME),
//! 6531 (SMTPUTF8), 1870 (SIZE), 3461 (DSN), 2034 and 3463 (enhanced status codes),
//! 8689 (REQUIRETLS), 2033 (LMTP).
//!
//! ## Security decisions
//!
//! * **STARTTLS is a barrier.** After the `220`, any byte already received is a
//!   [`ProtocolError::ResponseInjection`]; capabilities from before TLS are dropped and EHLO is sent
//!   again. A missing or refused STARTTLS closes the session: nothing continues in plaintext.
//! * **No smuggling.** Bodies are CRLF-normalised (bare CR and bare LF become CRLF) before
//!   dot-stuffing, so no body can contain an end-of-data sequence that a server reads differently.
//! * **No injection.** Every argument is a validated type that refuses CR, LF, NUL and other
//!   controls before a byte is queued.
//! * **Bounded.** Reply line length, lines per reply and bytes per reply are capped
//!   ([`ReplyLimits`]); a hostile server gets a typed error, never unbounded memory.
//! * **No desync.** Every reply is matched to the command it answers, in order, pipelined or not.
//! * **No leaks.** Passwords and tokens live only in the AUTH exchange, are overwritten when it
//!   ends, and never appear in `Debug`, `Display`, errors, transcripts or audit events.
#![cfg_attr(docsrs, feature(doc_cfg))]
// The docs link to the `client` driver (and its `std` items) from the engine's pages; built
// without it (a bare-metal `cargo doc --no-default-features`) those links have nothing to point
// at. With every feature, as on docs.rs and in CI, each link is checked.
#![cfg_attr(not(feature = "client"), allow(rustdoc::broken_intra_doc_links))]
#![no_std]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

/// What `std`'s prelude would give every module, from `alloc`.
#[allow(unused_imports)]
mod alloc_prelude {
    pub(crate) use alloc::borrow::ToOwned;
    pub(crate) use alloc::boxed::Box;
    pub(crate) use alloc::format;
    pub(crate) use alloc::string::{String, ToString};
    pub(crate) use alloc::vec;
    pub(crate) use alloc::vec::Vec;
}

pub mod audit;
pub mod body;
pub mod capabilities;
pub mod command;
pub mod error;
pub mod flight;
pub mod future;
mod mechanism;
pub mod policy;
pub mod reply;
pub mod sasl;
pub mod secret;
pub mod session;
pub mod state;
pub mod time;
pub mod transcript;

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "client")]
pub mod connect;
#[cfg(feature = "client")]
pub mod options;
#[cfg(feature = "client")]
pub mod prelude;
#[cfg(feature = "client")]
pub mod transport;

pub use audit::{AuditEvent, AuditSink, NoopAuditSink};
pub use capabilities::{Capabilities, Extension};
pub use error::{
    ArgumentError, AuthError, Blame, Field, InvalidInputError, IoError, IoErrorKind, PolicyError,
    ProtocolError, RecipientRefusal, ScramError, SmtpError, Unsignable,
};
pub use policy::{BoundedPolicy, DefaultPolicy, Policy};
pub use reply::{EnhancedCode, Reply, ReplyCode, ReplyError, ReplyLimits, ReplyLine, ReplyParser};
pub use sasl::{AuthInput, AuthMechanism, ChannelBinding, ClientNonce};
pub use secret::Secret;
pub use session::{
    BodyInfo, DataPipelining, Delivery, Envelope, Event, ExtensionUse, Fate, MessageId,
    MessageOptions, PlaintextAuth, Protocol, RecipientOutcome, RecipientPolicy, SendOutcome,
    Session, SessionConfig, Timeouts,
};
pub use state::{SessionState, SmtpOp};
pub use time::{Instant, Timer, TimerReason};
pub use transcript::TranscriptSink;

#[cfg(feature = "client")]
pub use client::{
    MessageBody, OutgoingMessage, SliceBody, SmtpClient, SmtpClientOptions, StartTlsCapable,
    Transport,
};
#[cfg(feature = "client")]
pub use connect::TlsMode;
