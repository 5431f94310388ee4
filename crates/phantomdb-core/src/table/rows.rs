//! Rows in a table's schema: what every engine is handed to store.

use arrow::array::{Array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::compute::{cast, concat_batches};

use crate::catalog::TableDef;
use crate::error::{Error, Result, SqlState};

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
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

/// Query output (table column order) as one batch in the table's schema.
pub(crate) fn table_rows(def: &TableDef, mut batches: Vec<RecordBatch>) -> Result<RecordBatch> {
    if batches.len() == 1 {
        let only = batches.remove(0);
        return table_batch(def, only.columns().to_vec());
    }
    let batches = batches
        .into_iter()
        .map(|b| table_batch(def, b.columns().to_vec()))
        .collect::<Result<Vec<_>>>()?;
    Ok(concat_batches(&def.schema_ref(), &batches)?)
}
