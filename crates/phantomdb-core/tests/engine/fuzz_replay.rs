//! Replays the checked-in fuzzing corpora and crash inputs (`fuzz/corpus/<target>/`,
//! `fuzz/artifacts/<target>/`) through the fuzz targets' own harness, on stable Rust: every
//! input must come back (accepted or refused with an error), never panic.

use std::path::{Path, PathBuf};

#[path = "../../../../fuzz/src/harness.rs"]
mod harness;

use harness::Outcome;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Every file of `fuzz/corpus/<target>` and `fuzz/artifacts/<target>`, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for kind in ["corpus", "artifacts"] {
        let dir = fuzz_dir().join(kind).join(target);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8]) -> Outcome) -> (usize, usize) {
    let (mut accepted, mut refused) = (0, 0);
    for path in inputs(target) {
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&data))
            .unwrap_or_else(|_| panic!("{target}: {} panicked", path.display()));
        match outcome {
            Outcome::Accepted => accepted += 1,
            Outcome::Refused => refused += 1,
        }
    }
    (accepted, refused)
}

#[test]
fn fuzz_corpus_and_crash_inputs_of_the_sql_front_end_replay_cleanly() {
    let (accepted, refused) = replay("sql", harness::sql);
    eprintln!("fuzz replay sql: {accepted} planned, {refused} refused");
    assert!(accepted > 10 && refused > 0, "{accepted} {refused}");
}

/// A small valid database file (tables, an index, a view), built here rather than checked
/// in: its bytes depend on the engine's format, and `*.db` files are not committed.
fn valid_database_file() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.db");
    {
        let db = phantomdb::Database::open(&path).unwrap();
        let conn = db.connect().unwrap();
        conn.execute(
            "CREATE TABLE t (id INT PRIMARY KEY, v TEXT);
             CREATE INDEX t_v ON t (v);
             INSERT INTO t SELECT value, 'v' || value FROM generate_series(1, 500);
             CREATE VIEW w AS SELECT id FROM t WHERE id > 10;",
        )
        .unwrap();
    }
    std::fs::read(&path).unwrap()
}

#[test]
fn fuzz_corpus_and_crash_inputs_of_opening_a_file_replay_cleanly() {
    let (accepted, refused) = replay("open_file", harness::open_file);
    eprintln!("fuzz replay open_file: {accepted} opened and read, {refused} refused");
    assert!(
        refused > 0,
        "the crash inputs are refused: {accepted} {refused}"
    );

    // The seed a fuzzing run starts from, and damaged copies of it: truncated, and with one
    // byte flipped every 4 KiB page. The intact file must open and read; no copy may panic.
    let seed = valid_database_file();
    assert_eq!(harness::open_file(&seed), Outcome::Accepted);
    let mut damaged = vec![
        seed[..seed.len() / 2].to_vec(),
        seed[..4096.min(seed.len())].to_vec(),
    ];
    for offset in (0..seed.len()).step_by(4096).map(|page| page + 97) {
        let mut copy = seed.clone();
        if let Some(byte) = copy.get_mut(offset) {
            *byte ^= 0x5a;
            damaged.push(copy);
        }
    }
    for (i, data) in damaged.iter().enumerate() {
        std::panic::catch_unwind(|| harness::open_file(data))
            .unwrap_or_else(|_| panic!("damaged copy {i} of the seed panicked"));
    }
}
