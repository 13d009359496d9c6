//! A run directory written by release 0.1 (`tests/fixtures/runs-0.1/`: FAIR-TAT, SmallCNN, 1,000
//! Fashion-MNIST images, stopped by SIGTERM after 1 of 2 epochs) still loads in the dashboard,
//! renders its pages and charts, and resumes to the end with `fairtat train --resume`. A change
//! to the run-directory format or to how it is read breaks this test before it breaks a user's runs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::http::StatusCode;
use common::*;
use fairtat::runs::reader::read_events;
use fairtat::runs::{RunEvent, RunStatus};

const ID: &str = "20261204-193150-fixture-fairtat-ffe4";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// A fresh copy of the fixture's runs folder under `root/runs`.
fn runs_copy(root: &Path) -> PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runs-0.1");
    copy_dir(&fixture, &root.join("runs"));
    root.join("runs").join(ID)
}

#[tokio::test]
async fn an_old_run_directory_loads_and_renders() {
    let tmp = tempfile::tempdir().unwrap();
    runs_copy(tmp.path());
    let st = start(options(tmp.path(), None, 1)).await;
    let s = summary(&st, ID).await;
    assert_eq!(s["status"], "cancelled", "{s}");
    assert_eq!(s["epochs_done"], 1, "{s}");
    assert_eq!(s["name"], "fixture-fairtat", "{s}");
    let (code, html) = get(&st, &format!("/runs/{ID}")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        html.contains("fixture-fairtat") && html.contains("Resume"),
        "no name or Resume"
    );
    let (code, svg) = get(&st, &format!("/runs/{ID}/charts/class-acc-robust.svg")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(svg.contains("<svg"), "{}", &svg[..svg.len().min(200)]);
    let (code, tables) = get(&st, &format!("/runs/{ID}/tables?epoch=0")).await;
    assert_eq!(code, StatusCode::OK, "{tables}");
    let (code, list) = get(&st, "/").await;
    assert_eq!(code, StatusCode::OK);
    assert!(list.contains(ID), "the runs list lacks the old run");
    // The old log's best-worst-robust announcement folds into the summary, and the compare
    // page names the checkpoint of its numbers.
    assert_eq!(s["best"]["epoch"], 0, "{s}");
    let (code, html) = get(&st, &format!("/compare?ids={ID}")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(html.contains("<td>last (epoch 0)</td>"), "{html}");
}

#[test]
fn an_old_run_directory_resumes_to_the_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = runs_copy(tmp.path());
    let out = Command::new(env!("CARGO_BIN_EXE_fairtat"))
        .args(["train", "--resume"])
        .arg(&dir)
        .env("FAIRTAT_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = read_events(&dir.join("events.jsonl")).unwrap();
    let starts: Vec<usize> = lines
        .iter()
        .filter_map(|l| match &l.event {
            RunEvent::Started { start_epoch, .. } => Some(*start_epoch),
            _ => None,
        })
        .collect();
    assert_eq!(starts, vec![0, 1], "resumed from the committed epoch");
    assert!(
        matches!(
            lines.last().unwrap().event,
            RunEvent::Finished {
                status: RunStatus::Finished,
                epochs_done: 2,
                ..
            }
        ),
        "{:?}",
        lines.last()
    );
    let csv = std::fs::read_to_string(dir.join("reports/epochs.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "a header and two epochs:\n{csv}");
}
