//! Sequences behind identity columns: the last value handed out, by sequence name, in the
//! `sequences` redb table. They advance inside the write transaction (one writer at a time),
//! so values are unique and increasing across connections and restarts; a rolled-back
//! transaction hands its values out again, which no committed row ever held.

use redb::{ReadableTable, TableDefinition};

use super::write::WriteTxn;
use crate::error::{Error, Result, SqlState};

/// Last value by sequence name; created by the first write that uses a sequence.
pub(super) const SEQUENCES: TableDefinition<&str, i64> = TableDefinition::new("sequences");

impl WriteTxn {
    /// Takes the next `n` values of sequence `name` (starting at 1); returns the first.
    pub fn sequence_take(&mut self, name: &str, n: u64) -> Result<i64> {
        let mut t = self.txn()?.open_table(SEQUENCES)?;
        let last = t.get(name)?.map_or(0, |v| v.value());
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let new_last = last.checked_add(n).ok_or_else(|| {
            Error::Data(
                SqlState::NumericValueOutOfRange,
                format!("sequence \"{name}\" reached its maximum value"),
            )
        })?;
        t.insert(name, new_last)?;
        Ok(last + 1)
    }

    /// Makes sure sequence `name` hands out no value at or below `value` (after an explicit
    /// value was stored in its column).
    pub fn sequence_raise(&mut self, name: &str, value: i64) -> Result<()> {
        let mut t = self.txn()?.open_table(SEQUENCES)?;
        let last = t.get(name)?.map_or(0, |v| v.value());
        if value > last {
            t.insert(name, value)?;
        }
        Ok(())
    }
}
