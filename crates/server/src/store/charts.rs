//! Rendered chart SVGs of one run, cached by `(chart, parameters)` and keyed by the chart's data
//! version: a chart is rendered again only after an event changed its data, however many
//! browsers ask for it.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{RunEntry, RunFold, StoreStats};

/// Charts kept per run, and their bytes at most (a run page shows about 12).
const MAX_CHARTS: usize = 32;
const MAX_BYTES: usize = 4 << 20;

#[derive(Default)]
pub struct ChartCache {
    /// key -> (data version, svg, insertion tick)
    map: HashMap<String, (u64, Arc<String>, u64)>,
    bytes: usize,
    tick: u64,
}

impl ChartCache {
    fn get(&self, key: &str, version: u64) -> Option<Arc<String>> {
        self.map
            .get(key)
            .filter(|(v, _, _)| *v == version)
            .map(|(_, svg, _)| svg.clone())
    }

    fn put(&mut self, key: String, version: u64, svg: Arc<String>) {
        self.tick += 1;
        self.bytes += svg.len();
        if let Some((_, old, _)) = self.map.insert(key, (version, svg, self.tick)) {
            self.bytes -= old.len();
        }
        while self.map.len() > MAX_CHARTS || self.bytes > MAX_BYTES {
            let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, (_, _, t))| *t)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((_, svg, _)) = self.map.remove(&oldest) {
                self.bytes -= svg.len();
            }
        }
    }
}

impl RunEntry {
    /// The chart `key` at data `version`, rendered from the fold on a miss.
    pub fn chart(
        &self,
        key: &str,
        version: u64,
        stats: &StoreStats,
        render: impl FnOnce(&RunFold) -> String,
    ) -> Arc<String> {
        if let Some(svg) = self.cache().get(key, version) {
            return svg;
        }
        stats.renders.fetch_add(1, Ordering::Relaxed);
        let svg = {
            let fold = self.fold();
            Arc::new(render(&fold))
        };
        self.cache().put(key.to_string(), version, svg.clone());
        svg
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, ChartCache> {
        self.charts.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn charts_bytes(&self) -> usize {
        self.cache().bytes
    }
}
