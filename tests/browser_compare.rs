//! The compare page in headless Chromium (the harness of `browser.rs`), on run directories
//! written as the trainer writes them (`common/compare_runs.rs`): a finished and a cancelled
//! seed of the shipped quick FAIR-TAT preset and a finished seed of the quick PGD-AT preset.
//! The seed table names the cancelled seed's status and leaves it out of the mean; the
//! per-class difference defaults to FAIR-TAT minus PGD-AT; clicking a curve's legend entry
//! hides its group and clicking again shows it.

mod common;
#[path = "common/compare_runs.rs"]
mod compare_runs;

use std::path::PathBuf;

use common::webdriver::*;
use common::*;
use compare_runs::{write_run, Fixture};
use fairtat::runs::RunStatus;
use serde_json::Value;

const FAIR: &str = "fmnist-quick-fairtat";
const AT: &str = "fmnist-quick-at";

/// The three runs; the `ids=` query of all of them.
fn fixtures(runs: &std::path::Path) -> String {
    let fixture = |preset, seed, status, epochs_done, robust| Fixture {
        preset,
        seed,
        status,
        epochs_done,
        clean: [9, 8],
        robust,
    };
    [
        fixture(FAIR, 0, RunStatus::Finished, 5, [6, 4]),
        fixture(FAIR, 1, RunStatus::Cancelled, 1, [1, 1]),
        fixture(AT, 0, RunStatus::Finished, 5, [7, 1]),
    ]
    .iter()
    .map(|f| format!("ids={}", write_run(runs, f).id()))
    .collect::<Vec<_>>()
    .join("&")
}

/// Run `script` until it returns a non-null value.
async fn wait_value(browser: &Browser, what: &str, script: &str) -> Value {
    poll(20, what, || async {
        let v = browser.exec(script).await.ok()?;
        (!v.is_null()).then_some(v)
    })
    .await
}

/// Click legend entry `i` of the robust-worst curves and say which series are displayed.
const TOGGLE: &str = r#"
var doc = document.getElementById("curve-robust_worst").contentDocument;
var entry = doc && doc.querySelector('g.legend-entry[data-series="__I__"]');
if (!entry) { return null; }
entry.dispatchEvent(new MouseEvent("click", { bubbles: true }));
return Array.prototype.map.call(doc.querySelectorAll("g.series"), function (g) {
  return g.style.display !== "none";
});
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_names_the_cancelled_seed_defaults_the_difference_and_toggles_series() {
    let tmp = tempfile::tempdir().unwrap();
    let q = fixtures(&tmp.path().join("runs"));
    let driver = DriverProcess::start(&tmp.path().join("chromedriver.log"));
    let mut opts = options(tmp.path(), None, 1);
    opts.configs_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs");
    let st = start(opts).await;
    let (base, server) = serve_loopback(st.clone()).await;
    let browser = Browser::open(&driver, &tmp.path().join("profile")).await;
    browser.goto(&format!("{base}/compare?{q}")).await;

    let row = wait_value(
        &browser,
        "the seed table",
        r#"var t = document.getElementById("group-table"); if (!t) { return null; }
           return Array.prototype.map.call(t.querySelectorAll("tbody tr"), function (r) {
             return Array.prototype.map.call(r.cells, function (c) { return c.textContent; });
           });"#,
    )
    .await;
    let fair = row
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[0] == FAIR)
        .unwrap_or_else(|| panic!("{row}"));
    assert_eq!(fair[2], "1", "only the finished seed counts: {fair}");
    assert_eq!(
        fair[5], "50.0",
        "the finished seed's robust accuracy alone: {fair}"
    );
    assert_eq!(
        fair[8], "s0 finished 5/5 pgd-20; left out: s1 cancelled 1/5 pgd-10",
        "{fair}"
    );

    let pair = browser
        .exec(
            r#"var f = document.getElementById("delta-form");
               if (!f) { return null; }
               function chosen(n) { var s = f.querySelector('select[name="' + n + '"]');
                 return s.options[s.selectedIndex].textContent; }
               return [chosen("da"), chosen("db"), document.getElementById("delta-caption").textContent];"#,
        )
        .await
        .unwrap();
    assert_eq!(pair[0], FAIR, "FAIR-TAT first: {pair}");
    assert_eq!(pair[1], AT, "minus PGD-AT: {pair}");

    let shown = wait_value(
        &browser,
        "the curves' legend",
        &TOGGLE.replace("__I__", "0"),
    )
    .await;
    assert_eq!(shown, serde_json::json!([false, true]), "group 0 hidden");
    let shown = wait_value(
        &browser,
        "the curves' legend",
        &TOGGLE.replace("__I__", "0"),
    )
    .await;
    assert_eq!(
        shown,
        serde_json::json!([true, true]),
        "group 0 shown again"
    );
    let legend = browser
        .exec(
            r#"var doc = document.getElementById("curve-robust_worst").contentDocument;
               return doc.querySelector('g.legend-entry[data-series="0"] title').textContent;"#,
        )
        .await
        .unwrap();
    assert!(
        legend
            .as_str()
            .unwrap()
            .starts_with(&format!("{FAIR}: {FAIR}-s0 (")),
        "the legend names the group, its hover the runs that count: {legend}"
    );

    browser.quit().await;
    server.abort();
    st.shutdown();
}
