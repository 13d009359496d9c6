//! The compare page's labels and exports through the router, on run directories written as the
//! trainer and `fairtat eval` write them (`common/compare_runs.rs`): two seeds of the shipped
//! quick FAIR-TAT preset evaluated with the *quick* suite, PGD-AT with the *standard* one (and
//! a cancelled PGD-AT seed); corruptions of FAIR-TAT's `ema` and PGD-AT's `last` model.
//! Tables 2-4 keep every suite and checkpoint in its own table and say why, the exports carry
//! the same labels, the per-class difference has its seed spread, and the tidy CSV loads in
//! pandas with numeric columns (`tests/py/check_compare_csv.py` through `$FAIRTAT_PYTHON`).

mod common;
#[path = "common/compare_runs.rs"]
mod compare_runs;

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::http::StatusCode;
use common::*;
use compare_runs::{write_eval, write_run, Fixture};
use fairtat::runs::{RunDir, RunStatus};

const FAIR: &str = "fmnist-quick-fairtat";
const AT: &str = "fmnist-quick-at";

fn run(runs: &Path, preset: &str, seed: u64, status: RunStatus, robust: [i64; 2]) -> RunDir {
    let done = if status == RunStatus::Finished { 5 } else { 1 };
    let clean = [9, 8];
    write_run(
        runs,
        &Fixture {
            preset,
            seed,
            status,
            epochs_done: done,
            clean,
            robust,
        },
    )
}

/// Four runs and their evaluations; the `ids=` query of all of them.
fn fixtures(runs: &Path) -> String {
    let f0 = run(runs, FAIR, 0, RunStatus::Finished, [6, 2]);
    let f1 = run(runs, FAIR, 1, RunStatus::Finished, [4, 3]);
    let a0 = run(runs, AT, 0, RunStatus::Finished, [7, 1]);
    let a1 = run(runs, AT, 1, RunStatus::Cancelled, [1, 1]);
    write_eval(&f0, ("quick", "last", 4), "autoattack-quick", [5, 2], None);
    write_eval(&f1, ("quick", "last", 4), "autoattack-quick", [5, 3], None);
    write_eval(&a0, ("standard", "last", 4), "autoattack", [6, 1], None);
    write_eval(&f0, ("corruptions", "ema", 4), "clean", [9, 8], Some(0.3));
    write_eval(&a0, ("corruptions", "last", 4), "clean", [9, 8], Some(0.2));
    [f0, f1, a0, a1]
        .iter()
        .map(|d| format!("ids={}", d.id()))
        .collect::<Vec<_>>()
        .join("&")
}

/// The element with `id` (from its tag to the next `</table>`).
fn table<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no {id} in {html}"));
    let t = &html[at..];
    &t[..t.find("</table>").unwrap_or(t.len())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_2_to_4_keep_suites_and_checkpoints_apart_and_the_exports_say_so() {
    let tmp = tempfile::tempdir().unwrap();
    let q = fixtures(&tmp.path().join("runs"));
    let st = start(options(tmp.path(), None, 1)).await;

    let (code, html) = get(&st, &format!("/compare?{q}")).await;
    assert_eq!(code, StatusCode::OK, "{html}");
    assert!(
        html.contains(&format!(
            "Mixed evaluations, not comparable: quick suite, last checkpoint ({FAIR}-s0, \
             {FAIR}-s1); standard suite, last checkpoint ({AT}-s0)."
        )),
        "the page refuses to put a quick and a standard AutoAttack in one column: {html}"
    );
    let quick = table(&html, "robust-table-quick-last");
    assert!(
        quick.contains("<caption>quick suite, last checkpoint</caption>"),
        "{quick}"
    );
    assert!(quick.contains("autoattack-quick") && !quick.contains(&format!("{AT}-s0")));
    assert!(
        quick.contains("<td class=\"num\">35.0</td><td class=\"num\">20.0</td>"),
        "{quick}"
    );
    let standard = table(&html, "robust-table-standard-last");
    assert!(standard.contains(&format!("{AT}-s0")) && !standard.contains(FAIR));
    assert!(
        html.contains(&format!(
            "corruptions suite, ema checkpoint ({FAIR}-s0); corruptions suite, last \
             checkpoint ({AT}-s0)"
        )),
        "an EMA column never sits beside a last one: {html}"
    );
    assert!(table(&html, "corruption-table-corruptions-ema").contains("0.30"));

    let (_, csv) = get(&st, &format!("/compare.csv?{q}")).await;
    assert!(
        csv.contains(&format!(
            "\"Table 2: AutoAttack and Square (%): quick suite, last checkpoint\",{FAIR}-s0,\
             quick,35.0,20.0,–,–,20,last (epoch 4)\n"
        )),
        "{csv}"
    );
    assert!(
        csv.contains(
            "common corruptions: corruptions suite, ema checkpoint\",checkpoint,\
             \"ema (weight average, epoch 4)\"\n"
        ),
        "{csv}"
    );
    // The per-class difference, FAIR-TAT minus PGD-AT by method, with its seed spread (points).
    assert!(
        csv.contains(&format!(
            "Per-class difference {FAIR} minus {AT} (percentage points, ± seed std combined)\",\
             cat,-20.00,14.14,"
        )),
        "{csv}"
    );
    let (_, md) = get(&st, &format!("/compare.md?{q}")).await;
    assert!(md.contains("### Table 2: AutoAttack and Square (%): standard suite, last checkpoint"));

    let (code, long) = get(&st, &format!("/compare.long.csv?{q}")).await;
    assert_eq!(code, StatusCode::OK, "{long}");
    assert!(
        long.starts_with("group,method,metric,class,suite,checkpoint,attack,mean,std,n,inputs\n")
    );
    let file = tmp.path().join("long.csv");
    std::fs::write(&file, &long).unwrap();
    let (ok, out) = check_with_pandas(&file);
    assert!(ok, "pandas: {out}\n{long}");
    st.shutdown();
}

fn python() -> PathBuf {
    match std::env::var_os("FAIRTAT_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var("HOME").unwrap_or_default())
            .join(".cache/fairtat/torch-2.11.0/bin/python"),
    }
}

/// Run check_compare_csv.py on `csv`; (it printed ok, stdout and stderr).
fn check_with_pandas(csv: &Path) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/check_compare_csv.py");
    let py = python();
    let out = Command::new(&py)
        .arg(script)
        .arg(csv)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (set FAIRTAT_PYTHON): {e}", py.display()));
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success() && text.trim_start().starts_with("ok"),
        text,
    )
}
