//! Damaged index entries (issue #21): entries of the primary-key index and of a secondary
//! index removed, pointed at the wrong row or given the wrong values behind PhantomDB's back.
//! `check` names each, answers never include a row that does not match, and `REINDEX` (the
//! secondary index) and `recover` (every index) repair them.

use phantomdb::{Database, Problem};
use redb::{ReadableDatabase, ReadableTable, TableDefinition, TableHandle};

use super::super::scalar;

const ROWS: i64 = 5000;
/// Rows left after the DELETE (ids divisible by 97 go; no row with n = 0 is among them).
const LIVE: i64 = ROWS - ROWS / 97;

fn make(path: &std::path::Path) {
    let db = Database::open(path).unwrap();
    let c = db.connect().unwrap();
    c.execute(&format!(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT, n BIGINT);
         CREATE INDEX t_n ON t (n);
         INSERT INTO t SELECT value, 'v' || value, value % 100 FROM generate_series(1, {ROWS}) AS g(value);
         DELETE FROM t WHERE id % 97 = 0;"
    ))
    .unwrap();
}

/// The names of the redb tables starting with `prefix` (`pk_`, `ix_`).
fn tables_named(db: &redb::Database, prefix: &str) -> Vec<String> {
    let txn = db.begin_read().unwrap();
    txn.list_tables()
        .unwrap()
        .map(|h| h.name().to_string())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// Damages the file: in the secondary index, one entry removed and one entry claiming a
/// row has another value; in the primary-key index, one key removed and one pointed at
/// another row. Returns (the n whose row lost its entry, the key removed from the pk index).
fn damage(path: &std::path::Path) -> (i64, i64) {
    let db = redb::Database::open(path).unwrap();
    let ix = tables_named(&db, "ix_");
    let pk = tables_named(&db, "pk_");
    assert_eq!((ix.len(), pk.len()), (1, 1), "{ix:?} {pk:?}");
    let txn = db.begin_write().unwrap();
    {
        let def: TableDefinition<&[u8], ()> = TableDefinition::new(&ix[0]);
        let mut t = txn.open_table(def).unwrap();
        let entries: Vec<Vec<u8>> = t
            .iter()
            .unwrap()
            .map(|e| e.unwrap().0.value().to_vec())
            .collect();
        assert_eq!(entries.len() as i64, LIVE);
        // Entries sort by value (n = 0, 1, ...): the first belongs to a row with n = 0,
        // the last to a row with n = 99.
        let first = entries[0].clone();
        let last = entries[entries.len() - 1].clone();
        t.remove(first.as_slice()).unwrap();
        // The last row's id with the first row's value: a row "with n = 0" that has 99.
        let mut bogus = first[..first.len() - 8].to_vec();
        bogus.extend_from_slice(&last[last.len() - 8..]);
        t.insert(bogus.as_slice(), ()).unwrap();
    }
    let removed_key = {
        let def: TableDefinition<&[u8], u64> = TableDefinition::new(&pk[0]);
        let mut t = txn.open_table(def).unwrap();
        let entries: Vec<(Vec<u8>, u64)> = t
            .iter()
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.value().to_vec(), v.value())
            })
            .collect();
        let (k0, _) = entries[0].clone();
        let (k1, _) = entries[1].clone();
        let (_, other) = entries[2];
        t.remove(k0.as_slice()).unwrap();
        t.insert(k1.as_slice(), other).unwrap();
        entries.len()
    };
    txn.commit().unwrap();
    assert_eq!(removed_key as i64, LIVE);
    // The first keys are ids 1 (removed) and 2 (pointed at id 3's row).
    (0, 1)
}

fn problems_of<'a>(problems: &'a [Problem], object: &str) -> Vec<&'a Problem> {
    problems.iter().filter(|p| p.object == object).collect()
}

#[test]
fn check_names_damaged_index_entries_and_reindex_and_recover_repair_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ix.db");
    make(&path);
    assert!(Database::check_file(&path).problems.is_empty());
    let (n_lost, key_lost) = damage(&path);
    let copy = dir.path().join("before-reindex.db");
    std::fs::copy(&path, &copy).unwrap();

    let report = Database::check_file(&path);
    let ix = problems_of(&report.problems, "index \"t_n\" of table \"t\"");
    assert!(
        ix.iter()
            .any(|p| p.detail.contains("is missing from the index"))
            && ix
                .iter()
                .any(|p| p.detail.contains("does not match a live row")),
        "{:?}",
        report.problems
    );
    let pk = problems_of(&report.problems, "primary-key index of table \"t\"");
    assert!(
        pk.iter()
            .any(|p| p.detail.contains("missing from the index"))
            && pk.iter().any(|p| p.detail.contains("indexed as row")),
        "{:?}",
        report.problems
    );
    // While it is open, phantomdb_check() reports the same index problems.
    {
        let db = Database::open(&path).unwrap();
        let c = db.connect().unwrap();
        assert!(
            scalar(
                &c,
                "SELECT count(*) FROM phantomdb_check() WHERE object = 'index \"t_n\" of table \"t\"'"
            ) >= 2
        );
        // A bogus entry never yields a row that does not match: the row it points at has
        // n = 99 and is filtered out of the n = 0 answer.
        let ids = c
            .execute(&format!("SELECT id FROM t WHERE n = {n_lost} ORDER BY id"))
            .unwrap()
            .concat()
            .unwrap();
        assert_eq!(
            ids.num_rows() as i64,
            ROWS / 100 - 1,
            "the row whose entry was removed is not found through the index"
        );
        assert_eq!(
            scalar(
                &c,
                &format!("SELECT count(*) FROM t WHERE n = {n_lost} AND id % 100 <> 0")
            ),
            0
        );
        // REINDEX rebuilds the secondary index from the rows.
        c.execute("REINDEX TABLE t").unwrap();
        assert_eq!(
            scalar(&c, &format!("SELECT count(*) FROM t WHERE n = {n_lost}")),
            ROWS / 100
        );
    }
    let report = Database::check_file(&path);
    assert!(
        problems_of(&report.problems, "index \"t_n\" of table \"t\"").is_empty(),
        "{:?}",
        report.problems
    );

    // recover rebuilds every index (the primary key's too) from the rows of the damaged copy.
    let out = dir.path().join("recovered.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let recovered = rt.block_on(Database::recover(&copy, &out)).unwrap();
    assert_eq!(recovered.rows as i64, LIVE);
    assert!(
        Database::check_file(&out).problems.is_empty(),
        "{:?}",
        Database::check_file(&out).problems
    );
    let db = Database::open(&out).unwrap();
    let c = db.connect().unwrap();
    assert_eq!(
        scalar(&c, &format!("SELECT count(*) FROM t WHERE id = {key_lost}")),
        1
    );
    assert_eq!(
        scalar(&c, &format!("SELECT count(*) FROM t WHERE n = {n_lost}")),
        ROWS / 100
    );
    assert_eq!(scalar(&c, "SELECT n FROM t WHERE id = 2"), 2);
}
