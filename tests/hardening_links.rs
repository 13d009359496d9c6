//! The hardening suite (issue 20), planted files: a symbolic link, a hard link and a FIFO put
//! in a run directory as `config.toml`, `train.log`, `events.jsonl` or an evaluation's files,
//! and a linked `evals/<x>` folder. Each is refused with a status and a message naming the
//! file; nothing outside the runs folder is read or written, and nothing hangs on a FIFO.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use axum::http::StatusCode;
use common::*;

const SECRET: &str = "root:x:0:0:top secret\n";

/// A finished run `id` with a config, a log and an event log, like `fairtat train` leaves it.
fn finished_run(runs: &Path, id: &str) -> std::path::PathBuf {
    let d = runs.join(id);
    std::fs::create_dir_all(d.join("checkpoints")).unwrap();
    std::fs::create_dir_all(d.join("evals")).unwrap();
    std::fs::write(d.join("config.toml"), "name = \"x\"\ndevice = \"cpu\"\n").unwrap();
    std::fs::write(d.join("train.log"), "epoch 0 done\n").unwrap();
    std::fs::write(
        d.join("events.jsonl"),
        "{\"v\":1,\"seq\":0,\"time\":1.0,\"type\":\"finished\",\"status\":\"finished\",\"epochs_done\":1,\"message\":null}\n",
    )
    .unwrap();
    std::fs::write(d.join("checkpoints/last.safetensors"), b"weights").unwrap();
    d
}

fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

/// A GET that must answer within 10 s (a FIFO opened for reading blocks until a writer comes).
async fn get_promptly(st: &fairtat::server::AppState, uri: &str) -> (StatusCode, String) {
    tokio::time::timeout(Duration::from_secs(10), get(st, uri))
        .await
        .unwrap_or_else(|_| panic!("{uri} hung"))
}

/// The file names in the run's archive, asserting that none holds the secret.
async fn archive_names(st: &fairtat::server::AppState, id: &str) -> Vec<String> {
    use std::io::Read;
    let req = axum::http::Request::get(format!("/runs/{id}/archive.tar.gz"))
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(fairtat::server::router(st.clone()), req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut names = Vec::new();
    for entry in tar.entries().unwrap() {
        let mut e = entry.unwrap();
        let mut text = Vec::new();
        e.read_to_end(&mut text).unwrap();
        assert!(!String::from_utf8_lossy(&text).contains("top secret"));
        names.push(e.path().unwrap().to_string_lossy().into_owned());
    }
    names
}

/// Planted files in `r1`: `config.toml` a link to a file outside, `train.log` a hard link to
/// it, an evaluation's `error.txt` a link and another's `eval.json` a FIFO.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_links_and_fifos_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let d = finished_run(&runs, "r1");
    let secret = tmp.path().join("passwd");
    std::fs::write(&secret, SECRET).unwrap();
    std::fs::remove_file(d.join("config.toml")).unwrap();
    symlink(&secret, d.join("config.toml")).unwrap();
    std::fs::remove_file(d.join("train.log")).unwrap();
    std::fs::hard_link(&secret, d.join("train.log")).unwrap();
    std::fs::create_dir_all(d.join("evals/standard-last")).unwrap();
    symlink(&secret, d.join("evals/standard-last/error.txt")).unwrap();
    std::fs::create_dir_all(d.join("evals/quick-last")).unwrap();
    mkfifo(&d.join("evals/quick-last/eval.json"));
    let st = start(options(tmp.path(), Some("/bin/false".into()), 1)).await;

    for (file, why) in [
        ("config.toml", "config.toml is a symbolic link"),
        ("train.log", "train.log has 2 hard links"),
        (
            "evals/standard-last/error.txt",
            "evals/standard-last/error.txt is a symbolic link",
        ),
        (
            "evals/quick-last/eval.json",
            "evals/quick-last/eval.json is a FIFO",
        ),
    ] {
        let (code, b) = get_promptly(&st, &format!("/runs/r1/files/{file}")).await;
        assert_error(code, StatusCode::FORBIDDEN, &b, &[why]);
        assert!(!b.contains("top secret"), "{b}");
    }
    // The page and its live parts show why instead of the content.
    let (code, page) = get_promptly(&st, "/runs/r1").await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert!(page.contains("config.toml is a symbolic link"), "{page}");
    let (code, live) = get_promptly(&st, "/runs/r1/live").await;
    assert_eq!(code, StatusCode::OK, "{live}");
    let log = json(&live)["log"].as_str().unwrap().to_string();
    assert!(log.contains("train.log has 2 hard links"), "{log}");
    let (code, evals) = get_promptly(&st, "/api/runs/r1/evals").await;
    assert_eq!(code, StatusCode::OK, "{evals}");
    let v = json(&evals);
    let error_of = |name: &str| {
        let e = v.as_array().unwrap().iter().find(|e| e["name"] == name);
        e.unwrap_or_else(|| panic!("{name} in {v}"))["error"].to_string()
    };
    assert!(
        error_of("standard-last").contains("error.txt is a symbolic link"),
        "{v}"
    );
    assert!(
        error_of("quick-last").contains("eval.json is a FIFO"),
        "{v}"
    );
    // Nothing planted is listed for download or archived.
    for p in [&page, &live, &evals] {
        assert!(!p.contains("top secret"), "{p}");
        assert!(
            !p.contains("files/config.toml"),
            "a link offered for download"
        );
    }
    assert_eq!(
        archive_names(&st, "r1").await,
        ["r1/events.jsonl", "r1/checkpoints/last.safetensors"]
    );
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), SECRET);
    st.shutdown();
}

/// FIFOs as `config.toml`, `train.log` and `events.jsonl`: the server starts, lists the runs
/// and answers their pages at once (the FIFOs have no writer, so an open would block).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifos_hang_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let d = finished_run(&runs, "r2");
    for f in ["config.toml", "train.log"] {
        std::fs::remove_file(d.join(f)).unwrap();
        mkfifo(&d.join(f));
    }
    let d3 = finished_run(&runs, "r3");
    std::fs::remove_file(d3.join("events.jsonl")).unwrap();
    mkfifo(&d3.join("events.jsonl"));
    let st = tokio::time::timeout(
        Duration::from_secs(10),
        start(options(tmp.path(), Some("/bin/false".into()), 1)),
    )
    .await
    .expect("the server starts");
    let (code, b) = get_promptly(&st, "/api/runs").await;
    assert_eq!(code, StatusCode::OK, "{b}");
    let (code, live) = get_promptly(&st, "/runs/r2/live").await;
    assert_eq!(code, StatusCode::OK, "{live}");
    let log = json(&live)["log"].as_str().unwrap().to_string();
    assert!(log.contains("train.log is a FIFO"), "{log}");
    let (code, page) = get_promptly(&st, "/runs/r2").await;
    assert_eq!(code, StatusCode::OK);
    assert!(page.contains("config.toml is a FIFO"), "{page}");
    let (code, b) = get_promptly(&st, "/runs/r2/files/train.log").await;
    assert_error(code, StatusCode::FORBIDDEN, &b, &["train.log is a FIFO"]);
    let (code, b) = get_promptly(&st, "/runs/r3/files/events.jsonl").await;
    assert_error(code, StatusCode::FORBIDDEN, &b, &["events.jsonl is a FIFO"]);
    // Cloning a run whose config is a FIFO says why.
    let (code, b) = get_promptly(&st, "/api/runs/r2").await;
    assert_eq!(code, StatusCode::OK, "{b}");
    still_answers(&st).await;
    st.shutdown();
}

/// A linked `evals/<x>` folder: queueing an evaluation there is refused and writes nothing
/// through it; an evaluation queued before the folder was swapped for a link is cancelled
/// without writing its `cancelled` marker outside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_evaluation_folder_receives_no_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let d = finished_run(&runs, "r1");
    let outside = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("error.txt"), "keep me\n").unwrap();
    symlink(&outside, d.join("evals/standard-last")).unwrap();
    let trainer = fake_trainer(tmp.path(), 50, 0.5);
    let st = start(options(tmp.path(), Some(trainer), 1)).await;
    let (code, b) = post_json(&st, "/api/runs/r1/evaluate", r#"{"suite":"standard"}"#).await;
    assert_error(
        code,
        StatusCode::FORBIDDEN,
        &b,
        &["evals/standard-last is a symbolic link"],
    );
    let outside_names = || {
        let mut v: Vec<String> = std::fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(outside_names(), ["error.txt"], "nothing written outside");
    assert_eq!(
        std::fs::read_to_string(outside.join("error.txt")).unwrap(),
        "keep me\n",
        "nothing removed outside"
    );

    // Queued behind a running trainer (one CPU slot), then swapped for a link, then cancelled.
    let running = create_quick(&st).await;
    wait_status(&st, &running, "running", 10.0).await;
    let (code, b) = post_json(
        &st,
        "/api/runs/r1/evaluate",
        r#"{"suite":"quick","priority":"normal"}"#,
    )
    .await;
    assert!(code.is_success(), "{code}: {b}");
    let queued = d.join("evals/quick-last");
    assert!(queued.join("queued").is_file());
    std::fs::rename(&queued, tmp.path().join("moved")).unwrap();
    symlink(&outside, &queued).unwrap();
    let (code, b) = post_json(&st, "/api/runs/r1/evals/quick-last/cancel", "").await;
    assert!(code.is_success(), "{code}: {b}");
    assert_eq!(outside_names(), ["error.txt"], "no marker written outside");
    post_json(&st, &format!("/api/runs/{running}/cancel"), "").await;
    wait_status(&st, &running, "cancelled", 10.0).await;
    st.shutdown();
}
