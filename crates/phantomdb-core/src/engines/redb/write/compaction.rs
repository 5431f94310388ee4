//! Compaction at commit: small and mostly-deleted segments of a table are merged.

use super::*;

impl WriteTxn {
    /// Merges small and mostly-deleted segments of the table.
    pub(super) fn compact(&mut self, table: &TableDef) -> Result<()> {
        if !self.needs_compaction(table)? {
            return Ok(());
        }
        let segments = self.segments(table)?;
        let is_candidate = |s: &SegmentSnapshot| {
            let deleted = s.deleted.as_ref().map_or(0, Bitmap::count);
            let live = s.batch.num_rows() - deleted;
            live < SMALL_SEGMENT_ROWS || deleted * 2 > s.batch.num_rows()
        };
        let candidates: Vec<&SegmentSnapshot> =
            segments.iter().filter(|s| is_candidate(s)).collect();
        let small = candidates.len();
        let heavily_deleted = candidates
            .iter()
            .any(|s| s.deleted.as_ref().map_or(0, Bitmap::count) * 2 > s.batch.num_rows());
        if small <= MAX_SMALL_SEGMENTS && !heavily_deleted {
            return Ok(());
        }
        let mut live = Vec::with_capacity(candidates.len());
        for s in &candidates {
            live.push(s.live()?);
        }
        let merged = concat_batches(&table.schema_ref(), &live)?;
        self.index_remove_segments(table, &candidates)?;
        let txn = self.txn()?;
        {
            let mut segs = txn.open_table(SEGMENTS)?;
            let mut dels = txn.open_table(DELETES)?;
            let mut stats = txn.open_table(super::super::stats::STATS)?;
            for s in &candidates {
                segs.remove((table.id, s.id))?;
                dels.remove((table.id, s.id))?;
                stats.remove((table.id, s.id))?;
            }
        }
        let keys = if table.primary_key.is_empty() {
            Vec::new()
        } else {
            encode_keys(table, &merged)?
        };
        self.append(table, merged, &keys)?;
        // The moved rows' keys are in the index already: rewrite them in place.
        self.write_keys(table.id)?;
        self.flush(table)?;
        tracing::debug!(table = %table.name, merged = small, "compacted segments");
        Ok(())
    }

    /// Whether [`WriteTxn::compact`] has work, decided from the segments' headers (row
    /// counts) and delete bitmaps without decoding any segment: a commit into a large table
    /// would otherwise read the whole table back (18% of a TPC-H lineitem load).
    fn needs_compaction(&self, table: &TableDef) -> Result<bool> {
        let txn = self.txn()?;
        let deletes = txn.open_table(DELETES)?;
        let no_stats: Option<&redb::Table<'_, (u64, u64), &'static [u8]>> = None;
        let refs = stored_refs(table, &txn.open_table(SEGMENTS)?, &deletes, no_stats)?;
        let (mut small, mut heavily_deleted) = (0, false);
        for r in &refs {
            // A segment whose header cannot be read is decoded by the full check.
            let Some(rows) = r.rows else {
                return Ok(true);
            };
            let deleted = r.deleted.as_ref().map_or(0, Bitmap::count);
            if rows - deleted.min(rows) < SMALL_SEGMENT_ROWS || deleted * 2 > rows {
                small += 1;
                heavily_deleted |= deleted * 2 > rows;
            }
        }
        Ok(small > MAX_SMALL_SEGMENTS || heavily_deleted)
    }
}
