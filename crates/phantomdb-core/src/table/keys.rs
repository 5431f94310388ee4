//! Primary keys in their encoded form (Arrow's order-preserving row format): what indexes
//! store and what uniqueness checks compare.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type,
    UInt8Type,
};
use arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;

use crate::catalog::TableDef;
use crate::error::{Error, Result, SqlState};

/// The error for a row of `batch` (in table schema) whose primary key is taken.
pub(crate) fn duplicate_key(table: &TableDef, batch: &RecordBatch, row: usize) -> Error {
    let shown = table
        .primary_key
        .iter()
        .map(|&c| crate::types::display_value(table.schema.field(c), batch.column(c), row))
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
    if let [column] = table.primary_key.as_slice() {
        if let Some(keys) = int_keys(batch.column(*column)) {
            return Ok(keys);
        }
    }
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
    if let [column] = cols {
        if let Some(keys) = int_keys(column) {
            return Ok(keys);
        }
    }
    let fields = table
        .primary_key
        .iter()
        .map(|&i| SortField::new(table.schema.field(i).data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    let rows = converter.convert_columns(cols)?;
    Ok(rows.iter().map(|r| r.as_ref().to_vec()).collect())
}

/// One non-NULL integer in Arrow's row format (ascending, as [`RowConverter`] encodes it with
/// default options): a valid byte `1`, then the big-endian bytes with a signed type's sign
/// bit flipped, so byte order is value order.
fn int_key<const N: usize>(mut bytes: [u8; N], signed: bool) -> Vec<u8> {
    if signed {
        bytes[0] ^= 0x80;
    }
    let mut key = Vec::with_capacity(N + 1);
    key.push(1);
    key.extend_from_slice(&bytes);
    key
}

/// The keys of a one-column integer key without NULLs, encoded directly (no
/// [`RowConverter`]); `None` for other columns.
fn int_keys(column: &ArrayRef) -> Option<Vec<Vec<u8>>> {
    if column.null_count() > 0 {
        return None;
    }
    macro_rules! keys {
        ($t:ty, $signed:expr) => {
            column
                .as_primitive::<$t>()
                .values()
                .iter()
                .map(|v| int_key(v.to_be_bytes(), $signed))
                .collect()
        };
    }
    Some(match column.data_type() {
        DataType::Int64 => keys!(Int64Type, true),
        DataType::Int32 => keys!(Int32Type, true),
        DataType::Int16 => keys!(Int16Type, true),
        DataType::Int8 => keys!(Int8Type, true),
        DataType::UInt64 => keys!(UInt64Type, false),
        DataType::UInt32 => keys!(UInt32Type, false),
        DataType::UInt16 => keys!(UInt16Type, false),
        DataType::UInt8 => keys!(UInt8Type, false),
        _ => return None,
    })
}

/// The encoded key of a one-column integer key given as a value of the column's type;
/// `None` for other values (encode those with [`encode_key_columns`]).
pub(crate) fn scalar_key(value: &ScalarValue) -> Option<Vec<u8>> {
    Some(match value {
        ScalarValue::Int64(Some(v)) => int_key(v.to_be_bytes(), true),
        ScalarValue::Int32(Some(v)) => int_key(v.to_be_bytes(), true),
        ScalarValue::Int16(Some(v)) => int_key(v.to_be_bytes(), true),
        ScalarValue::Int8(Some(v)) => int_key(v.to_be_bytes(), true),
        ScalarValue::UInt64(Some(v)) => int_key(v.to_be_bytes(), false),
        ScalarValue::UInt32(Some(v)) => int_key(v.to_be_bytes(), false),
        ScalarValue::UInt16(Some(v)) => int_key(v.to_be_bytes(), false),
        ScalarValue::UInt8(Some(v)) => int_key(v.to_be_bytes(), false),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn converted(column: ArrayRef) -> Vec<Vec<u8>> {
        let converter =
            RowConverter::new(vec![SortField::new(column.data_type().clone())]).expect("conv");
        let rows = converter.convert_columns(&[column]).expect("rows");
        rows.iter().map(|r| r.as_ref().to_vec()).collect()
    }

    /// The direct encoding is byte for byte what the row converter produces (stored index
    /// keys were written with it), for every integer type and its extremes.
    #[test]
    fn integer_keys_match_the_row_converter() {
        let i64s: Vec<i64> = vec![i64::MIN, -70_000, -1, 0, 1, 255, 65_536, i64::MAX];
        let column: ArrayRef = Arc::new(arrow::array::Int64Array::from(i64s.clone()));
        assert_eq!(int_keys(&column).expect("int64"), converted(column.clone()));
        for (i, v) in i64s.iter().enumerate() {
            let key = scalar_key(&ScalarValue::Int64(Some(*v))).expect("scalar");
            assert_eq!(key, converted(column.clone())[i]);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(arrow::array::Int32Array::from(vec![
                i32::MIN,
                -5,
                0,
                7,
                i32::MAX,
            ])),
            Arc::new(arrow::array::Int16Array::from(vec![
                i16::MIN,
                -5,
                0,
                7,
                i16::MAX,
            ])),
            Arc::new(arrow::array::Int8Array::from(vec![
                i8::MIN,
                -5,
                0,
                7,
                i8::MAX,
            ])),
            Arc::new(arrow::array::UInt64Array::from(vec![0, 7, u64::MAX])),
            Arc::new(arrow::array::UInt32Array::from(vec![0, 7, u32::MAX])),
            Arc::new(arrow::array::UInt16Array::from(vec![0, 7, u16::MAX])),
            Arc::new(arrow::array::UInt8Array::from(vec![0, 7, u8::MAX])),
        ];
        for column in columns {
            let direct = int_keys(&column).expect("integer column");
            assert_eq!(direct, converted(column.clone()), "{}", column.data_type());
            for (i, key) in direct.iter().enumerate() {
                let value = ScalarValue::try_from_array(&column, i).expect("value");
                assert_eq!(scalar_key(&value).as_ref(), Some(key));
            }
        }
        let with_null: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![Some(1), None]));
        assert!(int_keys(&with_null).is_none());
    }
}
