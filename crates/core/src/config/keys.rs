//! Key and nesting checks that run before any table is built, so no input can nest a value
//! deeper than the schema: a `--set` key, an API `set` key or a grid axis key is checked against
//! the known keys ([`super::spec::SECTIONS`] and the top-level keys, so a key added there is
//! accepted here without a change), and TOML text is scanned for over-long dotted keys and
//! over-deep brackets before the parser sees it. Dropping a table nested 100,000 levels deep
//! overflows the stack (the parser's deserializer and `Drop` both recurse); refusing such input
//! up front is what keeps one request from aborting the server.

use super::error::ConfigError;
use super::spec::{SECTIONS, TOP_KEYS};

/// Dotted parts of the longest config key (`train.epochs`).
pub const MAX_KEY_PARTS: usize = 2;

/// Most dotted parts one key may have in TOML text. The schema needs 2 (`[train]` + `epochs`,
/// or `train.epochs = 5`); grid axes quote their key (`"method.name" = [...]`). The margin keeps
/// unknown-but-harmless keys reportable by the validator with its list of allowed keys.
pub const MAX_TEXT_KEY_PARTS: usize = 8;

/// Deepest nesting of arrays and inline tables in TOML text (grid axes need 2: `[[..]]` is not
/// used by the schema, but a list value inside a `set` array is 2 deep).
pub const MAX_TEXT_DEPTH: usize = 16;

/// The section name `grid` whose keys are themselves config keys.
const GRID: &str = "grid";

/// Check one dotted config key (`train.epochs`, `seed`, `grid.seed`) against the schema.
/// Unknown keys get the same error the validator gives, with the allowed keys.
pub fn check_key(key: &str) -> Result<(), ConfigError> {
    let parts: Vec<&str> = key.splitn(MAX_KEY_PARTS + 2, '.').map(str::trim).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(ConfigError::invalid(
            &shorten(key),
            "is not a config key (e.g. train.epochs)",
        ));
    }
    match parts.as_slice() {
        [g, rest @ ..] if *g == GRID && !rest.is_empty() => {
            let (_, axis) = key.split_once('.').unwrap_or_default();
            check_known(axis.trim(), "grid.")
        }
        _ => check_known(key, ""),
    }
}

/// `key` (without any `grid.` prefix, which `shown` carries for messages) is a known key.
fn check_known(key: &str, shown: &str) -> Result<(), ConfigError> {
    let parts: Vec<&str> = key.splitn(MAX_KEY_PARTS + 1, '.').map(str::trim).collect();
    let top_allowed = || {
        let mut v: Vec<&str> = TOP_KEYS.to_vec();
        v.extend(SECTIONS.iter().map(|(s, _)| *s));
        format!("; allowed: {}", v.join(", "))
    };
    match parts.as_slice() {
        [k] if TOP_KEYS.contains(k) || SECTIONS.iter().any(|(s, _)| s == k) => Ok(()),
        [k] if shown.is_empty() && *k == GRID => Ok(()),
        [section, k] => match SECTIONS.iter().find(|(s, _)| s == section) {
            Some((_, keys)) if keys.contains(k) => Ok(()),
            Some((s, keys)) => Err(ConfigError::UnknownKey {
                key: shorten(&format!("{shown}{key}")),
                hint: format!("; allowed in [{s}]: {}", keys.join(", ")),
            }),
            None => Err(ConfigError::UnknownKey {
                key: shorten(&format!("{shown}{key}")),
                hint: top_allowed(),
            }),
        },
        [_] => Err(ConfigError::UnknownKey {
            key: shorten(&format!("{shown}{key}")),
            hint: top_allowed(),
        }),
        _ => Err(ConfigError::invalid(
            &shorten(&format!("{shown}{key}")),
            format!(
                "has more than {MAX_KEY_PARTS} dotted parts; config keys are `name` or \
                 `section.key` (e.g. train.epochs)"
            ),
        )),
    }
}

/// A key as shown in a message: at most 60 characters (a 24 KB key is not worth echoing).
pub fn shorten(key: &str) -> String {
    if key.len() <= 60 {
        return key.to_string();
    }
    let mut end = 57;
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &key[..end])
}

/// Scan TOML text (outside strings and comments) for a dotted key of more than
/// [`MAX_TEXT_KEY_PARTS`] parts or brackets nested deeper than [`MAX_TEXT_DEPTH`]. Linear, no
/// recursion; a string the scanner misreads can only make it stricter, never let depth through.
pub fn check_toml_text(text: &str) -> Result<(), ConfigError> {
    let b = text.as_bytes();
    let (mut i, mut line, mut depth, mut dots) = (0usize, 1usize, 0usize, 0usize);
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                line += 1;
                dots = 0;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' => {
                let (end, newlines) = skip_string(b, i);
                line += newlines;
                i = end;
                continue;
            }
            b'.' => {
                dots += 1;
                if dots >= MAX_TEXT_KEY_PARTS {
                    return Err(ConfigError::Syntax(format!(
                        "line {line}: a key with more than {MAX_TEXT_KEY_PARTS} dotted parts; \
                         config keys have at most {MAX_KEY_PARTS} (e.g. train.epochs)"
                    )));
                }
            }
            b'[' | b'{' => {
                depth += 1;
                dots = 0;
                if depth > MAX_TEXT_DEPTH {
                    return Err(ConfigError::Syntax(format!(
                        "line {line}: lists or tables nested more than {MAX_TEXT_DEPTH} deep"
                    )));
                }
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                dots = 0;
            }
            // Parts of a dotted key (bare keys, spaces around dots) keep the count going.
            c if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b' ' || c == b'\t' => {
            }
            _ => dots = 0,
        }
        i += 1;
    }
    Ok(())
}

/// End of the string starting at `b[start]` (a quote) and the newlines inside it. Handles
/// basic ("..", escapes) and literal ('..') strings, single- and triple-quoted.
fn skip_string(b: &[u8], start: usize) -> (usize, usize) {
    let q = b[start];
    let triple = b.len() >= start + 3 && b[start + 1] == q && b[start + 2] == q;
    let mut i = start + if triple { 3 } else { 1 };
    let mut newlines = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if q == b'"' => i += 1,
            b'\n' => {
                newlines += 1;
                if !triple {
                    return (i, newlines - 1);
                }
            }
            c if c == q => {
                if !triple {
                    return (i + 1, newlines);
                }
                if b.len() >= i + 3 && b[i + 1] == q && b[i + 2] == q {
                    return (i + 3, newlines);
                }
            }
            _ => {}
        }
        i += 1;
    }
    (i, newlines)
}

/// Deepest nesting of a JSON config body: config -> section -> key -> list -> (grid) value.
pub const MAX_JSON_DEPTH: usize = 5;

/// Check a JSON config body's nesting before it becomes a TOML table (walked with an explicit
/// stack, so the check itself cannot overflow).
pub fn check_json_depth(v: &serde_json::Value) -> Result<(), ConfigError> {
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        let children: Vec<&serde_json::Value> = match v {
            serde_json::Value::Array(a) => a.iter().collect(),
            serde_json::Value::Object(o) => o.values().collect(),
            _ => continue,
        };
        if d >= MAX_JSON_DEPTH {
            return Err(ConfigError::Syntax(format!(
                "lists or objects nested more than {MAX_JSON_DEPTH} deep; the config schema \
                 needs at most {MAX_JSON_DEPTH} (e.g. {{\"grid\": {{\"seed\": [0, 1]}}}})"
            )));
        }
        stack.extend(children.into_iter().map(|c| (c, d + 1)));
    }
    Ok(())
}

/// Parse TOML text into a table after [`check_toml_text`].
pub fn parse_toml(text: &str) -> Result<toml::Table, ConfigError> {
    check_toml_text(text)?;
    text.parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax(e.message().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_pass_and_unknown_or_deep_keys_are_named() {
        for k in [
            "train.epochs",
            "seed",
            "name",
            "grid.seed",
            "grid.method.name",
            "train",
        ] {
            check_key(k).unwrap_or_else(|e| panic!("{k}: {e}"));
        }
        let e = check_key("train.epochz").unwrap_err().to_string();
        assert!(
            e.contains("train.epochz") && e.contains("allowed in [train]"),
            "{e}"
        );
        let e = check_key("bogus").unwrap_err().to_string();
        assert!(e.contains("bogus") && e.contains("allowed: name"), "{e}");
        let deep = vec!["a"; 100_000].join(".");
        let e = check_key(&deep).unwrap_err();
        assert!(e.to_string().len() < 300, "the message stays short: {e}");
        let e = check_key("train.epochs.x").unwrap_err().to_string();
        assert!(e.contains("more than 2 dotted parts"), "{e}");
        assert!(check_key("a..b").is_err());
    }

    #[test]
    fn text_scan_rejects_deep_keys_and_brackets_only() {
        check_toml_text("a.b = 1.5\n[train]\nlr = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]\n")
            .unwrap();
        check_toml_text("x = \"a.b.c.d.e.f.g.h.i.j\"\n[grid]\n\"method.name\" = ['a']\n").unwrap();
        check_toml_text("s = '''\n[[[[[[[[[[[[[[[[[[[[[[\n'''\n# [[[[[[[[[[[[[[[[[[[[[[[[\n")
            .unwrap();
        let deep = format!("{} = 1\n", vec!["a"; 100_000].join("."));
        assert!(check_toml_text(&deep)
            .unwrap_err()
            .to_string()
            .contains("line 1"));
        let arrays = format!("x = {}{}\n", "[".repeat(12_000), "]".repeat(12_000));
        assert!(parse_toml(&arrays)
            .unwrap_err()
            .to_string()
            .contains("nested"));
        let header = format!("[{}]\n", vec!["a"; 12_000].join("."));
        assert!(parse_toml(&header).is_err());
    }

    #[test]
    fn json_bodies_deeper_than_the_schema_are_refused() {
        let ok = serde_json::json!({"grid": {"seed": [0, 1]}, "train": {"epochs": 2}});
        check_json_depth(&ok).unwrap();
        let mut deep = serde_json::json!(1);
        for _ in 0..100 {
            deep = serde_json::json!([deep]);
        }
        let e = check_json_depth(&serde_json::json!({ "tags": deep })).unwrap_err();
        assert!(e.to_string().contains("nested more than 5 deep"), "{e}");
    }

    #[test]
    fn every_shipped_preset_passes_the_scan() {
        let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs")];
        let mut seen = 0;
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "toml") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    check_toml_text(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                    seen += 1;
                }
            }
        }
        assert!(seen > 0);
    }
}
