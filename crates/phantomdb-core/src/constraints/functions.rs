//! `lastval()` and `currval('sequence')`: the values this connection last took from its
//! sequences (identity columns), as PostgreSQL defines them.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
use datafusion::prelude::SessionContext;

use super::SessionSequences;

/// Registers the sequence functions of one connection.
pub(crate) fn register_functions(ctx: &SessionContext, sequences: &Arc<SessionSequences>) {
    let s = sequences.clone();
    ctx.register_udf(create_udf(
        "lastval",
        vec![],
        DataType::Int64,
        Volatility::Volatile,
        Arc::new(move |_args: &[ColumnarValue]| {
            let v = s.lastval().map_err(external)?;
            Ok(ColumnarValue::Scalar(ScalarValue::Int64(Some(v))))
        }),
    ));
    let s = sequences.clone();
    ctx.register_udf(create_udf(
        "currval",
        vec![DataType::Utf8],
        DataType::Int64,
        Volatility::Volatile,
        Arc::new(move |args: &[ColumnarValue]| {
            let name = match args.first() {
                Some(ColumnarValue::Scalar(ScalarValue::Utf8(Some(n)))) => n.clone(),
                Some(ColumnarValue::Array(a)) if !a.is_empty() && a.is_valid(0) => {
                    a.as_string::<i32>().value(0).to_string()
                }
                _ => {
                    return Err(DataFusionError::Plan(
                        "currval takes a sequence name".into(),
                    ))
                }
            };
            let v = s.currval(&name).map_err(external)?;
            Ok(ColumnarValue::Scalar(ScalarValue::Int64(Some(v))))
        }),
    ));
}

fn external(e: crate::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}
