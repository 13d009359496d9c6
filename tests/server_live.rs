//! The run page's live fragment (`GET /runs/{id}/live`) through `oneshot`, with a fake trainer
//! that lingers after its final line (as a real one does while it flushes and frees its GPU):
//! while the run trains it offers Cancel and no Evaluate; once the final line says cancelled
//! it never offers Cancel again, and Resume appears as soon as the job has left the queue,
//! without a reload; the run's event stream ends only then, so the page's last refresh sees it.

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use fairtat::server::{router, AppState};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The fake trainer, but it stays 1.5 s after writing its `cancelled` line before it exits.
fn lingering_trainer(dir: &std::path::Path) -> std::path::PathBuf {
    let path = fake_trainer(dir, 40, 0.1);
    let script = std::fs::read_to_string(&path).unwrap();
    let lingering = script.replacen("    exit 0\n", "    sleep 1.5 9>&-\n    exit 0\n", 1);
    assert_ne!(script, lingering, "the fake trainer's cancel branch moved");
    std::fs::write(&path, lingering).unwrap();
    path
}

async fn live(st: &AppState, id: &str) -> serde_json::Value {
    let (code, body) = get(st, &format!("/runs/{id}/live")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    json(&body)
}

/// Read the run's SSE stream until its `end` event; whether the job had left the queue then.
async fn stream_end(st: AppState, id: String) -> bool {
    let req = Request::get(format!("/api/runs/{id}/events"))
        .body(Body::empty())
        .unwrap();
    let resp = router(st.clone()).oneshot(req).await.unwrap();
    let mut body = resp.into_body();
    let mut text = String::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
        if text.contains("event: end") {
            return !st.is_active(&id.parse().unwrap());
        }
    }
    panic!("the stream closed without an end event: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_run_shows_resume_and_no_cancel_without_a_reload() {
    let tmp = tempfile::tempdir().unwrap();
    let st = start(options(tmp.path(), Some(lingering_trainer(tmp.path())), 1)).await;
    let id = create_quick(&st).await;
    wait_for(10.0, "an epoch", || async {
        (summary(&st, &id).await["epochs_done"].as_u64() >= Some(1)).then_some(())
    })
    .await;

    let v = live(&st, &id).await;
    assert_eq!(v["status"], "running");
    assert_eq!(v["controls"]["cancel"], true, "{}", v["controls"]);
    assert_eq!(v["controls"]["resume"], false);
    assert_eq!(
        v["controls"]["evaluate"], false,
        "evaluations wait for training"
    );
    let head = v["head"].as_str().unwrap();
    assert!(head.contains("id=\"cancel-btn\"") && !head.contains("id=\"resume-btn\""));
    let evals = v["evals"].as_str().unwrap();
    assert!(evals.contains("evaluate-later") && !evals.contains("id=\"eval-form\""));

    let end = tokio::spawn(stream_end(st.clone(), id.clone()));
    let (code, body) = post_json(&st, &format!("/api/runs/{id}/cancel"), "").await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");

    // Poll as the page does: once the final line is folded, never Cancel; Resume once the
    // job left the queue.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut saw_ending = false;
    let v = loop {
        let v = live(&st, &id).await;
        let c = &v["controls"];
        let head = v["head"].as_str().unwrap().to_string();
        if v["status"] == "cancelled" {
            assert_eq!(c["cancel"], false, "a cancelled run offers Cancel: {c}");
            assert!(!head.contains("cancel-btn"), "{head}");
            if c["ending"] == true {
                saw_ending = true;
                assert_eq!(c["resume"], false, "Resume before the job ended: {c}");
                assert!(head.contains("run-ending"), "{head}");
            }
            if c["resume"] == true {
                break v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no Resume after the run ended: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        saw_ending,
        "the trainer lingers 1.5 s: the page must see the run ending"
    );
    let head = v["head"].as_str().unwrap();
    assert!(head.contains("id=\"resume-btn\"") && !head.contains("id=\"cancel-btn\""));
    assert_eq!(v["controls"]["evaluate"], true);
    assert!(v["evals"].as_str().unwrap().contains("id=\"eval-form\""));
    assert!(
        end.await.unwrap(),
        "the event stream ended while the job was still in the queue"
    );

    // The full page renders the same controls as the fragment.
    let (code, page) = get(&st, &format!("/runs/{id}")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(page.contains("id=\"resume-btn\"") && !page.contains("id=\"cancel-btn\""));
}
