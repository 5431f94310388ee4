//! `phantomdb-bench serve`: the PhantomDB side of `bench/compare.py`.
//! `phantomdb-bench points [OPTIONS]`: point operations against SQLite (rusqlite) and DuckDB's
//! appender from this process (see `points/mod.rs`; `--help` lists the options).
//! `phantomdb-bench indexes [OPTIONS]`: secondary-index lookups and range scans against full
//! scans and SQLite (see `indexes/mod.rs`).
//! `phantomdb-bench processors [OPTIONS]`: a point query's cost with a no-op query processor
//! `rewrite` loaded, against none (see `processors.rs`).
//!
//! Reads one JSON command per line on standard input and answers each with one JSON line on
//! standard output, so that all timing happens inside this process (no start-up in the
//! figures). Every answer has `"ok": true|false`; failures carry `"error"`.
//!
//! | command | fields | answer |
//! | --- | --- | --- |
//! | `version` | | `phantomdb`, `datafusion`, `profile` |
//! | `open` | `path` (null: in memory) | |
//! | `exec` | `sql`, `timeout` (s, optional), `fetch` (optional) | `secs`, `rows` (result rows or rows affected), with `fetch` also `values` (rows of text or null) |
//! | `register_builtin` | | registers `is_prime_builtin` on the connection |
//! | `load_plugin` | `path` | `secs`, `name` |
//! | `load_plugin_dir` | `dir` | `secs`, `loaded`, `failed` |
//! | `lookups` | `table`, `key`, `n`, `max_key`, `seed`, `prepared` | `secs`, `found` |
//! | `inserts` | `table`, `n`, `start`, `prepared` (default false: SQL text per row; true: `PREPARE` once, `EXECUTE` per row) | `secs` (BEGIN .. COMMIT) |
//! | `storage_boundary` | `plugin` (path of libs3_storage), `dir`, `rows`, `runs` | `timings`: `[{name, plugin, linked}]` (median seconds) |
//! | `data_types` | `plugin` (path of libuuid), `dir`, `rows`, `runs` | `timings`: `[{name, uuid, storage, text}]` (median seconds; `storage` null where not measured) |
//! | `quit` | | |

/// mimalloc: glibc's malloc was about half of a point query's instructions, and it keeps
/// memory a finished query freed.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod data_types;
mod indexes;
mod points;
mod processors;
mod storage_boundary;

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use phantomdb::{Connection, Database, ResultSet};
use serde_json::{json, Value};

struct Session {
    rt: tokio::runtime::Runtime,
    db: Option<Database>,
    conn: Option<Connection>,
    /// Counter for unique prepared-statement names.
    prepared: std::cell::Cell<u64>,
}

fn main() -> Result<()> {
    let mode = std::env::args().nth(1).unwrap_or_default();
    if mode == "points" {
        use clap::Parser;
        #[derive(Parser)]
        #[command(name = "phantomdb-bench points")]
        struct Cli {
            #[command(flatten)]
            args: points::PointsArgs,
        }
        let cli = Cli::parse_from(std::env::args().skip(1));
        return points::run(cli.args);
    }
    if mode == "indexes" {
        use clap::Parser;
        #[derive(Parser)]
        #[command(name = "phantomdb-bench indexes")]
        struct Cli {
            #[command(flatten)]
            args: indexes::IndexArgs,
        }
        let cli = Cli::parse_from(std::env::args().skip(1));
        return indexes::run(cli.args);
    }
    if mode == "processors" {
        use clap::Parser;
        #[derive(Parser)]
        #[command(name = "phantomdb-bench processors")]
        struct Cli {
            #[command(flatten)]
            args: processors::ProcessorArgs,
        }
        let cli = Cli::parse_from(std::env::args().skip(1));
        return processors::run(cli.args);
    }
    if mode != "serve" {
        eprintln!(
            "usage: phantomdb-bench serve   (JSON-lines commands on stdin; see bench/compare.py)\n       \
             phantomdb-bench points [--help]   (point operations vs SQLite and DuckDB)\n       \
             phantomdb-bench indexes [--help]   (index lookups and range scans vs full scans and SQLite)"
        );
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let mut session = Session {
        rt,
        db: None,
        conn: None,
        prepared: std::cell::Cell::new(0),
    };
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let (reply, quit) = match serde_json::from_str::<Value>(&line) {
            Ok(cmd) => match session.handle(&cmd) {
                Ok(Some(mut v)) => {
                    v["ok"] = json!(true);
                    (v, false)
                }
                Ok(None) => (json!({"ok": true}), true),
                Err(e) => (json!({"ok": false, "error": format!("{e:#}")}), false),
            },
            Err(e) => (
                json!({"ok": false, "error": format!("bad JSON: {e}")}),
                false,
            ),
        };
        writeln!(stdout, "{reply}")?;
        stdout.flush()?;
        if quit {
            break;
        }
    }
    // Close the connection before the database so the file is released cleanly.
    drop(session.conn.take());
    drop(session.db.take());
    Ok(())
}

fn str_field<'a>(cmd: &'a Value, name: &str) -> Result<&'a str> {
    cmd.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("missing string field {name:?}"))
}

fn u64_field(cmd: &Value, name: &str) -> Result<u64> {
    cmd.get(name)
        .and_then(Value::as_u64)
        .ok_or_else(|| anyhow!("missing integer field {name:?}"))
}

fn rows_of(rs: &ResultSet) -> usize {
    rs.rows_affected.unwrap_or_else(|| rs.num_rows())
}

/// The result's rows, each value as text (`null` for NULL), to compare answers with another
/// system's.
fn values_of(rs: &ResultSet) -> Result<Vec<Vec<Option<String>>>> {
    use arrow::array::{Array, AsArray};
    let mut out = Vec::new();
    for batch in &rs.batches {
        let columns = batch
            .columns()
            .iter()
            .map(|c| arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            out.push(
                columns
                    .iter()
                    .map(|c| {
                        let c = c.as_string::<i32>();
                        (!c.is_null(row)).then(|| c.value(row).to_string())
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// xorshift64*: cheap, deterministic keys (the same sequence for a given seed).
struct Keys(u64);

impl Keys {
    fn next(&mut self, max: u64) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) % max + 1
    }
}

impl Session {
    fn conn(&self) -> Result<&Connection> {
        self.conn
            .as_ref()
            .ok_or_else(|| anyhow!("no database open (send an open command first)"))
    }

    fn db(&self) -> Result<&Database> {
        self.db
            .as_ref()
            .ok_or_else(|| anyhow!("no database open (send an open command first)"))
    }

    /// Runs `sql` on the bench runtime, cancelled after `timeout`.
    fn run(&self, sql: &str, timeout: Option<Duration>) -> Result<ResultSet> {
        let conn = self.conn()?;
        let fut = conn.execute_async(sql);
        let rs = match timeout {
            // The timer must be created inside the runtime.
            Some(t) => self
                .rt
                .block_on(async { tokio::time::timeout(t, fut).await })
                .map_err(|_| anyhow!("timeout after {}s", t.as_secs_f64()))?,
            None => self.rt.block_on(fut),
        };
        Ok(rs?)
    }

    fn handle(&mut self, cmd: &Value) -> Result<Option<Value>> {
        let name = str_field(cmd, "cmd")?;
        Ok(Some(match name {
            "quit" => return Ok(None),
            "version" => json!({
                "phantomdb": phantomdb::plugins::HOST_VERSION,
                "datafusion": datafusion::DATAFUSION_VERSION,
                "profile": if cfg!(debug_assertions) { "dev" } else { "release" },
            }),
            "open" => {
                self.conn = None;
                self.db = None;
                let db = match cmd.get("path").and_then(Value::as_str) {
                    Some(p) => Database::open(p).with_context(|| format!("opening {p}"))?,
                    None => Database::open_in_memory()?,
                };
                self.conn = Some(db.connect()?);
                self.db = Some(db);
                json!({})
            }
            "exec" => {
                let sql = str_field(cmd, "sql")?;
                let timeout = cmd
                    .get("timeout")
                    .and_then(Value::as_f64)
                    .map(Duration::from_secs_f64);
                let start = Instant::now();
                let rs = self.run(sql, timeout)?;
                let secs = start.elapsed().as_secs_f64();
                if cmd.get("fetch").and_then(Value::as_bool).unwrap_or(false) {
                    json!({"secs": secs, "rows": rows_of(&rs), "values": values_of(&rs)?})
                } else {
                    json!({"secs": secs, "rows": rows_of(&rs)})
                }
            }
            "register_builtin" => {
                self.conn()?
                    .session()
                    .register_udf(phantomdb_bench::is_prime_builtin_udf());
                json!({"name": phantomdb_bench::BUILTIN_IS_PRIME})
            }
            "load_plugin" => {
                let path = str_field(cmd, "path")?;
                let start = Instant::now();
                let info = self.db()?.plugins().load_plugin(path, "{}")?;
                json!({"secs": start.elapsed().as_secs_f64(), "name": info.name})
            }
            "load_plugin_dir" => {
                let dir = str_field(cmd, "dir")?;
                let start = Instant::now();
                let load = self.db()?.plugins().load_plugins_from_directory(dir)?;
                let secs = start.elapsed().as_secs_f64();
                let failed: Vec<String> = load
                    .failed
                    .iter()
                    .map(|(p, e)| format!("{}: {e}", p.display()))
                    .collect();
                json!({"secs": secs, "loaded": load.loaded.len(), "failed": failed})
            }
            "lookups" => self.lookups(cmd)?,
            "inserts" => self.inserts(cmd)?,
            "storage_boundary" => {
                let plugin = str_field(cmd, "plugin")?;
                let dir = str_field(cmd, "dir")?;
                let rows = u64_field(cmd, "rows")?;
                let runs = u64_field(cmd, "runs")? as usize;
                let timings = storage_boundary::measure(
                    std::path::Path::new(plugin),
                    std::path::Path::new(dir),
                    rows,
                    runs,
                )?;
                let timings: Vec<Value> = timings
                    .iter()
                    .map(|t| json!({"name": t.name, "plugin": t.plugin, "linked": t.linked}))
                    .collect();
                json!({ "timings": timings })
            }
            "data_types" => {
                let timings = data_types::measure(
                    std::path::Path::new(str_field(cmd, "plugin")?),
                    std::path::Path::new(str_field(cmd, "dir")?),
                    u64_field(cmd, "rows")?,
                    u64_field(cmd, "runs")? as usize,
                )?;
                let timings: Vec<Value> = timings
                    .iter()
                    .map(|t| {
                        json!({"name": t.name, "uuid": t.uuid, "storage": t.storage, "text": t.text})
                    })
                    .collect();
                json!({ "timings": timings })
            }
            other => bail!("unknown command {other:?}"),
        }))
    }

    /// `n` primary-key lookups of random keys in `1..=max_key`, one statement each, through the
    /// blocking embedding API (`Connection::execute`).
    fn lookups(&self, cmd: &Value) -> Result<Value> {
        let table = str_field(cmd, "table")?;
        let key = str_field(cmd, "key")?;
        let n = u64_field(cmd, "n")?;
        let max_key = u64_field(cmd, "max_key")?.max(1);
        let prepared = cmd.get("prepared").and_then(Value::as_bool).unwrap_or(true);
        let conn = self.conn()?;
        // One prepared statement per call (names are never reused: PhantomDB has no
        // `DEALLOCATE ... IF EXISTS`).
        let stmt = format!("bench_lookup_{}", self.prepared.get());
        self.prepared.set(self.prepared.get() + 1);
        if prepared {
            conn.execute(&format!(
                "PREPARE {stmt}(BIGINT) AS SELECT * FROM {table} WHERE {key} = $1"
            ))?;
        }
        let mut keys = Keys(u64_field(cmd, "seed").unwrap_or(42) | 1);
        let mut found = 0usize;
        let start = Instant::now();
        for _ in 0..n {
            let k = keys.next(max_key);
            let sql = if prepared {
                format!("EXECUTE {stmt}({k})")
            } else {
                format!("SELECT * FROM {table} WHERE {key} = {k}")
            };
            found += conn.execute(&sql)?.num_rows();
        }
        let secs = start.elapsed().as_secs_f64();
        Ok(json!({"secs": secs, "found": found}))
    }

    /// `BEGIN`, `n` single-row inserts with ids from `start`, `COMMIT`; timed as a whole.
    fn inserts(&self, cmd: &Value) -> Result<Value> {
        let table = str_field(cmd, "table")?;
        let n = u64_field(cmd, "n")?;
        let first = u64_field(cmd, "start").unwrap_or(1);
        let prepared = cmd
            .get("prepared")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let conn = self.conn()?;
        let stmt = format!("bench_insert_{}", self.prepared.get());
        self.prepared.set(self.prepared.get() + 1);
        if prepared {
            conn.execute(&format!(
                "PREPARE {stmt}(BIGINT, TEXT, DOUBLE) AS INSERT INTO {table} VALUES ($1, $2, $3)"
            ))?;
        }
        let start = Instant::now();
        conn.execute("BEGIN")?;
        for id in first..first + n {
            let sql = if prepared {
                format!("EXECUTE {stmt}({id}, 'row {id}', {id}.5)")
            } else {
                format!("INSERT INTO {table} VALUES ({id}, 'row {id}', {id}.5)")
            };
            if let Err(e) = conn.execute(&sql) {
                conn.execute("ROLLBACK").ok();
                return Err(e.into());
            }
        }
        conn.execute("COMMIT")?;
        let secs = start.elapsed().as_secs_f64();
        Ok(json!({"secs": secs}))
    }
}
