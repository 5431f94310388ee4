//! [`ServerError`]: why the server could not start or stopped.

use thiserror::Error;

/// Why the server could not start or stopped.
#[derive(Debug, Error)]
pub enum ServerError {
    /// `phantomdb.toml` is unreadable or invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// The database has no role that can log in.
    #[error(
        "the database has no role that can log in; create one first, e.g.\n  phantomdb {db} -c \"CREATE ROLE admin LOGIN SUPERUSER PASSWORD '...'\""
    )]
    NoLoginRole {
        /// The database path, for the command to print.
        db: String,
    },
    /// The database failed.
    #[error(transparent)]
    Database(#[from] phantomdb::Error),
    /// Listening or accepting failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
