//! Grid launches: one config whose `[grid]` table maps config keys to lists of values gives one
//! run per combination (e.g. methods x seeds, the layout of the paper's Table 1).
//!
//! ```toml
//! name = "fmnist-grid"
//! [grid]
//! "method.name" = ["pgd-at", "fair-tat"]
//! seed = [0, 1, 2]
//! ```
//!
//! Every combination is validated before anything is created, so a bad value fails the whole
//! grid with the usual error naming the field. Runs are named `<name>-<values>-s<seed>` and
//! tagged `grid:<grid id>`, which is how the compare page finds a grid and averages over seeds.

use super::{keys, value, ConfigError, RawConfig, RunSpec};

/// Largest number of runs one grid may create (bounded work per request).
pub const MAX_GRID_RUNS: usize = 64;

/// The grid key that varies the seed; grouped runs differ only in it.
pub const SEED_KEY: &str = "seed";

/// The grid key whose values are preset configs used as the base of each run.
pub const PRESET_KEY: &str = "preset";

/// Reads a preset named on a `preset` axis (e.g. `table1/cifar10-at`) as TOML text.
pub type PresetLoader<'a> = &'a dyn Fn(&str) -> Result<String, ConfigError>;

/// A loader that knows no presets (a grid without a `preset` axis never calls it).
pub fn no_presets(name: &str) -> Result<String, ConfigError> {
    Err(ConfigError::invalid(
        "grid.preset",
        format!("{name:?}: presets cannot be loaded here"),
    ))
}

/// A loader reading `<dir>/<name>.toml`, where `name` is one or two path components of
/// letters, digits, `-`, `_` and `.` (e.g. `fmnist-quick-at` or `table1/cifar10-at`).
pub fn presets_in(dir: &std::path::Path) -> impl Fn(&str) -> Result<String, ConfigError> + '_ {
    move |name: &str| {
        let ok = |c: &str| {
            !c.is_empty()
                && !c.starts_with('.')
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
        };
        let parts: Vec<&str> = name.split('/').collect();
        if parts.len() > 2 || !parts.iter().all(|p| ok(p)) {
            return Err(ConfigError::invalid(
                "grid.preset",
                format!("{name:?} is not a preset name (e.g. table1/cifar10-at)"),
            ));
        }
        let path = dir.join(format!("{name}.toml"));
        std::fs::read_to_string(&path).map_err(|e| {
            ConfigError::invalid(
                "grid.preset",
                format!("{name:?}: cannot read {}: {e}", path.display()),
            )
        })
    }
}

/// Expand `text` (after `sets`) into one spec per combination of its `[grid]` lists; `None` when
/// the config has no `[grid]` table. `grid_id` goes into every run's `grid:` tag.
///
/// A `preset` axis lists preset configs (rows of a table such as the paper's Table 1): each is
/// the base of its runs, with the grid file's own keys and the other axes applied on top.
pub fn expand(
    text: &str,
    sets: &[String],
    grid_id: &str,
) -> Result<Option<Vec<RunSpec>>, ConfigError> {
    expand_with(text, sets, grid_id, &no_presets)
}

/// [`expand`] with a loader for `preset` axes.
pub fn expand_with(
    text: &str,
    sets: &[String],
    grid_id: &str,
    presets: PresetLoader,
) -> Result<Option<Vec<RunSpec>>, ConfigError> {
    let mut table = keys::parse_toml(text)?;
    for s in sets {
        value::apply_set(&mut table, s)?;
    }
    expand_table_with(table, grid_id, presets)
}

/// [`expand`] on a parsed table (the dashboard's form builds one).
pub fn expand_table(
    table: toml::Table,
    grid_id: &str,
) -> Result<Option<Vec<RunSpec>>, ConfigError> {
    expand_table_with(table, grid_id, &no_presets)
}

/// Deep merge: `over`'s values replace `base`'s, tables merge key by key.
fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

pub fn expand_table_with(
    mut table: toml::Table,
    grid_id: &str,
    presets: PresetLoader,
) -> Result<Option<Vec<RunSpec>>, ConfigError> {
    let Some(grid) = table.remove("grid") else {
        return Ok(None);
    };
    let toml::Value::Table(grid) = grid else {
        return Err(ConfigError::invalid(
            "grid",
            "must be a table of key = [values] (e.g. \"method.name\" = [\"pgd-at\", \"fair-tat\"])",
        ));
    };
    // Seed last, so runs of one combination are adjacent and names end in -s<seed>.
    let mut axes: Vec<(String, Vec<toml::Value>)> = Vec::new();
    for (k, v) in grid {
        // Before any combination is built: an axis is a known key (no deep nesting).
        if k != PRESET_KEY {
            keys::check_key(&k).map_err(|e| e.in_context("grid axis"))?;
        }
        let key = format!("grid.{}", keys::shorten(&k));
        let toml::Value::Array(values) = v else {
            return Err(ConfigError::invalid(&key, "must be a list of values"));
        };
        if values.is_empty() {
            return Err(ConfigError::invalid(&key, "must list at least one value"));
        }
        if k == "name" || k == "tags" || k.starts_with("grid") {
            return Err(ConfigError::invalid(&key, "cannot be varied by a grid"));
        }
        axes.push((k, values));
    }
    // Preset first (it is the base the other axes apply to), seed last.
    axes.sort_by_key(|(k, _)| (k != PRESET_KEY, k == SEED_KEY));
    let total = grid_size(&axes)?;
    let base_name = table
        .get("name")
        .and_then(|v| v.as_str())
        .unwrap_or("grid")
        .to_string();
    let mut specs = Vec::with_capacity(total);
    for combo in 0..total {
        let mut t = table.clone();
        let mut parts = Vec::new();
        let mut rest = combo;
        // Mixed-radix digits, last axis fastest.
        let mut picks = vec![0; axes.len()];
        for (i, (_, vals)) in axes.iter().enumerate().rev() {
            picks[i] = rest % vals.len();
            rest /= vals.len();
        }
        for ((key, vals), &p) in axes.iter().zip(&picks) {
            let v = vals[p].clone();
            if key == PRESET_KEY {
                let name = v.as_str().ok_or_else(|| {
                    ConfigError::invalid("grid.preset", "must list preset names (strings)")
                })?;
                let mut base = keys::parse_toml(&presets(name)?)
                    .map_err(|e| ConfigError::invalid("grid.preset", format!("{name:?}: {e}")))?;
                base.remove("name");
                merge(&mut base, &t);
                t = base;
                let short = name.rsplit('/').next().unwrap_or(name).to_string();
                parts.push(short);
                continue;
            }
            value::set_value(&mut t, key, v.clone())?;
            let shown = match &v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            parts.push(if key == SEED_KEY {
                format!("s{shown}")
            } else {
                shown
            });
        }
        let name = format!("{base_name}-{}", parts.join("-"));
        t.insert("name".into(), toml::Value::String(name));
        let mut tags: Vec<toml::Value> = t
            .get("tags")
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default();
        tags.push(toml::Value::String(format!("grid:{grid_id}")));
        t.insert("tags".into(), toml::Value::Array(tags));
        let spec = RawConfig::from_table(t)?.validate().map_err(|e| {
            let combo: Vec<String> = axes
                .iter()
                .zip(&picks)
                .map(|((k, vals), &p)| format!("{k}={}", vals[p]))
                .collect();
            e.in_context(&format!("grid combination {}", combo.join(", ")))
        })?;
        specs.push(spec);
    }
    super::grid_init::resolve_init_from(&mut specs, &base_name)?;
    Ok(Some(specs))
}

/// Number of combinations, with checked arithmetic (64 axes of 2 values must not wrap to 0).
fn grid_size(axes: &[(String, Vec<toml::Value>)]) -> Result<usize, ConfigError> {
    let total = axes
        .iter()
        .try_fold(1usize, |acc, (_, v)| acc.checked_mul(v.len()));
    match total {
        Some(t) if t <= MAX_GRID_RUNS => Ok(t),
        Some(t) => Err(ConfigError::invalid(
            "grid",
            format!("{t} combinations; at most {MAX_GRID_RUNS} runs per grid"),
        )),
        None => Err(ConfigError::invalid(
            "grid",
            format!(
                "more than {} combinations; at most {MAX_GRID_RUNS} runs per grid",
                usize::MAX
            ),
        )),
    }
}

/// The name of a grid run without its `-s<seed>` suffix: runs sharing it differ only in seed.
pub fn group_name(name: &str) -> &str {
    match name.rsplit_once("-s") {
        Some((head, seed)) if !seed.is_empty() && seed.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => name,
    }
}

/// The grid id of a run's tags, if it belongs to one.
pub fn grid_of(tags: &[String]) -> Option<&str> {
    tags.iter().find_map(|t| t.strip_prefix("grid:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRID: &str = r#"
name = "g"
tags = ["table1"]
[train]
epochs = 2
[grid]
"method.name" = ["pgd-at", "fair-tat"]
seed = [0, 1, 2]
"#;

    #[test]
    fn methods_times_seeds_one_run_each() {
        let specs = expand(GRID, &[], "gid").unwrap().unwrap();
        let got: Vec<(String, &str, u64)> = specs
            .iter()
            .map(|s| (s.name.clone(), s.method.name.as_str(), s.seed))
            .collect();
        let want: Vec<(String, &str, u64)> = [("pgd-at", 0), ("pgd-at", 1), ("pgd-at", 2)]
            .into_iter()
            .chain([("fair-tat", 0), ("fair-tat", 1), ("fair-tat", 2)])
            .map(|(m, s)| (format!("g-{m}-s{s}"), m, s))
            .collect();
        assert_eq!(got, want);
        for s in &specs {
            assert_eq!(s.train.epochs, 2, "the base config applies to every run");
            assert_eq!(s.tags, ["table1", "grid:gid"]);
            assert_eq!(grid_of(&s.tags), Some("gid"));
            assert_eq!(group_name(&s.name), format!("g-{}", s.method.name.as_str()));
        }
        assert!(expand("name = \"plain\"", &[], "x").unwrap().is_none());
    }

    #[test]
    fn errors_name_the_field_and_the_combination() {
        let bad = GRID.replace("\"fair-tat\"]", "\"fair-tat\", \"magic\"]");
        let e = expand(&bad, &[], "x").unwrap_err().to_string();
        assert!(
            e.contains("method.name") && e.contains("magic") && e.contains("fair-tat"),
            "{e}"
        );
        assert!(e.contains("grid combination"), "{e}");
        let e = expand("[grid]\nseed = 3\n", &[], "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("grid.seed") && e.contains("list"), "{e}");
        let e = expand("[grid]\nseed = []\n", &[], "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least one"), "{e}");
        let many: Vec<String> = (0..65).map(|i| i.to_string()).collect();
        let e = expand(&format!("[grid]\nseed = [{}]\n", many.join(",")), &[], "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("65 combinations") && e.contains("64"), "{e}");
        // 32 axes of 4 values: 2^64 combinations, which an unchecked product wraps to 0.
        let axes: String = crate::config::SECTIONS
            .iter()
            .flat_map(|(s, keys)| {
                keys.iter()
                    .map(move |k| format!("\"{s}.{k}\" = [1, 2, 3, 4]\n"))
            })
            .take(32)
            .collect();
        assert_eq!(axes.lines().count(), 32);
        let e = expand(&format!("[grid]\n{axes}"), &[], "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than") && e.contains("at most 64"), "{e}");
        let deep = vec!["a"; 12_000].join(".");
        let e = expand(&format!("[grid]\n\"{deep}\" = [1]\n"), &[], "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("grid axis") && e.len() < 400, "{e}");
        // A grid config is not a single run.
        let e = crate::config::from_toml_str(GRID, &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("grid") && e.contains("fairtat train --config"),
            "{e}"
        );
    }

    #[test]
    fn preset_axis_uses_each_preset_as_the_base() {
        let presets = |name: &str| -> Result<String, ConfigError> {
            match name {
                "rows/at" => Ok("name = \"ignored\"\n[method]\nname = \"pgd-at\"\n[train]\nepochs = 9\nlr = 0.3\n".into()),
                "rows/tat" => Ok("[method]\nname = \"fair-tat\"\n".into()),
                other => no_presets(other),
            }
        };
        let text = "name = \"t1\"\n[train]\nepochs = 3\n[grid]\npreset = [\"rows/at\", \"rows/tat\"]\nseed = [5]\n";
        let specs = expand_with(text, &[], "g", &presets).unwrap().unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].name, "t1-at-s5");
        assert_eq!(specs[0].method.name.as_str(), "pgd-at");
        // The grid file's own keys override the preset's; the rest of the preset stays.
        assert_eq!(specs[0].train.epochs, 3);
        assert_eq!(specs[0].train.lr, 0.3);
        assert_eq!(specs[1].method.name.as_str(), "fair-tat");
        assert_eq!(specs[1].seed, 5);
        let e = expand_with("[grid]\npreset = [\"nope\"]\n", &[], "g", &presets)
            .unwrap_err()
            .to_string();
        assert!(e.contains("grid.preset") && e.contains("nope"), "{e}");
    }

    #[test]
    fn preset_names_cannot_escape_the_directory() {
        let dir = std::env::temp_dir();
        let load = presets_in(&dir);
        for bad in ["../etc/passwd", "/abs", "a/b/c", ".hidden", ""] {
            let e = load(bad).unwrap_err().to_string();
            assert!(e.contains("grid.preset"), "{bad}: {e}");
        }
    }
}
