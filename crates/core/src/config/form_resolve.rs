//! The new-run form resolves a config as the command line does. The form shows every key,
//! filled with the values its source (a preset or a cloned run's `config.toml`) resolves to;
//! `fairtat train --config SOURCE --set k=v` reads only what the source file sets and what the
//! user sets, and derives every other key from the method, data set and recipe. So a form
//! field is passed on only when the source file sets it or the user changed it; a field left
//! as the form showed it is derived again, and a `[method]` key that the chosen method does not
//! read is dropped. Switching a FAIR-TAT preset to `pgd-at` in the form then gives the same
//! PGD-AT as `--set method.name=pgd-at` (no class-wise epsilon, no FAWA, no extra clean
//! forwards), not FAIR-TAT's values under PGD-AT's name.

use std::collections::BTreeMap;

use super::error::ConfigError;
use super::fields::flatten;
use super::spec::{MethodKey, MethodKind, MethodSpec};

/// The pairs of `pairs` (dotted key -> form text) the command line would see over `source`;
/// with `drop_unread`, also without the `[method]` keys the posted method does not read (off for
/// a grid over methods, whose other methods may read them).
pub fn as_cli(
    pairs: &[(String, String)],
    source: &str,
    drop_unread: bool,
) -> Result<Vec<(String, String)>, ConfigError> {
    let set: toml::Table = source
        .parse()
        .map_err(|e| ConfigError::invalid("config", format!("{e}")))?;
    let explicit: Vec<String> = flatten(&set).into_iter().map(|(k, _)| k).collect();
    let spec = super::from_toml_str(source, &[])?;
    let shown: toml::Table = spec
        .to_toml()
        .parse()
        .map_err(|e| ConfigError::invalid("config", format!("{e}")))?;
    let shown: BTreeMap<String, String> = flatten(&shown).into_iter().collect();
    let method = pairs
        .iter()
        .find(|(k, _)| k == &format!("{}.{}", MethodSpec::SECTION, MethodKey::name.name()))
        .and_then(|(_, v)| MethodKind::parse(v.trim()))
        .filter(|_| drop_unread);
    Ok(pairs
        .iter()
        .filter(|(k, v)| explicit.contains(k) || shown.get(k) != Some(v))
        .filter(|(k, _)| method.is_none_or(|m| reads(m, k)))
        .cloned()
        .collect())
}

/// Whether method `m` reads dotted key `key` (every key outside `[method]` counts as read).
fn reads(m: MethodKind, key: &str) -> bool {
    let Some(name) = key
        .strip_prefix(MethodSpec::SECTION)
        .and_then(|r| r.strip_prefix('.'))
    else {
        return true;
    };
    MethodKey::ALL
        .into_iter()
        .find(|k| k.name() == name)
        .is_none_or(|k| m.def().reads(k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fields::table_from_pairs;
    use crate::config::{from_toml_str, RawConfig};

    /// The form filled from `source`, `method.name` switched to `method`, resolved.
    fn via_form(source: &str, method: &str) -> Result<String, ConfigError> {
        let shown: toml::Table = from_toml_str(source, &[])?.to_toml().parse().unwrap();
        let mut pairs = flatten(&shown);
        for (k, v) in pairs.iter_mut() {
            if k == "method.name" {
                *v = method.to_string();
            }
        }
        let kept = as_cli(&pairs, source, true)?;
        let table = table_from_pairs(kept.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Ok(RawConfig::from_table(table)?.validate()?.to_toml())
    }

    fn via_cli(source: &str, method: &str) -> Result<String, ConfigError> {
        Ok(from_toml_str(source, &[format!("method.name={method}")])?.to_toml())
    }

    #[test]
    fn switching_a_fair_tat_preset_to_pgd_at_rederives_its_defaults() {
        let src = "name = \"p\"\n[train]\nepochs = 5\n[method]\nname = \"fair-tat\"\n";
        let form = via_form(src, "pgd-at").unwrap();
        let spec = from_toml_str(&form, &[]).unwrap();
        assert!(!spec.method.class_eps);
        assert_eq!(spec.train.fawa_decay, 0.0);
        assert_eq!(spec.train.clean_forwards, 0);
        assert_eq!(spec.train.epochs, 5, "what the source sets stays");
        assert_eq!(form, via_cli(src, "pgd-at").unwrap());
    }

    #[test]
    fn an_edited_field_is_kept_and_a_field_of_another_method_is_dropped() {
        let src = "[method]\nname = \"fat\"\n";
        let shown: toml::Table = from_toml_str(src, &[]).unwrap().to_toml().parse().unwrap();
        let mut pairs = flatten(&shown);
        for (k, v) in pairs.iter_mut() {
            match k.as_str() {
                "method.name" => *v = "trades".into(),
                "train.lr" => *v = "0.05".into(),
                _ => {}
            }
        }
        let kept = as_cli(&pairs, src, true).unwrap();
        let keys: Vec<&str> = kept.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&"train.lr") && keys.contains(&"method.name"));
        assert!(!keys.contains(&"method.tau"), "FAT's key: {keys:?}");
        assert!(!keys.contains(&"train.epochs"), "unedited: {keys:?}");
    }
}
