//! The progress bar of a large send, on standard error, with `indicatif`.
//!
//! Shown only when standard error is a terminal and the message is larger than
//! [`THRESHOLD`] (a message of unknown size, from a pipe, gets a byte counter once that much
//! was read). Otherwise nothing at all is printed, so scripts and logs see no extra bytes. The
//! bar counts the message as it is read for sending (the client reads one chunk ahead of the
//! socket), and is erased when the message has been read, or when the send ends early.

use std::io::IsTerminal;
use std::pin::Pin;
use std::task::{Context, Poll};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::io::{AsyncRead, ReadBuf};

/// Messages larger than this (4 MiB) show progress on a terminal.
pub const THRESHOLD: u64 = 4 * 1024 * 1024;

/// An [`AsyncRead`] that reports what was read from it on a progress bar.
pub struct ProgressReader<R> {
    inner: R,
    total: Option<u64>,
    read: u64,
    enabled: bool,
    bar: Option<ProgressBar>,
}

impl<R> std::fmt::Debug for ProgressReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgressReader")
            .field("total", &self.total)
            .field("read", &self.read)
            .field("shown", &self.bar.is_some())
            .finish_non_exhaustive()
    }
}

impl<R: AsyncRead + Unpin> ProgressReader<R> {
    /// Wrap `inner`, of `total` bytes when known; progress is shown only if `enabled` (the
    /// caller passes whether standard error is a terminal) and the message is large enough.
    pub fn new(inner: R, total: Option<u64>, enabled: bool) -> ProgressReader<R> {
        ProgressReader {
            inner,
            total,
            read: 0,
            enabled,
            bar: None,
        }
    }

    /// Whether a bar is being shown.
    pub fn is_shown(&self) -> bool {
        self.bar.is_some()
    }

    fn update(&mut self) {
        if self.bar.is_none() && self.enabled {
            let large = match self.total {
                Some(total) => total > THRESHOLD,
                None => self.read > THRESHOLD,
            };
            if large {
                self.bar = Some(new_bar(self.total));
            }
        }
        if let Some(bar) = &self.bar {
            bar.set_position(self.read);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

fn new_bar(total: Option<u64>) -> ProgressBar {
    let target = ProgressDrawTarget::stderr();
    match total {
        Some(total) => {
            let style = ProgressStyle::with_template(
                "sending {bar:30} {bytes}/{total_bytes} ({binary_bytes_per_sec}, {eta} left)",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            ProgressBar::with_draw_target(Some(total), target).with_style(style)
        }
        None => {
            let style = ProgressStyle::with_template("sending {bytes} ({binary_bytes_per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            ProgressBar::with_draw_target(None, target).with_style(style)
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for ProgressReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            let n = buf.filled().len() - before;
            if n == 0 {
                self.finish();
            } else {
                self.read += n as u64;
                self.update();
            }
        }
        result
    }
}

impl<R> Drop for ProgressReader<R> {
    fn drop(&mut self) {
        // Erase the bar before anything else is printed (an error line, the result).
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// `reader` with a progress bar when standard error is a terminal, as a boxed reader.
pub fn wrap(
    reader: impl AsyncRead + Unpin + Send + 'static,
    total: Option<u64>,
) -> Box<dyn AsyncRead + Unpin + Send> {
    Box::new(ProgressReader::new(
        reader,
        total,
        std::io::stderr().is_terminal(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn drain(reader: &mut ProgressReader<&[u8]>) -> Vec<bool> {
        let mut shown = Vec::new();
        let mut buf = vec![0; 1024 * 1024];
        loop {
            let n = reader.read(&mut buf).await.unwrap();
            shown.push(reader.is_shown());
            if n == 0 {
                return shown;
            }
        }
    }

    #[tokio::test]
    async fn shown_only_when_enabled_and_large() {
        let big = vec![b'x'; 5 * 1024 * 1024];
        let small = vec![b'x'; 1024];
        // Disabled (not a terminal): never, whatever the size.
        let mut r = ProgressReader::new(&big[..], Some(big.len() as u64), false);
        assert!(drain(&mut r).await.iter().all(|s| !s));
        // Small: never.
        let mut r = ProgressReader::new(&small[..], Some(1024), true);
        assert!(drain(&mut r).await.iter().all(|s| !s));
        // Large and known: from the first read, erased at the end.
        let mut r = ProgressReader::new(&big[..], Some(big.len() as u64), true);
        let shown = drain(&mut r).await;
        assert!(shown[0], "{shown:?}");
        assert_eq!(shown.last(), Some(&false));
        // Unknown size: once more than the threshold was read.
        let mut r = ProgressReader::new(&big[..], None, true);
        let shown = drain(&mut r).await;
        assert!(!shown[0] && shown.iter().any(|s| *s), "{shown:?}");
        assert_eq!(shown.last(), Some(&false));
    }
}
