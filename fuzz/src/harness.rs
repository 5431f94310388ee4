//! What the fuzz targets run, shared with the stable replay test
//! (`crates/phantomdb-core/tests/engine/fuzz_replay.rs` includes this file), so a checked-in
//! input takes the same code path on stable Rust as under libFuzzer.
//!
//! Both functions must return for every input: an error is a fine outcome, a panic, abort or
//! hang is a finding.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use phantomdb::{Connection, Database};

/// Tables, an index and a view for fuzzed statements to name.
const FIXTURE: &str = "CREATE TABLE t (id INT PRIMARY KEY, v TEXT, n DOUBLE, d DATE);
    CREATE INDEX t_v ON t (v);
    INSERT INTO t VALUES (1, 'a', 1.5, DATE '2024-01-01'), (2, NULL, NULL, NULL);
    CREATE TABLE u (k BIGINT, t TEXT UNIQUE);
    CREATE VIEW w AS SELECT id, v FROM t WHERE id > 0;";

thread_local! {
    static SQL_DB: RefCell<Option<(Database, Connection)>> = const { RefCell::new(None) };
}

/// How an input ended (for the replay test's summary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted: planned, or opened and read.
    Accepted,
    /// Refused with an error.
    Refused,
}

/// SQL front end: `data` as SQL text (invalid UTF-8 replaced), parsed and planned by
/// `Connection::prepare` against a small fixture database. Nothing is executed.
pub fn sql(data: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(data);
    SQL_DB.with(|cell| {
        let mut slot = cell.borrow_mut();
        let (_, conn) = slot.get_or_insert_with(|| {
            let db = Database::open_in_memory().expect("an in-memory database opens");
            let conn = db.connect().expect("a connection opens");
            conn.execute(FIXTURE).expect("the fixture is created");
            (db, conn)
        });
        // The public parser on its own (the shell and the server call it first).
        let _ = phantomdb::parse(&text);
        let outcome = match conn.prepare(&text) {
            Ok(statement) => {
                let _ = statement.description();
                Outcome::Accepted
            }
            Err(e) => {
                let _ = e.sqlstate();
                let _ = e.to_string();
                Outcome::Refused
            }
        };
        outcome
    })
}

fn scratch_file() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "phantomdb-fuzz-{}-{}.db",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Opening a database file: `data` written to a file, opened, every table read (up to a
/// bound), `phantomdb_check()` run through SQL, and the whole-file check run after closing.
pub fn open_file(data: &[u8]) -> Outcome {
    let path = scratch_file();
    if std::fs::write(&path, data).is_err() {
        return Outcome::Refused;
    }
    let outcome = read_all(&path);
    let _ = Database::check_file(&path);
    let _ = std::fs::remove_file(&path);
    outcome
}

fn read_all(path: &std::path::Path) -> Outcome {
    let Ok(db) = Database::open(path) else {
        return Outcome::Refused;
    };
    let Ok(conn) = db.connect() else {
        return Outcome::Refused;
    };
    let mut outcome = Outcome::Accepted;
    let names: Vec<String> = match conn
        .execute("SELECT name FROM phantomdb_tables() ORDER BY name")
        .and_then(|rs| rs.concat())
    {
        Ok(batch) => {
            let col = batch.column(0);
            let strings =
                phantomdb::arrow::compute::cast(col, &phantomdb::arrow::datatypes::DataType::Utf8);
            match strings {
                Ok(a) => {
                    use phantomdb::arrow::array::{Array, AsArray};
                    let a = a.as_string::<i32>();
                    (0..a.len())
                        .filter(|&i| a.is_valid(i))
                        .map(|i| a.value(i).to_string())
                        .collect()
                }
                Err(_) => Vec::new(),
            }
        }
        Err(_) => {
            outcome = Outcome::Refused;
            Vec::new()
        }
    };
    for name in names.iter().take(16) {
        let quoted = name.replace('"', "\"\"");
        for sql in [
            format!("SELECT * FROM \"{quoted}\" LIMIT 10000"),
            format!("SELECT count(*) FROM \"{quoted}\""),
        ] {
            if conn.execute(&sql).and_then(|rs| rs.concat()).is_err() {
                outcome = Outcome::Refused;
            }
        }
    }
    if conn
        .execute("SELECT * FROM phantomdb_check()")
        .and_then(|rs| rs.concat())
        .is_err()
    {
        outcome = Outcome::Refused;
    }
    outcome
}
