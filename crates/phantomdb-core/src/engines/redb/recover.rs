//! Recovering a damaged database: every catalog entry, role, setting, sequence and row that
//! can still be read is copied into a new database file (`phantomdb recover DB OUT`).
//!
//! Values are read one by one from the latest committed state, each verified by its
//! checksum, so one damaged segment costs that segment's rows and nothing else. A segment
//! whose deletion bitmap is damaged is not copied either: its deleted rows would come back.
//! Tables keep their ids and definitions (constraints, indexes, identity columns, grants);
//! the primary-key and secondary indexes of the new file are rebuilt from the copied rows.
//! Tables of other engines keep their data outside the file and are not copied.

use std::collections::{BTreeSet, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow::compute::filter_record_batch;
use redb::{ReadableDatabase, ReadableTable};

use super::check::Problem;
use super::checksum::{segment_name, unseal, Kind};
use super::guard::panic_message;
use super::segment::{conform, decode_segment, open_segment, Bitmap};
use super::sequence::SEQUENCES;
use super::store::Store;
use super::write::WriteTxn;
use super::*;
use crate::catalog::{CatalogEntry, RoleDef, TableDef, DEFAULT_ENGINE};
use crate::error::{Error, Result};

/// What a recovery copied, and what it could not read.
#[derive(Debug, Clone, Default)]
pub struct RecoverReport {
    /// Tables whose definition was copied (their rows as far as readable).
    pub tables: usize,
    /// Views copied.
    pub views: usize,
    /// Roles copied.
    pub roles: usize,
    /// Segments copied whole.
    pub segments: usize,
    /// Rows copied.
    pub rows: u64,
    /// Everything that could not be read (and so is missing from the new database), and
    /// tables of other engines, which were not copied.
    pub lost: Vec<Problem>,
}

impl Store {
    /// Copies everything readable in this database into `out`, a new, empty database.
    pub(crate) async fn recover_into(&self, out: &Arc<Store>) -> Result<RecoverReport> {
        let mut w = out
            .begin_write(std::time::Duration::from_secs(60), None)
            .await?;
        let mut report = RecoverReport::default();
        let copied = catch_unwind(AssertUnwindSafe(|| self.copy_into(&mut w, &mut report)));
        match copied {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                w.rollback()?;
                return Err(e);
            }
            Err(panic) => {
                w.rollback()?;
                return Err(Error::Corrupt(format!(
                    "recovery failed: {}",
                    panic_message(panic.as_ref())
                )));
            }
        }
        // The copied tables keep their ids: the new file allocates past them.
        let next_table = self.next_table.load(Ordering::SeqCst);
        out.next_table.fetch_max(next_table, Ordering::SeqCst);
        w.commit(false)?;
        Ok(report)
    }

    fn copy_into(&self, w: &mut WriteTxn, report: &mut RecoverReport) -> Result<()> {
        let txn = self.db.begin_read()?;
        let mut tables = Vec::new();
        for item in txn.open_table(CATALOG)?.iter()? {
            let (k, v) = item?;
            let name = k.value().to_string();
            let object = format!("catalog entry \"{name}\"");
            let entry =
                unseal(Kind::Catalog, v.value(), || object.clone()).and_then(CatalogEntry::decode);
            match entry {
                Ok(CatalogEntry::Table(t)) if t.engine != DEFAULT_ENGINE => {
                    report.lost.push(Problem::new(
                        format!("table \"{name}\""),
                        format!(
                            "not copied: engine {} keeps its data outside the file",
                            t.engine
                        ),
                    ));
                }
                Ok(CatalogEntry::Table(t)) => {
                    w.put_entry(&name, CatalogEntry::Table(t.clone()))?;
                    tables.push(t);
                }
                Ok(view @ CatalogEntry::View(_)) => {
                    w.put_entry(&name, view)?;
                    report.views += 1;
                }
                Err(e) => report.lost.push(Problem::new(object, e)),
            }
        }
        copy_roles(&txn, w, report)?;
        copy_plain(&txn, w)?;
        let segments = txn.open_table(SEGMENTS)?;
        let deletes = txn.open_table(DELETES)?;
        let known: BTreeSet<u64> = tables.iter().map(|t| t.id).collect();
        let mut orphans = BTreeSet::new();
        for item in segments.iter()? {
            let (k, _) = item?;
            let (table, _) = k.value();
            if !known.contains(&table) {
                orphans.insert(table);
            }
        }
        for table in orphans {
            report.lost.push(Problem::new(
                format!("table id {table}"),
                "rows not copied: the table's catalog entry is unreadable",
            ));
        }
        for table in &tables {
            report.tables += 1;
            w.create_storage(table)?;
            for index in table.indexes.iter().filter(|i| i.stored) {
                w.index_create(table, index)?;
            }
            let copied = catch_unwind(AssertUnwindSafe(|| {
                copy_rows(table, &segments, &deletes, w, report)
            }));
            let object = format!("table \"{}\"", table.name);
            match copied {
                Ok(Ok(())) => {}
                Ok(Err(e)) => report
                    .lost
                    .push(Problem::new(object, format!("rows after the error: {e}"))),
                Err(panic) => report.lost.push(Problem::new(
                    object,
                    format!(
                        "rows after the failure: the storage layer failed: {}",
                        panic_message(panic.as_ref())
                    ),
                )),
            }
        }
        Ok(())
    }
}

/// Copies every readable role.
fn copy_roles(
    txn: &redb::ReadTransaction,
    w: &mut WriteTxn,
    report: &mut RecoverReport,
) -> Result<()> {
    let roles = match txn.open_table(ROLES) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for item in roles.iter()? {
        let (k, v) = item?;
        let object = format!("role \"{}\"", k.value());
        match unseal(Kind::Role, v.value(), || object.clone()).and_then(RoleDef::decode) {
            Ok(role) => {
                w.put_role(role)?;
                report.roles += 1;
            }
            Err(e) => report.lost.push(Problem::new(object, e)),
        }
    }
    Ok(())
}

/// Copies the settings and the sequences (values without envelopes: copied as read).
fn copy_plain(txn: &redb::ReadTransaction, w: &mut WriteTxn) -> Result<()> {
    let missing = |e: &redb::TableError| matches!(e, redb::TableError::TableDoesNotExist(_));
    match txn.open_table(SETTINGS) {
        Ok(settings) => {
            for item in settings.iter()? {
                let (k, v) = item?;
                w.put_setting(k.value(), v.value())?;
            }
        }
        Err(e) if missing(&e) => {}
        Err(e) => return Err(e.into()),
    }
    match txn.open_table(SEQUENCES) {
        Ok(sequences) => {
            for item in sequences.iter()? {
                let (k, v) = item?;
                w.sequence_raise(k.value(), v.value())?;
            }
        }
        Err(e) if missing(&e) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// Copies the live rows of every readable segment of `table`.
fn copy_rows<S, D>(
    table: &TableDef,
    segments: &S,
    deletes: &D,
    w: &mut WriteTxn,
    report: &mut RecoverReport,
) -> Result<()>
where
    S: ReadableTable<(u64, u64), &'static [u8]>,
    D: ReadableTable<(u64, u64), &'static [u8]>,
{
    for item in segments.range((table.id, 0)..=(table.id, u64::MAX))? {
        let (k, v) = item?;
        let (_, seg) = k.value();
        let object = segment_name(&table.name, seg);
        let live = open_segment(table, seg, v.value())
            .and_then(decode_segment)
            .and_then(|b| {
                if b.num_columns() > table.schema.fields().len() {
                    return Err(Error::Corrupt(format!(
                        "{} columns stored, the table has {}",
                        b.num_columns(),
                        table.schema.fields().len()
                    )));
                }
                conform(table, &b)
            })
            .and_then(|batch| {
                let deleted = match deletes.get((table.id, seg))? {
                    None => Bitmap::default(),
                    Some(b) => Bitmap::read(table, seg, b.value())?,
                };
                Ok(filter_record_batch(
                    &batch,
                    &deleted.keep_mask(batch.num_rows()),
                )?)
            })
            .and_then(|live| {
                let keys = w.check_insert(table, &live, &HashSet::new())?;
                Ok((live, keys))
            });
        match live {
            Ok((live, keys)) => {
                report.rows += live.num_rows() as u64;
                report.segments += 1;
                w.append(table, live, &keys)?;
            }
            Err(e) => report
                .lost
                .push(Problem::new(object, format!("rows not copied: {e}"))),
        }
    }
    Ok(())
}
