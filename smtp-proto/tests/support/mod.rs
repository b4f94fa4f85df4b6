//! What the whole-client tests in memory share: a transport that hands what the client writes to
//! an in-memory server and reads back its replies, and a runner for calls on it.

use std::collections::VecDeque;
use std::io;
use std::task::{Context, Poll, Waker};

use smtp_proto::Transport;

/// The server side of an [`InMemory`] transport.
pub trait Server {
    /// The client wrote `bytes`: answer into `replies` whatever they complete.
    fn written(&mut self, bytes: &[u8], replies: &mut VecDeque<u8>);
}

/// A transport to an in-memory server: every reply is there as soon as its command is written,
/// so no call ever waits (the timer never fires, the clock stands still).
pub struct InMemory<S> {
    replies: VecDeque<u8>,
    /// The server, to look at after the calls.
    pub server: S,
}

impl<S: Server> InMemory<S> {
    /// A connection to `server`, which has sent `greeting`; `capacity` bytes of replies fit
    /// without growing a buffer.
    pub fn new(server: S, greeting: &[u8], capacity: usize) -> InMemory<S> {
        let mut replies = VecDeque::with_capacity(capacity);
        replies.extend(greeting);
        InMemory { replies, server }
    }
}

impl<S: Server> Transport for InMemory<S> {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.replies.len());
        for (slot, byte) in buf.iter_mut().zip(self.replies.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }

    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.server.written(buf, &mut self.replies);
        Ok(())
    }

    async fn close(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Every reply is already there: the timer never fires.
    fn sleep(_duration: core::time::Duration) -> impl Future<Output = ()> {
        core::future::pending()
    }

    fn now() -> core::time::Duration {
        core::time::Duration::ZERO
    }
}

/// The in-memory transport never returns Pending, so polling once runs a call to completion.
pub fn run<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the in-memory transport never blocks"),
    }
}
