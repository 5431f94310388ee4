//! The engine transactions of one database transaction, committed together with redb's.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{RecordBatch, UInt64Array};
use arrow::compute::concat_batches;
use phantomdb_plugin_sdk::storage::{
    BatchStream, CommitError, ScanRequest, StorageEngine, StorageTransaction, TableInfo,
};

use crate::error::{Error, Result, SqlState};

/// An engine's error as the core reports it: a storage error naming the engine.
pub(super) fn storage_error(engine: &str, message: String) -> Error {
    Error::Storage(format!("storage engine {engine}: {message}"))
}

/// A failed `prepare`: a lost race is a serialization failure (`40001`, in the engine's own
/// words), anything else a storage error.
fn commit_error(engine: &str, e: CommitError) -> Error {
    match e {
        CommitError::Conflict(message) => {
            Error::Transaction(SqlState::SerializationFailure, message)
        }
        CommitError::Failed(message) => storage_error(engine, format!("cannot commit: {message}")),
    }
}

/// One engine's open transaction.
struct OpenTxn {
    txn: Box<dyn StorageTransaction>,
    wrote: bool,
}

/// The engine transactions of one database transaction (one statement in autocommit mode, or
/// `BEGIN ... COMMIT`), plus the table lifecycle work to undo or finish with it.
#[derive(Default)]
pub(crate) struct EngineTxns {
    open: BTreeMap<String, OpenTxn>,
    /// Tables created in this transaction: dropped again if it rolls back.
    created: Vec<(Arc<dyn StorageEngine>, TableInfo)>,
    /// Tables dropped in this transaction: their storage goes after it commits.
    dropped: Vec<(Arc<dyn StorageEngine>, TableInfo)>,
    /// Inside `BEGIN ... COMMIT`.
    explicit: bool,
}

impl std::fmt::Debug for EngineTxns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineTxns")
            .field("open", &self.open.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Shared handle to the engine transactions of the current database transaction.
pub(crate) type SharedEngineTxns = Arc<parking_lot::Mutex<EngineTxns>>;

impl EngineTxns {
    pub(crate) fn new(explicit: bool) -> SharedEngineTxns {
        Arc::new(parking_lot::Mutex::new(Self {
            explicit,
            ..Self::default()
        }))
    }

    fn txn(&mut self, engine: &Arc<dyn StorageEngine>) -> Result<&mut OpenTxn> {
        let name = engine.name().to_string();
        if !self.open.contains_key(&name) {
            let txn = engine
                .begin()
                .map_err(|e| storage_error(&name, format!("cannot begin: {e}")))?;
            self.open
                .insert(name.clone(), OpenTxn { txn, wrote: false });
        }
        self.open.get_mut(&name).ok_or_else(|| {
            Error::Transaction(
                SqlState::InternalError,
                "engine transaction vanished".into(),
            )
        })
    }

    /// Whether nothing but redb is changed by this transaction (no engine wrote, no engine
    /// table was created or dropped): such a commit may share its fsync (group commit).
    pub(crate) fn writes_nothing(&self) -> bool {
        self.open.values().all(|t| !t.wrote) && self.created.is_empty() && self.dropped.is_empty()
    }

    /// Scans a table.
    pub(crate) fn scan(
        &mut self,
        engine: &Arc<dyn StorageEngine>,
        table: &TableInfo,
        request: &ScanRequest,
    ) -> Result<BatchStream> {
        let t = self.txn(engine)?;
        t.txn
            .scan(table, request)
            .map_err(|e| storage_error(engine.name(), e))
    }

    /// The table's live row count from the engine's statistics, for the planner; `None` when
    /// the engine keeps none or fails to answer (statistics are advisory).
    pub(crate) fn row_count(
        &mut self,
        engine: &Arc<dyn StorageEngine>,
        table: &TableInfo,
    ) -> Option<u64> {
        if !engine.capabilities().statistics {
            return None;
        }
        match self.txn(engine).ok()?.txn.statistics(table) {
            Ok(stats) => stats?.row_count,
            Err(e) => {
                tracing::debug!(engine = engine.name(), table = %table.name, "no statistics: {e}");
                None
            }
        }
    }

    /// Reads a whole table (with row ids when asked) into one batch.
    pub(crate) fn read_all(
        &mut self,
        engine: &Arc<dyn StorageEngine>,
        table: &TableInfo,
        request: &ScanRequest,
    ) -> Result<RecordBatch> {
        let schema = request
            .output_schema(&table.schema)
            .map_err(|e| storage_error(engine.name(), e))?;
        let batches = self
            .scan(engine, table, request)?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| storage_error(engine.name(), e.to_string()))?;
        Ok(concat_batches(&schema, &batches)?)
    }

    fn check_write(&self, engine: &Arc<dyn StorageEngine>, table: &TableInfo) -> Result<()> {
        if self.explicit && !engine.capabilities().transactions {
            return Err(Error::Unsupported(format!(
                "table {} uses storage engine {}, which does not support transactions; \
                 write to it outside BEGIN ... COMMIT",
                table.name,
                engine.name()
            )));
        }
        Ok(())
    }

    /// Inserts rows (already checked against the table's constraints).
    pub(crate) fn insert(
        &mut self,
        engine: &Arc<dyn StorageEngine>,
        table: &TableInfo,
        batch: RecordBatch,
    ) -> Result<()> {
        self.check_write(engine, table)?;
        let t = self.txn(engine)?;
        t.wrote = true;
        t.txn
            .insert(table, batch)
            .map_err(|e| storage_error(engine.name(), e))
    }

    /// Deletes rows by id.
    pub(crate) fn delete(
        &mut self,
        engine: &Arc<dyn StorageEngine>,
        table: &TableInfo,
        ids: &UInt64Array,
    ) -> Result<u64> {
        self.check_write(engine, table)?;
        require_update_delete(engine, table, "DELETE")?;
        let t = self.txn(engine)?;
        t.wrote = true;
        t.txn
            .delete(table, ids)
            .map_err(|e| storage_error(engine.name(), e))
    }

    /// Replaces rows by id.
    pub(crate) fn update(
        &mut self,
        engine: &Arc<dyn StorageEngine>,
        table: &TableInfo,
        ids: &UInt64Array,
        rows: RecordBatch,
    ) -> Result<u64> {
        self.check_write(engine, table)?;
        require_update_delete(engine, table, "UPDATE")?;
        let t = self.txn(engine)?;
        t.wrote = true;
        t.txn
            .update(table, ids, rows)
            .map_err(|e| storage_error(engine.name(), e))
    }

    /// Records a table created in this transaction (dropped again on rollback).
    pub(crate) fn created(&mut self, engine: Arc<dyn StorageEngine>, table: TableInfo) {
        self.created.push((engine, table));
    }

    /// Records a table dropped in this transaction (its storage goes after commit).
    pub(crate) fn dropped(&mut self, engine: Arc<dyn StorageEngine>, table: TableInfo) {
        self.dropped.push((engine, table));
    }

    /// First commit phase: every engine that was written prepares (writes its data, checks
    /// for conflicts) without publishing.
    ///
    /// The commit protocol: prepare all engines, commit redb, then commit the engines. A
    /// failure before redb commits rolls everything back. An engine commit can still fail after
    /// redb committed (its store became unreachable between prepare and commit); the error
    /// then says the transaction committed only partly. Rollback is always complete.
    pub(crate) fn prepare(&mut self) -> Result<()> {
        for (name, t) in self.open.iter_mut().filter(|(_, t)| t.wrote) {
            t.txn.prepare().map_err(|e| commit_error(name, e))?;
        }
        Ok(())
    }

    /// Second commit phase: publishes every engine's changes, then drops the storage of
    /// tables dropped in the transaction.
    pub(crate) fn commit(self) -> Result<()> {
        let mut failures = Vec::new();
        for (name, t) in self.open {
            let wrote = t.wrote;
            if let Err(e) = t.txn.commit() {
                if wrote {
                    failures.push(format!("{name}: {e}"));
                } else {
                    tracing::warn!(engine = %name, "closing a read-only transaction: {e}");
                }
            }
        }
        for (engine, table) in self.dropped {
            if let Err(e) = engine.drop_table(&table) {
                tracing::warn!(engine = engine.name(), table = %table.name, "cannot remove the storage of a dropped table: {e}");
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Error::Transaction(
                SqlState::InternalError,
                format!(
                    "the transaction committed only partly: storage engine {}",
                    failures.join("; ")
                ),
            ))
        }
    }

    /// Discards everything: engine changes and tables created in the transaction.
    pub(crate) fn rollback(self) {
        for (name, t) in self.open {
            if let Err(e) = t.txn.rollback() {
                tracing::warn!(engine = %name, "rollback: {e}");
            }
        }
        for (engine, table) in self.created {
            if let Err(e) = engine.drop_table(&table) {
                tracing::warn!(engine = engine.name(), table = %table.name, "cannot remove the storage of a rolled-back table: {e}");
            }
        }
    }
}

pub(crate) fn require_update_delete(
    engine: &Arc<dyn StorageEngine>,
    table: &TableInfo,
    verb: &str,
) -> Result<()> {
    if engine.capabilities().update_delete {
        Ok(())
    } else {
        Err(Error::Unsupported(format!(
            "{verb} on table {}: storage engine {} does not support UPDATE or DELETE \
             (it is append-only)",
            table.name,
            engine.name()
        )))
    }
}
