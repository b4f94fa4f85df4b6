//! Shared helpers: message bodies, process CPU time and peak memory, result lines, arguments.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What each task returned, in order (panics if one panicked).
pub async fn join_all<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.expect("task"));
    }
    out
}

/// A text message of exactly `size` bytes (at least the headers): headers, then 76-character
/// lines with CRLF endings, every 20th starting with a dot (so every client has to dot-stuff).
pub fn message(size: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(size + 80);
    body.extend_from_slice(
        b"From: sender@bench.test\r\nTo: rcpt0@bench.test\r\nSubject: benchmark\r\n\
          Message-ID: <bench@bench.test>\r\nMIME-Version: 1.0\r\n\
          Content-Type: text/plain; charset=us-ascii\r\n\r\n",
    );
    let mut n = 0u32;
    while body.len() < size {
        if n.is_multiple_of(20) {
            body.push(b'.');
        }
        body.extend((0..74).map(|i| b'a' + ((i + n) % 26) as u8));
        body.extend_from_slice(b"\r\n");
        n += 1;
    }
    if body.len() > size {
        body.truncate(size.max(2) - 2);
        body.extend_from_slice(b"\r\n");
    }
    body
}

/// User and system CPU time of this process so far (all threads), separately.
pub fn cpu_times() -> (Duration, Duration) {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage struct, RUSAGE_SELF is a valid `who`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage failed");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(usage.ru_utime), tv(usage.ru_stime))
}

/// The wall clock and this process's CPU time (user and system) from a start.
pub struct Stopwatch {
    t0: Instant,
    user0: Duration,
    sys0: Duration,
}

impl Stopwatch {
    /// Start now: the CPU times, then the clock.
    pub fn start() -> Stopwatch {
        let (user0, sys0) = cpu_times();
        Stopwatch {
            t0: Instant::now(),
            user0,
            sys0,
        }
    }

    /// The wall time, user CPU and system CPU since the start (the clock read first).
    pub fn read(&self) -> (Duration, Duration, Duration) {
        let wall = self.t0.elapsed();
        let (user1, sys1) = cpu_times();
        (wall, user1 - self.user0, sys1 - self.sys0)
    }
}

/// A field of /proc/self/status in KiB (VmHWM: peak resident set; VmRSS: current).
pub fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Print the one line the matrix reads from a child: `RESULT key=value ...`.
pub fn print_result(fields: &[(&str, f64)]) {
    let mut line = String::from("RESULT");
    for (k, v) in fields {
        line.push_str(&format!(" {k}={v}"));
    }
    println!("{line}");
}

/// Parse a `RESULT` line back.
pub fn parse_result(stdout: &str) -> Option<HashMap<String, f64>> {
    let line = stdout.lines().find(|l| l.starts_with("RESULT"))?;
    Some(
        line.split_whitespace()
            .skip(1)
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect(),
    )
}

/// `--key value` arguments and bare `--flag`s.
pub struct Args {
    map: HashMap<String, String>,
}

impl Args {
    pub fn parse(args: &[String]) -> Args {
        let mut map = HashMap::new();
        let mut i = 0;
        while i < args.len() {
            let key = args[i]
                .strip_prefix("--")
                .unwrap_or_else(|| panic!("unexpected argument {:?}", args[i]))
                .to_string();
            if i + 1 < args.len() && !args[i + 1].starts_with("--") {
                map.insert(key, args[i + 1].clone());
                i += 2;
            } else {
                map.insert(key, String::new());
                i += 1;
            }
        }
        Args { map }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    pub fn flag(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn str(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or(default).to_string()
    }

    pub fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> T {
        match self.get(key) {
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| panic!("--{key}: not a number: {v:?}")),
            None => default,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_has_the_exact_size_and_crlf_lines() {
        for size in [200, 1024, 100 * 1024, 1 << 20] {
            let m = message(size);
            assert_eq!(m.len(), size);
            assert!(m.ends_with(b"\r\n"));
            assert!(!m.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'));
        }
    }

    #[test]
    fn result_lines_round_trip() {
        let r = parse_result("noise\nRESULT a=1.5 b=2\n").unwrap();
        assert_eq!(r["a"], 1.5);
        assert_eq!(r["b"], 2.0);
    }
}
