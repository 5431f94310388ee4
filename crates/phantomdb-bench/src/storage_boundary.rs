//! The cost of the storage plugin boundary: the same table scanned through the `s3_storage`
//! engine loaded as a plugin library (C ABI, Arrow C Stream Interface, validated batches) and
//! through the same engine code linked into this binary (SDK traits called directly).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use phantomdb::plugins::EngineInfo;
use phantomdb::plugins::{Component, StaticPlugin};
use phantomdb::{Connection, Database};

/// The queries timed, by name.
pub const QUERIES: &[(&str, &str)] = &[
    ("full scan", "SELECT sum(v), count(s) FROM t"),
    (
        "filtered (pushdown)",
        "SELECT count(*) FROM t WHERE id > {cut}",
    ),
];

/// Median times (seconds) of one query through the plugin and linked in.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Query name.
    pub name: String,
    /// Median through the plugin library.
    pub plugin: f64,
    /// Median with the engine linked in.
    pub linked: f64,
}

fn plugin_database(library: &Path) -> Result<Database> {
    let db = Database::open_in_memory()?;
    db.plugins()
        .load_plugin(library, "{}")
        .with_context(|| format!("loading {}", library.display()))?;
    Ok(db)
}

fn linked_database() -> Result<Database> {
    let db = Database::open_in_memory()?;
    let engine = s3_storage::S3StorageEngine::default();
    engine
        .configure("{}")
        .map_err(|e| anyhow::anyhow!("configure s3_storage: {e}"))?;
    db.plugins().register_plugin(StaticPlugin {
        name: "s3_storage_linked".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        description: "s3_storage linked into the binary".into(),
        interfaces: vec!["phantomdb.storage/1".into()],
        components: vec![Component::StorageEngine(EngineInfo::from_engine(
            "s3_storage_linked",
            Arc::new(engine),
        ))],
    })?;
    Ok(db)
}

fn load(conn: &Connection, dir: &Path, rows: u64) -> Result<()> {
    conn.execute(&format!(
        "CREATE TABLE t (id BIGINT, v DOUBLE, s TEXT) USING s3_storage WITH (path = '{}')",
        dir.display()
    ))?;
    conn.execute(&format!(
        "INSERT INTO t SELECT value, value * 0.5, concat('row ', value) \
         FROM generate_series(1, {rows})"
    ))?;
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Loads `rows` rows into a table under `dir` through each engine, then runs every query
/// `runs` times on each, alternating, after one warm-up each.
pub fn measure(library: &Path, dir: &Path, rows: u64, runs: usize) -> Result<Vec<Timing>> {
    let plugin_db = plugin_database(library)?;
    let linked_db = linked_database()?;
    let plugin = plugin_db.connect()?;
    let linked = linked_db.connect()?;
    load(&plugin, &dir.join("plugin"), rows)?;
    load(&linked, &dir.join("linked"), rows)?;
    let cut = rows - rows / 10;
    let mut out = Vec::new();
    for (name, sql) in QUERIES {
        let sql = sql.replace("{cut}", &cut.to_string());
        let time = |conn: &Connection| -> Result<f64> {
            let start = Instant::now();
            let rs = conn.execute(&sql)?;
            anyhow::ensure!(rs.num_rows() == 1, "{sql}: expected one row");
            Ok(start.elapsed().as_secs_f64())
        };
        time(&plugin)?;
        time(&linked)?;
        let (mut p, mut l) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
        for _ in 0..runs.max(1) {
            p.push(time(&plugin)?);
            l.push(time(&linked)?);
        }
        out.push(Timing {
            name: (*name).to_string(),
            plugin: median(p),
            linked: median(l),
        });
    }
    Ok(out)
}
