//! CHECK constraints: each condition is evaluated over all rows of a write before any is
//! stored; a row fails when its condition is false (NULL passes, as in SQL).

use std::sync::OnceLock;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::common::DFSchema;
use datafusion::prelude::SessionContext;

use crate::catalog::TableDef;
use crate::error::{Error, Result, SqlState};

/// A plain DataFusion session for parsing and evaluating stored conditions.
fn context() -> &'static SessionContext {
    static CONTEXT: OnceLock<SessionContext> = OnceLock::new();
    CONTEXT.get_or_init(SessionContext::new)
}

/// Fails with 23514 naming the constraint when a row of `rows` (table schema) violates one
/// of `def`'s CHECK constraints.
pub(crate) fn check_rows(def: &TableDef, rows: &RecordBatch) -> Result<()> {
    if def.checks.is_empty() || rows.num_rows() == 0 {
        return Ok(());
    }
    let ctx = context();
    let schema = DFSchema::try_from(def.schema.clone())?;
    for check in &def.checks {
        let expr = ctx.parse_sql_expr(&check.expr, &schema)?;
        let physical = ctx.create_physical_expr(expr, &schema)?;
        let value = physical.evaluate(rows)?.into_array(rows.num_rows())?;
        let value = cast(&value, &DataType::Boolean)?;
        let value = value.as_boolean();
        if let Some(row) = (0..value.len()).find(|&r| value.is_valid(r) && !value.value(r)) {
            return Err(violation(def, &check.name, rows, row));
        }
    }
    Ok(())
}

/// The 23514 error for row `row`.
fn violation(def: &TableDef, name: &str, rows: &RecordBatch, row: usize) -> Error {
    let shown: Vec<String> = rows
        .columns()
        .iter()
        .map(|c| arrow::util::display::array_value_to_string(c, row).unwrap_or_default())
        .collect();
    Error::Constraint(
        SqlState::CheckViolation,
        format!(
            "new row for relation \"{}\" violates check constraint \"{name}\": Failing row contains ({})",
            def.name,
            shown.join(", ")
        ),
    )
}

/// Checks that `sql` is a condition over `def`'s columns (at CREATE TABLE).
pub(crate) fn validate_condition(def: &TableDef, sql: &str) -> Result<()> {
    let ctx = context();
    let schema = DFSchema::try_from(def.schema.clone())?;
    let expr = ctx.parse_sql_expr(sql, &schema)?;
    ctx.create_physical_expr(expr, &schema)?;
    Ok(())
}
