//! The dashboard's live parts and what prevents dead runs, driven through the router with the
//! fake trainer of `common`: the run page's live JSON (header, downloads with checkpoint notes,
//! log), the runs list's rows fragment and its one event stream, "download run" as a tar.gz, a
//! queued run saying what it waits for, and the refusals (missing data files, `lr = 0`, every
//! bad form field at once, the preset kept).

mod common;

use std::io::Read;
use std::time::Duration;

use axum::http::StatusCode;
use common::*;

async fn live(st: &fairtat::server::AppState, id: &str) -> serde_json::Value {
    let (code, b) = get(st, &format!("/runs/{id}/live")).await;
    assert_eq!(code, StatusCode::OK, "{b}");
    json(&b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_page_live_parts_follow_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let trainer = fake_trainer(tmp.path(), 3, 0.6);
    let st = start(options(tmp.path(), Some(trainer), 1)).await;
    let id = create_quick(&st).await;

    // During the run: the header counts finished epochs and offers Cancel; the downloads list
    // the checkpoint with the epoch it holds.
    let v = wait_for(20.0, "the first epoch in the live header", || async {
        let v = live(&st, &id).await;
        let h = v["head"].as_str().unwrap_or_default();
        (h.contains("1 of 3 epochs done")).then_some(v)
    })
    .await;
    let head = v["head"].as_str().unwrap();
    assert!(head.contains("id=\"cancel-btn\""), "{head}");
    assert!(!head.contains("id=\"resume-btn\""), "{head}");
    let files = v["files"].as_str().unwrap();
    assert!(
        files.contains("checkpoints/last.safetensors") && files.contains("epoch 0: the latest"),
        "{files}"
    );
    assert!(
        files.contains("reports/") || files.contains("events.jsonl"),
        "{files}"
    );

    // At the end: the header says finished, without Cancel; the last checkpoint's note moved on.
    wait_status(&st, &id, "finished", 30.0).await;
    let v = live(&st, &id).await;
    assert_eq!(v["status"], "finished");
    let head = v["head"].as_str().unwrap();
    assert!(head.contains("3 of 3 epochs done"), "{head}");
    assert!(!head.contains("id=\"cancel-btn\""), "{head}");
    assert!(
        v["files"].as_str().unwrap().contains("epoch 2: the latest"),
        "{}",
        v["files"]
    );
    // The run page itself renders the same parts.
    let (_, page) = get(&st, &format!("/runs/{id}")).await;
    assert!(page.contains("id=\"run-head\"") && page.contains("3 of 3 epochs done"));
    assert!(page.contains("epoch 2: the latest"), "{page}");
    st.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_run_says_what_it_waits_for_and_the_runs_list_streams_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let trainer = fake_trainer(tmp.path(), 50, 0.5);
    let st = start(options(tmp.path(), Some(trainer), 1)).await;
    let (base, server) = serve_loopback(st.clone()).await;

    // The runs list's stream, opened before the runs exist.
    let mut events = reqwest::get(format!("{base}/api/events")).await.unwrap();
    assert_eq!(events.status(), 200);
    let first = create_quick(&st).await;
    wait_status(&st, &first, "running", 10.0).await;
    let second = create_quick(&st).await;

    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !(seen.contains(&first) && seen.contains(&second)) {
        let chunk = tokio::time::timeout_at(deadline, events.chunk())
            .await
            .expect("status events of both runs")
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: hello"), "{seen}");
    assert!(seen.contains("event: status"), "{seen}");

    // The rows fragment holds both runs, for the page's own filters.
    let (code, rows) = get(&st, "/fragments/run-rows").await;
    assert_eq!(code, StatusCode::OK);
    assert!(rows.contains(&first) && rows.contains(&second), "{rows}");
    let (_, rows) = get(&st, "/fragments/run-rows?status=queued").await;
    assert!(rows.contains(&second) && !rows.contains(&first), "{rows}");

    // The queued run names its place and the run holding the one CPU slot.
    let head = live(&st, &second).await["head"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        head.contains("waiting for a free cpu slot") && head.contains(&first),
        "{head}"
    );
    assert!(head.contains("position 1 of 1 in the queue"), "{head}");

    for id in [&second, &first] {
        post_json(&st, &format!("/api/runs/{id}/cancel"), "").await;
    }
    let s = wait_status(&st, &second, "cancelled", 10.0).await;
    assert_eq!(s["message"], "cancelled by you while queued");
    wait_status(&st, &first, "cancelled", 10.0).await;
    assert!(
        st.run_dir(&first.parse().unwrap())
            .root()
            .join("cancel-requested")
            .exists(),
        "Cancel leaves the marker the trainer reads"
    );
    st.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_run_is_one_tar_gz_of_the_downloadable_files() {
    let tmp = tempfile::tempdir().unwrap();
    let trainer = fake_trainer(tmp.path(), 2, 0.05);
    let st = start(options(tmp.path(), Some(trainer), 1)).await;
    let id = create_quick(&st).await;
    wait_status(&st, &id, "finished", 20.0).await;
    // Not downloadable, so not archived.
    std::fs::write(
        st.run_dir(&id.parse().unwrap()).root().join("secret.txt"),
        "x",
    )
    .unwrap();

    let req = axum::http::Request::get(format!("/runs/{id}/archive.tar.gz"))
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(fairtat::server::router(st.clone()), req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let disp = resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(disp.contains(&format!("{id}.tar.gz")), "{disp}");
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut names = Vec::new();
    let mut events = String::new();
    for entry in tar.entries().unwrap() {
        let mut e = entry.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name.ends_with("events.jsonl") {
            e.read_to_string(&mut events).unwrap();
        }
        names.push(name);
    }
    for want in [
        "config.toml",
        "events.jsonl",
        "checkpoints/last.safetensors",
    ] {
        assert!(
            names.contains(&format!("{id}/{want}")),
            "{want} not in {names:?}"
        );
    }
    assert!(!names.iter().any(|n| n.contains("secret")), "{names:?}");
    let on_disk = std::fs::read_to_string(st.run_dir(&id.parse().unwrap()).events()).unwrap();
    assert_eq!(events, on_disk, "the archived events are the file's bytes");
    let (code, _) = get(&st, "/runs/no-such-run/archive.tar.gz").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    st.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_that_could_only_fail_are_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let st = start(options(tmp.path(), None, 1)).await;
    let empty = tmp.path().join("no-cifar-here");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("data_batch_1.bin"), [0u8]).unwrap();

    // Missing data: 422 naming data.dir, the directory and the files; nothing is created.
    let body = serde_json::json!({
        "preset": "quick",
        "set": { "data.dataset": "cifar10", "data.dir": empty.to_str().unwrap() }
    });
    let (code, b) = post_json(&st, "/api/runs", &body.to_string()).await;
    assert_error(
        code,
        StatusCode::UNPROCESSABLE_ENTITY,
        &b,
        &[
            empty.to_str().unwrap(),
            "data_batch_2.bin",
            "test_batch.bin",
        ],
    );
    assert_eq!(json(&b)["field"], "data.dir");
    assert!(
        !json(&b)["error"]
            .as_str()
            .unwrap()
            .contains("missing data_batch_1"),
        "{b}"
    );

    // A learning rate of 0 trains nothing.
    let body = r#"{"preset":"quick","set":{"train.lr":0}}"#;
    let (code, b) = post_json(&st, "/api/runs", body).await;
    assert_error(code, StatusCode::UNPROCESSABLE_ENTITY, &b, &["> 0"]);
    assert_eq!(json(&b)["field"], "train.lr");
    let (_, list) = get(&st, "/api/runs").await;
    assert_eq!(json(&list).as_array().unwrap().len(), 0, "nothing created");

    // The form: every bad field at once, next to its field, and the preset kept.
    let form = "_preset=quick&name=x&train.epochs=many&train.batch_size=-3&attack.steps=2";
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("accept", "text/html"),
    ];
    let (code, _, html) = post_with(&st, "/runs/new", form, &headers).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("2 fields need a change"), "{html}");
    for key in ["train.epochs", "train.batch_size"] {
        let at = html.find(&format!("id=\"f-{key}\"")).unwrap();
        let field = &html[html[..at].rfind("<div class=\"field").unwrap()..];
        assert!(field.starts_with("<div class=\"field invalid\""), "{key}");
    }
    assert!(html.contains("name=\"_preset\" value=\"quick\""), "{html}");
    assert!(html.contains("<option value=\"quick\" selected>"), "{html}");
    assert!(!html.contains('`'), "no literal backticks in messages");

    // The form with missing data shows the data message at data.dir.
    let form = format!(
        "name=x&data.dataset=cifar10&data.dir={}",
        empty.to_str().unwrap().replace('/', "%2F")
    );
    let (code, _, html) = post_with(&st, "/runs/new", &form, &headers).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    let at = html.find("id=\"f-data.dir\"").unwrap();
    let field = &html[html[..at].rfind("<div class=\"field").unwrap()..];
    assert!(field.starts_with("<div class=\"field invalid\""), "{field}");
    assert!(
        html.contains("has no cifar10 data on this machine"),
        "{html}"
    );
    st.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cfps_sources_sinks_and_per_class_comparisons() {
    let tmp = tempfile::tempdir().unwrap();
    let trainer = fake_trainer(tmp.path(), 2, 0.05);
    let st = start(options(tmp.path(), Some(trainer), 2)).await;
    let mut ids = Vec::new();
    // The difference is chosen by method: the PGD-AT run says so in its config, not only its name.
    for (name, method) in [
        ("pgd-at-s0", "pgd-at"),
        ("fair-tat-s0", "fair-tat"),
        ("fair-tat-s1", "fair-tat"),
    ] {
        let body =
            format!(r#"{{"preset":"quick","set":{{"name":"{name}","method.name":"{method}"}}}}"#);
        let (code, b) = post_json(&st, "/api/runs", &body).await;
        assert_eq!(code, StatusCode::CREATED, "{b}");
        ids.push(json(&b)["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        wait_status(&st, id, "finished", 30.0).await;
    }
    let id = &ids[0];

    // The C_FPS bars of the test set under attack, with the top false-positive sink marked.
    let (code, svg) = get(
        &st,
        &format!("/runs/{id}/charts/cfps.svg?source=test-robust"),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{svg}");
    assert!(svg.contains("test set, under pgd-10"), "{svg}");
    assert!(svg.contains("dog: 1 (top false-positive sink #1)"), "{svg}");
    let (code, svg) = get(
        &st,
        &format!("/runs/{id}/charts/cfps.svg?source=test-clean"),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert!(svg.contains("test set, clean"), "{svg}");
    let (code, b) = get(&st, &format!("/runs/{id}/charts/cfps.svg?source=val")).await;
    assert_error(
        code,
        StatusCode::BAD_REQUEST,
        &b,
        &["train, test-clean, test-robust"],
    );

    // The compare page draws FAIR-TAT minus PGD-AT per class and exports per-class tables.
    let q = ids
        .iter()
        .map(|i| format!("ids={i}"))
        .collect::<Vec<_>>()
        .join("&");
    let (_, html) = get(&st, &format!("/compare?{q}")).await;
    assert!(html.contains("id=\"delta-robust\""), "{html}");
    assert!(
        html.contains("<option value=\"1\" selected>fair-tat</option>"),
        "{html}"
    );
    let (code, svg) = get(&st, &format!("/compare/charts/delta-robust.svg?{q}")).await;
    assert_eq!(code, StatusCode::OK, "{svg}");
    assert!(svg.contains("fair-tat minus pgd-at"), "{svg}");
    assert!(svg.contains("dog: 0"), "equal runs differ by 0: {svg}");
    let (_, svg) = get(
        &st,
        &format!("/compare/charts/delta-clean.svg?{q}&da=0&db=1"),
    )
    .await;
    assert!(svg.contains("pgd-at minus fair-tat"), "{svg}");
    let (_, csv) = get(&st, &format!("/compare.csv?{q}")).await;
    assert!(
        csv.contains("Per-class robust test accuracy at the last epoch (%)"),
        "{csv}"
    );
    assert!(csv.contains("fair-tat (mean of 2)"), "{csv}");
    let dog = csv
        .lines()
        .find(|l| l.contains("Per-class robust") && l.contains(",dog,"))
        .unwrap_or_else(|| panic!("no dog row:\n{csv}"));
    assert!(dog.ends_with("25.00,25.00"), "{dog}");
    st.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_page_queues_several_evaluations_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let trainer = fake_trainer(tmp.path(), 1, 0.3);
    let st = start(options(tmp.path(), Some(trainer), 1)).await;
    let id = create_quick(&st).await;
    wait_status(&st, &id, "finished", 20.0).await;
    let form = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("accept", "text/html"),
    ];
    let url = format!("/runs/{id}/evaluate");
    let (code, _, b) = post_with(&st, &url, "suite=quick&suite=standard&model=last", &form).await;
    assert_eq!(code, StatusCode::SEE_OTHER, "{b}");
    let (_, b) = get(&st, &format!("/api/runs/{id}/evals")).await;
    let names: Vec<String> = json(&b)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.contains(&"quick-last".to_string()) && names.contains(&"standard-last".to_string()),
        "{names:?}"
    );
    // The one waiting behind the other says so on the page.
    let (_, html) = get(&st, &format!("/runs/{id}/evals")).await;
    assert!(html.contains("position 1 of 1 in the queue"), "{html}");
    // The same evaluation again: a page (not JSON) naming the conflict.
    let (code, _, b) = post_with(&st, &url, "suite=standard&model=last", &form).await;
    assert_eq!(code, StatusCode::CONFLICT, "{b}");
    assert!(
        b.contains("<p class=\"error\"") && b.contains("already has the standard-last"),
        "{b}"
    );
    let (code, _, b) = post_with(&st, &url, "model=last", &form).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{b}");
    assert!(b.contains("choose at least one"), "{b}");
    // An unknown run, from a browser: an HTML page.
    let req = axum::http::Request::get("/runs/20990101-000000-nope-0000")
        .header("accept", "text/html")
        .body(axum::body::Body::empty())
        .unwrap();
    let (code, headers, b) = send(&st, req).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{b}"
    );
    assert!(b.contains("not found"), "{b}");
    for name in ["quick-last", "standard-last"] {
        wait_for(20.0, "the evaluations to end", || async {
            let (_, b) = get(&st, &format!("/api/runs/{id}/evals")).await;
            json(&b)
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == name && e["status"] == "finished")
                .then_some(())
        })
        .await;
    }
    st.shutdown();
}
