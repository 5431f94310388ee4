//! SQLite's side: `rusqlite` with the bundled SQLite, prepared (cached) statements, WAL with
//! `synchronous=FULL`.

use std::path::Path;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Result};
use rusqlite::{params, Connection};

use super::{name_of, timed, Figure, Keys};

const SCHEMA: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, v REAL)";
const INSERT: &str = "INSERT INTO t VALUES (?1, ?2, ?3)";

/// A connection with the durability the comparison states.
fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(Duration::from_secs(30))?;
    Ok(conn)
}

/// A table of `rows` rows for the lookups.
pub(crate) struct Lookups {
    conn: Connection,
}

impl Lookups {
    pub(crate) fn open(path: &Path, rows: u64) -> Result<Self> {
        let conn = open(path)?;
        conn.execute(SCHEMA, [])?;
        insert_in_one_txn(&conn, rows)?;
        Ok(Self { conn })
    }

    /// `n` lookups of random keys, each reading every column of its row.
    pub(crate) fn run(&self, n: u64, max: u64, seed: u64) -> Result<Figure> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, name, v FROM t WHERE id = ?1")?;
        let mut keys = Keys::new(seed);
        let mut found = 0u64;
        let figure = timed(n, || {
            for _ in 0..n {
                let k = keys.next(max);
                let row = stmt.query_row(params![k], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, f64>(2)?,
                    ))
                })?;
                found += u64::from(row.0 == k);
            }
            Ok(())
        })?;
        if found != n {
            return Err(anyhow!("SQLite found {found} of {n} keys"));
        }
        Ok(figure)
    }
}

fn insert_in_one_txn(conn: &Connection, n: u64) -> Result<()> {
    conn.execute_batch("BEGIN")?;
    {
        let mut stmt = conn.prepare_cached(INSERT)?;
        for id in 1..=n as i64 {
            stmt.execute(params![id, name_of(id), id as f64 + 0.5])?;
        }
    }
    conn.execute_batch("COMMIT")?;
    Ok(())
}

/// `BEGIN`, `n` prepared single-row inserts, `COMMIT`, into a new database file.
pub(crate) fn txn_inserts(path: &Path, n: u64) -> Result<Figure> {
    let conn = open(path)?;
    conn.execute(SCHEMA, [])?;
    timed(n, || insert_in_one_txn(&conn, n))
}

/// `threads` threads each commit `per_thread` single-row inserts, one transaction each:
/// with a connection per thread (SQLite's busy handler serializes the writers), or sharing
/// one connection behind a mutex (the writers queue in the application instead).
pub(crate) fn autocommit(
    path: &Path,
    threads: u64,
    per_thread: u64,
    shared: bool,
) -> Result<Figure> {
    {
        let conn = open(path)?;
        conn.execute(SCHEMA, [])?;
    }
    let one = if shared {
        Some(Arc::new(Mutex::new(open(path)?)))
    } else {
        None
    };
    let barrier = Arc::new(Barrier::new(threads as usize + 1));
    let mut handles = Vec::new();
    for t in 0..threads {
        let barrier = barrier.clone();
        let one = one.clone();
        let path = path.to_path_buf();
        handles.push(std::thread::spawn(move || -> Result<()> {
            let own = match one {
                Some(_) => None,
                None => Some(open(&path)?),
            };
            barrier.wait();
            for i in 0..per_thread {
                let id = (t * per_thread + i + 1) as i64;
                let row = params![id, name_of(id), id as f64 + 0.5];
                match (&own, &one) {
                    (Some(c), _) => {
                        c.prepare_cached(INSERT)?.execute(row)?;
                    }
                    (None, Some(m)) => {
                        let c = m.lock().map_err(|_| anyhow!("poisoned"))?;
                        c.prepare_cached(INSERT)?.execute(row)?;
                    }
                    (None, None) => unreachable!("a connection either way"),
                }
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
    let conn = open(path)?;
    let count: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
    if count as u64 != threads * per_thread {
        return Err(anyhow!(
            "SQLite kept {count} of {} rows",
            threads * per_thread
        ));
    }
    Ok(Figure {
        secs,
        ops: threads * per_thread,
    })
}
