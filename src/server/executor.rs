//! The executor: a bounded queue of runs and device slots (N concurrent runs per GPU, a
//! configurable number on CPU), each run a child process `<trainer> train --run-dir DIR`.
//!
//! Children run in their own process group, so Ctrl-C on the server does not reach them and a
//! restarted server adopts them. Cancel is SIGTERM: the trainer finishes its batch, checkpoints
//! and writes a `finished` line. The queue is durable through the `queued` marker file.

use std::collections::{HashMap, VecDeque};
use std::process::Stdio;

use tokio::sync::watch;

use super::error::ApiError;
use super::follower::{spawn_follower, Liveness};
use super::process::{append_finished, signal, spawn_retrying};
use super::scan::{self, StartMode};
use super::state::AppState;
use crate::runs::summary::RunSummary;
use crate::runs::{RunDir, RunStatus};

/// Where runs execute.
#[derive(Clone, Debug)]
pub struct Slot {
    /// `cpu` or `cuda:N`.
    pub name: String,
    /// GPU index passed as `CUDA_VISIBLE_DEVICES`.
    pub cuda: Option<usize>,
    pub capacity: usize,
    pub running: usize,
}

struct Running {
    pid: Option<u32>,
    slot: Option<usize>,
    /// SIGTERM was sent: if the process dies without a final line (it had not installed its
    /// handler yet), the run is cancelled, not interrupted.
    cancel_requested: bool,
}

pub struct ExecState {
    queue: VecDeque<(String, StartMode)>,
    /// Evaluation jobs waiting for a slot (after every queued training run of the same device).
    pub(crate) evals: VecDeque<super::evals::EvalJob>,
    running: HashMap<String, Running>,
    pub slots: Vec<Slot>,
    gpus: usize,
}

impl ExecState {
    /// One run per GPU (the default) and `cpu_runs` on the CPU.
    pub fn new(gpus: usize, cpu_runs: usize) -> Self {
        let mut slots: Vec<Slot> = (0..gpus)
            .map(|g| Slot {
                name: format!("cuda:{g}"),
                cuda: Some(g),
                capacity: 1,
                running: 0,
            })
            .collect();
        slots.push(Slot {
            name: "cpu".into(),
            cuda: None,
            capacity: cpu_runs,
            running: 0,
        });
        ExecState {
            queue: VecDeque::new(),
            evals: VecDeque::new(),
            running: HashMap::new(),
            slots,
            gpus,
        }
    }

    /// A free slot for a run configured with `device` (`auto`, `cpu`, `cuda:N`).
    pub(crate) fn free_slot(&self, device: &str) -> Option<usize> {
        let free = |i: &usize| self.slots[*i].running < self.slots[*i].capacity;
        let cpu = self.slots.len() - 1;
        match device {
            "cpu" => Some(cpu).filter(free),
            d if d.starts_with("cuda:") => self.slots.iter().position(|s| s.name == d).filter(free),
            // auto: any GPU; the CPU only when there is none.
            _ if self.gpus > 0 => (0..self.gpus).find(free),
            _ => Some(cpu).filter(free),
        }
    }

    pub fn queued_ids(&self) -> Vec<String> {
        self.queue.iter().map(|(id, _)| id.clone()).collect()
    }

    pub fn is_active(&self, id: &str) -> bool {
        self.running.contains_key(id) || self.queue.iter().any(|(q, _)| q == id)
    }

    /// True while `key` (a run id or an evaluation job key) holds a slot.
    pub(crate) fn is_running(&self, key: &str) -> bool {
        self.running.contains_key(key)
    }

    /// Take `slot` for `key` (an evaluation job); its pid is set once spawned.
    pub(crate) fn occupy(&mut self, key: &str, slot: usize) {
        self.slots[slot].running += 1;
        self.running.insert(
            key.to_string(),
            Running {
                pid: None,
                slot: Some(slot),
                cancel_requested: false,
            },
        );
    }

    pub(crate) fn set_pid(&mut self, key: &str, pid: Option<u32>) {
        if let Some(r) = self.running.get_mut(key) {
            r.pid = pid;
        }
    }

    pub(crate) fn gpus(&self) -> usize {
        self.gpus
    }
}

impl AppState {
    pub(crate) fn push_queue(&self, id: &str, mode: StartMode) {
        let mut ex = self.mutex_exec();
        if !ex.is_active(id) {
            ex.queue.push_back((id.to_string(), mode));
        }
    }

    /// Queue a run (writing its durable marker) and start it if a slot is free.
    pub fn enqueue(&self, id: &str, mode: StartMode) -> Result<(), ApiError> {
        std::fs::write(self.run_dir(id).queued_marker(), mode.marker_text())?;
        self.push_queue(id, mode);
        self.pump();
        Ok(())
    }

    /// Start queued runs while their device has a free slot (first come, first served per device).
    pub fn pump(&self) {
        if self.shutdown.is_cancelled() {
            return;
        }
        loop {
            let next = {
                let mut ex = self.mutex_exec();
                let mut pick = None;
                for (i, (id, mode)) in ex.queue.iter().enumerate() {
                    let device = scan::read_spec(&self.run_dir(id))
                        .map(|s| s.device)
                        .unwrap_or_else(|| "auto".into());
                    if let Some(slot) = ex.free_slot(&device) {
                        pick = Some((i, id.clone(), *mode, slot));
                        break;
                    }
                }
                let Some((i, id, mode, slot)) = pick else {
                    drop(ex);
                    self.pump_evals();
                    return;
                };
                ex.queue.remove(i);
                ex.slots[slot].running += 1;
                ex.running.insert(
                    id.clone(),
                    Running {
                        pid: None,
                        slot: Some(slot),
                        cancel_requested: false,
                    },
                );
                (id, mode, ex.slots[slot].clone(), ex.gpus)
            };
            let (id, mode, slot, gpus) = next;
            if let Err(err) = self.spawn_trainer(&id, mode, &slot, gpus) {
                tracing::error!(run = %id, cause = %err, "cannot start trainer");
                let dir = self.run_dir(&id);
                let _ = std::fs::remove_file(dir.queued_marker());
                // The trainer never ran, so the server may write the run's final line.
                let done = self.epochs_done(&id);
                append_finished(
                    &dir,
                    RunStatus::Failed,
                    done,
                    format!("cannot start trainer: {err}"),
                );
                self.refresh(&id);
                self.run_ended(&id);
            }
        }
    }

    fn spawn_trainer(
        &self,
        id: &str,
        mode: StartMode,
        slot: &Slot,
        gpus: usize,
    ) -> anyhow::Result<()> {
        let dir = self.run_dir(id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.log())?;
        let history_seq = crate::runs::reader::last_seq(&dir.events());
        let mut cmd = tokio::process::Command::new(&self.trainer);
        cmd.arg("train")
            .arg(match mode {
                StartMode::Fresh => "--run-dir",
                StartMode::Resume => "--resume",
            })
            .arg(dir.root())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .kill_on_drop(false);
        match slot.cuda {
            Some(g) => {
                cmd.env("CUDA_VISIBLE_DEVICES", g.to_string());
            }
            None if gpus > 0 => {
                cmd.env("CUDA_VISIBLE_DEVICES", "");
            }
            None => {}
        }
        let mut child = spawn_retrying(&mut cmd)?;
        let pid = child.id();
        tracing::info!(run = %id, pid, slot = %slot.name, ?mode, "trainer started");
        if let Some(r) = self.mutex_exec().running.get_mut(id) {
            r.pid = pid;
        }
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            let msg = match child.wait().await {
                Ok(st) => format!("trainer exited ({st}) without a final event; see train.log"),
                Err(e) => format!("lost track of the trainer: {e}"),
            };
            let _ = tx.send(Some(msg));
        });
        let mut summary = self
            .index
            .get(id)
            .ok()
            .flatten()
            .unwrap_or_else(|| RunSummary::empty(&dir));
        summary.status = RunStatus::Running;
        summary.message = None;
        let _ = self.index.upsert(&summary);
        self.hub.status(&summary);
        spawn_follower(self.clone(), dir, Liveness::Child(rx), history_seq);
        Ok(())
    }

    /// Follow a run whose trainer outlived a previous server.
    pub(crate) fn adopt(&self, dir: RunDir, summary: RunSummary, pid: u32) {
        let id = summary.id.clone();
        {
            let mut ex = self.mutex_exec();
            let device = if summary.device.is_empty() {
                "auto"
            } else {
                &summary.device
            };
            let slot = ex.free_slot(device);
            if let Some(s) = slot {
                ex.slots[s].running += 1;
            }
            ex.running.insert(
                id.clone(),
                Running {
                    pid: Some(pid),
                    slot,
                    cancel_requested: false,
                },
            );
        }
        tracing::info!(run = %id, pid, "adopted a running trainer");
        spawn_follower(self.clone(), dir, Liveness::Pid(pid), None);
    }

    /// Called once per run when its follower sees it end: free the slot, start the next.
    pub fn run_ended(&self, id: &str) {
        {
            let mut ex = self.mutex_exec();
            if let Some(r) = ex.running.remove(id) {
                if let Some(s) = r.slot {
                    ex.slots[s].running = ex.slots[s].running.saturating_sub(1);
                }
            }
        }
        self.pump();
    }

    /// Cancel a queued run (immediately) or a running one (SIGTERM; the trainer writes the
    /// final line). Returns the summary as it is now.
    pub fn cancel(&self, id: &str) -> Result<RunSummary, ApiError> {
        let dir = self.run_dir(id);
        let (was_queued, pid) = {
            let mut ex = self.mutex_exec();
            let before = ex.queue.len();
            ex.queue.retain(|(q, _)| q != id);
            let pid = ex.running.get_mut(id).map(|r| {
                r.cancel_requested = r.pid.is_some();
                r.pid
            });
            (ex.queue.len() < before, pid)
        };
        if was_queued {
            let _ = std::fs::remove_file(dir.queued_marker());
            let done = self.epochs_done(id);
            append_finished(
                &dir,
                RunStatus::Cancelled,
                done,
                "cancelled while queued".into(),
            );
            return self
                .refresh(id)
                .ok_or_else(|| ApiError::NotFound(format!("run {id}")));
        }
        match pid {
            Some(Some(pid)) => {
                signal(pid, "TERM")?;
                tracing::info!(run = %id, pid, "sent SIGTERM");
            }
            Some(None) => return Err(ApiError::Conflict("the run is starting; try again".into())),
            None => {
                return Err(ApiError::Conflict(format!(
                    "run {id} is neither queued nor running"
                )))
            }
        }
        self.index
            .get(id)?
            .ok_or_else(|| ApiError::NotFound(format!("run {id}")))
    }

    /// Queue an interrupted, failed or cancelled run to continue from its last checkpoint.
    pub fn resume(&self, id: &str) -> Result<RunSummary, ApiError> {
        let mut summary = self
            .index
            .get(id)?
            .ok_or_else(|| ApiError::NotFound(format!("run {id}")))?;
        if self.mutex_exec().is_active(id) || !scan::resumable(&summary) {
            return Err(ApiError::Conflict(format!(
                "run {id} is {}; only interrupted, failed or cancelled runs can be resumed",
                summary.status.as_str()
            )));
        }
        summary.status = RunStatus::Queued;
        summary.message = None;
        self.index.upsert(&summary)?;
        self.hub.status(&summary);
        self.enqueue(id, StartMode::Resume)?;
        Ok(self.index.get(id)?.unwrap_or(summary))
    }

    pub(crate) fn cancel_requested(&self, id: &str) -> bool {
        self.mutex_exec()
            .running
            .get(id)
            .is_some_and(|r| r.cancel_requested)
    }

    fn epochs_done(&self, id: &str) -> usize {
        self.index
            .get(id)
            .ok()
            .flatten()
            .map_or(0, |s| s.epochs_done)
    }

    /// Reload one run from disk into the index and tell subscribers.
    pub fn refresh(&self, id: &str) -> Option<RunSummary> {
        let mut loaded = scan::load(&self.run_dir(id));
        if self.mutex_exec().running.contains_key(id) && !loaded.summary.status.is_terminal() {
            loaded.summary.status = RunStatus::Running;
            loaded.summary.message = None;
        }
        let _ = self.index.upsert(&loaded.summary);
        self.hub.status(&loaded.summary);
        Some(loaded.summary)
    }
}
