//! Checking a database for damage ([`Database::check`], [`Database::check_file`]) and
//! copying what is readable out of a damaged one ([`Database::recover`]).

use std::path::Path;

use super::Database;
use crate::engines::redb::{check_file_pages, CheckReport, Problem, RecoverReport, Store};
use crate::error::{Error, Result};

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

    /// Copies every readable table (definition and rows), view, role, setting and sequence
    /// of the database file at `path` (which no process may have open) into a new database
    /// file `out`, rebuilding its indexes. What could not be read is in
    /// [`RecoverReport::lost`]; one damaged segment loses only its own rows. Fails, leaving
    /// no file at `out`, when `out` exists or the database cannot be opened at all.
    pub async fn recover(path: impl AsRef<Path>, out: impl AsRef<Path>) -> Result<RecoverReport> {
        let (path, out) = (path.as_ref(), out.as_ref());
        if !path.is_file() {
            return Err(Error::Storage(format!("{} is not a file", path.display())));
        }
        if out.exists() {
            return Err(Error::Storage(format!(
                "{} already exists; recover into a new file",
                out.display()
            )));
        }
        let source = Store::open(path)?;
        let result = async {
            let target = Store::open(out)?;
            source.recover_into(&target).await
        }
        .await;
        if result.is_err() {
            let _ = std::fs::remove_file(out);
        }
        result
    }
}
