//! Integration tests of the embedding API: transactions, constraints, concurrency, storage.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use phantomdb::arrow::array::{Array, AsArray};
use phantomdb::arrow::datatypes::Int64Type;
use phantomdb::{Database, SqlState};

#[path = "engine/duplicate_names.rs"]
mod duplicate_names;
#[path = "engine/indexes.rs"]
mod indexes;
#[path = "engine/integrity.rs"]
mod integrity;
#[path = "engine/pg_catalog.rs"]
mod pg_catalog;
#[path = "engine/plan_form.rs"]
mod plan_form;
#[path = "engine/point_ops.rs"]
mod point_ops;
#[path = "engine/roles.rs"]
mod roles;
#[path = "engine/statistics.rs"]
mod statistics;
#[path = "engine/subquery_differential.rs"]
mod subquery_differential;

/// The single i64 value of a one-row, one-column result.
fn scalar(db: &phantomdb::Connection, sql: &str) -> i64 {
    let rs = db.execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let batch = rs.concat().unwrap();
    assert_eq!(batch.num_rows(), 1, "{sql}");
    let col = phantomdb::arrow::compute::cast(
        batch.column(0),
        &phantomdb::arrow::datatypes::DataType::Int64,
    )
    .unwrap();
    col.as_primitive::<Int64Type>().value(0)
}

/// The `EXPLAIN` output of `sql` as text.
fn explain(db: &phantomdb::Connection, sql: &str) -> String {
    let plan = db
        .execute(&format!("EXPLAIN {sql}"))
        .unwrap_or_else(|e| panic!("EXPLAIN {sql}: {e}"))
        .concat()
        .unwrap();
    phantomdb::arrow::util::pretty::pretty_format_batches(&[plan])
        .unwrap()
        .to_string()
}

#[test]
fn rollback_undoes_changes_to_several_tables() {
    let db = Database::open_in_memory().unwrap();
    let c = db.connect().unwrap();
    c.execute("CREATE TABLE a (id INT PRIMARY KEY, v INT); CREATE TABLE b (x INT)")
        .unwrap();
    c.execute("INSERT INTO a VALUES (1, 10), (2, 20)").unwrap();
    c.execute(
        "BEGIN; UPDATE a SET v = 0; DELETE FROM a WHERE id = 2; INSERT INTO b VALUES (1), (2)",
    )
    .unwrap();
    assert_eq!(
        scalar(&c, "SELECT sum(v) FROM a"),
        0,
        "the transaction sees its own writes"
    );
    let other = db.connect().unwrap();
    assert_eq!(scalar(&other, "SELECT sum(v) FROM a"), 30, "others do not");
    c.execute("ROLLBACK").unwrap();
    assert_eq!(scalar(&c, "SELECT sum(v) FROM a"), 30);
    assert_eq!(scalar(&c, "SELECT count(*) FROM b"), 0);
}

#[test]
fn constraint_violations_are_errors_that_change_nothing() {
    let db = Database::open_in_memory().unwrap();
    let c = db.connect().unwrap();
    c.execute("CREATE TABLE t (id INT PRIMARY KEY, name TEXT NOT NULL)")
        .unwrap();
    c.execute("INSERT INTO t VALUES (1, 'a')").unwrap();
    let dup = c
        .execute("INSERT INTO t VALUES (2, 'b'), (1, 'c')")
        .unwrap_err();
    assert_eq!(dup.sqlstate(), SqlState::UniqueViolation, "{dup:?}");
    assert_eq!(dup.sqlstate().code(), "23505");
    assert!(
        dup.to_string().contains("duplicate primary key (id) = (1)"),
        "{dup}"
    );
    let null = c.execute("INSERT INTO t VALUES (3, NULL)").unwrap_err();
    assert_eq!(null.sqlstate().code(), "23502", "{null:?}");
    let upd = c.execute("UPDATE t SET name = NULL").unwrap_err();
    assert_eq!(upd.sqlstate().code(), "23502", "{upd:?}");
    assert_eq!(scalar(&c, "SELECT count(*) FROM t"), 1);
    assert_eq!(scalar(&c, "SELECT count(*) FROM t WHERE name = 'a'"), 1);
}

#[test]
fn bad_statements_give_errors_and_the_connection_goes_on() {
    let db = Database::open_in_memory().unwrap();
    let c = db.connect().unwrap();
    for bad in [
        "SELEC 1",
        "SELECT * FROM nowhere",
        "SELECT 1 +",
        "CREATE TABLE",
        "INSERT INTO nowhere VALUES (1)",
    ] {
        let e = c.execute(bad).unwrap_err().to_string();
        assert!(!e.is_empty() && !e.contains('\n'), "{bad}: {e:?}");
    }
    assert_eq!(scalar(&c, "SELECT 1"), 1);
}

/// Money moves between accounts in transactions while readers check the total: a reader
/// must never see a half-done transfer.
#[test]
fn readers_see_consistent_snapshots_while_a_writer_works() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("bank.db")).unwrap();
    let setup = db.connect().unwrap();
    setup
        .execute("CREATE TABLE acct (id INT PRIMARY KEY, balance BIGINT NOT NULL)")
        .unwrap();
    setup
        .execute("INSERT INTO acct SELECT value, 100 FROM generate_series(1, 50)")
        .unwrap();
    let total = scalar(&setup, "SELECT sum(balance) FROM acct");
    assert_eq!(total, 5000);

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let db = db.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let c = db.connect().unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) && i < 200 {
                let from = 1 + i % 50;
                let to = 1 + (i * 7 + 3) % 50;
                c.execute(&format!(
                    "BEGIN; UPDATE acct SET balance = balance - 5 WHERE id = {from}; \
                     UPDATE acct SET balance = balance + 5 WHERE id = {to}; COMMIT"
                ))
                .unwrap();
                i += 1;
            }
            i
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let db = db.clone();
            std::thread::spawn(move || {
                let c = db.connect().unwrap();
                let mut checks = 0;
                for _ in 0..60 {
                    assert_eq!(scalar(&c, "SELECT sum(balance) FROM acct"), 5000);
                    assert_eq!(scalar(&c, "SELECT count(*) FROM acct"), 50);
                    checks += 1;
                }
                checks
            })
        })
        .collect();
    for r in readers {
        assert_eq!(r.join().unwrap(), 60);
    }
    stop.store(true, Ordering::Relaxed);
    let transfers = writer.join().unwrap();
    assert!(transfers > 0);
    assert_eq!(scalar(&setup, "SELECT sum(balance) FROM acct"), 5000);
}

#[test]
fn a_stale_transaction_cannot_write_and_a_busy_one_times_out() {
    let db = Database::open_in_memory().unwrap();
    let a = db.connect().unwrap();
    let mut b = db.connect().unwrap();
    a.execute("CREATE TABLE t (id INT PRIMARY KEY)").unwrap();
    a.execute("BEGIN").unwrap();
    assert_eq!(scalar(&a, "SELECT count(*) FROM t"), 0);
    b.execute("INSERT INTO t VALUES (1)").unwrap();
    assert_eq!(
        scalar(&a, "SELECT count(*) FROM t"),
        0,
        "a reads its snapshot"
    );
    let e = a.execute("INSERT INTO t VALUES (2)").unwrap_err();
    assert!(e.to_string().contains("could not serialize"), "{e}");
    assert_eq!(e.sqlstate(), SqlState::SerializationFailure, "{e:?}");
    assert_eq!(e.sqlstate().code(), "40001");
    a.execute("ROLLBACK").unwrap();

    a.execute("BEGIN; INSERT INTO t VALUES (3)").unwrap();
    b.set_busy_timeout(Duration::from_millis(100));
    let e = b.execute("INSERT INTO t VALUES (4)").unwrap_err();
    assert!(e.to_string().contains("database is locked"), "{e}");
    assert_eq!(e.sqlstate().code(), "55P03", "{e:?}");
    assert_eq!(
        scalar(&b, "SELECT count(*) FROM t"),
        1,
        "readers are not blocked by the writer"
    );
    a.execute("COMMIT").unwrap();
    b.execute("INSERT INTO t VALUES (4)").unwrap();
    assert_eq!(scalar(&b, "SELECT count(*) FROM t"), 3);
}

#[test]
fn data_spanning_many_segments_persists_and_stays_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.db");
    {
        let db = Database::open(&path).unwrap();
        let c = db.connect().unwrap();
        c.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT)")
            .unwrap();
        c.execute("INSERT INTO t SELECT value, value * 2 FROM generate_series(1, 200000)")
            .unwrap();
        // Many small commits, then deletes, exercise compaction.
        for i in 0..40 {
            c.execute(&format!("INSERT INTO t VALUES ({}, 0)", 300000 + i))
                .unwrap();
        }
        c.execute("DELETE FROM t WHERE id % 2 = 0 AND id < 150000")
            .unwrap();
        c.execute("UPDATE t SET v = -1 WHERE id BETWEEN 199990 AND 200000")
            .unwrap();
    }
    let db = Database::open(&path).unwrap();
    let c = db.connect().unwrap();
    assert_eq!(scalar(&c, "SELECT count(*) FROM t"), 200000 + 40 - 74999);
    assert_eq!(scalar(&c, "SELECT v FROM t WHERE id = 123457"), 246914);
    assert_eq!(scalar(&c, "SELECT count(*) FROM t WHERE id = 123456"), 0);
    assert_eq!(scalar(&c, "SELECT v FROM t WHERE id = 200000"), -1);
    assert_eq!(scalar(&c, "SELECT v FROM t WHERE id = 300039"), 0);
    assert_eq!(scalar(&c, "SELECT count(*) FROM t WHERE v = -1"), 11);
    let e = c.execute("INSERT INTO t VALUES (300001, 1)").unwrap_err();
    assert!(e.to_string().contains("duplicate primary key"), "{e}");
    c.execute("INSERT INTO t VALUES (123456, 1)").unwrap();
}

#[test]
fn key_lookups_do_not_scan() {
    let db = Database::open_in_memory().unwrap();
    let c = db.connect().unwrap();
    c.execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
        .unwrap();
    let text = explain(&c, "SELECT v FROM t WHERE id = 7");
    assert!(text.contains("PhantomKeyLookupExec"), "{text}");
    assert!(!text.contains("PhantomScanExec"), "{text}");
    let text = explain(&c, "SELECT v FROM t WHERE v = 'x'");
    assert!(text.contains("PhantomScanExec"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_api_works_inside_a_runtime() {
    let db = Database::open_in_memory().unwrap();
    let c = db.connect().unwrap();
    assert!(
        c.execute("SELECT 1").is_err(),
        "the blocking call refuses to run inside a runtime"
    );
    let rs = c.execute_async("SELECT 40 + 2 AS x").await.unwrap();
    assert_eq!(rs.concat().unwrap().column(0).len(), 1);
}

/// Text loaded from a file takes about as much room in the database as in the file: segments
/// do not drag along the string buffers of the batches they were cut from.
#[test]
fn bulk_loaded_text_is_stored_compactly() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("rows.csv");
    let mut text = String::from("id,note\n");
    for i in 0..450_000 {
        text.push_str(&format!(
            "{i},note number {i} with some padding text to make it longer\n"
        ));
    }
    std::fs::write(&csv, &text).unwrap();
    let path = dir.path().join("load.db");
    {
        let db = Database::open(&path).unwrap();
        let c = db.connect().unwrap();
        c.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, note TEXT)")
            .unwrap();
        c.execute(&format!("COPY t FROM '{}'", csv.display()))
            .unwrap();
        assert_eq!(scalar(&c, "SELECT count(*) FROM t"), 450_000);
    }
    let csv_size = std::fs::metadata(&csv).unwrap().len();
    let db_size = std::fs::metadata(&path).unwrap().len();
    assert!(
        db_size < 4 * csv_size,
        "database {db_size} bytes for a {csv_size}-byte CSV"
    );
}

// ---------------------------------------------------------------------------------------------
// Storage engines (the built-in `memory` engine goes through the same SDK traits as plugins)
// ---------------------------------------------------------------------------------------------

#[test]
fn a_transaction_across_two_engines_rolls_back_and_commits_as_a_whole() {
    let db = Database::open_in_memory().unwrap();
    let c = db.connect().unwrap();
    c.execute("CREATE TABLE disk (id INT PRIMARY KEY, v INT)")
        .unwrap();
    c.execute("CREATE TABLE mem (id INT PRIMARY KEY, v INT) USING memory")
        .unwrap();
    c.execute("INSERT INTO disk VALUES (1, 10); INSERT INTO mem VALUES (1, 10)")
        .unwrap();

    c.execute(
        "BEGIN; UPDATE disk SET v = 20; UPDATE mem SET v = 20; INSERT INTO mem VALUES (2, 1)",
    )
    .unwrap();
    assert_eq!(
        scalar(&c, "SELECT sum(v) FROM mem"),
        21,
        "own writes are visible"
    );
    let other = db.connect().unwrap();
    assert_eq!(
        scalar(&other, "SELECT sum(v) FROM mem"),
        10,
        "uncommitted engine writes are invisible to others"
    );
    c.execute("ROLLBACK").unwrap();
    assert_eq!(scalar(&c, "SELECT sum(v) FROM disk"), 10);
    assert_eq!(scalar(&c, "SELECT sum(v) FROM mem"), 10);
    assert_eq!(scalar(&c, "SELECT count(*) FROM mem"), 1);

    c.execute("BEGIN; UPDATE disk SET v = 30; UPDATE mem SET v = 30; COMMIT")
        .unwrap();
    assert_eq!(scalar(&other, "SELECT sum(v) FROM disk"), 30);
    assert_eq!(scalar(&other, "SELECT sum(v) FROM mem"), 30);

    // A failing statement in autocommit mode changes neither engine.
    let err = c
        .execute("INSERT INTO mem VALUES (3, 1), (1, 2)")
        .unwrap_err();
    assert!(err.to_string().contains("duplicate primary key"), "{err}");
    assert_eq!(scalar(&c, "SELECT count(*) FROM mem"), 1);
}

#[test]
fn engine_tables_push_filters_down_and_show_it_in_explain() {
    let db = Database::open_in_memory().unwrap();
    let c = db.connect().unwrap();
    c.execute("CREATE TABLE m (id INT, v TEXT) USING memory")
        .unwrap();
    c.execute("INSERT INTO m VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        .unwrap();
    let text = explain(&c, "SELECT v FROM m WHERE id >= 2 AND v <> 'c'");
    assert!(
        text.contains("PhantomScanExec: table=m, engine=memory"),
        "{text}"
    );
    assert!(
        text.contains("filters=[") && text.contains("id >= Int32(2)"),
        "{text}"
    );
    // The memory engine applies filters exactly: no FilterExec above the scan.
    assert!(!text.contains("FilterExec"), "{text}");
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM m WHERE id >= 2 AND v <> 'c'"),
        1
    );
}

#[test]
fn engines_are_listed_and_unknown_engines_refused() {
    let db = Database::open_in_memory().unwrap();
    let c = db.connect().unwrap();
    let rs = c
        .execute("SELECT name FROM phantomdb_storage_engines() ORDER BY name")
        .unwrap()
        .concat()
        .unwrap();
    let names: Vec<&str> = (0..rs.num_rows())
        .map(|i| rs.column(0).as_string::<i32>().value(i))
        .collect();
    assert_eq!(names, vec!["memory", "redb"]);
    let err = c
        .execute("CREATE TABLE t (id INT) USING nosuch WITH (a = 'b')")
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("storage engine nosuch is not available"),
        "{err}"
    );
    let err = c
        .execute("CREATE TABLE t (id INT) WITH (a = 'b')")
        .unwrap_err();
    assert!(err.to_string().contains("takes no options"), "{err}");
    assert_eq!(scalar(&c, "SELECT count(*) FROM phantomdb_tables()"), 0);
}

#[test]
fn the_default_engine_is_a_database_setting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    {
        let db = Database::open(&path).unwrap();
        let c = db.connect().unwrap();
        c.execute("SET default_table_access_method = 'memory'")
            .unwrap();
        c.execute("CREATE TABLE t (id INT); CREATE TABLE d (id INT) USING redb")
            .unwrap();
        c.execute("INSERT INTO t VALUES (1); INSERT INTO d VALUES (1)")
            .unwrap();
    }
    let db = Database::open(&path).unwrap();
    let c = db.connect().unwrap();
    let rs = c
        .execute("SELECT name, engine FROM phantomdb_tables() ORDER BY name")
        .unwrap()
        .concat()
        .unwrap();
    let row = |i: usize| {
        (
            rs.column(0).as_string::<i32>().value(i).to_string(),
            rs.column(1).as_string::<i32>().value(i).to_string(),
        )
    };
    assert_eq!(row(0), ("d".into(), "redb".into()));
    assert_eq!(row(1), ("t".into(), "memory".into()));
    // Memory tables keep their definition but not their rows across a restart.
    assert_eq!(scalar(&c, "SELECT count(*) FROM t"), 0);
    assert_eq!(scalar(&c, "SELECT count(*) FROM d"), 1);
    c.execute("CREATE TABLE later (id INT)").unwrap();
    assert_eq!(
        scalar(
            &c,
            "SELECT count(*) FROM phantomdb_tables() WHERE name = 'later' AND engine = 'memory'"
        ),
        1
    );
}

/// Scans tell DataFusion their exact row counts (from segment headers, minus deleted rows,
/// plus the transaction's own pending rows): joins build on the smaller side, and the counts
/// `COUNT(*)` is then answered from are right.
#[test]
fn scans_report_exact_row_counts_to_the_planner() {
    let db = Database::open_in_memory().unwrap();
    let c = db.connect().unwrap();
    c.execute(
        "CREATE TABLE big (id INT, v INT); CREATE TABLE small (id INT, w INT);
         INSERT INTO big SELECT value, value AS v FROM generate_series(1, 100000);
         INSERT INTO small SELECT value, value AS w FROM generate_series(1, 10);
         DELETE FROM big WHERE id <= 1000",
    )
    .unwrap();
    let text = explain(
        &c,
        "SELECT sum(v + w) FROM big JOIN small ON big.id = small.id * 500",
    );
    let physical = &text[text.find("physical_plan").unwrap()..];
    let join = physical.find("HashJoinExec").expect("a hash join");
    let first_scan = &physical[join..][physical[join..].find("PhantomScanExec").unwrap()..];
    assert!(
        first_scan.starts_with("PhantomScanExec: table=small"),
        "the small table is the build side:\n{text}"
    );
    assert_eq!(scalar(&c, "SELECT count(*) FROM big"), 99_000);
    assert_eq!(
        scalar(
            &c,
            "SELECT sum(v + w) FROM big JOIN small ON big.id = small.id * 500"
        ),
        (3..=10).map(|i| i * 500 + i).sum::<i64>()
    );
    c.execute("BEGIN; INSERT INTO big VALUES (1, 1), (2, 2); DELETE FROM big WHERE id = 5000")
        .unwrap();
    assert_eq!(scalar(&c, "SELECT count(*) FROM big"), 99_001);
    c.execute("ROLLBACK").unwrap();
    assert_eq!(scalar(&c, "SELECT count(*) FROM big"), 99_000);
}

#[test]
fn errors_carry_their_sqlstate() {
    let db = Database::open_in_memory().unwrap();
    let c = db.connect().unwrap();
    let code = |sql: &str| c.execute(sql).unwrap_err().sqlstate().code();
    assert_eq!(code("SELECT * FROM missing"), "42P01");
    assert_eq!(code("INSERT INTO missing VALUES (1)"), "42P01");
    assert_eq!(code("SELEC 1"), "42601");
    assert_eq!(code("SELECT no_such_function(1)"), "42883");
    assert_eq!(code("SELECT 1 / 0"), "22012");
    assert_eq!(code("COMMIT"), "25P01");
    c.execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
        .unwrap();
    assert_eq!(code("CREATE TABLE t (id INT)"), "42P07");
    assert_eq!(code("SELECT nope FROM t"), "42703");
    assert_eq!(code("ALTER TABLE t RENAME COLUMN nope TO x"), "42703");
    assert_eq!(code("EXECUTE never_prepared(1)"), "26000");
    assert_eq!(code("SELECT current_setting('no_such_setting')"), "42704");
    let load = db
        .plugins()
        .load_plugin("/nonexistent/libplugin.so", "{}")
        .unwrap_err();
    assert_eq!(load.sqlstate(), SqlState::PluginLoadFailed, "{load:?}");
    assert_eq!(code("LOAD PLUGIN '/nonexistent/libplugin.so'"), "58000");
    // A statement that failed changed nothing, and the connection goes on.
    assert_eq!(scalar(&c, "SELECT count(*) FROM t"), 0);
}

#[test]
fn session_settings_set_show_reset() {
    let db = Database::open_in_memory().unwrap();
    let c = db.connect().unwrap();
    let text = |sql: &str| {
        let rs = c.execute(sql).unwrap();
        let b = rs.concat().unwrap();
        b.column(0).as_string::<i32>().value(0).to_string()
    };
    c.execute("SET app.tenant = '7'").unwrap();
    assert_eq!(text("SELECT current_setting('app.tenant')"), "7");
    assert_eq!(text("SHOW app.tenant"), "7");
    assert_eq!(c.setting("app.tenant").as_deref(), Some("7"));
    c.execute("SET app.tenant TO 'acme'").unwrap();
    assert_eq!(text("SELECT current_setting('app.tenant')"), "acme");
    // Settings are per connection.
    let other = db.connect().unwrap();
    assert_eq!(other.setting("app.tenant"), None);
    c.execute("RESET app.tenant").unwrap();
    assert_eq!(
        c.execute("SHOW app.tenant").unwrap_err().sqlstate().code(),
        "42704"
    );
    let missing_ok = c
        .execute("SELECT current_setting('app.tenant', true) IS NULL")
        .unwrap()
        .concat()
        .unwrap();
    assert!(missing_ok.column(0).as_boolean().value(0));
    // PhantomDB's own settings are checked; names without a dot must be known.
    assert_eq!(text("SHOW busy_timeout"), "5000");
    c.execute("SET busy_timeout = 250").unwrap();
    assert_eq!(text("SHOW busy_timeout"), "250");
    let bad = c.execute("SET busy_timeout = 'soon'").unwrap_err();
    assert_eq!(bad.sqlstate().code(), "22023", "{bad}");
    let unknown = c.execute("SET no_such_setting = 1").unwrap_err();
    assert_eq!(unknown.sqlstate().code(), "42704", "{unknown}");
    // DataFusion's options stay settable and readable.
    c.execute("SET datafusion.execution.batch_size = 1024")
        .unwrap();
    assert_eq!(
        text("SELECT current_setting('datafusion.execution.batch_size')"),
        "1024"
    );
    assert_eq!(text("SELECT current_user"), "phantomdb");
    assert_eq!(text("SELECT current_database()"), "memory");
    let alice = db.connect_as("alice").unwrap();
    let rs = alice
        .execute("SELECT current_user")
        .unwrap()
        .concat()
        .unwrap();
    assert_eq!(rs.column(0).as_string::<i32>().value(0), "alice");
    assert_eq!(text("SHOW default_table_access_method"), "redb");
    c.execute("SET app.region = 'eu'").unwrap();
    let listed = c
        .execute("SELECT value FROM phantomdb_settings() WHERE name = 'app.region'")
        .unwrap()
        .concat()
        .unwrap();
    assert_eq!(listed.column(0).as_string::<i32>().value(0), "eu");
}

#[test]
fn prepared_statements_from_rust() {
    use phantomdb::datafusion::common::ScalarValue;
    let db = Database::open_in_memory().unwrap();
    let c = db.connect().unwrap();
    c.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)")
        .unwrap();
    let insert = c.prepare("INSERT INTO t VALUES ($1, $2)").unwrap();
    for i in 0..10i64 {
        let n = insert
            .execute(&[ScalarValue::from(i), ScalarValue::from(format!("v{i}"))])
            .unwrap();
        assert_eq!(n, 1);
    }
    let dup = insert
        .execute(&[ScalarValue::from(3i64), ScalarValue::from("again")])
        .unwrap_err();
    assert_eq!(dup.sqlstate().code(), "23505");
    let get = c.prepare("SELECT v FROM t WHERE id = $1").unwrap();
    let rs = get
        .query(&[ScalarValue::from(7i64)])
        .unwrap()
        .concat()
        .unwrap();
    assert_eq!(rs.num_rows(), 1);
    let v = phantomdb::arrow::util::display::array_value_to_string(rs.column(0), 0).unwrap();
    assert_eq!(v, "v7");
    let range = c.prepare("SELECT count(*) FROM t WHERE id >= $1").unwrap();
    let rs = range
        .query(&[ScalarValue::from(4i64)])
        .unwrap()
        .concat()
        .unwrap();
    assert_eq!(rs.column(0).as_primitive::<Int64Type>().value(0), 6);
    assert!(c.prepare("SELECT * FROM missing WHERE id = $1").is_err());
    assert!(c.prepare("SELECT 1; SELECT 2").is_err());
}

#[test]
fn results_stream_in_bounded_memory() {
    let db = Database::open_in_memory().unwrap();
    let c = db.connect().unwrap();
    c.execute("CREATE TABLE t (id BIGINT PRIMARY KEY)").unwrap();
    c.execute("INSERT INTO t SELECT value FROM generate_series(1, 1000) AS g(value)")
        .unwrap();
    // A huge result: the first batches arrive without the rest being produced.
    let mut big = c
        .execute_stream("SELECT value FROM generate_series(1, 10000000000) AS g(value)")
        .unwrap();
    let first = big.next_batch().unwrap().unwrap();
    assert!(first.num_rows() > 0 && first.num_rows() <= 8192);
    // Several streams may be open on one connection, and writes go on meanwhile: an
    // autocommit stream keeps its snapshot.
    let mut snapshot = c.execute_stream("SELECT id FROM t ORDER BY id").unwrap();
    c.execute("INSERT INTO t VALUES (5000)").unwrap();
    let mut rows = 0;
    while let Some(b) = snapshot.next_batch() {
        rows += b.unwrap().num_rows();
    }
    assert_eq!(rows, 1000);
    drop(big);
    assert_eq!(scalar(&c, "SELECT count(*) FROM t"), 1001);
    // Statements that are not queries stream their (collected) result too.
    let mut ins = c.execute_stream("INSERT INTO t VALUES (6000)").unwrap();
    assert_eq!(ins.rows_affected(), Some(1));
    assert!(ins.next_batch().is_some());
}

#[test]
fn newer_file_format_is_refused_with_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    Database::open(&path)
        .unwrap()
        .execute("CREATE TABLE t (id INT)")
        .unwrap();
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn
                .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
                .unwrap();
            meta.insert("format_version", 99).unwrap();
        }
        txn.commit().unwrap();
    }
    let e = Database::open(&path).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("99") && msg.contains("format version 2"),
        "{msg}"
    );
    assert_eq!(e.sqlstate().code(), "0A000");
}

#[test]
fn a_database_file_from_an_earlier_release_opens() {
    // See tests/data/README.md: written by an earlier build, never regenerated.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("format-1.phantomdb");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/format-1.phantomdb"),
        &path,
    )
    .unwrap();
    let rows = |c: &phantomdb::Connection, sql: &str| -> Vec<String> {
        let b = c.execute(sql).unwrap().concat().unwrap();
        (0..b.num_rows())
            .map(|r| {
                (0..b.num_columns())
                    .map(|i| {
                        phantomdb::arrow::util::display::array_value_to_string(b.column(i), r)
                            .unwrap()
                    })
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect()
    };
    {
        let db = Database::open(&path).unwrap();
        let c = db.connect().unwrap();
        assert_eq!(
            rows(
                &c,
                "SELECT id, name, price, added, active, stock FROM items ORDER BY id"
            ),
            vec![
                "1|apple|1.5|2026-01-02|true|10",
                "2|pear|2.25|2026-02-03|false|10",
                "4|fig|0.0|||10",
            ]
        );
        assert_eq!(
            rows(
                &c,
                "SELECT count(*), sum(n), min(ts), max(ts) FROM events WHERE kind = 'a'"
            ),
            vec!["3000|30000006|2026-01-01T00:03:00|2026-01-07T22:39:00"]
        );
        assert_eq!(scalar(&c, "SELECT count(*) FROM events"), 9_000);
        assert_eq!(
            rows(&c, "SELECT name FROM cheap ORDER BY name"),
            vec!["apple", "fig"]
        );
        // The memory table's definition survived; its rows never do.
        assert_eq!(scalar(&c, "SELECT count(*) FROM scratch"), 0);
        // Key lookups, writes and constraints work on the old file.
        assert_eq!(
            rows(&c, "SELECT name FROM items WHERE id = 2"),
            vec!["pear"]
        );
        let dup = c
            .execute("INSERT INTO items (id, name) VALUES (1, 'x')")
            .unwrap_err();
        assert_eq!(dup.sqlstate().code(), "23505");
        c.execute("INSERT INTO items (id, name) VALUES (5, 'kiwi')")
            .unwrap();
    }
    let db = Database::open(&path).unwrap();
    let c = db.connect().unwrap();
    assert_eq!(scalar(&c, "SELECT count(*) FROM items"), 4);
}

/// A query that runs for minutes unless stopped: a sum over 40 billion joined rows.
const SLOW_SUM: &str = "SELECT sum(a.value * b.value) FROM generate_series(1, 200000) a, \
                        generate_series(1, 200000) b";

/// Cancels through `handle` every 20 ms until the returned flag is set (a request made before
/// the statement starts is ignored, so it is repeated).
fn keep_canceling(
    handle: phantomdb::CancelHandle,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let done = Arc::new(AtomicBool::new(false));
    let stop = done.clone();
    let thread = std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
            handle.cancel();
        }
    });
    (done, thread)
}

#[test]
fn a_statement_is_canceled_from_another_thread_and_changes_nothing() {
    let db = Database::open_in_memory().unwrap();
    let c = db.connect().unwrap();
    c.execute("CREATE TABLE t (v BIGINT)").unwrap();
    let handle = c.cancel_handle();
    // A request while nothing runs is ignored.
    handle.cancel();
    assert_eq!(scalar(&c, "SELECT 1"), 1);

    let (done, canceller) = keep_canceling(handle.clone());
    let err = c.execute(&format!("INSERT INTO t {SLOW_SUM}")).unwrap_err();
    let read_err = c.execute(SLOW_SUM).unwrap_err();
    done.store(true, Ordering::Relaxed);
    canceller.join().unwrap();
    for e in [&err, &read_err] {
        assert_eq!(e.sqlstate(), SqlState::QueryCanceled, "{e:?}");
        assert!(e.to_string().contains("user request"), "{e}");
    }
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM t"),
        0,
        "nothing was written"
    );

    // The same inside a transaction: the transaction goes on.
    c.execute("BEGIN; INSERT INTO t VALUES (1)").unwrap();
    let (done, canceller) = keep_canceling(handle);
    let err = c.execute(SLOW_SUM).unwrap_err();
    done.store(true, Ordering::Relaxed);
    canceller.join().unwrap();
    assert_eq!(err.sqlstate(), SqlState::QueryCanceled);
    c.execute("COMMIT").unwrap();
    assert_eq!(scalar(&c, "SELECT count(*) FROM t"), 1);
}

#[test]
fn statement_timeout_cancels_long_statements_and_streams() {
    let db = Database::open_in_memory().unwrap();
    let c = db.connect().unwrap();
    c.execute("SET statement_timeout = '150ms'").unwrap();
    assert_eq!(
        scalar(
            &c,
            "SELECT CAST(current_setting('statement_timeout') AS BIGINT)"
        ),
        150
    );
    let e = c.execute(SLOW_SUM).unwrap_err();
    assert_eq!(e.sqlstate().code(), "57014", "{e:?}");
    assert!(e.to_string().contains("statement timeout"), "{e}");
    // Quick statements are not affected.
    assert_eq!(scalar(&c, "SELECT 41 + 1"), 42);
    let bad = c.execute("SET statement_timeout = 'soon'").unwrap_err();
    assert_eq!(bad.sqlstate().code(), "22023", "{bad:?}");

    // A stream being read is canceled too, and ends.
    c.execute("RESET statement_timeout").unwrap();
    let mut stream = c
        .execute_stream(
            "SELECT a.value * b.value FROM generate_series(1, 200000) a, \
             generate_series(1, 200000) b",
        )
        .unwrap();
    assert!(stream.next_batch().unwrap().is_ok());
    c.cancel_handle().cancel();
    let e = stream.next_batch().unwrap().unwrap_err();
    assert_eq!(e.sqlstate(), SqlState::QueryCanceled, "{e:?}");
    assert!(stream.next_batch().is_none());
}

/// The `name=N` figures of every operator line of an `EXPLAIN ANALYZE`, summed.
fn metric_sum(plan: &str, name: &str) -> u64 {
    plan.match_indices(&format!("{name}="))
        .filter_map(|(at, m)| {
            let digits: String = plan[at + m.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse::<u64>().ok()
        })
        .sum()
}

#[test]
fn a_session_memory_limit_makes_sorts_spill_and_refuses_what_cannot() {
    let db = Database::open_in_memory().unwrap();
    let c = db.connect().unwrap();
    let sort = "SELECT value * 7919 % 1000003 AS v, repeat('x', 24) AS pad \
                FROM generate_series(1, 2000000) ORDER BY v";
    let analyze = |c: &phantomdb::Connection| explain(c, &format!("ANALYZE {sort}"));
    assert_eq!(
        metric_sum(&analyze(&c), "spill_count"),
        0,
        "no cap: no spill"
    );

    c.execute("SET memory_limit = '32MB'").unwrap();
    assert_eq!(c.setting("memory_limit").as_deref(), Some("33554432"));
    let plan = analyze(&c);
    assert!(metric_sum(&plan, "spill_count") > 0, "{plan}");
    // The spilled sort still answers right: every row, in order.
    let mut stream = c.execute_stream(sort).unwrap();
    let (mut rows, mut last) = (0usize, i64::MIN);
    while let Some(batch) = stream.next_batch() {
        let batch = batch.unwrap();
        let v = batch.column(0).as_primitive::<Int64Type>();
        for i in 0..v.len() {
            assert!(v.value(i) >= last, "out of order");
            last = v.value(i);
        }
        rows += batch.num_rows();
    }
    assert_eq!(rows, 2_000_000);

    // A hash join's build side cannot spill: a clear out-of-memory error, and the session
    // goes on.
    let e = c
        .execute(
            "SELECT count(*) FROM generate_series(1, 5000000) a \
             JOIN generate_series(1, 5000000) b ON a.value = b.value",
        )
        .unwrap_err();
    assert_eq!(e.sqlstate().code(), "53200", "{e:?}");
    assert!(e.to_string().contains("memory_limit"), "{e}");
    c.execute("RESET memory_limit").unwrap();
    assert_eq!(scalar(&c, "SELECT 6 * 7"), 42);
    let bad = c.execute("SET memory_limit = 'lots'").unwrap_err();
    assert_eq!(bad.sqlstate().code(), "22023", "{bad:?}");
}

#[test]
fn joins_build_on_the_smaller_series() {
    let db = Database::open_in_memory().unwrap();
    let c = db.connect().unwrap();
    // Collecting the 3M-row side would take ~24 MB; the 10-row side fits anywhere.
    c.execute("SET memory_limit = '16MB'").unwrap();
    assert_eq!(
        scalar(
            &c,
            "SELECT sum(a.value * b.value) FROM generate_series(1, 3000000) a \
             CROSS JOIN generate_series(1, 10) b"
        ),
        4_500_001_500_000 * 55
    );
    assert_eq!(scalar(&c, "SELECT count(*) FROM range(1, 10, 3)"), 3);
}
