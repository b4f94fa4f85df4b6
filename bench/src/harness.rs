//! What the matrix and the pool runs share: helper processes started and stopped by their own
//! handles, one measurement per child process, medians and number formatting.

use std::collections::HashMap;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::parse_result;

/// Processes this run started; each is killed (by its own handle) when the guard drops.
pub struct Kids(pub Vec<Child>);

impl Drop for Kids {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().unwrap().port()
}

pub fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn spawn_helper(kids: &mut Kids, exe: &Path, args: &[String]) -> u16 {
    let port = free_port();
    let mut cmd = Command::new(exe);
    cmd.args(args).args(["--port", &port.to_string()]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    kids.0.push(cmd.spawn().expect("spawn helper"));
    wait_ready(port);
    port
}

/// The progress line of repetition `rep` (from 0) of `reps`, on standard error; `what` names
/// the run ("pool ", or "" for the matrix).
pub fn repetition(what: &str, rep: usize, reps: usize, started: Instant) {
    eprintln!(
        "{what}repetition {}/{reps} ({:.0} s so far)",
        rep + 1,
        started.elapsed().as_secs_f64()
    );
}

/// The round trip through the delaying proxy on `port`, in ms (one `ping` child of 20 trips),
/// or `None` when it failed.
pub fn ping_rtt(exe: &Path, port: &str) -> Option<f64> {
    measure(exe, &strings(&["ping", "--port", port, "--count", "20"])).map(|r| r["rtt_ms"])
}

/// Every value with two decimals, comma-separated (each repetition's round trip).
pub fn every(values: &[f64]) -> String {
    values
        .iter()
        .map(|x| format!("{x:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Each run's `key` with `decimals` decimals, comma-separated (empty without runs).
pub fn every_run(runs: Option<&Vec<HashMap<String, f64>>>, key: &str, decimals: usize) -> String {
    runs.map(|v| {
        v.iter()
            .filter_map(|r| r.get(key))
            .map(|x| format!("{x:.decimals$}"))
            .collect::<Vec<_>>()
            .join(", ")
    })
    .unwrap_or_default()
}

/// The arguments of a child process, owned.
pub fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Run one measurement in a child process; `None` (and a message) when it failed.
pub fn measure(exe: &Path, args: &[String]) -> Option<HashMap<String, f64>> {
    let mut child = Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn measurement");
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            eprintln!("  timed out: {}", args.join(" "));
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("child output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    match parse_result(&stdout) {
        Some(r) if out.status.success() => Some(r),
        _ => {
            eprintln!(
                "  FAILED: {}\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            None
        }
    }
}

pub fn human(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

pub fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Total and idle CPU time of the machine so far, from the first line of /proc/stat.
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let idle = v.get(3)? + v.get(4).unwrap_or(&0);
    Some((v.iter().take(8).sum(), idle))
}

/// The waits for a quiet machine ([`wait_quiet`]) before each measurement of a run, added up
/// for the note under its table.
pub struct QuietWaits {
    /// The longest wait before one measurement.
    pub max: Duration,
    /// All the waiting so far.
    pub waited: Duration,
    /// How many measurements ran without a quiet moment.
    pub noisy: usize,
}

impl QuietWaits {
    /// At most `max` before each measurement.
    pub fn new(max: Duration) -> QuietWaits {
        QuietWaits {
            max,
            waited: Duration::ZERO,
            noisy: 0,
        }
    }

    /// At most 60 s before each measurement, none in a quick run.
    pub fn unless_quick(quick: bool) -> QuietWaits {
        QuietWaits::new(Duration::from_secs(if quick { 0 } else { 60 }))
    }

    /// Wait before a measurement.
    pub fn wait(&mut self) {
        let (waited, quiet) = wait_quiet(self.max);
        self.waited += waited;
        self.noisy += usize::from(!quiet);
    }
}

/// On a shared machine: wait (at most `max`) until the other processes leave the CPUs mostly
/// idle (under a quarter of the machine busy over 300 ms; the bench's own helpers are idle
/// between measurements). Returns how long it waited and whether it found a quiet moment.
pub fn wait_quiet(max: Duration) -> (Duration, bool) {
    let t0 = Instant::now();
    loop {
        let Some((total0, idle0)) = cpu_ticks() else {
            return (t0.elapsed(), true);
        };
        std::thread::sleep(Duration::from_millis(300));
        let Some((total1, idle1)) = cpu_ticks() else {
            return (t0.elapsed(), true);
        };
        let total = (total1 - total0).max(1) as f64;
        let busy = 1.0 - (idle1 - idle0) as f64 / total;
        if busy < 0.25 {
            return (t0.elapsed(), true);
        }
        if t0.elapsed() >= max {
            return (t0.elapsed(), false);
        }
    }
}
