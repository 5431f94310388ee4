//! `phantomdb_row_check(condition)`: true, or an error (42501) naming the table when the
//! condition is not true. The filter the plan form's `checks` of an INSERT or UPDATE become
//! (row-level security's `WITH CHECK`). Volatile, so the optimizer never moves it below the
//! rows it checks.

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::error::Error;

/// The check of one target table.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct RowCheck {
    table: String,
    signature: Signature,
}

impl RowCheck {
    pub(super) fn new(table: &str) -> Self {
        Self {
            table: table.to_string(),
            signature: Signature::exact(vec![DataType::Boolean], Volatility::Volatile),
        }
    }
}

impl ScalarUDFImpl for RowCheck {
    fn name(&self) -> &str {
        "phantomdb_row_check"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let values = args.args[0].clone().into_array(rows)?;
        let values = values.as_boolean();
        let refused = (0..values.len()).any(|i| values.is_null(i) || !values.value(i));
        if refused {
            return Err(Error::PermissionDenied(format!(
                "new row violates row-level security policy for table \"{}\"",
                self.table
            ))
            .into());
        }
        Ok(ColumnarValue::Array(std::sync::Arc::new(
            BooleanArray::from(vec![true; rows]),
        )))
    }
}
