//! smtp-bench: smtp-io-tokio against lettre and mail-send. See README.md; run with `run.sh`.
//!
//! Subcommands (the matrix runs every measurement as a child process of this same binary, so
//! each flavour's CPU time and peak memory are its own):
//!
//! - `send --flavour F --port P [--host H] --n N --size S --rcpt R --conns C`: connect C
//!   connections, send one warm-up message on each, then time N messages of S bytes to R
//!   recipients spread over them. Prints wall time and CPU time of the timed part.
//! - `rss --flavour F --port P --file PATH`: send one message from a file (ours streams it, the
//!   peers read it into memory), print the peak RSS (VmHWM).
//! - `ping --port P [--count K]`: median NOOP round-trip time on one warm connection.
//! - `sink --port P [--no-chunking] [--starttls --ca-out PATH] [--close-after N]`: a sink offering
//!   PIPELINING and CHUNKING (or not), optionally STARTTLS (its throw-away CA written to PATH),
//!   optionally closing a connection after N messages.
//! - `proxy --port P --to HOST:PORT --delay-ms D`: a delay line, D ms each way.
//! - `matrix --sink-port P [--reps K] [--quick]`: everything above, alternately, medians, one
//!   markdown table.
//! - `criterion --dir TARGET/criterion`: summarise `cargo bench -p smtp-proto` as table rows.
//! - `pool [--reps K] [--quick]`: the pool measurements (issue 15), one table; its children are
//!   `pool-send` and `pool-rss` (see `pool_child.rs`).
//! - `pool-cost [--quick]`: the pool's cost against bare clients in instructions and syscalls
//!   per message (callgrind, strace; see `pool_cost.rs`).
//! - `stream-cpu [--reps K] [--quick] [--size S]`: the client CPU time of one 10 MiB message in
//!   memory, streamed from a file, and through the pool's `send_file` (issue 22, item 6); its
//!   child is `stream-cpu-child` (see `stream_cpu_child.rs`).
//! - `pool-shutdown [--reps K] [--quick] [--conns C] [--delay-ms D]`: `Mailer::shutdown` of C
//!   idle connections at +2D ms RTT, in round trips (issue 22, item 7); its child is
//!   `pool-shutdown-child` (see `pool_shutdown_child.rs`).
//! - `pool-wan [--reps K] [--quick] [--tasks T] [--pool P] [--n N] [--delay-ms D]`: T tasks
//!   sharing a pool of P at +2D ms RTT, our pool with and without chained flights and lettre's
//!   (issue 23, item 4); its children are `pool-send` (see `pool_wan.rs`).

mod clients;
mod common;
mod criterion;
mod harness;
mod matrix;
mod pool;
mod pool_case;
mod pool_child;
mod pool_cost;
mod pool_shutdown;
mod pool_shutdown_child;
mod pool_table;
mod pool_wan;
mod proxy;
mod sink;
mod stream_cpu;
mod stream_cpu_child;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clients::{Conn, Flavour};
use common::{Args, Stopwatch, join_all, print_result, proc_status_kib};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Run `fut` on a single-threaded runtime (the same for every flavour) inside a LocalSet.
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    let local = tokio::task::LocalSet::new();
    runtime().block_on(local.run_until(fut))
}

fn recipients(r: usize) -> Vec<String> {
    (0..r).map(|i| format!("rcpt{i}@bench.test")).collect()
}

const FROM: &str = "sender@bench.test";

fn cmd_send(args: &Args) {
    let flavour = Flavour::parse(&args.str("flavour", "ours"));
    let host = args.str("host", "127.0.0.1");
    let port: u16 = args.num("port", 0);
    let n: usize = args.num("n", 1000);
    let size: usize = args.num("size", 1024);
    let rcpt: usize = args.num("rcpt", 1);
    let conns: usize = args.num("conns", 1).max(1);
    let body = common::message(size);
    let to = recipients(rcpt);
    let (wall, user, sys) = block_on(async {
        let mut clients = Vec::new();
        for _ in 0..conns {
            let mut conn = Conn::connect(flavour, &host, port).await.expect("connect");
            let to: Vec<&str> = to.iter().map(String::as_str).collect();
            conn.send(FROM, &to, &body).await.expect("warm-up message");
            clients.push(conn);
        }
        let watch = Stopwatch::start();
        let mut tasks = Vec::new();
        for (i, mut conn) in clients.into_iter().enumerate() {
            // Spread N over C connections (the first ones take the remainder).
            let share = n / conns + usize::from(i < n % conns);
            let body = body.clone();
            let to = to.clone();
            tasks.push(tokio::task::spawn_local(async move {
                let to: Vec<&str> = to.iter().map(String::as_str).collect();
                if flavour == Flavour::OursBatch {
                    conn.send_batch(FROM, &to, &body, share)
                        .await
                        .expect("send");
                } else {
                    for _ in 0..share {
                        conn.send(FROM, &to, &body).await.expect("send");
                    }
                }
                conn
            }));
        }
        let clients = join_all(tasks).await;
        let times = watch.read();
        for c in clients {
            let _ = c.quit().await;
        }
        times
    });
    let cpu = user + sys;
    print_result(&[
        ("n", n as f64),
        ("wall_s", wall.as_secs_f64()),
        ("cpu_s", cpu.as_secs_f64()),
        ("msgs_per_s", n as f64 / wall.as_secs_f64()),
        ("cpu_us_per_msg", cpu.as_secs_f64() * 1e6 / n as f64),
        ("user_us_per_msg", user.as_secs_f64() * 1e6 / n as f64),
        ("sys_us_per_msg", sys.as_secs_f64() * 1e6 / n as f64),
    ]);
}

fn cmd_rss(args: &Args) {
    let flavour = Flavour::parse(&args.str("flavour", "ours"));
    let host = args.str("host", "127.0.0.1");
    let port: u16 = args.num("port", 0);
    let path = PathBuf::from(args.str("file", ""));
    let (base, wall) = block_on(async {
        let mut conn = Conn::connect(flavour, &host, port).await.expect("connect");
        let base = proc_status_kib("VmHWM");
        let t0 = Instant::now();
        conn.send_file(FROM, &["rcpt0@bench.test"], &path)
            .await
            .expect("send");
        let wall = t0.elapsed();
        let _ = conn.quit().await;
        (base, wall)
    });
    print_result(&[
        ("hwm_kib", proc_status_kib("VmHWM") as f64),
        ("base_hwm_kib", base as f64),
        ("wall_s", wall.as_secs_f64()),
    ]);
}

fn cmd_ping(args: &Args) {
    let host = args.str("host", "127.0.0.1");
    let port: u16 = args.num("port", 0);
    let count: usize = args.num("count", 20);
    let mut rtts: Vec<Duration> = block_on(async {
        let mut conn = Conn::connect(Flavour::Ours, &host, port)
            .await
            .expect("connect");
        conn.noop().await.expect("noop");
        let mut rtts = Vec::new();
        for _ in 0..count {
            let t0 = Instant::now();
            conn.noop().await.expect("noop");
            rtts.push(t0.elapsed());
        }
        let _ = conn.quit().await;
        rtts
    });
    rtts.sort();
    print_result(&[("rtt_ms", rtts[rtts.len() / 2].as_secs_f64() * 1e3)]);
}

fn listen(args: &Args) -> tokio::net::TcpListener {
    let addr = format!(
        "{}:{}",
        args.str("host", "127.0.0.1"),
        args.num::<u16>("port", 0)
    );
    let std = std::net::TcpListener::bind(&addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    std.set_nonblocking(true).unwrap();
    eprintln!("listening on {}", std.local_addr().unwrap());
    tokio::net::TcpListener::from_std(std).unwrap()
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = argv.split_first() else {
        eprintln!(
            "usage: smtp-bench send|rss|ping|sink|proxy|matrix|criterion|pool|pool-cost|stream-cpu|pool-shutdown|pool-wan [--options]"
        );
        std::process::exit(2);
    };
    let args = Args::parse(rest);
    match cmd.as_str() {
        "send" => cmd_send(&args),
        "rss" => cmd_rss(&args),
        "ping" => cmd_ping(&args),
        "sink" => {
            let tls = args
                .flag("starttls")
                .then(|| sink::tls_acceptor(args.str("ca-out", "ca.pem").as_ref()).expect("TLS"));
            let options = sink::Options {
                chunking: !args.flag("no-chunking"),
                tls,
                close_after: args.get("close-after").map(|_| args.num("close-after", 0)),
                size_limit: args.num("size-limit", 0),
            };
            block_on(async { sink::serve(listen(&args), options).await.expect("sink") })
        }
        "proxy" => {
            let to = args.str("to", "");
            let delay = Duration::from_secs_f64(args.num::<f64>("delay-ms", 5.0) / 1e3);
            block_on(async { proxy::serve(listen(&args), to, delay).await.expect("proxy") })
        }
        "matrix" => matrix::run(&args),
        "criterion" => criterion::run(&args),
        "pool" => pool::run(&args),
        "pool-send" => pool_child::cmd_send(&args),
        "pool-rss" => pool_child::cmd_rss(&args),
        "pool-cost" => pool_cost::run(&args),
        "stream-cpu" => stream_cpu::run(&args),
        "stream-cpu-child" => stream_cpu_child::cmd(&args),
        "pool-shutdown" => pool_shutdown::run(&args),
        "pool-shutdown-child" => pool_shutdown_child::cmd(&args),
        "pool-wan" => pool_wan::run(&args),
        other => {
            eprintln!("unknown subcommand {other:?}");
            std::process::exit(2);
        }
    }
}
