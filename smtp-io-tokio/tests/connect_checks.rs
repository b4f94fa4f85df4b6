//! What `ConnectOptions::connect` checks before any I/O, and limits that stand for "none".

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use smtp_io_tokio::smtp_proto::error::{Field, InvalidInputError};
use smtp_io_tokio::{ConnectOptions, Proxy, SmtpError, TlsMode};
use smtp_testkit::mock::{Act, Conversation, MockServer, well_behaved};

/// A listener on loopback that counts the connections it accepts (and drops them).
async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    (port, accepted)
}

/// The error is the caller's, about the server, and not worth retrying.
#[track_caller]
fn assert_refused(result: Result<impl std::fmt::Debug, SmtpError>) {
    let error = result.unwrap_err();
    let SmtpError::InvalidInput(InvalidInputError::Argument { field, .. }) = &error else {
        panic!("not an invalid argument: {error:?}");
    };
    assert_eq!(*field, Field::Server, "{error:?}");
    assert!(!error.is_transient(), "{error:?}");
}

/// A TLS server name that cannot be one, a host that is not one (a URL, a stray bracket), port
/// 0, and a host the proxy cannot carry are refused
/// before anything is dialled, as the caller's mistakes they are. They used to be found after
/// connecting, as I/O errors a pool would retry for ever.
#[tokio::test]
async fn a_destination_that_can_never_work_is_refused_before_connecting() {
    let (port, accepted) = counting_listener().await;
    let tls = |mode| ConnectOptions::new(mode).with_connect_timeout(Duration::from_secs(5));
    // `127.1` reaches 127.0.0.1, but no certificate can carry it.
    assert_refused(
        tls(TlsMode::Implicit)
            .connect("127.1", port, "c.test")
            .await,
    );
    assert_refused(
        tls(TlsMode::StartTls)
            .connect("127.1", port, "c.test")
            .await,
    );
    let named = tls(TlsMode::Implicit).with_tls_server_name("not a name");
    assert_refused(named.connect("127.0.0.1", port, "c.test").await);
    assert_refused(tls(TlsMode::None).connect("127.0.0.1", 0, "c.test").await);
    let proxied = || {
        let proxy = Proxy::parse(&format!("socks5://127.0.0.1:{port}")).unwrap();
        tls(TlsMode::None).with_proxy(proxy)
    };
    let long = "a".repeat(300);
    assert_refused(proxied().connect(&long, 25, "c.test").await);
    // What is not a host at all, directly and through the proxy (which would otherwise be
    // handed it as a name to resolve).
    for host in [
        "127.0.0.1]",
        "[127.0.0.1]",
        "[::1",
        "smtp://127.0.0.1",
        "127.0.0.1:25",
        "mx..test",
    ] {
        assert_refused(tls(TlsMode::None).connect(host, port, "c.test").await);
        assert_refused(proxied().connect(host, 25, "c.test").await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "nothing was dialled");
}

/// `Duration::MAX` as the connect timeout means no limit; it used to overflow the clock and
/// panic.
#[tokio::test]
async fn a_connect_timeout_of_duration_max_is_no_limit() {
    struct Ordinary;
    impl Conversation for Ordinary {
        fn command(&mut self, line: &str) -> Act {
            well_behaved("mx.test", &[], line)
        }
    }
    let server = MockServer::start(|_| Ordinary).await;
    let client = ConnectOptions::new(TlsMode::None)
        .with_connect_timeout(Duration::MAX)
        .connect("127.0.0.1", server.port(), "c.test")
        .await
        .unwrap();
    client.quit().await.unwrap();
}
