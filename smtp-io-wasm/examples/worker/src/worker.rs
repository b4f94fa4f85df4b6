//! The fetch handler: JavaScript bindings, the request checks in order, and the delivery.

use std::io;

use js_sys::{Array, Object, Reflect};
use smtp_io_wasm::smtp_proto::command::Domain;
use smtp_io_wasm::{
    ConnectOptions, Delivery, Fate, MessageBody, ReadableStreamBody, SendOutcome, SmtpError,
};
use wasm_bindgen::prelude::*;

use crate::answer::{self, Answer, Envelope};
use crate::auth::{bearer_token, constant_time_eq};
use crate::config::{self, ConfigError, Password, Smtp};
use crate::json::clean;

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
    #[wasm_bindgen(method, getter, js_class = "URL")]
    fn pathname(this: &Url) -> String;
    #[wasm_bindgen(method, getter, js_class = "URL")]
    fn hostname(this: &Url) -> String;
    /// A `URLSearchParams`: iterable over `[name, value]` pairs.
    #[wasm_bindgen(method, getter, js_class = "URL", js_name = searchParams)]
    fn search_params(this: &Url) -> JsValue;

    /// `console.error`: the Worker's log (`wrangler tail`), for its operator.
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn log_error(message: &str);
}

/// The Worker's fetch handler; `entry.mjs` passes the request and the Worker's `env` (its vars
/// and secrets).
#[wasm_bindgen]
pub async fn fetch(request: Request, env: JsValue) -> Result<Response, JsValue> {
    let answer = handle(&request, &env).await;
    let headers = Object::new();
    Reflect::set(&headers, &"content-type".into(), &"application/json".into())?;
    Reflect::set(&headers, &"cache-control".into(), &"no-store".into())?;
    for (name, value) in &answer.headers {
        Reflect::set(&headers, &(*name).into(), &(*value).into())?;
    }
    let init = Object::new();
    Reflect::set(&init, &"status".into(), &answer.status.into())?;
    Reflect::set(&init, &"headers".into(), &headers)?;
    Response::new(&answer.body, &init)
}

/// A string (or, for a wrangler `[vars]` number, its decimal form) from `env`.
fn env_value(env: &JsValue, name: &str) -> Option<String> {
    let value = Reflect::get(env, &JsValue::from_str(name)).ok()?;
    value
        .as_string()
        .or_else(|| value.as_f64().map(|n| n.to_string()))
}

fn config_failure(e: &ConfigError) -> Answer {
    log_error(&format!("smtp worker: bad setting {e}"));
    answer::config_error()
}

/// The query string's `(name, value)` pairs, in order.
fn query_pairs(url: &Url) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    if let Ok(Some(iter)) = js_sys::try_iter(&url.search_params()) {
        for pair in iter.flatten() {
            let pair = Array::from(&pair);
            if let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                pairs.push((name, value));
            }
        }
    }
    pairs
}

/// The checks, in order: path, method, token (before anything else is read), settings,
/// envelope, declared size; then the delivery.
async fn handle(request: &Request, env: &JsValue) -> Answer {
    let Ok(url) = Url::new(&request.url()) else {
        return answer::bad_request("bad URL");
    };
    if url.pathname() != "/send" {
        return answer::not_found();
    }
    if request.method() != "POST" {
        return answer::method_not_allowed();
    }
    let lookup = |name: &str| env_value(env, name);
    let token = match config::api_token(&lookup) {
        Ok(token) => token,
        Err(e) => return config_failure(&e),
    };
    let headers = request.headers();
    let authorized = bearer_token(headers.get("authorization").as_deref())
        .is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes()));
    if !authorized {
        return answer::unauthorized();
    }
    let smtp = match Smtp::from_env(&lookup) {
        Ok(smtp) => smtp,
        Err(e) => return config_failure(&e),
    };
    // An OAuth 2.0 access token brought by the request: only where the configured mechanism
    // takes one (never silently ignored), taken over into a buffer wiped on drop.
    let request_token = match config::access_token(headers.get(config::ACCESS_TOKEN_HEADER)) {
        Ok(token) => token,
        Err(why) => return answer::bad_request(why),
    };
    let takes_token = smtp.credentials.as_ref().is_some_and(|c| c.takes_token());
    if request_token.is_some() && !takes_token {
        return answer::bad_request(
            "SMTP-Access-Token is accepted only when SMTP_AUTH_MECHANISM is XOAUTH2 or OAUTHBEARER",
        );
    }
    if takes_token
        && request_token.is_none()
        && smtp
            .credentials
            .as_ref()
            .is_some_and(|c| c.password.is_none())
    {
        return answer::bad_request("send the OAuth 2.0 access token in SMTP-Access-Token");
    }
    let envelope = match answer::envelope(&query_pairs(&url)) {
        Ok(envelope) => envelope,
        Err(refused) => return refused,
    };
    let declared = match answer::declared_length(
        headers.get("content-length").as_deref(),
        smtp.max_body_bytes,
    ) {
        Ok(declared) => declared,
        Err(refused) => return refused,
    };
    let stream = request.body();
    if stream.is_null() || stream.is_undefined() {
        return answer::bad_request("the message must be the request body");
    }
    let Ok(mut stream) = ReadableStreamBody::new(stream) else {
        return answer::bad_request("the request body cannot be read");
    };
    // `Content-Length` counts the bytes uploaded, not the message as sent (bare LFs become CRLF
    // on the wire), so it is not declared as SIZE=: it only decides a 413 before connecting. The
    // upload itself is capped by `CappedBody`.
    let _ = declared;
    // Read the first bytes before connecting: an empty or unreadable body is the caller's
    // error, found without opening a connection.
    let mut first = vec![0; stream.chunk_size()];
    match stream.read_chunk(&mut first).await {
        Ok(0) => return answer::bad_request("the message (the request body) is empty"),
        Ok(n) => first.truncate(n),
        Err(_) => return answer::bad_request("the request body cannot be read"),
    }
    if first.len() as u64 > smtp.max_body_bytes {
        return answer::too_large(smtp.max_body_bytes);
    }
    let mut body = CappedBody {
        seen: first.len() as u64,
        first,
        inner: stream,
        max_bytes: smtp.max_body_bytes,
        over: false,
    };
    // With DKIM the signature goes in front of the message, so every byte must be hashed before
    // the first is sent: the message (at most MAX_BODY_BYTES) is read and signed here, before
    // connecting. A message that cannot be signed (no From) is the caller's error. Built without
    // the `dkim` feature, nothing is signed: `Smtp::from_env` refused any DKIM setting above.
    #[cfg(feature = "dkim")]
    let signed = match &smtp.dkim {
        None => None,
        Some(signer) => {
            let message = match read_all(&mut body).await {
                Ok(message) => message,
                Err(_) if body.over => return answer::too_large(smtp.max_body_bytes),
                Err(_) => return answer::bad_request("the request body cannot be read"),
            };
            // JavaScript's clock (milliseconds since 1970); `as` saturates, never panics.
            let now = (js_sys::Date::now() / 1000.0) as u64;
            match signer.prepend(&message, now) {
                Ok(signed) => Some(signed),
                Err(e) => {
                    return answer::bad_request(&format!("the message cannot be DKIM-signed: {e}"));
                }
            }
        }
    };
    let ehlo = smtp.ehlo.clone().unwrap_or_else(|| {
        let host = url.hostname();
        if Domain::new(&host).is_ok() {
            host
        } else {
            "localhost".to_owned()
        }
    });
    #[cfg(feature = "dkim")]
    let (streamed, message) = match &signed {
        Some(signed) => (false, Message::Signed(signed)),
        None => (true, Message::Stream(&mut body)),
    };
    // Without `dkim` there is no signed message, and no code to send one.
    #[cfg(not(feature = "dkim"))]
    let (streamed, message) = (true, Message::Stream(&mut body));
    match deliver(&smtp, request_token.as_ref(), &ehlo, &envelope, message).await {
        Ok(outcome) => answer::sent(&outcome),
        Err(_) if streamed && body.over => answer::too_large(smtp.max_body_bytes),
        Err((e, fate)) => {
            log_error(&format!("smtp worker: {}", clean(&e.to_string(), 500)));
            answer::smtp_failure(&e, fate)
        }
    }
}

/// What is sent: the request body streamed as it arrives, or (feature `dkim`) the DKIM-signed
/// message.
enum Message<'a> {
    Stream(&'a mut CappedBody),
    #[cfg(feature = "dkim")]
    Signed(&'a [u8]),
}

/// The whole request body, for signing (bounded by `CappedBody`'s cap).
#[cfg(feature = "dkim")]
async fn read_all(body: &mut CappedBody) -> io::Result<Vec<u8>> {
    let mut message = Vec::new();
    let mut chunk = vec![0; body.chunk_size()];
    loop {
        let n = body.read_chunk(&mut chunk).await?;
        if n == 0 {
            return Ok(message);
        }
        message.extend_from_slice(&chunk[..n]);
    }
}

async fn deliver(
    smtp: &Smtp,
    request_token: Option<&Password>,
    ehlo: &str,
    envelope: &Envelope,
    message: Message<'_>,
) -> Result<SendOutcome, (SmtpError, Fate)> {
    // Nothing of the message was sent before its own send began.
    let not_sent = |e: SmtpError| (e, Fate::NotSent);
    let mut options = ConnectOptions::new(smtp.mode);
    if let Some(t) = smtp.timeout {
        options = options.with_connect_timeout(t).with_reply_timeout(t);
    }
    if let Some(deadline) = smtp.deadline {
        // Counted from before the connect: `connect` starts the session's clock first.
        options = options.with_deadline(deadline);
    }
    if let Some(name) = &smtp.tls_server_name {
        options = options.with_tls_server_name(name.clone());
    }
    if let Some(proxy) = &smtp.proxy {
        // TLS runs through the tunnel, checked for the SMTP server's name, not the proxy's.
        options = options.with_proxy(proxy.clone());
    }
    let mut client = options
        .connect(&smtp.host, smtp.port, ehlo)
        .await
        .map_err(not_sent)?;
    if let Some(credentials) = &smtp.credentials {
        // The request's token first (checked above: only with a token mechanism).
        let secret = request_token
            .or(credentials.password.as_ref())
            .map(Password::expose)
            .unwrap_or_default();
        match credentials.mechanism {
            Some(mechanism) => {
                client
                    .login_with(mechanism, &credentials.user, secret)
                    .await
            }
            None => client.login(&credentials.user, secret).await,
        }
        .map_err(not_sent)?;
    }
    let to: Vec<&str> = envelope.to.iter().map(String::as_str).collect();
    // The engine's verdict on the message: an unanswered end of data is told apart.
    let delivery = match message {
        Message::Stream(body) => client.deliver_stream(&envelope.from, &to, body, None).await,
        #[cfg(feature = "dkim")]
        Message::Signed(bytes) => {
            let message = smtp_io_wasm::OutgoingMessage {
                from: &envelope.from,
                to: &to,
                body: bytes,
                options: None,
            };
            client.deliver(&message).await
        }
    };
    let outcome = match delivery {
        Delivery::Sent(outcome) => outcome,
        failed => {
            let fate = failed.fate().unwrap_or(Fate::NotSent);
            let error = failed.error().cloned().unwrap_or(SmtpError::Internal {
                what: "a failed delivery without its error",
            });
            return Err((error, fate));
        }
    };
    // The message is accepted; a failing QUIT does not change that.
    let _ = client.quit().await;
    Ok(outcome)
}

/// The request body (its first bytes already read), refused past `max_bytes` even when it came
/// without a `Content-Length` (chunked): the read fails, so the client abandons the message
/// before its end of data and nothing is delivered.
struct CappedBody {
    /// Read before connecting, handed out first.
    first: Vec<u8>,
    inner: ReadableStreamBody,
    max_bytes: u64,
    /// Bytes read from the stream so far, `first` included.
    seen: u64,
    over: bool,
}

impl MessageBody for CappedBody {
    async fn read_chunk(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.first.is_empty() {
            let n = self.first.len().min(buf.len());
            buf[..n].copy_from_slice(&self.first[..n]);
            self.first.drain(..n);
            return Ok(n);
        }
        let n = self.inner.read_chunk(buf).await?;
        self.seen += n as u64;
        if self.seen > self.max_bytes {
            self.over = true;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the request body is larger than MAX_BODY_BYTES",
            ));
        }
        Ok(n)
    }

    fn chunk_size(&self) -> usize {
        self.inner.chunk_size()
    }

    fn size_hint(&self) -> Option<u64> {
        self.inner.size_hint()
    }
}
