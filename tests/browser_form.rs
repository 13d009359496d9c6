//! The new-run form and run management in headless Chromium (harness: `common::webdriver`):
//! switch the method of a FAIR-TAT preset to `pgd-at` in the form and start it (the recorded
//! config is plain PGD-AT: no class-wise epsilon, FAWA or extra clean forwards), then delete the
//! finished run from its page (its directory is gone, the runs list no longer shows it). The
//! trainer is the shell fake of `common`, so the test takes seconds.

mod common;

use std::path::PathBuf;

use common::webdriver::*;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_the_method_in_the_form_then_delete_the_run_in_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let driver = DriverProcess::start(&tmp.path().join("chromedriver.log"));
    let mut opts = options(tmp.path(), Some(fake_trainer(tmp.path(), 1, 0.05)), 1);
    opts.configs_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs");
    let st = start(opts).await;
    let mut guard = RunGuard {
        state: st.clone(),
        id: None,
    };
    let (base, server) = serve_loopback(st.clone()).await;
    let browser = Browser::open(&driver, &tmp.path().join("profile")).await;

    // The FAIR-TAT preset's form with only the method switched (and the device and a short run).
    browser
        .goto(&format!("{base}/runs/new?preset=fmnist-quick-fairtat"))
        .await;
    browser
        .click(r#"select[name="method.name"] option[value="pgd-at"]"#)
        .await;
    browser.fill(r#"[name="device"]"#, "cpu").await;
    browser.fill(r#"[name="train.epochs"]"#, "1").await;
    browser.click("#new-run-form button[type=submit]").await;
    let id = poll(20, "the new run's page", || async {
        let url = browser.current_url().await;
        let id = url.split("/runs/").nth(1)?.split(['#', '?']).next()?;
        (id != "new" && !id.is_empty()).then(|| id.to_string())
    })
    .await;
    guard.id = Some(id.clone());
    let dir = tmp.path().join("runs").join(&id);
    let text = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    let spec = fairtat::config::from_toml_str(&text, &[]).unwrap();
    assert_eq!(spec.method.name.as_str(), "pgd-at", "{text}");
    assert!(
        !spec.method.class_eps,
        "class-wise eps carried over: {text}"
    );
    assert_eq!(spec.train.fawa_decay, 0.0, "FAWA carried over: {text}");
    assert_eq!(spec.train.clean_forwards, 0, "extra clean forwards: {text}");
    assert_eq!(spec.train.epochs, 1);
    wait_status(&st, &id, "finished", 20.0).await;

    // Delete it from its page: the box must be ticked, then the run and its files are gone.
    browser.goto(&format!("{base}/runs/{id}")).await;
    browser.click(r#"#delete-form input[name="confirm"]"#).await;
    browser.click("#delete-btn").await;
    poll(20, "the runs list after the delete", || async {
        let url = browser.current_url().await;
        (url.trim_end_matches('/') == base.trim_end_matches('/')).then_some(())
    })
    .await;
    assert!(!dir.exists(), "the run directory is deleted");
    let listed = browser
        .exec("return document.body.innerHTML;")
        .await
        .unwrap();
    assert!(
        !listed.as_str().unwrap().contains(&id),
        "the list still shows {id}"
    );
    assert!(st.index().list(&Default::default()).unwrap().is_empty());
    guard.id = None;

    browser.quit().await;
    st.shutdown();
    server.abort();
}
