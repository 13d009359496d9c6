//! Several runs per GPU: with a GPU of known memory (a fake `nvidia-smi` on PATH) the executor
//! starts as many jobs on it as their memory estimates fit, shows them on the runs list and
//! the jobs API, and explains why a job too large for the memory left waits.
//!
//! One test in its own binary: it changes PATH for the whole process.

mod common;

use std::os::unix::fs::PermissionsExt;

use axum::http::StatusCode;
use common::*;

/// A `nvidia-smi` that reports one GPU with `mib` MiB.
fn fake_nvidia_smi(dir: &std::path::Path, mib: u64) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let p = bin.join("nvidia-smi");
    std::fs::write(&p, format!("#!/bin/sh\necho {mib}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::set_var("PATH", format!("{}:{path}", bin.display()));
}

async fn create(st: &fairtat::server::AppState, set: &str) -> String {
    let body = format!(r#"{{"preset":"quick","set":{{"device":"auto",{set}}}}}"#);
    let (s, b) = post_json(st, "/api/runs", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    json(&b)["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_runs_share_a_gpu_and_a_large_one_waits_for_memory() {
    let tmp = tempfile::tempdir().unwrap();
    fake_nvidia_smi(tmp.path(), 16_384);
    let trainer = fake_trainer(tmp.path(), 40, 0.25);
    let st = start(options(tmp.path(), Some(trainer), 1)).await;
    // SmallCNN on Fashion-MNIST: under 1 GiB each, so three run at once on the 16 GiB GPU.
    let mut small = Vec::new();
    for _ in 0..3 {
        small.push(create(&st, r#""train.epochs":40"#).await);
    }
    let running = wait_for(20.0, "three jobs running on cuda:0", || async {
        let (_, b) = get(&st, "/api/jobs").await;
        let jobs = json(&b);
        let on_gpu = jobs
            .as_array()?
            .iter()
            .filter(|j| j["state"] == "running" && j["device"] == "cuda:0")
            .count();
        (on_gpu == 3).then_some(jobs)
    })
    .await;
    for j in running.as_array().unwrap() {
        let mib = j["gpu_mib"].as_u64().unwrap();
        assert!(
            (500..1_500).contains(&mib),
            "estimate of a SmallCNN job: {j}"
        );
    }
    let (_, page) = get(&st, "/").await;
    assert!(
        page.contains("cuda:0 (3 of at most 8 jobs"),
        "runs list shows the GPU's jobs"
    );
    for id in &small {
        assert!(page.contains(id.as_str()));
    }
    // A batch whose estimate leaves no room beside the others waits, saying for what.
    let big = create(
        &st,
        r#""train.batch_size":60000,"model.arch":"preact-resnet18""#,
    )
    .await;
    let page = wait_for(10.0, "the large run's wait reason", || async {
        let (_, page) = get(&st, &format!("/runs/{big}")).await;
        page.contains("waiting for a free cuda:0 slot with about")
            .then_some(page)
    })
    .await;
    assert!(
        page.contains("GiB free (3 of at most 8 jobs, about"),
        "{page}"
    );
    // Once the small runs are cancelled it has the GPU to itself.
    for id in &small {
        let (s, b) = post_json(&st, &format!("/api/runs/{id}/cancel"), "{}").await;
        assert!(s.is_success(), "{b}");
    }
    wait_for(20.0, "the large run starts alone", || async {
        let (_, b) = get(&st, "/api/jobs").await;
        json(&b)
            .as_array()?
            .iter()
            .any(|j| j["run"] == big.as_str() && j["state"] == "running")
            .then_some(())
    })
    .await;
}
