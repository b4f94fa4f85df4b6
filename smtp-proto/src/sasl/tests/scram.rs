//! SCRAM-SHA-256: the RFC 7677 vector, GS2 headers, name preparation, and hostile server messages.

use super::*;

// ---- SCRAM-SHA-256 ----

/// RFC 7677 section 3.
#[cfg(feature = "scram")]
mod scram_vector {
    pub const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    pub const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    pub const SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                        s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    pub const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                        p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    pub const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
}

#[cfg(feature = "scram")]
fn scram(binding: ChannelBinding) -> SaslExchange {
    let nonce = ClientNonce::new(scram_vector::NONCE).unwrap();
    SaslExchange::new_scram("user", "pencil", &nonce, binding, SCRAM_MAX_ITERATIONS).unwrap()
}

#[cfg(feature = "scram")]
fn scram_err(error: crate::error::ScramError) -> AuthError {
    AuthError::Scram {
        mechanism: AuthMechanism::ScramSha256,
        error,
    }
}

#[cfg(feature = "scram")]
#[test]
fn scram_rfc_7677_test_vector() {
    use scram_vector::*;
    let mut ex = scram(ChannelBinding::Unsupported);
    assert_eq!(ex.mechanism(), AuthMechanism::ScramSha256);
    assert_eq!(initial(&mut ex).unwrap(), CLIENT_FIRST.as_bytes());
    let (step, line) = answer(&mut ex, &b64(SERVER_FIRST.as_bytes())).unwrap();
    assert_eq!(step, SaslStep::Respond);
    assert_eq!(String::from_utf8(unb64(&line)).unwrap(), CLIENT_FINAL);
    assert!(ex.check_success().is_err(), "not verified before v=");
    let (step, line) = answer(&mut ex, &b64(SERVER_FINAL.as_bytes())).unwrap();
    assert_eq!((step, line.as_str()), (SaslStep::Respond, ""));
    assert_eq!(ex.check_success(), Ok(()));
    assert_eq!(
        answer(&mut ex, "").unwrap_err(),
        too_many(AuthMechanism::ScramSha256)
    );
}

#[cfg(feature = "scram")]
#[test]
fn scram_gs2_headers() {
    let mut ex = scram(ChannelBinding::NotOffered);
    assert_eq!(
        initial(&mut ex).unwrap(),
        b"y,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    );
    let (_, line) = answer(&mut ex, &b64(scram_vector::SERVER_FIRST.as_bytes())).unwrap();
    assert!(
        String::from_utf8(unb64(&line))
            .unwrap()
            .starts_with("c=eSws,r=")
    );

    let mut ex = scram(ChannelBinding::TlsExporter([7; 32]));
    assert_eq!(ex.mechanism(), AuthMechanism::ScramSha256Plus);
    assert_eq!(
        initial(&mut ex).unwrap(),
        b"p=tls-exporter,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    );
    let (_, line) = answer(&mut ex, &b64(scram_vector::SERVER_FIRST.as_bytes())).unwrap();
    let mut cbind = b"p=tls-exporter,,".to_vec();
    cbind.extend_from_slice(&[7; 32]);
    let want = format!("c={},r=", b64(&cbind));
    let got = String::from_utf8(unb64(&line)).unwrap();
    assert!(got.starts_with(&want), "{got}");
    // The proof differs from the unbound one: the binding is in the AuthMessage.
    assert!(!got.ends_with("p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="));
}

#[cfg(feature = "scram")]
#[test]
fn scram_user_names_are_prepared_and_escaped() {
    let nonce = ClientNonce::new(scram_vector::NONCE).unwrap();
    let mut ex = SaslExchange::new_scram(
        "a=b,c\u{00AD}\u{00A0}d",
        "pencil",
        &nonce,
        ChannelBinding::Unsupported,
        SCRAM_MAX_ITERATIONS,
    )
    .unwrap();
    assert_eq!(
        initial(&mut ex).unwrap(),
        b"n,,n=a=3Db=2Cc d,r=rOprNGfwEbeRWgbNEkqO"
    );
    for (user, password, want) in [
        ("", "p", arg_err(Field::UserName, ArgumentError::Empty)),
        (
            "\u{00AD}",
            "p",
            arg_err(Field::UserName, ArgumentError::Empty),
        ),
        ("u", "", arg_err(Field::Secret, ArgumentError::Empty)),
        ("u\r", "p", forbidden(Field::UserName, b'\r', 1)),
        ("u", "pa\0ss", forbidden(Field::Secret, 0, 2)),
        (
            "u",
            "pa\u{E000}ss",
            arg_err(Field::Secret, ArgumentError::Prohibited { index: 2 }),
        ),
    ] {
        assert_eq!(
            SaslExchange::new_scram(
                user,
                password,
                &nonce,
                ChannelBinding::Unsupported,
                SCRAM_MAX_ITERATIONS,
            )
            .unwrap_err(),
            want,
            "{user:?}"
        );
    }
    // Without a nonce SCRAM cannot start.
    assert_eq!(
        SaslExchange::new(AuthMechanism::ScramSha256, "u", "p").unwrap_err(),
        arg_err(Field::Nonce, ArgumentError::Empty)
    );
}

#[test]
fn client_nonces_are_checked() {
    assert!(ClientNonce::new("rOprNGfwEbeRWgbNEkqO").is_ok());
    assert_eq!(
        ClientNonce::new("").unwrap_err(),
        arg_err(Field::Nonce, ArgumentError::Empty)
    );
    assert_eq!(
        ClientNonce::new("abcdefgh,ijklmnopq").unwrap_err(),
        forbidden(Field::Nonce, b',', 8)
    );
    assert_eq!(
        ClientNonce::new("abc def").unwrap_err(),
        forbidden(Field::Nonce, b' ', 3)
    );
    assert!(ClientNonce::new("short").is_err());
    assert!(ClientNonce::new(&"x".repeat(256)).is_err());
    let n = ClientNonce::from_random([0xfb; 18]);
    assert_eq!(n.as_str().len(), 24);
    assert_eq!(ClientNonce::new(n.as_str()).unwrap(), n);
}

#[cfg(feature = "scram")]
#[test]
fn scram_refuses_bad_server_first_messages() {
    use crate::error::ScramError as E;
    let r = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    let s = "s=W22ZaJ0SNY7soEsUEjb6gQ==";
    let cases: Vec<(String, E)> = vec![
        // The nonce does not extend ours, or adds nothing.
        (
            format!("r=XOprNGfwEbeRWgbNEkqOabc,{s},i=4096"),
            E::NonceMismatch,
        ),
        (
            format!("r=rOprNGfwEbeRWgbNEkqO,{s},i=4096"),
            E::NonceMismatch,
        ),
        (format!("r=rOprNGfwEbe,{s},i=4096"), E::NonceMismatch),
        // Iteration counts.
        (format!("{r},{s},i=4095"), E::IterationCount { count: 4095 }),
        (format!("{r},{s},i=0"), E::IterationCount { count: 0 }),
        (
            format!("{r},{s},i=1000001"),
            E::IterationCount { count: 1_000_001 },
        ),
        (
            format!("{r},{s},i=99999999999999999999999"),
            E::IterationCount { count: u64::MAX },
        ),
        (format!("{r},{s},i=-4096"), E::MalformedServerFirst),
        (format!("{r},{s},i="), E::MalformedServerFirst),
        (format!("{r},{s},i=4096x"), E::MalformedServerFirst),
        // Salt.
        (format!("{r},s=not base64!,i=4096"), E::InvalidSalt),
        (format!("{r},s=,i=4096"), E::InvalidSalt),
        // Structure.
        (format!("m=ext,{r},{s},i=4096"), E::MandatoryExtension),
        (format!("{r},i=4096,{s}"), E::MalformedServerFirst),
        (format!("{r},{s}"), E::MalformedServerFirst),
        (String::new(), E::MalformedServerFirst),
        (format!("{r}\x7f,{s},i=4096"), E::MalformedServerFirst),
    ];
    for (server_first, want) in cases {
        let mut ex = scram(ChannelBinding::Unsupported);
        assert_eq!(
            answer(&mut ex, &b64(server_first.as_bytes())).unwrap_err(),
            scram_err(want),
            "{server_first:?}"
        );
    }
    let mut ex = scram(ChannelBinding::Unsupported);
    assert_eq!(
        answer(&mut ex, "not base64 !!!").unwrap_err(),
        scram_err(E::MalformedServerFirst)
    );
    // Extensions after the iteration count are ignored.
    let mut ex = scram(ChannelBinding::Unsupported);
    let first = format!("{},x=ext", scram_vector::SERVER_FIRST);
    assert!(answer(&mut ex, &b64(first.as_bytes())).is_ok());
}

#[cfg(feature = "scram")]
#[test]
fn scram_checks_the_server_signature() {
    use crate::error::ScramError as E;
    let after_first = || {
        let mut ex = scram(ChannelBinding::Unsupported);
        answer(&mut ex, &b64(scram_vector::SERVER_FIRST.as_bytes())).unwrap();
        ex
    };
    for (server_final, want) in [
        // The last byte changed.
        (
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G8=",
            E::ServerSignatureMismatch,
        ),
        // Truncated, empty.
        (
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl9",
            E::ServerSignatureMismatch,
        ),
        ("v=", E::ServerSignatureMismatch),
        ("v=!!!", E::MalformedServerFinal),
        ("x=abc", E::MalformedServerFinal),
        ("", E::MalformedServerFinal),
    ] {
        let mut ex = after_first();
        assert_eq!(
            answer(&mut ex, &b64(server_final.as_bytes())).unwrap_err(),
            scram_err(want),
            "{server_final:?}"
        );
        assert!(ex.check_success().is_err());
    }
    assert!(E::ServerSignatureMismatch.closes_session());
    assert!(E::ServerNotVerified.closes_session());
    assert!(!E::NonceMismatch.closes_session());
    // e= is the server's refusal: answered with an empty line, detail kept.
    let mut ex = after_first();
    let (step, line) = answer(&mut ex, &b64(b"e=invalid-proof")).unwrap();
    assert_eq!(step, error_step("invalid-proof"));
    assert_eq!(line, "");
    assert_eq!(
        ex.check_success().unwrap_err(),
        scram_err(E::ServerNotVerified)
    );
}

#[cfg(feature = "scram")]
#[test]
fn scram_debug_never_shows_secrets() {
    let mut ex = scram(ChannelBinding::TlsExporter([0x41; 32]));
    let mut out = BytesMut::new();
    ex.write_initial(&mut out);
    let mut out = BytesMut::new();
    let reply = challenge(&b64(scram_vector::SERVER_FIRST.as_bytes()));
    ex.respond(&reply, &mut out).unwrap();
    let d = format!("{ex:?} {ex:#?}");
    assert!(!d.contains("pencil"), "{d}");
    assert!(!d.contains("user"), "{d}");
    assert!(!d.contains("p="), "{d}");
    let input = AuthInput::new()
        .with_nonce(ClientNonce::new(scram_vector::NONCE).unwrap())
        .with_tls_exporter([0x41; 32]);
    let d = format!("{input:?} {:?}", ChannelBinding::TlsExporter([0x41; 32]));
    assert!(!d.contains("65"), "{d}");
    assert!(d.contains("[redacted]"), "{d}");
}

#[cfg(not(feature = "scram"))]
#[test]
fn scram_feature_off_is_refused() {
    let nonce = ClientNonce::new("rOprNGfwEbeRWgbNEkqO").unwrap();
    for m in [AuthMechanism::ScramSha256, AuthMechanism::ScramSha256Plus] {
        assert_eq!(
            SaslExchange::new(m, "u", "p").unwrap_err(),
            InvalidInputError::FeatureDisabled { feature: "scram" }
        );
    }
    assert_eq!(
        SaslExchange::new_scram(
            "u",
            "p",
            &nonce,
            ChannelBinding::Unsupported,
            SCRAM_MAX_ITERATIONS,
        )
        .unwrap_err(),
        InvalidInputError::FeatureDisabled { feature: "scram" }
    );
}
