//! `phantomdb-bench processors`: the overhead of a query processor's `rewrite` hook on a
//! point query (issue #15: at most 10% with a no-op processor). Two in-memory databases with
//! the same table: one without processors, one with the `noop_processor` fixture loaded (its
//! one processor receives every plan at stage `analyzed` and returns it unchanged: the plan
//! goes to the plan form, to JSON, through the plugin and back). Each round times `--queries` point queries
//! (literal keys, so every one is planned) on each, alternating which goes first; the figure
//! is the median per query over the rounds, for `EXPLAIN` (planning only) and for the query.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use phantomdb::{Connection, Database};

/// Options of `phantomdb-bench processors`.
#[derive(clap::Args, Debug)]
pub struct ProcessorArgs {
    /// The `noop_processor` fixture library (default: next to this binary).
    #[arg(long)]
    plugin: Option<PathBuf>,
    /// Rows in the table.
    #[arg(long, default_value_t = 10_000)]
    rows: u64,
    /// Point queries per round and database.
    #[arg(long, default_value_t = 2_000)]
    queries: u64,
    /// Rounds.
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// Time one side only (`plain` or `hooked`), e.g. to profile it.
    #[arg(long)]
    only: Option<Side>,
}

/// One side of the comparison.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    /// The database without processors.
    Plain,
    /// The database with the no-op processor.
    Hooked,
}

fn connection(db: &Database, rows: u64) -> Result<Connection> {
    let conn = db.connect()?;
    conn.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)")?;
    conn.execute(&format!(
        "INSERT INTO t SELECT value, 'v' || value FROM generate_series(1, {rows})"
    ))?;
    Ok(conn)
}

/// Seconds per statement for `queries` statements `template` with keys spread over the table.
fn time(conn: &Connection, template: &str, queries: u64, rows: u64) -> Result<f64> {
    let start = Instant::now();
    for i in 0..queries {
        let key = (i * 7919) % rows + 1;
        conn.execute(&template.replace("{key}", &key.to_string()))?;
    }
    Ok(start.elapsed().as_secs_f64() / queries as f64)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the benchmark and prints a markdown table.
pub fn run(args: ProcessorArgs) -> Result<()> {
    let plugin = match args.plugin {
        Some(p) => p,
        None => std::env::current_exe()?
            .parent()
            .context("the binary's directory")?
            .join("libnoop_processor.so"),
    };
    let plain_db = Database::open_in_memory()?;
    let hooked_db = Database::open_in_memory()?;
    hooked_db
        .plugins()
        .load_plugin(&plugin, "")
        .with_context(|| format!("loading {}", plugin.display()))?;
    let plain = connection(&plain_db, args.rows)?;
    let hooked = connection(&hooked_db, args.rows)?;
    let listed = hooked
        .execute("SELECT name FROM phantomdb_query_processors() WHERE name = 'noop_rewrite'")?;
    anyhow::ensure!(
        listed.num_rows() == 1,
        "the fixture's processor noop_rewrite is not loaded"
    );

    let mut results = Vec::new();
    for (name, template) in [
        (
            "plan only (EXPLAIN)",
            "EXPLAIN SELECT v FROM t WHERE id = {key}",
        ),
        ("plan and run", "SELECT v FROM t WHERE id = {key}"),
    ] {
        // Warm-up.
        time(&plain, template, args.queries / 10 + 1, args.rows)?;
        time(&hooked, template, args.queries / 10 + 1, args.rows)?;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for round in 0..args.rounds {
            if let Some(side) = args.only {
                let (conn, times) = match side {
                    Side::Plain => (&plain, &mut a),
                    Side::Hooked => (&hooked, &mut b),
                };
                times.push(time(conn, template, args.queries, args.rows)?);
                continue;
            }
            if round % 2 == 0 {
                a.push(time(&plain, template, args.queries, args.rows)?);
                b.push(time(&hooked, template, args.queries, args.rows)?);
            } else {
                b.push(time(&hooked, template, args.queries, args.rows)?);
                a.push(time(&plain, template, args.queries, args.rows)?);
            }
        }
        let median = |v: Vec<f64>| if v.is_empty() { f64::NAN } else { median(v) };
        results.push((name, median(a), median(b)));
    }
    println!("| point query | no processor | no-op rewrite processor | ratio |");
    println!("| --- | --- | --- | --- |");
    for (name, a, b) in results {
        println!(
            "| {name} | {:.1} µs | {:.1} µs | {:.3}x |",
            a * 1e6,
            b * 1e6,
            b / a
        );
    }
    Ok(())
}
