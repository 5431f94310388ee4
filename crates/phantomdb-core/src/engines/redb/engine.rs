//! `redb` as a [`TableEngine`]: segment scans split into partitions, key lookups through the
//! primary-key index, and DML in the statement's redb write transaction.

use std::collections::{HashSet, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parking_lot::Mutex;
use phantomdb_plugin_sdk::storage::{Capabilities, Options, ScanRequest};

use super::read::DataView;
use super::row_id;
use super::segment::SegmentRef;
use super::write::WriteTxn;
use crate::catalog::{IndexDef, TableDef, DEFAULT_ENGINE};
use crate::engines::{
    Batches, ColumnFill, ScanLayout, ScanPartition, StatementTxns, TableAccess, TableEngine,
    TableScan, UnitFilter,
};
use crate::error::{Error, Result};
use crate::table::keys::{encode_key_columns, encode_keys};
use crate::table::stats::merge_units;
use crate::table::{RowId, ROW_ID_COLUMN};

/// The built-in `redb` engine. Stateless: a table's data lives in the statement's redb
/// transaction.
pub(crate) struct RedbEngine;

impl TableEngine for RedbEngine {
    fn name(&self) -> &str {
        DEFAULT_ENGINE
    }

    fn description(&self) -> &str {
        "PhantomDB's default storage: one crash-safe redb file per database"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            transactions: true,
            update_delete: true,
            indexes: true,
            statistics: false,
        }
    }

    fn create_table(&self, def: &TableDef, txns: &StatementTxns) -> Result<Options> {
        if !def.options.is_empty() {
            return Err(Error::Unsupported(format!(
                "storage engine {DEFAULT_ENGINE} takes no options (WITH ...)"
            )));
        }
        txns.write()?.lock().create_storage(def)?;
        Ok(Options::new())
    }

    /// A redb table's rows go with its catalog entry, in the same transaction.
    fn drop_table(&self, _def: &TableDef, _txns: &StatementTxns) -> Result<()> {
        Ok(())
    }

    fn open(&self, def: Arc<TableDef>, txns: &StatementTxns) -> Result<Arc<dyn TableAccess>> {
        Ok(Arc::new(RedbTable {
            def,
            view: txns.view.clone(),
            write: txns.write.clone(),
        }))
    }
}

/// A redb table in one statement.
struct RedbTable {
    def: Arc<TableDef>,
    view: Arc<dyn DataView>,
    write: Option<Arc<Mutex<WriteTxn>>>,
}

impl RedbTable {
    /// Runs a storage call under the panic guard ([`super::guard`]).
    fn guard<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        guard(&self.def, self.view.as_ref(), f)
    }

    fn write(&self) -> Result<&Mutex<WriteTxn>> {
        self.write.as_deref().ok_or_else(|| {
            Error::Transaction(
                crate::SqlState::InternalError,
                "a reading statement tried to write".into(),
            )
        })
    }
}

impl TableAccess for RedbTable {
    fn def(&self) -> &Arc<TableDef> {
        &self.def
    }

    fn capabilities(&self) -> Capabilities {
        RedbEngine.capabilities()
    }

    fn scan(&self, request: &ScanRequest, layout: ScanLayout) -> Result<TableScan> {
        let columns = request
            .projection
            .clone()
            .unwrap_or_else(|| (0..self.def.schema.fields().len()).collect());
        let refs = self.guard(|| self.view.segment_refs(&self.def))?;
        let count = refs.len();
        let mut parts: Vec<Vec<SegmentRef>> =
            vec![Vec::new(); layout.partitions.max(1).min(refs.len()).max(1)];
        let k = parts.len();
        for (i, r) in refs.into_iter().enumerate() {
            parts[i % k].push(r);
        }
        let rows = parts
            .iter()
            .map(|segs| {
                let rows = segs
                    .iter()
                    .map(SegmentRef::live_rows)
                    .sum::<Option<usize>>();
                rows.map(|r| request.limit.map_or(r, |l| r.min(l)))
            })
            .collect();
        let width = self.def.schema.fields().len();
        let column_stats = parts
            .iter()
            .map(|segs| merge_units(segs.iter().map(|s| s.stats.as_deref()), width))
            .collect();
        let mut fields: Vec<Field> = columns
            .iter()
            .map(|&c| self.def.schema.field(c).clone())
            .collect();
        if request.with_row_ids {
            fields.push(Field::new(ROW_ID_COLUMN, DataType::UInt64, false));
        }
        let reader = Arc::new(SegmentReader {
            def: self.def.clone(),
            view: self.view.clone(),
            columns,
            schema: Arc::new(Schema::new(fields)),
            with_row_ids: request.with_row_ids,
            batch_size: layout.batch_size.max(1),
        });
        let partitions = parts
            .into_iter()
            .map(|segments| {
                Arc::new(SegmentPartition {
                    reader: reader.clone(),
                    segments,
                    limit: request.limit,
                }) as Arc<dyn ScanPartition>
            })
            .collect();
        Ok(TableScan {
            partitions,
            rows,
            exact_rows: true,
            blocking: false,
            detail: format!("segments={count}"),
            column_stats,
            prunable: true,
        })
    }

    fn lookup(&self, keys: &[ArrayRef]) -> Result<Option<RecordBatch>> {
        let encoded = encode_key_columns(&self.def, keys)?;
        Ok(Some(self.guard(|| self.view.lookup(&self.def, &encoded))?))
    }

    fn insert(&self, rows: RecordBatch) -> Result<()> {
        self.guard(|| {
            let mut w = self.write()?.lock();
            let keys = w.check_insert(&self.def, &rows, &HashSet::new())?;
            w.append(&self.def, rows, &keys)
        })
    }

    fn delete(&self, ids: &[RowId]) -> Result<u64> {
        self.guard(|| {
            let mut w = self.write()?.lock();
            let keys = old_keys(&w, &self.def, ids)?;
            w.delete(&self.def, ids, &keys)?;
            Ok(ids.len() as u64)
        })
    }

    fn update(&self, ids: &[RowId], rows: RecordBatch) -> Result<u64> {
        self.guard(|| {
            let mut w = self.write()?.lock();
            let old = old_keys(&w, &self.def, ids)?;
            let replaced: HashSet<Vec<u8>> = old.iter().cloned().collect();
            let new_keys = w.check_insert(&self.def, &rows, &replaced)?;
            w.delete(&self.def, ids, &old)?;
            w.append(&self.def, rows, &new_keys)?;
            Ok(ids.len() as u64)
        })
    }

    /// Stored segments keep the schema they were written in and are re-labelled when read
    /// (new columns read as their backfill value): only rows still buffered are written out
    /// first, in the old schema.
    fn change_schema(&self, _new: &TableDef, _fill: &ColumnFill<'_>) -> Result<()> {
        self.write()?.lock().flush_table(&self.def)
    }

    fn keeps_indexes(&self) -> bool {
        true
    }

    fn create_index(&self, index: &IndexDef) -> Result<()> {
        self.write()?.lock().index_create(&self.def, index)
    }

    fn drop_index(&self, index: &IndexDef) -> Result<()> {
        self.write()?.lock().index_drop(index.id)
    }

    fn index_range(
        &self,
        index: &IndexDef,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
    ) -> Result<Option<Vec<RowId>>> {
        if !index.stored {
            return Ok(None);
        }
        Ok(Some(self.view.index_range(index.id, lo, hi)?))
    }

    fn key_ids(&self, keys: &[Vec<u8>]) -> Result<Option<Vec<Option<RowId>>>> {
        if self.def.primary_key.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.view.key_ids(&self.def, keys)?))
    }

    fn fetch(&self, ids: &[RowId]) -> Result<Option<(RecordBatch, Vec<RowId>)>> {
        Ok(Some(super::index::fetch_rows(
            self.view.as_ref(),
            &self.def,
            ids,
        )?))
    }
}

/// Rows of `def` whose primary key is one of `keys` (encoded), read through `view` under the
/// panic guard: the prepared key lookup's synchronous fast path, which opens no table access.
pub(crate) fn lookup_keys(
    view: &dyn DataView,
    def: &TableDef,
    keys: &[Vec<u8>],
) -> Result<RecordBatch> {
    guard(def, view, || view.lookup(def, keys))
}

/// Inserts one row (a value of each column's type, table order) into `def`, a table of
/// this engine without constraints the core checks, under the panic guard: the prepared
/// one-row insert's fast path ([`WriteTxn::insert_row`]).
pub(crate) fn insert_row(
    w: &Mutex<WriteTxn>,
    def: &TableDef,
    row: Vec<datafusion::common::ScalarValue>,
) -> Result<()> {
    guard(def, w, || w.lock().insert_row(def, row))
}

/// Runs a storage call on `table` under the panic guard ([`super::guard`]).
fn guard<T>(table: &TableDef, view: &dyn DataView, f: impl FnOnce() -> Result<T>) -> Result<T> {
    super::guard::guarded(
        || format!("table \"{}\"", table.name),
        || view.mark_suspect(),
        f,
    )
}

/// The encoded primary keys of the stored rows `ids` (empty when the table has no key).
fn old_keys(w: &WriteTxn, def: &TableDef, ids: &[RowId]) -> Result<Vec<Vec<u8>>> {
    if def.primary_key.is_empty() || ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = w.fetch(def, ids)?;
    encode_keys(def, &rows)
}

/// How a scan reads one segment: the projected columns only, row ids last when asked.
struct SegmentReader {
    def: Arc<TableDef>,
    view: Arc<dyn DataView>,
    columns: Vec<usize>,
    schema: SchemaRef,
    with_row_ids: bool,
    batch_size: usize,
}

impl SegmentReader {
    /// The live rows of one segment.
    fn read(&self, seg: &SegmentRef) -> Result<RecordBatch> {
        let batch = guard(&self.def, self.view.as_ref(), || {
            self.view.load(&self.def, seg, &self.columns)
        })?;
        let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
        if self.with_row_ids {
            let ids: UInt64Array = (0..batch.num_rows()).map(|i| row_id(seg.id, i)).collect();
            cols.push(Arc::new(ids));
        }
        let batch = RecordBatch::try_new_with_options(
            self.schema.clone(),
            cols,
            &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )?;
        Ok(match &seg.deleted {
            None => batch,
            Some(bm) => {
                arrow::compute::filter_record_batch(&batch, &bm.keep_mask(batch.num_rows()))?
            }
        })
    }
}

/// Some of a table's segments, read one at a time when executed.
struct SegmentPartition {
    reader: Arc<SegmentReader>,
    segments: Vec<SegmentRef>,
    limit: Option<usize>,
}

impl ScanPartition for SegmentPartition {
    fn open(&self) -> Result<Batches> {
        Ok(Box::new(SegmentBatches {
            reader: self.reader.clone(),
            segments: self.segments.iter().cloned().collect(),
            current: None,
            remaining: self.limit.unwrap_or(usize::MAX),
            filter: None,
        }))
    }

    fn open_filtered(&self, filter: Arc<dyn UnitFilter>) -> Result<Batches> {
        Ok(Box::new(SegmentBatches {
            reader: self.reader.clone(),
            segments: self.segments.iter().cloned().collect(),
            current: None,
            remaining: self.limit.unwrap_or(usize::MAX),
            filter: Some(filter),
        }))
    }
}

/// Iterates a partition's segments, cutting each into batches of the planner's size.
struct SegmentBatches {
    reader: Arc<SegmentReader>,
    segments: VecDeque<SegmentRef>,
    /// The segment being cut, and the offset of its next batch.
    current: Option<(RecordBatch, usize)>,
    remaining: usize,
    /// Consulted as each segment is reached (a join's filter may have been filled since the
    /// previous one).
    filter: Option<Arc<dyn UnitFilter>>,
}

impl Iterator for SegmentBatches {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.remaining == 0 {
                return None;
            }
            if let Some((batch, offset)) = &mut self.current {
                let left = batch.num_rows() - *offset;
                if left > 0 {
                    let len = left.min(self.reader.batch_size).min(self.remaining);
                    let out = batch.slice(*offset, len);
                    *offset += len;
                    self.remaining -= len;
                    return Some(Ok(out));
                }
                self.current = None;
            }
            let seg = self.segments.pop_front()?;
            if let Some(f) = &self.filter {
                if !f.may_match(seg.stats.as_deref()) {
                    continue;
                }
            }
            match self.reader.read(&seg) {
                Ok(batch) => self.current = Some((batch, 0)),
                Err(e) => {
                    self.segments.clear();
                    return Some(Err(e));
                }
            }
        }
    }
}
