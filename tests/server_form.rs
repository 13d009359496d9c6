//! The new-run form's papercuts through the router: one validation round for everything (the
//! config's errors, an empty name, the dashboard's learning-rate rule and missing data files
//! together), the grid fields' confirmation that keeps the typed tags, Clone without the grid
//! tag, and every preset (the Table 1 rows included) loadable into the form.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;

fn form(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn run_count(st: &fairtat::server::AppState) -> usize {
    json(&get(st, "/api/runs").await.1)
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_in_one_round() {
    let tmp = tempfile::tempdir().unwrap();
    let st = start(options(
        tmp.path(),
        Some(fake_trainer(tmp.path(), 1, 0.01)),
        1,
    ))
    .await;
    let body = "name=&train.epochs=many&train.lr=0&data.dir=nowhere%2Fdata";
    let (code, _, html) = send(&st, form("/runs/new", body)).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("4 fields need a change"), "{html}");
    for (field, words) in [
        ("name", "1 to 80 characters"),
        ("train.epochs", "not a whole number"),
        (
            "train.lr",
            "0 freezes the weights; only fairtat train accepts it",
        ),
        ("data.dir", "(README: Data sets (data.dir))"),
    ] {
        assert!(html.contains(&format!("for=\"f-{field}\"")), "{field}");
        assert!(html.contains(words), "{field}: {words} in {html}");
    }
    // A learning rate below the config's range says the dashboard's range too.
    let (code, _, html) = send(&st, form("/runs/new", "name=x&train.lr=-1")).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("-1 is out of range; allowed here:")
            && html.contains("0 freezes the weights"),
        "{html}"
    );
    assert!(!html.contains("allowed: 0 to 10"), "{html}");
    assert_eq!(run_count(&st).await, 0, "nothing is created");
    st.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_confirm_keep_tags_and_clone_leaves_the_grid() {
    let tmp = tempfile::tempdir().unwrap();
    let st = start(options(
        tmp.path(),
        Some(fake_trainer(tmp.path(), 1, 0.01)),
        2,
    ))
    .await;
    let body =
        "_preset=quick&name=sweep&device=cpu&train.epochs=1&tags=paper%2C+lr&grid_seeds=0%2C1";
    let (code, _, html) = send(&st, form("/runs/new", body)).await;
    assert_eq!(code, StatusCode::OK, "{html}");
    assert!(
        html.contains("This queues <strong>2 runs</strong>"),
        "{html}"
    );
    assert!(html.contains("name=\"_confirm\" value=\"yes\""), "{html}");
    assert!(html.contains("name=\"tags\" value=\"paper, lr\""), "{html}");
    assert_eq!(
        run_count(&st).await,
        0,
        "nothing queued before the confirmation"
    );

    let (code, headers, html) = send(&st, form("/runs/new", &format!("{body}&_confirm=yes"))).await;
    assert_eq!(code, StatusCode::SEE_OTHER, "{html}");
    let to = headers["location"].to_str().unwrap();
    let gid = to.strip_prefix("/compare?grid=").unwrap().to_string();
    let (_, b) = get(&st, "/api/runs").await;
    let runs = json(&b);
    assert_eq!(runs.as_array().unwrap().len(), 2);
    let want = serde_json::json!(["paper", "lr", format!("grid:{gid}")]);
    for r in runs.as_array().unwrap() {
        assert_eq!(r["tags"], want, "{r}");
    }
    let id = runs[0]["id"].as_str().unwrap();
    let (_, html) = get(&st, &format!("/runs/new?clone={id}")).await;
    assert!(html.contains("name=\"tags\" value=\"paper, lr\""), "{html}");
    assert!(
        !html.contains(&format!("grid:{gid}")),
        "a clone is not in the grid: {html}"
    );
    st.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_preset_loads_into_the_form() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path(), None, 1);
    opts.configs_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let st = start(opts).await;
    let (_, html) = get(&st, "/runs/new").await;
    assert!(html.contains("<optgroup label=\"table1\">"), "{html}");
    let names: Vec<String> = json(&get(&st, "/api/presets").await.1)
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let rows = names.iter().filter(|n| n.starts_with("table1/")).count();
    assert!(rows >= 47, "{rows} Table 1 row presets: {names:?}");
    for n in names.iter().filter(|n| !n.contains("grid")) {
        assert!(
            html.contains(&format!("<option value=\"{n}\">")),
            "{n} not in the picker"
        );
        let (code, page) = get(&st, &format!("/runs/new?preset={n}")).await;
        assert_eq!(code, StatusCode::OK, "{n}: {page}");
        assert!(
            page.contains(&format!("name=\"_preset\" value=\"{n}\"")),
            "{n}"
        );
    }
    st.shutdown();
}
