//! The default storage engine: one redb file per database.
//!
//! # Layout
//! Rows are stored column-wise, in *segments* of up to [`SEGMENT_ROWS`] rows, each one an Arrow
//! IPC stream in the `segments` redb table keyed by `(table id, segment id)`. Scans hand the
//! decoded Arrow batches to DataFusion without any per-row decoding, and decoded segments are
//! cached in memory (segment ids are never reused, so a cached segment never goes stale).
//!
//! Deleting rows does not rewrite a segment: it sets bits in the segment's *deletion bitmap*
//! (`deletes` table). An update is a delete plus an insert. Small and mostly-deleted segments are
//! merged when a transaction commits.
//!
//! A table with a primary key has an index table `pk_<table id>` mapping the key (Arrow's
//! order-preserving row encoding of the key columns) to a row id (`segment << 32 | row`), used
//! to enforce uniqueness and to answer `WHERE pk = ...` without a scan.
//!
//! # Transactions
//! redb gives ACID commits and MVCC snapshots. A read uses a redb read transaction (a consistent
//! snapshot, never blocked by writers). Writes go through one redb write transaction at a time;
//! rows inserted by the open transaction are buffered in memory until they fill a segment or the
//! transaction commits. Commits are durable (fsync) before `COMMIT` returns.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow::compute::{concat_batches, filter_record_batch, take_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use parking_lot::Mutex;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::catalog::{Catalog, CatalogEntry, TableDef};
use crate::error::{Error, Result, SqlState};

/// Maximum number of rows in one stored segment.
pub const SEGMENT_ROWS: usize = 65_536;
/// A segment with fewer live rows than this is merged with its peers at commit.
const SMALL_SEGMENT_ROWS: usize = SEGMENT_ROWS / 4;
/// How many small segments a table may have before they are merged.
const MAX_SMALL_SEGMENTS: usize = 16;
/// Default budget of the decoded-segment cache.
const DEFAULT_CACHE_BYTES: usize = 4 << 30;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const CATALOG: TableDefinition<&str, &[u8]> = TableDefinition::new("catalog");
const SEGMENTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("segments");
const DELETES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("deletes");
/// Database settings (e.g. `default_table_access_method`), versioned with the catalog.
const SETTINGS: TableDefinition<&str, &str> = TableDefinition::new("settings");

const META_NEXT_TABLE: &str = "next_table_id";
const META_NEXT_SEGMENT: &str = "next_segment_id";
const META_CATALOG_VERSION: &str = "catalog_version";
const META_DATA_VERSION: &str = "data_version";
const META_FORMAT: &str = "format_version";
/// The format of the database file this build writes. A newer build opens (and upgrades)
/// older files; an older build refuses newer ones.
pub(crate) const FORMAT_VERSION: u64 = 1;

/// A row's address: `segment id << 32 | row index in the segment`.
pub type RowId = u64;

fn row_id(segment: u64, row: usize) -> RowId {
    (segment << 32) | row as u64
}

fn split_row_id(id: RowId) -> (u64, usize) {
    (id >> 32, (id & 0xffff_ffff) as usize)
}

fn pk_table_name(table_id: u64) -> String {
    format!("pk_{table_id}")
}

/// Something a [`BudgetCache`] can hold: it knows its size in memory.
trait CacheSize {
    fn bytes(&self) -> usize;
}

impl CacheSize for RecordBatch {
    fn bytes(&self) -> usize {
        self.get_array_memory_size()
    }
}

impl CacheSize for ArrayRef {
    fn bytes(&self) -> usize {
        self.get_array_memory_size()
    }
}

/// A map shared by every reader that evicts entries once their total size passes a budget.
struct BudgetCache<K, V> {
    entries: Mutex<(HashMap<K, V>, usize)>,
    budget: usize,
}

impl<K: std::hash::Hash + Eq + Copy, V: Clone + CacheSize> BudgetCache<K, V> {
    fn new(budget: usize) -> Self {
        Self {
            entries: Mutex::new((HashMap::new(), 0)),
            budget,
        }
    }

    fn get(&self, key: K) -> Option<V> {
        self.entries.lock().0.get(&key).cloned()
    }

    fn put(&self, key: K, value: V) {
        let size = value.bytes();
        let mut guard = self.entries.lock();
        let (map, used) = &mut *guard;
        while *used + size > self.budget && !map.is_empty() {
            let Some(victim) = map.keys().next().copied() else {
                break;
            };
            if let Some(old) = map.remove(&victim) {
                *used = used.saturating_sub(old.bytes());
            }
        }
        if let Some(old) = map.insert(key, value) {
            *used = used.saturating_sub(old.bytes());
        }
        *used += size;
    }
}

/// Decoded whole segments by `(table id, segment id)` (lookups, compaction).
type SegmentCache = BudgetCache<(u64, u64), RecordBatch>;

/// Decoded columns of stored segments, by `(table id, segment id, column)`, plus each
/// segment's shape `(stored columns, rows)`. Scans decode only the columns they project.
struct ColumnCache {
    columns: BudgetCache<(u64, u64, usize), ArrayRef>,
    shapes: Mutex<HashMap<(u64, u64), (usize, usize)>>,
}

impl ColumnCache {
    fn get(&self, key: (u64, u64, usize)) -> Option<ArrayRef> {
        self.columns.get(key)
    }

    fn put(&self, key: (u64, u64, usize), column: ArrayRef) {
        self.columns.put(key, column)
    }
}

/// A segment a scan will read: its id and deletions, or (for rows a write transaction has
/// not stored yet) the rows themselves.
#[derive(Debug, Clone)]
pub struct SegmentRef {
    /// Segment id.
    pub id: u64,
    /// Rows stored in the segment, deleted ones included (from the IPC message headers,
    /// without decoding); `None` if the stored bytes could not be read that way.
    pub rows: Option<usize>,
    /// Deleted rows, if any.
    pub deleted: Option<Bitmap>,
    /// Rows buffered by the open write transaction (in the table's schema).
    pending: Option<RecordBatch>,
}

impl SegmentRef {
    /// Rows a scan of this segment returns (stored minus deleted), if known.
    pub fn live_rows(&self) -> Option<usize> {
        let deleted = self.deleted.as_ref().map_or(0, Bitmap::count);
        self.rows.map(|r| r.saturating_sub(deleted))
    }
}

/// Segment lists by `(table id, data version)`.
type SegmentLists = HashMap<(u64, u64), Arc<Vec<SegmentRef>>>;

/// The storage of one database file (or of an in-memory database).
pub struct Store {
    db: redb::Database,
    next_segment: AtomicU64,
    next_table: AtomicU64,
    catalog_cache: Mutex<Option<(u64, Arc<Catalog>)>>,
    cache: SegmentCache,
    columns: ColumnCache,
    /// Segment lists of committed tables by `(table id, data version)`. Listing segments
    /// walks redb's segment table, whose pages hold the segments themselves, so a warm scan
    /// would otherwise read every segment's bytes again just to learn their ids.
    refs: Mutex<SegmentLists>,
    write_gate: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: &Path) -> Result<Arc<Self>> {
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

    fn init(db: redb::Database) -> Result<Arc<Self>> {
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
                    // transaction, oldest first. There is none yet: format 1 is the first.
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
            (seg, tab)
        };
        txn.commit()?;
        Ok(Arc::new(Self {
            db,
            next_segment: AtomicU64::new(next_segment),
            next_table: AtomicU64::new(next_table),
            catalog_cache: Mutex::new(None),
            refs: Mutex::new(HashMap::new()),
            columns: ColumnCache {
                columns: BudgetCache::new(DEFAULT_CACHE_BYTES),
                shapes: Mutex::new(HashMap::new()),
            },
            cache: SegmentCache::new(DEFAULT_CACHE_BYTES),
            write_gate: Arc::new(tokio::sync::Mutex::new(())),
        }))
    }

    /// Takes a consistent read snapshot of the committed state.
    pub fn read_view(self: &Arc<Self>) -> Result<Arc<ReadView>> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let catalog_version = meta
            .get(META_CATALOG_VERSION)?
            .map(|v| v.value())
            .unwrap_or(0);
        let data_version = meta.get(META_DATA_VERSION)?.map(|v| v.value()).unwrap_or(0);
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
                let c = Arc::new(c);
                *self.catalog_cache.lock() = Some((catalog_version, c.clone()));
                c
            }
        };
        Ok(Arc::new(ReadView {
            store: self.clone(),
            txn,
            catalog,
            data_version,
        }))
    }

    /// Starts the (single) write transaction, waiting at most `timeout` for another writer.
    ///
    /// When `expected_version` is given, fails if anything was committed since the snapshot
    /// with that data version was taken (the transaction read stale data).
    pub async fn begin_write(
        self: &Arc<Self>,
        timeout: std::time::Duration,
        expected_version: Option<u64>,
    ) -> Result<WriteTxn> {
        let gate = match tokio::time::timeout(timeout, self.write_gate.clone().lock_owned()).await {
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
        let mut catalog = load_catalog(&txn.open_table(CATALOG)?)?;
        catalog.settings = load_settings(&txn.open_table(SETTINGS)?)?;
        let catalog = Arc::new(catalog);
        Ok(WriteTxn {
            store: self.clone(),
            txn: Some(txn),
            catalog,
            catalog_version,
            catalog_changed: false,
            data_version,
            pending: HashMap::new(),
            touched: HashSet::new(),
            _gate: gate,
        })
    }

    fn allocate_segment(&self) -> u64 {
        self.next_segment.fetch_add(1, Ordering::SeqCst)
    }

    /// Columns `projection` (positions in the table's current schema) of a stored segment,
    /// decoding only the ones not cached. Columns added after the segment was written read as
    /// their backfill value.
    fn segment_columns(
        &self,
        table: &TableDef,
        seg: u64,
        projection: &[usize],
        bytes: impl FnOnce() -> Result<Option<Vec<u8>>>,
    ) -> Result<RecordBatch> {
        let key = (table.id, seg);
        let shape = self.columns.shapes.lock().get(&key).copied();
        let mut found: HashMap<usize, ArrayRef> = HashMap::new();
        if let Some((stored, _)) = shape {
            for &c in projection.iter().filter(|&&c| c < stored) {
                if let Some(a) = self.columns.get((table.id, seg, c)) {
                    found.insert(c, a);
                }
            }
        }
        let complete = shape.is_some_and(|(stored, _)| {
            projection
                .iter()
                .all(|c| *c >= stored || found.contains_key(c))
        });
        let (stored, rows) = if complete {
            shape.unwrap_or((0, 0))
        } else {
            let bytes = bytes()?.ok_or_else(|| {
                Error::Storage(format!("segment {seg} of table {} is missing", table.name))
            })?;
            let header = StreamReader::try_new(Cursor::new(&bytes), None)
                .map_err(|e| Error::Storage(format!("corrupt segment: {e}")))?;
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
                    .map_err(|e| Error::Storage(format!("corrupt segment: {e}")))?;
                // The reader's schema is the stored one; its batches hold the projection.
                let schema = Arc::new(reader.schema().project(&wanted)?);
                let batches = reader
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| Error::Storage(format!("corrupt segment: {e}")))?;
                let batch = concat_batches(&schema, &batches)?;
                rows = batch.num_rows();
                for (j, &c) in wanted.iter().enumerate() {
                    // A decoded column points into the buffer of the whole segment (every
                    // column's bytes): copy it out, so the cache holds only this column.
                    let col = own_buffers(batch.column(j));
                    self.columns.put((table.id, seg, c), col.clone());
                    found.insert(c, col);
                }
            }
            self.columns.shapes.lock().insert(key, (stored, rows));
            (stored, rows)
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
                let value = match table.backfill.get(&c) {
                    Some(text) => ScalarValue::try_from_string(text.clone(), field.data_type())?,
                    None => ScalarValue::try_from(field.data_type())?,
                };
                columns.push(value.to_array_of_size(rows)?);
            }
        }
        Ok(RecordBatch::try_new_with_options(
            schema,
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )?)
    }

    /// Returns the decoded segment, from the cache or by decoding `bytes`.
    fn segment(
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

fn load_catalog<T: ReadableTable<&'static str, &'static [u8]>>(table: &T) -> Result<Catalog> {
    let mut entries = BTreeMap::new();
    for item in table.iter()? {
        let (k, v) = item?;
        entries.insert(k.value().to_string(), CatalogEntry::decode(v.value())?);
    }
    Ok(Catalog::from_entries(entries))
}

fn load_settings<T: ReadableTable<&'static str, &'static str>>(
    table: &T,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in table.iter()? {
        let (k, v) = item?;
        out.insert(k.value().to_string(), v.value().to_string());
    }
    Ok(out)
}

/// A copy of `array` in buffers of its own (not slices of a larger buffer).
fn own_buffers(array: &ArrayRef) -> ArrayRef {
    let data = array.to_data();
    let mut copy = arrow::array::MutableArrayData::new(vec![&data], false, data.len());
    match copy.try_extend(0, 0, data.len()) {
        Ok(()) => arrow::array::make_array(copy.freeze()),
        Err(_) => array.clone(),
    }
}

/// Copies the live bytes of string and binary *view* columns into buffers of their own.
///
/// A view array sliced out of a larger batch (a CSV chunk, a query result) still references
/// that batch's whole data buffers, and Arrow IPC writes referenced buffers whole: without
/// this, every segment would carry the data of its neighbours (a 1 GB CSV became 29 GB).
fn compact_views(batch: RecordBatch) -> Result<RecordBatch> {
    use arrow::array::AsArray;
    use arrow::datatypes::DataType;
    if !batch
        .columns()
        .iter()
        .any(|c| matches!(c.data_type(), DataType::Utf8View | DataType::BinaryView))
    {
        return Ok(batch);
    }
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Utf8View => Arc::new(c.as_string_view().gc()) as ArrayRef,
            DataType::BinaryView => Arc::new(c.as_binary_view().gc()) as ArrayRef,
            _ => c.clone(),
        })
        .collect();
    Ok(RecordBatch::try_new_with_options(
        batch.schema(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?)
}

fn encode_segment(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(batch.get_array_memory_size() + 1024);
    {
        let mut w = StreamWriter::try_new(&mut out, batch.schema_ref())?;
        w.write(batch)?;
        w.finish()?;
    }
    Ok(out)
}

fn decode_segment(bytes: &[u8]) -> Result<RecordBatch> {
    let reader = StreamReader::try_new(Cursor::new(bytes), None)
        .map_err(|e| Error::Storage(format!("corrupt segment: {e}")))?;
    let schema = reader.schema();
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Storage(format!("corrupt segment: {e}")))?;
    Ok(concat_batches(&schema, &batches)?)
}

/// A deletion bitmap: bit `i` set = row `i` of the segment is deleted.
#[derive(Debug, Clone, Default)]
pub struct Bitmap(Vec<u64>);

impl Bitmap {
    fn decode(bytes: &[u8]) -> Self {
        Bitmap(
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
        )
    }
    fn encode(&self) -> Vec<u8> {
        self.0.iter().flat_map(|w| w.to_le_bytes()).collect()
    }
    fn set(&mut self, i: usize) {
        let w = i / 64;
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << (i % 64);
    }
    /// Whether row `i` is deleted.
    pub fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    /// Number of deleted rows.
    pub fn count(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
    /// A filter mask keeping the rows that are not deleted.
    pub fn keep_mask(&self, rows: usize) -> BooleanArray {
        (0..rows).map(|i| Some(!self.get(i))).collect()
    }
}

/// One segment of a table as a scan sees it: all stored rows, and which are deleted.
#[derive(Debug, Clone)]
pub struct SegmentSnapshot {
    /// Segment id.
    pub id: u64,
    /// Rows, already in the table's current schema.
    pub batch: RecordBatch,
    /// Deleted rows, if any.
    pub deleted: Option<Bitmap>,
}

impl SegmentSnapshot {
    /// The live rows.
    pub fn live(&self) -> Result<RecordBatch> {
        match &self.deleted {
            None => Ok(self.batch.clone()),
            Some(bm) => Ok(filter_record_batch(
                &self.batch,
                &bm.keep_mask(self.batch.num_rows()),
            )?),
        }
    }

    /// The live rows with their row ids.
    pub fn live_with_row_ids(&self) -> Result<(RecordBatch, Vec<RowId>)> {
        let ids: Vec<RowId> = (0..self.batch.num_rows())
            .filter(|&i| !self.deleted.as_ref().is_some_and(|b| b.get(i)))
            .map(|i| row_id(self.id, i))
            .collect();
        Ok((self.live()?, ids))
    }
}

/// Re-labels a stored batch with the table's current schema: renamed columns take their new
/// names, and columns added after the segment was written read as their backfill value.
fn conform(table: &TableDef, batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = table.schema_ref();
    let rows = batch.num_rows();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        if i < batch.num_columns() {
            columns.push(batch.column(i).clone());
        } else {
            let value = match table.backfill.get(&i) {
                Some(text) => ScalarValue::try_from_string(text.clone(), field.data_type())?,
                None => ScalarValue::try_from(field.data_type())?,
            };
            columns.push(value.to_array_of_size(rows)?);
        }
    }
    Ok(RecordBatch::try_new_with_options(
        schema,
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

/// The error for a row of `batch` (in table schema) whose primary key is taken.
pub(crate) fn duplicate_key(table: &TableDef, batch: &RecordBatch, row: usize) -> Error {
    let shown = table
        .primary_key
        .iter()
        .map(|&c| {
            arrow::util::display::array_value_to_string(batch.column(c), row).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(", ");
    Error::Constraint(
        SqlState::UniqueViolation,
        format!(
            "duplicate primary key ({}) = ({shown}) in table \"{}\"",
            table.primary_key_names().join(", "),
            table.name
        ),
    )
}

/// Encodes the primary key of every row of `batch` (in table schema) for the index.
pub fn encode_keys(table: &TableDef, batch: &RecordBatch) -> Result<Vec<Vec<u8>>> {
    let fields = table
        .primary_key
        .iter()
        .map(|&i| SortField::new(table.schema.field(i).data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    let cols: Vec<ArrayRef> = table
        .primary_key
        .iter()
        .map(|&i| batch.column(i).clone())
        .collect();
    let rows = converter.convert_columns(&cols)?;
    Ok(rows.iter().map(|r| r.as_ref().to_vec()).collect())
}

/// Encodes one key given as one array per key column (each of length 1 or more).
pub fn encode_key_columns(table: &TableDef, cols: &[ArrayRef]) -> Result<Vec<Vec<u8>>> {
    let fields = table
        .primary_key
        .iter()
        .map(|&i| SortField::new(table.schema.field(i).data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    let rows = converter.convert_columns(cols)?;
    Ok(rows.iter().map(|r| r.as_ref().to_vec()).collect())
}

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
    /// Every segment of the table (stored and, in a write transaction, buffered).
    fn segments(&self, table: &TableDef) -> Result<Vec<SegmentSnapshot>>;
    /// Rows whose primary key is one of `keys` (encoded with [`encode_keys`]).
    fn lookup(&self, table: &TableDef, keys: &[Vec<u8>]) -> Result<RecordBatch>;
}

/// A committed snapshot.
pub struct ReadView {
    store: Arc<Store>,
    txn: redb::ReadTransaction,
    catalog: Arc<Catalog>,
    data_version: u64,
}

impl std::fmt::Debug for ReadView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadView")
            .field("data_version", &self.data_version)
            .finish()
    }
}

impl ReadView {
    /// The version of the data this snapshot sees; changes with every commit.
    pub fn data_version(&self) -> u64 {
        self.data_version
    }
}

fn read_segments<S, D>(
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
        let stored = store.segment(table.id, seg, || Ok(v.value().to_vec()))?;
        let deleted = deletes
            .get((table.id, seg))?
            .map(|b| Bitmap::decode(b.value()));
        out.push(SegmentSnapshot {
            id: seg,
            batch: conform(table, &stored)?,
            deleted,
        });
    }
    Ok(out)
}

fn lookup_rows<S, P>(
    store: &Store,
    table: &TableDef,
    keys: &[Vec<u8>],
    index: &P,
    segments: &S,
    pending: Option<&Pending>,
) -> Result<RecordBatch>
where
    S: ReadableTable<(u64, u64), &'static [u8]>,
    P: ReadableTable<&'static [u8], u64>,
{
    // Group the hits by segment, keeping key order within a segment.
    let mut by_segment: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for key in keys {
        if let Some(id) = index.get(key.as_slice())? {
            let (seg, row) = split_row_id(id.value());
            by_segment.entry(seg).or_default().push(row as u32);
        }
    }
    let schema = table.schema_ref();
    let mut parts = Vec::new();
    for (seg, rows) in by_segment {
        let batch = match pending.filter(|p| p.segment == seg) {
            Some(p) => p.batch(&schema)?,
            None => {
                let stored = store.segment(table.id, seg, || {
                    segments
                        .get((table.id, seg))?
                        .map(|v| v.value().to_vec())
                        .ok_or_else(|| {
                            Error::Storage(format!("index points to missing segment {seg}"))
                        })
                })?;
                conform(table, &stored)?
            }
        };
        parts.push(take_record_batch(&batch, &UInt32Array::from(rows))?);
    }
    Ok(concat_batches(&schema, &parts)?)
}

fn stored_refs<S, D>(table: &TableDef, segments: &S, deletes: &D) -> Result<Vec<SegmentRef>>
where
    S: ReadableTable<(u64, u64), &'static [u8]>,
    D: ReadableTable<(u64, u64), &'static [u8]>,
{
    let mut out = Vec::new();
    for item in segments.range((table.id, 0)..=(table.id, u64::MAX))? {
        // The value is on the leaf page just read for the key: counting its rows is free.
        let (k, v) = item?;
        let (_, seg) = k.value();
        let deleted = deletes
            .get((table.id, seg))?
            .map(|b| Bitmap::decode(b.value()));
        out.push(SegmentRef {
            id: seg,
            rows: ipc_stream_rows(v.value()),
            deleted,
            pending: None,
        });
    }
    Ok(out)
}

/// Rows in an Arrow IPC stream (the sum over its record batch messages), read from the
/// message headers without decoding any data; `None` if the bytes are not a readable stream.
fn ipc_stream_rows(bytes: &[u8]) -> Option<usize> {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
        ))
    };
    let (mut at, mut rows) = (0usize, 0usize);
    while at < bytes.len() {
        // Each message: [0xFFFFFFFF] <metadata length> <flatbuffer Message> <body>.
        let mut len = word(at)?;
        at += 4;
        if len == u32::MAX {
            len = word(at)?;
            at += 4;
        }
        if len == 0 {
            break; // end-of-stream marker
        }
        let end = at.checked_add(len as usize)?;
        let message = arrow::ipc::root_as_message(bytes.get(at..end)?).ok()?;
        if let Some(batch) = message.header_as_record_batch() {
            rows = rows.checked_add(usize::try_from(batch.length()).ok()?)?;
        }
        at = end.checked_add(usize::try_from(message.bodyLength()).ok()?)?;
        if at > bytes.len() {
            return None; // truncated body
        }
    }
    Some(rows)
}

fn load_ref<S>(
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
        Ok(segments()?
            .get((table.id, seg.id))?
            .map(|v| v.value().to_vec()))
    })
}

impl DataView for ReadView {
    fn catalog(&self) -> Arc<Catalog> {
        self.catalog.clone()
    }

    fn segment_refs(&self, table: &TableDef) -> Result<Vec<SegmentRef>> {
        let key = (table.id, self.data_version);
        if let Some(refs) = self.store.refs.lock().get(&key) {
            return Ok(refs.as_ref().clone());
        }
        let refs = stored_refs(
            table,
            &self.txn.open_table(SEGMENTS)?,
            &self.txn.open_table(DELETES)?,
        )?;
        let mut cache = self.store.refs.lock();
        // Lists of older versions are of no use to new snapshots.
        cache.retain(|(_, v), _| *v >= self.data_version);
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
            Ok(self.txn.open_table(SEGMENTS)?)
        })
    }

    fn segments(&self, table: &TableDef) -> Result<Vec<SegmentSnapshot>> {
        read_segments(
            &self.store,
            table,
            &self.txn.open_table(SEGMENTS)?,
            &self.txn.open_table(DELETES)?,
        )
    }

    fn lookup(&self, table: &TableDef, keys: &[Vec<u8>]) -> Result<RecordBatch> {
        let name = pk_table_name(table.id);
        let def: TableDefinition<&[u8], u64> = TableDefinition::new(&name);
        let index = self.txn.open_table(def)?;
        lookup_rows(
            &self.store,
            table,
            keys,
            &index,
            &self.txn.open_table(SEGMENTS)?,
            None,
        )
    }
}

/// Rows inserted by the open transaction that do not fill a segment yet.
#[derive(Debug)]
struct Pending {
    segment: u64,
    batches: Vec<RecordBatch>,
    rows: usize,
}

impl Pending {
    fn batch(&self, schema: &SchemaRef) -> Result<RecordBatch> {
        Ok(concat_batches(schema, &self.batches)?)
    }
}

/// The open write transaction. At most one exists per database at a time.
pub struct WriteTxn {
    store: Arc<Store>,
    txn: Option<redb::WriteTransaction>,
    catalog: Arc<Catalog>,
    catalog_version: u64,
    catalog_changed: bool,
    data_version: u64,
    pending: HashMap<u64, Pending>,
    touched: HashSet<u64>,
    _gate: tokio::sync::OwnedMutexGuard<()>,
}

impl std::fmt::Debug for WriteTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTxn")
            .field("data_version", &self.data_version)
            .finish()
    }
}

impl WriteTxn {
    fn txn(&self) -> Result<&redb::WriteTransaction> {
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
        let bytes = entry.encode()?;
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
        let txn = self.txn()?;
        {
            let mut segs = txn.open_table(SEGMENTS)?;
            segs.retain_in((table_id, 0)..=(table_id, u64::MAX), |_, _| false)?;
            let mut dels = txn.open_table(DELETES)?;
            dels.retain_in((table_id, 0)..=(table_id, u64::MAX), |_, _| false)?;
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
        &self,
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
        let name = pk_table_name(table.id);
        let def: TableDefinition<&[u8], u64> = TableDefinition::new(&name);
        let index = self.txn()?.open_table(def)?;
        let mut seen = HashSet::with_capacity(keys.len());
        for (row, key) in keys.iter().enumerate() {
            let dup_in_statement = !seen.insert(key.as_slice());
            let dup_in_table = !replaced.contains(key) && index.get(key.as_slice())?.is_some();
            if dup_in_statement || dup_in_table {
                return Err(duplicate_key(table, batch, row));
            }
        }
        Ok(keys)
    }

    /// Appends rows (already checked with [`Self::check_insert`], whose keys are `keys`).
    pub fn append(&mut self, table: &TableDef, batch: RecordBatch, keys: &[Vec<u8>]) -> Result<()> {
        self.touched.insert(table.id);
        let mut offset = 0;
        while offset < batch.num_rows() {
            let store = self.store.clone();
            let pending = self.pending.entry(table.id).or_insert_with(|| Pending {
                segment: store.allocate_segment(),
                batches: Vec::new(),
                rows: 0,
            });
            let take = (SEGMENT_ROWS - pending.rows).min(batch.num_rows() - offset);
            let part = batch.slice(offset, take);
            let segment = pending.segment;
            let first_row = pending.rows;
            pending.batches.push(part);
            pending.rows += take;
            let full = pending.rows >= SEGMENT_ROWS;
            if !keys.is_empty() {
                let name = pk_table_name(table.id);
                let def: TableDefinition<&[u8], u64> = TableDefinition::new(&name);
                let mut index = self.txn()?.open_table(def)?;
                for (i, key) in keys[offset..offset + take].iter().enumerate() {
                    index.insert(key.as_slice(), row_id(segment, first_row + i))?;
                }
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
        self.txn()?
            .open_table(SEGMENTS)?
            .insert((table.id, p.segment), bytes.as_slice())?;
        self.store.cache.put((table.id, p.segment), batch);
        Ok(())
    }

    /// Marks rows deleted and removes their index entries (`keys`: their encoded primary keys).
    pub fn delete(&mut self, table: &TableDef, rows: &[RowId], keys: &[Vec<u8>]) -> Result<()> {
        self.touched.insert(table.id);
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
                    .map(|b| Bitmap::decode(b.value()))
                    .unwrap_or_default();
                for r in rows {
                    bm.set(r);
                }
                dels.insert((table.id, seg), bm.encode().as_slice())?;
            }
        }
        if !keys.is_empty() {
            let name = pk_table_name(table.id);
            let def: TableDefinition<&[u8], u64> = TableDefinition::new(&name);
            let mut index = txn.open_table(def)?;
            for key in keys {
                index.remove(key.as_slice())?;
            }
        }
        Ok(())
    }

    /// Makes everything durable and visible to new readers.
    pub fn commit(mut self) -> Result<()> {
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
        txn.commit()?;
        if self.catalog_changed {
            *self.store.catalog_cache.lock() =
                Some((self.catalog_version + 1, self.catalog.clone()));
        }
        Ok(())
    }

    /// Discards the transaction.
    pub fn rollback(mut self) -> Result<()> {
        if let Some(txn) = self.txn.take() {
            txn.abort()?;
        }
        Ok(())
    }

    /// Merges small and mostly-deleted segments of the table.
    fn compact(&mut self, table: &TableDef) -> Result<()> {
        let segments = self.segments(table)?;
        let is_candidate = |s: &SegmentSnapshot| {
            let deleted = s.deleted.as_ref().map_or(0, Bitmap::count);
            let live = s.batch.num_rows() - deleted;
            live < SMALL_SEGMENT_ROWS || deleted * 2 > s.batch.num_rows()
        };
        let candidates: Vec<&SegmentSnapshot> =
            segments.iter().filter(|s| is_candidate(s)).collect();
        let small = candidates.len();
        let heavily_deleted = candidates
            .iter()
            .any(|s| s.deleted.as_ref().map_or(0, Bitmap::count) * 2 > s.batch.num_rows());
        if small <= MAX_SMALL_SEGMENTS && !heavily_deleted {
            return Ok(());
        }
        let mut live = Vec::with_capacity(candidates.len());
        for s in &candidates {
            live.push(s.live()?);
        }
        let merged = concat_batches(&table.schema_ref(), &live)?;
        let txn = self.txn()?;
        {
            let mut segs = txn.open_table(SEGMENTS)?;
            let mut dels = txn.open_table(DELETES)?;
            for s in &candidates {
                segs.remove((table.id, s.id))?;
                dels.remove((table.id, s.id))?;
            }
        }
        let keys = if table.primary_key.is_empty() {
            Vec::new()
        } else {
            encode_keys(table, &merged)?
        };
        self.append(table, merged, &keys)?;
        self.flush(table)?;
        tracing::debug!(table = %table.name, merged = small, "compacted segments");
        Ok(())
    }
}

impl WriteTxn {
    /// Writes the table's buffered rows out (before its schema changes).
    pub fn flush_table(&mut self, table: &TableDef) -> Result<()> {
        self.flush(table)
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

impl DataView for parking_lot::Mutex<WriteTxn> {
    fn catalog(&self) -> Arc<Catalog> {
        self.lock().catalog.clone()
    }

    fn segment_refs(&self, table: &TableDef) -> Result<Vec<SegmentRef>> {
        let w = self.lock();
        let txn = w.txn()?;
        let deletes = txn.open_table(DELETES)?;
        let mut out = stored_refs(table, &txn.open_table(SEGMENTS)?, &deletes)?;
        if let Some(p) = w.pending.get(&table.id) {
            let deleted = deletes
                .get((table.id, p.segment))?
                .map(|b| Bitmap::decode(b.value()));
            let batch = p.batch(&table.schema_ref())?;
            out.push(SegmentRef {
                id: p.segment,
                rows: Some(batch.num_rows()),
                deleted,
                pending: Some(batch),
            });
        }
        Ok(out)
    }

    fn load(
        &self,
        table: &TableDef,
        seg: &SegmentRef,
        projection: &[usize],
    ) -> Result<RecordBatch> {
        let w = self.lock();
        load_ref(&w.store, table, seg, projection, || {
            Ok(w.txn()?.open_table(SEGMENTS)?)
        })
    }

    fn segments(&self, table: &TableDef) -> Result<Vec<SegmentSnapshot>> {
        self.lock().segments(table)
    }

    fn lookup(&self, table: &TableDef, keys: &[Vec<u8>]) -> Result<RecordBatch> {
        let w = self.lock();
        let txn = w.txn()?;
        let name = pk_table_name(table.id);
        let def: TableDefinition<&[u8], u64> = TableDefinition::new(&name);
        let index = txn.open_table(def)?;
        let segments = txn.open_table(SEGMENTS)?;
        let rows = lookup_rows(
            &w.store,
            table,
            keys,
            &index,
            &segments,
            w.pending.get(&table.id),
        );
        rows
    }
}

impl WriteTxn {
    /// Every segment of the table as this transaction sees it.
    pub fn segments(&self, table: &TableDef) -> Result<Vec<SegmentSnapshot>> {
        let txn = self.txn()?;
        let deletes = txn.open_table(DELETES)?;
        let mut out = read_segments(&self.store, table, &txn.open_table(SEGMENTS)?, &deletes)?;
        if let Some(p) = self.pending.get(&table.id) {
            let deleted = deletes
                .get((table.id, p.segment))?
                .map(|b| Bitmap::decode(b.value()));
            out.push(SegmentSnapshot {
                id: p.segment,
                batch: p.batch(&table.schema_ref())?,
                deleted,
            });
        }
        Ok(out)
    }
}

/// Rows of a table, for statistics.
pub fn live_row_count(segments: &[SegmentSnapshot]) -> usize {
    segments
        .iter()
        .map(|s| s.batch.num_rows() - s.deleted.as_ref().map_or(0, Bitmap::count))
        .sum()
}

#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<ReadView>();
    is::<parking_lot::Mutex<WriteTxn>>();
    let _ = |a: &dyn Array| a.len();
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(rows: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(0..rows)),
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| format!("v{i}")),
                )),
            ],
        )
        .expect("batch")
    }

    #[test]
    fn segment_rows_come_from_ipc_headers() {
        let one = encode_segment(&batch(1000)).expect("encode");
        assert_eq!(ipc_stream_rows(&one), Some(1000));
        assert_eq!(
            ipc_stream_rows(&encode_segment(&batch(0)).expect("encode")),
            Some(0)
        );

        let mut two = Vec::new();
        {
            let b = batch(300);
            let mut w = StreamWriter::try_new(&mut two, b.schema_ref()).expect("writer");
            w.write(&b).expect("write");
            w.write(&batch(700)).expect("write");
            w.finish().expect("finish");
        }
        assert_eq!(ipc_stream_rows(&two), Some(1000));

        // Not readable that way: no count rather than a wrong one (or a panic).
        assert_eq!(ipc_stream_rows(&one[..one.len() - 40]), None);
        assert_eq!(
            ipc_stream_rows(&[0xff, 0xff, 0xff, 0xff, 9, 0, 0, 0, 1, 2]),
            None
        );
        assert_eq!(ipc_stream_rows(b"definitely not arrow"), None);
    }
}
