//! How many CPU threads libtorch gets, in the trainer and in `fairtat eval`: the CPUs this
//! process was given, not the host's. A Slurm job with `--cpus-per-task=4` on a 64-core node
//! would otherwise start 64 intra-op threads on its 4 CPUs (issue 21), and a process pinned
//! with `taskset` or a cgroup likewise. Data loading runs in the training thread, so libtorch's
//! intra-op and inter-op pools are the only thread pools to size.

use std::sync::Once;

/// The thread count: `configured` (`train.threads`) when above 0, else Slurm's
/// `SLURM_CPUS_PER_TASK` when it is a positive number, else `affinity` (the CPUs the process
/// may run on); at least 1.
pub fn pool_size(configured: usize, slurm_cpus_per_task: Option<&str>, affinity: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    slurm_cpus_per_task
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(affinity)
        .max(1)
}

/// The CPUs this process may run on: its affinity mask (`sched_getaffinity`), lowered by a
/// cgroup CPU quota, as the standard library reads them.
pub fn affinity() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

static CONFIGURED: Once = Once::new();

/// Size libtorch's pools once per process, before its first parallel work (libtorch refuses a
/// second inter-op setting); returns the intra-op count in effect.
pub fn configure(configured: usize) -> usize {
    CONFIGURED.call_once(|| {
        let slurm = std::env::var("SLURM_CPUS_PER_TASK").ok();
        let n = pool_size(configured, slurm.as_deref(), affinity());
        let n = i32::try_from(n).unwrap_or(i32::MAX);
        tch::set_num_threads(n);
        // A refusal (parallel work already ran) keeps libtorch's own inter-op size.
        let _ = std::panic::catch_unwind(|| tch::set_num_interop_threads(n));
    });
    tch::get_num_threads().max(1) as usize
}

#[cfg(test)]
mod tests {
    use super::pool_size;

    #[test]
    fn the_setting_then_slurm_then_the_affinity() {
        for (configured, slurm, affinity, want) in [
            (3, Some("8"), 16, 3),
            (0, Some("8"), 16, 8),
            (0, Some(" 2\n"), 16, 2),
            (0, None, 16, 16),
            (0, Some(""), 6, 6),
            (0, Some("0"), 6, 6),
            (0, Some("lots"), 6, 6),
            (0, Some("-4"), 6, 6),
            (0, None, 0, 1),
        ] {
            assert_eq!(
                pool_size(configured, slurm, affinity),
                want,
                "{configured} {slurm:?} {affinity}"
            );
        }
    }
}
