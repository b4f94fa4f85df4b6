//! The pool's cost in work, not in time: instructions and syscalls per message of our `Mailer`
//! against as many bare `SmtpClient`s doing the same work (one connection per task, the same
//! reconnects). On this shared 2-core VM two runs of the same msgs/s measurement differ by
//! 10–20 %, so a "costs at most 10 %" target cannot be read off wall-clock throughput; counts
//! can: `valgrind --tool=callgrind` counts the client's user-space instructions (the same for the
//! same binary and inputs whatever else the machine does) and `strace -f -c` its system calls.
//!
//! Each figure is a difference of two runs (N1 and N2 messages, the same warm-up), divided by
//! N2 − N1: the per-message cost without start-up, warm-up and teardown.
//!
//! `smtp-bench pool-cost [--quick]` starts its own plaintext sink and prints one markdown table.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::Args;
use crate::harness::{Kids, spawn_helper, thousands};

/// One side of a comparison: the child's `--flavour` and its extra arguments.
struct Side {
    flavour: &'static str,
    extra: &'static [&'static str],
}

const PAIRS: [(&str, Side, Side); 2] = [
    (
        "a new connection every 100 msgs (the `Mailer`'s default cap; bare clients QUIT and reconnect as often)",
        Side {
            flavour: "ours",
            extra: &[],
        },
        Side {
            flavour: "bare",
            extra: &["--max-messages", "100"],
        },
    ),
    (
        "no reconnects (`max_messages_per_connection(10^9)`; bare clients keep their connection)",
        Side {
            flavour: "ours",
            extra: &["--max-messages", "1000000000"],
        },
        Side {
            flavour: "bare",
            extra: &[],
        },
    ),
];

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn child_args(side: &Side, port: u16, tasks: usize, n: usize) -> Vec<String> {
    let mut a: Vec<String> = [
        "pool-send",
        "--flavour",
        side.flavour,
        "--port",
        &port.to_string(),
        "--tasks",
        &tasks.to_string(),
        "--pool",
        &tasks.to_string(),
        "--n",
        &n.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(side.extra.iter().map(|s| s.to_string()));
    a
}

/// User-space instructions of one child run (callgrind's "I refs").
fn instructions(exe: &Path, args: &[String]) -> Option<f64> {
    let out = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(exe)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "callgrind run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text.lines().find(|l| l.contains("I   refs:"))?;
    let digits: String = line
        .split("refs:")
        .nth(1)?
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// System calls of one child run, all threads (`strace -f -c`'s total).
fn syscalls(exe: &Path, args: &[String], work: &Path) -> Option<f64> {
    let file = work.join("strace.txt");
    let status = Command::new("strace")
        .args(["-f", "-c", "-o"])
        .arg(&file)
        .arg(exe)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    let text = std::fs::read_to_string(&file).ok()?;
    // "100.00    0.123456           3     41234      1234 total"
    let total = text.lines().find(|l| l.trim_end().ends_with(" total"))?;
    total.split_whitespace().nth(3)?.parse().ok()
}

/// Per message: (f(n2) − f(n1)) / (n2 − n1).
fn per_message(f: impl Fn(usize) -> Option<f64>, n1: usize, n2: usize) -> Option<f64> {
    Some((f(n2)? - f(n1)?) / (n2 - n1) as f64)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.3}×", a / b),
        _ => "—".into(),
    }
}

fn cell(v: Option<f64>, fmt: fn(f64) -> String) -> String {
    v.map(fmt).unwrap_or_else(|| "—".into())
}

pub fn run(args: &Args) {
    let quick = args.flag("quick");
    let (n1, n2) = if quick { (200, 600) } else { (1000, 3000) };
    let task_counts: &[usize] = if quick { &[1, 16] } else { &[1, 4, 16, 64] };
    let (valgrind, strace) = (have("valgrind"), have("strace"));
    if !valgrind && !strace {
        println!("(pool cost: neither valgrind nor strace is installed; skipped)");
        return;
    }
    let exe = std::env::current_exe().expect("current exe");
    let work = std::env::temp_dir().join(format!("smtp-bench-cost-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work dir");
    let mut kids = Kids(Vec::new());
    let port = spawn_helper(&mut kids, &exe, &["sink".into(), "--no-chunking".into()]);

    println!(
        "| plaintext, 1 KiB, one connection per task | tasks | `Mailer` instructions/msg | bare \
         instructions/msg | ÷ | `Mailer` syscalls/msg | bare syscalls/msg | ÷ |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (label, ours, bare) in &PAIRS {
        for &tasks in task_counts {
            eprintln!("  pool cost: {tasks} task(s), {label}");
            let count = |side: &Side, f: &dyn Fn(&[String]) -> Option<f64>| {
                per_message(|n| f(&child_args(side, port, tasks, n)), n1, n2)
            };
            let instr = |a: &[String]| valgrind.then(|| instructions(&exe, a)).flatten();
            let calls = |a: &[String]| strace.then(|| syscalls(&exe, a, &work)).flatten();
            let (oi, bi) = (count(ours, &instr), count(bare, &instr));
            let (os, bs) = (count(ours, &calls), count(bare, &calls));
            println!(
                "| {label} | {tasks} | {} | {} | {} | {} | {} | {} |",
                cell(oi, thousands),
                cell(bi, thousands),
                ratio(oi, bi),
                cell(os, |x| format!("{x:.2}")),
                cell(bs, |x| format!("{x:.2}")),
                ratio(os, bs),
            );
        }
    }
    drop(kids);
    let _ = std::fs::remove_dir_all(&work);
    let peek = peek_ns();
    println!();
    println!(
        "Per message: the difference of a {n1}- and a {n2}-message run (each after one warm-up \
         message per task), divided by {}. Instructions: user space only, counted by `valgrind \
         --tool=callgrind` (which runs the threads one at a time); syscalls: `strace -f -c`, all \
         threads. The kernel's own work per syscall is not in the instruction count. Same \
         binary, same sink (the bench sink without CHUNKING, on loopback), pools of one \
         connection per task.",
        n2 - n1
    );
    println!();
    println!(
        "The syscall the `Mailer` adds to a reused connection's message is the idle check's \
         `recv(MSG_PEEK)` on a socket with nothing to read, answered `EAGAIN`: {peek:.0} ns a \
         call here (median of 5 loops of 1,000,000 on an idle loopback connection, wall clock), \
         against the ~25–40 µs of client CPU a message costs in the msgs/s table."
    );
}

/// Wall-clock nanoseconds of one `recv(MSG_PEEK)` that finds nothing (median of 5 loops).
fn peek_ns() -> f64 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
    let _server = listener.accept().expect("accept");
    client.set_nonblocking(true).expect("non-blocking");
    let mut buf = [0u8; 1];
    let runs = (0..5)
        .map(|_| {
            let t0 = std::time::Instant::now();
            for _ in 0..1_000_000 {
                let r = client.peek(&mut buf);
                assert!(matches!(r, Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock));
            }
            t0.elapsed().as_nanos() as f64 / 1e6
        })
        .collect();
    crate::harness::median(runs).unwrap_or(f64::NAN)
}
