//! `phantomdb-bench processors`: the overhead of a query processor's `rewrite` hook on a
//! point query (issue #15: at most 10% with a no-op processor). Four in-memory databases with
//! the same table: two without processors (the second shows the noise floor), and two with the `noop_processor` fixture loaded.
//! Its one processor receives every plan at stage `analyzed` (the plan goes to the plan form,
//! to JSON and is read in the plugin) and changes nothing: in the first it answers "unchanged"
//! (the SDK's no-op), in the second it hands the plan back (the plan also crosses back and the
//! host compares it with what it sent). Each round times `--queries` point queries (literal
//! keys, so every one is planned) on each, in a rotating order; the figure is the median per
//! query over the rounds, for `EXPLAIN` (planning only) and for the query.

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
    /// A second database without processors: the figures' noise floor.
    Control,
    /// The database with the no-op processor answering "unchanged".
    Hooked,
    /// The database with the no-op processor handing the plan back.
    Returned,
}

const SIDES: [Side; 4] = [Side::Plain, Side::Control, Side::Hooked, Side::Returned];

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
    let mut connections = Vec::new();
    let mut databases = Vec::new();
    for side in SIDES {
        let db = Database::open_in_memory()?;
        let config = match side {
            Side::Plain | Side::Control => None,
            Side::Hooked => Some(""),
            Side::Returned => Some(r#"{"return_plan": true}"#),
        };
        if let Some(config) = config {
            db.plugins()
                .load_plugin(&plugin, config)
                .with_context(|| format!("loading {}", plugin.display()))?;
        }
        let conn = connection(&db, args.rows)?;
        let listed = conn
            .execute("SELECT name FROM phantomdb_query_processors() WHERE name = 'noop_rewrite'")?;
        anyhow::ensure!(
            listed.num_rows() == usize::from(config.is_some()),
            "the fixture's processor noop_rewrite is {} loaded in the {side:?} database",
            if config.is_some() { "not" } else { "" }
        );
        connections.push(conn);
        databases.push(db);
    }

    let mut results = Vec::new();
    for (name, template) in [
        (
            "plan only (EXPLAIN)",
            "EXPLAIN SELECT v FROM t WHERE id = {key}",
        ),
        ("plan and run", "SELECT v FROM t WHERE id = {key}"),
    ] {
        for conn in &connections {
            time(conn, template, args.queries / 10 + 1, args.rows)?; // warm-up
        }
        let mut times = vec![Vec::new(); SIDES.len()];
        for round in 0..args.rounds {
            // Each side takes each place in the order in turn.
            for k in 0..SIDES.len() {
                let i = (round + k) % SIDES.len();
                if args.only.is_some_and(|only| only != SIDES[i]) {
                    continue;
                }
                times[i].push(time(&connections[i], template, args.queries, args.rows)?);
            }
        }
        let medians: Vec<f64> = times
            .into_iter()
            .map(|v| if v.is_empty() { f64::NAN } else { median(v) })
            .collect();
        results.push((name, medians));
    }
    println!(
        "| point query | no processor | again, second database (noise) | no-op processor | \
         no-op handing the plan back |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for (name, m) in results {
        let cell = |v: f64| format!("{:.1} µs ({:.3}x)", v * 1e6, v / m[0]);
        println!(
            "| {name} | {:.1} µs | {} | {} | {} |",
            m[0] * 1e6,
            cell(m[1]),
            cell(m[2]),
            cell(m[3])
        );
    }
    Ok(())
}
