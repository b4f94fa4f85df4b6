//! A pooled connection that reached its message cap is ended with QUIT in the background: the
//! caller has its answer without waiting for the server's `221`, and the pool still never holds
//! more than `max_connections` connections (the next message waits until the old one closed).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use smtp_io_tokio::{Mailer, TlsMode};
use smtp_testkit::mock::{Act, Conversation, MockServer, well_behaved};
use tokio::sync::{Mutex, oneshot};

mod common;
use common::send_in_background;

/// A well-behaved server whose first connection holds back its `221` to QUIT until `release`
/// fires; `quit_seen` fires when that QUIT arrives.
struct HeldQuit {
    quits: AtomicUsize,
    quit_seen: Mutex<Option<oneshot::Sender<()>>>,
    release: Mutex<Option<oneshot::Receiver<()>>>,
}

/// One connection of [`HeldQuit`]; `first` for the first one.
struct Conn(Arc<HeldQuit>, bool);

impl Conversation for Conn {
    fn greeting(&mut self) -> Act {
        Act::send("220 cap.test\r\n")
    }

    fn command(&mut self, line: &str) -> Act {
        let Conn(server, first) = self;
        if !line.to_ascii_uppercase().starts_with("QUIT") {
            return well_behaved("cap.test", &["PIPELINING"], line);
        }
        server.quits.fetch_add(1, Ordering::SeqCst);
        if !*first {
            return Act::close("221 bye\r\n");
        }
        let server = server.clone();
        let held = async move {
            let seen = server.quit_seen.lock().await.take().unwrap();
            seen.send(()).unwrap();
            let release = server.release.lock().await.take().unwrap();
            release.await.unwrap();
        };
        Act::wait(held, Act::close("221 bye\r\n"))
    }
}

#[tokio::test]
async fn a_connection_at_its_cap_is_ended_after_the_caller_has_its_answer() {
    let (seen_tx, seen_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel();
    let server = Arc::new(HeldQuit {
        quits: AtomicUsize::new(0),
        quit_seen: Mutex::new(Some(seen_tx)),
        release: Mutex::new(Some(release_rx)),
    });
    let held = server.clone();
    let mock = MockServer::start(move |n| Conn(held.clone(), n == 1)).await;
    let mailer = Mailer::builder("127.0.0.1", mock.port(), TlsMode::None, "client.test")
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
    let second = send_in_background(&mailer, "a@test.example", "b@test.example", b"two\r\n");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        mock.accepted(),
        1,
        "a second connection was opened while the first was still open"
    );
    assert!(!second.is_finished());

    release_tx.send(()).unwrap();
    assert!(second.await.unwrap().is_ok());
    assert_eq!(mock.accepted(), 2);
    mailer.shutdown().await;
    let stats = mailer.stats();
    assert_eq!(
        (stats.opened, stats.closed, stats.quit),
        (2, 2, 2),
        "{stats:?}"
    );
    assert_eq!(server.quits.load(Ordering::SeqCst), 2);
}
