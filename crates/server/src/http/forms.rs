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
use super::form_grid::{
    grid_presets, grid_table, is_grid, launch_grid, tags_as_list, GridConfirm, GridParams,
};
use super::pages::{options, Opt};
use super::views::HtmlTemplate;
use crate::admission;
use crate::error::ApiError;
use crate::state::AppState;
use fairtat_core::config::fields::{flatten, table_from_pairs, FieldKind, FIELDS, GROUPS};
use fairtat_core::config::form_check::{check_all, methods_using};
use fairtat_core::config::form_resolve::as_cli;
use fairtat_core::config::{self, RawConfig, RunSpec};
use fairtat_core::runs::meta::check_name;
use fairtat_core::runs::safe_fs;
use fairtat_core::runs::{new_run_id, RunId};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/runs/new", get(new_form).post(submit))
        .route("/grids/new", post(grid_form))
}

/// `POST /grids/new`: [`launch_grid`], its client errors on the form's error page.
async fn grid_form(
    State(st): State<AppState>,
    Form(p): Form<GridParams>,
) -> Result<Response, ApiError> {
    match launch_grid(&st, p).await? {
        Ok(page) => Ok(page),
        Err(err) => Ok(error_page(&st, &[], &[err], &NewParams::default())),
    }
}

/// A group of the preset picker: the top-level presets, then one group per sub-directory
/// (`table1/`: a preset per row of the paper's Table 1).
pub struct PresetGroup {
    pub label: String,
    pub options: Vec<Opt>,
}

/// Presets the form can load (single runs), grouped by directory.
fn preset_groups(st: &AppState, current: Option<&str>) -> Vec<PresetGroup> {
    let mut groups: Vec<PresetGroup> = Vec::new();
    for name in preset_names(st).into_iter().filter(|n| !is_grid(st, n)) {
        let label = name
            .rsplit_once('/')
            .map_or("presets", |(dir, _)| dir)
            .to_string();
        let opt = Opt {
            selected: current == Some(name.as_str()),
            value: name,
        };
        match groups.iter_mut().find(|g| g.label == label) {
            Some(g) => g.options.push(opt),
            None => groups.push(PresetGroup {
                label,
                options: vec![opt],
            }),
        }
    }
    groups
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
    presets: Vec<PresetGroup>,
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

/// A cloned run's values without its grid membership: a variant of a grid's run is not one of
/// that grid's seeds (its `grid:` tag would put it in the grid's mean).
fn without_grid_tag(values: &mut [(String, String)]) {
    for (k, v) in values.iter_mut().filter(|(k, _)| k == "tags") {
        let kept: Vec<&str> = v
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty() && !t.starts_with("grid:"))
            .collect();
        *v = kept.join(", ");
        let _ = k;
    }
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

/// Where the form's values come from (a cloned run or a preset; empty for the defaults) and its
/// config text.
fn source_text(st: &AppState, p: &NewParams) -> Result<(String, String), ApiError> {
    Ok(
        if let Some(id) = p.clone.as_deref().filter(|s| !s.is_empty()) {
            let Ok(run) = id.parse::<RunId>() else {
                return Err(ApiError::NotFound(format!("run {id:?}")));
            };
            let text = safe_fs::read_text(&st.run_dir(&run), "config.toml", safe_fs::TEXT_CAP)
                .map_err(|e| match e.is_missing() {
                    true => ApiError::NotFound(format!("config of run {id}")),
                    false => ApiError::from(e),
                })?;
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
    let mut values = flatten(&table);
    if p.clone.as_deref().is_some_and(|c| !c.is_empty()) {
        without_grid_tag(&mut values);
    }
    Ok((source, values))
}

async fn new_form(
    State(st): State<AppState>,
    Query(p): Query<NewParams>,
) -> Result<Response, ApiError> {
    let (source, values) = initial(&st, &p)?;
    Ok(HtmlTemplate(NewRunPage {
        presets: preset_groups(&st, p.preset.as_deref()),
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
    Form(posted): Form<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let field = |name: &str| {
        posted
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    // The form's source: as the command line reads it, what it sets and what the user changed.
    let params = NewParams {
        preset: field("_preset"),
        clone: field("_clone"),
    };
    let confirmed = field("_confirm").as_deref() == Some("yes");
    let pairs: Vec<(String, String)> = posted
        .iter()
        .filter(|(k, _)| k != "token" && !k.starts_with('_'))
        .cloned()
        .collect();
    let (grid, pairs): (Vec<_>, Vec<_>) =
        pairs.into_iter().partition(|(k, _)| k.starts_with("grid_"));
    // A grid over methods keeps the fields of every method.
    let one_method = !grid
        .iter()
        .any(|(k, v)| k == "grid_methods" && !v.trim().is_empty());
    let (table, errors) = checked_table(&st, &pairs, &params, one_method);
    if !errors.is_empty() {
        return Ok(error_page(&st, &pairs, &errors, &params));
    }
    let gid = new_run_id("grid");
    let specs = match expand(table, grid_table(&grid), &gid) {
        Ok(specs) => specs,
        Err(err) => return Ok(error_page(&st, &pairs, &[err], &params)),
    };
    if specs.len() > 1 && !confirmed {
        let preset = params.preset.as_deref().unwrap_or_default();
        let page = GridConfirm::of_form(&specs, &posted, preset);
        return Ok(HtmlTemplate(page).into_response());
    }
    let created = if specs.len() == 1 {
        let spec = specs.into_iter().next().expect("one spec");
        create_run(&st, spec)
            .await
            .map(|s| format!("/runs/{}", s.id))
    } else {
        create_grid(&st, specs)
            .await
            .map(|_| format!("/compare?grid={gid}"))
    };
    match created {
        Ok(to) => Ok(Redirect::to(&to).into_response()),
        // The API's message (device, queue cap), shown next to its field.
        Err(err) if err.status().is_client_error() => Ok(error_page(&st, &pairs, &[err], &params)),
        Err(err) => Err(err),
    }
}

/// The form's config table as the command line reads it, with every error in one round: the
/// config's own (one per field), an empty name, and what a queued run must pass beyond the
/// config (the dashboard's learning-rate rule, the data files), read from the config with the
/// offending fields set aside.
fn checked_table(
    st: &AppState,
    pairs: &[(String, String)],
    params: &NewParams,
    one_method: bool,
) -> (toml::Table, Vec<ApiError>) {
    let kept = source_text(st, params)
        .and_then(|(_, text)| as_cli(pairs, &text, one_method).map_err(ApiError::Invalid));
    let kept = match kept {
        Ok(kept) => kept,
        Err(err) => return (toml::Table::new(), vec![err]),
    };
    let table = table_from_pairs(kept.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let (config_errors, spec) = check_all(&table);
    let value_of = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim());
    let mut errors: Vec<ApiError> = config_errors
        .into_iter()
        .map(|e| match (e.key(), value_of("train.lr")) {
            // The dashboard's range for the learning rate, in the dashboard's words.
            (Some("train.lr"), Some(v)) if e.to_string().contains("out of range") => {
                admission::lr_error(v)
            }
            _ => e,
        })
        .map(ApiError::Invalid)
        .collect();
    if let Some(Err(e)) = value_of("name").map(check_name) {
        errors.insert(0, ApiError::Invalid(e));
    }
    let has = |errors: &[ApiError], key: &str| errors.iter().any(|e| e.field() == Some(key));
    if let Some(spec) = spec {
        if !has(&errors, "train.lr") {
            errors.extend(admission::check_lr(&spec).err());
        }
        // Under a scheduler the data lives on the nodes, which this server may not see.
        if st.scheduler().is_none() && !has(&errors, "data.dir") && !has(&errors, "data.dataset") {
            errors.extend(admission::check_data(&spec).err());
        }
    }
    (table, errors)
}

/// The runs of the form: one, or with grid axes one per combination (typed tags kept).
fn expand(mut table: toml::Table, grid: toml::Table, gid: &str) -> Result<Vec<RunSpec>, ApiError> {
    if grid.is_empty() {
        return Ok(vec![RawConfig::from_table(table)?.validate()?]);
    }
    tags_as_list(&mut table)?;
    table.insert("grid".into(), toml::Value::Table(grid));
    Ok(config::grid::expand_table(table, gid)?.unwrap_or_default())
}

/// The form again, values kept, with every error above it and next to the field it names.
pub fn error_page(
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
        presets: preset_groups(st, Some(preset)),
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
