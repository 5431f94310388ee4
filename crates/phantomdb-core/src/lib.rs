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
//! * [`PreparedStatement`] (from [`Connection::prepare`]) runs a statement many times with
//!   parameters; [`ResultStream`] (from [`Connection::execute_stream`]) yields rows as they
//!   are produced.
//! * Every [`Error`] has a PostgreSQL [`SqlState`].
//!
//! * [`parse`] splits SQL text into [`Statement`]s, for callers that run a script one
//!   statement at a time ([`Connection::execute_statement_stream`]).
//!
//! * Roles, passwords and privileges: `CREATE ROLE`, `GRANT`/`REVOKE` in SQL; [`auth`] holds
//!   what a server needs to authenticate a role ([`Database::role`], [`ScramVerifier`]).
//!
//! The catalog, storage, engines and table internals are private; [`plugins`] is the plugin
//! manager's public face. The catalog is readable through SQL: `phantomdb_tables()`,
//! `phantomdb_columns()`, `phantomdb_views()`.
//! See the README for the SQL dialect and the shell, and `docs/design.md` for the design.

#![warn(missing_docs)]

pub mod auth;
mod catalog;
mod constraints;
mod database;
mod engines;
mod error;
mod exec;
mod fastpath;
mod memory;
pub mod pg_catalog;
mod planner;
pub mod plugins;
mod privileges;
mod provider;
mod result;
mod session;
mod shared;
mod sql;
mod sqlstate;
mod statistics;
mod system;
mod table;
pub mod types;

pub use auth::{RoleInfo, ScramVerifier};
pub use database::Database;
pub use engines::redb::{CheckReport, IoFaults, Problem, RecoverReport};
pub use error::{Error, Position, Result, SqlState};
pub use memory::{memory_limit, parse_memory_size, set_memory_limit};
pub use pg_catalog::types as pg_types;
pub use planner::{CATALOG_NAME, SCHEMA_NAME};
pub use result::ResultSet;
pub use session::{
    parse_duration, Appender, CancelHandle, Connection, PreparedStatement, ResultStream,
    StatementDescription, DEFAULT_USER,
};
pub use sql::{parse, CopyFrom, Statement};

/// Re-export of the Arrow crate PhantomDB's API uses.
pub use arrow;
/// Re-export of the DataFusion crate PhantomDB runs on.
pub use datafusion;
