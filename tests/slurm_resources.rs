//! Per-run Slurm resources and the checks before a submission, against the real one-node
//! cluster of `common::slurm` (issue 21): a run's `[slurm]` time and CPUs reach the job that
//! Slurm holds, a time over the partition's MaxTime and CPUs over the server's limit are
//! refused before any run is created, an evaluation's own time reaches its job, and a
//! controller that does not answer gets 503 within seconds. The tests share SLURM_CONF, so
//! they run one at a time.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::slurm::cluster_or_skip;
use common::*;
use fairtat::config::gpu_memory::{self, Work};
use fairtat::server::slurm::SlurmOptions;
use fairtat::server::{AppState, ServeOptions};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn slurm_options(root: &Path, s: SlurmOptions) -> ServeOptions {
    ServeOptions {
        slurm: Some(SlurmOptions {
            poll_secs: 0.5,
            ..s
        }),
        ..options(root, Some(fake_trainer(root, 1, 0.1)), 1)
    }
}

/// POST a `quick` run with these `set` values.
async fn post(st: &AppState, set: serde_json::Value) -> (StatusCode, serde_json::Value) {
    let body = serde_json::json!({ "preset": "quick", "set": set }).to_string();
    let (code, b) = post_json(st, "/api/runs", &body).await;
    (code, json(&b))
}

async fn run_count(st: &AppState) -> usize {
    let (_, list) = get(st, "/api/runs").await;
    json(&list).as_array().map_or(0, Vec::len)
}

fn scontrol_job(id: &str) -> String {
    let out = std::process::Command::new("scontrol")
        .args(["show", "job", id])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_run_time_and_cpus_reach_the_slurm_job() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(_cluster) = cluster_or_skip("per_run_time_and_cpus_reach_the_slurm_job") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let st = start(slurm_options(tmp.path(), SlurmOptions::new())).await;
    let cpus = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(2);
    // "7" arrives as the number 7 through `set`: still Slurm's minutes.
    let set = serde_json::json!({"train.epochs": 1, "slurm.time": "7", "slurm.cpus": cpus});
    let (code, b) = post(&st, set).await;
    assert_eq!(code, StatusCode::CREATED, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    let dir = tmp.path().join("runs").join(&id);
    let job = wait_for(20.0, "the run's Slurm job id", || async {
        let f = std::fs::read_to_string(dir.join("slurm/train.job")).unwrap_or_default();
        f.lines()
            .find_map(|l| l.strip_prefix("id="))
            .map(str::to_string)
    })
    .await;
    let show = scontrol_job(&job);
    assert!(show.contains("TimeLimit=00:07:00"), "{show}");
    assert!(show.contains(&format!("CPUs/Task={cpus}")), "{show}");
    let script = std::fs::read_to_string(dir.join("slurm/train.sh")).unwrap();
    assert!(script.contains("#SBATCH --time=\"7\"\n"), "{script}");
    let want = format!("#SBATCH --cpus-per-task=\"{cpus}\"\n");
    assert!(script.contains(&want), "{script}");
    wait_status(&st, &id, "finished", 60.0).await;
    // An evaluation asks its own time (its CPUs stay the run's); a wrong key or a time over the
    // partition's limit is refused before anything is queued.
    let url = format!("/api/runs/{id}/evaluate");
    let (code, b) = post_json(&st, &url, r#"{"suite":"quick","slurm":{"nodes":2}}"#).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b.contains("nodes") && b.contains("time, partition"), "{b}");
    let over = r#"{"suite":"quick","slurm":{"time":20,"partition":"short"}}"#;
    let (code, b) = post_json(&st, &url, over).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{b}");
    assert!(b.contains("slurm.time"), "{b}");
    assert!(!dir.join("evals/quick-last").exists(), "nothing queued");
    let (code, b) = post_json(&st, &url, r#"{"suite":"quick","slurm":{"time":3}}"#).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{b}");
    let job = wait_for(20.0, "the evaluation's Slurm job id", || async {
        let f = std::fs::read_to_string(dir.join("slurm/eval-quick-last.job")).ok()?;
        f.lines()
            .find_map(|l| l.strip_prefix("id="))
            .map(str::to_string)
    })
    .await;
    let show = scontrol_job(&job);
    assert!(show.contains("TimeLimit=00:03:00"), "{show}");
    assert!(show.contains(&format!("CPUs/Task={cpus}")), "{show}");
    st.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_over_the_partition_limit_is_refused_at_submit() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(_cluster) = cluster_or_skip("a_time_over_the_partition_limit_is_refused_at_submit")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let opts = SlurmOptions {
        max_cpus: 1,
        ..SlurmOptions::new()
    };
    let st = start(slurm_options(tmp.path(), opts)).await;
    // Partition `short` allows 10 minutes: Slurm itself would queue the job to pend for ever.
    let (code, b) = post(
        &st,
        serde_json::json!({"slurm.partition": "short", "slurm.time": "20"}),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["field"], "slurm.time", "{b}");
    let msg = b["error"].as_str().unwrap();
    assert!(
        msg.contains("20 is over partition short's MaxTime of 0:10:00"),
        "{msg}"
    );
    // Over the server's own limit.
    let (code, b) = post(&st, serde_json::json!({"slurm.cpus": 2})).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["field"], "slurm.cpus", "{b}");
    assert!(
        b["error"].as_str().unwrap().contains("limit of 1 CPUs"),
        "{b}"
    );
    assert_eq!(run_count(&st).await, 0, "a refused run is not created");
    // Within the limit, the same partition takes it.
    let set =
        serde_json::json!({"train.epochs": 1, "slurm.partition": "short", "slurm.time": "10"});
    let (code, b) = post(&st, set).await;
    assert_eq!(code, StatusCode::CREATED, "{b}");
    wait_status(&st, b["id"].as_str().unwrap(), "finished", 60.0).await;
    st.shutdown();
}

/// Puts SLURM_CONF back when dropped, also when the test fails.
struct ConfBack(std::ffi::OsString);

impl Drop for ConfBack {
    fn drop(&mut self) {
        std::env::set_var("SLURM_CONF", &self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_controller_answers_503_within_seconds() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(cluster) = cluster_or_skip("an_unreachable_controller_answers_503_within_seconds")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let st = start(slurm_options(tmp.path(), SlurmOptions::new())).await;
    // The same cluster's config with the controller's port pointing where nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = std::fs::read_to_string(&cluster.conf).unwrap();
    let dead: String = text
        .lines()
        .map(|l| match l.starts_with("SlurmctldPort=") {
            true => format!("SlurmctldPort={port}\n"),
            false => format!("{l}\n"),
        })
        .collect();
    let dead_conf = tmp.path().join("dead.conf");
    std::fs::write(&dead_conf, dead).unwrap();
    let _back = ConfBack(cluster.conf.clone().into_os_string());
    std::env::set_var("SLURM_CONF", &dead_conf);
    let t = Instant::now();
    let (code, b) = post(&st, serde_json::json!({"train.epochs": 1})).await;
    let took = t.elapsed();
    eprintln!("an unreachable controller answered {code} in {took:?}");
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    let msg = b["error"].as_str().unwrap();
    assert!(msg.contains("cannot submit to Slurm now"), "{msg}");
    assert!(took < Duration::from_secs(8), "answered after {took:?}");
    assert_eq!(run_count(&st).await, 0);
    st.shutdown();
}

/// `fairtat serve --executor slurm` with a partition the cluster does not have refuses to start,
/// naming the flag and the partitions there are, instead of failing every run at submit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_to_start_on_an_unknown_partition() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(_cluster) = cluster_or_skip("the_server_refuses_to_start_on_an_unknown_partition")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_fairtat"))
        .args([
            "serve",
            "--executor",
            "slurm",
            "--slurm-partition",
            "no-such-partition",
        ])
        .args(["--addr", "127.0.0.1:0", "--runs"])
        .arg(tmp.path().join("runs"))
        .env_remove("FAIRTAT_TOKEN")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("the server exits instead of serving")
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("--slurm-partition")
            && err.contains("\"no-such-partition\" is not a partition of this cluster; allowed:")
            && err.contains("short"),
        "{err}"
    );
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
}

/// `--slurm-gres shard --slurm-shard-mib M`: each GPU job asks the shards its memory estimate
/// needs, Slurm runs only as many at once as the GPU's shards hold, and a run that needs more
/// shards than a GPU has is refused before it is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_runs_ask_shards_by_their_estimate_and_share_the_gpu() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(cluster) = cluster_or_skip("gpu_runs_ask_shards_by_their_estimate_and_share_the_gpu")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = slurm_options(tmp.path(), SlurmOptions::new());
    opts.trainer = Some(fake_trainer(tmp.path(), 3, 1.5));
    // The quick preset on a GPU, as the server estimates it: a shard is a third of that, so
    // each run asks 3 of the 8 shards and two of them fit on the GPU at once.
    let preset = std::fs::read_to_string(opts.configs_dir.join("quick.toml")).unwrap();
    let sets = ["device=\"auto\"".to_string(), "train.epochs=3".into()];
    let spec = fairtat::config::from_toml_str(&preset, &sets).unwrap();
    let need = gpu_memory::estimate_mib(&spec, Work::Train);
    let shard_mib = need.div_ceil(3);
    assert_eq!(need.div_ceil(shard_mib), 3, "estimate {need} MiB");
    let slurm = opts.slurm.as_mut().unwrap();
    (slurm.gres, slurm.shard_mib) = ("shard".into(), shard_mib);
    let st = start(opts).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (code, b) = post(
            &st,
            serde_json::json!({"device": "auto", "train.epochs": 3}),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED, "{b}");
        ids.push(b["id"].as_str().unwrap().to_string());
    }
    // Two run, the third waits for shards (Slurm's reason: Resources).
    let states = wait_for(30.0, "two running jobs and one pending", || async {
        let jobs = cluster.jobs();
        let n = |s: &str| jobs.iter().filter(|(_, st)| st == s).count();
        (n("RUNNING") == 2 && n("PENDING") == 1).then_some(jobs)
    })
    .await;
    assert_eq!(states.len(), 3, "{states:?}");
    for (job, _) in &states {
        let show = scontrol_job(job);
        assert!(show.contains("gres:shard:3"), "{show}");
    }
    for id in &ids {
        wait_status(&st, id, "finished", 90.0).await;
    }
    // Evaluation batches of 65,536 images need far more than 8 shards: Slurm's own check
    // refuses the run before it exists.
    let before = run_count(&st).await;
    let big = serde_json::json!({"device": "auto", "eval.batch_size": 65536});
    let (code, b) = post(&st, big).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(run_count(&st).await, before);
    st.shutdown();
}
