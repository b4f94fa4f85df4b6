//! Streamed bodies against bodies in memory (issue 22, item 6): the client CPU time of sending
//! one 10 MiB message over loopback, with the bytes in memory, streamed from a file by one
//! `SmtpClient`, and through the pool's `send_file`, before and after `ReaderBody`'s 256 KiB
//! reads. Starts two bench sinks (without CHUNKING, so DATA and dot-stuffing; with CHUNKING, so
//! BDAT), writes the message to a file once, runs every send as a child process
//! (`stream-cpu-child`), the ways alternating, and prints one markdown table of medians with
//! the ratio against the bytes in memory.

use std::collections::HashMap;
use std::time::Instant;

use crate::common::{Args, message};
use crate::harness::{
    Kids, QuietWaits, every_run, human, measure, median, repetition, spawn_helper, strings,
};
use crate::stream_cpu_child::How;

/// The sinks: DATA without a SIZE limit, BDAT without one, DATA with a limit between the file's
/// length and twice it (so a streamed file's size as sent is counted before MAIL).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Sink {
    Data,
    Bdat,
    DataLimited,
}

type Runs = HashMap<(Sink, How), Vec<HashMap<String, f64>>>;

pub fn run(args: &Args) {
    let quick = args.flag("quick");
    let reps: usize = args.num("reps", if quick { 1 } else { 5 });
    let size: usize = args.num("size", 10 << 20);
    let exe = std::env::current_exe().expect("current exe");
    let work = std::env::temp_dir().join(format!("smtp-bench-stream-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work dir");
    let file = work.join("message.eml");
    std::fs::write(&file, message(size)).expect("write the message");
    let file = file.to_str().unwrap().to_string();

    let mut kids = Kids(Vec::new());
    let data = spawn_helper(&mut kids, &exe, &strings(&["sink", "--no-chunking"]));
    let bdat = spawn_helper(&mut kids, &exe, &strings(&["sink"]));
    let limit = (size + size / 2).to_string();
    let limited = spawn_helper(
        &mut kids,
        &exe,
        &strings(&["sink", "--no-chunking", "--size-limit", &limit]),
    );

    let mut runs = Runs::new();
    let mut quiet = QuietWaits::unless_quick(quick);
    let started = Instant::now();
    for rep in 0..reps {
        repetition("stream-cpu ", rep, reps, started);
        for (sink, port) in [
            (Sink::Data, data),
            (Sink::Bdat, bdat),
            (Sink::DataLimited, limited),
        ] {
            let mut order = How::ALL.to_vec();
            order.rotate_left(rep % How::ALL.len());
            for how in order {
                quiet.wait();
                let name = match sink {
                    Sink::Data => "DATA",
                    Sink::Bdat => "BDAT",
                    Sink::DataLimited => "DATA, SIZE limit",
                };
                eprintln!("  {:<10} {name}", how.name());
                let p = port.to_string();
                let a = ["stream-cpu-child", "--how", how.name(), "--port", &p];
                let a = strings(&a).into_iter().chain(strings(&["--file", &file]));
                if let Some(r) = measure(&exe, &a.collect::<Vec<_>>()) {
                    runs.entry((sink, how)).or_default().push(r);
                }
            }
        }
    }
    drop(kids);
    let _ = std::fs::remove_dir_all(&work);
    print(&runs, reps, size);
    println!();
    println!(
        "Before each send the runner waited for the machine to be quiet (under a quarter of the \
         CPUs busy): {:.0} s of waiting in all; {noisy} send(s) ran without a quiet moment \
         within {} s.",
        quiet.waited.as_secs_f64(),
        quiet.max.as_secs(),
        noisy = quiet.noisy,
    );
}

fn print(runs: &Runs, reps: usize, size: usize) {
    let med = |sink: Sink, how: How, k: &str| {
        median(
            runs.get(&(sink, how))?
                .iter()
                .filter_map(|r| r.get(k).copied())
                .collect(),
        )
    };
    let ms = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.1}"));
    println!(
        "| one {} message, loopback, plaintext | client CPU ms (median) | ÷ (a) | wall ms \
         (median) | client CPU ms, every repetition |",
        human(size)
    );
    println!("|---|---:|---:|---:|---|");
    for kind in [Sink::Data, Sink::Bdat, Sink::DataLimited] {
        let sink = match kind {
            Sink::Data => "DATA (bench sink without CHUNKING: dot-stuffed)".to_owned(),
            Sink::Bdat => "BDAT (bench sink with CHUNKING)".to_owned(),
            Sink::DataLimited => format!(
                "DATA, `SIZE {}` (a file's size as sent counted before MAIL)",
                size + size / 2
            ),
        };
        let base = med(kind, How::Bytes, "cpu_ms");
        for how in How::ALL {
            let cpu = med(kind, how, "cpu_ms");
            let ratio = match (cpu, base) {
                (Some(c), Some(b)) if b > 0.0 => format!("{:.2}×", c / b),
                _ => "—".into(),
            };
            let every = every_run(runs.get(&(kind, how)), "cpu_ms", 1);
            println!(
                "| {sink}: {} | {} | {ratio} | {} | {every} |",
                how.label(),
                ms(cpu),
                ms(med(kind, how, "wall_ms")),
            );
        }
    }
    println!();
    println!(
        "Medians of {reps} repetition(s), the ways alternating (the order rotates every \
         repetition), each send a child process on the matrix's single-threaded tokio runtime. \
         One message of {} (text, 76-character CRLF lines, every 20th starting with a dot) to \
         one recipient, after one untimed warm-up send of the same message the same way on the \
         same connection (connect, EHLO, page cache). Client CPU = `getrusage(RUSAGE_SELF)` user \
         + system around the timed send, every thread (tokio's blocking pool, which reads the \
         file, included; the kernel samples the split between user and system at its tick, so \
         only the sum is given); the sink is a process of its own. (b) and (c) include opening the \
         file (`ReaderBody::open`) and, against the sink with a SIZE limit between the file's \
         length and twice it, counting its size as sent before MAIL (the other two sinks \
         advertise no limit: nothing to count); (a) has the bytes in memory before the timer \
         starts. \"before\": `ReaderBody::open` as it was before commit \
         `fc56b6e`, rebuilt from the public API (size pass in 64 KiB reads, then \
         `with_chunk_size(8 * 1024)`). Ratio: the way's median ÷ (a)'s median on the same sink.",
        human(size)
    );
}
