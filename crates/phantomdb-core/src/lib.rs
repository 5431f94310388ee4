//! # PhantomDB
//!
//! An embeddable SQL database with a plugin architecture. Apache DataFusion parses, plans and
//! executes SQL; PhantomDB owns the catalog, sessions, transactions and storage around it.
//!
//! * [`Database`] opens a database file (one [redb](https://docs.rs/redb) file per database)
//!   or an in-memory database.
//! * [`Connection`] runs SQL and returns Arrow [`RecordBatch`](arrow::array::RecordBatch)es,
//!   with `BEGIN` / `COMMIT` / `ROLLBACK` transactions and snapshot reads.
//!
//! See the README for the SQL dialect and the shell.

#![warn(missing_docs)]

pub mod catalog;
mod connection;
mod database;
pub mod engines;
mod error;
mod fastpath;
pub mod plugins;
pub mod provider;
pub mod sql;
pub mod storage;

pub use connection::{Connection, ResultSet, CATALOG_NAME, SCHEMA_NAME};
pub use database::Database;
pub use error::{Error, Result};

/// Re-export of the Arrow crate PhantomDB's API uses.
pub use arrow;
/// Re-export of the DataFusion crate PhantomDB runs on.
pub use datafusion;
