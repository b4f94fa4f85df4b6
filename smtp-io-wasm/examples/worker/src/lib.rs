//! An example Cloudflare Worker that sends one message with `smtp-io-wasm`, safe to deploy: it
//! sends only through the SMTP server its operator configured, only for callers holding the
//! token.
//!
//! `POST /send?from=<sender>&to=<recipient>[&to=...]` with `Authorization: Bearer <API_TOKEN>`
//! and the message (RFC 5322, CRLF line endings) as the request body, streamed to the server
//! without being held in memory.
//!
//! * The server, TLS mode (`implicit` or `starttls`; plaintext is not offered), user, password
//!   and AUTH mechanism come from the Worker's environment ([`config`]), never from the request;
//!   any query parameter other than `from` and `to` is refused. The one exception: with
//!   `SMTP_AUTH_MECHANISM` XOAUTH2 or OAUTHBEARER, a request may bring the current OAuth 2.0
//!   access token for the configured user in an `SMTP-Access-Token` header (refused otherwise).
//! * The token is checked (in constant time) before anything else is read and before any
//!   connection: a missing or wrong one is `401` with no detail.
//! * The body is capped (`MAX_BODY_BYTES`, 10 MiB by default): a larger `Content-Length` is
//!   `413` before connecting, and a longer chunked body is cut off (`413`, nothing delivered).
//!   `Content-Length` is not declared as `SIZE=` (it counts uploaded bytes, not the message as
//!   sent, where bare LFs become CRLF).
//! * Answers are JSON: `200 {"ok": true, "outcome": {..}}`, or `{"ok": false, "error": <class>,
//!   ..}` with the status of [`answer`]; server text in them has its control characters escaped.
//!
//! The JavaScript glue is `entry.mjs`: `export default { fetch }` around the exported `fetch`,
//! passing `env`. See `README.md` for building, deploying and calling it.

// The request logic is plain Rust, tested on the host (`cargo test`); the handler that uses it
// exists only on the Workers target.
#![cfg_attr(
    not(all(target_arch = "wasm32", target_os = "unknown")),
    allow(dead_code)
)]

pub mod answer;
mod auth;
pub mod config;
mod json;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod worker;
