//! The child side of the pool measurements (issue 15): one flavour, one configuration, one
//! process.
//!
//! - `pool-send --flavour ours|lettre|bare --port P [--stats-port P2] [--ca PATH] --tasks T
//!   --pool K --n N --rcpt R --size S [--data-pipelining always|when-safe] [--max-messages M]
//!   [--chain C]`:
//!   T tokio tasks share
//!   the flavour's sender (bare: one `SmtpClient` per task, no pool); each task sends one
//!   warm-up message, then N messages spread over the tasks are timed. `--max-messages`: ours
//!   and bare reconnect after M messages on a connection (ours: the pool's setting, default
//!   100; bare: QUIT and a new client, default never). `--chain`: ours chains up to C waiting
//!   messages per flight (`MailerBuilder::chain_messages`). `--ca` means STARTTLS,
//!   trusting that CA. Prints msgs/s, CPU, the pool's counters and what the sink saw (`XSTATS`
//!   on `--stats-port`, the sink's own port when the measurement goes through the delay line).
//! - `pool-rss --flavour ours|lettre --port P --ca PATH --conns C`: open C pooled STARTTLS
//!   connections (C concurrent messages), let them sit idle, print the memory they hold.
//!
//! Every child runs on the same tokio runtime: multi-threaded, 2 worker threads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use smtp_io_tokio::{ConnectOptions, DataPipelining, Mailer, SmtpClient, TlsConfig, TlsMode};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::clients::lettre_envelope;
use crate::common::{Args, Stopwatch, join_all, print_result, proc_status_kib};

const HOST: &str = "127.0.0.1";
/// The name the sink's certificate is checked against (it also carries 127.0.0.1).
const TLS_NAME: &str = "localhost";
const HELO: &str = "bench.test";
const FROM: &str = "sender@bench.test";

/// The runtime of every pool child: multi-threaded, 2 workers (a service's shape; the machine
/// has 2 cores).
pub fn runtime(args: &Args) -> tokio::runtime::Runtime {
    match args.num("workers", 2) {
        0 => tokio::runtime::Builder::new_current_thread(),
        w => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(w);
            b
        }
    }
    .enable_all()
    .build()
    .expect("tokio runtime")
}

/// Ask the bench sink on `port` what it saw so far (`XSTATS`, on a plaintext connection of its
/// own, which the `accepted` figure includes).
pub async fn sink_stats(port: u16) -> std::io::Result<HashMap<String, f64>> {
    let tcp = tokio::net::TcpStream::connect((HOST, port)).await?;
    let mut lines = BufReader::new(tcp);
    let mut line = String::new();
    lines.read_line(&mut line).await?; // greeting
    lines.get_mut().write_all(b"XSTATS\r\n").await?;
    line.clear();
    lines.read_line(&mut line).await?;
    lines.get_mut().write_all(b"QUIT\r\n").await?;
    Ok(line
        .split_whitespace()
        .skip(1)
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect())
}

/// A pooled sender shared by every task.
#[derive(Clone)]
enum Pool {
    Ours(Mailer),
    Lettre(AsyncSmtpTransport<Tokio1Executor>),
}

type Error = Box<dyn std::error::Error + Send + Sync>;

impl Pool {
    /// `ca`: STARTTLS trusting this CA PEM; `None`: plaintext.
    fn new(flavour: &str, port: u16, ca: Option<&[u8]>, size: usize, args: &Args) -> Pool {
        match flavour {
            "ours" => {
                let mode = if ca.is_some() {
                    TlsMode::StartTls
                } else {
                    TlsMode::None
                };
                let mut b = Mailer::builder(HOST, port, mode, HELO).max_connections(size);
                if let Some(pem) = ca {
                    b = b
                        .tls_config(TlsConfig::from_ca_pem(pem).expect("CA PEM"))
                        .tls_server_name(TLS_NAME);
                }
                if let Some(m) = args.get("max-messages") {
                    b = b.max_messages_per_connection(m.parse().expect("--max-messages"));
                }
                if let Some(n) = args.get("chain") {
                    b = b.chain_messages(n.parse().expect("--chain"));
                }
                match args.get("data-pipelining") {
                    Some("always") => b = b.data_pipelining(DataPipelining::Always),
                    Some("when-safe") => b = b.data_pipelining(DataPipelining::WhenSafe),
                    Some(other) => panic!("--data-pipelining {other:?}"),
                    None => {}
                }
                Pool::Ours(b.build().expect("mailer"))
            }
            "lettre" => {
                let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(HOST)
                    .port(port)
                    .hello_name(ClientId::Domain(HELO.into()))
                    .pool_config(PoolConfig::new().max_size(size as u32));
                if let Some(pem) = ca {
                    let params = TlsParameters::builder(TLS_NAME.into())
                        .certificate_store(CertificateStore::None)
                        .add_root_certificate(Certificate::from_pem(pem).expect("CA PEM"))
                        .build_rustls()
                        .expect("lettre TLS parameters");
                    b = b.tls(Tls::Required(params));
                }
                Pool::Lettre(b.build())
            }
            other => panic!("no pool flavour {other:?}"),
        }
    }

    async fn send(&self, to: &[&str], body: &[u8]) -> Result<(), Error> {
        match self {
            Pool::Ours(m) => {
                m.send(FROM, to, body).await?;
            }
            Pool::Lettre(t) => {
                let envelope = lettre_envelope::<Error>(FROM, to)?;
                t.send_raw(&envelope, body).await?;
            }
        }
        Ok(())
    }

    async fn shutdown(&self) {
        match self {
            Pool::Ours(m) => m.shutdown().await,
            Pool::Lettre(t) => t.shutdown().await,
        }
    }

    /// The pool's own counters (ours only).
    fn stats(&self) -> Vec<(&'static str, f64)> {
        match self {
            Pool::Ours(m) => {
                let s = m.stats();
                vec![
                    ("pool_opened", s.opened as f64),
                    ("pool_full", s.full_handshakes as f64),
                    ("pool_resumed", s.resumed_handshakes as f64),
                    ("pool_retries", s.retries as f64),
                    ("pool_out_of_step", s.out_of_step as f64),
                ]
            }
            Pool::Lettre(_) => Vec::new(),
        }
    }
}

/// A bare client per task (no pool), as the baseline.
async fn connect_bare(port: u16, ca: Option<&[u8]>) -> SmtpClient {
    let options = match ca {
        Some(pem) => ConnectOptions::new(TlsMode::StartTls)
            .with_tls_config(TlsConfig::from_ca_pem(pem).expect("CA PEM"))
            .with_tls_server_name(TLS_NAME),
        None => ConnectOptions::new(TlsMode::None),
    };
    options.connect(HOST, port, HELO).await.expect("connect")
}

/// The share of `n` messages task `i` of `tasks` sends.
fn share(n: usize, tasks: usize, i: usize) -> usize {
    n / tasks + usize::from(i < n % tasks)
}

pub fn cmd_send(args: &Args) {
    let flavour = args.str("flavour", "ours");
    let port: u16 = args.num("port", 0);
    let stats_port: u16 = args.num("stats-port", port);
    let ca = args.get("ca").map(|p| std::fs::read(p).expect("read --ca"));
    let tasks: usize = args.num("tasks", 1).max(1);
    let pool_size: usize = args.num("pool", tasks.min(8)).max(1);
    let n: usize = args.num("n", 1000);
    let body = Arc::new(crate::common::message(args.num("size", 1024)));
    let to: Arc<Vec<String>> = Arc::new(crate::recipients(args.num("rcpt", 1)));
    let runtime = runtime(args);
    let (wall, cpu, before, mid, after, pool_stats) = runtime.block_on(async {
        let before = sink_stats(stats_port).await.expect("sink stats");
        let mut handles = Vec::new();
        let mut pool_stats = Vec::new();
        if flavour == "bare" {
            let mut warm = Vec::new();
            for _ in 0..tasks {
                let (body, to, ca) = (body.clone(), to.clone(), ca.clone());
                warm.push(tokio::spawn(async move {
                    let mut client = connect_bare(port, ca.as_deref()).await;
                    let to: Vec<&str> = to.iter().map(String::as_str).collect();
                    client
                        .send_mail_bytes(FROM, &to, &body)
                        .await
                        .expect("warm-up");
                    client
                }));
            }
            let clients = join_all(warm).await;
            let mid = sink_stats(stats_port).await.expect("sink stats");
            pool_stats.push(("warm_accepted", mid["accepted"] - before["accepted"] - 1.0));
            let watch = Stopwatch::start();
            // A bare client ends its connection with QUIT and opens a new one after
            // `--max-messages` (the warm-up counts), as the pool does with that setting.
            let cap: usize = args.num("max-messages", usize::MAX).max(1);
            let mut timed = Vec::new();
            for (i, mut client) in clients.into_iter().enumerate() {
                let (body, to, count) = (body.clone(), to.clone(), share(n, tasks, i));
                let ca = ca.clone();
                timed.push(tokio::spawn(async move {
                    let to: Vec<&str> = to.iter().map(String::as_str).collect();
                    let mut on_this = 1;
                    for _ in 0..count {
                        if on_this >= cap {
                            let _ = client.quit().await;
                            client = connect_bare(port, ca.as_deref()).await;
                            on_this = 0;
                        }
                        client
                            .send_mail_bytes(FROM, &to, &body)
                            .await
                            .expect("send");
                        on_this += 1;
                    }
                    client
                }));
            }
            let clients = join_all(timed).await;
            let (wall, user, sys) = watch.read();
            for c in clients {
                let _ = c.quit().await;
            }
            let cpu = user + sys;
            let after = sink_stats(stats_port).await.expect("sink stats");
            return (wall, cpu, before, mid, after, pool_stats);
        }
        let pool = Pool::new(&flavour, port, ca.as_deref(), pool_size, args);
        // Warm-up: every task sends one message at once (the pool opens its connections).
        for _ in 0..tasks {
            let (pool, body, to) = (pool.clone(), body.clone(), to.clone());
            handles.push(tokio::spawn(async move {
                let to: Vec<&str> = to.iter().map(String::as_str).collect();
                pool.send(&to, &body).await.expect("warm-up");
            }));
        }
        for h in handles.drain(..) {
            h.await.expect("task");
        }
        let mid = sink_stats(stats_port).await.expect("sink stats");
        let watch = Stopwatch::start();
        for i in 0..tasks {
            let (pool, body, to, count) =
                (pool.clone(), body.clone(), to.clone(), share(n, tasks, i));
            handles.push(tokio::spawn(async move {
                let to: Vec<&str> = to.iter().map(String::as_str).collect();
                for _ in 0..count {
                    pool.send(&to, &body).await.expect("send");
                }
            }));
        }
        for h in handles {
            h.await.expect("task");
        }
        let (wall, user, sys) = watch.read();
        let cpu = user + sys;
        let after = sink_stats(stats_port).await.expect("sink stats");
        pool_stats.extend(pool.stats());
        pool.shutdown().await;
        pool_stats.push(("warm_accepted", mid["accepted"] - before["accepted"] - 1.0));
        (wall, cpu, before, mid, after, pool_stats)
    });
    let get = |m: &HashMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
    // What the sink saw while the timed part ran, and over the whole run (warm-up included);
    // `accepted` leaves out the XSTATS connections.
    let timed = |k: &str| get(&after, k) - get(&mid, k);
    let all = |k: &str| get(&after, k) - get(&before, k);
    let mut fields = vec![
        ("n", n as f64),
        ("tasks", tasks as f64),
        ("wall_s", wall.as_secs_f64()),
        ("msgs_per_s", n as f64 / wall.as_secs_f64()),
        ("cpu_us_per_msg", cpu.as_secs_f64() * 1e6 / n as f64),
        ("accepted", timed("accepted") - 1.0),
        ("full", timed("full")),
        ("resumed", timed("resumed")),
        ("accepted_all", all("accepted") - 2.0),
        ("full_all", all("full")),
        ("resumed_all", all("resumed")),
        ("capped_all", all("capped")),
    ];
    fields.extend(pool_stats);
    print_result(&fields);
}

pub fn cmd_rss(args: &Args) {
    let flavour = args.str("flavour", "ours");
    let port: u16 = args.num("port", 0);
    let ca = std::fs::read(args.str("ca", "")).expect("read --ca");
    let conns: usize = args.num("conns", 64).max(1);
    let idle = Duration::from_secs_f64(args.num("idle-s", 2.0));
    let body = Arc::new(crate::common::message(1024));
    let runtime = runtime(args);
    let (base, measured, opened) = runtime.block_on(async {
        let before = sink_stats(port).await.expect("sink stats");
        tokio::time::sleep(Duration::from_millis(100)).await;
        trim();
        let base = (proc_status_kib("VmRSS"), proc_status_kib("VmHWM"));
        let pool = Pool::new(&flavour, port, Some(&ca), conns, args);
        // Every connection warmed at once: C messages in flight open C connections.
        let mut handles = Vec::new();
        for _ in 0..conns {
            let (pool, body) = (pool.clone(), body.clone());
            handles.push(tokio::spawn(async move {
                pool.send(&["rcpt0@bench.test"], &body).await.expect("send");
            }));
        }
        for h in handles {
            h.await.expect("task");
        }
        tokio::time::sleep(idle).await;
        let after = sink_stats(port).await.expect("sink stats");
        // Measured while the pool and its idle connections are alive.
        let rss = proc_status_kib("VmRSS");
        trim();
        let measured = (rss, proc_status_kib("VmHWM"), proc_status_kib("VmRSS"));
        pool.shutdown().await;
        (base, measured, after["accepted"] - before["accepted"] - 1.0)
    });
    let ((base_rss, base_hwm), (rss, hwm, trimmed)) = (base, measured);
    print_result(&[
        ("conns", opened),
        ("base_rss_kib", base_rss as f64),
        ("base_hwm_kib", base_hwm as f64),
        ("rss_kib", rss as f64),
        ("hwm_kib", hwm as f64),
        ("rss_per_conn_kib", (rss as f64 - base_rss as f64) / opened),
        ("hwm_per_conn_kib", (hwm as f64 - base_hwm as f64) / opened),
        (
            "trimmed_per_conn_kib",
            (trimmed as f64 - base_rss as f64) / opened,
        ),
    ]);
}

/// Hand the allocator's free pages back to the system (glibc's `malloc_trim`), so that VmRSS
/// shows what is held, not what a burst freed: the handshakes of C connections at once leave
/// freed memory behind.
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and releases the allocator's own free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}
