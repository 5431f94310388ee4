//! The `memory` storage engine: tables held in memory, lost when the process ends.
//!
//! It is written against the plugin SDK's storage traits, exactly as a plugin's engine would
//! be, and registered by the `builtin` plugin. Transactions are snapshot-isolated: a transaction
//! reads the table versions that were committed when it first touched each table, buffers its
//! writes in a private copy, and commits only if nobody committed those tables in between
//! ("could not serialize access" otherwise). Filters are applied exactly.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, RecordBatchIterator, UInt64Array};
use arrow::compute::filter_record_batch;
use parking_lot::Mutex;

use phantomdb_plugin_sdk::storage::{
    BatchStream, Capabilities, CommitError, Filter, FilterSupport, Options, ScanRequest,
    StorageEngine, StorageTransaction, TableInfo, TableStatistics,
};

/// One committed (or, inside a transaction, private) version of a table.
#[derive(Debug, Clone, Default)]
struct TableData {
    version: u64,
    /// Row batches with the ids of their rows.
    batches: Vec<(RecordBatch, UInt64Array)>,
    next_row_id: u64,
}

impl TableData {
    fn rows(&self) -> usize {
        self.batches.iter().map(|(b, _)| b.num_rows()).sum()
    }
}

/// The `memory` engine. One instance per database.
#[derive(Debug, Default)]
pub struct MemoryEngine {
    tables: Arc<Mutex<HashMap<u64, Arc<TableData>>>>,
}

impl MemoryEngine {
    /// A new, empty engine.
    pub fn new() -> Self {
        Self::default()
    }
}

impl StorageEngine for MemoryEngine {
    fn name(&self) -> &str {
        "memory"
    }

    fn description(&self) -> &str {
        "In-memory tables (transactional; empty again after a restart)"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            transactions: true,
            update_delete: true,
            indexes: false,
            statistics: true,
        }
    }

    fn create_table(&self, table: &TableInfo) -> Result<Options, String> {
        self.tables
            .lock()
            .insert(table.id, Arc::new(TableData::default()));
        Ok(table.options.clone())
    }

    fn drop_table(&self, table: &TableInfo) -> Result<(), String> {
        self.tables.lock().remove(&table.id);
        Ok(())
    }

    fn supports_filters(&self, _table: &TableInfo, filters: &[Filter]) -> Vec<FilterSupport> {
        vec![FilterSupport::Exact; filters.len()]
    }

    fn begin(&self) -> Result<Box<dyn StorageTransaction>, String> {
        Ok(Box::new(MemoryTxn {
            tables: self.tables.clone(),
            snapshot: HashMap::new(),
            writes: HashMap::new(),
        }))
    }
}

struct MemoryTxn {
    tables: Arc<Mutex<HashMap<u64, Arc<TableData>>>>,
    /// The committed version each table had when this transaction first touched it.
    snapshot: HashMap<u64, Arc<TableData>>,
    /// Private copies of the tables this transaction wrote.
    writes: HashMap<u64, TableData>,
}

impl MemoryTxn {
    /// Fails if a table this transaction wrote was committed by someone else since it was
    /// first read here.
    fn check_versions(&self, tables: &HashMap<u64, Arc<TableData>>) -> Result<(), CommitError> {
        for id in self.writes.keys() {
            let base = self.snapshot.get(id).map_or(0, |s| s.version);
            let now = tables.get(id).map_or(0, |t| t.version);
            if base != now {
                return Err(CommitError::Conflict(
                    "could not serialize access: a memory table changed since this transaction \
                     read it; ROLLBACK and retry"
                        .to_string(),
                ));
            }
        }
        Ok(())
    }

    fn snapshot_of(&mut self, id: u64) -> Arc<TableData> {
        if let Some(s) = self.snapshot.get(&id) {
            return s.clone();
        }
        // A table created before a restart has no data any more: it reads as empty.
        let current = self.tables.lock().get(&id).cloned().unwrap_or_default();
        self.snapshot.insert(id, current.clone());
        current
    }

    fn current(&mut self, id: u64) -> Arc<TableData> {
        match self.writes.get(&id) {
            Some(w) => Arc::new(w.clone()),
            None => self.snapshot_of(id),
        }
    }

    fn write(&mut self, id: u64) -> &mut TableData {
        if !self.writes.contains_key(&id) {
            let base = (*self.snapshot_of(id)).clone();
            self.writes.insert(id, base);
        }
        self.writes.entry(id).or_default()
    }

    fn remove_rows(data: &mut TableData, ids: &HashSet<u64>) -> Result<u64, String> {
        let mut removed = 0u64;
        let mut kept = Vec::with_capacity(data.batches.len());
        for (batch, row_ids) in data.batches.drain(..) {
            let keep: arrow::array::BooleanArray = row_ids
                .values()
                .iter()
                .map(|id| Some(!ids.contains(id)))
                .collect();
            let drop_count = keep.len() - keep.true_count();
            if drop_count == 0 {
                kept.push((batch, row_ids));
                continue;
            }
            removed += drop_count as u64;
            let b = filter_record_batch(&batch, &keep).map_err(|e| e.to_string())?;
            let r = arrow::compute::filter(&row_ids, &keep).map_err(|e| e.to_string())?;
            let r = r
                .as_any()
                .downcast_ref::<UInt64Array>()
                .cloned()
                .ok_or("row id filter changed type")?;
            if b.num_rows() > 0 {
                kept.push((b, r));
            }
        }
        data.batches = kept;
        Ok(removed)
    }
}

impl StorageTransaction for MemoryTxn {
    fn scan(&mut self, table: &TableInfo, request: &ScanRequest) -> Result<BatchStream, String> {
        let data = self.current(table.id);
        let schema = request.output_schema(&table.schema)?;
        let mut out = Vec::with_capacity(data.batches.len());
        let mut remaining = request.limit.unwrap_or(usize::MAX);
        for (batch, ids) in &data.batches {
            if remaining == 0 {
                break;
            }
            // Stored batches keep their columns by position; present them in the current
            // schema (names may have changed since).
            let batch = RecordBatch::try_new(table.schema.clone(), batch.columns().to_vec())
                .map_err(|e| format!("stored rows do not match table {}: {e}", table.name))?;
            let (batch, ids) = if request.filters.is_empty() {
                (batch, Arc::new(ids.clone()) as ArrayRef)
            } else {
                let mut mask: Option<arrow::array::BooleanArray> = None;
                for f in &request.filters {
                    let m = f.evaluate(&batch)?;
                    mask = Some(match mask {
                        None => m,
                        Some(prev) => {
                            arrow::compute::and_kleene(&prev, &m).map_err(|e| e.to_string())?
                        }
                    });
                }
                let mask = mask.ok_or("no filter mask")?;
                (
                    filter_record_batch(&batch, &mask).map_err(|e| e.to_string())?,
                    arrow::compute::filter(ids, &mask).map_err(|e| e.to_string())?,
                )
            };
            let n = batch.num_rows().min(remaining);
            remaining -= n;
            let out_batch =
                request.project(&table.schema, &batch.slice(0, n), Some(ids.slice(0, n)))?;
            out.push(Ok(out_batch));
        }
        Ok(Box::new(RecordBatchIterator::new(out, schema)))
    }

    fn insert(&mut self, table: &TableInfo, batch: RecordBatch) -> Result<(), String> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let data = self.write(table.id);
        let start = data.next_row_id;
        data.next_row_id += batch.num_rows() as u64;
        let ids = UInt64Array::from_iter_values(start..data.next_row_id);
        data.batches.push((batch, ids));
        Ok(())
    }

    fn delete(&mut self, table: &TableInfo, row_ids: &UInt64Array) -> Result<u64, String> {
        let ids: HashSet<u64> = row_ids.values().iter().copied().collect();
        Self::remove_rows(self.write(table.id), &ids)
    }

    fn update(
        &mut self,
        table: &TableInfo,
        row_ids: &UInt64Array,
        rows: RecordBatch,
    ) -> Result<u64, String> {
        let n = self.delete(table, row_ids)?;
        self.insert(table, rows)?;
        Ok(n)
    }

    fn statistics(&mut self, table: &TableInfo) -> Result<Option<TableStatistics>, String> {
        let rows = self.current(table.id).rows();
        Ok(Some(TableStatistics {
            row_count: Some(rows as u64),
            min_max: None,
        }))
    }

    fn prepare(&mut self) -> Result<(), CommitError> {
        self.check_versions(&self.tables.lock())
    }

    fn commit(mut self: Box<Self>) -> Result<(), CommitError> {
        // Checked and installed under one lock: no commit can slip in between.
        let tables = self.tables.clone();
        let mut tables = tables.lock();
        self.check_versions(&tables)?;
        for (id, mut data) in self.writes.drain() {
            data.version = tables.get(&id).map_or(0, |t| t.version) + 1;
            tables.insert(id, Arc::new(data));
        }
        Ok(())
    }

    fn rollback(self: Box<Self>) -> Result<(), String> {
        Ok(())
    }
}
