//! Run ownership through the CLI as a process: a run directory has one writer (its lock), and a
//! kill at any instant of a checkpoint save resumes consistently (train::commit).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fairtat::runs::lock::{self, RunLock};
use fairtat::runs::reader::read_events;
use fairtat::runs::{RunDir, RunEvent, RunStatus};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fairtat"));
    c.env("FAIRTAT_LOG", "warn");
    c
}

/// A tiny CPU run: a few hundred Fashion-MNIST images, 3 epochs of a second or two each.
fn train(out: &Path, failpoint: Option<&str>) -> Output {
    let mut c = bin();
    c.args(["train", "--config"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/fmnist-quick-fairtat.toml"))
        .arg("--out")
        .arg(out);
    for s in [
        "data.train_subset=300",
        "data.val_per_class=5",
        "data.test_subset=100",
        "attack.steps=2",
        "eval.steps=2",
        "eval.final_steps=2",
        "train.batch_size=50",
        "train.epochs=3",
    ] {
        c.args(["--set", s]);
    }
    if let Some(fp) = failpoint {
        c.env("FAIRTAT_FAILPOINT", fp);
    }
    c.output().expect("run fairtat")
}

fn resume(dir: &Path) -> Output {
    bin()
        .args(["train", "--resume"])
        .arg(dir)
        .output()
        .expect("run fairtat")
}

fn only_run_dir(out: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.remove(0)
}

fn epochs_recorded(dir: &Path) -> Vec<usize> {
    read_events(&dir.join("events.jsonl"))
        .unwrap()
        .into_iter()
        .filter_map(|l| match l.event {
            RunEvent::Epoch(r) => Some(r.epoch),
            _ => None,
        })
        .collect()
}

fn last_finished(dir: &Path) -> Option<(RunStatus, usize)> {
    read_events(&dir.join("events.jsonl"))
        .unwrap()
        .into_iter()
        .rev()
        .filter_map(|l| match l.event {
            RunEvent::Finished {
                status,
                epochs_done,
                ..
            } => Some((status, epochs_done)),
            _ => None,
        })
        .next()
}

fn checkpoint_epoch(dir: &Path) -> usize {
    let meta = fairtat::models::read_metadata(&dir.join("checkpoints/last.safetensors")).unwrap();
    meta["epoch"].parse().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn resume_of_a_run_another_process_holds_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::new(tmp.path().join("r"));
    std::fs::create_dir_all(dir.root()).unwrap();
    std::fs::write(dir.config_toml(), "name = \"r\"\n").unwrap();
    let held = RunLock::acquire(&dir, "train").unwrap();
    for args in [["train", "--resume"], ["train", "--run-dir"]] {
        let o = bin().args(args).arg(dir.root()).output().unwrap();
        assert!(!o.status.success());
        let msg = text(&o);
        let pid = std::process::id().to_string();
        assert!(
            msg.contains("in use by another process") && msg.contains(&pid),
            "{msg}"
        );
    }
    // Nothing was written into the held run.
    assert!(!dir.events().exists());
    drop(held);
    assert_eq!(lock::probe(&dir), None);
}

#[test]
fn a_kill_before_the_state_commit_resumes_from_the_previous_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    // Save 2 is epoch 1's: abort after its files are written, before state.json names them.
    let o = train(tmp.path(), Some("before-commit@2"));
    assert!(!o.status.success(), "the failpoint aborts: {}", text(&o));
    let dir = only_run_dir(tmp.path());
    assert!(dir.join("checkpoints/pending-2").is_dir());
    assert_eq!(
        checkpoint_epoch(&dir),
        0,
        "the published checkpoint is still epoch 0's"
    );
    let o = resume(&dir);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !dir.join("checkpoints/pending-2").exists(),
        "uncommitted save discarded"
    );
    assert_eq!(last_finished(&dir), Some((RunStatus::Finished, 3)));
    assert_eq!(checkpoint_epoch(&dir), 2);
    // Epoch 1 was recorded by the killed process and again by the resumed one; the resumed
    // record replaces it for readers (records keep the last per epoch).
    let recorded = epochs_recorded(&dir);
    assert_eq!(
        recorded.iter().filter(|&&e| e == 2).count(),
        1,
        "{recorded:?}"
    );
    assert_eq!(*recorded.last().unwrap(), 2);
}

#[test]
fn a_kill_after_the_state_commit_resumes_from_the_new_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let o = train(tmp.path(), Some("after-commit@2"));
    assert!(!o.status.success(), "the failpoint aborts: {}", text(&o));
    let dir = only_run_dir(tmp.path());
    // state.json refers to save 2 while its files still wait in the pending folder.
    assert!(dir.join("checkpoints/pending-2").is_dir());
    let o = resume(&dir);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !dir.join("checkpoints/pending-2").exists(),
        "committed save published"
    );
    assert_eq!(last_finished(&dir), Some((RunStatus::Finished, 3)));
    // Epochs 0 and 1 were committed before the kill: only epoch 2 is trained again.
    let recorded = epochs_recorded(&dir);
    assert_eq!(recorded, vec![0, 1, 2], "{recorded:?}");
    assert_eq!(checkpoint_epoch(&dir), 2);
}

#[test]
fn resume_refuses_a_checkpoint_from_another_epoch_than_the_state() {
    let tmp = tempfile::tempdir().unwrap();
    let o = train(tmp.path(), Some("after-commit@2"));
    assert!(!o.status.success());
    let dir = only_run_dir(tmp.path());
    // A hand-made inconsistency: the committed pending folder is lost, so `last` is epoch 0's
    // while state.json refers to epoch 1.
    std::fs::remove_dir_all(dir.join("checkpoints/pending-2")).unwrap();
    let o = resume(&dir);
    assert!(!o.status.success());
    let msg = text(&o);
    assert!(
        msg.contains("holds epoch 0") && msg.contains("refers to epoch 1"),
        "{msg}"
    );
}

#[test]
fn resume_refuses_an_epoch_count_that_its_checkpoint_does_not_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let o = train(tmp.path(), Some("after-commit@2"));
    assert!(!o.status.success());
    let dir = only_run_dir(tmp.path());
    let path = dir.join("checkpoints/state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(state["epochs_done"], 2, "{state}");
    state["epochs_done"] = 150.into();
    std::fs::write(&path, state.to_string()).unwrap();
    let o = resume(&dir);
    assert!(!o.status.success());
    let msg = text(&o);
    assert!(
        msg.contains("epochs_done = 150 but its checkpoint holds epoch 1")
            && msg.contains("epochs_done must be 2"),
        "{msg}"
    );
    // Nothing was trained or recorded past what the checkpoint holds.
    assert_eq!(epochs_recorded(&dir), vec![0, 1]);
}

#[test]
fn resume_refuses_a_checkpoint_whose_bytes_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let o = train(tmp.path(), Some("after-commit@2"));
    assert!(!o.status.success());
    let dir = only_run_dir(tmp.path());
    let state = std::fs::read_to_string(dir.join("checkpoints/state.json")).unwrap();
    assert!(state.contains("\"last.safetensors\""), "{state}");
    // One bit of a weight flips in the committed (still pending) `last`: the header parses,
    // the shapes match, only the checksum can tell.
    let last = dir.join("checkpoints/pending-2/last.safetensors");
    let mut bytes = std::fs::read(&last).unwrap();
    let at = bytes.len() - 7;
    bytes[at] ^= 0x10;
    std::fs::write(&last, bytes).unwrap();
    let o = resume(&dir);
    assert!(!o.status.success(), "a damaged checkpoint was resumed");
    let msg = text(&o);
    assert!(
        msg.contains("last.safetensors") && msg.contains("SHA-256 mismatch"),
        "{msg}"
    );
}
