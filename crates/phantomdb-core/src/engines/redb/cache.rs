//! Decoded segments and columns kept in memory, under one byte budget for the whole process.
//!
//! Every open database shares one [`DecodedCache`]: whole decoded segments (key lookups,
//! compaction, segments just written) and the single columns scans decode. Its budget is a
//! share of the process's `memory_limit` ([`crate::memory::cache_budget`]), and it evicts by
//! a segmented LRU
//! ([`Lru`]): a scan of more data than the budget cycles through the probation part and
//! streams, leaving the columns that queries read again in the protected part.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use arrow::array::{Array, ArrayRef, RecordBatch};
use parking_lot::Mutex;

/// The protected part (entries read at least twice) holds at most this share of the budget;
/// entries read once wait in the probation part, which a scan larger than the budget cycles
/// through.
const PROTECTED_PERCENT: usize = 80;

/// Something a cache can hold: it knows its size in memory.
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

struct Entry<V> {
    value: V,
    bytes: usize,
    tick: u64,
    protected: bool,
}

/// A segmented LRU map within a byte budget. A new entry enters the probation part; reading
/// it again moves it to the protected part, which keeps at most [`PROTECTED_PERCENT`] of the
/// budget (its least recently used entries fall back to probation). Over budget, the least
/// recently used probation entry goes first, then the least recently used protected one. An
/// entry larger than the whole budget is not kept.
pub(super) struct Lru<K, V> {
    map: HashMap<K, Entry<V>>,
    /// Keys by last use, oldest first.
    probation: BTreeMap<u64, K>,
    protected: BTreeMap<u64, K>,
    used: usize,
    protected_used: usize,
    budget: usize,
    tick: u64,
}

impl<K: Hash + Eq + Copy, V: Clone + CacheSize> Lru<K, V> {
    pub(super) fn new(budget: usize) -> Self {
        Self {
            map: HashMap::new(),
            probation: BTreeMap::new(),
            protected: BTreeMap::new(),
            used: 0,
            protected_used: 0,
            budget,
            tick: 0,
        }
    }

    #[cfg(test)]
    /// Bytes held.
    pub(super) fn used(&self) -> usize {
        self.used
    }

    #[cfg(test)]
    pub(super) fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    /// The value of `key`, marking it most recently used (and protected).
    pub(super) fn get(&mut self, key: &K) -> Option<V> {
        self.tick += 1;
        let tick = self.tick;
        let entry = self.map.get_mut(key)?;
        if entry.protected {
            self.protected.remove(&entry.tick);
        } else {
            self.probation.remove(&entry.tick);
            entry.protected = true;
            self.protected_used += entry.bytes;
        }
        entry.tick = tick;
        self.protected.insert(tick, *key);
        let value = entry.value.clone();
        self.demote_overflow();
        Some(value)
    }

    /// Adds (or replaces) `key`, evicting least recently used entries to stay within the
    /// budget. Returns whether it was kept (not when larger than the whole budget).
    pub(super) fn put(&mut self, key: K, value: V) -> bool {
        self.remove(&key);
        let bytes = value.bytes();
        if bytes > self.budget {
            return false;
        }
        self.tick += 1;
        self.map.insert(
            key,
            Entry {
                value,
                bytes,
                tick: self.tick,
                protected: false,
            },
        );
        self.probation.insert(self.tick, key);
        self.used += bytes;
        while self.used > self.budget {
            let victim = match self.probation.first_key_value() {
                Some((_, k)) => *k,
                None => match self.protected.first_key_value() {
                    Some((_, k)) => *k,
                    None => break,
                },
            };
            self.remove(&victim);
        }
        true
    }

    /// Removes `key`, if present.
    pub(super) fn remove(&mut self, key: &K) {
        let Some(entry) = self.map.remove(key) else {
            return;
        };
        self.used -= entry.bytes;
        if entry.protected {
            self.protected.remove(&entry.tick);
            self.protected_used -= entry.bytes;
        } else {
            self.probation.remove(&entry.tick);
        }
    }

    /// Removes every entry whose key matches.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        let gone: Vec<K> = self.map.keys().filter(|k| !keep(k)).copied().collect();
        for k in gone {
            self.remove(&k);
        }
    }

    /// Moves the least recently used protected entries back to probation (as its most
    /// recently used) while the protected part is over its share.
    fn demote_overflow(&mut self) {
        let cap = self.budget / 100 * PROTECTED_PERCENT;
        while self.protected_used > cap {
            let Some((_, key)) = self.protected.pop_first() else {
                break;
            };
            let Some(entry) = self.map.get_mut(&key) else {
                continue;
            };
            self.tick += 1;
            entry.protected = false;
            entry.tick = self.tick;
            self.protected_used -= entry.bytes;
            self.probation.insert(self.tick, key);
        }
    }
}

/// What a cached entry holds of a segment.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(super) enum Part {
    /// The whole decoded segment, as stored.
    Whole,
    /// One stored column.
    Column(usize),
}

/// A cache key: `(store, table id, segment id, part)`. Store ids keep databases open in one
/// process apart; segment ids are never reused within one, so an entry never goes stale.
pub(super) type CacheKey = (u64, u64, u64, Part);

/// A cached value.
#[derive(Clone)]
pub(super) enum Decoded {
    Segment(RecordBatch),
    Column(ArrayRef),
}

impl CacheSize for Decoded {
    fn bytes(&self) -> usize {
        match self {
            Decoded::Segment(b) => b.bytes(),
            Decoded::Column(a) => a.bytes(),
        }
    }
}

/// The process's cache of decoded segments and columns.
pub(super) struct DecodedCache {
    lru: Mutex<Lru<CacheKey, Decoded>>,
}

impl DecodedCache {
    pub(super) fn new(budget: usize) -> Self {
        Self {
            lru: Mutex::new(Lru::new(budget)),
        }
    }

    /// The cache every store of this process shares, sized from `memory_limit`.
    pub(super) fn shared() -> &'static DecodedCache {
        static SHARED: OnceLock<DecodedCache> = OnceLock::new();
        SHARED.get_or_init(|| DecodedCache::new(crate::memory::cache_budget()))
    }

    /// A fresh store id for keys.
    pub(super) fn next_store_id() -> u64 {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    pub(super) fn segment(&self, store: u64, table: u64, seg: u64) -> Option<RecordBatch> {
        match self.lru.lock().get(&(store, table, seg, Part::Whole)) {
            Some(Decoded::Segment(b)) => Some(b),
            _ => None,
        }
    }

    pub(super) fn put_segment(&self, store: u64, table: u64, seg: u64, batch: RecordBatch) {
        self.lru
            .lock()
            .put((store, table, seg, Part::Whole), Decoded::Segment(batch));
    }

    pub(super) fn column(&self, store: u64, table: u64, seg: u64, col: usize) -> Option<ArrayRef> {
        match self.lru.lock().get(&(store, table, seg, Part::Column(col))) {
            Some(Decoded::Column(a)) => Some(a),
            _ => None,
        }
    }

    pub(super) fn put_column(&self, store: u64, table: u64, seg: u64, col: usize, a: ArrayRef) {
        self.lru
            .lock()
            .put((store, table, seg, Part::Column(col)), Decoded::Column(a));
    }

    /// Drops every entry of a store (when it closes).
    pub(super) fn forget_store(&self, store: u64) {
        self.lru.lock().retain(|k| k.0 != store);
    }
}

/// One store's whole decoded segments by `(table id, segment id)`, in the shared cache.
pub(super) struct SegmentCache {
    /// The store's id in the shared cache's keys.
    pub(super) store: u64,
}

impl SegmentCache {
    /// The segments of a new store (a fresh store id).
    pub(super) fn new() -> Self {
        Self {
            store: DecodedCache::next_store_id(),
        }
    }

    pub(super) fn get(&self, (table, seg): (u64, u64)) -> Option<RecordBatch> {
        DecodedCache::shared().segment(self.store, table, seg)
    }

    pub(super) fn put(&self, (table, seg): (u64, u64), batch: RecordBatch) {
        DecodedCache::shared().put_segment(self.store, table, seg, batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value of a given size.
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Sized(usize);

    impl CacheSize for Sized {
        fn bytes(&self) -> usize {
            self.0
        }
    }

    #[test]
    fn evicts_the_least_recently_used_first() {
        let mut lru = Lru::new(300);
        for k in 1..=3 {
            assert!(lru.put(k, Sized(100)));
        }
        // Read 1 and 2 (in that order): 3 is now the least recently used.
        lru.get(&1);
        lru.get(&2);
        lru.put(4, Sized(100));
        assert!(!lru.contains(&3));
        assert!(lru.contains(&1) && lru.contains(&2) && lru.contains(&4));
        // Of the entries read once (probation) the oldest goes first, before any read twice.
        lru.put(5, Sized(100));
        assert!(!lru.contains(&4));
        assert!(lru.contains(&1) && lru.contains(&2) && lru.contains(&5));
    }

    #[test]
    fn protected_entries_are_evicted_in_last_use_order() {
        let mut lru = Lru::new(1000);
        for k in 1..=4 {
            lru.put(k, Sized(200));
            lru.get(&k);
        }
        // All four are protected (800 bytes = the protected share). Read 1 again: 2 is the
        // least recently used protected entry.
        lru.get(&1);
        lru.put(10, Sized(200));
        lru.put(11, Sized(200));
        // 10 was the only probation entry when 11 came: it went first.
        assert!(!lru.contains(&10));
        // Growing the protected part past its share demotes its oldest (2) to probation,
        // which is then the first to go.
        lru.get(&11);
        lru.put(12, Sized(200));
        assert!(!lru.contains(&2), "2 was demoted and evicted");
        for k in [1, 3, 4, 11, 12] {
            assert!(lru.contains(&k), "{k}");
        }
    }

    #[test]
    fn never_holds_more_than_the_budget() {
        let mut lru = Lru::new(10_000);
        for k in 0..5_000u64 {
            lru.put(k, Sized(1 + (k as usize * 37) % 900));
            if k % 3 == 0 {
                lru.get(&(k / 2));
            }
            assert!(lru.used() <= 10_000, "{} after {k}", lru.used());
        }
        let held: usize = (0..5_000u64)
            .filter(|k| lru.contains(k))
            .map(|k| 1 + (k as usize * 37) % 900)
            .sum();
        assert_eq!(held, lru.used());
    }

    #[test]
    fn an_entry_larger_than_the_budget_is_not_kept_and_evicts_nothing() {
        let mut lru = Lru::new(100);
        lru.put(1, Sized(60));
        assert!(!lru.put(2, Sized(101)));
        assert!(lru.contains(&1) && !lru.contains(&2));
        assert_eq!(lru.used(), 60);
    }

    #[test]
    fn a_scan_larger_than_the_budget_leaves_the_reused_entries() {
        let mut lru = Lru::new(1000);
        // A working set read on every query: 5 x 100 bytes, read twice.
        for k in 0..5 {
            lru.put(k, Sized(100));
        }
        for k in 0..5 {
            lru.get(&k);
        }
        // A scan of 50 x 100 bytes (5x the budget), each read once.
        for k in 100..150 {
            lru.put(k, Sized(100));
            assert!(lru.used() <= 1000);
        }
        for k in 0..5 {
            assert!(lru.contains(&k), "reused entry {k} survived the scan");
        }
        // The scan's last entries are kept too: it used the rest of the budget.
        assert!(lru.contains(&149));
        assert!(!lru.contains(&100));
    }

    #[test]
    fn replacing_and_removing_keep_the_accounting() {
        let mut lru = Lru::new(1000);
        lru.put(1, Sized(300));
        lru.get(&1);
        lru.put(1, Sized(100));
        assert_eq!(lru.used(), 100);
        lru.put(2, Sized(200));
        lru.get(&2);
        lru.retain(|k| *k != 2);
        assert_eq!(lru.used(), 100);
        assert_eq!(lru.get(&1), Some(Sized(100)));
        lru.remove(&1);
        assert_eq!(lru.used(), 0);
        assert_eq!(lru.get(&1), None);
    }
}
