//! The compare page and its CSV export through the router: rho against the default base (the
//! TRADES group, chosen by method) and against `base=<group>`, and the checkpoint of every
//! number, with a run whose `best-worst-robust` checkpoint was evaluated.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use fairtat_core::fairness::{ClassMetrics, ConfusionMatrix};
use fairtat_core::runs::eval_report::{self, EvalReport};
use fairtat_core::runs::writer::EventWriter;
use fairtat_core::runs::{EpochRecord, EvalRecord, RunDir, RunEvent, RunStatus};
use tower::ServiceExt;

use crate::state::AppState;
use crate::ServeOptions;

/// An evaluation of two classes with 10 samples each, `correct` of them right per class.
fn eval(split: &str, attack: &str, model: &str, correct: [i64; 2]) -> EvalRecord {
    let mut labels = vec![];
    let mut preds = vec![];
    for (c, ok) in correct.iter().enumerate() {
        for i in 0..10 {
            labels.push(c as i64);
            preds.push(if i < *ok { c as i64 } else { 1 - c as i64 });
        }
    }
    let cm = ConfusionMatrix::from_pairs(2, &labels, &preds);
    EvalRecord {
        split: split.into(),
        attack: attack.into(),
        model: model.into(),
        confusion: cm.rows(),
        metrics: ClassMetrics::from_confusion(&cm),
    }
}

fn epoch(e: usize, clean: [i64; 2], robust: [i64; 2]) -> RunEvent {
    RunEvent::Epoch(Box::new(EpochRecord {
        epoch: e,
        epochs: 2,
        lr: 0.1,
        train_loss: 1.0,
        train_secs: 1.0,
        eval_secs: 1.0,
        images_per_sec: 1.0,
        class_eps: vec![],
        target_probs: None,
        target_counts: None,
        evals: vec![
            eval("test", "clean", "live", clean),
            eval("test", "pgd-10", "live", robust),
            eval("val", "pgd-10", "live", [5, 3]),
        ],
        method_state: Default::default(),
    }))
}

/// A finished two-epoch run named `name`; `best` announces `best-worst-robust` after epoch 0.
fn write_run(
    runs: &std::path::Path,
    name: &str,
    method: &str,
    acc: ([i64; 2], [i64; 2]),
    best: bool,
) {
    let dir = RunDir::new(runs.join(format!("20261204-000000-{name}")));
    std::fs::create_dir_all(dir.root()).unwrap();
    let mut w = EventWriter::open(&dir).unwrap();
    let spec = serde_json::json!({
        "name": name, "method": {"name": method}, "data": {"dataset": "cifar10"},
        "model": {"arch": "smallcnn"}, "train": {"epochs": 2}
    });
    w.append(&RunEvent::Started {
        run_id: dir.id(),
        spec,
        class_names: vec!["cat".into(), "dog".into()],
        device: "cpu".into(),
        train_size: 20,
        val_size: 20,
        test_size: 20,
        start_epoch: 0,
        pid: 0,
    })
    .unwrap();
    w.append(&epoch(0, acc.0, acc.1)).unwrap();
    if best {
        w.append(&RunEvent::Checkpoint {
            epoch: 0,
            kind: "best-worst-robust".into(),
            file: "checkpoints/best-worst-robust.safetensors".into(),
        })
        .unwrap();
        write_eval(
            &dir,
            ("standard", "best-worst-robust", 0),
            "autoattack",
            acc.1,
        );
    }
    w.append(&epoch(1, acc.0, acc.1)).unwrap();
    w.append(&RunEvent::Finished {
        status: RunStatus::Finished,
        epochs_done: 2,
        message: None,
    })
    .unwrap();
}

/// `fairtat eval --suite <suite>` of checkpoint `model` (saved at `epoch`) with one attack,
/// written where a dashboard evaluation job writes it (`evals/<suite>-<model>/`).
fn write_eval(
    dir: &RunDir,
    (suite, model, epoch): (&str, &str, usize),
    attack: &str,
    robust: [i64; 2],
) {
    let report = EvalReport {
        checkpoint: format!("checkpoints/{model}.safetensors"),
        arch: "smallcnn".into(),
        dataset: "cifar10".into(),
        epoch,
        model: model.into(),
        suite: Some(suite.into()),
        eps: 8.0 / 255.0,
        seed: 0,
        batch_size: 256,
        images: 20,
        class_names: vec!["cat".into(), "dog".into()],
        evals: vec![eval("test", attack, model, robust)],
        autoattack: vec![],
        corruptions: vec![],
        corruption_summary: vec![],
        seconds: 1.0,
    };
    let out = dir.root().join(format!("evals/{suite}-{model}"));
    eval_report::write(&out, &report).unwrap();
}

async fn get(st: &AppState, uri: &str) -> String {
    let req = Request::get(uri).body(Body::empty()).unwrap();
    let resp = crate::http::router(st.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{uri}");
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_shows_rho_against_the_base_and_the_checkpoint_of_every_number() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    // TRADES: clean 80 / worst 60, robust 50 / worst 20. DAFA-like: clean 80 / 70, robust
    // 45 / 30. rho_rob = 0.3/0.2 - 1 - 0.05/0.5 = 0.40; rho_nat = 0.7/0.6 - 1 = 0.17.
    write_run(&runs, "g-trades-s0", "trades", ([10, 6], [8, 2]), false);
    write_run(&runs, "g-trades-s1", "trades", ([10, 6], [8, 2]), false);
    write_run(&runs, "g-dafa-s0", "fair-tat", ([9, 7], [6, 3]), true);
    let opts = ServeOptions {
        runs_dir: runs.clone(),
        configs_dir: tmp.path().join("configs"),
        poll_ms: 50,
        ..ServeOptions::default()
    };
    let st = crate::supervisor::start(opts).await.unwrap();
    let ids: Vec<String> = ["g-dafa-s0", "g-trades-s0", "g-trades-s1"]
        .iter()
        .map(|n| format!("ids=20261204-000000-{n}"))
        .collect();
    let q = ids.join("&");

    let html = get(&st, &format!("/compare?{q}")).await;
    // The validation split's worst-class curve beside the live model's, as a seed band.
    assert!(
        html.contains(r#"id="curve-more-val_live_robust_worst""#),
        "{html}"
    );
    let svg = get(
        &st,
        &format!("/compare/charts/more-val_live_robust_worst.svg?{q}"),
    )
    .await;
    assert!(
        svg.contains("val live robust worst (mean ± std over seeds)"),
        "{svg}"
    );
    assert!(svg.contains("g-trades"), "{svg}");
    assert!(
        html.contains("ρ against g-trades</th>"),
        "base by method: {html}"
    );
    let row = &html[html.find("<tr><td>g-dafa</td>").expect("dafa group")..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(
        row.contains(">0.17</td><td class=\"num\">0.40</td>"),
        "{row}"
    );
    assert!(row.contains("<td>last (epoch 1)</td>"), "{row}");
    assert!(
        html.contains(
            "best-worst-robust (chosen on validation: worst-class robust 30.00%, epoch 0)"
        ),
        "Table 2 names the split and epoch: {html}"
    );
    assert!(
        html.contains(
            "id=\"delta-caption\">rho_rob 0.40, rho_nat 0.17 for g-dafa with g-trades as the base"
        ),
        "{html}"
    );
    assert!(
        html.contains("/compare.csv?") && html.contains("base=g-trades"),
        "{html}"
    );
    assert!(
        html.contains("s0 finished 2/2 pgd-10")
            && html.contains("Only finished runs count in these means"),
        "the seed table says what went into it: {html}"
    );

    let csv = get(&st, &format!("/compare.csv?{q}")).await;
    assert!(
        csv.contains(",checkpoint,inputs,rho_nat (base g-trades),rho_rob (base g-trades)\n"),
        "{csv}"
    );
    assert!(
        csv.contains(",last (epoch 1),s0 finished 2/2 pgd-10,0.17,0.40\n"),
        "numeric rho columns: {csv}"
    );
    assert!(
        csv.contains(",last (epoch 1),s0 finished 2/2 pgd-10; s1 finished 2/2 pgd-10,0.00,0.00\n"),
        "the base against itself: {csv}"
    );
    assert!(
        csv.contains(
            "best-worst-robust (chosen on validation: worst-class robust 30.00%, epoch 0)"
        ),
        "{csv}"
    );

    // base=<group> moves the base: TRADES against DAFA loses on the worst class.
    let csv = get(&st, &format!("/compare.csv?{q}&base=g-dafa")).await;
    assert!(csv.contains("rho_rob (base g-dafa)"), "{csv}");
    assert!(csv.contains(",-0.14,-0.22\n"), "{csv}");
    let md = get(&st, &format!("/compare.md?{q}&base=g-dafa")).await;
    assert!(
        md.contains("| rho_nat (base g-dafa) | rho_rob (base g-dafa) |"),
        "{md}"
    );
    st.shutdown();
}
