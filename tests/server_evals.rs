//! Dashboard features of the method grid and the evaluation suite, driven through the router
//! with the fake trainer of `common`: grid launches (API and form) and the compare page's
//! mean ± std over seeds; evaluation jobs queued from the run page, their status, results and
//! failures; the Table 2 and Table 3/4 layouts; per-method state charts.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;

const GRID: &str = r#"name = "g"
device = "cpu"
[train]
epochs = 2
[grid]
"method.name" = ["pgd-at", "fair-tat"]
seed = [0, 1]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grid_launch_queues_one_run_per_combination_and_compare_groups_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let trainer = fake_trainer(tmp.path(), 2, 0.02);
    let st = start(options(tmp.path(), Some(trainer), 1)).await;

    let body = serde_json::json!({ "toml": GRID }).to_string();
    let (code, b) = post_json(&st, "/api/runs", &body).await;
    assert_eq!(code, StatusCode::CREATED, "{b}");
    let v = json(&b);
    let gid = v["grid"].as_str().unwrap().to_string();
    let runs = v["runs"].as_array().unwrap();
    let names: Vec<&str> = runs.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "g-pgd-at-s0",
            "g-pgd-at-s1",
            "g-fair-tat-s0",
            "g-fair-tat-s1"
        ]
    );
    for r in runs {
        let id = r["id"].as_str().unwrap();
        wait_status(&st, id, "finished", 20.0).await;
    }

    let (code, html) = get(&st, &format!("/compare?grid={gid}")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        html.contains("Mean ± standard deviation over seeds"),
        "{html}"
    );
    // Both groups average two seeds of identical fake runs: std 0.
    for g in ["g-pgd-at", "g-fair-tat"] {
        let row = format!("<tr><td>{g}</td>");
        let at = html
            .find(&row)
            .unwrap_or_else(|| panic!("group {g}: {html}"));
        let cells = &html[at..at + 400];
        assert!(
            cells.contains(">2</td>") && cells.contains("75.0 ± 0.0"),
            "{cells}"
        );
    }
    // The exports hold the seed table too, in all three formats (the grid query as on the page).
    let (_, csv) = get(&st, &format!("/compare.csv?grid={gid}")).await;
    assert_eq!(
        csv.split("\n\n").count(),
        5,
        "Table 1, the seed table, the per-class robust and clean tables and their difference: {csv}"
    );
    assert!(
        csv.contains("table,class,g-fair-tat (mean of 2),g-pgd-at (mean of 2)"),
        "{csv}"
    );
    assert!(
        csv.contains("\nMean ± standard deviation over seeds (%),g-pgd-at,pgd-at,2,75.0 ± 0.0"),
        "{csv}"
    );
    let (_, md) = get(&st, &format!("/compare.md?grid={gid}")).await;
    assert!(
        md.contains("### Mean ± standard deviation")
            && md.contains("| g-fair-tat | fair-tat | 2 | 75.0 ± 0.0 |"),
        "{md}"
    );
    let (_, tex) = get(&st, &format!("/compare.tex?grid={gid}")).await;
    assert!(
        tex.contains("g-fair-tat & fair-tat & 2 & 75.0 $\\pm$ 0.0"),
        "{tex}"
    );

    // A bad value in one combination fails the whole grid with the field named; nothing created.
    let bad = GRID.replace("\"fair-tat\"]", "\"fair-tat\", \"magic\"]");
    let (code, b) = post_json(
        &st,
        "/api/runs",
        &serde_json::json!({ "toml": bad }).to_string(),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b.contains("method.name") && b.contains("magic"), "{b}");
    let (_, b) = get(&st, "/api/runs").await;
    assert_eq!(json(&b).as_array().unwrap().len(), 4);

    // The form's grid fields do the same (after a confirmation naming the number of runs) and
    // land on the grid's compare page.
    let fields = "name=f&device=cpu&train.epochs=1&grid_methods=pgd-at%2C+trades&grid_seeds=3%2C4";
    let post = |body: String| {
        Request::post("/runs/new")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    let (code, _, body) = send(&st, post(fields.to_string())).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(
        body.contains("This queues <strong>4 runs</strong>"),
        "{body}"
    );
    let (code, headers, body) = send(&st, post(format!("{fields}&_confirm=yes"))).await;
    assert_eq!(code, StatusCode::SEE_OTHER, "{body}");
    let loc = headers["location"].to_str().unwrap();
    assert!(loc.starts_with("/compare?grid="), "{loc}");
    let (_, b) = get(&st, "/api/runs").await;
    let all = json(&b);
    let mut formed: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .filter(|n| n.starts_with("f-"))
        .collect();
    formed.sort();
    assert_eq!(
        formed,
        ["f-pgd-at-s3", "f-pgd-at-s4", "f-trades-s3", "f-trades-s4"]
    );

    // A grid preset is offered as a whole grid (not loaded into the single-run form).
    std::fs::write(
        tmp.path().join("configs/two.toml"),
        GRID.replace("seed = [0, 1]", "seed = [7]"),
    )
    .unwrap();
    let (_, html) = get(&st, "/runs/new").await;
    let launch = html.find("id=\"grid-launch\"").expect("grid launch form");
    assert!(html[launch..].contains("<option value=\"two\">"), "{html}");
    assert!(
        !html[..launch].contains("value=\"two\""),
        "grid preset offered as a single run"
    );
    assert!(
        html[launch..].contains("<option value=\"\" selected>"),
        "no grid is chosen by default: {html}"
    );
    // The first post only asks: it names the number of runs and queues nothing.
    let before = json(&get(&st, "/api/runs").await.1)
        .as_array()
        .unwrap()
        .len();
    let post = |body: &'static str| {
        Request::post("/grids/new")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    let (code, _, page) = send(&st, post("preset=two")).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert!(
        page.contains("This queues <strong>2 runs</strong>"),
        "{page}"
    );
    assert!(page.contains("name=\"confirm\" value=\"yes\""), "{page}");
    let after = json(&get(&st, "/api/runs").await.1)
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "asking for confirmation queued runs");
    let (code, headers, body) = send(&st, post("preset=two&confirm=yes")).await;
    assert_eq!(code, StatusCode::SEE_OTHER, "{body}");
    assert!(headers["location"]
        .to_str()
        .unwrap()
        .starts_with("/compare?grid="));
    let (_, b) = get(&st, "/api/runs").await;
    let n = json(&b)
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"].as_str().is_some_and(|n| n.ends_with("-s7")))
        .count();
    assert_eq!(n, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluation_jobs_run_after_training_and_show_on_run_and_compare_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let trainer = fake_trainer(tmp.path(), 2, 0.2);
    let st = start(options(tmp.path(), Some(trainer), 1)).await;
    let id = create_quick(&st).await;

    // While training: a conflict, with the reason.
    wait_for(10.0, "a checkpoint", || async {
        st.run_dir(&id.parse().unwrap())
            .checkpoint(fairtat::runs::CheckpointKind::Last)
            .exists()
            .then_some(())
    })
    .await;
    let (code, b) = post_json(
        &st,
        &format!("/api/runs/{id}/evaluate"),
        r#"{"suite":"quick"}"#,
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT, "{b}");
    assert!(b.contains("still training"), "{b}");
    wait_status(&st, &id, "finished", 20.0).await;

    // Unknown suite or checkpoint: 400 naming the allowed values.
    let (code, b) = post_json(
        &st,
        &format!("/api/runs/{id}/evaluate"),
        r#"{"suite":"full"}"#,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(b.contains("quick, standard, corruptions"), "{b}");
    let (code, b) = post_json(
        &st,
        &format!("/api/runs/{id}/evaluate"),
        r#"{"suite":"quick","model":"fawa"}"#,
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT, "no fawa checkpoint: {b}");
    // An evaluation's own Slurm resources are checked like the run's `[slurm]` keys, also
    // where the local executor then ignores them.
    let (code, b) = post_json(
        &st,
        &format!("/api/runs/{id}/evaluate"),
        r#"{"suite":"quick","slurm":{"time":"soon"}}"#,
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b.contains("slurm.time"), "{b}");
    let (code, b) = post_json(
        &st,
        &format!("/api/runs/{id}/evaluate"),
        r#"{"suite":"quick","slurm":{"time":["1"]}}"#,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{b}");
    assert!(b.contains("slurm.time: a string or a number"), "{b}");

    let (code, b) = post_json(
        &st,
        &format!("/api/runs/{id}/evaluate"),
        r#"{"suite":"standard"}"#,
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{b}");
    // The same evaluation twice is refused; another one waits for the first.
    let (code, b) = post_json(
        &st,
        &format!("/api/runs/{id}/evaluate"),
        r#"{"suite":"standard"}"#,
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert!(
        b.contains("already has the standard-last evaluation"),
        "{b}"
    );
    let (code, _) = post_json(
        &st,
        &format!("/api/runs/{id}/evaluate"),
        r#"{"suite":"quick"}"#,
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED);
    let (_, html) = get(&st, &format!("/runs/{id}/evals")).await;
    assert!(html.contains("data-active=\"1\""), "{html}");
    let done = wait_for(10.0, "both evaluations to finish", || async {
        let (_, b) = get(&st, &format!("/api/runs/{id}/evals")).await;
        let v = json(&b);
        let all = v.as_array().unwrap();
        (all.len() == 2 && all.iter().all(|e| e["status"] == "finished")).then_some(v)
    })
    .await;
    assert_eq!(done[1]["name"], "standard-last");
    assert_eq!(done[1]["report"]["evals"][1]["attack"], "autoattack");

    // The run page shows the attack table and the stage breakdown.
    let (_, html) = get(&st, &format!("/runs/{id}")).await;
    assert!(
        html.contains("standard-last") && html.contains("status-finished"),
        "{html}"
    );
    assert!(html.contains("robust accuracy after each stage") && html.contains("apgd-ce"));
    assert!(
        html.contains("<td>autoattack</td><td>50.00</td><td>12.50</td>"),
        "{html}"
    );
    assert!(html.contains("id=\"evaluate-btn\""));
    // Its reports are run downloads: linked from the evaluation, listed under Downloads.
    for (file, content) in [
        ("summary.csv", "autoattack,0.125"),
        ("eval.json", "\"suite\""),
        // The job's output, whatever it printed.
        ("eval.log", ""),
    ] {
        let href = format!("/runs/{id}/files/evals/standard-last/{file}");
        assert_eq!(html.matches(&href).count(), 2, "{href} in {html}");
        let (code, body) = get(&st, &href).await;
        assert_eq!(code, StatusCode::OK, "{href}: {body}");
        assert!(body.contains(content), "{href}: {body}");
    }
    let (code, body) = get(
        &st,
        &format!("/runs/{id}/files/evals/standard-last/progress.json"),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");

    // A failing job is reported with its reason.
    let (code, _) = post_json(
        &st,
        &format!("/api/runs/{id}/evaluate"),
        r#"{"suite":"corruptions"}"#,
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED);
    let failed = wait_for(10.0, "the failed evaluation", || async {
        let (_, b) = get(&st, &format!("/api/runs/{id}/evals")).await;
        let v = json(&b);
        v.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "corruptions-last" && e["status"] == "failed")
            .cloned()
    })
    .await;
    assert!(failed["error"]
        .as_str()
        .unwrap()
        .contains("no corruption files"));

    // Compare: the Table 2 layout from the evaluation; Table 3/4 from corruption summaries.
    let (_, html) = get(&st, &format!("/compare?ids={id}")).await;
    assert!(html.contains("AutoAttack and Square"), "{html}");
    let row = html.find("id=\"robust-table-standard-last\"").unwrap();
    let t = &html[row..];
    assert!(t.contains("<td class=\"num\">50.0</td><td class=\"num\">12.5</td><td class=\"num\">50.0</td><td class=\"num\">37.5</td>"), "{t}");
    // ... and the exports carry Table 2 and the corruption rows.
    let (_, csv) = get(&st, &format!("/compare.csv?ids={id}")).await;
    assert!(
        csv.contains("\"Table 2: AutoAttack and Square (%): standard suite, last checkpoint\",")
            && csv.contains(",standard,50.0,12.5,50.0,37.5,"),
        "{csv}"
    );
    assert!(
        csv.contains("common corruptions: standard suite, last checkpoint\",fog,0.25"),
        "{csv}"
    );
    let (_, md) = get(&st, &format!("/compare.md?ids={id}")).await;
    assert!(
        md.contains("### Table 2") && md.contains("| 50.0 | 12.5 | 50.0 | 37.5 |"),
        "{md}"
    );
    assert!(
        html.contains("Minimum class accuracy on common corruptions")
            && html.contains("<td>fog</td><td class=\"num\">0.25</td>"),
        "{html}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_state_gets_a_chart_per_key() {
    let tmp = tempfile::tempdir().unwrap();
    let trainer = fake_trainer(tmp.path(), 2, 0.02);
    let st = start(options(tmp.path(), Some(trainer), 1)).await;
    let id = create_quick(&st).await;
    wait_status(&st, &id, "finished", 20.0).await;
    let (_, html) = get(&st, &format!("/runs/{id}")).await;
    assert!(html.contains("data-chart=\"state-class_beta\""), "{html}");
    let (code, svg) = get(&st, &format!("/runs/{id}/charts/state-class_beta.svg")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        svg.contains("<svg") && svg.contains("class_beta") && svg.contains("dog"),
        "{svg}"
    );
    for bad in ["state-.svg", "state-a%2Fb.svg", "state-x%20y.svg"] {
        let (code, _) = get(&st, &format!("/runs/{id}/charts/{bad}")).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{bad}");
    }
}
