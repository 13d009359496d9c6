//! Job arrays found again without their runs' id files. Before a grid's `sbatch`, the array's
//! index-to-run map is written durably to `<runs>/.slurm/grid-<first run>.map`; the base job id
//! is added once `sbatch` has answered. Every task of the array carries the comment
//! `fairtat-array:<first run>`, which names its map. A restarted server maps array tasks back to
//! runs through it: by the map's `job=` line, or, when the server stopped between `sbatch` and
//! writing that line, by the comment `squeue` shows. So a run whose `slurm/train.job` is missing
//! is followed again, never submitted twice (issue 21).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::slurm::{JobId, Snapshot};
use fairtat_core::runs::RunId;

/// The comment of every task of an array: this prefix, then the key of its map.
pub const COMMENT_PREFIX: &str = "fairtat-array:";

/// Which run each task of one job array trains.
#[derive(Clone, Debug, PartialEq)]
pub struct ArrayMap {
    /// The first run's id: names the map, the script and the comment.
    pub key: String,
    /// The base job id (`123` of tasks `123_0`, `123_1`, ...), once `sbatch` has answered.
    pub job: Option<JobId>,
    /// Task `i` trains `runs[i]`.
    pub runs: Vec<RunId>,
}

impl ArrayMap {
    pub fn comment(&self) -> String {
        format!("{COMMENT_PREFIX}{}", self.key)
    }

    fn text(&self) -> String {
        let mut s = format!(
            "# fairtat job array grid-{}.sh: task index -> run id\n",
            self.key
        );
        if let Some(job) = &self.job {
            s.push_str(&format!("job={job}\n"));
        }
        for (i, run) in self.runs.iter().enumerate() {
            s.push_str(&format!("{i} {run}\n"));
        }
        s
    }

    /// The task of `runs[i]` under base job `base`.
    fn tasks(&self, base: &str) -> impl Iterator<Item = (RunId, JobId)> + '_ {
        let base = base.to_string();
        self.runs
            .iter()
            .enumerate()
            .map(move |(i, r)| (r.clone(), format!("{base}_{i}")))
    }
}

pub fn map_path(folder: &Path, key: &str) -> PathBuf {
    folder.join(format!("grid-{key}.map"))
}

/// Write the map atomically and durably (file and folder synced): it must outlive a crash
/// right after the `sbatch` it precedes.
pub fn write_map(folder: &Path, map: &ArrayMap) -> std::io::Result<()> {
    std::fs::create_dir_all(folder)?;
    let path = map_path(folder, &map.key);
    let tmp = path.with_extension("map.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(map.text().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(folder)?.sync_all()
}

/// A map read back; `None` for a file that is not one (a run line naming no valid run).
pub fn parse_map(key: &str, text: &str) -> Option<ArrayMap> {
    let mut map = ArrayMap {
        key: key.to_string(),
        job: None,
        runs: Vec::new(),
    };
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(job) = line.strip_prefix("job=") {
            map.job = Some(job.trim().to_string()).filter(|j| !j.is_empty());
            continue;
        }
        let (i, run) = line.split_once(' ')?;
        // Lines are written in index order; anything else is not a map of ours.
        if i.parse::<usize>().ok()? != map.runs.len() {
            return None;
        }
        map.runs.push(run.trim().parse().ok()?);
    }
    Some(map)
}

/// Every map in `folder` (the runs folder's `.slurm`).
pub fn read_maps(folder: &Path) -> Vec<ArrayMap> {
    let Ok(rd) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let key = name
                .strip_prefix("grid-")?
                .strip_suffix(".map")?
                .to_string();
            parse_map(&key, &std::fs::read_to_string(e.path()).ok()?)
        })
        .collect()
}

/// The array task of each run in `maps`: from the map's job id, or, for a map whose id was
/// never written, from the task that `squeue` lists with the map's comment.
pub fn tasks_by_run(maps: &[ArrayMap], snap: Option<&Snapshot>) -> HashMap<RunId, JobId> {
    let mut out = HashMap::new();
    for map in maps {
        let base = map.job.clone().or_else(|| {
            let comment = map.comment();
            snap?
                .iter()
                .find(|(_, (_, c))| *c == comment)
                .map(|(id, _)| id.split('_').next().unwrap_or(id).to_string())
        });
        if let Some(base) = base {
            out.extend(map.tasks(&base));
        }
    }
    out
}

/// `(task index, map key)` of an array task as its run's history names it (`submitted train
/// job 57_1 (task 1 of array grid-r0)`): the last such submission.
pub fn task_in_history(history: &str) -> Option<(usize, String)> {
    history.lines().rev().find_map(|l| {
        let rest = l.split_once("(task ")?.1;
        let (i, rest) = rest.split_once(" of array grid-")?;
        Some((i.parse().ok()?, rest.strip_suffix(')')?.to_string()))
    })
}

/// The history note of task `i` of the array `key`, as [`task_in_history`] reads it.
pub fn task_note(i: usize, key: &str) -> String {
    format!("(task {i} of array grid-{key})")
}

/// Delete the maps in `folder` whose tasks are all over: each of its runs is in a final state
/// (`ended`) and none has one of the array's tasks as its live job (`live_job`: the id in its
/// `slurm/train.job`). A map without its job id is kept: only `squeue` could say. The arrays'
/// scripts and outputs stay, for the run pages. Returns the keys deleted.
pub fn forget_ended(
    folder: &Path,
    ended: impl Fn(&RunId) -> bool,
    live_job: impl Fn(&RunId) -> Option<JobId>,
) -> Vec<String> {
    let mut gone = Vec::new();
    for map in read_maps(folder) {
        let Some(base) = &map.job else { continue };
        let prefix = format!("{base}_");
        let live = |r: &RunId| live_job(r).is_some_and(|j| j.starts_with(&prefix));
        if map.runs.iter().all(|r| ended(r) && !live(r))
            && std::fs::remove_file(map_path(folder, &map.key)).is_ok()
        {
            gone.push(map.key);
        }
    }
    gone
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slurm::JobState;

    fn map(job: Option<&str>) -> ArrayMap {
        ArrayMap {
            key: "r0".into(),
            job: job.map(str::to_string),
            runs: ["r0", "r1", "r2"]
                .iter()
                .map(|r| r.parse().unwrap())
                .collect(),
        }
    }

    #[test]
    fn a_map_survives_a_write_and_read() {
        let tmp = tempfile::tempdir().unwrap();
        write_map(tmp.path(), &map(None)).unwrap();
        assert_eq!(read_maps(tmp.path()), vec![map(None)]);
        write_map(tmp.path(), &map(Some("41"))).unwrap();
        assert_eq!(read_maps(tmp.path()), vec![map(Some("41"))]);
        // Scripts and logs beside the maps are not maps.
        std::fs::write(tmp.path().join("grid-r0.sh"), "#!/bin/bash\n").unwrap();
        assert_eq!(read_maps(tmp.path()).len(), 1);
        assert!(
            parse_map("x", "0 a\n2 b\n").is_none(),
            "a gap in the indices"
        );
        assert!(parse_map("x", "0 ../a\n").is_none(), "not a run id");
    }

    #[test]
    fn a_map_goes_once_every_task_is_over() {
        let tmp = tempfile::tempdir().unwrap();
        write_map(tmp.path(), &map(Some("41"))).unwrap();
        let unsent = ArrayMap {
            key: "q0".into(),
            ..map(None)
        };
        write_map(tmp.path(), &unsent).unwrap();
        let r2: RunId = "r2".parse().unwrap();
        // r2 still runs its task (its job file names it), or is not in a final state.
        let live = |r: &RunId| (*r == r2).then(|| "41_2".to_string());
        assert!(forget_ended(tmp.path(), |_| true, live).is_empty());
        assert!(forget_ended(tmp.path(), |r| *r != r2, |_| None).is_empty());
        // A later single job of r2 (a resume) does not hold the array's map.
        let resumed = |r: &RunId| (*r == r2).then(|| "77".to_string());
        assert_eq!(forget_ended(tmp.path(), |_| true, resumed), ["r0"]);
        assert!(!map_path(tmp.path(), "r0").exists());
        // The map whose job id was never written stays.
        assert_eq!(read_maps(tmp.path()), vec![unsent]);
    }

    #[test]
    fn the_task_of_a_run_is_read_from_its_history() {
        let h = format!(
            "1 submitted train job 57_1 {}\n2 ended: Slurm job 57_1 completed\n",
            task_note(1, "r0")
        );
        assert_eq!(task_in_history(&h), Some((1, "r0".to_string())));
        assert_eq!(task_in_history("1 submitted train job 58\n"), None);
    }

    #[test]
    fn tasks_come_from_the_job_line_or_from_squeues_comment() {
        let by_job = tasks_by_run(&[map(Some("41"))], None);
        assert_eq!(by_job[&"r2".parse::<RunId>().unwrap()], "41_2");
        // The server stopped between sbatch and the job line: squeue's comment names the map.
        let mut snap = Snapshot::new();
        let pending = JobState::Pending {
            reason: "Priority".into(),
        };
        snap.insert("7".into(), (pending.clone(), "fairtat:other".into()));
        snap.insert("57_1".into(), (pending, "fairtat-array:r0".into()));
        let by_comment = tasks_by_run(&[map(None)], Some(&snap));
        assert_eq!(by_comment.len(), 3);
        assert_eq!(by_comment[&"r0".parse::<RunId>().unwrap()], "57_0");
        // Neither: the array was never submitted, nothing maps.
        assert!(tasks_by_run(&[map(None)], None).is_empty());
    }
}
