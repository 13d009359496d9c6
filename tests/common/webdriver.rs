//! WebDriver harness for the browser tests: headless Chromium driven through chromedriver's W3C
//! WebDriver JSON protocol (plain reqwest; fantoccini needs a TLS feature or hyper-util to build
//! a client). Each browser test file uses `DriverProcess`, `Browser`, `RunGuard` and `poll`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fairtat::server::AppState;
use serde_json::{json, Value};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// W3C key of an element reference in WebDriver responses.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver in its own process group; dropping it kills the group (driver and browser),
/// also when the test panics.
pub struct DriverProcess {
    child: Child,
    port: u16,
}

impl DriverProcess {
    pub fn start(log: &Path) -> DriverProcess {
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

    pub fn url(&self) -> String {
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
pub struct RunGuard {
    pub state: AppState,
    pub id: Option<String>,
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
pub struct Browser {
    http: reqwest::Client,
    base: String,
}

impl Browser {
    /// Wait for chromedriver to be ready, then open a headless Chromium session.
    pub async fn open(driver: &DriverProcess, profile: &Path) -> Browser {
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
    pub async fn cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Result<Value, String> {
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

    pub async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.cmd(reqwest::Method::POST, path, body).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await.unwrap();
    }

    pub async fn current_url(&self) -> String {
        let v = self.cmd(reqwest::Method::GET, "/url", Value::Null).await;
        v.unwrap().as_str().unwrap_or_default().to_string()
    }

    pub async fn find(&self, css: &str) -> Result<String, String> {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await?;
        v[ELEMENT_KEY]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no element reference for {css}: {v}"))
    }

    pub async fn click(&self, css: &str) {
        let e = self.find(css).await.unwrap();
        self.post(&format!("/element/{e}/click"), json!({}))
            .await
            .unwrap();
    }

    /// Clear an input and type `text` into it, as a user would.
    pub async fn fill(&self, css: &str, text: &str) {
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

    pub async fn exec(&self, script: &str) -> Result<Value, String> {
        self.post("/execute/sync", json!({"script": script, "args": []}))
            .await
    }

    pub async fn quit(&self) {
        let _ = self.cmd(reqwest::Method::DELETE, "", Value::Null).await;
    }
}

/// Poll `f` every 200 ms until it returns Some, or panic after `secs` with `what`.
pub async fn poll<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
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
