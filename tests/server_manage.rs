//! Run management through the router: rename, re-tag and annotate a run (stored in its
//! `meta.json`, kept across a restart that rebuilds the index from scratch, `config.toml`
//! untouched), refuse to delete an active run, and delete a finished one with its files.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use fairtat::server::AppState;

async fn send_json(st: &AppState, method: &str, uri: &str, body: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (s, _, b) = send(st, req).await;
    (s, b)
}

async fn post_form(st: &AppState, uri: &str, body: &str) -> (StatusCode, String) {
    let (s, _, b) = post_with(
        st,
        uri,
        body,
        &[("content-type", "application/x-www-form-urlencoded")],
    )
    .await;
    (s, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_retag_annotate_and_delete_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    let trainer = fake_trainer(tmp.path(), 3, 0.3);
    let st = start(options(tmp.path(), Some(trainer.clone()), 1)).await;
    let id = create_quick(&st).await;
    let dir = tmp.path().join("runs").join(&id);

    // Queued or running: a delete is refused and nothing is removed.
    let (code, b) = send_json(&st, "DELETE", &format!("/api/runs/{id}"), "").await;
    assert_eq!(code, StatusCode::CONFLICT, "{b}");
    assert!(
        json(&b)["error"].as_str().unwrap().contains("cancel it"),
        "{b}"
    );
    assert!(dir.is_dir());
    wait_status(&st, &id, "finished", 15.0).await;
    let config_before = std::fs::read(dir.join("config.toml")).unwrap();

    let edit =
        r#"{"name":"baseline lr 0.05","tags":["paper","keep"],"notes":"diverged at epoch 2"}"#;
    let (code, b) = send_json(&st, "PATCH", &format!("/api/runs/{id}"), edit).await;
    assert_eq!(code, StatusCode::OK, "{b}");
    assert_eq!(json(&b)["summary"]["name"], "baseline lr 0.05");
    let (_, b) = get(&st, "/api/runs?tag=paper").await;
    let list = json(&b);
    assert_eq!(list.as_array().unwrap().len(), 1, "{b}");
    assert_eq!(list[0]["tags"], serde_json::json!(["paper", "keep"]));
    let (code, b) = send_json(&st, "PATCH", &format!("/api/runs/{id}"), r#"{"name":""}"#).await;
    assert_error(code, StatusCode::UNPROCESSABLE_ENTITY, &b, &["1 to 80"]);
    assert_eq!(
        std::fs::read(dir.join("config.toml")).unwrap(),
        config_before
    );
    let meta = json(&std::fs::read_to_string(dir.join("meta.json")).unwrap());
    assert_eq!(meta["notes"], "diverged at epoch 2");

    // The run page's form edits the notes; the page shows them.
    let (code, _) = post_form(&st, &format!("/runs/{id}/meta"), "notes=rerun+with+seed+1").await;
    assert_eq!(code, StatusCode::SEE_OTHER);
    let (_, page) = get(&st, &format!("/runs/{id}")).await;
    assert!(page.contains("rerun with seed 1") && page.contains("baseline lr 0.05"));

    // Hyper-parameter columns from the recorded config, kept in the query string.
    let (code, page) = get(&st, "/?cols=method.name,train.lr,attack.steps").await;
    assert_eq!(code, StatusCode::OK);
    for th in ["method.name", "train.lr", "attack.steps"] {
        assert!(
            page.contains(&format!("<th class=\"hp-col\">{th}</th>")),
            "{th}"
        );
    }
    assert!(
        page.contains("<td class=\"hp-col\">fair-tat</td><td class=\"hp-col\">0.1</td>"),
        "{page}"
    );
    assert!(
        page.contains("cols=method.name%2Ctrain.lr%2Cattack.steps"),
        "sort links keep the columns"
    );
    let (_, rows) = get(&st, "/fragments/run-rows?cols=train.lr").await;
    assert!(rows.contains("<td class=\"hp-col\">0.1</td>"), "{rows}");
    let (code, b) = get(&st, "/?cols=train.nope").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(b.contains("train.nope"), "{b}");

    // A new server with no index file rebuilds the edits from meta.json.
    st.shutdown();
    std::fs::remove_file(tmp.path().join("runs/.index.sqlite")).unwrap();
    let st = start(options(tmp.path(), Some(trainer), 1)).await;
    let s = summary(&st, &id).await;
    assert_eq!(s["name"], "baseline lr 0.05");
    assert_eq!(s["tags"], serde_json::json!(["paper", "keep"]));

    // The form asks for a confirmation; then the directory and every trace of the run go.
    let (code, _) = post_form(&st, &format!("/runs/{id}/delete"), "").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(dir.is_dir());
    let (code, _) = post_form(&st, &format!("/runs/{id}/delete"), "confirm=yes").await;
    assert_eq!(code, StatusCode::SEE_OTHER);
    assert!(!dir.exists());
    let (code, _) = get(&st, &format!("/api/runs/{id}")).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (_, b) = get(&st, "/api/runs").await;
    assert_eq!(json(&b).as_array().unwrap().len(), 0);
    let (code, _) = send_json(&st, "DELETE", &format!("/api/runs/{id}"), "").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}
