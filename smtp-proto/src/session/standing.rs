//! Where a session stands, in one value: its [`SessionState`], the state a RSET or NOOP returns
//! to, whether the driver's TLS upgrade is awaited, whether the next MAIL must be preceded by
//! RSET, and the error that closed it. The session moves it only through the transitions named
//! here, and [`Standing::enter`] holds the one table of the moves that may happen: a move
//! outside it is an engine bug, caught by the tests (a debug assertion).

use crate::error::SmtpError;
use crate::state::SessionState;

/// Where a session stands (see the module docs).
#[derive(Debug)]
pub(super) struct Standing {
    state: SessionState,
    /// What a RSET or NOOP returns to once answered.
    idle: SessionState,
    /// STARTTLS was accepted: the driver's TLS upgrade comes next, and no byte may arrive
    /// before it.
    awaiting_upgrade: bool,
    /// The last transaction failed while the server still holds it open: RSET before the next
    /// MAIL.
    needs_rset: bool,
    /// The error that closed the session (none after a clean QUIT).
    fatal: Option<SmtpError>,
}

impl Standing {
    /// A fresh connection, waiting for the greeting.
    pub(super) fn new() -> Standing {
        Standing {
            state: SessionState::Greeting,
            idle: SessionState::Authentication,
            awaiting_upgrade: false,
            needs_rset: false,
            fatal: None,
        }
    }

    // ------------------------------------------------------------ questions

    pub(super) fn state(&self) -> SessionState {
        self.state
    }

    pub(super) fn is_closed(&self) -> bool {
        self.state == SessionState::Closed
    }

    /// Right after the handshake (or a refused AUTH): `login` and `starttls` are allowed.
    pub(super) fn is_fresh(&self) -> bool {
        self.state == SessionState::Authentication
    }

    /// Between commands: a RSET, NOOP or MAIL may start (given nothing is in flight).
    pub(super) fn is_idle(&self) -> bool {
        matches!(
            self.state,
            SessionState::Authentication | SessionState::Ready
        )
    }

    pub(super) fn awaiting_upgrade(&self) -> bool {
        self.awaiting_upgrade
    }

    pub(super) fn needs_rset(&self) -> bool {
        self.needs_rset
    }

    pub(super) fn fatal(&self) -> Option<&SmtpError> {
        self.fatal.as_ref()
    }

    // ------------------------------------------------------------ transitions

    /// EHLO (LHLO, HELO) is queued: after the greeting, or again on TLS.
    pub(super) fn hello_sent(&mut self) {
        self.enter(SessionState::Ehlo);
    }

    /// The server answered EHLO: ready to log in, upgrade or send.
    pub(super) fn hello_done(&mut self) {
        self.enter(SessionState::Authentication);
    }

    /// STARTTLS is queued.
    pub(super) fn starttls_sent(&mut self) {
        self.enter(SessionState::StartTls);
    }

    /// STARTTLS was accepted: the upgrade is the driver's now.
    pub(super) fn upgrade_due(&mut self) {
        self.awaiting_upgrade = true;
    }

    /// The driver finished the TLS handshake.
    pub(super) fn upgrade_done(&mut self) {
        self.awaiting_upgrade = false;
    }

    /// AUTH is queued.
    pub(super) fn auth_started(&mut self) {
        self.enter(SessionState::Authenticating);
    }

    /// The AUTH exchange is over: authenticated (ready to send), or refused (back to where a
    /// login may be tried again).
    pub(super) fn auth_ended(&mut self, authenticated: bool) {
        self.enter(if authenticated {
            SessionState::Ready
        } else {
            SessionState::Authentication
        });
    }

    /// A message's MAIL is queued (or about to be, behind RSET).
    pub(super) fn mail_started(&mut self) {
        self.enter(SessionState::Transaction);
    }

    /// The caller gives the body now, or it has been given and its last replies are owed.
    pub(super) fn body_started(&mut self) {
        self.enter(SessionState::Data);
    }

    /// The last message's result is out: ready for the next.
    pub(super) fn mail_ended(&mut self) {
        self.enter(SessionState::Ready);
    }

    /// A failed message left (or did not leave) a transaction open at the server.
    pub(super) fn set_needs_rset(&mut self, needs: bool) {
        self.needs_rset = needs;
    }

    /// A RSET or NOOP is queued; its answer returns to where the session stood.
    pub(super) fn command_started(&mut self) {
        self.idle = self.state;
        self.enter(SessionState::Command);
    }

    /// The RSET or NOOP was answered.
    pub(super) fn command_ended(&mut self) {
        self.enter(self.idle);
    }

    /// QUIT is queued.
    pub(super) fn quit_sent(&mut self) {
        self.enter(SessionState::Quit);
    }

    /// The session is over: cleanly (`None`, QUIT answered) or by a fatal error, which every
    /// later command returns.
    pub(super) fn close(&mut self, fatal: Option<SmtpError>) {
        self.enter(SessionState::Closed);
        self.fatal = fatal;
        self.awaiting_upgrade = false;
    }

    /// Move to `to`. The one table of the moves a session makes; anything else is a bug.
    fn enter(&mut self, to: SessionState) {
        use SessionState::*;
        debug_assert!(
            matches!(
                (self.state, to),
                (Greeting | StartTls, Ehlo)
                    | (Ehlo, Authentication)
                    | (Authentication, StartTls | Authenticating)
                    | (Authenticating, Ready | Authentication)
                    | (Authentication | Ready | Data, Transaction)
                    | (Transaction | Data, Data | Ready)
                    | (Authentication | Ready, Command)
                    | (Command, Authentication | Ready)
                    | (
                        Greeting | Ehlo | StartTls | Authentication | Authenticating,
                        Quit
                    )
                    | (Ready | Transaction | Data | Command, Quit)
                    | (_, Closed)
            ),
            "the session cannot move from {:?} to {to:?}",
            self.state
        );
        self.state = to;
    }
}
