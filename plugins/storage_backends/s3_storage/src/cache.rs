//! A bounded in-memory cache of data files (immutable, so never stale), with their parsed
//! Parquet footers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};

/// A data file in memory.
pub(crate) struct CachedFile {
    pub bytes: Bytes,
    pub meta: ArrowReaderMetadata,
}

impl CachedFile {
    pub(crate) fn parse(bytes: Bytes, what: &str) -> Result<Self, String> {
        let meta = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::new())
            .map_err(|e| format!("s3_storage: cannot read Parquet file {what}: {e}"))?;
        Ok(Self { bytes, meta })
    }
}

struct Entry {
    file: Arc<CachedFile>,
    last_use: u64,
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Entry>,
    used: usize,
    tick: u64,
}

/// Least-recently-used cache bounded by total file size.
pub(crate) struct FileCache {
    capacity: AtomicUsize,
    inner: Mutex<Inner>,
}

impl FileCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: AtomicUsize::new(capacity),
            inner: Mutex::new(Inner::default()),
        }
    }

    pub(crate) fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity, Ordering::Relaxed);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        Self::evict(&mut inner, capacity, 0);
    }

    pub(crate) fn get(&self, key: &str) -> Option<Arc<CachedFile>> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.tick += 1;
        let tick = inner.tick;
        inner.map.get_mut(key).map(|e| {
            e.last_use = tick;
            e.file.clone()
        })
    }

    pub(crate) fn insert(&self, key: String, file: Arc<CachedFile>) {
        let capacity = self.capacity.load(Ordering::Relaxed);
        let size = file.bytes.len();
        if size > capacity {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = inner.map.remove(&key) {
            inner.used -= old.file.bytes.len();
        }
        Self::evict(&mut inner, capacity, size);
        inner.tick += 1;
        let last_use = inner.tick;
        inner.used += size;
        inner.map.insert(key, Entry { file, last_use });
    }

    fn evict(inner: &mut Inner, capacity: usize, incoming: usize) {
        while inner.used + incoming > capacity {
            let Some(victim) = inner
                .map
                .iter()
                .min_by_key(|(_, e)| e.last_use)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = inner.map.remove(&victim) {
                inner.used -= e.file.bytes.len();
            }
        }
    }

    /// Forgets every file whose key starts with `prefix`.
    pub(crate) fn remove_prefix(&self, prefix: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let keys: Vec<String> = inner
            .map
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        for k in keys {
            if let Some(e) = inner.map.remove(&k) {
                inner.used -= e.file.bytes.len();
            }
        }
    }

    pub(crate) fn clear(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.map.clear();
        inner.used = 0;
    }

    /// Bytes held.
    pub(crate) fn used(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).used
    }
}
