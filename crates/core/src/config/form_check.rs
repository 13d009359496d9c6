//! What the new-run form needs of the config beyond one key at a time: every field's error in
//! one answer (validation stops at the first error, so the form validates again with each
//! offending key set aside, once per field), and which methods read a method field (the form
//! folds it away for the others).

use super::error::ConfigError;
use super::raw::RawConfig;
use super::spec::{MethodKey, MethodKind, MethodSpec, RunSpec};

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
    check_all(table).0
}

/// [`all_errors`], and the spec that validates once the offending keys are set aside (`None`
/// when a cross-field error remains): what the checks beyond the config (the dashboard's
/// learning-rate rule, the data files) read, so they report in the same round.
pub fn check_all(table: &toml::Table) -> (Vec<ConfigError>, Option<RunSpec>) {
    let mut t = table.clone();
    let mut errors: Vec<ConfigError> = Vec::new();
    let mut spec = None;
    for _ in 0..MAX_PASSES {
        let err = match RawConfig::from_table(t.clone()).and_then(|r| r.validate()) {
            Ok(s) => {
                spec = Some(s);
                break;
            }
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
    (errors, spec)
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

    /// Every numeric key with a range: its bounds pass, and just past them the message states
    /// exactly that range, so what the form says is what the validator does.
    #[test]
    fn every_range_message_matches_its_validator_at_the_bounds() {
        use crate::config::fields::FieldKind;
        use crate::config::short_number;
        // A PreAct ResNet base: SmallCNN narrows crop_padding by a rule of its own (named so).
        let base = [("model.arch", "preact-resnet18")];
        let check = |key: &str, v: String| {
            let mut pairs: Vec<(&str, &str)> = base.to_vec();
            pairs.retain(|(k, _)| *k != key);
            pairs.push((key, v.as_str()));
            all_errors(&table_from_pairs(pairs))
        };
        let mut checked = 0;
        for f in crate::config::fields::FIELDS {
            let (Some((lo, hi)), FieldKind::Number) = (f.bounds, f.kind) else {
                continue;
            };
            let whole = lo.fract() == 0.0 && hi.fract() == 0.0 && f.help.find("8/255").is_none();
            let text = |v: f64| {
                if whole {
                    format!("{}", v as i128)
                } else {
                    format!("{v}")
                }
            };
            for v in [lo, hi] {
                if v >= u32::MAX as f64 && f.key != "seed" {
                    continue; // "no limit"
                }
                let errs = check(f.key, text(v));
                assert!(
                    errs.iter().all(|e| e.key() != Some(f.key)),
                    "{} = {v}: {errs:?}",
                    f.key
                );
            }
            let step = if whole {
                1.0
            } else {
                (hi - lo).abs().max(1.0) * 1e-3
            };
            let hi_text = if hi >= usize::MAX as f64 {
                "no limit".to_string()
            } else {
                short_number(hi)
            };
            let want = format!("allowed: {} to {hi_text}", short_number(lo));
            let mut outside = vec![lo - step];
            if hi < u32::MAX as f64 || f.key == "seed" {
                outside.push(hi + step);
            }
            for v in outside {
                let errs = check(f.key, text(v));
                let e = errs.iter().find(|e| e.key() == Some(f.key));
                let msg = e.map(|e| e.to_string()).unwrap_or_default();
                assert!(
                    msg.contains(&want),
                    "{} = {v}: {msg:?} should say {want:?}",
                    f.key
                );
            }
            checked += 1;
        }
        assert!(checked > 30, "only {checked} ranged keys");
    }
}
