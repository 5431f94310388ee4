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

#[test]
fn fuzz_corpus_and_crash_inputs_of_opening_a_file_replay_cleanly() {
    let (accepted, refused) = replay("open_file", harness::open_file);
    eprintln!("fuzz replay open_file: {accepted} opened and read, {refused} refused");
    assert!(accepted > 0 && refused > 0, "{accepted} {refused}");
}
