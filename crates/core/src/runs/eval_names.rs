//! Typed names of the evaluations an epoch records, parsed in this one place: the attack
//! (`clean`, `fgsm`, `pgd-<k>`, ...) and the strongest PGD evaluation of a split and model,
//! which the summary, the charts and the API call "robust".

use super::events::{EpochRecord, EvalRecord};

/// An evaluation's attack as the trainer names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttackName {
    Clean,
    Fgsm,
    /// `pgd-<k>`: k steps of L-inf PGD.
    Pgd(u64),
    /// Anything else (`train-attack`, `autoattack`, `square-5000` ...).
    Other(String),
}

impl AttackName {
    pub fn parse(s: &str) -> AttackName {
        match s {
            "clean" => AttackName::Clean,
            "fgsm" => AttackName::Fgsm,
            _ => match s.strip_prefix("pgd-").and_then(|k| k.parse::<u64>().ok()) {
                Some(k) => AttackName::Pgd(k),
                None => AttackName::Other(s.to_string()),
            },
        }
    }

    pub fn pgd_steps(&self) -> Option<u64> {
        match self {
            AttackName::Pgd(k) => Some(*k),
            _ => None,
        }
    }
}

impl std::fmt::Display for AttackName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttackName::Clean => f.write_str("clean"),
            AttackName::Fgsm => f.write_str("fgsm"),
            AttackName::Pgd(k) => write!(f, "pgd-{k}"),
            AttackName::Other(s) => f.write_str(s),
        }
    }
}

impl EvalRecord {
    pub fn attack_name(&self) -> AttackName {
        AttackName::parse(&self.attack)
    }
}

impl EpochRecord {
    /// The PGD evaluation with the most steps of `split` and `model` (e.g. test / live).
    pub fn strongest_pgd(&self, split: &str, model: &str) -> Option<&EvalRecord> {
        self.evals
            .iter()
            .filter(|e| e.split == split && e.model == model)
            .filter_map(|e| e.attack_name().pgd_steps().map(|k| (k, e)))
            .max_by_key(|(k, _)| *k)
            .map(|(_, e)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in [
            "clean",
            "fgsm",
            "pgd-20",
            "train-attack",
            "pgd-x",
            "autoattack",
        ] {
            assert_eq!(AttackName::parse(s).to_string(), s);
        }
        assert_eq!(AttackName::parse("pgd-20").pgd_steps(), Some(20));
        assert_eq!(AttackName::parse("pgd-x").pgd_steps(), None);
    }
}
