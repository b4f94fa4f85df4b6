//! A pooled connection that reached its message cap is ended with QUIT in the background: the
//! caller has its answer without waiting for the server's `221`, and the pool still never holds
//! more than `max_connections` connections (the next message waits until the old one closed).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use smtp_io_tokio::{Mailer, TlsMode};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, oneshot};

/// A well-behaved server whose first connection holds back its `221` to QUIT until `release`
/// fires; `quit_seen` fires when that QUIT arrives.
struct HeldQuit {
    accepted: AtomicUsize,
    quits: AtomicUsize,
    quit_seen: Mutex<Option<oneshot::Sender<()>>>,
    release: Mutex<Option<oneshot::Receiver<()>>>,
}

async fn serve(tcp: TcpStream, server: Arc<HeldQuit>, first: bool) {
    let mut io = BufReader::new(tcp);
    io.get_mut().write_all(b"220 cap.test\r\n").await.unwrap();
    let mut line = Vec::new();
    loop {
        line.clear();
        if io.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let reply: &[u8] = match line.get(..4).map(|w| w.to_ascii_uppercase()).as_deref() {
            Some(b"EHLO") => b"250-cap.test\r\n250 PIPELINING\r\n",
            Some(b"MAIL") | Some(b"RCPT") => b"250 ok\r\n",
            Some(b"DATA") => {
                io.get_mut().write_all(b"354 go\r\n").await.unwrap();
                while line != b".\r\n" {
                    line.clear();
                    io.read_until(b'\n', &mut line).await.unwrap();
                }
                b"250 queued\r\n"
            }
            Some(b"QUIT") => {
                server.quits.fetch_add(1, Ordering::SeqCst);
                if first {
                    let seen = server.quit_seen.lock().await.take().unwrap();
                    seen.send(()).unwrap();
                    let release = server.release.lock().await.take().unwrap();
                    release.await.unwrap();
                }
                let _ = io.get_mut().write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"500 what\r\n",
        };
        io.get_mut().write_all(reply).await.unwrap();
    }
}

#[tokio::test]
async fn a_connection_at_its_cap_is_ended_after_the_caller_has_its_answer() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (seen_tx, seen_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel();
    let server = Arc::new(HeldQuit {
        accepted: AtomicUsize::new(0),
        quits: AtomicUsize::new(0),
        quit_seen: Mutex::new(Some(seen_tx)),
        release: Mutex::new(Some(release_rx)),
    });
    let accepting = server.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let first = accepting.accepted.fetch_add(1, Ordering::SeqCst) == 0;
            tokio::spawn(serve(tcp, accepting.clone(), first));
        }
    });
    let mailer = Mailer::builder("127.0.0.1", port, TlsMode::None, "client.test")
        .max_connections(1)
        .max_messages_per_connection(1)
        .build()
        .unwrap();

    // The server never answers the first connection's QUIT until released: a caller that
    // waited for it would time out here.
    let first = tokio::time::timeout(
        Duration::from_secs(10),
        mailer.send("a@test.example", &["b@test.example"], b"one\r\n"),
    )
    .await
    .expect("send() waited for the 221 to a QUIT sent after its message");
    assert!(first.is_ok(), "{first:?}");
    seen_rx.await.unwrap();

    // The old connection still holds the pool's one place: the next message waits for it.
    let second = tokio::spawn({
        let mailer = mailer.clone();
        async move {
            mailer
                .send("a@test.example", &["b@test.example"], b"two\r\n")
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        server.accepted.load(Ordering::SeqCst),
        1,
        "a second connection was opened while the first was still open"
    );
    assert!(!second.is_finished());

    release_tx.send(()).unwrap();
    assert!(second.await.unwrap().is_ok());
    assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
    mailer.shutdown().await;
    let stats = mailer.stats();
    assert_eq!(
        (stats.opened, stats.closed, stats.quit),
        (2, 2, 2),
        "{stats:?}"
    );
    assert_eq!(server.quits.load(Ordering::SeqCst), 2);
}
