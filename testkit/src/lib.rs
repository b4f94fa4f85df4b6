//! Test support shared by the workspace's end-to-end tests (`tests/`), the tests of
//! `smtp-send` and `smtp-io-tokio`, and the bench:
//!
//! - [`certs`]: a throw-away test CA and server certificates it signs, as rustls configurations;
//! - [`script`]: the S:/C: script format, one parser for everything below;
//! - [`cuts`] (always): bytes cut into pieces at arbitrary points, for the property tests that
//!   feed an encoder, a parser or a hash in every split;
//! - `server` (feature `server`): a scripted SMTP server on loopback TCP, with TLS, and `client`:
//!   the same scripts run from the client's side against a server;
//! - [`mock`] (always): a server for many connections whose replies and faults (hang-ups,
//!   silences, stalls, held replies, cut bodies) a test decides as the client's commands come;
//! - [`proxy`] (always): `pproxy` on loopback with SOCKS5 and HTTP CONNECT listeners, a small SMTP
//!   server behind it that records what it saw, and `free_port`, for the route tests;
//! - `expect` (feature `transcript`): checks of the client's errors (an I/O error during a
//!   step, a timeout) that the tests of several adapters repeat;
//! - [`reference`](mod@reference) (always): reference answers written the slow, obvious way (what SMTP delivers
//!   for a message), that the engine's encoders and the interop tests are held to;
//! - [`wait`] (always): polling until a condition holds, blocking or async;
//! - `transcript` (feature `transcript`): the same scripts run in memory through both
//!   `smtp_proto::Session` and `SmtpClient`, recording the client's bytes.
//!
//! Not published, and never a dependency of a published crate (only a dev-dependency, which
//! `cargo package` leaves out): `smtp-send`'s capture server makes its own certificates.
//! `smtp-proto`'s own engine and driver transcripts read their scripts with [`script`] too,
//! through a dev-dependency on this crate without default features: without `transcript` this
//! crate does not depend on `smtp-proto`, so that dev-dependency turns on none of its features
//! (its `--no-default-features` test runs stay as they are) and no second copy of it is built.

pub mod certs;
#[cfg(feature = "server")]
pub mod client;
pub mod cuts;
#[cfg(feature = "transcript")]
pub mod expect;
pub mod mock;
pub mod proxy;
pub mod reference;
pub mod script;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "transcript")]
pub mod transcript;
pub mod wait;

#[cfg(feature = "server")]
pub use client::{Exchange, ScriptClient};
pub use mock::{Act, Conversation, MockServer};
pub use script::{Script, Step, greet};
#[cfg(feature = "server")]
pub use server::{Answer, Report, Responder, ScriptServer};
#[cfg(feature = "transcript")]
pub use transcript::{Run, ScriptedTransport, run_session};
