//! The executor's bookkeeping, pure and synchronous: waiting jobs in arrival order (urgent ones,
//! by default evaluations, ahead of the others), the job each run is running, and the device
//! slots they hold ([`Slots`]: jobs per GPU by count or memory estimate, a number on the CPU).
//! No I/O here: the caller does file and process work outside the lock that guards this.

use std::collections::{HashMap, HashSet, VecDeque};

use super::slots::{Devices, Slot, Slots};
use super::{Job, JobKind, Priority};
use fairtat_core::runs::RunId;

/// A job holding a slot (or adopted without one when its device had none free).
#[derive(Clone, Debug)]
pub struct Running {
    pub job: Job,
    /// Set once spawned (adopted jobs: from the run's lock file).
    pub pid: Option<u32>,
    pub slot: Option<usize>,
    /// SIGTERM was sent: a trainer that dies without a final line was cancelled, not failed.
    pub cancel_requested: bool,
    /// Found running after a restart: signal it only while it holds its run's lock (our own,
    /// unreaped children cannot have had their pid reused).
    pub adopted: bool,
}

#[derive(Debug)]
pub struct Queue {
    /// Urgent jobs first (the first `urgent` entries, in arrival order), then the others.
    waiting: VecDeque<Job>,
    urgent: usize,
    /// At most one job per run: a run directory has one owner at a time (its lock).
    running: HashMap<RunId, Running>,
    slots: Slots,
    /// A scheduler (Slurm) places jobs: one unbounded slot takes every device, and the queue
    /// only holds jobs that wait for a source run.
    scheduled: bool,
}

impl Queue {
    /// Jobs placed on `devices`' slots.
    pub fn new(devices: &Devices) -> Queue {
        Queue {
            waiting: VecDeque::new(),
            urgent: 0,
            running: HashMap::new(),
            slots: Slots::new(devices),
            scheduled: false,
        }
    }

    /// The queue of `--executor slurm`: no local slots to wait for.
    pub fn scheduled() -> Queue {
        let mut q = Queue::new(&Devices::simple(0, usize::MAX));
        q.slots.cpu_mut().name = "slurm".into();
        q.scheduled = true;
        q
    }

    pub fn is_scheduled(&self) -> bool {
        self.scheduled
    }

    pub fn gpus(&self) -> usize {
        self.slots.gpus()
    }

    pub fn slots(&self) -> &[Slot] {
        self.slots.all()
    }

    /// A slot `job` may start on now (under a scheduler: the one unbounded slot).
    fn free_slot(&self, job: &Job) -> Option<usize> {
        if self.scheduled {
            return Some(self.slots.cpu());
        }
        self.slots.free(job.device, job.gpu_mib)
    }

    /// Queue `job` with its kind's default priority ([`Priority::of`]).
    pub fn push(&mut self, job: Job) {
        let p = Priority::of(&job.kind);
        self.push_with(job, p);
    }

    /// Queue `job`: an urgent one after the urgent jobs already waiting and before every
    /// normal one; a normal one at the end. A job already waiting is not queued twice.
    pub fn push_with(&mut self, job: Job, priority: Priority) {
        if self.waiting.contains(&job) {
            return;
        }
        match priority {
            Priority::Urgent => {
                self.waiting.insert(self.urgent, job);
                self.urgent += 1;
            }
            Priority::Normal => self.waiting.push_back(job),
        }
    }

    /// Remove the waiting job at `i`, keeping the urgent count.
    fn remove_at(&mut self, i: usize) -> Option<Job> {
        let job = self.waiting.remove(i)?;
        if i < self.urgent {
            self.urgent -= 1;
        }
        Some(job)
    }

    /// Take the first waiting job whose run is idle, not `blocked` (waiting for its source
    /// run) and whose device has a free slot, and mark it running (pid unknown until spawned).
    pub fn take_next(&mut self, blocked: &HashSet<RunId>) -> Option<(Job, Slot)> {
        let i = self.waiting.iter().position(|j| {
            !self.running.contains_key(&j.run)
                && !blocked.contains(&j.run)
                && self.free_slot(j).is_some()
        })?;
        let job = self.remove_at(i)?;
        let slot = self.free_slot(&job)?;
        self.slots.occupy(slot, job.gpu_mib);
        self.running.insert(
            job.run.clone(),
            Running {
                job: job.clone(),
                pid: None,
                slot: Some(slot),
                cancel_requested: false,
                adopted: false,
            },
        );
        Some((job, self.slots.get(slot).clone()))
    }

    /// Count a job found running after a restart: it takes a slot of its device if one is free
    /// (it runs anyway; the slot count only limits what we start).
    pub fn adopt(&mut self, job: Job, pid: u32) {
        let slot = self.free_slot(&job);
        if let Some(s) = slot {
            self.slots.occupy(s, job.gpu_mib);
        }
        let run = job.run.clone();
        let running = Running {
            job,
            pid: Some(pid),
            slot,
            cancel_requested: false,
            adopted: true,
        };
        self.running.insert(run, running);
    }

    /// Count a job that a scheduler holds (submitted, or found again after a restart).
    pub fn start_scheduled(&mut self, job: Job) {
        let run = job.run.clone();
        self.running.insert(
            run,
            Running {
                job,
                pid: None,
                slot: None,
                cancel_requested: false,
                adopted: false,
            },
        );
    }

    pub fn set_pid(&mut self, run: &RunId, pid: Option<u32>) {
        if let Some(r) = self.running.get_mut(run) {
            r.pid = pid;
        }
    }

    /// The run's job ended: free its slot.
    pub fn finish(&mut self, run: &RunId) -> Option<Running> {
        let r = self.running.remove(run)?;
        if let Some(s) = r.slot {
            self.slots.release(s, r.job.gpu_mib);
        }
        Some(r)
    }

    /// Remove waiting jobs of `run` that match `pred`; returns them.
    pub fn remove_waiting(&mut self, run: &RunId, pred: impl Fn(&JobKind) -> bool) -> Vec<Job> {
        let mut gone = Vec::new();
        let mut i = 0;
        while i < self.waiting.len() {
            let j = &self.waiting[i];
            if &j.run == run && pred(&j.kind) {
                gone.extend(self.remove_at(i));
            } else {
                i += 1;
            }
        }
        gone
    }

    pub fn running(&self, run: &RunId) -> Option<&Running> {
        self.running.get(run)
    }

    pub fn running_mut(&mut self, run: &RunId) -> Option<&mut Running> {
        self.running.get_mut(run)
    }

    pub fn waiting(&self) -> impl Iterator<Item = &Job> {
        self.waiting.iter()
    }

    pub fn running_all(&self) -> impl Iterator<Item = &Running> {
        self.running.values()
    }

    pub fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether the run trains (or waits to): evaluations and a second start are refused then.
    pub fn training(&self, run: &RunId) -> bool {
        let is_train = |k: &JobKind| !matches!(k, JobKind::Evaluate(_));
        self.running.get(run).is_some_and(|r| is_train(&r.job.kind))
            || self
                .waiting
                .iter()
                .any(|j| &j.run == run && is_train(&j.kind))
    }

    /// What a waiting job of `run` waits for, in words: its place in the queue and the device
    /// slot it needs (with the runs holding it), or its source run. `None` when none waits.
    pub fn wait_reason(&self, run: &RunId) -> Option<String> {
        let pos = self.waiting.iter().position(|j| &j.run == run)?;
        let job = &self.waiting[pos];
        let place = format!(
            "position {} of {} in the queue",
            pos + 1,
            self.waiting.len()
        );
        if job.needs_source {
            return Some(format!(
                "waiting for the run it starts from (train.init_from_run) to finish; {place}"
            ));
        }
        if let Some(other) = self.running.get(run) {
            return Some(format!(
                "waiting for its {} job to end; {place}",
                other.job.kind.label()
            ));
        }
        if self.free_slot(job).is_some() {
            return Some(format!("starting; {place}"));
        }
        let wanted = self.slots.wanted(job.device);
        let names: Vec<&str> = wanted
            .iter()
            .map(|&i| self.slots.get(i).name.as_str())
            .collect();
        let loads: Vec<String> = wanted
            .iter()
            .map(|&i| match wanted.len() {
                1 => self.slots.get(i).load(),
                _ => format!("{}: {}", self.slots.get(i).name, self.slots.get(i).load()),
            })
            .collect();
        let mut holders: Vec<&str> = self
            .running
            .values()
            .filter(|r| r.slot.is_some_and(|s| wanted.contains(&s)))
            .map(|r| r.job.run.as_str())
            .collect();
        holders.sort_unstable();
        let need = match job.gpu_mib {
            0 => String::new(),
            m if wanted
                .iter()
                .any(|&i| self.slots.get(i).memory_mib.is_some()) =>
            {
                format!(" with about {:.1} GiB free", m as f64 / 1024.0)
            }
            _ => String::new(),
        };
        Some(format!(
            "waiting for a free {} slot{need} ({}; busy with {}); {place}",
            names.join("/"),
            loads.join(", "),
            if holders.is_empty() {
                "other jobs".to_string()
            } else {
                holders.join(", ")
            }
        ))
    }

    /// Whether the run has any job waiting or running.
    pub fn active(&self, run: &RunId) -> bool {
        self.running.contains_key(run) || self.waiting.iter().any(|j| &j.run == run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fairtat_core::runs::eval_key::{EvalKey, EvalSuite};
    use fairtat_core::runs::CheckpointKind;

    fn job(run: &str, kind: JobKind, device: &str) -> Job {
        Job {
            run: run.parse().unwrap(),
            kind,
            device: device.parse().unwrap(),
            needs_source: false,
            gpu_mib: 0,
        }
    }

    fn eval() -> JobKind {
        JobKind::Evaluate(EvalKey {
            suite: EvalSuite::Quick,
            model: CheckpointKind::Last,
        })
    }

    #[test]
    fn a_waiting_job_says_what_it_waits_for() {
        let mut q = Queue::new(&Devices::simple(0, 1));
        q.push(job("a", JobKind::Train, "auto"));
        q.push(job("b", JobKind::Train, "auto"));
        let mut src = job("c", JobKind::Train, "auto");
        src.needs_source = true;
        q.push(src);
        assert_eq!(
            q.wait_reason(&"a".parse().unwrap()).unwrap(),
            "starting; position 1 of 3 in the queue"
        );
        q.take_next(&HashSet::new()).unwrap();
        let b = q.wait_reason(&"b".parse().unwrap()).unwrap();
        assert_eq!(
            b,
            "waiting for a free cpu slot (1 of 1 jobs; busy with a); position 1 of 2 in the queue"
        );
        let c = q.wait_reason(&"c".parse().unwrap()).unwrap();
        assert!(
            c.contains("train.init_from_run") && c.contains("position 2 of 2"),
            "{c}"
        );
        assert!(
            q.wait_reason(&"a".parse().unwrap()).is_none(),
            "a runs, it waits for nothing"
        );
    }

    #[test]
    fn one_pump_serves_every_kind_in_order_within_slots() {
        let mut q = Queue::new(&Devices::simple(0, 1));
        q.push(job("a", JobKind::Train, "auto"));
        q.push_with(job("b", eval(), "cpu"), Priority::Normal);
        let (first, slot) = q.take_next(&HashSet::new()).unwrap();
        assert_eq!(first.run.as_str(), "a");
        assert_eq!(slot.name, "cpu");
        assert!(
            q.take_next(&HashSet::new()).is_none(),
            "the one CPU slot is taken"
        );
        q.finish(&"a".parse().unwrap());
        assert_eq!(q.take_next(&HashSet::new()).unwrap().0.kind, eval());
    }

    fn order(q: &Queue) -> Vec<String> {
        q.waiting()
            .map(|j| format!("{}:{}", j.run, j.kind.label()))
            .collect()
    }

    #[test]
    fn evaluations_pass_queued_training_unless_queued_as_normal() {
        let mut q = Queue::new(&Devices::simple(0, 1));
        q.push(job("busy", JobKind::Train, "cpu"));
        q.take_next(&HashSet::new()).unwrap();
        q.push(job("t1", JobKind::Train, "cpu"));
        q.push(job("t2", JobKind::Resume, "cpu"));
        q.push(job("e1", eval(), "cpu"));
        q.push_with(job("e2", eval(), "cpu"), Priority::Normal);
        q.push(job("e3", eval(), "cpu"));
        assert_eq!(
            order(&q),
            [
                "e1:eval quick-last",
                "e3:eval quick-last",
                "t1:train",
                "t2:resume",
                "e2:eval quick-last"
            ]
        );
        // A removed urgent job keeps the others' places: a new one goes after e3, before t1.
        assert_eq!(q.remove_waiting(&"e1".parse().unwrap(), |_| true).len(), 1);
        q.push(job("e4", eval(), "cpu"));
        assert_eq!(
            order(&q)[..3],
            ["e3:eval quick-last", "e4:eval quick-last", "t1:train"]
        );
        q.finish(&"busy".parse().unwrap());
        let started = q.take_next(&HashSet::new()).unwrap().0;
        assert_eq!(started.run.as_str(), "e3", "the evaluation starts first");
        q.push(job("e5", eval(), "cpu"));
        assert_eq!(order(&q)[..2], ["e4:eval quick-last", "e5:eval quick-last"]);
        assert_eq!(Priority::parse("normal"), Some(Priority::Normal));
        assert_eq!(Priority::parse("later"), None);
    }

    #[test]
    fn a_run_runs_one_job_at_a_time_and_others_pass_it() {
        let mut q = Queue::new(&Devices::simple(0, 2));
        q.push(job("a", eval(), "cpu"));
        q.push(job(
            "a",
            JobKind::Evaluate(EvalKey {
                suite: EvalSuite::Standard,
                model: CheckpointKind::Last,
            }),
            "cpu",
        ));
        q.push(job("b", JobKind::Train, "cpu"));
        assert_eq!(q.take_next(&HashSet::new()).unwrap().0.run.as_str(), "a");
        // The second evaluation of `a` waits for the first; `b` goes ahead.
        assert_eq!(q.take_next(&HashSet::new()).unwrap().0.run.as_str(), "b");
        assert!(q.take_next(&HashSet::new()).is_none());
        assert_eq!(q.waiting_len(), 1);
    }

    #[test]
    fn devices_map_to_their_slots_and_adopted_jobs_count() {
        let mut q = Queue::new(&Devices::simple(2, 1));
        q.adopt(job("x", JobKind::Train, "cuda:1"), 42);
        q.push(job("a", JobKind::Train, "cuda:1"));
        q.push(job("b", JobKind::Train, "auto"));
        let (j, s) = q.take_next(&HashSet::new()).unwrap();
        assert_eq!((j.run.as_str(), s.name.as_str()), ("b", "cuda:0"));
        assert!(
            q.take_next(&HashSet::new()).is_none(),
            "cuda:1 is held by the adopted job"
        );
        assert!(q.training(&"a".parse().unwrap()));
        q.finish(&"x".parse().unwrap());
        assert_eq!(q.take_next(&HashSet::new()).unwrap().1.name, "cuda:1");
    }
}

#[cfg(test)]
mod blocked_tests {
    use super::*;
    use fairtat_core::config::DeviceSpec;

    #[test]
    fn a_blocked_run_lets_later_jobs_pass() {
        let mut q = Queue::new(&Devices::simple(0, 1));
        let job = |run: &str| Job {
            run: run.parse().unwrap(),
            kind: JobKind::Train,
            device: DeviceSpec::Cpu,
            needs_source: run == "frl",
            gpu_mib: 0,
        };
        q.push(job("frl"));
        q.push(job("trades"));
        let blocked: HashSet<RunId> = ["frl".parse().unwrap()].into();
        assert_eq!(q.take_next(&blocked).unwrap().0.run.as_str(), "trades");
        q.finish(&"trades".parse().unwrap());
        assert_eq!(q.take_next(&HashSet::new()).unwrap().0.run.as_str(), "frl");
    }
}
