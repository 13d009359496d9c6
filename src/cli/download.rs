//! Downloads that survive a broken connection: the bytes go to `<file>.part`, a second attempt
//! asks the server for the rest (`Range: bytes=N-`) and appends, and the finished file is
//! checked against its published size and MD5 before it takes its final name. A server that
//! ignores the range (200 instead of 206) gets the whole file again.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use md5::{Digest, Md5};

/// What a download must produce.
pub struct Expected<'a> {
    pub url: &'a str,
    /// Published size in bytes (None: not checked; a mirror's own archive).
    pub size: Option<u64>,
    /// Published MD5, lower-case hex.
    pub md5: &'a str,
}

fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// MD5 of a file, lower-case hex.
pub fn md5_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `dest` is already the expected file (a finished earlier download).
pub fn is_complete(dest: &Path, want: &Expected) -> Result<bool> {
    if !dest.is_file() {
        return Ok(false);
    }
    let len = std::fs::metadata(dest)?.len();
    Ok(want.size.is_none_or(|s| s == len) && md5_file(dest)? == want.md5)
}

/// Download `want.url` to `dest`, resuming a partial earlier attempt, with a progress bar on
/// stderr; checked against size and MD5, else removed with an error saying so.
pub fn fetch(want: &Expected, dest: &Path) -> Result<()> {
    let part = part_path(dest);
    let have = std::fs::metadata(&part).map_or(0, |m| m.len());
    let client = reqwest::blocking::Client::builder()
        .user_agent(concat!("fairtat/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let mut req = client.get(want.url);
    if have > 0 {
        req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let mut resp = req
        .send()
        .with_context(|| format!("cannot reach {}", want.url))?;
    let status = resp.status();
    let resumed = status == reqwest::StatusCode::PARTIAL_CONTENT && have > 0;
    if !(status.is_success()) {
        bail!("{} answered {status}", want.url);
    }
    let start = if resumed { have } else { 0 };
    let total = resp.content_length().map(|n| n + start).or(want.size);
    let mut out = OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed)
        .truncate(!resumed)
        .open(&part)
        .with_context(|| format!("cannot write {}", part.display()))?;
    let bar = progress(total, start, want.url, resumed);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = resp.read(&mut buf).with_context(|| {
            format!(
                "download of {} broke off; run the command again to resume",
                want.url
            )
        })?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])
            .with_context(|| format!("cannot write {} (disk full?)", part.display()))?;
        bar.inc(n as u64);
    }
    out.sync_all()?;
    bar.finish_and_clear();
    verify(&part, want)?;
    std::fs::rename(&part, dest)?;
    Ok(())
}

fn progress(total: Option<u64>, start: u64, url: &str, resumed: bool) -> ProgressBar {
    let bar = match total {
        Some(t) => ProgressBar::new(t),
        None => ProgressBar::new_spinner(),
    };
    let style = ProgressStyle::with_template(
        "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    let name = url.rsplit('/').next().unwrap_or(url);
    bar.set_message(if resumed {
        format!("{name} (resumed)")
    } else {
        name.to_string()
    });
    bar.set_position(start);
    bar
}

/// The finished `.part` file has the published size and MD5; else it is deleted (a corrupt
/// partial file would only be resumed into another corrupt file).
fn verify(part: &Path, want: &Expected) -> Result<()> {
    let len = std::fs::metadata(part)?.len();
    if let Some(size) = want.size.filter(|s| *s != len) {
        let _ = std::fs::remove_file(part);
        bail!("{} gave {len} bytes, {size} expected; the partial file was removed, run the command again", want.url);
    }
    let md5 = md5_file(part)?;
    if md5 != want.md5 {
        let _ = std::fs::remove_file(part);
        bail!(
            "{}: MD5 {md5}, {} expected (a damaged or different file); the download was removed, \
             run the command again",
            want.url,
            want.md5
        );
    }
    Ok(())
}
