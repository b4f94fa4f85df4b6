//! One rate limit for two processes (feature `redis`): two pools, each in a process of its own,
//! share a `SharedRateLimit` kept in a real `redis-server` this test starts on a Unix socket.
//! Against an SMTP server that answers `421` above its own limit, together they never reach
//! it: every message is delivered once, none refused, in no less than the ideal time. (The test
//! runs its own binary twice as the senders.)

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "common/limited.rs"]
mod limited;

use limited::{Seen, limited_server};
use smtp_io_tokio::{Mailer, SendError, SharedRateLimit, SmtpError, TlsMode};

const PER_SECOND: u32 = 10;
const EACH: usize = 10;

/// A `redis-server` on a Unix socket in `dir`, no persistence; killed when dropped.
struct Redis(Child, PathBuf);

impl Redis {
    fn start(dir: &Path) -> Redis {
        let socket = dir.join("redis.sock");
        // A socket left by a server killed before: the new one is up when it makes its own.
        let _ = std::fs::remove_file(&socket);
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no"])
            .arg("--unixsocket")
            .arg(&socket)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server; scripts/test.sh installs it)");
        let redis = Redis(child, socket);
        let up =
            smtp_testkit::wait::poll_blocking(200, Duration::from_millis(25), || redis.1.exists());
        assert!(up, "redis-server did not open its socket");
        redis
    }

    fn url(&self) -> String {
        format!("redis+unix://{}", self.1.display())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One sending process: `EACH` messages through a pool limited by the shared limit.
#[test]
fn sender_process() {
    let Ok(port) = std::env::var("SHARED_LIMIT_SMTP_PORT") else {
        return; // Run by the test below as a child process only.
    };
    let url = std::env::var("SHARED_LIMIT_REDIS").unwrap();
    let name = std::env::var("SHARED_LIMIT_NAME").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let limit = SharedRateLimit::per_second(
            &url,
            "smtp:test:shared",
            NonZeroU32::new(PER_SECOND).unwrap(),
        )
        .unwrap();
        let mailer = Mailer::builder("127.0.0.1", port.parse().unwrap(), TlsMode::None, "c.test")
            .max_connections(3)
            .throttle(limit)
            .build()
            .unwrap();
        let tasks: Vec<_> = (0..EACH)
            .map(|i| {
                let mailer = mailer.clone();
                let from = format!("{name}-{i}@test.example");
                tokio::spawn(async move { mailer.send(&from, ["b@test.example"], b"hi\r\n").await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        mailer.shutdown().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_limit() {
    let dir = std::env::temp_dir().join(format!("shared-limit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let redis = Redis::start(&dir);
    let seen = Arc::new(Seen::default());
    let port = limited_server(seen.clone(), PER_SECOND as usize + 1, 0).await;
    let started = Instant::now();
    let children: Vec<Child> = ["one", "two"]
        .into_iter()
        .map(|name| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "sender_process",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("SHARED_LIMIT_SMTP_PORT", port.to_string())
                .env("SHARED_LIMIT_REDIS", redis.url())
                .env("SHARED_LIMIT_NAME", name)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "a sender failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let took = started.elapsed();
    assert_eq!(
        *seen.refused.lock().unwrap(),
        0,
        "the server's limit was exceeded"
    );
    let mut delivered = seen.delivered.lock().unwrap().clone();
    delivered.sort();
    delivered.dedup();
    assert_eq!(delivered.len(), 2 * EACH, "lost or twice: {delivered:?}");
    // 20 messages at 10 a second, one at a time: at least 1.9 s whatever the processes.
    assert!(took >= Duration::from_millis(1850), "{took:?}");
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A scratch folder of this test process for `name`.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shared-limit-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A pool limited (generously) through Redis at `url`, sending to a server on `port`.
fn mailer_through(url: &str, port: u16, timeout: Duration) -> Mailer {
    let limit =
        SharedRateLimit::per_second(url, "smtp:test:restart", NonZeroU32::new(1000).unwrap())
            .unwrap()
            .with_timeout(timeout);
    Mailer::builder("127.0.0.1", port, TlsMode::None, "c.test")
        .wait_timeout(Duration::from_secs(20))
        .throttle(limit)
        .build()
        .unwrap()
}

/// Redis restarts between two messages (or closes the idle connection): the next message is
/// asked for on a new connection and goes. The connection was kept for good, and every later
/// message failed with a broken pipe (found in review).
#[tokio::test]
async fn a_restarted_redis_is_connected_again() {
    let dir = scratch("restart");
    let redis = Redis::start(&dir);
    let port = limited_server(Arc::new(Seen::default()), 1000, 0).await;
    let mailer = mailer_through(&redis.url(), port, Duration::from_secs(2));
    let send = |from: &'static str| {
        let mailer = mailer.clone();
        async move { mailer.send(from, ["b@test.example"], b"hi\r\n").await }
    };
    send("before@test.example").await.unwrap();
    drop(redis);
    let redis = Redis::start(&dir);
    for from in ["after@test.example", "later@test.example"] {
        let sent = send(from).await;
        assert!(sent.is_ok(), "{from}: {sent:?}");
    }
    mailer.shutdown().await;
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A "Redis" that accepts and never answers: the message fails unsent after the limit's own
/// timeout (200 ms here), long before the pool's wait limit (20 s), with an I/O error that
/// says Redis did not answer.
#[tokio::test]
async fn a_silent_redis_fails_the_message_after_its_timeout() {
    let dir = scratch("silent");
    let socket = dir.join("silent.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let port = limited_server(Arc::new(Seen::default()), 1000, 0).await;
    let url = format!("redis+unix://{}", socket.display());
    let mailer = mailer_through(&url, port, Duration::from_millis(200));
    let sent = mailer
        .send("a@test.example", ["b@test.example"], b"hi\r\n")
        .await;
    assert!(
        matches!(
            &sent,
            Err(SendError::NotSent {
                error: SmtpError::Io { .. },
                attempts: 0
            })
        ),
        "{sent:?}"
    );
    assert!(format!("{:?}", sent).contains("redis"), "{sent:?}");
    mailer.shutdown().await;
    held.abort();
    let _ = std::fs::remove_dir_all(&dir);
}
