//! Secondary indexes through the embedding API: `REINDEX` rebuilds an index from its table
//! after its entries were lost, and `nextval` takes values in the writing transaction.

use phantomdb::{Database, SqlState};
use redb::{TableDefinition, TableHandle};

use super::scalar;

/// Deletes every entry of the one secondary index (`ix_<id>`) in the database file at `path`,
/// behind PhantomDB's back.
fn empty_the_index(path: &std::path::Path) {
    let db = redb::Database::open(path).unwrap();
    let w = db.begin_write().unwrap();
    let names: Vec<String> = w
        .list_tables()
        .unwrap()
        .map(|h| h.name().to_string())
        .filter(|n| n.starts_with("ix_"))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let def: TableDefinition<&[u8], ()> = TableDefinition::new(&names[0]);
    {
        let mut table = w.open_table(def).unwrap();
        table.retain(|_, _| false).unwrap();
    }
    w.commit().unwrap();
}

#[test]
fn reindex_rebuilds_an_index_that_lost_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ix.db");
    {
        let db = Database::open(&path).unwrap();
        let c = db.connect().unwrap();
        c.execute("CREATE TABLE t (id INT PRIMARY KEY, grp INT)")
            .unwrap();
        c.execute("CREATE INDEX t_grp ON t (grp)").unwrap();
        c.execute("INSERT INTO t SELECT value, value % 10 FROM generate_series(1, 1000)")
            .unwrap();
    }
    empty_the_index(&path);
    let db = Database::open(&path).unwrap();
    let c = db.connect().unwrap();
    // The lookup reads the (now empty) index; a scan still finds the rows.
    assert_eq!(scalar(&c, "SELECT count(*) FROM t WHERE grp = 3"), 0);
    assert_eq!(scalar(&c, "SELECT count(*) FROM t WHERE grp + 0 = 3"), 100);
    // A REINDEX inside a transaction that rolls back leaves the index as it was.
    c.execute("BEGIN").unwrap();
    c.execute("REINDEX INDEX t_grp").unwrap();
    assert_eq!(scalar(&c, "SELECT count(*) FROM t WHERE grp = 3"), 100);
    c.execute("ROLLBACK").unwrap();
    assert_eq!(scalar(&c, "SELECT count(*) FROM t WHERE grp = 3"), 0);
    c.execute("REINDEX TABLE t").unwrap();
    assert_eq!(scalar(&c, "SELECT count(*) FROM t WHERE grp = 3"), 100);
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM t WHERE grp BETWEEN 2 AND 4"),
        300
    );
    drop(c);
    drop(db);
    // The rebuilt entries are in the file.
    let db = Database::open(&path).unwrap();
    let c = db.connect().unwrap();
    assert_eq!(scalar(&c, "SELECT count(*) FROM t WHERE grp = 3"), 100);
}

#[test]
fn nextval_values_are_unique_across_connections_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seq.db");
    let mut seen = std::collections::BTreeSet::new();
    {
        let db = Database::open(&path).unwrap();
        let a = db.connect().unwrap();
        let b = db.connect().unwrap();
        a.execute("CREATE TABLE t (id BIGSERIAL PRIMARY KEY, v TEXT)")
            .unwrap();
        for i in 0..20 {
            let c = if i % 2 == 0 { &a } else { &b };
            assert!(seen.insert(scalar(c, "SELECT nextval('t_id_seq')")));
            c.execute("INSERT INTO t (v) VALUES ('x')").unwrap();
            assert!(seen.insert(scalar(c, "SELECT lastval()")));
        }
        // b's currval is b's own last value, not a's.
        let b_last = scalar(&b, "SELECT currval('t_id_seq')");
        a.execute("INSERT INTO t (v) VALUES ('y')").unwrap();
        assert_eq!(scalar(&b, "SELECT currval('t_id_seq')"), b_last);
    }
    let db = Database::open(&path).unwrap();
    let c = db.connect().unwrap();
    let after = scalar(&c, "SELECT nextval('t_id_seq')");
    assert!(after > *seen.last().unwrap(), "{after} after restart");
    // A role without INSERT or UPDATE on the table may not advance its sequence.
    c.execute("CREATE ROLE reader LOGIN").unwrap();
    c.execute("GRANT SELECT ON t TO reader").unwrap();
    let reader = db.connect_as("reader").unwrap();
    let err = reader.execute("SELECT nextval('t_id_seq')").unwrap_err();
    assert_eq!(err.sqlstate(), SqlState::InsufficientPrivilege, "{err}");
    c.execute("GRANT UPDATE ON t TO reader").unwrap();
    assert_eq!(scalar(&reader, "SELECT nextval('t_id_seq')"), after + 1);
}
