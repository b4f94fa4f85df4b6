//! Cases about the session itself: capabilities, a plain send, authentication (automatic
//! choice, wrong secrets) and what a server that wants TLS first refuses.

use crate::*;

pub(crate) async fn case_capabilities(run: Run<'_>, want: &[&str]) -> CaseResult {
    let Run { ctx, t, .. } = run;
    let conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let caps = conn.client.capabilities().to_vec();
    let keywords: BTreeSet<String> = caps
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_ascii_uppercase)
        .collect();
    let missing: Vec<_> = want.iter().filter(|k| !keywords.contains(**k)).collect();
    conn.quit().await?;
    if !missing.is_empty() {
        return Err(format!("not advertised: {missing:?}; EHLO said {caps:?}"));
    }
    Ok(caps.join(", "))
}

pub(crate) async fn case_send(
    run: Run<'_>,
    port: u16,
    mode: TlsMode,
    auth: Option<AuthMechanism>,
) -> CaseResult {
    let Run { ctx, t, .. } = run;
    // `plain+auth-*` cases: AUTH on a plaintext port that offers it, allowed explicitly (the
    // engine refuses plaintext AUTH by default).
    let opts = SmtpClientOptions::new().allow_plaintext_auth();
    let conn = connect_with(ctx, t, port, mode, opts).await?;
    login_send_verify(run, conn, auth).await
}

/// On an open connection: AUTH with `auth` if given, one message, QUIT, and the delivered
/// copy verified (with the AUTH user the server recorded).
pub(crate) async fn login_send_verify(
    run: Run<'_>,
    mut conn: Conn,
    auth: Option<AuthMechanism>,
) -> CaseResult {
    let Run { ctx, t, label } = run;
    let mut note = String::new();
    if let Some(m) = auth {
        conn.client
            .login_with(m, &ctx.user, ctx.credential(m))
            .await
            .map_err(|e| conn.fail(&format!("AUTH {m}"), &e))?;
        if conn.client.session().authenticated() != Some(m) {
            return Err(conn.explain("login succeeded but session().authenticated() differs"));
        }
        let _ = write!(note, "AUTH {m} ok; ");
    }
    let id = new_id(t, label);
    let body = plain_body(&id);
    let (outcome, mut want) = send(&mut conn, id, FROM, &["rcpt@example.org"], "", &body).await?;
    if auth.is_some() {
        want.auth_user = Some(&ctx.user);
        want.auth_method = auth;
    }
    conn.quit().await?;
    verify(t, &[want]).await?;
    let _ = write!(note, "final reply {}", outcome.reply);
    Ok(note)
}

pub(crate) async fn case_auto_login(
    run: Run<'_>,
    port: u16,
    mode: TlsMode,
    want: AuthMechanism,
) -> CaseResult {
    let Run { ctx, t, .. } = run;
    let mut conn = connect_with(ctx, t, port, mode, SmtpClientOptions::new()).await?;
    conn.client
        .login(&ctx.user, &ctx.pass)
        .await
        .map_err(|e| conn.fail("login()", &e))?;
    let got = conn.client.session().authenticated();
    if got != Some(want) {
        return Err(conn.explain(&format!("login() chose {got:?}, expected {want}")));
    }
    let offered = conn
        .client
        .session()
        .capabilities()
        .auth_mechanism_names()
        .join(" ");
    conn.quit().await?;
    Ok(format!("offered {offered}; login() chose {want}"))
}

pub(crate) async fn case_wrong_password(
    run: Run<'_>,
    port: u16,
    mode: TlsMode,
    mechanism: AuthMechanism,
) -> CaseResult {
    let Run { ctx, t, .. } = run;
    let mut conn = connect_with(ctx, t, port, mode, SmtpClientOptions::new()).await?;
    let err = match conn
        .client
        .login_with(mechanism, &ctx.user, "wrong-password")
        .await
    {
        Ok(()) => return Err(conn.explain("a wrong password was accepted")),
        Err(e) => e,
    };
    let SmtpError::Auth(AuthError::Rejected { reply, .. }) = &err else {
        return Err(conn.fail("expected AuthError::Rejected", &err));
    };
    if !(500..600).contains(&code(reply)) || reply.text().trim().is_empty() {
        return Err(conn.fail("expected a 5xx refusal with the server's text", &err));
    }
    let refused = reply.to_string();
    // A refused attempt leaves the session able to try again.
    conn.client
        .login_with(mechanism, &ctx.user, &ctx.pass)
        .await
        .map_err(|e| conn.fail("AUTH again with the right password", &e))?;
    conn.quit().await?;
    Ok(format!(
        "Rejected: {refused}; retry with the right password ok"
    ))
}

pub(crate) async fn case_wrong_token(run: Run<'_>, port: u16, mode: TlsMode) -> CaseResult {
    let Run { ctx, t, .. } = run;
    let mut conn = connect_with(ctx, t, port, mode, SmtpClientOptions::new()).await?;
    let err = match conn
        .client
        .login_xoauth2(&ctx.user, "not-a-valid-token")
        .await
    {
        Ok(()) => return Err(conn.explain("a wrong token was accepted")),
        Err(e) => e,
    };
    let SmtpError::Auth(AuthError::Rejected { reply, detail, .. }) = &err else {
        return Err(conn.fail("expected AuthError::Rejected", &err));
    };
    if !detail.as_deref().is_some_and(|d| d.contains("401")) {
        return Err(conn.fail(
            "expected the decoded JSON error (status 401) in detail",
            &err,
        ));
    }
    let note = format!(
        "Rejected: {reply}; detail {}",
        detail.as_deref().unwrap_or("")
    );
    conn.quit().await?;
    Ok(note)
}

pub(crate) async fn case_auth_needs_tls(run: Run<'_>, port: u16) -> CaseResult {
    let Run { ctx, t, .. } = run;
    // The client is allowed to try, so that what is checked is the server's answer (the
    // engine's own refusal of plaintext AUTH, the default, is tested in smtp-proto).
    let opts = SmtpClientOptions::new().allow_plaintext_auth();
    let mut conn = connect_with(ctx, t, port, TlsMode::None, opts).await?;
    match conn.client.login(&ctx.user, &ctx.pass).await {
        Ok(()) => Err(conn.explain("AUTH succeeded in plaintext on a server that requires TLS")),
        Err(SmtpError::Auth(AuthError::UnsupportedMechanism { .. })) => {
            let caps = conn.client.capabilities().join(", ");
            conn.quit().await?;
            Ok(format!("AUTH not offered before STARTTLS ({caps})"))
        }
        Err(ref e @ SmtpError::Auth(AuthError::Rejected { ref reply, .. }))
            if (500..600).contains(&code(reply)) =>
        {
            let note = format!("refused: {e}");
            conn.quit().await?;
            Ok(note)
        }
        Err(e) => Err(conn.fail("expected a refusal or AUTH not offered", &e)),
    }
}

pub(crate) async fn case_mail_needs_tls(run: Run<'_>, port: u16) -> CaseResult {
    let Run { ctx, t, label } = run;
    let mut conn = connect_with(ctx, t, port, TlsMode::None, SmtpClientOptions::new()).await?;
    let (_, msg) = new_plain_message(t, label);
    match conn
        .client
        .send_mail_bytes(FROM, &["rcpt@example.org"], &msg)
        .await
    {
        Ok(_) => {
            Err(conn.explain("a message was accepted in plaintext on a STARTTLS-required port"))
        }
        Err(SmtpError::Protocol(ProtocolError::UnexpectedCode { during, reply }))
            if during == SmtpOp::MailFrom && code(&reply) == 530 =>
        {
            conn.quit().await?;
            Ok(format!("MAIL refused: {reply}"))
        }
        Err(e) => Err(conn.fail("expected 530 to MAIL", &e)),
    }
}

/// The pool logging in with OAuth 2.0 (`MailerBuilder::oauth2`, XOAUTH2) against a server that
/// checks tokens: the source's first token is stale, so the server refuses it; the pool asks
/// the source once more, fresh, on a new connection, and every message goes out on that one.
/// The source is asked exactly twice for three messages, and each arrives once, authenticated.
pub(crate) async fn case_pool_oauth2(run: Run<'_>, port: u16, mode: TlsMode) -> CaseResult {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let Run { ctx, t, label } = run;
    use smtp_io_tokio::{Mailer, TokenMechanism};

    let asked = Arc::new(AtomicUsize::new(0));
    let (counted, fresh) = (asked.clone(), ctx.token.clone());
    let mailer = Mailer::builder(HOST, port, mode, EHLO)
        .tls_config(ctx.tls.clone())
        .max_connections(1)
        .oauth2(
            TokenMechanism::XOAuth2,
            ctx.user.clone(),
            move |refresh: bool| {
                counted.fetch_add(1, Ordering::SeqCst);
                let token = if refresh {
                    fresh.clone()
                } else {
                    "stale-token".to_owned()
                };
                async move { Ok::<_, std::io::Error>(token) }
            },
        )
        .build()
        .map_err(|e| e.to_string())?;
    let ids: Vec<String> = (0..3).map(|n| new_id(t, &format!("{label}-{n}"))).collect();
    let mut sent = Vec::new();
    for id in &ids {
        let body = message(
            id,
            "",
            b"Sent through a pool that logs in with a token.\r\n",
        );
        sent.push(mailer.send(FROM, ["rcpt@example.org"], &body).await);
    }
    let stats = mailer.stats();
    mailer.shutdown().await;
    for (id, result) in ids.iter().zip(&sent) {
        if let Err(e) = result {
            return Err(format!("{id}: {e}"));
        }
    }
    let asked = asked.load(Ordering::SeqCst);
    if asked != 2 {
        return Err(format!(
            "the token source was asked {asked} times, expected 2 (stale, then fresh)"
        ));
    }
    if stats.opened != 2 {
        return Err(format!(
            "{} connections opened, expected 2 (the refused one and the one that sent): {stats:?}",
            stats.opened
        ));
    }
    if t.spool.is_some() {
        let found = wait_captures(t, &ids).await?;
        for id in &ids {
            let got = &found[id];
            if got.auth_user.as_deref() != Some(ctx.user.as_str()) {
                return Err(format!(
                    "{id}: delivered with AUTH user {:?}",
                    got.auth_user
                ));
            }
        }
    }
    Ok(format!(
        "stale token refused, fresh one asked once; 3 messages on one connection ({} opened)",
        stats.opened
    ))
}
