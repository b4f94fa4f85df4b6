//! The fault cases: Postfix's smtp-sink told to misbehave in one way each, and the typed error
//! (and session state) each must produce.

use crate::*;

pub(crate) async fn run_fault(run: Run<'_>, port: u16, fault: Fault) -> CaseResult {
    let Run { ctx, t, label } = run;
    let mut conn = connect_with(ctx, t, port, TlsMode::None, SmtpClientOptions::new()).await?;
    let (_, msg) = new_plain_message(t, label);
    let to = ["rcpt1@example.org", "rcpt2@example.org"];
    let result = conn.client.send_mail_bytes(FROM, &to, &msg).await;
    let state = conn.client.state();
    let pipelining = conn
        .client
        .session()
        .capabilities()
        .has(Extension::Pipelining);
    match (fault, result) {
        (Fault::NoPipelining, Ok(o)) if !pipelining => {
            conn.quit().await?;
            Ok(format!("sent without PIPELINING: {}", o.reply))
        }
        (Fault::NoEhlo, Ok(o)) if conn.log.sent("HELO") => {
            conn.quit().await?;
            Ok(format!("EHLO refused, HELO used: {}", o.reply))
        }
        (
            Fault::RcptRefused,
            Err(SmtpError::Protocol(ProtocolError::RecipientsRefused { refused, accepted })),
        ) if accepted == 0
            && refused.len() == 2
            && refused.iter().all(|r| code(&r.reply) / 100 == 5) =>
        {
            let note = format!("RecipientsRefused: {}", refused[0].reply);
            conn.noop_then_quit(&note).await
        }
        (
            Fault::MailDeferred,
            Err(
                ref e @ SmtpError::Protocol(ProtocolError::UnexpectedCode {
                    during: SmtpOp::MailFrom,
                    ref reply,
                }),
            ),
        ) if code(reply) / 100 == 4 && e.is_transient() => {
            let note = format!("transient: {reply}");
            conn.quit().await?;
            Ok(note)
        }
        (
            Fault::DataHangup,
            Err(
                ref e @ (SmtpError::Protocol(ProtocolError::ConnectionClosed { .. })
                | SmtpError::Io { .. }),
            ),
        ) if state == SessionState::Closed => Ok(format!("{e}; session closed")),
        (
            Fault::Rcpt421,
            Err(ref e @ SmtpError::Protocol(ProtocolError::UnexpectedCode { ref reply, .. })),
        ) if code(reply) == 421 && state == SessionState::Closed => {
            Ok(format!("{e}; session closed"))
        }
        (
            Fault::Abort550,
            Err(
                ref e @ SmtpError::Protocol(ProtocolError::UnexpectedCode {
                    during: SmtpOp::DataEnd,
                    ref reply,
                }),
            ),
        ) if code(reply) == 550 => {
            // smtp-sink writes the 550 right after the 354. Read together with the 354 (the
            // usual case), it arrives while the body is going out and closes the session; read
            // alone after the client already sent the body and its dot, it is the reply to the
            // dot. Either way the message is refused with the server's 550 and not delivered.
            if state == SessionState::Closed {
                Ok(format!("{e}; session closed"))
            } else {
                Ok(format!("{e}; read after the dot (timing)"))
            }
        }
        // The final dot refused: permanently (5xx) or for now (4xx); the session stays usable.
        (
            Fault::Dot5xx | Fault::Dot4xx,
            Err(
                ref e @ SmtpError::Protocol(ProtocolError::UnexpectedCode {
                    during: SmtpOp::DataEnd,
                    ref reply,
                }),
            ),
        ) if {
            // The class the fault sends, and a transient error exactly for a 4xx.
            let class = if matches!(fault, Fault::Dot4xx) { 4 } else { 5 };
            code(reply) / 100 == class && e.is_transient() == (class == 4)
        } =>
        {
            let kind = if e.is_transient() {
                "transient"
            } else {
                "permanent"
            };
            conn.noop_then_quit(&format!("{kind}: {reply}")).await
        }
        (fault, Ok(o)) => Err(conn.explain(&format!("{fault:?}: unexpected success {o:?}"))),
        (fault, Err(e)) => Err(conn.fail(
            &format!("{fault:?}: unexpected error (state {state:?})"),
            &e,
        )),
    }
}
