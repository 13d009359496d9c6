//! Reads typed values out of one config section, naming the full dotted key (`train.epochs`)
//! and the allowed values or range in every error, and reports keys no reader asked for.

use std::cell::RefCell;
use std::collections::BTreeSet;

use super::error::ConfigError;
use super::number::{parse_fraction, short_number};

/// A number type [`Reader::number`] reads: which TOML values it takes and how an error writes
/// it.
pub(crate) trait Number: PartialOrd + Copy {
    /// What the error says was expected.
    const WHAT: &'static str;
    /// `None` when the value's type is not a number of this kind, `Some(Err(why))` when its
    /// text is not one.
    fn take(v: &toml::Value) -> Option<Result<Self, String>>;
    fn show(self) -> String;
}

impl Number for f64 {
    const WHAT: &'static str = "a number";
    fn take(v: &toml::Value) -> Option<Result<Self, String>> {
        match v {
            toml::Value::Float(f) => Some(Ok(*f)),
            toml::Value::Integer(i) => Some(Ok(*i as f64)),
            toml::Value::String(s) => Some(
                parse_fraction(s)
                    .ok_or_else(|| format!("{s:?} is not a number (use 0.031 or \"8/255\")")),
            ),
            _ => None,
        }
    }
    fn show(self) -> String {
        short_number(self)
    }
}

/// Whole numbers, read wide so that a negative or huge value is compared and shown as the user
/// wrote it before it is narrowed to the key's type.
impl Number for i128 {
    const WHAT: &'static str = "a whole number";
    fn take(v: &toml::Value) -> Option<Result<Self, String>> {
        match v {
            toml::Value::Integer(i) => Some(Ok((*i).into())),
            toml::Value::String(s) => Some(
                s.trim()
                    .parse::<i64>()
                    .map(i128::from)
                    .map_err(|_| format!("{s:?} is not a whole number")),
            ),
            _ => None,
        }
    }
    /// `usize::MAX`, the bound of a key without an upper limit, reads "no limit".
    fn show(self) -> String {
        match self == usize::MAX as i128 {
            true => "no limit".to_string(),
            false => self.to_string(),
        }
    }
}

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

    /// A number in `bounds` (inclusive); `default` when absent. NaN lies in no range, an
    /// infinity in none with finite bounds (every key's bounds are finite).
    pub(crate) fn number<T: Number>(
        &self,
        k: &str,
        default: T,
        (min, max): (T, T),
    ) -> Result<T, ConfigError> {
        let Some(v) = self.value(k, T::WHAT, T::take)? else {
            return Ok(default);
        };
        if (min..=max).contains(&v) {
            return Ok(v);
        }
        let [v, min, max] = [v, min, max].map(T::show);
        Err(ConfigError::invalid(
            &self.key(k),
            format!("{v} is out of range; allowed: {min} to {max}"),
        ))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What `number` answers for `x = <text>` in a section `s`, bounds as the keys declare them.
    fn read<T: Number>(text: &str, default: T, bounds: (T, T)) -> Result<T, String> {
        let table: toml::Table = toml::from_str(&format!("x = {text}")).unwrap();
        let r = Reader::new("s", &table, &["x"]);
        r.number("x", default, bounds).map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_are_checked_against_their_bounds_and_errors_name_key_and_range() {
        let unit = (0.0, 1.0);
        assert_eq!(read("0.5", 0.1, unit), Ok(0.5));
        assert_eq!(read("1", 0.1, unit), Ok(1.0));
        assert_eq!(read("\"8/255\"", 0.1, unit), Ok(8.0 / 255.0));
        let err = |text: &str| read(text, 0.1, unit).unwrap_err();
        assert_eq!(err("1.5"), "s.x: 1.5 is out of range; allowed: 0 to 1");
        assert!(
            err("nan").starts_with("s.x: NaN is out of range"),
            "{}",
            err("nan")
        );
        assert!(
            err("inf").starts_with("s.x: inf is out of range"),
            "{}",
            err("inf")
        );
        assert!(err("true").contains("expected a number, got boolean"));
        let whole = (1i128, usize::MAX as i128);
        assert_eq!(read("\" 7 \"", 3, whole), Ok(7));
        assert_eq!(
            read("-1", 3, whole).unwrap_err(),
            "s.x: -1 is out of range; allowed: 1 to no limit"
        );
        assert!(read("2.5", 3, whole)
            .unwrap_err()
            .contains("expected a whole number, got float"));
        let absent: toml::Table = toml::Table::new();
        let r = Reader::new("s", &absent, &["x"]);
        assert_eq!(r.number("x", 0.25, unit).unwrap(), 0.25);
    }
}
