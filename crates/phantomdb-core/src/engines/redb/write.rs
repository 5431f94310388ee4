//! The write transaction: catalog changes, appends through a per-table buffer, deletions as
//! bitmaps, the primary-key index, and compaction at commit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use datafusion::common::ScalarValue;
use redb::{ReadableTable, TableDefinition};

use super::checksum::{seal, Kind};
use super::group::CommitMode;
use super::read::{load_ref, lookup_rows, read_segments, stored_refs, DataView};
use super::segment::{compact_views, encode_segment, Bitmap, Pending, SegmentRef, SegmentSnapshot};
use super::store::{load_catalog, load_roles, load_settings, Store};
use super::*;
use crate::catalog::{Catalog, CatalogEntry, RoleDef, TableDef};
use crate::error::{Error, Result, SqlState};
use crate::table::keys::{duplicate_key, encode_keys};
use crate::table::stats::UnitStats;

mod compaction;
mod view;

/// New primary-key entries gathered before they are written to redb in one sorted run.
const KEY_RUN: usize = 65_536;

/// The single-writer lock of a database, released when dropped.
pub(crate) struct WriterLock(#[allow(dead_code)] tokio::sync::OwnedMutexGuard<()>);

/// The open write transaction. At most one exists per database at a time.
pub struct WriteTxn {
    pub(super) store: Arc<Store>,
    pub(super) txn: Option<redb::WriteTransaction>,
    pub(super) catalog: Arc<Catalog>,
    pub(super) catalog_version: u64,
    pub(super) catalog_changed: bool,
    pub(super) data_version: u64,
    pub(super) pending: HashMap<u64, Pending>,
    pub(super) touched: HashSet<u64>,
    /// Primary-key entries this transaction added and has not written to redb yet, per
    /// table: written in key order (one cursor run) at commit or once [`KEY_RUN`] gather.
    /// Reads of the index look here first.
    pub(super) new_keys: HashMap<u64, BTreeMap<Vec<u8>, RowId>>,
    /// Per table, the greatest key in redb's primary-key index as last read (`None`: the
    /// index was empty): a new key above it needs no lookup there. Deleting keys keeps it
    /// an upper bound; writing keys raises it.
    pub(super) key_bounds: HashMap<u64, Option<Vec<u8>>>,
    /// The schema one-row inserts last buffered rows in, by table id (kept, not rebuilt
    /// per row).
    pub(super) row_schema: Option<(u64, arrow::datatypes::SchemaRef)>,
    pub(super) _gate: tokio::sync::OwnedMutexGuard<()>,
}

impl std::fmt::Debug for WriteTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTxn")
            .field("data_version", &self.data_version)
            .finish()
    }
}

impl WriteTxn {
    pub(super) fn txn(&self) -> Result<&redb::WriteTransaction> {
        self.txn.as_ref().ok_or_else(|| {
            Error::Transaction(
                SqlState::InternalError,
                "transaction already finished".into(),
            )
        })
    }

    /// The catalog including this transaction's changes.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.clone()
    }

    /// Allocates a new table id.
    pub fn allocate_table_id(&self) -> u64 {
        self.store.next_table.fetch_add(1, Ordering::SeqCst)
    }

    /// Writes (creates or replaces) a catalog entry.
    pub fn put_entry(&mut self, name: &str, entry: CatalogEntry) -> Result<()> {
        let bytes = seal(Kind::Catalog, &entry.encode()?);
        self.txn()?
            .open_table(CATALOG)?
            .insert(name, bytes.as_slice())?;
        let mut cat = (*self.catalog).clone();
        cat.insert(name.to_string(), entry);
        self.catalog = Arc::new(cat);
        self.catalog_changed = true;
        Ok(())
    }

    /// Sets a database setting (versioned with the catalog).
    pub fn put_setting(&mut self, name: &str, value: &str) -> Result<()> {
        self.txn()?.open_table(SETTINGS)?.insert(name, value)?;
        let mut cat = (*self.catalog).clone();
        cat.settings.insert(name.to_string(), value.to_string());
        self.catalog = Arc::new(cat);
        self.catalog_changed = true;
        Ok(())
    }

    /// Writes (creates or replaces) a role.
    pub fn put_role(&mut self, role: RoleDef) -> Result<()> {
        let bytes = seal(Kind::Role, &role.encode()?);
        self.txn()?
            .open_table(ROLES)?
            .insert(role.name.as_str(), bytes.as_slice())?;
        let mut cat = (*self.catalog).clone();
        cat.roles.insert(role.name.clone(), Arc::new(role));
        self.catalog = Arc::new(cat);
        self.catalog_changed = true;
        Ok(())
    }

    /// Removes a role.
    pub fn remove_role(&mut self, name: &str) -> Result<()> {
        self.txn()?.open_table(ROLES)?.remove(name)?;
        let mut cat = (*self.catalog).clone();
        cat.roles.remove(name);
        self.catalog = Arc::new(cat);
        self.catalog_changed = true;
        Ok(())
    }

    /// Removes a catalog entry (and, for a table, all its data).
    pub fn remove_entry(&mut self, name: &str) -> Result<()> {
        let removed = {
            let mut cat = (*self.catalog).clone();
            let removed = cat.remove(name);
            self.catalog = Arc::new(cat);
            removed
        };
        self.txn()?.open_table(CATALOG)?.remove(name)?;
        self.catalog_changed = true;
        if let Some(CatalogEntry::Table(t)) = removed {
            for index in t.indexes.iter().filter(|i| i.stored) {
                self.index_drop(index.id)?;
            }
            self.drop_data(t.id)?;
        }
        Ok(())
    }

    /// Renames a catalog entry, keeping its data.
    pub fn rename_entry(&mut self, from: &str, to: &str, entry: CatalogEntry) -> Result<()> {
        {
            let mut cat = (*self.catalog).clone();
            cat.remove(from);
            self.catalog = Arc::new(cat);
        }
        self.txn()?.open_table(CATALOG)?.remove(from)?;
        self.put_entry(to, entry)
    }

    /// Creates the primary-key index of a new table.
    pub fn create_storage(&mut self, table: &TableDef) -> Result<()> {
        if !table.primary_key.is_empty() {
            let name = pk_table_name(table.id);
            let def: TableDefinition<&[u8], u64> = TableDefinition::new(&name);
            self.txn()?.open_table(def)?;
        }
        Ok(())
    }

    fn drop_data(&mut self, table_id: u64) -> Result<()> {
        self.pending.remove(&table_id);
        self.new_keys.remove(&table_id);
        self.key_bounds.remove(&table_id);
        let txn = self.txn()?;
        {
            let mut segs = txn.open_table(SEGMENTS)?;
            segs.retain_in((table_id, 0)..=(table_id, u64::MAX), |_, _| false)?;
            let mut dels = txn.open_table(DELETES)?;
            dels.retain_in((table_id, 0)..=(table_id, u64::MAX), |_, _| false)?;
            let mut stats = txn.open_table(super::stats::STATS)?;
            stats.retain_in((table_id, 0)..=(table_id, u64::MAX), |_, _| false)?;
        }
        let name = pk_table_name(table_id);
        let def: TableDefinition<&[u8], u64> = TableDefinition::new(&name);
        txn.delete_table(def)?;
        self.touched.remove(&table_id);
        Ok(())
    }

    /// Checks `batch` (in table schema) against NOT NULL and primary key constraints, treating
    /// the keys in `replaced` as free (their rows are being deleted by the same statement).
    pub fn check_insert(
        &mut self,
        table: &TableDef,
        batch: &RecordBatch,
        replaced: &HashSet<Vec<u8>>,
    ) -> Result<Vec<Vec<u8>>> {
        for (i, field) in table.schema.fields().iter().enumerate() {
            if !field.is_nullable() && batch.column(i).null_count() > 0 {
                return Err(Error::Constraint(
                    SqlState::NotNullViolation,
                    format!(
                        "NULL value in column \"{}\" of table \"{}\" violates NOT NULL",
                        field.name(),
                        table.name
                    ),
                ));
            }
        }
        if table.primary_key.is_empty() {
            return Ok(Vec::new());
        }
        let keys = encode_keys(table, batch)?;
        self.check_keys(table, &keys, replaced, |row| {
            duplicate_key(table, batch, row)
        })?;
        Ok(keys)
    }

    /// Checks that no key of `keys` (encoded primary keys of new rows) is taken, by the
    /// table (save the keys in `replaced`) or by another of `keys`; `duplicate` makes the
    /// error for the row at a position.
    fn check_keys(
        &mut self,
        table: &TableDef,
        keys: &[Vec<u8>],
        replaced: &HashSet<Vec<u8>>,
        duplicate: impl Fn(usize) -> Error,
    ) -> Result<()> {
        self.stored_key_bound(table.id)?;
        let bound = self.key_bounds.get(&table.id).and_then(Option::as_ref);
        let txn = self.txn.as_ref().ok_or_else(|| {
            Error::Transaction(
                SqlState::InternalError,
                "transaction already finished".into(),
            )
        })?;
        let added = self.new_keys.get(&table.id);
        let mut index = None;
        let mut seen = HashSet::with_capacity(if keys.len() > 1 { keys.len() } else { 0 });
        for (row, key) in keys.iter().enumerate() {
            let dup_in_statement = keys.len() > 1 && !seen.insert(key.as_slice());
            let dup_in_table = !replaced.contains(key)
                && (added.is_some_and(|m| m.contains_key(key))
                    || (bound.is_some_and(|b| key <= b) && {
                        if index.is_none() {
                            let name = pk_table_name(table.id);
                            let def: TableDefinition<&[u8], u64> = TableDefinition::new(&name);
                            index = Some(txn.open_table(def)?);
                        }
                        match &index {
                            Some(t) => t.get(key.as_slice())?.is_some(),
                            None => false,
                        }
                    }));
            if dup_in_statement || dup_in_table {
                return Err(duplicate(row));
            }
        }
        Ok(())
    }

    /// Inserts one row of a table without stored secondary indexes: `row` holds a value of
    /// each column's type (typed NULLs), in table order. NOT NULL and the primary key are
    /// checked as [`Self::check_insert`] checks a batch; the row is buffered as values
    /// (no one-row arrays).
    pub fn insert_row(&mut self, table: &TableDef, row: Vec<ScalarValue>) -> Result<()> {
        let one_row = |row: &[ScalarValue]| -> Result<RecordBatch> {
            let arrays = row
                .iter()
                .map(|v| Ok(v.to_array()?))
                .collect::<Result<Vec<_>>>()?;
            Ok(RecordBatch::try_new_with_options(
                table.schema_ref(),
                arrays,
                &arrow::array::RecordBatchOptions::new().with_row_count(Some(1)),
            )?)
        };
        if table.indexes.iter().any(|i| i.stored) || row.len() != table.schema.fields().len() {
            let batch = one_row(&row)?;
            let keys = self.check_insert(table, &batch, &HashSet::new())?;
            return self.append(table, batch, &keys);
        }
        for (field, value) in table.schema.fields().iter().zip(&row) {
            if !field.is_nullable() && value.is_null() {
                return Err(Error::Constraint(
                    SqlState::NotNullViolation,
                    format!(
                        "NULL value in column \"{}\" of table \"{}\" violates NOT NULL",
                        field.name(),
                        table.name
                    ),
                ));
            }
        }
        let key = match table.primary_key.as_slice() {
            [] => None,
            [column] => match crate::table::keys::scalar_key(&row[*column]) {
                Some(key) => Some(key),
                None => encode_keys(table, &one_row(&row)?)?.pop(),
            },
            _ => encode_keys(table, &one_row(&row)?)?.pop(),
        };
        if let Some(key) = &key {
            let keys = std::slice::from_ref(key);
            self.check_keys(table, keys, &HashSet::new(), |_| match one_row(&row) {
                Ok(batch) => duplicate_key(table, &batch, 0),
                Err(e) => e,
            })?;
        }
        self.touched.insert(table.id);
        let store = self.store.clone();
        let pending = self
            .pending
            .entry(table.id)
            .or_insert_with(|| Pending::new(store.allocate_segment()));
        let id = row_id(pending.segment, pending.rows);
        let schema = match &self.row_schema {
            Some((t, schema)) if *t == table.id && schema.fields() == table.schema.fields() => {
                schema.clone()
            }
            _ => {
                let schema = table.schema_ref();
                self.row_schema = Some((table.id, schema.clone()));
                schema
            }
        };
        pending.push_row(&schema, row)?;
        let full = pending.rows >= SEGMENT_ROWS;
        if let Some(key) = key {
            let added = self.new_keys.entry(table.id).or_default();
            added.insert(key, id);
            if added.len() >= KEY_RUN {
                self.write_keys(table.id)?;
            }
        }
        if full {
            self.flush(table)?;
        }
        Ok(())
    }

    /// The greatest key in redb's primary-key index of table `table_id` (read once per
    /// transaction, then kept up to date).
    fn stored_key_bound(&mut self, table_id: u64) -> Result<()> {
        if self.key_bounds.contains_key(&table_id) {
            return Ok(());
        }
        let name = pk_table_name(table_id);
        let def: TableDefinition<&[u8], u64> = TableDefinition::new(&name);
        let last = self
            .txn()?
            .open_table(def)?
            .last()?
            .map(|(k, _)| k.value().to_vec());
        self.key_bounds.insert(table_id, last);
        Ok(())
    }

    /// Writes the primary-key entries the transaction gathered for table `table_id` to
    /// redb, in key order: runs of keys falling into one gap of the index go in through one
    /// cursor (no traversal per key); a key already there (compaction moving a row) is
    /// overwritten.
    fn write_keys(&mut self, table_id: u64) -> Result<()> {
        let Some(keys) = self.new_keys.remove(&table_id) else {
            return Ok(());
        };
        let Some(last) = keys.keys().next_back().cloned() else {
            return Ok(());
        };
        let name = pk_table_name(table_id);
        let def: TableDefinition<&[u8], u64> = TableDefinition::new(&name);
        {
            let mut index = self.txn()?.open_table(def)?;
            let mut keys = keys.into_iter().peekable();
            while keys.peek().is_some() {
                key_run(&mut index, &mut keys, table_id)?;
            }
        }
        if let Some(bound) = self.key_bounds.get_mut(&table_id) {
            if bound.as_ref().is_none_or(|b| *b < last) {
                *bound = Some(last);
            }
        }
        Ok(())
    }

    /// The row id of each encoded primary key, as this transaction sees the index.
    fn key_ids(&self, table: &TableDef, keys: &[Vec<u8>]) -> Result<Vec<Option<RowId>>> {
        let added = self.new_keys.get(&table.id);
        let stored = super::index::key_ids(self.txn()?, table, keys)?;
        Ok(keys
            .iter()
            .zip(stored)
            .map(|(k, s)| added.and_then(|m| m.get(k).copied()).or(s))
            .collect())
    }

    /// Appends rows (already checked with [`Self::check_insert`], whose keys are `keys`).
    pub fn append(&mut self, table: &TableDef, batch: RecordBatch, keys: &[Vec<u8>]) -> Result<()> {
        self.touched.insert(table.id);
        let mut offset = 0;
        while offset < batch.num_rows() {
            let store = self.store.clone();
            let pending = self
                .pending
                .entry(table.id)
                .or_insert_with(|| Pending::new(store.allocate_segment()));
            let take = (SEGMENT_ROWS - pending.rows).min(batch.num_rows() - offset);
            let part = batch.slice(offset, take);
            let segment = pending.segment;
            let first_row = pending.rows;
            pending.push(part)?;
            let full = pending.rows >= SEGMENT_ROWS;
            if !keys.is_empty() {
                let added = self.new_keys.entry(table.id).or_default();
                for (i, key) in keys[offset..offset + take].iter().enumerate() {
                    added.insert(key.clone(), row_id(segment, first_row + i));
                }
                if added.len() >= KEY_RUN {
                    self.write_keys(table.id)?;
                }
            }
            if table.indexes.iter().any(|i| i.stored) {
                self.index_add(
                    table,
                    &batch.slice(offset, take),
                    row_id(segment, first_row),
                )?;
            }
            if full {
                self.flush(table)?;
            }
            offset += take;
        }
        Ok(())
    }

    /// Writes the table's buffered rows as a segment.
    fn flush(&mut self, table: &TableDef) -> Result<()> {
        let Some(p) = self.pending.remove(&table.id) else {
            return Ok(());
        };
        let batch = compact_views(p.batch(&table.schema_ref())?)?;
        let bytes = encode_segment(&batch)?;
        let replaced = self
            .txn()?
            .open_table(SEGMENTS)?
            .insert((table.id, p.segment), bytes.as_slice())?
            .is_some();
        if replaced {
            // Segment ids are never reused: the stored next segment id is damaged.
            return Err(Error::Corrupt(format!(
                "{} already exists (the database's next segment id is damaged)",
                super::checksum::segment_name(&table.name, p.segment)
            )));
        }
        super::stats::write(self.txn()?, table.id, p.segment, &UnitStats::of(&batch)?)?;
        self.store.cache.put((table.id, p.segment), batch);
        Ok(())
    }

    /// Marks rows deleted and removes their index entries (`keys`: their encoded primary keys).
    pub fn delete(&mut self, table: &TableDef, rows: &[RowId], keys: &[Vec<u8>]) -> Result<()> {
        self.touched.insert(table.id);
        self.index_remove_ids(table, rows)?;
        let mut by_segment: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for &id in rows {
            let (seg, row) = split_row_id(id);
            by_segment.entry(seg).or_default().push(row);
        }
        let txn = self.txn()?;
        {
            let mut dels = txn.open_table(DELETES)?;
            for (seg, rows) in by_segment {
                let mut bm = dels
                    .get((table.id, seg))?
                    .map(|b| Bitmap::read(table, seg, b.value()))
                    .transpose()?
                    .unwrap_or_default();
                for r in rows {
                    bm.set(r);
                }
                dels.insert((table.id, seg), bm.store().as_slice())?;
            }
        }
        if !keys.is_empty() {
            let mut added = self.new_keys.remove(&table.id);
            let stored: Vec<&Vec<u8>> = keys
                .iter()
                .filter(|k| added.as_mut().is_none_or(|m| m.remove(*k).is_none()))
                .collect();
            if let Some(added) = added.filter(|m| !m.is_empty()) {
                self.new_keys.insert(table.id, added);
            }
            if !stored.is_empty() {
                let name = pk_table_name(table.id);
                let def: TableDefinition<&[u8], u64> = TableDefinition::new(&name);
                let mut index = self.txn()?.open_table(def)?;
                for key in stored {
                    index.remove(key.as_slice())?;
                }
            }
        }
        Ok(())
    }

    /// Makes everything durable and visible to new readers.
    ///
    /// Returns the writer lock, still held: the caller releases it once everything that
    /// commits with this transaction (the engines' publish step) is done, so no other writer
    /// starts in between.
    ///
    /// `may_defer`: the commit may join a group ([`super::group`]). It then returns the
    /// commit's sequence number, and the commit is durable (and visible to new readers) only
    /// once [`Store::wait_durable`] for it returns; without one it is durable now.
    pub fn commit(mut self, may_defer: bool) -> Result<(WriterLock, Option<u64>)> {
        self.store.check_trusted()?;
        // Before compaction, which moves rows and rewrites their entries directly.
        let gathered: Vec<u64> = self.new_keys.keys().copied().collect();
        for id in gathered {
            self.write_keys(id)?;
        }
        let touched: Vec<u64> = self.touched.iter().copied().collect();
        for id in touched {
            let Some(table) = self.catalog.table_by_id(id).cloned() else {
                continue;
            };
            self.flush(&table)?;
            self.compact(&table)?;
        }
        let txn = self.txn.take().ok_or_else(|| {
            Error::Transaction(
                SqlState::InternalError,
                "transaction already finished".into(),
            )
        })?;
        {
            let mut meta = txn.open_table(META)?;
            meta.insert(
                META_NEXT_SEGMENT,
                self.store.next_segment.load(Ordering::SeqCst),
            )?;
            meta.insert(
                META_NEXT_TABLE,
                self.store.next_table.load(Ordering::SeqCst),
            )?;
            meta.insert(META_DATA_VERSION, self.data_version + 1)?;
            if self.catalog_changed {
                meta.insert(META_CATALOG_VERSION, self.catalog_version + 1)?;
            }
        }
        let mut txn = txn;
        let mode = self.store.group.mode(may_defer);
        let durability = match mode {
            CommitMode::Immediate => redb::Durability::Immediate,
            CommitMode::Deferred => redb::Durability::None,
        };
        txn.set_durability(durability).map_err(Error::storage)?;
        txn.commit()?;
        if self.catalog_changed {
            *self.store.catalog_cache.lock() =
                Some((self.catalog_version + 1, self.catalog.clone()));
        }
        let seq = self.store.group.committed(&mode);
        let wait = match mode {
            CommitMode::Immediate => {
                self.store.publish()?;
                None
            }
            CommitMode::Deferred => Some(seq),
        };
        Ok((WriterLock(self._gate), wait))
    }

    /// Discards the transaction.
    pub fn rollback(mut self) -> Result<()> {
        if let Some(txn) = self.txn.take() {
            // After storage panicked, aborting may panic too: the statement already failed.
            let store = self.store.clone();
            super::guard::guarded(
                || "the rollback".into(),
                || store.mark_suspect(),
                move || Ok(txn.abort()?),
            )?;
        }
        Ok(())
    }
}

/// Inserts the next keys of `keys` (ascending) that fall into one gap of the primary-key
/// index through one cursor, replacing an entry whose key is already there.
fn key_run(
    index: &mut redb::Table<&'static [u8], u64>,
    keys: &mut std::iter::Peekable<std::collections::btree_map::IntoIter<Vec<u8>, RowId>>,
    table_id: u64,
) -> Result<()> {
    let Some((first, _)) = keys.peek() else {
        return Ok(());
    };
    let mut cursor = index.lower_bound_mut(std::ops::Bound::Included(first.as_slice()))?;
    let mut first_of_run = true;
    while let Some((key, id)) = keys.peek() {
        match cursor.insert_before(key.as_slice(), *id) {
            Ok(()) => {
                keys.next();
                first_of_run = false;
                continue;
            }
            Err(redb::CursorError::UnorderedKey) => {}
            Err(e) => return Err(redb::Error::from(e).into()),
        }
        let existing = cursor
            .peek_next()?
            .is_some_and(|(k, _)| k.value() == key.as_slice());
        if existing {
            // Compaction moved the row: replace the entry.
            cursor.remove_next()?;
            continue;
        }
        if first_of_run {
            return Err(Error::Corrupt(format!(
                "the primary-key index of table id {table_id} is out of order"
            )));
        }
        // Past the next stored key: the next run starts there.
        break;
    }
    cursor.close()?;
    Ok(())
}

impl WriteTxn {
    /// Writes the table's buffered rows out (before its schema changes).
    pub fn flush_table(&mut self, table: &TableDef) -> Result<()> {
        self.flush(table)
    }

    /// Recomputes the column statistics of every segment of the table (`ANALYZE`); returns
    /// how many segments were read.
    pub fn analyze(&mut self, table: &TableDef) -> Result<usize> {
        self.flush(table)?;
        let segments = self.segments(table)?;
        for s in &segments {
            // Bounds of the live rows (tighter after deletes); the row count stays the stored
            // one, which the null count is compared with.
            let mut stats = UnitStats::of(&s.live()?)?;
            stats.rows = s.batch.num_rows();
            super::stats::write(self.txn()?, table.id, s.id, &stats)?;
        }
        // New readers must list the segments again to see the new statistics.
        self.touched.insert(table.id);
        Ok(segments.len())
    }

    /// The stored rows with the given ids, in segment order.
    pub fn fetch(&self, table: &TableDef, ids: &[RowId]) -> Result<RecordBatch> {
        let mut by_segment: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
        for &id in ids {
            let (seg, row) = split_row_id(id);
            by_segment.entry(seg).or_default().push(row as u32);
        }
        let segments: HashMap<u64, SegmentSnapshot> = self
            .segments(table)?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        let mut parts = Vec::with_capacity(by_segment.len());
        for (seg, rows) in by_segment {
            let s = segments
                .get(&seg)
                .ok_or_else(|| Error::Storage(format!("row id points to missing segment {seg}")))?;
            parts.push(take_record_batch(&s.batch, &UInt32Array::from(rows))?);
        }
        Ok(concat_batches(&table.schema_ref(), &parts)?)
    }
}

impl Store {
    /// Starts the (single) write transaction, waiting at most `timeout` for another writer.
    ///
    /// When `expected_version` is given, fails if anything was committed since the snapshot
    /// with that data version was taken (the transaction read stale data).
    pub async fn begin_write(
        self: &Arc<Self>,
        timeout: std::time::Duration,
        expected_version: Option<u64>,
    ) -> Result<WriteTxn> {
        // Counted while waiting: a commit made meanwhile joins a group (see `group`).
        self.group.waiting.fetch_add(1, Ordering::SeqCst);
        let gate = tokio::time::timeout(timeout, self.write_gate.clone().lock_owned()).await;
        self.group.waiting.fetch_sub(1, Ordering::SeqCst);
        let gate = match gate {
            Ok(g) => g,
            Err(_) => {
                return Err(Error::Transaction(
                    SqlState::LockNotAvailable,
                    format!(
                        "database is locked: another transaction is writing (waited {} ms)",
                        timeout.as_millis()
                    ),
                ))
            }
        };
        self.check_trusted()?;
        if expected_version.is_some() {
            // An explicit transaction may hold the gate for long: no group waits on it.
            self.settle_group()?;
        }
        let txn = self.db.begin_write()?;
        let (catalog_version, data_version) = {
            let meta = txn.open_table(META)?;
            let c = meta
                .get(META_CATALOG_VERSION)?
                .map(|v| v.value())
                .unwrap_or(0);
            let d = meta.get(META_DATA_VERSION)?.map(|v| v.value()).unwrap_or(0);
            (c, d)
        };
        if let Some(expected) = expected_version {
            if expected != data_version {
                return Err(Error::Transaction(
                    SqlState::SerializationFailure,
                    "could not serialize access: the database changed since this transaction \
                     began; ROLLBACK and retry"
                        .into(),
                ));
            }
        }
        let cached = self
            .catalog_cache
            .lock()
            .as_ref()
            .filter(|(v, _)| *v == catalog_version)
            .map(|(_, c)| c.clone());
        let catalog = match cached {
            Some(c) => {
                // The first write transaction creates these tables (older files lack them).
                txn.open_table(SETTINGS)?;
                txn.open_table(ROLES)?;
                c
            }
            None => {
                let mut catalog = load_catalog(&txn.open_table(CATALOG)?)?;
                catalog.settings = load_settings(&txn.open_table(SETTINGS)?)?;
                catalog.roles = load_roles(&txn.open_table(ROLES)?)?;
                Arc::new(catalog)
            }
        };
        Ok(WriteTxn {
            store: self.clone(),
            txn: Some(txn),
            catalog,
            catalog_version,
            catalog_changed: false,
            data_version,
            pending: HashMap::new(),
            touched: HashSet::new(),
            new_keys: HashMap::new(),
            key_bounds: HashMap::new(),
            row_schema: None,
            _gate: gate,
        })
    }
}
