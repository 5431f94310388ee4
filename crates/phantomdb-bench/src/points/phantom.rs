//! PhantomDB's side: its own Rust API (`Connection::prepare` → `query` / `execute`, the
//! appender), file-backed databases with redb's durable commits.

use std::path::Path;
use std::sync::{Arc, Barrier};

use anyhow::{anyhow, Result};
use phantomdb::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use phantomdb::datafusion::common::ScalarValue;
use phantomdb::{Connection, Database};

use super::{name_of, timed, Figure, Keys};

const SCHEMA: &str = "CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT, v DOUBLE)";
const INSERT: &str = "INSERT INTO t VALUES ($1, $2, $3)";

fn row(id: i64) -> [ScalarValue; 3] {
    [
        ScalarValue::Int64(Some(id)),
        ScalarValue::Utf8(Some(name_of(id))),
        ScalarValue::Float64(Some(id as f64 + 0.5)),
    ]
}

fn create(path: &Path) -> Result<(Database, Connection)> {
    let db = Database::open(path)?;
    let conn = db.connect()?;
    conn.execute(SCHEMA)?;
    Ok((db, conn))
}

/// A table of `rows` rows for the lookups.
pub(crate) struct Lookups {
    _db: Database,
    conn: Connection,
}

impl Lookups {
    pub(crate) fn open(path: &Path, rows: u64) -> Result<Self> {
        let (db, conn) = create(path)?;
        conn.execute(&format!(
            "INSERT INTO t SELECT value, concat('row ', value), value + 0.5 \
             FROM generate_series(1, {rows})"
        ))?;
        Ok(Self { _db: db, conn })
    }

    /// `n` lookups of random keys, each returning its whole row.
    pub(crate) fn run(&self, n: u64, max: u64, seed: u64) -> Result<Figure> {
        let stmt = self
            .conn
            .prepare("SELECT id, name, v FROM t WHERE id = $1")?;
        let mut keys = Keys::new(seed);
        let mut found = 0u64;
        let figure = timed(n, || {
            for _ in 0..n {
                let k = keys.next(max);
                let rs = stmt.query(&[ScalarValue::Int64(Some(k))])?;
                found += rs.num_rows() as u64;
            }
            Ok(())
        })?;
        if found != n {
            return Err(anyhow!("PhantomDB found {found} of {n} keys"));
        }
        Ok(figure)
    }
}

fn insert_in_one_txn(conn: &Connection, n: u64) -> Result<()> {
    let stmt = conn.prepare(INSERT)?;
    conn.execute("BEGIN")?;
    for id in 1..=n as i64 {
        stmt.execute(&row(id))?;
    }
    conn.execute("COMMIT")?;
    Ok(())
}

/// `BEGIN`, `n` prepared single-row inserts, `COMMIT`, into a new database file.
pub(crate) fn txn_inserts(path: &Path, n: u64) -> Result<Figure> {
    let (_db, conn) = create(path)?;
    timed(n, || insert_in_one_txn(&conn, n))
}

/// Checks that `n` rows arrived.
fn check_count(conn: &Connection, n: u64) -> Result<()> {
    let rs = conn.execute("SELECT count(*) FROM t")?;
    let count = rs.batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<phantomdb::arrow::array::Int64Array>()
        .map(|a| a.value(0))
        .ok_or_else(|| anyhow!("count(*) is not BIGINT"))?;
    if count as u64 != n {
        return Err(anyhow!("PhantomDB kept {count} of {n} rows"));
    }
    Ok(())
}

/// `n` rows through the appender, one `append_row` each, then `finish` (the commit).
pub(crate) fn append_rows(path: &Path, n: u64) -> Result<Figure> {
    let (_db, conn) = create(path)?;
    let figure = timed(n, || {
        let mut appender = conn.appender("t")?;
        for id in 1..=n as i64 {
            appender.append_row(&row(id))?;
        }
        appender.finish()?;
        Ok(())
    })?;
    check_count(&conn, n)?;
    Ok(figure)
}

/// `n` rows through the appender in 8192-row Arrow batches (built before the clock starts).
pub(crate) fn append_batches(path: &Path, n: u64) -> Result<Figure> {
    let (_db, conn) = create(path)?;
    let mut batches = Vec::new();
    let mut id = 1i64;
    while id <= n as i64 {
        let end = (id + 8191).min(n as i64);
        let ids = Int64Array::from_iter_values(id..=end);
        let names = StringArray::from_iter_values((id..=end).map(name_of));
        let vs = Float64Array::from_iter_values((id..=end).map(|i| i as f64 + 0.5));
        batches.push(RecordBatch::try_from_iter([
            ("id", Arc::new(ids) as ArrayRef),
            ("name", Arc::new(names) as ArrayRef),
            ("v", Arc::new(vs) as ArrayRef),
        ])?);
        id = end + 1;
    }
    let figure = timed(n, || {
        let mut appender = conn.appender("t")?;
        for b in batches {
            appender.append_batch(b)?;
        }
        appender.finish()?;
        Ok(())
    })?;
    check_count(&conn, n)?;
    Ok(figure)
}

/// `n` rows as literal multi-row `INSERT ... VALUES` statements of 8192 rows (SQL text built
/// before the clock starts), in one transaction.
pub(crate) fn multi_row_inserts(path: &Path, n: u64) -> Result<Figure> {
    let (_db, conn) = create(path)?;
    let mut statements = Vec::new();
    let mut id = 1i64;
    while id <= n as i64 {
        let end = (id + 8191).min(n as i64);
        let values: Vec<String> = (id..=end)
            .map(|i| format!("({i}, '{}', {})", name_of(i), i as f64 + 0.5))
            .collect();
        statements.push(format!("INSERT INTO t VALUES {}", values.join(",")));
        id = end + 1;
    }
    let figure = timed(n, || {
        conn.execute("BEGIN")?;
        for s in &statements {
            conn.execute(s)?;
        }
        conn.execute("COMMIT")?;
        Ok(())
    })?;
    check_count(&conn, n)?;
    Ok(figure)
}

/// `threads` threads, each with its own connection, commit `per_thread` single-row inserts
/// each, one transaction per insert.
pub(crate) fn autocommit(path: &Path, threads: u64, per_thread: u64) -> Result<Figure> {
    let (db, conn) = create(path)?;
    let barrier = Arc::new(Barrier::new(threads as usize + 1));
    let mut handles = Vec::new();
    for t in 0..threads {
        let barrier = barrier.clone();
        let db = db.clone();
        handles.push(std::thread::spawn(move || -> Result<()> {
            let conn = db.connect()?;
            let stmt = conn.prepare(INSERT)?;
            barrier.wait();
            for i in 0..per_thread {
                stmt.execute(&row((t * per_thread + i + 1) as i64))?;
            }
            Ok(())
        }));
    }
    let start = std::time::Instant::now();
    barrier.wait();
    for h in handles {
        h.join().map_err(|_| anyhow!("writer thread panicked"))??;
    }
    let secs = start.elapsed().as_secs_f64();
    check_count(&conn, threads * per_thread)?;
    Ok(Figure {
        secs,
        ops: threads * per_thread,
    })
}
