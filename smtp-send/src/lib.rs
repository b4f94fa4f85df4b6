//! # smtp-send: send one message from the command line
//!
//! The library behind the `smtp-send` binary, split out so the pieces can be tested:
//!
//! * [`cli`]: the arguments ([`cli::Cli`], what clap parses);
//! * [`plan`]: what they mean once defaults are resolved ([`plan::Plan`], checked before any
//!   connection);
//! * [`compose`]: building the message from `--subject`, `--body`, `--html`, `--attach` and
//!   `--header`, with `mail-builder`;
//! * [`message`]: the message as a body to send, opened (and DKIM-signed) before connecting;
//! * [`progress`]: the progress bar of a large send, on a terminal only;
//! * [`run`]: connecting with `smtp-io-tokio`, authenticating, streaming the message, reporting;
//! * [`exit`]: the exit codes ([`exit::Exit`]) and the mapping from
//!   [`SmtpError`](smtp_io_tokio::SmtpError) to them;
//! * [`capture`]: the local capture SMTP server used when no `--server` is given (and by the
//!   tests): the [`smtp_capture`] crate;
//! * [`transcript`]: the `-v` transcript on standard error;
//! * [`sanitize`]: server text made safe for the terminal (control characters spelled out);
//! * [`base64`]: standard base64, for the tests' AUTH exchanges.

pub mod base64;
pub mod capture;
pub mod cli;
pub mod compose;
pub mod exit;
pub mod message;
pub mod plan;
pub mod progress;
pub mod run;
pub mod sanitize;
pub mod transcript;
