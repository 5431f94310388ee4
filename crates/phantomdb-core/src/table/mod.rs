//! The vocabulary every table path shares, whatever engine stores the table: row ids, what a
//! statement does with a table, key encoding, rows in a table's schema, filters in the SDK's
//! form, and the SDK's view of a table definition.

pub(crate) mod filter;
pub(crate) mod index_keys;
pub(crate) mod keys;
mod rows;
pub(crate) mod stats;

pub(crate) use rows::{table_batch, table_rows};

use crate::catalog::TableDef;
use phantomdb_plugin_sdk::storage::TableInfo;

/// A row's address inside its engine. Engines choose the encoding (redb: `segment << 32 |
/// row`); the core only hands ids back to the engine that produced them.
pub(crate) type RowId = u64;

/// Name of the hidden column that carries row ids into UPDATE and DELETE plans.
pub(crate) const ROW_ID_COLUMN: &str = "__phantomdb_rowid";

/// What a statement does with a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TableRole {
    /// Read from.
    Read,
    /// Written by INSERT (or COPY): NOT NULL is checked by PhantomDB, not by the plan.
    InsertTarget,
    /// Written by UPDATE or DELETE: the table also exposes [`ROW_ID_COLUMN`], last.
    UpdateOrDeleteTarget,
}

/// The SDK's view of a table definition.
pub(crate) fn table_info(def: &TableDef) -> TableInfo {
    TableInfo {
        id: def.id,
        name: def.name.clone(),
        schema: def.schema_ref(),
        options: def.options.clone(),
    }
}
