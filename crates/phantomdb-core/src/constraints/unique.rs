//! UNIQUE constraints and unique indexes: keys are compared in Arrow's row format; keys with a
//! NULL never conflict (PostgreSQL's NULLS DISTINCT). Stored rows are found through the
//! engine's index when it keeps one, otherwise by scanning the key columns.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;

use arrow::array::{Array, ArrayRef, RecordBatch, UInt64Array};

use crate::catalog::{IndexDef, TableDef};
use crate::engines::{read_all, ScanRequest, TableAccess};
use crate::error::{Error, Result};
use crate::table::index_keys::{duplicate_in_index, encode_columns, encode_index, IndexKey};
use crate::table::RowId;

/// A set of columns whose values identify a row: the primary key or a unique index.
#[derive(Debug, Clone)]
pub(crate) struct UniqueKey {
    /// The constraint's name (`t_pkey`, or the index name).
    pub(crate) name: String,
    /// Column positions.
    pub(crate) columns: Vec<usize>,
    /// The index, when the key is one (not the primary key).
    pub(crate) index: Option<IndexDef>,
}

impl UniqueKey {
    /// Encoded keys of `rows` (table schema).
    pub(crate) fn encode(&self, def: &TableDef, rows: &RecordBatch) -> Result<Vec<IndexKey>> {
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|&c| rows.column(c).clone())
            .collect();
        encode_columns(def, &self.columns, &arrays)
    }
}

/// The primary key (first) and the unique indexes of `def`.
pub(crate) fn unique_keys(def: &TableDef) -> Vec<UniqueKey> {
    let mut keys = Vec::new();
    if !def.primary_key.is_empty() {
        keys.push(UniqueKey {
            name: format!("{}_pkey", def.name),
            columns: def.primary_key.clone(),
            index: None,
        });
    }
    for index in def.indexes.iter().filter(|i| i.unique) {
        keys.push(UniqueKey {
            name: index.name.clone(),
            columns: index.columns.clone(),
            index: Some(index.clone()),
        });
    }
    keys
}

/// Fails with 23505 when two rows of `rows` share a unique index key, or a row's key is
/// held by a stored row other than those in `replaced` (rows the statement rewrites).
pub(crate) fn check_unique(
    access: &dyn TableAccess,
    rows: &RecordBatch,
    replaced: &[RowId],
) -> Result<()> {
    let def = access.def().clone();
    let replaced: HashSet<RowId> = replaced.iter().copied().collect();
    for index in def.indexes.iter().filter(|i| i.unique) {
        let keys = encode_index(&def, index, rows)?;
        let mut seen = HashSet::with_capacity(keys.len());
        for (row, key) in keys.iter().enumerate() {
            if !key.has_null() && !seen.insert(key.bytes()) {
                return Err(duplicate_in_index(&def, index, rows, row));
            }
        }
        let key = UniqueKey {
            name: index.name.clone(),
            columns: index.columns.clone(),
            index: Some(index.clone()),
        };
        let holders = stored_holders(access, &key, &keys)?;
        for (row, ids) in holders.iter().enumerate() {
            if ids.iter().any(|id| !replaced.contains(id)) {
                return Err(duplicate_in_index(&def, index, rows, row));
            }
        }
    }
    Ok(())
}

/// For each key, the ids of the stored rows holding it (none for keys with a NULL).
pub(crate) fn stored_holders(
    access: &dyn TableAccess,
    key: &UniqueKey,
    keys: &[IndexKey],
) -> Result<Vec<Vec<RowId>>> {
    if keys.iter().all(IndexKey::has_null) {
        return Ok(vec![Vec::new(); keys.len()]);
    }
    if let Some(index) = key.index.as_ref().filter(|i| i.stored) {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            if k.has_null() {
                out.push(Vec::new());
                continue;
            }
            let b = Bound::Included(k.bytes());
            match access.index_range(index, b, b)? {
                Some(ids) => out.push(ids),
                None => return scan_holders(access, key, keys),
            }
        }
        return Ok(out);
    }
    if key.index.is_none() {
        let encoded: Vec<Vec<u8>> = keys.iter().map(|k| k.bytes().to_vec()).collect();
        if let Some(ids) = access.key_ids(&encoded)? {
            return Ok(ids
                .into_iter()
                .zip(keys)
                .map(|(id, k)| {
                    if k.has_null() {
                        Vec::new()
                    } else {
                        id.into_iter().collect()
                    }
                })
                .collect());
        }
    }
    scan_holders(access, key, keys)
}

/// [`stored_holders`] by scanning the key columns.
fn scan_holders(
    access: &dyn TableAccess,
    key: &UniqueKey,
    keys: &[IndexKey],
) -> Result<Vec<Vec<RowId>>> {
    let def = access.def().clone();
    let request = ScanRequest {
        projection: Some(key.columns.clone()),
        with_row_ids: true,
        ..ScanRequest::default()
    };
    let stored = read_all(access, &request)?;
    let n = key.columns.len();
    let arrays: Vec<ArrayRef> = (0..n).map(|i| stored.column(i).clone()).collect();
    let stored_keys = encode_columns(&def, &key.columns, &arrays)?;
    let ids = stored
        .column(n)
        .as_any()
        .downcast_ref::<UInt64Array>()
        .ok_or_else(|| Error::Storage("engine returned bad row ids".into()))?;
    let mut by_key: HashMap<&[u8], Vec<RowId>> = HashMap::new();
    for (i, k) in stored_keys.iter().enumerate() {
        if !k.has_null() {
            by_key.entry(k.bytes()).or_default().push(ids.value(i));
        }
    }
    Ok(keys
        .iter()
        .map(|k| {
            if k.has_null() {
                Vec::new()
            } else {
                by_key.get(k.bytes()).cloned().unwrap_or_default()
            }
        })
        .collect())
}

/// The stored rows `ids` of `access` (any order), with their ids in the returned order.
pub(crate) fn fetch_rows(
    access: &dyn TableAccess,
    ids: &[RowId],
) -> Result<(RecordBatch, Vec<RowId>)> {
    if let Some(found) = access.fetch(ids)? {
        return Ok(found);
    }
    let def = access.def().clone();
    let request = ScanRequest {
        projection: None,
        with_row_ids: true,
        ..ScanRequest::default()
    };
    let all = read_all(access, &request)?;
    let n = def.schema.fields().len();
    let all_ids = all
        .column(n)
        .as_any()
        .downcast_ref::<UInt64Array>()
        .ok_or_else(|| Error::Storage("engine returned bad row ids".into()))?;
    let wanted: HashSet<RowId> = ids.iter().copied().collect();
    let keep: Vec<u32> = (0..all.num_rows())
        .filter(|&i| wanted.contains(&all_ids.value(i)))
        .map(|i| i as u32)
        .collect();
    let take = arrow::array::UInt32Array::from(keep);
    let rows =
        arrow::compute::take_record_batch(&all.project(&(0..n).collect::<Vec<_>>())?, &take)?;
    let order = take
        .values()
        .iter()
        .map(|&i| all_ids.value(i as usize))
        .collect();
    Ok((rows, order))
}
