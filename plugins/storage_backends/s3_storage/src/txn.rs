//! Transactions: snapshot per table at first access, buffered writes, optimistic commit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use object_store::path::Path;
use phantomdb_plugin_sdk::arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt64Array};
use phantomdb_plugin_sdk::arrow_schema::SchemaRef;
use phantomdb_plugin_sdk::{
    BatchStream, CommitError, ScanRequest, StorageTransaction, TableInfo, TableStatistics, Value,
};

use crate::cache::CachedFile;
use crate::config::{random_u64, Located};
use crate::files::{conform, conform_by_name, encode_parquet};
use crate::manifest::{
    data_path, describe_schema, DataFile, Manifest, PutError, CONFLICT, DATA_DIR,
};
use crate::prune::{array_value, extreme_index, fold_bounds, values_to_array, StatsTable};
use crate::scan::{prune_files, ScanStream, Source};
use crate::state::{commit_lock, Inner};

/// Rows per data file written by a commit at most (row indexes must fit in 32 bits; moderate
/// files keep rewrites after deletes and cache entries small).
const MAX_FILE_ROWS: usize = 1 << 20;

/// One table touched by a transaction.
struct TableTxn {
    loc: Located,
    name: String,
    schema: SchemaRef,
    row_group_size: usize,
    snapshot: Arc<Manifest>,
    /// Rows per file of the snapshot, by file id.
    file_rows: HashMap<u64, u64>,
    /// Inserted rows, each batch with an id from the reserved range (>= snapshot.next_file_id).
    pending: Vec<(u64, RecordBatch)>,
    next_id: u64,
    /// Deleted row indexes per file id (snapshot files and pending batches).
    deleted: HashMap<u64, Arc<HashSet<u32>>>,
    /// Data files written by `prepare`.
    written: Vec<Path>,
    new_files: Vec<(String, Arc<CachedFile>)>,
    new_manifest: Option<Manifest>,
}

impl TableTxn {
    fn dirty(&self) -> bool {
        !self.pending.is_empty() || self.deleted.values().any(|d| !d.is_empty())
    }

    /// Rows of the file or pending batch `id`, if it exists.
    fn rows_of(&self, id: u64) -> Option<u64> {
        if let Some(r) = self.file_rows.get(&id) {
            return Some(*r);
        }
        self.pending
            .binary_search_by_key(&id, |(i, _)| *i)
            .ok()
            .map(|i| self.pending[i].1.num_rows() as u64)
    }

    fn conflict(&self, detail: &str) -> CommitError {
        CommitError::Conflict(format!(
            "{CONFLICT} of s3_storage table {} ({detail}); retry the transaction",
            self.name
        ))
    }
}

/// A transaction of [`crate::S3StorageEngine`].
pub(crate) struct Txn {
    inner: Arc<Inner>,
    /// By location key (sorted: commit locks are taken in this order).
    tables: BTreeMap<String, TableTxn>,
    prepared: bool,
}

fn split_id(id: u64) -> (u64, u32) {
    (id >> 32, (id & 0xffff_ffff) as u32)
}

impl Txn {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self {
            inner,
            tables: BTreeMap::new(),
            prepared: false,
        }
    }

    /// The table's state in this transaction, taking its snapshot on first access.
    fn table(&mut self, table: &TableInfo) -> Result<&mut TableTxn, String> {
        let h = self.inner.table(table)?;
        let key = h.loc.key.clone();
        if !self.tables.contains_key(&key) {
            let snapshot = self.inner.latest_manifest(&h.loc)?.ok_or_else(|| {
                format!(
                    "s3_storage: table {} has no data at {} (no _manifest; was it dropped?)",
                    table.name, h.loc.url.text
                )
            })?;
            let file_rows = snapshot.files.iter().map(|f| (f.id, f.rows)).collect();
            let next_id = snapshot.next_file_id;
            self.tables.insert(
                key.clone(),
                TableTxn {
                    loc: h.loc,
                    name: table.name.clone(),
                    schema: table.schema.clone(),
                    row_group_size: h.row_group_size,
                    snapshot,
                    file_rows,
                    pending: Vec::new(),
                    next_id,
                    deleted: HashMap::new(),
                    written: Vec::new(),
                    new_files: Vec::new(),
                    new_manifest: None,
                },
            );
        }
        let t = self
            .tables
            .get_mut(&key)
            .ok_or("s3_storage: internal error: table state missing")?;
        t.schema = table.schema.clone();
        t.name = table.name.clone();
        t.row_group_size = h.row_group_size;
        Ok(t)
    }

    fn writable(&mut self, table: &TableInfo) -> Result<&mut TableTxn, String> {
        if self.prepared {
            return Err("s3_storage: the transaction is already prepared".to_string());
        }
        self.table(table)
    }

    /// Validates row ids; returns (file id, row index) per non-null id.
    fn resolve_ids(t: &TableTxn, row_ids: &UInt64Array) -> Result<Vec<Option<(u64, u32)>>, String> {
        row_ids
            .iter()
            .map(|id| {
                let Some(id) = id else { return Ok(None) };
                let (file, row) = split_id(id);
                match t.rows_of(file) {
                    Some(rows) if u64::from(row) < rows => Ok(Some((file, row))),
                    _ => Err(format!(
                        "s3_storage: row id {id} does not exist in table {}",
                        t.name
                    )),
                }
            })
            .collect()
    }

    /// Marks rows deleted; returns for each id whether it was newly deleted.
    fn mark_deleted(t: &mut TableTxn, ids: &[Option<(u64, u32)>]) -> Vec<bool> {
        ids.iter()
            .map(|id| match id {
                Some((file, row)) => {
                    Arc::make_mut(t.deleted.entry(*file).or_default()).insert(*row)
                }
                None => false,
            })
            .collect()
    }

    fn add_rows(t: &mut TableTxn, batch: RecordBatch) -> Result<(), String> {
        let batch = conform(batch, &t.schema)?;
        let mut offset = 0;
        while offset < batch.num_rows() {
            let len = (batch.num_rows() - offset).min(u32::MAX as usize);
            t.pending.push((t.next_id, batch.slice(offset, len)));
            t.next_id += 1;
            offset += len;
        }
        Ok(())
    }

    /// Writes the new data files and builds the next manifest of every table written.
    fn prepare_all(&mut self) -> Result<(), CommitError> {
        let inner = self.inner.clone();
        for t in self.tables.values_mut().filter(|t| t.dirty()) {
            if t.new_manifest.is_some() {
                continue;
            }
            // Fail before writing anything if another commit already won.
            if inner.manifest_exists(&t.loc, t.snapshot.version + 1)? {
                inner.metrics.add(&inner.metrics.conflicts, 1);
                return Err(
                    t.conflict("a newer version was committed after this transaction read it")
                );
            }
            let mut rows: Vec<RecordBatch> = Vec::new();
            let mut kept: Vec<DataFile> = Vec::new();
            for f in &t.snapshot.files {
                let Some(del) = t.deleted.get(&f.id).filter(|d| !d.is_empty()) else {
                    kept.push(f.clone());
                    continue;
                };
                if del.len() as u64 >= f.rows {
                    continue; // every row deleted: just drop the file
                }
                // Rewrite the file without the deleted rows.
                let file = inner.spawn_fetch(&t.loc, &f.path)?.wait()?;
                let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::new_with_metadata(
                    file.bytes.clone(),
                    file.meta.clone(),
                )
                .with_batch_size(crate::scan::BATCH_ROWS)
                .build()
                .map_err(|e| format!("s3_storage: cannot read {}: {e}", f.path))?;
                let mut first = 0u32;
                for b in reader {
                    let b = b.map_err(|e| format!("s3_storage: cannot read {}: {e}", f.path))?;
                    let n = b.num_rows() as u32;
                    let live: BooleanArray = (first..first + n)
                        .map(|i| Some(!del.contains(&i)))
                        .collect();
                    first += n;
                    let b = arrow_select::filter::filter_record_batch(&b, &live)
                        .map_err(|e| e.to_string())?;
                    if b.num_rows() > 0 {
                        rows.push(conform_by_name(&b, &t.schema)?);
                    }
                }
            }
            for (id, b) in &t.pending {
                // Pending rows are in the schema of their INSERT; write the current one.
                let b = conform_by_name(b, &t.schema)?;
                let b = match t.deleted.get(id).filter(|d| !d.is_empty()) {
                    None => b,
                    Some(del) => {
                        let live: BooleanArray = (0..b.num_rows() as u32)
                            .map(|i| Some(!del.contains(&i)))
                            .collect();
                        arrow_select::filter::filter_record_batch(&b, &live)
                            .map_err(|e| e.to_string())?
                    }
                };
                if b.num_rows() > 0 {
                    rows.push(b);
                }
            }
            let mut next_file_id = t.snapshot.next_file_id.max(t.next_id);
            let mut new_files = Vec::new();
            for group in group_rows(rows, MAX_FILE_ROWS) {
                let n: usize = group.iter().map(|b| b.num_rows()).sum();
                let (bytes, meta) = encode_parquet(&group, t.schema.clone(), t.row_group_size)?;
                let relative = format!(
                    "{DATA_DIR}/{:016x}{:016x}.parquet",
                    random_u64(),
                    random_u64()
                );
                let path = data_path(&t.loc.url.prefix, &relative);
                t.written.push(path.clone());
                inner.put_file(&t.loc, path, bytes.clone())?;
                let columns = crate::prune::file_column_stats(&meta, &t.schema);
                if let Ok(parsed) = CachedFile::parse(bytes.clone(), &relative) {
                    t.new_files
                        .push((inner.file_key(&t.loc, &relative), Arc::new(parsed)));
                }
                new_files.push(DataFile {
                    id: next_file_id,
                    path: relative,
                    rows: n as u64,
                    size: bytes.len() as u64,
                    columns,
                });
                next_file_id += 1;
            }
            kept.extend(new_files);
            t.new_manifest = Some(Manifest {
                format: crate::manifest::FORMAT.to_string(),
                version: t.snapshot.version + 1,
                commit_id: format!("{:016x}", random_u64()),
                table_name: if t.snapshot.table_name.is_empty() {
                    t.name.clone()
                } else {
                    t.snapshot.table_name.clone()
                },
                next_file_id,
                schema: describe_schema(&t.schema),
                files: kept,
            });
        }
        self.prepared = true;
        Ok(())
    }

    /// Deletes the data files written by `prepare` (best effort).
    fn discard(&mut self) {
        for t in self.tables.values_mut() {
            let written = std::mem::take(&mut t.written);
            self.inner.delete_quietly(&t.loc, written);
            t.new_files.clear();
            t.new_manifest = None;
        }
        self.prepared = false;
    }

    fn publish(&mut self) -> Result<(), CommitError> {
        let keys: Vec<String> = self
            .tables
            .iter()
            .filter(|(_, t)| t.new_manifest.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        let locks: Vec<_> = keys.iter().map(|k| commit_lock(k)).collect();
        let _guards: Vec<_> = locks
            .iter()
            .map(|l| l.lock().unwrap_or_else(|e| e.into_inner()))
            .collect();
        let inner = self.inner.clone();
        // Validate every table first, so a multi-table commit rarely fails half-way.
        for k in &keys {
            let t = &self.tables[k];
            if inner.manifest_exists(&t.loc, t.snapshot.version + 1)? {
                inner.metrics.add(&inner.metrics.conflicts, 1);
                return Err(
                    t.conflict("a newer version was committed after this transaction read it")
                );
            }
        }
        let mut published: Vec<String> = Vec::new();
        for k in &keys {
            let t = self
                .tables
                .get_mut(k)
                .ok_or("s3_storage: internal error: table state missing")?;
            let Some(m) = t.new_manifest.take() else {
                continue;
            };
            let version = m.version;
            let commit_id = m.commit_id.clone();
            let outcome = match inner.put_manifest(&t.loc, m.clone()) {
                // The PUT failed without an answer (the store went away mid-request, say):
                // the manifest may have been written all the same. Ask the store which
                // commit owns the version before deleting data files it may list.
                Err(PutError::Other(e)) => match inner.manifest_commit(&t.loc, version) {
                    Ok(Some(id)) if id == commit_id => Ok(()),
                    Ok(Some(_)) => Err(PutError::Exists),
                    Ok(None) => Err(PutError::Other(e)),
                    Err(unknown) => {
                        // Keep the data files: the manifest may list them.
                        t.written.clear();
                        t.new_files.clear();
                        return Err(CommitError::Failed(format!(
                            "{e}; whether version {version} of s3_storage table {} was \
                             committed is unknown ({unknown}): it is either whole or absent \
                             once the store answers again",
                            t.name
                        )));
                    }
                },
                other => other,
            };
            match outcome {
                Ok(()) => {
                    inner.remember_manifest(&t.loc.key, Arc::new(m));
                    for (key, file) in t.new_files.drain(..) {
                        inner.cache.insert(key, file);
                    }
                    t.written.clear(); // now owned by the table
                    published.push(t.name.clone());
                }
                Err(e) => {
                    let msg = match e {
                        PutError::Exists => {
                            inner.metrics.add(&inner.metrics.conflicts, 1);
                            t.conflict(&format!("version {version} was written by another commit"))
                        }
                        PutError::Other(e) => CommitError::Failed(e),
                    };
                    if published.is_empty() {
                        return Err(msg);
                    }
                    // Some tables are published: no longer a clean conflict to retry.
                    return Err(CommitError::Failed(format!(
                        "{msg} -- the transaction was only partly committed: tables {} were published",
                        published.join(", ")
                    )));
                }
            }
        }
        inner.metrics.add(&inner.metrics.commits, 1);
        Ok(())
    }

    fn statistics_of(t: &TableTxn) -> Result<TableStatistics, String> {
        let deleted: u64 = t.deleted.values().map(|d| d.len() as u64).sum();
        let pending_rows: u64 = t.pending.iter().map(|(_, b)| b.num_rows() as u64).sum();
        let row_count = t.snapshot.row_count() + pending_rows
            - deleted.min(t.snapshot.row_count() + pending_rows);
        if row_count == 0 {
            return Ok(TableStatistics {
                row_count: Some(0),
                min_max: None,
            });
        }
        let files: Vec<&DataFile> = t.snapshot.files.iter().collect();
        let columns: Vec<(String, phantomdb_plugin_sdk::arrow_schema::DataType)> = t
            .schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        let file_stats = StatsTable::from_files(&files, &columns);
        let mut pairs: Vec<ArrayRef> = Vec::new();
        for (name, ty) in &columns {
            // Candidates: the bounds over all files, then each pending batch's extremes.
            let mut lo: Vec<Option<Value>> = Vec::new();
            let mut hi: Vec<Option<Value>> = Vec::new();
            let mut known = true;
            if !files.is_empty() {
                match file_stats.columns.get(name) {
                    Some(b) => {
                        let s = fold_bounds(b, file_stats.row_counts.as_ref());
                        let all_null = s.null_count == Some(t.snapshot.row_count());
                        if !all_null {
                            known &= s.min.is_some() && s.max.is_some();
                            lo.push(s.min);
                            hi.push(s.max);
                        }
                    }
                    None => known = false,
                }
            }
            for (_, b) in &t.pending {
                let Some(col) = b.column_by_name(name) else {
                    known = false;
                    continue;
                };
                if col.null_count() == col.len() {
                    continue;
                }
                let (Some(a), Some(z)) = (extreme_index(col, false), extreme_index(col, true))
                else {
                    known = false;
                    continue;
                };
                let (a, z) = (array_value(col, a), array_value(col, z));
                known &= a.is_some() && z.is_some();
                lo.push(a);
                hi.push(z);
            }
            let pick = |vals: &[Option<Value>], largest: bool| -> Option<Value> {
                let arr = values_to_array(vals.iter().map(|v| v.as_ref()), ty)?;
                let i = extreme_index(&arr, largest)?;
                array_value(&arr, i)
            };
            let (min, max) = if known && !lo.is_empty() {
                (pick(&lo, false), pick(&hi, true))
            } else {
                (None, None)
            };
            let pair = values_to_array([min.as_ref(), max.as_ref()].into_iter(), ty)
                .unwrap_or_else(|| phantomdb_plugin_sdk::arrow_array::new_null_array(ty, 2));
            pairs.push(pair);
        }
        // The batch must be in the table's exact schema (the host checks the type, nullability
        // included): without a bound for a NOT NULL column, give no bounds at all.
        let unknown_in_non_null = t
            .schema
            .fields()
            .iter()
            .zip(&pairs)
            .any(|(f, a)| !f.is_nullable() && a.null_count() > 0);
        if unknown_in_non_null {
            return Ok(TableStatistics {
                row_count: Some(row_count),
                min_max: None,
            });
        }
        let min_max = RecordBatch::try_new(t.schema.clone(), pairs)
            .map_err(|e| format!("s3_storage: cannot build statistics: {e}"))?;
        Ok(TableStatistics {
            row_count: Some(row_count),
            min_max: Some(min_max),
        })
    }
}

/// Splits batches into groups of at most `max_rows` rows (slicing batches at the boundary).
fn group_rows(batches: Vec<RecordBatch>, max_rows: usize) -> Vec<Vec<RecordBatch>> {
    let mut groups = Vec::new();
    let mut current: Vec<RecordBatch> = Vec::new();
    let mut rows = 0;
    for b in batches {
        let mut offset = 0;
        while offset < b.num_rows() {
            let take = (max_rows - rows).min(b.num_rows() - offset);
            current.push(b.slice(offset, take));
            rows += take;
            offset += take;
            if rows == max_rows {
                groups.push(std::mem::take(&mut current));
                rows = 0;
            }
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

impl StorageTransaction for Txn {
    fn scan(&mut self, table: &TableInfo, request: &ScanRequest) -> Result<BatchStream, String> {
        let inner = self.inner.clone();
        let t = self.table(table)?;
        let files = t
            .snapshot
            .files
            .iter()
            .filter_map(|f| {
                let del = t.deleted.get(&f.id).filter(|d| !d.is_empty()).cloned();
                match &del {
                    Some(d) if d.len() as u64 >= f.rows => None,
                    _ => Some((f.clone(), del)),
                }
            })
            .collect();
        let mut sources = prune_files(files, &request.filters, &t.schema, &inner);
        for (id, batch) in &t.pending {
            sources.push(Source::Memory {
                id: *id,
                batch: batch.clone(),
                deleted: t.deleted.get(id).filter(|d| !d.is_empty()).cloned(),
            });
        }
        let stream = ScanStream::new(inner, t.loc.clone(), &t.schema, request, sources)?;
        Ok(Box::new(stream))
    }

    fn insert(&mut self, table: &TableInfo, batch: RecordBatch) -> Result<(), String> {
        let t = self.writable(table)?;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        Self::add_rows(t, batch)
    }

    fn delete(&mut self, table: &TableInfo, row_ids: &UInt64Array) -> Result<u64, String> {
        let t = self.writable(table)?;
        let ids = Self::resolve_ids(t, row_ids)?;
        Ok(Self::mark_deleted(t, &ids)
            .into_iter()
            .filter(|d| *d)
            .count() as u64)
    }

    fn update(
        &mut self,
        table: &TableInfo,
        row_ids: &UInt64Array,
        rows: RecordBatch,
    ) -> Result<u64, String> {
        let t = self.writable(table)?;
        if rows.num_rows() != row_ids.len() {
            return Err(format!(
                "s3_storage: update got {} row ids but {} rows",
                row_ids.len(),
                rows.num_rows()
            ));
        }
        let ids = Self::resolve_ids(t, row_ids)?;
        let rows = conform(rows, &t.schema)?;
        let newly = Self::mark_deleted(t, &ids);
        let count = newly.iter().filter(|d| **d).count();
        if count > 0 {
            let replaced = if count == rows.num_rows() {
                rows
            } else {
                let mask = BooleanArray::from(newly);
                arrow_select::filter::filter_record_batch(&rows, &mask)
                    .map_err(|e| e.to_string())?
            };
            Self::add_rows(t, replaced)?;
        }
        Ok(count as u64)
    }

    fn statistics(&mut self, table: &TableInfo) -> Result<Option<TableStatistics>, String> {
        let t = self.table(table)?;
        Self::statistics_of(t).map(Some)
    }

    fn prepare(&mut self) -> Result<(), CommitError> {
        if self.prepared {
            return Ok(());
        }
        let r = self.prepare_all();
        if r.is_err() {
            self.discard();
        }
        r
    }

    fn commit(mut self: Box<Self>) -> Result<(), CommitError> {
        if !self.tables.values().any(|t| t.dirty()) {
            return Ok(()); // read-only: nothing to publish
        }
        if !self.prepared {
            if let Err(e) = self.prepare_all() {
                self.discard();
                return Err(e);
            }
        }
        let r = self.publish();
        if r.is_err() {
            self.discard();
        }
        r
    }

    fn rollback(mut self: Box<Self>) -> Result<(), String> {
        self.discard();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phantomdb_plugin_sdk::arrow_array::Int32Array;
    use phantomdb_plugin_sdk::arrow_schema::{Field, Schema};

    #[test]
    fn grouping() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "a",
            phantomdb_plugin_sdk::arrow_schema::DataType::Int32,
            false,
        )]));
        let b = |n: i32| {
            RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int32Array::from_iter_values(0..n))],
            )
            .expect("batch")
        };
        let groups = group_rows(vec![b(5), b(7), b(1)], 4);
        let sizes: Vec<usize> = groups
            .iter()
            .map(|g| g.iter().map(|b| b.num_rows()).sum())
            .collect();
        assert_eq!(sizes, vec![4, 4, 4, 1]);
        assert_eq!(split_id((3 << 32) | 7), (3, 7));
    }
}
