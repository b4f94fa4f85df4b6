//! The pool table: medians of the repetitions, ratios, and the note under it.

use std::collections::HashMap;

use crate::harness::{median, thousands};
use crate::pool_case::{Case, Col, Kind};

type Runs = HashMap<Col, Vec<HashMap<String, f64>>>;

const COLS: [Col; 5] = [
    Col::Ours,
    Col::OursUncapped,
    Col::Lettre,
    Col::Bare,
    Col::BareCapped,
];

/// The median of `f` over one column's repetitions.
fn med(runs: &Runs, col: Col, f: &dyn Fn(&HashMap<String, f64>) -> Option<f64>) -> Option<f64> {
    median(runs.get(&col)?.iter().filter_map(f).collect())
}

fn key(k: &'static str) -> impl Fn(&HashMap<String, f64>) -> Option<f64> {
    move |r| r.get(k).copied()
}

/// The median of `k` over one column's repetitions, NaN when there is none.
fn med_or_nan(runs: &Runs, col: Col, k: &'static str) -> f64 {
    med(runs, col, &key(k)).unwrap_or(f64::NAN)
}

/// `each` of the columns that ran, comma-separated.
fn per_col(runs: &Runs, each: impl Fn(Col) -> String) -> String {
    COLS.iter()
        .filter(|c| runs.contains_key(c))
        .map(|&c| each(c))
        .collect::<Vec<_>>()
        .join(", ")
}

fn cell(v: Option<f64>, fmt: &dyn Fn(f64) -> String) -> String {
    v.map(fmt).unwrap_or_else(|| "—".into())
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "—".into(),
    }
}

/// One row: the five columns, then ours ÷ lettre, ours ÷ bare clients reconnecting as often
/// (the pool's cost at the same work), ours with no cap ÷ bare clients never reconnecting.
fn row(label: &str, v: [Option<f64>; 5], fmt: &dyn Fn(f64) -> String, conns: &str) {
    println!(
        "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {conns} |",
        cell(v[0], fmt),
        cell(v[1], fmt),
        cell(v[2], fmt),
        cell(v[3], fmt),
        cell(v[4], fmt),
        ratio(v[0], v[2]),
        ratio(v[0], v[4]),
        ratio(v[1], v[3]),
    );
}

/// "warm-up connections + connections opened while timed" per column.
fn connections(runs: &Runs) -> String {
    per_col(runs, |c| {
        let warm = med_or_nan(runs, c, "warm_accepted");
        let timed = med_or_nan(runs, c, "accepted");
        if timed == 0.0 {
            format!("{}: {warm:.0}", c.name())
        } else {
            format!("{}: {warm:.0} + {timed:.0}", c.name())
        }
    })
}

pub fn print(
    cases: &[Case],
    results: &[Runs],
    rtt: Option<f64>,
    reps: usize,
    cap: usize,
    n: usize,
    lettre_per_task: usize,
) {
    println!(
        "| measure | ours (`Mailer`) | ours, no msgs/conn cap | lettre pool | bare clients \
         | bare, new connection every 100 msgs | ours ÷ lettre pool | ours ÷ bare every 100 \
         | no cap ÷ bare | connections (warm-up + opened while timed) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let mut notes = Vec::new();
    for (case, runs) in cases.iter().zip(results) {
        match case.kind {
            Kind::Throughput { .. } => {
                let v = COLS.map(|c| med(runs, c, &key("msgs_per_s")));
                row(&case.label, v, &thousands, &connections(runs));
            }
            Kind::RoundTrips(_) => {
                let v = COLS.map(|c| {
                    med(runs, c, &|r| {
                        Some(r.get("wall_s")? * 1e3 / r.get("n")? / rtt?)
                    })
                });
                row(&case.label, v, &|x| format!("{x:.2}"), &connections(runs));
            }
            Kind::Handshakes => {
                // Per 1,000 messages, the warm-up (one message per task) included.
                let per = |k: &'static str| {
                    move |r: &HashMap<String, f64>| {
                        Some(r.get(k)? * 1000.0 / (r.get("n")? + r.get("tasks")?))
                    }
                };
                let conns = per_col(runs, |c| {
                    let all = med_or_nan(runs, c, "accepted_all");
                    format!("{}: {all:.0} in all", c.name())
                });
                let label = case.label.replace("TLS handshakes", "full TLS handshakes");
                let v = COLS.map(|c| med(runs, c, &per("full_all")));
                row(&label, v, &|x| format!("{x:.1}"), &conns);
                let label = case
                    .label
                    .replace("TLS handshakes", "resumed TLS handshakes");
                let v = COLS.map(|c| med(runs, c, &per("resumed_all")));
                row(&label, v, &|x| format!("{x:.1}"), &conns);
                let own = |k: &'static str| med_or_nan(runs, Col::Ours, k);
                notes.push(format!(
                    "Handshakes: counted by the sink (`XSTATS`), the warm-up (one message per \
                     task, {:.0} connections opened at once) included; after it, {:.0} full and \
                     {:.0} resumed (ours), {:.0} full and {:.0} resumed (lettre). The \
                     `Mailer`'s own counters (`PoolStats`, median) say {:.0} full and {:.0} \
                     resumed, {:.0} connections opened, {:.0} retries. The sink closed {:.0} \
                     (ours) and {:.0} (lettre) connections at its cap of {cap}.",
                    own("warm_accepted"),
                    own("full"),
                    own("resumed"),
                    med_or_nan(runs, Col::Lettre, "full"),
                    med_or_nan(runs, Col::Lettre, "resumed"),
                    own("pool_full"),
                    own("pool_resumed"),
                    own("pool_opened"),
                    own("pool_retries"),
                    med_or_nan(runs, Col::Ours, "capped_all"),
                    med_or_nan(runs, Col::Lettre, "capped_all"),
                ));
            }
            Kind::Rss => {
                let conns = per_col(runs, |c| {
                    let n = med_or_nan(runs, c, "conns");
                    format!("{}: {n:.0}", c.name())
                });
                let kib = |x: f64| format!("{x:.0} KiB");
                let label = format!("{}: VmRSS growth ÷ connections", case.label);
                let v = COLS.map(|c| med(runs, c, &key("rss_per_conn_kib")));
                row(&label, v, &kib, &conns);
                let label = format!(
                    "{}: VmRSS growth after `malloc_trim(0)` ÷ connections",
                    case.label
                );
                let v = COLS.map(|c| med(runs, c, &key("trimmed_per_conn_kib")));
                row(&label, v, &kib, &conns);
                let label = format!("{}: VmHWM growth ÷ connections", case.label);
                let v = COLS.map(|c| med(runs, c, &key("hwm_per_conn_kib")));
                row(&label, v, &kib, &conns);
                let base = med_or_nan(runs, Col::Ours, "base_rss_kib");
                notes.push(format!(
                    "Memory: growth over the process's own VmRSS / VmHWM just before the pool \
                     was built (ours: {:.1} MiB, after `malloc_trim(0)`), measured after the \
                     connections sat idle for 2 s; VmHWM includes the handshakes' transient \
                     memory (all connections opened at once).",
                    base / 1024.0
                ));
            }
        }
    }
    for (case, runs) in cases.iter().zip(results) {
        if let Kind::Throughput { .. } = case.kind {
            let v = COLS.map(|c| med(runs, c, &key("cpu_us_per_msg")));
            let label = case.label.replacen("msgs/s", "client CPU µs/msg", 1);
            row(&label, v, &|x| format!("{x:.1}"), "");
        }
    }
    println!();
    println!(
        "Medians of {reps} repetition(s), flavours alternating, each run a child process on a \
         multi-threaded tokio runtime with 2 workers. Throughput: {n} messages (lettre's pool: \
         {lettre_per_task} per task, at most {n}: it leaves Nagle on) of 1 KiB to 1 recipient, \
         after one warm-up message per task; both pools hold the connections the row names: \
         min(tasks, 8), and at 16 and 64 tasks also one per task, as many as the bare clients \
         (lettre's `max_size` bounds the idle ones only: under load it opens more). \
         \"ours\" is the `Mailer` as built, which ends a connection after 100 messages (its \
         default); \"no msgs/conn cap\" sets `max_messages_per_connection(10^9)`; \"bare, new \
         connection every 100 msgs\" ends each client with QUIT and opens a new one as often, so \
         \"ours ÷ bare every 100\" and \"no cap ÷ bare\" both compare the pool with bare clients \
         doing the same work. Sinks: the bench \
         sink without CHUNKING (DATA for everyone). Measured RTT through the delay line (NOOP, \
         median): {} ms; round trips/msg = wall / N / RTT. Ratio columns: ours ÷ the other \
         (msgs/s: higher is better; other rows: lower is better).",
        rtt.map(|v| format!("{v:.2}")).unwrap_or("?".into()),
    );
    for note in notes {
        println!();
        println!("{note}");
    }
}
