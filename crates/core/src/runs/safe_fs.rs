//! The one way the server touches files inside a run directory, on a runs folder that others
//! may write to (a shared NFS folder): nothing is followed, nothing blocks, nothing leaves.
//!
//! Every path is walked from the runs folder one component at a time with `openat(O_NOFOLLOW |
//! O_DIRECTORY)`, so a linked `runs/<id>` or `evals/<x>` is refused instead of leading outside
//! (and the check cannot be raced, as a `canonicalize` then `open` could). Files are opened
//! with `O_NOFOLLOW | O_NONBLOCK` after an `lstat` that refuses FIFOs, devices and sockets (so
//! neither a FIFO without writer nor a tape device can hang or act on an open), then `fstat`-ed
//! again. What the server reads or archives must have one hard link: a second name could be
//! anything the planter could read, anywhere on the file system. Reads are capped.
//!
//! The trainer writing its own files keeps plain paths: it runs as the user who started it, in
//! a directory it created. std + libc only (no tokio): callers on the runtime use
//! `spawn_blocking`.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use super::RunDir;

/// What the server reads of a small file (config, spec, meta, eval reports, markers, errors).
pub const TEXT_CAP: u64 = 8 << 20;

/// Why a file inside a run directory was not opened. `name` is relative to the run directory
/// (`config.toml`, `evals/x/eval.json`): it names the file without saying where the folder is.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{0} does not exist")]
    Missing(String),
    #[error("{0} is a symbolic link; the server reads and writes regular files only, never through links")]
    Link(String),
    #[error("{name} is a {kind}; the server reads and writes regular files only")]
    NotRegular { name: String, kind: &'static str },
    #[error("{name} has {links} hard links; the server serves only files with a single link")]
    HardLinked { name: String, links: u64 },
    #[error("{name} holds {size} bytes, more than the {cap} bytes the server reads of it")]
    TooLarge { name: String, size: u64, cap: u64 },
    #[error("{name}: {err}")]
    Io { name: String, err: io::Error },
}

impl Refusal {
    /// Missing is an ordinary state (a run that has not written it yet), not a refusal.
    pub fn is_missing(&self) -> bool {
        matches!(self, Refusal::Missing(_))
    }

    /// The disk is full (the server answers 507, not a refusal).
    pub fn is_storage_full(&self) -> bool {
        matches!(self, Refusal::Io { err, .. } if err.kind() == io::ErrorKind::StorageFull)
    }
}

/// For callers that speak `io::Error`: the refusal is the message, the kind what it is.
impl From<Refusal> for io::Error {
    fn from(r: Refusal) -> io::Error {
        let kind = match &r {
            Refusal::Missing(_) => io::ErrorKind::NotFound,
            Refusal::Io { err, .. } => err.kind(),
            _ => io::ErrorKind::PermissionDenied,
        };
        io::Error::new(kind, r)
    }
}

/// How a file is opened.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Read what the server serves, shows or archives.
    Read,
    /// Create or replace the contents (markers).
    Write,
    /// Create or append (the logs a child process writes through the server's descriptor).
    Append,
}

/// The type of an `st_mode`, as a refusal names it; `None` for a regular file.
fn odd_kind(mode: libc::mode_t) -> Option<&'static str> {
    match mode & libc::S_IFMT {
        libc::S_IFREG => None,
        libc::S_IFDIR => Some("directory"),
        libc::S_IFLNK => Some("symbolic link"),
        libc::S_IFIFO => Some("FIFO (named pipe)"),
        libc::S_IFSOCK => Some("socket"),
        libc::S_IFCHR | libc::S_IFBLK => Some("device"),
        _ => Some("special file"),
    }
}

fn cstr(s: &std::ffi::OsStr, name: &str) -> Result<CString, Refusal> {
    CString::new(s.as_bytes()).map_err(|_| Refusal::Io {
        name: name.into(),
        err: io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the name"),
    })
}

/// `lstat` of `comp` in directory `at`.
fn lstat_at(at: &OwnedFd, comp: &CString) -> io::Result<libc::stat> {
    // SAFETY: a valid descriptor, a NUL-terminated name and a zeroed out-parameter.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        let rc = libc::fstatat(
            at.as_raw_fd(),
            comp.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        );
        if rc == 0 {
            Ok(st)
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

fn fstat(fd: &impl AsRawFd) -> io::Result<libc::stat> {
    // SAFETY: a valid descriptor and a zeroed out-parameter.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd.as_raw_fd(), &mut st) == 0 {
            Ok(st)
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// `openat(at, comp, flags)` as an owned descriptor.
fn open_at(at: Option<&OwnedFd>, comp: &CString, flags: i32) -> io::Result<OwnedFd> {
    let dirfd = at.map_or(libc::AT_FDCWD, |f| f.as_raw_fd());
    // SAFETY: a valid descriptor (or AT_FDCWD) and a NUL-terminated name; the result is owned.
    let fd = unsafe { libc::openat(dirfd, comp.as_ptr(), flags | libc::O_CLOEXEC, 0o644) };
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: a fresh descriptor nobody else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// Explain why `comp` (shown as `name`) could not be opened in `at`.
fn explain(at: &OwnedFd, comp: &CString, name: &str, err: io::Error) -> Refusal {
    if err.kind() == io::ErrorKind::NotFound {
        return Refusal::Missing(name.into());
    }
    match lstat_at(at, comp).map(|st| st.st_mode & libc::S_IFMT) {
        Ok(libc::S_IFLNK) => Refusal::Link(name.into()),
        Ok(m) if err.raw_os_error() == Some(libc::ENOTDIR) || m != libc::S_IFDIR => {
            match odd_kind(m) {
                Some(kind) => Refusal::NotRegular {
                    name: name.into(),
                    kind,
                },
                None => Refusal::NotRegular {
                    name: name.into(),
                    kind: "file where a directory belongs",
                },
            }
        }
        _ => Refusal::Io {
            name: name.into(),
            err,
        },
    }
}

/// The relative path's parts, refusing `..`, absolute paths and the like.
fn parts(rel: &Path) -> Result<Vec<&std::ffi::OsStr>, Refusal> {
    rel.components()
        .map(|c| match c {
            Component::Normal(s) => Ok(s),
            _ => Err(Refusal::Io {
                name: rel.display().to_string(),
                err: io::Error::new(io::ErrorKind::InvalidInput, "not a plain relative path"),
            }),
        })
        .collect()
}

/// The directory `rel` of the run (`""` for the run directory itself), walked from the runs
/// folder without following links; `create` makes the missing ones.
fn open_dir(dir: &RunDir, rel: &Path, create: bool) -> Result<OwnedFd, Refusal> {
    let runs = match dir.root().parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let id = dir.root().file_name().unwrap_or_default();
    let runs_c = cstr(runs.as_os_str(), "the runs folder")?;
    // The runs folder itself is the operator's choice and may be a link.
    let mut fd =
        open_at(None, &runs_c, libc::O_DIRECTORY | libc::O_RDONLY).map_err(|err| Refusal::Io {
            name: "the runs folder".into(),
            err,
        })?;
    let mut shown = std::path::PathBuf::new();
    let steps = std::iter::once(id).chain(parts(rel)?);
    for (i, comp) in steps.enumerate() {
        let name = if i == 0 {
            format!("run directory {}", id.to_string_lossy())
        } else {
            shown.push(comp);
            shown.display().to_string()
        };
        let c = cstr(comp, &name)?;
        if create && i > 0 {
            // SAFETY: a valid descriptor and a NUL-terminated name.
            if unsafe { libc::mkdirat(fd.as_raw_fd(), c.as_ptr(), 0o755) } != 0 {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::AlreadyExists {
                    return Err(Refusal::Io { name, err });
                }
            }
        }
        let flags = libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_RDONLY;
        fd = open_at(Some(&fd), &c, flags).map_err(|e| explain(&fd, &c, &name, e))?;
    }
    Ok(fd)
}

/// Open the file `rel` of the run for `access`, refusing links, non-regular files and (for
/// reads) files with several hard links.
fn open(dir: &RunDir, rel: &Path, access: Access) -> Result<File, Refusal> {
    let name = rel.display().to_string();
    let file_name = rel
        .file_name()
        .ok_or_else(|| Refusal::Missing(name.clone()))?;
    let parent = open_dir(dir, rel.parent().unwrap_or(Path::new("")), false)?;
    let c = cstr(file_name, &name)?;
    // Refuse a FIFO or device before opening it: opening may block or act.
    match lstat_at(&parent, &c) {
        Ok(st) => check(&st, &name)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound && access != Access::Read => {}
        Err(e) => return Err(explain(&parent, &c, &name, e)),
    }
    let flags = libc::O_NOFOLLOW
        | libc::O_NONBLOCK
        | match access {
            Access::Read => libc::O_RDONLY,
            Access::Write => libc::O_WRONLY | libc::O_CREAT,
            Access::Append => libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND,
        };
    let fd = open_at(Some(&parent), &c, flags).map_err(|e| explain(&parent, &c, &name, e))?;
    // Again on what was opened: the name may have been replaced since the lstat.
    let st = fstat(&fd).map_err(|err| Refusal::Io {
        name: name.clone(),
        err,
    })?;
    check(&st, &name)?;
    Ok(File::from(fd))
}

fn check(st: &libc::stat, name: &str) -> Result<(), Refusal> {
    if (st.st_mode & libc::S_IFMT) == libc::S_IFLNK {
        return Err(Refusal::Link(name.into()));
    }
    if let Some(kind) = odd_kind(st.st_mode) {
        return Err(Refusal::NotRegular {
            name: name.into(),
            kind,
        });
    }
    // A write through a second name changes the file behind it, wherever it is.
    // `nlink_t` is 64 bits on x86_64 Linux and 32 on aarch64: the cast is not always a no-op.
    #[allow(clippy::unnecessary_cast)]
    let links = st.st_nlink as u64;
    if links > 1 {
        return Err(Refusal::HardLinked {
            name: name.into(),
            links,
        });
    }
    Ok(())
}

fn io_at(name: &Path) -> impl Fn(io::Error) -> Refusal + '_ {
    move |err| Refusal::Io {
        name: name.display().to_string(),
        err,
    }
}

/// Open `rel` for reading (downloads, archives, the event log), regular and single-linked.
pub fn open_read(dir: &RunDir, rel: impl AsRef<Path>) -> Result<File, Refusal> {
    open(dir, rel.as_ref(), Access::Read)
}

/// The whole of `rel`, at most `cap` bytes (a larger file is refused, naming the cap).
pub fn read(dir: &RunDir, rel: impl AsRef<Path>, cap: u64) -> Result<Vec<u8>, Refusal> {
    let rel = rel.as_ref();
    let file = open(dir, rel, Access::Read)?;
    let size = file.metadata().map_err(io_at(rel))?.len();
    let too_large = |size| Refusal::TooLarge {
        name: rel.display().to_string(),
        size,
        cap,
    };
    if size > cap {
        return Err(too_large(size));
    }
    let mut buf = Vec::with_capacity(size as usize);
    file.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(io_at(rel))?;
    if buf.len() as u64 > cap {
        return Err(too_large(buf.len() as u64)); // it grew while read
    }
    Ok(buf)
}

/// [`read`] as text (invalid UTF-8 replaced: what is shown, not parsed as bytes).
pub fn read_text(dir: &RunDir, rel: impl AsRef<Path>, cap: u64) -> Result<String, Refusal> {
    read(dir, rel, cap).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The last `max` bytes of `rel` (a log's tail), however long it is.
pub fn read_tail(dir: &RunDir, rel: impl AsRef<Path>, max: u64) -> Result<Vec<u8>, Refusal> {
    let rel = rel.as_ref();
    let mut file = open(dir, rel, Access::Read)?;
    let len = file.metadata().map_err(io_at(rel))?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(max)))
        .map_err(io_at(rel))?;
    let mut buf = Vec::new();
    file.take(max).read_to_end(&mut buf).map_err(io_at(rel))?;
    Ok(buf)
}

/// `lstat` of `rel`, reached through real directories only.
fn lstat_in(dir: &RunDir, rel: &Path) -> Option<libc::stat> {
    let fd = open_dir(dir, rel.parent()?, false).ok()?;
    lstat_at(&fd, &cstr(rel.file_name()?, "").ok()?).ok()
}

/// Whether `rel` is a regular file of the run (reached through real directories only).
pub fn is_file(dir: &RunDir, rel: impl AsRef<Path>) -> bool {
    lstat_in(dir, rel.as_ref()).is_some_and(|st| odd_kind(st.st_mode).is_none())
}

/// The size of `rel` if [`open_read`] would open it (a regular file with a single link).
pub fn file_len(dir: &RunDir, rel: impl AsRef<Path>) -> Option<u64> {
    let st = lstat_in(dir, rel.as_ref())?;
    check(&st, "").ok()?;
    Some(st.st_size as u64)
}

/// Replace the contents of `rel` with `data`, creating it (its directory must exist).
pub fn write(dir: &RunDir, rel: impl AsRef<Path>, data: &[u8]) -> Result<(), Refusal> {
    let rel = rel.as_ref();
    let mut file = open(dir, rel, Access::Write)?;
    // Truncated only now: O_TRUNC would have cut a linked file before it was checked.
    file.set_len(0).map_err(io_at(rel))?;
    file.write_all(data).map_err(io_at(rel))
}

/// Open `rel` for appending, creating it (the log a child process writes).
pub fn open_append(dir: &RunDir, rel: impl AsRef<Path>) -> Result<File, Refusal> {
    open(dir, rel.as_ref(), Access::Append)
}

/// Create directory `rel` of the run and its missing parents, none of them a link.
pub fn create_dir_all(dir: &RunDir, rel: impl AsRef<Path>) -> Result<(), Refusal> {
    open_dir(dir, rel.as_ref(), true).map(drop)
}

/// Remove the name `rel` (a link is removed itself, never its target); missing is fine.
pub fn remove_file(dir: &RunDir, rel: impl AsRef<Path>) -> Result<(), Refusal> {
    let rel = rel.as_ref();
    let name = rel.display().to_string();
    let file = rel
        .file_name()
        .ok_or_else(|| Refusal::Missing(name.clone()))?;
    let parent = match open_dir(dir, rel.parent().unwrap_or(Path::new("")), false) {
        Err(Refusal::Missing(_)) => return Ok(()),
        other => other?,
    };
    let c = cstr(file, &name)?;
    // SAFETY: a valid descriptor and a NUL-terminated name.
    if unsafe { libc::unlinkat(parent.as_raw_fd(), c.as_ptr(), 0) } != 0 {
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::NotFound {
            return Err(Refusal::Io { name, err });
        }
    }
    Ok(())
}

/// Open `path` for reading if it is a regular file, without following a link in its last part
/// and without blocking on a FIFO: for readers that take a plain path (the event log, which
/// the server tails and the trainer reads back), where the run directory is not known.
pub fn open_regular(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    match odd_kind(fstat(&file)?.st_mode) {
        None => Ok(file),
        Some(kind) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a {kind}; only regular files are read"),
        )),
    }
}

/// Bytes free for an unprivileged writer and the size of the file system holding `path`
/// (`statvfs`), for a "disk full" answer that says how full.
pub fn free_space(path: &Path) -> Option<(u64, u64)> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: a NUL-terminated path and a zeroed out-parameter.
    let st = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(c.as_ptr(), &mut st) == 0).then_some(st)
    }?;
    let unit = st.f_frsize as u64;
    Some((st.f_bavail as u64 * unit, st.f_blocks as u64 * unit))
}

/// What an entry of a listed directory is (without following it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// A link, FIFO, device or socket: never opened.
    Other,
}

/// The entries of directory `rel` of the run, sorted by name, with what each is.
pub fn list_dir(dir: &RunDir, rel: impl AsRef<Path>) -> Result<Vec<(String, EntryKind)>, Refusal> {
    let fd = open_dir(dir, rel.as_ref(), false)?;
    // fdopendir takes the descriptor over; a duplicate stays ours for the lstat of each entry.
    let listed = fd.try_clone().map_err(io_at(rel.as_ref()))?;
    let mut out = Vec::new();
    // SAFETY: fdopendir owns `listed` from here and closedir closes it; readdir's entries are
    // read before the next call.
    unsafe {
        let d = libc::fdopendir(listed.into_raw_fd());
        if d.is_null() {
            return Err(io_at(rel.as_ref())(io::Error::last_os_error()));
        }
        loop {
            let e = libc::readdir(d);
            if e.is_null() {
                break;
            }
            let name = std::ffi::CStr::from_ptr((*e).d_name.as_ptr()).to_owned();
            if name.as_bytes() == b"." || name.as_bytes() == b".." {
                continue;
            }
            let kind = match lstat_at(&fd, &name).map(|st| st.st_mode & libc::S_IFMT) {
                Ok(libc::S_IFREG) => EntryKind::File,
                Ok(libc::S_IFDIR) => EntryKind::Dir,
                _ => EntryKind::Other,
            };
            out.push((name.to_string_lossy().into_owned(), kind));
        }
        libc::closedir(d);
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
#[path = "safe_fs_tests.rs"]
mod tests;
