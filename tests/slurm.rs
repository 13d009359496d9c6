//! `fairtat serve --executor slurm` against a real one-node Slurm cluster started by the test
//! (`common::slurm`): runs train to the end as Slurm jobs, a grid becomes a job array within
//! its concurrency limit, cancel goes through `scancel` and keeps the checkpoint, a job stopped
//! at its time limit is resubmitted (`slurm_requeue.rs`), a restarted server finds its pending and
//! running jobs again, and Slurm's refusal reaches the API caller.
//! The tests share the machine's two cores and SLURM_CONF, so they run one at a time.

mod common;

use std::path::Path;

use axum::http::StatusCode;
use common::slurm::{cancel, cluster_or_skip, create, history, job_history_id, slurm_options};
use common::*;
use fairtat::server::slurm::SlurmOptions;
use fairtat::server::AppState;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn job_file(root: &Path, id: &str) -> String {
    std::fs::read_to_string(root.join("runs").join(id).join("slurm/train.job")).unwrap_or_default()
}

/// Post a grid config; the ids of its runs in grid order.
async fn post_grid(st: &AppState, toml: &str) -> Vec<String> {
    let body = serde_json::json!({ "toml": toml }).to_string();
    let (code, b) = post_json(st, "/api/runs", &body).await;
    assert_eq!(code, StatusCode::CREATED, "{b}");
    json(&b)["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// The Slurm job of `id` that `/api/jobs` lists.
async fn scheduled(st: &AppState, id: &str) -> Option<serde_json::Value> {
    let (_, b) = get(st, "/api/scheduler").await;
    json(&b)["jobs"]
        .as_array()?
        .iter()
        .find(|j| j["run"] == id)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_from_the_api_trains_to_the_end_as_a_slurm_job() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(cluster) = cluster_or_skip("a_run_from_the_api_trains_to_the_end_as_a_slurm_job")
    else {
        return;
    };
    let top = tempfile::tempdir().unwrap();
    // A runs folder whose path has a blank and Slurm's pattern character `%` (issue 21).
    let tmp = top.path().join("my runs 100%");
    std::fs::create_dir_all(&tmp).unwrap();
    let tmp = tempfile::TempDir::new_in(&tmp).unwrap();
    let trainer = fake_trainer(tmp.path(), 3, 0.3);
    let st = start(slurm_options(
        tmp.path(),
        Some(trainer),
        SlurmOptions::new(),
    ))
    .await;
    let id = create(&st, 3).await;
    let job = wait_for(20.0, "the run's Slurm job id", || async {
        let f = job_file(tmp.path(), &id);
        f.lines()
            .find_map(|l| l.strip_prefix("id="))
            .map(str::to_string)
    })
    .await;
    let s = wait_status(&st, &id, "finished", 60.0).await;
    assert_eq!(s["epochs_done"], 3, "{s}");
    let script =
        std::fs::read_to_string(tmp.path().join("runs").join(&id).join("slurm/train.sh")).unwrap();
    assert!(
        script.contains(&format!("--comment=fairtat:{id}")),
        "{script}"
    );
    assert!(script.contains("train --run-dir"), "{script}");
    let name = format!("--job-name=fairtat-train-{id}");
    assert!(script.contains(&name), "{script}");
    let log = std::fs::read_to_string(tmp.path().join("runs").join(&id).join("train.log"));
    assert!(
        log.is_ok(),
        "Slurm wrote no train.log into the run:\n{script}"
    );
    let view = wait_for(20.0, "the job's end in /api/jobs", || async {
        scheduled(&st, &id).await.filter(|v| v["ended"] == true)
    })
    .await;
    assert_eq!(view["job_id"], job.as_str());
    assert_eq!(view["state"], "completed", "{view}");
    let jobs = cluster.jobs();
    assert!(
        jobs.iter().any(|(j, s)| *j == job && s == "COMPLETED"),
        "{jobs:?}"
    );
    let h = history(tmp.path(), &id);
    assert!(h.contains(&format!("submitted train job {job}")), "{h}");
    let (code, page) = get(&st, &format!("/runs/{id}")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        page.contains(&format!("Slurm job {job}: completed")),
        "{page}"
    );
    st.shutdown();
}

const GRID: &str =
    "name = \"g\"\ndevice = \"cpu\"\n[train]\nepochs = 2\n[grid]\nseed = [0, 1, 2]\n";

/// Seconds intervals [started, finished] of each run, from their events.
fn span(root: &Path, id: &str) -> (f64, f64) {
    let text = std::fs::read_to_string(root.join("runs").join(id).join("events.jsonl")).unwrap();
    let time = |kind: &str| {
        text.lines()
            .map(json)
            .find(|v| v["type"] == kind)
            .and_then(|v| v["time"].as_f64())
            .unwrap_or_else(|| panic!("no {kind} line in {id}:\n{text}"))
    };
    (time("started"), time("finished"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grid_becomes_a_job_array_within_its_concurrency_limit() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(cluster) = cluster_or_skip("a_grid_becomes_a_job_array_within_its_concurrency_limit")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let trainer = fake_trainer(tmp.path(), 2, 1.0);
    let opts = SlurmOptions {
        array_limit: 1,
        ..SlurmOptions::new()
    };
    let st = start(slurm_options(tmp.path(), Some(trainer), opts)).await;
    let ids = post_grid(&st, GRID).await;
    assert_eq!(ids.len(), 3);
    // The last task waits for the first two: the run says so with Slurm's reason.
    wait_for(30.0, "Slurm's pending reason on a queued run", || async {
        let s = summary(&st, &ids[2]).await;
        let msg = s["message"].as_str().unwrap_or_default().to_string();
        (s["status"] == "queued" && msg.contains("pending (JobArrayTaskLimit)")).then_some(())
    })
    .await;
    for id in &ids {
        wait_status(&st, id, "finished", 90.0).await;
    }
    // One submission: tasks 0..2 of one array job, in the order of the grid.
    let job_ids: Vec<String> = ids
        .iter()
        .map(|id| {
            let f = job_history_id(tmp.path(), id);
            assert!(f.contains('_'), "not an array task: {f}");
            f
        })
        .collect();
    let base = job_ids[0].split('_').next().unwrap().to_string();
    assert_eq!(
        job_ids,
        (0..3).map(|i| format!("{base}_{i}")).collect::<Vec<_>>()
    );
    let script = std::fs::read_to_string(
        tmp.path()
            .join("runs/.slurm")
            .join(format!("grid-{}.sh", ids[0])),
    )
    .unwrap();
    assert!(script.contains("#SBATCH --array=0-2%1"), "{script}");
    // %1: no two runs trained at the same time.
    let mut spans: Vec<(f64, f64)> = ids.iter().map(|id| span(tmp.path(), id)).collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    for w in spans.windows(2) {
        assert!(w[1].0 >= w[0].1, "runs overlapped: {spans:?}");
    }
    assert_eq!(cluster.jobs().len(), 3, "{:?}", cluster.jobs());
    // Every task ended: the array's map is deleted; its script and the task outputs stay, and
    // a task's run page still finds its output through the run's history.
    let folder = tmp.path().join("runs/.slurm");
    wait_for(20.0, "the array's map to be deleted", || async {
        (!folder.join(format!("grid-{}.map", ids[0])).exists()).then_some(())
    })
    .await;
    let (_, page) = get(&st, &format!("/runs/{}", ids[2])).await;
    let want = format!("Array task output (grid-{}-2.out)", ids[0]);
    assert!(page.contains(&want), "{want} missing from the run page");
    st.shutdown();
}

/// The job id a run's `slurm/history.log` recorded at submission.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_goes_through_scancel_and_the_run_keeps_its_checkpoint() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(_cluster) =
        cluster_or_skip("cancel_goes_through_scancel_and_the_run_keeps_its_checkpoint")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let trainer = fake_trainer(tmp.path(), 50, 0.5);
    let st = start(slurm_options(
        tmp.path(),
        Some(trainer),
        SlurmOptions::new(),
    ))
    .await;
    let id = create(&st, 50).await;
    wait_for(30.0, "an epoch to finish", || async {
        (epoch_lines(&tmp.path().join("runs"), &id) >= 1).then_some(())
    })
    .await;
    let (code, b) = post_json(&st, &format!("/api/runs/{id}/cancel"), "{}").await;
    assert_eq!(code, StatusCode::ACCEPTED, "{b}");
    let s = wait_status(&st, &id, "cancelled", 30.0).await;
    assert!(s["epochs_done"].as_u64().unwrap() >= 1, "{s}");
    assert!(tmp
        .path()
        .join("runs")
        .join(&id)
        .join("checkpoints/state.json")
        .exists());
    let h = history(tmp.path(), &id);
    assert!(h.contains("scancel train job"), "{h}");
    let view = wait_for(20.0, "Slurm's verdict", || async {
        scheduled(&st, &id).await.filter(|v| v["ended"] == true)
    })
    .await;
    assert!(
        view["state"].as_str().unwrap().starts_with("cancelled") || view["state"] == "completed",
        "{view}"
    );
    // Resume is a new sbatch of `train --resume` (accepted once the cancelled job has ended).
    wait_for(20.0, "the resume to be accepted", || async {
        let (code, b) = post_json(&st, &format!("/api/runs/{id}/resume"), "{}").await;
        if code == StatusCode::CONFLICT {
            assert!(b.contains("has not ended yet"), "{b}");
            return None;
        }
        assert_eq!(code, StatusCode::ACCEPTED, "{b}");
        Some(())
    })
    .await;
    wait_for(30.0, "the resume job", || async {
        history(tmp.path(), &id)
            .contains("submitted resume job")
            .then_some(())
    })
    .await;
    cancel(&st, &id).await;
    st.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_finds_its_pending_and_running_jobs_again() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(cluster) =
        cluster_or_skip("a_restarted_server_finds_its_pending_and_running_jobs_again")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let trainer = fake_trainer(tmp.path(), 4, 1.0);
    let opts = slurm_options(
        tmp.path(),
        Some(trainer),
        SlurmOptions {
            array_limit: 1,
            ..SlurmOptions::new()
        },
    );
    let st = start(opts.clone()).await;
    let ids = post_grid(&st, &GRID.replace("epochs = 2", "epochs = 4")).await;
    wait_for(30.0, "one task running and two pending", || async {
        let states: Vec<String> = cluster.jobs().into_iter().map(|(_, s)| s).collect();
        let running = states.iter().filter(|s| *s == "RUNNING").count();
        let pending = states.iter().filter(|s| *s == "PENDING").count();
        (running == 1 && pending == 2).then_some(())
    })
    .await;
    st.shutdown();
    drop(st);
    for id in &ids {
        assert!(
            job_file(tmp.path(), id).contains("id="),
            "{id} has no job id"
        );
    }

    let st = start(opts).await;
    for id in &ids {
        let s = wait_status(&st, id, "finished", 120.0).await;
        assert_eq!(s["epochs_done"], 4, "{s}");
    }
    // Nothing was submitted twice.
    for id in &ids {
        let h = history(tmp.path(), id);
        assert_eq!(h.matches("submitted").count(), 1, "{id}: {h}");
    }
    assert_eq!(cluster.jobs().len(), 3, "{:?}", cluster.jobs());
    st.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_to_an_unknown_partition_shows_slurms_error() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(_cluster) = cluster_or_skip("a_submission_to_an_unknown_partition_shows_slurms_error")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let opts = SlurmOptions {
        partition: "no-such-partition".into(),
        ..SlurmOptions::new()
    };
    let st = start(slurm_options(
        tmp.path(),
        Some(fake_trainer(tmp.path(), 1, 0.1)),
        opts,
    ))
    .await;
    let (code, b) = post_json(&st, "/api/runs", r#"{"preset":"quick"}"#).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{b}");
    assert!(b.contains("Invalid partition name specified"), "{b}");
    let (_, list) = get(&st, "/api/runs").await;
    assert_eq!(
        json(&list).as_array().map(Vec::len),
        Some(0),
        "no run was created: {list}"
    );
    st.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluations_run_as_slurm_jobs() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(cluster) = cluster_or_skip("evaluations_run_as_slurm_jobs") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let trainer = fake_trainer(tmp.path(), 1, 0.3);
    let st = start(slurm_options(
        tmp.path(),
        Some(trainer),
        SlurmOptions::new(),
    ))
    .await;
    let id = create(&st, 1).await;
    // Generous: a just-started slurmd can take a while to take its first job on a loaded
    // machine. This wait once timed out inside a full `make test` only; if it does again, say
    // what Slurm and the server saw.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    while summary(&st, &id).await["status"] != "finished" {
        if std::time::Instant::now() > deadline {
            let ctld = cluster.log("ctld.log");
            let tail: Vec<&str> = ctld.lines().rev().take(30).collect();
            panic!(
                "run {id} not finished after 240 s: {}\njobs: {:?}\nhistory: {}\nctld log (last lines first):\n{}",
                summary(&st, &id).await,
                cluster.jobs(),
                history(tmp.path(), &id),
                tail.join("\n")
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (code, b) = post_json(
        &st,
        &format!("/api/runs/{id}/evaluate"),
        r#"{"suite":"standard"}"#,
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{b}");
    let out = tmp
        .path()
        .join("runs")
        .join(&id)
        .join("evals/standard-last");
    wait_for(60.0, "the evaluation's report", || async {
        out.join("eval.json").exists().then_some(())
    })
    .await;
    let script = std::fs::read_to_string(
        tmp.path()
            .join("runs")
            .join(&id)
            .join("slurm/eval-standard-last.sh"),
    )
    .unwrap();
    assert!(
        script.contains("eval --run-dir") && script.contains("--device cpu"),
        "{script}"
    );
    let h = wait_for(30.0, "the evaluation job's end", || async {
        let h = history(tmp.path(), &id);
        h.contains("ended: Slurm job").then_some(h)
    })
    .await;
    assert!(h.contains("submitted eval standard-last job"), "{h}");
    // A failing evaluation (the fake trainer fails the corruptions suite) says why.
    let (code, b) = post_json(
        &st,
        &format!("/api/runs/{id}/evaluate"),
        r#"{"suite":"corruptions"}"#,
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{b}");
    let err = tmp
        .path()
        .join("runs")
        .join(&id)
        .join("evals/corruptions-last/error.txt");
    wait_for(60.0, "the failed evaluation's error", || async {
        err.exists().then_some(())
    })
    .await;
    st.shutdown();
}
