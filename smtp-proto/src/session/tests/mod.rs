//! Transcript tests of the engine: each test reads like the session it checks.
//!
//! `S:` lines are fed to the engine (consecutive ones in one read), `C:` lines must be exactly
//! what the engine has queued at that point (consecutive ones form one pipelined flight). Every
//! script also runs fed one byte at a time, and must give the same bytes and events.

use std::sync::{Arc, Mutex};

use super::*;
use crate::audit::AuditSink;
use crate::command::BodyType;
use crate::command::{DsnReturn, EnvelopeId, Notify, OriginalRecipient};
use crate::error::ProtocolError;
use crate::error::{ArgumentError, AuthError, Field, InvalidInputError};
use crate::sasl::AuthInput;
use crate::time::{Instant, TimerReason};

mod auth;
mod chaining;
mod data_pipelining;
mod fate;
mod handshake;
mod hostile;
mod lifecycle;
mod scram;
mod script;
mod secure_defaults;
mod sync;
mod time;
mod transaction;

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
        for step in script::parse(script) {
            match step {
                script::Line::Server(text) => {
                    let sent = self.transmitted();
                    assert_eq!(sent, "", "client sent bytes the transcript does not show");
                    self.feed(text.as_bytes());
                }
                script::Line::Client(text) => {
                    self.drain_events();
                    assert_eq!(
                        self.transmitted(),
                        text,
                        "client bytes differ from transcript"
                    );
                }
                step @ (script::Line::Upgrade | script::Line::Idle) => {
                    panic!("{step:?}: the engine's transcripts have no TLS or idle steps")
                }
            }
        }
        self.drain_events();
        assert_eq!(self.transmitted(), "", "unexpected trailing client bytes");
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
