//! Real proxy software on loopback for the route tests of every adapter and of the CLI:
//! [`Pproxy`] runs `pproxy` (`pip install pproxy`; `scripts/test.sh` installs it) with SOCKS5
//! and HTTP CONNECT listeners, with and without credentials, and keeps everything it logged;
//! [`Sink`] is the small SMTP server behind it, which records each connection's peer and each
//! message's sender; [`free_port`] finds a loopback port for either.
//!
//! Plain `std` (threads, `std::process`), so that the blocking and the async tests share it: the
//! proxy is another process and the sink runs on its own threads, whatever runtime the test has.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A free loopback port (bound and released: a server binds it next).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits, up to ten seconds, for something to listen on loopback `port`.
pub fn wait_for_listener(port: u16) -> bool {
    crate::wait::poll_blocking(200, Duration::from_millis(50), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
}

/// One listener of [`Pproxy`]: its protocol, and whether it asks for the credentials
/// [`USER`]:[`PASSWORD`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listen {
    /// SOCKS5, without credentials.
    Socks5,
    /// HTTP CONNECT, without credentials.
    Http,
    /// SOCKS5, with credentials.
    Socks5Auth,
    /// HTTP CONNECT, with credentials.
    HttpAuth,
}

/// The user name the `…Auth` listeners take.
pub const USER: &str = "user";
/// The password the `…Auth` listeners take.
pub const PASSWORD: &str = "secret";

impl Listen {
    /// Every kind, in the order of [`Pproxy::all`].
    pub const ALL: [Listen; 4] = [
        Listen::Socks5,
        Listen::Http,
        Listen::Socks5Auth,
        Listen::HttpAuth,
    ];

    fn argument(self, port: u16) -> String {
        match self {
            Listen::Socks5 => format!("socks5://127.0.0.1:{port}"),
            Listen::Http => format!("http://127.0.0.1:{port}"),
            Listen::Socks5Auth => format!("socks5://127.0.0.1:{port}#{USER}:{PASSWORD}"),
            Listen::HttpAuth => format!("http://127.0.0.1:{port}#{USER}:{PASSWORD}"),
        }
    }
}

/// `pproxy` on loopback, one free port per listener; credentials are asked on every connection
/// (`--auth 0`, or pproxy trusts an address for 30 days once it logged in). Everything it writes
/// is kept ([`Pproxy::log`]); it is killed and waited for when dropped.
pub struct Pproxy {
    child: Child,
    log: Arc<Mutex<String>>,
    ports: Vec<(Listen, u16)>,
}

impl Pproxy {
    /// All four listeners of [`Listen`].
    pub fn all() -> Pproxy {
        Pproxy::start(&Listen::ALL)
    }

    /// pproxy with these listeners, once each of them accepts connections.
    ///
    /// # Panics
    ///
    /// When `python3 -m pproxy` cannot start, or a listener is not up within ten seconds (with
    /// pproxy's log).
    pub fn start(listeners: &[Listen]) -> Pproxy {
        let ports: Vec<(Listen, u16)> = listeners.iter().map(|&l| (l, free_port())).collect();
        let mut command = Command::new("python3");
        command.args(["-u", "-m", "pproxy", "-v", "--auth", "0"]);
        for &(listen, port) in &ports {
            command.arg("-l").arg(listen.argument(port));
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 -m pproxy: install it with `pip install pproxy`");
        let log = Arc::new(Mutex::new(String::new()));
        let pipes: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for pipe in pipes {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        // Held at once, so that it is killed and waited for on every path.
        let proxy = Pproxy { child, log, ports };
        for &(_, port) in &proxy.ports {
            assert!(
                wait_for_listener(port),
                "pproxy did not listen on {port} (is it installed?): {}",
                proxy.log()
            );
        }
        proxy
    }

    /// The port of the listener `listen`.
    ///
    /// # Panics
    ///
    /// When the proxy was started without it.
    pub fn port(&self, listen: Listen) -> u16 {
        self.ports
            .iter()
            .find(|(l, _)| *l == listen)
            .unwrap_or_else(|| panic!("pproxy has no {listen:?} listener"))
            .1
    }

    /// The URL of the listener `listen`, with the credentials it asks for.
    pub fn url(&self, listen: Listen) -> String {
        let port = self.port(listen);
        match listen {
            Listen::Socks5 => format!("socks5://127.0.0.1:{port}"),
            Listen::Http => format!("http://127.0.0.1:{port}"),
            Listen::Socks5Auth => format!("socks5://{USER}:{PASSWORD}@127.0.0.1:{port}"),
            Listen::HttpAuth => format!("http://{USER}:{PASSWORD}@127.0.0.1:{port}"),
        }
    }

    /// Each listener's name (`socks`, `http`, `socks-auth`, `http-auth`) and [`url`](Self::url).
    pub fn routes(&self) -> Vec<(&'static str, String)> {
        self.ports
            .iter()
            .map(|&(listen, _)| {
                let name = match listen {
                    Listen::Socks5 => "socks",
                    Listen::Http => "http",
                    Listen::Socks5Auth => "socks-auth",
                    Listen::HttpAuth => "http-auth",
                };
                (name, self.url(listen))
            })
            .collect()
    }

    /// Everything pproxy logged so far, one line each.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// How many tunnels to `target` (`host:port`) the log shows.
    pub fn tunnels_to(&self, target: &str) -> usize {
        let arrow = format!("-> {target}");
        self.log().lines().filter(|l| l.contains(&arrow)).count()
    }
}

impl Drop for Pproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a [`Sink`] saw.
#[derive(Default)]
pub struct Seen {
    /// Each connection's peer address.
    pub peers: Mutex<Vec<SocketAddr>>,
    /// Each `MAIL` command as it came (without its CRLF).
    pub mail: Mutex<Vec<String>>,
    /// The `MAIL` command of each message whose data ended (accepted with `250 queued`).
    pub delivered: Mutex<Vec<String>>,
}

/// A small SMTP server on loopback, a thread per connection: greets as `behind.proxy.test`,
/// accepts every command and message, and records what it saw.
pub struct Sink {
    port: u16,
    seen: Arc<Seen>,
}

impl Sink {
    /// The server, listening.
    pub fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Seen::default());
        let shared = seen.clone();
        std::thread::spawn(move || {
            while let Ok((tcp, peer)) = listener.accept() {
                shared.peers.lock().unwrap().push(peer);
                let seen = shared.clone();
                std::thread::spawn(move || serve(tcp, &seen));
            }
        });
        Sink { port, seen }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What it saw so far.
    pub fn seen(&self) -> &Seen {
        &self.seen
    }

    /// Each connection's peer so far.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.seen.peers.lock().unwrap().clone()
    }

    /// Each `MAIL` command so far.
    pub fn mail(&self) -> Vec<String> {
        self.seen.mail.lock().unwrap().clone()
    }

    /// The `MAIL` command of each message delivered so far.
    pub fn delivered(&self) -> Vec<String> {
        self.seen.delivered.lock().unwrap().clone()
    }
}

fn serve(tcp: TcpStream, seen: &Seen) -> Option<()> {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let mut out = tcp.try_clone().ok()?;
    let mut lines = BufReader::new(tcp);
    out.write_all(b"220 behind.proxy.test\r\n").ok()?;
    let mut line = String::new();
    let mut from = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let reply: &[u8] = match line.get(..4).unwrap_or("").to_ascii_uppercase().as_str() {
            "EHLO" => b"250 behind.proxy.test\r\n",
            "MAIL" => {
                line.trim_end().clone_into(&mut from);
                seen.mail.lock().unwrap().push(from.clone());
                b"250 ok\r\n"
            }
            "DATA" => {
                out.write_all(b"354 go\r\n").ok()?;
                loop {
                    line.clear();
                    if lines.read_line(&mut line).ok()? == 0 {
                        return None;
                    }
                    if line == ".\r\n" {
                        break;
                    }
                }
                seen.delivered.lock().unwrap().push(from.clone());
                b"250 queued\r\n"
            }
            "QUIT" => {
                out.write_all(b"221 bye\r\n").ok()?;
                return Some(());
            }
            _ => b"250 ok\r\n",
        };
        out.write_all(reply).ok()?;
    }
}

/// A "proxy" that accepts connections and never answers (each held open): its port.
pub fn hanging_listener() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept() {
            held.push(socket);
        }
    });
    port
}
