//! Appending rows to a table of any engine, with NOT NULL and primary-key checks.

use std::collections::HashSet;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::compute::{cast, concat_batches};
use parking_lot::Mutex;

use super::{plugin_engine, WriteScope};
use crate::catalog::TableDef;
use crate::engines::{check_primary_key, table_info};
use crate::error::{Error, Result, SqlState};
use crate::planner::Planner;
use crate::storage::WriteTxn;

/// Inserts query output (table column order) into any table.
pub(crate) fn insert_rows(
    planner: &Planner,
    scope: &WriteScope,
    def: &TableDef,
    batches: Vec<RecordBatch>,
) -> Result<usize> {
    if def.is_native() {
        return insert_batches(&scope.w, def, batches);
    }
    let engine = plugin_engine(&planner.registry(), def)?;
    let all = table_rows(def, batches)?;
    let n = all.num_rows();
    if n == 0 {
        return Ok(0);
    }
    let mut txns = scope.engines.lock();
    check_primary_key(&mut txns, &engine, def, &all, &HashSet::new())?;
    txns.insert(&engine, &table_info(def), all)?;
    Ok(n)
}

/// Builds a batch in `def`'s schema from columns in table order, casting where types differ
/// and reporting NOT NULL violations clearly.
pub(crate) fn table_batch(def: &TableDef, cols: Vec<ArrayRef>) -> Result<RecordBatch> {
    let rows = cols.first().map_or(0, |c| c.len());
    let mut out = Vec::with_capacity(cols.len());
    for (field, col) in def.schema.fields().iter().zip(cols) {
        if !field.is_nullable() && col.null_count() > 0 {
            return Err(Error::Constraint(
                SqlState::NotNullViolation,
                format!(
                    "NULL value in column \"{}\" of table \"{}\" violates NOT NULL",
                    field.name(),
                    def.name
                ),
            ));
        }
        out.push(if col.data_type() == field.data_type() {
            col
        } else {
            cast(&col, field.data_type())?
        });
    }
    Ok(RecordBatch::try_new_with_options(
        def.schema_ref(),
        out,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

/// Checks and appends rows produced by a query (in table column order) to a redb table.
fn insert_batches(w: &Mutex<WriteTxn>, def: &TableDef, batches: Vec<RecordBatch>) -> Result<usize> {
    let all = table_rows(def, batches)?;
    let n = all.num_rows();
    if n == 0 {
        return Ok(0);
    }
    let mut wl = w.lock();
    let keys = wl.check_insert(def, &all, &HashSet::new())?;
    wl.append(def, all, &keys)?;
    Ok(n)
}

/// Query output (table column order) as one batch in the table's schema.
fn table_rows(def: &TableDef, batches: Vec<RecordBatch>) -> Result<RecordBatch> {
    let batches = batches
        .into_iter()
        .map(|b| table_batch(def, b.columns().to_vec()))
        .collect::<Result<Vec<_>>>()?;
    Ok(concat_batches(&def.schema_ref(), &batches)?)
}
