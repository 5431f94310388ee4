//! `phantomdb_row_check(condition, value)`: `value`, or an error (42501) naming the table
//! when the condition is not true. The plan form's `checks` of an INSERT or UPDATE become
//! this call on the first column of the new rows, in a projection (row-level security's
//! `WITH CHECK`). Volatile, so the optimizer never removes or moves it.

use arrow::array::{Array, AsArray};
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
            signature: Signature::any(2, Volatility::Volatile),
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

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args.get(1).cloned().unwrap_or(DataType::Null))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let values = args.args[0].clone().into_array(rows)?;
        let Some(values) = values.as_boolean_opt() else {
            return Err(Error::Sql(format!(
                "the row check of table \"{}\" is {}, not boolean",
                self.table,
                values.data_type()
            ))
            .into());
        };
        let refused = (0..values.len()).any(|i| values.is_null(i) || !values.value(i));
        if refused {
            return Err(Error::PermissionDenied(format!(
                "new row violates row-level security policy for table \"{}\"",
                self.table
            ))
            .into());
        }
        Ok(args.args[1].clone())
    }
}
