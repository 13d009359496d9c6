//! (d) The dashboard at the paper's scale: CIFAR-100-sized runs (100 classes, 200 epochs, the
//! seven evaluations per epoch, about 48 MB of `events.jsonl` each, from
//! `fairtat::runs::synthetic`) plus many small runs, served by a real `fairtat serve` process
//! whose CPU time and RSS are read from /proc.
//!
//! Figures: start-up (index rebuild), the first view of a big run, then warm: the run page, the
//! metrics API, each chart (time and size); the server CPU one new epoch costs (follow, fold,
//! then the browser's refresh: `charts.json`, the changed charts, the tables); RSS with every big
//! run viewed, and with 8 SSE clients on the live one.

mod live;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::client::{http_get, http_get_len, sse_client};
use crate::fixtures::{new_run, percentile, scratch, trainer_binary, write_small_run};
use fairtat::runs::synthetic::Synth;
use fairtat::runs::{RunDir, RunEvent};
use live::{append, epoch_cost, epoch_line};

/// Shape of the benchmark.
#[derive(Clone, Copy)]
pub struct Scale {
    pub big: usize,
    pub small: usize,
    pub sse: usize,
}

/// The server process and what /proc says about it.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn proc_field(&self, file: &str) -> String {
        std::fs::read_to_string(format!("/proc/{}/{file}", self.child.id())).unwrap_or_default()
    }

    fn status_mb(&self, key: &str) -> f64 {
        let status = self.proc_field("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }

    fn rss_mb(&self) -> f64 {
        self.status_mb("VmRSS:")
    }

    /// "RSS MB (anonymous MB)": the file-backed rest is mostly libtorch's mapped code, which
    /// the `fairtat` binary carries even though the server never calls it.
    fn rss(&self) -> String {
        format!(
            "{:.0} MB ({:.0} MB anonymous)",
            self.rss_mb(),
            self.status_mb("RssAnon:")
        )
    }

    fn cpu_secs(&self) -> f64 {
        let stat = self.proc_field("stat");
        let f: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, r)| r.split_whitespace().collect())
            .unwrap_or_default();
        let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        (t(11) + t(12)) / 100.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_server(root: &Path, extra: &[&str]) -> Result<(Server, f64)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let t = Instant::now();
    let child = Command::new(trainer_binary()?)
        .args(["serve", "--addr", &addr, "--runs"])
        .arg(root.join("runs"))
        .arg("--configs")
        .arg(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting fairtat serve")?;
    let server = Server { child, addr };
    while t.elapsed() < Duration::from_secs(300) {
        if let Ok((200, _)) = http_get(&server.addr, "/").await {
            return Ok((server, t.elapsed().as_secs_f64()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("fairtat serve did not answer within 300 s")
}

/// Write the runs: big ones (the first stays live: no final line, this process as its
/// trainer) and small finished ones. Returns the big runs' ids and the live run's next seq.
fn write_runs(runs_dir: &Path, s: &Scale) -> Result<(Vec<String>, u64)> {
    let synth = Synth::cifar100();
    let (live, mut w) = new_run(runs_dir, 0)?;
    w.append(&synth.started(&live.id()))?;
    for e in 0..synth.epochs {
        synth.write_epoch(&mut w, e)?;
    }
    let next_seq = w.next_seq();
    // This process owns the live run like a trainer: the server follows it while the lock is
    // held, i.e. for the rest of the benchmark.
    std::mem::forget(fairtat::runs::lock::RunLock::acquire(&live, "train")?);
    let mut ids = vec![live.id()];
    for n in 1..s.big {
        let (dir, w) = new_run(runs_dir, n)?;
        drop(w);
        std::fs::copy(live.events(), dir.events())?;
        let mut w = fairtat::runs::writer::EventWriter::open(&dir)?;
        w.append(&RunEvent::Finished {
            status: fairtat::runs::RunStatus::Finished,
            epochs_done: synth.epochs,
            message: None,
        })?;
        ids.push(dir.id());
    }
    for n in 0..s.small {
        write_small_run(runs_dir, s.big + n)?;
    }
    Ok((ids, next_seq))
}

async fn timed_get(addr: &str, path: &str) -> Result<(f64, usize)> {
    let t = Instant::now();
    let (status, body) = http_get(addr, path).await?;
    if status != 200 {
        bail!("GET {path} answered {status}");
    }
    Ok((t.elapsed().as_secs_f64() * 1e3, body.len()))
}

/// Median of `n` timed GETs of `path` (ms) and the body size.
async fn median_get(addr: &str, path: &str, n: usize) -> Result<(f64, usize)> {
    let mut ms = Vec::new();
    let mut size = 0;
    for _ in 0..n {
        let (t, s) = timed_get(addr, path).await?;
        ms.push(t);
        size = s;
    }
    ms.sort_by(f64::total_cmp);
    Ok((percentile(&ms, 0.5), size))
}

/// The chart names of a run (from its manifest).
async fn chart_names(addr: &str, id: &str) -> Result<Vec<String>> {
    let (_, body) = http_get(addr, &format!("/runs/{id}/charts.json")).await?;
    let v: serde_json::Value = serde_json::from_str(&body)?;
    Ok(v["charts"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default())
}

/// Benchmark (d): write the runs, start the server, print every figure of the module docs.
pub async fn paper_scale(s: Scale) -> Result<()> {
    let root = scratch("scale")?;
    let (ids, mut seq) = write_all(&root, s).await?;
    idle_rss().await?;
    let (server, startup) = start_server(&root, &[]).await?;
    println!(
        "  start-up (index rebuilt from every log): {startup:.1} s, server RSS {}",
        server.rss()
    );
    // The first big run is live (its follower folded it at start-up); the others finished.
    let live = RunDir::new(root.join("runs").join(&ids[0]));
    let id = ids.get(1).unwrap_or(&ids[0]);
    let names = first_view(&server.addr, id).await?;
    warm_views(&server.addr, id, s).await?;
    warm_charts(&server.addr, id, &names).await?;
    epoch_cost(&server, &live, &mut seq).await?;
    let rss = view_every_run(&server, &ids, &names, s).await?;
    sse_on_live(&server, &live, seq, rss, s).await?;
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

/// Write the big and small runs under `root/runs`; their ids (the live big run first) and the
/// next event number of the live run.
async fn write_all(root: &Path, s: Scale) -> Result<(Vec<String>, u64)> {
    let runs_dir = root.join("runs");
    let t = Instant::now();
    let (ids, seq) = {
        let dir = runs_dir.clone();
        tokio::task::spawn_blocking(move || write_runs(&dir, &s)).await??
    };
    let live = RunDir::new(runs_dir.join(&ids[0]));
    let mb = std::fs::metadata(live.events())?.len() as f64 / 1e6;
    println!(
        "paper scale: {} runs of 100 classes x 200 epochs ({mb:.1} MB of events each) + {} small \
         runs written in {:.1} s",
        s.big,
        s.small,
        t.elapsed().as_secs_f64()
    );
    Ok((ids, seq))
}

/// Idle event streams held open (the flood of issue 20, below the stream cap).
const IDLE_STREAMS: usize = 1000;

/// The RSS of a server with nothing to serve: the floor the other figures stand on; then the
/// same server holding [`IDLE_STREAMS`] idle event streams, and after they closed.
pub async fn idle_rss() -> Result<()> {
    let empty = scratch("scale-empty")?;
    std::fs::create_dir_all(empty.join("runs"))?;
    let cap = (IDLE_STREAMS + 100).to_string();
    let flags = ["--max-streams", &cap, "--max-connections", &cap];
    let (idle, _) = start_server(
        &empty,
        &[&flags[..], &["--max-connections-per-client", &cap]].concat(),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let floor = idle.rss_mb();
    println!("  idle server on an empty runs folder: RSS {}", idle.rss());
    let mut streams = Vec::with_capacity(IDLE_STREAMS);
    for _ in 0..IDLE_STREAMS {
        streams.push(open_stream(&idle.addr, "/api/events").await?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = idle.rss_mb();
    drop(streams);
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "  {IDLE_STREAMS} idle event streams: RSS {held:.0} MB ({:+.1} MB, {:.0} KB per stream; \
         target < +100 MB); after they closed: {:.0} MB",
        held - floor,
        (held - floor) * 1024.0 / IDLE_STREAMS as f64,
        idle.rss_mb()
    );
    drop(idle);
    let _ = std::fs::remove_dir_all(&empty);
    Ok(())
}

/// First view of run `id`: the page, then every chart it shows; the charts' names.
async fn first_view(addr: &str, id: &str) -> Result<Vec<String>> {
    let (page_ms, page_size) = timed_get(addr, &format!("/runs/{id}")).await?;
    let names = chart_names(addr, id).await?;
    let mut first_total = page_ms;
    let mut cold = Vec::new();
    for c in &names {
        let (ms, _) = timed_get(addr, &format!("/runs/{id}/charts/{c}.svg")).await?;
        first_total += ms;
        cold.push(ms);
    }
    cold.sort_by(f64::total_cmp);
    println!(
        "  first view: page {page_ms:.0} ms ({} KiB), page + {} charts {first_total:.0} ms \
         (slowest chart render {:.0} ms; target < 2 s)",
        page_size / 1024,
        names.len(),
        cold.last().copied().unwrap_or(0.0)
    );
    Ok(names)
}

/// Warm requests about run `id`: its page, live parts, the runs list, its archive and metrics.
async fn warm_views(addr: &str, id: &str, s: Scale) -> Result<()> {
    let (ms, size) = median_get(addr, &format!("/runs/{id}"), 10).await?;
    println!(
        "  run page (warm): median {ms:.1} ms, {} KiB (target < 100 ms)",
        size / 1024
    );
    let (ms, size) = median_get(addr, &format!("/runs/{id}/live"), 10).await?;
    println!(
        "  live header, downloads, evaluations and log (/runs/<id>/live, warm): median {ms:.1} ms, \
         {} KiB (target < 50 ms)",
        size / 1024
    );
    let (ms, size) = median_get(addr, "/fragments/run-rows", 10).await?;
    println!(
        "  runs list rows ({} runs, /fragments/run-rows): median {ms:.1} ms, {} KiB",
        s.big + s.small,
        size / 1024
    );
    let t = Instant::now();
    let (status, size) = http_get_len(addr, &format!("/runs/{id}/archive.tar.gz")).await?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    if status != 200 {
        bail!("GET /runs/{id}/archive.tar.gz answered {status}");
    }
    println!(
        "  download run (tar.gz of config, events, log, reports): {ms:.0} ms, {:.1} MB \
         ({:.0} MB/s of archive)",
        size as f64 / 1e6,
        size as f64 / 1e6 / (ms / 1e3).max(1e-9)
    );
    let (ms, size) = median_get(addr, &format!("/api/runs/{id}/metrics"), 10).await?;
    println!(
        "  metrics API (warm): median {ms:.1} ms, {} KiB (target < 50 ms)",
        size / 1024
    );
    Ok(())
}

/// Each chart of run `id`, warm: time and size.
async fn warm_charts(addr: &str, id: &str, names: &[String]) -> Result<()> {
    let mut worst = (0.0f64, 0usize);
    for c in names {
        let (ms, size) = median_get(addr, &format!("/runs/{id}/charts/{c}.svg"), 5).await?;
        println!(
            "    chart {c}: median {ms:.1} ms, {:.1} KB",
            size as f64 / 1e3
        );
        worst = (worst.0.max(ms), worst.1.max(size));
    }
    println!(
        "  charts (warm): slowest {:.1} ms, largest {:.1} KB (targets < 100 ms, < 200 KB)",
        worst.0,
        worst.1 as f64 / 1e3
    );
    Ok(())
}

/// View every big run (page and charts); the server's RSS after it, in MB.
async fn view_every_run(
    server: &Server,
    ids: &[String],
    names: &[String],
    s: Scale,
) -> Result<f64> {
    for other in ids {
        let _ = timed_get(&server.addr, &format!("/runs/{other}")).await?;
        for c in names {
            let _ = timed_get(&server.addr, &format!("/runs/{other}/charts/{c}.svg")).await?;
        }
    }
    let rss = server.rss_mb();
    println!(
        "  server RSS with {} big runs viewed (page + charts each) and {} small runs indexed: \
         {} (target < 150 MB)",
        s.big,
        s.small,
        server.rss()
    );
    Ok(rss)
}

/// SSE clients on the live run, connected as the run page does (after what it shows), then one
/// more epoch: the RSS they add over `rss`.
async fn sse_on_live(server: &Server, live: &RunDir, seq: u64, rss: f64, s: Scale) -> Result<()> {
    let id = live.id();
    let mut tasks = Vec::new();
    for _ in 0..s.sse {
        let (a, p) = (
            server.addr.clone(),
            format!("/api/runs/{id}/events?after={}", seq - 1),
        );
        tasks.push(tokio::spawn(async move { sse_client(a, p, |_| {}).await }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let with_sse = server.rss_mb();
    append(live, &epoch_line(&Synth::cifar100(), seq, 250)?)?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "  server RSS with {} SSE clients on the live run, after one more epoch: {:.0} MB \
         ({:+.1} MB; target < +10 MB)",
        s.sse,
        server.rss_mb().max(with_sse),
        server.rss_mb().max(with_sse) - rss
    );
    for t in tasks {
        t.abort();
    }
    Ok(())
}

/// An event stream whose response head has arrived, held open without reading further.
async fn open_stream(addr: &str, path: &str) -> Result<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut head = [0u8; 512];
    let n = s.read(&mut head).await?;
    if !head[..n].starts_with(b"HTTP/1.1 200") {
        bail!(
            "event stream refused: {}",
            String::from_utf8_lossy(&head[..n])
        );
    }
    Ok(s)
}
