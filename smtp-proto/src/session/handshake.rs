//! The handshake: the greeting, EHLO / LHLO (HELO when EHLO is not recognised), and STARTTLS
//! with its barrier (nothing may arrive between the `220` and the TLS handshake).

use super::{Event, Pending, Protocol, Session};
use crate::audit::AuditEvent;
use crate::capabilities::{Capabilities, Extension};
use crate::command::Command;
use crate::error::{ProtocolError, SmtpError};
use crate::reply::{Reply, ReplyCode};
use crate::state::SmtpOp;

impl Session {
    /// The transport finished the TLS handshake after [`Event::UpgradeTls`]. Capabilities are
    /// forgotten and EHLO is sent again.
    pub fn tls_established(&mut self) -> Result<(), SmtpError> {
        self.check_open(SmtpOp::TlsHandshake)?;
        if !self.standing.awaiting_upgrade() {
            return Err(self.wrong_state(SmtpOp::TlsHandshake));
        }
        self.standing.upgrade_done();
        self.tls = true;
        self.caps = Capabilities::default();
        self.parser.reset();
        self.config.audit.record(&AuditEvent::TlsUpgraded);
        self.send_hello();
        Ok(())
    }

    /// Send STARTTLS. Allowed only right after the EHLO handshake on a plaintext connection.
    ///
    /// Fails closed: if the server did not advertise STARTTLS the session is closed with
    /// [`ProtocolError::ExtensionUnavailable`], so nothing can continue in plaintext by accident;
    /// a refusal of the command closes it too.
    pub fn start_tls(&mut self) -> Result<(), SmtpError> {
        self.check_open(SmtpOp::StartTls)?;
        if !self.standing.is_fresh() || self.tls || !self.pending.is_empty() {
            return Err(self.wrong_state(SmtpOp::StartTls));
        }
        if !self.caps.has(Extension::StartTls) {
            let err: SmtpError = ProtocolError::ExtensionUnavailable {
                name: Extension::StartTls,
            }
            .into();
            self.fail_silently(err.clone());
            return Err(err);
        }
        self.standing.starttls_sent();
        self.queue(Command::StartTls, Pending::StartTls);
        Ok(())
    }

    pub(super) fn send_hello(&mut self) {
        self.standing.hello_sent();
        let domain = self.ehlo_domain.clone();
        match self.config.protocol {
            Protocol::Smtp => self.queue(Command::Ehlo(&domain), Pending::Hello(SmtpOp::Ehlo)),
            Protocol::Lmtp => self.queue(Command::Lhlo(&domain), Pending::Hello(SmtpOp::Lhlo)),
        }
    }

    pub(super) fn on_greeting(&mut self, reply: Reply) {
        if reply.code() == ReplyCode::SERVICE_READY {
            self.config.audit.record(&AuditEvent::Connected);
            self.events.push_back(Event::Greeting(reply));
            self.send_hello();
        } else {
            self.fail(
                ProtocolError::UnexpectedCode {
                    during: SmtpOp::Greeting,
                    reply,
                }
                .into(),
            );
        }
    }

    pub(super) fn on_hello(&mut self, op: SmtpOp, reply: Reply) {
        let code = reply.code().get();
        if reply.code().is_positive() {
            self.caps = if op == SmtpOp::Helo {
                Capabilities::default()
            } else {
                Capabilities::from_ehlo(&reply)
            };
            self.standing.hello_done();
            self.events.push_back(Event::HelloDone);
        } else if op == SmtpOp::Ehlo && (code == 500 || code == 502) {
            // RFC 5321 section 3.2: fall back to HELO only when EHLO is not recognised.
            let domain = self.ehlo_domain.clone();
            self.queue(Command::Helo(&domain), Pending::Hello(SmtpOp::Helo));
        } else {
            self.fail(ProtocolError::UnexpectedCode { during: op, reply }.into());
        }
    }

    /// The reply to STARTTLS: `220` asks the driver for the upgrade, anything else closes.
    pub(super) fn on_starttls(&mut self, reply: Reply) {
        if reply.code() == ReplyCode::SERVICE_READY {
            self.standing.upgrade_due();
            self.parser.reset();
            self.events.push_back(Event::UpgradeTls);
        } else {
            self.fail(
                ProtocolError::UnexpectedCode {
                    during: SmtpOp::StartTls,
                    reply,
                }
                .into(),
            );
        }
    }
}
