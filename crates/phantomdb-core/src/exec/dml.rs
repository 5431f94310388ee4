//! `INSERT`, `UPDATE`, `DELETE` and `TRUNCATE` as planned by DataFusion: the plan's input
//! yields the new rows (with the row id column for UPDATE and DELETE), applied here to the
//! table's engine, whichever it is.

use std::collections::HashSet;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt64Array};
use arrow::compute::{concat_batches, filter_record_batch};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{DmlStatement, WriteOp};

use super::{insert_rows, table_def, WriteScope};
use crate::catalog::TableDef;
use crate::engines::{read_all, ScanRequest, TableAccess};
use crate::error::{Error, Result};
use crate::planner::{local_name, Planner};
use crate::result::ResultSet;
use crate::table::{table_batch, RowId, ROW_ID_COLUMN};

/// Runs the DML statement's input and applies it to its table.
pub(crate) async fn run_dml(
    planner: &Planner,
    scope: &WriteScope,
    dml: DmlStatement,
) -> Result<ResultSet> {
    let name = local_name(&dml.table_name)?;
    let def = table_def(&scope.w, &name)?;
    let df = DataFrame::new(planner.state(), dml.input.as_ref().clone());
    let batches = df.collect().await?;
    let table = scope.table(planner, &def)?;
    match dml.op {
        WriteOp::Insert(_) => ResultSet::count(insert_rows(planner, scope, &def, batches)?),
        WriteOp::Delete => {
            let (ids, _) = split_row_ids(&def, batches)?;
            ResultSet::count(table.delete(&ids)? as usize)
        }
        WriteOp::Update => {
            let (ids, new_rows) = split_row_ids(&def, batches)?;
            ResultSet::count(table.update(&ids, new_rows)? as usize)
        }
        WriteOp::Truncate => {
            let ids = all_row_ids(table.as_ref())?;
            ResultSet::count(table.delete(&ids)? as usize)
        }
        other => Err(Error::Unsupported(format!("{other}"))),
    }
}

/// The ids of every row of the table.
fn all_row_ids(table: &dyn TableAccess) -> Result<Vec<RowId>> {
    let request = ScanRequest {
        projection: Some(Vec::new()),
        with_row_ids: true,
        ..ScanRequest::default()
    };
    let all = read_all(table, &request)?;
    let ids = all
        .column(0)
        .as_any()
        .downcast_ref::<UInt64Array>()
        .ok_or_else(|| Error::Storage("engine returned bad row ids".into()))?;
    Ok(ids.values().to_vec())
}

/// Splits UPDATE/DELETE input (table columns + row id column) into row ids and new rows.
pub(super) fn split_row_ids(
    def: &TableDef,
    batches: Vec<RecordBatch>,
) -> Result<(Vec<RowId>, RecordBatch)> {
    let mut ids = Vec::new();
    let mut rows = Vec::with_capacity(batches.len());
    let n = def.schema.fields().len();
    for b in batches {
        let idx = b
            .schema()
            .index_of(ROW_ID_COLUMN)
            .map_err(|_| Error::Sql("internal: row id column missing from DML input".into()))?;
        let col = b
            .column(idx)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .ok_or_else(|| Error::Sql("internal: row id column has the wrong type".into()))?;
        ids.extend(col.values().iter().copied());
        let cols: Vec<ArrayRef> = (0..b.num_columns())
            .filter(|&i| i != idx)
            .take(n)
            .map(|i| b.column(i).clone())
            .collect();
        rows.push(table_batch(def, cols)?);
    }
    let all = concat_batches(&def.schema_ref(), &rows)?;
    // A row can appear twice when a join in the filter matches it twice; write it once.
    let mut seen = HashSet::with_capacity(ids.len());
    let keep: Vec<bool> = ids.iter().map(|id| seen.insert(*id)).collect();
    if keep.iter().all(|k| *k) {
        return Ok((ids, all));
    }
    let all = filter_record_batch(&all, &BooleanArray::from(keep.clone()))?;
    let ids = ids
        .into_iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(id, _)| id)
        .collect();
    Ok((ids, all))
}
