//! The one list of items every adapter crate (`smtp-io-tokio`, `smtp-io-wasm`) re-exports at its
//! root with `pub use smtp_proto::prelude::*;`, so that an adapter's users write
//! `smtp_io_tokio::SmtpError` without depending on this crate themselves, and both adapters
//! offer the same names. An adapter adds only what is its own (its transport, its connect
//! options, its TLS configuration).

pub use crate::audit::{AuditEvent, AuditSink, NoopAuditSink};
pub use crate::capabilities::{Capabilities, Extension};
pub use crate::client::{
    Delivery, IdleStatus, MessageBody, OutgoingMessage, SliceBody, SmtpClientOptions,
    StartTlsCapable, Transport,
};
pub use crate::connect::{SmtpUrl, TlsMode, UrlError};
pub use crate::error::{
    ArgumentError, AuthError, Blame, Field, InvalidInputError, IoError, PolicyError, ProtocolError,
    RecipientRefusal, ScramError, SmtpError, Unsignable,
};
pub use crate::policy::{BoundedPolicy, DefaultPolicy, Policy};
pub use crate::reply::{EnhancedCode, Reply, ReplyCode, ReplyLimits, ReplyLine};
pub use crate::sasl::AuthMechanism;
pub use crate::secret::Secret;
pub use crate::session::{
    DataPipelining, Event, ExtensionUse, Fate, MessageId, MessageOptions, PlaintextAuth, Protocol,
    RecipientOutcome, RecipientPolicy, SendOutcome, SessionConfig, Timeouts,
};
pub use crate::state::{SessionState, SmtpOp};
pub use crate::transcript::TranscriptSink;
