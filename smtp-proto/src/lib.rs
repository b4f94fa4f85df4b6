//! smtp-proto: a sans-IO SMTP client engine.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod body;
pub mod capabilities;
pub mod command;
pub mod error;
pub mod reply;
pub mod sasl;
pub mod secret;
pub mod session;
pub mod state;

#[cfg(feature = "client")]
pub mod client;

pub use capabilities::{Capabilities, Extension};
pub use error::{
    ArgumentError, AuthError, Field, InvalidInputError, IoError, PolicyError, ProtocolError,
    RecipientRefusal, SmtpError,
};
pub use reply::{EnhancedCode, Reply, ReplyCode, ReplyLimits, ReplyParser};
pub use sasl::AuthMechanism;
pub use state::{SessionState, SmtpOp};
