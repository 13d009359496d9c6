//! `fairtat data fetch cifar10|cifar100|cifar10-c`: the data sets that cannot ship with the
//! program, from their official archives (checked against the published size and MD5), into
//! the directories the presets' `data.dir` names. `fairtat data list` shows what is where.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use super::download::{fetch, is_complete, Expected};
use super::Failure;
use crate::config::DatasetKind;

/// One official archive and where it unpacks.
struct Archive {
    name: &'static str,
    what: &'static str,
    url: &'static str,
    size: u64,
    md5: &'static str,
    /// The folder the archive holds, created under `--root`.
    folder: &'static str,
    /// A file that exists once the data is unpacked, checked by `list` and after unpacking.
    marker: &'static str,
}

/// Sizes and MD5s as published by the data sets' authors (the CIFAR page of
/// cs.toronto.edu/~kriz, Zenodo record 2535967 for CIFAR-10-C).
const ARCHIVES: [Archive; 3] = [
    Archive {
        name: "cifar10",
        what: "CIFAR-10, binary version (Krizhevsky 2009)",
        url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        size: 170_052_171,
        md5: "c32a1d4ab5d03f1284b67883e8d87530",
        folder: "cifar-10-batches-bin",
        marker: "test_batch.bin",
    },
    Archive {
        name: "cifar100",
        what: "CIFAR-100, binary version (Krizhevsky 2009)",
        url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
        size: 168_513_733,
        md5: "03b5dce01913d631647c71ecec9e9cb8",
        folder: "cifar-100-binary",
        marker: "test.bin",
    },
    Archive {
        name: "cifar10-c",
        what: "CIFAR-10-C common corruptions (Hendrycks & Dietterich, ICLR 2019), 2.9 GB",
        url: "https://zenodo.org/records/2535967/files/CIFAR-10-C.tar",
        size: 2_918_471_680,
        md5: "56bf5dcef84df0e2308c6dcbcbbd8499",
        folder: "CIFAR-10-C",
        marker: "labels.npy",
    },
];

#[derive(Args, Debug)]
pub struct DataArgs {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Download and unpack a data set (resumes a broken download; checks size and MD5).
    Fetch(FetchArgs),
    /// The data sets this command knows, and whether they are unpacked under --root.
    List {
        #[arg(long, default_value = "data")]
        root: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct FetchArgs {
    /// cifar10, cifar100 or cifar10-c.
    pub name: String,
    /// Where the data set's folder goes; the presets read `data/cifar-10-batches-bin` and
    /// `data/cifar-100-binary` relative to the working directory.
    #[arg(long, default_value = "data")]
    pub root: PathBuf,
    /// A mirror of the archive (same file; its MD5 must match unless --md5 says otherwise).
    #[arg(long)]
    pub url: Option<String>,
    /// With --url: the mirror's MD5, if its archive differs from the official one.
    #[arg(long, requires = "url")]
    pub md5: Option<String>,
    /// Keep the downloaded archive after unpacking.
    #[arg(long)]
    pub keep_archive: bool,
}

fn archive(name: &str) -> Result<&'static Archive> {
    ARCHIVES.iter().find(|a| a.name == name).ok_or_else(|| {
        let names: Vec<&str> = ARCHIVES.iter().map(|a| a.name).collect();
        anyhow::anyhow!("unknown data set {name:?}; allowed: {}", names.join(", "))
    })
}

pub fn cmd_data(a: DataArgs) -> Result<ExitCode, Failure> {
    match a.command {
        DataCommand::Fetch(f) => fetch_and_unpack(&f)?,
        DataCommand::List { root } => {
            for a in &ARCHIVES {
                let dir = root.join(a.folder);
                let state = if dir.join(a.marker).is_file() {
                    "present"
                } else {
                    "missing"
                };
                println!("{:<10} {state:<8} {}  ({})", a.name, dir.display(), a.what);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn fetch_and_unpack(f: &FetchArgs) -> Result<()> {
    let a = archive(&f.name)?;
    let dir = f.root.join(a.folder);
    if dir.join(a.marker).is_file() {
        println!("{} is already in {}", a.what, dir.display());
        return Ok(());
    }
    std::fs::create_dir_all(&f.root)
        .with_context(|| format!("cannot create {}", f.root.display()))?;
    let md5 = f.md5.as_deref().unwrap_or(a.md5).to_ascii_lowercase();
    let want = Expected {
        url: f.url.as_deref().unwrap_or(a.url),
        // A mirror with its own MD5 may have its own size too.
        size: f.md5.is_none().then_some(a.size),
        md5: &md5,
    };
    let file = a.url.rsplit('/').next().unwrap_or(a.name);
    let dest = f.root.join(file);
    if is_complete(&dest, &want)? {
        eprintln!("{} already downloaded and checked", dest.display());
    } else {
        eprintln!("downloading {} from {}", a.what, want.url);
        fetch(&want, &dest)?;
    }
    let n = unpack(&dest, &f.root, a.folder)?;
    if !dir.join(a.marker).is_file() {
        bail!(
            "{} unpacked {n} files but no {}/{}",
            dest.display(),
            a.folder,
            a.marker
        );
    }
    if !f.keep_archive {
        std::fs::remove_file(&dest)?;
    }
    println!(
        "{} is ready in {} ({n} files){}",
        a.what,
        dir.display(),
        hint(a.name, &dir)
    );
    Ok(())
}

/// How a run finds the data just fetched.
fn hint(name: &str, dir: &Path) -> String {
    match DatasetKind::parse(name) {
        Some(kind) if Path::new(kind.default_dir()) == dir => {
            "; the presets' data.dir reads it from here".to_string()
        }
        Some(_) => format!("; set data.dir = \"{}\" in your config", dir.display()),
        None => format!("; pass --corruptions-dir {} to fairtat eval", dir.display()),
    }
}

/// Unpack the regular files and folders under `folder/` of a `.tar` or `.tar.gz` into
/// `root`; anything else (links, devices, paths outside `folder/`) is skipped. The number of
/// files written.
fn unpack(archive: &Path, root: &Path, folder: &str) -> Result<usize> {
    let file = std::fs::File::open(archive)?;
    let reader: Box<dyn std::io::Read> = if archive.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut tar = tar::Archive::new(reader);
    let mut n = 0;
    for entry in tar.entries()? {
        let mut entry =
            entry.with_context(|| format!("{} is not a readable archive", archive.display()))?;
        let path = entry.path()?.into_owned();
        let kind = entry.header().entry_type();
        let inside = path.starts_with(folder);
        if !inside || !(kind.is_file() || kind.is_dir()) {
            continue;
        }
        // `unpack_in` refuses `..` and absolute paths.
        if entry.unpack_in(root)? && kind.is_file() {
            n += 1;
        }
    }
    Ok(n)
}
