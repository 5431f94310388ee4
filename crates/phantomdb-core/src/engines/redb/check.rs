//! Checking a database: every catalog entry, role, segment, deletion bitmap, statistics
//! entry, primary-key index entry and secondary index entry of the latest committed state is
//! read and verified (index entries against the rows they point at).
//!
//! The check runs on a redb read transaction of its own, so other connections keep reading
//! and writing meanwhile (`SELECT * FROM phantomdb_check()`). `phantomdb check FILE` adds
//! redb's own integrity check (every page checksum), which needs the file to itself.

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::checksum::{segment_name, unseal, Kind};
use super::guard::panic_message;
use super::index::{entry_key, index_table_name};
use super::segment::{conform, decode_segment, open_segment, Bitmap};
use super::store::Store;
use super::*;
use crate::catalog::{CatalogEntry, RoleDef, TableDef, DEFAULT_ENGINE};
use crate::error::Result;
use crate::table::index_keys::encode_index;
use crate::table::keys::encode_keys;

/// One problem found by a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is damaged: `table "t" segment 7`, `catalog entry "v"`, `file`.
    pub object: String,
    /// What is wrong with it.
    pub detail: String,
}

impl Problem {
    pub(crate) fn new(object: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Problem {
            object: object.into(),
            detail: detail.to_string(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.object, self.detail)
    }
}

/// What a check read, and what it found wrong.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Tables whose rows were read (tables of the `redb` engine).
    pub tables: usize,
    /// Segments read.
    pub segments: usize,
    /// Live rows read.
    pub rows: u64,
    /// Everything found damaged; empty when the database is sound.
    pub problems: Vec<Problem>,
}

impl Store {
    /// Reads and verifies everything in the latest committed state (see the module
    /// documentation). Never fails: what cannot be read is a problem in the report.
    pub(crate) fn check(&self) -> CheckReport {
        let mut report = CheckReport::default();
        let outcome = catch_unwind(AssertUnwindSafe(|| self.check_into(&mut report)));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => report.problems.push(Problem::new("database", e)),
            Err(panic) => report.problems.push(Problem::new(
                "database",
                format!(
                    "the storage layer failed: {}",
                    panic_message(panic.as_ref())
                ),
            )),
        }
        report
    }

    fn check_into(&self, report: &mut CheckReport) -> Result<()> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let next_segment = meta.get(META_NEXT_SEGMENT)?.map(|v| v.value()).unwrap_or(1);
        let next_table = meta.get(META_NEXT_TABLE)?.map(|v| v.value()).unwrap_or(1);
        let tables = check_catalog(&txn, report)?;
        check_roles(&txn, report)?;
        let segments = txn.open_table(SEGMENTS)?;
        let deletes = txn.open_table(DELETES)?;
        let stats = txn.open_table(super::stats::STATS)?;
        let known: BTreeSet<u64> = tables.iter().map(|t| t.id).collect();
        // Data of a table the catalog does not know, and ids beyond the allocators.
        let mut stored_tables = BTreeSet::new();
        for item in segments.iter()? {
            let (k, _) = item?;
            let (table, seg) = k.value();
            stored_tables.insert(table);
            if seg >= next_segment {
                report.problems.push(Problem::new(
                    format!("segment {seg}"),
                    format!("id is not below the next segment id {next_segment}"),
                ));
            }
        }
        for table in stored_tables.difference(&known) {
            report.problems.push(Problem::new(
                format!("table id {table}"),
                "segments stored for a table the catalog does not have",
            ));
        }
        for table in &tables {
            if table.id >= next_table {
                report.problems.push(Problem::new(
                    format!("table \"{}\"", table.name),
                    format!(
                        "id {} is not below the next table id {next_table}",
                        table.id
                    ),
                ));
            }
            if table.engine != DEFAULT_ENGINE {
                continue;
            }
            report.tables += 1;
            let checked = catch_unwind(AssertUnwindSafe(|| {
                check_table(&txn, table, &segments, &deletes, report)?;
                for (seg, e) in super::stats::damaged(&stats, table)? {
                    report.problems.push(Problem::new(
                        format!("statistics of {}", segment_name(&table.name, seg)),
                        e,
                    ));
                }
                Ok::<(), crate::error::Error>(())
            }));
            match checked {
                Ok(Ok(())) => {}
                Ok(Err(e)) => report
                    .problems
                    .push(Problem::new(format!("table \"{}\"", table.name), e)),
                Err(panic) => report.problems.push(Problem::new(
                    format!("table \"{}\"", table.name),
                    format!(
                        "the storage layer failed: {}",
                        panic_message(panic.as_ref())
                    ),
                )),
            }
        }
        Ok(())
    }
}

/// Verifies and decodes every catalog entry; returns the tables.
fn check_catalog(
    txn: &redb::ReadTransaction,
    report: &mut CheckReport,
) -> Result<Vec<Arc<TableDef>>> {
    let mut tables = Vec::new();
    for item in txn.open_table(CATALOG)?.iter()? {
        let (k, v) = item?;
        let name = k.value().to_string();
        let object = format!("catalog entry \"{name}\"");
        let entry =
            unseal(Kind::Catalog, v.value(), || object.clone()).and_then(CatalogEntry::decode);
        match entry {
            Ok(CatalogEntry::Table(t)) => tables.push(t),
            Ok(_) => {}
            Err(e) => report.problems.push(Problem::new(object, e)),
        }
    }
    Ok(tables)
}

fn check_roles(txn: &redb::ReadTransaction, report: &mut CheckReport) -> Result<()> {
    let roles = match txn.open_table(ROLES) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for item in roles.iter()? {
        let (k, v) = item?;
        let object = format!("role \"{}\"", k.value());
        let role = unseal(Kind::Role, v.value(), || object.clone()).and_then(RoleDef::decode);
        if let Err(e) = role {
            report.problems.push(Problem::new(object, e));
        }
    }
    Ok(())
}

/// Reads every segment and bitmap of a table, and checks its primary-key index against
/// the rows: one entry per live row, pointing at that row.
fn check_table<S, D>(
    txn: &redb::ReadTransaction,
    table: &TableDef,
    segments: &S,
    deletes: &D,
    report: &mut CheckReport,
) -> Result<()>
where
    S: ReadableTable<(u64, u64), &'static [u8]>,
    D: ReadableTable<(u64, u64), &'static [u8]>,
{
    let name = pk_table_name(table.id);
    let def: TableDefinition<&[u8], u64> = TableDefinition::new(&name);
    let index = if table.primary_key.is_empty() {
        None
    } else {
        match txn.open_table(def) {
            Ok(t) => Some(t),
            Err(e) => {
                report.problems.push(Problem::new(
                    format!("primary-key index of table \"{}\"", table.name),
                    e,
                ));
                None
            }
        }
    };
    let mut live_keys: u64 = 0;
    let stored_indexes: Vec<&crate::catalog::IndexDef> =
        table.indexes.iter().filter(|i| i.stored).collect();
    // Per stored secondary index, the entries the readable live rows call for.
    let mut expected_entries: Vec<Vec<Vec<u8>>> = vec![Vec::new(); stored_indexes.len()];
    for item in segments.range((table.id, 0)..=(table.id, u64::MAX))? {
        let (k, v) = item?;
        let (_, seg) = k.value();
        report.segments += 1;
        let object = segment_name(&table.name, seg);
        let batch = open_segment(table, seg, v.value())
            .and_then(decode_segment)
            .and_then(|b| {
                if b.num_columns() > table.schema.fields().len() {
                    return Err(crate::error::Error::Corrupt(format!(
                        "{} columns stored, the table has {}",
                        b.num_columns(),
                        table.schema.fields().len()
                    )));
                }
                conform(table, &b)
            });
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                report.problems.push(Problem::new(object, e));
                continue;
            }
        };
        let deleted = match deletes.get((table.id, seg))? {
            None => Bitmap::default(),
            Some(b) => match Bitmap::read(table, seg, b.value()) {
                Ok(bm) => bm,
                Err(e) => {
                    report.problems.push(Problem::new(object, e));
                    continue;
                }
            },
        };
        let rows = batch.num_rows();
        let live = rows - (0..rows).filter(|&i| deleted.get(i)).count();
        if deleted.count() > rows - live {
            report.problems.push(Problem::new(
                object.clone(),
                "its deletion bitmap marks rows past the end of the segment",
            ));
        }
        report.rows += live as u64;
        for (index, expected) in stored_indexes.iter().zip(&mut expected_entries) {
            let keys = encode_index(table, index, &batch)?;
            for (row, key) in keys.iter().enumerate() {
                if !deleted.get(row) {
                    expected.push(entry_key(key.bytes(), row_id(seg, row)));
                }
            }
        }
        let Some(index) = &index else { continue };
        let keys = encode_keys(table, &batch)?;
        for (row, key) in keys.iter().enumerate() {
            if deleted.get(row) {
                continue;
            }
            live_keys += 1;
            let found = index.get(key.as_slice())?.map(|v| v.value());
            if found != Some(row_id(seg, row)) {
                report.problems.push(Problem::new(
                    format!("primary-key index of table \"{}\"", table.name),
                    format!(
                        "row {row} of segment {seg} is {}",
                        match found {
                            None => "missing from the index".to_string(),
                            Some(other) => {
                                let (s, r) = split_row_id(other);
                                format!("indexed as row {r} of segment {s}")
                            }
                        }
                    ),
                ));
            }
        }
    }
    for (index, expected) in stored_indexes.iter().zip(expected_entries) {
        check_secondary_index(txn, table, index, expected, report)?;
    }
    if let Some(index) = &index {
        let entries = index.len()?;
        if entries != live_keys {
            report.problems.push(Problem::new(
                format!("primary-key index of table \"{}\"", table.name),
                format!("{entries} entries for {live_keys} live rows"),
            ));
        }
    }
    Ok(())
}

/// Problems named one by one per index; past this many, the rest are counted.
const DETAILED_PROBLEMS: usize = 10;

/// Matches a stored secondary index against its table's readable live rows (`expected`:
/// the entry each row calls for): an entry no row calls for (damaged, or pointing at a
/// deleted or moved row) and a row without its entry are problems.
fn check_secondary_index(
    txn: &redb::ReadTransaction,
    table: &TableDef,
    index: &crate::catalog::IndexDef,
    mut expected: Vec<Vec<u8>>,
    report: &mut CheckReport,
) -> Result<()> {
    let object = format!("index \"{}\" of table \"{}\"", index.name, table.name);
    let name = index_table_name(index.id);
    let def: TableDefinition<&[u8], ()> = TableDefinition::new(&name);
    let entries = match txn.open_table(def) {
        Ok(t) => t,
        Err(e) => {
            report.problems.push(Problem::new(object, e));
            return Ok(());
        }
    };
    expected.sort_unstable();
    let describe = |entry: &[u8]| -> String {
        if entry.len() < 8 {
            return format!("an entry of {} bytes (too short for a row id)", entry.len());
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&entry[entry.len() - 8..]);
        let (seg, row) = split_row_id(u64::from_be_bytes(id));
        format!("row {row} of segment {seg}")
    };
    let (mut stray, mut missing) = (0usize, 0usize);
    let mut found = Vec::new();
    let mut wanted = expected.iter().peekable();
    for item in entries.iter()? {
        let (k, _) = item?;
        let k = k.value();
        // Rows whose entries sort before this one have none.
        while let Some(w) = wanted.next_if(|w| w.as_slice() < k) {
            missing += 1;
            if missing + stray <= DETAILED_PROBLEMS {
                found.push(format!("{} is missing from the index", describe(w)));
            }
        }
        if wanted.next_if(|w| w.as_slice() == k).is_none() {
            stray += 1;
            if missing + stray <= DETAILED_PROBLEMS {
                found.push(format!(
                    "the entry for {} does not match a live row's values",
                    describe(k)
                ));
            }
        }
    }
    for w in wanted {
        missing += 1;
        if missing + stray <= DETAILED_PROBLEMS {
            found.push(format!("{} is missing from the index", describe(w)));
        }
    }
    for detail in found {
        report.problems.push(Problem::new(object.clone(), detail));
    }
    if missing + stray > DETAILED_PROBLEMS {
        report.problems.push(Problem::new(
            object,
            format!("{missing} rows without their entry, {stray} entries no row calls for in all"),
        ));
    }
    Ok(())
}

/// redb's own integrity check of the file at `path` (every page checksum, the allocator
/// state): needs the file to itself. A file redb had to repair is a problem too.
pub(crate) fn check_file_pages(path: &std::path::Path) -> Vec<Problem> {
    let outcome = catch_unwind(|| -> std::result::Result<bool, String> {
        let mut db = redb::Database::open(path).map_err(|e| e.to_string())?;
        db.check_integrity().map_err(|e| e.to_string())
    });
    match outcome {
        Ok(Ok(true)) => Vec::new(),
        Ok(Ok(false)) => vec![Problem::new(
            "file",
            "redb's integrity check found damage and repaired the file's allocator state",
        )],
        Ok(Err(e)) => vec![Problem::new("file", format!("redb: {e}"))],
        Err(panic) => vec![Problem::new(
            "file",
            format!("redb failed: {}", panic_message(panic.as_ref())),
        )],
    }
}
