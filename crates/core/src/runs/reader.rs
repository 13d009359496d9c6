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
    let file = super::safe_fs::open_regular(path).map_err(io_err(path))?;
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

/// Bytes read by one [`Tailer::poll`] at most (a line longer than this is still read whole):
/// following a 48 MB log of a resumed run then holds about a MB of lines at a time, not all of it.
pub const MAX_POLL_BYTES: u64 = 1 << 20;

/// A parsed line with the byte offset where it starts in the file.
pub type Located = (u64, EventLine);

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
    /// The last poll stopped at [`MAX_POLL_BYTES`] with more complete data behind it.
    more: bool,
    /// The file's identity (device, inode) when last read.
    identity: Option<(u64, u64)>,
    /// The file was replaced or truncated since the last poll: what was read before no longer
    /// describes it (see [`Tailer::take_reset`]).
    reset: bool,
}

impl Tailer {
    pub fn new(path: PathBuf) -> Self {
        Tailer::resume_at(path, 0, None)
    }

    /// A tailer that continues after `offset` (the end of a complete line) where lines up to
    /// `last_seq` were already consumed.
    pub fn resume_at(path: PathBuf, offset: u64, last_seq: Option<u64>) -> Self {
        Tailer {
            path,
            offset,
            lines: 0,
            last_seq,
            more: false,
            identity: None,
            reset: false,
        }
    }

    /// True once after the file was replaced (another inode) or truncated below what was read:
    /// the reader then starts again from the first line, and whoever folded the earlier lines
    /// must fold again from scratch rather than keep a history the file no longer has.
    pub fn take_reset(&mut self) -> bool {
        std::mem::take(&mut self.reset)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Byte offset just past the last complete line consumed.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// True when the last poll was cut at [`MAX_POLL_BYTES`]: poll again without waiting.
    pub fn more(&self) -> bool {
        self.more
    }

    /// New complete lines since the last call, in file order, each exactly once. A missing file
    /// yields nothing (the run has not started writing yet). A corrupt line is reported once
    /// (after the good lines before it were returned) and then skipped.
    pub fn poll(&mut self) -> Result<Vec<EventLine>, ReadError> {
        Ok(self.poll_located()?.into_iter().map(|(_, l)| l).collect())
    }

    /// [`Tailer::poll`] with the byte offset of each line (the metrics store indexes them).
    pub fn poll_located(&mut self) -> Result<Vec<Located>, ReadError> {
        self.more = false;
        let mut file = match super::safe_fs::open_regular(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io_err(&self.path)(e)),
        };
        let meta = file.metadata().map_err(io_err(&self.path))?;
        let len = meta.len();
        let identity = file_identity(&meta);
        let replaced = self.identity.is_some_and(|id| Some(id) != identity);
        self.identity = identity;
        if replaced || len < self.offset {
            tracing::warn!(path = %self.path.display(), replaced, "events.jsonl was replaced or shrank; re-reading from the start");
            self.offset = 0;
            self.lines = 0;
            self.last_seq = None;
            self.reset = true;
        }
        if len == self.offset {
            return Ok(vec![]);
        }
        let (data, capped) = read_complete(&mut file, &self.path, self.offset, len)?;
        self.more = capped;

        let mut out = Vec::new();
        let mut start = 0usize;
        while let Some(nl) = data[start..].iter().position(|&b| b == b'\n') {
            let end = start + nl + 1;
            let line_no = self.lines + 1;
            let at = self.offset;
            match parse_line(&self.path, line_no, &data[start..end]) {
                Ok(ev) => {
                    self.lines = line_no;
                    self.offset += (end - start) as u64;
                    if let Some(ev) = ev {
                        if self.last_seq.is_none_or(|s| ev.seq > s) {
                            self.last_seq = Some(ev.seq);
                            out.push((at, ev));
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
                Err(_) => {
                    self.more = true;
                    return Ok(out);
                }
            }
            start = end;
        }
        Ok(out)
    }
}

#[cfg(unix)]
fn file_identity(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn file_identity(_: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// Bytes from `from` up to at most [`MAX_POLL_BYTES`] (more when a single line is longer),
/// cut after the last newline when the cap was hit; true when more bytes follow.
fn read_complete(
    file: &mut File,
    path: &Path,
    from: u64,
    len: u64,
) -> Result<(Vec<u8>, bool), ReadError> {
    file.seek(SeekFrom::Start(from)).map_err(io_err(path))?;
    let want = (len - from).min(MAX_POLL_BYTES);
    let mut data = Vec::with_capacity(want as usize);
    file.take(want)
        .read_to_end(&mut data)
        .map_err(io_err(path))?;
    if want < len - from {
        match data.iter().rposition(|&b| b == b'\n') {
            Some(i) => data.truncate(i + 1),
            // One line longer than the cap: read the rest of it.
            None => {
                let mut rest = Vec::new();
                file.take(len - from - want)
                    .read_to_end(&mut rest)
                    .map_err(io_err(path))?;
                data.extend(rest);
            }
        }
    }
    Ok((data, want < len - from))
}

/// The event line starting at byte `offset` (an older epoch's record, read on demand).
pub fn read_line_at(path: &Path, offset: u64) -> Result<Option<EventLine>, ReadError> {
    let mut file = super::safe_fs::open_regular(path).map_err(io_err(path))?;
    file.seek(SeekFrom::Start(offset)).map_err(io_err(path))?;
    let mut buf = Vec::new();
    BufReader::new(file)
        .read_until(b'\n', &mut buf)
        .map_err(io_err(path))?;
    if buf.last() != Some(&b'\n') {
        return Ok(None);
    }
    parse_line(path, 0, &buf)
}

/// Raw complete lines in `[from, to)` (at least one line, else at most about `max_bytes`):
/// each with its start offset, without the newline. Used to replay lines to SSE clients
/// without parsing them again.
pub fn read_raw(
    path: &Path,
    from: u64,
    to: u64,
    max_bytes: u64,
) -> Result<Vec<(u64, Vec<u8>)>, ReadError> {
    let mut file = super::safe_fs::open_regular(path).map_err(io_err(path))?;
    file.seek(SeekFrom::Start(from)).map_err(io_err(path))?;
    let mut reader = BufReader::new(file.take(to.saturating_sub(from)));
    let mut out = Vec::new();
    let (mut at, mut used) = (from, 0u64);
    loop {
        let mut buf = Vec::new();
        let n = reader.read_until(b'\n', &mut buf).map_err(io_err(path))?;
        if n == 0 || buf.last() != Some(&b'\n') {
            break;
        }
        buf.pop();
        let start = at;
        at += n as u64;
        used += n as u64;
        if !buf.iter().all(|b| b.is_ascii_whitespace()) {
            out.push((start, buf));
        }
        if used >= max_bytes {
            break;
        }
    }
    Ok(out)
}

/// The `seq` of a raw line written by [`super::writer`] (`{"v":1,"seq":N,...`), without parsing
/// the rest of it.
pub fn raw_seq(line: &[u8]) -> Option<u64> {
    let head = &line[..line.len().min(64)];
    let key = b"\"seq\":";
    let i = head.windows(key.len()).position(|w| w == key)? + key.len();
    let digits: Vec<u8> = head[i..]
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// The seq of the last complete line, reading only the end of the file (a resumed run's history
/// seq without parsing its whole log). None for a missing or empty file.
pub fn last_seq(path: &Path) -> Option<u64> {
    let mut file = super::safe_fs::open_regular(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut back = 64 * 1024u64;
    loop {
        let from = len.saturating_sub(back);
        file.seek(SeekFrom::Start(from)).ok()?;
        let mut data = Vec::new();
        (&mut file).take(len - from).read_to_end(&mut data).ok()?;
        let end = data.iter().rposition(|&b| b == b'\n');
        let found = end.and_then(|end| {
            let body = &data[..end];
            let start = body.iter().rposition(|&b| b == b'\n').map(|i| i + 1);
            match start {
                Some(s) => Some(raw_seq(&body[s..])),
                None if from == 0 => Some(raw_seq(body)),
                None => None,
            }
        });
        match found {
            Some(seq @ Some(_)) => return seq,
            // A blank or foreign last line: fall back to a full read.
            Some(None) => return read_events(path).ok()?.last().map(|l| l.seq),
            None if from == 0 => return None,
            None => back *= 4,
        }
    }
}

#[cfg(test)]
mod tailer_tests {
    use super::*;
    use crate::runs::writer::EventWriter;
    use crate::runs::{RunDir, RunEvent};

    fn log(w: &mut EventWriter, m: &str) {
        w.append(&RunEvent::Log {
            level: "info".into(),
            message: m.into(),
        })
        .unwrap();
    }

    fn messages(lines: &[EventLine]) -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| match &l.event {
                RunEvent::Log { message, .. } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_replaced_log_is_read_again_from_its_first_line_and_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("r"));
        let mut w = EventWriter::open(&dir).unwrap();
        for m in ["a", "b", "c"] {
            log(&mut w, m);
        }
        drop(w);
        let mut t = Tailer::new(dir.events());
        assert_eq!(messages(&t.poll().unwrap()), ["a", "b", "c"]);
        assert!(!t.take_reset());
        // Another file in its place, longer than what was read: same seqs, new content.
        let other = RunDir::new(tmp.path().join("other"));
        let mut w = EventWriter::open(&other).unwrap();
        for m in ["x-long-message", "y-long-message", "z-long-message", "w"] {
            log(&mut w, m);
        }
        drop(w);
        std::fs::rename(other.events(), dir.events()).unwrap();
        let lines = t.poll().unwrap();
        assert!(t.take_reset(), "the replacement is reported");
        assert!(!t.take_reset(), "once");
        assert_eq!(
            messages(&lines),
            ["x-long-message", "y-long-message", "z-long-message", "w"]
        );
        // Truncated below what was read: the same.
        std::fs::write(dir.events(), "").unwrap();
        let mut w = EventWriter::open(&dir).unwrap();
        log(&mut w, "fresh");
        drop(w);
        assert_eq!(messages(&t.poll().unwrap()), ["fresh"]);
        assert!(t.take_reset());
    }
}
