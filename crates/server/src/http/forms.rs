//! The new-run form, generated from `config::fields`: grouped fields, a preset picker,
//! `?clone=<id>` filling values from that run's config, and inline errors that name the field
//! and its allowed values. Validation is the config's own, so form and API agree.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::api::{create_grid, create_run, preset_names, read_preset};
use super::pages::{options, Opt};
use super::views::HtmlTemplate;
use crate::error::ApiError;
use crate::state::AppState;
use fairtat_core::config::fields::{flatten, table_from_pairs, FieldKind, FIELDS, GROUPS};
use fairtat_core::config::form_check::{all_errors, methods_using};
use fairtat_core::config::form_resolve::as_cli;
use fairtat_core::config::{self, RawConfig};
use fairtat_core::runs::{new_run_id, RunId};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/runs/new", get(new_form).post(submit))
        .route("/grids/new", post(launch_grid))
}

fn is_grid(st: &AppState, name: &str) -> bool {
    read_preset(st, name)
        .map(|t| t.lines().any(|l| l.trim() == "[grid]"))
        .unwrap_or(false)
}

/// Presets the form can load (single runs).
fn single_presets(st: &AppState) -> Vec<String> {
    preset_names(st)
        .into_iter()
        .filter(|n| !is_grid(st, n))
        .collect()
}

/// Grid presets (a `[grid]` table), launched as a whole.
fn grid_presets(st: &AppState) -> Vec<String> {
    preset_names(st)
        .into_iter()
        .filter(|n| is_grid(st, n))
        .collect()
}

#[derive(Deserialize)]
struct GridParams {
    preset: String,
    /// `yes` once the user has seen how many runs the grid queues.
    #[serde(default)]
    confirm: String,
}

#[derive(Template)]
#[template(path = "grid_confirm.html")]
struct GridConfirm {
    preset: String,
    runs: usize,
    names: Vec<String>,
    more: usize,
}

/// Names listed on the confirmation page (the rest are counted).
const CONFIRM_NAMES: usize = 40;

/// `POST /grids/new` (`preset=<grid preset>`): first a page naming how many runs the grid
/// queues, then (`confirm=yes`) create and queue every one of them.
async fn launch_grid(
    State(st): State<AppState>,
    Form(p): Form<GridParams>,
) -> Result<Response, ApiError> {
    let gid = new_run_id("grid");
    let result = async {
        if p.preset.is_empty() {
            return Err(ApiError::Invalid(config::ConfigError::invalid(
                "preset",
                format!(
                    "choose a grid preset; allowed: {}",
                    grid_presets(&st).join(", ")
                ),
            )));
        }
        let text = read_preset(&st, &p.preset)?;
        let loader = config::grid::presets_in(&st.configs_dir());
        let specs = config::grid::expand_with(&text, &[], &gid, &loader)?.ok_or_else(|| {
            ApiError::BadRequest(format!("preset {:?} has no [grid] table", p.preset))
        })?;
        if p.confirm != "yes" {
            let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
            return Ok(Err(GridConfirm {
                preset: p.preset.clone(),
                runs: names.len(),
                more: names.len().saturating_sub(CONFIRM_NAMES),
                names: names.into_iter().take(CONFIRM_NAMES).collect(),
            }));
        }
        create_grid(&st, specs).await.map(Ok)
    };
    match result.await {
        Ok(Ok(_)) => Ok(Redirect::to(&format!("/compare?grid={gid}")).into_response()),
        Ok(Err(confirm)) => Ok(HtmlTemplate(confirm).into_response()),
        Err(err) if err.status().is_client_error() => {
            Ok(error_page(&st, &[], &[err], &NewParams::default()))
        }
        Err(err) => Err(err),
    }
}

pub struct FieldView {
    pub key: &'static str,
    pub kind: &'static str,
    pub help: &'static str,
    pub value: String,
    pub choices: Vec<Opt>,
    pub error: String,
    /// Space-separated methods that read this field; empty: every method.
    pub methods: String,
}

pub struct GroupView {
    pub name: &'static str,
    pub fields: Vec<FieldView>,
}

#[derive(Template)]
#[template(path = "new_run.html")]
struct NewRunPage {
    presets: Vec<Opt>,
    grids: Vec<String>,
    source: String,
    /// The preset or the cloned run the values came from, kept through a failed submit: the
    /// submit reads the config as the command line would over it.
    preset: String,
    clone: String,
    /// Every error of the last submit, each naming its field.
    errors: Vec<String>,
    groups: Vec<GroupView>,
}

#[derive(Deserialize, Default)]
pub struct NewParams {
    preset: Option<String>,
    clone: Option<String>,
}

/// The form's groups with `values` filled in and each error next to the field it names.
fn groups(values: &[(String, String)], errors: &[ApiError]) -> Vec<GroupView> {
    let value_of = |k: &str| {
        values
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    GROUPS
        .iter()
        .map(|g| GroupView {
            name: g,
            fields: FIELDS
                .iter()
                .filter(|f| f.group == *g)
                .map(|f| {
                    let value = value_of(f.key);
                    let mut choices: Vec<String> =
                        f.choices.iter().map(|c| c.to_string()).collect();
                    // Keep a typed-in value that is not allowed visible next to its error.
                    if f.kind != FieldKind::Text
                        && f.kind != FieldKind::Number
                        && !value.is_empty()
                        && !choices.contains(&value)
                    {
                        choices.push(value.clone());
                    }
                    FieldView {
                        key: f.key,
                        kind: f.kind.as_str(),
                        help: f.help,
                        choices: options(choices, Some(value.as_str())),
                        value,
                        error: errors
                            .iter()
                            .filter(|e| e.field() == Some(f.key))
                            .map(ApiError::public_message)
                            .collect::<Vec<_>>()
                            .join("; "),
                        methods: methods_using(f.key)
                            .map(|m| m.join(" "))
                            .unwrap_or_default(),
                    }
                })
                .collect(),
        })
        .collect()
}

/// The form's grid fields: `grid_methods` and `grid_seeds`, comma-separated lists that become
/// `"method.name"` and `seed` axes of a `[grid]` table (empty fields add nothing).
fn grid_table(pairs: &[(String, String)]) -> toml::Table {
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

/// Where the form's values come from (a cloned run or a preset; empty for the defaults) and its
/// config text.
fn source_text(st: &AppState, p: &NewParams) -> Result<(String, String), ApiError> {
    Ok(
        if let Some(id) = p.clone.as_deref().filter(|s| !s.is_empty()) {
            let Ok(run) = id.parse::<RunId>() else {
                return Err(ApiError::NotFound(format!("run {id:?}")));
            };
            let text = std::fs::read_to_string(st.run_dir(&run).config_toml())
                .map_err(|_| ApiError::NotFound(format!("config of run {id}")))?;
            (format!("run {id}"), text)
        } else if let Some(name) = p.preset.as_deref().filter(|s| !s.is_empty()) {
            (format!("preset {name}"), read_preset(st, name)?)
        } else {
            (String::new(), String::new())
        },
    )
}

/// Values of the form: the resolved spec of a preset or a cloned run, else the defaults.
fn initial(st: &AppState, p: &NewParams) -> Result<(String, Vec<(String, String)>), ApiError> {
    let (source, text) = source_text(st, p)?;
    let spec = config::from_toml_str(&text, &[])?;
    let table: toml::Table = spec.to_toml().parse().map_err(ApiError::internal)?;
    Ok((source, flatten(&table)))
}

async fn new_form(
    State(st): State<AppState>,
    Query(p): Query<NewParams>,
) -> Result<Response, ApiError> {
    let (source, values) = initial(&st, &p)?;
    Ok(HtmlTemplate(NewRunPage {
        presets: options(single_presets(&st), p.preset.as_deref()),
        grids: grid_presets(&st),
        source,
        preset: p.preset.clone().unwrap_or_default(),
        clone: p.clone.clone().unwrap_or_default(),
        errors: vec![],
        groups: groups(&values, &[]),
    })
    .into_response())
}

async fn submit(
    State(st): State<AppState>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let hidden = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    // The form's source: as the command line reads it, what it sets and what the user changed.
    let params = NewParams {
        preset: hidden("_preset"),
        clone: hidden("_clone"),
    };
    let pairs: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(k, _)| k != "token" && !k.starts_with('_'))
        .collect();
    let (grid, pairs): (Vec<_>, Vec<_>) =
        pairs.into_iter().partition(|(k, _)| k.starts_with("grid_"));
    // A grid over methods keeps the fields of every method.
    let one_method = !grid
        .iter()
        .any(|(k, v)| k == "grid_methods" && !v.trim().is_empty());
    let kept = source_text(&st, &params)
        .and_then(|(_, text)| as_cli(&pairs, &text, one_method).map_err(ApiError::Invalid));
    let kept = match kept {
        Ok(kept) => kept,
        Err(err) => return Ok(error_page(&st, &pairs, &[err], &params)),
    };
    let mut table = table_from_pairs(kept.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let errors: Vec<ApiError> = all_errors(&table)
        .into_iter()
        .map(ApiError::Invalid)
        .collect();
    if !errors.is_empty() {
        return Ok(error_page(&st, &pairs, &errors, &params));
    }
    let grid = grid_table(&grid);
    let gid = new_run_id("grid");
    let result = if grid.is_empty() {
        RawConfig::from_table(table)
            .and_then(|r| r.validate())
            .map(|s| vec![s])
    } else {
        table.insert("grid".into(), toml::Value::Table(grid));
        config::grid::expand_table(table, &gid).map(Option::unwrap_or_default)
    };
    let created = match result {
        Ok(specs) if specs.len() == 1 => {
            create_run(&st, specs.into_iter().next().expect("one spec"))
                .await
                .map(|s| format!("/runs/{}", s.id))
        }
        Ok(specs) => create_grid(&st, specs)
            .await
            .map(|_| format!("/compare?grid={gid}")),
        Err(err) => Err(ApiError::Invalid(err)),
    };
    match created {
        Ok(to) => Ok(Redirect::to(&to).into_response()),
        // The API's message (config, data files, device, queue cap), shown next to its field.
        Err(err) if err.status().is_client_error() => Ok(error_page(&st, &pairs, &[err], &params)),
        Err(err) => Err(err),
    }
}

/// The form again, values kept, with every error above it and next to the field it names.
fn error_page(
    st: &AppState,
    pairs: &[(String, String)],
    errors: &[ApiError],
    src: &NewParams,
) -> Response {
    let preset = src.preset.as_deref().unwrap_or_default();
    let status = errors.first().map_or(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        ApiError::status,
    );
    let page = NewRunPage {
        presets: options(single_presets(st), Some(preset)),
        grids: grid_presets(st),
        source: if preset.is_empty() {
            String::new()
        } else {
            format!("preset {preset} (with your changes)")
        },
        preset: preset.to_string(),
        clone: src.clone.clone().unwrap_or_default(),
        errors: errors.iter().map(ApiError::public_message).collect(),
        groups: groups(pairs, errors),
    };
    (status, HtmlTemplate(page)).into_response()
}
