//! The refusals of `safe_fs`: links, hard links, FIFOs and linked directories, each named.

use super::*;
use std::os::unix::fs::symlink;

/// A runs folder with run `r` holding `config.toml`, and a file outside it.
fn setup() -> (tempfile::TempDir, RunDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::new(tmp.path().join("runs").join("r"));
    std::fs::create_dir_all(dir.root().join("evals")).unwrap();
    std::fs::write(dir.config_toml(), "name = \"r\"\n").unwrap();
    let outside = tmp.path().join("secret");
    std::fs::write(&outside, "secret\n").unwrap();
    (tmp, dir, outside)
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

#[test]
fn regular_files_read_and_write() {
    let (_tmp, dir, _) = setup();
    assert_eq!(
        read_text(&dir, "config.toml", TEXT_CAP).unwrap(),
        "name = \"r\"\n"
    );
    create_dir_all(&dir, "evals/a-last").unwrap();
    write(&dir, "evals/a-last/queued", b"queued\n").unwrap();
    write(&dir, "evals/a-last/queued", b"q\n").unwrap();
    assert_eq!(read(&dir, "evals/a-last/queued", 10).unwrap(), b"q\n");
    assert!(is_file(&dir, "evals/a-last/queued"));
    let names = list_dir(&dir, "evals").unwrap();
    assert_eq!(names, vec![("a-last".to_string(), EntryKind::Dir)]);
    remove_file(&dir, "evals/a-last/queued").unwrap();
    remove_file(&dir, "evals/a-last/queued").unwrap();
    assert!(!is_file(&dir, "evals/a-last/queued"));
    assert!(read(&dir, "train.log", 10).unwrap_err().is_missing());
}

#[test]
fn links_fifos_and_hard_links_are_refused_by_name() {
    let (_tmp, dir, outside) = setup();
    std::fs::remove_file(dir.config_toml()).unwrap();
    symlink(&outside, dir.config_toml()).unwrap();
    let e = read(&dir, "config.toml", TEXT_CAP).unwrap_err();
    assert!(matches!(e, Refusal::Link(_)), "{e}");
    assert!(
        e.to_string().starts_with("config.toml is a symbolic link"),
        "{e}"
    );
    let e = write(&dir, "config.toml", b"x").unwrap_err();
    assert!(matches!(e, Refusal::Link(_)), "{e}");
    std::fs::hard_link(&outside, dir.log()).unwrap();
    let e = read_tail(&dir, "train.log", 100).unwrap_err();
    assert!(e.to_string().contains("train.log has 2 hard links"), "{e}");
    // A write through the hard link is refused before anything is truncated.
    assert!(write(&dir, "train.log", b"").is_err());
    assert!(open_append(&dir, "train.log").is_err());
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "secret\n");
    mkfifo(&dir.root().join("spec.json"));
    let e = read(&dir, "spec.json", TEXT_CAP).unwrap_err();
    assert!(e.to_string().contains("spec.json is a FIFO"), "{e}");
    assert!(write(&dir, "spec.json", b"{}").is_err());
    assert!(!is_file(&dir, "spec.json"));
}

#[test]
fn linked_directories_lead_nowhere() {
    let (tmp, dir, _) = setup();
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("eval.json"), "{}").unwrap();
    symlink(&elsewhere, dir.evals().join("x-last")).unwrap();
    let e = read(&dir, "evals/x-last/eval.json", TEXT_CAP).unwrap_err();
    assert_eq!(e.to_string(), "evals/x-last is a symbolic link; the server reads and writes regular files only, never through links");
    assert!(create_dir_all(&dir, "evals/x-last").is_err());
    assert!(write(&dir, "evals/x-last/queued", b"q").is_err());
    assert!(remove_file(&dir, "evals/x-last/eval.json").is_err());
    assert!(elsewhere.join("eval.json").exists());
    assert!(!elsewhere.join("queued").exists());
    let listed = list_dir(&dir, "evals").unwrap();
    assert_eq!(listed, vec![("x-last".to_string(), EntryKind::Other)]);
    // The run directory itself as a link.
    symlink(&elsewhere, tmp.path().join("runs").join("l")).unwrap();
    let linked = RunDir::new(tmp.path().join("runs").join("l"));
    let e = read(&linked, "eval.json", TEXT_CAP).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("run directory l is a symbolic link"),
        "{e}"
    );
    assert!(read(&dir, "../secret", TEXT_CAP).is_err());
}

#[test]
fn reads_are_capped_and_say_so() {
    let (_tmp, dir, _) = setup();
    std::fs::write(dir.log(), "x".repeat(1000)).unwrap();
    let e = read(&dir, "train.log", 100).unwrap_err();
    assert_eq!(
        e.to_string(),
        "train.log holds 1000 bytes, more than the 100 bytes the server reads of it"
    );
    assert_eq!(read_tail(&dir, "train.log", 10).unwrap().len(), 10);
}

#[test]
fn free_space_is_at_most_the_size() {
    let (tmp, _, _) = setup();
    let (free, total) = free_space(tmp.path()).unwrap();
    assert!(total > 0 && free <= total, "{free} of {total}");
    assert_eq!(free_space(&tmp.path().join("no-such-dir")), None);
}
