//! Checking a database for damage ([`Database::check`], [`Database::check_file`]).

use std::path::Path;

use super::Database;
use crate::engines::redb::{check_file_pages, CheckReport, Problem, Store};

impl Database {
    /// Reads and verifies every catalog entry, role, segment, deletion bitmap and
    /// primary-key index entry of the latest commit. Other connections may keep working
    /// meanwhile. What could not be read is in [`CheckReport::problems`].
    pub fn check(&self) -> CheckReport {
        self.shared.store.check()
    }

    /// Checks the database file at `path`, which no process may have open: redb's own
    /// integrity check of every page first, then [`Database::check`]. A file that cannot be
    /// opened at all is one problem.
    pub fn check_file(path: impl AsRef<Path>) -> CheckReport {
        let path = path.as_ref();
        if !path.is_file() {
            return CheckReport {
                problems: vec![Problem::new(
                    "file",
                    format!("{} is not a file", path.display()),
                )],
                ..CheckReport::default()
            };
        }
        let mut problems = check_file_pages(path);
        let mut report = match Store::open(path) {
            Ok(store) => store.check(),
            Err(e) => CheckReport {
                problems: vec![Problem::new("file", e)],
                ..CheckReport::default()
            },
        };
        problems.append(&mut report.problems);
        report.problems = problems;
        report
    }
}
