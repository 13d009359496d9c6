//! The job executor across restarts, with the fake trainer of `common`: queued and running
//! evaluations survive a restart (the running one is adopted and holds its slot), evaluations
//! are cancellable, and a process is adopted only while it holds its run's lock.

mod common;

use axum::http::StatusCode;
use common::*;

async fn evals(st: &fairtat::server::AppState, id: &str) -> Vec<(String, String)> {
    let (_, b) = get(st, &format!("/api/runs/{id}/evals")).await;
    json(&b)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pair(name: &str, status: &str) -> (String, String) {
    (name.to_string(), status.to_string())
}

async fn evaluate(st: &fairtat::server::AppState, id: &str, suite: &str) {
    let body = format!(r#"{{"suite":"{suite}"}}"#);
    let (code, b) = post_json(st, &format!("/api/runs/{id}/evaluate"), &body).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_and_running_evaluations_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    // Each evaluation of the fake trainer takes 2 s; one CPU slot.
    let opts = options(tmp.path(), Some(fake_trainer(tmp.path(), 1, 2.0)), 1);
    let st = start(opts.clone()).await;
    let id = create_quick(&st).await;
    wait_status(&st, &id, "finished", 20.0).await;
    evaluate(&st, &id, "standard").await;
    evaluate(&st, &id, "quick").await;
    let dir = fairtat::runs::RunDir::new(tmp.path().join("runs").join(&id));
    wait_for(5.0, "the first evaluation to own the run", || async {
        let owner = fairtat::runs::lock::probe(&dir);
        owner.filter(|o| o.what == "eval standard-last").map(|_| ())
    })
    .await;
    st.shutdown();
    drop(st);

    // Server 2: the running evaluation is adopted (it still holds the run's lock), the queued
    // one is queued again from its marker.
    let st = start(opts).await;
    assert_eq!(
        evals(&st, &id).await,
        vec![
            pair("quick-last", "queued"),
            pair("standard-last", "running")
        ]
    );
    // The adopted evaluation holds the only CPU slot: a new run waits behind it.
    let other = create_quick(&st).await;
    assert_eq!(summary(&st, &other).await["status"], "queued");
    let (_, b) = get(&st, "/api/jobs").await;
    let jobs = json(&b);
    assert_eq!(jobs[0]["kind"], "eval standard-last");
    assert_eq!(
        (jobs[0]["state"].as_str(), jobs[0]["device"].as_str()),
        (Some("running"), Some("cpu"))
    );
    let waiting: Vec<&str> = jobs.as_array().unwrap()[1..]
        .iter()
        .map(|j| j["kind"].as_str().unwrap())
        .collect();
    assert_eq!(waiting, ["eval quick-last", "train"]);
    wait_for(20.0, "both evaluations to finish", || async {
        (evals(&st, &id).await
            == vec![
                pair("quick-last", "finished"),
                pair("standard-last", "finished"),
            ])
        .then_some(())
    })
    .await;
    wait_status(&st, &other, "finished", 20.0).await;
    st.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluations_cancel_while_queued_and_while_running() {
    let tmp = tempfile::tempdir().unwrap();
    let st = start(options(
        tmp.path(),
        Some(fake_trainer(tmp.path(), 1, 3.0)),
        1,
    ))
    .await;
    let id = create_quick(&st).await;
    wait_status(&st, &id, "finished", 20.0).await;
    evaluate(&st, &id, "standard").await;
    evaluate(&st, &id, "quick").await;
    wait_for(5.0, "the first evaluation to run", || async {
        (evals(&st, &id)
            .await
            .contains(&pair("standard-last", "running")))
        .then_some(())
    })
    .await;
    let runs = tmp.path().join("runs");
    let dir = fairtat::runs::RunDir::new(runs.join(&id));
    let pid = wait_for(5.0, "the evaluation to own the run", || async {
        let owner = fairtat::runs::lock::probe(&dir);
        owner
            .filter(|o| o.what == "eval standard-last")
            .map(|o| o.pid)
    })
    .await;

    let cancel = |name: &'static str| {
        let st = st.clone();
        let id = id.clone();
        async move {
            let uri = format!("/api/runs/{id}/evals/{name}/cancel");
            post_json(&st, &uri, "").await
        }
    };
    let (code, b) = cancel("quick-last").await;
    assert_eq!(code, StatusCode::ACCEPTED, "{b}");
    assert!(json(&b)
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["name"] == "quick-last" && e["status"] == "cancelled"));
    let (code, _) = cancel("standard-last").await;
    assert_eq!(code, StatusCode::ACCEPTED);
    let both = vec![
        pair("quick-last", "cancelled"),
        pair("standard-last", "cancelled"),
    ];
    wait_for(5.0, "both evaluations cancelled", || async {
        (evals(&st, &id).await == both).then_some(())
    })
    .await;
    assert!(
        fairtat::runs::lock::probe(&dir).is_none(),
        "the evaluation process {pid} released the run"
    );
    // Nothing to cancel any more: a clear conflict; an unknown name: 404.
    let (code, b) = cancel("standard-last").await;
    assert_eq!(code, StatusCode::CONFLICT, "{b}");
    let (code, _) = cancel("nope").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    // The slot is free again: a new evaluation runs.
    evaluate(&st, &id, "quick").await;
    wait_for(10.0, "the new evaluation", || async {
        (evals(&st, &id)
            .await
            .contains(&pair("quick-last", "finished")))
        .then_some(())
    })
    .await;
    st.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_pid_without_the_lock_is_never_adopted_or_signalled() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let d = runs.join("20260101-000000-stale-0001");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("config.toml"),
        "name = \"stale\"\ndevice = \"cpu\"\n",
    )
    .unwrap();
    std::fs::write(
        d.join("events.jsonl"),
        "{\"v\":1,\"seq\":0,\"time\":1.0,\"type\":\"log\",\"level\":\"info\",\"message\":\"hi\"}\n",
    )
    .unwrap();
    // Another program, alive, whose pid the lock file names (a pid reused after a reboot).
    let mut other = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    std::fs::write(d.join("lock"), format!("{}\ntrain\n", other.id())).unwrap();
    let st = start(options(tmp.path(), Some("/bin/false".into()), 1)).await;
    let id = "20260101-000000-stale-0001";
    let s = summary(&st, id).await;
    assert_eq!(s["status"], "interrupted", "{s}");
    // Cancel finds no job to signal; the other program lives on.
    let (code, _) = post_json(&st, &format!("/api/runs/{id}/cancel"), "").await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert!(
        other.try_wait().unwrap().is_none(),
        "the other program was signalled"
    );
    // And a new run takes the CPU slot at once: the stale run holds none.
    let fresh = create_quick(&st).await;
    wait_for(5.0, "the new run to start", || async {
        (summary(&st, &fresh).await["status"] != "queued").then_some(())
    })
    .await;
    let _ = other.kill();
    st.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grid_row_waits_for_the_run_it_starts_from() {
    let tmp = tempfile::tempdir().unwrap();
    // Two CPU slots: only the dependency keeps FRL from starting beside TRADES.
    let opts = options(tmp.path(), Some(fake_trainer(tmp.path(), 3, 0.3)), 2);
    let rows = opts.configs_dir.join("rows");
    std::fs::create_dir_all(&rows).unwrap();
    std::fs::write(rows.join("trades.toml"), "[method]\nname = \"trades\"\n").unwrap();
    std::fs::write(
        rows.join("frl.toml"),
        "[method]\nname = \"frl-rw\"\n[train]\ninit_from = \"trades\"\n",
    )
    .unwrap();
    let st = start(opts).await;
    let grid = "name = \"g\"\ndevice = \"cpu\"\n[grid]\npreset = [\"rows/frl\", \"rows/trades\"]\nseed = [0]\n";
    let body = serde_json::json!({ "toml": grid }).to_string();
    let (code, b) = post_json(&st, "/api/runs", &body).await;
    assert_eq!(code, StatusCode::CREATED, "{b}");
    let runs = json(&b)["runs"].as_array().unwrap().clone();
    let id_of = |part: &str| {
        runs.iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .find(|id| id.contains(part))
            .unwrap()
    };
    let (frl, trades) = (id_of("frl"), id_of("trades"));
    wait_status(&st, &trades, "running", 5.0).await;
    let s = summary(&st, &frl).await;
    assert_eq!(s["status"], "queued", "{s}");
    let msg = s["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("waiting for run") && msg.contains(&trades),
        "{s}"
    );
    wait_status(&st, &trades, "finished", 20.0).await;
    wait_status(&st, &frl, "finished", 20.0).await;
    // FRL's trainer started after TRADES wrote its final line.
    let lines = |id: &str| {
        std::fs::read_to_string(tmp.path().join("runs").join(id).join("events.jsonl")).unwrap()
    };
    let time_of = |text: &str, ty: &str| -> i64 {
        text.lines()
            .find(|l| l.contains(&format!("\"type\":\"{ty}\"")))
            .and_then(|l| json(l)["time"].as_i64())
            .unwrap()
    };
    assert!(time_of(&lines(&frl), "started") >= time_of(&lines(&trades), "finished"));
    st.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_source_is_missing_fails_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let st = start(options(
        tmp.path(),
        Some(fake_trainer(tmp.path(), 1, 0.1)),
        1,
    ))
    .await;
    let body = r#"{"preset":"quick","set":{"method.name":"frl-rw","train.init_from":"trades","train.init_from_run":"g-trades-s0"}}"#;
    let (code, b) = post_json(&st, "/api/runs", body).await;
    assert_eq!(code, StatusCode::CREATED, "{b}");
    let id = json(&b)["id"].as_str().unwrap().to_string();
    let s = wait_status(&st, &id, "failed", 5.0).await;
    let msg = s["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("g-trades-s0") && msg.contains("no run of that name"),
        "{s}"
    );
    st.shutdown();
}

/// Bulk cancel with the local executor: a grid's running and queued runs in one request, then
/// a form post from the runs list; bad requests name the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grid_is_cancelled_in_one_request() {
    let tmp = tempfile::tempdir().unwrap();
    let st = start(options(
        tmp.path(),
        Some(fake_trainer(tmp.path(), 50, 0.5)),
        1,
    ))
    .await;
    let grid = "name = \"g\"\ndevice = \"cpu\"\n[train]\nepochs = 50\n[grid]\nseed = [0, 1, 2]\n";
    let body = serde_json::json!({ "toml": grid }).to_string();
    let (code, b) = post_json(&st, "/api/runs", &body).await;
    assert_eq!(code, StatusCode::CREATED, "{b}");
    let gid = json(&b)["grid"].as_str().unwrap().to_string();
    let ids: Vec<String> = json(&b)["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    // One CPU slot: the first run trains, the other two wait.
    wait_for(20.0, "the first run's first epoch", || async {
        (epoch_lines(&tmp.path().join("runs"), &ids[0]) >= 1).then_some(())
    })
    .await;
    let body = format!(r#"{{"grid":"{gid}"}}"#);
    let (code, b) = post_json(&st, "/api/runs/cancel", &body).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{b}");
    let v = json(&b);
    assert_eq!(v["cancelled"].as_array().unwrap().len(), 3, "{b}");
    assert_eq!(v["errors"], serde_json::json!([]), "{b}");
    for id in &ids {
        let s = wait_status(&st, id, "cancelled", 20.0).await;
        assert!(s["epochs_done"].as_u64().unwrap() < 50, "{s}");
    }
    // Ended runs: nothing to cancel, each says why; an unknown id is named.
    let body = format!(r#"{{"ids":["{}","nope-1"]}}"#, ids[1]);
    let (code, b) = post_json(&st, "/api/runs/cancel", &body).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{b}");
    let errors = json(&b)["errors"].as_array().unwrap().clone();
    assert_eq!(errors.len(), 2, "{b}");
    assert!(
        errors[0]["error"].as_str().unwrap().contains("not found"),
        "{b}"
    );
    assert!(
        errors[1]["error"]
            .as_str()
            .unwrap()
            .contains("neither queued nor running"),
        "{b}"
    );
    // The runs list's "Cancel selected" posts the checked ids as a form.
    let id = create_quick(&st).await;
    wait_for(20.0, "the run's first epoch", || async {
        (epoch_lines(&tmp.path().join("runs"), &id) >= 1).then_some(())
    })
    .await;
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    let (code, h, _) = post_with(&st, "/runs/cancel", &format!("ids={id}"), &headers).await;
    assert_eq!(code, StatusCode::SEE_OTHER);
    assert_eq!(h["location"], "/");
    wait_status(&st, &id, "cancelled", 20.0).await;
    for (body, words) in [
        ("{}", "ids: select at least one run"),
        (r#"{"ids":["a"],"grid":"g"}"#, "either `ids` or `grid`"),
        (r#"{"run":"a"}"#, "allowed: ids, grid"),
        (r#"{"ids":["../x"]}"#, "is not a run id"),
    ] {
        let (code, b) = post_json(&st, "/api/runs/cancel", body).await;
        assert_error(code, StatusCode::BAD_REQUEST, &b, &[words]);
    }
    let (code, page) = get(&st, "/").await;
    assert_eq!(code, StatusCode::OK);
    assert!(page.contains(r#"formaction="/runs/cancel""#), "{page}");
    let (_, page) = get(&st, &format!("/compare?grid={gid}")).await;
    assert!(
        page.contains(&format!(r#"name="grid" value="{gid}""#)),
        "{page}"
    );
    st.shutdown();
}
