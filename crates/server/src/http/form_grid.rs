//! Grids from the new-run page: "Launch grid" over a grid preset, and the form's own grid fields
//! (methods x seeds). Both show how many runs they queue, with their names, and queue nothing
//! until the user confirms; the form's confirmation re-posts every typed value (tags included).

use askama::Template;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::api::{create_grid, preset_names, read_preset};
use super::views::HtmlTemplate;
use crate::error::ApiError;
use crate::state::AppState;
use fairtat_core::config::{self, RunSpec};
use fairtat_core::runs::meta::parse_tags;
use fairtat_core::runs::new_run_id;

/// Whether preset `name` is a grid (a `[grid]` table), launched as a whole.
pub fn is_grid(st: &AppState, name: &str) -> bool {
    read_preset(st, name)
        .map(|t| t.lines().any(|l| l.trim() == "[grid]"))
        .unwrap_or(false)
}

/// Grid presets, for "Launch grid".
pub fn grid_presets(st: &AppState) -> Vec<String> {
    preset_names(st)
        .into_iter()
        .filter(|n| is_grid(st, n))
        .collect()
}

#[derive(Deserialize)]
pub struct GridParams {
    preset: String,
    /// `yes` once the user has seen how many runs the grid queues.
    #[serde(default)]
    confirm: String,
}

/// A value the confirmation posts again.
pub struct Hidden {
    pub name: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "grid_confirm.html")]
pub struct GridConfirm {
    title: String,
    runs: usize,
    names: Vec<String>,
    more: usize,
    /// Where the confirmation posts, and what (the original values plus the confirmation).
    action: &'static str,
    hidden: Vec<Hidden>,
    back: String,
}

/// Names listed on the confirmation page (the rest are counted).
const CONFIRM_NAMES: usize = 40;

impl GridConfirm {
    pub fn new(
        title: String,
        specs: &[RunSpec],
        action: &'static str,
        hidden: Vec<Hidden>,
    ) -> Self {
        let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        GridConfirm {
            title,
            runs: names.len(),
            more: names.len().saturating_sub(CONFIRM_NAMES),
            names: names.into_iter().take(CONFIRM_NAMES).collect(),
            action,
            hidden,
            back: "/runs/new".into(),
        }
    }

    /// The confirmation of the form's grid: every posted pair again, plus `_confirm=yes`.
    pub fn of_form(specs: &[RunSpec], posted: &[(String, String)], preset: &str) -> Self {
        let mut hidden: Vec<Hidden> = posted
            .iter()
            .filter(|(k, _)| k != "_confirm")
            .map(|(k, v)| Hidden {
                name: k.clone(),
                value: v.clone(),
            })
            .collect();
        hidden.push(Hidden {
            name: "_confirm".into(),
            value: "yes".into(),
        });
        let mut page = GridConfirm::new("the runs of this form".into(), specs, "/runs/new", hidden);
        if !preset.is_empty() {
            page.back = format!("/runs/new?preset={}", super::pages::enc(preset));
        }
        page
    }
}

/// `POST /grids/new` (`preset=<grid preset>`): first a page naming how many runs the grid
/// queues, then (`confirm=yes`) create and queue every one of them. A client error comes back
/// as `Ok(Err(..))` for the caller to show on the form's error page.
pub async fn launch_grid(
    st: &AppState,
    p: GridParams,
) -> Result<Result<Response, ApiError>, ApiError> {
    let gid = new_run_id("grid");
    let result = async {
        if p.preset.is_empty() {
            return Err(ApiError::Invalid(config::ConfigError::invalid(
                "preset",
                format!(
                    "choose a grid preset; allowed: {}",
                    grid_presets(st).join(", ")
                ),
            )));
        }
        let text = read_preset(st, &p.preset)?;
        let loader = config::grid::presets_in(st.configs_dir());
        let specs = config::grid::expand_with(&text, &[], &gid, &loader)?.ok_or_else(|| {
            ApiError::BadRequest(format!("preset {:?} has no [grid] table", p.preset))
        })?;
        if p.confirm != "yes" {
            let hidden = [("preset", p.preset.as_str()), ("confirm", "yes")]
                .map(|(name, value)| Hidden {
                    name: name.into(),
                    value: value.into(),
                })
                .into();
            let title = format!("grid {}", p.preset);
            return Ok(Err(GridConfirm::new(title, &specs, "/grids/new", hidden)));
        }
        create_grid(st, specs).await.map(Ok)
    };
    match result.await {
        Ok(Ok(_)) => Ok(Ok(
            Redirect::to(&format!("/compare?grid={gid}")).into_response()
        )),
        Ok(Err(confirm)) => Ok(Ok(HtmlTemplate(confirm).into_response())),
        Err(err) if err.status().is_client_error() => Ok(Err(err)),
        Err(err) => Err(err),
    }
}

/// The form's grid fields: `grid_methods` and `grid_seeds`, comma-separated lists that become
/// `"method.name"` and `seed` axes of a `[grid]` table (empty fields add nothing).
pub fn grid_table(pairs: &[(String, String)]) -> toml::Table {
    let mut t = toml::Table::new();
    for (field, key) in [("grid_methods", "method.name"), ("grid_seeds", "seed")] {
        let values: Vec<toml::Value> = pairs
            .iter()
            .filter(|(k, _)| k == field)
            .flat_map(|(_, v)| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .map(|v| match v.parse::<i64>() {
                Ok(n) if key == "seed" => toml::Value::Integer(n),
                _ => toml::Value::String(v),
            })
            .collect();
        if !values.is_empty() {
            t.insert(key.into(), toml::Value::Array(values));
        }
    }
    t
}

/// The form's `tags` text as a list, so a grid keeps the typed tags beside its `grid:` tag (a
/// grid reads `tags` as a list; the form posts text).
pub fn tags_as_list(table: &mut toml::Table) -> Result<(), config::ConfigError> {
    if let Some(toml::Value::String(text)) = table.get("tags") {
        let tags = parse_tags(text)?;
        table.insert(
            "tags".into(),
            toml::Value::Array(tags.into_iter().map(toml::Value::String).collect()),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_grid_keeps_the_typed_tags() {
        let pairs = [
            ("tags", "paper, lr-sweep"),
            ("train.epochs", "2"),
            ("device", "cpu"),
        ];
        let mut t = fairtat_core::config::fields::table_from_pairs(pairs);
        tags_as_list(&mut t).unwrap();
        let grid = grid_table(&[("grid_seeds".into(), "0, 1".into())]);
        t.insert("grid".into(), toml::Value::Table(grid));
        let specs = config::grid::expand_table(t, "g1").unwrap().unwrap();
        assert_eq!(specs.len(), 2);
        for s in &specs {
            assert_eq!(s.tags, ["paper", "lr-sweep", "grid:g1"], "{}", s.name);
        }
    }
}
