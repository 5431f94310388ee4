//! Storage engines: where a table's rows live, chosen per table with
//! `CREATE TABLE ... USING name WITH (...)`.
//!
//! The core drives every engine through one internal trait, [`TableEngine`], and every table
//! a statement touches through one [`TableAccess`] bound to the statement's transactions. Two
//! implementations exist:
//! * [`redb::RedbEngine`], the default: the core's own storage, in the database's redb file,
//!   with the database's transactions, a primary-key index (key lookups) and exact row counts.
//! * [`sdk::SdkEngine`], one adapter over the plugin SDK's `StorageEngine` trait. It serves the
//!   built-in `memory` engine ([`memory::MemoryEngine`], written against the SDK exactly as a
//!   plugin would be) and every plugin engine (native now, WebAssembly later).
//!
//! What an engine can do beyond scans and appends (update/delete, transactions, key lookups,
//! statistics) is a [`Capabilities`] flag any engine may set. Nothing outside the engines asks
//! which engine a table uses.

pub(crate) mod memory;
pub(crate) mod redb;
pub(crate) mod sdk;

use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::concat_batches;
use parking_lot::Mutex;
pub(crate) use phantomdb_plugin_sdk::storage::{
    Capabilities, Filter, FilterSupport, Options, ScanRequest, StorageEngine,
};

pub(crate) use sdk::{EngineTxns, SharedEngineTxns};

use crate::catalog::{IndexDef, TableDef};
use crate::error::{Error, Result, SqlState};
use crate::table::stats::{ColumnStats, UnitStats};
use crate::table::RowId;
use redb::{DataView, WriteTxn};

/// The transactions one statement reads and writes through: redb's (a snapshot, or the open
/// write transaction) and the engine transactions of its database transaction.
#[derive(Clone)]
pub(crate) struct StatementTxns {
    /// What the statement reads the catalog and redb tables through.
    pub(crate) view: Arc<dyn DataView>,
    /// The redb write transaction, for writing statements.
    pub(crate) write: Option<Arc<Mutex<WriteTxn>>>,
    /// The engine transactions (opened per engine at first use).
    pub(crate) engines: SharedEngineTxns,
}

impl StatementTxns {
    /// The redb write transaction, or an error for a statement that only reads.
    pub(crate) fn write(&self) -> Result<&Arc<Mutex<WriteTxn>>> {
        self.write.as_ref().ok_or_else(|| {
            Error::Transaction(
                SqlState::InternalError,
                "a reading statement tried to write".into(),
            )
        })
    }
}

/// A storage engine as the core drives it.
pub(crate) trait TableEngine: Send + Sync {
    /// Name used in `USING`.
    fn name(&self) -> &str;
    /// One-line description.
    fn description(&self) -> &str;
    /// What it supports.
    fn capabilities(&self) -> Capabilities;
    /// Creates the storage of a new table in the statement's transaction (undone if it rolls
    /// back); returns the table's options, completed by the engine.
    fn create_table(&self, def: &TableDef, txns: &StatementTxns) -> Result<Options>;
    /// Removes the storage of a dropped table when the transaction commits.
    fn drop_table(&self, def: &TableDef, txns: &StatementTxns) -> Result<()>;
    /// Binds the table to the statement's transactions.
    fn open(&self, def: Arc<TableDef>, txns: &StatementTxns) -> Result<Arc<dyn TableAccess>>;
}

/// One table as one statement sees it: scans, key lookups and the writes DML needs, all in
/// terms of rows in the table's schema and the engine's row ids.
pub(crate) trait TableAccess: Send + Sync {
    /// The table.
    fn def(&self) -> &Arc<TableDef>;
    /// The engine's capabilities.
    fn capabilities(&self) -> Capabilities;
    /// Which of `filters` the engine applies itself (and how exactly), in order.
    fn supports_filters(&self, filters: &[Filter]) -> Vec<FilterSupport> {
        vec![FilterSupport::Unsupported; filters.len()]
    }
    /// Plans a scan: the request's columns in order, then the row id when asked.
    fn scan(&self, request: &ScanRequest, layout: ScanLayout) -> Result<TableScan>;
    /// The rows whose primary key is one of `keys` (one array per key column), for engines
    /// with the `indexes` capability; `None` when the engine cannot look keys up.
    fn lookup(&self, keys: &[ArrayRef]) -> Result<Option<RecordBatch>>;
    /// Appends rows in the table's schema (NOT NULL already checked), enforcing the primary
    /// key.
    fn insert(&self, rows: RecordBatch) -> Result<()>;
    /// Deletes rows by id; returns how many.
    fn delete(&self, ids: &[RowId]) -> Result<u64>;
    /// Replaces rows by id with `rows` (same order), enforcing the primary key.
    fn update(&self, ids: &[RowId], rows: RecordBatch) -> Result<u64>;
    /// Prepares stored rows for the table's new definition `new` (after ADD, RENAME or
    /// similar): `fill(column, rows)` gives a new column's values for existing rows.
    fn change_schema(&self, new: &TableDef, fill: &ColumnFill<'_>) -> Result<()>;
    /// Rewrites the stored rows in place for `new`, the definition without some columns:
    /// `kept` are the positions in the current schema of `new`'s columns, in order. Returns
    /// `false` when the engine cannot (the core then copies the rows to new storage).
    fn drop_columns(&self, _new: &TableDef, _kept: &[usize]) -> Result<bool> {
        Ok(false)
    }
    /// Whether the engine keeps secondary indexes (`CREATE INDEX`); UNIQUE constraints of
    /// other engines are enforced by the core.
    fn keeps_indexes(&self) -> bool {
        false
    }
    /// Creates and fills the stored index `index` (already in the table's definition); a
    /// unique index fails on rows sharing a non-NULL key.
    fn create_index(&self, _index: &IndexDef) -> Result<()> {
        Err(no_indexes(self.def()))
    }
    /// Removes the stored index `index`.
    fn drop_index(&self, _index: &IndexDef) -> Result<()> {
        Err(no_indexes(self.def()))
    }
    /// Row ids of the rows whose `index` key starts with a value in `lo..hi` (encoded with
    /// `table::index_keys`); `None` when the engine keeps no such index.
    fn index_range(
        &self,
        _index: &IndexDef,
        _lo: Bound<&[u8]>,
        _hi: Bound<&[u8]>,
    ) -> Result<Option<Vec<RowId>>> {
        Ok(None)
    }
    /// The row id of each encoded primary key (`None` inside: absent); `None` when the
    /// engine cannot tell.
    fn key_ids(&self, _keys: &[Vec<u8>]) -> Result<Option<Vec<Option<RowId>>>> {
        Ok(None)
    }
    /// Live rows by id, with their ids in the order returned; `None` when the engine cannot
    /// fetch by id (the core then scans).
    fn fetch(&self, _ids: &[RowId]) -> Result<Option<(RecordBatch, Vec<RowId>)>> {
        Ok(None)
    }
}

/// The error for an index on an engine that keeps none.
pub(crate) fn no_indexes(def: &TableDef) -> Error {
    Error::Unsupported(format!(
        "storage engine \"{}\" does not support indexes (table \"{}\")",
        def.engine, def.name
    ))
}

/// Values of a column added by ALTER TABLE for `rows` existing rows.
pub(crate) type ColumnFill<'a> = dyn Fn(usize, usize) -> Result<ArrayRef> + 'a;

/// How DataFusion wants a scan cut up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScanLayout {
    /// Partitions DataFusion runs in parallel (an upper bound).
    pub(crate) partitions: usize,
    /// Rows per batch.
    pub(crate) batch_size: usize,
}

/// A planned scan: its partitions and what the planner may know of their sizes.
pub(crate) struct TableScan {
    /// Each partition's reader, opened when DataFusion executes it.
    pub(crate) partitions: Vec<Arc<dyn ScanPartition>>,
    /// Rows each partition returns, when known.
    pub(crate) rows: Vec<Option<usize>>,
    /// Whether `rows` are exact (else estimates).
    pub(crate) exact_rows: bool,
    /// Whether reading blocks (files, object stores): partitions then run on blocking
    /// threads.
    pub(crate) blocking: bool,
    /// The engine's part of the scan's EXPLAIN line.
    pub(crate) detail: String,
    /// Column statistics of each partition, by table column (`None`: unknown); empty when
    /// the engine keeps none.
    pub(crate) column_stats: Vec<Vec<Option<ColumnStats>>>,
    /// Whether the partitions consult a [`UnitFilter`] before reading each unit of storage.
    pub(crate) prunable: bool,
}

/// Batches of one scan partition.
pub(crate) type Batches = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

/// One partition of a [`TableScan`].
pub(crate) trait ScanPartition: Send + Sync {
    /// Starts reading.
    fn open(&self) -> Result<Batches>;
    /// Starts reading, skipping the units of storage (segments) `filter` rules out.
    fn open_filtered(&self, filter: Arc<dyn UnitFilter>) -> Result<Batches> {
        let _ = filter;
        self.open()
    }
}

/// Decides, just before a unit of storage (a segment) is read, whether it may hold rows the
/// scan's filters let through, from the statistics recorded when the unit was written.
pub(crate) trait UnitFilter: Send + Sync {
    /// `false` when no row of a unit with these statistics can pass (the unit is skipped);
    /// `stats: None` (unknown) always reads.
    fn may_match(&self, stats: Option<&UnitStats>) -> bool;
}

/// Reads a whole scan of `table` into one batch, in one partition (for DDL and DML work on
/// small projections: row ids, emptiness checks).
pub(crate) fn read_all(table: &dyn TableAccess, request: &ScanRequest) -> Result<RecordBatch> {
    let schema = request
        .output_schema(&table.def().schema_ref())
        .map_err(Error::Storage)?;
    let layout = ScanLayout {
        partitions: 1,
        batch_size: usize::MAX,
    };
    let mut batches = Vec::new();
    for p in &table.scan(request, layout)?.partitions {
        for b in p.open()? {
            batches.push(b?);
        }
    }
    Ok(concat_batches(&schema, &batches)?)
}

/// A registered storage engine.
#[derive(Clone)]
pub struct EngineInfo {
    /// Name used in `USING`.
    pub name: String,
    /// The plugin that provides it.
    pub plugin: String,
    /// One-line description.
    pub description: String,
    /// What it supports.
    pub capabilities: Capabilities,
    pub(crate) engine: Arc<dyn TableEngine>,
}

impl fmt::Debug for EngineInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineInfo")
            .field("name", &self.name)
            .field("plugin", &self.plugin)
            .finish_non_exhaustive()
    }
}

impl EngineInfo {
    /// An engine the core implements itself.
    pub(crate) fn table_engine(plugin: &str, engine: Arc<dyn TableEngine>) -> Self {
        Self {
            name: engine.name().to_ascii_lowercase(),
            plugin: plugin.into(),
            description: engine.description().into(),
            capabilities: engine.capabilities(),
            engine,
        }
    }

    /// An engine behind the plugin SDK's traits (built in, or a plugin's through the C ABI).
    pub fn from_engine(plugin: &str, engine: Arc<dyn StorageEngine>) -> Self {
        Self::table_engine(plugin, Arc::new(sdk::SdkEngine::new(engine)))
    }

    /// The engine.
    pub(crate) fn engine(&self) -> &Arc<dyn TableEngine> {
        &self.engine
    }
}

/// The error for a table whose engine is not registered.
pub(crate) fn missing_engine(table: &str, engine: &str) -> Error {
    Error::Plugin(
        SqlState::UndefinedObject,
        format!("table {table} needs storage engine {engine} (plugin not loaded)"),
    )
}
