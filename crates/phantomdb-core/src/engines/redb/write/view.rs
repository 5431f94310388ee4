//! What a statement inside the write transaction reads: the transaction's own segments,
//! pending rows and new keys, as a [`DataView`].

use super::*;

impl DataView for parking_lot::Mutex<WriteTxn> {
    fn mark_suspect(&self) {
        self.lock().store.mark_suspect();
    }

    fn check(&self) -> super::super::CheckReport {
        let store = self.lock().store.clone();
        store.check()
    }

    fn index_range(
        &self,
        index_id: u64,
        lo: std::ops::Bound<&[u8]>,
        hi: std::ops::Bound<&[u8]>,
    ) -> Result<Vec<crate::table::RowId>> {
        self.lock().index_range(index_id, lo, hi)
    }

    fn key_ids(
        &self,
        table: &TableDef,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<crate::table::RowId>>> {
        self.lock().key_ids(table, keys)
    }

    fn catalog(&self) -> Arc<Catalog> {
        self.lock().catalog.clone()
    }

    fn segment_refs(&self, table: &TableDef) -> Result<Vec<SegmentRef>> {
        let w = self.lock();
        let txn = w.txn()?;
        let deletes = txn.open_table(DELETES)?;
        let stats = txn.open_table(super::super::stats::STATS)?;
        let mut out = stored_refs(table, &txn.open_table(SEGMENTS)?, &deletes, Some(&stats))?;
        if let Some(p) = w.pending.get(&table.id) {
            let deleted = deletes
                .get((table.id, p.segment))?
                .map(|b| Bitmap::read(table, p.segment, b.value()))
                .transpose()?;
            let batch = p.batch(&table.schema_ref())?;
            out.push(SegmentRef {
                id: p.segment,
                rows: Some(batch.num_rows()),
                deleted,
                pending: Some(batch),
                stats: None,
            });
        }
        Ok(out)
    }

    fn load(
        &self,
        table: &TableDef,
        seg: &SegmentRef,
        projection: &[usize],
    ) -> Result<RecordBatch> {
        let w = self.lock();
        load_ref(&w.store, table, seg, projection, || {
            Ok(w.txn()?.open_table(SEGMENTS)?)
        })
    }

    fn lookup(&self, table: &TableDef, keys: &[Vec<u8>]) -> Result<RecordBatch> {
        let w = self.lock();
        let txn = w.txn()?;
        let added = w.new_keys.get(&table.id);
        let name = pk_table_name(table.id);
        let def: TableDefinition<&[u8], u64> = TableDefinition::new(&name);
        let mut index = None;
        lookup_rows(
            &w.store,
            table,
            keys,
            |key| {
                if let Some(id) = added.and_then(|m| m.get(key)) {
                    return Ok(Some(*id));
                }
                if index.is_none() {
                    index = Some(txn.open_table(def)?);
                }
                match &index {
                    Some(t) => Ok(t.get(key)?.map(|v| v.value())),
                    None => Ok(None),
                }
            },
            || Ok(txn.open_table(SEGMENTS)?),
            w.pending.get(&table.id),
        )
    }
}

impl WriteTxn {
    /// Every segment of the table as this transaction sees it.
    pub fn segments(&self, table: &TableDef) -> Result<Vec<SegmentSnapshot>> {
        let txn = self.txn()?;
        let deletes = txn.open_table(DELETES)?;
        let mut out = read_segments(&self.store, table, &txn.open_table(SEGMENTS)?, &deletes)?;
        if let Some(p) = self.pending.get(&table.id) {
            let deleted = deletes
                .get((table.id, p.segment))?
                .map(|b| Bitmap::read(table, p.segment, b.value()))
                .transpose()?;
            out.push(SegmentSnapshot {
                id: p.segment,
                batch: p.batch(&table.schema_ref())?,
                deleted,
            });
        }
        Ok(out)
    }
}
