//! The mock server driven by a raw TCP client: it must do what the pool, stream and CLI tests
//! rely on it to do.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_testkit::mock::{Act, Conversation, MockServer, well_behaved};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Each body kept, with the connection it came on.
type Bodies = Arc<Mutex<Vec<(usize, Vec<u8>)>>>;

/// A well-behaved server that keeps each body, and cuts the body of its second connection at
/// the line `cut`.
struct Keeper {
    n: usize,
    bodies: Bodies,
}

impl Conversation for Keeper {
    fn command(&mut self, line: &str) -> Act {
        well_behaved("mock.test", &["PIPELINING", "8BITMIME"], line)
    }

    fn body_line(&mut self, line: &[u8]) -> Option<Act> {
        (self.n == 2 && line == b"cut\r\n").then(|| Act::close("421 cut\r\n"))
    }

    fn end_of_data(&mut self, body: Vec<u8>) -> Act {
        self.bodies.lock().unwrap().push((self.n, body));
        Act::send("250 queued\r\n")
    }
}

async fn line(io: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), io.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    line
}

#[tokio::test]
async fn each_connection_gets_its_conversation_and_bodies_are_kept() {
    let bodies = Bodies::default();
    let kept = bodies.clone();
    let server = MockServer::start(move |n| Keeper {
        n,
        bodies: kept.clone(),
    })
    .await;
    let mut one = BufReader::new(TcpStream::connect(server.addr()).await.unwrap());
    let mut two = BufReader::new(TcpStream::connect(server.addr()).await.unwrap());
    assert_eq!(line(&mut one).await, "220 mock.test ESMTP\r\n");
    assert_eq!(line(&mut two).await, "220 mock.test ESMTP\r\n");
    one.write_all(b"EHLO c\r\n").await.unwrap();
    for want in [
        "250-mock.test\r\n",
        "250-PIPELINING\r\n",
        "250 8BITMIME\r\n",
    ] {
        assert_eq!(line(&mut one).await, want);
    }
    // A pipelined flight: the body, its dot and QUIT in one write.
    one.write_all(b"DATA\r\nline\r\n..dot\r\n.\r\nQUIT\r\n")
        .await
        .unwrap();
    for want in ["354 go\r\n", "250 queued\r\n", "221 bye\r\n"] {
        assert_eq!(line(&mut one).await, want);
    }
    assert_eq!(line(&mut one).await, "", "closed after the 221");
    two.write_all(b"DATA\r\nkept\r\ncut\r\nnever read\r\n")
        .await
        .unwrap();
    assert_eq!(line(&mut two).await, "354 go\r\n");
    assert_eq!(line(&mut two).await, "421 cut\r\n");
    assert_eq!(line(&mut two).await, "", "closed inside the body");
    assert!(server.until_ended(2, Duration::from_secs(5)).await);
    assert_eq!(
        (server.accepted(), server.open(), server.most_open()),
        (2, 0, 2)
    );
    assert_eq!(
        *bodies.lock().unwrap(),
        [(1, b"line\r\n..dot\r\n".to_vec())]
    );
}

/// Greets with the act it holds, then says nothing more.
struct Quiet(Option<Act>);

impl Conversation for Quiet {
    fn greeting(&mut self) -> Act {
        self.0.take().unwrap()
    }

    fn command(&mut self, _line: &str) -> Act {
        Act::Silent
    }
}

#[tokio::test(start_paused = true)]
async fn a_late_reply_waits_and_a_trickle_reads_one_byte_a_period() {
    let started = tokio::time::Instant::now();
    let late = || Act::after(Duration::from_secs(2), Act::send("220 late\r\n"));
    let server = MockServer::start(move |_| Quiet(Some(late()))).await;
    let mut io = BufReader::new(TcpStream::connect(server.addr()).await.unwrap());
    assert_eq!(line(&mut io).await, "220 late\r\n");
    assert!(started.elapsed() >= Duration::from_secs(2));

    let started = tokio::time::Instant::now();
    let trickle = || {
        let greet = Act::send("220 slow\r\n");
        Act::Seq(vec![greet, Act::Trickle(Duration::from_secs(1))])
    };
    let server = MockServer::start(move |_| Quiet(Some(trickle()))).await;
    let mut io = TcpStream::connect(server.addr()).await.unwrap();
    let mut greeting = [0u8; 10];
    io.read_exact(&mut greeting).await.unwrap();
    assert_eq!(&greeting, b"220 slow\r\n");
    io.write_all(b"0123456789").await.unwrap();
    io.shutdown().await.unwrap();
    // Ten bytes, one a second, then the hang-up.
    assert!(server.until_ended(1, Duration::from_secs(60)).await);
    assert!(started.elapsed() >= Duration::from_secs(10));
    let mut rest = Vec::new();
    io.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "a trickle never answers");
}
