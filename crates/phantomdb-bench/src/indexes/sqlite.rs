//! SQLite's side: `rusqlite` with the bundled SQLite, the same two tables (`indexed` with an
//! index on `k`, `plain` without), cached prepared statements.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use rusqlite::{params, Connection};

use super::{Answers, Query, MULTIPLIER};
use crate::points::{timed, Figure};

/// The two tables of one database.
pub(crate) struct Tables {
    conn: Connection,
    /// Seconds `CREATE INDEX` took.
    pub(crate) index_build_secs: f64,
}

impl Tables {
    pub(crate) fn open(path: &Path, rows: u64) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        for table in ["indexed", "plain"] {
            conn.execute_batch(&format!(
                "CREATE TABLE {table} (id INTEGER PRIMARY KEY, k INTEGER, v REAL)"
            ))?;
            conn.execute_batch("BEGIN")?;
            {
                let mut insert =
                    conn.prepare(&format!("INSERT INTO {table} VALUES (?1, ?2, ?3)"))?;
                for id in 1..=rows as i64 {
                    let k = (id as u64 * MULTIPLIER % rows) as i64;
                    insert.execute(params![id, k, id as f64 + 0.5])?;
                }
            }
            conn.execute_batch("COMMIT")?;
        }
        let start = Instant::now();
        conn.execute_batch("CREATE INDEX indexed_k ON indexed (k)")?;
        let index_build_secs = start.elapsed().as_secs_f64();
        conn.execute_batch("ANALYZE")?;
        Ok(Self {
            conn,
            index_build_secs,
        })
    }

    /// One query per start key, through the index or (on `plain`) by full scan.
    pub(crate) fn run(
        &self,
        query: Query,
        indexed: bool,
        starts: &[i64],
    ) -> Result<(Figure, Answers)> {
        let table = if indexed { "indexed" } else { "plain" };
        let sql = match query {
            Query::Equal => format!("SELECT id, v FROM {table} WHERE k = ?1"),
            Query::Range { .. } => {
                format!("SELECT count(*), sum(v) FROM {table} WHERE k BETWEEN ?1 AND ?2")
            }
        };
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut answers = Answers { rows: 0, sum: 0.0 };
        let figure = timed(starts.len() as u64, || {
            for &k in starts {
                match query {
                    Query::Equal => {
                        let mut rows = stmt.query(params![k])?;
                        while let Some(row) = rows.next()? {
                            answers.rows += 1;
                            answers.sum += row.get::<_, f64>(1)?;
                        }
                    }
                    Query::Range { width } => {
                        let (n, s): (i64, Option<f64>) = stmt
                            .query_row(params![k, k + width as i64 - 1], |r| {
                                Ok((r.get(0)?, r.get(1)?))
                            })?;
                        answers.rows += n as u64;
                        answers.sum += s.unwrap_or(0.0);
                    }
                }
            }
            Ok(())
        })?;
        Ok((figure, answers))
    }
}
