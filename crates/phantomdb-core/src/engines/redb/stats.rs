//! Per-segment column statistics ([`UnitStats`]) in their own redb table, `stats`, keyed like
//! the segments: written with each segment, removed with it, recomputed by `ANALYZE`.
//!
//! Deleting rows leaves a segment's statistics as they are (they stay valid bounds); merging
//! segments at commit writes a new segment, with new statistics. A segment without an entry
//! (written by a build before statistics existed) has unknown statistics until `ANALYZE`.
//!
//! Entries are sealed in a checksummed envelope ([`super::checksum`]): damaged statistics
//! could make a scan skip a segment holding matching rows, so an entry whose checksum does
//! not match reads as unknown (no segment is skipped on its account) and `check` reports it.

use std::sync::Arc;

use arrow::datatypes::DataType;
use redb::{ReadableTable, TableDefinition};

use super::checksum::{seal, segment_name, unseal, Kind};
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
    let decoded = unseal(Kind::Stats, bytes.value(), || {
        format!("statistics of {}", segment_name(&table.name, seg))
    })
    .and_then(|payload| UnitStats::decode(payload, &types));
    match decoded {
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
    txn.open_table(STATS)?.insert(
        (table_id, seg),
        seal(Kind::Stats, &stats.encode()?).as_slice(),
    )?;
    Ok(())
}

/// Verifies every statistics entry of `table` (for `check`): the damaged ones, by segment.
/// Entries without an envelope (stored bare by format-2 files before statistics were
/// sealed) are not counted: they read as unknown.
pub(super) fn damaged<T>(stats: &T, table: &TableDef) -> Result<Vec<(u64, crate::error::Error)>>
where
    T: ReadableTable<(u64, u64), &'static [u8]>,
{
    let types: Vec<DataType> = table
        .schema
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    let mut out = Vec::new();
    for item in stats.range((table.id, 0)..=(table.id, u64::MAX))? {
        let (k, v) = item?;
        let (_, seg) = k.value();
        let bytes = v.value();
        if bytes.len() < 4 || !Kind::Stats.is_tag_of(bytes) {
            continue;
        }
        let decoded = unseal(Kind::Stats, bytes, || {
            format!("statistics of {}", segment_name(&table.name, seg))
        })
        .and_then(|payload| UnitStats::decode(payload, &types));
        if let Err(e) = decoded {
            out.push((seg, e));
        }
    }
    Ok(out)
}
