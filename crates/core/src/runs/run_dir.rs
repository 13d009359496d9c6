//! The one place a run directory is created and its config read back: `config.toml` is the
//! source of truth (the trainer, `fairtat eval` and the server all read it); `spec.json` is
//! derived from it for outside tools and never read back.

use std::path::Path;

use super::{new_run_id, RunDir};
use crate::config::{ConfigError, RunSpec};

/// Create a new, uniquely named run directory under `parent` holding `spec`'s `config.toml`
/// (and `spec.json`). The id is `new_run_id(spec.name)`, suffixed `-N` if taken.
pub fn create_run_dir(parent: &Path, spec: &RunSpec) -> std::io::Result<RunDir> {
    std::fs::create_dir_all(parent)?;
    let base = new_run_id(&spec.name);
    let mut id = base.clone();
    let mut n = 0;
    loop {
        // create_dir (not _all) fails if the directory exists: two creators never share one.
        match std::fs::create_dir(parent.join(&id)) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => {
                n += 1;
                id = format!("{base}-{n}");
            }
            Err(e) => return Err(e),
        }
    }
    let dir = RunDir::new(parent.join(&id));
    if let Err(e) = write_config(&dir, spec) {
        // A full disk must not leave a run directory with an empty config behind.
        let _ = std::fs::remove_dir_all(dir.root());
        return Err(e);
    }
    Ok(dir)
}

/// (Re)write a run directory's config: `config.toml`, then the derived `spec.json`.
pub fn write_config(dir: &RunDir, spec: &RunSpec) -> std::io::Result<()> {
    std::fs::write(dir.config_toml(), spec.to_toml())?;
    let json = serde_json::to_vec_pretty(spec).map_err(std::io::Error::other)?;
    std::fs::write(dir.spec_json(), json)
}

/// The validated config of a run directory, with `--set` overrides (what every reader uses).
pub fn read_run_config(dir: &RunDir, sets: &[String]) -> Result<RunSpec, ConfigError> {
    crate::config::load(&dir.config_toml(), sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_dirs_are_unique_and_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = crate::config::from_toml_str("name = \"t\"", &[]).unwrap();
        let a = create_run_dir(tmp.path(), &spec).unwrap();
        let b = create_run_dir(tmp.path(), &spec).unwrap();
        assert_ne!(a.root(), b.root());
        assert!(a.spec_json().exists());
        let back = read_run_config(&a, &[]).unwrap();
        assert_eq!(back.to_toml(), spec.to_toml());
    }
}
