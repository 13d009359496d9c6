//! `make bench` (dashboard part): (a) event-to-client latency over SSE, from the moment a
//! trainer-like writer appends a line to `events.jsonl` to its receipt by N SSE clients; (b) the
//! runs page (`GET /`) with 1,000 indexed runs; (c) training throughput of a real `fairtat train`
//! started by the server with 0 and with 100 SSE clients attached; (d) the dashboard at the
//! paper's scale (ten CIFAR-100-sized runs and 1,000 small ones; see `scale.rs`).
//!
//! The server runs in-process on a loopback socket; clients speak plain HTTP/1.1 over tokio
//! sockets (reqwest is only a dev-dependency), so what is measured is the real network path.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;

use fairtat::runs::{ProgressRecord, RunEvent, RunStatus};
use fairtat::server::http::api::create_run;
use fairtat::server::AppState;

mod client;
mod fixtures;
mod scale;

use client::*;
use fixtures::*;

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
    /// CIFAR-100-sized runs (100 classes, 200 epochs) for the paper-scale figures.
    #[arg(long, default_value_t = 10)]
    big_runs: usize,
    /// Small runs indexed next to them.
    #[arg(long, default_value_t = 1000)]
    small_runs: usize,
    /// SSE clients on the live big run.
    #[arg(long, default_value_t = 8)]
    sse_clients: usize,
    /// Run only the paper-scale figures.
    #[arg(long)]
    only_scale: bool,
    /// Skip the paper-scale figures.
    #[arg(long)]
    skip_scale: bool,
    /// Run only the idle-server figures (its RSS empty and with 1,000 idle event streams).
    #[arg(long)]
    only_idle: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        if args.only_idle {
            return scale::idle_rss().await;
        }
        if !args.only_scale {
            sse_latency(args.clients, args.events, args.poll_ms).await?;
            runs_page(args.runs).await?;
            if !args.skip_train {
                training_throughput(args.train_clients, args.train_subset, args.train_pairs)
                    .await?;
            }
        }
        if !args.skip_scale {
            scale::paper_scale(scale::Scale {
                big: args.big_runs.max(1),
                small: args.small_runs,
                sse: args.sse_clients,
            })
            .await?;
        }
        Ok(())
    })
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
        let seq = w.append(&RunEvent::Progress(ProgressRecord {
            epoch: 0,
            batch: i,
            batches: events,
            loss: 1.0,
            images_per_sec: 100.0,
            eta_secs: 1.0,
            step_loss: None,
            epoch_eta_secs: None,
        }))?;
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
            write_small_run(&dirs, n)?;
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
/// One short real training started by the server with `clients` SSE subscribers; returns the
/// training images/s of its epochs.
async fn one_training(
    st: &AppState,
    addr: &str,
    clients: usize,
    subset: usize,
) -> Result<Vec<f64>> {
    let spec = fairtat::config::from_toml_str(&spec_text()?, &training_sets(subset))?;
    let summary = create_run(st, spec)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let id: fairtat::runs::RunId = summary.id.parse().map_err(anyhow::Error::msg)?;
    let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks = subscribe(addr, &id, clients, &received);
    let (t0, cpu0) = (Instant::now(), own_cpu_secs());
    wait_finished(st, &id).await?;
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), own_cpu_secs() - cpu0);
    let ips = epoch_throughputs(st, &id)?;
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

/// The short training's settings: CPU, a `subset`-image training set, PGD-5, two epochs.
fn training_sets(subset: usize) -> Vec<String> {
    vec![
        "device=\"cpu\"".to_string(),
        format!("data.train_subset={subset}"),
        "data.test_subset=200".into(),
        "data.val_per_class=10".into(),
        "attack.steps=5".into(),
        "eval.steps=2".into(),
        "eval.final_steps=2".into(),
        "train.epochs=2".into(),
    ]
}

/// `clients` SSE subscribers to run `id`'s events, counting what they receive.
fn subscribe(
    addr: &str,
    id: &fairtat::runs::RunId,
    clients: usize,
    received: &Arc<std::sync::atomic::AtomicU64>,
) -> Vec<tokio::task::JoinHandle<Result<()>>> {
    let path = format!("/api/runs/{id}/events");
    (0..clients)
        .map(|_| {
            let r = received.clone();
            tokio::spawn(sse_client(addr.to_string(), path.clone(), move |_| {
                r.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }))
        })
        .collect()
}

/// Wait until run `id` has finished (an error if it ends otherwise, or takes over 240 s).
async fn wait_finished(st: &AppState, id: &fairtat::runs::RunId) -> Result<()> {
    let t0 = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let s = st.index().get(id)?.context("run vanished from the index")?;
        if s.status.is_terminal() && !st.is_active(id) {
            if s.status != RunStatus::Finished {
                bail!(
                    "training run {id} ended {}: {:?}",
                    s.status.as_str(),
                    s.message
                );
            }
            return Ok(());
        }
        if t0.elapsed() > Duration::from_secs(240) {
            fairtat::server::supervisor::cancel_run(st, id).ok();
            bail!("training run {id} did not finish within 240 s");
        }
    }
}

/// The training images/s of each epoch run `id` recorded (at least one).
fn epoch_throughputs(st: &AppState, id: &fairtat::runs::RunId) -> Result<Vec<f64>> {
    let events = fairtat::server::scan::read_all_events(&st.run_dir(id));
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
