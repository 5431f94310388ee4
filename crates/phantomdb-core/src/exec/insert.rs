//! Appending query output to a table of any engine.

use arrow::array::RecordBatch;

use super::WriteScope;
use crate::catalog::TableDef;
use crate::error::Result;
use crate::planner::Planner;
use crate::table::table_rows;

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
