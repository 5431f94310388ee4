//! Per-segment column statistics ([`UnitStats`]) in their own redb table, `stats`, keyed like
//! the segments: written with each segment, removed with it, recomputed by `ANALYZE`.
//!
//! Deleting rows leaves a segment's statistics as they are (they stay valid bounds); merging
//! segments at commit writes a new segment, with new statistics. A segment without an entry
//! (written by a build before statistics existed) has unknown statistics until `ANALYZE`.

use std::sync::Arc;

use arrow::datatypes::DataType;
use redb::{ReadableTable, TableDefinition};

use crate::catalog::TableDef;
use crate::error::Result;
use crate::table::stats::UnitStats;

/// Statistics of each segment by `(table id, segment id)`.
pub(super) const STATS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("stats");

/// The statistics of segment `seg` of `table`, if recorded (and readable: unreadable
/// statistics are only a lost optimization, so they read as unknown).
pub(super) fn read<T>(stats: &T, table: &TableDef, seg: u64) -> Result<Option<Arc<UnitStats>>>
where
    T: ReadableTable<(u64, u64), &'static [u8]>,
{
    let Some(bytes) = stats.get((table.id, seg))? else {
        return Ok(None);
    };
    let types: Vec<DataType> = table
        .schema
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    match UnitStats::decode(bytes.value(), &types) {
        Ok(s) => Ok(Some(Arc::new(s))),
        Err(e) => {
            tracing::warn!(table = %table.name, segment = seg, error = %e, "unreadable statistics");
            Ok(None)
        }
    }
}

/// Records the statistics of a segment being written.
pub(super) fn write(
    txn: &redb::WriteTransaction,
    table_id: u64,
    seg: u64,
    stats: &UnitStats,
) -> Result<()> {
    txn.open_table(STATS)?
        .insert((table_id, seg), stats.encode()?.as_slice())?;
    Ok(())
}
