//! Transcripts of the handshake: greeting, EHLO and its HELO fallback, STARTTLS and its barrier.

use super::*;

#[test]
fn greeting_and_ehlo() {
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        let caps = h.session.capabilities();
        assert!(caps.has(Extension::Pipelining));
        assert_eq!(caps.size_limit(), Some(1000));
        assert_eq!(caps.raw_lines()[0], "PIPELINING");
        assert_eq!(
            h.session.poll_timeout(Instant::ZERO),
            None,
            "nothing awaited when idle"
        );
    });
}

#[test]
fn greeting_554_is_an_error_with_the_server_text() {
    both_ways(config, |h| {
        h.run("S: 554 5.7.1 go away spammer");
        let err = h.failure();
        let reply = err.reply().expect("reply kept");
        assert_eq!(reply.code().get(), 554);
        assert!(reply.text().contains("go away spammer"));
        assert_eq!(h.session.state(), SessionState::Closed);
        // Sticky: every later command gives the same error.
        assert_eq!(h.session.noop().unwrap_err(), err);
    });
}

#[test]
fn ehlo_502_falls_back_to_helo() {
    both_ways(config, |h| {
        h.run(
            "
            S: 220 old.example SMTP
            C: EHLO client.example
            S: 502 5.5.2 command not recognised
            C: HELO client.example
            S: 250 old.example
            ",
        );
        assert_eq!(h.take_events().last(), Some(&Event::HelloDone));
        assert!(h.session.capabilities().raw_lines().is_empty());
    });
}

#[test]
fn ehlo_refused_otherwise_is_fatal() {
    both_ways(config, |h| {
        h.run(
            "
            S: 220 mx.example
            C: EHLO client.example
            S: 550 no
            ",
        );
        let err = h.failure();
        assert!(matches!(
            err,
            SmtpError::Protocol(ProtocolError::UnexpectedCode {
                during: SmtpOp::Ehlo,
                ..
            })
        ));
        assert_eq!(h.session.state(), SessionState::Closed);
    });
}

#[test]
fn starttls_upgrade_forgets_capabilities_and_redoes_ehlo() {
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        h.session.start_tls().unwrap();
        h.run(
            "
            C: STARTTLS
            S: 220 2.0.0 go ahead
            ",
        );
        assert_eq!(h.take_events(), vec![Event::UpgradeTls]);
        assert_eq!(
            h.session.poll_transmit(),
            None,
            "nothing sent during the barrier"
        );
        // The driver's TLS handshake is what the engine waits for now.
        let timer = h.session.poll_timeout(Instant::ZERO).unwrap();
        assert_eq!(timer.reason, TimerReason::TlsHandshake);
        h.session.tls_established().unwrap();
        assert!(h.session.is_tls());
        assert!(h.session.capabilities().raw_lines().is_empty());
        h.run(
            "
            C: EHLO client.example
            S: 250-mx.example
            S: 250 AUTH PLAIN
            ",
        );
        assert_eq!(h.take_events(), vec![Event::HelloDone]);
        assert!(!h.session.capabilities().has(Extension::StartTls));
        // STARTTLS only once.
        assert!(matches!(
            h.session.start_tls(),
            Err(SmtpError::InvalidInput(_))
        ));
    });
}

#[test]
fn starttls_not_advertised_closes_the_session() {
    let mut h = Harness::ready(config(), EHLO_LOCKSTEP);
    let err = h.session.start_tls().unwrap_err();
    assert_eq!(
        err,
        SmtpError::Protocol(ProtocolError::ExtensionUnavailable {
            name: Extension::StartTls
        })
    );
    assert_eq!(h.session.state(), SessionState::Closed);
    assert_eq!(h.session.poll_transmit(), None);
    // No plaintext fallback: a login now fails with the same error.
    assert_eq!(h.session.login_auto("u", "p").unwrap_err(), err);
}

#[test]
fn starttls_refused_closes_the_session() {
    for code in [
        "454 4.7.0 TLS not available",
        "501 syntax",
        "502 no",
        "500 what",
    ] {
        let mut h = Harness::ready(config(), EHLO_FULL);
        h.session.start_tls().unwrap();
        h.run(&format!("C: STARTTLS\nS: {code}"));
        assert_closed_on_unexpected(&mut h, SmtpOp::StartTls, code);
    }
}

/// "NO STARTTLS" (Poddebniak et al., 2021) / CVE-2021-38371 class: bytes after the 220, in the same
/// read or a later one, must never be read as replies after the upgrade.
#[test]
fn starttls_response_injection_is_refused() {
    // Same read.
    let mut h = Harness::ready(config(), EHLO_FULL);
    h.session.start_tls().unwrap();
    assert_eq!(h.transmitted(), "STARTTLS\r\n");
    h.feed(b"220 go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n");
    let err = h.failure();
    assert!(matches!(
        err,
        SmtpError::Protocol(ProtocolError::ResponseInjection { .. })
    ));
    assert_eq!(h.session.state(), SessionState::Closed);
    assert!(h.session.tls_established().is_err());

    // A partial line, in a later read.
    let mut h = Harness::ready(config(), EHLO_FULL);
    h.session.start_tls().unwrap();
    h.transmitted();
    h.feed(b"220 go ahead\r\n");
    assert_eq!(h.take_events(), vec![Event::UpgradeTls]);
    h.feed(b"25");
    assert_protocol_failure!(h, ProtocolError::ResponseInjection { bytes: 2 });
}
