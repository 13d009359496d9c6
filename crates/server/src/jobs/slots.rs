//! Device slots and placement: which device a job may start on now. A GPU holds up to
//! `--runs-per-gpu` jobs, or by default as many as their memory estimates fit
//! (`fairtat_core::config::gpu_memory`, at most [`AUTO_MAX_PER_GPU`]); the CPU holds
//! `--max-cpu-runs`. Pure bookkeeping: no I/O.

use fairtat_core::config::DeviceSpec;

/// Jobs per GPU when `--runs-per-gpu` is not given and the GPU's memory is known: the memory
/// estimates decide below this; beyond it, runs mostly wait for each other's kernels.
pub const AUTO_MAX_PER_GPU: usize = 8;
/// Share of a GPU's memory the estimates may fill (the driver and other processes hold some).
const FILL: f64 = 0.9;

/// What this machine offers to jobs.
#[derive(Clone, Debug, Default)]
pub struct Devices {
    /// Total memory of each GPU in MiB (`None`: not reported), in `CUDA_VISIBLE_DEVICES` order.
    pub gpus: Vec<Option<u64>>,
    /// `--runs-per-gpu`: a fixed number of jobs per GPU; `None` packs by memory estimate.
    pub runs_per_gpu: Option<usize>,
    /// `--max-cpu-runs`.
    pub cpu_jobs: usize,
}

impl Devices {
    /// `gpus` GPUs of unknown memory, one job each, and `cpu_jobs` on the CPU.
    pub fn simple(gpus: usize, cpu_jobs: usize) -> Devices {
        Devices {
            gpus: vec![None; gpus],
            runs_per_gpu: Some(1),
            cpu_jobs,
        }
    }
}

/// Where jobs execute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// `cpu` or `cuda:N`.
    pub name: String,
    /// GPU index passed as `CUDA_VISIBLE_DEVICES`.
    pub cuda: Option<usize>,
    /// Jobs it may hold at once.
    pub capacity: usize,
    pub running: usize,
    /// The GPU's memory when packing by estimate (`None`: count jobs only).
    pub memory_mib: Option<u64>,
    /// The estimates of the jobs it holds.
    pub reserved_mib: u64,
}

impl Slot {
    fn gpu(index: usize, memory: Option<u64>, runs_per_gpu: Option<usize>) -> Slot {
        let (capacity, memory_mib) = match (runs_per_gpu, memory) {
            (Some(n), _) => (n.max(1), None),
            (None, Some(m)) => (AUTO_MAX_PER_GPU, Some(m)),
            // Memory unknown and no number given: one job per GPU, as before packing existed.
            (None, None) => (1, None),
        };
        Slot {
            name: format!("cuda:{index}"),
            cuda: Some(index),
            capacity,
            running: 0,
            memory_mib,
            reserved_mib: 0,
        }
    }

    fn cpu(jobs: usize) -> Slot {
        Slot {
            name: "cpu".into(),
            cuda: None,
            capacity: jobs.max(1),
            running: 0,
            memory_mib: None,
            reserved_mib: 0,
        }
    }

    /// Whether a job with this estimate may start here now. A job alone on its GPU always may
    /// (it fails by itself if it truly does not fit, as it would without packing).
    pub fn fits(&self, need_mib: u64) -> bool {
        let by_memory = |m: u64| self.reserved_mib + need_mib <= (m as f64 * FILL) as u64;
        self.running < self.capacity && (self.running == 0 || self.memory_mib.is_none_or(by_memory))
    }

    /// "3 of at most 8 jobs, about 12.4 of 79.6 GiB estimated" (or "1 of 1 jobs").
    pub fn load(&self) -> String {
        let gib = |m: u64| m as f64 / 1024.0;
        match self.memory_mib {
            Some(m) => format!(
                "{} of at most {} jobs, about {:.1} of {:.1} GiB estimated",
                self.running,
                self.capacity,
                gib(self.reserved_mib),
                gib(m)
            ),
            None => format!("{} of {} jobs", self.running, self.capacity),
        }
    }

    /// "cuda:0 (3 of at most 8 jobs, about 12.4 of 79.6 GiB estimated)" for the runs list.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.name, self.load())
    }
}

/// Every slot: the GPUs in order, then the CPU.
#[derive(Debug)]
pub struct Slots {
    slots: Vec<Slot>,
    gpus: usize,
}

impl Slots {
    pub fn new(d: &Devices) -> Slots {
        let mut slots: Vec<Slot> = d
            .gpus
            .iter()
            .enumerate()
            .map(|(i, m)| Slot::gpu(i, *m, d.runs_per_gpu))
            .collect();
        slots.push(Slot::cpu(d.cpu_jobs));
        Slots {
            slots,
            gpus: d.gpus.len(),
        }
    }

    pub fn gpus(&self) -> usize {
        self.gpus
    }

    pub fn all(&self) -> &[Slot] {
        &self.slots
    }

    pub fn get(&self, i: usize) -> &Slot {
        &self.slots[i]
    }

    pub fn cpu(&self) -> usize {
        self.slots.len() - 1
    }

    pub fn cpu_mut(&mut self) -> &mut Slot {
        self.slots.last_mut().expect("the CPU slot always exists")
    }

    /// The slots a job configured with `device` (`auto`, `cpu`, `cuda:N`) may use: `auto`
    /// takes any GPU, the CPU only when there is none.
    pub fn wanted(&self, device: DeviceSpec) -> Vec<usize> {
        match device {
            DeviceSpec::Cpu => vec![self.cpu()],
            DeviceSpec::Cuda(n) => self
                .slots
                .iter()
                .position(|s| s.cuda == Some(n))
                .into_iter()
                .collect(),
            DeviceSpec::Auto if self.gpus > 0 => (0..self.gpus).collect(),
            DeviceSpec::Auto => vec![self.cpu()],
        }
    }

    /// A slot the job may start on now: among the wanted ones, the one with the least memory
    /// reserved (then the fewest jobs), so packed runs spread over the GPUs.
    pub fn free(&self, device: DeviceSpec, need_mib: u64) -> Option<usize> {
        self.wanted(device)
            .into_iter()
            .filter(|&i| self.slots[i].fits(need_mib))
            .min_by_key(|&i| (self.slots[i].reserved_mib, self.slots[i].running, i))
    }

    pub fn occupy(&mut self, i: usize, need_mib: u64) {
        let s = &mut self.slots[i];
        s.running += 1;
        if s.cuda.is_some() {
            s.reserved_mib += need_mib;
        }
    }

    pub fn release(&mut self, i: usize, need_mib: u64) {
        let s = &mut self.slots[i];
        s.running = s.running.saturating_sub(1);
        if s.cuda.is_some() {
            s.reserved_mib = s.reserved_mib.saturating_sub(need_mib);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(gpus: Vec<Option<u64>>) -> Slots {
        Slots::new(&Devices {
            gpus,
            runs_per_gpu: None,
            cpu_jobs: 1,
        })
    }

    #[test]
    fn gpus_pack_by_estimate_up_to_the_cap_and_spread() {
        // An 80 GiB card takes 16 GiB jobs until 90% would be exceeded: 4 of them.
        let mut s = packed(vec![Some(81_920), Some(81_920)]);
        let mut placed = vec![];
        while let Some(i) = s.free(DeviceSpec::Cuda(0), 16_384) {
            s.occupy(i, 16_384);
            placed.push(i);
        }
        assert_eq!(placed, [0, 0, 0, 0]);
        assert!(
            s.get(0).describe().contains("4 of at most 8 jobs"),
            "{}",
            s.get(0).describe()
        );
        // `auto` spreads: the emptier GPU first.
        assert_eq!(s.free(DeviceSpec::Auto, 1_000), Some(1));
        // Small jobs stop at the cap, not at memory.
        let mut s = packed(vec![Some(81_920)]);
        for _ in 0..AUTO_MAX_PER_GPU {
            let i = s.free(DeviceSpec::Auto, 900).unwrap();
            s.occupy(i, 900);
        }
        assert_eq!(s.free(DeviceSpec::Auto, 900), None);
        s.release(0, 900);
        assert_eq!(s.free(DeviceSpec::Auto, 900), Some(0));
    }

    #[test]
    fn a_job_too_large_for_any_share_still_gets_an_empty_gpu() {
        let mut s = packed(vec![Some(8_192)]);
        assert_eq!(
            s.free(DeviceSpec::Auto, 20_000),
            Some(0),
            "alone it may try"
        );
        s.occupy(0, 20_000);
        assert_eq!(s.free(DeviceSpec::Auto, 100), None);
    }

    #[test]
    fn a_fixed_number_per_gpu_ignores_estimates_and_unknown_memory_means_one() {
        let mut s = Slots::new(&Devices {
            gpus: vec![Some(8_192)],
            runs_per_gpu: Some(3),
            cpu_jobs: 2,
        });
        for _ in 0..3 {
            let i = s.free(DeviceSpec::Auto, 6_000).unwrap();
            s.occupy(i, 6_000);
        }
        assert_eq!(s.free(DeviceSpec::Auto, 6_000), None);
        assert_eq!(
            s.free(DeviceSpec::Cpu, 6_000),
            Some(1),
            "the CPU counts jobs only"
        );
        let s = packed(vec![None]);
        assert_eq!(s.get(0).capacity, 1);
    }
}
