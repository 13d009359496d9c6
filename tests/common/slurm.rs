//! A one-node Slurm cluster of the test's own, in a temporary directory: a generated munge key
//! and `slurm.conf` (this host's real name and CPU count, `proctrack/linuxproc`, no cgroups,
//! no accounting; partition `debug`, the default, and `short` with a 10-minute MaxTime; one
//! pretend GPU, an empty file as its device, cut into 8 `shard`s by gres.conf, so jobs that ask
//! shards are scheduled as on a cluster that shares GPUs),
//! `munged`, `slurmctld -D` and `slurmd -D` as child processes. Dropping the cluster cancels
//! its jobs and stops the daemons, also when the test panics.
//!
//! `Cluster::start` returns `Err(why)` only where the daemons cannot run (Slurm not
//! installed); with `FAIRTAT_REQUIRE_SLURM=1` (set by `make test`) that is a failure instead.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use fairtat::server::slurm::SlurmOptions;
use fairtat::server::{AppState, ServeOptions};

const DAEMONS: [&str; 3] = [
    "/usr/sbin/munged",
    "/usr/sbin/slurmctld",
    "/usr/sbin/slurmd",
];

/// Shards of the cluster's one pretend GPU.
pub const SHARDS: u64 = 8;

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub conf: PathBuf,
    children: Vec<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn output(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The cluster, or the reason it cannot start here (a skip, unless `make test` requires it).
pub fn cluster_or_skip(test: &str) -> Option<Cluster> {
    match Cluster::start() {
        Ok(c) => Some(c),
        Err(why) if std::env::var_os("FAIRTAT_REQUIRE_SLURM").is_none() => {
            eprintln!("SKIPPED {test}: no Slurm test cluster: {why}");
            None
        }
        Err(why) => panic!("{test}: the Slurm test cluster does not start: {why}"),
    }
}

impl Cluster {
    pub fn start() -> Result<Cluster, String> {
        for d in DAEMONS {
            if !Path::new(d).exists() {
                return Err(format!(
                    "{d} is missing (install Debian's slurm-wlm and munge; `make test` does)"
                ));
            }
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let p = |s: &str| dir.path().join(s);
        for sub in ["state", "spool", "log", "munge"] {
            std::fs::create_dir_all(p(sub)).map_err(|e| e.to_string())?;
        }
        write_key(&p("munge/key"))?;
        let host = output("hostname", &["-s"]);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let user = output("id", &["-un"]);
        let conf = p("slurm.conf");
        let text = format!(
            "ClusterName=fairtat-test\nSlurmctldHost={host}(127.0.0.1)\nSlurmctldPort={cp}\n\
             SlurmdPort={dp}\nAuthType=auth/munge\nAuthInfo=socket={sock}\nCredType=cred/munge\n\
             SlurmUser={user}\nSlurmdUser={user}\nStateSaveLocation={state}\n\
             SlurmdSpoolDir={spool}\nSlurmctldPidFile={d}/ctld.pid\nSlurmdPidFile={d}/d.pid\n\
             SlurmctldLogFile={d}/log/ctld.log\nSlurmdLogFile={d}/log/d.log\n\
             ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nSelectType=select/cons_tres\n\
             SelectTypeParameters=CR_CPU\nSchedulerType=sched/backfill\n\
             JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n\
             MpiDefault=none\nReturnToService=2\nMinJobAge=600\nKillWait=10\nInactiveLimit=0\n\
             GresTypes=gpu,shard\n\
             NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 Gres=gpu:1,shard:{SHARDS} \
             State=UNKNOWN\n\
             PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n\
             PartitionName=short Nodes=ALL MaxTime=10 State=UP\n",
            cp = free_port(),
            dp = free_port(),
            sock = p("munge/sock").display(),
            state = p("state").display(),
            spool = p("spool").display(),
            d = dir.path().display(),
        );
        std::fs::write(&conf, text).map_err(|e| e.to_string())?;
        // Slurm wants a device file per GPU; it never opens it for a job that asks shards.
        let gpu = p("gpu0");
        std::fs::write(&gpu, "").map_err(|e| e.to_string())?;
        let gres = format!(
            "Name=gpu File={g}\nName=shard Count={SHARDS} File={g}\n",
            g = gpu.display()
        );
        std::fs::write(p("gres.conf"), gres).map_err(|e| e.to_string())?;
        // The server under test and the commands below find this cluster through SLURM_CONF.
        std::env::set_var("SLURM_CONF", &conf);
        let mut c = Cluster {
            dir,
            conf,
            children: Vec::new(),
        };
        let d = c.dir.path().to_path_buf();
        let sock = format!("--socket={}", d.join("munge/sock").display());
        let key = format!("--key-file={}", d.join("munge/key").display());
        let log = format!("--log-file={}", d.join("log/munged.log").display());
        let pid = format!("--pid-file={}", d.join("munge/pid").display());
        let seed = format!("--seed-file={}", d.join("munge/seed").display());
        c.spawn(
            "/usr/sbin/munged",
            &["-F", "-f", &sock, &key, &log, &pid, &seed],
        )?;
        wait_for(10, || d.join("munge/sock").exists())
            .map_err(|_| "munged did not create its socket".to_string())?;
        let conf = c.conf.display().to_string();
        c.spawn("/usr/sbin/slurmctld", &["-D", "-f", &conf])?;
        c.spawn("/usr/sbin/slurmd", &["-D", "-f", &conf])?;
        wait_for(60, || {
            output("sinfo", &["-h", "-o", "%T"]).starts_with("idle")
        })
        .map_err(|_| {
            let tail = std::fs::read_to_string(d.join("log/ctld.log")).unwrap_or_default();
            format!("the node did not become idle within 60 s; slurmctld log:\n{tail}")
        })?;
        Ok(c)
    }

    fn spawn(&mut self, program: &str, args: &[&str]) -> Result<(), String> {
        let out = std::fs::File::create(self.dir.path().join("log").join(format!(
            "{}.out",
            Path::new(program).file_name().unwrap().to_string_lossy()
        )))
        .map_err(|e| e.to_string())?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out)
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        self.children.push(child);
        Ok(())
    }

    /// `squeue` lines (`JobArrayID|State`) of every job the cluster still holds.
    pub fn jobs(&self) -> Vec<(String, String)> {
        output("squeue", &["-h", "-t", "all", "-r", "-o", "%i|%T"])
            .lines()
            .filter_map(|l| l.split_once('|'))
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join("log").join(name)).unwrap_or_default()
    }
}

fn write_key(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mut key = vec![0u8; 1024];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").map_err(|e| e.to_string())?,
        &mut key,
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(path, key).map_err(|e| e.to_string())?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    let parent = path.parent().unwrap();
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| e.to_string())
}

fn wait_for(secs: u64, mut ok: impl FnMut() -> bool) -> Result<(), ()> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(())
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("scancel")
            .arg("--me")
            .stderr(Stdio::null())
            .status();
        // Let slurmd reap the job steps it runs, so no slurmstepd outlives the cluster.
        let _ = wait_for(15, || {
            !self
                .jobs()
                .iter()
                .any(|(_, s)| s == "RUNNING" || s == "COMPLETING")
        });
        for c in self.children.iter_mut().rev() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for c in self.children.iter_mut().rev() {
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        kill_stray_steps(self.dir.path());
    }
}

/// `slurmstepd` runs each job step detached from slurmd; one that could not report its end
/// before slurmd stopped keeps retrying. Kill those of this cluster (they hold its slurmd log).
fn kill_stray_steps(dir: &Path) {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for p in procs.filter_map(Result::ok) {
        let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        if !cmdline.starts_with(b"slurmstepd") {
            continue;
        }
        let ours = std::fs::read_dir(p.path().join("fd")).is_ok_and(|fds| {
            fds.filter_map(Result::ok)
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .any(|target| target.starts_with(dir))
        });
        if ours {
            let pid = p.file_name().to_string_lossy().into_owned();
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
    }
}

/// Logging wrappers of Slurm's client commands, put first on PATH (for the server under test
/// and every command after it): each call appends `<command> <args>` to a log, then runs the
/// real command. The tests of one binary run one at a time, so PATH is theirs; dropping the
/// wrappers puts PATH back.
pub struct Counted {
    dir: tempfile::TempDir,
    path: String,
}

impl Counted {
    pub fn install() -> Counted {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls.log");
        let path = std::env::var("PATH").unwrap_or_default();
        for cmd in ["sbatch", "squeue", "sacct", "scancel"] {
            let real = path
                .split(':')
                .map(|d| Path::new(d).join(cmd))
                .find(|p| p.exists())
                .unwrap_or_else(|| PathBuf::from(format!("/usr/bin/{cmd}")));
            let script = format!(
                "#!/bin/sh\necho \"{cmd} $*\" >> '{}'\nexec '{}' \"$@\"\n",
                log.display(),
                real.display()
            );
            let wrapper = dir.path().join(cmd);
            std::fs::write(&wrapper, script).unwrap();
            std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::env::set_var("PATH", format!("{}:{path}", dir.path().display()));
        Counted { dir, path }
    }

    /// The logged calls of `cmd`, each `cmd args...`.
    pub fn of(&self, cmd: &str) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.path().join("calls.log")).unwrap_or_default();
        let prefix = format!("{cmd} ");
        log.lines()
            .filter(|l| l.starts_with(&prefix) || *l == cmd)
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        std::env::set_var("PATH", &self.path);
    }
}

// Helpers of the tests that run the server against the cluster.

/// Serve options for a Slurm test: the given Slurm options, polled every 0.5 s.
pub fn slurm_options(root: &Path, trainer: Option<PathBuf>, s: SlurmOptions) -> ServeOptions {
    ServeOptions {
        slurm: Some(SlurmOptions {
            poll_secs: 0.5,
            ..s
        }),
        ..super::options(root, trainer, 1)
    }
}

/// The run's `slurm/history.log`.
pub fn history(root: &Path, id: &str) -> String {
    std::fs::read_to_string(root.join("runs").join(id).join("slurm/history.log"))
        .unwrap_or_default()
}

/// A run of the fake trainer's `quick` preset with `epochs` epochs; its id.
pub async fn create(st: &AppState, epochs: usize) -> String {
    let body = format!(r#"{{"preset":"quick","set":{{"train.epochs":{epochs}}}}}"#);
    let (s, b) = super::post_json(st, "/api/runs", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    super::json(&b)["id"].as_str().unwrap().to_string()
}

/// The id of the run's first submitted job.
pub fn job_history_id(root: &Path, id: &str) -> String {
    history(root, id)
        .lines()
        .find_map(|l| l.split_once(" job ")?.1.split_whitespace().next())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no submission recorded for {id}"))
}

/// Cancel through the API and wait until the run says so.
pub async fn cancel(st: &AppState, id: &str) -> serde_json::Value {
    let (code, b) = super::post_json(st, &format!("/api/runs/{id}/cancel"), "{}").await;
    assert_eq!(code, StatusCode::ACCEPTED, "{b}");
    super::wait_status(st, id, "cancelled", 30.0).await
}

/// Let a requeued job start again now instead of after Slurm's hold-back (about two minutes),
/// once it is pending and `runs` says `done` (the events of its second start). Not before it is
/// pending plus a few seconds: a job started within a second or two of its requeue is killed
/// with "Job credential revoked" (the old run's credential is revoked by time, to the second).
pub async fn start_requeued_now(job: &str, mut done: impl FnMut() -> bool) {
    let state = || {
        let out = Command::new("squeue")
            .args(["-h", "-j", job, "-o", "%T"])
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let t0 = Instant::now();
    while state() != "PENDING" {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "job {job} not requeued: {}",
            state()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    while !done() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "job {job} did not start again"
        );
        // Refused once the job runs again: that is fine.
        let _ = Command::new("scontrol")
            .args(["update", &format!("JobId={job}"), "StartTime=now"])
            .stderr(Stdio::null())
            .status();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `scontrol -o show job <job>` once it says `JobState=<state>`, or after 20 s as it is then:
/// the trainer's final line can come before the controller records the job's end.
pub async fn job_record_once(job: &str, state: &str) -> String {
    let want = format!("JobState={state}");
    let shown = || output("scontrol", &["-o", "show", "job", job]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !shown().contains(&want) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    shown()
}
