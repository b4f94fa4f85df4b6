//! Cases about whole messages: SIZE, many messages on one connection, `send_batch`, a built
//! message, DSN parameters.

use crate::*;

pub(crate) async fn case_oversize(run: Run<'_>) -> CaseResult {
    let Run { ctx, t, label } = run;
    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let Some(limit) = conn.client.session().capabilities().size_limit() else {
        return Err(conn.explain("the server advertises no SIZE limit"));
    };
    let id = new_id(t, label);
    let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    let body: Vec<u8> = line
        .iter()
        .copied()
        .cycle()
        .take(limit as usize + 10 * line.len())
        .collect();
    let msg = message(&id, "", &body);
    let size = normalize(&msg).len() as u64;
    match conn
        .client
        .send_mail_bytes(FROM, &["rcpt@example.org"], &msg)
        .await
    {
        Err(SmtpError::Protocol(ProtocolError::MessageTooLarge { size: s, limit: l }))
            if s == size && l == limit => {}
        Ok(_) => return Err(conn.explain("an over-size message was sent")),
        Err(e) => {
            return Err(conn.fail(
                &format!("expected MessageTooLarge {{ size: {size}, limit: {limit} }}"),
                &e,
            ));
        }
    }
    nothing_sent_then_one_more(conn, t, label, "MAIL was sent for an over-size message").await?;
    Ok(format!(
        "{size} > SIZE {limit}: refused before MAIL; next message ok"
    ))
}

pub(crate) async fn case_fifty(run: Run<'_>) -> CaseResult {
    let Run { ctx, t, label } = run;
    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let started = Instant::now();
    let mut wants = Vec::new();
    for (id, body) in fifty_bodies(t, label) {
        let (_, want) = send(&mut conn, id, FROM, &["rcpt@example.org"], "", &body).await?;
        wants.push(want);
    }
    let elapsed = started.elapsed();
    conn.quit().await?;
    verify(t, &wants).await?;
    Ok(format!(
        "50 sent in {:.0} ms, all delivered intact",
        elapsed.as_secs_f64() * 1000.0
    ))
}

/// A message built with mail-builder, sent with `send_message`: the envelope comes from From,
/// To, Cc and Bcc; every recipient gets it; no Bcc header is delivered; the parts arrive.
pub(crate) async fn case_mail_builder(run: Run<'_>) -> CaseResult {
    use smtp_io_tokio::mail_builder::MessageBuilder;
    use smtp_io_tokio::mail_builder::headers::raw::Raw;
    use smtp_io_tokio::message::SendMessage;
    let Run { ctx, t, label } = run;
    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let id = new_id(t, label);
    let message = MessageBuilder::new()
        .from(("Interop Sender", FROM))
        .to(("Recipient", "rcpt@example.org"))
        .cc(("Copy", "cc@example.org"))
        .bcc("hidden@example.org")
        .subject(format!("interop {id}"))
        .header("X-Interop-Id", Raw::new(format!("<{id}>")))
        .text_body("The text part.\r\n.A line with a leading dot.")
        .html_body("<p>The HTML part.</p>")
        .attachment("application/pdf", "report.pdf", &b"%PDF-1.4 interop"[..]);
    let outcome = conn
        .client
        .send_message(&message)
        .await
        .map_err(|e| conn.fail("send_message", &e))?;
    conn.quit().await?;
    if outcome.recipients.len() != 3 {
        return Err(format!(
            "{id}: {} recipient results, expected 3",
            outcome.recipients.len()
        ));
    }
    if t.spool.is_none() {
        return Ok(format!("final reply {}", outcome.reply));
    }
    let found = wait_captures(t, std::slice::from_ref(&id)).await?;
    let got = &found[&id];
    let data = extract(t.capture, &got.data)?;
    let text = String::from_utf8_lossy(&data);
    let rcpts: BTreeSet<&str> = got.rcpts.iter().map(String::as_str).collect();
    let want: BTreeSet<&str> = ["rcpt@example.org", "cc@example.org", "hidden@example.org"].into();
    if got.from != FROM || rcpts != want {
        return Err(format!("{id}: envelope {} -> {rcpts:?}", got.from));
    }
    if text
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("bcc:"))
    {
        return Err(format!("{id}: a Bcc header was delivered"));
    }
    for part in [
        "text/plain",
        "text/html",
        "report.pdf",
        "multipart/mixed",
        "Cc: ",
    ] {
        if !text.contains(part) {
            return Err(format!("{id}: {part:?} missing from the delivered message"));
        }
    }
    Ok(format!(
        "3 recipients, no Bcc header, parts delivered; final reply {}",
        outcome.reply
    ))
}

pub(crate) async fn case_batch(run: Run<'_>) -> CaseResult {
    let Run { ctx, t, label } = run;
    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let started = Instant::now();
    let bad = ["broken\r\nRSET@example.org"];
    let mut ids = Vec::new();
    let mut bodies = Vec::new();
    for (id, body) in fifty_bodies(t, label) {
        bodies.push(message(&id, "", &body));
        ids.push(id);
    }
    let to = ["rcpt@example.org"];
    let batch: Vec<OutgoingMessage<'_>> = bodies
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if i == 25 {
                OutgoingMessage::new(FROM, &bad, m)
            } else {
                OutgoingMessage::new(FROM, &to, m)
            }
        })
        .collect();
    let results = conn.client.send_batch(&batch).await;
    let elapsed = started.elapsed();
    let mut wants = Vec::new();
    for (i, (result, (id, sent))) in results
        .into_iter()
        .zip(ids.into_iter().zip(bodies.iter()))
        .enumerate()
    {
        match (i, result) {
            (25, Err(SmtpError::InvalidInput(_))) => {}
            (25, other) => return Err(format!("message 25 (bad recipient): {other:?}")),
            (_, Ok(_)) => wants.push(Expect::new(id, sent.clone(), FROM, &to)),
            (_, Err(e)) => return Err(conn.fail(&format!("batch message {i}"), &e)),
        }
    }
    conn.quit().await?;
    verify(t, &wants).await?;
    Ok(format!(
        "49 sent in {:.0} ms by send_batch, the locally refused one skipped, all delivered intact",
        elapsed.as_secs_f64() * 1000.0
    ))
}

pub(crate) async fn case_dsn(run: Run<'_>) -> CaseResult {
    let Run { ctx, t, label } = run;
    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let offered = offers(&conn, Extension::Dsn);
    let (id, msg) = new_plain_message(t, label);
    let envid = EnvelopeId::new(&format!("env.{}", SEQ.fetch_add(1, Ordering::Relaxed)))
        .map_err(|e| format!("EnvelopeId: {e}"))?;
    let mut options = MessageOptions::default();
    options.dsn_return = Some(DsnReturn::Headers);
    options.envelope_id = Some(envid);
    options.notify = Some(Notify::On {
        success: false,
        failure: true,
        delay: true,
    });
    options.original_recipients = vec![
        OriginalRecipient::new("orig+list@example.org")
            .map_err(|e| format!("OriginalRecipient: {e}"))?,
    ];
    let to = ["rcpt@example.org"];
    let result = conn
        .client
        .send_mail_bytes_with(FROM, &to, &msg, &options)
        .await;
    match result {
        Ok(_) if offered => {
            let mail = conn.log.sent_with("MAIL FROM", &["RET=HDRS", "ENVID="]);
            let rcpt = conn.log.sent_with(
                "RCPT TO",
                &[
                    "NOTIFY=FAILURE,DELAY",
                    "ORCPT=rfc822;orig+2Blist@example.org",
                ],
            );
            if !(mail && rcpt) {
                return Err(conn.explain("DSN parameters missing from MAIL / RCPT"));
            }
            conn.quit().await?;
            verify(t, &[Expect::new(id, msg, FROM, &to)]).await?;
            Ok("RET=HDRS ENVID= NOTIFY=FAILURE,DELAY ORCPT= accepted and delivered".into())
        }
        Err(SmtpError::Protocol(ProtocolError::ExtensionUnavailable {
            name: Extension::Dsn,
        })) if !offered && !conn.log.sent("MAIL") => {
            conn.quit().await?;
            Ok("DSN not offered: refused locally before MAIL".into())
        }
        Ok(_) => Err(conn.explain("DSN parameters sent to a server without DSN")),
        Err(e) => Err(conn.fail("DSN message", &e)),
    }
}
