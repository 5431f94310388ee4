//! One table of an SDK engine, bound to the engine transactions of one statement.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt64Array};
use arrow::compute::filter_record_batch;
use datafusion::common::ScalarValue;
use phantomdb_plugin_sdk::storage::{
    Capabilities, Filter, FilterSupport, ScanRequest, StorageEngine, TableInfo,
};

use super::txns::{require_update_delete, storage_error, EngineTxns, SharedEngineTxns};
use crate::catalog::TableDef;
use crate::engines::{Batches, ColumnFill, ScanLayout, ScanPartition, TableAccess, TableScan};
use crate::error::{Error, Result};
use crate::table::filter::to_value;
use crate::table::keys::{duplicate_key, encode_key_columns, encode_keys};
use crate::table::{table_batch, table_info, RowId};

/// A table of an SDK engine in one statement.
pub(crate) struct SdkTable {
    def: Arc<TableDef>,
    info: TableInfo,
    engine: Arc<dyn StorageEngine>,
    txns: SharedEngineTxns,
}

impl SdkTable {
    pub(super) fn new(
        def: Arc<TableDef>,
        engine: Arc<dyn StorageEngine>,
        txns: SharedEngineTxns,
    ) -> Self {
        Self {
            info: table_info(&def),
            def,
            engine,
            txns,
        }
    }

    /// All rows of the table as one batch, per `request`.
    fn read_all(&self, request: &ScanRequest) -> Result<RecordBatch> {
        self.txns.lock().read_all(&self.engine, &self.info, request)
    }
}

impl TableAccess for SdkTable {
    fn def(&self) -> &Arc<TableDef> {
        &self.def
    }

    fn capabilities(&self) -> Capabilities {
        self.engine.capabilities()
    }

    fn supports_filters(&self, filters: &[Filter]) -> Vec<FilterSupport> {
        self.engine.supports_filters(&self.info, filters)
    }

    fn scan(&self, request: &ScanRequest, _layout: ScanLayout) -> Result<TableScan> {
        if request.with_row_ids {
            require_update_delete(&self.engine, &self.info, "UPDATE or DELETE")?;
        }
        // The engine's row count, when the scan returns all rows (pushed filters make it
        // unknown). An estimate: it is the plugin's word.
        let rows = if request.filters.is_empty() {
            self.txns
                .lock()
                .row_count(&self.engine, &self.info)
                .and_then(|r| usize::try_from(r).ok())
                .map(|r| request.limit.map_or(r, |l| r.min(l)))
        } else {
            None
        };
        let partition = SdkPartition {
            engine: self.engine.clone(),
            info: self.info.clone(),
            txns: self.txns.clone(),
            request: request.clone(),
        };
        Ok(TableScan {
            partitions: vec![Arc::new(partition)],
            rows: vec![rows],
            exact_rows: false,
            blocking: true,
            detail: String::new(),
            column_stats: Vec::new(),
            prunable: false,
        })
    }

    fn lookup(&self, keys: &[ArrayRef]) -> Result<Option<RecordBatch>> {
        if !self.engine.capabilities().indexes {
            return Ok(None);
        }
        // The engine's index answers the key filter; the rows it returns are checked against
        // the keys again, so the result is exact whatever the engine returns (and a key with
        // no filter form reads the table).
        let request = ScanRequest {
            filters: key_filter(&self.def, keys)?.into_iter().collect(),
            ..ScanRequest::default()
        };
        let rows = self.read_all(&request)?;
        let wanted: HashSet<Vec<u8>> = encode_key_columns(&self.def, keys)?.into_iter().collect();
        let keep: BooleanArray = encode_keys(&self.def, &rows)?
            .iter()
            .map(|k| Some(wanted.contains(k)))
            .collect();
        Ok(Some(filter_record_batch(&rows, &keep)?))
    }

    fn insert(&self, rows: RecordBatch) -> Result<()> {
        let mut txns = self.txns.lock();
        check_primary_key(&mut txns, &self.engine, &self.def, &rows, &HashSet::new())?;
        txns.insert(&self.engine, &self.info, rows)
    }

    fn delete(&self, ids: &[RowId]) -> Result<u64> {
        let ids = UInt64Array::from(ids.to_vec());
        self.txns.lock().delete(&self.engine, &self.info, &ids)
    }

    fn update(&self, ids: &[RowId], rows: RecordBatch) -> Result<u64> {
        let replaced: HashSet<u64> = ids.iter().copied().collect();
        let ids = UInt64Array::from(ids.to_vec());
        let mut txns = self.txns.lock();
        check_primary_key(&mut txns, &self.engine, &self.def, &rows, &replaced)?;
        txns.update(&self.engine, &self.info, &ids, rows)
    }

    /// Engines store whole rows: when the columns change, every row is rewritten in the new
    /// schema (new columns get their DEFAULT now, as PostgreSQL does when it rewrites a
    /// table).
    fn change_schema(&self, new: &TableDef, fill: &ColumnFill<'_>) -> Result<()> {
        if new.schema == self.def.schema {
            return Ok(());
        }
        require_update_delete(
            &self.engine,
            &self.info,
            "ALTER TABLE (a rewrite of its rows)",
        )?;
        let all = self.read_all(&ScanRequest {
            with_row_ids: true,
            ..ScanRequest::default()
        })?;
        let n_old = self.def.schema.fields().len();
        let ids = all
            .column(n_old)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .cloned()
            .ok_or_else(|| Error::Storage("engine returned bad row ids".into()))?;
        if ids.is_empty() {
            return Ok(());
        }
        let mut cols: Vec<ArrayRef> = all.columns()[..n_old].to_vec();
        for i in n_old..new.schema.fields().len() {
            cols.push(fill(i, all.num_rows())?);
        }
        let rows = table_batch(new, cols)?;
        let mut txns = self.txns.lock();
        txns.delete(&self.engine, &self.info, &ids)?;
        txns.insert(&self.engine, &table_info(new), rows)
    }

    /// Engines with UPDATE/DELETE rewrite every row in the narrower schema, under the same
    /// storage (its location and options stay); append-only engines cannot.
    fn drop_columns(&self, new: &TableDef, kept: &[usize]) -> Result<bool> {
        if !self.engine.capabilities().update_delete {
            return Ok(false);
        }
        let all = self.read_all(&ScanRequest {
            with_row_ids: true,
            ..ScanRequest::default()
        })?;
        let n_old = self.def.schema.fields().len();
        let ids = all
            .column(n_old)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .cloned()
            .ok_or_else(|| Error::Storage("engine returned bad row ids".into()))?;
        if ids.is_empty() {
            return Ok(true);
        }
        let rows = table_batch(new, kept.iter().map(|&i| all.column(i).clone()).collect())?;
        let mut txns = self.txns.lock();
        txns.delete(&self.engine, &self.info, &ids)?;
        txns.insert(&self.engine, &table_info(new), rows)?;
        Ok(true)
    }
}

/// The filter selecting rows whose key is one of `keys`; `None` when a key value has no
/// filter form.
fn key_filter(def: &TableDef, keys: &[ArrayRef]) -> Result<Option<Filter>> {
    let rows = keys.first().map_or(0, |k| k.len());
    let mut alternatives = Vec::with_capacity(rows);
    for row in 0..rows {
        let mut parts = Vec::with_capacity(keys.len());
        for (&col, values) in def.primary_key.iter().zip(keys) {
            let Some(value) = to_value(&ScalarValue::try_from_array(values, row)?) else {
                return Ok(None);
            };
            parts.push(Filter::Compare {
                op: phantomdb_plugin_sdk::storage::CompareOp::Eq,
                left: Box::new(Filter::Column(def.schema.field(col).name().clone())),
                right: Box::new(Filter::Literal(value)),
            });
        }
        alternatives.push(Filter::And(parts));
    }
    Ok(Some(Filter::Or(alternatives)))
}

/// The scan of an SDK engine: one partition, read on a blocking thread.
struct SdkPartition {
    engine: Arc<dyn StorageEngine>,
    info: TableInfo,
    txns: SharedEngineTxns,
    request: ScanRequest,
}

impl ScanPartition for SdkPartition {
    fn open(&self) -> Result<Batches> {
        // The transaction handle is released before streaming: the statement may end (and
        // commit) while the reader is still drained.
        let reader = self
            .txns
            .lock()
            .scan(&self.engine, &self.info, &self.request)?;
        let engine = self.engine.name().to_string();
        Ok(Box::new(reader.map(move |b| {
            b.map_err(|e| storage_error(&engine, e.to_string()))
        })))
    }
}

/// Checks new rows against the primary key of a table whose engine does not enforce keys,
/// by reading the key columns of the stored rows. `replaced` are row ids whose rows the
/// statement removes (an UPDATE's old rows).
fn check_primary_key(
    txns: &mut EngineTxns,
    engine: &Arc<dyn StorageEngine>,
    def: &TableDef,
    new_rows: &RecordBatch,
    replaced: &HashSet<u64>,
) -> Result<()> {
    if def.primary_key.is_empty() || engine.capabilities().indexes || new_rows.num_rows() == 0 {
        return Ok(());
    }
    let info = table_info(def);
    let request = ScanRequest {
        projection: Some(def.primary_key.clone()),
        with_row_ids: !replaced.is_empty(),
        ..ScanRequest::default()
    };
    let stored = txns.read_all(engine, &info, &request)?;
    let key_cols: Vec<ArrayRef> = stored.columns()[..def.primary_key.len()].to_vec();
    let stored_keys = encode_key_columns(def, &key_cols)?;
    let ids = if replaced.is_empty() {
        None
    } else {
        stored
            .column(def.primary_key.len())
            .as_any()
            .downcast_ref::<UInt64Array>()
            .cloned()
    };
    let mut taken: HashSet<Vec<u8>> = HashSet::with_capacity(stored_keys.len());
    for (i, k) in stored_keys.into_iter().enumerate() {
        if ids
            .as_ref()
            .is_some_and(|ids| replaced.contains(&ids.value(i)))
        {
            continue;
        }
        taken.insert(k);
    }
    let new_keys = encode_keys(def, new_rows)?;
    let mut seen = HashSet::with_capacity(new_keys.len());
    for (row, key) in new_keys.iter().enumerate() {
        if taken.contains(key) || !seen.insert(key.as_slice()) {
            return Err(duplicate_key(def, new_rows, row));
        }
    }
    Ok(())
}
