//! PostgreSQL compatibility catalog: the `pg_catalog` schema (`pg_class`, `pg_attribute`,
//! `pg_type`, `pg_index`, `pg_constraint`, `pg_roles`, ...), PostgreSQL's catalog functions
//! (`format_type`, `pg_get_expr`, `pg_table_is_visible`, `version()`, ...), the mapping from
//! Arrow types to PostgreSQL types, and a rewrite of PostgreSQL-only syntax, so psql's `\d`
//! commands and drivers' introspection queries (psycopg, tokio-postgres, SQLAlchemy) work.
//!
//! * [`install`] adds the schema and the functions to a connection's DataFusion context
//!   (the planner calls it once per connection).
//! * The relations are built per statement from the statement's catalog snapshot
//!   (`schema.rs`, `rows.rs`), so a table created a moment ago is listed; relations defined
//!   as queries (`pg_roles`, `pg_database`) are planned per statement like stored views.
//! * OIDs are stable: derived from table ids (`oids.rs`), PostgreSQL's own for types,
//!   namespaces and catalog tables.
//! * [`rewrite`] turns psql's `OPERATOR(pg_catalog.~)`, `::regclass`, `COLLATE`, ... into
//!   SQL DataFusion plans. It is not applied by [`crate::Connection`]: a caller speaking for
//!   PostgreSQL clients (the wire server) runs incoming SQL through it first.

mod cells;
mod functions;
mod names;
mod oids;
mod prune;
mod rewrite;
mod rows;
mod schema;
pub(crate) mod settings;
mod subquery;
mod tables;
pub mod types;
mod views;

use std::sync::Arc;

use datafusion::catalog::CatalogProvider;
use datafusion::execution::context::SessionContext;

pub use rewrite::{rewrite, rewrite_statement};
pub use settings::{SERVER_VERSION, SERVER_VERSION_NUM};

use crate::error::Result;
use crate::planner::schema::PhantomSchema;

/// The schema name of PostgreSQL's catalog.
pub const PG_CATALOG: &str = "pg_catalog";

/// Adds the `pg_catalog` schema to `catalog` and PostgreSQL's catalog functions to `ctx`.
/// Relations and catalog-reading functions answer from the statement `schema` is planning.
pub(crate) fn install(
    ctx: &SessionContext,
    catalog: &dyn CatalogProvider,
    schema: &PhantomSchema,
) -> Result<()> {
    catalog.register_schema(
        PG_CATALOG,
        Arc::new(schema::PgCatalogSchema::new(schema.clone())),
    )?;
    functions::register(ctx, schema);
    Ok(())
}
