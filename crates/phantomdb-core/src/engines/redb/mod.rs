//! The default storage engine, `redb`: one redb file per database, which also holds the catalog.
//!
//! # Layout
//! Rows are stored column-wise, in *segments* of up to [`SEGMENT_ROWS`] rows, each one an Arrow
//! IPC stream in the `segments` redb table keyed by `(table id, segment id)`. Scans hand the
//! decoded Arrow batches to DataFusion without any per-row decoding, and decoded segments are
//! cached in memory (segment ids are never reused, so a cached segment never goes stale).
//!
//! Deleting rows does not rewrite a segment: it sets bits in the segment's *deletion bitmap*
//! (`deletes` table). An update is a delete plus an insert. Small and mostly-deleted segments are
//! merged when a transaction commits.
//!
//! A table with a primary key has an index table `pk_<table id>` mapping the key (Arrow's
//! order-preserving row encoding of the key columns) to a row id (`segment << 32 | row`), used
//! to enforce uniqueness and to answer `WHERE pk = ...` without a scan.
//!
//! # Transactions
//! redb gives ACID commits and MVCC snapshots. A read uses a redb read transaction (a consistent
//! snapshot, never blocked by writers). Writes go through one redb write transaction at a time;
//! rows inserted by the open transaction are buffered in memory until they fill a segment or the
//! transaction commits. Commits are durable (fsync) before `COMMIT` returns; concurrent commits
//! share one fsync ([`group`]), and readers only ever see durable commits.
//!
//! # Modules
//! [`store`] opens the file and starts transactions; [`read`] and [`write`] are the snapshot
//! and the write transaction; [`segment`] is the stored form of rows; [`cache`] keeps decoded
//! segments and columns under one process-wide budget; [`engine`] is the table engine the core drives (scans, key lookups, DML).

mod cache;
mod check;
mod checksum;
mod engine;
mod faults;
mod group;
mod guard;
mod index;
mod read;
mod recover;
mod segment;
mod sequence;
mod stats;
mod store;
mod write;

use redb::TableDefinition;

pub(crate) use check::check_file_pages;
pub use check::{CheckReport, Problem};
pub(crate) use engine::{insert_row, lookup_keys, RedbEngine};
pub use faults::IoFaults;
pub(crate) use read::{DataView, ReadView};
pub use recover::RecoverReport;
pub(crate) use store::Store;
pub(crate) use write::WriteTxn;

pub(crate) use crate::table::RowId;

/// Maximum number of rows in one stored segment.
pub(crate) const SEGMENT_ROWS: usize = 65_536;
/// A segment with fewer live rows than this is merged with its peers at commit.
pub(super) const SMALL_SEGMENT_ROWS: usize = SEGMENT_ROWS / 4;
/// How many small segments a table may have before they are merged.
pub(super) const MAX_SMALL_SEGMENTS: usize = 16;

pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(super) const CATALOG: TableDefinition<&str, &[u8]> = TableDefinition::new("catalog");
pub(super) const SEGMENTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("segments");
pub(super) const DELETES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("deletes");
/// Database settings (e.g. `default_table_access_method`), versioned with the catalog.
pub(super) const SETTINGS: TableDefinition<&str, &str> = TableDefinition::new("settings");
/// Roles by name (`RoleDef` as JSON), versioned with the catalog; created by the first write
/// transaction, so older files without it open unchanged.
pub(super) const ROLES: TableDefinition<&str, &[u8]> = TableDefinition::new("roles");

pub(super) const META_NEXT_TABLE: &str = "next_table_id";
pub(super) const META_NEXT_SEGMENT: &str = "next_segment_id";
pub(super) const META_CATALOG_VERSION: &str = "catalog_version";
pub(super) const META_DATA_VERSION: &str = "data_version";
pub(super) const META_FORMAT: &str = "format_version";
/// The format of the database file this build writes. A newer build opens (and upgrades)
/// older files; an older build refuses newer ones.
/// Format 2 (this one) stores every segment, deletion bitmap, catalog entry and role in a
/// checksummed envelope ([`checksum`]); format 1 stored them bare.
pub(crate) const FORMAT_VERSION: u64 = 2;

pub(super) fn row_id(segment: u64, row: usize) -> RowId {
    (segment << 32) | row as u64
}

pub(super) fn split_row_id(id: RowId) -> (u64, usize) {
    (id >> 32, (id & 0xffff_ffff) as usize)
}

pub(super) fn pk_table_name(table_id: u64) -> String {
    format!("pk_{table_id}")
}
