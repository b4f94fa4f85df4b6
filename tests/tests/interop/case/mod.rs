//! The cases: what each one is ([`Case`]), its label in the table, and which function runs it.
//! The functions themselves are in this folder's rooms, by subject.

mod body;
mod dkim;
mod messages;
mod recipients;
mod route;
mod session;
// smtp-dkim's keys and dkimpy runner, shared by every crate's DKIM tests.
#[path = "../../../../smtp-dkim/tests/support/dkimpy.rs"]
mod verifier;

use crate::*;
use body::*;
use dkim::*;
use messages::*;
use recipients::*;
use route::*;
use session::*;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Fault {
    /// `smtp-sink -p`: no PIPELINING keyword.
    NoPipelining,
    /// `smtp-sink -f EHLO`: EHLO refused, HELO must be used.
    NoEhlo,
    /// `smtp-sink -f RCPT`: every RCPT refused (5xx).
    RcptRefused,
    /// `smtp-sink -r MAIL`: MAIL deferred (4xx).
    MailDeferred,
    /// `smtp-sink -q DATA`: hang up on DATA without a reply.
    DataHangup,
    /// `smtp-sink -Q RCPT`: 421 and hang up on RCPT.
    Rcpt421,
    /// `smtp-sink -A 0`: 550 right after the 354, before the end of data.
    Abort550,
    /// `smtp-sink -f .`: the final dot refused (5xx).
    Dot5xx,
    /// `smtp-sink -r .`: the final dot deferred (4xx).
    Dot4xx,
}

#[derive(Debug, Clone)]
pub(crate) enum Case {
    /// A mail-builder message (text, HTML, an attachment, Cc, Bcc) through `send_message`.
    MailBuilder,
    /// EHLO: these keywords must be advertised.
    Capabilities(&'static [&'static str]),
    /// Send one message over `port` / `mode`, after AUTH with `auth` if given.
    Send {
        label: &'static str,
        port: u16,
        mode: TlsMode,
        auth: Option<AuthMechanism>,
    },
    /// Send one message over `port` / `mode` through the proxy `via` (pproxy, see `proxy.rs`),
    /// after AUTH with `auth`: delivered, TLS checked for the SMTP host, one tunnel in pproxy's
    /// log.
    Proxied {
        label: &'static str,
        port: u16,
        mode: TlsMode,
        auth: AuthMechanism,
        via: Listen,
    },
    /// Wrong proxy credentials (SOCKS5 and HTTP CONNECT): `SmtpError::Io` during connect, the
    /// password nowhere in the error, no tunnel to the server.
    ProxyWrongCredentials {
        port: u16,
        mode: TlsMode,
    },
    /// A wrong password: `AuthError::Rejected` with the server's text, then the right one works.
    WrongPassword {
        port: u16,
        mode: TlsMode,
        mechanism: AuthMechanism,
    },
    /// `login()` picks `want` among what the server offers, and it works.
    AutoLogin {
        port: u16,
        mode: TlsMode,
        want: AuthMechanism,
    },
    /// A wrong XOAUTH2 token: `AuthError::Rejected` with the decoded JSON error.
    WrongToken {
        port: u16,
        mode: TlsMode,
    },
    /// AUTH on a plaintext connection to a server that wants TLS first: refused or not offered.
    AuthNeedsTls {
        port: u16,
    },
    /// MAIL on a plaintext connection to a port that requires STARTTLS: 530.
    MailNeedsTls {
        port: u16,
    },
    Pipelining(ExtensionUse),
    Chunking(ExtensionUse),
    EightBit,
    Utf8Address,
    /// A UTF-8 address to a server without SMTPUTF8: refused locally, nothing sent.
    Utf8RefusedLocally,
    DotLines,
    BareLf,
    /// One recipient of three refused at RCPT, with `RecipientPolicy::AcceptPartial`.
    PartialRecipients,
    /// The same with the default `RequireAll`: nothing sent, the session stays usable.
    RequireAllRecipients,
    /// `DataPipelining::Always` (the pool's mode): one refused recipient among accepted ones;
    /// DATA went with the envelope, so the connection closes before the body.
    RequireAllPipelinedData,
    /// A message over the advertised SIZE: `ProtocolError::MessageTooLarge` before MAIL.
    Oversize,
    /// 50 messages on one connection.
    Fifty,
    /// 50 messages by `send_batch` (chained: no round trip between messages), one of them
    /// with an invalid recipient refused locally in the middle.
    Batch,
    /// DSN parameters (RET, ENVID, NOTIFY): sent when DSN is offered, refused locally otherwise.
    Dsn,
    /// DKIM-signed messages (in memory, a streamed file, the pool) verify from the delivered
    /// copy.
    Dkim,
    /// The pool with an OAuth 2.0 token source (XOAUTH2): a stale token refused, a fresh one
    /// asked for once, every message delivered once.
    PoolOAuth2 {
        port: u16,
        mode: TlsMode,
    },
    /// LMTP: one recipient refused at RCPT, one after the message.
    LmtpPerRecipient {
        port: u16,
        capture: bool,
    },
    Fault {
        label: &'static str,
        port: u16,
        fault: Fault,
    },
}

impl Case {
    /// [`Case::Send`]: one message over `port` / `mode`, after AUTH with `auth` if given.
    pub(crate) fn send(
        label: &'static str,
        port: u16,
        mode: TlsMode,
        auth: Option<AuthMechanism>,
    ) -> Case {
        Case::Send {
            label,
            port,
            mode,
            auth,
        }
    }

    /// [`Case::WrongPassword`] with `mechanism` over `port` / `mode`.
    pub(crate) fn wrong_password(port: u16, mode: TlsMode, mechanism: AuthMechanism) -> Case {
        Case::WrongPassword {
            port,
            mode,
            mechanism,
        }
    }

    /// [`Case::Fault`]: smtp-sink's `fault` on `port`, shown as `label`.
    pub(crate) fn fault(label: &'static str, port: u16, fault: Fault) -> Case {
        Case::Fault { label, port, fault }
    }

    pub(crate) fn label(&self) -> String {
        match self {
            Case::Capabilities(_) => "ehlo-capabilities".into(),
            Case::Send { label, .. } | Case::Proxied { label, .. } => (*label).into(),
            Case::ProxyWrongCredentials { .. } => WRONG_PROXY_LABEL.into(),
            Case::WrongPassword {
                mode, mechanism, ..
            } => {
                format!(
                    "{}wrong-password-{}",
                    mode_prefix(*mode),
                    mechanism.name().to_lowercase()
                )
            }
            Case::AutoLogin { mode, .. } => format!("{}auth-auto-selection", mode_prefix(*mode)),
            Case::WrongToken { .. } => "wrong-xoauth2-token".into(),
            Case::AuthNeedsTls { .. } => "auth-before-starttls-refused".into(),
            Case::MailNeedsTls { .. } => "mail-before-starttls-refused".into(),
            Case::Pipelining(ExtensionUse::Never) => "pipelining-off".into(),
            Case::Pipelining(_) => "pipelining-on".into(),
            Case::Chunking(ExtensionUse::Never) => "chunking-off (DATA)".into(),
            Case::Chunking(_) => "chunking-on (BDAT)".into(),
            Case::EightBit => "8bit-body".into(),
            Case::Utf8Address => "smtputf8-address".into(),
            Case::Utf8RefusedLocally => "utf8-address-refused-locally".into(),
            Case::DotLines => "dot-lines".into(),
            Case::BareLf => "bare-lf-and-cr".into(),
            Case::PartialRecipients => "partial-recipients (1 of 3 refused)".into(),
            Case::RequireAllRecipients => "require-all-recipients".into(),
            Case::RequireAllPipelinedData => "require-all-pipelined-data (pool mode)".into(),
            Case::Oversize => "over-size-refused-before-mail".into(),
            Case::Fifty => "50-messages-one-connection".into(),
            Case::Batch => "batch-50-chained".into(),
            Case::Dsn => "dsn-parameters".into(),
            Case::MailBuilder => "mail-builder-message (cc, bcc, html, attachment)".into(),
            Case::Dkim => "dkim-signed-verifies (memory, file, pool)".into(),
            Case::PoolOAuth2 { .. } => "pool-oauth2-token-refreshed".into(),
            Case::LmtpPerRecipient { .. } => "lmtp-per-recipient-replies".into(),
            Case::Fault { label, .. } => (*label).into(),
        }
    }
}

pub(crate) fn mode_prefix(mode: TlsMode) -> &'static str {
    match mode {
        TlsMode::None => "plain-",
        TlsMode::StartTls => "starttls-",
        TlsMode::Implicit => "implicit-",
    }
}

pub(crate) fn code(reply: &Reply) -> u16 {
    reply.code().get()
}

/// Whether the server of `conn` offered `extension` (in its EHLO reply).
pub(crate) fn offers(conn: &Conn, extension: Extension) -> bool {
    conn.client.session().capabilities().has(extension)
}

/// The end of a case whose message was refused locally: no MAIL reached the server (else the
/// error explains that `mail_sent`), and the session still delivers one plain message, quits
/// and the copy is verified.
pub(crate) async fn nothing_sent_then_one_more(
    mut conn: Conn,
    t: &Target,
    label: &str,
    mail_sent: &str,
) -> Result<(), String> {
    if conn.log.sent("MAIL") {
        return Err(conn.explain(mail_sent));
    }
    let id = new_id(t, label);
    let body = plain_body(&id);
    let (_, want) = send(&mut conn, id, FROM, &["rcpt@example.org"], "", &body).await?;
    conn.quit().await?;
    verify(t, &[want]).await
}

/// The fifty messages of a many-messages case: each one's id and body, every seventh body with
/// a line that starts with a dot.
pub(crate) fn fifty_bodies(t: &Target, label: &str) -> Vec<(String, Vec<u8>)> {
    (0..50)
        .map(|i| {
            let id = new_id(t, &format!("{label}-{i}"));
            let mut body = plain_body(&id);
            if i % 7 == 0 {
                body.extend_from_slice(b".starts with a dot\r\n");
            }
            (id, body)
        })
        .collect()
}

/// What a case function returns: the note shown in the table when the case passed, what went
/// wrong when it failed.
pub(crate) type CaseResult = Result<String, String>;

/// What every case function is given: the shared settings, the server under test, and the
/// case's label (which names the messages it sends).
#[derive(Clone, Copy)]
pub(crate) struct Run<'a> {
    pub(crate) ctx: &'a Ctx,
    pub(crate) t: &'a Target,
    pub(crate) label: &'a str,
}

/// Run one case: each kind of case is one `case_*` function in this folder's rooms (faults:
/// [`run_fault`], in `faults.rs`).
pub(crate) async fn run_case(ctx: &Ctx, t: &Target, case: &Case) -> CaseResult {
    let label = case.label();
    let run = Run {
        ctx,
        t,
        label: &label,
    };
    match case {
        Case::Capabilities(want) => case_capabilities(run, want).await,
        Case::Send {
            port, mode, auth, ..
        } => case_send(run, *port, *mode, *auth).await,
        Case::Proxied {
            port,
            mode,
            auth,
            via,
            ..
        } => case_proxied(run, *port, *mode, *auth, *via).await,
        Case::ProxyWrongCredentials { port, mode } => {
            case_proxy_wrong_credentials(ctx, *port, *mode).await
        }
        Case::AutoLogin { port, mode, want } => case_auto_login(run, *port, *mode, *want).await,
        Case::WrongPassword {
            port,
            mode,
            mechanism,
        } => case_wrong_password(run, *port, *mode, *mechanism).await,
        Case::WrongToken { port, mode } => case_wrong_token(run, *port, *mode).await,
        Case::AuthNeedsTls { port } => case_auth_needs_tls(run, *port).await,
        Case::MailNeedsTls { port } => case_mail_needs_tls(run, *port).await,
        Case::Pipelining(mode) => case_pipelining(run, *mode).await,
        Case::Chunking(mode) => case_chunking(run, *mode).await,
        Case::EightBit => case_eight_bit(run).await,
        Case::Utf8Address => case_utf8_address(run).await,
        Case::Utf8RefusedLocally => case_utf8_refused_locally(run).await,
        Case::DotLines => case_dot_lines(run).await,
        Case::BareLf => case_bare_lf(run).await,
        Case::PartialRecipients => case_partial_recipients(run).await,
        Case::RequireAllRecipients => case_require_all_recipients(run).await,
        Case::RequireAllPipelinedData => case_require_all_pipelined_data(run).await,
        Case::Oversize => case_oversize(run).await,
        Case::Fifty => case_fifty(run).await,
        Case::Batch => case_batch(run).await,
        Case::Dsn => case_dsn(run).await,
        Case::MailBuilder => case_mail_builder(run).await,
        Case::Dkim => case_dkim(run).await,
        Case::PoolOAuth2 { port, mode } => case_pool_oauth2(run, *port, *mode).await,
        Case::LmtpPerRecipient { port, capture } => {
            case_lmtp_per_recipient(run, *port, *capture).await
        }
        Case::Fault { port, fault, .. } => run_fault(run, *port, *fault).await,
    }
}
