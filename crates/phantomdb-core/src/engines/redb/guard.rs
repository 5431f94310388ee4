//! The panic guard around storage calls.
//!
//! redb trusts the pages it reads: a damaged page can make it panic (an index out of
//! bounds in a bitmap or a B-tree node), and so can a decoder handed damaged bytes. Every
//! call into storage from the table engine runs under [`guarded`]: a panic becomes a
//! `XX001` error naming what was being read, and the database is marked *suspect*: it stays
//! readable, but refuses writes until it is opened again ([`Store::check_trusted`]).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;

use super::store::Store;
use crate::error::{Error, Result};

/// Runs `f`; a panic inside it becomes [`Error::Corrupt`] about `what` and marks the
/// database suspect through `mark_suspect`.
pub(super) fn guarded<T>(
    what: impl FnOnce() -> String,
    mark_suspect: impl FnOnce(),
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => {
            mark_suspect();
            let what = what();
            let message = panic_message(panic.as_ref());
            tracing::error!("storage panicked while reading {what}: {message}");
            Err(Error::Corrupt(format!(
                "{what}: the storage layer failed ({message}); the database file is damaged, \
                 and is read-only until it is opened again (run `phantomdb check`)"
            )))
        }
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

impl Store {
    /// Marks the database suspect: a storage call panicked.
    pub(super) fn mark_suspect(&self) {
        self.suspect.store(true, Ordering::SeqCst);
    }

    /// Fails with `XX001` once a storage call panicked: nothing is written to a database
    /// that may be damaged until it is opened again.
    pub(super) fn check_trusted(&self) -> Result<()> {
        if self.suspect.load(Ordering::SeqCst) {
            return Err(Error::Corrupt(
                "the database is read-only: reading it failed in the storage layer earlier \
                 (damaged file); open it again after `phantomdb check`, or copy what is \
                 readable with `phantomdb recover`"
                    .into(),
            ));
        }
        Ok(())
    }
}
