//! The engine: table lifecycle, shared state (clients, caches, runtime) and data file I/O.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::properties::WriterProperties;
use phantomdb_plugin_sdk::arrow_array::{RecordBatch, RecordBatchOptions};
use phantomdb_plugin_sdk::arrow_schema::SchemaRef;
use phantomdb_plugin_sdk::{
    Capabilities, Filter, FilterSupport, Options, StorageEngine, StorageTransaction, TableInfo,
};

use crate::cache::{CachedFile, FileCache};
use crate::config::{
    effective, parse_config, random_u64, row_group_size, sanitize_name, validate_table_options,
    Located, StoreRegistry, Url, DEFAULT_CACHE_MB, MISSING_PATH,
};
use crate::manifest::{self, Manifest, PutError};
use crate::runtime::{AsyncBridge, Pending};

/// Counters of the work done by scans and commits (see [`S3StorageEngine::metrics`]).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub files_scanned: AtomicU64,
    pub files_pruned: AtomicU64,
    pub row_groups_read: AtomicU64,
    pub row_groups_pruned: AtomicU64,
    pub bytes_fetched: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub files_written: AtomicU64,
    pub commits: AtomicU64,
    pub conflicts: AtomicU64,
}

impl Counters {
    pub(crate) fn add(&self, c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// A snapshot of the engine's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineMetrics {
    /// Data files opened by scans.
    pub files_scanned: u64,
    /// Data files skipped by scans using the manifest's per-file bounds.
    pub files_pruned: u64,
    /// Parquet row groups read by scans.
    pub row_groups_read: u64,
    /// Parquet row groups skipped by scans using their min/max statistics.
    pub row_groups_pruned: u64,
    /// Bytes of data files downloaded.
    pub bytes_fetched: u64,
    /// Data file reads served by the cache.
    pub cache_hits: u64,
    /// Data file reads that went to the object store.
    pub cache_misses: u64,
    /// Data files written.
    pub files_written: u64,
    /// Manifests published (commits that wrote).
    pub commits: u64,
    /// Commits refused because another commit won.
    pub conflicts: u64,
    /// Bytes currently held by the file cache.
    pub cache_bytes: u64,
}

/// Shared state of an engine.
pub(crate) struct Inner {
    config: RwLock<Options>,
    pub rt: AsyncBridge,
    stores: StoreRegistry,
    pub cache: Arc<FileCache>,
    manifests: Mutex<HashMap<String, Arc<Manifest>>>,
    pub metrics: Arc<Counters>,
}

/// A table's resolved location and settings.
pub(crate) struct TableHandle {
    pub loc: Located,
    pub row_group_size: usize,
}

impl Inner {
    pub(crate) fn defaults(&self) -> Options {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Resolves a table's `location` with the effective options.
    pub(crate) fn table(&self, table: &TableInfo) -> Result<TableHandle, String> {
        let eff = effective(&self.defaults(), &table.options);
        let location = table
            .options
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("location"))
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                format!(
                    "s3_storage: table {} has no location option (was it created with USING s3_storage?)",
                    table.name
                )
            })?;
        let loc = self.stores.locate(Url::parse(&location)?, &eff)?;
        Ok(TableHandle {
            loc,
            row_group_size: row_group_size(&eff)?,
        })
    }

    /// Cache key of a data file.
    pub(crate) fn file_key(&self, loc: &Located, relative: &str) -> String {
        format!("{}/{relative}", loc.key)
    }

    /// The newest manifest of a table (`None` if it has none), via the cached hint.
    pub(crate) fn latest_manifest(&self, loc: &Located) -> Result<Option<Arc<Manifest>>, String> {
        let hint = self
            .manifests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&loc.key)
            .cloned();
        let store = loc.store.clone();
        let root = loc.url.prefix.clone();
        let latest = self
            .rt
            .run(async move { manifest::latest(&store, &root, hint).await })?;
        if let Some(m) = &latest {
            self.remember_manifest(&loc.key, m.clone());
        }
        Ok(latest)
    }

    pub(crate) fn remember_manifest(&self, key: &str, m: Arc<Manifest>) {
        let mut map = self.manifests.lock().unwrap_or_else(|e| e.into_inner());
        let newer = map.get(key).is_none_or(|old| old.version <= m.version);
        if newer {
            map.insert(key.to_string(), m);
        }
    }

    fn forget_table(&self, loc: &Located) {
        self.manifests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&loc.key);
        self.cache.remove_prefix(&format!("{}/", loc.key));
    }

    /// Whether manifest `version` exists.
    pub(crate) fn manifest_exists(&self, loc: &Located, version: u64) -> Result<bool, String> {
        let store = loc.store.clone();
        let root = loc.url.prefix.clone();
        self.rt
            .run(async move { manifest::manifest_exists(&store, &root, version).await })
    }

    /// Publishes a manifest (create-if-absent).
    pub(crate) fn put_manifest(&self, loc: &Located, m: Manifest) -> Result<(), PutError> {
        let store = loc.store.clone();
        let root = loc.url.prefix.clone();
        match self
            .rt
            .run(async move { Ok(manifest::put_manifest(&store, &root, &m).await) })
        {
            Ok(r) => r,
            Err(e) => Err(PutError::Other(e)),
        }
    }

    /// Starts loading a data file (from the cache or the store).
    pub(crate) fn spawn_fetch(
        &self,
        loc: &Located,
        relative: &str,
    ) -> Result<Pending<Arc<CachedFile>>, String> {
        let key = self.file_key(loc, relative);
        if let Some(f) = self.cache.get(&key) {
            self.metrics.add(&self.metrics.cache_hits, 1);
            return self.rt.spawn(async move { Ok(f) });
        }
        let store = loc.store.clone();
        let path = manifest::data_path(&loc.url.prefix, relative);
        let cache = self.cache.clone();
        let metrics = self.metrics.clone();
        self.rt.spawn(async move {
            // A prefetch may have filled the cache meanwhile.
            if let Some(f) = cache.get(&key) {
                metrics.add(&metrics.cache_hits, 1);
                return Ok(f);
            }
            metrics.add(&metrics.cache_misses, 1);
            let bytes = store
                .get(&path)
                .await
                .map_err(|e| format!("s3_storage: cannot read data file {path}: {e}"))?
                .bytes()
                .await
                .map_err(|e| format!("s3_storage: cannot read data file {path}: {e}"))?;
            metrics.add(&metrics.bytes_fetched, bytes.len() as u64);
            let file = Arc::new(CachedFile::parse(bytes, path.as_ref())?);
            cache.insert(key, file.clone());
            Ok(file)
        })
    }

    /// Uploads a data file.
    pub(crate) fn put_file(&self, loc: &Located, path: Path, bytes: Bytes) -> Result<(), String> {
        let store = loc.store.clone();
        self.rt.run(async move {
            store
                .put(&path, PutPayload::from(bytes))
                .await
                .map(|_| ())
                .map_err(|e| format!("s3_storage: cannot write data file {path}: {e}"))
        })?;
        self.metrics.add(&self.metrics.files_written, 1);
        Ok(())
    }

    /// Deletes objects, ignoring failures (used to clean up after aborted commits).
    pub(crate) fn delete_quietly(&self, loc: &Located, paths: Vec<Path>) {
        if paths.is_empty() {
            return;
        }
        let store = loc.store.clone();
        let _ = self.rt.run(async move {
            for p in paths {
                let _ = store.delete(&p).await;
            }
            Ok(())
        });
    }
}

/// Encodes batches (in `schema`) as one Parquet file; returns the bytes and the footer.
pub(crate) fn encode_parquet(
    batches: &[RecordBatch],
    schema: SchemaRef,
    row_group_size: usize,
) -> Result<(Bytes, ParquetMetaData), String> {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(row_group_size.max(1)))
        .build();
    let mut buf: Vec<u8> = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, schema, Some(props))
        .map_err(|e| format!("s3_storage: cannot write Parquet: {e}"))?;
    for b in batches {
        writer
            .write(b)
            .map_err(|e| format!("s3_storage: cannot write Parquet: {e}"))?;
    }
    let meta = writer
        .close()
        .map_err(|e| format!("s3_storage: cannot write Parquet: {e}"))?;
    Ok((Bytes::from(buf), meta))
}

/// A batch in exactly `schema` (columns by position, cast when the types differ).
pub(crate) fn conform(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    if batch.num_columns() != schema.fields().len() {
        return Err(format!(
            "s3_storage: expected {} columns, got {}",
            schema.fields().len(),
            batch.num_columns()
        ));
    }
    if batch.schema() == *schema {
        return Ok(batch);
    }
    let cols = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                arrow_cast::cast(c, f.data_type()).map_err(|e| {
                    format!(
                        "s3_storage: cannot store {} values in column {} ({}): {e}",
                        c.data_type(),
                        f.name(),
                        f.data_type()
                    )
                })
            }
        })
        .collect::<Result<Vec<_>, String>>()?;
    RecordBatch::try_new_with_options(
        schema.clone(),
        cols,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .map_err(|e| format!("s3_storage: {e}"))
}

/// A batch read from an older file in `schema`, matching columns by name (missing ones null).
pub(crate) fn conform_by_name(
    batch: &RecordBatch,
    schema: &SchemaRef,
) -> Result<RecordBatch, String> {
    let n = batch.num_rows();
    let cols = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            Some(c) => arrow_cast::cast(c, f.data_type()).map_err(|e| e.to_string()),
            None => Ok(phantomdb_plugin_sdk::arrow_array::new_null_array(
                f.data_type(),
                n,
            )),
        })
        .collect::<Result<Vec<_>, String>>()?;
    RecordBatch::try_new_with_options(
        schema.clone(),
        cols,
        &RecordBatchOptions::new().with_row_count(Some(n)),
    )
    .map_err(|e| format!("s3_storage: {e}"))
}

/// A process-wide lock per table location, held while a commit checks and publishes its
/// manifest. It serialises committers in this process even on stores whose conditional PUT is
/// not atomic (such as the s3s-fs test server); across processes the conditional PUT decides.
pub(crate) fn commit_lock(key: &str) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<String, Arc<Mutex<()>>>>> = OnceLock::new();
    LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key.to_string())
        .or_default()
        .clone()
}

/// The `s3_storage` storage engine: tables as Parquet files on S3 or a local directory.
///
/// Cheap to clone (shared state). Usable directly (linked in) or through the plugin.
#[derive(Clone)]
pub struct S3StorageEngine {
    pub(crate) inner: Arc<Inner>,
}

impl Default for S3StorageEngine {
    fn default() -> Self {
        Self::with_defaults(Options::new())
    }
}

impl S3StorageEngine {
    fn with_defaults(config: Options) -> Self {
        let cache_mb = config
            .get("cache_size_mb")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(DEFAULT_CACHE_MB);
        Self {
            inner: Arc::new(Inner {
                config: RwLock::new(config),
                rt: AsyncBridge::new(),
                stores: StoreRegistry::default(),
                cache: Arc::new(FileCache::new(cache_mb.saturating_mul(1 << 20))),
                manifests: Mutex::new(HashMap::new()),
                metrics: Arc::new(Counters::default()),
            }),
        }
    }

    /// An engine with the given plugin configuration (same keys as the JSON configuration:
    /// defaults for the table options plus `cache_size_mb`).
    pub fn new(config: Options) -> Result<Self, String> {
        let json = serde_json::to_string(&config).map_err(|e| e.to_string())?;
        Self::from_json(&json)
    }

    /// An engine configured from plugin configuration JSON (may be empty).
    pub fn from_json(config: &str) -> Result<Self, String> {
        Ok(Self::with_defaults(parse_config(config)?))
    }

    /// Replaces the configuration (what [`phantomdb_plugin_sdk::Plugin::initialize`] does).
    pub fn configure(&self, config: &str) -> Result<(), String> {
        let parsed = parse_config(config)?;
        let cache_mb = parsed
            .get("cache_size_mb")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(DEFAULT_CACHE_MB);
        self.inner
            .cache
            .set_capacity(cache_mb.saturating_mul(1 << 20));
        *self.inner.config.write().unwrap_or_else(|e| e.into_inner()) = parsed;
        Ok(())
    }

    /// Counters of scans and commits since start (or [`S3StorageEngine::reset_metrics`]).
    pub fn metrics(&self) -> EngineMetrics {
        let m = &self.inner.metrics;
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EngineMetrics {
            files_scanned: g(&m.files_scanned),
            files_pruned: g(&m.files_pruned),
            row_groups_read: g(&m.row_groups_read),
            row_groups_pruned: g(&m.row_groups_pruned),
            bytes_fetched: g(&m.bytes_fetched),
            cache_hits: g(&m.cache_hits),
            cache_misses: g(&m.cache_misses),
            files_written: g(&m.files_written),
            commits: g(&m.commits),
            conflicts: g(&m.conflicts),
            cache_bytes: self.inner.cache.used() as u64,
        }
    }

    /// Sets all counters to zero.
    pub fn reset_metrics(&self) {
        let m = &self.inner.metrics;
        for c in [
            &m.files_scanned,
            &m.files_pruned,
            &m.row_groups_read,
            &m.row_groups_pruned,
            &m.bytes_fetched,
            &m.cache_hits,
            &m.cache_misses,
            &m.files_written,
            &m.commits,
            &m.conflicts,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// Empties the data file cache (e.g. to measure cold scans).
    pub fn clear_cache(&self) {
        self.inner.cache.clear();
    }

    /// Stops the engine's I/O runtime; later calls fail.
    pub fn shutdown(&self) {
        self.inner.rt.shutdown();
    }
}

impl StorageEngine for S3StorageEngine {
    fn name(&self) -> &str {
        "s3_storage"
    }

    fn description(&self) -> &str {
        "Tables as Parquet files on S3 (or a local directory), with atomic manifest commits"
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
        validate_table_options(&table.options)?;
        // Fail early on column types Parquet cannot hold.
        encode_parquet(&[], table.schema.clone(), 1)
            .map_err(|e| format!("s3_storage cannot store table {}: {e}", table.name))?;
        let eff = effective(&self.inner.defaults(), &table.options);
        let given = table
            .options
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("location"))
            .map(|(_, v)| v.clone());
        let location = match &given {
            Some(l) => l.clone(),
            None => {
                let path = eff
                    .get("path")
                    .filter(|p| !p.trim().is_empty())
                    .ok_or(MISSING_PATH)?;
                let base = Url::parse(path)?;
                base.child_text(&format!(
                    "{}-{:016x}",
                    sanitize_name(&table.name),
                    random_u64()
                ))
            }
        };
        let loc = self.inner.stores.locate(Url::parse(&location)?, &eff)?;
        let attach = |m: &Manifest| -> Result<(), String> {
            let known: Vec<&str> = m.schema.iter().map(|c| c.name.as_str()).collect();
            let overlap = table
                .schema
                .fields()
                .iter()
                .any(|f| known.contains(&f.name().as_str()));
            if !known.is_empty() && !overlap && !table.schema.fields().is_empty() {
                return Err(format!(
                    "s3_storage: {location} holds a table with columns ({}), none of which are in table {}",
                    known.join(", "),
                    table.name
                ));
            }
            Ok(())
        };
        if given.is_some() {
            if let Some(m) = self.inner.latest_manifest(&loc)? {
                attach(&m)?;
                return Ok(table.options.clone());
            }
        }
        let m = Manifest::empty(&table.name, &table.schema);
        match self.inner.put_manifest(&loc, m.clone()) {
            Ok(()) => self.inner.remember_manifest(&loc.key, Arc::new(m)),
            Err(PutError::Exists) if given.is_some() => {
                if let Some(m) = self.inner.latest_manifest(&loc)? {
                    attach(&m)?;
                }
            }
            Err(PutError::Exists) => {
                return Err(format!(
                    "s3_storage: {location} already holds a table (retry CREATE TABLE)"
                ))
            }
            Err(PutError::Other(e)) => return Err(e),
        }
        let mut out = table.options.clone();
        if given.is_none() {
            out.insert("location".to_string(), location);
        }
        Ok(out)
    }

    fn drop_table(&self, table: &TableInfo) -> Result<(), String> {
        let h = self.inner.table(table)?;
        let loc = h.loc;
        self.inner.forget_table(&loc);
        if loc.url.prefix.as_ref().is_empty() {
            return Err(format!(
                "s3_storage: refusing to delete {}: a table location must be a directory below the bucket or file system root",
                loc.url.text
            ));
        }
        // Only delete what looks like a table (has manifests): a mistyped location must not
        // wipe unrelated data.
        if let Some(dir) = loc.url.local_dir() {
            if !dir.join(manifest::MANIFEST_DIR).is_dir() {
                return Ok(());
            }
            return match std::fs::remove_dir_all(&dir) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(format!("s3_storage: cannot delete {}: {e}", dir.display())),
            };
        }
        let store = loc.store.clone();
        let root = loc.url.prefix.clone();
        self.inner.rt.run(async move {
            let all: Vec<Path> = store
                .list(Some(&root))
                .map_ok(|m| m.location)
                .try_collect()
                .await
                .map_err(|e| format!("s3_storage: cannot list {root}: {e}"))?;
            let manifests_dir = manifest::manifest_dir(&root);
            let (manifests, data): (Vec<Path>, Vec<Path>) = all
                .into_iter()
                .partition(|p| p.prefix_matches(&manifests_dir));
            if manifests.is_empty() {
                return Ok(());
            }
            // Data first, manifests last: an interrupted drop can be repeated.
            for batch in [data, manifests] {
                let paths = futures::stream::iter(batch.into_iter().map(Ok)).boxed();
                let results: Vec<_> = store.delete_stream(paths).collect().await;
                for r in results {
                    match r {
                        Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(e) => return Err(format!("s3_storage: cannot delete {root}: {e}")),
                    }
                }
            }
            Ok(())
        })
    }

    fn list_tables(&self, options: &Options) -> Result<Vec<(String, Options)>, String> {
        let eff = effective(&self.inner.defaults(), options);
        let path = eff
            .get("path")
            .filter(|p| !p.trim().is_empty())
            .ok_or(MISSING_PATH)?;
        let base = Url::parse(path)?;
        let loc = self.inner.stores.locate(base.clone(), &eff)?;
        let store = loc.store.clone();
        let root = loc.url.prefix.clone();
        let found: Vec<(String, Option<Manifest>)> = self.inner.rt.run(async move {
            let listing = match store.list_with_delimiter(Some(&root)).await {
                Ok(l) => l,
                Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
                Err(e) => return Err(format!("s3_storage: cannot list {root}: {e}")),
            };
            let mut out = Vec::new();
            for dir in listing.common_prefixes {
                let Some(name) = dir.filename().map(str::to_string) else {
                    continue;
                };
                let Some(version) = manifest::latest_version_by_listing(&store, &dir).await? else {
                    continue;
                };
                let m = manifest::read_manifest(&store, &dir, version).await.ok();
                out.push((name, m));
            }
            Ok(out)
        })?;
        let mut tables = Vec::new();
        for (dir, m) in found {
            let name = match m.as_ref().map(|m| m.table_name.clone()) {
                Some(n) if !n.is_empty() => n,
                _ => strip_suffix(&dir).to_string(),
            };
            let mut opts: Options = options
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("path"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            opts.insert("location".to_string(), base.child_text(&dir));
            tables.push((name, opts));
        }
        tables.sort();
        Ok(tables)
    }

    fn supports_filters(&self, table: &TableInfo, filters: &[Filter]) -> Vec<FilterSupport> {
        let empty = RecordBatch::new_empty(table.schema.clone());
        filters
            .iter()
            .map(|f| {
                let known = f.columns().iter().all(|c| table.schema.index_of(c).is_ok());
                if known && f.evaluate(&empty).is_ok() {
                    FilterSupport::Exact
                } else {
                    FilterSupport::Unsupported
                }
            })
            .collect()
    }

    fn begin(&self) -> Result<Box<dyn StorageTransaction>, String> {
        Ok(Box::new(crate::txn::Txn::new(self.inner.clone())))
    }
}

/// `name-0123456789abcdef` → `name`.
fn strip_suffix(dir: &str) -> &str {
    match dir.rsplit_once('-') {
        Some((name, hex))
            if hex.len() == 16
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
                && !name.is_empty() =>
        {
            name
        }
        _ => dir,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes() {
        assert_eq!(strip_suffix("orders-0123456789abcdef"), "orders");
        assert_eq!(strip_suffix("my-table"), "my-table");
    }
}
