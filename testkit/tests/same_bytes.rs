//! The same transcript through the engine driven by hand (`Session` + an event loop) and through
//! the async driver (`SmtpClient` over the in-memory `ScriptedTransport`): both must match the
//! script's `C:` lines and put the very same bytes on the wire.

use smtp_proto::command::Domain;
use smtp_proto::session::{BodyInfo, Envelope};
use smtp_proto::{
    AuthMechanism, Event, MessageOptions, PlaintextAuth, SessionConfig, SmtpClient,
    SmtpClientOptions, SmtpError,
};
use smtp_testkit::{Run, Script, ScriptedTransport, greet, run_session};

const CLIENT: &str = "client.test";
const FROM: &str = "alice@example.com";
const BODY: &[u8] = b"Subject: hi\r\n\r\nHello\r\n.leading dot\r\n";

/// A session for `CLIENT` that may authenticate in plaintext.
fn new_session() -> smtp_proto::Session {
    let mut config = SessionConfig::default();
    config.plaintext_auth = PlaintextAuth::Allow;
    smtp_proto::Session::new(Domain::new(CLIENT).unwrap(), config)
}

fn options() -> SmtpClientOptions {
    SmtpClientOptions::new().allow_plaintext_auth()
}

/// What the hand-written event loop does once the handshake is over.
#[derive(Clone, Copy)]
enum Plan {
    /// Send one message to `to`, then QUIT.
    Send(&'static [&'static str]),
    /// AUTH PLAIN, then send one message to `to`, then QUIT.
    LoginThenSend(&'static [&'static str]),
}

/// Drive a `Session` through `script` by hand, `plan` in its event loop; every event is kept.
fn engine(script: &Script, plan: Plan, byte_at_a_time: bool) -> (Run, Vec<Event>) {
    let mut session = new_session();
    let mut events = Vec::new();
    let start = |s: &mut smtp_proto::Session, to: &[&str]| {
        let info = BodyInfo::Known {
            size: smtp_proto::body::normalized_len(BODY),
            eight_bit: false,
        };
        s.start_mail(
            Envelope::new(FROM, to).unwrap(),
            info,
            &MessageOptions::default(),
        )
        .unwrap();
    };
    let run = run_session(script, &mut session, byte_at_a_time, |s, event| {
        events.push(event.clone());
        match (plan, event) {
            (Plan::Send(to), Event::HelloDone)
            | (Plan::LoginThenSend(to), Event::Authenticated(_)) => start(s, to),
            (Plan::LoginThenSend(_), Event::HelloDone) => {
                s.login(AuthMechanism::Plain, "alice", "secret").unwrap()
            }
            (_, Event::BodyWanted(_)) => {
                s.send_body(BODY).unwrap();
                s.finish_body().unwrap();
            }
            (_, Event::Sent(_)) => s.quit().unwrap(),
            // After a failed message the session may be closed already (a 421).
            (_, Event::MessageFailed { .. }) => {
                let _ = s.quit();
            }
            _ => {}
        }
    });
    (run, events)
}

/// The same plan through `SmtpClient`; returns the run and the result of the send.
async fn driver(script: &Script, plan: Plan) -> (Run, Result<(), SmtpError>) {
    let transport = ScriptedTransport::new(script);
    let handle = transport.handle();
    let result = async {
        let mut client = SmtpClient::connect_with(transport, CLIENT, options()).await?;
        let to = match plan {
            Plan::Send(to) => to,
            Plan::LoginThenSend(to) => {
                client
                    .login_with(AuthMechanism::Plain, "alice", "secret")
                    .await?;
                to
            }
        };
        let sent = client.send_mail_bytes(FROM, to, BODY).await;
        client.quit().await?;
        sent.map(|_| ())
    }
    .await;
    (handle.run(), result)
}

/// Run `script` both ways (and the engine also one byte at a time); all runs must pass and
/// agree byte for byte. Returns the driver's result and the engine's events.
async fn same_bytes(script: &str, plan: Plan) -> (Result<(), SmtpError>, Vec<Event>) {
    let script = Script::parse(script);
    let (whole, events) = engine(&script, plan, false);
    assert!(whole.ok(), "engine: {}", whole.explain());
    let (bytewise, _) = engine(&script, plan, true);
    assert!(
        bytewise.ok(),
        "engine, byte at a time: {}",
        bytewise.explain()
    );
    let (client, result) = driver(&script, plan).await;
    assert!(
        client.ok(),
        "driver: {}\nresult: {result:?}",
        client.explain()
    );
    assert_eq!(
        String::from_utf8_lossy(&whole.client_bytes),
        String::from_utf8_lossy(&client.client_bytes),
        "the engine and the driver sent different bytes"
    );
    assert_eq!(whole.client_bytes, bytewise.client_bytes);
    assert_eq!(whole.bodies, client.bodies);
    (result, events)
}

/// At least one of `events` is `wanted` (all of them shown if none is).
#[track_caller]
fn assert_some_event(events: &[Event], wanted: impl Fn(&Event) -> bool) {
    assert!(events.iter().any(wanted), "{events:?}");
}

/// `run` failed, and its failure mentions `needle` (the whole run shown if not).
#[track_caller]
fn assert_failed_with(run: &Run, needle: &str) {
    assert!(
        run.failure.as_deref().is_some_and(|f| f.contains(needle)),
        "{}",
        run.explain()
    );
}

#[tokio::test]
async fn pipelined_message_same_bytes() {
    let script = format!(
        "{}
        C: MAIL FROM:<alice@example.com> SIZE=36
        C: RCPT TO:<bob@example.org>
        C: DATA
        S: 250 2.1.0 ok
        S: 250 2.1.5 ok
        S: 354 go ahead
        C: DATA-BODY
        S: 250 2.0.0 queued as Q1
        C: QUIT
        S: 221 bye",
        greet(CLIENT, &["PIPELINING", "SIZE 1000", "ENHANCEDSTATUSCODES"])
    );
    let (result, events) = same_bytes(&script, Plan::Send(&["bob@example.org"])).await;
    result.unwrap();
    assert_some_event(
        &events,
        |e| matches!(e, Event::Sent(o) if o.queue_id.as_deref() == Some("Q1")),
    );
}

#[tokio::test]
async fn lock_step_message_with_dot_stuffing() {
    let script = format!(
        "{}
        C: MAIL FROM:<alice@example.com>
        S: 250 ok
        C: RCPT TO:<bob@example.org>
        S: 250 ok
        C: RCPT TO:<carol@example.org>
        S: 250 ok
        C: DATA
        S: 354 go ahead
        C: Subject: hi
        C:
        C: Hello
        C: ..leading dot
        C: .
        S: 250 queued
        C: QUIT
        S: 221 bye",
        greet(CLIENT, &[])
    );
    let (result, _) = same_bytes(
        &script,
        Plan::Send(&["bob@example.org", "carol@example.org"]),
    )
    .await;
    result.unwrap();
}

#[tokio::test]
async fn auth_plain_then_message() {
    // base64("\0alice\0secret")
    let script = format!(
        "{}
        C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
        S: 235 2.7.0 accepted
        C: MAIL FROM:<alice@example.com>
        C: RCPT TO:<bob@example.org>
        C: DATA
        S: 250 ok
        S: 250 ok
        S: 354 go ahead
        C: DATA-BODY
        S: 250 queued
        C: QUIT
        S: 221 bye",
        greet(CLIENT, &["PIPELINING", "AUTH PLAIN LOGIN"])
    );
    let (result, events) = same_bytes(&script, Plan::LoginThenSend(&["bob@example.org"])).await;
    result.unwrap();
    assert_some_event(&events, |e| {
        matches!(e, Event::Authenticated(AuthMechanism::Plain))
    });
}

#[tokio::test]
async fn refused_recipient_fails_the_message_the_same_way() {
    // RequireAll (the default): DATA waits for every RCPT reply; one refusal abandons the message.
    let script = format!(
        "{}
        C: MAIL FROM:<alice@example.com>
        C: RCPT TO:<bob@example.org>
        C: RCPT TO:<reject@example.org>
        S: 250 ok
        S: 250 ok
        S: 550 5.1.1 no such user
        C: QUIT
        S: 221 bye",
        greet(CLIENT, &["PIPELINING"])
    );
    let (result, events) = same_bytes(
        &script,
        Plan::Send(&["bob@example.org", "reject@example.org"]),
    )
    .await;
    assert!(
        matches!(result, Err(SmtpError::Protocol(_))),
        "expected a protocol error, got {result:?}"
    );
    assert_some_event(&events, |e| matches!(e, Event::MessageFailed { .. }));
}

#[tokio::test]
async fn server_hang_up_mid_session() {
    let script = Script::parse(&format!(
        "{}
        C: MAIL FROM:<alice@example.com>
        S: 421 4.3.2 shutting down
        X: close",
        greet(CLIENT, &[])
    ));
    let (engine_run, events) = engine(&script, Plan::Send(&["bob@example.org"]), false);
    assert!(engine_run.ok(), "{}", engine_run.explain());
    assert_some_event(&events, |e| e.error().is_some());
    let (driver_run, result) = driver(&script, Plan::Send(&["bob@example.org"])).await;
    assert!(driver_run.ok(), "{}", driver_run.explain());
    assert!(result.is_err(), "a 421 must fail the send");
    assert_eq!(engine_run.client_bytes, driver_run.client_bytes);
}

#[tokio::test]
async fn a_wrong_line_is_reported_both_ways() {
    let script = Script::parse(&format!(
        "{}
        C: MAIL FROM:<somebody-else@example.com>
        S: 250 ok",
        greet(CLIENT, &[])
    ));
    let (engine_run, _) = engine(&script, Plan::Send(&["bob@example.org"]), false);
    assert!(!engine_run.ok());
    let why = engine_run.failure.clone().unwrap();
    assert!(
        why.contains("mismatch") && why.contains("MAIL FROM:<alice@example.com>"),
        "{why}"
    );

    let (driver_run, result) = driver(&script, Plan::Send(&["bob@example.org"])).await;
    assert!(
        result.is_err(),
        "the transport refuses to answer a wrong line"
    );
    assert_eq!(driver_run.failure, Some(why));
}

#[tokio::test]
async fn a_missing_client_line_is_reported_both_ways() {
    // The script wants a NOOP the client never sends: the engine goes quiet, the driver reads.
    let script = Script::parse(&format!("{}C: NOOP\nS: 250 ok", greet(CLIENT, &[])));
    let mut session = new_session();
    let run = run_session(&script, &mut session, false, |_, _| {});
    assert_failed_with(&run, "C: NOOP");

    let transport = ScriptedTransport::new(&script);
    let handle = transport.handle();
    let mut client = SmtpClient::connect_with(transport, CLIENT, options())
        .await
        .unwrap();
    let err = client.rset().await.unwrap_err();
    assert!(matches!(err, SmtpError::Io { .. }), "{err:?}");
    let run = handle.run();
    assert_failed_with(&run, "mismatch");
}

#[test]
fn in_memory_runs_refuse_tls_steps() {
    let script = Script::parse("S: 220 mx.test\nT: tls");
    let mut session = new_session();
    let run = run_session(&script, &mut session, false, |_, _| {});
    assert_failed_with(&run, "T: tls");
}
