//! Reading tables: the [`DataView`] both a snapshot and the write transaction offer, and the
//! committed snapshot [`ReadView`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::segment::{
    conform, ipc_stream_rows, open_segment, Bitmap, Pending, SegmentRef, SegmentSnapshot,
};
use super::store::{load_catalog, load_roles, load_settings, Store};
use super::*;
use crate::catalog::{Catalog, TableDef};
use crate::error::{Error, Result};
use crate::table::RowId;

/// Read access to tables, implemented by read snapshots and by the open write transaction.
pub trait DataView: Send + Sync + std::fmt::Debug {
    /// The segments of the table, without reading their rows (see [`DataView::load`]).
    fn segment_refs(&self, table: &TableDef) -> Result<Vec<SegmentRef>>;
    /// All rows (deleted ones included) of one segment, only the columns in `projection`
    /// (positions in the table's schema).
    fn load(&self, table: &TableDef, seg: &SegmentRef, projection: &[usize])
        -> Result<RecordBatch>;
    /// The catalog as of this view.
    fn catalog(&self) -> Arc<Catalog>;
    /// Rows whose primary key is one of `keys` (encoded with [`encode_keys`]).
    fn lookup(&self, table: &TableDef, keys: &[Vec<u8>]) -> Result<RecordBatch>;
    /// Marks the database suspect after storage panicked ([`super::guard`]).
    fn mark_suspect(&self);
    /// Checks the latest committed state of the database ([`super::check`]).
    fn check(&self) -> super::CheckReport;
    /// Row ids in a range of secondary index `index_id` (see [`super::index`]).
    fn index_range(
        &self,
        index_id: u64,
        lo: std::ops::Bound<&[u8]>,
        hi: std::ops::Bound<&[u8]>,
    ) -> Result<Vec<crate::table::RowId>>;
    /// The row id of each primary key in `keys` (encoded), if present.
    fn key_ids(
        &self,
        table: &TableDef,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<crate::table::RowId>>>;
}

/// A committed, durable state of the database: a redb read transaction with its catalog.
/// The store keeps the latest one (published after every durable commit) for new readers to
/// share, so a read starts without opening a redb transaction of its own.
pub(crate) struct Snapshot {
    pub(super) txn: redb::ReadTransaction,
    pub(super) catalog: Arc<Catalog>,
    pub(super) data_version: u64,
    /// Primary-key indexes opened in `txn`, by table id (opening one walks redb's table of
    /// tables; point reads reuse them).
    key_indexes: parking_lot::Mutex<HashMap<u64, Arc<KeyIndex>>>,
}

/// A primary-key index opened in a snapshot.
type KeyIndex = redb::ReadOnlyTable<&'static [u8], u64>;

impl Snapshot {
    /// The primary-key index of table `table_id` in this snapshot.
    fn key_index(&self, table_id: u64) -> Result<Arc<KeyIndex>> {
        if let Some(index) = self.key_indexes.lock().get(&table_id) {
            return Ok(index.clone());
        }
        let name = pk_table_name(table_id);
        let def: TableDefinition<&[u8], u64> = TableDefinition::new(&name);
        let index = Arc::new(self.txn.open_table(def)?);
        self.key_indexes.lock().insert(table_id, index.clone());
        Ok(index)
    }
}

/// A committed snapshot, as one statement (or one `BEGIN ... COMMIT`) reads it.
pub struct ReadView {
    pub(super) store: Arc<Store>,
    pub(super) snap: Arc<Snapshot>,
}

impl std::fmt::Debug for ReadView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadView")
            .field("data_version", &self.snap.data_version)
            .finish()
    }
}

impl ReadView {
    /// The version of the data this snapshot sees; changes with every commit.
    pub fn data_version(&self) -> u64 {
        self.snap.data_version
    }
}

pub(super) fn read_segments<S, D>(
    store: &Store,
    table: &TableDef,
    segments: &S,
    deletes: &D,
) -> Result<Vec<SegmentSnapshot>>
where
    S: ReadableTable<(u64, u64), &'static [u8]>,
    D: ReadableTable<(u64, u64), &'static [u8]>,
{
    let mut out = Vec::new();
    for item in segments.range((table.id, 0)..=(table.id, u64::MAX))? {
        let (k, v) = item?;
        let (_, seg) = k.value();
        let stored = store.segment(table.id, seg, || {
            Ok(open_segment(table, seg, v.value())?.to_vec())
        })?;
        let deleted = deletes
            .get((table.id, seg))?
            .map(|b| Bitmap::read(table, seg, b.value()))
            .transpose()?;
        out.push(SegmentSnapshot {
            id: seg,
            batch: conform(table, &stored)?,
            deleted,
        });
    }
    Ok(out)
}

/// The rows whose encoded primary key is one of `keys`, found through `find` (the index),
/// read from the stored segments or from the open transaction's `pending` rows.
pub(super) fn lookup_rows<S>(
    store: &Store,
    table: &TableDef,
    keys: &[Vec<u8>],
    mut find: impl FnMut(&[u8]) -> Result<Option<RowId>>,
    segments: impl Fn() -> Result<S>,
    pending: Option<&Pending>,
) -> Result<RecordBatch>
where
    S: ReadableTable<(u64, u64), &'static [u8]>,
{
    // Group the hits by segment, keeping key order within a segment.
    let mut by_segment: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    let mut found_keys: BTreeMap<u64, Vec<&[u8]>> = BTreeMap::new();
    for key in keys {
        if let Some(id) = find(key.as_slice())? {
            let (seg, row) = split_row_id(id);
            by_segment.entry(seg).or_default().push(row as u32);
            found_keys.entry(seg).or_default().push(key.as_slice());
        }
    }
    let past_end = |seg: u64| {
        Error::Corrupt(format!(
            "the primary-key index of table \"{}\" points past the end of segment {seg}",
            table.name
        ))
    };
    let mut parts = Vec::with_capacity(by_segment.len());
    for (seg, rows) in by_segment {
        let part = match pending.filter(|p| p.segment == seg) {
            Some(p) => {
                if rows.iter().any(|&r| r as usize >= p.rows) {
                    return Err(past_end(seg));
                }
                p.take(&table.schema_ref(), &rows)?
            }
            None => {
                let stored = store.segment(table.id, seg, || {
                    segments()?
                        .get((table.id, seg))?
                        .map(|v| Ok(open_segment(table, seg, v.value())?.to_vec()))
                        .unwrap_or_else(|| {
                            Err(Error::Corrupt(format!(
                                "the primary-key index of table \"{}\" points to missing \
                                 segment {seg}",
                                table.name
                            )))
                        })
                })?;
                if rows.iter().any(|&r| r as usize >= stored.num_rows()) {
                    return Err(past_end(seg));
                }
                let part = match rows.as_slice() {
                    [row] => stored.slice(*row as usize, 1),
                    _ => take_record_batch(&stored, &UInt32Array::from(rows))?,
                };
                // Segments written in the table's current schema need no re-labelling.
                if part.schema().fields() == table.schema.fields() {
                    part
                } else {
                    conform(table, &part)?
                }
            }
        };
        // A damaged index entry must not hand back another row: each row found has its key.
        let wanted = found_keys.remove(&seg).unwrap_or_default();
        if crate::table::keys::encode_keys(table, &part)? != wanted {
            return Err(Error::Corrupt(format!(
                "the primary-key index of table \"{}\" points to rows of other keys in \
                 segment {seg}",
                table.name
            )));
        }
        parts.push(part);
    }
    match parts.len() {
        0 => Ok(RecordBatch::new_empty(table.schema_ref())),
        1 => Ok(parts.remove(0)),
        _ => Ok(concat_batches(&table.schema_ref(), &parts)?),
    }
}

pub(super) fn stored_refs<S, D, T>(
    table: &TableDef,
    segments: &S,
    deletes: &D,
    stats: Option<&T>,
) -> Result<Vec<SegmentRef>>
where
    S: ReadableTable<(u64, u64), &'static [u8]>,
    D: ReadableTable<(u64, u64), &'static [u8]>,
    T: ReadableTable<(u64, u64), &'static [u8]>,
{
    let mut out = Vec::new();
    for item in segments.range((table.id, 0)..=(table.id, u64::MAX))? {
        // The value is on the leaf page just read for the key: counting its rows is free.
        let (k, v) = item?;
        let (_, seg) = k.value();
        let deleted = deletes
            .get((table.id, seg))?
            .map(|b| Bitmap::read(table, seg, b.value()))
            .transpose()?;
        out.push(SegmentRef {
            id: seg,
            rows: ipc_stream_rows(open_segment(table, seg, v.value())?),
            deleted,
            pending: None,
            stats: match stats {
                Some(t) => super::stats::read(t, table, seg)?,
                None => None,
            },
        });
    }
    Ok(out)
}

pub(super) fn load_ref<S>(
    store: &Store,
    table: &TableDef,
    seg: &SegmentRef,
    projection: &[usize],
    segments: impl FnOnce() -> Result<S>,
) -> Result<RecordBatch>
where
    S: ReadableTable<(u64, u64), &'static [u8]>,
{
    if let Some(p) = &seg.pending {
        return Ok(conform(table, p)?.project(projection)?);
    }
    store.segment_columns(table, seg.id, projection, || {
        segments()?
            .get((table.id, seg.id))?
            .map(|v| Ok(open_segment(table, seg.id, v.value())?.to_vec()))
            .transpose()
    })
}

impl DataView for ReadView {
    fn mark_suspect(&self) {
        self.store.mark_suspect();
    }

    fn check(&self) -> super::CheckReport {
        self.store.check()
    }

    fn index_range(
        &self,
        index_id: u64,
        lo: std::ops::Bound<&[u8]>,
        hi: std::ops::Bound<&[u8]>,
    ) -> Result<Vec<crate::table::RowId>> {
        super::index::read_range(&self.snap.txn, index_id, lo, hi)
    }

    fn key_ids(
        &self,
        table: &TableDef,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<crate::table::RowId>>> {
        super::index::key_ids(&self.snap.txn, table, keys)
    }

    fn catalog(&self) -> Arc<Catalog> {
        self.snap.catalog.clone()
    }

    fn segment_refs(&self, table: &TableDef) -> Result<Vec<SegmentRef>> {
        let data_version = self.snap.data_version;
        let key = (table.id, data_version);
        if let Some(refs) = self.store.refs.lock().get(&key) {
            return Ok(refs.as_ref().clone());
        }
        let stats = match self.snap.txn.open_table(super::stats::STATS) {
            Ok(t) => Some(t),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let refs = stored_refs(
            table,
            &self.snap.txn.open_table(SEGMENTS)?,
            &self.snap.txn.open_table(DELETES)?,
            stats.as_ref(),
        )?;
        let mut cache = self.store.refs.lock();
        // Lists of older versions are of no use to new snapshots.
        cache.retain(|(_, v), _| *v >= data_version);
        cache.insert(key, Arc::new(refs.clone()));
        Ok(refs)
    }

    fn load(
        &self,
        table: &TableDef,
        seg: &SegmentRef,
        projection: &[usize],
    ) -> Result<RecordBatch> {
        load_ref(&self.store, table, seg, projection, || {
            Ok(self.snap.txn.open_table(SEGMENTS)?)
        })
    }

    fn lookup(&self, table: &TableDef, keys: &[Vec<u8>]) -> Result<RecordBatch> {
        let index = self.snap.key_index(table.id)?;
        lookup_rows(
            &self.store,
            table,
            keys,
            |key| Ok(index.get(key)?.map(|v| v.value())),
            || Ok(self.snap.txn.open_table(SEGMENTS)?),
            None,
        )
    }
}

impl Store {
    /// A consistent snapshot of the latest durable commit (shared with every reader that
    /// starts before the next one).
    pub fn read_view(self: &Arc<Self>) -> Result<Arc<ReadView>> {
        let snap = match self.published.load_full() {
            Some(snap) => snap,
            None => {
                let _order = self.publish_lock.lock();
                match self.published.load_full() {
                    Some(snap) => snap,
                    None => {
                        let snap = Arc::new(self.snapshot()?);
                        self.published.store(Some(snap.clone()));
                        snap
                    }
                }
            }
        };
        Ok(Arc::new(ReadView {
            store: self.clone(),
            snap,
        }))
    }

    /// Publishes the current state for new readers; called after a durable commit, with the
    /// writer gate held (so snapshots are published in commit order).
    pub(super) fn publish(&self) -> Result<()> {
        let _order = self.publish_lock.lock();
        let snap = Arc::new(self.snapshot()?);
        self.published.store(Some(snap));
        Ok(())
    }

    /// A new redb read transaction with its catalog (cached by catalog version).
    fn snapshot(&self) -> Result<Snapshot> {
        super::guard::guarded(
            || "the catalog".into(),
            || self.mark_suspect(),
            || self.snapshot_unguarded(),
        )
    }

    fn snapshot_unguarded(&self) -> Result<Snapshot> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let catalog_version = meta
            .get(META_CATALOG_VERSION)?
            .map(|v| v.value())
            .unwrap_or(0);
        let data_version = meta.get(META_DATA_VERSION)?.map(|v| v.value()).unwrap_or(0);
        drop(meta);
        let cached = self
            .catalog_cache
            .lock()
            .as_ref()
            .filter(|(v, _)| *v == catalog_version)
            .map(|(_, c)| c.clone());
        let catalog = match cached {
            Some(c) => c,
            None => {
                let mut c = load_catalog(&txn.open_table(CATALOG)?)?;
                match txn.open_table(SETTINGS) {
                    Ok(t) => c.settings = load_settings(&t)?,
                    Err(redb::TableError::TableDoesNotExist(_)) => {}
                    Err(e) => return Err(e.into()),
                }
                match txn.open_table(ROLES) {
                    Ok(t) => c.roles = load_roles(&t)?,
                    Err(redb::TableError::TableDoesNotExist(_)) => {}
                    Err(e) => return Err(e.into()),
                }
                let c = Arc::new(c);
                *self.catalog_cache.lock() = Some((catalog_version, c.clone()));
                c
            }
        };
        Ok(Snapshot {
            txn,
            catalog,
            data_version,
            key_indexes: parking_lot::Mutex::new(HashMap::new()),
        })
    }
}
