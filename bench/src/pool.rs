//! The pool measurements (issue 15, "A pool a service shares"): our `Mailer` against lettre's
//! pooled `AsyncSmtpTransport` and against one bare `SmtpClient` per task. Starts its own
//! helpers (bench sinks without CHUNKING: plaintext, STARTTLS, STARTTLS closing after 100
//! messages; a delay line), runs every measurement as a child process (`pool-send`,
//! `pool-rss`), flavours alternating, and prints one markdown table of medians.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::common::Args;
use crate::harness::{
    Kids, QuietWaits, measure, median, ping_rtt, repetition, spawn_helper, strings,
};
use crate::pool_case::{Case, Col, Kind};

pub fn run(args: &Args) {
    let quick = args.flag("quick");
    let reps: usize = args.num("reps", if quick { 1 } else { 5 });
    let delay_ms: f64 = args.num("delay-ms", 5.0);
    let exe = std::env::current_exe().expect("current exe");
    let work = std::env::temp_dir().join(format!("smtp-bench-pool-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work dir");
    let ca = work.join("ca.pem").to_str().unwrap().to_string();
    let ca_cap = work.join("ca-cap.pem").to_str().unwrap().to_string();
    let cap = 100;

    let mut kids = Kids(Vec::new());
    let plain = spawn_helper(&mut kids, &exe, &strings(&["sink", "--no-chunking"]));
    let tls = spawn_helper(
        &mut kids,
        &exe,
        &strings(&["sink", "--no-chunking", "--starttls", "--ca-out", &ca]),
    );
    let capped = spawn_helper(
        &mut kids,
        &exe,
        &strings(&[
            "sink",
            "--no-chunking",
            "--starttls",
            "--ca-out",
            &ca_cap,
            "--close-after",
            &cap.to_string(),
        ]),
    );
    let to_plain = format!("127.0.0.1:{plain}");
    let slow = spawn_helper(
        &mut kids,
        &exe,
        &strings(&[
            "proxy",
            "--to",
            &to_plain,
            "--delay-ms",
            &delay_ms.to_string(),
        ]),
    );

    let q = |full: usize, quick_n: usize| if quick { quick_n } else { full };
    let n = q(4000, 400);
    // lettre's pool leaves Nagle on (it owns its sockets): ~40 ms per message and connection,
    // so fewer messages give its rate in reasonable time.
    let n_lettre = |tasks: usize| n.min(q(100, 20) * tasks);
    let send = |col: Col, n: usize, extra: &[&str]| {
        let mut a = strings(&[
            "pool-send",
            "--flavour",
            col.flavour(),
            "--n",
            &n.to_string(),
        ]);
        a.extend(strings(extra));
        a
    };
    let mut cases = Vec::new();
    for tls_on in [false, true] {
        // Pools of min(tasks, 8), a usual cap; at 16 and 64 tasks also pools of one connection
        // per task, the same number of connections as the bare clients (the pool's own cost).
        for (tasks, k) in [(1, 1), (4, 4), (16, 8), (16, 16), (64, 8), (64, 64)] {
            let (port, via) = if tls_on {
                (tls, "STARTTLS")
            } else {
                (plain, "plaintext")
            };
            let (t, k, p) = (tasks.to_string(), k.to_string(), port.to_string());
            let mut common = vec!["--port", &p, "--tasks", &t, "--pool", &k];
            if tls_on {
                common.extend(["--ca", &ca]);
            }
            let mut a = HashMap::new();
            a.insert(Col::Ours, send(Col::Ours, n, &common));
            let mut uncapped = common.clone();
            uncapped.extend(["--max-messages", "1000000000"]);
            a.insert(Col::OursUncapped, send(Col::Ours, n, &uncapped));
            a.insert(Col::Lettre, send(Col::Lettre, n_lettre(tasks), &common));
            a.insert(Col::Bare, send(Col::Bare, n, &common));
            let mut capped = common.clone();
            capped.extend(["--max-messages", "100"]);
            a.insert(Col::BareCapped, send(Col::Bare, n, &capped));
            let s = if tasks == 1 { "" } else { "s" };
            cases.push(Case {
                kind: Kind::Throughput { tls: tls_on, tasks },
                label: format!(
                    "msgs/s: {via}, {tasks} task{s} × 1 KiB, pools of {k}, bare: {tasks} connection{s}"
                ),
                cols: vec![
                    Col::Ours,
                    Col::OursUncapped,
                    Col::Lettre,
                    Col::Bare,
                    Col::BareCapped,
                ],
                args: a,
            });
        }
    }
    let (slow_p, plain_p) = (slow.to_string(), plain.to_string());
    let rt_args = [
        "--port",
        &slow_p,
        "--stats-port",
        &plain_p,
        "--tasks",
        "1",
        "--pool",
        "1",
    ];
    let rt_args: Vec<&str> = rt_args.into_iter().chain(["--rcpt", "3"]).collect();
    let rtt = 2.0 * delay_ms;
    for mode in [None, Some("always"), Some("when-safe")] {
        let mut a = HashMap::new();
        let mut extra = rt_args.clone();
        if let Some(m) = mode {
            extra.extend(["--data-pipelining", m]);
        }
        a.insert(Col::Ours, send(Col::Ours, q(200, 20), &extra));
        let mut cols = vec![Col::Ours];
        if mode.is_none() {
            a.insert(Col::Lettre, send(Col::Lettre, q(50, 10), &rt_args));
            cols.push(Col::Lettre);
        }
        let what = match mode {
            None => "pool as built (default settings)",
            Some("always") => "`.data_pipelining(DataPipelining::Always)`",
            Some(_) => "`.data_pipelining(DataPipelining::WhenSafe)`",
        };
        cases.push(Case {
            kind: Kind::RoundTrips(mode),
            label: format!(
                "round trips/msg: 3 recipients, +{rtt} ms RTT, DATA, 1 task, pools of 1; ours: {what}"
            ),
            cols,
            args: a,
        });
    }
    let cap_p = capped.to_string();
    let hs = q(1000, 300);
    let hs_args = [
        "--port", &cap_p, "--ca", &ca_cap, "--tasks", "4", "--pool", "4",
    ];
    cases.push(Case {
        kind: Kind::Handshakes,
        label: format!(
            "TLS handshakes per 1,000 msgs: STARTTLS server closing after {cap} msgs, 4 tasks, pools of 4"
        ),
        cols: vec![Col::Ours, Col::Lettre],
        args: [Col::Ours, Col::Lettre]
            .into_iter()
            .map(|c| (c, send(c, hs, &hs_args)))
            .collect(),
    });
    let conns = q(64, 16);
    let tls_p = tls.to_string();
    cases.push(Case {
        kind: Kind::Rss,
        label: format!("memory per idle pooled STARTTLS connection, {conns} connections"),
        cols: vec![Col::Ours, Col::Lettre],
        args: [Col::Ours, Col::Lettre]
            .into_iter()
            .map(|c| {
                let a = strings(&["pool-rss", "--flavour", c.flavour(), "--port", &tls_p]);
                let b = strings(&["--ca", &ca, "--conns", &conns.to_string()]);
                (c, a.into_iter().chain(b).collect())
            })
            .collect(),
    });

    let mut results: Vec<HashMap<Col, Vec<HashMap<String, f64>>>> =
        (0..cases.len()).map(|_| HashMap::new()).collect();
    let mut rtts = Vec::new();
    let mut quiet = QuietWaits::new(Duration::from_secs(120));
    let started = Instant::now();
    for rep in 0..reps {
        repetition("pool ", rep, reps, started);
        rtts.extend(ping_rtt(&exe, &slow_p));
        for (ci, case) in cases.iter().enumerate() {
            let mut order = case.cols.clone();
            let len = order.len();
            order.rotate_left(rep % len);
            for col in order {
                quiet.wait();
                eprintln!("  {:<13} {}", col.name(), case.label);
                if let Some(r) = measure(&exe, &case.args[&col]) {
                    results[ci].entry(col).or_default().push(r);
                }
            }
        }
    }
    drop(kids);
    let _ = std::fs::remove_dir_all(&work);
    let rtt = median(rtts);
    crate::pool_table::print(&cases, &results, rtt, reps, cap, n, q(100, 20));
    println!();
    println!(
        "Before each measurement the runner waited for the machine to be quiet (under a quarter \
         of the CPUs busy): {:.0} s of waiting in all; {noisy} measurement(s) ran without a \
         quiet moment within 120 s.",
        quiet.waited.as_secs_f64(),
        noisy = quiet.noisy,
    );
}
