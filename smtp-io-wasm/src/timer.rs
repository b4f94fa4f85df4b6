//! The runtime's timer on Workers: [`sleep`], a `setTimeout` promise cleared when dropped.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::fmt;

use js_sys::{Function, Promise};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

use crate::sys;

/// The longest delay `setTimeout` takes (a signed 32-bit count of milliseconds); longer delays
/// would fire at once.
const MAX_TIMER_MS: u128 = i32::MAX as u128;

/// A future that completes after a delay, from the runtime's `setTimeout`. Dropping it clears the
/// timer and settles its promise, so that nothing of it is kept: a `JsFuture` whose promise never
/// settles keeps its callbacks and their state alive for as long as the isolate lives.
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    timer: JsFuture,
    id: JsValue,
    /// The promise's `resolve`, called when the sleep is dropped before it fired.
    resolve: Option<Function>,
    fired: bool,
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("fired", &self.fired)
            .finish_non_exhaustive()
    }
}

/// Sleep for `duration` on the runtime's timer (delays past ~24.8 days are clamped to that).
pub fn sleep(duration: Duration) -> Sleep {
    let ms = duration.as_millis().min(MAX_TIMER_MS) as f64;
    let mut id = JsValue::UNDEFINED;
    let mut settle = None;
    let promise = Promise::new(&mut |resolve, _reject| {
        id = sys::set_timeout(&resolve, ms);
        settle = Some(resolve);
    });
    Sleep {
        timer: JsFuture::from(promise),
        id,
        // The executor runs at once, inside `Promise::new`.
        resolve: settle,
        fired: false,
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.fired {
            return Poll::Ready(());
        }
        match Pin::new(&mut self.timer).poll(cx) {
            Poll::Ready(_) => {
                self.fired = true;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if !self.fired {
            sys::clear_timeout(&self.id);
            // Settled, the promise lets go of the `JsFuture`'s callbacks (a cleared timer would
            // leave it pending, and them alive, for good: about 750 bytes a sleep).
            if let Some(resolve) = &self.resolve {
                let _ = resolve.call0(&JsValue::UNDEFINED);
            }
        }
    }
}
