//! What the new-run form needs of the config beyond one key at a time: every field's error in
//! one answer (validation stops at the first error, so the form validates again with each
//! offending key set aside, once per field), and which methods read a method field (the form
//! folds it away for the others).

use super::error::ConfigError;
use super::raw::RawConfig;
use super::spec::{MethodKey, MethodKind, MethodSpec};

/// The methods that read `method.<key>` (as their [`super::MethodDef`] declares); `None` for
/// keys every method reads (and `name`).
pub fn methods_using(key: &str) -> Option<Vec<&'static str>> {
    let name = key.strip_prefix(MethodSpec::SECTION)?.strip_prefix('.')?;
    let k = MethodKey::ALL.into_iter().find(|k| k.name() == name)?;
    (k != MethodKey::name).then(|| {
        MethodKind::ALL
            .into_iter()
            .filter(|m| m.def().reads(k))
            .map(|m| m.as_str())
            .collect()
    })
}

/// Upper bound on validation passes (one per field is enough).
const MAX_PASSES: usize = 64;

/// Every error of `table` (a form's `section.key` values): validate, and while an error names a
/// key the table sets, drop that key (its default stands in) and validate again. An error about
/// a key the table does not set (a cross-field check) ends the search.
pub fn all_errors(table: &toml::Table) -> Vec<ConfigError> {
    let mut t = table.clone();
    let mut errors: Vec<ConfigError> = Vec::new();
    for _ in 0..MAX_PASSES {
        let err = match RawConfig::from_table(t.clone()).and_then(|r| r.validate()) {
            Ok(_) => break,
            Err(e) => e,
        };
        let removed = err.key().is_some_and(|k| remove_key(&mut t, k));
        let repeat = errors
            .iter()
            .any(|e| e.key().is_some() && e.key() == err.key());
        if !repeat {
            errors.push(err);
        }
        if !removed || repeat {
            break;
        }
    }
    errors
}

/// Remove the dotted `key` from `t`; whether it was there.
fn remove_key(t: &mut toml::Table, key: &str) -> bool {
    match key.split_once('.') {
        Some((section, rest)) => match t.get_mut(section) {
            Some(toml::Value::Table(sub)) => {
                let removed = sub.remove(rest).is_some();
                if sub.is_empty() {
                    t.remove(section);
                }
                removed
            }
            _ => false,
        },
        None => t.remove(key).is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fields::table_from_pairs;

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let t = table_from_pairs([
            ("train.epochs", "many"),
            ("train.batch_size", "-3"),
            ("method.name", "nope"),
            ("attack.steps", "2"),
        ]);
        let errs = all_errors(&t);
        let keys: Vec<&str> = errs.iter().filter_map(|e| e.key()).collect();
        for k in ["train.epochs", "train.batch_size", "method.name"] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
        assert!(
            !keys.contains(&"attack.steps"),
            "a valid field is not flagged"
        );
        let ok = table_from_pairs([("train.epochs", "2")]);
        assert!(all_errors(&ok).is_empty());
    }

    #[test]
    fn method_fields_belong_to_their_methods() {
        assert_eq!(methods_using("method.name"), None);
        assert_eq!(methods_using("train.lr"), None);
        assert!(methods_using("method.tau").unwrap().contains(&"fat"));
        assert!(!methods_using("method.tau").unwrap().contains(&"pgd-at"));
        assert!(methods_using("method.frl_lim").unwrap().contains(&"frl-rw"));
        assert!(methods_using("method.softmax_scale")
            .unwrap()
            .contains(&"fair-tat-cfa"));
        // Every method field of the form is claimed by at least one known method.
        for f in crate::config::fields::FIELDS {
            if let Some(ms) = methods_using(f.key) {
                assert!(!ms.is_empty(), "{}", f.key);
                for m in ms {
                    assert!(crate::config::MethodKind::NAMES.contains(&m), "{m}");
                }
            }
        }
    }
}
