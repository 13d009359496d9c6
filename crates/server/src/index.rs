//! The SQLite index of runs: one row per run directory with the columns the runs page filters
//! and sorts on, plus the full [`RunSummary`] as JSON.
//!
//! It is a cache: [`Index::rebuild`] recomputes every row from the run directories at start-up,
//! so deleting the database file loses nothing. The user's edits of a run (`meta.json`: display
//! name, tags) are kept in a second table and laid over every summary stored, so a trainer's
//! `started` line cannot undo a rename.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use fairtat_core::runs::meta::RunMeta;
use fairtat_core::runs::summary::RunSummary;
use fairtat_core::runs::RunId;

/// File name of the index inside the runs directory (a dot name is never a valid run id).
pub const INDEX_FILE: &str = ".index.sqlite";

/// The runs list's filters: the query parameters `status`, `method`, `dataset` and `tag` of the
/// runs page and `/api/runs`; `None` or empty = no filter.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct RunFilter {
    pub status: Option<String>,
    pub method: Option<String>,
    pub dataset: Option<String>,
    /// A tag the run carries.
    pub tag: Option<String>,
}

impl RunFilter {
    /// The filters that match an index column of the same name, by that name (the page's
    /// drop-downs); `tag` matches one entry of a list instead.
    pub fn columns(&self) -> [(&'static str, &Option<String>); 3] {
        [
            ("status", &self.status),
            ("method", &self.method),
            ("dataset", &self.dataset),
        ]
    }
}

/// Filters and order for [`Index::list`].
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub filter: RunFilter,
    /// One of [`SORT_KEYS`]; anything else sorts by id (newest first).
    pub sort: Option<String>,
    pub desc: bool,
    pub limit: Option<usize>,
}

/// Columns the list may be sorted by (a whitelist: they are spliced into SQL).
pub const SORT_KEYS: [&str; 11] = [
    "id",
    "name",
    "status",
    "method",
    "dataset",
    "arch",
    "progress",
    "clean_overall",
    "clean_worst",
    "robust_overall",
    "robust_worst",
];

pub struct Index {
    conn: Mutex<Connection>,
}

impl Index {
    /// Open (create) the index at `path`; a file that is not a usable index is replaced.
    pub fn open(path: &Path) -> anyhow::Result<Index> {
        let conn = match Self::try_open(path) {
            Ok(c) => c,
            Err(err) => {
                tracing::warn!(cause = %err, path = %path.display(), "index unusable; recreating it");
                let _ = std::fs::remove_file(path);
                Self::try_open(path)?
            }
        };
        Ok(Index {
            conn: Mutex::new(conn),
        })
    }

    fn try_open(path: &Path) -> anyhow::Result<Connection> {
        let conn = Connection::open(path)?;
        // The index is a cache: durability is not worth an fsync per epoch.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "OFF")?;
        Self::init(&conn)?;
        Ok(conn)
    }

    fn init(conn: &Connection) -> rusqlite::Result<()> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS runs (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                status TEXT NOT NULL,
                method TEXT NOT NULL,
                dataset TEXT NOT NULL,
                arch TEXT NOT NULL,
                tags TEXT NOT NULL,
                progress REAL NOT NULL,
                clean_overall REAL,
                clean_worst REAL,
                robust_overall REAL,
                robust_worst REAL,
                summary TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS runs_status ON runs(status);
            CREATE TABLE IF NOT EXISTS meta (id TEXT PRIMARY KEY, meta TEXT NOT NULL);",
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent; keep serving.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Insert or replace the row of `s.id`, with the run's edits ([`Index::set_meta`]) applied.
    pub fn upsert(&self, s: &RunSummary) -> anyhow::Result<()> {
        let conn = self.lock();
        let meta: Option<String> = conn
            .query_row("SELECT meta FROM meta WHERE id = ?1", [&s.id], |r| r.get(0))
            .optional()?;
        let mut s = s.clone();
        if let Some(m) = meta.and_then(|j| serde_json::from_str::<RunMeta>(&j).ok()) {
            m.apply(&mut s);
        }
        Self::put(&conn, &s)
    }

    /// Record a run's edits (as its `meta.json` says) and apply them to its row.
    pub fn set_meta(&self, id: &str, meta: &RunMeta) -> anyhow::Result<()> {
        let conn = self.lock();
        if *meta == RunMeta::default() {
            conn.execute("DELETE FROM meta WHERE id = ?1", [id])?;
            return Ok(());
        }
        conn.execute(
            "INSERT OR REPLACE INTO meta (id, meta) VALUES (?1, ?2)",
            params![id, serde_json::to_string(meta)?],
        )?;
        let json: Option<String> = conn
            .query_row("SELECT summary FROM runs WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        if let Some(j) = json {
            let mut s: RunSummary = serde_json::from_str(&j)?;
            meta.apply(&mut s);
            Self::put(&conn, &s)?;
        }
        Ok(())
    }

    fn put(conn: &Connection, s: &RunSummary) -> anyhow::Result<()> {
        let json = serde_json::to_string(s)?;
        // Tags stored as ",a,b," so `LIKE '%,tag,%'` matches whole tags only.
        let tags = format!(",{},", s.tags.join(","));
        conn.execute(
            "INSERT OR REPLACE INTO runs (id, name, status, method, dataset, arch, tags, progress,
               clean_overall, clean_worst, robust_overall, robust_worst, summary)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                s.id,
                s.name,
                s.status.as_str(),
                s.method,
                s.dataset,
                s.arch,
                tags,
                s.progress,
                s.clean.as_ref().map(|h| h.overall),
                s.clean.as_ref().map(|h| h.worst),
                s.robust.as_ref().map(|h| h.overall),
                s.robust.as_ref().map(|h| h.worst),
                json
            ],
        )?;
        Ok(())
    }

    pub fn get(&self, id: &RunId) -> anyhow::Result<Option<RunSummary>> {
        let json: Option<String> = self
            .lock()
            .query_row(
                "SELECT summary FROM runs WHERE id = ?1",
                [id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(match json {
            Some(j) => Some(serde_json::from_str(&j)?),
            None => None,
        })
    }

    /// Drop a row and its edits; by its raw id, as [`Index::ids`] lists them (a stale row may
    /// hold any text).
    pub fn remove(&self, id: &str) -> anyhow::Result<()> {
        let conn = self.lock();
        conn.execute("DELETE FROM runs WHERE id = ?1", [id])?;
        conn.execute("DELETE FROM meta WHERE id = ?1", [id])?;
        Ok(())
    }

    pub fn ids(&self) -> anyhow::Result<Vec<String>> {
        let conn = self.lock();
        let mut st = conn.prepare("SELECT id FROM runs ORDER BY id")?;
        let ids = st
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ids)
    }

    pub fn list(&self, q: &ListQuery) -> anyhow::Result<Vec<RunSummary>> {
        let mut sql = String::from("SELECT summary FROM runs WHERE 1=1");
        let mut args: Vec<String> = Vec::new();
        for (col, val) in q.filter.columns() {
            if let Some(v) = val.as_deref().filter(|v| !v.is_empty()) {
                args.push(v.to_string());
                sql.push_str(&format!(" AND {col} = ?{}", args.len()));
            }
        }
        if let Some(tag) = q.filter.tag.as_deref().filter(|v| !v.is_empty()) {
            args.push(format!("%,{},%", tag.replace(['%', '_'], "")));
            sql.push_str(&format!(" AND tags LIKE ?{}", args.len()));
        }
        let sort = q
            .sort
            .as_deref()
            .filter(|s| SORT_KEYS.contains(s))
            .unwrap_or("id");
        let dir = if q.desc || q.sort.is_none() {
            "DESC"
        } else {
            "ASC"
        };
        // NULL metrics sort last whichever the direction.
        sql.push_str(&format!(" ORDER BY {sort} IS NULL, {sort} {dir}, id DESC"));
        if let Some(n) = q.limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        let conn = self.lock();
        let mut st = conn.prepare(&sql)?;
        let rows = st
            .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                r.get::<_, String>(0)
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.iter()
            .map(|j| serde_json::from_str(j).map_err(Into::into))
            .collect()
    }

    /// Distinct values of a filter column, for the filter drop-downs.
    pub fn distinct(&self, column: &str) -> anyhow::Result<Vec<String>> {
        anyhow::ensure!(
            ["status", "method", "dataset", "arch"].contains(&column),
            "not a filter column: {column}"
        );
        let conn = self.lock();
        let mut st = conn.prepare(&format!(
            "SELECT DISTINCT {column} FROM runs WHERE {column} != '' ORDER BY {column}"
        ))?;
        let v = st
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(v)
    }
}
