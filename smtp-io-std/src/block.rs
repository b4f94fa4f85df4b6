//! [`block_on`]: run one of the shared driver's futures to its end on this thread, with no
//! runtime.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// How long [`block_on`] pauses between two polls should a future ever come back unfinished.
const PAUSE: Duration = Duration::from_millis(1);

/// Poll `future` with a waker that does nothing until it is ready, and return its output.
///
/// The futures it runs are the driver's (`smtp_proto::client::SmtpClient`'s methods) over
/// [`StdTransport`](crate::transport::StdTransport), and the invariant that keeps this loop
/// from spinning is theirs: the transport's futures block in their first poll and return
/// `Pending` only once their wait limit (the engine's next timer) has passed; the driver races
/// each of them against [`Transport::sleep`](smtp_proto::client::Transport::sleep), which it
/// polls next and which is then ready, so the engine's timer fires and the driver goes on
/// (every timer of the engine is fatal when due). The driver's future as a whole therefore
/// finishes in its first poll. A second poll would mean the invariant broke: that is a panic
/// in debug builds, and in release builds a pause of a millisecond between polls, so a bug
/// never burns a core.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        if cfg!(debug_assertions) {
            panic!("a blocking SMTP call came back unfinished: its transport broke the invariant");
        }
        std::thread::sleep(PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_future_gives_its_output() {
        assert_eq!(block_on(async { 7 }), 7);
    }

    /// A future that comes back unfinished broke the transport's invariant: a bug, caught
    /// loudly in debug builds instead of spinning.
    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "came back unfinished")]
    fn a_future_that_comes_back_unfinished_is_caught() {
        block_on(std::future::pending::<()>());
    }
}
