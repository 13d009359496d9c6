//! `fairtat serve` as a user starts it: it becomes the `fairtat-dashboard` program, which
//! serves without libtorch in memory, and still starts `fairtat` for training.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn serve_runs_as_the_dashboard_program_without_libtorch() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fairtat"))
        .args(["serve", "--addr", "127.0.0.1:0", "--runs"])
        .arg(tmp.path().join("runs"))
        .arg("--configs")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/configs"))
        .env("FAIRTAT_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("fairtat dashboard: http://127.0.0.1:"),
        "{line}"
    );
    let pid = child.id();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        exe.to_string_lossy().ends_with("fairtat-dashboard"),
        "serve did not become the dashboard program: {}",
        exe.display()
    );
    assert!(
        !maps.contains("libtorch_cuda"),
        "the dashboard mapped libtorch_cuda"
    );
}
