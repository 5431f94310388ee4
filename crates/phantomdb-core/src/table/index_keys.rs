//! Keys of secondary indexes and UNIQUE constraints, in Arrow's order-preserving row format
//! (what redb's `ix_<id>` tables store and what uniqueness checks compare).

use arrow::array::{ArrayRef, RecordBatch};
use arrow::row::{RowConverter, SortField};

use crate::catalog::{IndexDef, TableDef};
use crate::error::{Error, Result, SqlState};

/// One row's encoded key.
#[derive(Debug, Clone)]
pub(crate) struct IndexKey {
    bytes: Vec<u8>,
    has_null: bool,
}

impl IndexKey {
    /// The encoded values.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether a value of the key is NULL (such keys never conflict).
    pub(crate) fn has_null(&self) -> bool {
        self.has_null
    }
}

/// Encodes `arrays`, one per column of `columns` (positions in `table`'s schema).
pub(crate) fn encode_columns(
    table: &TableDef,
    columns: &[usize],
    arrays: &[ArrayRef],
) -> Result<Vec<IndexKey>> {
    let fields = columns
        .iter()
        .map(|&i| SortField::new(table.schema.field(i).data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    let rows = converter.convert_columns(arrays)?;
    let n = arrays.first().map_or(0, |a| a.len());
    Ok((0..n)
        .map(|r| IndexKey {
            bytes: rows.row(r).as_ref().to_vec(),
            has_null: arrays.iter().any(|a| a.is_null(r)),
        })
        .collect())
}

/// Encodes the key of `index` for every row of `batch` (in table schema).
pub(crate) fn encode_index(
    table: &TableDef,
    index: &IndexDef,
    batch: &RecordBatch,
) -> Result<Vec<IndexKey>> {
    let arrays: Vec<ArrayRef> = index
        .columns
        .iter()
        .map(|&i| batch.column(i).clone())
        .collect();
    encode_columns(table, &index.columns, &arrays)
}

/// The error for row `row` of `batch` (table schema) duplicating a key of `index`.
pub(crate) fn duplicate_in_index(
    table: &TableDef,
    index: &IndexDef,
    batch: &RecordBatch,
    row: usize,
) -> Error {
    let names: Vec<&str> = index
        .columns
        .iter()
        .map(|&c| table.schema.field(c).name().as_str())
        .collect();
    let shown: Vec<String> = index
        .columns
        .iter()
        .map(|&c| crate::types::display_value(table.schema.field(c), batch.column(c), row))
        .collect();
    Error::Constraint(
        SqlState::UniqueViolation,
        format!(
            "duplicate key value violates unique constraint \"{}\": Key ({})=({}) already exists",
            index.name,
            names.join(", "),
            shown.join(", ")
        ),
    )
}
