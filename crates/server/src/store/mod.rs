//! The metrics store: each run's `events.jsonl` read once, incrementally from the last byte
//! offset, and folded into a [`RunFold`]; pages, charts, the metrics API, compare views and SSE
//! replays read that state instead of parsing the log per request.
//!
//! - The follower hands over the lines it tailed ([`MetricsStore::append`]), so a live run's
//!   lines are parsed once. A request for a run nobody follows catches up from the file (a
//!   `stat`, and a read of only the bytes behind the folded offset).
//! - Lines are folded by seq, so lines handed over twice (follower and request) count once.
//! - Entries live in memory under an LRU bound on their approximate bytes; everything is
//!   rebuildable from the run directories (an evicted run is folded again on its next view).
//! - Rendered chart SVGs are cached per entry, keyed by the chart's data version
//!   (see [`charts`]).
//!
//! Blocking I/O: call from `spawn_blocking`.

pub mod charts;
pub mod fold;
pub mod step;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

pub use fold::{EpochDetail, RunFold};

use fairtat_core::runs::reader::{self, Located, ReadError, Tailer};
use fairtat_core::runs::RunDir;

/// Default bound on the folded state kept in memory (a CIFAR-100 run of 200 epochs folds
/// into about 1.5 MB).
pub const DEFAULT_BUDGET: usize = 64 << 20;

/// Older epochs' details kept per run after being read back from the file.
const DETAILS_KEPT: usize = 4;

/// Counters for tests and the benchmark: how much of the logs the store has read.
#[derive(Default, Debug)]
pub struct StoreStats {
    /// Folds that started from byte 0.
    pub loads: AtomicU64,
    /// Bytes of `events.jsonl` read by catch-ups and loads.
    pub bytes_read: AtomicU64,
    /// Single epoch lines read back for an older epoch's matrices.
    pub detail_reads: AtomicU64,
    /// Charts rendered (cache misses).
    pub renders: AtomicU64,
}

/// One run's folded state.
pub struct RunEntry {
    pub dir: RunDir,
    state: RwLock<Folded>,
    details: Mutex<Vec<Arc<EpochDetail>>>,
    pub(crate) charts: Mutex<charts::ChartCache>,
    bytes: AtomicUsize,
}

struct Folded {
    fold: RunFold,
    /// Just past the last complete line folded.
    offset: u64,
}

impl RunEntry {
    fn new(dir: RunDir) -> Self {
        RunEntry {
            dir,
            state: RwLock::new(Folded {
                fold: RunFold::default(),
                offset: 0,
            }),
            details: Mutex::new(Vec::new()),
            charts: Mutex::new(charts::ChartCache::default()),
            bytes: AtomicUsize::new(0),
        }
    }

    /// Read access to the fold.
    pub fn fold(&self) -> FoldGuard<'_> {
        FoldGuard(self.state.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Bytes of the log folded so far.
    pub fn offset(&self) -> u64 {
        self.fold().0.offset
    }

    fn fold_lines(&self, lines: &[Located], end: u64) {
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        if lines.first().is_some_and(|(at, _)| *at > st.offset) {
            return; // a gap (this entry was created after those lines): catch up reads it
        }
        for (at, line) in lines {
            st.fold.apply(*at, line);
        }
        st.offset = st.offset.max(end);
        self.bytes.store(st.fold.bytes(), Ordering::Relaxed);
    }

    /// Fold what the file has beyond the folded offset (nothing to read when it did not grow).
    fn catch_up(&self, stats: &StoreStats) -> Result<(), ReadError> {
        let path = self.dir.events();
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        if len == st.offset {
            return Ok(());
        }
        if len < st.offset {
            // Replaced or truncated under us: fold again from the start.
            st.fold = RunFold::default();
            st.offset = 0;
        }
        if st.offset == 0 {
            stats.loads.fetch_add(1, Ordering::Relaxed);
        }
        let mut tailer = Tailer::resume_at(path, st.offset, st.fold.last_seq());
        loop {
            let lines = match tailer.poll_located() {
                Ok(v) => v,
                Err(err) => {
                    tracing::warn!(run = %self.dir.id(), cause = %err, "skipping an event line");
                    vec![]
                }
            };
            stats
                .bytes_read
                .fetch_add(tailer.offset().saturating_sub(st.offset), Ordering::Relaxed);
            for (at, line) in &lines {
                st.fold.apply(*at, line);
            }
            let progressed = tailer.offset() > st.offset;
            st.offset = tailer.offset();
            if !progressed || st.offset >= len {
                break;
            }
        }
        self.bytes.store(st.fold.bytes(), Ordering::Relaxed);
        Ok(())
    }

    /// Detail of `epoch` (default the latest): the latest from memory, an older one read back
    /// from its line in the file (a few kept).
    pub fn detail(&self, epoch: Option<usize>, stats: &StoreStats) -> Option<Arc<EpochDetail>> {
        let offset = {
            let f = self.fold();
            let last = f.last_detail();
            if epoch.is_none() || last.as_ref().map(|d| d.epoch) == epoch {
                return last;
            }
            f.epoch_offset(f.row_of(epoch)?)?
        };
        let mut kept = self.details.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = kept.iter().find(|d| Some(d.epoch) == epoch) {
            return Some(d.clone());
        }
        stats.detail_reads.fetch_add(1, Ordering::Relaxed);
        let line = reader::read_line_at(&self.dir.events(), offset).ok()??;
        let fairtat_core::runs::RunEvent::Epoch(rec) = &line.event else {
            return None;
        };
        let d = Arc::new(EpochDetail::of(rec));
        if kept.len() >= DETAILS_KEPT {
            kept.remove(0);
        }
        kept.push(d.clone());
        Some(d)
    }

    /// Raw lines with seq > `after` (all when None) up to the folded offset, at most about
    /// `max_bytes` per call: `(seq, json)` pairs for SSE replay. Empty when there is nothing
    /// more.
    pub fn raw_after(&self, after: Option<u64>, max_bytes: u64) -> Vec<(u64, String)> {
        let (from, to, seqs) = {
            let f = self.fold();
            let lines = f.0.fold.lines();
            let i = lines.partition_point(|(s, _)| after.is_some_and(|a| *s <= a));
            let Some(&(_, from)) = lines.get(i) else {
                return vec![];
            };
            let seqs: Vec<(u64, u64)> = lines[i..].iter().take(4096).copied().collect();
            (from, f.0.offset, seqs)
        };
        let raw = match reader::read_raw(&self.dir.events(), from, to, max_bytes) {
            Ok(v) => v,
            Err(err) => {
                tracing::warn!(run = %self.dir.id(), cause = %err, "cannot replay events");
                return vec![];
            }
        };
        // Pair by offset, and check the seq: a line the fold skipped never goes out.
        let mut want = seqs.iter().peekable();
        let mut out = Vec::new();
        for (at, bytes) in raw {
            while want.peek().is_some_and(|(_, o)| *o < at) {
                want.next();
            }
            let Some(&&(seq, o)) = want.peek() else { break };
            if o == at && reader::raw_seq(&bytes) == Some(seq) {
                if let Ok(text) = String::from_utf8(bytes) {
                    out.push((seq, text));
                }
            }
        }
        out
    }
}

/// A read guard on one run's fold.
pub struct FoldGuard<'a>(RwLockReadGuard<'a, Folded>);

impl std::ops::Deref for FoldGuard<'_> {
    type Target = RunFold;
    fn deref(&self) -> &RunFold {
        &self.0.fold
    }
}

/// Every run's folded state, LRU-bounded.
pub struct MetricsStore {
    runs: Mutex<Lru>,
    budget: usize,
    pub stats: StoreStats,
}

#[derive(Default)]
struct Lru {
    map: HashMap<String, (Arc<RunEntry>, u64)>,
    tick: u64,
}

impl Default for MetricsStore {
    fn default() -> Self {
        MetricsStore::new(DEFAULT_BUDGET)
    }
}

impl MetricsStore {
    pub fn new(budget: usize) -> Self {
        MetricsStore {
            runs: Mutex::new(Lru::default()),
            budget,
            stats: StoreStats::default(),
        }
    }

    fn lru(&self) -> MutexGuard<'_, Lru> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entry of `dir`, created (empty) when missing, marked most recently used.
    fn entry(&self, dir: &RunDir) -> (Arc<RunEntry>, bool) {
        let id = dir.id();
        let mut lru = self.lru();
        lru.tick += 1;
        let tick = lru.tick;
        if let Some((e, used)) = lru.map.get_mut(&id) {
            *used = tick;
            return (e.clone(), false);
        }
        let e = Arc::new(RunEntry::new(dir.clone()));
        lru.map.insert(id, (e.clone(), tick));
        (e, true)
    }

    /// The run's state, caught up with its file. Blocking.
    pub fn run(&self, dir: &RunDir) -> Arc<RunEntry> {
        let (e, _) = self.entry(dir);
        if let Err(err) = e.catch_up(&self.stats) {
            tracing::warn!(run = %dir.id(), cause = %err, "cannot read events");
        }
        self.evict(&dir.id());
        e
    }

    /// Lines the follower just tailed (with their offsets; `end` is the tailer's offset after
    /// them). A run without an entry gets one only when these lines start the file.
    pub fn append(&self, dir: &RunDir, lines: &[Located], end: u64) {
        let existing = self.lru().map.get(&dir.id()).map(|(e, _)| e.clone());
        let e = match existing {
            Some(e) => e,
            None if lines.first().is_some_and(|(at, _)| *at == 0) => self.entry(dir).0,
            None => return,
        };
        e.fold_lines(lines, end);
        self.evict(&dir.id());
    }

    /// Forget a run (deleted directory).
    pub fn remove(&self, id: &str) {
        self.lru().map.remove(id);
    }

    /// Approximate bytes held (folds and cached charts).
    pub fn bytes(&self) -> usize {
        self.lru().map.values().map(|(e, _)| e.total_bytes()).sum()
    }

    pub fn len(&self) -> usize {
        self.lru().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drop least recently used entries (never `keep`) until under budget.
    fn evict(&self, keep: &str) {
        let mut lru = self.lru();
        let mut total: usize = lru.map.values().map(|(e, _)| e.total_bytes()).sum();
        while total > self.budget && lru.map.len() > 1 {
            let victim = lru
                .map
                .iter()
                .filter(|(id, _)| id.as_str() != keep)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(id, _)| id.clone());
            let Some(victim) = victim else { break };
            if let Some((e, _)) = lru.map.remove(&victim) {
                total = total.saturating_sub(e.total_bytes());
            }
        }
    }
}

impl RunEntry {
    fn total_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed) + self.charts_bytes()
    }
}

#[cfg(test)]
mod tests;
