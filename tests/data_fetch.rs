//! `fairtat data fetch` against a local HTTP server that serves a small archive in the CIFAR-10
//! layout (no network in tests): a fresh download unpacks only the data folder's regular files,
//! a partial download is resumed with a Range request, and a wrong checksum leaves nothing.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

/// A tar.gz with the six CIFAR-10 files under `cifar-10-batches-bin/`, a symlink inside it and
/// a file outside it.
fn fake_cifar10() -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, path, data).unwrap();
    };
    for i in 1..=5 {
        add(
            &format!("cifar-10-batches-bin/data_batch_{i}.bin"),
            &vec![i as u8; 3073 * 4],
        );
    }
    add("cifar-10-batches-bin/test_batch.bin", &vec![9u8; 3073 * 4]);
    add("elsewhere/readme.txt", b"not part of the data set");
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_cksum();
    tar.append_link(&mut h, "cifar-10-batches-bin/passwd", "/etc/passwd")
        .unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Serve `body` at any path (honouring `Range: bytes=N-`); the Range headers seen.
fn serve(body: Vec<u8>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut from = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(r) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    seen.lock().unwrap().push(r.trim().to_string());
                    from = r.trim().trim_end_matches('-').parse().unwrap_or(0);
                }
            }
            let part = &body[from.min(body.len())..];
            let status = if from > 0 {
                "206 Partial Content"
            } else {
                "200 OK"
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                part.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(part);
        }
    });
    (format!("http://{addr}/cifar-10-binary.tar.gz"), ranges)
}

fn fetch(root: &Path, url: &str, md5: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fairtat"))
        .args(["data", "fetch", "cifar10", "--root"])
        .arg(root)
        .args(["--url", url, "--md5", md5])
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn fetch_unpacks_only_the_data_sets_regular_files() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = fake_cifar10();
    let (url, ranges) = serve(archive.clone());
    let root = tmp.path().join("data");
    let o = fetch(&root, &url, &md5_hex(&archive));
    assert!(o.status.success(), "{}", text(&o));
    let dir = root.join("cifar-10-batches-bin");
    let missing = fairtat::datafiles::missing_files(fairtat::config::DatasetKind::Cifar10, &dir);
    assert!(missing.is_empty(), "{missing:?}");
    assert_eq!(std::fs::read(dir.join("data_batch_3.bin")).unwrap()[0], 3);
    assert!(!dir.join("passwd").exists(), "a link was unpacked");
    assert!(
        !root.join("elsewhere").exists(),
        "a file outside the data folder was unpacked"
    );
    assert!(
        !root.join("cifar-10-binary.tar.gz").exists(),
        "the archive is removed"
    );
    assert!(ranges.lock().unwrap().is_empty());
    assert!(text(&o).contains("is ready in"), "{}", text(&o));
    // A second call finds the data and downloads nothing.
    let o = fetch(&root, "http://127.0.0.1:9/unreachable", &md5_hex(&archive));
    assert!(
        o.status.success() && text(&o).contains("already in"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_broken_download_is_resumed_where_it_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = fake_cifar10();
    let (url, ranges) = serve(archive.clone());
    let root = tmp.path().join("data");
    std::fs::create_dir_all(&root).unwrap();
    let half = archive.len() / 2;
    std::fs::write(root.join("cifar-10-binary.tar.gz.part"), &archive[..half]).unwrap();
    let o = fetch(&root, &url, &md5_hex(&archive));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(*ranges.lock().unwrap(), vec![format!("{half}-")]);
    assert!(root.join("cifar-10-batches-bin/test_batch.bin").is_file());
    assert!(!root.join("cifar-10-binary.tar.gz.part").exists());
}

#[test]
fn a_wrong_checksum_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let (url, _) = serve(fake_cifar10());
    let root = tmp.path().join("data");
    let o = fetch(&root, &url, &"0".repeat(32));
    assert!(!o.status.success());
    assert!(
        text(&o).contains("MD5") && text(&o).contains("run the command again"),
        "{}",
        text(&o)
    );
    assert!(!root.join("cifar-10-batches-bin").exists());
    assert!(!root.join("cifar-10-binary.tar.gz.part").exists());
    // An unknown name lists the known ones.
    let o = Command::new(env!("CARGO_BIN_EXE_fairtat"))
        .args(["data", "fetch", "imagenet"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o).contains("allowed: cifar10, cifar100, cifar10-c"),
        "{}",
        text(&o)
    );
}
