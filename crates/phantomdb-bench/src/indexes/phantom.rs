//! PhantomDB's side: one database file holding the table twice, `indexed` (with `CREATE
//! INDEX ON indexed (k)`) and `plain` (no index), queried through `Connection::prepare`.

use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, Result};
use phantomdb::arrow::array::{Array, AsArray};
use phantomdb::arrow::datatypes::{Float64Type, Int64Type};
use phantomdb::datafusion::common::ScalarValue;
use phantomdb::{Connection, Database, ResultSet};

use super::{Answers, Query, MULTIPLIER};
use crate::points::{timed, Figure};

/// The two tables of one database.
pub(crate) struct Tables {
    _db: Database,
    conn: Connection,
    /// Seconds `CREATE INDEX` took.
    pub(crate) index_build_secs: f64,
}

impl Tables {
    pub(crate) fn open(path: &Path, rows: u64) -> Result<Self> {
        let db = Database::open(path)?;
        let conn = db.connect()?;
        for table in ["indexed", "plain"] {
            conn.execute(&format!(
                "CREATE TABLE {table} (id BIGINT PRIMARY KEY, k BIGINT, v DOUBLE)"
            ))?;
            conn.execute(&format!(
                "INSERT INTO {table} SELECT value, (value * {MULTIPLIER}) % {rows}, value + 0.5 \
                 FROM generate_series(1, {rows})"
            ))?;
        }
        let start = Instant::now();
        conn.execute("CREATE INDEX indexed_k ON indexed (k)")?;
        let index_build_secs = start.elapsed().as_secs_f64();
        // The figures mean nothing unless the planner reads the index.
        for sql in [
            "EXPLAIN SELECT id, v FROM indexed WHERE k = 5",
            "EXPLAIN SELECT count(*), sum(v) FROM indexed WHERE k BETWEEN 5 AND 10",
        ] {
            let plan = text(&conn.execute(sql)?);
            if !plan.contains("PhantomIndexScanExec") {
                return Err(anyhow!("{sql} does not use the index:\n{plan}"));
            }
        }
        Ok(Self {
            _db: db,
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
            Query::Equal => format!("SELECT id, v FROM {table} WHERE k = $1"),
            Query::Range { .. } => {
                format!("SELECT count(*), sum(v) FROM {table} WHERE k BETWEEN $1 AND $2")
            }
        };
        let stmt = self.conn.prepare(&sql)?;
        let mut answers = Answers { rows: 0, sum: 0.0 };
        let figure = timed(starts.len() as u64, || {
            for &k in starts {
                let rs = match query {
                    Query::Equal => stmt.query(&[ScalarValue::Int64(Some(k))])?,
                    Query::Range { width } => stmt.query(&[
                        ScalarValue::Int64(Some(k)),
                        ScalarValue::Int64(Some(k + width as i64 - 1)),
                    ])?,
                };
                add(&mut answers, query, &rs)?;
            }
            Ok(())
        })?;
        Ok((figure, answers))
    }
}

/// Adds one query's rows (or count and sum) to `answers`.
fn add(answers: &mut Answers, query: Query, rs: &ResultSet) -> Result<()> {
    for batch in &rs.batches {
        match query {
            Query::Equal => {
                answers.rows += batch.num_rows() as u64;
                let v = batch.column(1).as_primitive_opt::<Float64Type>();
                let v = v.ok_or_else(|| anyhow!("v is not DOUBLE"))?;
                answers.sum += v.iter().flatten().sum::<f64>();
            }
            Query::Range { .. } => {
                let n = batch.column(0).as_primitive_opt::<Int64Type>();
                let s = batch.column(1).as_primitive_opt::<Float64Type>();
                let (n, s) = n.zip(s).ok_or_else(|| anyhow!("unexpected result types"))?;
                for i in 0..batch.num_rows() {
                    answers.rows += n.value(i) as u64;
                    if s.is_valid(i) {
                        answers.sum += s.value(i);
                    }
                }
            }
        }
    }
    Ok(())
}

/// Every string cell of a result, one line per row.
fn text(rs: &ResultSet) -> String {
    let mut out = String::new();
    for batch in &rs.batches {
        for row in 0..batch.num_rows() {
            for col in batch.columns() {
                if let Some(s) = col.as_string_opt::<i32>() {
                    out.push_str(s.value(row));
                    out.push(' ');
                }
            }
            out.push('\n');
        }
    }
    out
}
