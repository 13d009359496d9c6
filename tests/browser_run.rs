//! The run page in headless Chromium (the harness of `tests/browser.rs`) while a tiny real run
//! trains on the CPU: the step panel shows batch i of n during the first epoch, pushed over SSE
//! before any epoch ends; when the run is cancelled through the API while the page is open,
//! Cancel disappears and Resume appears without a reload.

mod common;

use std::path::PathBuf;

use common::webdriver::*;
use common::*;
use serde_json::Value;

/// A tiny FAIR-TAT run: small subsets, two attack steps, long enough that it is cancelled
/// before it finishes. `log_every` is large, so what the page shows within the first epoch
/// comes from the trainer's first-batch and every-two-seconds progress lines.
const SET: [(&str, &str); 11] = [
    ("device", "cpu"),
    ("data.train_subset", "600"),
    ("data.test_subset", "200"),
    ("data.val_per_class", "10"),
    ("attack.steps", "2"),
    ("eval.steps", "2"),
    ("eval.final_steps", "2"),
    ("train.epochs", "30"),
    ("train.batch_size", "32"),
    ("train.lr", "0.05"),
    ("train.log_every", "1000"),
];

/// Create the run through the router; its id.
async fn create_run(st: &fairtat::server::AppState) -> String {
    let set: serde_json::Map<String, Value> = SET
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .chain([("name".to_string(), Value::String("br-live".into()))])
        .collect();
    let body = serde_json::json!({ "preset": "fmnist-quick-fairtat", "set": set });
    let (code, body) = post_json(st, "/api/runs", &body.to_string()).await;
    assert_eq!(code, axum::http::StatusCode::CREATED, "{body}");
    json(&body)["id"].as_str().unwrap().to_string()
}

/// `[step text, epochs text, Cancel shown, Resume shown, the page's marker]`.
const LOOK: &str = r#"
var t = document.getElementById("step-text"), e = document.getElementById("run-epochs");
return [t ? t.textContent : "", e ? e.textContent : "", !!document.getElementById("cancel-btn"),
        !!document.getElementById("resume-btn"), window.__fairtatStay || 0];
"#;

async fn look(browser: &Browser) -> Option<(String, String, bool, bool, i64)> {
    let v = browser.exec(LOOK).await.ok()?;
    Some((
        v[0].as_str()?.to_string(),
        v[1].as_str()?.to_string(),
        v[2].as_bool()?,
        v[3].as_bool()?,
        v[4].as_i64()?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_progress_then_cancel_turns_into_resume_without_a_reload() {
    let tmp = tempfile::tempdir().unwrap();
    let driver = DriverProcess::start(&tmp.path().join("chromedriver.log"));
    // The shipped presets and the real trainer (the fmnist preset's data is on this machine).
    let mut opts = options(
        tmp.path(),
        Some(PathBuf::from(env!("CARGO_BIN_EXE_fairtat"))),
        1,
    );
    opts.configs_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs");
    opts.poll_ms = 100;
    let st = start(opts).await;
    let (base, server) = serve_loopback(st.clone()).await;
    let browser = Browser::open(&driver, &tmp.path().join("profile")).await;
    let id = create_run(&st).await;
    let _guard = RunGuard {
        state: st.clone(),
        id: Some(id.clone()),
    };

    // The page is open before the trainer's first batch; the marker tells reloads apart.
    browser.goto(&format!("{base}/runs/{id}")).await;
    browser
        .exec("window.__fairtatStay = 1; return 1;")
        .await
        .unwrap();

    // Step progress inside epoch 0, before any epoch has ended.
    let (step, epochs) = poll(120, "step progress in the first epoch", || async {
        let (step, epochs, _, _, stay) = look(&browser).await?;
        assert_eq!(stay, 1, "the run page reloaded itself");
        step.starts_with("epoch 0 · batch ")
            .then_some((step, epochs))
    })
    .await;
    assert!(epochs.starts_with("0 of 30"), "{epochs} / {step}");
    assert!(
        step.contains(" of ") && step.contains("img/s") && step.contains("step loss"),
        "{step}"
    );

    // A finished epoch leaves the state a resume needs; the page offers Cancel meanwhile.
    poll(240, "the first epoch to end", || async {
        let (_, epochs, cancel, _, _) = look(&browser).await?;
        (!epochs.starts_with("0 of") && cancel).then_some(())
    })
    .await;
    // The validation curves appear with the first epoch that has them, without a reload.
    poll(30, "the validation chart", || async {
        let v = browser
            .exec(
                r#"var o = document.querySelector('object.chart[data-chart="validation"]');
                   return o ? o.getAttribute("data") || "" : "";"#,
            )
            .await
            .ok()?;
        v.as_str()?
            .contains("/charts/validation.svg?v=")
            .then_some(())
    })
    .await;

    // Cancelled from elsewhere (the API) while the page is open.
    let (code, body) = post_json(&st, &format!("/api/runs/{id}/cancel"), "").await;
    assert_eq!(code, axum::http::StatusCode::ACCEPTED, "{body}");
    poll(
        60,
        "Resume instead of Cancel after the run ended",
        || async {
            let (_, _, cancel, resume, stay) = look(&browser).await?;
            assert_eq!(stay, 1, "the run page reloaded itself");
            (!cancel && resume).then_some(())
        },
    )
    .await;
    let status = browser
        .exec(
            r#"var s = document.getElementById("run-status"), p = document.getElementById("run-step");
               return [s ? s.textContent : "", p ? p.offsetParent === null : false];"#,
        )
        .await
        .unwrap();
    assert_eq!(status[0], "cancelled");
    assert_eq!(status[1], true, "the step panel hides once the run ended");

    browser.quit().await;
    st.shutdown();
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("server shuts down")
        .unwrap();
    drop(driver);
}
