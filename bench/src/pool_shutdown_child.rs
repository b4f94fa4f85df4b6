//! The child side of `pool-shutdown` (issue 22, item 7): C idle connections through the delay
//! line, then the wall time of ending them all.
//!
//! `pool-shutdown-child --how H --port P --stats-port S --conns C`, `P` the delay line, `S` the
//! sink behind it (for `XSTATS`):
//!
//! - `pool`: a `Mailer` with `max_connections(C)`; C messages sent at once open C connections,
//!   which then sit idle (`connections()` says so); timed: `mailer.shutdown().await`.
//! - `bare-one-by-one`: C bare `SmtpClient`s, one message each; timed: `quit()` on each, one
//!   after another (what the pool's `shutdown` did before issue 22).
//! - `bare-at-once`: the same, every `quit()` in a task of its own at once (the floor).
//!
//! Runs on the pool children's runtime (multi-threaded, 2 workers).

use std::sync::Arc;
use std::time::Instant;

use smtp_io_tokio::{Mailer, TlsMode};

use crate::common::{Args, join_all, print_result};
use crate::pool_child::{runtime, sink_stats};

const HOST: &str = "127.0.0.1";
const HELO: &str = "bench.test";
const FROM: &str = "sender@bench.test";
const TO: &[&str] = &["rcpt0@bench.test"];

pub fn cmd(args: &Args) {
    let how = args.str("how", "pool");
    let port: u16 = args.num("port", 0);
    let stats_port: u16 = args.num("stats-port", port);
    let conns: usize = args.num("conns", 64).max(1);
    let body = Arc::new(crate::common::message(1024));
    let rt = runtime(args);
    let fields = rt.block_on(async {
        let before = sink_stats(stats_port).await.expect("sink stats");
        let mut fields = Vec::new();
        let wall = if how == "pool" {
            let mailer = Mailer::builder(HOST, port, TlsMode::None, HELO)
                .max_connections(conns)
                .build()
                .expect("mailer");
            let mut sends = Vec::new();
            for _ in 0..conns {
                let (mailer, body) = (mailer.clone(), body.clone());
                sends.push(tokio::spawn(async move {
                    mailer.send(FROM, TO, &body).await.expect("send");
                }));
            }
            for s in sends {
                s.await.expect("task");
            }
            let idle = mailer.connections();
            fields.push(("open_before", idle.open as f64));
            fields.push(("idle_before", idle.idle as f64));
            let t0 = Instant::now();
            mailer.shutdown().await;
            let wall = t0.elapsed();
            let stats = mailer.stats();
            fields.push(("open_after", mailer.connections().open as f64));
            fields.push(("opened", stats.opened as f64));
            fields.push(("quit", stats.quit as f64));
            wall
        } else {
            let mut opening = Vec::new();
            for _ in 0..conns {
                let body = body.clone();
                opening.push(tokio::spawn(async move {
                    let mut c = smtp_io_tokio::connect_plain(HOST, port, HELO)
                        .await
                        .expect("connect");
                    c.send_mail_bytes(FROM, TO, &body).await.expect("send");
                    c
                }));
            }
            let clients = join_all(opening).await;
            let t0 = Instant::now();
            match how.as_str() {
                "bare-one-by-one" => {
                    for c in clients {
                        c.quit().await.expect("quit");
                    }
                }
                "bare-at-once" => {
                    let quits: Vec<_> = clients
                        .into_iter()
                        .map(|c| tokio::spawn(async move { c.quit().await.expect("quit") }))
                        .collect();
                    for q in quits {
                        q.await.expect("task");
                    }
                }
                other => panic!("unknown --how {other:?}"),
            }
            t0.elapsed()
        };
        let after = sink_stats(stats_port).await.expect("sink stats");
        // Minus the XSTATS connection of `after` itself.
        fields.push(("accepted", after["accepted"] - before["accepted"] - 1.0));
        fields.push(("wall_ms", wall.as_secs_f64() * 1e3));
        fields
    });
    print_result(&fields);
}
