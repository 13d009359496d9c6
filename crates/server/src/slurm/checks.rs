//! The checks before a submission, each with a short time limit so a request never waits long
//! on a controller that does not answer: the job's time against its partition's `MaxTime`
//! (`scontrol -o show partition`; a job over it would pend for ever), its QoS against the
//! cluster's (`sacctmgr -nP show qos`, skipped without accounting), then `sbatch --test-only`
//! with the job's options (partition, account, gres, ...). Slurm's pending reasons
//! `PartitionTimeLimit` and `InvalidQOS` are what these checks turn into an answer at submit.

use std::time::Duration;

use fairtat_core::config::{format_minutes, time_minutes, SlurmKey};

use super::cli::run_for;
use super::{Resources, SlurmError, SlurmOptions};

/// How long a check may take before the controller counts as unreachable.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a submission is refused before anything is created.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The controller (or the client commands) did not answer: try again later.
    #[error("Slurm is unreachable: {0}")]
    Unreachable(String),
    /// A value of the run's resources that the cluster does not allow.
    #[error("{key}: {message}")]
    Key { key: &'static str, message: String },
    /// Slurm's own refusal (`sbatch --test-only`).
    #[error("cannot submit to Slurm: {0}")]
    Refused(String),
}

/// The words of Slurm's clients when they cannot reach the controller.
const UNREACHABLE: [&str; 4] = [
    "Unable to contact slurm controller",
    "Socket timed out",
    "Connection refused",
    "Zero Bytes were transmitted",
];

fn classify(err: SlurmError) -> CheckError {
    match &err {
        SlurmError::Timeout { .. } | SlurmError::Missing(_) => {
            CheckError::Unreachable(err.to_string())
        }
        SlurmError::Refused(m) if UNREACHABLE.iter().any(|w| m.contains(w)) => {
            CheckError::Unreachable(m.clone())
        }
        _ => CheckError::Refused(err.to_string()),
    }
}

/// A partition as `scontrol -o show partition` prints it.
#[derive(Clone, Debug, PartialEq)]
pub struct Partition {
    pub name: String,
    pub default: bool,
    /// `MaxTime` in minutes; `u64::MAX` for `UNLIMITED`.
    pub max_minutes: u64,
}

/// One partition per line of `Key=Value` words.
pub fn parse_partitions(out: &str) -> Vec<Partition> {
    out.lines()
        .filter_map(|line| {
            let field = |k: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(k)?.strip_prefix('='))
            };
            Some(Partition {
                name: field("PartitionName")?.to_string(),
                default: field("Default") == Some("YES"),
                max_minutes: field("MaxTime").and_then(time_minutes).unwrap_or(u64::MAX),
            })
        })
        .collect()
}

fn partitions() -> Result<Vec<Partition>, SlurmError> {
    let args = ["-o".to_string(), "show".into(), "partition".into()];
    Ok(parse_partitions(&run_for(
        "scontrol",
        &args,
        CHECK_TIMEOUT,
    )?))
}

/// The job's time within its partition's `MaxTime` (an unknown partition is left to
/// `sbatch`, whose message names it).
fn check_time(parts: &[Partition], r: &Resources) -> Result<(), CheckError> {
    let Some(t) = time_minutes(&r.time) else {
        return Ok(());
    };
    let part = match r.partition.is_empty() {
        true => parts.iter().find(|p| p.default),
        false => parts.iter().find(|p| p.name == r.partition),
    };
    match part {
        Some(p) if t > p.max_minutes => Err(CheckError::Key {
            key: SlurmKey::time.field().key,
            message: format!(
                "{} is over partition {}'s MaxTime of {}: the job would pend for ever; ask \
                 at most {}",
                r.time,
                p.name,
                format_minutes(p.max_minutes),
                format_minutes(p.max_minutes)
            ),
        }),
        _ => Ok(()),
    }
}

/// The cluster's QoS names, `None` where it has no accounting (or `sacctmgr` cannot say).
fn qos_names() -> Option<Vec<String>> {
    let args = [
        "-nP".to_string(),
        "show".into(),
        "qos".into(),
        "format=name".into(),
    ];
    match run_for("sacctmgr", &args, CHECK_TIMEOUT) {
        Ok(out) => Some(out.lines().map(|l| l.trim().to_string()).collect()),
        Err(err) => {
            tracing::debug!(cause = %err, "no QoS list from sacctmgr; QoS not checked");
            None
        }
    }
}

fn check_qos(known: Option<&[String]>, r: &Resources) -> Result<(), CheckError> {
    let Some(known) = known.filter(|k| !k.is_empty()) else {
        return Ok(());
    };
    if r.qos.is_empty() || known.iter().any(|q| q.eq_ignore_ascii_case(&r.qos)) {
        return Ok(());
    }
    Err(CheckError::Key {
        key: SlurmKey::qos.field().key,
        message: format!(
            "{:?} is not a QoS of this cluster; allowed: {}",
            r.qos,
            known.join(", ")
        ),
    })
}

/// At start-up: the server's default partition exists and, where the cluster keeps accounts,
/// so does its account; a typo would otherwise show only when the first run is submitted.
/// Without `scontrol` or accounting the check is left to `sbatch` at submit.
pub fn check_site(opts: &SlurmOptions) -> Result<(), CheckError> {
    if !opts.partition.is_empty() {
        let parts = match partitions() {
            Ok(p) => p,
            Err(SlurmError::Missing(_)) => return Ok(()),
            Err(e) => return Err(classify(e)),
        };
        if !parts.iter().any(|p| p.name == opts.partition) {
            let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
            return Err(CheckError::Key {
                key: "--slurm-partition",
                message: format!(
                    "{:?} is not a partition of this cluster; allowed: {}",
                    opts.partition,
                    names.join(", ")
                ),
            });
        }
    }
    if opts.account.is_empty() {
        return Ok(());
    }
    let args = ["-nP", "show", "account", &opts.account, "format=account"].map(String::from);
    match run_for("sacctmgr", &args, CHECK_TIMEOUT) {
        Ok(out)
            if !out
                .lines()
                .any(|l| l.trim().eq_ignore_ascii_case(&opts.account)) =>
        {
            Err(CheckError::Key {
                key: "--slurm-account",
                message: format!(
                    "{:?} is not an account of this cluster (sacctmgr show account)",
                    opts.account
                ),
            })
        }
        _ => Ok(()),
    }
}

/// Every check for jobs with these resources (each distinct set once); the first refusal.
pub fn check(opts: &SlurmOptions, all: &[Resources]) -> Result<(), CheckError> {
    let mut distinct: Vec<&Resources> = Vec::new();
    for r in all {
        if !distinct.contains(&r) {
            distinct.push(r);
        }
    }
    let parts = match partitions() {
        Ok(p) => p,
        // Without `scontrol` the limit is not known here; `sbatch` still checks the rest.
        Err(SlurmError::Missing(_)) => Vec::new(),
        Err(e) => return Err(classify(e)),
    };
    let qos = match distinct.iter().any(|r| !r.qos.is_empty()) {
        true => qos_names(),
        false => None,
    };
    for r in &distinct {
        check_time(&parts, r)?;
        check_qos(qos.as_deref(), r)?;
    }
    for r in distinct {
        let mut a = vec!["--test-only".to_string()];
        a.extend(opts.sbatch_args(r));
        a.extend(["--job-name=fairtat-check".into(), "--wrap=true".into()]);
        run_for("sbatch", &a, CHECK_TIMEOUT).map_err(classify)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCONTROL: &str = "PartitionName=debug AllowGroups=ALL Default=YES MaxTime=UNLIMITED \
                            State=UP\nPartitionName=short Default=NO MaxTime=00:10:00 State=UP\n\
                            PartitionName=long MaxTime=2-00:00:00\n";

    #[test]
    fn partitions_and_their_max_times() {
        let p = parse_partitions(SCONTROL);
        assert_eq!(p.len(), 3);
        assert!(p[0].default && !p[1].default);
        assert_eq!(
            [p[0].max_minutes, p[1].max_minutes, p[2].max_minutes],
            [u64::MAX, 10, 2880]
        );
    }

    #[test]
    fn a_time_over_the_partitions_limit_names_the_key_and_the_limit() {
        let p = parse_partitions(SCONTROL);
        let r = |partition: &str, time: &str| Resources {
            partition: partition.into(),
            time: time.into(),
            ..Resources::default()
        };
        assert!(check_time(&p, &r("", "1-0")).is_ok(), "debug is unlimited");
        assert!(check_time(&p, &r("short", "10")).is_ok());
        assert!(check_time(&p, &r("nope", "99")).is_ok(), "left to sbatch");
        let e = check_time(&p, &r("short", "0:11:00"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("slurm.time: 0:11:00 is over partition short's MaxTime of 0:10:00"),
            "{e}"
        );
    }

    #[test]
    fn qos_is_checked_only_against_a_known_list() {
        let r = Resources {
            qos: "gold".into(),
            ..Resources::default()
        };
        assert!(check_qos(None, &r).is_ok(), "no accounting: not checked");
        let known = vec!["normal".to_string(), "Gold".to_string()];
        assert!(check_qos(Some(&known), &r).is_ok());
        let bad = Resources {
            qos: "platinum".into(),
            ..r
        };
        let e = check_qos(Some(&known), &bad).unwrap_err().to_string();
        assert!(
            e.contains("slurm.qos") && e.contains("allowed: normal, Gold"),
            "{e}"
        );
    }

    #[test]
    fn an_unreachable_controller_is_told_apart_from_a_refusal() {
        let down = SlurmError::Refused(
            "Batch job submission failed: Unable to contact slurm controller (connect failure)"
                .into(),
        );
        assert!(matches!(classify(down), CheckError::Unreachable(_)));
        let slow = SlurmError::Timeout {
            command: "sbatch",
            secs: 5.0,
        };
        assert!(matches!(classify(slow), CheckError::Unreachable(_)));
        let no = SlurmError::Refused("Invalid partition name specified".into());
        assert!(matches!(classify(no), CheckError::Refused(_)));
    }

    #[test]
    fn a_command_that_hangs_is_given_up_within_its_limit() {
        let t = std::time::Instant::now();
        let e = run_for("sleep", &["10".into()], Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, SlurmError::Timeout { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }
}
