//! Fan-out of run events to SSE clients: one bounded broadcast channel per run, and one for
//! every run's summary changes (the runs list).
//!
//! Senders never wait for receivers, so a slow browser cannot slow the follower (or training);
//! a receiver that falls more than [`CAPACITY`] messages behind gets `Lagged` and resyncs from
//! the events file.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use fairtat_core::runs::summary::RunSummary;
use fairtat_core::runs::{EventLine, RunId};

/// Messages buffered per run for slow receivers.
pub const CAPACITY: usize = 1024;

/// What the follower publishes.
#[derive(Clone, Debug)]
pub enum HubMsg {
    /// A new line of `events.jsonl` (its `seq` is the SSE event id).
    Line(Arc<EventLine>),
    /// The run's summary changed in a way no line says (queued, interrupted, cancelled).
    Status(Arc<RunSummary>),
}

pub struct Hub {
    channels: Mutex<HashMap<String, broadcast::Sender<HubMsg>>>,
    /// Every run's summary changes, for the runs list's one stream.
    all: broadcast::Sender<Arc<RunSummary>>,
}

impl Default for Hub {
    fn default() -> Hub {
        Hub {
            channels: Mutex::default(),
            all: broadcast::channel(CAPACITY).0,
        }
    }
}

impl Hub {
    fn sender(&self, id: &str) -> broadcast::Sender<HubMsg> {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        // Drop channels nobody listens to any more, so the map stays bounded by active runs.
        if map.len() > 256 {
            map.retain(|_, tx| tx.receiver_count() > 0);
        }
        map.entry(id.to_string())
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .clone()
    }

    pub fn subscribe(&self, id: &RunId) -> broadcast::Receiver<HubMsg> {
        self.sender(id.as_str()).subscribe()
    }

    /// Publish; a run without subscribers costs nothing.
    fn publish(&self, id: &str, msg: HubMsg) {
        let tx = {
            let map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
            map.get(id).cloned()
        };
        if let Some(tx) = tx {
            let _ = tx.send(msg);
        }
    }

    pub fn line(&self, id: &str, line: EventLine) {
        self.publish(id, HubMsg::Line(Arc::new(line)));
    }

    pub fn status(&self, summary: &RunSummary) {
        let s = Arc::new(summary.clone());
        let _ = self.all.send(s.clone());
        self.publish(&summary.id, HubMsg::Status(s));
    }

    /// Summary changes of every run (what the runs list follows).
    pub fn subscribe_all(&self) -> broadcast::Receiver<Arc<RunSummary>> {
        self.all.subscribe()
    }
}
