//! The form's view of the config keys: [`FIELDS`], every key's declaration (from
//! [`super::spec`], so a key added there appears in the form with no change here), grouped in
//! [`GROUPS`]. Values travel as strings: the validator accepts "8/255", "5" and "true" for
//! numeric and boolean keys, so the form needs no typing of its own.

pub use super::schema::{Field, FieldKind};
use super::spec::ALL_FIELDS;
pub use super::spec::GROUPS;

/// Every config key, in form order within its group.
pub const FIELDS: &[Field] = &ALL_FIELDS;

/// The field for a dotted key.
pub fn field(key: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.key == key)
}

/// Flatten a config table (e.g. `toml::from_str(&spec.to_toml())`) to dotted key -> form string.
/// Arrays of strings become comma-separated text; nested sections one level deep.
pub fn flatten(table: &toml::Table) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in table {
        match v {
            toml::Value::Table(t) => {
                for (k2, v2) in t {
                    out.push((format!("{k}.{k2}"), value_text(v2)));
                }
            }
            other => out.push((k.clone(), value_text(other))),
        }
    }
    out
}

fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// Turn form pairs (dotted key -> text) into a config table of strings; empty values are left
/// out so the validator's defaults apply. Unknown keys are kept so validation reports them.
pub fn table_from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> toml::Table {
    let mut table = toml::Table::new();
    for (k, v) in pairs {
        let v = v.trim();
        if v.is_empty() || k.is_empty() {
            continue;
        }
        let value = toml::Value::String(v.to_string());
        match k.split_once('.') {
            Some((section, key)) => {
                let entry = table
                    .entry(section.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let toml::Value::Table(t) = entry {
                    t.insert(key.to_string(), value);
                }
            }
            None => {
                table.insert(k.to_string(), value);
            }
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{from_toml_str, RawConfig, SECTIONS};

    #[test]
    fn every_config_key_has_a_field() {
        for (section, keys) in SECTIONS {
            for k in keys {
                let key = format!("{section}.{k}");
                let fd = field(&key).unwrap_or_else(|| panic!("no form field for {key}"));
                assert_eq!(fd.group, section);
                assert!(GROUPS.contains(&fd.group));
                assert!(!fd.help.is_empty());
            }
        }
        for fd in FIELDS {
            assert!(
                fd.kind != FieldKind::Choice || !fd.choices.is_empty(),
                "{}",
                fd.key
            );
        }
    }

    #[test]
    fn flattened_defaults_validate_back_to_the_same_spec() {
        let spec = from_toml_str("", &[]).unwrap();
        let table: toml::Table = spec.to_toml().parse().unwrap();
        let pairs = flatten(&table);
        for (k, _) in &pairs {
            assert!(field(k).is_some(), "spec key {k} has no form field");
        }
        let t = table_from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let back = RawConfig::from_table(t).unwrap().validate().unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn bad_form_value_names_the_key() {
        let t = table_from_pairs([("train.epochs", "many"), ("name", "x")]);
        let err = RawConfig::from_table(t).unwrap().validate().unwrap_err();
        assert_eq!(err.key(), Some("train.epochs"));
    }
}
