//! DAFA's rho on the compare page: which seed group is the base (`base=<group name>` of the
//! query, else the first plain PGD-AT or TRADES group, else the first group), and each group's
//! rho_nat / rho_rob against it from the group means (`fairness::rho`). The base is chosen by
//! the group's method, not by its name: a name like `my-trades-ablation` says nothing.

use super::compare_tables::{GroupMeans, GroupRow};
use fairtat_core::config::MethodKind;
use fairtat_core::fairness::{rho, WorstAndAverage};

/// Methods a fairness paper measures against (the baselines rho is usually reported for).
const DEFAULT_BASES: [MethodKind; 2] = [MethodKind::PgdAt, MethodKind::Trades];

/// The base group: the named one when `base=` names a group, else the first whose method is a
/// plain baseline, else the first; None without groups.
pub fn base_group(groups: &[GroupRow], q: Option<&str>) -> Option<usize> {
    if groups.is_empty() {
        return None;
    }
    let named = query_value(q, "base").and_then(|b| groups.iter().position(|g| g.name == b));
    let baseline = || {
        groups
            .iter()
            .position(|g| MethodKind::parse(&g.method).is_some_and(|m| DEFAULT_BASES.contains(&m)))
    };
    Some(named.or_else(baseline).unwrap_or(0))
}

/// rho of `a` against `base` on (worst, overall) figures, as a table cell: two decimals as
/// DAFA reports it, `–` when it has no value (no figure, or a base at 0).
fn cell(a: (Option<f64>, Option<f64>), base: (Option<f64>, Option<f64>)) -> String {
    let pair = |(w, o): (Option<f64>, Option<f64>)| Some(WorstAndAverage::new(w?, o?));
    match (pair(a), pair(base)) {
        (Some(a), Some(b)) => rho(a, b).map_or_else(|| "–".into(), |r| format!("{r:.2}")),
        _ => "–".into(),
    }
}

/// (rho_nat, rho_rob) of `a` against `base` as cells.
pub fn rho_cells(a: &GroupMeans, base: &GroupMeans) -> (String, String) {
    (
        cell(
            (a.clean_worst, a.clean_overall),
            (base.clean_worst, base.clean_overall),
        ),
        cell(
            (a.robust_worst, a.robust_overall),
            (base.robust_worst, base.robust_overall),
        ),
    )
}

/// Fill every group's rho columns against group `base`.
pub fn fill_rho(groups: &mut [GroupRow], base: usize) {
    let Some(b) = groups.get(base).map(|g| g.means) else {
        return;
    };
    for g in groups.iter_mut() {
        (g.rho_nat, g.rho_rob) = rho_cells(&g.means, &b);
    }
}

/// The decoded value of `key=` in a raw query (`+` and `%XX` as a form sends them).
pub fn query_value(q: Option<&str>, key: &str) -> Option<String> {
    let raw = q?
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))?;
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |j: usize| {
            let s = std::str::from_utf8(bytes.get(j..j + 2)?).ok()?;
            u8::from_str_radix(s, 16).ok()
        };
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if hex(i + 1).is_some() => {
                out.extend(hex(i + 1));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// `s` percent-encoded for a query value (everything but unreserved characters).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str, method: &str, worst: f64, overall: f64) -> GroupRow {
        GroupRow {
            name: name.into(),
            method: method.into(),
            seeds: 1,
            clean_overall: String::new(),
            clean_worst: String::new(),
            robust_overall: String::new(),
            robust_worst: String::new(),
            means: GroupMeans {
                clean_overall: Some(overall + 0.3),
                clean_worst: Some(0.0),
                robust_overall: Some(overall),
                robust_worst: Some(worst),
            },
            checkpoint: String::new(),
            rho_nat: String::new(),
            rho_rob: String::new(),
            inputs: String::new(),
            run_ids: vec![],
            values: Default::default(),
        }
    }

    #[test]
    fn the_base_is_named_or_the_first_baseline_by_method_or_the_first() {
        let groups = [
            group("g-trades-like", "fair-tat", 0.3, 0.5),
            group("g-b", "trades", 0.2, 0.5),
            group("g c", "pgd-at", 0.2, 0.5),
        ];
        assert_eq!(base_group(&groups, None), Some(1), "by method, not name");
        assert_eq!(base_group(&groups, Some("ids=x&base=g+c")), Some(2));
        assert_eq!(base_group(&groups, Some("base=g%20c&ids=x")), Some(2));
        assert_eq!(base_group(&groups, Some("base=nope")), Some(1));
        assert_eq!(base_group(&groups[..1], None), Some(0));
        assert_eq!(base_group(&[], None), None);
    }

    #[test]
    fn rho_against_the_base_and_no_value_for_a_zero_base() {
        let mut groups = [
            group("dafa", "fair-tat", 0.3053, 0.4905),
            group("trades", "trades", 0.2131, 0.4980),
        ];
        fill_rho(&mut groups, 1);
        assert_eq!(groups[0].rho_rob, "0.42");
        assert_eq!(groups[1].rho_rob, "0.00");
        assert_eq!(
            groups[0].rho_nat, "–",
            "a clean worst class of 0 has no rho"
        );
    }

    #[test]
    fn query_values_round_trip() {
        let name = "run a+b/ü";
        let q = format!("ids=1&base={}", encode(name));
        assert_eq!(query_value(Some(&q), "base").as_deref(), Some(name));
        assert_eq!(query_value(Some("ids=1"), "base"), None);
    }
}
