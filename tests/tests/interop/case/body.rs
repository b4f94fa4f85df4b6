//! Cases about the body and its encodings: PIPELINING and CHUNKING on and off, 8BITMIME,
//! SMTPUTF8, dot-stuffing, bare line ends.

use crate::*;

pub(crate) async fn case_pipelining(run: Run<'_>, mode: ExtensionUse) -> CaseResult {
    let Run { ctx, t, label } = run;
    let opts = SmtpClientOptions::new().with_pipelining(mode);
    let mut conn = connect(ctx, t, opts).await?;
    let offered = offers(&conn, Extension::Pipelining);
    let to = [
        "rcpt1@example.org",
        "rcpt2@example.org",
        "rcpt3@example.org",
    ];
    let id = new_id(t, label);
    let body = plain_body(&id);
    let (_, want) = send(&mut conn, id, FROM, &to, "", &body).await?;
    conn.quit().await?;
    verify(t, &[want]).await?;
    Ok(format!(
        "3 recipients delivered; PIPELINING {}",
        if offered { "offered" } else { "not offered" }
    ))
}

pub(crate) async fn case_chunking(run: Run<'_>, mode: ExtensionUse) -> CaseResult {
    let Run { ctx, t, label } = run;
    let opts = SmtpClientOptions::new().with_chunking(mode);
    let mut conn = connect(ctx, t, opts).await?;
    let offered = offers(&conn, Extension::Chunking);
    let id = new_id(t, label);
    // Dots and a big body: BDAT must not stuff, and several chunks may be needed.
    let mut body = dot_body();
    for i in 0..2000 {
        body.extend_from_slice(
            format!("line {i:05} of a long body for BDAT chunks\r\n").as_bytes(),
        );
    }
    let (_, want) = send(&mut conn, id, FROM, &["rcpt@example.org"], "", &body).await?;
    let bdat = conn.log.sent("BDAT");
    let data = conn.log.sent("DATA");
    let log = conn.log.clone();
    conn.quit().await?;
    let want_bdat = offered && mode == ExtensionUse::WhenOffered;
    if bdat != want_bdat || data == want_bdat {
        return Err(format!(
            "CHUNKING {} and {mode:?}: BDAT used = {bdat}, DATA used = {data}\n    transcript:\n{}",
            if offered { "offered" } else { "not offered" },
            log.tail(12)
        ));
    }
    verify(t, &[want]).await?;
    Ok(format!(
        "{} bytes via {}",
        normalize(&body).len(),
        if bdat { "BDAT" } else { "DATA" }
    ))
}

pub(crate) async fn case_eight_bit(run: Run<'_>) -> CaseResult {
    let Run { ctx, t, label } = run;
    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let offered = offers(&conn, Extension::EightBitMime);
    let id = new_id(t, label);
    let mut body = "Grüße aus Köln — 日本語のテキスト — emoji 🎉\r\n"
        .as_bytes()
        .to_vec();
    body.extend_from_slice(b"Latin-1 byte: caf\xe9, and \xff\xfe raw\r\n");
    let headers = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
                       Content-Transfer-Encoding: 8bit\r\n";
    let (_, want) = send(&mut conn, id, FROM, &["rcpt@example.org"], headers, &body).await?;
    let declared = conn.log.sent_with("MAIL FROM", &["BODY=8BITMIME"]);
    let log = conn.log.clone();
    conn.quit().await?;
    if declared != offered {
        return Err(format!(
            "8BITMIME offered = {offered} but BODY=8BITMIME declared = {declared}\n    transcript:\n{}",
            log.tail(8)
        ));
    }
    verify(t, &[want]).await?;
    Ok(format!(
        "BODY=8BITMIME {}",
        if declared { "declared" } else { "not offered" }
    ))
}

pub(crate) async fn case_utf8_address(run: Run<'_>) -> CaseResult {
    let Run { ctx, t, label } = run;
    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let from = "josé.ñandú@example.com";
    let to = ["用户@example.org", "rcpt@example.org"];
    let id = new_id(t, label);
    let headers = "X-Utf8-Subject: Grüße, 世界\r\n";
    let body = "Ünïcödé body ✓\r\n".as_bytes();
    let (_, want) = send(&mut conn, id, from, &to, headers, body).await?;
    let declared = conn.log.sent_with("MAIL FROM", &["SMTPUTF8"]);
    let log = conn.log.clone();
    conn.quit().await?;
    if !declared {
        return Err(format!("MAIL without SMTPUTF8:\n{}", log.tail(8)));
    }
    verify(t, &[want]).await?;
    Ok("UTF-8 sender and recipient delivered with SMTPUTF8".into())
}

pub(crate) async fn case_utf8_refused_locally(run: Run<'_>) -> CaseResult {
    let Run { ctx, t, label } = run;
    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let (_, msg) = new_plain_message(t, label);
    match conn
        .client
        .send_mail_bytes(FROM, &["用户@example.org"], &msg)
        .await
    {
        Err(SmtpError::Protocol(ProtocolError::ExtensionUnavailable {
            name: Extension::SmtpUtf8,
        })) => {}
        Ok(_) => {
            return Err(conn.explain("a UTF-8 address was sent to a server without SMTPUTF8"));
        }
        Err(e) => return Err(conn.fail("expected ExtensionUnavailable SMTPUTF8", &e)),
    }
    // Nothing was sent; the session is still usable.
    nothing_sent_then_one_more(conn, t, label, "MAIL was sent before the local refusal").await?;
    Ok("SMTPUTF8 unavailable, refused before any command; next message ok".into())
}

pub(crate) async fn case_dot_lines(run: Run<'_>) -> CaseResult {
    let Run { ctx, t, label } = run;
    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let id = new_id(t, label);
    let body = dot_body();
    let (_, want) = send(&mut conn, id, FROM, &["rcpt@example.org"], "", &body).await?;
    conn.quit().await?;
    verify(t, &[want]).await?;
    Ok("lines of '.', '..', '.x' delivered un-stuffed".into())
}

pub(crate) async fn case_bare_lf(run: Run<'_>) -> CaseResult {
    let Run { ctx, t, label } = run;
    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;
    let id = new_id(t, label);
    let body = b"bare LF here\nthen CRLF\r\nbare CR here\rand LF LF\n\n.dot after LF\n\
                     ..two dots\n.\nCR LF LF\r\n\nno final newline"
        .to_vec();
    let (outcome, want) = send(&mut conn, id, FROM, &["rcpt@example.org"], "", &body).await?;
    conn.quit().await?;
    let normalized = normalize(&want.sent).len() as u64;
    if outcome.size != normalized {
        return Err(format!(
            "SendOutcome.size = {}, expected the normalised size {normalized}",
            outcome.size
        ));
    }
    verify(t, &[want]).await?;
    Ok("bare LF / CR delivered as CRLF".into())
}

/// A body whose lines start with dots in every way that matters for dot-stuffing.
pub(crate) fn dot_body() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b".\r\n..\r\n...\r\n. a dot and a space\r\n.hidden\r\nnormal line\r\n");
    b.extend_from_slice(b"\r\n.\r\n\r\n.\r\n.\r\n..\r\n");
    for i in 0..100 {
        b.extend_from_slice(format!(".line {i} starts with a dot\r\n").as_bytes());
    }
    b.extend_from_slice(b"last line.\r\n.");
    b
}
