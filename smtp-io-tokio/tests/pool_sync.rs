//! The pool ([`Mailer`]) against a server whose replies fall out of step with the commands: after
//! accepting each message (`250 queued` to its final dot) it sends one `250 ok` too many.
//!
//! Every reply after it answers the command before: the next message's DATA is answered by the
//! `250` of its RCPT, and the server's `354` comes after. Taken for an ordinary refusal, the
//! connection was kept and the next message's RSET and MAIL went into a message body. The
//! engine must close the connection at the first reply that cannot answer its command (a `2xx`
//! to DATA), the message then goes again on a new connection (nothing of it was delivered), and
//! no command ever reaches the server inside a body.
//!
//! The extra line comes either in the same write as the `250 queued` (it is already there
//! when the message's reply is read, or when the pool looks at the idle connection), or only
//! once the next command has arrived, where no look at an idle connection can see it and only
//! the engine can tell.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_io_tokio::{Mailer, ProtocolError, SendError, SmtpError, TlsMode};
use smtp_testkit::mock::{Act, Conversation, MockServer};

/// When the server sends its `250 ok` too many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extra {
    /// In the same write as the `250 queued` to the final dot.
    SameWrite,
    /// Just before its reply to the next command, whatever it is (in its own write).
    BeforeNextReply,
}

/// How the server behaves.
#[derive(Debug, Clone, Copy)]
struct Server {
    extra: Extra,
    /// PIPELINING is offered.
    pipelining: bool,
    /// How long the server takes before its `354` to DATA. A slow `354` lets a client that
    /// kept the connection after the `250` to DATA send its next message before the `354`
    /// shows: the RSET and MAIL then go into a message body.
    data_delay: Duration,
}

/// What the server saw.
#[derive(Debug, Default)]
struct Log {
    /// Connections accepted.
    connections: usize,
    /// How many times each message (by its `X-Id` header) was delivered, and on which
    /// connections.
    delivered: HashMap<u32, Vec<usize>>,
    /// Command lines received inside a message body (between the `354` and the final dot, or
    /// the connection's end): each one a command the client meant for the server read as text.
    in_body: Vec<(usize, String)>,
    /// Every body received, whole or cut short, with its connection.
    bodies: Vec<(usize, Vec<String>)>,
    /// MAIL or RSET lines received on a connection after its extra `250` was out and the command
    /// it came before was handled: a client that went on with a connection out of step.
    after_extra: Vec<(usize, String)>,
    /// RSET lines received anywhere.
    rsets: usize,
}

/// A command line, as the server would take it outside a body.
fn is_command(line: &str) -> bool {
    let upper = line.to_ascii_uppercase();
    [
        "RSET",
        "MAIL FROM:",
        "RCPT TO:",
        "DATA",
        "QUIT",
        "NOOP",
        "EHLO",
        "HELO",
    ]
    .iter()
    .any(|c| upper.starts_with(c))
}

/// Start the server; its address.
async fn start(server: Server, log: Arc<Mutex<Log>>) -> std::net::SocketAddr {
    let conversation = move |conn| {
        log.lock().unwrap().connections = conn;
        Conn {
            conn,
            server,
            log: log.clone(),
            owed: false,
            out_of_step: false,
            body: None,
        }
    };
    MockServer::start(conversation).await.addr()
}

/// One connection's conversation, until QUIT, the client's close, or a command in a body.
struct Conn {
    conn: usize,
    server: Server,
    log: Arc<Mutex<Log>>,
    /// An extra `250` is owed before the next reply (`Extra::BeforeNextReply`).
    owed: bool,
    /// The extra `250` is out and the command it came before was handled.
    out_of_step: bool,
    /// The lines of the body being received.
    body: Option<Vec<String>>,
}

impl Conversation for Conn {
    fn greeting(&mut self) -> Act {
        Act::send("220 sync.test ESMTP\r\n")
    }

    fn command(&mut self, text: &str) -> Act {
        let upper = text.to_ascii_uppercase();
        if self.out_of_step && (upper.starts_with("MAIL") || upper.starts_with("RSET")) {
            let after = (self.conn, text.to_owned());
            self.log.lock().unwrap().after_extra.push(after);
        }
        let extra_now = std::mem::take(&mut self.owed);
        let reply = if upper.starts_with("EHLO") {
            if self.server.pipelining {
                Act::send("250-sync.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            } else {
                Act::send("250-sync.test\r\n250 8BITMIME\r\n")
            }
        } else if upper.starts_with("HELO") || upper == "NOOP" {
            Act::send("250 ok\r\n")
        } else if upper.starts_with("MAIL FROM:") {
            Act::send("250 2.1.0 sender ok\r\n")
        } else if upper.starts_with("RCPT TO:") {
            Act::send("250 2.1.5 recipient ok\r\n")
        } else if upper == "RSET" {
            self.log.lock().unwrap().rsets += 1;
            Act::send("250 2.0.0 reset\r\n")
        } else if upper == "QUIT" {
            Act::close("221 2.0.0 bye\r\n")
        } else if upper == "DATA" {
            self.body = Some(Vec::new());
            Act::after(self.server.data_delay, Act::body("354 go ahead\r\n"))
        } else {
            Act::send("500 5.5.2 what?\r\n")
        };
        if extra_now && upper != "QUIT" && upper != "DATA" {
            self.out_of_step = true;
        }
        match extra_now {
            true => Act::Seq(vec![Act::send("250 ok\r\n"), reply]),
            false => reply,
        }
    }

    fn body_line(&mut self, line: &[u8]) -> Option<Act> {
        let text = String::from_utf8_lossy(line).trim_end().to_owned();
        let command = is_command(&text);
        let body = self.body.as_mut().expect("a body after DATA");
        body.push(text.clone());
        if !command {
            return None;
        }
        // A command read as message text: record it and hang up (the client would wait for
        // replies the server never sends).
        self.log.lock().unwrap().in_body.push((self.conn, text));
        Some(Act::close(""))
    }

    fn end_of_data(&mut self, _body: Vec<u8>) -> Act {
        let body = self.body.take().expect("a body after DATA");
        let id = body
            .iter()
            .find_map(|l| l.strip_prefix("X-Id: "))
            .map(|id| id.parse::<u32>().unwrap());
        let mut log = self.log.lock().unwrap();
        log.bodies.push((self.conn, body));
        if let Some(id) = id {
            log.delivered.entry(id).or_default().push(self.conn);
        }
        match self.server.extra {
            // Both lines in one write: the extra one is there as soon as the reply is.
            Extra::SameWrite => {
                self.out_of_step = true;
                Act::send("250 2.0.0 queued\r\n250 ok\r\n")
            }
            Extra::BeforeNextReply => {
                self.owed = true;
                Act::send("250 2.0.0 queued\r\n")
            }
        }
    }

    /// A body cut short (by the client's close, or a command in it) is kept too.
    fn ended(&mut self) {
        if let Some(body) = self.body.take() {
            self.log.lock().unwrap().bodies.push((self.conn, body));
        }
    }
}

fn body(id: u32) -> Vec<u8> {
    format!("Subject: message {id}\r\nX-Id: {id}\r\n\r\nThe text of message {id}.\r\n").into_bytes()
}

const MESSAGES: u32 = 4;

/// Send `MESSAGES` messages one after the other through a pool of one connection, and check
/// what became of each and what the server saw. Returns the pool's counters.
async fn run(server: Server) -> smtp_io_tokio::PoolStats {
    let log = Arc::new(Mutex::new(Log::default()));
    let addr = start(server, log.clone()).await;
    let mailer = Mailer::builder("127.0.0.1", addr.port(), TlsMode::None, "client.test")
        .max_connections(1)
        .build()
        .unwrap();
    let mut results = Vec::new();
    for id in 1..=MESSAGES {
        let sent = tokio::time::timeout(
            Duration::from_secs(20),
            mailer.send("a@x.test", &["b@y.test"], &body(id)),
        )
        .await;
        let Ok(result) = sent else {
            panic!(
                "{server:?}: message {id} got no answer; the server saw {:#?}",
                log.lock().unwrap()
            );
        };
        results.push((id, result));
    }
    mailer.shutdown().await;
    let stats = mailer.stats();
    let log = log.lock().unwrap();
    let summary: Vec<String> = results
        .iter()
        .map(|(id, r)| match r {
            Ok(_) => format!("{id}: sent"),
            Err(e) => format!("{id}: {e:?}"),
        })
        .collect();
    let context = format!("{server:?}\nresults: {summary:#?}\nserver: {log:?}\n{stats:?}");

    // Nothing the client meant as a command was read as message text.
    assert!(log.in_body.is_empty(), "commands inside a body: {context}");
    assert!(
        log.bodies
            .iter()
            .all(|(_, lines)| !lines.iter().any(|l| is_command(l))),
        "{context}"
    );
    // No RSET ever: a message that failed out of step is never reset on its connection.
    assert_eq!(log.rsets, 0, "{context}");
    // Once out of step, a connection carries no other message: it is closed.
    assert!(log.after_extra.is_empty(), "{context}");
    // Each message delivered exactly once, or not delivered with a typed error.
    for (id, result) in &results {
        let times = log.delivered.get(id).map_or(0, Vec::len);
        match result {
            Ok(_) => assert_eq!(times, 1, "message {id}: {context}"),
            Err(SendError::NotSent { .. }) => assert_eq!(times, 0, "message {id}: {context}"),
            Err(other) => panic!("message {id}: {other:?}: {context}"),
        }
    }
    // Here each is delivered: one that failed out of step before its end of data went again
    // on a new connection.
    assert!(results.iter().all(|(_, r)| r.is_ok()), "{context}");
    // Each message on its own connection: the one that carried a message and then its extra
    // reply carries nothing more.
    let mut per_connection: HashMap<usize, usize> = HashMap::new();
    for conns in log.delivered.values() {
        for conn in conns {
            *per_connection.entry(*conn).or_default() += 1;
        }
    }
    assert!(per_connection.values().all(|&n| n == 1), "{context}");
    assert_eq!(log.connections, MESSAGES as usize, "{context}");
    assert_eq!(stats.opened, u64::from(MESSAGES), "{context}");
    stats
}

/// [`run`] with the extra `250` sent `extra`, without a slow `354`, with PIPELINING offered and
/// without: the pool retried `retries` messages each time.
async fn retries_with_and_without_pipelining(extra: Extra, retries: u64) {
    for pipelining in [true, false] {
        let stats = run(Server {
            extra,
            pipelining,
            data_delay: Duration::ZERO,
        })
        .await;
        assert_eq!(
            stats.retries, retries,
            "{extra:?}, pipelining {pipelining}: {stats:?}"
        );
    }
}

/// The extra `250` arrives with the message's reply: the engine sees a reply nobody is owed
/// (or the pool's look at the idle connection does), and the next message takes a new
/// connection without a retry.
#[tokio::test]
async fn an_extra_250_in_the_same_write_closes_the_connection() {
    retries_with_and_without_pipelining(Extra::SameWrite, 0).await;
}

/// The extra `250` arrives only once the next message's first command is out, so the idle
/// connection looked quiet: the engine finds it at DATA (answered `250`), closes the
/// connection, and the message goes again on a new one.
#[tokio::test]
async fn an_extra_250_before_the_next_reply_is_caught_at_data() {
    retries_with_and_without_pipelining(Extra::BeforeNextReply, u64::from(MESSAGES - 1)).await;
}

/// As above with a slow `354`: a client that took the `250` to DATA for a refusal and kept the
/// connection would send the next message (RSET, MAIL, ...) before the `354` arrives, and the
/// server would read those commands as message text (the outside review's report).
#[tokio::test]
async fn an_extra_250_and_a_slow_354_never_put_commands_in_a_body() {
    let stats = run(Server {
        extra: Extra::BeforeNextReply,
        pipelining: true,
        data_delay: Duration::from_millis(300),
    })
    .await;
    assert_eq!(stats.retries, u64::from(MESSAGES - 1), "{stats:?}");
}

/// The error a message gets when its connection falls out of step is typed: a reply that
/// cannot answer its command, never a refusal.
#[tokio::test]
async fn the_loss_of_sync_is_typed_on_a_single_client() {
    let log = Arc::new(Mutex::new(Log::default()));
    let addr = start(
        Server {
            extra: Extra::BeforeNextReply,
            pipelining: true,
            data_delay: Duration::ZERO,
        },
        log.clone(),
    )
    .await;
    let mut client = smtp_io_tokio::ConnectOptions::new(TlsMode::None)
        .connect("127.0.0.1", addr.port(), "client.test")
        .await
        .unwrap();
    client
        .send_mail_bytes("a@x.test", &["b@y.test"], &body(1))
        .await
        .unwrap();
    let error = client
        .send_mail_bytes("a@x.test", &["b@y.test"], &body(2))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            SmtpError::Protocol(ProtocolError::OutOfSync { during: smtp_io_tokio::SmtpOp::Data, reply })
                if reply.code().get() == 250
        ),
        "{error:?}"
    );
    assert_eq!(error.blame(), smtp_io_tokio::Blame::ServerMisbehaved);
    assert_eq!(error.reply(), None, "not a refusal");
    assert_eq!(client.state(), smtp_io_tokio::SessionState::Closed);
}
