//! Appends events to `events.jsonl`: one JSON object per line, one write per line.
//!
//! Durability contract (what the reader and the resume logic rely on):
//! - a line is written with a single `write` of the whole line including its `\n`, so a crash
//!   leaves at most one torn line, always the last;
//! - `Epoch`, `Checkpoint` and `Finished` lines are `fsync`ed before `append` returns, so a
//!   crash never loses a finished epoch that the checkpoint on disk already contains;
//! - reopening truncates a torn last line, so new lines never glue onto garbage.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::events::{EventLine, EventSink, RunEvent, SCHEMA_VERSION};
use super::layout::RunDir;

/// Appends [`EventLine`]s to one run's `events.jsonl`. The trainer is the only writer.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    file: File,
    next_seq: u64,
    /// Start of the last complete line when opened (None: the log was empty).
    last_line: Option<u64>,
}

impl EventWriter {
    /// Open (create) `runs/<id>/events.jsonl` for append. A torn partial last line (a crash
    /// mid-write) is truncated; `seq` continues from the number of complete lines already there.
    pub fn open(run: &RunDir) -> std::io::Result<EventWriter> {
        std::fs::create_dir_all(run.root())?;
        let path = run.events();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let scan = scan_lines(&mut file)?;
        if scan.complete_len < scan.len {
            tracing::warn!(
                path = %path.display(),
                torn_bytes = scan.len - scan.complete_len,
                "truncating a torn last line in events.jsonl"
            );
            file.set_len(scan.complete_len)?;
            file.sync_data()?;
        }
        // Normally seq == line index; if lines were ever lost or blank, never reuse a seq the
        // last complete line already carries (it is the SSE event id).
        let mut next_seq = scan.lines;
        if let Some(last) = last_line_seq(&mut file, scan.last_line_start, scan.complete_len)? {
            next_seq = next_seq.max(last + 1);
        }
        file.seek(SeekFrom::End(0))?;
        Ok(EventWriter {
            path,
            file,
            next_seq,
            last_line: (scan.complete_len > 0).then_some(scan.last_line_start),
        })
    }

    /// Whether the log ended with a `finished` line when opened: a run's end is recorded once,
    /// so whoever finds one there (another server, a trainer that finished after all) must not
    /// append a second, contradicting one.
    pub fn ends_finished(&self) -> bool {
        let Some(at) = self.last_line else {
            return false;
        };
        matches!(
            super::reader::read_line_at(&self.path, at),
            Ok(Some(line)) if matches!(line.event, RunEvent::Finished { .. })
        )
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `seq` the next appended line will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Append one line `{"v":SCHEMA_VERSION,"seq":n,"time":unix_secs,"type":...}`; returns its seq.
    pub fn append(&mut self, event: &RunEvent) -> std::io::Result<u64> {
        let seq = self.next_seq;
        let line = EventLine {
            v: SCHEMA_VERSION,
            seq,
            time: unix_now(),
            event: event.clone(),
        };
        let mut buf = serde_json::to_vec(&line).map_err(std::io::Error::other)?;
        buf.push(b'\n');
        // The file is not opened in O_APPEND mode (we needed read + set_len), so seek to the end
        // each time: cheap, and correct even if something else truncated the file.
        self.file.seek(SeekFrom::End(0))?;
        self.file.write_all(&buf)?;
        self.file.flush()?;
        if matches!(
            event,
            RunEvent::Epoch(_) | RunEvent::Checkpoint { .. } | RunEvent::Finished { .. }
        ) {
            self.file.sync_data()?;
        }
        self.next_seq += 1;
        Ok(seq)
    }
}

impl EventSink for EventWriter {
    fn emit(&mut self, event: &RunEvent) {
        if let Err(err) = self.append(event) {
            tracing::error!(cause = %err, path = %self.path.display(), "cannot append to events.jsonl");
        }
    }
}

/// Seconds since the Unix epoch, as `EventLine::time` stores it.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

struct LineScan {
    len: u64,
    /// Bytes up to and including the last `\n`.
    complete_len: u64,
    /// Number of complete, non-blank lines.
    lines: u64,
    /// Start offset of the last complete line.
    last_line_start: u64,
}

/// Stream the file once, in chunks, counting complete lines (no need to hold a large log in memory).
fn scan_lines(file: &mut File) -> std::io::Result<LineScan> {
    file.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0u8; 1 << 16];
    let (mut pos, mut line_start, mut last_line_start, mut lines) = (0u64, 0u64, 0u64, 0u64);
    let mut blank = true;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        for &b in &buf[..n] {
            if b == b'\n' {
                if !blank {
                    lines += 1;
                    last_line_start = line_start;
                }
                line_start = pos + 1;
                blank = true;
            } else if !b.is_ascii_whitespace() {
                blank = false;
            }
            pos += 1;
        }
    }
    Ok(LineScan {
        len: pos,
        complete_len: line_start,
        lines,
        last_line_start,
    })
}

/// The `seq` of the line at `[start, end)`, if it parses (it may be blank or foreign).
fn last_line_seq(file: &mut File, start: u64, end: u64) -> std::io::Result<Option<u64>> {
    if end <= start {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(start))?;
    let mut line = vec![0u8; (end - start) as usize];
    file.read_exact(&mut line)?;
    #[derive(serde::Deserialize)]
    struct SeqOnly {
        seq: u64,
    }
    Ok(serde_json::from_slice::<SeqOnly>(&line).ok().map(|s| s.seq))
}
