//! Secondary indexes of redb tables.
//!
//! Each stored index is a redb table `ix_<index id>` whose keys are the indexed columns in
//! Arrow's order-preserving row format followed by the row id (big-endian), with no value:
//! a range of keys is a range of indexed values, and entries of equal values differ by row
//! id. Rows with NULLs are indexed too (uniqueness checks skip them). The write transaction
//! keeps every index in step with appends, deletions and compaction, in its own redb
//! transaction, so a rollback undoes index changes with the rows.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use redb::{ReadableTable, TableDefinition};

use super::read::DataView;
use super::segment::SegmentSnapshot;
use super::write::WriteTxn;
use super::{row_id, split_row_id};
use crate::catalog::{IndexDef, TableDef};
use crate::error::{Error, Result};
use crate::table::index_keys::{duplicate_in_index, encode_index};
use crate::table::RowId;

/// The redb table holding index `id`'s entries.
pub(super) fn index_table_name(id: u64) -> String {
    format!("ix_{id}")
}

/// Entry key: the encoded indexed values, then the row id.
pub(super) fn entry_key(key: &[u8], id: RowId) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 8);
    k.extend_from_slice(key);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The smallest byte string greater than every string starting with `prefix` (`None`: no
/// such string, the prefix is all 0xFF).
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut s = prefix.to_vec();
    while let Some(last) = s.pop() {
        if last < 0xFF {
            s.push(last + 1);
            return Some(s);
        }
    }
    None
}

/// Row ids of the entries whose key starts with a value in the range `lo..hi` of encoded
/// prefixes (an encoded prefix selects every entry starting with it).
pub(super) fn scan_range<T>(table: &T, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Result<Vec<RowId>>
where
    T: ReadableTable<&'static [u8], ()>,
{
    let start: Bound<Vec<u8>> = match lo {
        Bound::Included(k) => Bound::Included(k.to_vec()),
        Bound::Excluded(k) => match prefix_successor(k) {
            Some(s) => Bound::Included(s),
            None => return Ok(Vec::new()),
        },
        Bound::Unbounded => Bound::Unbounded,
    };
    let end: Bound<Vec<u8>> = match hi {
        Bound::Included(k) => match prefix_successor(k) {
            Some(s) => Bound::Excluded(s),
            None => Bound::Unbounded,
        },
        Bound::Excluded(k) => Bound::Excluded(k.to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    };
    let mut ids = Vec::new();
    let range = (
        start.as_ref().map(|v| v.as_slice()),
        end.as_ref().map(|v| v.as_slice()),
    );
    for entry in table.range::<&[u8]>(range)? {
        let (k, _) = entry?;
        let k = k.value();
        if k.len() < 8 {
            return Err(Error::Storage("corrupt index entry".into()));
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&k[k.len() - 8..]);
        ids.push(u64::from_be_bytes(id));
    }
    Ok(ids)
}

/// Opens index `id` in a read or write transaction and scans a range of it.
pub(super) fn read_range(
    txn: &impl IndexReader,
    id: u64,
    lo: Bound<&[u8]>,
    hi: Bound<&[u8]>,
) -> Result<Vec<RowId>> {
    txn.scan(id, lo, hi)
}

/// A redb transaction an index can be read through.
pub(super) trait IndexReader {
    /// Row ids in a range of index `id`.
    fn scan(&self, id: u64, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Result<Vec<RowId>>;
}

impl IndexReader for redb::ReadTransaction {
    fn scan(&self, id: u64, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Result<Vec<RowId>> {
        let name = index_table_name(id);
        let def: TableDefinition<&[u8], ()> = TableDefinition::new(&name);
        match self.open_table(def) {
            Ok(t) => scan_range(&t, lo, hi),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }
}

impl IndexReader for redb::WriteTransaction {
    fn scan(&self, id: u64, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Result<Vec<RowId>> {
        let name = index_table_name(id);
        let def: TableDefinition<&[u8], ()> = TableDefinition::new(&name);
        let t = self.open_table(def)?;
        scan_range(&t, lo, hi)
    }
}

/// The rows `ids` (live rows of `table`, any order) through a data view, in `ids` order
/// grouped by segment.
pub(super) fn fetch_rows(
    view: &dyn DataView,
    table: &TableDef,
    ids: &[RowId],
) -> Result<(RecordBatch, Vec<RowId>)> {
    let mut by_segment: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for &id in ids {
        let (seg, row) = split_row_id(id);
        by_segment.entry(seg).or_default().push(row as u32);
    }
    let all: Vec<usize> = (0..table.schema.fields().len()).collect();
    let refs = view.segment_refs(table)?;
    let mut parts = Vec::with_capacity(by_segment.len());
    let mut order = Vec::with_capacity(ids.len());
    for (seg, rows) in by_segment {
        let Some(r) = refs.iter().find(|r| r.id == seg) else {
            return Err(Error::Storage(format!(
                "index points to missing segment {seg}"
            )));
        };
        let batch = view.load(table, r, &all)?;
        order.extend(rows.iter().map(|&row| row_id(seg, row as usize)));
        parts.push(take_record_batch(&batch, &UInt32Array::from(rows))?);
    }
    Ok((concat_batches(&table.schema_ref(), &parts)?, order))
}

/// The ids of a segment's live rows, in row order.
pub(super) fn live_ids(s: &SegmentSnapshot) -> Vec<RowId> {
    (0..s.batch.num_rows())
        .filter(|&r| !s.deleted.as_ref().is_some_and(|d| d.get(r)))
        .map(|r| row_id(s.id, r))
        .collect()
}

fn stored(table: &TableDef) -> impl Iterator<Item = &IndexDef> {
    table.indexes.iter().filter(|i| i.stored)
}

impl WriteTxn {
    /// Adds index entries for `batch`, whose rows have the ids `first..`.
    pub(super) fn index_add(
        &mut self,
        table: &TableDef,
        batch: &RecordBatch,
        first: RowId,
    ) -> Result<()> {
        for index in stored(table) {
            let keys = encode_index(table, index, batch)?;
            let name = index_table_name(index.id);
            let def: TableDefinition<&[u8], ()> = TableDefinition::new(&name);
            let mut t = self.txn()?.open_table(def)?;
            for (i, key) in keys.iter().enumerate() {
                t.insert(entry_key(key.bytes(), first + i as u64).as_slice(), ())?;
            }
        }
        Ok(())
    }

    /// Removes the index entries of `batch`, whose rows have the ids `ids`.
    pub(super) fn index_remove(
        &mut self,
        table: &TableDef,
        batch: &RecordBatch,
        ids: &[RowId],
    ) -> Result<()> {
        for index in stored(table) {
            let keys = encode_index(table, index, batch)?;
            let name = index_table_name(index.id);
            let def: TableDefinition<&[u8], ()> = TableDefinition::new(&name);
            let mut t = self.txn()?.open_table(def)?;
            for (key, &id) in keys.iter().zip(ids) {
                t.remove(entry_key(key.bytes(), id).as_slice())?;
            }
        }
        Ok(())
    }

    /// Removes the index entries of the stored rows `ids` (before they are deleted).
    pub(super) fn index_remove_ids(&mut self, table: &TableDef, ids: &[RowId]) -> Result<()> {
        if stored(table).next().is_none() || ids.is_empty() {
            return Ok(());
        }
        let rows = self.fetch(table, ids)?;
        // `fetch` returns rows grouped by segment, in the given order within a segment.
        let mut sorted = ids.to_vec();
        sorted.sort_by_key(|&id| split_row_id(id).0);
        self.index_remove(table, &rows, &sorted)
    }

    /// Removes the index entries of the segments compaction is about to rewrite.
    pub(super) fn index_remove_segments(
        &mut self,
        table: &TableDef,
        segments: &[&SegmentSnapshot],
    ) -> Result<()> {
        if stored(table).next().is_none() {
            return Ok(());
        }
        for s in segments {
            let ids = live_ids(s);
            let live = s.live()?;
            self.index_remove(table, &live, &ids)?;
        }
        Ok(())
    }

    /// Creates index `index` of `table` (in `table`'s catalog entry already) and fills it from
    /// the table's rows; a unique index fails with 23505 on rows sharing a non-NULL key.
    pub fn index_create(&mut self, table: &TableDef, index: &IndexDef) -> Result<()> {
        let name = index_table_name(index.id);
        let def: TableDefinition<&[u8], ()> = TableDefinition::new(&name);
        self.txn()?.open_table(def)?;
        let segments = self.segments(table)?;
        let mut seen = HashSet::new();
        for s in &segments {
            let ids = live_ids(s);
            let live = s.live()?;
            let keys = encode_index(table, index, &live)?;
            if index.unique {
                for (row, key) in keys.iter().enumerate() {
                    if !key.has_null() && !seen.insert(key.bytes().to_vec()) {
                        return Err(duplicate_in_index(table, index, &live, row));
                    }
                }
            }
            let mut t = self.txn()?.open_table(def)?;
            for (key, id) in keys.iter().zip(ids) {
                t.insert(entry_key(key.bytes(), id).as_slice(), ())?;
            }
        }
        Ok(())
    }

    /// Removes index `id`'s entries.
    pub fn index_drop(&mut self, id: u64) -> Result<()> {
        let name = index_table_name(id);
        let def: TableDefinition<&[u8], ()> = TableDefinition::new(&name);
        self.txn()?.delete_table(def)?;
        Ok(())
    }

    /// Row ids in a range of index `id`, as this transaction sees it.
    pub(super) fn index_range(
        &self,
        id: u64,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
    ) -> Result<Vec<RowId>> {
        read_range(self.txn()?, id, lo, hi)
    }
}

/// The row id of each primary key in `keys` (encoded), read from the `pk_<id>` table.
pub(super) fn key_ids(
    txn: &impl KeyReader,
    table: &TableDef,
    keys: &[Vec<u8>],
) -> Result<Vec<Option<RowId>>> {
    txn.key_ids(table, keys)
}

/// A redb transaction the primary-key index can be read through.
pub(super) trait KeyReader {
    /// The row id of each key, if present.
    fn key_ids(&self, table: &TableDef, keys: &[Vec<u8>]) -> Result<Vec<Option<RowId>>>;
}

fn pk_ids<T: ReadableTable<&'static [u8], u64>>(
    t: &T,
    keys: &[Vec<u8>],
) -> Result<Vec<Option<RowId>>> {
    keys.iter()
        .map(|k| Ok(t.get(k.as_slice())?.map(|v| v.value())))
        .collect()
}

impl KeyReader for redb::ReadTransaction {
    fn key_ids(&self, table: &TableDef, keys: &[Vec<u8>]) -> Result<Vec<Option<RowId>>> {
        let name = super::pk_table_name(table.id);
        let def: TableDefinition<&[u8], u64> = TableDefinition::new(&name);
        match self.open_table(def) {
            Ok(t) => pk_ids(&t, keys),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(vec![None; keys.len()]),
            Err(e) => Err(e.into()),
        }
    }
}

impl KeyReader for redb::WriteTransaction {
    fn key_ids(&self, table: &TableDef, keys: &[Vec<u8>]) -> Result<Vec<Option<RowId>>> {
        let name = super::pk_table_name(table.id);
        let def: TableDefinition<&[u8], u64> = TableDefinition::new(&name);
        pk_ids(&self.open_table(def)?, keys)
    }
}
