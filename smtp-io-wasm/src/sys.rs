//! Bindings to the Workers runtime: `connect()` from `cloudflare:sockets`, the socket and its
//! streams, and the timer. Every call that can throw is bound with `catch`, so a JavaScript
//! exception becomes an `Err` instead of a trap.

use std::io;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "cloudflare:sockets")]
extern "C" {
    /// `connect(address, options)`: opens a TCP socket (optionally TLS) to `address`.
    #[wasm_bindgen(catch, js_name = connect)]
    pub(crate) fn connect(address: &JsValue, options: &JsValue) -> Result<Socket, JsValue>;
}

#[wasm_bindgen]
extern "C" {
    /// A `Socket` returned by `connect()` or `startTls()`.
    #[derive(Debug, Clone)]
    pub(crate) type Socket;

    #[wasm_bindgen(method, getter, catch)]
    pub(crate) fn readable(this: &Socket) -> Result<ReadableStream, JsValue>;

    #[wasm_bindgen(method, getter, catch)]
    pub(crate) fn writable(this: &Socket) -> Result<WritableStream, JsValue>;

    /// Resolves once the connection is established (rejects when it cannot be).
    #[wasm_bindgen(method, getter, catch)]
    pub(crate) fn opened(this: &Socket) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch)]
    pub(crate) fn close(this: &Socket) -> Result<Promise, JsValue>;

    /// Only on a socket opened with `secureTransport: "starttls"`; returns the TLS socket. The
    /// certificate is checked for the host name given to `connect()`.
    #[wasm_bindgen(method, catch, js_name = startTls)]
    pub(crate) fn start_tls(this: &Socket) -> Result<Socket, JsValue>;

    /// `startTls(options)`, `options` a `TlsOptions` object (`{ expectedServerHostname }`):
    /// the certificate is checked for that name instead of the host name given to `connect()`.
    #[wasm_bindgen(method, catch, js_name = startTls)]
    pub(crate) fn start_tls_with(this: &Socket, options: &JsValue) -> Result<Socket, JsValue>;

    /// A WHATWG `ReadableStream`.
    #[derive(Debug, Clone)]
    pub(crate) type ReadableStream;

    #[wasm_bindgen(method, catch, js_name = getReader)]
    pub(crate) fn get_reader(this: &ReadableStream)
    -> Result<ReadableStreamDefaultReader, JsValue>;

    /// The reader of a `ReadableStream` (holds its lock).
    #[derive(Debug, Clone)]
    pub(crate) type ReadableStreamDefaultReader;

    /// Resolves to `{ done, value }`.
    #[wasm_bindgen(method, catch)]
    pub(crate) fn read(this: &ReadableStreamDefaultReader) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = releaseLock)]
    pub(crate) fn release_lock(this: &ReadableStreamDefaultReader) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch)]
    pub(crate) fn cancel(this: &ReadableStreamDefaultReader) -> Result<Promise, JsValue>;

    /// A WHATWG `WritableStream`.
    #[derive(Debug, Clone)]
    pub(crate) type WritableStream;

    #[wasm_bindgen(method, catch, js_name = getWriter)]
    pub(crate) fn get_writer(this: &WritableStream)
    -> Result<WritableStreamDefaultWriter, JsValue>;

    /// The writer of a `WritableStream` (holds its lock).
    #[derive(Debug, Clone)]
    pub(crate) type WritableStreamDefaultWriter;

    #[wasm_bindgen(method, catch)]
    pub(crate) fn write(
        this: &WritableStreamDefaultWriter,
        chunk: &JsValue,
    ) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = releaseLock)]
    pub(crate) fn release_lock(this: &WritableStreamDefaultWriter) -> Result<(), JsValue>;

    /// The global `setTimeout`.
    #[wasm_bindgen(js_name = setTimeout)]
    pub(crate) fn set_timeout(handler: &Function, ms: f64) -> JsValue;

    /// The global `clearTimeout`.
    #[wasm_bindgen(js_name = clearTimeout)]
    pub(crate) fn clear_timeout(id: &JsValue);

    /// Web Crypto's `crypto.getRandomValues`: fills the array from the platform's CSPRNG (at most
    /// 65536 bytes a call). The slice is copied in and back out.
    #[wasm_bindgen(catch, js_namespace = crypto, js_name = getRandomValues)]
    pub(crate) fn get_random_values(buf: &mut [u8]) -> Result<JsValue, JsValue>;
}

/// A plain JavaScript object from `(key, value)` pairs.
pub(crate) fn object(entries: &[(&str, JsValue)]) -> JsValue {
    let obj = Object::new();
    for (key, value) in entries {
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&obj, &JsValue::from_str(key), value);
    }
    obj.into()
}

/// What a thrown JavaScript value says: `Error: message` for errors, the string itself for
/// strings, a short placeholder otherwise.
pub(crate) fn describe(value: &JsValue) -> String {
    if let Some(err) = value.dyn_ref::<js_sys::Error>() {
        let name = String::from(err.name());
        let message = String::from(err.message());
        if message.is_empty() {
            name
        } else {
            format!("{name}: {message}")
        }
    } else if let Some(s) = value.as_string() {
        s
    } else {
        "a non-Error JavaScript value was thrown".to_owned()
    }
}

/// An `io::Error` for a failed JavaScript call: `"{context}: {what the JS error says}"`, with a
/// kind guessed from the message (the runtime gives no codes).
pub(crate) fn io_error(context: &str, value: &JsValue) -> io::Error {
    let detail = describe(value);
    let lower = detail.to_ascii_lowercase();
    let kind = if lower.contains("timed out") || lower.contains("timeout") {
        io::ErrorKind::TimedOut
    } else if lower.contains("refused") {
        io::ErrorKind::ConnectionRefused
    } else if lower.contains("reset") || lower.contains("cancel") || lower.contains("closed") {
        io::ErrorKind::ConnectionReset
    } else if lower.contains("not allowed") || lower.contains("permission") {
        io::ErrorKind::PermissionDenied
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(kind, format!("{context}: {detail}"))
}
