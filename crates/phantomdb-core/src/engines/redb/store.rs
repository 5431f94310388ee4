//! Opening a database file (checking and upgrading its format version) and starting
//! transactions on it.

use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::compute::concat_batches;
use arrow::ipc::reader::StreamReader;
use parking_lot::Mutex;
use redb::ReadableTable;

use super::cache::{DecodedCache, SegmentCache};
use super::checksum::{seal, unseal, Kind};
use super::group::GroupCommit;
use super::read::Snapshot;
use super::segment::{backfill, decode_segment, own_buffers, SegmentRef};
use super::*;
use crate::catalog::{Catalog, CatalogEntry, RoleDef, TableDef};
use crate::error::{Error, Result, SqlState};

/// Segment lists by `(table id, data version)`.
pub(super) type SegmentLists = HashMap<(u64, u64), Arc<Vec<SegmentRef>>>;

/// The storage of one database file (or of an in-memory database).
pub struct Store {
    /// The snapshot of the latest durable commit, shared by new readers (declared first so it
    /// is dropped before the database it reads).
    pub(super) published: arc_swap::ArcSwapOption<Snapshot>,
    /// Orders publications (a late first publication must not replace a newer one).
    pub(super) publish_lock: Mutex<()>,
    /// Group commit: commits waiting to be made durable together.
    pub(super) group: GroupCommit,
    /// Dropped by hand, under a panic guard (see `Drop for Store`).
    pub(super) db: std::mem::ManuallyDrop<redb::Database>,
    pub(super) next_segment: AtomicU64,
    pub(super) next_table: AtomicU64,
    pub(super) catalog_cache: Mutex<Option<(u64, Arc<Catalog>)>>,
    /// This store's whole decoded segments in the process's [`DecodedCache`] (its entries
    /// are dropped with it).
    pub(super) cache: SegmentCache,
    /// Each decoded segment's shape `(stored columns, rows)` by `(table id, segment id)`.
    pub(super) shapes: Mutex<HashMap<(u64, u64), (usize, usize)>>,
    /// Segment lists of committed tables by `(table id, data version)`. Listing segments
    /// walks redb's segment table, whose pages hold the segments themselves, so a warm scan
    /// would otherwise read every segment's bytes again just to learn their ids.
    pub(super) refs: Mutex<SegmentLists>,
    pub(super) write_gate: Arc<tokio::sync::Mutex<()>>,
    /// A storage call panicked: the file is damaged, writes are refused ([`super::guard`]).
    pub(super) suspect: std::sync::atomic::AtomicBool,
}

impl Drop for Store {
    /// Closing writes to the file (redb flushes and records a clean shutdown), and on a
    /// damaged file redb can panic there: the last snapshot and the database are released
    /// under a guard, so closing a damaged database never takes the process down.
    fn drop(&mut self) {
        DecodedCache::shared().forget_store(self.cache.store);
        let snapshot = self.published.swap(None);
        let closed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            drop(snapshot);
            // SAFETY: `db` is dropped once, here, and never used after.
            unsafe { std::mem::ManuallyDrop::drop(&mut self.db) };
        }));
        if let Err(panic) = closed {
            tracing::error!(
                "closing the database file panicked in the storage layer (damaged file): {}",
                super::guard::panic_message(panic.as_ref())
            );
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: &Path) -> Result<Arc<Self>> {
        // A damaged file can make redb panic while opening or repairing it.
        super::guard::guarded(
            || format!("database file {}", path.display()),
            || {},
            || Self::open_unguarded(path),
        )
    }

    fn open_unguarded(path: &Path) -> Result<Arc<Self>> {
        let db = redb::Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::Storage(format!(
                "database {} is already open in another process",
                path.display()
            )),
            other => Error::Storage(format!("cannot open {}: {other}", path.display())),
        })?;
        Self::init(db)
    }

    /// Creates a database that lives in memory only.
    pub fn open_in_memory() -> Result<Arc<Self>> {
        let db = redb::Builder::new()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(Error::storage)?;
        Self::init(db)
    }

    pub(super) fn init(db: redb::Database) -> Result<Arc<Self>> {
        // A file in the current format opens without writing, so a damaged file is only
        // read (redb can panic, even while unwinding, when it writes into damaged pages).
        if let Some((next_segment, next_table)) = current_counters(&db)? {
            return Ok(Self::assemble(db, next_segment, next_table));
        }
        let txn = db.begin_write()?;
        let (next_segment, next_table) = {
            let mut meta = txn.open_table(META)?;
            let format = meta.get(META_FORMAT)?.map(|v| v.value());
            match format {
                None => {
                    meta.insert(META_FORMAT, FORMAT_VERSION)?;
                }
                Some(FORMAT_VERSION) => {}
                Some(older) if older < FORMAT_VERSION => {
                    // Each format change adds its upgrade step here, run in this
                    // transaction, oldest first.
                    if older < 2 {
                        seal_all_values(&txn)?;
                    }
                    meta.insert(META_FORMAT, FORMAT_VERSION)?;
                }
                Some(newer) => {
                    return Err(Error::Data(
                        SqlState::FeatureNotSupported,
                        format!(
                            "the database file has format version {newer}, newer than this \
                             build of PhantomDB supports (format version {FORMAT_VERSION}); \
                             open it with a newer PhantomDB"
                        ),
                    ))
                }
            }
            let seg = meta.get(META_NEXT_SEGMENT)?.map(|v| v.value()).unwrap_or(1);
            let tab = meta.get(META_NEXT_TABLE)?.map(|v| v.value()).unwrap_or(1);
            txn.open_table(CATALOG)?;
            txn.open_table(SEGMENTS)?;
            txn.open_table(DELETES)?;
            txn.open_table(super::stats::STATS)?;
            (seg, tab)
        };
        txn.commit()?;
        Ok(Self::assemble(db, next_segment, next_table))
    }

    /// The store over an opened file in the current format.
    fn assemble(db: redb::Database, next_segment: u64, next_table: u64) -> Arc<Self> {
        Arc::new(Self {
            published: arc_swap::ArcSwapOption::empty(),
            publish_lock: Mutex::new(()),
            group: GroupCommit::default(),
            db: std::mem::ManuallyDrop::new(db),
            next_segment: AtomicU64::new(next_segment),
            next_table: AtomicU64::new(next_table),
            catalog_cache: Mutex::new(None),
            refs: Mutex::new(HashMap::new()),
            cache: SegmentCache::new(),
            shapes: Mutex::new(HashMap::new()),
            write_gate: Arc::new(tokio::sync::Mutex::new(())),
            suspect: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub(super) fn allocate_segment(&self) -> u64 {
        self.next_segment.fetch_add(1, Ordering::SeqCst)
    }

    /// Columns `projection` (positions in the table's current schema) of a stored segment,
    /// decoding only the ones not cached. Columns added after the segment was written read as
    /// their backfill value. (A cached whole segment is not used: scans would keep whole
    /// segments, every column, in the cache instead of the columns they read, and in the
    /// harness's SF1 run that was no faster.)
    pub(super) fn segment_columns(
        &self,
        table: &TableDef,
        seg: u64,
        projection: &[usize],
        bytes: impl FnOnce() -> Result<Option<Vec<u8>>>,
    ) -> Result<RecordBatch> {
        let key = (table.id, seg);
        let cache = DecodedCache::shared();
        let shape = self.shapes.lock().get(&key).copied();
        let mut found: HashMap<usize, ArrayRef> = HashMap::new();
        if let Some((stored, _)) = shape {
            for &c in projection.iter().filter(|&&c| c < stored) {
                if let Some(a) = cache.column(self.cache.store, table.id, seg, c) {
                    found.insert(c, a);
                }
            }
        }
        let complete = shape.is_some_and(|(stored, _)| {
            projection
                .iter()
                .all(|c| *c >= stored || found.contains_key(c))
        });
        let (stored, rows) = match shape {
            Some(shape) if complete => shape,
            _ => self.decode_columns(table, seg, projection, shape, &mut found, bytes()?)?,
        };
        let schema = Arc::new(table.schema.project(projection)?);
        let mut columns = Vec::with_capacity(projection.len());
        for &c in projection {
            if c < stored {
                columns.push(found.get(&c).cloned().ok_or_else(|| {
                    Error::Storage(format!("segment {seg}: column {c} was not decoded"))
                })?);
            } else {
                let field = table.schema.field(c);
                columns.push(backfill(table, c, field.data_type(), rows)?);
            }
        }
        Ok(RecordBatch::try_new_with_options(
            schema,
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )?)
    }

    /// Decodes the columns of `projection` not `found` in the cache from the segment's `bytes`,
    /// caches them and adds them to `found`; returns the segment's shape `(stored columns,
    /// rows)`.
    fn decode_columns(
        &self,
        table: &TableDef,
        seg: u64,
        projection: &[usize],
        shape: Option<(usize, usize)>,
        found: &mut HashMap<usize, ArrayRef>,
        bytes: Option<Vec<u8>>,
    ) -> Result<(usize, usize)> {
        let bytes = bytes.ok_or_else(|| {
            Error::Storage(format!("segment {seg} of table {} is missing", table.name))
        })?;
        let corrupt = |e: arrow::error::ArrowError| {
            Error::Corrupt(format!(
                "{}: undecodable: {e}",
                super::checksum::segment_name(&table.name, seg)
            ))
        };
        let header = StreamReader::try_new(Cursor::new(&bytes), None).map_err(corrupt)?;
        let stored = header.schema().fields().len();
        drop(header);
        let mut wanted: Vec<usize> = projection
            .iter()
            .copied()
            .filter(|c| *c < stored && !found.contains_key(c))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        // With no column to read, decode the first one to learn the row count.
        if wanted.is_empty() && shape.is_none() && stored > 0 {
            wanted.push(0);
        }
        let mut rows = shape.map_or(0, |(_, r)| r);
        if !wanted.is_empty() {
            let reader = StreamReader::try_new(Cursor::new(&bytes), Some(wanted.clone()))
                .map_err(corrupt)?;
            // The reader's schema is the stored one; its batches hold the projection.
            let schema = Arc::new(reader.schema().project(&wanted)?);
            let batches = reader
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(corrupt)?;
            let batch = concat_batches(&schema, &batches)?;
            rows = batch.num_rows();
            for (j, &c) in wanted.iter().enumerate() {
                // A decoded column points into the buffer of the whole segment (every
                // column's bytes): copy it out, so the cache holds only this column.
                let col = own_buffers(batch.column(j));
                DecodedCache::shared().put_column(self.cache.store, table.id, seg, c, col.clone());
                found.insert(c, col);
            }
        }
        self.shapes.lock().insert((table.id, seg), (stored, rows));
        Ok((stored, rows))
    }

    /// Returns the decoded segment, from the cache or by decoding `bytes`.
    pub(super) fn segment(
        &self,
        table: u64,
        seg: u64,
        bytes: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<RecordBatch> {
        if let Some(b) = self.cache.get((table, seg)) {
            return Ok(b);
        }
        let batch = decode_segment(&bytes()?)?;
        self.cache.put((table, seg), batch.clone());
        Ok(batch)
    }
}

/// The allocator counters `(next segment id, next table id)` of a file already in the
/// current format with its tables, read without writing; `None` when opening must write (a
/// new, older or newer file).
fn current_counters(db: &redb::Database) -> Result<Option<(u64, u64)>> {
    let txn = redb::ReadableDatabase::begin_read(db)?;
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if meta.get(META_FORMAT)?.map(|v| v.value()) != Some(FORMAT_VERSION) {
        return Ok(None);
    }
    let exists = |e: redb::TableError| match e {
        redb::TableError::TableDoesNotExist(_) => Ok(false),
        other => Err(other),
    };
    let tables = [
        txn.open_table(CATALOG).map(|_| true).or_else(exists)?,
        txn.open_table(SEGMENTS).map(|_| true).or_else(exists)?,
        txn.open_table(DELETES).map(|_| true).or_else(exists)?,
    ];
    if tables.contains(&false) {
        return Ok(None);
    }
    let seg = meta.get(META_NEXT_SEGMENT)?.map(|v| v.value()).unwrap_or(1);
    let tab = meta.get(META_NEXT_TABLE)?.map(|v| v.value()).unwrap_or(1);
    Ok(Some((seg, tab)))
}

/// The upgrade from format 1: every segment, deletion bitmap, statistics entry, catalog
/// entry and role goes into its checksummed envelope.
fn seal_all_values(txn: &redb::WriteTransaction) -> Result<()> {
    let stats = super::stats::STATS;
    for (def, kind) in [
        (SEGMENTS, Kind::Segment),
        (DELETES, Kind::Deletes),
        (stats, Kind::Stats),
    ] {
        let mut table = txn.open_table(def)?;
        let keys: Vec<(u64, u64)> = table
            .iter()?
            .map(|item| item.map(|(k, _)| k.value()))
            .collect::<std::result::Result<_, _>>()?;
        for key in keys {
            let sealed = match table.get(key)? {
                Some(v) => seal(kind, v.value()),
                None => continue,
            };
            table.insert(key, sealed.as_slice())?;
        }
    }
    for (def, kind) in [(CATALOG, Kind::Catalog), (ROLES, Kind::Role)] {
        let mut table = txn.open_table(def)?;
        let entries: Vec<(String, Vec<u8>)> = table
            .iter()?
            .map(|item| item.map(|(k, v)| (k.value().to_string(), seal(kind, v.value()))))
            .collect::<std::result::Result<_, _>>()?;
        for (name, sealed) in entries {
            table.insert(name.as_str(), sealed.as_slice())?;
        }
    }
    Ok(())
}

pub(super) fn load_catalog<T: ReadableTable<&'static str, &'static [u8]>>(
    table: &T,
) -> Result<Catalog> {
    let mut entries = BTreeMap::new();
    for item in table.iter()? {
        let (k, v) = item?;
        let name = k.value();
        let bytes = unseal(Kind::Catalog, v.value(), || {
            format!("catalog entry \"{name}\"")
        })?;
        entries.insert(name.to_string(), CatalogEntry::decode(bytes)?);
    }
    Ok(Catalog::from_entries(entries))
}

pub(super) fn load_roles<T: ReadableTable<&'static str, &'static [u8]>>(
    table: &T,
) -> Result<BTreeMap<String, Arc<RoleDef>>> {
    let mut out = BTreeMap::new();
    for item in table.iter()? {
        let (k, v) = item?;
        let name = k.value();
        let bytes = unseal(Kind::Role, v.value(), || format!("role \"{name}\""))?;
        out.insert(name.to_string(), Arc::new(RoleDef::decode(bytes)?));
    }
    Ok(out)
}

pub(super) fn load_settings<T: ReadableTable<&'static str, &'static str>>(
    table: &T,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in table.iter()? {
        let (k, v) = item?;
        out.insert(k.value().to_string(), v.value().to_string());
    }
    Ok(out)
}
