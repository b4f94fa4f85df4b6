//! What the Worker answers: the HTTP status, extra headers and the JSON body for each outcome.
//! Pure Rust, so it is tested on the host.

use smtp_io_wasm::{
    Delivery, Extension, Fate, InvalidInputError, ProtocolError, Reply, SendOutcome, SmtpError,
    SmtpOp, smtp_proto::error::Field,
};

use crate::json::{Object, array, clean};

/// At most this many characters of any server or runtime text.
const MAX_TEXT: usize = 300;

/// One HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, &'static str)>,
    /// JSON.
    pub body: String,
}

impl Answer {
    fn new(status: u16, body: String) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body,
        }
    }

    fn header(mut self, name: &'static str, value: &'static str) -> Answer {
        self.headers.push((name, value));
        self
    }
}

fn failure(class: &str) -> Object {
    Object::new().bool("ok", false).str("error", class)
}

/// `404`: only `/send` exists.
pub fn not_found() -> Answer {
    Answer::new(404, failure("not_found").finish())
}

/// `405`: only `POST`.
pub fn method_not_allowed() -> Answer {
    Answer::new(405, failure("method_not_allowed").finish()).header("allow", "POST")
}

/// `401`, the same for a missing, malformed or wrong token: no detail.
pub fn unauthorized() -> Answer {
    Answer::new(401, failure("unauthorized").finish()).header("www-authenticate", "Bearer")
}

/// `500`: the Worker's settings are missing or wrong (the details go to the Worker's log only).
pub fn config_error() -> Answer {
    Answer::new(500, failure("config").finish())
}

/// `400`: the request cannot be used; `reason` is cleaned.
pub fn bad_request(reason: &str) -> Answer {
    Answer::new(
        400,
        failure("bad_request")
            .str("reason", &clean(reason, MAX_TEXT))
            .finish(),
    )
}

/// `413`: the body is larger than `MAX_BODY_BYTES`.
pub fn too_large(max_bytes: u64) -> Answer {
    Answer::new(
        413,
        failure("too_large").num("max_bytes", max_bytes).finish(),
    )
}

fn reply_fields(o: Object, reply: &Reply) -> Object {
    o.num("code", u64::from(reply.code().get()))
        .opt_str(
            "enhanced",
            reply.enhanced().map(|e| e.to_string()).as_deref(),
        )
        .str("text", &clean(reply.text(), MAX_TEXT))
}

/// `200` with the outcome: the final reply, the queue id the server named, the size sent and
/// each recipient's reply.
pub fn sent(outcome: &SendOutcome) -> Answer {
    let recipients = array(outcome.recipients.iter().map(|r| {
        reply_fields(
            Object::new()
                .str("recipient", &clean(r.recipient.as_str(), MAX_TEXT))
                .bool("accepted", r.is_accepted()),
            &r.reply,
        )
        .finish()
    }));
    let reply = reply_fields(Object::new(), &outcome.reply).finish();
    let outcome = Object::new()
        .raw("reply", &reply)
        .opt_str(
            "queue_id",
            outcome
                .queue_id
                .as_deref()
                .map(|q| clean(q, MAX_TEXT))
                .as_deref(),
        )
        .num("size", outcome.size)
        .raw("recipients", &recipients)
        .finish();
    Answer::new(
        200,
        Object::new()
            .bool("ok", true)
            .raw("outcome", &outcome)
            .finish(),
    )
}

/// The name of the enum variant a `Debug` rendering starts with (`"Argument"` of
/// `Argument { .. }`): names the inner error without showing any of its data.
fn variant_name(debug: &str) -> &str {
    let end = debug
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(debug.len());
    &debug[..end]
}

/// The status and class of an SMTP failure.
fn classify(err: &SmtpError) -> (u16, &'static str) {
    match err {
        // The request's own body stream failed.
        SmtpError::Io {
            during: SmtpOp::ReadBody,
            ..
        } => (400, "body"),
        SmtpError::Io { .. } => (502, "io"),
        SmtpError::Timeout { .. } | SmtpError::DeadlineExceeded { .. } => (504, "timeout"),
        SmtpError::Protocol(ProtocolError::RecipientsRefused { .. }) => (422, "recipients_refused"),
        SmtpError::Protocol(ProtocolError::MessageTooLarge { .. }) => (413, "too_large"),
        // An address in UTF-8 for a server without SMTPUTF8: the caller's address, refused
        // before MAIL.
        SmtpError::Protocol(ProtocolError::ExtensionUnavailable {
            name: Extension::SmtpUtf8,
        }) => (400, "invalid_input"),
        SmtpError::Protocol(_) => (502, "protocol"),
        SmtpError::Auth(_) => (502, "auth"),
        // The caller's envelope or body.
        SmtpError::InvalidInput(InvalidInputError::Argument {
            field: Field::ReversePath | Field::ForwardPath | Field::Recipients | Field::Body,
            ..
        }) => (400, "invalid_input"),
        SmtpError::InvalidInput(InvalidInputError::BodyLongerThanDeclared { .. }) => {
            (400, "invalid_input")
        }
        // A user name, password or EHLO name the engine refused: the settings.
        SmtpError::InvalidInput(_) => (500, "config"),
        SmtpError::Policy(_) => (422, "policy"),
        // Anything newer.
        _ => (502, "smtp"),
    }
}

/// The answer for a message that failed with `err`, whose fate the engine gave as `fate`: for
/// [`Fate::Unknown`], [`delivery_unknown`]; otherwise the status and class from the error's
/// type, its variant names (`kind`, `detail`), the operation, whether a retry may help (the
/// engine's one rule, [`Delivery::is_retryable`]: only a message provably not delivered, and a
/// failure of the connection or a temporary one), the server's reply (cleaned) and, for refused
/// recipients, each refusal. Never the error's message (the runtime's text can name the server)
/// nor any setting.
pub fn smtp_failure(err: &SmtpError, fate: Fate) -> Answer {
    if fate == Fate::Unknown {
        return delivery_unknown(err);
    }
    let (status, class) = classify(err);
    let retryable = Delivery::failed(err.clone(), fate).is_retryable();
    error_answer(err, status, class, retryable)
}

/// The answer for a message whose end of data was written and whose reply never came (the
/// engine's `Fate::Unknown`): it may have been delivered. `504`, class `unknown`, and never
/// `transient`: sending it again may deliver it twice. The other fields as [`smtp_failure`].
pub fn delivery_unknown(err: &SmtpError) -> Answer {
    error_answer(err, 504, "unknown", false)
}

/// The fields of a failed delivery's answer, with its status, class and retry hint.
fn error_answer(err: &SmtpError, status: u16, class: &str, transient: bool) -> Answer {
    let debug = format!("{err:?}");
    let kind = variant_name(&debug);
    let inner = match err {
        SmtpError::Protocol(p) => Some(format!("{p:?}")),
        SmtpError::Auth(a) => Some(format!("{a:?}")),
        SmtpError::InvalidInput(i) => Some(format!("{i:?}")),
        SmtpError::Policy(p) => Some(format!("{p:?}")),
        _ => None,
    };
    let mut o = failure(class)
        .str("kind", kind)
        .opt_str("detail", inner.as_deref().map(variant_name))
        .opt_str("op", err.during().map(|op| format!("{op:?}")).as_deref())
        .bool("transient", transient);
    match err {
        SmtpError::Timeout { after, .. } | SmtpError::DeadlineExceeded { after, .. } => {
            o = o.num("after_ms", after.as_millis() as u64);
        }
        SmtpError::Protocol(ProtocolError::RecipientsRefused { refused, accepted }) => {
            let list = array(refused.iter().map(|r| {
                reply_fields(
                    Object::new()
                        .num("index", r.index as u64)
                        .str("recipient", &clean(&r.recipient, MAX_TEXT)),
                    &r.reply,
                )
                .finish()
            }));
            o = o.raw("refused", &list).num("accepted", *accepted as u64);
        }
        _ => {}
    }
    if let Some(reply) = err.reply() {
        o = reply_fields(o, reply);
    }
    Answer::new(status, o.finish())
}

/// The envelope, from the query string: `from` once, `to` once or more, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub from: String,
    pub to: Vec<String>,
}

/// Read the envelope from the query's `(name, value)` pairs. Any other parameter is refused
/// (the server, TLS mode and credentials are the Worker's settings, never the caller's), and the
/// addresses are checked before anything is sent.
pub fn envelope(query: &[(String, String)]) -> Result<Envelope, Answer> {
    let mut from = Vec::new();
    let mut to = Vec::new();
    for (name, value) in query {
        match name.as_str() {
            "from" => from.push(value.clone()),
            "to" => to.push(value.clone()),
            other => {
                return Err(bad_request(&format!(
                    "unknown query parameter {other:?}: only from and to are accepted"
                )));
            }
        }
    }
    let [from] = <[String; 1]>::try_from(from)
        .map_err(|_| bad_request("give the sender once: ?from=..."))?;
    if to.is_empty() {
        return Err(bad_request("give at least one recipient: &to=..."));
    }
    if from.is_empty() {
        return Err(bad_request(
            "the sender is empty (use <> for the null sender)",
        ));
    }
    use smtp_io_wasm::smtp_proto::command::{Address, ReversePath};
    ReversePath::new(&from).map_err(|e| bad_request(&e.to_string()))?;
    for rcpt in &to {
        Address::new(rcpt, Field::ForwardPath).map_err(|e| bad_request(&e.to_string()))?;
    }
    Ok(Envelope { from, to })
}

/// The declared body size from `Content-Length`: `Ok(None)` without one, a `400` when it is not
/// a number, a `413` above `max_bytes`.
pub fn declared_length(header: Option<&str>, max_bytes: u64) -> Result<Option<u64>, Answer> {
    let Some(value) = header else {
        return Ok(None);
    };
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_request("Content-Length is not a number"));
    }
    match value.parse::<u64>() {
        Ok(n) if n <= max_bytes => Ok(Some(n)),
        _ => Err(too_large(max_bytes)),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use smtp_io_wasm::smtp_proto::error::ArgumentError;
    use smtp_io_wasm::{AuthError, AuthMechanism, EnhancedCode, RecipientRefusal, ReplyCode};

    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn reason(a: Answer) -> String {
        assert_eq!(a.status, 400, "{}", a.body);
        a.body
    }

    #[test]
    fn envelope_from_query() {
        let e = envelope(&q(&[
            ("from", "a@example.com"),
            ("to", "b@example.org"),
            ("to", "c@example.net"),
        ]))
        .unwrap();
        assert_eq!(e.from, "a@example.com");
        assert_eq!(e.to, ["b@example.org", "c@example.net"]);
        assert!(envelope(&q(&[("from", "<>"), ("to", "b@example.org")])).is_ok());
    }

    #[test]
    fn envelope_refusals() {
        for (pairs, want) in [
            (&[("to", "b@example.org")][..], "sender once"),
            (
                &[("from", "a@x.org"), ("from", "a@x.org"), ("to", "b@x.org")][..],
                "sender once",
            ),
            (&[("from", "a@x.org")][..], "at least one recipient"),
            (&[("from", ""), ("to", "b@x.org")][..], "empty"),
            (
                &[("from", "a@x.org"), ("to", "b@x.org"), ("tls", "none")][..],
                "unknown query parameter \\\"tls\\\"",
            ),
            (
                &[("from", "a@x.org"), ("to", "b@x.org"), ("pass", "x")][..],
                "unknown query parameter \\\"pass\\\"",
            ),
            (
                &[
                    ("from", "a@x.org>\r\nRCPT TO:<evil@x.org"),
                    ("to", "b@x.org"),
                ][..],
                "sender address",
            ),
            (
                &[("from", "a@x.org"), ("to", "b@x.org\r\nDATA")][..],
                "recipient address",
            ),
        ] {
            let body = reason(envelope(&q(pairs)).unwrap_err());
            assert!(body.contains(want), "{pairs:?}: {body}");
            assert!(!body.contains('\r') && !body.contains('\n'), "{body}");
        }
    }

    #[test]
    fn content_length() {
        assert_eq!(declared_length(None, 10), Ok(None));
        assert_eq!(declared_length(Some("10"), 10), Ok(Some(10)));
        assert_eq!(declared_length(Some("11"), 10).unwrap_err().status, 413);
        assert_eq!(
            declared_length(Some("99999999999999999999999"), 10)
                .unwrap_err()
                .status,
            413
        );
        assert_eq!(declared_length(Some("-1"), 10).unwrap_err().status, 400);
        assert_eq!(declared_length(Some("1e3"), 10).unwrap_err().status, 400);
        assert_eq!(declared_length(Some(""), 10).unwrap_err().status, 400);
    }

    fn reply(code: u16, enhanced: Option<(u8, u16, u16)>, text: &str) -> Reply {
        Reply::new(
            ReplyCode::new(code).unwrap(),
            enhanced.map(|(class, subject, detail)| EnhancedCode {
                class,
                subject,
                detail,
            }),
            text,
        )
    }

    #[test]
    fn fixed_answers() {
        assert_eq!(
            unauthorized().body,
            r#"{"ok":false,"error":"unauthorized"}"#
        );
        assert_eq!(unauthorized().headers, [("www-authenticate", "Bearer")]);
        assert_eq!(method_not_allowed().status, 405);
        assert_eq!(method_not_allowed().headers, [("allow", "POST")]);
        assert_eq!(config_error().body, r#"{"ok":false,"error":"config"}"#);
        assert_eq!(
            too_large(4096).body,
            r#"{"ok":false,"error":"too_large","max_bytes":4096}"#
        );
    }

    #[test]
    fn smtp_errors() {
        // Each error, the status it answers with, and the whole body.
        for (e, status, body) in [
            (
                SmtpError::Timeout {
                    during: SmtpOp::Greeting,
                    after: Duration::from_millis(1500),
                },
                504,
                r#"{"ok":false,"error":"timeout","kind":"Timeout","detail":null,"op":"Greeting","transient":true,"after_ms":1500}"#,
            ),
            // The session's deadline: the same class, its own kind, the deadline in `after_ms`.
            (
                SmtpError::DeadlineExceeded {
                    during: SmtpOp::Connect,
                    after: Duration::from_millis(2000),
                },
                504,
                r#"{"ok":false,"error":"timeout","kind":"DeadlineExceeded","detail":null,"op":"Connect","transient":true,"after_ms":2000}"#,
            ),
            (
                SmtpError::Auth(AuthError::Rejected {
                    mechanism: AuthMechanism::Plain,
                    reply: reply(535, Some((5, 7, 8)), "Authentication credentials invalid"),
                    detail: None,
                }),
                502,
                r#"{"ok":false,"error":"auth","kind":"Auth","detail":"Rejected","op":"Auth","transient":false,"code":535,"enhanced":"5.7.8","text":"Authentication credentials invalid"}"#,
            ),
        ] {
            let a = smtp_failure(&e, Fate::NotSent);
            assert_eq!((a.status, a.body.as_str()), (status, body), "{e:?}");
        }

        let e = SmtpError::io(
            SmtpOp::Connect,
            std::io::ErrorKind::ConnectionRefused,
            "refused by 10.0.0.1",
        );
        let a = smtp_failure(&e, Fate::NotSent);
        assert_eq!(a.status, 502);
        assert!(!a.body.contains("10.0.0.1"), "{}", a.body);

        let e = SmtpError::Protocol(ProtocolError::RecipientsRefused {
            refused: vec![RecipientRefusal {
                index: 1,
                recipient: "x@example.org".into(),
                reply: reply(550, Some((5, 1, 1)), "no such user\u{1b}[2J\nsecond line"),
            }],
            accepted: 1,
        });
        let a = smtp_failure(&e, Fate::NotSent);
        assert_eq!(a.status, 422);
        assert!(
            a.body
                .contains(r#""text":"no such user\\u001b[2J | second line""#),
            "{}",
            a.body
        );
        assert!(
            a.body
                .contains(r#""detail":"RecipientsRefused","op":"RcptTo""#),
            "{}",
            a.body
        );

        let empty = |field| {
            SmtpError::InvalidInput(InvalidInputError::argument(field, ArgumentError::Empty))
        };
        for (e, status) in [
            (empty(Field::Secret), 500),
            (empty(Field::ForwardPath), 400),
            (
                SmtpError::Protocol(ProtocolError::MessageTooLarge { size: 10, limit: 5 }),
                413,
            ),
        ] {
            assert_eq!(smtp_failure(&e, Fate::NotSent).status, status, "{e:?}");
        }
    }

    /// A message whose end of data went out unanswered: `unknown`, never `transient`, whatever
    /// the error (a retry may deliver it twice).
    #[test]
    fn an_unanswered_end_of_data_is_unknown_and_not_transient() {
        let e = SmtpError::Timeout {
            during: SmtpOp::DataEnd,
            after: std::time::Duration::from_secs(5),
        };
        assert!(smtp_failure(&e, Fate::NotSent).body.contains(r#""transient":true"#));
        let a = smtp_failure(&e, Fate::Unknown);
        assert_eq!(a.body, delivery_unknown(&e).body);
        assert_eq!(a.status, 504);
        assert!(
            a.body
                .starts_with(r#"{"ok":false,"error":"unknown","kind":"Timeout""#),
            "{}",
            a.body
        );
        assert!(a.body.contains(r#""transient":false"#), "{}", a.body);
    }

    /// The server judged the message at its end of data (a `451` to it, or a positive reply
    /// after refusing one of its `BDAT` chunks): never `transient`, since sending it again may
    /// deliver it twice; the engine's retry rule decides, not the error alone.
    #[test]
    fn a_message_judged_at_its_end_of_data_is_never_transient() {
        let e = SmtpError::Protocol(ProtocolError::UnexpectedCode {
            during: SmtpOp::DataEnd,
            reply: reply(451, Some((4, 3, 0)), "try again later"),
        });
        let before = smtp_failure(&e, Fate::NotSent);
        assert!(before.body.contains(r#""transient":true"#), "{}", before.body);
        let judged = smtp_failure(&e, Fate::Refused);
        assert_eq!(judged.status, before.status);
        assert!(judged.body.contains(r#""transient":false"#), "{}", judged.body);
    }

    /// An address in UTF-8 for a server without SMTPUTF8 is the caller's: 400, not a 502.
    #[test]
    fn a_utf8_address_the_server_cannot_take_is_the_callers() {
        let e = SmtpError::Protocol(ProtocolError::ExtensionUnavailable {
            name: Extension::SmtpUtf8,
        });
        let a = smtp_failure(&e, Fate::NotSent);
        assert_eq!(a.status, 400, "{}", a.body);
        assert!(a.body.contains(r#""error":"invalid_input""#), "{}", a.body);
        let tls = SmtpError::Protocol(ProtocolError::ExtensionUnavailable {
            name: Extension::StartTls,
        });
        assert_eq!(smtp_failure(&tls, Fate::NotSent).status, 502);
    }

    #[test]
    fn variant_names() {
        assert_eq!(variant_name("Argument { field: X }"), "Argument");
        assert_eq!(variant_name("Empty"), "Empty");
        assert_eq!(variant_name("Syntax(\"x\")"), "Syntax");
    }
}
