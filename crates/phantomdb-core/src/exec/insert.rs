//! Appending query output to a table of any engine.

use arrow::array::{new_null_array, ArrayRef, RecordBatch};
use datafusion::common::ScalarValue;

use super::WriteScope;
use crate::catalog::TableDef;
use crate::error::Result;
use crate::fastpath::{column_array, insert_positions, LiteralRows};
use crate::planner::Planner;
use crate::privileges::Privilege;
use crate::table::{table_batch, table_rows};

/// Inserts query output (table column order) into any table; the engine enforces the
/// primary key.
pub(crate) fn insert_rows(
    planner: &Planner,
    scope: &WriteScope,
    def: &std::sync::Arc<TableDef>,
    batches: Vec<RecordBatch>,
) -> Result<usize> {
    let all = table_rows(def, batches)?;
    let n = all.num_rows();
    if n == 0 {
        return Ok(0);
    }
    scope.table(planner, def)?.insert(all)?;
    Ok(n)
}

/// Inserts the rows of a literal `INSERT ... VALUES` (any number of rows) without planning:
/// one array per column, built and cast at once, then one insert into the engine. `None`
/// when the statement does not fit (not a table, a column left out has a DEFAULT, a value
/// does not convert): it is then planned like any INSERT, which reports what is wrong.
pub(crate) fn insert_literal_rows(
    planner: &Planner,
    scope: &WriteScope,
    literal: LiteralRows,
) -> Result<Option<usize>> {
    let catalog = scope.w.lock().catalog();
    let Some(def) = catalog.table(&literal.table).cloned() else {
        return Ok(None);
    };
    let Some(positions) = insert_positions(&def, &literal.columns) else {
        return Ok(None);
    };
    // Text for a custom-typed column is parsed by the planned INSERT.
    if def
        .schema
        .fields()
        .iter()
        .any(|f| crate::types::logical_type(f).is_some())
    {
        return Ok(None);
    }
    if literal
        .rows
        .first()
        .is_some_and(|r| r.len() != positions.len())
    {
        return Ok(None);
    }
    planner
        .actor(&catalog)
        .check_table(&def, Privilege::Insert)?;
    let fields = def.schema.fields();
    let n = literal.rows.len();
    let mut by_column: Vec<Vec<ScalarValue>> = vec![Vec::with_capacity(n); positions.len()];
    for row in literal.rows {
        for (i, v) in row.into_iter().enumerate() {
            by_column[i].push(v);
        }
    }
    let mut columns: Vec<Option<ArrayRef>> = vec![None; fields.len()];
    for (values, &p) in by_column.into_iter().zip(&positions) {
        let Some(array) = column_array(fields[p].data_type(), values) else {
            return Ok(None);
        };
        columns[p] = Some(array);
    }
    let columns = columns
        .into_iter()
        .zip(fields.iter())
        .map(|(c, f)| c.unwrap_or_else(|| new_null_array(f.data_type(), n)))
        .collect();
    let batch = table_batch(&def, columns)?;
    if n > 0 {
        scope.table(planner, &def)?.insert(batch)?;
    }
    Ok(Some(n))
}
