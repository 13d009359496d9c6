//! End-to-end test in a real browser: headless Chromium driven through chromedriver's W3C
//! WebDriver JSON protocol (plain reqwest; fantoccini needs a TLS feature or hyper-util to build
//! a client). The dashboard runs in-process with the real trainer: pick a preset on /runs/new,
//! shrink it in the form, start it, watch a chart change over SSE without a reload, and download
//! the epochs CSV from the run page.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use fairtat::server::{AppState, ServeOptions};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// W3C key of an element reference in WebDriver responses.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver in its own process group; dropping it kills the group (driver and browser),
/// also when the test panics.
struct DriverProcess {
    child: Child,
    port: u16,
}

impl DriverProcess {
    fn start(log: &Path) -> DriverProcess {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: the browser test needs Debian's `chromium` and \
                 `chromium-driver` packages (`make test` installs them, or \
                 `apt-get install chromium chromium-driver`)"
            );
        }
        // A free loopback port: bind, read it, release it for chromedriver.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        DriverProcess { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for DriverProcess {
    fn drop(&mut self) {
        // The group id is the driver's pid (process_group(0)); Chromium runs inside it.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Cancels the run when the test panics, so no trainer outlives a failed test.
struct RunGuard {
    state: AppState,
    id: Option<String>,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if let (true, Some(id)) = (std::thread::panicking(), &self.id) {
            if let Ok(run) = id.parse() {
                let _ = fairtat::server::supervisor::cancel_run(&self.state, &run);
            }
        }
    }
}

/// A WebDriver session: each method is one W3C endpoint.
struct Browser {
    http: reqwest::Client,
    base: String,
}

impl Browser {
    /// Wait for chromedriver to be ready, then open a headless Chromium session.
    async fn open(driver: &DriverProcess, profile: &Path) -> Browser {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = match http.get(format!("{}/status", driver.url())).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .ok()
                    .map(|v| v["value"]["ready"] == true),
                Err(_) => None,
            };
            if ready == Some(true) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready on port {} within 30 s",
                driver.port
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-quic".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,1024".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let resp = http
            .post(format!("{}/session", driver.url()))
            .json(&caps)
            .send()
            .await
            .expect("new WebDriver session request");
        let status = resp.status();
        let v: Value = resp.json().await.expect("new session response is JSON");
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("Chromium did not start ({status}): {v}"))
            .to_string();
        Browser {
            http,
            base: format!("{}/session/{session}", driver.url()),
        }
    }

    /// One command; `Err` carries the WebDriver error and message.
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value, String> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if method != reqwest::Method::GET && method != reqwest::Method::DELETE {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|e| format!("{path}: {e}"))?;
        let ok = resp.status().is_success();
        let v: Value = resp.json().await.map_err(|e| format!("{path}: {e}"))?;
        if ok {
            Ok(v["value"].clone())
        } else {
            Err(format!(
                "{path}: {} {}",
                v["value"]["error"], v["value"]["message"]
            ))
        }
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.cmd(reqwest::Method::POST, path, body).await
    }

    async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await.unwrap();
    }

    async fn current_url(&self) -> String {
        let v = self.cmd(reqwest::Method::GET, "/url", Value::Null).await;
        v.unwrap().as_str().unwrap_or_default().to_string()
    }

    async fn find(&self, css: &str) -> Result<String, String> {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await?;
        v[ELEMENT_KEY]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no element reference for {css}: {v}"))
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await.unwrap();
        self.post(&format!("/element/{e}/click"), json!({}))
            .await
            .unwrap();
    }

    /// Clear an input and type `text` into it, as a user would.
    async fn fill(&self, css: &str, text: &str) {
        let e = self
            .find(css)
            .await
            .unwrap_or_else(|err| panic!("form field {css}: {err}"));
        self.post(&format!("/element/{e}/clear"), json!({}))
            .await
            .unwrap();
        self.post(&format!("/element/{e}/value"), json!({ "text": text }))
            .await
            .unwrap();
    }

    async fn exec(&self, script: &str) -> Result<Value, String> {
        self.post("/execute/sync", json!({"script": script, "args": []}))
            .await
    }

    async fn quit(&self) {
        let _ = self.cmd(reqwest::Method::DELETE, "", Value::Null).await;
    }
}

/// Poll `f` every 200 ms until it returns Some, or panic after `secs` with `what`.
async fn poll<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Installed on the run page: each time app.js points the accuracy chart at a new URL, fetch
/// that SVG and record it with the page's current epoch in sessionStorage (which survives the
/// reload app.js does when the run ends). `page` tells page loads apart.
const RECORDER: &str = r#"
var img = document.querySelector('img.chart[data-chart="accuracy"]');
if (!img) { return "no accuracy chart"; }
var page = String(Math.random());
window.__fairtatPage = page;
sessionStorage.setItem("fairtat-rec", "[]");
function epoch() { var s = document.getElementById("epoch-slider"); return s ? Number(s.max) : -1; }
new MutationObserver(function () {
  var src = img.getAttribute("src"), e = epoch();
  fetch(src).then(function (r) { return r.text(); }).then(function (svg) {
    var rec = JSON.parse(sessionStorage.getItem("fairtat-rec") || "[]");
    rec.push({ page: page, src: src, epoch: e, svg: svg });
    sessionStorage.setItem("fairtat-rec", JSON.stringify(rec));
  });
}).observe(img, { attributes: true, attributeFilter: ["src"] });
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
