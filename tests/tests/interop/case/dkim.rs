//! DKIM (issue 24): messages signed on the tokio send paths still verify, with Python's dkimpy
//! (a verifier nobody here wrote), from the copy the real server delivered.

use smtp_io_tokio::Mailer;
use smtp_io_tokio::dkim::{DkimKey, DkimSigner, sign_file};

use crate::*;

use super::verifier::{self, DOMAIN, tampered};

const SELECTOR: &str = "sel2026";
/// smtp-dkim's test key (shared, not copied).
const KEY: &str = "rsa2048-pkcs8.pem";

fn signer() -> Result<DkimSigner, String> {
    let pem =
        std::fs::read_to_string(verifier::key_path(KEY)).map_err(|e| format!("{KEY}: {e}"))?;
    let key = DkimKey::from_pem(&pem).map_err(|e| format!("{KEY}: {e}"))?;
    DkimSigner::new(key, DOMAIN, SELECTOR).map_err(|e| e.to_string())
}

/// dkimpy's verdict on each message, through smtp-dkim's `tests/dkim_verify.py`.
fn dkimpy(label: &str, messages: &[Vec<u8>]) -> Result<Vec<bool>, String> {
    verifier::try_verify(&verifier::key_path(KEY), SELECTOR, label, messages).map(|v| v.each)
}

/// A body with what a signature must survive: dot lines, bare LF and CR, 8-bit text, trailing
/// space, and (for the streamed copy) `lines` more lines.
fn dkim_body(lines: usize) -> Vec<u8> {
    let mut body = "Gr\u{fc}\u{df}e, caf\u{e9}.\r\n.one dot\r\n..two dots\r\n.\r\nbare LF\nbare CR\rtrailing space   \r\n"
        .as_bytes()
        .to_vec();
    for i in 0..lines {
        let line = if i % 7 == 0 {
            format!(".line {i} with a leading dot\n")
        } else {
            format!("line {i:06} of a streamed signed body\r\n")
        };
        body.extend_from_slice(line.as_bytes());
    }
    body
}

const DKIM_HEADERS: &str = "Date: Mon, 7 Dec 2026 03:00:00 +0000\r\nMIME-Version: 1.0\r\n\
                            Content-Type: text/plain; charset=utf-8\r\n\
                            Content-Transfer-Encoding: 8bit\r\n";

/// Three signed messages: in memory through a connected client (`prepend_now`), streamed
/// from a file through the same client (`dkim::sign_file`), and through a pool that signs
/// (`MailerBuilder::dkim`). Each delivered copy (trace header removed, line ends as sent)
/// must verify; the first with one byte changed must not.
pub(crate) async fn case_dkim(run: Run<'_>) -> CaseResult {
    let Run { ctx, t, label } = run;
    let signer = signer()?;
    let to = ["rcpt@example.org"];
    let mut conn = connect(ctx, t, SmtpClientOptions::new()).await?;

    let memory_id = new_id(t, &format!("{label}-memory"));
    let signed = signer
        .prepend_now(&message(&memory_id, DKIM_HEADERS, &dkim_body(0)))
        .map_err(|e| format!("signing: {e}"))?;
    conn.client
        .send_mail_bytes(FROM, &to, &signed)
        .await
        .map_err(|e| conn.fail(&format!("sending {memory_id}"), &e))?;

    let file_id = new_id(t, &format!("{label}-file"));
    let path = std::env::temp_dir().join(format!("{file_id}.eml"));
    std::fs::write(&path, message(&file_id, DKIM_HEADERS, &dkim_body(20_000)))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut body = sign_file(&signer, &path)
        .await
        .map_err(|e| format!("sign_file: {e}"))?;
    let sent = conn.client.send_mail_stream(FROM, &to, &mut body).await;
    let _ = std::fs::remove_file(&path);
    sent.map_err(|e| conn.fail(&format!("sending {file_id}"), &e))?;
    conn.quit().await?;

    let pool_id = new_id(t, &format!("{label}-pool"));
    let mailer = Mailer::builder(HOST, t.port, t.mode, EHLO)
        .tls_config(ctx.tls.clone())
        .dkim(signer.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let sent = mailer
        .send(FROM, to, &message(&pool_id, DKIM_HEADERS, &dkim_body(0)))
        .await;
    mailer.shutdown().await;
    sent.map_err(|e| format!("sending {pool_id} through the pool: {e}"))?;

    if t.spool.is_none() {
        return Ok("3 signed messages accepted (no capture folder to verify)".into());
    }
    let ids = [memory_id, file_id, pool_id];
    let found = wait_captures(t, &ids).await?;
    let mut delivered = Vec::new();
    for id in &ids {
        // The message as received: the server's trace header removed, CRLF line ends (a
        // capture with LF line ends had CRLF on the wire: the client sends no bare LF).
        let copy = normalize(&extract(t.capture, &found[id].data)?);
        if !copy.starts_with(b"DKIM-Signature: ") {
            return Err(format!(
                "{id}: the delivered copy does not start with the signature"
            ));
        }
        delivered.push(copy);
    }
    delivered.push(tampered(&delivered[0]));
    let verdicts = dkimpy(&t.name, &delivered)?;
    if verdicts != [true, true, true, false] {
        return Err(format!(
            "dkimpy on the delivered copies (memory, file, pool, tampered): {verdicts:?}, \
             expected [true, true, true, false]"
        ));
    }
    Ok("in memory, streamed (sign_file) and pooled: delivered copies verify (dkimpy), a changed byte fails".into())
}
