//! A single-threaded executor for WASI 0.2: [`block_on`] runs a future, and every wait in this
//! module's futures is a `wasi:io/poll` pollable that `block_on` hands to `poll` when nothing
//! else can progress. The same mechanism gives the timer ([`sleep`]).

use core::future::Future;
use core::pin::{Pin, pin};
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use wasip2::clocks::monotonic_clock;
use wasip2::io::poll::{Pollable, poll};

/// One wait: a pollable, and whether `poll` has reported it ready.
struct Wait {
    pollable: Pollable,
    fired: Cell<bool>,
}

thread_local! {
    /// The waits of the pending futures, with the waker to call when one is ready. Weak: a
    /// future dropped before its wait ends drops its pollable at once (a pollable must not
    /// outlive the stream or socket it belongs to).
    static WAITS: RefCell<Vec<(Weak<Wait>, Waker)>> = const { RefCell::new(Vec::new()) };
}

/// Run `future` to completion on this thread, blocking in `wasi:io/poll` whenever it waits.
///
/// Every future of [`WasiTransport`](super::WasiTransport) and [`sleep`] must run under this
/// executor (directly or nested in other futures): they register their waits with it. A
/// component export is a synchronous function, so it typically calls `block_on` once:
///
/// ```ignore
/// let outcome = smtp_io_wasm::wasi::block_on(async {
///     let mut client = smtp_io_wasm::wasi::connect_starttls("smtp.example.com", 587, "me.example").await?;
///     // ...
/// # Ok::<(), smtp_io_wasm::SmtpError>(())
/// });
/// ```
///
/// Do not call it from inside a future it runs (a nested `block_on` would take the outer one's
/// waits).
///
/// # Panics
///
/// When the future is pending but waits for no pollable of this module (it would never wake):
/// for example a future of another WASI runtime's reactor.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        let waits: Vec<(Rc<Wait>, Waker)> = WAITS
            .with_borrow_mut(core::mem::take)
            .into_iter()
            .filter_map(|(wait, waker)| wait.upgrade().map(|w| (w, waker)))
            .collect();
        assert!(
            !waits.is_empty(),
            "smtp_io_wasm::wasi::block_on: the future is pending but waits on no WASI pollable"
        );
        let list: Vec<&Pollable> = waits.iter().map(|(w, _)| &w.pollable).collect();
        for index in poll(&list) {
            if let Some((wait, waker)) = waits.get(index as usize) {
                wait.fired.set(true);
                waker.wake_by_ref();
            }
        }
    }
}

/// A future that completes when `pollable` is ready.
///
/// Readiness is learnt only from `poll` (in [`block_on`]), never from `pollable.ready()`: jco's
/// preview2 shim (0.26) answers `ready()` with a stale flag for socket input streams (true with
/// no data), which would turn every read into a busy loop that never yields to the timer.
pub(crate) struct Ready {
    wait: Rc<Wait>,
}

/// Wait until `pollable` is ready.
pub(crate) fn ready(pollable: Pollable) -> Ready {
    Ready {
        wait: Rc::new(Wait {
            pollable,
            fired: Cell::new(false),
        }),
    }
}

impl Future for Ready {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.wait.fired.get() {
            return Poll::Ready(());
        }
        let entry = (Rc::downgrade(&self.wait), cx.waker().clone());
        WAITS.with_borrow_mut(|waits| waits.push(entry));
        Poll::Pending
    }
}

/// The time on `wasi:clocks/monotonic-clock` (since an arbitrary origin).
pub(crate) fn now() -> Duration {
    Duration::from_nanos(monotonic_clock::now())
}

/// The longest single timer [`sleep`] registers with the host.
const TIMER_STEP_NS: u64 = 60 * 1_000_000_000;

/// Sleep for `duration` on the `wasi:clocks/monotonic-clock` timer (run it under [`block_on`]).
///
/// The host timer is armed for at most a minute at a time, so that no host has to represent a
/// huge deadline; a longer wait re-arms. A duration too large for the clock (such as
/// `Duration::MAX`) never ends.
pub async fn sleep(duration: Duration) {
    let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
    let deadline = monotonic_clock::now().checked_add(nanos);
    loop {
        let now = monotonic_clock::now();
        let step = now.saturating_add(TIMER_STEP_NS);
        let until = match deadline {
            Some(deadline) if now >= deadline => return,
            Some(deadline) => deadline.min(step),
            None => step,
        };
        ready(monotonic_clock::subscribe_instant(until)).await;
    }
}
