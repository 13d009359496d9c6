//! Hyper-parameter columns of the runs list: `?cols=method.name,train.lr,attack.eps` adds one
//! column per config key, read from each run's `spec.json` (the resolved config the run
//! recorded). The choice lives in the query string, so a link or a reload keeps it, and the
//! live row refresh (`/fragments/run-rows` + the page's query) renders the same columns.

use fairtat_core::config::fields::{field, FIELDS};
use fairtat_core::runs::safe_fs::TEXT_CAP;
use fairtat_core::runs::summary::RunSummary;

use crate::error::ApiError;
use crate::state::AppState;

/// Most columns one list shows.
pub const MAX_COLS: usize = 8;

/// The config keys of `cols` (comma-separated, each a key of the form, at most [`MAX_COLS`]).
pub fn parse_cols(cols: Option<&str>) -> Result<Vec<&'static str>, ApiError> {
    let mut out: Vec<&'static str> = Vec::new();
    for c in cols.unwrap_or_default().split(',').map(str::trim) {
        if c.is_empty() {
            continue;
        }
        let f = field(c).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "cols: {c:?} is not a config key; allowed: {} (comma-separated)",
                FIELDS.iter().map(|f| f.key).collect::<Vec<_>>().join(", ")
            ))
        })?;
        if !out.contains(&f.key) {
            out.push(f.key);
        }
    }
    if out.len() > MAX_COLS {
        return Err(ApiError::BadRequest(format!(
            "cols: {} keys; allowed: at most {MAX_COLS}",
            out.len()
        )));
    }
    Ok(out)
}

/// The value of each of `cols` for each run, as text (`–` where the run recorded none).
pub async fn values(
    st: &AppState,
    rows: &[RunSummary],
    cols: &[&'static str],
) -> Result<Vec<Vec<String>>, ApiError> {
    if cols.is_empty() {
        return Ok(vec![Vec::new(); rows.len()]);
    }
    let dirs: Vec<_> = rows.iter().map(|s| st.summary_dir(s)).collect();
    let cols = cols.to_vec();
    tokio::task::spawn_blocking(move || {
        dirs.iter()
            .map(|d| {
                let spec: Option<serde_json::Value> =
                    fairtat_core::runs::safe_fs::read(d, "spec.json", TEXT_CAP)
                        .ok()
                        .and_then(|t| serde_json::from_slice(&t).ok());
                cols.iter().map(|c| cell(spec.as_ref(), c)).collect()
            })
            .collect()
    })
    .await
    .map_err(ApiError::internal)
}

/// Key `col` (`section.key` or a top-level key) of a recorded spec, as text.
fn cell(spec: Option<&serde_json::Value>, col: &str) -> String {
    let pointer = format!("/{}", col.replace('.', "/"));
    match spec.and_then(|s| s.pointer(&pointer)) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        Some(serde_json::Value::Number(n)) => n
            .as_f64()
            .map_or_else(|| n.to_string(), fairtat_core::config::short_number),
        Some(serde_json::Value::Bool(b)) => b.to_string(),
        _ => "–".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_config_keys_and_cells_read_the_spec() {
        assert_eq!(
            parse_cols(Some("method.name, train.lr,,train.lr")).unwrap(),
            ["method.name", "train.lr"]
        );
        assert!(parse_cols(None).unwrap().is_empty());
        let e = parse_cols(Some("train.nope")).unwrap_err().to_string();
        assert!(e.contains("train.nope") && e.contains("attack.eps"), "{e}");
        let many: Vec<&str> = FIELDS.iter().take(9).map(|f| f.key).collect();
        assert!(parse_cols(Some(&many.join(","))).is_err());
        let spec = serde_json::json!({
            "tags": ["a", "b"], "train": {"lr": 0.05}, "method": {"name": "pgd-at", "ccr": false}
        });
        assert_eq!(cell(Some(&spec), "train.lr"), "0.05");
        assert_eq!(cell(Some(&spec), "method.name"), "pgd-at");
        assert_eq!(cell(Some(&spec), "method.ccr"), "false");
        assert_eq!(cell(Some(&spec), "tags"), "a, b");
        assert_eq!(cell(Some(&spec), "attack.eps"), "–");
        assert_eq!(cell(None, "train.lr"), "–");
    }
}
