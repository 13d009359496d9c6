//! `make bench` (ignored in `make test`): the Slurm executor on the test cluster of
//! `common::slurm` with 500 queued jobs. Measures submission latency (the API answer, and the
//! time until Slurm's job id is recorded), the cost of one status poll, and the dashboard's
//! request latency with no jobs and with 500 pending ones (held with `--hold`, so they stay
//! queued). Prints a table for BENCHMARKS.md.
//!
//! A second bench counts Slurm calls (logging wrappers on PATH) while 200 held runs are
//! cancelled: one request per run, then one request for all (issue 21).
//!
//! Run: `cargo test --release --test slurm_bench -- --ignored --nocapture --test-threads=1`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::slurm::{cluster_or_skip, Counted};
use common::*;
use fairtat::server::slurm::{cli, SlurmOptions};
use fairtat::server::{AppState, ServeOptions};

const QUEUED: usize = 500;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// p50 and p99 in ms of `n` GETs of each of the dashboard's main reads.
async fn request_latency(st: &AppState, run: &str, n: usize) -> Vec<(String, f64, f64)> {
    let mut out = Vec::new();
    for uri in [
        "/".to_string(),
        "/api/runs".into(),
        format!("/runs/{run}"),
        "/api/scheduler".into(),
    ] {
        let mut t = Vec::with_capacity(n);
        for _ in 0..n {
            let t0 = Instant::now();
            let (code, _) = get(st, &uri).await;
            t.push(ms(t0.elapsed()));
            assert_eq!(code, StatusCode::OK, "{uri}");
        }
        out.push((uri, pct(&mut t, 0.5), pct(&mut t, 0.99)));
    }
    out
}

fn job_id_written(root: &Path, id: &str) -> bool {
    std::fs::read_to_string(root.join("runs").join(id).join("slurm/train.job"))
        .is_ok_and(|t| t.contains("id="))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: make bench"]
async fn slurm_submission_and_polling_with_500_queued_jobs() {
    let Some(cluster) = cluster_or_skip("slurm bench") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let opts = ServeOptions {
        slurm: Some(SlurmOptions {
            extra: vec!["--hold".into()],
            ..SlurmOptions::new()
        }),
        max_queued: 10_000,
        ..options(tmp.path(), Some(fake_trainer(tmp.path(), 1, 0.1)), 1)
    };
    let st = start(opts).await;

    // Single submissions: the API's answer, then the job id on disk.
    let (mut api, mut to_id) = (Vec::new(), Vec::new());
    let mut first = String::new();
    for _ in 0..20 {
        let t0 = Instant::now();
        let (code, b) = post_json(&st, "/api/runs", r#"{"preset":"quick"}"#).await;
        api.push(ms(t0.elapsed()));
        assert_eq!(code, StatusCode::CREATED, "{b}");
        let id = json(&b)["id"].as_str().unwrap().to_string();
        wait_for(30.0, "the job id", || async {
            job_id_written(tmp.path(), &id).then_some(())
        })
        .await;
        to_id.push(ms(t0.elapsed()));
        if first.is_empty() {
            first = id;
        }
    }
    let before = request_latency(&st, &first, 200).await;

    // 480 more as 8 grids of 60 (the grid limit is 64 runs): one array sbatch each.
    let (mut grid_api, mut ids) = (Vec::new(), Vec::new());
    let t0 = Instant::now();
    for g in 0..8 {
        let seeds: Vec<String> = (0..60).map(|s| (g * 60 + s).to_string()).collect();
        let grid = format!(
            "name = \"b{g}\"\ndevice = \"cpu\"\n[train]\nepochs = 1\n[grid]\nseed = [{}]\n",
            seeds.join(", ")
        );
        let t1 = Instant::now();
        let body = serde_json::json!({ "toml": grid }).to_string();
        let (code, b) = post_json(&st, "/api/runs", &body).await;
        grid_api.push(ms(t1.elapsed()));
        assert_eq!(code, StatusCode::CREATED, "{b}");
        ids.extend(
            json(&b)["runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string()),
        );
    }
    wait_for(120.0, "every array task's id", || async {
        ids.iter()
            .all(|id| job_id_written(tmp.path(), id))
            .then_some(())
    })
    .await;
    let grid_ids = ms(t0.elapsed());
    let pending = cluster
        .jobs()
        .iter()
        .filter(|(_, s)| s == "PENDING")
        .count();
    assert_eq!(pending, QUEUED, "held jobs stay pending");

    // One poll: squeue for every job of the user, parsed.
    let mut poll = Vec::new();
    for _ in 0..20 {
        let t0 = Instant::now();
        let snap = tokio::task::spawn_blocking(cli::squeue)
            .await
            .unwrap()
            .unwrap();
        poll.push(ms(t0.elapsed()));
        assert!(snap.len() >= QUEUED);
    }
    // Let the poller see all of them, then measure the dashboard again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = request_latency(&st, &first, 200).await;

    // The same 500 runs with the queue empty: what the runs list costs without any job.
    let gone = std::process::Command::new("scancel")
        .arg("--me")
        .status()
        .unwrap();
    assert!(gone.success());
    wait_for(120.0, "every job to end", || async {
        let (_, b) = get(&st, "/api/scheduler").await;
        let v = json(&b);
        v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["ended"] == true)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let empty = request_latency(&st, &first, 200).await;

    println!("\n| Slurm executor, {QUEUED} queued jobs (one-node test cluster) | p50 | p99 |");
    println!("|---|---|---|");
    println!(
        "| POST /api/runs (one run: sbatch --test-only, run dir) | {:.1} ms | {:.1} ms |",
        pct(&mut api, 0.5),
        pct(&mut api, 0.99)
    );
    println!(
        "| ... until the job id is recorded (sbatch) | {:.1} ms | {:.1} ms |",
        pct(&mut to_id, 0.5),
        pct(&mut to_id, 0.99)
    );
    println!(
        "| POST /api/runs, grid of 60 runs (8 grids) | {:.0} ms | {:.0} ms |",
        pct(&mut grid_api, 0.5),
        pct(&mut grid_api, 0.99)
    );
    println!(
        "| ... 8 grids posted until all 480 array task ids are recorded | {grid_ids:.0} ms | |"
    );
    println!(
        "| one status poll (squeue, {QUEUED} jobs, parsed) | {:.1} ms | {:.1} ms |",
        pct(&mut poll, 0.5),
        pct(&mut poll, 0.99)
    );
    for (((uri, b50, b99), (_, a50, a99)), (_, e50, e99)) in before.iter().zip(&after).zip(&empty) {
        println!(
            "| GET {uri}: 20 runs/20 queued -> {QUEUED} runs/{QUEUED} queued -> {QUEUED} runs/none queued \
             | {b50:.2} -> {a50:.2} -> {e50:.2} ms | {b99:.2} -> {a99:.2} -> {e99:.2} ms |"
        );
    }
    st.shutdown();
}

/// 200 held runs as 4 grids of 50; their ids once every task's id is recorded.
async fn held_grids(st: &AppState, root: &Path, round: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for g in 0..4 {
        let seeds: Vec<String> = (0..50).map(|s| (g * 50 + s).to_string()).collect();
        let grid = format!(
            "name = \"c{round}-{g}\"\ndevice = \"cpu\"\n[train]\nepochs = 1\n[grid]\nseed = [{}]\n",
            seeds.join(", ")
        );
        let body = serde_json::json!({ "toml": grid }).to_string();
        let (code, b) = post_json(st, "/api/runs", &body).await;
        assert_eq!(code, StatusCode::CREATED, "{b}");
        let runs = json(&b)["runs"].as_array().unwrap().clone();
        ids.extend(runs.iter().map(|r| r["id"].as_str().unwrap().to_string()));
    }
    wait_for(120.0, "every array task's id", || async {
        ids.iter().all(|id| job_id_written(root, id)).then_some(())
    })
    .await;
    // Let the poller settle on the 200 pending jobs.
    tokio::time::sleep(Duration::from_secs(5)).await;
    ids
}

/// Calls of each Slurm command since `before`, and the seconds until every run is cancelled
/// and every job ended in the server's view.
async fn until_all_cancelled(st: &AppState, ids: &[String], t0: Instant) -> f64 {
    for id in ids {
        wait_status(st, id, "cancelled", 120.0).await;
    }
    wait_for(120.0, "every job to end", || async {
        let (_, b) = get(st, "/api/scheduler").await;
        let jobs = json(&b)["jobs"].as_array().unwrap().clone();
        jobs.iter().all(|j| j["ended"] == true).then_some(())
    })
    .await;
    t0.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: make bench"]
async fn slurm_calls_during_a_200_run_cancel() {
    let Some(_cluster) = cluster_or_skip("slurm cancel bench") else {
        return;
    };
    let calls = Counted::install();
    let tmp = tempfile::tempdir().unwrap();
    let poll = SlurmOptions::new().poll_secs;
    let opts = ServeOptions {
        slurm: Some(SlurmOptions {
            extra: vec!["--hold".into()],
            ..SlurmOptions::new()
        }),
        max_queued: 10_000,
        ..options(tmp.path(), Some(fake_trainer(tmp.path(), 1, 0.1)), 1)
    };
    let st = start(opts).await;
    let count = |c: &str| calls.of(c).len();
    let mut rows = Vec::new();
    for (round, how) in [
        "200 requests (one per run)",
        "1 request (POST /api/runs/cancel)",
    ]
    .into_iter()
    .enumerate()
    {
        let ids = held_grids(&st, tmp.path(), round).await;
        let before = [count("squeue"), count("sacct"), count("scancel")];
        let t0 = Instant::now();
        if round == 0 {
            for id in &ids {
                let (code, b) = post_json(&st, &format!("/api/runs/{id}/cancel"), "{}").await;
                assert_eq!(code, StatusCode::ACCEPTED, "{b}");
            }
        } else {
            let body = serde_json::json!({ "ids": ids }).to_string();
            let (code, b) = post_json(&st, "/api/runs/cancel", &body).await;
            assert_eq!(code, StatusCode::ACCEPTED, "{b}");
        }
        let requests = t0.elapsed().as_secs_f64();
        let secs = until_all_cancelled(&st, &ids, t0).await;
        let n: Vec<usize> = ["squeue", "sacct", "scancel"]
            .iter()
            .zip(before)
            .map(|(c, b)| count(c) - b)
            .collect();
        rows.push((how, requests, secs, n));
    }
    println!("\n| cancel 200 held runs (poll interval {poll} s) | requests took | until all ended | squeue | sacct | scancel |");
    println!("|---|---|---|---|---|---|");
    for (how, requests, secs, n) in rows {
        println!(
            "| {how} | {requests:.1} s | {secs:.1} s | {} | {} | {} |",
            n[0], n[1], n[2]
        );
    }
    st.shutdown();
}
