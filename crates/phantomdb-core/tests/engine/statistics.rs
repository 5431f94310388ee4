//! Column statistics of the default engine (recorded per segment when it is written, shown by
//! `phantomdb_column_statistics()`, recomputed by `ANALYZE`) and the segments scans skip with
//! them, for a `WHERE` and for a join's dynamic filter.

use phantomdb::arrow::array::{Array, AsArray, RecordBatch};
use phantomdb::arrow::datatypes::Int64Type;
use phantomdb::Database;

use super::scalar;

/// Segments hold 65,536 rows; five inserts of 65,536 rows each make five segments with
/// disjoint ranges of `id` (and of `d`, a date derived from it), whatever order each insert's
/// rows arrive in.
const SEGMENT: i64 = 65_536;

fn load(c: &phantomdb::Connection) {
    c.execute("CREATE TABLE t (id BIGINT NOT NULL, d DATE, n INT, s TEXT)")
        .unwrap();
    for k in 0..5 {
        c.execute(&format!(
            "INSERT INTO t SELECT value, DATE '2000-01-01' + CAST(value / 1000 AS INT),
                 CASE WHEN value % 10 = 0 THEN NULL ELSE CAST(value % 1000 AS INT) END,
                 'v' || CAST(value % 5000 AS VARCHAR)
             FROM generate_series({}, {})",
            k * SEGMENT + 1,
            (k + 1) * SEGMENT
        ))
        .unwrap();
    }
}

/// `(segments, segments_with_statistics, null_count, min, max, distinct_estimate)` of a column.
fn stats(c: &phantomdb::Connection, column: &str) -> (i64, i64, i64, String, String, i64) {
    let batch = c
        .execute(&format!(
            "SELECT segments, segments_with_statistics, null_count, min, max, distinct_estimate
             FROM phantomdb_column_statistics()
             WHERE table_name = 't' AND column_name = '{column}'"
        ))
        .unwrap()
        .concat()
        .unwrap();
    assert_eq!(batch.num_rows(), 1, "statistics of t.{column}");
    let int = |i: usize| batch.column(i).as_primitive::<Int64Type>().value(0);
    let text = |i: usize| {
        let col = batch.column(i);
        assert!(!col.is_null(0), "t.{column}: no bound in column {i}");
        col.as_string::<i32>().value(0).to_string()
    };
    (int(0), int(1), int(2), text(3), text(4), int(5))
}

/// What the statistics must say, computed by queries over the rows themselves.
fn check_against_rows(c: &phantomdb::Connection, bounds_exact: bool) {
    let (segments, with_stats, nulls, min, max, distinct) = stats(c, "n");
    assert_eq!(segments, with_stats, "every segment has statistics");
    // After deletes, counts and bounds are those of the stored rows (deleted ones included).
    let live_nulls = scalar(c, "SELECT count(*) - count(n) FROM t");
    assert!(
        nulls >= live_nulls,
        "{nulls} NULLs recorded, {live_nulls} live"
    );
    let (lo, hi) = (
        scalar(c, "SELECT min(n) FROM t"),
        scalar(c, "SELECT max(n) FROM t"),
    );
    let (min, max): (i64, i64) = (min.parse().unwrap(), max.parse().unwrap());
    assert!(
        min <= lo && max >= hi,
        "bounds {min}..{max} cover {lo}..{hi}"
    );
    if bounds_exact {
        assert_eq!((min, max, nulls), (lo, hi, live_nulls));
    }
    let truth = scalar(c, "SELECT count(DISTINCT n) FROM t") as f64;
    assert!(
        (distinct as f64 - truth).abs() / truth < 0.25,
        "distinct estimate {distinct}, truth {truth}"
    );
    let (_, _, _, dmin, dmax, _) = stats(c, "d");
    let dates = c
        .execute("SELECT CAST(min(d) AS VARCHAR), CAST(max(d) AS VARCHAR) FROM t")
        .unwrap()
        .concat()
        .unwrap();
    let date = |i: usize| {
        let col = phantomdb::arrow::compute::cast(
            dates.column(i),
            &phantomdb::arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        col.as_string::<i32>().value(0).to_string()
    };
    assert!(dmin <= date(0) && dmax >= date(1));
}

#[test]
fn statistics_survive_restart_deletes_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stats.db");
    {
        let db = Database::open(&path).unwrap();
        let c = db.connect().unwrap();
        load(&c);
        let (segments, ..) = stats(&c, "id");
        assert_eq!(segments, 5);
        check_against_rows(&c, true);
        let (_, _, nulls, min, max, _) = stats(&c, "id");
        assert_eq!((nulls, min.as_str(), max.as_str()), (0, "1", "327680"));
        let (_, _, _, smin, smax, _) = stats(&c, "s");
        assert_eq!((smin.as_str(), smax.as_str()), ("v0", "v999"));
    }
    {
        let db = Database::open(&path).unwrap();
        let c = db.connect().unwrap();
        check_against_rows(&c, true);
        // A few rows deleted: the statistics stay (bounds of the stored rows).
        c.execute("DELETE FROM t WHERE id > 299990 OR n = 999")
            .unwrap();
        check_against_rows(&c, false);
        // Most of the first segment deleted: it is merged into a new segment at commit, with
        // statistics of its live rows.
        c.execute("DELETE FROM t WHERE id <= 60000").unwrap();
        let (_, _, _, min, ..) = stats(&c, "id");
        assert_eq!(min, "60001");
        check_against_rows(&c, false);
        // An update is a delete plus an insert: the new rows' segment has statistics too.
        c.execute("UPDATE t SET n = 5000 WHERE id = 100000")
            .unwrap();
        let (_, _, _, _, max, _) = stats(&c, "n");
        assert_eq!(max, "5000");
        check_against_rows(&c, false);
    }
    let db = Database::open(&path).unwrap();
    let c = db.connect().unwrap();
    check_against_rows(&c, false);
    // ANALYZE recomputes from the live rows: the bounds are exact again.
    c.execute("ANALYZE t").unwrap();
    check_against_rows(&c, true);
    let (_, _, _, _, max, _) = stats(&c, "id");
    assert_eq!(max, "299990");
    c.execute("ANALYZE").unwrap();
    check_against_rows(&c, true);
    let err = c.execute("ANALYZE missing").unwrap_err();
    assert_eq!(err.sqlstate(), phantomdb::SqlState::UndefinedTable);
}

/// `segments_scanned` and `segments_skipped` of the scan of `table` in `EXPLAIN ANALYZE sql`.
fn segments(c: &phantomdb::Connection, sql: &str, table: &str) -> (u64, u64) {
    let plan: RecordBatch = c
        .execute(&format!("EXPLAIN ANALYZE {sql}"))
        .unwrap()
        .concat()
        .unwrap();
    let text = phantomdb::arrow::util::pretty::pretty_format_batches(&[plan])
        .unwrap()
        .to_string();
    let line = text
        .lines()
        .find(|l| l.contains(&format!("PhantomScanExec: table={table},")))
        .unwrap_or_else(|| panic!("{sql}: no scan of {table}:\n{text}"));
    let metric = |name: &str| -> u64 {
        let at = line
            .find(&format!("{name}="))
            .unwrap_or_else(|| panic!("no {name} in {line}"));
        line[at + name.len() + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap()
    };
    (metric("segments_scanned"), metric("segments_skipped"))
}

#[test]
fn scans_skip_segments_a_filter_rules_out() {
    let db = Database::open_in_memory().unwrap();
    let c = db.connect().unwrap();
    load(&c);
    // The fifth segment holds ids from 4 * 65,536 + 1 = 262,145 on.
    let sql = "SELECT count(*) FROM t WHERE id > 270000";
    assert_eq!(segments(&c, sql, "t"), (1, 4));
    assert_eq!(scalar(&c, sql), 5 * SEGMENT - 270_000);
    // Dates: only the segments whose range of d meets the range are read.
    let sql = "SELECT count(*) FROM t WHERE d BETWEEN DATE '2000-03-01' AND DATE '2000-03-10'";
    let (scanned, skipped) = segments(&c, sql, "t");
    assert_eq!(scanned + skipped, 5);
    assert!(skipped >= 3, "{scanned} scanned, {skipped} skipped");
    assert_eq!(
        scalar(&c, sql),
        scalar(
            &c,
            "SELECT count(*) FROM t WHERE CAST(d AS VARCHAR) BETWEEN '2000-03-01' AND '2000-03-10'"
        )
    );
    // A filter the statistics cannot decide reads everything, and loses nothing.
    let sql = "SELECT count(*) FROM t WHERE s = 'v7'";
    assert_eq!(segments(&c, sql, "t"), (5, 0));
    assert_eq!(scalar(&c, sql), (5 * SEGMENT - 7) / 5000 + 1);
    // NULL tests use the null counts: n has NULLs in every segment.
    let sql = "SELECT count(*) FROM t WHERE n IS NULL AND id <= 100000";
    assert_eq!(segments(&c, sql, "t"), (2, 3));
    assert_eq!(scalar(&c, sql), 10_000);
    assert_eq!(scalar(&c, "SELECT count(*) FROM t WHERE d IS NULL"), 0);
}

#[test]
fn scans_skip_segments_a_join_filter_rules_out() {
    let db = Database::open_in_memory().unwrap();
    let c = db.connect().unwrap();
    load(&c);
    c.execute("CREATE TABLE keys (k BIGINT); INSERT INTO keys VALUES (70000), (70500), (71000)")
        .unwrap();
    // The join's build side (keys) fills a filter on t.id while the query runs; the scan of
    // t reads it as each segment is opened, so only the second segment is read.
    let sql = "SELECT count(*), sum(t.n) FROM t JOIN keys ON t.id = keys.k";
    let (scanned, skipped) = segments(&c, sql, "t");
    assert_eq!((scanned, skipped), (1, 4));
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM t JOIN keys ON t.id = keys.k"),
        3
    );
    assert_eq!(
        scalar(&c, "SELECT sum(t.n) FROM t JOIN keys ON t.id = keys.k"),
        scalar(&c, "SELECT sum(n) FROM t WHERE id IN (70000, 70500, 71000)")
    );
}
