//! A loopback SMTP server for any number of connections, each run by its own [`Conversation`]:
//! the test decides every reply and every fault (a hang-up, a silence, a stall, a held or late
//! reply, a cut body), the server does the socket work (accepting, implicit TLS, reading command
//! lines and message bodies, writing, hanging up) and counts connections.
//!
//! Where [`ScriptServer`](crate::ScriptServer) checks one connection against a fixed S:/C:
//! script, this one serves many (a pool's, a retry's) whose course depends on what the client
//! sends: the pool, stream, mutual-TLS and CLI tests use it.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A byte stream a server (or the script client) talks over: TCP, or TLS over TCP.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A future an [`Act::Wait`] waits for.
pub type Hold = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What the server does next.
pub enum Act {
    /// Write these bytes (whole reply lines, with CRLF) in one write, and read on.
    Send(Vec<u8>),
    /// Write these bytes (the `354`), then read a message body up to its final dot
    /// ([`Conversation::body_line`], [`Conversation::end_of_data`]).
    Body(Vec<u8>),
    /// Write these bytes (none: a plain hang-up), then close the connection.
    Close(Vec<u8>),
    /// Say nothing more; read (and drop) what the client sends until it hangs up.
    Silent,
    /// Say nothing and read nothing more, ever: the socket stays open until the runtime ends.
    Stall,
    /// Say nothing more; read one byte each period (a server that drains the client at a
    /// trickle) until the client hangs up.
    Trickle(Duration),
    /// Wait for this future, then do the act.
    Wait(Hold, Box<Act>),
    /// These acts in order (each write on its own).
    Seq(Vec<Act>),
}

impl Act {
    /// [`Act::Send`] of `bytes`.
    pub fn send(bytes: impl AsRef<[u8]>) -> Act {
        Act::Send(bytes.as_ref().to_vec())
    }

    /// [`Act::Body`] with `bytes` as the go-ahead.
    pub fn body(bytes: impl AsRef<[u8]>) -> Act {
        Act::Body(bytes.as_ref().to_vec())
    }

    /// [`Act::Close`] after writing `bytes`.
    pub fn close(bytes: impl AsRef<[u8]>) -> Act {
        Act::Close(bytes.as_ref().to_vec())
    }

    /// `act` once `hold` is ready.
    pub fn wait(hold: impl Future<Output = ()> + Send + 'static, act: Act) -> Act {
        Act::Wait(Box::pin(hold), Box::new(act))
    }

    /// `act` after `delay` (of the runtime's clock).
    pub fn after(delay: Duration, act: Act) -> Act {
        Act::wait(tokio::time::sleep(delay), act)
    }
}

/// One connection's side of the server. Every method but [`Conversation::command`] has a
/// default: a `220` greeting, body lines taken as they come, `250 queued` to the final dot, no
/// idle timer.
pub trait Conversation: Send + 'static {
    /// The greeting, right after accept (and the TLS handshake of an implicit TLS server).
    fn greeting(&mut self) -> Act {
        Act::send("220 mock.test ESMTP\r\n")
    }

    /// An implicit-TLS handshake succeeded, before the greeting: the certificates the client
    /// presented (`None` when it presented none), for a test of mutual TLS.
    fn client_certificates(&mut self, _certificates: Option<&[CertificateDer<'static>]>) {}

    /// A command line from the client (without its CRLF, invalid UTF-8 replaced).
    fn command(&mut self, line: &str) -> Act;

    /// A line of a message body (with its CRLF, as on the wire): `Some` cuts the body short
    /// with that act.
    fn body_line(&mut self, _line: &[u8]) -> Option<Act> {
        None
    }

    /// Whether the server keeps each body for [`Conversation::end_of_data`] (`false`: it gets an
    /// empty one, and a body of any size costs no memory).
    fn keeps_bodies(&self) -> bool {
        true
    }

    /// The whole body as received: CRLF line ends, dot-stuffed, without the final `.\r\n`.
    fn end_of_data(&mut self, _body: Vec<u8>) -> Act {
        Act::send("250 queued\r\n")
    }

    /// Asked before each wait for a command: a timer for that wait, whose end
    /// [`Conversation::idle_fired`] answers (`None`: wait for the client as long as it takes).
    fn idle(&mut self) -> Option<Duration> {
        None
    }

    /// The idle timer ran out before the client's next command.
    fn idle_fired(&mut self) -> Act {
        Act::Send(Vec::new())
    }

    /// The connection is over (whatever ended it), before the server closes its socket.
    fn ended(&mut self) {}
}

/// The answers of a well-behaved server named `name` offering `caps` after EHLO, for a
/// [`Conversation`] that changes only some of them: `250` to MAIL, RCPT, RSET and NOOP, a `354`
/// to DATA, `221` and a hang-up to QUIT, `500` to the rest.
pub fn well_behaved(name: &str, caps: &[&str], line: &str) -> Act {
    let verb = line.get(..4).unwrap_or(line).to_ascii_uppercase();
    match verb.as_str() {
        "EHLO" | "LHLO" => {
            let mut reply = String::new();
            for (i, cap) in std::iter::once(name)
                .chain(caps.iter().copied())
                .enumerate()
            {
                let sep = if i == caps.len() { ' ' } else { '-' };
                reply.push_str(&format!("250{sep}{cap}\r\n"));
            }
            Act::Send(reply.into_bytes())
        }
        "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => Act::send("250 ok\r\n"),
        "DATA" => Act::body("354 go\r\n"),
        "QUIT" => Act::close("221 bye\r\n"),
        _ => Act::send("500 what\r\n"),
    }
}

/// A [`well_behaved`] server without extensions whose answer to DATA is what `F` makes (anew
/// for each DATA): the shape of the tests of what happens during a body (a server that stops
/// reading, refuses in the middle, hangs up).
pub struct OnData<F>(pub F);

impl<F: FnMut() -> Act + Send + 'static> Conversation for OnData<F> {
    fn command(&mut self, line: &str) -> Act {
        if line.eq_ignore_ascii_case("DATA") {
            return (self.0)();
        }
        well_behaved("mock.test", &[], line)
    }
}

/// What the server counts.
#[derive(Debug, Default)]
struct Counts {
    accepted: AtomicUsize,
    open: AtomicUsize,
    most_open: AtomicUsize,
    ended: AtomicUsize,
}

/// A server on `127.0.0.1:0` serving every connection until the runtime ends.
pub struct MockServer {
    addr: SocketAddr,
    counts: Arc<Counts>,
}

impl MockServer {
    /// Serve in plain text; `conversation(n)` runs the `n`-th connection (from 1).
    pub async fn start<C: Conversation>(
        conversation: impl FnMut(usize) -> C + Send + 'static,
    ) -> MockServer {
        MockServer::serve(None, conversation).await
    }

    /// Serve with implicit TLS: each connection's handshake first (one that fails ends the
    /// connection after its [`Conversation::ended`]).
    pub async fn implicit_tls<C: Conversation>(
        tls: Arc<ServerConfig>,
        conversation: impl FnMut(usize) -> C + Send + 'static,
    ) -> MockServer {
        MockServer::serve(Some(TlsAcceptor::from(tls)), conversation).await
    }

    async fn serve<C: Conversation>(
        tls: Option<TlsAcceptor>,
        mut conversation: impl FnMut(usize) -> C + Send + 'static,
    ) -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let counts = Arc::new(Counts::default());
        let accepting = counts.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                // Like a real server's replies, each one leaves at once (no Nagle delay).
                let _ = tcp.set_nodelay(true);
                let n = accepting.accepted.fetch_add(1, Ordering::SeqCst) + 1;
                let open = accepting.open.fetch_add(1, Ordering::SeqCst) + 1;
                accepting.most_open.fetch_max(open, Ordering::SeqCst);
                let mut conv = conversation(n);
                let tls = tls.clone();
                let counts = accepting.clone();
                tokio::spawn(async move {
                    let io: Option<Box<dyn Io>> = match tls {
                        None => Some(Box::new(tcp)),
                        Some(acceptor) => match acceptor.accept(tcp).await {
                            Ok(s) => {
                                conv.client_certificates(s.get_ref().1.peer_certificates());
                                Some(Box::new(s))
                            }
                            Err(_) => None,
                        },
                    };
                    if let Some(io) = io {
                        let mut io = BufReader::new(io);
                        converse(&mut io, &mut conv).await;
                        conv.ended();
                        let _ = io.get_mut().shutdown().await;
                    } else {
                        conv.ended();
                    }
                    counts.open.fetch_sub(1, Ordering::SeqCst);
                    counts.ended.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        MockServer { addr, counts }
    }

    /// The address to connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.counts.accepted.load(Ordering::SeqCst)
    }

    /// Connections open now (accepted, not yet ended).
    pub fn open(&self) -> usize {
        self.counts.open.load(Ordering::SeqCst)
    }

    /// The most connections that were open at once.
    pub fn most_open(&self) -> usize {
        self.counts.most_open.load(Ordering::SeqCst)
    }

    /// Connections ended so far.
    pub fn ended(&self) -> usize {
        self.counts.ended.load(Ordering::SeqCst)
    }

    /// Wait until `n` connections have ended; `false` when that took longer than `limit` (of
    /// the runtime's clock).
    pub async fn until_ended(&self, n: usize, limit: Duration) -> bool {
        let step = Duration::from_millis(10);
        let mut waited = Duration::ZERO;
        while self.ended() < n {
            if waited >= limit {
                return false;
            }
            tokio::time::sleep(step).await;
            waited += step;
        }
        true
    }
}

/// How a connection goes on after an act.
enum Next {
    Command,
    Body,
    End,
}

type Conn = BufReader<Box<dyn Io>>;

/// One connection's conversation, until the client hangs up or an act ends it.
async fn converse(io: &mut Conn, conv: &mut impl Conversation) {
    let mut next = perform(io, conv.greeting()).await;
    let mut line = Vec::new();
    loop {
        match next {
            Next::End => return,
            Next::Command => {
                // The line buffer outlives a timer that fires in the middle of a line:
                // `read_until` goes on where it stopped.
                let timer = conv.idle();
                let got = tokio::select! {
                    biased;
                    got = io.read_until(b'\n', &mut line) => Some(got),
                    () = sleep_or_never(timer) => None,
                };
                let Some(got) = got else {
                    next = perform(io, conv.idle_fired()).await;
                    continue;
                };
                if !matches!(got, Ok(n) if n > 0) {
                    return;
                }
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                line.clear();
                next = perform(io, conv.command(&text)).await;
            }
            Next::Body => {
                let mut body = Vec::new();
                let act = loop {
                    line.clear();
                    if !matches!(io.read_until(b'\n', &mut line).await, Ok(n) if n > 0) {
                        return;
                    }
                    if line == b".\r\n" {
                        line.clear();
                        break conv.end_of_data(body);
                    }
                    if let Some(act) = conv.body_line(&line) {
                        line.clear();
                        break act;
                    }
                    if conv.keeps_bodies() {
                        body.extend_from_slice(&line);
                    }
                };
                next = perform(io, act).await;
            }
        }
    }
}

async fn sleep_or_never(timer: Option<Duration>) {
    match timer {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Carry out `act`; what the connection does next.
fn perform<'a>(io: &'a mut Conn, act: Act) -> Pin<Box<dyn Future<Output = Next> + Send + 'a>> {
    Box::pin(async move {
        match act {
            Act::Send(bytes) if write(io, &bytes).await => Next::Command,
            Act::Body(bytes) if write(io, &bytes).await => Next::Body,
            Act::Send(_) | Act::Body(_) => Next::End,
            Act::Close(bytes) => {
                write(io, &bytes).await;
                Next::End
            }
            Act::Silent => {
                let mut sink = Vec::new();
                while matches!(io.read_until(b'\n', &mut sink).await, Ok(n) if n > 0) {
                    sink.clear();
                }
                Next::End
            }
            Act::Stall => std::future::pending().await,
            Act::Trickle(period) => {
                // Past the reader's buffer: one byte from the socket at a time.
                let mut byte = [0u8; 1];
                loop {
                    if !io.buffer().is_empty() {
                        io.consume(1);
                    } else if !matches!(io.get_mut().read(&mut byte).await, Ok(n) if n > 0) {
                        return Next::End;
                    }
                    tokio::time::sleep(period).await;
                }
            }
            Act::Wait(hold, act) => {
                hold.await;
                perform(io, *act).await
            }
            Act::Seq(acts) => {
                let mut next = Next::Command;
                for act in acts {
                    next = perform(io, act).await;
                    if let Next::End = next {
                        break;
                    }
                }
                next
            }
        }
    })
}

/// Write `bytes` (nothing when empty); whether the connection is still there.
async fn write(io: &mut Conn, bytes: &[u8]) -> bool {
    bytes.is_empty() || io.get_mut().write_all(bytes).await.is_ok()
}

/// A boxed conversation, for a server whose connections do not all run the same type.
impl Conversation for Box<dyn Conversation> {
    fn greeting(&mut self) -> Act {
        (**self).greeting()
    }
    fn command(&mut self, line: &str) -> Act {
        (**self).command(line)
    }
    fn body_line(&mut self, line: &[u8]) -> Option<Act> {
        (**self).body_line(line)
    }
    fn keeps_bodies(&self) -> bool {
        (**self).keeps_bodies()
    }
    fn end_of_data(&mut self, body: Vec<u8>) -> Act {
        (**self).end_of_data(body)
    }
    fn idle(&mut self) -> Option<Duration> {
        (**self).idle()
    }
    fn idle_fired(&mut self) -> Act {
        (**self).idle_fired()
    }
    fn ended(&mut self) {
        (**self).ended()
    }
}
