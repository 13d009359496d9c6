//! Compare exports: every table the compare page shows (Table 1 per run, mean ± std over seeds,
//! the Table 2 layout from AutoAttack/Square evaluations, the Tables 3/4 corruption rows) as CSV,
//! Markdown or LaTeX, so what a paper needs leaves the dashboard in one file. Each table names
//! the checkpoint of its numbers (a `checkpoint` column; Tables 2-4 also the suite and the
//! checkpoint kind in their title, one table each); the seed table has DAFA's rho against
//! the page's base group as plain numeric columns, so a spreadsheet can read them.

use super::compare_evals::{CorruptionTable, RobustTable};
use super::compare_tables::GroupRow;
use super::views::RunRow;
use fairtat_core::runs::reports::csv_field;

/// One exported table: a title, column names and rows of cells (as the page prints them).
pub struct ExportTable {
    pub title: String,
    pub head: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl ExportTable {
    fn new(title: &str, head: &[&str], rows: impl Iterator<Item = Vec<String>>) -> Self {
        ExportTable {
            title: title.into(),
            head: strings(head),
            rows: rows.collect(),
        }
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Whether the page and the exports show the seed table: when some group has several seeds,
/// or when there are several groups to hold against the base (rho).
pub fn groups_shown(groups: usize, runs: usize) -> bool {
    groups < runs || groups > 1
}

/// The tables of the page, in page order; the seed table only when [`groups_shown`] (with rho
/// against the group named `base`), the others only when they have rows (as on the page).
pub fn export_tables(
    runs: &[RunRow],
    (groups, base): (&[GroupRow], Option<&str>),
    robust: &[RobustTable],
    corruption: &[CorruptionTable],
) -> Vec<ExportTable> {
    let mut out = vec![runs_table(runs)];
    if groups_shown(groups.len(), runs.len()) {
        out.push(seeds_table(groups, base.unwrap_or("–")));
    }
    out.extend(robust.iter().map(robust_table));
    out.extend(corruption.iter().map(corruption_table));
    out
}

fn runs_table(runs: &[RunRow]) -> ExportTable {
    ExportTable::new(
        "Table 1: test accuracy (%), clean and robust, overall and worst class",
        &[
            "run",
            "method",
            "dataset",
            "model",
            "clean",
            "clean worst",
            "robust",
            "robust worst",
            "checkpoint",
        ],
        runs.iter().map(|r| {
            strings(&[
                &r.name,
                &r.method,
                &r.dataset,
                &r.arch,
                &r.clean_overall,
                &r.clean_worst,
                &r.robust_overall,
                &r.robust_worst,
                &r.checkpoint,
            ])
        }),
    )
}

fn seeds_table(groups: &[GroupRow], base: &str) -> ExportTable {
    let mut t = ExportTable::new(
        "Mean ± standard deviation over seeds (%)",
        &[
            "runs",
            "method",
            "seeds",
            "clean",
            "clean worst",
            "robust",
            "robust worst",
            "checkpoint",
            "inputs",
        ],
        groups.iter().map(|g| {
            strings(&[
                &g.name,
                &g.method,
                &g.seeds.to_string(),
                &g.clean_overall,
                &g.clean_worst,
                &g.robust_overall,
                &g.robust_worst,
                &g.checkpoint,
                &g.inputs,
                &g.rho_nat,
                &g.rho_rob,
            ])
        }),
    );
    // The header names the base: a rho column means nothing without it.
    t.head.extend([
        format!("rho_nat (base {base})"),
        format!("rho_rob (base {base})"),
    ]);
    t
}

/// One Table 2: its title names the suite and the checkpoint kind, its header the attacks,
/// every row the suite again (a row pasted alone keeps its label) and its checkpoint's epoch.
fn robust_table(t: &RobustTable) -> ExportTable {
    let head = [
        "run".to_string(),
        "suite".into(),
        t.aa.clone(),
        format!("{} worst", t.aa),
        t.square.clone(),
        format!("{} worst", t.square),
        "images".into(),
        "checkpoint".into(),
    ];
    ExportTable {
        title: format!("Table 2: AutoAttack and Square (%): {}", t.label),
        head: head.to_vec(),
        rows: t
            .rows
            .iter()
            .map(|r| {
                let images = r.images.to_string();
                strings(&[
                    &r.label,
                    &t.label.suite,
                    &r.aa_overall,
                    &r.aa_worst,
                    &r.square_overall,
                    &r.square_worst,
                    &images,
                    &r.checkpoint,
                ])
            })
            .collect(),
    }
}

fn corruption_table(t: &CorruptionTable) -> ExportTable {
    let mut out = ExportTable::new(
        &format!(
            "Tables 3/4: minimum class accuracy on common corruptions: {}",
            t.label
        ),
        &["corruption"],
        t.rows.iter().map(|(n, v)| {
            std::iter::once(n.clone())
                .chain(v.iter().cloned())
                .collect()
        }),
    );
    out.head.extend(t.cols.iter().cloned());
    out
}

/// CSV: one section per table, each with a `table` column naming it, separated by a blank line.
pub fn csv(tables: &[ExportTable]) -> String {
    let line = |first: &str, cells: &[String]| {
        std::iter::once(first)
            .chain(cells.iter().map(String::as_str))
            .map(|c| csv_field(c).into_owned())
            .collect::<Vec<_>>()
            .join(",")
            + "\n"
    };
    let mut out = String::new();
    for (i, t) in tables.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out += &line("table", &t.head);
        for r in &t.rows {
            out += &line(&t.title, r);
        }
    }
    out
}

/// Markdown text for a cell or a heading: HTML is inline in Markdown, so `<`, `>` and `&`
/// become entities (a run named `<script>` stays text wherever the file is rendered); `|`
/// would end the cell and a line break the row.
fn md_text(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '|' => o.push_str("\\|"),
            '\n' | '\r' => o.push(' '),
            _ => o.push(c),
        }
    }
    o
}

/// Markdown: a heading and a pipe table per table.
pub fn markdown(tables: &[ExportTable]) -> String {
    let row = |cells: &[String]| {
        format!(
            "| {} |\n",
            cells
                .iter()
                .map(|c| md_text(c))
                .collect::<Vec<_>>()
                .join(" | ")
        )
    };
    let mut out = String::new();
    for t in tables {
        out += &format!("### {}\n\n", md_text(&t.title));
        out += &row(&t.head);
        out += &format!("|{}\n", "---|".repeat(t.head.len()));
        for r in &t.rows {
            out += &row(r);
        }
        out.push('\n');
    }
    out
}

/// LaTeX (booktabs): a `table` environment with a caption per table.
pub fn latex(tables: &[ExportTable]) -> String {
    let mut out = String::new();
    for t in tables {
        let cols = format!("l{}", "c".repeat(t.head.len().saturating_sub(1)));
        out += &format!(
            "\\begin{{table}}[t]\n\\centering\n\\caption{{{}}}\n\\begin{{tabular}}{{{cols}}}\n\\toprule\n",
            tex(&t.title)
        );
        let row = |cells: &[String]| {
            cells.iter().map(|c| tex(c)).collect::<Vec<_>>().join(" & ") + " \\\\\n"
        };
        out += &row(&t.head);
        out += "\\midrule\n";
        for r in &t.rows {
            out += &row(r);
        }
        out += "\\bottomrule\n\\end{tabular}\n\\end{table}\n\n";
    }
    out
}

/// Escape LaTeX special characters.
fn tex(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        match c {
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                o.push('\\');
                o.push(c);
            }
            '~' => o.push_str("\\textasciitilde{}"),
            '^' => o.push_str("\\textasciicircum{}"),
            '\\' => o.push_str("\\textbackslash{}"),
            '–' => o.push_str("--"),
            '±' => o.push_str("$\\pm$"),
            _ => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_carries_no_raw_html() {
        let t = ExportTable::new(
            "runs <img src=x onerror=alert(1)>",
            &["name", "notes"],
            [strings(&["<script>alert(1)</script>", "a | b & c\nd"])].into_iter(),
        );
        let md = markdown(&[t]);
        assert!(!md.contains('<') && !md.contains('>'), "{md}");
        assert!(
            md.contains("### runs &lt;img src=x onerror=alert(1)&gt;"),
            "{md}"
        );
        assert!(
            md.contains("| &lt;script&gt;alert(1)&lt;/script&gt; | a \\| b &amp; c d |"),
            "{md}"
        );
    }
}
