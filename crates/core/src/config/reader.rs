//! Reads typed values out of one config section, naming the full dotted key (`train.epochs`)
//! and the allowed values or range in every error, and reports keys no reader asked for.

use std::cell::RefCell;
use std::collections::BTreeSet;

use super::error::ConfigError;
use super::number::{parse_fraction, short_number};

/// Reads typed values out of one section and remembers which keys were used.
pub(crate) struct Reader<'a> {
    pub prefix: &'static str,
    pub table: &'a toml::Table,
    pub allowed: &'static [&'static str],
    pub used: RefCell<BTreeSet<String>>,
}

impl<'a> Reader<'a> {
    /// A reader of `table`, the section `prefix` (`""` for top-level keys) allowing `allowed`.
    pub(crate) fn new(
        prefix: &'static str,
        table: &'a toml::Table,
        allowed: &'static [&'static str],
    ) -> Self {
        Reader {
            prefix,
            table,
            allowed,
            used: RefCell::new(BTreeSet::new()),
        }
    }

    pub(crate) fn key(&self, k: &str) -> String {
        if self.prefix.is_empty() {
            k.to_string()
        } else {
            format!("{}.{k}", self.prefix)
        }
    }

    fn get(&self, k: &str) -> Option<&toml::Value> {
        self.used.borrow_mut().insert(k.to_string());
        self.table.get(k)
    }

    /// The value of `k` as `read` takes it: `None` when the key is absent; an error naming
    /// the key when `read` refuses the value (`Some(Err(why))`) or does not take its type
    /// (`None`: "expected `what`").
    fn value<T>(
        &self,
        k: &str,
        what: &str,
        read: impl FnOnce(&toml::Value) -> Option<Result<T, String>>,
    ) -> Result<Option<T>, ConfigError> {
        let Some(v) = self.get(k) else {
            return Ok(None);
        };
        let got = || format!("expected {what}, got {}", v.type_str());
        match read(v).ok_or_else(got) {
            Ok(Ok(t)) => Ok(Some(t)),
            Ok(Err(why)) | Err(why) => Err(ConfigError::invalid(&self.key(k), why)),
        }
    }

    fn out_of_range(&self, k: &str, v: &str, min: &str, max: &str) -> ConfigError {
        ConfigError::invalid(
            &self.key(k),
            format!("{v} is out of range; allowed: {min} to {max}"),
        )
    }

    pub(crate) fn f64(
        &self,
        k: &str,
        default: f64,
        min: f64,
        max: f64,
    ) -> Result<f64, ConfigError> {
        let v = self.value(k, "a number", |v| match v {
            toml::Value::Float(f) => Some(Ok(*f)),
            toml::Value::Integer(i) => Some(Ok(*i as f64)),
            toml::Value::String(s) => Some(
                parse_fraction(s)
                    .ok_or_else(|| format!("{s:?} is not a number (use 0.031 or \"8/255\")")),
            ),
            _ => None,
        })?;
        let Some(v) = v else { return Ok(default) };
        if !v.is_finite() || v < min || v > max {
            let [v, min, max] = [v, min, max].map(short_number);
            return Err(self.out_of_range(k, &v, &min, &max));
        }
        Ok(v)
    }

    pub(crate) fn usize(
        &self,
        k: &str,
        default: usize,
        min: usize,
        max: usize,
    ) -> Result<usize, ConfigError> {
        let v = self.value(k, "a whole number", |v| match v {
            toml::Value::Integer(i) => Some(Ok(*i)),
            toml::Value::String(s) => Some(
                s.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("{s:?} is not a whole number")),
            ),
            _ => None,
        })?;
        let Some(v) = v else { return Ok(default) };
        if v < min as i64 || (v as u64) > max as u64 {
            let hi = if max == usize::MAX {
                "no limit".to_string()
            } else {
                max.to_string()
            };
            return Err(self.out_of_range(k, &v.to_string(), &min.to_string(), &hi));
        }
        Ok(v as usize)
    }

    pub(crate) fn bool(&self, k: &str, default: bool) -> Result<bool, ConfigError> {
        let key = self.key(k);
        match self.get(k) {
            None => Ok(default),
            Some(toml::Value::Boolean(b)) => Ok(*b),
            Some(toml::Value::String(s)) => match s.as_str() {
                "true" | "on" | "1" | "yes" => Ok(true),
                "false" | "off" | "0" | "no" => Ok(false),
                _ => Err(ConfigError::not_allowed(&key, s, &["true", "false"])),
            },
            Some(other) => Err(ConfigError::not_allowed(
                &key,
                &other.to_string(),
                &["true", "false"],
            )),
        }
    }

    pub(crate) fn string(&self, k: &str, default: &str) -> Result<String, ConfigError> {
        let s = self.value(k, "a string", |v| v.as_str().map(|s| Ok(s.to_string())))?;
        Ok(s.unwrap_or_else(|| default.to_string()))
    }

    /// A value written as text, also where TOML reads it as a number or a time of day
    /// (`30`, `01:00:00`): what a scheduler's option takes.
    pub(crate) fn text(&self, k: &str, default: &str) -> Result<String, ConfigError> {
        match self.get(k) {
            Some(toml::Value::Integer(i)) => Ok(i.to_string()),
            Some(toml::Value::Datetime(t)) => Ok(t.to_string()),
            _ => self.string(k, default),
        }
    }

    pub(crate) fn strings(&self, k: &str) -> Result<Vec<String>, ConfigError> {
        let v = self.value(k, "a list of strings", |v| match v {
            toml::Value::String(s) => Some(Ok(s
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect())),
            toml::Value::Array(a) => Some(
                a.iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| "expected a list of strings".to_string()),
            ),
            _ => None,
        })?;
        Ok(v.unwrap_or_default())
    }

    pub(crate) fn choice<T>(
        &self,
        k: &str,
        allowed: &[&str],
        default: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        let s = self.string(k, default)?;
        parse(s.trim()).ok_or_else(|| ConfigError::not_allowed(&self.key(k), &s, allowed))
    }

    /// Fail on keys that no reader asked for.
    pub(crate) fn finish(&self) -> Result<(), ConfigError> {
        let used = self.used.borrow();
        for k in self.table.keys() {
            if !used.contains(k) && !self.allowed.contains(&k.as_str()) {
                return Err(ConfigError::UnknownKey {
                    key: self.key(k),
                    hint: format!(
                        "; allowed in [{}]: {}",
                        self.prefix,
                        self.allowed.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }
}
