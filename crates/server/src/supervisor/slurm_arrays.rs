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
