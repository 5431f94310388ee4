//! Result columns with the same name (`SELECT a, a`), named as PostgreSQL and DuckDB name
//! them, through every way results leave the library; and a reference to such a name from a
//! wrapping query fails as PostgreSQL's does (42702).

use phantomdb::{Database, SqlState};

fn names(schema: &phantomdb::arrow::datatypes::SchemaRef) -> Vec<String> {
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

fn table() -> (Database, phantomdb::Connection) {
    let db = Database::open_in_memory().unwrap();
    let c = db.connect().unwrap();
    c.execute("CREATE TABLE tab0 (col1 INT, col2 INT); INSERT INTO tab0 VALUES (1, 10), (2, NULL)")
        .unwrap();
    (db, c)
}

#[test]
fn duplicate_result_names_are_kept() {
    let (_db, c) = table();
    for (sql, expected) in [
        ("SELECT col1, col1 FROM tab0", vec!["col1", "col1"]),
        ("SELECT col2, -col2 AS col2 FROM tab0", vec!["col2", "col2"]),
        (
            "SELECT count(*), count(*) FROM tab0",
            vec!["count(*)", "count(*)"],
        ),
        (
            "SELECT (SELECT 1), (SELECT 1)",
            vec!["(SELECT 1)", "(SELECT 1)"],
        ),
        (
            "SELECT * FROM (SELECT col1, col1 FROM tab0) AS s",
            vec!["col1", "col1"],
        ),
        (
            "SELECT col1 AS x, col2 AS x, col1 AS y FROM tab0",
            vec!["x", "x", "y"],
        ),
    ] {
        let rs = c.execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(names(&rs.schema), expected, "{sql}");
        for batch in &rs.batches {
            assert_eq!(names(&batch.schema()), expected, "{sql} (batches)");
        }
        let mut stream = c.execute_stream(sql).unwrap();
        assert_eq!(names(stream.schema()), expected, "{sql} (stream)");
        while let Some(batch) = stream.next_batch() {
            assert_eq!(
                names(&batch.unwrap().schema()),
                expected,
                "{sql} (streamed)"
            );
        }
        let prepared = c.prepare(sql).unwrap();
        assert_eq!(
            names(&prepared.description().schema),
            expected,
            "{sql} (prepared)"
        );
        assert_eq!(
            names(&prepared.query(&[]).unwrap().schema),
            expected,
            "{sql} (executed)"
        );
    }
}

#[test]
fn a_reference_to_a_duplicate_name_is_ambiguous() {
    let (_db, c) = table();
    for sql in [
        "SELECT s.col1 FROM (SELECT col1, col1 FROM tab0) AS s",
        "SELECT col1 FROM (SELECT col1, col2 AS col1 FROM tab0) AS s",
        "SELECT col1 AS c, col2 AS c FROM tab0 ORDER BY c",
    ] {
        let e = c.execute(sql).expect_err(sql);
        assert_eq!(e.sqlstate(), SqlState::AmbiguousColumn, "{sql}: {e}");
        assert!(e.to_string().contains("is ambiguous"), "{sql}: {e}");
    }
    // A stored relation still may not have two columns of one name.
    assert!(c
        .execute("CREATE TABLE d AS SELECT col1, col1 FROM tab0")
        .is_err());
}

#[test]
fn a_second_row_of_a_scalar_subquery_is_a_cardinality_violation() {
    let (_db, c) = table();
    for sql in [
        "SELECT col1, (SELECT x.col1 FROM tab0 AS x WHERE x.col1 >= tab0.col1) FROM tab0",
        "SELECT (SELECT col1 FROM tab0)",
    ] {
        let e = c.execute(sql).expect_err(sql);
        assert_eq!(e.sqlstate(), SqlState::CardinalityViolation, "{sql}: {e}");
        assert_eq!(
            e.to_string(),
            "more than one row returned by a subquery used as an expression"
        );
    }
}
