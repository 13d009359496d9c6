//! The live run at the paper's scale: what one more epoch costs the server (follow, fold, the
//! page's refresh), and the lines that grow the run's `events.jsonl`.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::Server;
use crate::client::http_get;
use crate::fixtures::percentile;
use fairtat::runs::synthetic::Synth;
use fairtat::runs::{EventLine, RunDir, RunEvent, SCHEMA_VERSION};

/// One epoch event of `synth` as an `events.jsonl` line.
pub(super) fn epoch_line(synth: &Synth, seq: u64, e: usize) -> Result<String> {
    let line = EventLine {
        v: SCHEMA_VERSION,
        seq,
        time: fairtat::runs::writer::unix_now(),
        event: RunEvent::Epoch(Box::new(synth.epoch(e))),
    };
    Ok(serde_json::to_string(&line)? + "\n")
}

/// Append `line` to the run's event log, as the trainer would.
pub(super) fn append(dir: &RunDir, line: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.events())?;
    f.write_all(line.as_bytes())?;
    Ok(())
}

/// Server CPU per new epoch of the live run: the follower's read and fold (until the chart
/// manifest shows the new version), then what a run page asks for after it.
pub(super) async fn epoch_cost(server: &Server, live: &RunDir, seq: &mut u64) -> Result<()> {
    let synth = Synth::cifar100();
    let id = live.id();
    let addr = &server.addr;
    let manifest = format!("/runs/{id}/charts.json");
    let (mut ingest, mut refresh) = (Vec::new(), Vec::new());
    for i in 0..5 {
        let line = epoch_line(&synth, *seq, 200 + i)?;
        let (_, before) = http_get(addr, &manifest).await?;
        let cpu0 = server.cpu_secs();
        append(live, &line)?;
        *seq += 1;
        let t = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let (_, now) = http_get(addr, &manifest).await?;
            if now != before {
                break;
            }
            if t.elapsed() > Duration::from_secs(10) {
                bail!("the new epoch did not show within 10 s");
            }
        }
        let cpu1 = server.cpu_secs();
        let old: serde_json::Value = serde_json::from_str(&before)?;
        let new: serde_json::Value = serde_json::from_str(&http_get(addr, &manifest).await?.1)?;
        let changed: Vec<String> = new["charts"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, v)| old["charts"].get(k.as_str()) != Some(*v))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        for c in &changed {
            http_get(addr, &format!("/runs/{id}/charts/{c}.svg")).await?;
        }
        http_get(addr, &format!("/runs/{id}/tables")).await?;
        http_get(addr, &format!("/runs/{id}/live")).await?;
        let cpu2 = server.cpu_secs();
        ingest.push((cpu1 - cpu0) * 1e3);
        refresh.push((cpu2 - cpu1) * 1e3);
    }
    ingest.sort_by(f64::total_cmp);
    refresh.sort_by(f64::total_cmp);
    println!(
        "  one new epoch: server CPU median {:.0} ms to follow and fold it (incl. the manifest polls), \
         {:.0} ms for the page's refresh (manifest, changed charts, tables, live parts); target < 50 ms \
         (/proc ticks are 10 ms)",
        percentile(&ingest, 0.5),
        percentile(&refresh, 0.5)
    );
    Ok(())
}
