//! The declarations against what is derived from them and what ships beside them: the form's
//! folding, the presets in `configs/`, the README's `[method]` and `[slurm]` tables, and the
//! rule that a method's name is spelled once in this crate.

use std::path::{Path, PathBuf};

use crate::config::fields::FIELDS;
use crate::config::form_check::methods_using;
use crate::config::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn methods_are_declared_once_in_kind_order() {
    for (i, m) in MethodKind::ALL.into_iter().enumerate() {
        assert_eq!(METHODS[i].kind, m, "METHODS[{i}]");
        assert_eq!(m.def().kind, m);
    }
    for k in MethodKey::ALL {
        let readers = MethodKind::ALL.iter().filter(|m| m.def().reads(k)).count();
        assert!(readers > 0, "method.{} is read by no method", k.name());
    }
}

/// The form shows a method field for exactly the methods that declare they read it.
#[test]
fn form_shows_each_method_the_keys_it_reads() {
    for m in MethodKind::ALL {
        for f in FIELDS.iter().filter(|f| f.section == MethodSpec::SECTION) {
            let shown = methods_using(f.key).is_none_or(|ms| ms.contains(&m.as_str()));
            let key = MethodKey::ALL
                .into_iter()
                .find(|k| k.name() == f.name)
                .unwrap();
            assert_eq!(shown, m.def().reads(key), "{m}: {}", f.key);
        }
    }
    // The drift this declaration fixed: the FAT family reads the class-wise epsilon.
    for k in [
        "method.class_eps",
        "method.lambda1",
        "method.calibration_start",
    ] {
        let users = methods_using(k).unwrap();
        assert!(
            users.contains(&"fat") && users.contains(&"fair-tat-fat"),
            "{k}"
        );
    }
    assert_eq!(methods_using("method.name"), None);
    assert_eq!(methods_using("train.lr"), None);
}

/// Every preset sets only `[method]` keys its method reads.
#[test]
fn presets_set_only_keys_their_method_reads() {
    let mut seen = 0;
    for dir in [repo().join("configs"), repo().join("configs/table1")] {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "toml") {
                continue;
            }
            let t = keys::parse_toml(&std::fs::read_to_string(&p).unwrap()).unwrap();
            let Some(method) = t.get("method").and_then(|v| v.as_table()) else {
                continue;
            };
            assert!(
                !t.contains_key("grid"),
                "{}: a grid sets [method]",
                p.display()
            );
            let m = method
                .get("name")
                .and_then(|v| v.as_str())
                .map_or(MethodKind::FairTat, |s| MethodKind::parse(s).unwrap());
            for k in method.keys() {
                let key = MethodKey::ALL.into_iter().find(|x| x.name() == k);
                let key = key.unwrap_or_else(|| panic!("{}: method.{k}", p.display()));
                assert!(
                    m.def().reads(key),
                    "{}: {m} does not read method.{k}",
                    p.display()
                );
                seen += 1;
            }
        }
    }
    assert!(seen > 20, "{seen} method keys in presets");
}

/// Each method's default of `key` (train.epochs at its default), as the README shows it.
fn default_of(m: MethodKind, key: &str) -> String {
    let sets = [format!("method.name={m}"), "train.init_checkpoint=x".into()];
    let spec = from_toml_str("", &sets).unwrap();
    let table: toml::Table = spec.to_toml().parse().unwrap();
    match &table["method"][key] {
        toml::Value::String(s) => format!("`{s}`"),
        v => format!("`{v}`"),
    }
}

/// The README's `[method]` table, generated from the declarations.
fn method_table() -> String {
    let mut out = String::from("| key | default | read by | meaning |\n|---|---|---|---|\n");
    for f in FIELDS.iter().filter(|f| f.section == MethodSpec::SECTION) {
        let users: Vec<MethodKind> = match methods_using(f.key) {
            Some(names) => names.iter().filter_map(|n| MethodKind::parse(n)).collect(),
            None => MethodKind::ALL.to_vec(),
        };
        // The method's own name defaults to the empty config's.
        let users_of_default = match f.name == MethodKey::name.name() {
            true => vec![from_toml_str("", &[]).unwrap().method.name],
            false => users.clone(),
        };
        let mut by_value: Vec<(String, Vec<&str>)> = Vec::new();
        for m in &users_of_default {
            let v = default_of(*m, f.name);
            match by_value.iter_mut().find(|(x, _)| *x == v) {
                Some((_, ms)) => ms.push(m.as_str()),
                None => by_value.push((v, vec![m.as_str()])),
            }
        }
        by_value.sort_by_key(|(_, ms)| std::cmp::Reverse(ms.len()));
        let default = by_value
            .iter()
            .enumerate()
            .map(|(i, (v, ms))| match i {
                0 => v.clone(),
                _ => format!("{v} for {}", ms.join(", ")),
            })
            .collect::<Vec<_>>()
            .join("; ");
        let read_by = match users.len() == MethodKind::ALL.len() {
            true => "all".to_string(),
            false => users
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        };
        let mut meaning = f.help.to_string();
        if f.kind == crate::config::fields::FieldKind::Choice {
            let quoted: Vec<String> = f.choices.iter().map(|c| format!("`{c}`")).collect();
            meaning += &format!(": {}", quoted.join(", "));
        }
        out += &format!("| `{}` | {default} | {read_by} | {meaning} |\n", f.name);
    }
    out
}

/// The first table after `heading` in the README.
fn readme_table(heading: &str) -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme
        .split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("README has a section {heading}"));
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The README's table under `heading` is `want`, the one generated for `section`.
fn assert_readme_table(heading: &str, section: &str, want: String) {
    let table = readme_table(heading);
    assert!(
        table == want,
        "README's [{section}] table differs from the declarations; replace it with:\n{want}"
    );
}

#[test]
fn readme_method_table_matches_the_declarations() {
    assert_readme_table("### Method options (`[method]`)", "method", method_table());
}

/// The README's `[slurm]` table, generated from the declarations.
fn slurm_table() -> String {
    let mut out = String::from("| key | meaning |\n|---|---|\n");
    for f in FIELDS.iter().filter(|f| f.section == SlurmSpec::SECTION) {
        out += &format!("| `{}` | {} |\n", f.key, f.help);
    }
    out
}

#[test]
fn readme_slurm_table_matches_the_declarations() {
    assert_readme_table("### Per-run resources (`[slurm]`)", "slurm", slurm_table());
}

/// A method's name is a string in this crate's non-test code once: in its `choices!` line.
#[test]
fn method_names_are_spelled_once() {
    let mut files = vec![];
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs")
                && !p.file_stem().unwrap().to_string_lossy().ends_with("tests")
            {
                files.push(std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    for m in MethodKind::NAMES {
        let quoted = format!("\"{m}\"");
        let count: usize = files
            .iter()
            .map(|text| {
                let code = text.split("#[cfg(test)]").next().unwrap_or("");
                code.lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .map(|l| l.matches(&quoted).count())
                    .sum::<usize>()
            })
            .sum();
        assert_eq!(
            count, 1,
            "{quoted} is spelled {count} times in non-test code"
        );
    }
}

#[test]
fn names_are_1_to_80_printable_characters() {
    for bad in [
        "",
        "   ",
        "a\u{0}b",
        "line\rbreak",
        "esc\u{1b}[31m",
        &"x".repeat(81),
    ] {
        let e = crate::config::check_run_name(bad).unwrap_err().to_string();
        assert!(e.contains("1 to 80 printable characters"), "{bad:?}: {e}");
    }
    // 80 characters of a multi-byte script are fine: the rule counts characters, not bytes.
    crate::config::check_run_name(&"é".repeat(80)).unwrap();
    crate::config::check_run_name("fair-tat seed 0").unwrap();
    let text = "name = \"a\\u0000b\"\n";
    let e = crate::config::from_toml_str(text, &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("printable"), "{e}");
}
