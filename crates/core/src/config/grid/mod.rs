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

use super::error::ConfigError;
use super::grid_init::resolve_init_from;
pub use super::grid_init::{grid_of, group_name};
use super::raw::RawConfig;
use super::spec::{MethodKey, MethodKind, RunSpec};
use super::{keys, value};

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

/// [`expand_with`] on a parsed table.
pub fn expand_table_with(
    mut table: toml::Table,
    grid_id: &str,
    presets: PresetLoader,
) -> Result<Option<Vec<RunSpec>>, ConfigError> {
    let Some(grid) = table.remove("grid") else {
        return Ok(None);
    };
    let axes = axes(grid)?;
    let total = grid_size(&axes)?;
    let base_name = table
        .get("name")
        .and_then(|v| v.as_str())
        .unwrap_or("grid")
        .to_string();
    let mut specs = Vec::with_capacity(total);
    for combo in 0..total {
        let picks = picks(&axes, combo);
        let (mut t, parts) = combination(&table, &axes, &picks, presets)?;
        t.insert(
            "name".into(),
            toml::Value::String(format!("{base_name}-{}", parts.join("-"))),
        );
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
    resolve_init_from(&mut specs, &base_name)?;
    Ok(Some(specs))
}

/// The `[grid]` table's axes, checked: known keys, non-empty lists, nothing that names a run.
/// Preset first (it is the base the other axes apply to); seed last, so runs of one combination
/// are adjacent and names end in -s<seed>.
fn axes(grid: toml::Value) -> Result<Vec<(String, Vec<toml::Value>)>, ConfigError> {
    let toml::Value::Table(grid) = grid else {
        return Err(ConfigError::invalid(
            "grid",
            format!(
                "must be a table of key = [values] (e.g. \"{}\" = [\"{}\", \"{}\"])",
                MethodKey::name.field().key,
                MethodKind::PgdAt,
                MethodKind::FairTat
            ),
        ));
    };
    let mut axes: Vec<(String, Vec<toml::Value>)> = Vec::new();
    for (raw, v) in grid {
        // Before any combination is built: an axis is a known key (no deep nesting).
        if raw != PRESET_KEY {
            keys::check_key(&raw).map_err(|e| e.in_context("grid axis"))?;
        }
        // Keys are read with their parts trimmed, so `" seed"` is `seed`: one axis per key.
        let k = raw.split('.').map(str::trim).collect::<Vec<_>>().join(".");
        let key = format!("grid.{}", keys::shorten(&k));
        if axes.iter().any(|(a, _)| *a == k) {
            return Err(ConfigError::invalid(
                &key,
                format!(
                    "is given twice (also as {:?}); give each axis once",
                    keys::shorten(&raw)
                ),
            ));
        }
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
    axes.sort_by_key(|(k, _)| (k != PRESET_KEY, k == SEED_KEY));
    Ok(axes)
}

/// The value index of each axis in combination `combo`: mixed-radix digits, last axis fastest.
fn picks(axes: &[(String, Vec<toml::Value>)], combo: usize) -> Vec<usize> {
    let mut rest = combo;
    let mut picks = vec![0; axes.len()];
    for (i, (_, vals)) in axes.iter().enumerate().rev() {
        picks[i] = rest % vals.len();
        rest /= vals.len();
    }
    picks
}

/// The config of one combination (`table` with each axis's pick applied, a preset as its base)
/// and the parts of its run name.
fn combination(
    table: &toml::Table,
    axes: &[(String, Vec<toml::Value>)],
    picks: &[usize],
    presets: PresetLoader,
) -> Result<(toml::Table, Vec<String>), ConfigError> {
    let mut t = table.clone();
    let mut parts = Vec::new();
    for ((key, vals), &p) in axes.iter().zip(picks) {
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
            parts.push(name.rsplit('/').next().unwrap_or(name).to_string());
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
    Ok((t, parts))
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

#[cfg(test)]
mod init_tests;
#[cfg(test)]
mod tests;
