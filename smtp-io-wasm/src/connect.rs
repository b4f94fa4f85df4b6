//! Opening a connection, written once for both runtimes: [`ConnectOptions::connect`] and the
//! three helpers. Only opening the socket differs: `cloudflare:sockets` on Workers
//! ([`WorkersTransport`](crate::WorkersTransport)), `wasi:sockets` and rustls on WASI
//! ([`WasiTransport`](crate::wasi::WasiTransport)); each is bounded by its own timer through
//! the engine's [`ConnectClock`], which also starts the session's deadline.

use core::future::Future;

use smtp_proto::connect::{Connect, ConnectParts, ConnectSetting};
use smtp_proto::{SmtpError, SmtpOp};

#[allow(unused_imports)] // for the doc links
use crate::TlsMode;
use crate::{ConnectOptions, SmtpClient};

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use crate::WorkersTransport as Socket;
#[cfg(all(target_arch = "wasm32", target_os = "wasi", target_env = "p2"))]
use crate::wasi::WasiTransport as Socket;

/// What the runtime cannot do, refused before any I/O: the Workers socket API has no way to
/// choose the local address a connection leaves from.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
const UNSUPPORTED: &[ConnectSetting] = &[ConnectSetting::LocalAddress];
#[cfg(all(target_arch = "wasm32", target_os = "wasi", target_env = "p2"))]
const UNSUPPORTED: &[ConnectSetting] = &[];

// How a connection reaches the SMTP server: through a proxy (if any; the tunnel is opened with
// `smtp_proto::connect::open_tunnel` before TLS, so TLS runs end to end with the SMTP server)
// and from a local address (if any; WASI only).
pub(crate) use smtp_proto::connect::Route;

impl ConnectOptions {
    /// Open a connection to `host:port`, read the greeting, EHLO as `ehlo_domain`, and for
    /// [`TlsMode::StartTls`] upgrade and EHLO again. The client is then ready for `login` or
    /// `send_mail`. On WASI, run it under `wasi::block_on`.
    ///
    /// Through a proxy ([`with_proxy`](Self::with_proxy), SOCKS5 or HTTP CONNECT) the tunnel
    /// is opened first, and TLS (implicit or STARTTLS) runs end to end with the SMTP server,
    /// its certificate checked for `host` (or [`with_tls_server_name`](Self::with_tls_server_name)),
    /// never the proxy's name; the proxy's handshake counts against the connect timeout.
    ///
    /// Errors: a bad `ehlo_domain`, a setting the runtime cannot honour (on Workers a local
    /// address), port 0 or a host the proxy cannot carry, on WASI a name that cannot be a TLS
    /// server name, and on Workers port 25 (see [`check_port`](crate::check_port)) are
    /// [`SmtpError::InvalidInput`] before any I/O. A connect failure is [`SmtpError::Io`] during [`SmtpOp::Connect`]
    /// ([`SmtpError::Timeout`] when the connect timeout ran out); so is a failed implicit-TLS
    /// handshake on WASI. On Workers a TLS failure shows later (see the crate docs).
    pub async fn connect(
        self,
        host: &str,
        port: u16,
        ehlo_domain: &str,
    ) -> Result<SmtpClient, SmtpError> {
        // Everything local is validated before touching the network. The session's deadline
        // counts from here: the connect (and on WASI an implicit-TLS handshake) count against
        // it, as on every adapter.
        #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
        self.check_port(port)?;
        let (clock, parts) = self.settings.start::<Socket>(ehlo_domain)?;
        parts.refuse(UNSUPPORTED)?;
        parts.check_destination(host, port)?;
        // Destructured whole: a shared setting added later cannot be missed here.
        let ConnectParts {
            mode,
            connect_timeout,
            tls_server_name,
            route,
            client,
        } = parts;
        #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
        let open = Socket::open_routed(host, port, mode, tls_server_name.as_deref(), &route);
        #[cfg(all(target_arch = "wasm32", target_os = "wasi", target_env = "p2"))]
        let open = {
            let name = tls_server_name.as_deref().unwrap_or(host);
            if mode != TlsMode::None {
                smtp_rustls::check_server_name(name)?;
            }
            // The step's own bound, for the host's addresses to share.
            let now = <Socket as smtp_proto::client::Transport>::now();
            let (left, _) = clock.bound(now.into(), SmtpOp::Connect, connect_timeout);
            // A limit too large for the clock (`Duration::MAX`) is no limit, not a panic.
            let until = now.checked_add(left);
            Socket::open_routed(host, port, name, mode, &self.tls, &route, until)
        };
        let transport = clock
            .step::<Socket, _>(SmtpOp::Connect, connect_timeout, open)
            .await?;
        smtp_proto::SmtpClient::open(transport, mode, ehlo_domain, client).await
    }
}

impl Connect for ConnectOptions {
    type Transport = Socket;

    fn connect(
        self,
        host: &str,
        port: u16,
        ehlo_domain: &str,
    ) -> impl Future<Output = Result<SmtpClient, SmtpError>> {
        ConnectOptions::connect(self, host, port, ehlo_domain)
    }
}

smtp_proto::connect_functions!(async ConnectOptions => SmtpClient);
