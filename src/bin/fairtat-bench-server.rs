//! `make bench` (dashboard part): (a) event-to-client latency over SSE, from the moment a
//! trainer-like writer appends a line to `events.jsonl` to its receipt by N SSE clients; (b) the
//! runs page (`GET /`) with 1,000 indexed runs; (c) training throughput of a real `fairtat train`
//! started by the server with 0 and with 100 SSE clients attached.
//!
//! The server runs in-process on a loopback socket; clients speak plain HTTP/1.1 over tokio
//! sockets (reqwest is only a dev-dependency), so what is measured is the real network path.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use fairtat::fairness::{ClassMetrics, ConfusionMatrix};
use fairtat::runs::writer::EventWriter;
use fairtat::runs::{EpochRecord, EvalRecord, RunDir, RunEvent, RunStatus};
use fairtat::server::http::api::create_run;
use fairtat::server::{router, AppState, ServeOptions};

#[derive(Parser)]
struct Args {
    /// SSE clients for the latency figure.
    #[arg(long, default_value_t = 20)]
    clients: usize,
    /// Events written for the latency figure.
    #[arg(long, default_value_t = 200)]
    events: usize,
    /// Indexed runs for the runs-page figure.
    #[arg(long, default_value_t = 1000)]
    runs: usize,
    /// SSE clients attached during the throughput comparison.
    #[arg(long, default_value_t = 100)]
    train_clients: usize,
    /// Training images per throughput run (class-balanced Fashion-MNIST subset).
    #[arg(long, default_value_t = 2000)]
    train_subset: usize,
    /// Alternating (0 clients, N clients) training pairs.
    #[arg(long, default_value_t = 3)]
    train_pairs: usize,
    /// Follower poll interval for the latency figure (default: what `fairtat serve` uses).
    #[arg(long)]
    poll_ms: Option<u64>,
    /// Skip the throughput comparison (no trainer binary / no Fashion-MNIST).
    #[arg(long)]
    skip_train: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        sse_latency(args.clients, args.events, args.poll_ms).await?;
        runs_page(args.runs).await?;
        if !args.skip_train {
            training_throughput(args.train_clients, args.train_subset, args.train_pairs).await?;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------- a tiny HTTP/1.1 client

/// `GET path` with `Connection: close`; returns the status code and the (de-chunked) body.
async fn http_get(addr: &str, path: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").context("no header end")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no status code")?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_string()
        },
    ))
}

/// Decode a complete chunked body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// An open SSE subscription: calls `on_id(seq)` for every `id:` line until the stream ends.
/// Chunk-size lines of the chunked encoding never start with `id:`, so a line scan suffices.
async fn sse_client(addr: String, path: String, mut on_id: impl FnMut(u64) + Send) -> Result<()> {
    let mut s = TcpStream::connect(&addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line);
            if let Some(id) = line.strip_prefix("id:") {
                if let Ok(seq) = id.trim().parse() {
                    on_id(seq);
                }
            } else if line.starts_with("event: end") || line.starts_with("event:end") {
                return Ok(());
            }
        }
    }
}

async fn serve(opts: ServeOptions) -> Result<(AppState, String)> {
    let state = fairtat::server::supervisor::start(opts).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let (st, shutdown) = (state.clone(), state.shutdown.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router(st))
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
    });
    Ok((state, addr))
}

fn options(root: &Path, trainer: Option<PathBuf>) -> ServeOptions {
    ServeOptions {
        addr: "127.0.0.1:0".parse().expect("loopback address"),
        runs_dir: root.join("runs"),
        configs_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs"),
        trainer,
        // What `fairtat serve` uses.
        ..ServeOptions::default()
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

// ---------------------------------------------------------------- run directories

fn spec_text() -> Result<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/fmnist-quick-fairtat.toml");
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// A new run directory with the preset's config and spec and an open events writer.
fn new_run(runs_dir: &Path, n: usize) -> Result<(RunDir, EventWriter)> {
    let spec = fairtat::config::from_toml_str(&spec_text()?, &[format!("name=\"bench-{n}\"")])?;
    let dir = fairtat::config::create_run_dir(runs_dir, &spec)?;
    let w = EventWriter::open(&dir)?;
    Ok((dir, w))
}

fn started(dir: &RunDir) -> RunEvent {
    RunEvent::Started {
        run_id: dir.id(),
        spec: serde_json::json!({}),
        class_names: (0..10).map(|c| format!("class{c}")).collect(),
        device: "cpu".into(),
        train_size: 5000,
        val_size: 500,
        test_size: 1000,
        start_epoch: 0,
        pid: std::process::id(),
    }
}

/// An epoch line with the evaluations a real FAIR-TAT epoch records (10 classes).
fn epoch(e: usize, epochs: usize) -> RunEvent {
    let eval = |split: &str, attack: &str, hit: u64| {
        let rows: Vec<Vec<u64>> = (0..10)
            .map(|y| {
                (0..10)
                    .map(|p| if p == y { hit + y as u64 } else { 2 })
                    .collect()
            })
            .collect();
        let cm = ConfusionMatrix::from_rows(&rows).expect("square");
        EvalRecord {
            split: split.into(),
            attack: attack.into(),
            model: "live".into(),
            confusion: rows,
            metrics: ClassMetrics::from_confusion(&cm),
        }
    };
    let hit = 40 + 5 * e as u64;
    RunEvent::Epoch(Box::new(EpochRecord {
        epoch: e,
        epochs,
        lr: 0.05,
        train_loss: 1.0 / (e + 1) as f64,
        train_secs: 10.0,
        eval_secs: 2.0,
        images_per_sec: 500.0,
        class_eps: vec![0.1; 10],
        target_probs: Some(vec![0.1; 10]),
        target_counts: Some(vec![50; 10]),
        evals: vec![
            eval("train", "train-attack", hit / 2),
            eval("test", "clean", hit),
            eval("test", "pgd-10", hit / 2),
            eval("val", "clean", hit),
            eval("val", "pgd-10", hit / 2),
        ],
        method_state: Default::default(),
    }))
}

fn finished(epochs: usize) -> RunEvent {
    RunEvent::Finished {
        status: RunStatus::Finished,
        epochs_done: epochs,
        message: None,
    }
}

fn scratch(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("fairtat-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

// ---------------------------------------------------------------- (a) SSE latency

/// A run "trained" by this process (it holds the run's lock, so the server follows it), N SSE
/// clients, and progress lines appended at an interval that is no divisor of the poll interval,
/// so write times fall uniformly over the poll phase.
async fn sse_latency(clients: usize, events: usize, poll_ms: Option<u64>) -> Result<()> {
    let root = scratch("sse")?;
    let (dir, mut w) = new_run(&root.join("runs"), 0)?;
    w.append(&started(&dir))?;
    let _lock = fairtat::runs::lock::RunLock::acquire(&dir, "train")?;
    let mut opts = options(&root, None);
    opts.poll_ms = poll_ms.unwrap_or(opts.poll_ms);
    let poll_ms = opts.poll_ms;
    let (st, addr) = serve(opts).await?;
    let path = format!("/api/runs/{}/events", dir.id());

    type Seen = Arc<Mutex<Vec<(u64, Instant)>>>;
    let seen: Vec<Seen> = (0..clients).map(|_| Seen::default()).collect();
    let mut tasks = Vec::new();
    for s in &seen {
        let s = s.clone();
        tasks.push(tokio::spawn(sse_client(
            addr.clone(),
            path.clone(),
            move |seq| s.lock().unwrap().push((seq, Instant::now())),
        )));
    }
    // Every client has replayed the `started` line: all are in their live phase.
    let t0 = Instant::now();
    while seen.iter().any(|s| s.lock().unwrap().is_empty()) {
        if t0.elapsed() > Duration::from_secs(20) {
            bail!("SSE clients did not connect within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut written = std::collections::HashMap::new();
    for i in 0..events {
        tokio::time::sleep(Duration::from_millis(37)).await;
        let seq = w.append(&RunEvent::Progress {
            epoch: 0,
            batch: i,
            batches: events,
            loss: 1.0,
            images_per_sec: 100.0,
            eta_secs: 1.0,
        })?;
        written.insert(seq, Instant::now());
    }
    w.append(&finished(0))?;
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(20), t)
            .await
            .context("an SSE stream did not end after the run finished")???;
    }
    let mut lat: Vec<f64> = Vec::new();
    for s in &seen {
        for (seq, at) in s.lock().unwrap().iter() {
            if let Some(w) = written.get(seq) {
                lat.push(at.saturating_duration_since(*w).as_secs_f64() * 1e3);
            }
        }
    }
    let expected = clients * events;
    lat.sort_by(f64::total_cmp);
    println!(
        "sse latency: {clients} clients x {events} events (follower poll {poll_ms} ms): \
         p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms, {}/{expected} received (target p99 < 250 ms)",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
        lat.len(),
    );
    st.shutdown();
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

// ---------------------------------------------------------------- (b) runs page

async fn runs_page(runs: usize) -> Result<()> {
    let root = scratch("page")?;
    let runs_dir = root.join("runs");
    let t = Instant::now();
    let dirs = runs_dir.clone();
    tokio::task::spawn_blocking(move || -> Result<()> {
        for n in 0..runs {
            let (dir, mut w) = new_run(&dirs, n)?;
            w.append(&started(&dir))?;
            for e in 0..3 {
                w.append(&epoch(e, 3))?;
            }
            w.append(&finished(3))?;
        }
        Ok(())
    })
    .await??;
    let created = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (st, addr) = serve(options(&root, None)).await?;
    let indexed = t.elapsed().as_secs_f64();

    let (status, body) = http_get(&addr, "/").await?;
    if status != 200 {
        bail!("GET / answered {status}");
    }
    let rows = body.matches("<tr data-run=").count();
    let mut ms = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let (status, _) = http_get(&addr, "/").await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        if status != 200 {
            bail!("GET / answered {status}");
        }
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "runs page: GET / with {runs} indexed runs ({rows} rows, {} KiB): median {:.1} ms, \
         p95 {:.1} ms over 30 requests (index rebuild at start {:.2} s, creating the runs {:.1} s; \
         target < 200 ms)",
        body.len() / 1024,
        percentile(&ms, 0.5),
        percentile(&ms, 0.95),
        indexed,
        created,
    );
    st.shutdown();
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

// ---------------------------------------------------------------- (c) training throughput

/// The `fairtat` binary built next to this one (same profile, same target dir).
fn trainer_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .context("no parent directory of this executable")?
        .join(format!("fairtat{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        bail!(
            "{} is missing: build it first (cargo build --release --bins)",
            bin.display()
        );
    }
    Ok(bin)
}

/// CPU seconds this process (server and clients) has used so far, from /proc (0 elsewhere).
fn own_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the `)`.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// One short real training started by the server with `clients` SSE subscribers; returns the
/// training images/s of its epochs.
async fn one_training(
    st: &AppState,
    addr: &str,
    clients: usize,
    subset: usize,
) -> Result<Vec<f64>> {
    let sets: Vec<String> = [
        "device=\"cpu\"".to_string(),
        format!("data.train_subset={subset}"),
        "data.test_subset=200".into(),
        "data.val_per_class=10".into(),
        "attack.steps=5".into(),
        "eval.steps=2".into(),
        "eval.final_steps=2".into(),
        "train.epochs=2".into(),
    ]
    .to_vec();
    let spec = fairtat::config::from_toml_str(&spec_text()?, &sets)?;
    let summary = create_run(st, spec)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let id = summary.id;
    let path = format!("/api/runs/{id}/events");
    let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let r = received.clone();
            tokio::spawn(sse_client(addr.to_string(), path.clone(), move |_| {
                r.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }))
        })
        .collect();
    let (t0, cpu0) = (Instant::now(), own_cpu_secs());
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let s = st.index.get(&id)?.context("run vanished from the index")?;
        if s.status.is_terminal() && !st.is_active(&id) {
            if s.status != RunStatus::Finished {
                bail!(
                    "training run {id} ended {}: {:?}",
                    s.status.as_str(),
                    s.message
                );
            }
            break;
        }
        if t0.elapsed() > Duration::from_secs(240) {
            if let Ok(run) = id.parse() {
                fairtat::server::supervisor::cancel_run(st, &run).ok();
            }
            bail!("training run {id} did not finish within 240 s");
        }
    }
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), own_cpu_secs() - cpu0);
    let events = fairtat::server::scan::read_all_events(&st.run_dir(&id));
    let ips: Vec<f64> = events
        .iter()
        .filter_map(|l| match &l.event {
            RunEvent::Epoch(r) => Some(r.images_per_sec),
            _ => None,
        })
        .collect();
    if ips.is_empty() {
        bail!("run {id} recorded no epoch");
    }
    let mean = ips.iter().sum::<f64>() / ips.len() as f64;
    let got = received.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "  training with {clients:>3} SSE clients: {mean:.1} images/s (epochs: {}), \
         {got} events delivered, {wall:.0} s; server + clients used {cpu:.2} CPU-s \
         ({:.1}% of one core)",
        ips.iter()
            .map(|v| format!("{v:.1}"))
            .collect::<Vec<_>>()
            .join(", "),
        100.0 * cpu / wall,
    );
    Ok(ips)
}

/// Alternate 0 and `clients` subscribers so drift (other load, warm caches) hits both.
async fn training_throughput(clients: usize, subset: usize, pairs: usize) -> Result<()> {
    let root = scratch("train")?;
    let (st, addr) = serve(options(&root, Some(trainer_binary()?))).await?;
    let (mut none, mut many) = (Vec::new(), Vec::new());
    for _ in 0..pairs.max(1) {
        none.extend(one_training(&st, &addr, 0, subset).await?);
        many.extend(one_training(&st, &addr, clients, subset).await?);
    }
    // The best epoch is the one least disturbed by other load on the machine; the median is
    // printed next to it to show how noisy the machine was.
    let best = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        percentile(v, 0.5)
    };
    let (a, b) = (best(&none), best(&many));
    let (ma, mb) = (median(&mut none), median(&mut many));
    println!(
        "training throughput: best epoch {a:.1} images/s with 0 SSE clients, {b:.1} with \
         {clients}: {:+.1}% (median epoch {ma:.1} vs {mb:.1}: {:+.1}%; {subset}-image \
         Fashion-MNIST subset, PGD-5, {pairs} runs x 2 epochs each; target > -2%)",
        100.0 * (b - a) / a,
        100.0 * (mb - ma) / ma,
    );
    st.shutdown();
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
