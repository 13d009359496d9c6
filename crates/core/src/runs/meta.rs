//! What the user edits about a run after it was created: its display name, its tags and free
//! notes, in `meta.json` beside `config.toml`. The recorded training config is never rewritten:
//! `config.toml` says what was trained, `meta.json` how the user files it. The server's index
//! reads it back when it is rebuilt, so a rename survives a restart and a lost index.

use serde::{Deserialize, Serialize};

use super::layout::RunDir;
use super::reports::write_atomic;
use super::summary::RunSummary;
use crate::config::ConfigError;

/// Longest display name (the config's `name` rule).
pub const MAX_NAME: usize = crate::config::MAX_RUN_NAME;
/// Longest notes text, in bytes.
pub const MAX_NOTES: usize = 20_000;
/// Most tags a run carries, and the longest tag.
pub const MAX_TAGS: usize = 32;
pub const MAX_TAG: usize = 64;

/// The edits of one run; `None` keeps what the config says.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
}

impl RunMeta {
    /// The run's `meta.json`; nothing edited when it is absent or unreadable (a broken file is
    /// logged by the caller's next write, which replaces it).
    pub fn read(dir: &RunDir) -> RunMeta {
        super::safe_fs::read_text(dir, "meta.json", super::safe_fs::TEXT_CAP)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    /// Write `meta.json` atomically (a crash leaves the old file or the new one).
    pub fn write(&self, dir: &RunDir) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        write_atomic(&dir.meta_json(), &format!("{text}\n"))
    }

    /// The summary as the user named and tagged the run.
    pub fn apply(&self, s: &mut RunSummary) {
        if let Some(name) = &self.name {
            s.name = name.clone();
        }
        if let Some(tags) = &self.tags {
            s.tags = tags.clone();
        }
    }
}

/// A display name: the config's rule for names ([`crate::config::check_run_name`]), trimmed.
pub fn check_name(name: &str) -> Result<String, ConfigError> {
    crate::config::check_run_name(name)?;
    Ok(name.trim().to_string())
}

/// Tags from comma-separated text: trimmed, empty ones dropped, duplicates removed, each 1 to
/// 64 characters without commas, at most 32.
pub fn parse_tags(text: &str) -> Result<Vec<String>, ConfigError> {
    let mut tags: Vec<String> = Vec::new();
    for t in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if t.chars().count() > MAX_TAG || t.chars().any(char::is_control) {
            return Err(ConfigError::invalid(
                "tags",
                format!("{t:?}: a tag is 1 to {MAX_TAG} printable characters"),
            ));
        }
        if !tags.iter().any(|x| x == t) {
            tags.push(t.to_string());
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(ConfigError::invalid(
            "tags",
            format!("{} tags; allowed: at most {MAX_TAGS}", tags.len()),
        ));
    }
    Ok(tags)
}

/// Notes of at most 20 000 bytes.
pub fn check_notes(notes: &str) -> Result<String, ConfigError> {
    if notes.len() > MAX_NOTES {
        return Err(ConfigError::invalid(
            "notes",
            format!("{} bytes; allowed: at most {MAX_NOTES}", notes.len()),
        ));
    }
    Ok(notes.replace("\r\n", "\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_and_overrides_the_summary() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("r"));
        std::fs::create_dir_all(dir.root()).unwrap();
        assert_eq!(RunMeta::read(&dir), RunMeta::default());
        let meta = RunMeta {
            name: Some("baseline, lr 0.05".into()),
            tags: Some(vec!["paper".into()]),
            notes: "diverged at epoch 3".into(),
        };
        meta.write(&dir).unwrap();
        assert_eq!(RunMeta::read(&dir), meta);
        let mut s = RunSummary::empty(&dir);
        s.tags = vec!["grid:g1".into()];
        meta.apply(&mut s);
        assert_eq!(
            (s.name.as_str(), s.tags.clone()),
            ("baseline, lr 0.05", vec!["paper".to_string()])
        );
        std::fs::write(dir.meta_json(), "{not json").unwrap();
        assert_eq!(
            RunMeta::read(&dir),
            RunMeta::default(),
            "a broken file edits nothing"
        );
    }

    #[test]
    fn names_tags_and_notes_are_checked() {
        assert_eq!(check_name("  a  ").unwrap(), "a");
        for bad in ["", "   ", &"x".repeat(81)] {
            let e = check_name(bad).unwrap_err();
            assert_eq!(e.key(), Some("name"));
            assert!(e.to_string().contains("1 to 80"), "{e}");
        }
        assert_eq!(parse_tags(" a, b,,a ").unwrap(), ["a", "b"]);
        assert!(parse_tags("").unwrap().is_empty());
        assert_eq!(parse_tags(&"t".repeat(65)).unwrap_err().key(), Some("tags"));
        let many: Vec<String> = (0..33).map(|i| format!("t{i}")).collect();
        assert!(parse_tags(&many.join(",")).is_err());
        assert!(check_notes(&"n".repeat(20_001)).is_err());
        assert_eq!(check_notes("a\r\nb").unwrap(), "a\nb");
    }
}
