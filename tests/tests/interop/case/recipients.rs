//! Cases about recipient refusals: partial acceptance, `RequireAll`, the pool's pipelined DATA
//! and LMTP's reply per recipient.

use crate::*;

pub(crate) async fn case_partial_recipients(run: Run<'_>) -> CaseResult {
    let Run { ctx, t, label } = run;
    let opts = SmtpClientOptions::new().with_recipient_policy(RecipientPolicy::AcceptPartial);
    let mut conn = connect(ctx, t, opts).await?;
    let to = ["ok1@example.org", "reject1@example.org", "ok2@example.org"];
    let id = new_id(t, label);
    let body = plain_body(&id);
    let (outcome, mut want) = send(&mut conn, id, FROM, &to, "", &body).await?;
    let refused: Vec<_> = outcome.refused().collect();
    if refused.len() != 1
        || refused[0].recipient != "reject1@example.org"
        || code(&refused[0].reply) / 100 != 5
    {
        return Err(conn.explain(&format!(
            "expected reject1 refused with 5xx, got {:?}",
            outcome.recipients
        )));
    }
    let note = format!("refused: {}", refused[0].reply);
    conn.quit().await?;
    want.rcpts = vec!["ok1@example.org", "ok2@example.org"];
    verify(t, &[want]).await?;
    Ok(note)
}

pub(crate) async fn case_require_all_recipients(run: Run<'_>) -> CaseResult {
    let Run { ctx, t, label } = run;
    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let to = ["ok1@example.org", "reject1@example.org", "ok2@example.org"];
    let first = new_id(t, label);
    let msg = message(&first, "", &plain_body(&first));
    let result = conn.client.send_mail_bytes(FROM, &to, &msg).await;
    let note = second_of_three_refused(&conn, result)?;
    // The session stays usable, and the refused message must not be delivered.
    next_message_ok_first_absent(conn, t, label, &first).await?;
    Ok(format!("{note}; nothing delivered; next message ok"))
}

/// `result` must be `RecipientsRefused` for the second of three recipients only; returns a note
/// with the server's reply.
pub(crate) fn second_of_three_refused(
    conn: &Conn,
    result: Result<SendOutcome, SmtpError>,
) -> CaseResult {
    match result {
        Err(SmtpError::Protocol(ProtocolError::RecipientsRefused { refused, accepted }))
            if refused.len() == 1 && accepted == 2 && refused[0].index == 1 =>
        {
            Ok(format!("RecipientsRefused: {}", refused[0].reply))
        }
        Ok(o) => Err(conn.explain(&format!("sent despite a refused recipient: {o:?}"))),
        Err(e) => Err(conn.fail("expected RecipientsRefused (1 refused, 2 accepted)", &e)),
    }
}

/// After a refused message `first`: the next message on `conn` is delivered, and `first`, sent
/// before it, is not.
pub(crate) async fn next_message_ok_first_absent(
    mut conn: Conn,
    t: &Target,
    label: &str,
    first: &str,
) -> Result<(), String> {
    let id = new_id(t, label);
    let body = plain_body(&id);
    let (_, want) = send(&mut conn, id, FROM, &["ok1@example.org"], "", &body).await?;
    conn.quit().await?;
    verify(t, &[want]).await?;
    if !absent(t, first)? {
        return Err(format!("{first} was delivered to a partial list"));
    }
    Ok(())
}

/// The pool's `DataPipelining::Always`, with the body over DATA and over BDAT: the server
/// refuses one recipient of three. Over DATA with PIPELINING, DATA leaves with MAIL and the
/// RCPTs, the server answers `354`, and the client closes without a body byte; over BDAT the
/// body waits for the RCPT replies and is never sent. Either way nothing is delivered, and the
/// next message goes through (on a new connection where the first one closed).
pub(crate) async fn case_require_all_pipelined_data(run: Run<'_>) -> CaseResult {
    let Run { ctx, t, label } = run;
    let mut notes = Vec::new();
    for chunking in [ExtensionUse::WhenOffered, ExtensionUse::Never] {
        let opts = SmtpClientOptions::new()
            .with_data_pipelining(DataPipelining::Always)
            .with_chunking(chunking);
        let mut conn = connect(ctx, t, opts).await?;
        let caps = conn.client.session().capabilities();
        let pipelining = caps.has(Extension::Pipelining);
        let bdat = chunking == ExtensionUse::WhenOffered && caps.has(Extension::Chunking);
        let to = ["ok1@example.org", "reject1@example.org", "ok2@example.org"];
        let first = new_id(t, label);
        let msg = message(&first, "", &plain_body(&first));
        let result = conn.client.send_mail_bytes(FROM, &to, &msg).await;
        second_of_three_refused(&conn, result)?;
        let lines = conn.log.client_lines();
        let data_sent = lines.iter().any(|l| l == "DATA");
        let body_sent = lines
            .iter()
            .any(|l| l == "." || l.starts_with("BDAT") || l.starts_with("[message body"));
        let closed = conn.client.state() == SessionState::Closed;
        let expect_data = pipelining && !bdat;
        if data_sent != expect_data || body_sent || closed != expect_data {
            return Err(conn.explain(&format!(
                "PIPELINING {pipelining}, BDAT {bdat}: DATA sent {data_sent} (expected \
                 {expect_data}), body sent {body_sent}, session closed {closed}"
            )));
        }
        if closed {
            conn = connect(ctx, t, SmtpClientOptions::new()).await?;
        }
        next_message_ok_first_absent(conn, t, label, &first).await?;
        notes.push(match (bdat, closed) {
            (true, _) => "BDAT: body held back",
            (false, true) => "DATA pipelined, closed before the body",
            (false, false) => "no PIPELINING: DATA never sent",
        });
    }
    notes.dedup();
    Ok(format!(
        "{}; nothing delivered; next message ok",
        notes.join("; ")
    ))
}

pub(crate) async fn case_lmtp_per_recipient(run: Run<'_>, port: u16, capture: bool) -> CaseResult {
    let Run { ctx, t, label } = run;
    let opts = SmtpClientOptions::new()
        .with_protocol(Protocol::Lmtp)
        .with_recipient_policy(RecipientPolicy::AcceptPartial);
    let mut conn = connect_with(ctx, t, port, TlsMode::None, opts).await?;
    if !conn.log.sent("LHLO") {
        return Err(conn.explain("no LHLO sent"));
    }
    let to = if capture {
        vec![
            "ok1@example.org",
            "reject1@example.org",
            "lmtpfail1@example.org",
            "ok2@example.org",
        ]
    } else {
        vec!["ok1@example.org", "ok2@example.org"]
    };
    let id = new_id(t, label);
    let body = plain_body(&id);
    let (outcome, mut want) = send(&mut conn, id, FROM, &to, "", &body).await?;
    let status: Vec<(String, u16)> = outcome
        .recipients
        .iter()
        .map(|r| (r.recipient.clone(), code(&r.reply)))
        .collect();
    let ok = |r: &str| r.starts_with("ok");
    let bad = status.iter().any(|(r, c)| ok(r) != (*c / 100 == 2));
    if bad || status.len() != to.len() {
        return Err(conn.explain(&format!("per-recipient results {status:?}")));
    }
    conn.quit().await?;
    if capture {
        // The server saves the message once, with every recipient accepted at RCPT.
        want.rcpts = vec![
            "ok1@example.org",
            "lmtpfail1@example.org",
            "ok2@example.org",
        ];
        verify(t, &[want]).await?;
    }
    Ok(format!("{status:?}"))
}
