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
    for (i, (field, col)) in def.schema.fields().iter().zip(cols).enumerate() {
        // Identity columns' NULLs become sequence values later (`constraints`).
        if !field.is_nullable() && col.null_count() > 0 && !def.identity.contains_key(&i) {
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
        } else if let Some((type_name, _)) = crate::types::logical_type(field) {
            // A cast would reinterpret the value as storage bytes.
            return Err(Error::Unsupported(format!(
                "writing {} values into column \"{}\" of type {type_name} this way",
                col.data_type(),
                field.name()
            )));
        } else {
            cast(&col, field.data_type())?
        });
    }
    // Identity columns may still hold NULLs here (filled from their sequence later).
    let schema = if def
        .identity
        .keys()
        .any(|&i| out.get(i).is_some_and(|c| c.null_count() > 0))
    {
        unfilled_schema(def)
    } else {
        def.schema_ref()
    };
    Ok(RecordBatch::try_new_with_options(
        schema,
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
    Ok(concat_batches(&unfilled_schema(def), &batches)?)
}

/// `def`'s schema with its identity columns nullable (rows before their values are drawn).
fn unfilled_schema(def: &TableDef) -> arrow::datatypes::SchemaRef {
    if def.identity.is_empty() {
        return def.schema_ref();
    }
    let fields: Vec<arrow::datatypes::Field> = def
        .schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let nullable = f.is_nullable() || def.identity.contains_key(&i);
            f.as_ref().clone().with_nullable(nullable)
        })
        .collect();
    std::sync::Arc::new(arrow::datatypes::Schema::new(fields))
}
