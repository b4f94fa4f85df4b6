//! The proxy rows of both columns: the client reaches a real server through real proxy software,
//! `pproxy` (testkit's [`Pproxy`]; `scripts/test.sh` installs it with pip), SOCKS5 or HTTP
//! CONNECT, with credentials. One pproxy per case (it starts in well under a second), killed
//! when the case ends.
//!
//! The clients reach pproxy at [`PROXY_IP`] (a small relay there forwards to pproxy's loopback
//! listener), an address the server's certificate does not carry; the SMTP host stays [`HOST`].
//! So a TLS session that succeeds proves the certificate was checked for the SMTP server's name,
//! not for the proxy's; each proxied row first shows that the certificate is indeed refused for
//! [`PROXY_IP`].

use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;

use crate::*;
use smtp_testkit::proxy::{PASSWORD, Pproxy, USER};

pub(crate) use smtp_testkit::proxy::Listen;

/// Where the clients reach the proxy: loopback, but no name of the server's certificate
/// (`localhost`, 127.0.0.1, ::1; see `tests/servers/start-servers.sh`).
pub(crate) const PROXY_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// The wrong proxy password of the refused rows: it must never show in an error.
pub(crate) const WRONG_PROXY_PASSWORD: &str = "wr0ng-proxy-pa55";

/// The label of the row with wrong proxy credentials.
pub(crate) const WRONG_PROXY_LABEL: &str = "proxy: wrong credentials";

/// The proxy rows both columns run against Postfix: a send after AUTH PLAIN through SOCKS5 to
/// the submission port `submit` (STARTTLS) and through HTTP CONNECT to the implicit-TLS port
/// `tls`, both proxies asking for credentials; then wrong proxy credentials.
pub(crate) fn proxy_cases(submit: u16, tls: u16) -> [Case; 3] {
    [
        Case::Proxied {
            label: "socks5+starttls+auth-plain",
            port: submit,
            mode: TlsMode::StartTls,
            auth: AuthMechanism::Plain,
            via: Listen::Socks5Auth,
        },
        Case::Proxied {
            label: "http-connect+implicit+auth-plain",
            port: tls,
            mode: TlsMode::Implicit,
            auth: AuthMechanism::Plain,
            via: Listen::HttpAuth,
        },
        Case::ProxyWrongCredentials {
            port: submit,
            mode: TlsMode::StartTls,
        },
    ]
}

/// Whether `python3 -m pproxy` can run, found out once.
fn pproxy_installed() -> Result<(), String> {
    static FOUND: OnceLock<Result<(), String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let out = std::process::Command::new("python3")
                .args(["-c", "import pproxy"])
                .output()
                .map_err(|e| format!("python3 does not run ({e}): the proxy rows need pproxy"))?;
            if out.status.success() {
                return Ok(());
            }
            Err(format!(
                "`python3 -m pproxy` is missing: install it with `python3 -m pip install pproxy` \
                 (scripts/test.sh does): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        })
        .clone()
}

/// pproxy for one case, with one relay on [`PROXY_IP`] per listener; both end when it drops.
pub(crate) struct ProxyRoute {
    pproxy: Pproxy,
    relays: Vec<(Listen, Relay)>,
}

impl ProxyRoute {
    /// pproxy with these listeners, each reachable at [`PROXY_IP`].
    pub(crate) fn start(listeners: &[Listen]) -> Result<ProxyRoute, String> {
        pproxy_installed()?;
        // `Pproxy::start` panics when a listener does not come up: a failed row, not the end
        // of the matrix.
        let pproxy = std::panic::catch_unwind(|| Pproxy::start(listeners)).map_err(|panic| {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            format!("pproxy did not start: {why}")
        })?;
        let mut relays = Vec::new();
        for &listen in listeners {
            relays.push((listen, Relay::start(pproxy.port(listen))?));
        }
        Ok(ProxyRoute { pproxy, relays })
    }

    /// The proxy `via` at [`PROXY_IP`], with the credentials its listener asks for.
    pub(crate) fn proxy(&self, via: Listen) -> Proxy {
        self.proxy_with_password(via, PASSWORD)
    }

    /// The proxy `via` at [`PROXY_IP`], logging in with `password` when the listener asks for
    /// credentials.
    pub(crate) fn proxy_with_password(&self, via: Listen, password: &str) -> Proxy {
        let (_, relay) = self
            .relays
            .iter()
            .find(|(l, _)| *l == via)
            .unwrap_or_else(|| panic!("the route has no {via:?} listener"));
        let (ip, port) = (PROXY_IP.to_string(), relay.addr.port());
        match via {
            Listen::Socks5 => Proxy::socks5(ip, port),
            Listen::Http => Proxy::http(ip, port),
            Listen::Socks5Auth => Proxy::socks5(ip, port).with_credentials(USER, password),
            Listen::HttpAuth => Proxy::http(ip, port).with_credentials(USER, password),
        }
    }

    /// How many tunnels to the SMTP server's `port` pproxy's log shows so far.
    pub(crate) fn tunnels(&self, port: u16) -> usize {
        self.pproxy.tunnels_to(&format!("{HOST}:{port}"))
    }

    /// pproxy's log shows exactly `want` tunnels to `port` since it showed `before`.
    pub(crate) fn expect_tunnels(
        &self,
        port: u16,
        before: usize,
        want: usize,
    ) -> Result<String, String> {
        // pproxy logs a tunnel as it opens it, and its lines reach the log through reader
        // threads: give them a moment (when none is wanted, time to show one that should not
        // be there).
        let wait = if want == 0 {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(5)
        };
        let deadline = Instant::now() + wait;
        let mut new = self.tunnels(port).saturating_sub(before);
        while new < want.max(1) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            new = self.tunnels(port).saturating_sub(before);
        }
        if new != want {
            return Err(format!(
                "pproxy's log shows {new} new tunnel(s) to {HOST}:{port}, expected {want}:\n{}",
                self.pproxy.log()
            ));
        }
        Ok(format!("{new} new tunnel to {HOST}:{port} in pproxy's log"))
    }
}

/// The wrong-credentials row of either column, around its client's part: pproxy with a SOCKS5
/// and an HTTP CONNECT listener, both asking for credentials; each attempt through one of them
/// with [`WRONG_PROXY_PASSWORD`] must be refused, and pproxy's log must show no tunnel after.
pub(crate) struct WrongCredentials {
    route: ProxyRoute,
    port: u16,
    before: usize,
    notes: Vec<String>,
}

impl WrongCredentials {
    /// The proxies of the row, in the order they are tried.
    pub(crate) const KINDS: [Listen; 2] = [Listen::Socks5Auth, Listen::HttpAuth];

    /// pproxy with both listeners, in front of the server's `port`.
    pub(crate) fn start(port: u16) -> Result<WrongCredentials, String> {
        let route = ProxyRoute::start(&Self::KINDS)?;
        let before = route.tunnels(port);
        let notes = Vec::new();
        Ok(WrongCredentials {
            route,
            port,
            before,
            notes,
        })
    }

    /// The proxy `via` at [`PROXY_IP`], logging in with [`WRONG_PROXY_PASSWORD`].
    pub(crate) fn proxy(&self, via: Listen) -> Proxy {
        self.route.proxy_with_password(via, WRONG_PROXY_PASSWORD)
    }

    /// What connecting through `via` gave must be `SmtpError::Io` during `SmtpOp::Connect`,
    /// without the password in its Display or Debug form; a client that connected fails the row
    /// (the caller quits it).
    pub(crate) fn check<C>(
        &mut self,
        via: Listen,
        connected: &Result<C, SmtpError>,
    ) -> Result<(), String> {
        let Err(error) = connected else {
            return Err(format!("{via:?}: a wrong proxy password was accepted"));
        };
        let (shown, debug) = (error.to_string(), format!("{error:?}"));
        if !matches!(
            error,
            SmtpError::Io {
                during: SmtpOp::Connect,
                ..
            }
        ) {
            return Err(format!(
                "{via:?}: expected SmtpError::Io during Connect, got {debug}"
            ));
        }
        if shown.contains(WRONG_PROXY_PASSWORD) || debug.contains(WRONG_PROXY_PASSWORD) {
            return Err(format!(
                "{via:?}: the proxy password shows in the error: {shown} / {debug}"
            ));
        }
        self.notes.push(format!("{via:?}: {shown}"));
        Ok(())
    }

    /// After every attempt: no new tunnel to the server's port. Returns the row's note.
    pub(crate) fn finish(self) -> Result<String, String> {
        let port = self.port;
        self.route.expect_tunnels(port, self.before, 0)?;
        Ok(format!(
            "{}; no tunnel to {HOST}:{port}",
            self.notes.join("; ")
        ))
    }
}

/// What connecting straight to the server, checking its certificate for [`PROXY_IP`], must
/// give: a failed TLS handshake (so the proxied rows' TLS proves the name checked was
/// [`HOST`]).
pub(crate) fn check_not_for_proxy(result: Result<(), SmtpError>) -> Result<(), String> {
    match result {
        Err(SmtpError::Io {
            during: SmtpOp::TlsHandshake,
            ..
        }) => Ok(()),
        Ok(()) => Err(format!(
            "the server's certificate is accepted for {PROXY_IP}, the proxy's address: the \
             proxied rows could not tell which name was checked"
        )),
        Err(e) => Err(format!(
            "checking the certificate for {PROXY_IP} (the proxy's address) should fail the TLS \
             handshake, got {e:?}"
        )),
    }
}

/// A TCP relay from [`PROXY_IP`] to a loopback port, a thread per direction of each connection.
struct Relay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Relay {
    fn start(target: u16) -> Result<Relay, String> {
        let listener = TcpListener::bind((PROXY_IP, 0))
            .map_err(|e| format!("cannot listen on {PROXY_IP} for the proxy's relay: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                // Refused upstream: the client's connection closes at once.
                let Ok(upstream) = TcpStream::connect((HOST, target)) else {
                    continue;
                };
                if let (Ok(c), Ok(u)) = (client.try_clone(), upstream.try_clone()) {
                    splice(c, u);
                    splice(upstream, client);
                }
            }
        });
        Ok(Relay { addr, stop })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accepting thread, which then sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Copy `from` to `to` on a thread until `from` ends, then pass the end on.
fn splice(from: TcpStream, to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut &from, &mut &to);
        let _ = to.shutdown(Shutdown::Write);
        let _ = from.shutdown(Shutdown::Read);
    });
}
