//! `INSERT`, `UPDATE`, `DELETE` and `TRUNCATE` as planned by DataFusion: the plan's input
//! yields the new rows (with the row id column for UPDATE and DELETE), applied here.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, UInt64Array};
use arrow::compute::concat_batches;
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{DmlStatement, WriteOp};

use super::insert::table_batch;
use super::{insert_rows, plugin_engine, table_def, WriteScope};
use crate::catalog::TableDef;
use crate::engines::{check_primary_key, table_info, ScanRequest};
use crate::error::{Error, Result};
use crate::planner::{local_name, Planner};
use crate::provider::ROW_ID_COLUMN;
use crate::result::ResultSet;
use crate::storage::{encode_keys, DataView, RowId, WriteTxn};

/// Runs the DML statement's input and applies it to its table.
pub(crate) async fn run_dml(
    planner: &Planner,
    scope: &WriteScope,
    dml: DmlStatement,
) -> Result<ResultSet> {
    let w = &scope.w;
    let name = local_name(&dml.table_name)?;
    let def = table_def(w, &name)?;
    let df = DataFrame::new(planner.state(), dml.input.as_ref().clone());
    let batches = df.collect().await?;
    if !def.is_native() {
        return run_engine_dml(planner, scope, &def, dml.op, batches);
    }
    match dml.op {
        WriteOp::Insert(_) => ResultSet::count(insert_rows(planner, scope, &def, batches)?),
        WriteOp::Delete => {
            let (ids, _) = split_row_ids(&def, batches)?;
            let mut wl = w.lock();
            let keys = old_keys(&wl, &def, &ids)?;
            wl.delete(&def, &ids, &keys)?;
            ResultSet::count(ids.len())
        }
        WriteOp::Update => {
            let (ids, new_rows) = split_row_ids(&def, batches)?;
            let mut wl = w.lock();
            let old = old_keys(&wl, &def, &ids)?;
            let replaced: HashSet<Vec<u8>> = old.iter().cloned().collect();
            let new_keys = wl.check_insert(&def, &new_rows, &replaced)?;
            wl.delete(&def, &ids, &old)?;
            wl.append(&def, new_rows, &new_keys)?;
            ResultSet::count(ids.len())
        }
        WriteOp::Truncate => {
            let view: Arc<dyn DataView> = w.clone();
            let segments = view.segments(&def)?;
            let mut ids = Vec::new();
            for s in &segments {
                ids.extend(s.live_with_row_ids()?.1);
            }
            let mut wl = w.lock();
            let keys = old_keys(&wl, &def, &ids)?;
            wl.delete(&def, &ids, &keys)?;
            ResultSet::count(ids.len())
        }
        other => Err(Error::Unsupported(format!("{other}"))),
    }
}

/// INSERT, UPDATE, DELETE and TRUNCATE on a table of a storage engine.
fn run_engine_dml(
    planner: &Planner,
    scope: &WriteScope,
    def: &TableDef,
    op: WriteOp,
    batches: Vec<RecordBatch>,
) -> Result<ResultSet> {
    let engine = plugin_engine(&planner.registry(), def)?;
    let info = table_info(def);
    match op {
        WriteOp::Insert(_) => ResultSet::count(insert_rows(planner, scope, def, batches)?),
        WriteOp::Delete => {
            let (ids, _) = split_row_ids(def, batches)?;
            let ids = UInt64Array::from(ids);
            scope.engines.lock().delete(&engine, &info, &ids)?;
            ResultSet::count(ids.len())
        }
        WriteOp::Update => {
            let (ids, new_rows) = split_row_ids(def, batches)?;
            let replaced: HashSet<u64> = ids.iter().copied().collect();
            let ids = UInt64Array::from(ids);
            let mut txns = scope.engines.lock();
            check_primary_key(&mut txns, &engine, def, &new_rows, &replaced)?;
            txns.update(&engine, &info, &ids, new_rows)?;
            ResultSet::count(ids.len())
        }
        WriteOp::Truncate => {
            let mut txns = scope.engines.lock();
            let all = txns.read_all(
                &engine,
                &info,
                &ScanRequest {
                    projection: Some(Vec::new()),
                    with_row_ids: true,
                    ..ScanRequest::default()
                },
            )?;
            let ids = row_ids(&all, 0)?;
            txns.delete(&engine, &info, &ids)?;
            ResultSet::count(ids.len())
        }
        other => Err(Error::Unsupported(format!("{other}"))),
    }
}

/// Column `i` of an engine's scan as row ids.
pub(super) fn row_ids(batch: &RecordBatch, i: usize) -> Result<UInt64Array> {
    batch
        .column(i)
        .as_any()
        .downcast_ref::<UInt64Array>()
        .cloned()
        .ok_or_else(|| Error::Storage("engine returned bad row ids".into()))
}

/// Splits UPDATE/DELETE input (table columns + row id column) into row ids and new rows.
fn split_row_ids(def: &TableDef, batches: Vec<RecordBatch>) -> Result<(Vec<RowId>, RecordBatch)> {
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
    let mask = arrow::array::BooleanArray::from(keep.clone());
    let all = arrow::compute::filter_record_batch(&all, &mask)?;
    let ids = ids
        .into_iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(id, _)| id)
        .collect();
    Ok((ids, all))
}

/// The encoded primary keys of the stored rows `ids` (empty when the table has no key).
fn old_keys(w: &WriteTxn, def: &TableDef, ids: &[RowId]) -> Result<Vec<Vec<u8>>> {
    if def.primary_key.is_empty() || ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = w.fetch(def, ids)?;
    encode_keys(def, &rows)
}
