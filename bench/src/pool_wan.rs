//! A pool over a WAN (issue 23, item 4: chained sends across callers): many tasks sharing a
//! pool of 8 connections to a relay 20 ms away. Starts two bench sinks (without and with
//! CHUNKING) and a delay line in front of each (+2D ms RTT, D = 10 by default), runs every
//! measurement as a `pool-send` child (see `pool_child.rs`): our `Mailer` as built, our `Mailer`
//! with `chain_messages(8)`, and lettre's pool of the same size; the RTT measured by NOOP in
//! every repetition. One markdown table of medians.

use std::collections::HashMap;
use std::time::Instant;

use crate::common::Args;
use crate::harness::{
    Kids, QuietWaits, every, every_run, measure, median, ping_rtt, repetition, spawn_helper,
    strings,
};

/// One way of sending: a label, the sink (`true`: with CHUNKING), the child's extra arguments.
struct Way {
    label: &'static str,
    chunking: bool,
    flavour: &'static str,
    extra: &'static [&'static str],
}

const WAYS: [Way; 4] = [
    Way {
        label: "ours, `Mailer` as built (one message per connection at a time)",
        chunking: false,
        flavour: "ours",
        extra: &[],
    },
    Way {
        label: "ours, `chain_messages(8)`",
        chunking: false,
        flavour: "ours",
        extra: &["--chain", "8"],
    },
    Way {
        label: "ours, `chain_messages(8)`, sink with CHUNKING (BDAT)",
        chunking: true,
        flavour: "ours",
        extra: &["--chain", "8"],
    },
    Way {
        label: "lettre 0.11, `PoolConfig::max_size(8)`",
        chunking: false,
        flavour: "lettre",
        extra: &[],
    },
];

pub fn run(args: &Args) {
    let quick = args.flag("quick");
    let reps: usize = args.num("reps", if quick { 1 } else { 5 });
    let tasks: usize = args.num("tasks", 64);
    let pool: usize = args.num("pool", 8);
    let n: usize = args.num("n", if quick { 320 } else { 1280 });
    let delay_ms: f64 = args.num("delay-ms", 10.0);
    let exe = std::env::current_exe().expect("current exe");

    let mut kids = Kids(Vec::new());
    let delay = delay_ms.to_string();
    let mut ports = HashMap::new();
    for chunking in [false, true] {
        let sink_args = if chunking {
            strings(&["sink"])
        } else {
            strings(&["sink", "--no-chunking"])
        };
        let sink = spawn_helper(&mut kids, &exe, &sink_args);
        let to = format!("127.0.0.1:{sink}");
        let slow = spawn_helper(
            &mut kids,
            &exe,
            &strings(&["proxy", "--to", &to, "--delay-ms", &delay]),
        );
        ports.insert(chunking, (slow.to_string(), sink.to_string()));
    }

    let mut runs: HashMap<usize, Vec<HashMap<String, f64>>> = HashMap::new();
    let mut rtts = Vec::new();
    let mut quiet = QuietWaits::unless_quick(quick);
    let started = Instant::now();
    let (t, p, count) = (tasks.to_string(), pool.to_string(), n.to_string());
    for rep in 0..reps {
        repetition("pool-wan ", rep, reps, started);
        let slow = &ports[&false].0;
        rtts.extend(ping_rtt(&exe, slow));
        let mut order: Vec<usize> = (0..WAYS.len()).collect();
        order.rotate_left(rep % WAYS.len());
        for i in order {
            let way = &WAYS[i];
            quiet.wait();
            eprintln!("  {}", way.label);
            let (slow, sink) = &ports[&way.chunking];
            let mut a = strings(&[
                "pool-send",
                "--flavour",
                way.flavour,
                "--port",
                slow,
                "--stats-port",
                sink,
                "--tasks",
                &t,
                "--pool",
                &p,
                "--n",
                &count,
                "--size",
                "1024",
            ]);
            a.extend(strings(way.extra));
            if let Some(r) = measure(&exe, &a) {
                runs.entry(i).or_default().push(r);
            }
        }
    }
    drop(kids);

    let rtt = median(rtts.clone());
    let med = |i: usize, k: &str| {
        median(
            runs.get(&i)?
                .iter()
                .filter_map(|r| r.get(k).copied())
                .collect(),
        )
    };
    let num = |v: Option<f64>, p: usize| v.map_or("—".into(), |v| format!("{v:.p$}"));
    println!(
        "| {tasks} tasks, 1 KiB, +{} ms RTT (delay line) | msgs/s (median) | msgs/s, every \
         repetition | connections the sink accepted (warm-up included) | round trips per \
         message per connection |",
        2.0 * delay_ms
    );
    println!("|---|---:|---|---:|---:|");
    for (i, way) in WAYS.iter().enumerate() {
        let rate = med(i, "msgs_per_s");
        let every = every_run(runs.get(&i), "msgs_per_s", 0);
        let conns = med(i, "accepted_all");
        // Each of the connections open at once carries rate ÷ open messages a second, one
        // every open ÷ rate seconds: that many RTTs each. Ours keeps `pool` open (it opens new
        // ones only in place of those ended after 100 messages); lettre one per task.
        let open = match way.flavour {
            "ours" => Some(pool as f64),
            _ => conns.map(|c| c.min(tasks as f64).max(1.0)),
        };
        let trips = match (rate, open, rtt) {
            (Some(r), Some(c), Some(t)) if r > 0.0 && t > 0.0 => {
                format!("{:.2}", c / r * 1e3 / t)
            }
            _ => "—".into(),
        };
        println!(
            "| {} | **{}** | {every} | {} | {trips} |",
            way.label,
            num(rate, 0),
            num(conns, 0)
        );
    }
    println!();
    let every_rtt = every(&rtts);
    println!(
        "Medians of {reps} repetition(s), the ways alternating, each a `pool-send` child process \
         on a multi-threaded tokio runtime with 2 workers: {tasks} tasks share one pool of \
         {pool} (lettre: `max_size({pool})`, which bounds only its idle connections), each task \
         sends one warm-up message, then {n} messages spread over the tasks are timed. Measured \
         RTT through the delay line ({delay_ms} ms each way; NOOP on a warm connection, median \
         of 20, one per repetition): median {} ms (every repetition: {every_rtt}). Round trips \
         per message per connection = connections open at once ÷ msgs/s ÷ RTT: {pool} for \
         ours (a connection is replaced after 100 messages, the default cap, hence more \
         accepted), one per task for lettre. Before each measurement the runner waited for the machine to be \
         quiet: {:.0} s in all; {noisy} measurement(s) ran without a quiet moment within {} s.",
        num(rtt, 2),
        quiet.waited.as_secs_f64(),
        quiet.max.as_secs(),
        noisy = quiet.noisy,
    );
}
