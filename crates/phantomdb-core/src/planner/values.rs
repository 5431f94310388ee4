//! Constant expressions DDL and COPY need evaluated: column defaults and SQL type names.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Schema};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::Expr;

use super::Planner;
use crate::catalog::TableDef;
use crate::error::{Error, Result};

impl Planner {
    /// A column of `rows` copies of column `i`'s default (or NULL).
    pub(crate) fn default_array(&self, def: &TableDef, i: usize, rows: usize) -> Result<ArrayRef> {
        let field = def.schema.field(i);
        let value = match def.defaults.get(field.name()) {
            // A custom-typed column's default: evaluated with the plugins' functions, once per
            // row (`gen_random_uuid()`), and parsed by its type.
            Some(sql) if crate::types::logical_type(field).is_some() => {
                let mut state = self.ctx.state();
                let (registry, _pins) = self.plugins().apply(&mut state)?;
                let expr = state.create_logical_expr(sql, &DFSchema::empty())?;
                let physical = state.create_physical_expr(expr, &DFSchema::empty())?;
                let batch = RecordBatch::try_new_with_options(
                    Arc::new(Schema::empty()),
                    vec![],
                    &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows)),
                )?;
                let values = physical.evaluate(&batch)?.into_array(rows)?;
                return crate::types::assign::assigned_values(field, values, &registry);
            }
            Some(sql) => self.eval_constant(sql, field.data_type())?,
            None => ScalarValue::try_from(field.data_type())?,
        };
        Ok(value.to_array_of_size(rows)?)
    }

    /// Evaluates a constant SQL expression to a value of type `ty`.
    pub(crate) fn eval_constant(&self, sql: &str, ty: &DataType) -> Result<ScalarValue> {
        let value = self.eval_scalar(sql)?.to_array()?;
        let value = cast(&value, ty)?;
        Ok(ScalarValue::try_from_array(&value, 0)?)
    }

    /// Evaluates a constant SQL expression.
    pub(crate) fn eval_scalar(&self, sql: &str) -> Result<ScalarValue> {
        let expr = self.ctx.parse_sql_expr(sql, &DFSchema::empty())?;
        let state = self.ctx.state();
        let physical = state.create_physical_expr(expr, &DFSchema::empty())?;
        let one = RecordBatch::try_new_with_options(
            Arc::new(Schema::empty()),
            vec![],
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(1)),
        )?;
        let value = physical.evaluate(&one)?.into_array(1)?;
        Ok(ScalarValue::try_from_array(&value, 0)?)
    }

    /// The Arrow type of a SQL type name, resolved the way `CREATE TABLE` resolves it.
    pub(crate) fn sql_type(&self, sql_type: &str) -> Result<DataType> {
        let expr = self
            .ctx
            .parse_sql_expr(&format!("CAST(NULL AS {sql_type})"), &DFSchema::empty())?;
        match expr {
            Expr::Cast(c) => Ok(c.field.data_type().clone()),
            Expr::TryCast(c) => Ok(c.field.data_type().clone()),
            other => Err(Error::Sql(format!("unknown type {sql_type} ({other})"))),
        }
    }
}
