//! A pool under a rate limit (`MailerBuilder::rate_limit`): against a server that answers `421`
//! to a sender above its own limit, the pool keeps under it with no message lost or sent twice;
//! a caller the throttle would hold past its wait limit gets `Busy`, past its send deadline
//! `NotSent` with `DeadlineExceeded`, without waiting the whole turn. With a backoff, a server's
//! `421` pauses the pool instead of a burst of reconnects, and callers learn when to try again.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
#[path = "common/limited.rs"]
mod limited;

use common::send_from;
use limited::{Seen, limited_server};
use smtp_io_tokio::{Backoff, Mailer, RateLimit, SendError, TlsMode};

fn n(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap()
}

#[tokio::test]
async fn a_rate_limited_pool_stays_under_the_servers_limit() {
    let seen = Arc::new(Seen::default());
    // The server allows 6 a second; the pool sends 5 a second, one at a time.
    let port = limited_server(seen.clone(), 6, 0).await;
    let mailer = Mailer::builder("127.0.0.1", port, TlsMode::None, "client.test")
        .max_connections(4)
        .rate_limit(RateLimit::per_second(n(5)).with_burst(n(1)))
        .build()
        .unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let mailer = mailer.clone();
            tokio::spawn(async move { send_from(&mailer, &format!("m{i}@test.example")).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let took = started.elapsed();
    mailer.shutdown().await;
    assert_eq!(
        *seen.refused.lock().unwrap(),
        0,
        "the server's limit was exceeded"
    );
    let mut delivered = seen.delivered.lock().unwrap().clone();
    delivered.sort();
    delivered.dedup();
    assert_eq!(delivered.len(), 12, "lost or duplicated: {delivered:?}");
    // Twelve messages, one every 200 ms after the first: at least 2.2 s.
    assert!(took >= Duration::from_millis(2100), "{took:?}");
}

#[tokio::test]
async fn a_turn_past_the_wait_limit_or_the_deadline_is_not_waited_for() {
    let seen = Arc::new(Seen::default());
    let port = limited_server(seen.clone(), 100, 0).await;
    let mailer = Mailer::builder("127.0.0.1", port, TlsMode::None, "client.test")
        .rate_limit(RateLimit::per_minute(n(1)))
        .wait_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    send_from(&mailer, "first@test.example").await.unwrap();
    let started = Instant::now();
    let busy = send_from(&mailer, "second@test.example").await;
    assert!(matches!(busy, Err(SendError::Busy { .. })), "{busy:?}");
    let late = send_from(
        &mailer.with_send_deadline(Duration::from_millis(300)),
        "third@test.example",
    )
    .await;
    common::assert_ran_out_unsent(&late);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(seen.delivered.lock().unwrap().len(), 1);
    mailer.shutdown().await;
}

#[tokio::test]
async fn a_slow_down_pauses_the_pool_instead_of_reconnecting_at_once() {
    let seen = Arc::new(Seen::default());
    let port = limited_server(seen.clone(), 100, 1).await;
    let mailer = Mailer::builder("127.0.0.1", port, TlsMode::None, "client.test")
        .backoff(Backoff::new(
            Duration::from_millis(400),
            Duration::from_secs(5),
        ))
        .build()
        .unwrap();
    // The server's 421: not retried on a new connection, but a pause with its length.
    let first = send_from(&mailer, "a@test.example").await;
    let Err(SendError::Throttled { retry_after, .. }) = &first else {
        panic!("{first:?}");
    };
    assert!(
        *retry_after <= Duration::from_millis(400),
        "{retry_after:?}"
    );
    assert_eq!(
        first.as_ref().unwrap_err().retry_after(),
        Some(*retry_after)
    );
    assert_eq!(
        seen.mails.lock().unwrap().len(),
        1,
        "it reconnected at once"
    );
    // A caller that cannot wait out the pause is told when to try again, without a connection.
    let impatient = send_from(
        &mailer.with_send_deadline(Duration::from_millis(50)),
        "c@test.example",
    )
    .await;
    assert!(
        matches!(impatient, Err(SendError::Throttled { .. })),
        "{impatient:?}"
    );
    assert_eq!(seen.mails.lock().unwrap().len(), 1);
    // One that can waits for the pause, then goes through.
    let started = Instant::now();
    send_from(&mailer, "d@test.example").await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(seen.delivered.lock().unwrap().len(), 1);
    mailer.shutdown().await;
}
