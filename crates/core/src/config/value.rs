//! `--set key=value` on a TOML table.

use super::error::ConfigError;
use super::keys;

/// Apply one `key.path=value` override. The value is read as a TOML literal when it parses as
/// one (`5`, `0.1`, `true`, `["a","b"]`), otherwise as a plain string (`fair-tat`).
pub fn apply_set(table: &mut toml::Table, set: &str) -> Result<(), ConfigError> {
    let (key, raw) = set
        .split_once('=')
        .ok_or_else(|| ConfigError::BadSet(set.to_string()))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(|p| p.trim().is_empty()) {
        return Err(ConfigError::BadSet(set.to_string()));
    }
    let raw = raw.trim();
    keys::check_key(key)?;
    // Checked like a TOML body, so `[[[[...` cannot build a deep value.
    let literal = format!("x = {raw}");
    keys::check_toml_text(&literal).map_err(|e| ConfigError::invalid(key, e.to_string()))?;
    let value = literal
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("x"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    set_value(table, key, value)
}

/// Put `value` at the dotted `key` (`train.epochs`), creating sections on the way.
pub fn set_value(
    table: &mut toml::Table,
    key: &str,
    value: toml::Value,
) -> Result<(), ConfigError> {
    // Before any table is built: a known key has at most a few parts.
    keys::check_key(key)?;
    let parts: Vec<&str> = key.split('.').map(str::trim).collect();
    let mut cur = table;
    for p in &parts[..parts.len() - 1] {
        let entry = cur
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(ConfigError::invalid(key, format!("{p} is not a section"))),
        };
    }
    cur.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_parses_literals_strings_and_nested_keys() {
        let mut t = toml::Table::new();
        apply_set(&mut t, "train.epochs=5").unwrap();
        apply_set(&mut t, "method.name=fair-tat").unwrap();
        apply_set(&mut t, "attack.eps=\"8/255\"").unwrap();
        assert_eq!(t["train"]["epochs"].as_integer(), Some(5));
        assert_eq!(t["method"]["name"].as_str(), Some("fair-tat"));
        assert_eq!(t["attack"]["eps"].as_str(), Some("8/255"));
        assert!(apply_set(&mut t, "noequals").is_err());
        assert!(apply_set(&mut t, "a..b=1").is_err());
        assert!(apply_set(&mut t, "train.epochs.x=1").is_err());
        let deep = format!("{}=1", vec!["a"; 100_000].join("."));
        assert!(apply_set(&mut t, &deep).is_err());
        let nested = format!("train.lr={}", "[".repeat(12_000));
        let e = apply_set(&mut t, &nested).unwrap_err().to_string();
        assert!(e.contains("train.lr") && e.contains("nested"), "{e}");
    }
}
