//! Grids under `fairtat serve --executor slurm` on the one-node cluster of `common::slurm`
//! (issue 21): a restarted server maps a grid's array tasks back to runs whose job-id files are
//! gone (through the array's map, and through `squeue`'s comment when the map has no job id
//! yet) and submits nothing twice; a grid cancel is one `scancel`, and the status polls stay
//! within one per poll interval. Slurm's commands are counted by logging wrappers on PATH.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use axum::http::StatusCode;
use common::slurm::{cluster_or_skip, Counted};
use common::*;
use fairtat::server::slurm::SlurmOptions;
use fairtat::server::{AppState, ServeOptions};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const POLL_SECS: f64 = 0.5;

fn slurm_options(root: &Path, trainer: PathBuf) -> ServeOptions {
    ServeOptions {
        slurm: Some(SlurmOptions {
            poll_secs: POLL_SECS,
            array_limit: 1,
            ..SlurmOptions::new()
        }),
        ..options(root, Some(trainer), 1)
    }
}

fn run_file(root: &Path, id: &str, name: &str) -> PathBuf {
    root.join("runs").join(id).join(name)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A grid of three seeds; its id and its runs' ids in grid order.
async fn post_grid(st: &AppState, epochs: usize) -> (String, Vec<String>) {
    let toml = format!(
        "name = \"g\"\ndevice = \"cpu\"\n[train]\nepochs = {epochs}\n[grid]\nseed = [0, 1, 2]\n"
    );
    let body = serde_json::json!({ "toml": toml }).to_string();
    let (code, b) = post_json(st, "/api/runs", &body).await;
    assert_eq!(code, StatusCode::CREATED, "{b}");
    let v = json(&b);
    let ids = v["runs"].as_array().unwrap().iter();
    let ids = ids.map(|r| r["id"].as_str().unwrap().to_string()).collect();
    (v["grid"].as_str().unwrap().to_string(), ids)
}

/// The Slurm job `/api/scheduler` follows for `id`.
async fn scheduled(st: &AppState, id: &str) -> Option<String> {
    let (_, b) = get(st, "/api/scheduler").await;
    let jobs = json(&b)["jobs"].as_array()?.clone();
    let job = jobs.into_iter().find(|j| j["run"] == id)?;
    Some(job["job_id"].as_str()?.to_string())
}

/// Wait until the restarted server follows `task` for run `id`.
async fn followed(st: &AppState, id: &str, task: &str) {
    wait_for(
        10.0,
        &format!("{id} followed as Slurm job {task}"),
        || async { (scheduled(st, id).await.as_deref() == Some(task)).then_some(()) },
    )
    .await;
}

/// Wait until `cluster` runs one task of the array and holds the other two pending.
async fn one_running_two_pending(cluster: &common::slurm::Cluster) {
    wait_for(60.0, "one task running and two pending", || async {
        let states: Vec<String> = cluster.jobs().into_iter().map(|(_, s)| s).collect();
        let running = states.iter().filter(|s| *s == "RUNNING").count();
        let pending = states.iter().filter(|s| *s == "PENDING").count();
        (running == 1 && pending == 2).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grid_restarted_without_its_job_files_is_submitted_once() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(cluster) = cluster_or_skip("a_grid_restarted_without_its_job_files") else {
        return;
    };
    let calls = Counted::install();
    let tmp = tempfile::tempdir().unwrap();
    let opts = slurm_options(tmp.path(), fake_trainer(tmp.path(), 8, 1.0));
    let st = start(opts.clone()).await;
    let (_, ids) = post_grid(&st, 8).await;
    one_running_two_pending(&cluster).await;
    wait_for(30.0, "the first task's trainer", || async {
        (epoch_lines(&tmp.path().join("runs"), &ids[0]) >= 1).then_some(())
    })
    .await;
    st.shutdown();
    drop(st);
    let map_path = tmp
        .path()
        .join("runs/.slurm")
        .join(format!("grid-{}.map", ids[0]));
    let map = read(&map_path);
    let base = map
        .lines()
        .find_map(|l| l.strip_prefix("job="))
        .unwrap_or_else(|| panic!("no job id in the map:\n{map}"))
        .to_string();
    for (i, id) in ids.iter().enumerate() {
        assert!(map.contains(&format!("\n{i} {id}\n")), "{map}");
    }
    let tasks: Vec<String> = (0..3).map(|i| format!("{base}_{i}")).collect();

    // Restart 1: the job-id files are gone; the map's job id names the tasks.
    let lose_job_files = || {
        for id in &ids {
            std::fs::remove_file(run_file(tmp.path(), id, "slurm/train.job")).unwrap();
        }
    };
    lose_job_files();
    let st = start(opts.clone()).await;
    for (id, task) in ids.iter().zip(&tasks) {
        followed(&st, id, task).await;
        let file = read(&run_file(tmp.path(), id, "slurm/train.job"));
        assert!(file.contains(&format!("id={task}\n")), "{id}: {file}");
    }
    st.shutdown();
    drop(st);

    // Restart 2: the server had stopped between sbatch and the map's job line: squeue's
    // comment (`fairtat-array:<first run>`) names the map.
    lose_job_files();
    let without_job: String = map
        .lines()
        .filter(|l| !l.starts_with("job="))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&map_path, without_job + "\n").unwrap();
    let st = start(opts).await;
    for (id, task) in ids.iter().zip(&tasks) {
        followed(&st, id, task).await;
    }
    for id in &ids {
        let s = wait_status(&st, id, "finished", 120.0).await;
        assert_eq!(s["epochs_done"], 8, "{s}");
        let h = read(&run_file(tmp.path(), id, "slurm/history.log"));
        assert_eq!(h.matches("submitted").count(), 1, "{id}: {h}");
        let events = read(&run_file(tmp.path(), id, "events.jsonl"));
        assert_eq!(events.matches(r#""type":"started""#).count(), 1, "{events}");
    }
    // The run page shows the submission history, the array's script and the task's output.
    let (_, page) = get(&st, &format!("/runs/{}", ids[1])).await;
    let slurm = page
        .split(r#"<section id="slurm">"#)
        .nth(1)
        .unwrap_or_default();
    assert!(slurm.contains("submitted train job"), "{slurm}");
    assert!(
        slurm.contains(&format!("Array task output (grid-{}-1.out)", ids[0])),
        "{slurm}"
    );
    assert!(
        slurm.contains("Batch script grid-") && slurm.contains("#SBATCH"),
        "{slurm}"
    );
    // One submission (the other sbatch call is the pre-submit check, `--test-only`).
    let sbatch = calls.of("sbatch");
    let submitted: Vec<&String> = sbatch
        .iter()
        .filter(|c| !c.contains("--test-only"))
        .collect();
    assert_eq!(submitted.len(), 1, "{sbatch:?}");
    assert_eq!(cluster.jobs().len(), 3, "{:?}", cluster.jobs());
    st.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grid_cancel_is_one_scancel_and_polls_stay_paced() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(cluster) = cluster_or_skip("a_grid_cancel_is_one_scancel") else {
        return;
    };
    let calls = Counted::install();
    let tmp = tempfile::tempdir().unwrap();
    let st = start(slurm_options(tmp.path(), fake_trainer(tmp.path(), 50, 0.5))).await;
    let (gid, ids) = post_grid(&st, 50).await;
    one_running_two_pending(&cluster).await;
    wait_for(30.0, "the first task's trainer", || async {
        (epoch_lines(&tmp.path().join("runs"), &ids[0]) >= 1).then_some(())
    })
    .await;
    let t0 = Instant::now();
    let (squeue0, sacct0) = (calls.of("squeue").len(), calls.of("sacct").len());
    let (code, b) = post_json(&st, "/api/runs/cancel", &format!(r#"{{"grid":"{gid}"}}"#)).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{b}");
    assert_eq!(json(&b)["cancelled"].as_array().unwrap().len(), 3, "{b}");
    for id in &ids {
        let s = wait_status(&st, id, "cancelled", 60.0).await;
        assert!(s["epochs_done"].as_u64().unwrap() < 50, "{s}");
    }
    wait_for(30.0, "Slurm's word on every task", || async {
        let (_, b) = get(&st, "/api/scheduler").await;
        let jobs = json(&b)["jobs"].as_array().unwrap().clone();
        jobs.iter().all(|j| j["ended"] == true).then_some(())
    })
    .await;
    let secs = t0.elapsed().as_secs_f64();
    let scancels = calls.of("scancel");
    assert_eq!(scancels.len(), 1, "{scancels:?}");
    let base = read(&run_file(tmp.path(), &ids[0], "slurm/history.log"));
    let task0 = base
        .lines()
        .find_map(|l| l.split_once(" job ").map(|(_, j)| j.trim().to_string()));
    let base = task0.unwrap().split('_').next().unwrap().to_string();
    for i in 0..3 {
        assert!(scancels[0].contains(&format!("{base}_{i}")), "{scancels:?}");
    }
    for (cmd, before) in [("squeue", squeue0), ("sacct", sacct0)] {
        let n = calls.of(cmd).len() - before;
        let most = (secs / POLL_SECS).floor() as usize + 1;
        assert!(
            n <= most,
            "{n} {cmd} calls in {secs:.1} s (poll every {POLL_SECS} s)"
        );
    }
    st.shutdown();
}
