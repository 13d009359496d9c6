//! The hardening suite (issue 9), runs and processes: the queue cap, a trainer killed by a
//! signal, runs with non-finite numbers in their events, and how `fairtat serve` takes its token.

mod common;

use axum::http::StatusCode;
use common::*;

#[tokio::test]
async fn the_queue_has_a_cap() {
    let tmp = tempfile::tempdir().unwrap();
    let trainer = fake_trainer(tmp.path(), 100, 1.0);
    let mut opts = options(tmp.path(), Some(trainer), 1);
    opts.max_queued = 2;
    let st = start(opts).await;
    let running = create_quick(&st).await;
    wait_status(&st, &running, "running", 10.0).await;
    let queued = [create_quick(&st).await, create_quick(&st).await];
    let (code, b) = post_json(&st, "/api/runs", r#"{"preset":"quick"}"#).await;
    assert_error(
        code,
        StatusCode::TOO_MANY_REQUESTS,
        &b,
        &["queue is full", "--max-queued"],
    );
    let grid = r#"{"toml":"device = \"cpu\"\n[grid]\nseed = [1, 2]\n"}"#;
    let (code, b) = post_json(&st, "/api/runs", grid).await;
    assert_error(code, StatusCode::TOO_MANY_REQUESTS, &b, &["queue is full"]);
    let (_, b) = get(&st, "/api/runs").await;
    assert_eq!(
        json(&b).as_array().unwrap().len(),
        3,
        "nothing more was created"
    );
    for id in queued.iter().chain([&running]) {
        post_json(&st, &format!("/api/runs/{id}/cancel"), "").await;
    }
    wait_status(&st, &running, "cancelled", 10.0).await;
    st.shutdown();
}

/// A trainer that logs a line and dies by SIGKILL before writing any final event.
fn killed_trainer(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("killed-trainer.sh");
    let script =
        "#!/bin/sh\nrm -f \"$3/queued\"\necho \"loading the data: out of memory\"\nkill -9 $$\n";
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn a_trainer_killed_by_a_signal_fails_with_the_signal_and_its_log() {
    let tmp = tempfile::tempdir().unwrap();
    let st = start(options(tmp.path(), Some(killed_trainer(tmp.path())), 1)).await;
    let id = create_quick(&st).await;
    let s = wait_status(&st, &id, "failed", 10.0).await;
    let msg = s["message"].as_str().unwrap();
    assert!(
        msg.contains("signal 9 (SIGKILL)") && msg.contains("out of memory"),
        "{msg}"
    );
    // It left no checkpoint, so it is not offered for resume and resuming it is refused.
    let (_, b) = get(&st, &format!("/api/runs/{id}")).await;
    assert_eq!(json(&b)["resumable"], false, "{b}");
    let (code, b) = post_json(&st, &format!("/api/runs/{id}/resume"), "").await;
    assert_error(code, StatusCode::CONFLICT, &b, &["no checkpoint"]);
    // The failure is on disk: a restarted server shows the same.
    st.shutdown();
    let st = start(options(tmp.path(), Some("/bin/false".into()), 1)).await;
    assert_eq!(summary(&st, &id).await["status"], "failed");
    st.shutdown();
}

#[tokio::test]
async fn runs_with_non_finite_numbers_stay_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let d = runs.join("nan-run");
    std::fs::create_dir_all(d.join("checkpoints")).unwrap();
    std::fs::write(d.join("config.toml"), "name = \"nan-run\"\n").unwrap();
    std::fs::write(d.join("checkpoints/state.json"), "{}").unwrap();
    let eval = r#"{"split":"test","attack":"clean","model":"live","confusion":[[1,0],[0,1]],"overall":null,"worst":null,"worst10":0.5,"class_acc":[null,1.0],"cfps":[0.0,null],"cacc":[0.5,0.5],"support":[1,1]}"#;
    let lines = [
        r#"{"v":1,"seq":0,"time":1.0,"type":"started","run_id":"nan-run","spec":{},"class_names":["a","b"],"device":"cpu","train_size":2,"val_size":2,"test_size":2,"start_epoch":0,"pid":1}"#.to_string(),
        format!(r#"{{"v":1,"seq":1,"time":2.0,"type":"epoch","epoch":0,"epochs":3,"lr":0.1,"train_loss":null,"train_secs":null,"eval_secs":0.1,"images_per_sec":1.0,"class_eps":[null,0.1],"target_probs":[0.5,null],"target_counts":null,"evals":[{eval}],"method_state":{{"beta":[null]}}}}"#),
        r#"{"v":1,"seq":2,"time":3.0,"type":"progress","epoch":1,"batch":1,"batches":2,"loss":null,"images_per_sec":1.0,"eta_secs":null}"#.to_string(),
        r#"{"v":1,"seq":3,"time":4.0,"type":"finished","status":"failed","epochs_done":1,"message":"loss became NaN at epoch 1 batch 1"}"#.to_string(),
    ];
    std::fs::write(d.join("events.jsonl"), lines.join("\n") + "\n").unwrap();
    let events = fairtat::runs::reader::read_events(&d.join("events.jsonl")).unwrap();
    assert_eq!(events.len(), 4, "every line reads back");
    let st = start(options(tmp.path(), Some("/bin/false".into()), 1)).await;
    let s = summary(&st, "nan-run").await;
    assert_eq!(s["epochs_done"], 1, "{s}");
    assert_eq!(s["status"], "failed");
    assert!(s["message"].as_str().unwrap().contains("loss became NaN"));
    let (code, b) = get(&st, "/api/runs/nan-run/metrics").await;
    assert_eq!(code, StatusCode::OK, "{b}");
    assert_eq!(json(&b)["epochs"].as_array().unwrap().len(), 1, "{b}");
    let (_, b) = get(&st, "/api/runs/nan-run").await;
    assert_eq!(json(&b)["resumable"], true, "{b}");
    assert_eq!(get(&st, "/runs/nan-run").await.0, StatusCode::OK);
    st.shutdown();
}

#[test]
fn serve_takes_the_token_from_a_file_or_the_environment_never_argv() {
    let bin = env!("CARGO_BIN_EXE_fairtat");
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin)
        .args(["serve", "--token", "0123456789abcdef0123"])
        .env_remove("FAIRTAT_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--token is no longer accepted") && err.contains("--token-file"),
        "{err}"
    );
    // Off loopback a short token is refused at startup, from a file and from the environment.
    let file = tmp.path().join("token");
    std::fs::write(&file, "short\n").unwrap();
    let runs = tmp.path().join("runs");
    let serve = |extra: &[&str], env: Option<&str>| {
        let mut c = std::process::Command::new(bin);
        c.args(["serve", "--addr", "0.0.0.0:0", "--runs"])
            .arg(&runs)
            .args(extra)
            .env_remove("FAIRTAT_TOKEN");
        if let Some(t) = env {
            c.env("FAIRTAT_TOKEN", t);
        }
        c.output().unwrap()
    };
    for out in [
        serve(&["--token-file", file.to_str().unwrap()], None),
        serve(&[], Some("short")),
    ] {
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("at least 16 characters"), "{err}");
    }
    let out = serve(&[], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("without a token") && err.contains("FAIRTAT_TOKEN"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_grids_cannot_pass_the_queue_cap_together() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path(), Some(fake_trainer(tmp.path(), 50, 1.0)), 1);
    opts.max_queued = 10;
    let st = start(opts).await;
    let body = serde_json::json!({"preset": "quick", "set": {"grid.seed": [0, 1, 2]}}).to_string();
    let posts: Vec<_> = (0..8)
        .map(|_| {
            let (st, body) = (st.clone(), body.clone());
            tokio::spawn(async move { post_json(&st, "/api/runs", &body).await })
        })
        .collect();
    let mut created = 0;
    let mut refused = 0;
    for p in posts {
        let (code, b) = p.await.unwrap();
        match code {
            axum::http::StatusCode::CREATED => created += 3,
            axum::http::StatusCode::TOO_MANY_REQUESTS => {
                assert!(b.contains("the queue is full"), "{b}");
                refused += 1;
            }
            other => panic!("{other}: {b}"),
        }
    }
    // One run may have left the queue for the only CPU slot meanwhile.
    assert!(created <= 11, "{created} runs created against a cap of 10");
    assert!(refused >= 4, "{refused} refused");
    let waiting = st.jobs().lock().waiting_len();
    assert!(waiting <= 10, "{waiting} runs waiting");
    st.shutdown();
}

#[tokio::test]
async fn init_checkpoint_must_be_a_checkpoint_in_the_runs_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let st = start(options(tmp.path(), Some("/bin/false".into()), 1)).await;
    let runs = tmp.path().join("runs");
    let ck_dir = runs.join("20261205-000000-src").join("checkpoints");
    std::fs::create_dir_all(&ck_dir).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", ck_dir.join("evil.safetensors")).unwrap();
    let body = |path: &str| {
        serde_json::json!({"preset": "quick", "set": {"train.init_checkpoint": path}}).to_string()
    };
    let mut messages = Vec::new();
    for bad in [
        "/etc/passwd".to_string(),
        "/nonexistent/x.safetensors".to_string(),
        format!("{}/../../etc/passwd", runs.display()),
        ck_dir.join("evil.safetensors").display().to_string(),
    ] {
        let (code, b) = post_json(&st, "/api/runs", &body(&bad)).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {b}");
        let v = json(&b);
        assert_eq!(v["field"], "train.init_checkpoint", "{b}");
        // The path as echoed (shortened when long) aside, every answer must read the same.
        let full = v["error"].as_str().unwrap();
        let msg = full
            .split_once(" is not")
            .map_or(full, |(_, rest)| rest)
            .to_string();
        assert!(
            msg.contains(" a checkpoint of a run in this server's runs folder"),
            "{msg}"
        );
        messages.push(msg);
    }
    // The answer is the same whether the file exists, is readable or not: it tells nothing.
    assert!(messages.windows(2).all(|w| w[0] == w[1]), "{messages:?}");
    // A checkpoint of a run in the folder is accepted (whether it exists yet is the trainer's).
    let good = ck_dir.join("last.safetensors").display().to_string();
    let (code, b) = post_json(&st, "/api/runs", &body(&good)).await;
    assert_eq!(code, StatusCode::CREATED, "{b}");
    st.shutdown();
}
