//! Constraints the core enforces for every engine: identity columns, CHECK and UNIQUE.
//!
//! [`guard`] wraps a table's [`TableAccess`] for writing statements: `insert` fills identity
//! columns, checks CHECK and UNIQUE constraints for all rows first, then hands the rows to
//! the engine (which enforces the primary key and keeps its indexes); `update` does the same
//! with the rows it replaces treated as gone. Nothing is written when a row fails, so a
//! multi-row statement changes nothing on a violation.

mod check;
mod functions;
mod identity;
pub(crate) mod unique;

use std::ops::Bound;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use parking_lot::Mutex;

use crate::catalog::{IndexDef, TableDef};
use crate::engines::redb::WriteTxn;
use crate::engines::{
    Capabilities, ColumnFill, Filter, FilterSupport, ScanLayout, ScanRequest, TableAccess,
    TableScan,
};
use crate::error::Result;
use crate::table::RowId;

pub(crate) use check::{check_rows, validate_condition};
pub(crate) use functions::{calls_nextval, register_functions};
pub(crate) use identity::{fill_identity, SessionSequences};

/// Whether writes to `def` need the core's checks.
pub(crate) fn constrained(def: &TableDef) -> bool {
    !def.identity.is_empty() || !def.checks.is_empty() || def.indexes.iter().any(|i| i.unique)
}

/// `access` with the core's constraints enforced on its writes (itself when the table has
/// none).
pub(crate) fn guard(
    access: Arc<dyn TableAccess>,
    write: Arc<Mutex<WriteTxn>>,
    sequences: Arc<SessionSequences>,
) -> Arc<dyn TableAccess> {
    if !constrained(access.def()) {
        return access;
    }
    Arc::new(Guarded {
        inner: access,
        write,
        sequences,
    })
}

/// Rows about to be inserted with their identity columns filled; a value given for a
/// `GENERATED ALWAYS` identity column is refused (428C9).
pub(crate) fn prepare_rows(
    write: &Mutex<WriteTxn>,
    sequences: &Arc<SessionSequences>,
    def: &TableDef,
    rows: RecordBatch,
) -> Result<RecordBatch> {
    identity::refuse_given_always(def, &rows)?;
    fill_identity(write, sequences, def, rows)
}

/// Checks rows about to be stored (inserted, or replacing the rows `replaced`) against the
/// table's CHECK and UNIQUE constraints, all rows before any is written.
pub(crate) fn validate_rows(
    access: &dyn TableAccess,
    rows: &RecordBatch,
    replaced: &[RowId],
) -> Result<()> {
    identity::refuse_null_identity(access.def(), rows)?;
    check_rows(access.def(), rows)?;
    unique::check_unique(access, rows, replaced)
}

/// A table whose writes are checked against its constraints first.
struct Guarded {
    inner: Arc<dyn TableAccess>,
    write: Arc<Mutex<WriteTxn>>,
    sequences: Arc<SessionSequences>,
}

impl TableAccess for Guarded {
    fn def(&self) -> &Arc<TableDef> {
        self.inner.def()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn supports_filters(&self, filters: &[Filter]) -> Vec<FilterSupport> {
        self.inner.supports_filters(filters)
    }
    fn scan(&self, request: &ScanRequest, layout: ScanLayout) -> Result<TableScan> {
        self.inner.scan(request, layout)
    }
    fn lookup(&self, keys: &[ArrayRef]) -> Result<Option<RecordBatch>> {
        self.inner.lookup(keys)
    }
    fn insert(&self, rows: RecordBatch) -> Result<()> {
        let rows = prepare_rows(&self.write, &self.sequences, self.def(), rows)?;
        validate_rows(self.inner.as_ref(), &rows, &[])?;
        self.inner.insert(rows)
    }
    fn delete(&self, ids: &[RowId]) -> Result<u64> {
        self.inner.delete(ids)
    }
    fn update(&self, ids: &[RowId], rows: RecordBatch) -> Result<u64> {
        validate_rows(self.inner.as_ref(), &rows, ids)?;
        self.inner.update(ids, rows)
    }
    fn change_schema(&self, new: &TableDef, fill: &ColumnFill<'_>) -> Result<()> {
        self.inner.change_schema(new, fill)
    }
    fn drop_columns(&self, new: &TableDef, kept: &[usize]) -> Result<bool> {
        self.inner.drop_columns(new, kept)
    }
    fn keeps_indexes(&self) -> bool {
        self.inner.keeps_indexes()
    }
    fn create_index(&self, index: &IndexDef) -> Result<()> {
        self.inner.create_index(index)
    }
    fn drop_index(&self, index: &IndexDef) -> Result<()> {
        self.inner.drop_index(index)
    }
    fn index_range(
        &self,
        index: &IndexDef,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
    ) -> Result<Option<Vec<RowId>>> {
        self.inner.index_range(index, lo, hi)
    }
    fn key_ids(&self, keys: &[Vec<u8>]) -> Result<Option<Vec<Option<RowId>>>> {
        self.inner.key_ids(keys)
    }
    fn fetch(&self, ids: &[RowId]) -> Result<Option<(RecordBatch, Vec<RowId>)>> {
        self.inner.fetch(ids)
    }
}
