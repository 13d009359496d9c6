//! Stops that cost no epoch and jobs that run again, against the real one-node cluster of
//! `common::slurm` (issue 21): the time-limit warning during the last epoch's evaluation makes
//! the job's script requeue it through Slurm (same job id, `Restarts=1`, then `COMPLETED`), a
//! job Slurm requeues itself resumes, a training job and an evaluation job killed at their
//! time limit without the warning are resubmitted by the server.
//! The tests share the machine's two cores and SLURM_CONF, so they run one at a time.

mod common;

use axum::http::StatusCode;
use common::slurm::{
    cancel, cluster_or_skip, create, history, job_history_id, job_record_once, slurm_options,
    start_requeued_now,
};
use common::*;
use fairtat::server::slurm::SlurmOptions;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_stopped_at_its_time_limit_is_resubmitted_and_resumes() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(_cluster) =
        cluster_or_skip("a_job_stopped_at_its_time_limit_is_resubmitted_and_resumes")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // 12 epochs of 8 s: more than the 1-minute limit, so the first job times out.
    let trainer = fake_trainer(tmp.path(), 12, 8.0);
    let opts = SlurmOptions {
        time: "1".into(),
        signal_secs: 0,
        requeue: true,
        ..SlurmOptions::new()
    };
    let st = start(slurm_options(tmp.path(), Some(trainer), opts)).await;
    let id = create(&st, 12).await;
    wait_for(200.0, "the automatic resubmission", || async {
        history(tmp.path(), &id)
            .contains("submitted resume job")
            .then_some(())
    })
    .await;
    let h = history(tmp.path(), &id);
    assert!(h.contains("stopped at its time limit"), "{h}");
    assert!(h.contains("automatic resume 1 of 5"), "{h}");
    let events =
        std::fs::read_to_string(tmp.path().join("runs").join(&id).join("events.jsonl")).unwrap();
    assert!(events.contains(r#""status":"interrupted""#), "{events}");
    // The second job continues after the epochs the first one finished.
    wait_for(60.0, "the resumed trainer's start", || async {
        let text =
            std::fs::read_to_string(tmp.path().join("runs").join(&id).join("events.jsonl")).ok()?;
        let starts: Vec<serde_json::Value> = text
            .lines()
            .map(json)
            .filter(|v| v["type"] == "started")
            .collect();
        (starts.len() == 2)
            .then(|| assert!(starts[1]["start_epoch"].as_u64().unwrap() >= 1, "{text}"))
    })
    .await;
    cancel(&st, &id).await;
    st.shutdown();
}

/// The real trainer under Slurm: `fairtat train --run-dir` from the generated script, and the
/// time-limit warning (SIGUSR1, what `--signal=B:USR1@N` sends to the batch shell) during the
/// evaluation of the last epoch. The trainer stops within the evaluation; with
/// `--slurm-requeue` the script asks Slurm to requeue the job, which runs again under its id
/// and resumes. No epoch is trained twice, and Slurm says the job completed after one restart
/// (before: `FAILED` with exit code 75 and a second job from the server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warning_during_the_last_evaluation_requeues_the_job_and_costs_no_epoch() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(cluster) =
        cluster_or_skip("a_warning_during_the_last_evaluation_requeues_the_job_and_costs_no_epoch")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = slurm_options(
        tmp.path(),
        Some(env!("CARGO_BIN_EXE_fairtat").into()),
        SlurmOptions {
            requeue: true,
            ..SlurmOptions::new()
        },
    );
    opts.configs_dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs");
    let st = start(opts).await;
    // A short training part and a long evaluation (PGD-10 on 2,000 test images, 1 thread).
    let body = r#"{"preset":"fmnist-quick-fairtat","set":{"device":"cpu","data.train_subset":300,
        "data.test_subset":2000,"data.val_per_class":10,"attack.steps":2,"eval.steps":10,
        "eval.every":1,"eval.final_steps":3,"train.epochs":2,"train.batch_size":32,
        "train.threads":1}}"#;
    let (s, b) = post_json(&st, "/api/runs", body).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let id = json(&b)["id"].as_str().unwrap().to_string();
    let runs = tmp.path().join("runs");
    let events =
        || std::fs::read_to_string(runs.join(&id).join("events.jsonl")).unwrap_or_default();
    wait_for(300.0, "the last epoch's training part to end", || async {
        events()
            .lines()
            .map(json)
            .any(|v| v["type"] == "progress" && v["epoch"] == 1 && v["batch"] == v["batches"])
            .then_some(())
    })
    .await;
    let job = job_history_id(tmp.path(), &id);
    let sent = std::process::Command::new("scancel")
        .args(["--signal=USR1", "--batch", &job])
        .status()
        .unwrap();
    assert!(sent.success());
    let started_twice = || events().matches(r#""type":"started""#).count() == 2;
    start_requeued_now(&job, started_twice).await;
    let s = wait_status(&st, &id, "finished", 400.0).await;
    assert_eq!(s["epochs_done"], 2, "{s}");
    let text = events();
    assert!(
        text.contains("stopped for the scheduler's time limit (SIGUSR1)"),
        "{text}"
    );
    assert!(
        text.contains("during its evaluation"),
        "the warning came during the epoch's evaluation:\n{text}"
    );
    let epochs: Vec<u64> = text
        .lines()
        .map(json)
        .filter(|v| v["type"] == "epoch")
        .map(|v| v["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, [0, 1], "each epoch once:\n{text}");
    let trained_again = text
        .lines()
        .map(json)
        .skip_while(|v| v["type"] != "started" || v["start_epoch"] == 0)
        .any(|v| v["type"] == "progress" && v["epoch"] == 1);
    assert!(!trained_again, "the resumed trainer trained epoch 1 again");
    let h = history(tmp.path(), &id);
    let log = std::fs::read_to_string(runs.join(&id).join("train.log")).unwrap_or_default();
    let ctld = cluster.log("ctld.log");
    let about: Vec<&str> = (ctld.lines())
        .filter(|l| l.contains(&format!("JobId={job}")) || l.contains("equeue"))
        .collect();
    let about = about.join("\n");
    assert_eq!(
        h.matches("submitted").count(),
        1,
        "one job: {h}\ntrain.log:\n{log}\nctld:\n{about}"
    );
    assert!(h.contains("requeued by Slurm"), "{h}");
    // Slurm's record of the job: one restart, then completed.
    let info = job_record_once(&job, "COMPLETED").await;
    assert!(info.contains("JobState=COMPLETED"), "{info}");
    assert!(info.contains("Restarts=1"), "{info}");
    let log = std::fs::read_to_string(runs.join(&id).join("train.log")).unwrap();
    assert!(
        log.contains("asking Slurm to requeue job"),
        "the script says so:\n{log}"
    );
    st.shutdown();
}

/// Slurm's own requeue (what preemption with `PreemptMode=REQUEUE` does): the job is killed and
/// runs again under the same id; the script resumes from the checkpoint and the server follows
/// the second trainer to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_slurm_requeues_resumes_under_the_same_id() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(_cluster) = cluster_or_skip("a_job_that_slurm_requeues_resumes_under_the_same_id")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let trainer = fake_trainer(tmp.path(), 6, 0.7);
    let st = start(slurm_options(
        tmp.path(),
        Some(trainer),
        SlurmOptions::new(),
    ))
    .await;
    let id = create(&st, 6).await;
    let runs = tmp.path().join("runs");
    wait_for(30.0, "the first epoch", || async {
        (epoch_lines(&runs, &id) >= 1).then_some(())
    })
    .await;
    let job = job_history_id(tmp.path(), &id);
    let scontrol = |args: &[&str]| {
        let ok = std::process::Command::new("scontrol")
            .args(args)
            .status()
            .unwrap();
        assert!(ok.success(), "scontrol {args:?}");
    };
    scontrol(&["requeue", &job]);
    let started_twice = || {
        let events = std::fs::read_to_string(runs.join(&id).join("events.jsonl"));
        events
            .unwrap_or_default()
            .matches(r#""type":"started""#)
            .count()
            == 2
    };
    start_requeued_now(&job, started_twice).await;
    let s = wait_status(&st, &id, "finished", 90.0).await;
    assert_eq!(s["epochs_done"], 6, "{s}");
    let events = std::fs::read_to_string(runs.join(&id).join("events.jsonl")).unwrap();
    let starts = events
        .lines()
        .filter(|l| l.contains(r#""type":"started""#))
        .count();
    assert_eq!(
        starts, 2,
        "the requeued job ran the trainer again:\n{events}"
    );
    let h = history(tmp.path(), &id);
    assert_eq!(
        h.matches("submitted").count(),
        1,
        "Slurm requeued it, not the server: {h}"
    );
    let info = job_record_once(&job, "COMPLETED").await;
    assert!(info.contains("JobState=COMPLETED"), "{info}");
    st.shutdown();
}

/// An evaluation job killed at its time limit (no warning: `signal_secs = 0`) is queued again
/// with `--slurm-requeue` and its second job writes the report. The trainer stand-in's first
/// evaluation outlasts the 1-minute limit; the second one is quick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evaluation_stopped_at_its_time_limit_runs_again() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(_cluster) = cluster_or_skip("an_evaluation_stopped_at_its_time_limit_runs_again")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let fake = fake_trainer(tmp.path(), 1, 0.3);
    let trainer = tmp.path().join("slow-first-eval");
    let first = tmp.path().join("first-eval-started");
    std::fs::write(
        &trainer,
        format!(
            "#!/bin/sh\nif [ \"$1\" = eval ] && [ ! -e '{m}' ]; then touch '{m}'; exec sleep 600; fi\n\
             exec '{f}' \"$@\"\n",
            m = first.display(),
            f = fake.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&trainer, std::fs::Permissions::from_mode(0o755)).unwrap();
    let opts = SlurmOptions {
        time: "1".into(),
        signal_secs: 0,
        requeue: true,
        ..SlurmOptions::new()
    };
    let st = start(slurm_options(tmp.path(), Some(trainer), opts)).await;
    let id = create(&st, 1).await;
    wait_status(&st, &id, "finished", 240.0).await;
    // The run's final line can come before Slurm's word on the training job's end.
    wait_for(30.0, "the evaluation to be accepted", || async {
        let url = format!("/api/runs/{id}/evaluate");
        let (code, b) = post_json(&st, &url, r#"{"suite":"standard"}"#).await;
        assert!(
            code == StatusCode::ACCEPTED || b.contains("still training"),
            "{b}"
        );
        (code == StatusCode::ACCEPTED).then_some(())
    })
    .await;
    let out = tmp
        .path()
        .join("runs")
        .join(&id)
        .join("evals/standard-last");
    wait_for(240.0, "the second evaluation job's report", || async {
        out.join("eval.json").exists().then_some(())
    })
    .await;
    assert!(first.exists(), "the first evaluation ran");
    let h = history(tmp.path(), &id);
    assert!(h.contains("stopped at its time limit"), "{h}");
    assert!(
        h.contains("automatic rerun of evaluation standard-last 1 of 5"),
        "{h}"
    );
    assert_eq!(
        h.matches("submitted eval standard-last job").count(),
        2,
        "{h}"
    );
    // The report comes before Slurm's word on the job's end.
    wait_for(30.0, "the evaluation to show finished", || async {
        let (_, b) = get(&st, &format!("/api/runs/{id}/evals")).await;
        b.contains(r#""status":"finished""#).then_some(())
    })
    .await;
    st.shutdown();
}
