//! Reads and tails `events.jsonl`.
//!
//! Only complete lines (ending in `\n`) count: the writer emits each line with one write, so the
//! only partial line is the last one, still being written or torn by a crash. A line that does not
//! parse in the middle of the file is corruption and an error naming the line.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::events::EventLine;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}, line {line}: not a valid event line: {source}")]
    Corrupt {
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        #[source]
        source: serde_json::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ReadError + '_ {
    move |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Parse one complete line; `Ok(None)` for a blank line.
fn parse_line(path: &Path, line_no: u64, bytes: &[u8]) -> Result<Option<EventLine>, ReadError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(None);
    }
    serde_json::from_slice(bytes)
        .map(Some)
        .map_err(|source| ReadError::Corrupt {
            path: path.to_path_buf(),
            line: line_no,
            source,
        })
}

/// All complete lines of `path`. A torn last line (no trailing newline) is ignored; a corrupt
/// line anywhere else is an error naming its line number.
pub fn read_events(path: &Path) -> Result<Vec<EventLine>, ReadError> {
    let file = File::open(path).map_err(io_err(path))?;
    let mut reader = BufReader::new(file);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(io_err(path))?;
        if n == 0 || buf.last() != Some(&b'\n') {
            break; // end of file, or a torn last line
        }
        line_no += 1;
        if let Some(ev) = parse_line(path, line_no, &buf)? {
            out.push(ev);
        }
    }
    Ok(out)
}

/// Incremental follower of a growing `events.jsonl` (the server polls it).
///
/// Keeps the byte offset just past the last complete line it returned. A partial line is
/// re-read on the next poll rather than buffered, so a writer that truncates a torn line on
/// reopen and writes a different one in its place is read correctly.
#[derive(Debug)]
pub struct Tailer {
    path: PathBuf,
    offset: u64,
    /// Complete lines consumed so far (for error messages).
    lines: u64,
    /// Highest seq returned; after the file was replaced (it shrank below `offset`) lines are
    /// re-read from the start and those already returned are skipped.
    last_seq: Option<u64>,
}

impl Tailer {
    pub fn new(path: PathBuf) -> Self {
        Tailer {
            path,
            offset: 0,
            lines: 0,
            last_seq: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Byte offset just past the last complete line consumed.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// New complete lines since the last call, in file order, each exactly once. A missing file
    /// yields nothing (the run has not started writing yet). A corrupt line is reported once
    /// (after the good lines before it were returned) and then skipped.
    pub fn poll(&mut self) -> Result<Vec<EventLine>, ReadError> {
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io_err(&self.path)(e)),
        };
        let len = file.metadata().map_err(io_err(&self.path))?.len();
        if len < self.offset {
            tracing::warn!(path = %self.path.display(), "events.jsonl shrank; re-reading from the start");
            self.offset = 0;
            self.lines = 0;
        }
        if len == self.offset {
            return Ok(vec![]);
        }
        file.seek(SeekFrom::Start(self.offset))
            .map_err(io_err(&self.path))?;
        let mut data = Vec::with_capacity((len - self.offset) as usize);
        file.take(len - self.offset)
            .read_to_end(&mut data)
            .map_err(io_err(&self.path))?;

        let mut out = Vec::new();
        let mut start = 0usize;
        while let Some(nl) = data[start..].iter().position(|&b| b == b'\n') {
            let end = start + nl + 1;
            let line_no = self.lines + 1;
            match parse_line(&self.path, line_no, &data[start..end]) {
                Ok(ev) => {
                    self.lines = line_no;
                    self.offset += (end - start) as u64;
                    if let Some(ev) = ev {
                        if self.last_seq.is_none_or(|s| ev.seq > s) {
                            self.last_seq = Some(ev.seq);
                            out.push(ev);
                        }
                    }
                }
                Err(e) if out.is_empty() => {
                    // Skip the bad line so the next poll makes progress.
                    self.lines = line_no;
                    self.offset += (end - start) as u64;
                    return Err(e);
                }
                // Return the good lines first; the next poll reports this one.
                Err(_) => return Ok(out),
            }
            start = end;
        }
        Ok(out)
    }
}

/// The `seq` of the last complete line, reading only the file's tail (a 200-epoch log is tens of
/// MB; a line is at most a few hundred KB, so the tail is read in growing windows).
pub fn last_seq(path: &Path) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct SeqOnly {
        seq: u64,
    }
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut window: u64 = 64 * 1024;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start)).ok()?;
        let mut buf = Vec::with_capacity((len - start) as usize);
        file.read_to_end(&mut buf).ok()?;
        // Only complete lines count: cut a torn tail, then take the last line that parses.
        let complete = buf.iter().rposition(|&b| b == b'\n').map(|i| &buf[..i])?;
        let lines: Vec<&[u8]> = complete.split(|&b| b == b'\n').collect();
        // The first line of a window that does not start the file may be cut: skip it.
        let usable = if start > 0 { &lines[1..] } else { &lines[..] };
        for line in usable.iter().rev() {
            if let Ok(s) = serde_json::from_slice::<SeqOnly>(line) {
                return Some(s.seq);
            }
        }
        if start == 0 {
            return None;
        }
        window = window.saturating_mul(4);
    }
}
