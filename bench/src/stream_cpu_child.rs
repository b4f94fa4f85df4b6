//! The child side of `stream-cpu` (issue 22, item 6): one way of sending a message that sits in a
//! file, one process, the CPU time of the send.
//!
//! `stream-cpu-child --how H --port P --file PATH [--n N]`: connect (the `Mailer`: build a pool
//! of one connection), send the message once the same way as a warm-up (connect, EHLO, the page
//! cache, the allocator: none of it timed), then time N sends (default 1) and print the CPU time
//! (`getrusage`, user + system, every thread: tokio's blocking pool, which reads the file, is
//! threads of this process) and the wall time, per message. Runs on the matrix's runtime
//! (single-threaded, in a `LocalSet`).

use std::path::Path;

use smtp_io_tokio::{Mailer, ReaderBody, SizeCounter, SmtpClient, TlsMode, TokioTransport};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::common::{Args, Stopwatch, print_result};

const FROM: &str = "sender@bench.test";
const TO: &[&str] = &["rcpt0@bench.test"];

/// The ways, in the table's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum How {
    /// `SmtpClient::send_mail_bytes`, the file read into memory before the timer starts.
    Bytes,
    /// For reference: `tokio::fs::read(path)`, then `send_mail_bytes`, both timed (what a caller
    /// without streaming does with a file).
    ReadThenBytes,
    /// `SmtpClient::send_mail_stream` of `ReaderBody::open(path)` (256 KiB reads).
    Stream,
    /// The same with `ReaderBody::open` as it was before commit fc56b6e (8 KiB reads).
    Stream8k,
    /// `Mailer::send_file(path)`, a pool of one connection.
    PoolFile,
    /// `Mailer::send_stream` with the old `ReaderBody::open` (what `send_file` did before).
    Pool8k,
}

impl How {
    pub const ALL: [How; 6] = [
        How::Bytes,
        How::ReadThenBytes,
        How::Stream,
        How::Stream8k,
        How::PoolFile,
        How::Pool8k,
    ];

    pub fn name(self) -> &'static str {
        match self {
            How::Bytes => "bytes",
            How::ReadThenBytes => "read-bytes",
            How::Stream => "stream",
            How::Stream8k => "stream-8k",
            How::PoolFile => "pool-file",
            How::Pool8k => "pool-8k",
        }
    }

    /// What the table calls it.
    pub fn label(self) -> &'static str {
        match self {
            How::Bytes => "(a) `SmtpClient::send_mail_bytes`, the bytes in memory",
            How::ReadThenBytes => {
                "for reference: `tokio::fs::read(path)`, then `send_mail_bytes` (the read timed too)"
            }
            How::Stream => {
                "(b) `SmtpClient::send_mail_stream` of `ReaderBody::open(path)` (256 KiB reads)"
            }
            How::Stream8k => {
                "(b) before: the same with `ReaderBody::open` as before `fc56b6e` (8 KiB reads)"
            }
            How::PoolFile => "(c) `Mailer::send_file(path)` (the pool, one connection)",
            How::Pool8k => {
                "(c) before: `Mailer::send_stream` with the old `ReaderBody::open` (8 KiB reads)"
            }
        }
    }

    fn parse(s: &str) -> How {
        How::ALL
            .into_iter()
            .find(|h| h.name() == s)
            .unwrap_or_else(|| panic!("unknown --how {s:?}"))
    }
}

/// `ReaderBody::open` as it was before commit fc56b6e, rebuilt from the public API: the size as
/// sent counted in 64 KiB reads (`size_as_sent` then), then the body read 8 KiB at a time
/// (`ReaderBody::new` then).
async fn open_8k(path: &Path) -> std::io::Result<ReaderBody<tokio::fs::File>> {
    let mut file = tokio::fs::File::open(path).await?;
    let start = file.stream_position().await?;
    let mut counter = SizeCounter::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        counter.update(&buf[..n]);
    }
    file.seek(std::io::SeekFrom::Start(start)).await?;
    Ok(ReaderBody::new(file)
        .with_chunk_size(8 * 1024)
        .with_size_hint(counter.total()))
}

enum Sender {
    Client(Box<SmtpClient<TokioTransport>>),
    Pool(Mailer),
}

type Error = Box<dyn std::error::Error>;

/// Send the message once, `how`; `bytes` is the file's content (for `Bytes` only).
async fn send(how: How, sender: &mut Sender, path: &Path, bytes: &[u8]) -> Result<(), Error> {
    match (how, sender) {
        (How::Bytes, Sender::Client(c)) => {
            c.send_mail_bytes(FROM, TO, bytes).await?;
        }
        (How::ReadThenBytes, Sender::Client(c)) => {
            let bytes = tokio::fs::read(path).await?;
            c.send_mail_bytes(FROM, TO, &bytes).await?;
        }
        (How::Stream, Sender::Client(c)) => {
            let mut body = ReaderBody::open(path).await?;
            c.send_mail_stream(FROM, TO, &mut body).await?;
        }
        (How::Stream8k, Sender::Client(c)) => {
            let mut body = open_8k(path).await?;
            c.send_mail_stream(FROM, TO, &mut body).await?;
        }
        (How::PoolFile, Sender::Pool(m)) => {
            m.send_file(FROM, TO, path).await?;
        }
        (How::Pool8k, Sender::Pool(m)) => {
            m.send_stream(FROM, TO, || open_8k(path)).await?;
        }
        _ => unreachable!("a client for the client ways, a pool for the pool's"),
    }
    Ok(())
}

pub fn cmd(args: &Args) {
    let how = How::parse(&args.str("how", "bytes"));
    let port: u16 = args.num("port", 0);
    let path = std::path::PathBuf::from(args.str("file", ""));
    let n: usize = args.num("n", 1).max(1);
    let (wall, user, sys) = crate::block_on(async {
        // In memory before anything is timed (for `Bytes` only: the others read the file).
        let bytes = if how == How::Bytes {
            tokio::fs::read(&path).await.expect("read --file")
        } else {
            Vec::new()
        };
        let mut sender = match how {
            How::PoolFile | How::Pool8k => Sender::Pool(
                Mailer::builder("127.0.0.1", port, TlsMode::None, "bench.test")
                    .max_connections(1)
                    .build()
                    .expect("mailer"),
            ),
            _ => Sender::Client(Box::new(
                smtp_io_tokio::connect_plain("127.0.0.1", port, "bench.test")
                    .await
                    .expect("connect"),
            )),
        };
        send(how, &mut sender, &path, &bytes)
            .await
            .expect("warm-up message");
        let watch = Stopwatch::start();
        for _ in 0..n {
            send(how, &mut sender, &path, &bytes).await.expect("send");
        }
        let times = watch.read();
        match sender {
            Sender::Client(c) => {
                let _ = (*c).quit().await;
            }
            Sender::Pool(m) => m.shutdown().await,
        }
        times
    });
    let per = |d: std::time::Duration| d.as_secs_f64() * 1e3 / n as f64;
    print_result(&[
        ("n", n as f64),
        ("cpu_ms", per(user + sys)),
        ("user_ms", per(user)),
        ("sys_ms", per(sys)),
        ("wall_ms", per(wall)),
    ]);
}
