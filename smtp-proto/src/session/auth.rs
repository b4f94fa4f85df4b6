//! Authentication: choosing a mechanism, refusing to send credentials without TLS, and running
//! the SASL exchange (challenges, cancellation, SCRAM's proof of the server).

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use super::{Event, Pending, PlaintextAuth, Session};
use crate::audit::AuditEvent;
use crate::error::{
    ArgumentError, AuthError, Field, InvalidInputError, IoError, IoErrorKind, ProtocolError,
    SmtpError,
};
use crate::reply::{Reply, ReplyCode};
use crate::sasl::{AuthInput, AuthMechanism, ChannelBinding, ClientNonce, SaslExchange, SaslStep};
use crate::state::{SessionState, SmtpOp};

impl Session {
    /// Whether a login with `mechanism` (`None`: the best password mechanism, as
    /// [`login_auto_with_input`](Self::login_auto_with_input) picks it) can use an
    /// [`AuthInput`]'s nonce and channel binding: the mechanism is a SCRAM one, or it is chosen
    /// here and the server offers SCRAM. Always false without the `scram` feature. A driver asks
    /// it before drawing a nonce from its random source, so a login that will not use SCRAM
    /// never needs one.
    pub fn wants_auth_input(&self, mechanism: Option<AuthMechanism>) -> bool {
        cfg!(feature = "scram")
            && match mechanism {
                Some(m) => m.is_scram(),
                None => {
                    self.caps.supports_auth(AuthMechanism::ScramSha256)
                        || self.caps.supports_auth(AuthMechanism::ScramSha256Plus)
                }
            }
    }

    /// The [`AuthInput`] for a login with `mechanism` (`None`: auto-selection), drawn from the
    /// driver's sources only when SCRAM can use it ([`wants_auth_input`](Self::wants_auth_input)):
    /// a nonce from 18 bytes of `fill_random` (a cryptographically secure source; the bytes
    /// are wiped after), and on TLS the channel binding from `tls_exporter`. A source without
    /// randomness ([`IoErrorKind::Unsupported`](crate::IoErrorKind)) leaves SCRAM out of
    /// auto-selection; any other failure of it, or any failure for an explicit SCRAM
    /// mechanism, is [`SmtpError::Io`] during AUTH, before anything is sent.
    pub fn auth_input(
        &self,
        mechanism: Option<AuthMechanism>,
        fill_random: impl FnOnce(&mut [u8]) -> Result<(), IoError>,
        tls_exporter: impl FnOnce() -> Option<[u8; 32]>,
    ) -> Result<AuthInput, SmtpError> {
        let mut input = AuthInput::new();
        if !self.wants_auth_input(mechanism) {
            return Ok(input);
        }
        let mut bytes = [0u8; 18];
        let nonce = fill_random(&mut bytes).map(|()| ClientNonce::from_random(bytes));
        // Wiped whatever the source did, a partial fill included.
        zeroize::Zeroize::zeroize(&mut bytes);
        match nonce {
            Ok(nonce) => input = input.with_nonce(nonce),
            Err(e) if mechanism.is_none() && e.kind == IoErrorKind::Unsupported => {}
            Err(e) => {
                let message = format!("no random SCRAM nonce: {e}");
                return Err(SmtpError::io(SmtpOp::Auth, e.kind, message));
            }
        }
        if let Some(data) = self.is_tls().then(tls_exporter).flatten() {
            input = input.with_tls_exporter(data);
        }
        Ok(input)
    }

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
        self.auth = Some(AuthExchange::new(exchange));
        self.standing.auth_started();
        Ok(())
    }

    pub(super) fn check_login_state(&self) -> Result<(), SmtpError> {
        self.check_open(SmtpOp::Auth)?;
        if !self.standing.is_fresh() || !self.pending.is_empty() {
            return Err(self.wrong_state(SmtpOp::Auth));
        }
        Ok(())
    }

    pub(super) fn on_auth(&mut self, reply: Reply) {
        let code = reply.code();
        let Some(mut exchange) = self.auth.take() else {
            self.fail(
                ProtocolError::UnsolicitedReply {
                    state: SessionState::Authenticating,
                }
                .into(),
            );
            return;
        };
        if code == ReplyCode::AUTH_CHALLENGE && !exchange.cancelled() {
            let before = self.out.len();
            self.out_holds_secret = true;
            match exchange.challenge(&reply, &mut self.out) {
                Challenge::Answered => self.log_client(format_args!("[redacted]")),
                Challenge::Cancelled => {
                    // Cancelled (RFC 4954 section 4): the failure is reported once the server
                    // has answered the `*`, so the session stays in sync.
                    self.wipe_out(before);
                    self.out.extend_from_slice(b"*\r\n");
                    self.log_client(format_args!("*"));
                }
                Challenge::Impostor(mechanism, error) => {
                    // The server failed to prove it knows the password: it may be an impostor,
                    // so nothing more goes to it.
                    self.wipe_out(before);
                    self.auth_fatal(mechanism, error);
                    return;
                }
            }
            let n = self.out.len() - before;
            self.push_pending(Pending::Auth, n);
            self.auth = Some(exchange);
            return;
        }
        // The exchange is over: its credentials go with it.
        match exchange.finish(reply) {
            Verdict::Authenticated(mechanism) => {
                self.authenticated = Some(mechanism);
                self.standing.auth_ended(true);
                self.config
                    .audit
                    .record(&AuditEvent::Authenticated { mechanism });
                self.events.push_back(Event::Authenticated(mechanism));
            }
            Verdict::Impostor(mechanism, error) => self.auth_fatal(mechanism, error),
            Verdict::OutOfSync(reply) => self.fail(
                ProtocolError::OutOfSync {
                    during: SmtpOp::Auth,
                    reply,
                }
                .into(),
            ),
            Verdict::Failed { error, refused } => {
                self.standing.auth_ended(false);
                if let Some((mechanism, code)) = refused {
                    self.config.audit.record(&AuditEvent::AuthenticationFailed {
                        mechanism,
                        code: Some(code),
                    });
                }
                self.fail_open(error.into());
            }
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

/// One AUTH exchange in progress: the mechanism's state (it holds the credentials until the
/// exchange ends), the error a server explained in a challenge, and the failure to report once
/// the server has answered a cancellation. Its moves are its own: a challenge answered or
/// cancelled, then one verdict.
pub(super) struct AuthExchange {
    sasl: SaslExchange,
    /// The server's decoded error (XOAUTH2 / OAUTHBEARER), for the refusal that follows.
    detail: Option<String>,
    /// Why the client cancelled, reported when the server answers the `*`.
    failure: Option<AuthError>,
}

/// What answering a `334` challenge did.
pub(super) enum Challenge {
    /// The answer is queued.
    Answered,
    /// The challenge could not be answered: the caller cancels with `*`.
    Cancelled,
    /// A SCRAM server failed to prove it knows the password: close the session.
    Impostor(AuthMechanism, crate::error::ScramError),
}

/// How an exchange ended.
pub(super) enum Verdict {
    /// `235`, and a SCRAM server proved itself.
    Authenticated(AuthMechanism),
    /// A SCRAM server's final proof failed: close the session.
    Impostor(AuthMechanism, crate::error::ScramError),
    /// A `334` after the client's `*`: once the client cancelled, only a final reply may come
    /// (RFC 4954 section 4). The server still reads SASL responses, so the next command would
    /// be taken for one: close the session.
    OutOfSync(Reply),
    /// Refused, cancelled, or a challenge too many: the session stays open. `refused` is the
    /// server's code when the server refused the exchange itself (for the audit).
    Failed {
        error: AuthError,
        refused: Option<(AuthMechanism, ReplyCode)>,
    },
}

impl AuthExchange {
    fn new(sasl: SaslExchange) -> AuthExchange {
        AuthExchange {
            sasl,
            detail: None,
            failure: None,
        }
    }

    /// The mechanism being run.
    pub(super) fn mechanism(&self) -> AuthMechanism {
        self.sasl.mechanism()
    }

    /// Whether the client cancelled, and waits for the server's answer to the `*`.
    fn cancelled(&self) -> bool {
        self.failure.is_some()
    }

    /// Answer a `334` challenge into `out`.
    fn challenge(&mut self, reply: &Reply, out: &mut bytes::BytesMut) -> Challenge {
        match self.sasl.respond(reply, out) {
            Ok(SaslStep::Respond) => Challenge::Answered,
            Ok(SaslStep::RespondToError { detail }) => {
                self.detail = Some(detail);
                Challenge::Answered
            }
            Err(AuthError::Scram { mechanism, error }) if error.closes_session() => {
                Challenge::Impostor(mechanism, error)
            }
            Err(e) => {
                self.failure = Some(e);
                Challenge::Cancelled
            }
        }
    }

    /// The exchange ends with `reply` (anything but a challenge still to answer: a challenge
    /// comes here only after the client cancelled).
    fn finish(self, reply: Reply) -> Verdict {
        let mechanism = self.mechanism();
        let code = reply.code();
        if code == ReplyCode::AUTH_CHALLENGE {
            // Checked before the cancellation's failure, which would leave the session open.
            return Verdict::OutOfSync(reply);
        }
        if let Some(error) = self.failure {
            return Verdict::Failed {
                error,
                refused: None,
            };
        }
        if code == ReplyCode::AUTH_OK {
            return match self.sasl.check_success() {
                Err(AuthError::Scram { mechanism, error }) => Verdict::Impostor(mechanism, error),
                _ => Verdict::Authenticated(mechanism),
            };
        }
        Verdict::Failed {
            error: AuthError::Rejected {
                mechanism,
                reply,
                detail: self.detail,
            },
            refused: Some((mechanism, code)),
        }
    }
}
