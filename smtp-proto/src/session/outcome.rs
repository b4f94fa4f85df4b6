//! What a sent message reports: [`SendOutcome`] and [`RecipientOutcome`].

use super::MessageId;
#[allow(unused_imports)]
use crate::alloc_prelude::*;
use crate::reply::Reply;

/// The server's answer for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientOutcome {
    /// The message this result belongs to.
    pub message: MessageId,
    /// The recipient as given.
    pub recipient: String,
    /// The reply to its RCPT TO (and, for LMTP, the per-recipient reply after the message when
    /// the RCPT was accepted).
    pub reply: Reply,
}

impl RecipientOutcome {
    /// True when the server accepted this recipient.
    pub fn is_accepted(&self) -> bool {
        self.reply.code().is_positive()
    }
}

/// The result of a message the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOutcome {
    /// Which message of the session this is.
    pub message: MessageId,
    /// One entry per recipient, in the order given.
    pub recipients: Vec<RecipientOutcome>,
    /// The server's reply after the message (for LMTP, the first accepted recipient's).
    pub reply: Reply,
    /// The queue id from that reply, when the server gave one (`queued as X`, `id=X`).
    pub queue_id: Option<String>,
    /// The message size in bytes after line-ending normalisation (before dot-stuffing).
    pub size: u64,
}

impl SendOutcome {
    /// The recipients the server accepted.
    pub fn accepted(&self) -> impl Iterator<Item = &RecipientOutcome> {
        self.recipients.iter().filter(|r| r.is_accepted())
    }

    /// The recipients the server refused (only with
    /// [`RecipientPolicy::AcceptPartial`](super::RecipientPolicy::AcceptPartial); otherwise the
    /// send fails instead).
    pub fn refused(&self) -> impl Iterator<Item = &RecipientOutcome> {
        self.recipients.iter().filter(|r| !r.is_accepted())
    }
}

/// Find a queue id in a final reply: Postfix `queued as ABC123`, Exim `id=1abc-000`, and
/// `queued as <id>` variants. `None` when no known pattern is present.
pub(crate) fn queue_id(reply: &Reply) -> Option<String> {
    let text = reply.text();
    for marker in ["queued as ", "id="] {
        // The marker is ASCII, so a match starts and ends on character boundaries.
        let found = text
            .as_bytes()
            .windows(marker.len())
            .position(|window| window.eq_ignore_ascii_case(marker.as_bytes()));
        if let Some(rest) = found.and_then(|pos| text.get(pos + marker.len()..)) {
            let rest = rest.trim_start_matches('<');
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '@')))
                .unwrap_or(rest.len());
            let id = rest.get(..end).unwrap_or_default().trim_end_matches('.');
            if !id.is_empty() {
                return Some(id.to_owned());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::ReplyCode;

    fn ok(text: &str) -> Reply {
        Reply::new(ReplyCode::OK, None, text)
    }

    #[test]
    fn queue_ids_of_common_servers() {
        for (text, id) in [
            ("Ok: queued as 4Xyz1abC", Some("4Xyz1abC")),
            ("OK id=1t9Zk2-000123-Ab", Some("1t9Zk2-000123-Ab")),
            ("Message queued as <abc.def>", Some("abc.def")),
            ("2.0.0 Ok: QUEUED AS 9Q", Some("9Q")),
            // Non-ASCII never makes an id.
            ("d\u{e9}j\u{e0} queued as \u{e9}t\u{e9}", None),
            ("OK", None),
            ("queued as ", None),
        ] {
            assert_eq!(queue_id(&ok(text)).as_deref(), id, "{text:?}");
        }
    }
}
