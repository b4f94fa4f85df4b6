//! Time as an input: every wait's limit, the deadlines and the write-progress rule come from the
//! engine's timer ([`Session::poll_timeout`]) and fire through [`Session::handle_timeout`], with
//! no clock of the engine's own and no deadline kept by a driver.

use super::*;

fn at(secs: u64) -> Instant {
    Instant::from_duration(Duration::from_secs(secs))
}

/// Asked at `now`, the engine's next timer is `reason`, due at `due`.
#[track_caller]
fn assert_timer(h: &mut Harness, now: Instant, reason: TimerReason, due: Instant) {
    let timer = h.session.poll_timeout(now).unwrap();
    assert_eq!((timer.reason, timer.at), (reason, due));
}

/// The timer fires at `now`, and the session fails with `error`.
#[track_caller]
fn assert_fires(h: &mut Harness, now: Instant, error: SmtpError) {
    h.session.handle_timeout(now);
    assert_eq!(h.failure(), error);
}

/// A session whose greeting, EHLO and MAIL / RCPT replies arrived, waiting for DATA's.
fn waiting_for_data(h: &mut Harness) {
    waiting_for_data_of(h, b"x");
}

fn waiting_for_data_of(h: &mut Harness, body: &[u8]) {
    ready(h, EHLO_FULL);
    h.mail("a@x.example", &["b@y.example"], body).unwrap();
    h.transmitted();
    h.feed(b"250 ok\r\n250 ok\r\n");
}

#[test]
fn each_reply_has_the_limit_of_its_phase() {
    let mut h = Harness::new(config());
    assert_timer(&mut h, at(0), TimerReason::Reply(SmtpOp::Greeting), at(300));
    waiting_for_data(&mut h);
    assert_timer(
        &mut h,
        at(1_000),
        TimerReason::Reply(SmtpOp::Data),
        at(1_120),
    );
    // Not due yet: a timer that woke early changes nothing.
    h.session.handle_timeout(at(1_119));
    assert!(h.take_events().is_empty());
    assert_ne!(h.session.state(), SessionState::Closed);
    assert_fires(
        &mut h,
        at(1_120),
        SmtpError::Timeout {
            during: SmtpOp::Data,
            after: Duration::from_secs(120),
        },
    );
    assert_eq!(h.session.state(), SessionState::Closed);
    assert_eq!(h.session.poll_timeout(at(1_200)), None);
    h.session.handle_timeout(at(9_999)); // late and repeated: harmless
    assert!(h.take_events().is_empty());
}

#[test]
fn a_reply_dripping_in_keeps_its_first_deadline() {
    let mut h = Harness::new(config());
    assert_eq!(h.session.poll_timeout(at(0)).unwrap().at, at(300));
    h.feed(b"220 m");
    // A part of the reply is no new wait: a server dripping bytes still times out.
    assert_eq!(h.session.poll_timeout(at(200)).unwrap().at, at(300));
    h.feed(b"x\r\n");
    h.now = at(250);
    assert_eq!(h.transmitted(), "EHLO client.example\r\n");
    // The EHLO reply's own wait starts when it is first asked about.
    assert_timer(&mut h, at(250), TimerReason::Reply(SmtpOp::Ehlo), at(550));
}

#[test]
fn the_session_deadline_counts_from_the_start_and_wins() {
    let mut h = Harness::new(SessionConfig {
        timeouts: Timeouts::default().with_total(Duration::from_secs(30)),
        ..config()
    });
    // The adapter began connecting at 0; the greeting is awaited from 10.
    h.session.start(at(0));
    assert_timer(&mut h, at(10), TimerReason::SessionDeadline, at(30));
    assert_fires(
        &mut h,
        at(30),
        SmtpError::DeadlineExceeded {
            during: SmtpOp::Greeting,
            after: Duration::from_secs(30),
        },
    );
}

#[test]
fn a_caller_deadline_bounds_what_follows_and_can_be_lifted() {
    let mut h = Harness::new(config());
    waiting_for_data(&mut h);
    h.session.set_deadline(at(100), Duration::from_secs(5));
    assert_timer(&mut h, at(101), TimerReason::CallDeadline, at(105));
    h.session.clear_deadline();
    assert_eq!(
        h.session.poll_timeout(at(101)).unwrap().reason,
        TimerReason::Reply(SmtpOp::Data)
    );
    h.session.set_deadline(at(100), Duration::from_secs(5));
    assert_fires(
        &mut h,
        at(105),
        SmtpError::DeadlineExceeded {
            during: SmtpOp::Data,
            after: Duration::from_secs(5),
        },
    );
}

/// Closing is bounded by the nearer of its own limit and the deadlines, down to zero once a
/// deadline has passed: a close (a TLS `close_notify` to a server that stopped reading) used
/// to hold the caller 5 s past the deadline.
#[test]
fn closing_never_outlasts_a_deadline() {
    let five = Duration::from_secs(5);
    let mut h = Harness::new(SessionConfig {
        timeouts: Timeouts::default().with_total(Duration::from_secs(30)),
        ..config()
    });
    assert_eq!(h.session.close_limit(at(0), five), five, "no deadline yet");
    h.session.start(at(0));
    assert_eq!(h.session.close_limit(at(10), five), five);
    assert_eq!(h.session.close_limit(at(28), five), Duration::from_secs(2));
    assert_eq!(h.session.close_limit(at(31), five), Duration::ZERO);
    h.session.set_deadline(at(10), Duration::from_secs(3));
    assert_eq!(h.session.close_limit(at(12), five), Duration::from_secs(1));
}

#[test]
fn an_unfinished_write_is_bounded_then_the_reply() {
    let mut h = Harness::ready(config(), EHLO_FULL);
    h.session.noop().unwrap();
    // Handed out, not yet reported written: the write's own limit (data_block).
    let bytes = h.session.poll_transmit().unwrap();
    assert_timer(&mut h, at(0), TimerReason::Write, at(180));
    h.session.wrote(at(2), bytes.len());
    assert_timer(&mut h, at(2), TimerReason::Reply(SmtpOp::Noop), at(302));
}

#[test]
fn a_stalled_write_is_a_write_timeout() {
    let mut h = Harness::ready(config(), EHLO_FULL);
    h.session.noop().unwrap();
    let _ = h.session.poll_transmit().unwrap();
    let _ = h.session.poll_timeout(at(0));
    assert_fires(
        &mut h,
        at(180),
        SmtpError::Timeout {
            during: SmtpOp::Noop,
            after: Duration::from_secs(180),
        },
    );
}

#[test]
fn a_body_behind_the_write_progress_rule_times_out() {
    let mut h = Harness::new(SessionConfig {
        timeouts: Timeouts {
            min_write_rate: Some(100),
            ..Timeouts::uniform(Duration::from_secs(10))
        },
        ..config()
    });
    let body = [b'a'; 900];
    waiting_for_data_of(&mut h, &body);
    h.feed(b"354 go\r\n");
    assert!(
        h.take_events()
            .iter()
            .any(|e| matches!(e, Event::BodyWanted(_)))
    );
    h.session.send_body(&body).unwrap();
    // Each write finishes within its own 10 s, but the body goes out at 10 bytes a second: the
    // rule allows 10 s plus one second per 100 bytes, counted from the body's first write.
    let len = h.session.poll_transmit().unwrap().len();
    let allowed = Duration::from_secs(10) + Duration::from_secs_f64(len as f64 / 100.0);
    assert_eq!(h.session.poll_timeout(at(0)).unwrap().at, at(10));
    for second in 1..=17 {
        h.session.wrote(at(second), 10);
    }
    assert_timer(&mut h, at(17), TimerReason::WriteProgress, at(0) + allowed);
    assert_fires(
        &mut h,
        at(0) + allowed,
        SmtpError::Timeout {
            during: SmtpOp::DataEnd,
            after: allowed,
        },
    );
}

#[test]
fn the_upgrade_after_starttls_is_bounded() {
    let mut h = Harness::new(config());
    h.run(
        "S: 220 mx.example
         C: EHLO client.example
         S: 250-mx.example
         S: 250 STARTTLS",
    );
    h.take_events();
    h.session.start_tls().unwrap();
    h.run(
        "C: STARTTLS
         S: 220 go ahead",
    );
    assert_eq!(h.take_events(), vec![Event::UpgradeTls]);
    assert_timer(&mut h, at(7), TimerReason::TlsHandshake, at(307));
    h.session.handle_timeout(at(307));
    // A `Timeout`, as an implicit-TLS handshake past its limit is (it was an `Io` error).
    assert_eq!(
        h.failure(),
        SmtpError::Timeout {
            during: SmtpOp::TlsHandshake,
            after: Duration::from_secs(300),
        }
    );
}
