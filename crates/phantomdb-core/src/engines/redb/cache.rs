//! Decoded segments and columns kept in memory, within a byte budget.

use std::collections::HashMap;

use arrow::array::{Array, ArrayRef, RecordBatch};
use parking_lot::Mutex;

/// Something a [`BudgetCache`] can hold: it knows its size in memory.
pub(super) trait CacheSize {
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
pub(super) struct BudgetCache<K, V> {
    entries: Mutex<(HashMap<K, V>, usize)>,
    budget: usize,
}

impl<K: std::hash::Hash + Eq + Copy, V: Clone + CacheSize> BudgetCache<K, V> {
    pub(super) fn new(budget: usize) -> Self {
        Self {
            entries: Mutex::new((HashMap::new(), 0)),
            budget,
        }
    }

    pub(super) fn get(&self, key: K) -> Option<V> {
        self.entries.lock().0.get(&key).cloned()
    }

    pub(super) fn put(&self, key: K, value: V) {
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
pub(super) type SegmentCache = BudgetCache<(u64, u64), RecordBatch>;

/// Decoded columns of stored segments, by `(table id, segment id, column)`, plus each
/// segment's shape `(stored columns, rows)`. Scans decode only the columns they project.
pub(super) struct ColumnCache {
    pub(super) columns: BudgetCache<(u64, u64, usize), ArrayRef>,
    pub(super) shapes: Mutex<HashMap<(u64, u64), (usize, usize)>>,
}

impl ColumnCache {
    pub(super) fn get(&self, key: (u64, u64, usize)) -> Option<ArrayRef> {
        self.columns.get(key)
    }

    pub(super) fn put(&self, key: (u64, u64, usize), column: ArrayRef) {
        self.columns.put(key, column)
    }
}
