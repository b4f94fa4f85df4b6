//! Waiting for something another task, thread or process does: a condition polled at a fixed
//! interval a bounded number of times, on the test's thread ([`poll_blocking`]) or in a tokio
//! task ([`poll`], whose sleeps follow the runtime's clock, virtual time included).

use std::time::Duration;

/// Polls `done` up to `times` times, sleeping `every` between tries (blocking the thread):
/// whether it held.
pub fn poll_blocking(times: usize, every: Duration, mut done: impl FnMut() -> bool) -> bool {
    (0..times).any(|_| {
        done() || {
            std::thread::sleep(every);
            false
        }
    })
}

/// Polls `done` up to `times` times, sleeping `every` (tokio's clock) between tries: whether it
/// held.
pub async fn poll(times: usize, every: Duration, mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..times {
        if done() {
            return true;
        }
        tokio::time::sleep(every).await;
    }
    false
}

/// Waits until `done` holds, polling every 10 ms (at most 10 s of the runtime's time).
///
/// # Panics
///
/// When it never held.
pub async fn until(done: impl FnMut() -> bool) {
    assert!(
        poll(1000, Duration::from_millis(10), done).await,
        "the condition never held"
    );
}
