//! The cost of a custom type: the same 16-byte keys as the `uuid` plugin's type, as their
//! storage type without the type (`FixedSizeBinary(16)`), and as `TEXT` (the canonical form),
//! for loading from text and primary-key lookups (tables with a primary key), and a full
//! `ORDER BY` and an equality self-join (tables without keys, written alike).

use std::path::Path;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use phantomdb::{Connection, Database};

/// Median times (seconds) of one operation over each representation (`None`: not measured).
#[derive(Debug, Clone)]
pub struct Timing {
    /// Operation name.
    pub name: String,
    /// On the `uuid` column.
    pub uuid: f64,
    /// On the `FixedSizeBinary(16)` column (no custom type).
    pub storage: Option<f64>,
    /// On the `TEXT` column.
    pub text: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Times `sql` once (it must return `rows` rows).
fn time(conn: &Connection, sql: &str, rows: usize) -> Result<f64> {
    let start = Instant::now();
    let rs = conn.execute(sql).with_context(|| sql.to_string())?;
    let secs = start.elapsed().as_secs_f64();
    ensure!(
        rs.num_rows() == rows,
        "{sql}: {} rows, expected {rows}",
        rs.num_rows()
    );
    Ok(secs)
}

/// Loads `rows` keys (md5 of 1..=rows, which the uuid type reads without hyphens) as TEXT
/// (`s`), `uuid` (`u`, parsed from `s`) and `FixedSizeBinary(16)` (`f`), then times each
/// operation `runs` times per representation, alternating, after a warm-up.
pub fn measure(library: &Path, dir: &Path, rows: u64, runs: usize) -> Result<Vec<Timing>> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("data_types.db");
    let _ = std::fs::remove_file(&path);
    let db = Database::open(&path)?;
    db.plugins()
        .load_plugin(library, "{}")
        .with_context(|| format!("loading {}", library.display()))?;
    let conn = db.connect()?;
    conn.execute("CREATE TABLE src (id TEXT, n BIGINT)")?;
    conn.execute(&format!(
        "INSERT INTO src SELECT md5(CAST(value AS TEXT)), value FROM generate_series(1, {rows})"
    ))?;
    // For the sort and the join, three tables without keys, written alike by one statement
    // each in the same row order: `v` (uuid), `f` (the same 16 bytes as a plain
    // FixedSizeBinary(16): arrow_cast drops the type) and `w` (TEXT).
    conn.execute("CREATE TABLE v (id uuid, n BIGINT)")?;
    conn.execute("INSERT INTO v SELECT id, n FROM src")?;
    conn.execute("CREATE TABLE f AS SELECT arrow_cast(id, 'FixedSizeBinary(16)') AS id, n FROM v")?;
    conn.execute("CREATE TABLE w AS SELECT id, n FROM src")?;
    let mut out = Vec::new();

    // Loading: text parsed into uuid (and checked as a primary key) against text kept as text.
    let mut load = (Vec::new(), Vec::new());
    for run in 0..runs.max(1) + 1 {
        for (table, ty) in [("u", "uuid"), ("s", "TEXT")] {
            conn.execute(&format!("DROP TABLE IF EXISTS {table}"))?;
            conn.execute(&format!(
                "CREATE TABLE {table} (id {ty} PRIMARY KEY, n BIGINT)"
            ))?;
            let secs = time(
                &conn,
                &format!("INSERT INTO {table} SELECT id, n FROM src"),
                1,
            )?;
            if run > 0 {
                if table == "u" {
                    &mut load.0
                } else {
                    &mut load.1
                }
                .push(secs);
            }
        }
    }
    out.push(Timing {
        name: format!("insert {rows} from text (primary key)"),
        uuid: median(load.0),
        storage: None,
        text: median(load.1),
    });

    // Primary-key lookups, one statement each, keys given as text.
    let keys: Vec<String> = {
        use arrow::array::AsArray;
        let batch = conn
            .execute("SELECT id FROM src WHERE n % 1000 = 7")?
            .concat()?;
        let ids = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8)?;
        ids.as_string::<i32>()
            .iter()
            .flatten()
            .map(str::to_string)
            .collect()
    };
    let lookups = |table: &str| -> Result<f64> {
        let start = Instant::now();
        for key in &keys {
            let rs = conn.execute(&format!("SELECT n FROM {table} WHERE id = '{key}'"))?;
            ensure!(rs.num_rows() == 1, "{key} not found in {table}");
        }
        Ok(start.elapsed().as_secs_f64() / keys.len() as f64)
    };
    let (mut u, mut s) = (Vec::new(), Vec::new());
    lookups("u")?;
    lookups("s")?;
    for _ in 0..runs.max(1) {
        u.push(lookups("u")?);
        s.push(lookups("s")?);
    }
    out.push(Timing {
        name: format!("primary-key lookup (per lookup, {} keys)", keys.len()),
        uuid: median(u),
        storage: None,
        text: median(s),
    });

    // A full sort and an equality self-join, over the keyless tables.
    let queries = [
        (
            "ORDER BY (full sort)",
            "SELECT n FROM {t} ORDER BY id OFFSET {last}",
        ),
        (
            "equality self-join",
            "SELECT count(*) FROM {t} a JOIN {t} b ON a.id = b.id",
        ),
    ];
    for (name, sql) in queries {
        let sql = sql.replace("{last}", &(rows - 1).to_string());
        let (mut u, mut f, mut s) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..runs.max(1) + 1 {
            let tu = time(&conn, &sql.replace("{t}", "v"), 1)?;
            let tf = time(&conn, &sql.replace("{t}", "f"), 1)?;
            let ts = time(&conn, &sql.replace("{t}", "w"), 1)?;
            if run > 0 {
                u.push(tu);
                f.push(tf);
                s.push(ts);
            }
        }
        out.push(Timing {
            name: name.to_string(),
            uuid: median(u),
            storage: Some(median(f)),
            text: median(s),
        });
    }
    Ok(out)
}
