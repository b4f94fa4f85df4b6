//! Opening a connection, before the driver ([`SmtpClient`](crate::SmtpClient)) takes over:
//! what every adapter needs and writes once here, none of it I/O.
//!
//! - [`ConnectSettings`] (`settings.rs`): the options every adapter shares (TLS mode, connect
//!   timeout, the name the certificate is checked for, proxy, local address, the client's
//!   options);
//! - [`AdapterOptions`] and [`Connect`] (`adapter.rs`): what an adapter's `ConnectOptions`
//!   implements, the builder methods it gets from
//!   [`connect_options_methods!`](crate::connect_options_methods), and [`connect_url`];
//! - [`ConnectClock`] and [`TlsMode`] (`clock.rs`): each connect step bounded against the
//!   session's deadline, and opening by TLS mode;
//! - [`check_host`] (`host.rs`): the one rule for a host to connect to, checked before any I/O;
//! - [`Route`] (`route.rs`): how a connection reaches the server (proxy, local address);
//! - [`Proxy`] (`proxy.rs`): a proxy and its URL, and the HTTP CONNECT exchange as bytes;
//!   `socks5.rs`: the SOCKS5 handshake (RFC 1928, RFC 1929) as bytes;
//! - [`ProxyHandshake`] and [`open_tunnel`] (`tunnel.rs`): either handshake behind one calling
//!   order, and driven over any [`Transport`](crate::client::Transport);
//! - [`SmtpUrl`] (`url.rs`): connection URLs.
//!
//! It sits above the driver: it opens connections for [`SmtpClient`](crate::SmtpClient), whose
//! own options ([`SmtpClientOptions`](crate::client::SmtpClientOptions)) it carries; the driver
//! knows nothing of it.

mod adapter;
mod clock;
mod host;
mod proxy;
mod route;
mod settings;
mod socks5;
#[cfg(test)]
mod tests;
mod tunnel;
mod url;

pub use adapter::{AdapterOptions, Connect, connect_url};
pub use clock::{ConnectClock, TlsMode};
pub use host::{HostError, check_host};
pub use proxy::{MAX_CONNECT_ANSWER, Proxy, ProxyKind, ProxyUrlError, TunnelProgress};
pub use route::Route;
pub use settings::{
    ConnectParts, ConnectSetting, ConnectSettings, DEFAULT_CONNECT_TIMEOUT, SharedConnectSettings,
};
pub use tunnel::{MAX_PROXY_READ, ProxyHandshake, open_tunnel};
pub use url::{SmtpUrl, UrlError};
