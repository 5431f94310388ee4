//! Shared state of an engine (clients, file cache, manifests, runtime, counters) and the
//! object store I/O that goes through it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use phantomdb_plugin_sdk::{Options, TableInfo};

use crate::cache::{CachedFile, FileCache};
use crate::config::{effective, row_group_size, Located, StoreRegistry, Url};
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
    pub stores: StoreRegistry,
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
    /// Fresh state with the plugin configuration `config` and a file cache of `cache_bytes`.
    pub(crate) fn new(config: Options, cache_bytes: usize) -> Self {
        Self {
            config: RwLock::new(config),
            rt: AsyncBridge::new(),
            stores: StoreRegistry::default(),
            cache: Arc::new(FileCache::new(cache_bytes)),
            manifests: Mutex::new(HashMap::new()),
            metrics: Arc::new(Counters::default()),
        }
    }

    /// Replaces the defaults of the table options.
    pub(crate) fn set_defaults(&self, config: Options) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
    }

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

    pub(crate) fn forget_table(&self, loc: &Located) {
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

    /// Which commit published manifest `version`: its `commit_id`, `None` when the version
    /// does not exist. Used after a manifest PUT whose answer was lost.
    pub(crate) fn manifest_commit(
        &self,
        loc: &Located,
        version: u64,
    ) -> Result<Option<String>, String> {
        if !self.manifest_exists(loc, version)? {
            return Ok(None);
        }
        let store = loc.store.clone();
        let root = loc.url.prefix.clone();
        self.rt
            .run(async move { manifest::read_manifest(&store, &root, version).await })
            .map(|m| Some(m.commit_id))
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
