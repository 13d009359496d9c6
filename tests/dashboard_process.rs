//! `fairtat serve` as a user starts it: it becomes the `fairtat-dashboard` program, which
//! serves without libtorch in memory, and still starts `fairtat` for training.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn serve_runs_as_the_dashboard_program_without_libtorch() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fairtat"))
        .args(["serve", "--addr", "127.0.0.1:0", "--runs"])
        .arg(tmp.path().join("runs"))
        .arg("--configs")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/configs"))
        .env("FAIRTAT_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("fairtat dashboard: http://127.0.0.1:"),
        "{line}"
    );
    let pid = child.id();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        exe.to_string_lossy().ends_with("fairtat-dashboard"),
        "serve did not become the dashboard program: {}",
        exe.display()
    );
    assert!(
        !maps.contains("libtorch_cuda"),
        "the dashboard mapped libtorch_cuda"
    );
}

#[test]
fn a_second_server_on_the_same_runs_folder_is_refused_naming_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let serve = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fairtat"));
        c.args(["serve", "--addr", "127.0.0.1:0", "--runs"])
            .arg(tmp.path().join("runs"))
            .arg("--configs")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/configs"))
            .env("FAIRTAT_LOG", "warn");
        c
    };
    let mut first = serve().stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(first.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().trim_start_matches("fairtat dashboard: http://");
    let second = serve().output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr).to_string();
    let _ = first.kill();
    let _ = first.wait();
    assert!(!second.status.success(), "the second server started: {err}");
    assert!(err.contains("already served"), "{err}");
    assert!(err.contains(&format!("http://{addr}")), "{err}");
    // The first server is gone (killed, no clean shutdown): the kernel freed its lock.
    let mut third = serve().stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(third.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = third.kill();
    let _ = third.wait();
    assert!(line.starts_with("fairtat dashboard: http://"), "{line}");
}

/// `POST path` with a bearer token and a JSON body over a plain socket; the response text.
fn post(addr: &str, path: &str, token: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn trainers_do_not_inherit_the_servers_token() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    // A stand-in trainer (`train --run-dir DIR`) that records its environment.
    let trainer = tmp.path().join("trainer.sh");
    std::fs::write(&trainer, "#!/bin/sh\nenv > \"$3/env.txt\"\n").unwrap();
    std::fs::set_permissions(&trainer, std::fs::Permissions::from_mode(0o755)).unwrap();
    let token = "9f86d081884c7d659a2feaa0c55ad015";
    let mut child = Command::new(env!("CARGO_BIN_EXE_fairtat"))
        .args(["serve", "--addr", "127.0.0.1:0", "--runs"])
        .arg(tmp.path().join("runs"))
        .arg("--configs")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/configs"))
        .arg("--trainer")
        .arg(&trainer)
        .env("FAIRTAT_LOG", "warn")
        .env("FAIRTAT_TOKEN", token)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .trim_start_matches("fairtat dashboard: http://")
        .to_string();
    let resp = post(
        &addr,
        "/api/runs",
        token,
        r#"{"preset": "fmnist-quick-fairtat"}"#,
    );
    let id = resp
        .split("\"id\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no run created: {resp}"))
        .to_string();
    let env_file = tmp.path().join("runs").join(&id).join("env.txt");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    // The shell creates the file before `env` writes it: wait for its content, not its name.
    let written = || std::fs::read_to_string(&env_file).is_ok_and(|t| t.contains("PATH="));
    while !written() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let env = std::fs::read_to_string(&env_file).expect("the trainer ran");
    assert!(env.contains("PATH="), "{env}");
    assert!(
        !env.contains("FAIRTAT_TOKEN"),
        "the token reached the trainer"
    );
    assert!(!env.contains(token), "the token reached the trainer");
}
