//! Compare exports: every table the compare page shows (Table 1 per run, mean ± std over seeds,
//! the Table 2 layout from AutoAttack/Square evaluations, the Tables 3/4 corruption rows) as CSV,
//! Markdown or LaTeX, so what a paper needs leaves the dashboard in one file.

use super::compare_tables::{GroupRow, RobustRow};
use super::views::RunRow;
use fairtat_core::runs::reports::csv_field;

/// One exported table: a title, column names and rows of cells (as the page prints them).
pub struct ExportTable {
    pub title: String,
    pub head: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The tables of the page, in page order; the seed table only when some run has several
/// seeds, the others only when they have rows (as on the page).
pub fn export_tables(
    runs: &[RunRow],
    groups: &[GroupRow],
    robust: &[RobustRow],
    corruption: (&[String], &[(String, Vec<String>)]),
) -> Vec<ExportTable> {
    let mut out = vec![ExportTable {
        title: "Table 1: test accuracy (%), clean and robust, overall and worst class".into(),
        head: strings(&[
            "run",
            "method",
            "dataset",
            "model",
            "clean",
            "clean worst",
            "robust",
            "robust worst",
        ]),
        rows: runs
            .iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    r.method.clone(),
                    r.dataset.clone(),
                    r.arch.clone(),
                    r.clean_overall.clone(),
                    r.clean_worst.clone(),
                    r.robust_overall.clone(),
                    r.robust_worst.clone(),
                ]
            })
            .collect(),
    }];
    if groups.len() < runs.len() {
        out.push(ExportTable {
            title: "Mean ± standard deviation over seeds (%)".into(),
            head: strings(&[
                "runs",
                "method",
                "seeds",
                "clean",
                "clean worst",
                "robust",
                "robust worst",
            ]),
            rows: groups
                .iter()
                .map(|g| {
                    vec![
                        g.name.clone(),
                        g.method.clone(),
                        g.seeds.to_string(),
                        g.clean_overall.clone(),
                        g.clean_worst.clone(),
                        g.robust_overall.clone(),
                        g.robust_worst.clone(),
                    ]
                })
                .collect(),
        });
    }
    if !robust.is_empty() {
        out.push(ExportTable {
            title: "Table 2: AutoAttack and Square (%)".into(),
            head: strings(&[
                "run",
                "AutoAttack",
                "AutoAttack worst",
                "Square",
                "Square worst",
            ]),
            rows: robust
                .iter()
                .map(|r| {
                    vec![
                        r.label.clone(),
                        r.aa_overall.clone(),
                        r.aa_worst.clone(),
                        r.square_overall.clone(),
                        r.square_worst.clone(),
                    ]
                })
                .collect(),
        });
    }
    let (cols, rows) = corruption;
    if !rows.is_empty() {
        let mut head = vec!["corruption".to_string()];
        head.extend(cols.iter().cloned());
        out.push(ExportTable {
            title: "Tables 3/4: minimum class accuracy on common corruptions".into(),
            head,
            rows: rows
                .iter()
                .map(|(n, v)| {
                    std::iter::once(n.clone())
                        .chain(v.iter().cloned())
                        .collect()
                })
                .collect(),
        });
    }
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

/// Markdown: a heading and a pipe table per table.
pub fn markdown(tables: &[ExportTable]) -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let row = |cells: &[String]| {
        format!(
            "| {} |\n",
            cells
                .iter()
                .map(|c| cell(c))
                .collect::<Vec<_>>()
                .join(" | ")
        )
    };
    let mut out = String::new();
    for t in tables {
        out += &format!("### {}\n\n", t.title);
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
