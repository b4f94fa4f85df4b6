//! Transcript tests of the engine: each test reads like the session it checks.
//!
//! `S:` lines are fed to the engine (consecutive ones in one read), `C:` lines must be exactly
//! what the engine has queued at that point (consecutive ones form one pipelined flight). Every
//! script also runs fed one byte at a time, and must give the same bytes and events.

use std::sync::{Arc, Mutex};

use smtp_testkit::{Script, Step};

use super::*;
use crate::audit::AuditSink;
use crate::command::BodyType;
use crate::command::{DsnReturn, EnvelopeId, Notify, OriginalRecipient};
use crate::error::ProtocolError;
use crate::error::{AuthError, Field, InvalidInputError};
use crate::sasl::AuthInput;
use crate::time::{Instant, TimerReason};

/// The last event is a failure whose error is `SmtpError::Protocol` of `pattern`.
macro_rules! assert_protocol_failure {
    ($h:expr, $pattern:pat) => {{
        let err = $h.failure();
        assert!(matches!(&err, SmtpError::Protocol($pattern)), "{err:?}");
    }};
}

mod auth;
mod chaining;
mod data_pipelining;
mod fate;
mod handshake;
mod hostile;
mod idle;
mod lifecycle;
mod scram;
mod secure_defaults;
mod sync;
mod time;
mod transaction;

/// A transcript in the testkit's S:/C: format, as the engine sees it: each run of `S:` lines is
/// one read, each run of `C:` lines one flight the engine must have queued (every `C:` line is
/// exact, with its CRLF).
enum Flight {
    Server(String),
    Client(String),
    /// Any other step (`T: tls`, `T: idle`...): not the engine's to run.
    Other(Step),
}

fn flights(script: &str) -> Vec<Flight> {
    let mut out: Vec<Flight> = Vec::new();
    for step in Script::parse(script).steps() {
        match (step, out.last_mut()) {
            (Step::Reply(_), _) => out.push(Flight::Server(
                String::from_utf8(step.reply_bytes()).unwrap(),
            )),
            (Step::Exact(line), Some(Flight::Client(flight))) => {
                flight.push_str(line);
                flight.push_str("\r\n");
            }
            (Step::Exact(line), _) => out.push(Flight::Client(format!("{line}\r\n"))),
            (other, _) => out.push(Flight::Other(other.clone())),
        }
    }
    out
}

/// A session under test plus everything it emitted.
struct Harness {
    session: Session,
    events: Vec<Event>,
    byte_at_a_time: bool,
    /// The time the harness reports its writes at (it starts at the clock's origin).
    now: Instant,
}

/// The configuration of most transcripts: AUTH is allowed without TLS, which the default
/// refuses (see `plaintext_auth_is_refused_by_default`).
fn config() -> SessionConfig {
    SessionConfig {
        plaintext_auth: PlaintextAuth::Allow,
        ..SessionConfig::default()
    }
}

impl Harness {
    fn new(config: SessionConfig) -> Harness {
        Harness {
            session: Session::new(Domain::new("client.example").unwrap(), config),
            events: Vec::new(),
            byte_at_a_time: false,
            now: Instant::ZERO,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        if self.byte_at_a_time {
            for b in bytes {
                self.session.feed(core::slice::from_ref(b));
            }
        } else {
            self.session.feed(bytes);
        }
        self.drain_events();
    }

    fn drain_events(&mut self) {
        while let Some(e) = self.session.poll_event() {
            self.events.push(e);
        }
    }

    fn transmitted(&mut self) -> String {
        let mut out = Vec::new();
        while let Some(b) = self.session.poll_transmit() {
            out.extend_from_slice(&b);
            self.session.wrote(self.now, b.len());
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Run a transcript: feed `S:` lines, check `C:` lines, and check nothing else was sent.
    fn run(&mut self, script: &str) {
        for step in flights(script) {
            match step {
                Flight::Server(text) => {
                    let sent = self.transmitted();
                    assert_eq!(sent, "", "client sent bytes the transcript does not show");
                    self.feed(text.as_bytes());
                }
                Flight::Client(text) => {
                    self.drain_events();
                    assert_eq!(
                        self.transmitted(),
                        text,
                        "client bytes differ from transcript"
                    );
                }
                Flight::Other(step) => {
                    panic!("{step}: the engine's transcripts have no TLS or idle steps")
                }
            }
        }
        self.drain_events();
        assert_eq!(self.transmitted(), "", "unexpected trailing client bytes");
    }

    /// A harness with `config`, past the greeting and `ehlo` (see [`ready`]).
    fn ready(config: SessionConfig, ehlo: &str) -> Harness {
        let mut h = Harness::new(config);
        ready(&mut h, ehlo);
        h
    }

    /// Start a message from `a@x.example` to `to` and run its pipelined envelope (the
    /// [`envelope`] flight after `EHLO_FULL`), then the server's `replies`.
    fn offer(&mut self, to: &[&str], body: &[u8], replies: &str) -> MessageId {
        let id = self.mail("a@x.example", to, body).unwrap();
        self.run(&format!("{}{replies}", envelope("a@x.example", to, body)));
        id
    }

    /// Give `body` (one line, without its CRLF) when asked, and run it, the dot and `reply`.
    fn deliver(&mut self, body: &str, reply: &str) {
        self.body(format!("{body}\r\n").as_bytes());
        self.run(&format!("C: {body}\nC: .\nS: {reply}"));
    }

    /// Start a message from `a@x.example` to `to` on a server without PIPELINING and run its
    /// envelope in lock-step (the [`lockstep`] transcript of `replies`).
    fn offer_lockstep(&mut self, to: &[&str], body: &[u8], replies: &[&str]) -> MessageId {
        let id = self.mail("a@x.example", to, body).unwrap();
        self.run(&lockstep("a@x.example", to, replies));
        id
    }

    /// Two chained messages after `EHLO_FULL`: the first (`one` to `b@y.example`) is offered
    /// and given its body, then the second (`two` to `c@y.example`) is started, and the end of
    /// the first with the whole envelope of the second must go out as one flight, answered by
    /// `replies`. Returns the second message's id.
    fn chain_two(&mut self, replies: &str) -> MessageId {
        ready(self, EHLO_FULL);
        self.offer(
            &["b@y.example"],
            b"one\r\n",
            "S: 250 ok\nS: 250 ok\nS: 354 go",
        );
        self.body(b"one\r\n");
        assert!(self.session.ready_for_mail(), "the next message may chain");
        let second = self
            .mail("a@x.example", &["c@y.example"], b"two\r\n")
            .unwrap();
        self.run(&format!(
            "C: one\nC: .\n{}{replies}",
            envelope("a@x.example", &["c@y.example"], b"two\r\n")
        ));
        second
    }

    /// Start a message from `a@x.example` to `b@y.example` whose body is streamed, its size
    /// unknown.
    fn start_streamed(&mut self) -> MessageId {
        let env = Envelope::new("a@x.example", &["b@y.example"]).unwrap();
        self.session
            .start_mail(
                env,
                BodyInfo::Streamed { size_hint: None },
                &MessageOptions::default(),
            )
            .unwrap()
    }

    /// A streamed body `abcde` from `a@x.example` to `b@y.example` after `EHLO_CHUNKING`, under
    /// a `bdat_chunk_size` of 4: its envelope, `BDAT 4` and `BDAT 3 LAST` go out as one
    /// flight, answered by `replies`.
    fn stream_abcde_in_fours(&mut self, replies: &str) {
        self.start_streamed();
        self.session.send_body(b"abcde").unwrap();
        self.session.finish_body().unwrap();
        self.run(&format!(
            "
            C: MAIL FROM:<a@x.example>
            C: RCPT TO:<b@y.example>
            C: BDAT 4
            C: abcdBDAT 3 LAST
            C: e
            {replies}"
        ));
    }

    /// The last event is the message's failure with `accepted` recipients taken and the others
    /// refused, and the session is ready for the next message.
    #[track_caller]
    fn assert_refused(&mut self, accepted: usize) {
        let err = self.failure();
        assert!(
            matches!(&err, SmtpError::Protocol(ProtocolError::RecipientsRefused { accepted: n, .. }) if *n == accepted),
            "{err:?}"
        );
        assert_eq!(self.session.state(), SessionState::Ready);
    }

    /// The session is closed for good: the body is refused and nothing more goes out, not a
    /// body byte, not a terminator.
    #[track_caller]
    fn assert_closed_for_good(&mut self) {
        assert_eq!(self.session.state(), SessionState::Closed);
        assert!(self.session.send_body(b"more").is_err());
        assert_eq!(self.transmitted(), "");
    }

    /// The session is still usable: a NOOP goes out and is answered.
    fn noop_answered(&mut self) {
        self.session.noop().unwrap();
        self.run("C: NOOP\nS: 250 ok");
    }

    /// Start a message of `body` from `a@x.example` to `b@y.example` after `EHLO_FULL`, take its
    /// envelope without checking it (see [`Harness::offer`] for that), and feed `replies`.
    fn answered(body: &[u8], replies: &[u8]) -> Harness {
        let mut h = Harness::ready(config(), EHLO_FULL);
        h.mail("a@x.example", &["b@y.example"], body).unwrap();
        h.transmitted();
        h.feed(replies);
        h
    }

    /// Send `body` from `a@x.example` to `b@y.example` through a server that takes it, without
    /// checking what is written (for tests that look elsewhere: the sinks, the timers).
    fn send_unchecked(&mut self, body: &[u8]) -> SendOutcome {
        self.mail("a@x.example", &["b@y.example"], body).unwrap();
        self.transmitted();
        self.feed(b"250 ok\r\n250 ok\r\n354 go\r\n");
        self.body(body);
        self.transmitted();
        self.feed(b"250 queued as Q1\r\n");
        self.sent()
    }

    fn take_events(&mut self) -> Vec<Event> {
        self.drain_events();
        core::mem::take(&mut self.events)
    }

    /// The last event, which must be a failure; returns its error.
    fn failure(&mut self) -> SmtpError {
        match self.take_events().pop() {
            Some(Event::Failed { error, .. } | Event::MessageFailed { error, .. }) => error,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    fn sent(&mut self) -> SendOutcome {
        match self.take_events().pop() {
            Some(Event::Sent(o)) => o,
            other => panic!("expected Sent, got {other:?}"),
        }
    }

    fn mail(&mut self, from: &str, to: &[&str], body: &[u8]) -> Result<MessageId, SmtpError> {
        self.mail_with(from, to, body, &MessageOptions::default())
    }

    fn mail_with(
        &mut self,
        from: &str,
        to: &[&str],
        body: &[u8],
        opts: &MessageOptions,
    ) -> Result<MessageId, SmtpError> {
        let env = Envelope::new(from, to)?;
        let info = BodyInfo::Known {
            size: crate::body::normalized_len(body),
            eight_bit: !body.is_ascii(),
        };
        self.session.start_mail(env, info, opts)
    }

    /// Supply the body when the engine asks for it.
    fn body(&mut self, body: &[u8]) {
        assert!(
            self.take_events()
                .iter()
                .any(|e| matches!(e, Event::BodyWanted(_))),
            "engine did not ask for the body"
        );
        self.session.send_body(body).unwrap();
        self.session.finish_body().unwrap();
    }
}

/// A body of `size` bytes, all 7-bit, declared before it is given.
fn seven_bit(size: u64) -> BodyInfo {
    BodyInfo::Known {
        size,
        eight_bit: false,
    }
}

/// Run `f` twice: reads whole, and reads one byte at a time. Both must pass.
fn both_ways(config: fn() -> SessionConfig, f: impl Fn(&mut Harness)) {
    for byte_at_a_time in [false, true] {
        let mut h = Harness::new(config());
        h.byte_at_a_time = byte_at_a_time;
        f(&mut h);
    }
}

const EHLO_FULL: &str = "
    S: 220 mx.example ESMTP
    C: EHLO client.example
    S: 250-mx.example hello
    S: 250-PIPELINING
    S: 250-SIZE 1000
    S: 250-8BITMIME
    S: 250-SMTPUTF8
    S: 250-DSN
    S: 250-ENHANCEDSTATUSCODES
    S: 250-STARTTLS
    S: 250 AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER
";

/// A server that offers PIPELINING and CHUNKING only.
const EHLO_CHUNKING: &str = "
    S: 220 mx.example ESMTP
    C: EHLO client.example
    S: 250-mx.example
    S: 250-PIPELINING
    S: 250 CHUNKING
";

/// The greeting and LHLO exchange of an LMTP server that offers `extensions` (at least one).
fn lhlo(extensions: &[&str]) -> String {
    let mut script =
        String::from("S: 220 lmtp.example LMTP\nC: LHLO client.example\nS: 250-lmtp.example\n");
    for (i, extension) in extensions.iter().enumerate() {
        let last = i + 1 == extensions.len();
        script.push_str(&format!(
            "S: 250{}{extension}\n",
            if last { ' ' } else { '-' }
        ));
    }
    script
}

const EHLO_LOCKSTEP: &str = "
    S: 220 mx.example ESMTP
    C: EHLO client.example
    S: 250-mx.example
    S: 250 AUTH LOGIN
";

fn ready(h: &mut Harness, ehlo: &str) {
    h.run(ehlo);
    let events = h.take_events();
    assert!(
        matches!(events.as_slice(), [Event::Greeting(_), Event::HelloDone]),
        "{events:?}"
    );
    assert_eq!(h.session.state(), SessionState::Authentication);
}

/// The `C:` lines of a pipelined envelope after `EHLO_FULL`, one flight: MAIL with the body's
/// SIZE, a RCPT a recipient, DATA.
fn envelope(from: &str, to: &[&str], body: &[u8]) -> String {
    let size = crate::body::normalized_len(body);
    let mut lines = format!("C: MAIL FROM:<{from}> SIZE={size}\n");
    for rcpt in to {
        lines.push_str(&format!("C: RCPT TO:<{rcpt}>\n"));
    }
    lines + "C: DATA\n"
}

/// The `C:` and `S:` lines of an envelope in lock-step (no PIPELINING, so no SIZE either):
/// MAIL, a RCPT a recipient, DATA, each command followed by its reply from `replies`, up to
/// the last reply given.
fn lockstep(from: &str, to: &[&str], replies: &[&str]) -> String {
    assert!(replies.len() <= to.len() + 2, "more replies than commands");
    let commands = core::iter::once(format!("MAIL FROM:<{from}>"))
        .chain(to.iter().map(|rcpt| format!("RCPT TO:<{rcpt}>")))
        .chain(core::iter::once("DATA".to_string()));
    commands
        .zip(replies)
        .map(|(command, reply)| format!("C: {command}\nS: {reply}\n"))
        .collect()
}

/// A command refused because the session is not in a state that allows it.
#[track_caller]
fn assert_wrong_state<T: core::fmt::Debug>(result: Result<T, SmtpError>) {
    assert!(
        matches!(
            result,
            Err(SmtpError::InvalidInput(
                InvalidInputError::WrongState { .. }
            ))
        ),
        "{result:?}"
    );
}

/// The session failed on a reply to `op` that cannot answer it and is closed (`context` names
/// the case in the messages).
fn assert_closed_on_unexpected(h: &mut Harness, op: SmtpOp, context: &str) {
    let err = h.failure();
    assert!(
        matches!(&err, SmtpError::Protocol(ProtocolError::UnexpectedCode { during, .. }) if *during == op),
        "{context}: {err:?}"
    );
    assert_eq!(h.session.state(), SessionState::Closed, "{context}");
}

#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl AuditSink for Recorder {
    fn record(&self, event: &AuditEvent) {
        self.0.lock().unwrap().push(format!("{event:?}"));
    }
}

impl Recorder {
    /// A harness whose audit sink and transcript sink are two recorders, and the recorders.
    fn harness() -> (Harness, Recorder, Recorder) {
        let (audit, transcript) = (Recorder::default(), Recorder::default());
        let h = Harness::new(SessionConfig {
            audit: Box::new(audit.clone()),
            transcript: Some(Box::new(transcript.clone())),
            ..config()
        });
        (h, audit, transcript)
    }
}

impl crate::transcript::TranscriptSink for Recorder {
    fn client(&self, line: &str) {
        self.0.lock().unwrap().push(format!("C: {line}"));
    }
    fn server(&self, reply: &Reply) {
        self.0.lock().unwrap().push(format!("S: {reply}"));
    }
}
