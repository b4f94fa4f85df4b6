//! Running a server's cases: one table of results, appended to the results file, and the test
//! failing if any case failed.

use crate::*;

/// Run every case against one server, print its table, record the results, and fail the test
/// if any case failed.
pub(crate) fn run_matrix(ctx: &Ctx, t: &Target, cases: &[Case]) {
    let rt = crate::runtime();
    run_rows(ctx, t, cases, Case::label, |case| {
        rt.block_on(async {
            tokio::time::timeout(CASE_LIMIT, run_case(ctx, t, case))
                .await
                .unwrap_or_else(|_| Err(format!("timed out after {CASE_LIMIT:?}")))
        })
    });
}

/// Run `cases` one by one against `t` (`run` runs one, `label` names it), printing each result
/// as it comes, then [`report_rows`] (shared by both columns).
pub(crate) fn run_rows<C>(
    ctx: &Ctx,
    t: &Target,
    cases: &[C],
    label: impl Fn(&C) -> String,
    mut run: impl FnMut(&C) -> Result<String, String>,
) {
    let mut rows = Vec::new();
    for case in cases {
        let started = Instant::now();
        let result = run(case);
        let ms = started.elapsed().as_millis();
        match &result {
            Ok(note) => println!(
                "  [{}] {:<38} pass  ({ms:>5} ms) {note}",
                t.name,
                label(case)
            ),
            Err(why) => println!(
                "  [{}] {:<38} FAIL  ({ms:>5} ms)\n    {why}",
                t.name,
                label(case)
            ),
        }
        rows.push((label(case), result));
    }
    report_rows(ctx, t, &rows);
}

/// Print the table of one server's results, append them to the results file, and fail the
/// test if any case failed (the end of [`run_rows`]).
fn report_rows(ctx: &Ctx, t: &Target, rows: &[(String, Result<String, String>)]) {
    println!("\n  {:<12} {:<38} result", "server", "case");
    for (label, r) in rows {
        println!(
            "  {:<12} {:<38} {}",
            t.name,
            label,
            if r.is_ok() { "pass" } else { "FAIL" }
        );
    }
    if let Some(path) = &ctx.results {
        let mut out = String::new();
        for (label, r) in rows {
            let (status, note) = match r {
                Ok(n) => ("pass", n.as_str()),
                Err(e) => ("FAIL", e.lines().next().unwrap_or("")),
            };
            let note: String = note
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(160)
                .collect();
            let _ = writeln!(out, "{}\t{label}\t{status}\t{note}", t.name);
        }
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(out.as_bytes()));
        if let Err(e) = written {
            println!("  (could not append to {}: {e})", path.display());
        }
    }
    let failed: Vec<_> = rows
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(l, _)| l.as_str())
        .collect();
    assert!(
        failed.is_empty(),
        "{}: {} of {} case(s) failed: {failed:?} (details above)",
        t.name,
        failed.len(),
        rows.len()
    );
}

pub(crate) fn spool(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(var(name));
    assert!(
        Path::new(&p).is_dir(),
        "{name}={} is not a folder: were the servers started by tests/servers/run-interop.sh?",
        p.display()
    );
    Some(p)
}
