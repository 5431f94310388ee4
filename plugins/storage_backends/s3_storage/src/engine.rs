//! The engine: table lifecycle (create, open, drop, adopt) and its configuration.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::ObjectStore;
use phantomdb_plugin_sdk::arrow_array::RecordBatch;
use phantomdb_plugin_sdk::{
    Capabilities, Filter, FilterSupport, Options, StorageEngine, StorageTransaction, TableInfo,
};

use crate::config::{
    effective, parse_config, random_u64, sanitize_name, validate_table_options, Url,
    DEFAULT_CACHE_MB, MISSING_PATH,
};
use crate::files::encode_parquet;
use crate::manifest::{self, Manifest, PutError};
use crate::state::{EngineMetrics, Inner};

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
            inner: Arc::new(Inner::new(config, cache_mb.saturating_mul(1 << 20))),
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
        self.inner.set_defaults(parsed);
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
