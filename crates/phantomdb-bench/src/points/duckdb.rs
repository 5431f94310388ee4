//! DuckDB's side of the bulk load, through its Python API (DuckDB's Rust crate would build
//! DuckDB from source): its `Appender` fed row tuples, or an Arrow table inserted in one
//! statement. The rows are built before the clock starts; the time covers appending and the
//! commit (`CHECKPOINT` is not included: DuckDB's commit is durable through its WAL).

use std::path::Path;
use std::process::Command;

use anyhow::{anyhow, Context, Result};

use super::Figure;

const SCRIPT: &str = r#"
import sys, time, duckdb, pyarrow as pa
path, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
con = duckdb.connect(path)
con.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR, v DOUBLE)")
if mode == "rows":
    rows = [(i, f"row {i}", i + 0.5) for i in range(1, n + 1)]
    start = time.perf_counter()
    with con.appender("t") as a:
        a.append_rows(rows)
    secs = time.perf_counter() - start
else:
    ids = pa.array(range(1, n + 1), pa.int64())
    tbl = pa.table({"id": ids, "name": pa.array([f"row {i}" for i in range(1, n + 1)]),
                    "v": pa.array([i + 0.5 for i in range(1, n + 1)], pa.float64())})
    start = time.perf_counter()
    con.execute("INSERT INTO t SELECT * FROM tbl")
    secs = time.perf_counter() - start
count = con.execute("SELECT count(*) FROM t").fetchone()[0]
assert count == n, count
print(secs)
"#;

/// Loads `n` rows into a new DuckDB file `path` (`mode`: `rows` or `arrow`).
pub(crate) fn appender(python: &str, path: &Path, n: u64, mode: &str) -> Result<Figure> {
    let out = Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(path)
        .arg(n.to_string())
        .arg(mode)
        .output()
        .with_context(|| format!("running {python}"))?;
    if !out.status.success() {
        return Err(anyhow!(
            "DuckDB ({mode}) failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let secs: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("DuckDB's timing")?;
    Ok(Figure { secs, ops: n })
}
