//! Summarise the criterion micro-benchmarks of smtp-proto (`cargo bench -p smtp-proto`) as rows
//! of the comparison table: each encoder or parser against a plain copy of the same bytes.

use std::path::Path;

use crate::common::Args;

/// A number that follows `"key":` after the first occurrence of `section` in a criterion JSON
/// file (enough for criterion's flat estimates/benchmark files; no JSON library needed).
fn json_number(text: &str, section: &str, key: &str) -> Option<f64> {
    let rest = &text[text.find(section)?..];
    let rest = &rest[rest.find(&format!("\"{key}\":"))? + key.len() + 3..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Median time (ns) and bytes per iteration of one benchmark.
fn read(dir: &Path, id: &str) -> Option<(f64, f64)> {
    let base = dir.join(id).join("new");
    let est = std::fs::read_to_string(base.join("estimates.json")).ok()?;
    let bench = std::fs::read_to_string(base.join("benchmark.json")).ok()?;
    Some((
        json_number(&est, "\"median\"", "point_estimate")?,
        json_number(&bench, "\"throughput\"", "Bytes")?,
    ))
}

fn gib_s(ns: f64, bytes: f64) -> f64 {
    bytes / ns * 1e9 / (1u64 << 30) as f64
}

fn row(label: &str, ours: String) {
    println!("| {label} | {ours} | — | — | — | — | — | — | — | — | — | — |");
}

pub fn run(args: &Args) {
    print_rows(Path::new(args.get("dir").expect("--dir TARGET/criterion")));
}

/// One table row per encoder / parser benchmark, each against memcpy of the same bytes.
pub fn print_rows(dir: &Path) {
    for input in ["crlf_1MiB", "crlf_no_dots_1MiB", "bare_lf_1MiB"] {
        let Some((copy_ns, bytes)) = read(dir, &format!("body/memcpy/{input}")) else {
            eprintln!(
                "no criterion results for body/memcpy/{input} under {}",
                dir.display()
            );
            continue;
        };
        for (name, what) in [
            (
                "dot_stuffer_8KiB_chunks",
                "dot-stuffing + CRLF normalising, 8 KiB chunks",
            ),
            (
                "line_normalizer_8KiB_chunks",
                "CRLF normalising only, 8 KiB chunks",
            ),
            ("normalized_len", "normalised length (SIZE=), whole body"),
        ] {
            if let Some((ns, _)) = read(dir, &format!("body/{name}/{input}")) {
                row(
                    &format!("micro: {what}, 1 MiB text ({input})"),
                    format!(
                        "{:.2} GiB/s = {:.0} % of memcpy ({:.2} GiB/s)",
                        gib_s(ns, bytes),
                        100.0 * copy_ns / ns,
                        gib_s(copy_ns, bytes)
                    ),
                );
            }
        }
    }
    for input in ["single_line", "ehlo_12_lines", "pipelined_52_replies"] {
        let Some((copy_ns, bytes)) = read(dir, &format!("reply/memcpy/{input}")) else {
            continue;
        };
        for (name, what) in [
            ("parse_one_read", "one read"),
            ("parse_7_byte_reads", "7-byte reads"),
        ] {
            if let Some((ns, _)) = read(dir, &format!("reply/{name}/{input}")) {
                row(
                    &format!("micro: reply parser, {input} ({bytes} B), {what}"),
                    format!(
                        "{ns:.0} ns, {:.2} GiB/s ({:.1}× memcpy's time)",
                        gib_s(ns, bytes),
                        ns / copy_ns
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::json_number;

    #[test]
    fn finds_numbers_in_criterion_json() {
        let est = r#"{"mean":{"confidence_interval":{"lower_bound":1.0},"point_estimate":12.5},"median":{"confidence_interval":{"lower_bound":2.0},"point_estimate":1.25e3,"standard_error":3}}"#;
        assert_eq!(
            json_number(est, "\"median\"", "point_estimate"),
            Some(1250.0)
        );
        assert_eq!(json_number(est, "\"mean\"", "point_estimate"), Some(12.5));
        let bench = r#"{"group_id":"body","throughput":{"Bytes":1048576},"x":1}"#;
        assert_eq!(
            json_number(bench, "\"throughput\"", "Bytes"),
            Some(1048576.0)
        );
    }
}
