//! CSV reports in `runs/<id>/reports/`, rewritten from the epoch records after every epoch.
//!
//! - `epochs.csv`: one row per epoch; headline metrics of every (split, attack, model) evaluation;
//! - `classes.csv`: long format, one row per (epoch, evaluation, class);
//! - `confusion_<split>_<attack>.csv`: the last epoch's confusion matrices of the live model.
//!
//! Each file is written to a temporary name and renamed into place, so a reader (the dashboard's
//! download handler) never sees half a file. Non-finite numbers are written as empty fields.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use super::events::EpochRecord;
use super::layout::RunDir;
use super::summary::{Headline, RunSummary};

/// Header of `classes.csv` (part of the download format; change only with care).
pub const CLASSES_HEADER: &str =
    "epoch,split,attack,model,class,class_name,accuracy,cfps,cacc,epsilon,target_prob";

/// Write every report for `epochs` (in any order; rows come out sorted by epoch).
pub fn write_reports(
    run: &RunDir,
    class_names: &[String],
    epochs: &[EpochRecord],
) -> std::io::Result<()> {
    std::fs::create_dir_all(run.reports())?;
    let mut sorted: Vec<&EpochRecord> = epochs.iter().collect();
    sorted.sort_by_key(|r| r.epoch);
    write_atomic(&run.report("epochs.csv"), &epochs_csv(&sorted))?;
    write_atomic(
        &run.report("classes.csv"),
        &classes_csv(class_names, &sorted),
    )?;
    if let Some(last) = sorted.last() {
        for e in last.evals.iter().filter(|e| e.model == "live") {
            let name = format!(
                "confusion_{}_{}.csv",
                file_safe(&e.split),
                file_safe(&e.attack)
            );
            write_atomic(
                &run.report(&name),
                &confusion_csv(class_names, &e.confusion),
            )?;
        }
    }
    Ok(())
}

/// `epochs.csv`: fixed columns, then `<split>_<attack>_<model>_{acc,worst,worst10}` for every
/// evaluation seen in any epoch, in order of first appearance (stable as epochs are added).
pub fn epochs_csv(epochs: &[&EpochRecord]) -> String {
    let mut keys: Vec<(&str, &str, &str)> = vec![];
    for r in epochs {
        for e in &r.evals {
            let k = (e.split.as_str(), e.attack.as_str(), e.model.as_str());
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    let mut header: Vec<String> = [
        "epoch",
        "lr",
        "train_loss",
        "train_secs",
        "eval_secs",
        "images_per_sec",
    ]
    .map(String::from)
    .to_vec();
    for (s, a, m) in &keys {
        for metric in ["acc", "worst", "worst10"] {
            header.push(format!("{s}_{a}_{m}_{metric}"));
        }
    }
    let mut out = String::new();
    push_row(&mut out, header);
    for r in epochs {
        let mut row = vec![
            r.epoch.to_string(),
            num(r.lr),
            num(r.train_loss),
            num(r.train_secs),
            num(r.eval_secs),
            num(r.images_per_sec),
        ];
        for (s, a, m) in &keys {
            match r.eval(s, a, m) {
                Some(e) => row.extend([
                    num(e.metrics.overall),
                    num(e.metrics.worst),
                    num(e.metrics.worst10),
                ]),
                None => row.extend([String::new(), String::new(), String::new()]),
            }
        }
        push_row(&mut out, row);
    }
    out
}

/// `classes.csv`, long format with header [`CLASSES_HEADER`].
pub fn classes_csv(class_names: &[String], epochs: &[&EpochRecord]) -> String {
    let mut out = String::from(CLASSES_HEADER);
    out.push('\n');
    for r in epochs {
        for e in &r.evals {
            let m = &e.metrics;
            let k = m.class_acc.len().max(e.confusion.len());
            for c in 0..k {
                let at = |v: &[f64]| v.get(c).map(|x| num(*x)).unwrap_or_default();
                push_row(
                    &mut out,
                    vec![
                        r.epoch.to_string(),
                        e.split.clone(),
                        e.attack.clone(),
                        e.model.clone(),
                        c.to_string(),
                        class_name(class_names, c),
                        at(&m.class_acc),
                        at(&m.cfps),
                        at(&m.cacc),
                        at(&r.class_eps),
                        r.target_probs.as_deref().map(at).unwrap_or_default(),
                    ],
                );
            }
        }
    }
    out
}

/// One confusion matrix: header `true\pred,<names...>`, one row per true class.
pub fn confusion_csv(class_names: &[String], confusion: &[Vec<u64>]) -> String {
    let k = confusion.len();
    let mut out = String::new();
    let mut header = vec!["true\\pred".to_string()];
    header.extend((0..k).map(|c| class_name(class_names, c)));
    push_row(&mut out, header);
    for (c, row) in confusion.iter().enumerate() {
        let mut fields = vec![class_name(class_names, c)];
        fields.extend(row.iter().map(|n| n.to_string()));
        push_row(&mut out, fields);
    }
    out
}

/// How a summary column reads its value from a run's summary.
type Cell = fn(&RunSummary) -> String;

/// The columns of [`summary_csv`] before the headlines: each name next to its value, so the
/// header and the rows cannot drift apart.
const SUMMARY_COLUMNS: [(&str, Cell); 12] = [
    ("id", |s| s.id.clone()),
    ("name", |s| s.name.clone()),
    ("status", |s| s.status.as_str().to_string()),
    ("method", |s| s.method.clone()),
    ("dataset", |s| s.dataset.clone()),
    ("arch", |s| s.arch.clone()),
    ("tags", |s| s.tags.join(";")),
    ("epochs_done", |s| s.epochs_done.to_string()),
    ("epochs_total", |s| s.epochs_total.to_string()),
    ("progress", |s| num(s.progress)),
    ("started_at", |s| s.started_at.map(num).unwrap_or_default()),
    ("updated_at", |s| s.updated_at.map(num).unwrap_or_default()),
];

/// One row per run, for the dashboard's all-runs download.
pub fn summary_csv(rows: &[RunSummary]) -> String {
    let mut out = String::new();
    let mut header: Vec<String> = SUMMARY_COLUMNS.iter().map(|(n, _)| n.to_string()).collect();
    for which in ["clean", "robust"] {
        for col in ["epoch", "attack", "acc", "worst", "worst10"] {
            header.push(format!("test_{which}_{col}"));
        }
    }
    header.push("message".into());
    push_row(&mut out, header);
    for s in rows {
        let mut row: Vec<String> = SUMMARY_COLUMNS.iter().map(|(_, value)| value(s)).collect();
        for h in [&s.clean, &s.robust] {
            row.extend(headline_fields(h.as_ref()));
        }
        row.push(s.message.clone().unwrap_or_default());
        push_row(&mut out, row);
    }
    out
}

fn headline_fields(h: Option<&Headline>) -> [String; 5] {
    match h {
        Some(h) => [
            h.epoch.to_string(),
            h.attack.clone(),
            num(h.overall),
            num(h.worst),
            num(h.worst10),
        ],
        None => Default::default(),
    }
}

fn class_name(names: &[String], c: usize) -> String {
    names.get(c).cloned().unwrap_or_else(|| c.to_string())
}

/// Shortest round-tripping decimal; empty for NaN and infinities (spreadsheets disagree on them).
pub fn num(x: f64) -> String {
    if x.is_finite() {
        x.to_string()
    } else {
        String::new()
    }
}

/// RFC 4180 quoting: fields with a comma, quote, CR or LF (or edge spaces) are quoted, quotes
/// doubled. A text that a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`,
/// a tab or CR; a run name or tag is user input) gets a leading `'`, as OWASP advises against
/// CSV injection; numbers (`-0.5`) stay numbers.
pub fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.parse::<f64>().is_err();
    let s: std::borrow::Cow<'_, str> = if formula {
        format!("'{s}").into()
    } else {
        s.into()
    };
    let needs = s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ');
    if needs {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s
    }
}

fn push_row(out: &mut String, fields: Vec<String>) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}", csv_field(f));
    }
    out.push('\n');
}

/// Split and attack names become part of a file name: keep them to a safe alphabet.
pub fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Write `contents` to `path` through a temporary file in the same directory and a rename
/// (atomic on POSIX), so readers see the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, contents: &str) -> std::io::Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    let result = (|| {
        // A fresh file (O_EXCL): a link planted under the temporary name is not followed.
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(contents.as_bytes())?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Parse CSV text (as written here) back into rows of fields, undoing [`csv_field`]'s quoting.
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = vec![];
    let mut row = vec![];
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod csv_tests {
    use super::csv_field;

    #[test]
    fn formulas_are_defused_numbers_and_text_kept() {
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("+cmd"), "'+cmd");
        assert_eq!(csv_field("-x"), "'-x");
        assert_eq!(csv_field("-0.5"), "-0.5");
        assert_eq!(csv_field("+3"), "+3");
        assert_eq!(csv_field("1e-3"), "1e-3");
        assert_eq!(csv_field("fair-tat"), "fair-tat");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}

#[cfg(test)]
mod summary_csv_tests {
    use super::summary_csv;
    use crate::runs::summary::{Headline, RunSummary};
    use crate::runs::{RunDir, RunStatus};

    /// The all-runs download, byte for byte (spreadsheets and scripts read it by position).
    #[test]
    fn summary_csv_columns_and_values_stay_as_they_are() {
        let mut s = RunSummary::empty(&RunDir::new("runs/r1"));
        s.name = "a, \"b\"".into();
        s.status = RunStatus::Failed;
        s.method = "fair-tat".into();
        s.dataset = "cifar10".into();
        s.arch = "prn18".into();
        s.tags = vec!["x".into(), "y".into()];
        s.epochs_done = 2;
        s.epochs_total = 10;
        s.progress = 0.25;
        s.started_at = Some(1.5);
        s.robust = Some(Headline {
            epoch: 1,
            attack: "pgd-20".into(),
            overall: 0.5,
            worst: f64::NAN,
            worst10: 0.125,
        });
        s.message = Some("=boom".into());
        let empty = RunSummary::empty(&RunDir::new("runs/r2"));
        let got = summary_csv(&[s, empty]);
        let want = "id,name,status,method,dataset,arch,tags,epochs_done,epochs_total,progress,\
            started_at,updated_at,test_clean_epoch,test_clean_attack,test_clean_acc,\
            test_clean_worst,test_clean_worst10,test_robust_epoch,test_robust_attack,\
            test_robust_acc,test_robust_worst,test_robust_worst10,message\n\
            r1,\"a, \"\"b\"\"\",failed,fair-tat,cifar10,prn18,x;y,2,10,0.25,1.5,,,,,,,1,pgd-20,\
            0.5,,0.125,'=boom\n\
            r2,r2,running,,,,,0,0,0,,,,,,,,,,,,,\n";
        assert_eq!(got, want);
    }
}
