//! Primary keys in their encoded form (Arrow's order-preserving row format): what indexes
//! store and what uniqueness checks compare.

use arrow::array::{ArrayRef, RecordBatch};
use arrow::row::{RowConverter, SortField};

use crate::catalog::TableDef;
use crate::error::{Error, Result, SqlState};

/// The error for a row of `batch` (in table schema) whose primary key is taken.
pub(crate) fn duplicate_key(table: &TableDef, batch: &RecordBatch, row: usize) -> Error {
    let shown = table
        .primary_key
        .iter()
        .map(|&c| {
            arrow::util::display::array_value_to_string(batch.column(c), row).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(", ");
    Error::Constraint(
        SqlState::UniqueViolation,
        format!(
            "duplicate primary key ({}) = ({shown}) in table \"{}\"",
            table.primary_key_names().join(", "),
            table.name
        ),
    )
}

/// Encodes the primary key of every row of `batch` (in table schema) for the index.
pub(crate) fn encode_keys(table: &TableDef, batch: &RecordBatch) -> Result<Vec<Vec<u8>>> {
    let fields = table
        .primary_key
        .iter()
        .map(|&i| SortField::new(table.schema.field(i).data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    let cols: Vec<ArrayRef> = table
        .primary_key
        .iter()
        .map(|&i| batch.column(i).clone())
        .collect();
    let rows = converter.convert_columns(&cols)?;
    Ok(rows.iter().map(|r| r.as_ref().to_vec()).collect())
}

/// Encodes one key given as one array per key column (each of length 1 or more).
pub(crate) fn encode_key_columns(table: &TableDef, cols: &[ArrayRef]) -> Result<Vec<Vec<u8>>> {
    let fields = table
        .primary_key
        .iter()
        .map(|&i| SortField::new(table.schema.field(i).data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    let rows = converter.convert_columns(cols)?;
    Ok(rows.iter().map(|r| r.as_ref().to_vec()).collect())
}
