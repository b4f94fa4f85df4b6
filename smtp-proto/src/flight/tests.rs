//! A [`Chain`] run the way an embedder's own loop would run it, against transcripts: each run
//! of `C:` lines must be what the session wrote when the chain waits, each run of `S:` lines is
//! then fed to it, and a script that ends while the chain still waits is a server that hung up.

use smtp_testkit::{Script, Step};

use super::*;
use crate::command::Domain;
use crate::error::ProtocolError;
use crate::session::{PlaintextAuth, SessionConfig};
use crate::time::Instant;

const EHLO: &str = "
    S: 220 mx.example ESMTP
    C: EHLO client.example
    S: 250-mx.example hello
    S: 250 PIPELINING
";

/// A pipelined envelope from `a@x.example` to `to`, then (`GO`) the server takes it.
fn envelope(to: &str) -> String {
    format!("C: MAIL FROM:<a@x.example>\nC: RCPT TO:<{to}>\nC: DATA\n")
}

const GO: &str = "S: 250 ok\nS: 250 ok\nS: 354 go\n";

/// Three messages from `a@x.example`: `one` to `b@`, `two` to `c@`, `three` to `d@y.example`.
const MESSAGES: [OutgoingMessage<'static>; 3] = [
    OutgoingMessage {
        from: "a@x.example",
        to: &["b@y.example"],
        body: b"one\r\n",
        options: None,
    },
    OutgoingMessage {
        from: "a@x.example",
        to: &["c@y.example"],
        body: b"two\r\n",
        options: None,
    },
    OutgoingMessage {
        from: "a@x.example",
        to: &["d@y.example"],
        body: b"three\r\n",
        options: None,
    },
];

/// The script as runs: `(true, bytes)` for what the client writes, `(false, bytes)` for what
/// the server sends.
fn runs(script: &str) -> Vec<(bool, String)> {
    let mut out: Vec<(bool, String)> = Vec::new();
    for step in Script::parse(script).steps() {
        let (client, text) = match step {
            Step::Exact(line) => (true, format!("{line}\r\n")),
            Step::Reply(_) => (false, String::from_utf8(step.reply_bytes()).unwrap()),
            other => panic!("{other}: not a step of these transcripts"),
        };
        match out.last_mut() {
            Some((c, run)) if *c == client => run.push_str(&text),
            _ => out.push((client, text)),
        }
    }
    out
}

/// Carry `flight` on a new session through `script` (which starts at the greeting), the way a
/// driver does: the chain's steps, and the I/O between them.
fn carry<F: Flight>(flight: &mut F, script: &str) {
    let config = SessionConfig {
        plaintext_auth: PlaintextAuth::Allow,
        ..SessionConfig::default()
    };
    let mut session = Session::new(Domain::new("client.example").unwrap(), config);
    session.start(Instant::ZERO);
    let mut script = runs(script).into_iter().peekable();
    let mut chain = Chain::new();
    loop {
        match chain.step(
            &mut session,
            flight,
            &MessageOptions::default(),
            Instant::ZERO,
        ) {
            ChainStep::Body(n) => {
                if let Some(body) = Chain::body(&mut session, flight, n) {
                    session.send_body(body).unwrap();
                    session.finish_body().unwrap();
                }
            }
            ChainStep::Wait { .. } => {
                let mut written = Vec::new();
                while let Some(bytes) = session.poll_transmit() {
                    written.extend_from_slice(&bytes);
                    session.wrote(Instant::ZERO, bytes.len());
                }
                if !written.is_empty() {
                    let expected = match script.next() {
                        Some((true, run)) => run,
                        other => panic!("the client wrote {written:?}, the script has {other:?}"),
                    };
                    assert_eq!(String::from_utf8(written).unwrap(), expected);
                }
                match script.next() {
                    Some((false, run)) => session.feed(run.as_bytes()),
                    None => session.handle_eof(),
                    Some(other) => panic!("the client wrote nothing, the script has {other:?}"),
                }
            }
            ChainStep::Done => break,
            ChainStep::Closed(error) => {
                chain.abort(&mut session, flight, &error, []);
                break;
            }
        }
    }
    assert!(
        script.next().is_none(),
        "the script goes on after the flight"
    );
}

#[test]
fn each_message_gets_its_own_reply_and_the_next_envelope_rides_with_the_end_of_data() {
    let mut batch = Batch::new(&MESSAGES);
    let (first, second, third) = (
        envelope("b@y.example"),
        envelope("c@y.example"),
        envelope("d@y.example"),
    );
    carry(
        &mut batch,
        &format!(
            "{EHLO}{first}{GO}
            C: one
            C: .
            {second}
            S: 250 queued as ONE
            S: 250 ok
            S: 550 no such user
            S: 554 no valid recipients
            C: RSET
            {third}
            S: 250 ok
            {GO}
            C: three
            C: .
            S: 250 queued as THREE
            "
        ),
    );
    let [one, two, three] = <[Delivery; 3]>::try_from(batch.into_deliveries()).unwrap();
    assert!(
        matches!(&one, Delivery::Sent(o) if o.queue_id.as_deref() == Some("ONE")),
        "{one:?}"
    );
    assert!(
        matches!(
            &two,
            Delivery::NotSent {
                error: SmtpError::Protocol(ProtocolError::RecipientsRefused { .. }),
                before_end_of_data: true,
            }
        ),
        "{two:?}"
    );
    assert!(
        matches!(&three, Delivery::Sent(o) if o.queue_id.as_deref() == Some("THREE")),
        "{three:?}"
    );
}

#[test]
fn a_server_that_hangs_up_settles_every_message_once_by_its_fate() {
    let mut batch = Batch::new(&MESSAGES);
    // The first message's end of data is written, the second's envelope with it; then nothing.
    let (first, second) = (envelope("b@y.example"), envelope("c@y.example"));
    carry(
        &mut batch,
        &format!("{EHLO}{first}{GO}C: one\nC: .\n{second}"),
    );
    let deliveries = batch.into_deliveries();
    let fates: Vec<_> = deliveries.iter().map(Delivery::fate).collect();
    assert_eq!(
        fates,
        [
            Some(Fate::Unknown),
            Some(Fate::NotSent),
            Some(Fate::NotSent)
        ],
        "{deliveries:?}"
    );
    assert!(
        deliveries.iter().all(|d| matches!(
            d.error(),
            Some(SmtpError::Protocol(ProtocolError::ConnectionClosed { .. }))
        )),
        "{deliveries:?}"
    );
}

/// A flight of one message that it holds for its start only: asked for it again (for its
/// body), it no longer has it.
struct Forgetful {
    envelope: Envelope,
    asked: core::cell::Cell<usize>,
    handed_out: bool,
    settled: Vec<(usize, Delivery)>,
}

impl Flight for Forgetful {
    fn next(&mut self) -> Option<usize> {
        (!core::mem::replace(&mut self.handed_out, true)).then_some(7)
    }

    fn message(&self, _: usize) -> Option<FlightMessage<'_>> {
        self.asked.set(self.asked.get() + 1);
        (self.asked.get() == 1).then_some(FlightMessage {
            envelope: &self.envelope,
            body: b"one\r\n",
            options: None,
        })
    }

    fn settle(&mut self, n: usize, delivery: Delivery) {
        self.settled.push((n, delivery));
    }
}

#[test]
fn a_body_the_flight_no_longer_holds_is_never_replaced_by_an_empty_one() {
    let mut flight = Forgetful {
        envelope: Envelope::new("a@x.example", &["b@y.example"]).unwrap(),
        asked: core::cell::Cell::new(0),
        handed_out: false,
        settled: Vec::new(),
    };
    // No final dot after the `354`: the session closes instead.
    carry(
        &mut flight,
        &format!("{EHLO}{}{GO}", envelope("b@y.example")),
    );
    let [(n, delivery)] = <[_; 1]>::try_from(flight.settled).unwrap();
    assert_eq!(n, 7);
    assert_eq!(delivery.fate(), Some(Fate::NotSent), "{delivery:?}");
    assert!(
        matches!(delivery.error(), Some(SmtpError::Io { .. })),
        "{delivery:?}"
    );
}

/// A one-message batch whose caller allows it 10 s, 4 of them spent waiting for a connection.
struct Hurried<'m, 'a>(Batch<'m, 'a>);

impl Flight for Hurried<'_, '_> {
    fn next(&mut self) -> Option<usize> {
        self.0.next()
    }

    fn message(&self, n: usize) -> Option<FlightMessage<'_>> {
        self.0.message(n)
    }

    fn settle(&mut self, n: usize, delivery: Delivery) {
        self.0.settle(n, delivery);
    }

    fn deadline(&self) -> Option<(core::time::Duration, core::time::Duration)> {
        Some((
            core::time::Duration::from_secs(10),
            core::time::Duration::from_secs(4),
        ))
    }
}

#[test]
fn a_flights_deadline_bounds_the_session_counted_back_from_now() {
    let mut flight = Hurried(Batch::new(&MESSAGES[..1]));
    let mut session = Session::new(
        Domain::new("client.example").unwrap(),
        SessionConfig::default(),
    );
    session.start(Instant::ZERO);
    let now = Instant::from(core::time::Duration::from_secs(100));
    let step = Chain::new().step(&mut session, &mut flight, &MessageOptions::default(), now);
    // Still before the greeting: the wait for it ends at the flight's deadline (100 - 4 + 10),
    // long before the greeting's own limit.
    assert_eq!(step, ChainStep::Wait { until_ready: true });
    let timer = session.poll_timeout(now).unwrap();
    assert_eq!(
        timer.at,
        Instant::from(core::time::Duration::from_secs(106))
    );
    assert_eq!(timer.reason, crate::time::TimerReason::CallDeadline);
}

/// Two messages, queued at 0 s and 5 s, each allowed 10 s: the flight's deadline is that of
/// its oldest unsettled message (as the pool's chained flights count it), at the time `now`.
struct Staggered<'m, 'a> {
    batch: Batch<'m, 'a>,
    settled: [bool; 2],
    now: core::time::Duration,
}

impl Flight for Staggered<'_, '_> {
    fn next(&mut self) -> Option<usize> {
        self.batch.next()
    }

    fn message(&self, n: usize) -> Option<FlightMessage<'_>> {
        self.batch.message(n)
    }

    fn settle(&mut self, n: usize, delivery: Delivery) {
        self.settled[n] = true;
        self.batch.settle(n, delivery);
    }

    fn deadline(&self) -> Option<(core::time::Duration, core::time::Duration)> {
        const QUEUED: [u64; 2] = [0, 5];
        let oldest = self.settled.iter().position(|settled| !settled)?;
        let queued = core::time::Duration::from_secs(QUEUED[oldest]);
        Some((core::time::Duration::from_secs(10), self.now - queued))
    }
}

#[test]
fn the_deadline_follows_the_flight_once_a_message_is_settled() {
    let mut flight = Staggered {
        batch: Batch::new(&MESSAGES[..2]),
        settled: [false; 2],
        now: core::time::Duration::ZERO,
    };
    let mut session = Session::new(
        Domain::new("client.example").unwrap(),
        SessionConfig::default(),
    );
    session.start(Instant::ZERO);
    let mut chain = Chain::new();
    let mut step = |session: &mut Session, flight: &mut Staggered<'_, '_>, at: u64, input: &str| {
        flight.now = core::time::Duration::from_secs(at);
        let now = Instant::from(flight.now);
        session.feed(input.as_bytes());
        let step = chain.step(session, flight, &MessageOptions::default(), now);
        while let Some(bytes) = session.poll_transmit() {
            session.wrote(now, bytes.len());
        }
        step
    };
    let greeting = "220 mx.example ESMTP\r\n";
    assert!(matches!(
        step(&mut session, &mut flight, 0, greeting),
        ChainStep::Wait { .. }
    ));
    let ehlo = "250-mx.example hello\r\n250 PIPELINING\r\n";
    assert!(matches!(
        step(&mut session, &mut flight, 0, ehlo),
        ChainStep::Wait { .. }
    ));
    let go = "250 ok\r\n250 ok\r\n354 go\r\n";
    assert_eq!(step(&mut session, &mut flight, 0, go), ChainStep::Body(0));
    session.send_body(b"one\r\n").unwrap();
    session.finish_body().unwrap();
    // The second message rides behind the first one's end of data.
    assert!(matches!(
        step(&mut session, &mut flight, 0, ""),
        ChainStep::Wait { .. }
    ));
    // At 9 s the first message is accepted: from then on the session is bounded by the
    // second message's deadline (5 + 10 = 15 s), not by the settled one's (10 s).
    let accepted = "250 2.0.0 queued as A\r\n";
    assert!(matches!(
        step(&mut session, &mut flight, 9, accepted),
        ChainStep::Wait { .. }
    ));
    assert!(flight.settled[0] && !flight.settled[1]);
    let timer = session.poll_timeout(Instant::from(flight.now)).unwrap();
    assert_eq!(timer.at, Instant::from(core::time::Duration::from_secs(15)));
    assert_eq!(timer.reason, crate::time::TimerReason::CallDeadline);
}
