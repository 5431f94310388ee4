//! The value of a scalar subquery per binding: its one row's value, NULL without rows, and
//! PostgreSQL's error (`21000`) for a second row.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, UInt64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{internal_err, Result, ScalarValue};
use datafusion::logical_expr::{create_udaf, Accumulator, AggregateUDF, Volatility};

use crate::error::{Error, SUBQUERY_TOO_MANY_ROWS};
use crate::sqlstate::SqlState;

/// An aggregate over values of `data_type` giving the only one (NULL over no rows) and
/// failing with `21000` at a second.
pub(super) fn single_row(data_type: &DataType) -> AggregateUDF {
    let value_type = data_type.clone();
    create_udaf(
        "__phantomdb_single_row",
        vec![data_type.clone()],
        Arc::new(data_type.clone()),
        Volatility::Immutable,
        Arc::new(move |_| Ok(Box::new(SingleRow::new(&value_type)?))),
        Arc::new(vec![data_type.clone(), DataType::UInt64]),
    )
}

#[derive(Debug)]
struct SingleRow {
    value: ScalarValue,
    rows: u64,
}

impl SingleRow {
    fn new(data_type: &DataType) -> Result<Self> {
        Ok(Self {
            value: ScalarValue::try_from(data_type)?,
            rows: 0,
        })
    }

    fn add(&mut self, values: &ArrayRef, row: usize, rows: u64) -> Result<()> {
        if rows == 0 {
            return Ok(());
        }
        if self.rows + rows > 1 {
            return Err(Error::Data(
                SqlState::CardinalityViolation,
                SUBQUERY_TOO_MANY_ROWS.to_string(),
            )
            .into());
        }
        self.value = ScalarValue::try_from_array(values, row)?;
        self.rows += rows;
        Ok(())
    }
}

impl Accumulator for SingleRow {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(values) = values.first() else {
            return internal_err!("single_row takes one argument");
        };
        for row in 0..values.len() {
            self.add(values, row, 1)?;
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [values, counts] = states else {
            return internal_err!("single_row has two state columns");
        };
        let Some(counts) = counts.as_any().downcast_ref::<UInt64Array>() else {
            return internal_err!("single_row's row count is not UInt64");
        };
        for row in 0..counts.len() {
            self.add(values, row, counts.value(row))?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            self.value.clone(),
            ScalarValue::UInt64(Some(self.rows)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.value.clone())
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.value.size() - std::mem::size_of_val(&self.value)
    }
}
