//! `phantomdb-bench indexes`: a secondary index on a non-key column of a `--rows`-row table,
//! driven from this Rust process: equality lookups and range scans through the index, against
//! the same queries as full scans of an identical table without the index, and against
//! SQLite (`rusqlite`, bundled) with and without an index on the column.
//!
//! The table is `(id BIGINT PRIMARY KEY, k BIGINT, v DOUBLE)` with `k = id * 999983 mod
//! rows`: every `k` once, in no relation to the key order, so neither system can skip storage
//! by the key's order. Equality lookups read one row (`SELECT id, v ... WHERE k = $1`), range
//! scans `--range-width` rows (`SELECT count(*), sum(v) ... WHERE k BETWEEN $1 AND $2`); both
//! through prepared statements on both sides. Each system's answers are checked against the
//! expected ones. Figures are medians of `--runs` runs after a warm-up, systems alternating.

mod phantom;
mod sqlite;

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};

use crate::points::{alternate, Keys};

/// Options of `phantomdb-bench indexes`.
#[derive(Debug, Clone, clap::Args)]
pub struct IndexArgs {
    /// Rows in the table.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Equality lookups per run through an index.
    #[arg(long, default_value_t = 2_000)]
    pub lookups: u64,
    /// Range scans per run through an index.
    #[arg(long, default_value_t = 500)]
    pub ranges: u64,
    /// Queries per run answered by full scans (no index).
    #[arg(long, default_value_t = 10)]
    pub scans: u64,
    /// Rows each range scan selects.
    #[arg(long, default_value_t = 1_000)]
    pub range_width: u64,
    /// Timed runs per workload and system (after one warm-up).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Scratch directory for the database files (default: bench/work/indexes).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Markdown file to write the results to (besides stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The multiplier that makes `k` a permutation of `0..rows` (prime, so coprime to any row
/// count it does not divide).
pub(crate) const MULTIPLIER: u64 = 999_983;

/// The query a run repeats.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Query {
    /// `WHERE k = $1`: one row.
    Equal,
    /// `WHERE k BETWEEN $1 AND $1 + width - 1`: `width` rows.
    Range { width: u64 },
}

/// What `n` queries of one kind must return in total (rows, sum of `v`), from the keys they
/// use: checked on both sides.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Answers {
    pub(crate) rows: u64,
    pub(crate) sum: f64,
}

/// What queries starting at `starts` must return: each key's row is found by inverting
/// `k = id * MULTIPLIER mod rows`, and its `v` is `id + 0.5`.
fn expected(rows: u64, query: Query, starts: &[i64]) -> Answers {
    let inverse = inverse_multiplier(rows);
    let id_of = |k: u64| {
        let id = ((k as u128 * inverse as u128) % rows as u128) as u64;
        if id == 0 {
            rows
        } else {
            id
        }
    };
    let mut answers = Answers { rows: 0, sum: 0.0 };
    for &start in starts {
        let width = match query {
            Query::Equal => 1,
            Query::Range { width } => width,
        };
        for k in start as u64..(start as u64 + width).min(rows) {
            answers.rows += 1;
            answers.sum += id_of(k) as f64 + 0.5;
        }
    }
    answers
}

/// `MULTIPLIER`'s inverse modulo `rows` (extended Euclid).
fn inverse_multiplier(rows: u64) -> u64 {
    let (mut t, mut new_t) = (0i128, 1i128);
    let (mut r, mut new_r) = (rows as i128, (MULTIPLIER % rows) as i128);
    while new_r != 0 {
        let q = r / new_r;
        (t, new_t) = (new_t, t - q * new_t);
        (r, new_r) = (new_r, r - q * new_r);
    }
    (if t < 0 { t + rows as i128 } else { t }) as u64
}

/// The first keys of `n` queries for round `round`.
fn starts(args: &IndexArgs, query: Query, n: u64, round: usize) -> Vec<i64> {
    let span = match query {
        Query::Equal => args.rows,
        Query::Range { width } => args.rows.saturating_sub(width).max(1),
    };
    let mut keys = Keys::new(round as u64 + 17);
    (0..n).map(|_| keys.next(span) - 1).collect()
}

/// Runs the workloads and prints (and optionally writes) the table.
pub fn run(args: IndexArgs) -> Result<()> {
    if args.rows.is_multiple_of(MULTIPLIER) {
        return Err(anyhow!("--rows must not be a multiple of {MULTIPLIER}"));
    }
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("bench/work/indexes"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    eprintln!("loading {} rows into each table", args.rows);
    let ph = phantom::Tables::open(&dir.join("indexes.phantomdb"), args.rows)?;
    let sq = sqlite::Tables::open(&dir.join("indexes.sqlite"), args.rows)?;
    let mut lines = vec![
        format!(
            "CREATE INDEX on {} rows: PhantomDB {:.2} s, SQLite {:.2} s",
            args.rows, ph.index_build_secs, sq.index_build_secs
        ),
        String::new(),
    ];
    let mut rows = Vec::new();
    for (name, query, n) in [
        ("equality lookup, 1 row", Query::Equal, args.lookups),
        (
            "range scan",
            Query::Range {
                width: args.range_width,
            },
            args.ranges,
        ),
    ] {
        eprintln!("{name}");
        let [pi, pf, si, sf] = alternate::<4>(args.runs, |system, round| {
            let indexed = system % 2 == 0;
            let n = if indexed { n } else { args.scans };
            let keys = starts(&args, query, n, round);
            let (figure, answers) = match system {
                0 | 1 => ph.run(query, indexed, &keys)?,
                _ => sq.run(query, indexed, &keys)?,
            };
            let want = expected(args.rows, query, &keys);
            if answers.rows != want.rows || (answers.sum - want.sum).abs() > 1e-6 * want.sum {
                return Err(anyhow!(
                    "{name}: system {system} answered {answers:?}, expected {want:?}"
                ));
            }
            Ok(figure)
        })?;
        rows.push((name, query, pi, pf, si, sf));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| query | PhantomDB indexed (µs) | compared with | their figure (µs) | them / PhantomDB indexed |"
    );
    let _ = writeln!(out, "|---|---:|---|---:|---:|");
    for (name, query, pi, pf, si, sf) in &rows {
        let name = match query {
            Query::Equal => name.to_string(),
            Query::Range { width } => format!("{name}, {width} rows"),
        };
        for (other, f) in [
            ("PhantomDB full scan (no index)", pf),
            ("SQLite indexed", si),
            ("SQLite full scan (no index)", sf),
        ] {
            let _ = writeln!(
                out,
                "| {name} | {:.1} | {other} | {:.1} | {:.2}x |",
                pi.per_op_us(),
                f.per_op_us(),
                f.per_op_us() / pi.per_op_us()
            );
        }
    }
    let _ = writeln!(
        out,
        "\nTable `(id BIGINT PRIMARY KEY, k BIGINT, v DOUBLE)`, {} rows, `k` a permutation of \
         the ids; index on `k`. Per run: {} lookups / {} range scans through the index, {} \
         queries by full scan; prepared statements; {} timed runs after a warm-up, medians \
         (µs per query). A ratio above 1 means PhantomDB's indexed query is faster.",
        args.rows, args.lookups, args.ranges, args.scans, args.runs
    );
    lines.push(out);
    drop((ph, sq));
    drop(std::fs::remove_dir_all(&dir));
    let text = lines.join("\n");
    println!("{text}");
    if let Some(path) = &args.out {
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_answers_invert_the_permutation() {
        let rows = 1000;
        let inverse = inverse_multiplier(rows);
        for id in 1..=rows {
            let k = (id * MULTIPLIER) % rows;
            let back = (k * inverse) % rows;
            assert_eq!(if back == 0 { rows } else { back }, id);
        }
        let a = expected(rows, Query::Range { width: 10 }, &[0, 990]);
        assert_eq!(a.rows, 20);
    }
}
