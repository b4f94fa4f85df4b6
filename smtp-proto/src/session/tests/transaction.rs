//! Transcripts of mail transactions: pipelining, refused recipients, DATA and BDAT, local checks before MAIL.

use super::*;

#[test]
fn pipelined_transaction_with_queue_id() {
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        let body = b"Subject: x\r\n\r\n.hi\r\n";
        h.mail("a@example.com", &["b@example.org"], body).unwrap();
        h.run(&format!(
            "{}S: 250 2.1.0 Ok\nS: 250 2.1.5 Ok\nS: 354 End data with <CR><LF>.<CR><LF>",
            envelope("a@example.com", &["b@example.org"], body)
        ));
        h.body(b"Subject: x\r\n\r\n.hi\r\n");
        h.run(
            "
            C: Subject: x
            C: 
            C: ..hi
            C: .
            S: 250 2.0.0 Ok: queued as 4XyZ12
            ",
        );
        let outcome = h.sent();
        assert_eq!(outcome.queue_id.as_deref(), Some("4XyZ12"));
        assert_eq!(outcome.size, 19);
        assert_eq!(outcome.accepted().count(), 1);
        assert_eq!(h.session.state(), SessionState::Ready);
    });
}

#[test]
fn pipelined_refused_recipient_in_the_middle_accept_partial() {
    both_ways(
        || SessionConfig {
            recipient_policy: RecipientPolicy::AcceptPartial,
            ..config()
        },
        |h| {
            ready(h, EHLO_FULL);
            h.offer(
                &["one@y.example", "two@y.example", "three@y.example"],
                b"hi\r\n",
                "S: 250 ok\nS: 250 ok\nS: 550 5.1.1 no such user\nS: 250 ok\nS: 354 go",
            );
            h.deliver("hi", "250 queued");
            let outcome = h.sent();
            let refused: Vec<_> = outcome.refused().map(|r| r.recipient.as_str()).collect();
            assert_eq!(refused, ["two@y.example"]);
            assert_eq!(outcome.accepted().count(), 2);
            assert_eq!(outcome.recipients[1].reply.code().get(), 550);
        },
    );
}

#[test]
fn require_all_waits_for_rcpt_replies_and_resets_lazily() {
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        h.mail(
            "a@x.example",
            &["one@y.example", "two@y.example"],
            b"hi\r\n",
        )
        .unwrap();
        h.run(
            "
            C: MAIL FROM:<a@x.example> SIZE=4
            C: RCPT TO:<one@y.example>
            C: RCPT TO:<two@y.example>
            S: 250 ok
            S: 250 ok
            S: 450 4.2.0 mailbox busy
            ",
        );
        match h.failure() {
            SmtpError::Protocol(ProtocolError::RecipientsRefused { refused, accepted }) => {
                assert_eq!(accepted, 1);
                assert_eq!(refused.len(), 1);
                assert_eq!(refused[0].index, 1);
                assert_eq!(refused[0].recipient, "two@y.example");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(h.session.state(), SessionState::Ready);
        // The server still holds the transaction: the next one starts with RSET, in the same flight.
        h.mail("a@x.example", &["one@y.example"], b"hi\r\n")
            .unwrap();
        h.run(
            "
            C: RSET
            C: MAIL FROM:<a@x.example> SIZE=4
            C: RCPT TO:<one@y.example>
            C: DATA
            S: 250 reset
            S: 250 ok
            S: 250 ok
            S: 354 go
            ",
        );
        h.deliver("hi", "250 ok");
        h.sent();
    });
}

#[test]
fn all_recipients_refused_data_refused() {
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        h.offer(
            &["nobody@y.example"],
            b"hi\r\n",
            "S: 250 ok\nS: 550 5.1.1 unknown\nS: 554 5.5.1 no valid recipients",
        );
        h.assert_refused(0);
        // Session still usable.
        h.noop_answered();
    });
}

#[test]
fn all_recipients_refused_but_354_sends_a_lone_dot() {
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        h.offer(
            &["nobody@y.example"],
            b"secret body\r\n",
            "S: 250 ok\nS: 550 5.1.1 unknown\nS: 354 go ahead anyway\n\
             C: .\nS: 554 5.5.1 no valid recipients",
        );
        let events = h.take_events();
        assert!(
            !events.iter().any(|e| matches!(e, Event::BodyWanted(_))),
            "body must not be asked for"
        );
        assert!(matches!(
            events.last(),
            Some(Event::MessageFailed {
                error: SmtpError::Protocol(ProtocolError::RecipientsRefused { .. }),
                session: SessionAfter::Open,
                ..
            })
        ));
        // The dot ended the transaction: no RSET needed.
        h.noop_answered();
    });
}

#[test]
fn mail_from_refused_with_pipelined_commands() {
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        h.mail("bad@x.example", &["b@y.example"], b"hi\r\n")
            .unwrap();
        h.run(&format!(
            "{}S: 553 5.7.1 sender rejected\nS: 503 5.5.1 need MAIL\nS: 503 5.5.1 need RCPT",
            envelope("bad@x.example", &["b@y.example"], b"hi\r\n")
        ));
        match h.failure() {
            SmtpError::Protocol(ProtocolError::UnexpectedCode { during, reply }) => {
                assert_eq!(during, SmtpOp::MailFrom);
                assert_eq!(reply.code().get(), 553);
            }
            other => panic!("{other:?}"),
        }
        // MAIL was refused: no transaction to reset.
        h.mail("a@x.example", &["b@y.example"], b"hi\r\n").unwrap();
        assert!(h.transmitted().starts_with("MAIL FROM:<a@x.example>"));
    });
}

#[test]
fn lockstep_without_pipelining() {
    both_ways(config, |h| {
        ready(h, EHLO_LOCKSTEP);
        h.offer_lockstep(
            &["b@y.example", "c@y.example"],
            b"hi",
            &["250 ok", "250 ok", "250 ok", "354 go"],
        );
        h.body(b"hi");
        h.run("C: hi\nC: .\nS: 250 ok");
        h.sent();
    });
}

#[test]
fn chunking_sends_bdat_last_in_the_same_flight() {
    both_ways(config, |h| {
        h.run(
            "
            S: 220 mx
            C: EHLO client.example
            S: 250-mx
            S: 250-PIPELINING
            S: 250-CHUNKING
            S: 250 8BITMIME
            ",
        );
        h.take_events();
        h.mail("a@x.example", &["b@y.example"], b".dot\nline")
            .unwrap();
        assert_eq!(
            h.transmitted(),
            "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"
        );
        h.body(b".dot\nline");
        // No dot-stuffing with BDAT; bare LF normalised; final CRLF added: 12 bytes.
        assert_eq!(h.transmitted(), "BDAT 12 LAST\r\n.dot\r\nline\r\n");
        h.run("S: 250 ok\nS: 250 ok\nS: 250 2.0.0 queued as B1");
        assert_eq!(h.sent().queue_id.as_deref(), Some("B1"));
    });
}

/// The outcome's size counts message bytes (what the server stores), never the dots added by
/// stuffing: a streamed DATA body and the same body by BDAT report the same size.
#[test]
fn streamed_data_size_excludes_stuffed_dots() {
    let mut h = Harness::new(config());
    h.run("S: 220 mx\nC: EHLO client.example\nS: 250-mx\nS: 250 PIPELINING");
    h.take_events();
    h.start_streamed();
    h.run("C: MAIL FROM:<a@x.example>\nC: RCPT TO:<b@y.example>\nC: DATA\nS: 250 ok\nS: 250 ok\nS: 354 go");
    h.session.send_body(b".a\n..b\r").unwrap();
    h.session.send_body(b"\n.").unwrap();
    h.session.finish_body().unwrap();
    assert_eq!(h.transmitted(), "..a\r\n...b\r\n..\r\n.\r\n");
    h.feed(b"250 queued\r\n");
    let body: &[u8] = b".a\n..b\r\n.";
    let size = h.sent().size;
    assert_eq!(size, crate::body::normalized_len(body));
    assert_eq!(size, 12);
}

#[test]
fn streamed_bdat_chunks_are_windowed() {
    let mut h = Harness::new(SessionConfig {
        max_bdat_in_flight: 2,
        bdat_chunk_size: 4,
        ..config()
    });
    h.run("S: 220 mx\nC: EHLO client.example\nS: 250-mx\nS: 250-PIPELINING\nS: 250 CHUNKING");
    h.take_events();
    h.start_streamed();
    assert!(
        h.take_events()
            .iter()
            .any(|e| matches!(e, Event::BodyWanted(_)))
    );
    // Input chunks are gathered into BDAT chunks of 4 bytes; the last bytes are always held
    // back for the chunk that carries LAST.
    h.session.send_body(b"abc\r").unwrap();
    assert!(h.session.wants_body());
    assert_eq!(
        h.transmitted(),
        "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"
    );
    h.session.send_body(b"\ndef").unwrap();
    assert!(h.session.wants_body());
    h.session.send_body(b"gh").unwrap();
    assert!(!h.session.wants_body(), "window of 2 is full");
    assert_eq!(h.transmitted(), "BDAT 4\r\nabc\rBDAT 4\r\n\ndef");
    h.feed(b"250 ok\r\n250 ok\r\n250 chunk\r\n");
    assert!(h.session.wants_body());
    h.session.finish_body().unwrap();
    assert_eq!(h.transmitted(), "BDAT 4 LAST\r\ngh\r\n");
    h.feed(b"250 chunk\r\n250 done\r\n");
    assert_eq!(h.sent().size, 12);
}

#[test]
fn code_421_at_any_stage_closes() {
    for (stage, script) in [
        ("greeting", "S: 421 busy"),
        (
            "ehlo",
            "S: 220 x\nC: EHLO client.example\nS: 421 4.3.2 shutting down",
        ),
    ] {
        let mut h = Harness::new(config());
        h.run(script);
        assert!(
            matches!(h.failure(), SmtpError::Protocol(ProtocolError::UnexpectedCode { reply, .. }) if reply.code().get() == 421),
            "{stage}"
        );
        assert_eq!(h.session.state(), SessionState::Closed);
    }
    let mut h = Harness::answered(b"hi\r\n", b"250 ok\r\n421 4.4.2 timeout\r\n");
    assert_protocol_failure!(
        h,
        ProtocolError::UnexpectedCode {
            during: SmtpOp::RcptTo,
            ..
        }
    );
    assert_eq!(h.session.state(), SessionState::Closed);
}

#[test]
fn size_limit_refuses_before_any_command() {
    let mut h = Harness::ready(config(), EHLO_FULL);
    let body = vec![b'a'; 2000];
    assert_eq!(
        h.mail("a@x.example", &["b@y.example"], &body).unwrap_err(),
        SmtpError::Protocol(ProtocolError::MessageTooLarge {
            size: 2002,
            limit: 1000
        })
    );
    assert_eq!(h.transmitted(), "");
    assert_eq!(h.session.state(), SessionState::Authentication);
}

/// A streamed body with a size hint is checked against SIZE like a known one, before anything
/// is sent, and the hint is what MAIL declares.
#[test]
fn streamed_size_hint_is_declared_and_checked() {
    let mut h = Harness::ready(config(), EHLO_FULL);
    let env = || Envelope::new("a@x.example", &["b@y.example"]).unwrap();
    assert_eq!(
        h.session
            .start_mail(
                env(),
                BodyInfo::Streamed {
                    size_hint: Some(5000)
                },
                &MessageOptions::default()
            )
            .unwrap_err(),
        SmtpError::Protocol(ProtocolError::MessageTooLarge {
            size: 5000,
            limit: 1000
        })
    );
    assert_eq!(h.transmitted(), "");
    h.session
        .start_mail(
            env(),
            BodyInfo::Streamed {
                size_hint: Some(900),
            },
            &MessageOptions::default(),
        )
        .unwrap();
    assert!(
        h.transmitted()
            .starts_with("MAIL FROM:<a@x.example> SIZE=900 BODY=8BITMIME\r\n")
    );
}

#[test]
fn smtputf8_and_8bitmime_are_declared() {
    let mut h = Harness::ready(config(), EHLO_FULL);
    h.mail(
        "jöran@bücher.example",
        &["b@y.example"],
        "héllo\r\n".as_bytes(),
    )
    .unwrap();
    assert!(
        h.transmitted()
            .starts_with("MAIL FROM:<jöran@bücher.example> SIZE=8 BODY=8BITMIME SMTPUTF8\r\n")
    );
    let mut h = Harness::ready(config(), EHLO_LOCKSTEP);
    assert!(matches!(
        h.mail("jöran@bücher.example", &["b@y.example"], b"x"),
        Err(SmtpError::Protocol(ProtocolError::ExtensionUnavailable {
            name: Extension::SmtpUtf8
        }))
    ));
}

/// Past `EHLO_LOCKSTEP` (no DSN), a message to `to` with `opts` is refused for want of DSN.
#[track_caller]
fn assert_needs_dsn(to: &[&str], opts: &MessageOptions) {
    let mut h = Harness::ready(config(), EHLO_LOCKSTEP);
    assert_eq!(
        h.mail_with("a@x.example", to, b"x", opts).unwrap_err(),
        SmtpError::Protocol(ProtocolError::ExtensionUnavailable {
            name: Extension::Dsn
        })
    );
}

#[test]
fn dsn_options_need_dsn() {
    let opts = MessageOptions {
        dsn_return: Some(DsnReturn::Headers),
        envelope_id: Some(EnvelopeId::new("id+1").unwrap()),
        notify: Some(Notify::On {
            success: true,
            failure: true,
            delay: false,
        }),
        ..MessageOptions::default()
    };
    let mut h = Harness::ready(config(), EHLO_FULL);
    h.mail_with("a@x.example", &["b@y.example"], b"x", &opts)
        .unwrap();
    assert_eq!(
        h.transmitted(),
        "MAIL FROM:<a@x.example> SIZE=3 RET=HDRS ENVID=id+2B1\r\n\
         RCPT TO:<b@y.example> NOTIFY=SUCCESS,FAILURE\r\nDATA\r\n"
    );
    assert_needs_dsn(&["b@y.example"], &opts);
}

#[test]
fn original_recipients_go_on_their_own_rcpt_lines() {
    let opts = MessageOptions {
        notify: Some(Notify::Never),
        original_recipients: vec![
            OriginalRecipient::new("b+list@y.example").unwrap(),
            OriginalRecipient::new("<c=x@y.example>").unwrap(),
        ],
        ..MessageOptions::default()
    };
    both_ways(config, |h| {
        ready(h, EHLO_FULL);
        h.session.config.recipient_policy = RecipientPolicy::AcceptPartial;
        h.mail_with("a@x.example", &["b@y.example", "c@y.example"], b"x", &opts)
            .unwrap();
        h.run(
            "
            C: MAIL FROM:<a@x.example> SIZE=3
            C: RCPT TO:<b@y.example> NOTIFY=NEVER ORCPT=rfc822;b+2Blist@y.example
            C: RCPT TO:<c@y.example> NOTIFY=NEVER ORCPT=rfc822;c+3Dx@y.example
            C: DATA
            ",
        );
    });
    // The wrong number of original recipients, or no DSN: refused before anything is sent.
    let mut h = Harness::ready(config(), EHLO_FULL);
    assert!(matches!(
        h.mail_with("a@x.example", &["b@y.example"], b"x", &opts),
        Err(SmtpError::InvalidInput(InvalidInputError::Argument {
            field: Field::OriginalRecipient,
            ..
        }))
    ));
    assert_eq!(h.transmitted(), "");
    assert_needs_dsn(&["b@y.example", "c@y.example"], &opts);
}

#[test]
fn requiretls_needs_tls_and_the_extension() {
    const EHLO_REQUIRETLS: &str = "S: 220 x\nC: EHLO client.example\nS: 250-x\nS: 250 REQUIRETLS";
    let opts = MessageOptions {
        require_tls: true,
        ..MessageOptions::default()
    };
    let mut h = Harness::ready(config(), EHLO_REQUIRETLS);
    assert_eq!(
        h.mail_with("a@x.example", &["b@y.example"], b"x", &opts)
            .unwrap_err(),
        SmtpError::Protocol(ProtocolError::ExtensionUnavailable {
            name: Extension::RequireTls
        })
    );
    let mut h = Harness::ready(
        SessionConfig {
            tls: true,
            ..config()
        },
        EHLO_REQUIRETLS,
    );
    h.mail_with("a@x.example", &["b@y.example"], b"x", &opts)
        .unwrap();
    assert_eq!(h.transmitted(), "MAIL FROM:<a@x.example> REQUIRETLS\r\n");
}

#[test]
fn policy_refusal_sends_nothing() {
    let mut h = Harness::ready(
        SessionConfig {
            policy: Box::new(
                crate::BoundedPolicy::new()
                    .max_recipients(1)
                    .allowed_recipient_domains(["y.example"]),
            ),
            ..config()
        },
        EHLO_FULL,
    );
    assert!(matches!(
        h.mail("a@x.example", &["b@y.example", "c@y.example"], b"x"),
        Err(SmtpError::Policy(_))
    ));
    assert!(matches!(
        h.mail("a@x.example", &["b@evil.example"], b"x"),
        Err(SmtpError::Policy(_))
    ));
    assert_eq!(h.transmitted(), "");
    h.mail("a@x.example", &["b@Y.EXAMPLE"], b"x").unwrap();
}

#[test]
fn check_mail_refuses_before_auth_what_the_server_cannot_take() {
    let mut h = Harness::ready(config(), EHLO_LOCKSTEP);
    let utf8 = Envelope::new("a@x.example", &["用户@example.org"]).unwrap();
    let body = seven_bit(10);
    // Right after EHLO, before any AUTH: a local check against the capabilities.
    let err = h
        .session
        .check_mail(&utf8, body, &MessageOptions::default())
        .unwrap_err();
    assert_eq!(
        err,
        SmtpError::Protocol(ProtocolError::ExtensionUnavailable {
            name: Extension::SmtpUtf8
        })
    );
    assert_eq!(err.blame(), crate::Blame::LocalCheck);
    let ascii = Envelope::new("a@x.example", &["b@example.org"]).unwrap();
    h.session
        .check_mail(&ascii, body, &MessageOptions::default())
        .unwrap();
    assert_eq!(h.transmitted(), "", "checking sends nothing");
    assert_eq!(h.session.state(), SessionState::Authentication);
}

proptest::proptest! {
    /// Streamed BDAT framing whatever the input's chunking and line ends: every chunk but the
    /// last carries exactly `bdat_chunk_size` bytes, the last carries `LAST` and what remains
    /// (with the final CRLF the normaliser adds), and the data is the message as sent.
    #[test]
    fn streamed_bdat_frames_are_exact(
        body in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::strategy::Just(b'\r'),
                proptest::strategy::Just(b'\n'),
                proptest::strategy::Just(b'.'),
                proptest::strategy::Just(b'a'),
                proptest::strategy::Just(b'b')
            ],
            0..200,
        ),
        cuts in proptest::collection::vec(1usize..40, 1..20),
        size in 1usize..16,
    ) {
        let mut h = Harness::new(SessionConfig {
            max_bdat_in_flight: usize::MAX,
            bdat_chunk_size: size,
            ..config()
        });
        h.run("S: 220 mx\nC: EHLO client.example\nS: 250-mx\nS: 250-PIPELINING\nS: 250 CHUNKING");
        h.take_events();
        h.start_streamed();
        h.take_events();
        let mut wire = Vec::new();
        let mut rest = &body[..];
        let mut cut = cuts.iter().cycle();
        while !rest.is_empty() {
            let n = (*cut.next().unwrap()).min(rest.len());
            h.session.send_body(&rest[..n]).unwrap();
            wire.extend_from_slice(h.transmitted().as_bytes());
            rest = &rest[n..];
        }
        h.session.finish_body().unwrap();
        wire.extend_from_slice(h.transmitted().as_bytes());

        // What it must be: the normalised message before its end, cut into full chunks while
        // more than one chunk remains, then the rest and the normaliser's end with LAST.
        let mut normalizer = crate::body::LineNormalizer::new();
        let mut data = bytes::BytesMut::new();
        normalizer.encode(&body, &mut data);
        let mut end = bytes::BytesMut::new();
        normalizer.finish(&mut end);
        let mut want = Vec::new();
        let mut data = &data[..];
        while data.len() > size {
            want.extend_from_slice(format!("BDAT {size}\r\n").as_bytes());
            want.extend_from_slice(&data[..size]);
            data = &data[size..];
        }
        want.extend_from_slice(format!("BDAT {} LAST\r\n", data.len() + end.len()).as_bytes());
        want.extend_from_slice(data);
        want.extend_from_slice(&end);
        let envelope = b"MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n";
        let wire = wire.strip_prefix(&envelope[..]).unwrap_or(&wire[..]);
        proptest::prop_assert_eq!(
            String::from_utf8_lossy(wire),
            String::from_utf8_lossy(&want)
        );
    }
}
