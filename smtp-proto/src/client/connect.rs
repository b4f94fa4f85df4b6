//! How a connection is protected ([`TlsMode`]) and the one dispatch every adapter runs once its
//! socket is open ([`SmtpClient::open`]).

use super::{SmtpClient, SmtpClientOptions, StartTlsCapable};
use crate::error::SmtpError;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsMode {
    /// TLS from the first byte (SMTPS, port 465). Recommended by RFC 8314.
    Implicit,
    /// Plain TCP, then STARTTLS before anything else (submission on 587, relay on 25). Fails
    /// closed: without STARTTLS nothing is sent in plaintext.
    StartTls,
    /// No TLS at all: everything crosses the network readable, and AUTH is refused unless
    /// allowed. Only for loopback test servers and trusted local relays.
    None,
}

impl TlsMode {
    /// The usual port for this mode: 465, 587 or 25.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::Implicit => 465,
            TlsMode::StartTls => 587,
            TlsMode::None => 25,
        }
    }
}

impl<T: StartTlsCapable> SmtpClient<T> {
    /// Read the greeting and EHLO on a transport an adapter has just opened for `mode` (for
    /// [`TlsMode::Implicit`], past its TLS handshake), then for [`TlsMode::StartTls`] upgrade it
    /// and EHLO again. Whether the connection is encrypted comes from the transport
    /// ([`Transport::is_encrypted`](super::Transport::is_encrypted)).
    pub async fn open(
        transport: T,
        mode: TlsMode,
        ehlo_domain: &str,
        options: SmtpClientOptions,
    ) -> Result<SmtpClient<T>, SmtpError> {
        match mode {
            TlsMode::StartTls => {
                SmtpClient::connect_starttls_with(transport, ehlo_domain, options).await
            }
            TlsMode::Implicit | TlsMode::None => {
                SmtpClient::connect_with(transport, ehlo_domain, options).await
            }
        }
    }
}
