//! I/O errors injected into the database file's storage ([`phantomdb::IoFaults`]): a write
//! or fsync failing at every point of a transaction. The statement hit fails with `58030`
//! and a clear message, nothing panics, and once the database is opened again it checks
//! clean and holds either all of the transaction or none of it.

use std::path::Path;

use phantomdb::{Connection, Database, IoFaults, SqlState};

use super::scalar;

const ROWS: i64 = 2000;

/// Transaction `b`: a batch of rows (primary key and secondary index), deletions from the
/// previous batch, and the progress row.
fn transaction(b: i64) -> Vec<String> {
    vec![
        "BEGIN".into(),
        format!(
            "INSERT INTO t SELECT value, {b}, 'v' || value FROM generate_series({}, {})",
            b * ROWS,
            b * ROWS + ROWS - 1
        ),
        format!("DELETE FROM t WHERE batch = {} AND id % 5 = 0", b - 1),
        format!("UPDATE progress SET n = {b}"),
        "COMMIT".into(),
    ]
}

/// Runs transaction `b`; the first error, rolled back.
fn run(c: &Connection, b: i64) -> Result<(), phantomdb::Error> {
    for sql in transaction(b) {
        if let Err(e) = c.execute(&sql) {
            let _ = c.execute("ROLLBACK");
            return Err(e);
        }
    }
    Ok(())
}

/// `(count, sum of ids)` of table t after transactions 1..=n.
fn expected(n: i64) -> (i64, i64) {
    let (mut count, mut sum) = (0, 0);
    for b in 1..=n {
        for id in b * ROWS..b * ROWS + ROWS {
            if b == n || id % 5 != 0 {
                count += 1;
                sum += id;
            }
        }
    }
    (count, sum)
}

/// Opens the file normally: it checks clean, and holds exactly transactions 1..=n for the
/// n in its progress row. Returns n.
fn verify(path: &Path) -> i64 {
    let db = Database::open(path).unwrap();
    let report = db.check();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let c = db.connect().unwrap();
    let n = scalar(&c, "SELECT n FROM progress");
    let (count, sum) = expected(n);
    assert_eq!(scalar(&c, "SELECT count(*) FROM t"), count, "progress {n}");
    assert_eq!(scalar(&c, "SELECT sum(id) FROM t"), sum, "progress {n}");
    assert_eq!(
        scalar(&c, &format!("SELECT count(*) FROM t WHERE batch = {n}")),
        if n == 0 { 0 } else { ROWS }
    );
    n
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    Write,
    Sync,
}

#[test]
fn io_errors_at_every_point_of_a_transaction_fail_it_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("faults.db");
    {
        let db = Database::open(&path).unwrap();
        let c = db.connect().unwrap();
        for sql in [
            "CREATE TABLE t (id BIGINT PRIMARY KEY, batch BIGINT NOT NULL, v TEXT)",
            "CREATE INDEX t_batch ON t (batch)",
            "CREATE TABLE progress (n BIGINT)",
            "INSERT INTO progress VALUES (0)",
        ] {
            c.execute(sql).unwrap();
        }
    }
    // How many writes and syncs one transaction makes, without faults.
    let (writes, syncs) = {
        let faults = IoFaults::new();
        let db = Database::open_with_io_faults(&path, faults.clone()).unwrap();
        let (w, s) = (faults.writes(), faults.syncs());
        run(&db.connect().unwrap(), 1).unwrap();
        (faults.writes() - w, faults.syncs() - s)
    };
    assert!(writes > 0 && syncs > 0, "{writes} writes, {syncs} syncs");
    let mut committed = verify(&path);
    assert_eq!(committed, 1);

    let points: Vec<(Fault, u64)> = (0..writes.min(40))
        .map(|p| (Fault::Write, p * writes / writes.min(40)))
        .chain((0..syncs).map(|p| (Fault::Sync, p)))
        .collect();
    let (mut failed, mut injected) = (0, 0);
    for &(fault, point) in &points {
        let b = committed + 1;
        let faults = IoFaults::new();
        let outcome = {
            let db = Database::open_with_io_faults(&path, faults.clone()).unwrap();
            match fault {
                Fault::Write => faults.fail_writes_after(point),
                Fault::Sync => faults.fail_syncs_after(point),
            }
            let c = db.connect().unwrap();
            let outcome = run(&c, b);
            if let Err(e) = &outcome {
                assert_eq!(
                    e.sqlstate(),
                    SqlState::IoError,
                    "{fault:?} fault at {point}: {e}"
                );
                assert!(e.to_string().contains("no space left"), "{e}");
                // The connection answers (reads, or a clear error) and never panics.
                faults.clear();
                if let Err(e) = c.execute("SELECT count(*) FROM t") {
                    assert_eq!(e.sqlstate(), SqlState::IoError, "{e}");
                }
                if let Err(e) = c.execute("INSERT INTO progress VALUES (-1)") {
                    assert_eq!(e.sqlstate(), SqlState::IoError, "{e}");
                } else {
                    c.execute("DELETE FROM progress WHERE n = -1").unwrap();
                }
            }
            outcome
        };
        injected += faults.injected();
        let n = verify(&path);
        match outcome {
            Ok(()) => assert_eq!(n, b, "{fault:?} fault at {point}: a commit is missing"),
            Err(_) => {
                failed += 1;
                // A failed fsync may leave the commit written: then it is whole.
                assert!(
                    n == b - 1 || n == b,
                    "{fault:?} fault at {point}: progress {n}"
                );
            }
        }
        committed = n;
    }
    assert!(failed > 0, "no injected fault failed a statement");
    println!(
        "I/O faults: {} points ({writes} writes, {syncs} syncs per transaction), {failed} \
         transactions failed, {injected} calls failed, {committed} transactions committed",
        points.len()
    );
}
