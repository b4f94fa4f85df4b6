//! Local policy checks run before a message's first command: [`Policy`], [`DefaultPolicy`],
//! [`BoundedPolicy`].
//!
//! A policy refusal is a [`PolicyError`]: nothing is sent to the server and the session stays
//! usable. Typical use: a Worker that relays user input caps recipients, size and domains so it
//! cannot be turned into a spam cannon.

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use crate::command::{Address, ReversePath};
use crate::error::PolicyError;

/// Checks a message's envelope and size before anything is sent.
///
/// Every method defaults to allowing.
pub trait Policy: Send + Sync {
    /// Check the envelope sender.
    fn check_sender(&self, from: &ReversePath) -> Result<(), PolicyError> {
        let _ = from;
        Ok(())
    }

    /// Check the recipient list (never empty).
    fn check_recipients(&self, to: &[Address]) -> Result<(), PolicyError> {
        let _ = to;
        Ok(())
    }

    /// Check the message size in bytes: `Some(n)` for an in-memory body (after line-ending
    /// normalisation) or a stream with a size hint; `None` for a stream of unknown size.
    fn check_message_size(&self, size: Option<u64>) -> Result<(), PolicyError> {
        let _ = size;
        Ok(())
    }

    /// The largest message this policy allows, in bytes as sent (CRLF line endings, without
    /// dot-stuffing), if it has a bound. The engine counts a streamed body as it goes out and
    /// abandons the message past this bound, even when the stream declared a smaller size.
    fn max_message_size(&self) -> Option<u64> {
        None
    }
}

/// Allows everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultPolicy;

impl Policy for DefaultPolicy {}

/// Caps recipients and size and restricts domains. Unset bounds allow everything.
#[derive(Debug, Clone, Default)]
pub struct BoundedPolicy {
    max_recipients: Option<usize>,
    max_message_size: Option<u64>,
    require_known_size: bool,
    sender_domains: Option<Vec<String>>,
    recipient_domains: Option<Vec<String>>,
}

impl BoundedPolicy {
    /// A policy with no bounds yet.
    pub fn new() -> BoundedPolicy {
        BoundedPolicy::default()
    }

    /// Refuse messages with more than `n` recipients.
    pub fn max_recipients(mut self, n: usize) -> BoundedPolicy {
        self.max_recipients = Some(n);
        self
    }

    /// Refuse messages larger than `bytes`.
    pub fn max_message_size(mut self, bytes: u64) -> BoundedPolicy {
        self.max_message_size = Some(bytes);
        self
    }

    /// Refuse streamed messages whose size is not known in advance (so the size bound always
    /// applies). Off by default.
    pub fn require_known_size(mut self, yes: bool) -> BoundedPolicy {
        self.require_known_size = yes;
        self
    }

    /// Only allow senders in these domains (case-insensitive, exact match of the part after `@`).
    /// The null sender `<>` is refused when this is set.
    pub fn allowed_sender_domains(
        mut self,
        domains: impl IntoIterator<Item = impl Into<String>>,
    ) -> BoundedPolicy {
        self.sender_domains = Some(domains.into_iter().map(Into::into).collect());
        self
    }

    /// Only allow recipients in these domains (case-insensitive, exact match of the part after `@`).
    pub fn allowed_recipient_domains(
        mut self,
        domains: impl IntoIterator<Item = impl Into<String>>,
    ) -> BoundedPolicy {
        self.recipient_domains = Some(domains.into_iter().map(Into::into).collect());
        self
    }
}

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

fn domain_allowed(allowed: &[String], address: &str) -> bool {
    let d = domain_of(address);
    allowed.iter().any(|a| a.eq_ignore_ascii_case(d))
}

impl Policy for BoundedPolicy {
    fn check_sender(&self, from: &ReversePath) -> Result<(), PolicyError> {
        let Some(allowed) = &self.sender_domains else {
            return Ok(());
        };
        match from {
            ReversePath::Address(a) if domain_allowed(allowed, a.as_str()) => Ok(()),
            ReversePath::Address(a) => Err(PolicyError::new(format!(
                "sender domain '{}' is not allowed",
                domain_of(a.as_str())
            ))),
            ReversePath::Null => Err(PolicyError::new("the null sender is not allowed")),
        }
    }

    fn check_recipients(&self, to: &[Address]) -> Result<(), PolicyError> {
        if let Some(max) = self.max_recipients {
            if to.len() > max {
                return Err(PolicyError::new(format!(
                    "too many recipients ({} > {max})",
                    to.len()
                )));
            }
        }
        if let Some(allowed) = &self.recipient_domains {
            if let Some(bad) = to.iter().find(|a| !domain_allowed(allowed, a.as_str())) {
                return Err(PolicyError::new(format!(
                    "recipient domain '{}' is not allowed",
                    domain_of(bad.as_str())
                )));
            }
        }
        Ok(())
    }

    fn check_message_size(&self, size: Option<u64>) -> Result<(), PolicyError> {
        match (size, self.max_message_size) {
            (Some(n), Some(max)) if n > max => Err(PolicyError::new(format!(
                "message too large ({n} > {max} bytes)"
            ))),
            (None, Some(_)) if self.require_known_size => Err(PolicyError::new(
                "message size unknown and the policy requires it",
            )),
            _ => Ok(()),
        }
    }

    fn max_message_size(&self) -> Option<u64> {
        self.max_message_size
    }
}
