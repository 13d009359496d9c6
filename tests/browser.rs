//! End-to-end test in a real browser: headless Chromium driven through chromedriver's W3C
//! WebDriver JSON protocol (plain reqwest; fantoccini needs a TLS feature or hyper-util to build
//! a client). The dashboard runs in-process with the real trainer: a preset whose data is
//! missing is refused with the message (and the preset kept); a grid launch asks to confirm
//! with its number of runs; pick a preset on /runs/new, shrink it in the form, start it, watch
//! a chart, the header and the downloads change over SSE without a reload, download the epochs
//! CSV, evaluate the run and download the evaluation's CSV, and export the compare tables of two
//! seeds (mean ± std and Table 2).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::webdriver::*;
use common::*;
use fairtat::server::ServeOptions;
use serde_json::Value;

/// Installed on the run page: each time app.js points the accuracy chart at a new URL, fetch
/// that SVG and record it with the page's current epoch in sessionStorage (which survives the
/// reload app.js does when the run ends). `page` tells page loads apart.
const RECORDER: &str = r#"
var img = document.querySelector('object.chart[data-chart="accuracy"]');
if (!img) { return "no accuracy chart"; }
var page = String(Math.random());
window.__fairtatPage = page;
sessionStorage.setItem("fairtat-rec", "[]");
function epoch() { var s = document.getElementById("epoch-slider"); return s ? Number(s.max) : -1; }
new MutationObserver(function () {
  var src = img.getAttribute("data"), e = epoch();
  fetch(src).then(function (r) { return r.text(); }).then(function (svg) {
    var rec = JSON.parse(sessionStorage.getItem("fairtat-rec") || "[]");
    rec.push({ page: page, src: src, epoch: e, svg: svg });
    sessionStorage.setItem("fairtat-rec", JSON.stringify(rec));
  });
}).observe(img, { attributes: true, attributeFilter: ["data"] });
return "ok";
"#;

const FIELDS: [(&str, &str); 10] = [
    ("device", "cpu"),
    ("data.train_subset", "600"),
    ("data.test_subset", "200"),
    ("data.val_per_class", "10"),
    ("attack.steps", "2"),
    ("eval.steps", "2"),
    ("eval.final_steps", "3"),
    ("train.epochs", "3"),
    ("train.batch_size", "32"),
    ("train.lr", "0.05"),
];

/// Create a run of the quick FAIR-TAT preset with `set` through the API; its id.
async fn create_run(base: &str, set: &serde_json::Map<String, Value>) -> String {
    let body = serde_json::json!({ "preset": "fmnist-quick-fairtat", "set": set });
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/runs"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_run_form_live_chart_and_csv_download_in_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let driver = DriverProcess::start(&tmp.path().join("chromedriver.log"));
    let opts = ServeOptions {
        addr: "127.0.0.1:0".parse().unwrap(),
        runs_dir: tmp.path().join("runs"),
        configs_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs"),
        token: None,
        public_hosts: Vec::new(),
        max_queued: fairtat::server::DEFAULT_MAX_QUEUED,
        max_cpu_runs: 1,
        runs_per_gpu: None,
        trainer: Some(PathBuf::from(env!("CARGO_BIN_EXE_fairtat"))),
        poll_ms: 100,
        slurm: None,
        limits: Default::default(),
    };
    let st = start(opts).await;
    let mut guard = RunGuard {
        state: st.clone(),
        id: None,
    };
    let (base, server) = serve_loopback(st.clone()).await;
    let browser = Browser::open(&driver, &tmp.path().join("profile")).await;

    // A preset whose dataset is not on this machine is refused, with the files it needs, and
    // the form keeps the preset and the values.
    let no_data = tmp.path().join("no-cifar");
    std::fs::create_dir_all(&no_data).unwrap();
    browser
        .goto(&format!("{base}/runs/new?preset=cifar10-prn18-at"))
        .await;
    browser.fill(r#"[name="device"]"#, "cpu").await;
    browser
        .fill(r#"[name="data.dir"]"#, no_data.to_str().unwrap())
        .await;
    browser.click("#new-run-form button[type=submit]").await;
    let refused = poll(20, "the missing-data message", || async {
        let v = browser
            .exec(
                r#"var e = document.getElementById("form-error");
                   var p = document.querySelector('select[name="preset"]');
                   return e ? [e.textContent, p ? p.value : ""] : null;"#,
            )
            .await
            .ok()?;
        Some((v[0].as_str()?.to_string(), v[1].as_str()?.to_string()))
    })
    .await;
    assert!(
        refused.0.contains("has no cifar10 data on this machine")
            && refused.0.contains("test_batch.bin"),
        "{refused:?}"
    );
    assert_eq!(refused.1, "cifar10-prn18-at", "the preset is kept");
    assert_eq!(st.index().list(&Default::default()).unwrap().len(), 0);

    // A grid launch first says how many runs it queues, and queues nothing until confirmed.
    browser.goto(&format!("{base}/runs/new")).await;
    browser
        .click(r#"#grid-launch select[name="preset"] option[value="fmnist-table1-grid"]"#)
        .await;
    browser.click("#grid-launch button[type=submit]").await;
    let asked = poll(20, "the grid confirmation", || async {
        let v = browser
            .exec(r#"var e = document.getElementById("grid-confirm-count"); return e ? e.textContent : null;"#)
            .await
            .ok()?;
        v.as_str().map(str::to_string)
    })
    .await;
    assert!(
        asked.contains("This queues") && asked.contains("runs"),
        "{asked}"
    );
    assert_eq!(st.index().list(&Default::default()).unwrap().len(), 0);

    // The form: load the preset through its picker, then shrink the run.
    browser.goto(&format!("{base}/runs/new")).await;
    browser
        .click(r#"select[name="preset"] option[value="fmnist-quick-fairtat"]"#)
        .await;
    browser.click("form.preset button[type=submit]").await;
    poll(20, "the preset to load into the form", || async {
        let v = browser
            .exec(r#"var n = document.querySelector('[name="name"]'); return n ? n.value : null;"#)
            .await
            .ok()?;
        (v == "fmnist-quick-fairtat").then_some(())
    })
    .await;
    assert!(browser
        .current_url()
        .await
        .contains("preset=fmnist-quick-fairtat"));
    for (key, value) in FIELDS {
        browser.fill(&format!(r#"[name="{key}"]"#), value).await;
    }
    browser.fill(r#"[name="name"]"#, "bt-s0").await;
    browser.click("#new-run-form button[type=submit]").await;

    // The run page, reached through the form's redirect.
    let id = poll(30, "the run page after submitting the form", || async {
        let url = browser.current_url().await;
        let id = url.strip_prefix(&format!("{base}/runs/"))?;
        (!id.is_empty() && id != "new" && !id.contains('?')).then(|| id.to_string())
    })
    .await;
    guard.id = Some(id.clone());
    let spec = std::fs::read_to_string(tmp.path().join("runs").join(&id).join("config.toml"))
        .expect("the run's config.toml");
    for needle in ["train_subset = 600", "epochs = 3", "final_steps = 3"] {
        assert!(
            spec.contains(needle),
            "{needle} missing from the run's config:\n{spec}"
        );
    }
    let installed = browser.exec(RECORDER).await.unwrap();
    assert_eq!(installed, "ok");
    browser
        .exec("window.__fairtatStay = 1; return 1;")
        .await
        .unwrap();

    // The header and the downloads follow the run without a reload.
    poll(240, "the header and downloads after the first epoch", || async {
        let v = browser
            .exec(
                r#"var e = document.getElementById("run-epochs");
                   var ck = document.querySelector('#files a[href$="/checkpoints/last.safetensors"]');
                   return [e ? e.textContent : "", !!ck, window.__fairtatStay || 0];"#,
            )
            .await
            .ok()?;
        assert_eq!(v[2], 1, "the run page reloaded itself");
        let epochs = v[0].as_str()?;
        (!epochs.starts_with("0 of") && v[1] == true).then_some(())
    })
    .await;

    // A chart changes while the run trains, without a reload: app.js re-points the image on
    // each epoch event from the SSE stream, and the SVG it shows after a later epoch differs.
    let records = poll(
        240,
        "the accuracy chart to change between epochs",
        || async {
            let v = browser
                .exec(r#"return sessionStorage.getItem("fairtat-rec");"#)
                .await
                .ok()?;
            let recs: Vec<Value> = serde_json::from_str(v.as_str()?).ok()?;
            let first = recs.iter().find(|r| r["epoch"].as_i64() >= Some(0))?;
            let changed = recs.iter().any(|r| {
                r["page"] == first["page"]
                    && r["epoch"].as_i64() > first["epoch"].as_i64()
                    && r["svg"] != first["svg"]
            });
            changed.then_some(recs)
        },
    )
    .await;
    let first = &records[0];
    assert!(
        first["svg"].as_str().unwrap_or_default().contains("<svg"),
        "the chart URL serves an SVG: {}",
        first["svg"]
    );
    let srcs: std::collections::HashSet<&str> =
        records.iter().filter_map(|r| r["src"].as_str()).collect();
    assert!(srcs.len() >= 2, "the chart image was re-pointed: {srcs:?}");

    // The run finishes; the page, never reloaded, offers the epochs CSV.
    wait_status(&st, &id, "finished", 300.0).await;
    let (href, download) = poll(30, "the epochs.csv download link", || async {
        let v = browser
            .exec(
                r#"var a = document.querySelector('#files a[href$="/reports/epochs.csv"]');
                   var s = document.getElementById("run-status");
                   return a && s && s.textContent === "finished"
                     ? [a.href, a.getAttribute("download")] : null;"#,
            )
            .await
            .ok()?;
        Some((v[0].as_str()?.to_string(), v[1].as_str()?.to_string()))
    })
    .await;
    assert_eq!(download, format!("{id}_report-epochs.csv"));
    let resp = reqwest::get(&href).await.unwrap();
    assert_eq!(resp.status(), 200, "GET {href}");
    let csv = resp.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines[0].starts_with("epoch,"),
        "epochs.csv starts with its header: {}",
        lines[0]
    );
    let epochs: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap_or_default())
        .collect();
    assert_eq!(
        epochs,
        ["0", "1", "2"],
        "one row per finished epoch:\n{csv}"
    );
    let width = lines[0].split(',').count();
    assert!(
        lines[1..].iter().all(|l| l.split(',').count() == width),
        "every row has the header's {width} columns:\n{csv}"
    );

    // The page followed the whole run without a reload, and a finished run's page stays put.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stayed = browser
        .exec("return window.__fairtatStay || 0;")
        .await
        .unwrap();
    assert_eq!(stayed, 1, "the run page reloaded itself");

    // A second seed of the same run, from the API, trains while the first is evaluated.
    let mut set: serde_json::Map<String, Value> = FIELDS
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    set.insert("name".into(), "bt-s1".into());
    set.insert("seed".into(), "1".into());
    set.insert("train.epochs".into(), "1".into());
    let second = create_run(&base, &set).await;

    // Evaluate the finished run from its page; the evaluation's CSV appears and downloads.
    let quick = browser
        .exec(r#"var c = document.querySelector('#eval-form input[name="suite"][value="quick"]'); return c ? c.checked : null;"#)
        .await
        .unwrap();
    assert_eq!(quick, true, "the quick suite is ticked by default");
    browser.click("#evaluate-btn").await;
    let href = poll(400, "the evaluation's summary.csv link", || async {
        let v = browser
            .exec(r#"var a = document.querySelector('#evals a[href$="/summary.csv"]'); return a ? a.href : null;"#)
            .await
            .ok()?;
        v.as_str().map(str::to_string)
    })
    .await;
    let resp = reqwest::get(&href).await.unwrap();
    assert_eq!(resp.status(), 200, "GET {href}");
    let csv = resp.text().await.unwrap();
    assert!(csv.lines().count() >= 2, "{csv}");
    assert!(
        csv.contains("autoattack"),
        "the quick suite's AutoAttack row:\n{csv}"
    );

    // Compare both seeds and take every table away.
    wait_status(&st, &second, "finished", 300.0).await;
    browser
        .goto(&format!("{base}/compare?ids={id}&ids={second}"))
        .await;
    let export = poll(20, "the compare page's CSV export", || async {
        let v = browser
            .exec(r#"var a = document.getElementById("export-csv"); return a ? a.href : null;"#)
            .await
            .ok()?;
        v.as_str().map(str::to_string)
    })
    .await;
    let csv = reqwest::get(&export).await.unwrap().text().await.unwrap();
    assert!(
        csv.contains("Mean ± standard deviation over seeds"),
        "{csv}"
    );
    assert!(csv.contains("Table 2"), "{csv}");
    assert!(csv.contains(" ± "), "a mean ± std cell:\n{csv}");

    // The runs list shows a new run and its progress without a reload.
    browser.goto(&format!("{base}/")).await;
    poll(20, "the runs page", || async {
        let v = browser
            .exec("return document.body.getAttribute('data-page');")
            .await
            .ok()?;
        (v == "runs").then_some(())
    })
    .await;
    browser
        .exec("window.__fairtatStay = 1; return 1;")
        .await
        .unwrap();
    set.insert("name".into(), "bt-live".into());
    let third = create_run(&base, &set).await;
    guard.id = Some(third.clone());
    let script = format!(
        r#"var r = document.querySelector('#runs-table tr[data-run="{third}"]');
           var s = r ? r.querySelector('[data-field="status"]').textContent : null;
           return [s, window.__fairtatStay || 0];"#
    );
    poll(120, "the new run's row to reach finished", || async {
        let v = browser.exec(&script).await.ok()?;
        assert_eq!(v[1], 1, "the runs page reloaded itself");
        (v[0] == "finished").then_some(())
    })
    .await;

    browser.quit().await;
    st.shutdown();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server shuts down")
        .unwrap();
    drop(driver);
}
