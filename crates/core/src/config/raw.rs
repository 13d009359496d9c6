//! The raw config (what the user typed) and its validation into a [`RunSpec`].
//!
//! Validation walks the TOML table section by section (each section's keys are declared once in
//! [`super::spec`]), so every error carries the full dotted key (`train.epochs`) and unknown
//! keys are reported with the keys that section allows.

use super::ctx::{Ctx, Section};
use super::error::ConfigError;
use super::reader::Reader;
use super::schema::KeyType;
use super::spec::*;

/// A config as typed: a TOML table, not yet checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawConfig {
    pub table: toml::Table,
}

impl RawConfig {
    pub fn from_table(table: toml::Table) -> Result<Self, ConfigError> {
        Ok(RawConfig { table })
    }

    /// Check every field and derive the [`RunSpec`].
    pub fn validate(&self) -> Result<RunSpec, ConfigError> {
        self.check_top_level()?;
        let mut c = Ctx::default();
        let me = self.section(MethodSpec::SECTION, &MethodSpec::KEY_NAMES);
        // The method decides some defaults of the other sections, so its name is read first.
        c.method = MethodKind::read(&me, MethodKey::name.name(), c.method, None)?;
        c.legacy_clean_forward = match me.table.contains_key(LEGACY_CLEAN_FORWARD) {
            true => Some(me.bool(LEGACY_CLEAN_FORWARD, false)?),
            false => None,
        };

        let d = self.section(DataSpec::SECTION, &DataSpec::KEY_NAMES);
        c.dataset = DatasetKind::read(&d, DataKey::dataset.name(), c.dataset, None)?;
        let data = self.read::<DataSpec>(&c)?;
        c.dataset = data.dataset;
        let model = self.read::<ModelSpec>(&c)?;
        c.arch = model.arch;
        let train = self.read::<TrainSpec>(&c)?.check(c.method)?;
        c.epochs = train.epochs;
        let attack = self.read::<AttackSpec>(&c)?;
        (c.eps, c.alpha) = (attack.eps, attack.alpha);
        let method = MethodSpec::read(&me, &c)?.check()?;
        me.finish()?;
        let eval = self.read::<EvalSpec>(&c)?;
        let slurm = self.read::<SlurmSpec>(&c)?.check()?;

        let top = Reader::new("", &self.table, &TOP_KEYS);
        let run = RunKeys::read(&top, &c)?.check()?;
        RunSpec {
            name: run.name,
            tags: run.tags,
            seed: run.seed,
            device: run.device,
            data,
            model,
            train,
            attack,
            method,
            eval,
            slurm,
        }
        .check()
    }

    /// Top-level keys: known, sections are tables, and no `[grid]` (a grid is many runs).
    fn check_top_level(&self) -> Result<(), ConfigError> {
        for (k, v) in &self.table {
            let known_top = TOP_KEYS.contains(&k.as_str());
            let known_section = SECTIONS.iter().any(|(s, _)| s == k);
            if k == "grid" {
                return Err(ConfigError::invalid(
                    "grid",
                    "a [grid] config creates one run per combination; start it with \
                     `fairtat train --config FILE` or the dashboard, not as a single run",
                ));
            }
            if !known_top && !known_section {
                let mut allowed: Vec<&str> = TOP_KEYS.to_vec();
                allowed.extend(SECTIONS.iter().map(|(s, _)| *s));
                return Err(ConfigError::UnknownKey {
                    key: k.clone(),
                    hint: format!("; allowed: {}", allowed.join(", ")),
                });
            }
            if known_section && !v.is_table() {
                return Err(ConfigError::invalid(
                    k,
                    "must be a section ([name] in TOML)",
                ));
            }
        }
        Ok(())
    }

    /// A reader of section `name` (empty when the config has none).
    fn section(&self, name: &'static str, keys: &'static [&'static str]) -> Reader<'_> {
        static EMPTY: std::sync::OnceLock<toml::Table> = std::sync::OnceLock::new();
        let table = match self.table.get(name).and_then(|v| v.as_table()) {
            Some(t) => t,
            None => EMPTY.get_or_init(toml::Table::new),
        };
        Reader::new(name, table, keys)
    }

    /// Read one whole section, then refuse keys it does not have.
    fn read<S: Section>(&self, c: &Ctx) -> Result<S, ConfigError> {
        let r = self.section(S::SECTION, S::KEY_NAMES);
        let spec = S::read(&r, c)?;
        r.finish()?;
        Ok(spec)
    }
}

#[cfg(test)]
mod tests;
