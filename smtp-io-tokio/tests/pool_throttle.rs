//! A pool under a rate limit (`MailerBuilder::rate_limit`): against a server that answers `421`
//! to a sender above its own limit, the pool keeps under it with no message lost or sent twice;
//! a caller the throttle would hold past its wait limit gets `Busy`, past its send deadline
//! `NotSent` with `DeadlineExceeded`, without waiting the whole turn. With a backoff, a server's
//! `421` pauses the pool instead of a burst of reconnects, and callers learn when to try again.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smtp_io_tokio::{Backoff, Mailer, RateLimit, SendError, SmtpError, TlsMode};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What the server saw: when each MAIL came, and how many it refused with 421.
#[derive(Default)]
struct Seen {
    mails: Mutex<Vec<Instant>>,
    refused: Mutex<usize>,
    delivered: Mutex<Vec<String>>,
}

/// A server that takes at most `per_second` MAIL commands in any one second, and answers `421`
/// (closing the connection) to any more, and to its first `refuse_first` MAIL commands.
async fn server(seen: Arc<Seen>, per_second: usize, refuse_first: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut io = BufReader::new(tcp);
                let _ = io.get_mut().write_all(b"220 limited.test\r\n").await;
                let mut line = String::new();
                let mut from = String::new();
                loop {
                    line.clear();
                    if io.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let reply: &[u8] = match line.get(..4).unwrap_or("") {
                        "EHLO" => b"250 limited.test\r\n",
                        "MAIL" => {
                            let now = Instant::now();
                            let over = {
                                let mut mails = seen.mails.lock().unwrap();
                                mails.push(now);
                                let recent = mails
                                    .iter()
                                    .filter(|t| now.duration_since(**t) < Duration::from_secs(1))
                                    .count();
                                recent > per_second || mails.len() <= refuse_first
                            };
                            if over {
                                *seen.refused.lock().unwrap() += 1;
                                let _ = io.get_mut().write_all(b"421 4.7.0 slow down\r\n").await;
                                return;
                            }
                            from = line.trim_end().to_owned();
                            b"250 ok\r\n"
                        }
                        "DATA" => {
                            let _ = io.get_mut().write_all(b"354 go\r\n").await;
                            while line != ".\r\n" {
                                line.clear();
                                if io.read_line(&mut line).await.unwrap_or(0) == 0 {
                                    return;
                                }
                            }
                            seen.delivered.lock().unwrap().push(from.clone());
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            let _ = io.get_mut().write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    if io.get_mut().write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn n(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap()
}

#[tokio::test]
async fn a_rate_limited_pool_stays_under_the_servers_limit() {
    let seen = Arc::new(Seen::default());
    // The server allows 6 a second; the pool sends 5 a second, one at a time.
    let port = server(seen.clone(), 6, 0).await;
    let mailer = Mailer::builder("127.0.0.1", port, TlsMode::None, "client.test")
        .max_connections(4)
        .rate_limit(RateLimit::per_second(n(5)).with_burst(n(1)))
        .build()
        .unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let mailer = mailer.clone();
            tokio::spawn(async move {
                mailer
                    .send(&format!("m{i}@test.example"), ["b@test.example"], b"hi\r\n")
                    .await
            })
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
    let port = server(seen.clone(), 100, 0).await;
    let mailer = Mailer::builder("127.0.0.1", port, TlsMode::None, "client.test")
        .rate_limit(RateLimit::per_minute(n(1)))
        .wait_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    mailer
        .send("first@test.example", ["b@test.example"], b"hi\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let busy = mailer
        .send("second@test.example", ["b@test.example"], b"hi\r\n")
        .await;
    assert!(matches!(busy, Err(SendError::Busy { .. })), "{busy:?}");
    let late = mailer
        .with_send_deadline(Duration::from_millis(300))
        .send("third@test.example", ["b@test.example"], b"hi\r\n")
        .await;
    assert!(
        matches!(
            late,
            Err(SendError::NotSent {
                error: SmtpError::DeadlineExceeded { .. },
                attempts: 0
            })
        ),
        "{late:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(seen.delivered.lock().unwrap().len(), 1);
    mailer.shutdown().await;
}

#[tokio::test]
async fn a_slow_down_pauses_the_pool_instead_of_reconnecting_at_once() {
    let seen = Arc::new(Seen::default());
    let port = server(seen.clone(), 100, 1).await;
    let mailer = Mailer::builder("127.0.0.1", port, TlsMode::None, "client.test")
        .backoff(Backoff::new(
            Duration::from_millis(400),
            Duration::from_secs(5),
        ))
        .build()
        .unwrap();
    // The server's 421: not retried on a new connection, but a pause with its length.
    let first = mailer
        .send("a@test.example", ["b@test.example"], b"hi\r\n")
        .await;
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
    let impatient = mailer
        .with_send_deadline(Duration::from_millis(50))
        .send("c@test.example", ["b@test.example"], b"hi\r\n")
        .await;
    assert!(
        matches!(impatient, Err(SendError::Throttled { .. })),
        "{impatient:?}"
    );
    assert_eq!(seen.mails.lock().unwrap().len(), 1);
    // One that can waits for the pause, then goes through.
    let started = Instant::now();
    mailer
        .send("d@test.example", ["b@test.example"], b"hi\r\n")
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(seen.delivered.lock().unwrap().len(), 1);
    mailer.shutdown().await;
}
