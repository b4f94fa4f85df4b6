//! Authentication: choosing a mechanism, refusing to send credentials without TLS, and running
//! the SASL exchange (challenges, cancellation, SCRAM's proof of the server).

use super::{Event, Pending, PlaintextAuth, Session};
use crate::audit::AuditEvent;
use crate::error::{ArgumentError, AuthError, Field, InvalidInputError, ProtocolError, SmtpError};
use crate::reply::{Reply, ReplyCode};
use crate::sasl::{AuthInput, AuthMechanism, ChannelBinding, SaslExchange, SaslStep};
use crate::state::{SessionState, SmtpOp};

impl Session {
    /// Authenticate with PLAIN, or LOGIN when PLAIN is not offered. Never picks XOAUTH2 or
    /// OAUTHBEARER: a token is not a password. Never picks SCRAM either, which needs a nonce: see
    /// [`login_auto_with_input`](Self::login_auto_with_input).
    pub fn login_auto(&mut self, user: &str, password: &str) -> Result<(), SmtpError> {
        self.login_auto_with_input(user, password, AuthInput::new())
    }

    /// Authenticate with the best password mechanism the server offers and `input` allows, in
    /// this order:
    ///
    /// 1. SCRAM-SHA-256-PLUS, when the connection is TLS and `input` has a nonce and the
    ///    `tls-exporter` data;
    /// 2. SCRAM-SHA-256, when `input` has a nonce;
    /// 3. PLAIN;
    /// 4. LOGIN.
    ///
    /// SCRAM is skipped without the `scram` feature. Never picks XOAUTH2 or OAUTHBEARER. None
    /// usable is [`AuthError::UnsupportedMechanism`] with `mechanism: None`, and nothing is sent.
    pub fn login_auto_with_input(
        &mut self,
        user: &str,
        password: &str,
        input: AuthInput,
    ) -> Result<(), SmtpError> {
        self.check_login_state()?;
        let scram = cfg!(feature = "scram") && input.nonce().is_some();
        let plus = scram && self.tls && input.tls_exporter().is_some();
        let mechanism = [
            (AuthMechanism::ScramSha256Plus, plus),
            (AuthMechanism::ScramSha256, scram),
            (AuthMechanism::Plain, true),
            (AuthMechanism::Login, true),
        ]
        .into_iter()
        .find(|(m, usable)| *usable && self.caps.supports_auth(*m))
        .map(|(m, _)| m)
        .ok_or(AuthError::UnsupportedMechanism { mechanism: None })?;
        self.login_with_input(mechanism, user, password, input)
    }

    /// Authenticate with `mechanism`. Allowed only right after the EHLO handshake (and again after
    /// a refused attempt); a second login after success is [`InvalidInputError::WrongState`].
    /// SCRAM needs a nonce: use [`login_with_input`](Self::login_with_input) for it.
    pub fn login(
        &mut self,
        mechanism: AuthMechanism,
        user: &str,
        secret: &str,
    ) -> Result<(), SmtpError> {
        self.login_with_input(mechanism, user, secret, AuthInput::new())
    }

    /// Authenticate with `mechanism`, with what the driver supplies for SCRAM in `input`.
    ///
    /// Checks, in order, each failing with nothing queued: the session state; the mechanism's
    /// cargo feature ([`InvalidInputError::FeatureDisabled`]); that the connection is encrypted
    /// or [`SessionConfig::plaintext_auth`](super::SessionConfig::plaintext_auth) allows AUTH without TLS
    /// ([`AuthError::PlaintextRefused`]); the arguments, and for SCRAM a
    /// nonce in `input` ([`InvalidInputError::Argument`] with [`Field::Nonce`]); that the server
    /// offers the mechanism ([`AuthError::UnsupportedMechanism`]); for SCRAM-SHA-256-PLUS, a TLS
    /// connection and `tls-exporter` data in `input` ([`AuthError::ChannelBindingUnavailable`]).
    ///
    /// For SCRAM-SHA-256 the GS2 flag is `y` when `input` has binding data on TLS but the server
    /// did not offer -PLUS (RFC 5802 section 6 downgrade protection), `n` otherwise.
    ///
    /// A SCRAM server that replies success before proving it knows the password, or proves it
    /// wrongly, closes the session with [`AuthError::Scram`].
    pub fn login_with_input(
        &mut self,
        mechanism: AuthMechanism,
        user: &str,
        secret: &str,
        input: AuthInput,
    ) -> Result<(), SmtpError> {
        self.check_login_state()?;
        mechanism.check_compiled_in()?;
        if !self.tls && self.config.plaintext_auth == PlaintextAuth::Refuse {
            return Err(AuthError::PlaintextRefused { mechanism }.into());
        }
        let mut exchange = if mechanism.is_scram() {
            let nonce = input.nonce().ok_or(InvalidInputError::argument(
                Field::Nonce,
                ArgumentError::Empty,
            ))?;
            let exporter = input.tls_exporter().filter(|_| self.tls).copied();
            let binding = match (mechanism, exporter) {
                (AuthMechanism::ScramSha256Plus, Some(data)) => ChannelBinding::TlsExporter(data),
                (AuthMechanism::ScramSha256Plus, None) => ChannelBinding::Unsupported,
                (_, Some(_)) if !self.caps.supports_auth(AuthMechanism::ScramSha256Plus) => {
                    ChannelBinding::NotOffered
                }
                _ => ChannelBinding::Unsupported,
            };
            let exchange = SaslExchange::new_scram(
                user,
                secret,
                nonce,
                binding,
                self.config.max_scram_iterations,
            )?;
            if exchange.mechanism() != mechanism && self.caps.supports_auth(mechanism) {
                return Err(AuthError::ChannelBindingUnavailable { mechanism }.into());
            }
            exchange
        } else {
            SaslExchange::new(mechanism, user, secret)?
        };
        if !self.caps.supports_auth(mechanism) {
            return Err(AuthError::UnsupportedMechanism {
                mechanism: Some(mechanism),
            }
            .into());
        }
        let before = self.out.len();
        exchange.write_initial(&mut self.out);
        self.out_holds_secret = true;
        let initial_response = self.out.len() - before > mechanism.name().len() + 7;
        self.log_client(format_args!(
            "AUTH {mechanism}{}",
            if initial_response { " [redacted]" } else { "" }
        ));
        self.push_pending(Pending::Auth, self.out.len() - before);
        self.sasl = Some(exchange);
        self.sasl_detail = None;
        self.sasl_failure = None;
        self.state = SessionState::Authenticating;
        Ok(())
    }

    pub(super) fn check_login_state(&self) -> Result<(), SmtpError> {
        self.check_open(SmtpOp::Auth)?;
        if self.state != SessionState::Authentication || !self.pending.is_empty() {
            return Err(self.wrong_state(SmtpOp::Auth));
        }
        Ok(())
    }

    pub(super) fn on_auth(&mut self, reply: Reply) {
        let code = reply.code();
        let mechanism = match &self.sasl {
            Some(s) => s.mechanism(),
            None => {
                self.fail(
                    ProtocolError::UnsolicitedReply {
                        state: SessionState::Authenticating,
                    }
                    .into(),
                );
                return;
            }
        };
        if code == ReplyCode::AUTH_CHALLENGE && self.sasl_failure.is_none() {
            let before = self.out.len();
            self.out_holds_secret = true;
            let step = self.sasl.as_mut().map(|s| s.respond(&reply, &mut self.out));
            match step {
                Some(Ok(SaslStep::Respond)) => {}
                Some(Ok(SaslStep::RespondToError { detail })) => self.sasl_detail = Some(detail),
                Some(Err(AuthError::Scram { mechanism, error })) if error.closes_session() => {
                    // The server failed to prove it knows the password: it may be an impostor,
                    // so nothing more goes to it.
                    self.wipe_out(before);
                    self.auth_fatal(mechanism, error);
                    return;
                }
                Some(Err(e)) => {
                    // Cancel the exchange (RFC 4954 section 4) and report once the server has
                    // answered the cancellation, so the session stays in sync.
                    self.wipe_out(before);
                    self.out.extend_from_slice(b"*\r\n");
                    self.sasl_failure = Some(e);
                }
                None => {}
            }
            let n = self.out.len() - before;
            if self.sasl_failure.is_some() {
                self.log_client(format_args!("*"));
            } else {
                self.log_client(format_args!("[redacted]"));
            }
            self.push_pending(Pending::Auth, n);
            return;
        }
        // The exchange is over: drop the credentials now.
        let exchange = self.sasl.take();
        let detail = self.sasl_detail.take();
        if code == ReplyCode::AUTH_OK && self.sasl_failure.is_none() {
            if let Some(Err(AuthError::Scram { mechanism, error })) =
                exchange.as_ref().map(SaslExchange::check_success)
            {
                drop(exchange);
                self.auth_fatal(mechanism, error);
                return;
            }
        }
        drop(exchange);
        if let Some(err) = self.sasl_failure.take() {
            self.state = SessionState::Authentication;
            self.fail_open(err.into());
            return;
        }
        if code == ReplyCode::AUTH_OK {
            self.authenticated = Some(mechanism);
            self.state = SessionState::Ready;
            self.config
                .audit
                .record(&AuditEvent::Authenticated { mechanism });
            self.events.push_back(Event::Authenticated(mechanism));
        } else if code == ReplyCode::AUTH_CHALLENGE {
            // A challenge after we cancelled or answered an error challenge.
            self.state = SessionState::Authentication;
            self.fail_open(AuthError::TooManyChallenges { mechanism }.into());
        } else {
            self.state = SessionState::Authentication;
            self.config.audit.record(&AuditEvent::AuthenticationFailed {
                mechanism,
                code: Some(code),
            });
            self.fail_open(
                AuthError::Rejected {
                    mechanism,
                    reply,
                    detail,
                }
                .into(),
            );
        }
    }

    /// A SCRAM server that did not prove its identity: record it and close the session.
    pub(super) fn auth_fatal(&mut self, mechanism: AuthMechanism, error: crate::error::ScramError) {
        self.config.audit.record(&AuditEvent::AuthenticationFailed {
            mechanism,
            code: None,
        });
        self.fail(AuthError::Scram { mechanism, error }.into());
    }
}
