//! The whole comparison: start the helper processes (CHUNKING sink, delay lines), run every
//! measurement as a child process, flavours alternating, several repetitions, and print one
//! markdown table of medians with ratios against the peers.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use crate::clients::Flavour;
use crate::common::{Args, message};
use crate::harness::{
    Kids, human, measure, median, ping_rtt, repetition, spawn_helper, strings, thousands,
};

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// msgs/s and CPU µs per message.
    Throughput,
    /// Wall time / N / measured RTT, through the delay line.
    RoundTrips { bdat: bool },
    /// Peak RSS sending one big message from a file.
    Rss,
}

struct Case {
    kind: Kind,
    label: String,
    n: usize,
    /// N for the peers as shipped (Nagle on): they stall ~40 ms per message, so fewer messages
    /// give the same rate in reasonable time.
    n_nagle: usize,
    size: usize,
    conns: usize,
    flavours: Vec<Flavour>,
    /// Send to the bench's CHUNKING sink instead of smtp-sink.
    chunking_sink: bool,
}

pub fn run(args: &Args) {
    let quick = args.flag("quick");
    let reps: usize = args.num("reps", if quick { 1 } else { 5 });
    let sink_port: u16 = args.num("sink-port", 0);
    assert!(
        sink_port != 0,
        "--sink-port: the port of a running smtp-sink"
    );
    let delay_ms: f64 = args.num("delay-ms", 5.0);
    let exe = std::env::current_exe().expect("current exe");
    let work = std::env::temp_dir().join(format!("smtp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work dir");
    let big = if quick { 10 << 20 } else { 100 << 20 };
    let big_file = work.join("big.eml");
    std::fs::write(&big_file, message(big)).expect("write the big message");

    let mut kids = Kids(Vec::new());
    let chunk_port = spawn_helper(&mut kids, &exe, &strings(&["sink"]));
    let delay = delay_ms.to_string();
    let to_sink = format!("127.0.0.1:{sink_port}");
    let to_chunk = format!("127.0.0.1:{chunk_port}");
    let slow_sink = spawn_helper(
        &mut kids,
        &exe,
        &strings(&["proxy", "--to", &to_sink, "--delay-ms", &delay]),
    );
    let slow_chunk = spawn_helper(
        &mut kids,
        &exe,
        &strings(&["proxy", "--to", &to_chunk, "--delay-ms", &delay]),
    );

    let q = |full: usize, quick_n: usize| if quick { quick_n } else { full };
    let nagle_cap = q(200, 40);
    let all = Flavour::ALL.to_vec();
    // Against the bench sink (CHUNKING): ours, and the peers with Nagle off.
    let nodelay = vec![
        Flavour::Ours,
        Flavour::OursBatch,
        Flavour::LettreNodelay,
        Flavour::MailSendNodelay,
    ];
    let mut cases = Vec::new();
    for (n, size, conns) in [
        (q(2000, 200), 1024, 1),
        (q(2000, 200), 1024, 4),
        (q(200, 20), 100 * 1024, 1),
        (q(5, 1), 10 << 20, 1),
    ] {
        let c = if conns == 1 {
            "connection"
        } else {
            "connections"
        };
        cases.push(Case {
            kind: Kind::Throughput,
            label: format!("{n} × {}, {conns} {c}", human(size)),
            n,
            n_nagle: n.min(nagle_cap),
            size,
            conns,
            flavours: all.clone(),
            chunking_sink: false,
        });
    }
    let n = q(2000, 200);
    cases.push(Case {
        kind: Kind::Throughput,
        label: format!("{n} × 1 KiB, 1 connection, bench sink (CHUNKING → BDAT for ours)"),
        n,
        n_nagle: n.min(nagle_cap),
        size: 1024,
        conns: 1,
        flavours: nodelay.clone(),
        chunking_sink: true,
    });
    let rtt_n = q(200, 20);
    let rtt = 2.0 * delay_ms;
    cases.push(Case {
        kind: Kind::RoundTrips { bdat: false },
        label: format!("{rtt_n} × 1 KiB at +{rtt} ms RTT, smtp-sink (PIPELINING → DATA)"),
        n: rtt_n,
        n_nagle: rtt_n.min(q(50, 10)),
        size: 1024,
        conns: 1,
        flavours: all.clone(),
        chunking_sink: false,
    });
    cases.push(Case {
        kind: Kind::RoundTrips { bdat: true },
        label: format!(
            "{rtt_n} × 1 KiB at +{rtt} ms RTT, bench sink (PIPELINING + CHUNKING → BDAT for ours)"
        ),
        n: rtt_n,
        n_nagle: rtt_n.min(q(50, 10)),
        size: 1024,
        conns: 1,
        flavours: nodelay.clone(),
        chunking_sink: true,
    });
    cases.push(Case {
        kind: Kind::Rss,
        label: format!("peak RSS (VmHWM), one {} message", human(big)),
        n: 1,
        n_nagle: 1,
        size: big,
        conns: 1,
        flavours: vec![Flavour::Ours, Flavour::Lettre, Flavour::MailSend],
        chunking_sink: false,
    });

    // results[case][flavour] = one value map per repetition
    let mut results: Vec<HashMap<Flavour, Vec<HashMap<String, f64>>>> =
        (0..cases.len()).map(|_| HashMap::new()).collect();
    let mut rtts: HashMap<bool, Vec<f64>> = HashMap::new();
    let started = Instant::now();
    for rep in 0..reps {
        repetition("", rep, reps, started);
        for (bdat, port) in [(false, slow_sink), (true, slow_chunk)] {
            let p = port.to_string();
            if let Some(rtt) = ping_rtt(&exe, &p) {
                rtts.entry(bdat).or_default().push(rtt);
            }
        }
        for (ci, case) in cases.iter().enumerate() {
            // Alternate: rotate the flavour order every repetition.
            let mut order = case.flavours.clone();
            let len = order.len();
            order.rotate_left(rep % len);
            for flavour in order {
                let n = if flavour.nagle() {
                    case.n_nagle
                } else {
                    case.n
                };
                let port = match case.kind {
                    Kind::Throughput if case.chunking_sink => chunk_port,
                    Kind::Throughput | Kind::Rss => sink_port,
                    Kind::RoundTrips { bdat: false } => slow_sink,
                    Kind::RoundTrips { bdat: true } => slow_chunk,
                };
                let mut a = vec![
                    "--flavour".to_string(),
                    flavour.name().to_string(),
                    "--port".to_string(),
                    port.to_string(),
                ];
                let a = match case.kind {
                    Kind::Rss => {
                        a.insert(0, "rss".into());
                        a.extend(strings(&["--file", big_file.to_str().unwrap()]));
                        a
                    }
                    _ => {
                        a.insert(0, "send".into());
                        a.extend(strings(&[
                            "--n",
                            &n.to_string(),
                            "--size",
                            &case.size.to_string(),
                            "--conns",
                            &case.conns.to_string(),
                            "--rcpt",
                            "1",
                        ]));
                        a
                    }
                };
                eprintln!("  {:<18} {}", flavour.name(), case.label);
                if let Some(r) = measure(&exe, &a) {
                    results[ci].entry(flavour).or_default().push(r);
                }
            }
        }
    }
    drop(kids);
    let _ = std::fs::remove_dir_all(&work);

    let rtt_data = median(rtts.get(&false).cloned().unwrap_or_default());
    let rtt_bdat = median(rtts.get(&true).cloned().unwrap_or_default());
    let med = |ci: usize, f: Flavour, key: &str| -> Option<f64> {
        let runs = results[ci].get(&f)?;
        median(runs.iter().filter_map(|r| r.get(key).copied()).collect())
    };

    println!(
        "| measure | ours | ours, send_batch | lettre | lettre + NODELAY | mail-send \
         | mail-send + NODELAY | ours ÷ lettre + NODELAY | batch ÷ lettre + NODELAY | ours ÷ lettre \
         | ours ÷ mail-send + NODELAY | ours ÷ mail-send |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let cols = Flavour::ALL;
    let row = |label: String, vals: [Option<f64>; 6], fmt: &dyn Fn(f64) -> String| {
        let cell = |v: Option<f64>| v.map(fmt).unwrap_or_else(|| "—".into());
        let ratio = |ours: Option<f64>, peer: Option<f64>| match (ours, peer) {
            (Some(o), Some(p)) if p > 0.0 => format!("{:.2}×", o / p),
            _ => "—".into(),
        };
        println!(
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(vals[0]),
            cell(vals[1]),
            cell(vals[2]),
            cell(vals[3]),
            cell(vals[4]),
            cell(vals[5]),
            ratio(vals[0], vals[3]),
            ratio(vals[1], vals[3]),
            ratio(vals[0], vals[2]),
            ratio(vals[0], vals[5]),
            ratio(vals[0], vals[4]),
        );
    };
    let mut data_row_peers: [Option<f64>; 6] = [None; 6];
    for (ci, case) in cases.iter().enumerate() {
        let get = |key: &str| cols.map(|f| med(ci, f, key));
        match case.kind {
            Kind::Throughput => {
                row(format!("msgs/s: {}", case.label), get("msgs_per_s"), &|v| {
                    thousands(v)
                });
            }
            Kind::RoundTrips { bdat } => {
                let rtt = if bdat { rtt_bdat } else { rtt_data };
                let mut v = cols.map(|f| {
                    let wall = med(ci, f, "wall_s")?;
                    let n = med(ci, f, "n")?;
                    Some(wall * 1e3 / n / rtt?)
                });
                if bdat {
                    // The peers cannot use BDAT: compare with what they do (DATA, measured on
                    // smtp-sink in the row above) when they were not run against this sink.
                    for i in 2..6 {
                        if v[i].is_none() {
                            v[i] = data_row_peers[i];
                        }
                    }
                } else {
                    data_row_peers = v;
                }
                row(format!("round trips/msg: {}", case.label), v, &|v| {
                    format!("{v:.2}")
                });
            }
            Kind::Rss => {
                let v = get("hwm_kib").map(|x| x.map(|k| k / 1024.0));
                row(case.label.clone(), v, &|v| format!("{v:.1} MiB"));
            }
        }
    }
    for (ci, case) in cases.iter().enumerate() {
        if case.kind == Kind::Throughput {
            let v = cols.map(|f| med(ci, f, "cpu_us_per_msg"));
            row(format!("client CPU µs/msg: {}", case.label), v, &|v| {
                format!("{v:.1}")
            });
        }
    }
    if let Some(dir) = args.get("criterion-dir") {
        crate::criterion::print_rows(Path::new(dir));
    }
    if let Some(raw) = args.get("wasm-raw") {
        let gz = args.str("wasm-gz", "?");
        let mut text = format!(
            "{} B raw, {} B gzip -9",
            thousands(raw.parse().unwrap_or(0.0)),
            thousands(gz.parse().unwrap_or(0.0))
        );
        if let Some(bg) = args.get("wasm-bindgen-raw") {
            let bg_gz = args.str("wasm-bindgen-gz", "?");
            text.push_str(&format!(
                "; after wasm-bindgen: {} B raw, {} B gzip -9",
                thousands(bg.parse().unwrap_or(0.0)),
                thousands(bg_gz.parse().unwrap_or(0.0))
            ));
        }
        println!(
            "| example Worker (smtp-io-wasm/examples/worker), wasm32 release | {text} | — | — | — | — | — | — | — | — | — | — |"
        );
    }
    println!();
    println!(
        "Medians of {reps} repetition(s), flavours alternating. Peers as shipped (Nagle on) sent \
         {nagle_cap} messages per small-message run ({} at the added RTT) instead of the full N. \
         Measured RTT through the delay line (NOOP, median): {} ms to smtp-sink, {} ms to the \
         CHUNKING sink. Round trips/msg = wall / N / measured RTT. In the BDAT row the peers + \
         NODELAY ran against the CHUNKING sink (they use DATA there); the as-shipped peer figures \
         are copied from the DATA row. Ratio columns: ours ÷ peer (msgs/s: \
         higher is better; every other row: lower is better).",
        q(50, 10),
        rtt_data.map(|v| format!("{v:.2}")).unwrap_or("?".into()),
        rtt_bdat.map(|v| format!("{v:.2}")).unwrap_or("?".into()),
    );
}
