//! End-to-end test in a real browser: headless Chromium driven through chromedriver's W3C
//! WebDriver JSON protocol (plain reqwest; fantoccini needs a TLS feature or hyper-util to build
//! a client). The dashboard runs in-process with the real trainer: pick a preset on /runs/new,
//! shrink it in the form, start it, watch a chart change over SSE without a reload, and download
//! the epochs CSV from the run page.

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
        trainer: Some(PathBuf::from(env!("CARGO_BIN_EXE_fairtat"))),
        poll_ms: 100,
        slurm: None,
    };
    let st = start(opts).await;
    let mut guard = RunGuard {
        state: st.clone(),
        id: None,
    };
    let (base, server) = serve_loopback(st.clone()).await;
    let browser = Browser::open(&driver, &tmp.path().join("profile")).await;

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

    // The run finishes; the page (reloaded by app.js once) offers the epochs CSV.
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

    // A finished run's page stays put (it must not reload itself again and again).
    let marker = browser
        .exec("window.__fairtatStay = 1; return 1;")
        .await
        .unwrap();
    assert_eq!(marker, 1);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let stayed = browser
        .exec("return window.__fairtatStay || 0;")
        .await
        .unwrap();
    assert_eq!(stayed, 1, "the page of a finished run reloads itself");

    browser.quit().await;
    st.shutdown();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server shuts down")
        .unwrap();
    drop(driver);
}
