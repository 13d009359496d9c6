//! Property tests of config parsing on arbitrary input: `--set` strings, TOML text, JSON bodies
//! and grid tables never panic and never overflow the stack (an overflow aborts this process,
//! so passing means none happened), and deep nesting is refused rather than built.

use fairtat::config::{self, grid, RawConfig};
use proptest::prelude::*;

/// Text made of the characters that matter to TOML nesting, in long runs.
fn tomlish() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("a".to_string()),
        Just(".".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("=".to_string()),
        Just(" = ".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("\n".to_string()),
        Just(",".to_string()),
        Just("1".to_string()),
        Just("#".to_string()),
        Just("train.epochs".to_string()),
        Just("[grid]\n".to_string()),
        (1usize..3000).prop_map(|n| "a.".repeat(n)),
        (1usize..3000).prop_map(|n| "[".repeat(n)),
        (1usize..3000).prop_map(|n| "{a=".repeat(n)),
        "[ -~]{0,12}",
    ];
    prop::collection::vec(atom, 0..40).prop_map(|v| v.concat())
}

fn json_value(depth: u32) -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        any::<i64>().prop_map(|i| serde_json::json!(i)),
        tomlish().prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(depth, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(tomlish(), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn toml_text_and_sets_never_panic(text in tomlish(), set in tomlish()) {
        let _ = config::from_toml_str(&text, &[]);
        let _ = config::from_toml_str("", std::slice::from_ref(&set));
        let _ = config::from_toml_str("", &[format!("{set}=1"), format!("train.lr={set}")]);
        let _ = grid::expand(&text, &[set], "g");
        let _ = grid::expand(&format!("[grid]\n{text}"), &[], "g");
    }

    #[test]
    fn json_bodies_and_grid_tables_never_panic(v in json_value(8), key in tomlish()) {
        // The API's path: JSON -> TOML table -> validation or grid expansion.
        let body = serde_json::json!({ "grid": { key.clone(): [1, 2] }, "x": v.clone() });
        for candidate in [v, body] {
            let text = candidate.to_string();
            let Ok(parsed) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
            if let Ok(table) = serde_json::from_value::<toml::Table>(parsed) {
                let _ = RawConfig::from_table(table.clone()).and_then(|r| r.validate());
                let _ = grid::expand_table(table, "g");
            }
        }
    }
}

#[test]
fn deep_input_is_refused_at_every_entry_point() {
    for parts in [12_000, 100_000] {
        let k = vec!["a"; parts].join(".");
        let cases = [
            config::from_toml_str(&format!("{k} = 1\n"), &[]).map(|_| ()),
            config::from_toml_str(&format!("[{k}]\n"), &[]).map(|_| ()),
            config::from_toml_str("", &[format!("{k}=1")]).map(|_| ()),
            config::from_toml_str("", &[format!("train.lr={}", "[".repeat(parts))]).map(|_| ()),
            grid::expand(&format!("[grid]\n\"{k}\" = [1]\n"), &[], "g").map(|_| ()),
            grid::expand(&format!("x = {}\n", "{a=".repeat(parts)), &[], "g").map(|_| ()),
        ];
        for (i, r) in cases.into_iter().enumerate() {
            let e = r.expect_err("deep input must be refused").to_string();
            assert!(e.len() < 400, "case {i}: the message stays short: {e}");
            assert!(
                e.contains("dotted parts") || e.contains("nested"),
                "case {i}: {e}"
            );
        }
    }
}
