//! Interoperability tests: the client (smtp-io-tokio) against real servers on loopback —
//! aiosmtpd, nodemailer's smtp-server (SMTP and LMTP), Postfix with Dovecot SASL, Exim, and
//! Postfix's smtp-sink as a fault injector; Postfix also through real SOCKS5 and HTTP CONNECT
//! proxies (`proxy.rs`). `blocking.rs` runs the blocking client (smtp-io-std) against the same
//! servers, as a column of its own (`<server>-std` rows).
//!
//! Opt-in. Without `SMTP_INTEROP=1` every test prints a notice and passes, so a plain
//! `cargo test --workspace` needs no server. `tests/servers/run-interop.sh` installs and starts
//! the servers, exports their ports, spools and test CA (see `tests/servers/start-servers.sh`),
//! runs this binary and stops the servers. With `SMTP_INTEROP=1`, a server whose variables are
//! missing fails its test.
//!
//! Each test runs every case of one server and prints a table; a case that fails does not stop
//! the others. Delivered messages are read back from the server's capture folder and compared
//! byte for byte with what was sent, after the normalisation SMTP itself implies (CRLF line
//! endings, dot-unstuffing) and after removing the trace header the server prepends.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smtp_io_tokio::smtp_proto::command::{DsnReturn, EnvelopeId, Notify, OriginalRecipient};
use smtp_io_tokio::{
    AuthError, AuthMechanism, ConnectOptions, DataPipelining, Extension, ExtensionUse,
    MessageOptions, OutgoingMessage, Protocol, ProtocolError, Proxy, RecipientPolicy, Reply,
    SendOutcome, SessionState, SmtpClient, SmtpClientOptions, SmtpError, SmtpOp, Timeouts,
    TlsConfig, TlsMode, TranscriptSink,
};

const HOST: &str = "127.0.0.1";
const EHLO: &str = "client.interop.test";
const FROM: &str = "sender@example.com";
/// How long a delivered message may take to show up in a capture folder (Postfix and Exim
/// deliver from their queue, a little after the final reply).
const CAPTURE_WAIT: Duration = Duration::from_secs(20);
/// The most one case may take.
const CASE_LIMIT: Duration = Duration::from_secs(120);

// ------------------------------------------------------------------------------------ setup

/// The shared context when the interop tests are enabled; otherwise `None`, after a notice
/// that `test` is skipped.
fn enabled(test: &str) -> Option<Ctx> {
    if std::env::var("SMTP_INTEROP").is_ok_and(|v| v == "1") {
        return Some(Ctx::from_env());
    }
    println!(
        "interop::{test}: skipped (opt-in): run tests/servers/run-interop.sh, which starts the \
         real servers and sets SMTP_INTEROP=1"
    );
    None
}

fn var(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "SMTP_INTEROP=1 but {name} is not set: the server it describes was not started. \
             Run tests/servers/run-interop.sh (it installs and starts every server, exports \
             their variables and runs these tests)."
        ),
    }
}

fn port(name: &str) -> u16 {
    let v = var(name);
    v.parse()
        .unwrap_or_else(|_| panic!("{name}={v:?} is not a port number"))
}

/// Credentials and trust shared by every server.
struct Ctx {
    tls: TlsConfig,
    user: String,
    pass: String,
    token: String,
    results: Option<PathBuf>,
}

impl Ctx {
    fn from_env() -> Ctx {
        let ca = var("SMTP_INTEROP_CA");
        let tls = TlsConfig::from_ca_file(&ca)
            .unwrap_or_else(|e| panic!("SMTP_INTEROP_CA={ca}: cannot load the test CA: {e}"));
        Ctx {
            tls,
            user: var("SMTP_INTEROP_USER"),
            pass: var("SMTP_INTEROP_PASS"),
            token: var("SMTP_INTEROP_TOKEN"),
            results: std::env::var_os("SMTP_INTEROP_RESULTS").map(PathBuf::from),
        }
    }

    /// What logs in with `mechanism`: the OAuth token for XOAUTH2 and OAUTHBEARER, the
    /// password otherwise.
    fn credential(&self, mechanism: AuthMechanism) -> &str {
        if mechanism.takes_token() {
            &self.token
        } else {
            &self.pass
        }
    }
}

/// How a server stores what it received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Capture {
    /// `<id>.eml` holds exactly the un-stuffed bytes received (aiosmtpd, smtp-server).
    Exact,
    /// A `Received:` header is prepended and CRLF became LF (Postfix's pipe).
    ReceivedLf,
    /// A `Received:` header is prepended, CRLF kept (Exim's pipe with `use_crlf`).
    ReceivedCrlf,
    /// smtp-sink's dump: `X-*` envelope headers and a `Received:` header, LF line ends, and one
    /// empty line appended.
    SinkDump,
}

/// One server endpoint and what it offers.
struct Target {
    /// The server's name in the table (`aiosmtpd`, `postfix-std`, ...).
    name: String,
    /// Where the body cases connect (no AUTH).
    port: u16,
    mode: TlsMode,
    protocol: Protocol,
    /// The capture folder, if the server keeps what it receives.
    spool: Option<PathBuf>,
    capture: Capture,
}

impl Target {
    /// A server reached without TLS on `port` for the body cases.
    fn new(
        name: &str,
        port: u16,
        protocol: Protocol,
        spool: Option<PathBuf>,
        capture: Capture,
    ) -> Target {
        Target {
            name: name.to_owned(),
            port,
            mode: TlsMode::None,
            protocol,
            spool,
            capture,
        }
    }
}

/// A server of the matrix as both columns reach it: the variables naming its plain port and its
/// spool, its protocol and how its deliveries are captured. The async column's rows carry its
/// `name`, the blocking column's (`blocking.rs`) the name with `-std`.
#[derive(Clone, Copy)]
struct Server {
    name: &'static str,
    port: &'static str,
    protocol: Protocol,
    spool: &'static str,
    capture: Capture,
}

const AIOSMTPD: Server = Server {
    name: "aiosmtpd",
    port: "SMTP_INTEROP_AIOSMTPD_PORT",
    protocol: Protocol::Smtp,
    spool: "SMTP_INTEROP_AIOSMTPD_SPOOL",
    capture: Capture::Exact,
};

const NODE: Server = Server {
    name: "node",
    port: "SMTP_INTEROP_NODE_PORT",
    protocol: Protocol::Smtp,
    spool: "SMTP_INTEROP_NODE_SPOOL",
    capture: Capture::Exact,
};

const NODE_LMTP: Server = Server {
    name: "node-lmtp",
    port: "SMTP_INTEROP_NODE_LMTP_PORT",
    protocol: Protocol::Lmtp,
    ..NODE
};

const POSTFIX: Server = Server {
    name: "postfix",
    port: "SMTP_INTEROP_POSTFIX_PORT",
    protocol: Protocol::Smtp,
    spool: "SMTP_INTEROP_POSTFIX_SPOOL",
    capture: Capture::ReceivedLf,
};

const EXIM: Server = Server {
    name: "exim",
    port: "SMTP_INTEROP_EXIM_PORT",
    protocol: Protocol::Smtp,
    spool: "SMTP_INTEROP_EXIM_SPOOL",
    capture: Capture::ReceivedCrlf,
};

impl Server {
    /// When the test `test` is enabled: the shared context and this server's target, its rows
    /// named `row`.
    fn open(&self, test: &str, row: &str) -> Option<(Ctx, Target)> {
        let ctx = enabled(test)?;
        let p = port(self.port);
        let t = Target::new(row, p, self.protocol, spool(self.spool), self.capture);
        Some((ctx, t))
    }

    /// The async column's test `test`: when enabled, run the cases `cases` makes from the
    /// server's plain port against it.
    fn run(&self, test: &str, cases: impl FnOnce(u16) -> Vec<Case>) {
        if let Some((ctx, t)) = self.open(test, self.name) {
            run_matrix(&ctx, &t, &cases(t.port));
        }
    }
}

/// A runtime for the async client on the test's own thread.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

mod blocking;
mod capture;
mod case;
mod conn;
mod faults;
mod proxy;
mod runner;

use capture::*;
use case::*;
use conn::*;
use faults::*;
use proxy::*;
use runner::*;

/// The sends of a server with a plain port `p` (STARTTLS offered) and an implicit-TLS port `tls`
/// (both columns): one in each TLS mode, and one after AUTH with each of `mechanisms` over
/// STARTTLS and over implicit TLS.
fn tls_and_auth_sends(p: u16, tls: u16, mechanisms: &[AuthMechanism]) -> Vec<Case> {
    let mut cases = plain_and_starttls(p);
    cases.push(Case::send("implicit-tls", tls, TlsMode::Implicit, None));
    let routes = [(p, TlsMode::StartTls), (tls, TlsMode::Implicit)];
    cases.extend(auth_sends(&routes, mechanisms));
    cases
}

/// The connection and AUTH cases every server with a plain port `p` (STARTTLS offered) and an
/// implicit-TLS port `tls` shares: [`tls_and_auth_sends`], and a wrong password over STARTTLS
/// for each password mechanism among `mechanisms`.
fn tls_and_auth_cases(p: u16, tls: u16, mechanisms: &[AuthMechanism]) -> Vec<Case> {
    let mut cases = tls_and_auth_sends(p, tls, mechanisms);
    cases.extend(
        mechanisms
            .iter()
            .filter(|m| matches!(m, AuthMechanism::Plain | AuthMechanism::Login))
            .map(|&mechanism| Case::WrongPassword {
                port: p,
                mode: TlsMode::StartTls,
                mechanism,
            }),
    );
    cases
}

/// A send without AUTH on `p`, in plaintext and over STARTTLS (both columns).
fn plain_and_starttls(p: u16) -> Vec<Case> {
    vec![
        Case::send("plain", p, TlsMode::None, None),
        Case::send("starttls", p, TlsMode::StartTls, None),
    ]
}

/// A send after AUTH with each of `mechanisms` on each of `routes` (a port and its TLS mode),
/// labelled by [`auth_label`] (both columns).
fn auth_sends(routes: &[(u16, TlsMode)], mechanisms: &[AuthMechanism]) -> Vec<Case> {
    let mut cases = Vec::new();
    for &(port, mode) in routes {
        cases.extend(mechanisms.iter().map(|&mechanism| {
            Case::send(auth_label(mode, mechanism), port, mode, Some(mechanism))
        }));
    }
    cases
}

/// The matrix label of a send after AUTH with `mechanism` in `mode`.
fn auth_label(mode: TlsMode, mechanism: AuthMechanism) -> &'static str {
    use AuthMechanism::{Login, Plain, ScramSha256, XOAuth2};
    match (mode, mechanism) {
        (TlsMode::StartTls, Plain) => "starttls+auth-plain",
        (TlsMode::StartTls, Login) => "starttls+auth-login",
        (TlsMode::StartTls, XOAuth2) => "starttls+auth-xoauth2",
        (TlsMode::StartTls, ScramSha256) => "starttls+auth-scram-sha-256",
        (TlsMode::Implicit, Plain) => "implicit+auth-plain",
        (TlsMode::Implicit, Login) => "implicit+auth-login",
        (TlsMode::Implicit, XOAuth2) => "implicit+auth-xoauth2",
        (TlsMode::Implicit, ScramSha256) => "implicit+auth-scram-sha-256",
        _ => "auth (other)",
    }
}

/// The cases every SMTP server with a capture folder gets (body, envelope, limits), with
/// PIPELINING and CHUNKING also on when the server offers them (`pipelining`, `chunking`).
fn body_cases(pipelining: bool, chunking: bool) -> Vec<Case> {
    let mut v = Vec::new();
    if pipelining {
        v.push(Case::Pipelining(ExtensionUse::WhenOffered));
    }
    v.push(Case::Pipelining(ExtensionUse::Never));
    if chunking {
        v.push(Case::Chunking(ExtensionUse::WhenOffered));
        v.push(Case::Chunking(ExtensionUse::Never));
    }
    v.extend([
        Case::EightBit,
        Case::Utf8Address,
        Case::DotLines,
        Case::BareLf,
        Case::PartialRecipients,
        Case::RequireAllRecipients,
        Case::RequireAllPipelinedData,
        Case::Oversize,
        Case::Dsn,
        Case::Fifty,
        Case::Batch,
        Case::MailBuilder,
        Case::Dkim,
    ]);
    v
}

// ------------------------------------------------------------------------------------ tests

#[test]
fn aiosmtpd() {
    AIOSMTPD.run("aiosmtpd", |p| {
        let tls = port("SMTP_INTEROP_AIOSMTPD_TLS_PORT");
        let mut cases = vec![Case::Capabilities(&[
            "SIZE", "8BITMIME", "SMTPUTF8", "STARTTLS",
        ])];
        cases.extend(tls_and_auth_cases(
            p,
            tls,
            &[AuthMechanism::Plain, AuthMechanism::Login],
        ));
        cases.push(Case::AuthNeedsTls { port: p });
        cases.extend(body_cases(false, false));
        cases
    });
}

/// Mutual TLS against aiosmtpd's port that requires a client certificate signed by the test CA
/// (issue 25): the client's certificate is accepted and the message delivered; a certificate
/// from another CA, or none, fails with a typed error and delivers nothing.
#[test]
fn aiosmtpd_client_certificates() {
    let rt = runtime();
    Mtls::check("aiosmtpd_client_certificates", "mtls", |port, tls, id| {
        rt.block_on(async {
            let mut client = ConnectOptions::new(TlsMode::Implicit)
                .with_tls_config(tls)
                .with_reply_timeout(Duration::from_secs(10))
                .connect(HOST, port, EHLO)
                .await?;
            client
                .send_mail(FROM, &["mtls@example.org"], &Mtls::body(id))
                .await?;
            client.quit().await
        })
    });
}

/// What the client-certificate tests of both clients share: aiosmtpd's port that requires a
/// client certificate signed by the test CA, and its spool.
struct Mtls {
    port: u16,
    spool: PathBuf,
}

impl Mtls {
    /// The test `test` of one client, when enabled: `send` (that client sending [`Mtls::body`]
    /// as an id to the given port, with the given TLS configuration) succeeds with the client
    /// certificate the test CA signed, fails with a typed error before SMTP with a certificate
    /// from another CA or none, and only the first message is delivered. The ids start with
    /// `prefix`.
    fn check(
        test: &str,
        prefix: &str,
        send: impl Fn(u16, TlsConfig, &str) -> Result<(), SmtpError>,
    ) {
        let Some(ctx) = enabled(test) else {
            return;
        };
        let mtls = Mtls {
            port: port("SMTP_INTEROP_AIOSMTPD_MTLS_PORT"),
            spool: PathBuf::from(var("SMTP_INTEROP_AIOSMTPD_SPOOL")),
        };
        let [signed, stranger, none] =
            ["signed", "stranger", "none"].map(|k| format!("{prefix}-{k}"));
        let accepted = Mtls::with_cert(&ctx, "SMTP_INTEROP_CLIENT_CERT", "SMTP_INTEROP_CLIENT_KEY");
        assert!(accepted.has_client_certificate());
        send(mtls.port, accepted, &signed)
            .expect("a client certificate signed by the test CA is accepted");
        let other_ca = Mtls::with_cert(
            &ctx,
            "SMTP_INTEROP_STRANGER_CERT",
            "SMTP_INTEROP_STRANGER_KEY",
        );
        for (tls, id) in [(other_ca, &stranger), (ctx.tls.clone(), &none)] {
            let error = send(mtls.port, tls, id).expect_err(id);
            assert!(
                matches!(
                    error,
                    SmtpError::Io { .. }
                        | SmtpError::Protocol(ProtocolError::ConnectionClosed { .. })
                ),
                "{id}: {error:?}"
            );
        }
        // The spool is written after the reply: give it a moment.
        let deadline = Instant::now() + Duration::from_secs(10);
        while mtls.delivered(&signed) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(mtls.delivered(&signed), 1);
        assert_eq!(mtls.delivered(&stranger) + mtls.delivered(&none), 0);
        println!("{test}: accepted with the CA's client certificate, refused without");
    }

    /// The test's trust with the client certificate and key named by these variables.
    fn with_cert(ctx: &Ctx, cert: &str, key: &str) -> TlsConfig {
        ctx.tls
            .with_client_certificate_files(var(cert), var(key))
            .expect("the client certificate and key load")
    }

    /// The message sent as `id`.
    fn body(id: &str) -> String {
        format!("Subject: {id}\r\nMessage-ID: <{id}@interop.test>\r\n\r\nmutual TLS\r\n")
    }

    /// How many messages of the spool carry `id`.
    fn delivered(&self, id: &str) -> usize {
        std::fs::read_dir(&self.spool)
            .map(|dir| {
                dir.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .filter(|e| {
                        std::fs::read(e.path()).is_ok_and(|b| find(&b, id.as_bytes()).is_some())
                    })
                    .count()
            })
            .unwrap_or(0)
    }
}

#[test]
fn node_smtp_server() {
    NODE.run("node_smtp_server", |p| {
        let tls = port("SMTP_INTEROP_NODE_TLS_PORT");
        let mut cases = vec![Case::Capabilities(&[
            "PIPELINING",
            "8BITMIME",
            "SMTPUTF8",
            "ENHANCEDSTATUSCODES",
            "DSN",
            "STARTTLS",
            "SIZE",
            "AUTH",
        ])];
        cases.extend(tls_and_auth_cases(
            p,
            tls,
            &[
                AuthMechanism::Plain,
                AuthMechanism::Login,
                AuthMechanism::XOAuth2,
            ],
        ));
        cases.extend([
            Case::wrong_password(tls, TlsMode::Implicit, AuthMechanism::Plain),
            Case::WrongToken {
                port: p,
                mode: TlsMode::StartTls,
            },
            Case::PoolOAuth2 {
                port: p,
                mode: TlsMode::StartTls,
            },
            Case::AuthNeedsTls { port: p },
        ]);
        cases.extend(body_cases(true, false));
        cases
    });
}

#[test]
fn node_smtp_server_lmtp() {
    NODE_LMTP.run("node_smtp_server_lmtp", |p| {
        vec![
            Case::Capabilities(&["PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"]),
            Case::send("lmtp-plain", p, TlsMode::None, None),
            Case::LmtpPerRecipient {
                port: p,
                capture: true,
            },
            Case::Pipelining(ExtensionUse::WhenOffered),
            Case::Pipelining(ExtensionUse::Never),
            Case::EightBit,
            Case::Utf8Address,
            Case::DotLines,
            Case::BareLf,
            Case::RequireAllRecipients,
            Case::Oversize,
            Case::Fifty,
            Case::Batch,
        ]
    });
}

#[test]
fn postfix() {
    use AuthMechanism::{Login, Plain, ScramSha256};
    POSTFIX.run("postfix", |p| {
        let submit = port("SMTP_INTEROP_POSTFIX_SUBMIT_PORT");
        let tls = port("SMTP_INTEROP_POSTFIX_TLS_PORT");
        let mut cases = vec![Case::Capabilities(&[
            "PIPELINING",
            "SIZE",
            "STARTTLS",
            "AUTH",
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            "DSN",
            "SMTPUTF8",
            "CHUNKING",
        ])];
        cases.extend(plain_and_starttls(p));
        let (plaintext, submission, implicit) = (
            (p, TlsMode::None),
            (submit, TlsMode::StartTls),
            (tls, TlsMode::Implicit),
        );
        let auth_sends = [
            ("plain+auth-plain", plaintext, Plain),
            ("submission+auth-plain", submission, Plain),
            ("submission+auth-login", submission, Login),
            ("implicit+auth-plain", implicit, Plain),
            ("implicit+auth-login", implicit, Login),
            // Dovecot 2.3 derives the SCRAM keys from the stored plaintext password. It has no
            // SCRAM-SHA-256-PLUS (and Postfix does not pass TLS channel-binding data to its SASL
            // server), so -PLUS is not offered and not tested here.
            ("submission+auth-scram-sha-256", submission, ScramSha256),
            ("implicit+auth-scram-sha-256", implicit, ScramSha256),
            ("plain+auth-scram-sha-256", plaintext, ScramSha256),
        ];
        cases.extend(
            auth_sends.map(|(label, (port, mode), auth)| Case::send(label, port, mode, Some(auth))),
        );
        cases.extend([
            Case::AutoLogin {
                port: submit,
                mode: TlsMode::StartTls,
                want: ScramSha256,
            },
            Case::wrong_password(submit, TlsMode::StartTls, ScramSha256),
            Case::wrong_password(submit, TlsMode::StartTls, Plain),
            Case::wrong_password(submit, TlsMode::StartTls, Login),
            Case::wrong_password(tls, TlsMode::Implicit, Plain),
            Case::AuthNeedsTls { port: submit },
            Case::MailNeedsTls { port: submit },
        ]);
        // Through real proxies (pproxy): SOCKS5 and HTTP CONNECT, then wrong proxy credentials.
        cases.extend(proxy_cases(submit, tls));
        cases.extend(body_cases(true, true));
        cases
    });
}

/// The 465/587 mix-up against Postfix's own ports (issue 25): implicit TLS to the plain port
/// is an error that says to use STARTTLS or the implicit-TLS port; STARTTLS and no TLS to the
/// implicit-TLS port meet a server waiting in silence for a handshake, so the greeting's limit
/// ends them (the CLI then names `--tls implicit`).
#[test]
fn postfix_port_mixups() {
    let Some(ctx) = enabled("postfix_port_mixups") else {
        return;
    };
    let plain = port("SMTP_INTEROP_POSTFIX_PORT");
    let implicit = port("SMTP_INTEROP_POSTFIX_TLS_PORT");
    let rt = runtime();
    rt.block_on(async {
        let error = ConnectOptions::new(TlsMode::Implicit)
            .with_tls_config(ctx.tls.clone())
            .with_connect_timeout(Duration::from_secs(10))
            .connect(HOST, plain, EHLO)
            .await
            .expect_err("implicit TLS to Postfix's plain port connected");
        let text = error.to_string();
        assert!(
            matches!(
                error,
                SmtpError::Io {
                    during: SmtpOp::TlsHandshake,
                    ..
                }
            ) && text.contains("STARTTLS")
                && text.contains("465"),
            "implicit TLS to the plain port: {error:?}"
        );
        for mode in [TlsMode::StartTls, TlsMode::None] {
            let error = ConnectOptions::new(mode)
                .with_tls_config(ctx.tls.clone())
                .with_reply_timeout(Duration::from_secs(2))
                .connect(HOST, implicit, EHLO)
                .await
                .expect_err("a plaintext greeting from the implicit-TLS port");
            assert!(
                matches!(
                    error,
                    SmtpError::Timeout {
                        during: SmtpOp::Greeting,
                        ..
                    }
                ),
                "{mode:?} to the implicit-TLS port: {error:?}"
            );
        }
    });
    println!("postfix_port_mixups: both mix-ups give the errors that name the fix");
}

#[test]
fn exim() {
    EXIM.run("exim", |p| {
        let tls = port("SMTP_INTEROP_EXIM_TLS_PORT");
        let mut cases = vec![Case::Capabilities(&[
            "SIZE",
            "8BITMIME",
            "DSN",
            "PIPELINING",
            "AUTH",
            "CHUNKING",
            "STARTTLS",
            "SMTPUTF8",
        ])];
        cases.extend(tls_and_auth_cases(
            p,
            tls,
            &[AuthMechanism::Plain, AuthMechanism::Login],
        ));
        cases.extend(body_cases(true, true));
        cases
    });
}

#[test]
fn smtp_sink() {
    let Some(ctx) = enabled("smtp_sink") else {
        return;
    };
    let ports: BTreeMap<String, u16> = var("SMTP_INTEROP_SINK_PORTS")
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            (
                k.to_owned(),
                v.parse().expect("SMTP_INTEROP_SINK_PORTS: a bad port"),
            )
        })
        .collect();
    let sink = |name: &str| -> u16 {
        *ports.get(name).unwrap_or_else(|| {
            panic!("SMTP_INTEROP_SINK_PORTS has no {name:?} sink: run tests/servers/run-interop.sh")
        })
    };
    let t = Target::new(
        "smtp-sink",
        sink("basic"),
        Protocol::Smtp,
        spool("SMTP_INTEROP_SINK_SPOOL"),
        Capture::SinkDump,
    );
    let mut cases = vec![
        Case::Capabilities(&["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "DSN"]),
        Case::send("plain", sink("basic"), TlsMode::None, None),
        Case::Pipelining(ExtensionUse::WhenOffered),
        Case::Pipelining(ExtensionUse::Never),
        Case::EightBit,
        Case::Utf8RefusedLocally,
        Case::DotLines,
        Case::BareLf,
        Case::Dsn,
        Case::Fifty,
        Case::Batch,
        Case::LmtpPerRecipient {
            port: sink("lmtp"),
            capture: false,
        },
    ];
    // smtp-sink's fault injection: each fault on the sink of its own name.
    let faults = [
        ("fault: no PIPELINING (-p)", "nopipe", Fault::NoPipelining),
        ("fault: EHLO refused (-f EHLO)", "noesmtp", Fault::NoEhlo),
        ("fault: RCPT 5xx (-f RCPT)", "rcpt5xx", Fault::RcptRefused),
        ("fault: MAIL 4xx (-r MAIL)", "mail4xx", Fault::MailDeferred),
        (
            "fault: hang up on DATA (-q DATA)",
            "datahangup",
            Fault::DataHangup,
        ),
        ("fault: 421 on RCPT (-Q RCPT)", "rcpt421", Fault::Rcpt421),
        ("fault: 550 after 354 (-A 0)", "abort550", Fault::Abort550),
        ("fault: 5xx after dot (-f .)", "dot5xx", Fault::Dot5xx),
        ("fault: 4xx after dot (-r .)", "dot4xx", Fault::Dot4xx),
    ];
    cases.extend(faults.map(|(label, name, fault)| Case::fault(label, sink(name), fault)));
    run_matrix(&ctx, &t, &cases);
}
