//! Shared helpers for the server tests: a fake trainer (a shell script that appends events the
//! way `fairtat train` does), a configs dir with a preset, request helpers and polling waits.
//!
//! `webdriver` holds the headless-Chromium harness shared by the browser tests.
#![allow(dead_code)]

pub mod slurm;
pub mod webdriver;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use fairtat::server::{router, AppState, ServeOptions};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Write an executable fake trainer into `dir`: `train --run-dir D` / `train --resume D`.
/// It takes the run's lock (`flock` on `runs/<id>/lock`, naming its pid, as `fairtat train`
/// does), removes the `queued` marker, then writes one `started` line, one `epoch`
/// line every `delay_s` seconds up to `epochs`, and a `finished` line (cancelled on SIGTERM).
/// On resume it continues after the last epoch line, with seq continuing the file.
pub fn fake_trainer(dir: &Path, epochs: usize, delay_s: f64) -> PathBuf {
    let eval = |attack: &str, acc1: f64| {
        format!(
            r#"{{\"split\":\"test\",\"attack\":\"{attack}\",\"model\":\"live\",\"confusion\":[[2,0],[1,1]],\"overall\":0.75,\"worst\":{acc1},\"worst10\":{acc1},\"class_acc\":[1.0,{acc1}],\"cfps\":[0.0,1.0],\"cacc\":[0.75,0.75],\"support\":[2,2]}}"#
        )
    };
    let metrics = |attack: &str, acc1: f64| {
        format!(
            r#"{{\"split\":\"test\",\"attack\":\"{attack}\",\"model\":\"live\",\"confusion\":[[2,0],[1,1]],\"overall\":0.5,\"worst\":{acc1},\"worst10\":{acc1},\"class_acc\":[1.0,{acc1}],\"cfps\":[0.0,1.0],\"cacc\":[0.75,0.75],\"support\":[2,2]}}"#
        )
    };
    let stage = |name: &str, broken: u64| {
        format!(
            r#"{{\"stage\":\"{name}\",\"broken\":{broken},\"seconds\":0.5,\"overall\":0.5,\"worst\":0.0,\"worst10\":0.0,\"class_acc\":[1.0,0.0],\"cfps\":[0.0,1.0],\"cacc\":[0.5,0.5],\"support\":[2,2]}}"#
        )
    };
    // `eval --run-dir D --suite S --model M ...`: progress, then a small report (the format of
    // runs::eval_report), like `fairtat eval` does.
    let report = format!(
        r#"{{\"checkpoint\":\"x\",\"arch\":\"smallcnn\",\"dataset\":\"fashion-mnist\",\"epoch\":0,\"model\":\"live\",\"suite\":\"$suite\",\"eps\":0.1,\"seed\":0,\"images\":4,\"class_names\":[\"cat\",\"dog\"],\"evals\":[{c},{aa},{sq}],\"autoattack\":[{s0},{s1}],\"corruptions\":[],\"corruption_summary\":[{{\"corruption\":\"fog\",\"overall\":0.5,\"worst\":0.25,\"worst10\":0.25,\"mean_worst_over_severities\":0.3}}],\"seconds\":1.0}}"#,
        c = metrics("clean", 0.5),
        aa = metrics("autoattack", 0.125),
        sq = metrics("square-5000", 0.375),
        s0 = stage("clean", 1),
        s1 = stage("apgd-ce", 1),
    );
    let script = format!(
        r#"#!/bin/sh
if [ "$1" = "eval" ]; then
  dir="$3"; suite="$5"; model="$7"; out="$dir/evals/$suite-$model"
  exec 9>>"$dir/lock"; flock -n 9 || {{ echo "run is locked" >&2; exit 3; }}
  printf '%s\neval %s\n' $$ "$suite-$model" > "$dir/lock"
  mkdir -p "$out"; rm -f "$out/queued"
  echo '{{"stage":"apgd-ce","done":1,"total":4,"updated_at":0}}' > "$out/progress.json"
  sleep {delay_s} 9>&-
  if [ "$suite" = "corruptions" ]; then echo "no corruption files" > "$out/error.txt"; rm -f "$out/progress.json"; exit 1; fi
  echo "{report}" > "$out/eval.json"
  printf 'attack,overall,worst\nautoattack,0.125,0.0\n' > "$out/summary.csv"
  rm -f "$out/progress.json"
  exit 0
fi
stop=0
trap 'stop=1' TERM
trap 'stop=2' USR1
mode="$2"; dir="$3"; ev="$dir/events.jsonl"
mkdir -p "$dir/checkpoints"; : > "$dir/checkpoints/last.safetensors"; echo '{{}}' > "$dir/checkpoints/state.json"
exec 9>>"$dir/lock"; flock -n 9 || {{ echo "run is locked" >&2; exit 3; }}
printf '%s\ntrain\n' $$ > "$dir/lock"
rm -f "$dir/queued"
seq=0; start=0
if [ -f "$ev" ]; then seq=$(wc -l < "$ev" | tr -d ' '); fi
if [ "$mode" = "--resume" ]; then start=$(grep -c '"type":"epoch"' "$ev"); fi
emit() {{ echo "{{\"v\":1,\"seq\":$seq,\"time\":$(date +%s),$1}}" >> "$ev"; seq=$((seq+1)); }}
emit "\"type\":\"started\",\"run_id\":\"fake\",\"spec\":{{}},\"class_names\":[\"cat\",\"dog\"],\"device\":\"cpu\",\"train_size\":8,\"val_size\":2,\"test_size\":4,\"start_epoch\":$start,\"pid\":$$"
e=$start
while [ $e -lt {epochs} ]; do
  sleep {delay_s} 9>&- & wait $!
  if [ $stop = 1 ]; then
    emit "\"type\":\"finished\",\"status\":\"cancelled\",\"epochs_done\":$e,\"message\":null"
    exit 0
  fi
  if [ $stop = 2 ]; then
    emit "\"type\":\"finished\",\"status\":\"interrupted\",\"epochs_done\":$e,\"message\":\"stopped for the scheduler (SIGUSR1)\""
    exit 75
  fi
  emit "\"type\":\"checkpoint\",\"epoch\":$e,\"kind\":\"last\",\"file\":\"checkpoints/last.safetensors\""
  emit "\"type\":\"epoch\",\"epoch\":$e,\"epochs\":{epochs},\"lr\":0.1,\"train_loss\":1.5,\"train_secs\":0.1,\"eval_secs\":0.1,\"images_per_sec\":80.0,\"class_eps\":[0.03,0.04],\"target_probs\":[0.4,0.6],\"target_counts\":[3,5],\"evals\":[{clean},{robust}],\"method_state\":{{\"class_beta\":[0.5,0.75]}}"
  e=$((e+1))
done
emit "\"type\":\"finished\",\"status\":\"finished\",\"epochs_done\":$e,\"message\":null"
"#,
        clean = eval("clean", 0.5),
        robust = eval("pgd-10", 0.25),
    );
    let path = dir.join("fake-trainer.sh");
    std::fs::write(&path, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

/// A configs dir with a `quick` preset on the CPU.
pub fn configs_dir(dir: &Path) -> PathBuf {
    let c = dir.join("configs");
    std::fs::create_dir_all(&c).unwrap();
    std::fs::write(
        c.join("quick.toml"),
        "name = \"quick\"\ndevice = \"cpu\"\n[train]\nepochs = 3\n[method]\nname = \"fair-tat\"\n",
    )
    .unwrap();
    c
}

pub fn options(root: &Path, trainer: Option<PathBuf>, max_cpu_runs: usize) -> ServeOptions {
    ServeOptions {
        addr: "127.0.0.1:0".parse().unwrap(),
        runs_dir: root.join("runs"),
        configs_dir: configs_dir(root),
        token: None,
        public_hosts: Vec::new(),
        max_queued: fairtat::server::DEFAULT_MAX_QUEUED,
        max_cpu_runs,
        runs_per_gpu: None,
        trainer,
        poll_ms: 50,
        slurm: None,
        limits: Default::default(),
    }
}

pub async fn start(opts: ServeOptions) -> AppState {
    fairtat::server::supervisor::start(opts)
        .await
        .expect("server state starts")
}

/// Send one request through the router; returns status, headers and body text.
pub async fn send(
    state: &AppState,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = router(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

pub async fn get(state: &AppState, uri: &str) -> (StatusCode, String) {
    let (s, _, b) = send(state, Request::get(uri).body(Body::empty()).unwrap()).await;
    (s, b)
}

pub async fn post_json(state: &AppState, uri: &str, json: &str) -> (StatusCode, String) {
    let req = Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(json.to_string()))
        .unwrap();
    let (s, _, b) = send(state, req).await;
    (s, b)
}

pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Create a run from the `quick` preset; returns its id.
pub async fn create_quick(state: &AppState) -> String {
    let (s, b) = post_json(
        state,
        "/api/runs",
        r#"{"preset":"quick","set":{"train.epochs":3}}"#,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    json(&b)["id"].as_str().unwrap().to_string()
}

/// The run's summary from the API.
pub async fn summary(state: &AppState, id: &str) -> serde_json::Value {
    let (s, b) = get(state, &format!("/api/runs/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    json(&b)["summary"].clone()
}

/// Poll `f` every 50 ms until it returns Some, or panic after `secs` with `what`.
pub async fn wait_for<T, F, Fut>(secs: f64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until the run's status is `status`; returns the summary.
pub async fn wait_status(state: &AppState, id: &str, status: &str, secs: f64) -> serde_json::Value {
    wait_for(secs, &format!("run {id} to be {status}"), || async {
        let s = summary(state, id).await;
        (s["status"] == status).then_some(s)
    })
    .await
}

/// Number of `epoch` lines in the run's events file.
pub fn epoch_lines(runs_dir: &Path, id: &str) -> usize {
    std::fs::read_to_string(runs_dir.join(id).join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"type\":\"epoch\""))
        .count()
}

pub fn kill(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// Serve the router on a real loopback socket (for clients outside the router: a browser,
/// reqwest); returns the base URL and the server task, which ends when `state.shutdown()` fires.
pub async fn serve_loopback(state: AppState) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = state.shutdown_token().clone();
    let limits = state.guard().limits.clone();
    let handle = tokio::spawn(async move {
        fairtat::server::listen::serve(listener, router(state), limits, shutdown).await;
    });
    (format!("http://{addr}"), handle)
}

/// The pid named in a run's lock file (the process that owns or last owned the run).
pub fn lock_pid(run_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(run_dir.join("lock"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// POST `body` to `uri` with extra headers.
pub async fn post_with(
    st: &AppState,
    uri: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut req = Request::post(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(st, req.body(Body::from(body.to_string())).unwrap()).await
}

/// The status is `want` and the JSON error mentions every one of `words`.
pub fn assert_error(code: StatusCode, want: StatusCode, body: &str, words: &[&str]) {
    assert_eq!(code, want, "{body}");
    let v = json(body);
    let msg = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error: {body}"));
    for w in words {
        assert!(msg.contains(w), "{w:?} not in {msg:?}");
    }
    assert!(v.get("field").is_some(), "no field: {body}");
}

pub async fn still_answers(st: &AppState) {
    let (code, _) = get(st, "/api/runs").await;
    assert_eq!(code, StatusCode::OK);
}
