//! Handler tests through `oneshot`: create/list/get/cancel/resume with a fake trainer, the
//! bad-input suite (validation, unknown ids, traversal, oversized bodies, token), index rebuild,
//! and a restart test (no finished epoch lost; the run is interrupted and resumable).

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use fairtat::server::{check_bind, AppState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_list_get_cancel_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let trainer = fake_trainer(tmp.path(), 40, 0.1);
    let st = start(options(tmp.path(), Some(trainer), 1)).await;

    let id = create_quick(&st).await;
    let (s, b) = get(&st, "/api/runs").await;
    assert_eq!(s, StatusCode::OK);
    let list = json(&b);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["method"], "fair-tat");
    assert_eq!(list[0]["epochs_total"], 3);

    // Runs and writes epochs; the summary follows the file.
    wait_for(10.0, "two epochs", || async {
        (summary(&st, &id).await["epochs_done"].as_u64() >= Some(2)).then_some(())
    })
    .await;
    let s = summary(&st, &id).await;
    assert_eq!(s["status"], "running");
    assert_eq!(s["clean"]["overall"], 0.75);
    assert_eq!(s["robust"]["worst"], 0.25);

    let (code, b) = get(&st, &format!("/api/runs/{id}/metrics")).await;
    assert_eq!(code, StatusCode::OK);
    let m = json(&b);
    assert_eq!(m["class_names"], serde_json::json!(["cat", "dog"]));
    assert!(m["epochs"].as_array().unwrap().len() >= 2);
    assert_eq!(m["robust_worst"][0], 0.25);

    // Cancel = SIGTERM; the trainer writes `finished` with status cancelled.
    let (code, b) = post_json(&st, &format!("/api/runs/{id}/cancel"), "").await;
    assert_eq!(code, StatusCode::ACCEPTED, "{b}");
    let s = wait_status(&st, &id, "cancelled", 10.0).await;
    let done = s["epochs_done"].as_u64().unwrap();
    assert!((2..40).contains(&done), "{s}");
    let (_, b) = get(&st, &format!("/api/runs/{id}")).await;
    assert_eq!(json(&b)["resumable"], true);

    // A finished/cancelled run cannot be cancelled again.
    let (code, _) = post_json(&st, &format!("/api/runs/{id}/cancel"), "").await;
    assert_eq!(code, StatusCode::CONFLICT);

    // Resume continues after the last epoch line.
    let (code, b) = post_json(&st, &format!("/api/runs/{id}/resume"), "").await;
    assert_eq!(code, StatusCode::ACCEPTED, "{b}");
    wait_for(10.0, "more epochs after resume", || async {
        (summary(&st, &id).await["epochs_done"].as_u64() > Some(done)).then_some(())
    })
    .await;
    let (code, _) = post_json(&st, &format!("/api/runs/{id}/resume"), "").await;
    assert_eq!(code, StatusCode::CONFLICT, "a running run is not resumable");
    // The run page's buttons: the same actions, then back to the run's page.
    let (code, _, b) = post_with(&st, &format!("/runs/{id}/resume"), "", &[]).await;
    assert_eq!(code, StatusCode::CONFLICT, "{b}");
    let (code, headers, b) = post_with(&st, &format!("/runs/{id}/cancel"), "", &[]).await;
    assert_eq!(code, StatusCode::SEE_OTHER, "{b}");
    assert_eq!(headers["location"], format!("/runs/{id}").as_str());
    wait_status(&st, &id, "cancelled", 10.0).await;
    let (code, _, b) = post_with(&st, &format!("/runs/{id}/cancel"), "", &[]).await;
    assert_eq!(code, StatusCode::CONFLICT, "{b}");
    // Epoch numbers stay contiguous across cancel + resume.
    let (_, b) = get(&st, &format!("/api/runs/{id}/metrics")).await;
    let epochs: Vec<u64> = json(&b)["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(epochs, (0..epochs.len() as u64).collect::<Vec<_>>());

    let (code, b) = get(&st, "/api/runs.csv").await;
    assert_eq!(code, StatusCode::OK);
    assert!(b.starts_with("id,"), "{b}");
    assert!(b.contains(&id));
    st.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_is_bounded_and_queued_runs_cancel_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let trainer = fake_trainer(tmp.path(), 200, 0.1);
    let st = start(options(tmp.path(), Some(trainer), 1)).await;
    let a = create_quick(&st).await;
    let b = create_quick(&st).await;
    wait_status(&st, &a, "running", 5.0).await;
    // One CPU slot: the second waits with its durable marker.
    assert_eq!(summary(&st, &b).await["status"], "queued");
    assert!(tmp.path().join("runs").join(&b).join("queued").exists());

    let (code, body) = post_json(&st, &format!("/api/runs/{b}/cancel"), "").await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    assert_eq!(json(&body)["status"], "cancelled");
    assert!(!tmp.path().join("runs").join(&b).join("queued").exists());

    let (code, body) = post_json(&st, &format!("/api/runs/{a}/cancel"), "").await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    wait_status(&st, &a, "cancelled", 10.0).await;
    st.shutdown();
}

#[tokio::test]
async fn invalid_configs_name_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let st = start(options(tmp.path(), Some("/bin/false".into()), 1)).await;
    let cases = [
        (
            r#"{"train":{"epochs":"many"}}"#,
            "train.epochs",
            "whole number",
        ),
        (r#"{"train":{"epochs":0}}"#, "train.epochs", "allowed: 1"),
        (
            r#"{"data":{"dataset":"mnist"}}"#,
            "data.dataset",
            "fashion-mnist",
        ),
        (
            r#"{"model":{"depth":3}}"#,
            "model.depth",
            "allowed in [model]: arch",
        ),
        (r#"{"preset":"nope"}"#, "preset", "quick"),
        (
            r#"{"preset":"quick","set":{"attack.eps":"big"}}"#,
            "attack.eps",
            "8/255",
        ),
    ];
    for (body, field, hint) in cases {
        let (code, b) = post_json(&st, "/api/runs", body).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {b}");
        let v = json(&b);
        assert_eq!(v["field"], field, "{body}: {b}");
        assert!(v["error"].as_str().unwrap().contains(hint), "{body}: {b}");
    }
    for body in [
        "not json",
        "[1,2]",
        r#"{"preset":"quick","set":{"a=b":1}}"#,
        r#"{"preset":"quick","preset":"other"}"#,
    ] {
        let (code, b) = post_json(&st, "/api/runs", body).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body}: {b}");
        assert!(json(&b)["error"].is_string());
    }
    // A request that names nothing to run would start the 200-epoch defaults: refused.
    for body in ["{}", r#"{"set":{"train.epochs":1}}"#, r#"{"tags":["x"]}"#] {
        let (code, b) = post_json(&st, "/api/runs", body).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {b}");
        assert_eq!(json(&b)["field"], "preset", "{body}: {b}");
        assert!(
            json(&b)["error"]
                .as_str()
                .unwrap()
                .contains("names nothing to run"),
            "{b}"
        );
    }
    let (_, b) = get(&st, "/api/runs").await;
    assert_eq!(json(&b).as_array().unwrap().len(), 0, "nothing created");
}

#[tokio::test]
async fn unknown_ids_are_404() {
    let tmp = tempfile::tempdir().unwrap();
    let st = start(options(tmp.path(), Some("/bin/false".into()), 1)).await;
    for uri in [
        "/api/runs/nope",
        "/api/runs/nope/metrics",
        "/api/runs/nope/events",
        "/runs/nope/files/config.toml",
        "/api/runs/..%2f..%2fetc",
        "/api/runs/.hidden",
    ] {
        let (code, b) = get(&st, uri).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{uri}: {b}");
    }
    for uri in ["/api/runs/nope/cancel", "/api/runs/nope/resume"] {
        let (code, _) = post_json(&st, uri, "").await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{uri}");
    }
}

/// A finished run directory written by hand, as the CLI would leave it.
fn write_finished_run(runs: &std::path::Path, id: &str) {
    let d = runs.join(id);
    std::fs::create_dir_all(d.join("checkpoints")).unwrap();
    std::fs::create_dir_all(d.join("reports")).unwrap();
    std::fs::write(d.join("config.toml"), "name = \"x\"\ndevice = \"cpu\"\n").unwrap();
    std::fs::write(
        d.join("events.jsonl"),
        "{\"v\":1,\"seq\":0,\"time\":1.0,\"type\":\"finished\",\"status\":\"finished\",\"epochs_done\":0,\"message\":null}\n",
    )
    .unwrap();
    std::fs::write(d.join("checkpoints/last.safetensors"), b"weights").unwrap();
    std::fs::write(d.join("reports/epochs.csv"), "epoch\n0\n").unwrap();
}

#[tokio::test]
async fn downloads_stay_inside_the_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    write_finished_run(&runs, "r1");
    std::fs::write(runs.join("secret.txt"), "top secret").unwrap();
    std::fs::write(tmp.path().join("outside.safetensors"), "top secret").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        tmp.path().join("outside.safetensors"),
        runs.join("r1/checkpoints/evil.safetensors"),
    )
    .unwrap();
    let st = start(options(tmp.path(), Some("/bin/false".into()), 1)).await;

    let req = Request::get("/runs/r1/files/checkpoints/last.safetensors")
        .body(Body::empty())
        .unwrap();
    let (code, headers, body) = send(&st, req).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body, "weights");
    let disp = headers["content-disposition"].to_str().unwrap();
    assert!(disp.contains("r1_checkpoint-last.safetensors"), "{disp}");
    let (code, _, _) = send(
        &st,
        Request::get("/runs/r1/files/reports/epochs.csv")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(code, StatusCode::OK);

    for uri in [
        "/runs/r1/files/../secret.txt",
        "/runs/r1/files/%2e%2e/secret.txt",
        "/runs/r1/files/%2E%2E%2Fsecret.txt",
        "/runs/r1/files/checkpoints/..%2f..%2fsecret.txt",
        "/runs/r1/files//etc/passwd",
        "/runs/r1/files/%2fetc%2fpasswd",
        "/runs/r1/files/checkpoints/evil.safetensors",
        "/runs/r1/files/.index.sqlite",
        "/runs/r1/files/queued",
    ] {
        let (code, b) = get(&st, uri).await;
        // 403 for the planted link (runs::safe_fs), 400/404 for names and paths.
        assert!(
            [
                StatusCode::BAD_REQUEST,
                StatusCode::NOT_FOUND,
                StatusCode::FORBIDDEN
            ]
            .contains(&code),
            "{uri}: {code} {b}"
        );
        assert!(
            !b.contains("top secret") && !b.contains("root:"),
            "{uri} leaked"
        );
    }
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let tmp = tempfile::tempdir().unwrap();
    let st = start(options(tmp.path(), Some("/bin/false".into()), 1)).await;
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(100 * 1024));
    let (code, _) = post_json(&st, "/api/runs", &big).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn token_guards_state_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path(), Some("/bin/false".into()), 1);
    opts.token = Some("s3cret".into());
    let st = start(opts).await;
    let (code, _) = post_json(&st, "/api/runs", r#"{"preset":"quick"}"#).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let req = Request::post("/api/runs")
        .header("content-type", "application/json")
        .header("authorization", "Bearer wrong")
        .body(Body::from(r#"{"preset":"quick"}"#))
        .unwrap();
    assert_eq!(send(&st, req).await.0, StatusCode::UNAUTHORIZED);
    let req = Request::post("/api/runs")
        .header("content-type", "application/json")
        .header("authorization", "Bearer s3cret")
        .body(Body::from(r#"{"preset":"quick"}"#))
        .unwrap();
    let (code, _, b) = send(&st, req).await;
    assert_eq!(code, StatusCode::CREATED, "{b}");
    let (code, _) = get(&st, "/api/runs").await;
    assert_eq!(code, StatusCode::OK, "reads need no token");

    assert!(check_bind(&"0.0.0.0:8080".parse().unwrap(), None).is_err());
    // Off loopback the token must be long enough to resist guessing.
    let e = check_bind(&"0.0.0.0:8080".parse().unwrap(), Some("t")).unwrap_err();
    assert!(e.to_string().contains("at least 16"), "{e}");
    assert!(check_bind(&"0.0.0.0:8080".parse().unwrap(), Some("0123456789abcdef")).is_ok());
    assert!(check_bind(&"127.0.0.1:8080".parse().unwrap(), None).is_ok());
    st.shutdown();
}

#[tokio::test]
async fn index_is_rebuilt_from_run_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    write_finished_run(&runs, "a-finished");
    // Started, never finished, no process: interrupted.
    let d = runs.join("b-crashed");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("config.toml"), "name = \"b\"\n").unwrap();
    // Its lock file names a live process of another program (this test), which holds no lock:
    // a reused pid, never to be adopted or signalled.
    std::fs::write(d.join("lock"), format!("{}\ntrain\n", std::process::id())).unwrap();
    std::fs::write(d.join("events.jsonl"), "{\"v\":1,\"seq\":0,\"time\":1.0,\"type\":\"log\",\"level\":\"info\",\"message\":\"hi\"}\n{\"v\":1,\"seq\":1,").unwrap();
    let list = |st: AppState| async move {
        let (_, b) = get(&st, "/api/runs?sort=id&order=asc").await;
        let v = json(&b);
        st.shutdown();
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_string(),
                    r["status"].as_str().unwrap().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let first = list(start(options(tmp.path(), Some("/bin/false".into()), 1)).await).await;
    assert_eq!(
        first,
        vec![
            ("a-finished".to_string(), "finished".to_string()),
            ("b-crashed".to_string(), "interrupted".to_string())
        ]
    );
    std::fs::remove_file(runs.join(".index.sqlite")).unwrap();
    let second = list(start(options(tmp.path(), Some("/bin/false".into()), 1)).await).await;
    assert_eq!(first, second);
    // Filters work on the rebuilt index.
    let st = start(options(tmp.path(), Some("/bin/false".into()), 1)).await;
    let (_, b) = get(&st, "/api/runs?status=interrupted").await;
    assert_eq!(json(&b).as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_loses_no_epoch_and_leaves_the_run_resumable() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let trainer = fake_trainer(tmp.path(), 12, 0.15);
    let opts = options(tmp.path(), Some(trainer), 1);

    // Server 1 starts a run and a second one that waits in the queue.
    let st = start(opts.clone()).await;
    let id = create_quick(&st).await;
    let queued = create_quick(&st).await;
    wait_for(10.0, "two epochs", || async {
        (epoch_lines(&runs, &id) >= 2).then_some(())
    })
    .await;
    st.shutdown();
    drop(st);

    // Server 2 adopts the still-running trainer and keeps the queued run queued.
    let st = start(opts.clone()).await;
    assert_eq!(summary(&st, &id).await["status"], "running");
    assert_eq!(summary(&st, &queued).await["status"], "queued");
    wait_for(10.0, "more epochs under server 2", || async {
        (summary(&st, &id).await["epochs_done"].as_u64() >= Some(4)).then_some(())
    })
    .await;
    st.shutdown();
    drop(st);

    // The trainer dies hard while no server watches.
    let pid: u32 = lock_pid(&runs.join(&id)).expect("the trainer names itself in the lock");
    kill(pid, "KILL");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let on_disk = epoch_lines(&runs, &id);

    // Server 3: interrupted, every epoch on disk is in the summary, resumable; the queued run
    // starts now that the slot is free.
    let st = start(opts).await;
    let s = summary(&st, &id).await;
    assert_eq!(s["status"], "interrupted", "{s}");
    assert_eq!(s["epochs_done"].as_u64(), Some(on_disk as u64));
    let (_, b) = get(&st, &format!("/api/runs/{id}")).await;
    assert_eq!(json(&b)["resumable"], true);
    wait_status(&st, &queued, "running", 5.0).await;
    post_json(&st, &format!("/api/runs/{queued}/cancel"), "").await;
    wait_status(&st, &queued, "cancelled", 10.0).await;

    let (code, b) = post_json(&st, &format!("/api/runs/{id}/resume"), "").await;
    assert_eq!(code, StatusCode::ACCEPTED, "{b}");
    let s = wait_status(&st, &id, "finished", 15.0).await;
    assert_eq!(s["epochs_done"], 12);
    let (_, b) = get(&st, &format!("/api/runs/{id}/metrics")).await;
    let epochs = json(&b)["epochs"].as_array().unwrap().len();
    assert_eq!(epochs, 12, "every epoch exactly once");
    st.shutdown();
}

fn form(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_forms_charts_and_compare() {
    let tmp = tempfile::tempdir().unwrap();
    let trainer = fake_trainer(tmp.path(), 3, 0.05);
    let st = start(options(tmp.path(), Some(trainer), 1)).await;

    // The form has every group and is generated from the field table.
    let (code, html) = get(&st, "/runs/new").await;
    assert_eq!(code, StatusCode::OK);
    for g in ["run", "data", "model", "method", "attack", "train", "eval"] {
        assert!(html.contains(&format!("<legend>{g}</legend>")), "group {g}");
    }
    for f in fairtat::config::fields::FIELDS {
        assert!(
            html.contains(&format!("name=\"{}\"", f.key)),
            "field {}",
            f.key
        );
    }
    let (_, html) = get(&st, "/runs/new?preset=quick").await;
    assert!(html.contains("value=\"quick\""), "preset fills the name");

    // Inline errors name the field and the allowed values; nothing is created.
    let (code, _, html) = send(&st, form("/runs/new", "name=x&train.epochs=many")).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("field-error") && html.contains("train.epochs"),
        "{html}"
    );
    let (code, _, html) = send(&st, form("/runs/new", "data.dataset=mnist")).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("fashion-mnist, cifar10, cifar100"), "{html}");
    assert_eq!(
        json(&get(&st, "/api/runs").await.1)
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // A valid form starts a run and redirects to its page.
    let (code, headers, _) = send(
        &st,
        form(
            "/runs/new",
            "name=form+run&device=cpu&train.epochs=3&tags=a%2C+b",
        ),
    )
    .await;
    assert_eq!(code, StatusCode::SEE_OTHER);
    let loc = headers["location"].to_str().unwrap().to_string();
    let id = loc.strip_prefix("/runs/").unwrap().to_string();
    let s = wait_status(&st, &id, "finished", 10.0).await;
    assert_eq!(s["tags"], serde_json::json!(["a", "b"]));

    let (code, html) = get(&st, &loc).await;
    assert_eq!(code, StatusCode::OK);
    assert!(html.contains("data-chart=\"cfps\"") && html.contains("epoch-slider"));
    assert!(
        html.contains("Worst classes") && html.contains("cat"),
        "tables with class names"
    );
    assert!(
        html.contains(&format!("{id}_events.jsonl")),
        "download names say run and content"
    );
    let (_, html) = get(&st, &format!("/runs/new?clone={id}")).await;
    assert!(html.contains("value=\"form run\""), "clone fills values");

    for c in [
        "accuracy",
        "loss",
        "cfps",
        "cfps-heatmap",
        "class-eps",
        "targets",
        "confusion-diff",
    ] {
        let req = Request::get(format!("/runs/{id}/charts/{c}.svg?epoch=1"))
            .body(Body::empty())
            .unwrap();
        let (code, headers, body) = send(&st, req).await;
        assert_eq!(code, StatusCode::OK, "{c}");
        assert_eq!(headers["content-type"], "image/svg+xml");
        assert!(body.contains("<svg"), "{c}");
    }
    assert_eq!(
        get(&st, &format!("/runs/{id}/charts/nope.svg")).await.0,
        StatusCode::NOT_FOUND
    );
    let (code, html) = get(&st, &format!("/runs/{id}/tables?epoch=0")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(html.contains("epoch 0"));

    // Runs list with filters, compare and its exports.
    let (_, html) = get(&st, "/?status=finished&sort=robust_worst&order=asc").await;
    assert!(html.contains(&id));
    let (_, html) = get(&st, "/?status=failed").await;
    assert!(!html.contains(&id));
    let (code, html) = get(&st, &format!("/compare?ids={id}&ids=unknown")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        html.contains("form run") && html.contains("25.00"),
        "robust worst in %"
    );
    let (_, md) = get(&st, &format!("/compare.md?ids={id}")).await;
    assert!(
        md.contains("\n| run |") && md.contains("| form run |"),
        "{md}"
    );
    let (_, tex) = get(&st, &format!("/compare.tex?ids={id}")).await;
    assert!(
        tex.contains("\\begin{tabular}") && tex.contains("fair-tat"),
        "{tex}"
    );
    let (_, csv) = get(&st, &format!("/compare.csv?ids={id}")).await;
    // Table 1 (header + one run), then the per-class robust and clean tables (header + 2
    // classes each), blank lines between sections.
    let table1: Vec<&str> = csv.lines().take_while(|l| !l.is_empty()).collect();
    assert_eq!(table1.len(), 2, "{csv}");
    assert_eq!(
        csv.lines().filter(|l| l.starts_with("Per-class")).count(),
        4,
        "{csv}"
    );
    let (code, _) = get(&st, &format!("/compare/charts/robust_worst.svg?ids={id}")).await;
    assert_eq!(code, StatusCode::OK);
    let (code, js) = get(&st, "/static/app.js").await;
    assert_eq!(code, StatusCode::OK);
    assert!(js.contains("EventSource"));
    st.shutdown();
}

#[tokio::test]
async fn runs_written_by_the_cli_appear_without_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let st = start(options(tmp.path(), Some("/bin/false".into()), 1)).await;
    write_finished_run(&tmp.path().join("runs"), "cli-run");
    let s = wait_for(8.0, "the CLI run to be indexed", || async {
        let (code, b) = get(&st, "/api/runs/cli-run").await;
        (code == StatusCode::OK).then(|| json(&b)["summary"].clone())
    })
    .await;
    assert_eq!(s["status"], "finished");
    st.shutdown();
}

/// A 12-class run written to disk before the server starts (nobody follows it).
fn synthetic_run(
    root: &std::path::Path,
    epochs: usize,
) -> (String, fairtat::runs::synthetic::Synth) {
    let id = "20261202-120000-synth".to_string();
    let dir = fairtat::runs::RunDir::new(root.join("runs").join(&id));
    let synth = fairtat::runs::synthetic::Synth {
        classes: 12,
        epochs,
        progress: 2,
        seed: 3,
    };
    let mut w = fairtat::runs::writer::EventWriter::open(&dir).unwrap();
    w.append(&synth.started(&id)).unwrap();
    for e in 0..epochs {
        synth.write_epoch(&mut w, e).unwrap();
    }
    (id, synth)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_come_from_the_store_and_carry_versions() {
    use std::sync::atomic::Ordering::Relaxed;
    let tmp = tempfile::tempdir().unwrap();
    let (id, synth) = synthetic_run(tmp.path(), 3);
    let st = start(options(tmp.path(), Some("/bin/false".into()), 1)).await;
    let events = tmp.path().join("runs").join(&id).join("events.jsonl");
    let len = std::fs::metadata(&events).unwrap().len();
    let url = format!("/runs/{id}/charts/class-acc-robust.svg");

    let (code, headers, first) = send(&st, Request::get(&url).body(Body::empty()).unwrap()).await;
    assert_eq!(code, StatusCode::OK);
    let tag = headers["etag"].to_str().unwrap().to_string();
    let (_, _, again) = send(&st, Request::get(&url).body(Body::empty()).unwrap()).await;
    assert_eq!(first, again);
    let stats = &st.store().stats;
    assert_eq!(stats.loads.load(Relaxed), 1, "the log was folded once");
    assert_eq!(stats.bytes_read.load(Relaxed), len, "and never read again");
    assert_eq!(
        stats.renders.load(Relaxed),
        1,
        "the second request was served from the cache"
    );

    // The browser revalidates with the ETag: nothing changed, 304.
    let req = Request::get(&url)
        .header("if-none-match", &tag)
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&st, req).await.0, StatusCode::NOT_MODIFIED);
    let (_, m) = get(&st, &format!("/runs/{id}/charts.json?epoch=1")).await;
    let before = json(&m)["charts"].clone();
    assert!(before["cfps-heatmap"].as_u64().is_some(), "{m}");

    // A new epoch on disk: only the new bytes are read, the chart gets a new version.
    let dir = fairtat::runs::RunDir::new(tmp.path().join("runs").join(&id));
    let mut w = fairtat::runs::writer::EventWriter::open(&dir).unwrap();
    synth.write_epoch(&mut w, 3).unwrap();
    let grown = std::fs::metadata(&events).unwrap().len();
    let (_, m) = get(&st, &format!("/runs/{id}/charts.json?epoch=1")).await;
    let after = json(&m)["charts"].clone();
    assert_ne!(
        after["accuracy"], before["accuracy"],
        "an epoch changes the curves"
    );
    assert_eq!(
        after["confusion-diff"], before["confusion-diff"],
        "epoch 1 did not change"
    );
    assert_eq!(
        stats.bytes_read.load(Relaxed),
        grown,
        "only the appended epoch was read"
    );
    let (code, headers, _) = send(
        &st,
        Request::get(&url)
            .header("if-none-match", &tag)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_ne!(headers["etag"].to_str().unwrap(), tag);

    // Per-class selector: the chosen classes are in the legend, the others faded without one.
    let named = |svg: &str| -> Vec<usize> {
        (0..12)
            .filter(|c| svg.contains(&format!("\nclass-{c}\n</text>")))
            .collect()
    };
    let (code, svg) = get(&st, &format!("{url}?classes=3,7")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        named(&svg),
        vec![3, 7],
        "only the chosen classes are in the legend"
    );
    let (_, svg) = get(&st, &format!("{url}?classes=worst2")).await;
    assert_eq!(named(&svg).len(), 2);
    assert!(svg.contains("worst 2 highlighted"));
    let (_, svg) = get(&st, &format!("{url}?classes=all")).await;
    assert_eq!(named(&svg).len(), 12);
    let (code, msg) = get(&st, &format!("{url}?classes=best3")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(msg.contains("classes") && msg.contains("worst"), "{msg}");

    // The run page starts its event stream after what it shows, and offers the selector.
    let (_, html) = get(&st, &format!("/runs/{id}")).await;
    assert!(html.contains("id=\"class-select\""));
    assert!(html.contains("data-after=\""));
    st.shutdown();
}

/// The form resolves like the command line: the FAIR-TAT preset's form switched to `pgd-at`,
/// everything else as the form showed it, trains plain PGD-AT (no class-wise epsilon, no FAWA,
/// no extra clean forwards), while a value the user changed is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_the_method_in_the_form_rederives_its_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let trainer = fake_trainer(tmp.path(), 1, 0.01);
    let st = start(options(tmp.path(), Some(trainer), 1)).await;
    // What /runs/new?preset=quick shows for FAIR-TAT, with the method switched and lr edited.
    let (_, html) = get(&st, "/runs/new?preset=quick").await;
    assert!(html.contains("name=\"_preset\" value=\"quick\""), "{html}");
    let body = "_preset=quick&name=quick&device=cpu&train.epochs=3&method.name=pgd-at\
                &method.class_eps=true&train.fawa_decay=0.85&train.clean_forwards=2\
                &method.softmax_scale=2&train.lr=0.05";
    let (code, headers, html) = send(&st, form("/runs/new", body)).await;
    assert_eq!(code, StatusCode::SEE_OTHER, "{html}");
    let id = headers["location"]
        .to_str()
        .unwrap()
        .strip_prefix("/runs/")
        .unwrap()
        .to_string();
    let text =
        std::fs::read_to_string(tmp.path().join("runs").join(&id).join("config.toml")).unwrap();
    let spec = fairtat::config::from_toml_str(&text, &[]).unwrap();
    assert_eq!(spec.method.name.as_str(), "pgd-at");
    assert!(!spec.method.class_eps, "{text}");
    assert_eq!(spec.train.fawa_decay, 0.0, "{text}");
    assert_eq!(spec.train.clean_forwards, 0, "{text}");
    assert_eq!(spec.train.lr, 0.05, "the edited value stays");
    assert_eq!(spec.train.epochs, 3, "the preset's value stays");
    st.shutdown();
}
