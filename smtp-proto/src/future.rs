//! The one future combinator the driver, the connect steps and the adapters need: [`race`] two
//! futures, the first to finish wins. Runtime-free (no executor, timer or allocation), so every
//! adapter bounds its own waits with it (a connect raced with its runtime's timer) the way the
//! driver bounds reads and writes.

use core::future::{Future, poll_fn};
use core::pin::pin;
use core::task::Poll;

/// Which of the two futures given to [`race`] finished first, with its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Either<A, B> {
    /// The first future (`a`) finished first.
    Left(A),
    /// The second future (`b`) finished first.
    Right(B),
}

/// Run `a` and `b` concurrently on the current task; the first to finish wins, and the other is
/// dropped unfinished when the race ends.
///
/// Guarantees:
/// - each poll of the race polls `a` first, then `b` only if `a` is still pending: when both are
///   ready in the same poll, `a` wins (the driver races I/O against a timer, so bytes that
///   arrived are never discarded for a timeout that fired at the same moment);
/// - a future is never polled again after it finished (the race returns at once);
/// - both futures are dropped when the race returns or is itself dropped: a loser's drop (a timer
///   cleared, a read abandoned) has happened by the time the caller sees the result;
/// - nothing else: no executor, no timer, no allocation, no `Unpin` bound (the futures are
///   pinned inside the race). It is as cancel-safe as its two futures are.
///
/// ```
/// use smtp_proto::future::{Either, race};
///
/// # fn block_on<F: core::future::Future>(f: F) -> F::Output {
/// #     let mut f = core::pin::pin!(f);
/// #     let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
/// #     loop { if let core::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// let first = block_on(race(core::future::ready(1), core::future::pending::<()>()));
/// assert_eq!(first, Either::Left(1));
/// ```
pub async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(x) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(x));
        }
        if let Poll::Ready(y) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(y));
        }
        Poll::Pending
    })
    .await
}

/// Poll `f` to its end on the calling thread, for tests whose futures never truly wait (a
/// scripted transport is always ready): a future still pending after 1,000 polls waits on
/// something its script never gives, and panics rather than spins.
#[cfg(all(test, feature = "client"))]
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    for _ in 0..1000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("the future waits on something its script never gives");
}

#[cfg(test)]
mod tests {
    use core::future::{Future, pending, ready};
    use core::pin::{Pin, pin};
    use core::task::{Context, Poll, Waker};
    use std::boxed::Box;
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::vec::Vec;

    use super::*;

    /// Poll `f` once with a waker that does nothing.
    fn poll_once<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }

    /// Ready after it has been polled `polls` times; counts its polls and records its drop.
    struct After {
        polls: usize,
        seen: Rc<Cell<usize>>,
        name: &'static str,
        dropped: Rc<RefCell<Vec<&'static str>>>,
    }

    impl Future for After {
        type Output = &'static str;

        fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<&'static str> {
            self.seen.set(self.seen.get() + 1);
            if self.seen.get() >= self.polls {
                Poll::Ready(self.name)
            } else {
                Poll::Pending
            }
        }
    }

    impl Drop for After {
        fn drop(&mut self) {
            self.dropped.borrow_mut().push(self.name);
        }
    }

    fn after(polls: usize, name: &'static str, dropped: &Rc<RefCell<Vec<&'static str>>>) -> After {
        After {
            polls,
            seen: Rc::new(Cell::new(0)),
            name,
            dropped: dropped.clone(),
        }
    }

    #[test]
    fn race_ends_with_the_first_future() {
        let dropped = Rc::default();
        let (a, b) = (after(3, "a", &dropped), after(2, "b", &dropped));
        let (a_polls, b_polls) = (a.seen.clone(), b.seen.clone());
        let mut r = pin!(race(a, b));
        assert!(poll_once(r.as_mut()).is_pending());
        assert!(
            dropped.borrow().is_empty(),
            "nothing dropped while both run"
        );
        assert_eq!(poll_once(r.as_mut()), Poll::Ready(Either::Right("b")));
        // The winner finished, the loser was polled as often and dropped with it, before the
        // caller saw the result.
        assert_eq!((a_polls.get(), b_polls.get()), (2, 2));
        let mut gone = dropped.borrow().clone();
        gone.sort_unstable();
        assert_eq!(gone, ["a", "b"]);
    }

    #[test]
    fn the_first_future_wins_a_tie_and_the_second_is_not_polled() {
        let dropped = Rc::default();
        let b = after(1, "b", &dropped);
        let b_polls = b.seen.clone();
        let mut r = pin!(race(ready("a"), b));
        assert_eq!(poll_once(r.as_mut()), Poll::Ready(Either::Left("a")));
        assert_eq!(b_polls.get(), 0);
        assert_eq!(*dropped.borrow(), ["b"]);
    }

    #[test]
    fn a_race_of_two_pending_futures_stays_pending_and_drops_both() {
        let dropped = Rc::default();
        let mut r = Box::pin(race(after(usize::MAX, "a", &dropped), pending::<()>()));
        for _ in 0..3 {
            assert!(poll_once(r.as_mut()).is_pending());
        }
        drop(r);
        assert_eq!(*dropped.borrow(), ["a"]);
    }
}
