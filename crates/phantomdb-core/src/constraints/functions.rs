//! `nextval('sequence')`, `lastval()` and `currval('sequence')` over the sequences of
//! identity columns, as PostgreSQL defines them. `nextval` takes values in the write
//! transaction of the statement calling it (a query that calls it runs as a writing
//! statement); `lastval` and `currval` are the values this connection last took.

use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::{
    create_udf, ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, Statement as SqlStatement, Visit, Visitor};

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
    ctx.register_udf(ScalarUDF::new_from_impl(NextVal {
        sequences: sequences.clone(),
        signature: Signature::exact(vec![DataType::Utf8], Volatility::Volatile),
    }));
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

/// Whether `stmt` calls `nextval` (it then runs as a writing statement).
pub(crate) fn calls_nextval(stmt: &SqlStatement) -> bool {
    struct Finder;
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &SqlExpr) -> ControlFlow<()> {
            match expr {
                SqlExpr::Function(f)
                    if f.name
                        .0
                        .last()
                        .and_then(|p| p.as_ident())
                        .is_some_and(|i| i.value.eq_ignore_ascii_case("nextval")) =>
                {
                    ControlFlow::Break(())
                }
                _ => ControlFlow::Continue(()),
            }
        }
    }
    stmt.visit(&mut Finder).is_break()
}

/// `nextval('sequence')`: one new value per row.
#[derive(Debug)]
struct NextVal {
    sequences: Arc<SessionSequences>,
    signature: Signature,
}

impl PartialEq for NextVal {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.sequences, &other.sequences)
    }
}
impl Eq for NextVal {}
impl std::hash::Hash for NextVal {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "nextval".hash(state);
    }
}

impl ScalarUDFImpl for NextVal {
    fn name(&self) -> &str {
        "nextval"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let rows = args.number_rows;
        let names = args.args[0].clone().into_array(rows)?;
        let names = cast(&names, &DataType::Utf8)?;
        let names = names.as_string::<i32>();
        let mut values = Vec::with_capacity(rows);
        for i in 0..rows {
            // PostgreSQL: nextval(NULL) is NULL.
            values.push(if names.is_null(i) {
                None
            } else {
                Some(self.sequences.nextval(names.value(i)).map_err(external)?)
            });
        }
        Ok(ColumnarValue::Array(Arc::new(Int64Array::from(values))))
    }
}

fn external(e: crate::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}
