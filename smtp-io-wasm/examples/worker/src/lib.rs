//! An example Cloudflare Worker that sends one message with `smtp-io-wasm`.
//!
//! `POST /send` with either
//!
//! * a JSON body: `{"host", "port", "tls": "none"|"starttls"|"implicit", "user"?, "pass"?,
//!   "from", "to": [..], "body", "ehlo"?, "timeout_ms"?}`, the message in `body`; or
//! * any other body, which is **streamed** as the message (never held whole in memory), with the
//!   same settings in the query string (`to` repeated for several recipients).
//!
//! It answers `200 {"ok": true, "outcome": {...}}` with the `SendOutcome`, or
//! `502 {"ok": false, "error": {"kind", "detail", "op", "code", "enhanced", "text", ...}}` with the
//! typed `SmtpError`, or `400` for a request it cannot read.
//!
//! The JavaScript glue is `entry.mjs`: `export default { fetch }` around the exported
//! [`fetch`]. See `../../README.md` for building and running it.

use std::time::Duration;

use js_sys::{Array, JSON, Object, Promise, Reflect};
use smtp_io_wasm::{
    AuthError, ConnectOptions, InvalidInputError, ProtocolError, ReadableStreamBody, Reply,
    SendOutcome, SmtpError, TlsMode,
};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    /// The incoming `Request`.
    pub type Request;
    #[wasm_bindgen(method, getter)]
    fn method(this: &Request) -> String;
    #[wasm_bindgen(method, getter)]
    fn url(this: &Request) -> String;
    #[wasm_bindgen(method, getter)]
    fn headers(this: &Request) -> Headers;
    /// `null` or a `ReadableStream`.
    #[wasm_bindgen(method, getter)]
    fn body(this: &Request) -> JsValue;
    #[wasm_bindgen(method, catch)]
    fn json(this: &Request) -> Result<Promise, JsValue>;

    type Headers;
    #[wasm_bindgen(method)]
    fn get(this: &Headers, name: &str) -> Option<String>;

    /// The outgoing `Response`.
    pub type Response;
    #[wasm_bindgen(constructor, catch)]
    fn new(body: &str, init: &JsValue) -> Result<Response, JsValue>;

    #[wasm_bindgen(js_name = URL)]
    type Url;
    #[wasm_bindgen(constructor, catch, js_class = "URL")]
    fn new(url: &str) -> Result<Url, JsValue>;
    #[wasm_bindgen(method, getter, js_class = "URL", js_name = pathname)]
    fn pathname(this: &Url) -> String;
    #[wasm_bindgen(method, getter, js_class = "URL", js_name = searchParams)]
    fn search_params(this: &Url) -> SearchParams;

    #[wasm_bindgen(js_name = URLSearchParams)]
    type SearchParams;
    #[wasm_bindgen(method, js_class = "URLSearchParams")]
    fn get(this: &SearchParams, name: &str) -> Option<String>;
    #[wasm_bindgen(method, js_class = "URLSearchParams", js_name = getAll)]
    fn get_all(this: &SearchParams, name: &str) -> Array;
}

/// The Worker's fetch handler (wrapped by `entry.mjs`).
#[wasm_bindgen]
pub async fn fetch(request: Request) -> Result<Response, JsValue> {
    let (status, json) = match handle(&request).await {
        Ok(outcome) => (
            200,
            obj().set("ok", true).set("outcome", outcome_json(&outcome)),
        ),
        Err(Failure::BadRequest(why)) => (400, obj().set("ok", false).set("bad_request", why)),
        Err(Failure::Smtp(err)) => (502, obj().set("ok", false).set("error", error_json(&err))),
    };
    let text: String = JSON::stringify(&json.0)?.into();
    let headers = obj().set("content-type", "application/json");
    let init = obj().set("status", status).set("headers", headers.0);
    Response::new(&text, &init.0.into())
}

enum Failure {
    BadRequest(String),
    Smtp(SmtpError),
}

impl From<SmtpError> for Failure {
    fn from(e: SmtpError) -> Failure {
        Failure::Smtp(e)
    }
}

/// The message: text from the JSON, or the request's body stream.
enum Message {
    Text(String),
    Stream(ReadableStreamBody),
}

struct Job {
    host: String,
    port: u16,
    mode: TlsMode,
    user: Option<String>,
    pass: Option<String>,
    from: String,
    to: Vec<String>,
    ehlo: String,
    timeout: Option<Duration>,
    message: Message,
}

fn bad(why: impl Into<String>) -> Failure {
    Failure::BadRequest(why.into())
}

fn parse_mode(s: &str) -> Result<TlsMode, Failure> {
    match s {
        "none" => Ok(TlsMode::None),
        "starttls" => Ok(TlsMode::StartTls),
        "implicit" => Ok(TlsMode::Implicit),
        other => Err(bad(format!(
            "tls must be none, starttls or implicit, not {other:?}"
        ))),
    }
}

fn parse_port(s: &str) -> Result<u16, Failure> {
    s.parse().map_err(|_| bad(format!("bad port {s:?}")))
}

/// A string field of a JSON object, if present.
fn field(value: &JsValue, name: &str) -> Option<String> {
    Reflect::get(value, &JsValue::from_str(name))
        .ok()
        .and_then(|v| v.as_string().or_else(|| v.as_f64().map(|n| n.to_string())))
}

async fn read_job(request: &Request) -> Result<Job, Failure> {
    if request.method() != "POST" {
        return Err(bad("use POST /send"));
    }
    let url = Url::new(&request.url()).map_err(|_| bad("bad URL"))?;
    if url.pathname() != "/send" {
        return Err(bad("use POST /send"));
    }
    let content_type = request.headers().get("content-type").unwrap_or_default();
    if content_type.starts_with("application/json") {
        let promise = request.json().map_err(|_| bad("unreadable body"))?;
        let v = JsFuture::from(promise)
            .await
            .map_err(|_| bad("the body is not valid JSON"))?;
        let need = |name: &str| field(&v, name).ok_or_else(|| bad(format!("missing {name}")));
        let to = Reflect::get(&v, &JsValue::from_str("to"))
            .ok()
            .filter(Array::is_array)
            .map(|a| {
                Array::from(&a)
                    .iter()
                    .filter_map(|x| x.as_string())
                    .collect()
            })
            .ok_or_else(|| bad("to must be an array of strings"))?;
        Ok(Job {
            host: need("host")?,
            port: parse_port(&need("port")?)?,
            mode: parse_mode(&need("tls")?)?,
            user: field(&v, "user"),
            pass: field(&v, "pass"),
            from: need("from")?,
            to,
            ehlo: field(&v, "ehlo").unwrap_or_else(|| "worker.example".to_owned()),
            timeout: field(&v, "timeout_ms")
                .and_then(|t| t.parse().ok())
                .map(Duration::from_millis),
            message: Message::Text(need("body")?),
        })
    } else {
        let q = url.search_params();
        let need = |name: &str| q.get(name).ok_or_else(|| bad(format!("missing {name}")));
        let body = request.body();
        if body.is_null() || body.is_undefined() {
            return Err(bad("the message must be the request body"));
        }
        let mut stream =
            ReadableStreamBody::new(body).map_err(|e| bad(format!("request body: {e}")))?;
        if let Some(len) = request
            .headers()
            .get("content-length")
            .and_then(|l| l.parse().ok())
        {
            stream = stream.with_size_hint(len);
        }
        Ok(Job {
            host: need("host")?,
            port: parse_port(&need("port")?)?,
            mode: parse_mode(&need("tls")?)?,
            user: q.get("user"),
            pass: q.get("pass"),
            from: need("from")?,
            to: q
                .get_all("to")
                .iter()
                .filter_map(|x| x.as_string())
                .collect(),
            ehlo: q.get("ehlo").unwrap_or_else(|| "worker.example".to_owned()),
            timeout: q
                .get("timeout_ms")
                .and_then(|t| t.parse().ok())
                .map(Duration::from_millis),
            message: Message::Stream(stream),
        })
    }
}

async fn handle(request: &Request) -> Result<SendOutcome, Failure> {
    let job = read_job(request).await?;
    let mut options = ConnectOptions::new(job.mode);
    if let Some(t) = job.timeout {
        options = options.with_connect_timeout(t).with_reply_timeout(t);
    }
    let mut client = options.connect(&job.host, job.port, &job.ehlo).await?;
    if let Some(user) = &job.user {
        client
            .login(user, job.pass.as_deref().unwrap_or_default())
            .await?;
    }
    let to: Vec<&str> = job.to.iter().map(String::as_str).collect();
    let outcome = match job.message {
        Message::Text(text) => client.send_mail(&job.from, &to, &text).await?,
        Message::Stream(mut stream) => client.send_mail_stream(&job.from, &to, &mut stream).await?,
    };
    // The message is accepted; a failing QUIT does not change that.
    let _ = client.quit().await;
    Ok(outcome)
}

// ------------------------------------------------------------------ JSON

/// A JS object under construction.
struct Obj(Object);

fn obj() -> Obj {
    Obj(Object::new())
}

impl Obj {
    fn set(self, key: &str, value: impl Into<JsValue>) -> Obj {
        let _ = Reflect::set(&self.0, &JsValue::from_str(key), &value.into());
        self
    }

    fn set_opt(self, key: &str, value: Option<impl Into<JsValue>>) -> Obj {
        match value {
            Some(v) => self.set(key, v),
            None => self.set(key, JsValue::NULL),
        }
    }
}

impl From<Obj> for JsValue {
    fn from(o: Obj) -> JsValue {
        o.0.into()
    }
}

fn reply_json(reply: &Reply) -> Obj {
    obj()
        .set("code", reply.code().get())
        .set_opt("enhanced", reply.enhanced().map(|e| e.to_string()))
        .set("text", reply.text())
}

fn outcome_json(outcome: &SendOutcome) -> Obj {
    let recipients = Array::new();
    for r in &outcome.recipients {
        recipients.push(
            &reply_json(&r.reply)
                .set("recipient", r.recipient.as_str())
                .set("accepted", r.is_accepted())
                .into(),
        );
    }
    obj()
        .set("reply", reply_json(&outcome.reply))
        .set_opt("queue_id", outcome.queue_id.as_deref())
        .set("size", outcome.size as f64)
        .set("recipients", recipients)
}

/// The typed error: `kind` (the `SmtpError` variant), `detail` (the inner variant), `op` (the
/// `SmtpOp`, when the error names one), the server's reply when there is one, and the message.
fn error_json(err: &SmtpError) -> Obj {
    let mut o = obj()
        .set("message", err.to_string())
        .set("transient", err.is_transient());
    let (kind, detail, op) = match err {
        SmtpError::Io { during, error } => {
            o = o.set("io_kind", format!("{:?}", error.kind));
            ("Io", None, Some(*during))
        }
        SmtpError::Timeout { during, after } => {
            o = o.set("after_ms", after.as_millis() as f64);
            ("Timeout", None, Some(*during))
        }
        SmtpError::Protocol(p) => match p {
            ProtocolError::UnexpectedCode { during, .. } => {
                ("Protocol", Some("UnexpectedCode"), Some(*during))
            }
            ProtocolError::ExtensionUnavailable { name } => {
                o = o.set("extension", *name);
                ("Protocol", Some("ExtensionUnavailable"), None)
            }
            ProtocolError::Malformed { during, .. } => {
                ("Protocol", Some("Malformed"), Some(*during))
            }
            ProtocolError::ResponseInjection { .. } => {
                ("Protocol", Some("ResponseInjection"), None)
            }
            ProtocolError::UnsolicitedReply { .. } => ("Protocol", Some("UnsolicitedReply"), None),
            ProtocolError::ConnectionClosed { during } => {
                ("Protocol", Some("ConnectionClosed"), Some(*during))
            }
            ProtocolError::RecipientsRefused { refused, accepted } => {
                let list = Array::new();
                for r in refused {
                    list.push(
                        &reply_json(&r.reply)
                            .set("index", r.index as f64)
                            .set("recipient", r.recipient.as_str())
                            .into(),
                    );
                }
                o = o.set("refused", list).set("accepted", *accepted as f64);
                (
                    "Protocol",
                    Some("RecipientsRefused"),
                    Some(smtp_io_wasm::SmtpOp::RcptTo),
                )
            }
            ProtocolError::MessageTooLarge { .. } => ("Protocol", Some("MessageTooLarge"), None),
            _ => ("Protocol", None, None),
        },
        SmtpError::Auth(a) => match a {
            AuthError::UnsupportedMechanism { .. } => (
                "Auth",
                Some("UnsupportedMechanism"),
                Some(smtp_io_wasm::SmtpOp::Auth),
            ),
            AuthError::Rejected { .. } => {
                ("Auth", Some("Rejected"), Some(smtp_io_wasm::SmtpOp::Auth))
            }
            _ => ("Auth", None, Some(smtp_io_wasm::SmtpOp::Auth)),
        },
        SmtpError::InvalidInput(i) => match i {
            InvalidInputError::Argument { .. } => ("InvalidInput", Some("Argument"), None),
            InvalidInputError::WrongState { op, .. } => {
                ("InvalidInput", Some("WrongState"), Some(*op))
            }
            _ => ("InvalidInput", None, None),
        },
        SmtpError::Policy(_) => ("Policy", None, None),
        _ => ("Other", None, None),
    };
    o = o
        .set("kind", kind)
        .set_opt("detail", detail)
        .set_opt("op", op.map(|op| format!("{op:?}")));
    match err.reply() {
        Some(reply) => o
            .set("code", reply.code().get())
            .set_opt("enhanced", reply.enhanced().map(|e| e.to_string()))
            .set("text", reply.text()),
        None => o,
    }
}
