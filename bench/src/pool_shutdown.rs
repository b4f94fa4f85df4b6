//! `Mailer::shutdown` of many idle connections at an added RTT (issue 22, item 7), in round
//! trips. Starts the bench sink (no CHUNKING) and a delay line in front of it (+20 ms RTT by
//! default), runs every measurement as a child process (`pool-shutdown-child`): the pool's
//! shutdown and, for reference, bare clients ending the same number of connections one after
//! another and all at once; the RTT measured by NOOP in every repetition. One markdown table of
//! medians.

use std::collections::HashMap;
use std::time::Instant;

use crate::common::Args;
use crate::harness::{
    Kids, QuietWaits, every, every_run, measure, median, ping_rtt, repetition, spawn_helper,
    strings,
};

const HOWS: [&str; 3] = ["pool", "bare-one-by-one", "bare-at-once"];

fn label(how: &str, conns: usize) -> String {
    match how {
        "pool" => {
            format!("`Mailer::shutdown()`, {conns} idle connections (`max_connections({conns})`)")
        }
        "bare-one-by-one" => format!(
            "for reference: {conns} bare `SmtpClient::quit()`, one after another (how \
             `shutdown` ended them before)"
        ),
        _ => format!("for reference: {conns} bare `SmtpClient::quit()`, all at once"),
    }
}

pub fn run(args: &Args) {
    let quick = args.flag("quick");
    let reps: usize = args.num("reps", if quick { 1 } else { 5 });
    let conns: usize = args.num("conns", 64);
    let delay_ms: f64 = args.num("delay-ms", 10.0);
    let exe = std::env::current_exe().expect("current exe");

    let mut kids = Kids(Vec::new());
    let sink = spawn_helper(&mut kids, &exe, &strings(&["sink", "--no-chunking"]));
    let to = format!("127.0.0.1:{sink}");
    let delay = delay_ms.to_string();
    let slow = spawn_helper(
        &mut kids,
        &exe,
        &strings(&["proxy", "--to", &to, "--delay-ms", &delay]),
    );
    let (slow_p, sink_p, n) = (slow.to_string(), sink.to_string(), conns.to_string());

    let mut runs: HashMap<&str, Vec<HashMap<String, f64>>> = HashMap::new();
    let mut rtts = Vec::new();
    let mut quiet = QuietWaits::unless_quick(quick);
    let started = Instant::now();
    for rep in 0..reps {
        repetition("pool-shutdown ", rep, reps, started);
        rtts.extend(ping_rtt(&exe, &slow_p));
        let mut order = HOWS.to_vec();
        order.rotate_left(rep % HOWS.len());
        for how in order {
            quiet.wait();
            eprintln!("  {how}");
            let a = strings(&[
                "pool-shutdown-child",
                "--how",
                how,
                "--port",
                &slow_p,
                "--stats-port",
                &sink_p,
                "--conns",
                &n,
            ]);
            if let Some(r) = measure(&exe, &a) {
                runs.entry(how).or_default().push(r);
            }
        }
    }
    drop(kids);

    let rtt = median(rtts.clone());
    let med = |how: &str, k: &str| {
        median(
            runs.get(how)?
                .iter()
                .filter_map(|r| r.get(k).copied())
                .collect(),
        )
    };
    let num = |v: Option<f64>, p: usize| v.map_or("—".into(), |v| format!("{v:.p$}"));
    println!(
        "| +{} ms RTT (delay line), bench sink | wall ms (median) | round trips (wall ÷ RTT) \
         | wall ms, every repetition | connections: sink accepted; pool open / idle before, \
         open after, QUITs answered |",
        2.0 * delay_ms
    );
    println!("|---|---:|---:|---|---|");
    for how in HOWS {
        let wall = med(how, "wall_ms");
        let trips = match (wall, rtt) {
            (Some(w), Some(r)) if r > 0.0 => format!("{w:.0} ms ÷ {r:.2} ms = **{:.2}**", w / r),
            _ => "—".into(),
        };
        let every = every_run(runs.get(how), "wall_ms", 1);
        let mut conns_note = num(med(how, "accepted"), 0);
        if how == "pool" {
            conns_note.push_str(&format!(
                "; {} / {} before, {} after, {} QUITs",
                num(med(how, "open_before"), 0),
                num(med(how, "idle_before"), 0),
                num(med(how, "open_after"), 0),
                num(med(how, "quit"), 0),
            ));
        }
        println!(
            "| {} | {} | {trips} | {every} | {conns_note} |",
            label(how, conns),
            num(wall, 1)
        );
    }
    println!();
    let every_rtt = every(&rtts);
    println!(
        "Medians of {reps} repetition(s), the three alternating, each a child process on a \
         multi-threaded tokio runtime with 2 workers. {conns} messages of 1 KiB sent at once \
         open the connections (not timed); then the timed part ends them all. Measured RTT \
         through the delay line ({delay_ms} ms each way; NOOP on a warm connection, median of \
         20, one measurement per repetition): median {} ms (every repetition: {every_rtt}). \
         Round trips = median wall ÷ median RTT. Before each measurement the runner waited for \
         the machine to be quiet: {:.0} s in all; {noisy} measurement(s) ran without a quiet \
         moment within {} s.",
        num(rtt, 2),
        quiet.waited.as_secs_f64(),
        quiet.max.as_secs(),
        noisy = quiet.noisy,
    );
}
