//! Storage engines: the tables a database keeps outside its own redb file.
//!
//! Every engine, built in or from a plugin, is registered in the plugin manager's registry as an
//! [`EngineInfo`] and chosen per table with `CREATE TABLE ... USING name WITH (...)`:
//! * `redb`, the default: the core's own storage ([`crate::storage`]), with the database's
//!   transactions, primary-key index and key lookups.
//! * `memory`: a transactional in-memory engine written against the same SDK traits plugin
//!   authors use ([`memory::MemoryEngine`]); its tables are empty again after a restart.
//! * Engines of native plugins (`phantomdb.storage/1`), reached through
//!   [`phantomdb_plugin_host::NativeStorageEngine`].
//!
//! The host drives engines through [`EngineTxns`], the engine transactions of one database
//! transaction, and commits them together with the redb transaction (see
//! [`EngineTxns::prepare`] for the guarantee).

pub mod memory;
pub(crate) mod table;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, UInt64Array};
use arrow::compute::concat_batches;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, Operator};
pub use phantomdb_plugin_sdk::storage::{
    BatchStream, Capabilities, CompareOp, Filter, FilterSupport, Options, ScanRequest,
    StorageEngine, StorageTransaction, TableInfo, TableStatistics, Value,
};

use crate::catalog::{TableDef, DEFAULT_ENGINE};
use crate::error::{Error, Result, SqlState};

/// How a registered engine is implemented.
#[derive(Clone)]
pub enum EngineImpl {
    /// The core's own redb storage.
    Native,
    /// An engine behind the SDK traits (built in, or a plugin's through the C ABI).
    Plugin(Arc<dyn StorageEngine>),
}

impl std::fmt::Debug for EngineImpl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Native => f.write_str("Native"),
            Self::Plugin(e) => write!(f, "Plugin({})", e.name()),
        }
    }
}

/// A registered storage engine.
#[derive(Debug, Clone)]
pub struct EngineInfo {
    /// Name used in `USING`.
    pub name: String,
    /// The plugin that provides it.
    pub plugin: String,
    /// One-line description.
    pub description: String,
    /// What it supports.
    pub capabilities: Capabilities,
    /// The implementation.
    pub implementation: EngineImpl,
}

impl EngineInfo {
    /// The built-in `redb` engine.
    pub(crate) fn redb(plugin: &str) -> Self {
        Self {
            name: DEFAULT_ENGINE.into(),
            plugin: plugin.into(),
            description: "PhantomDB's default storage: one crash-safe redb file per database"
                .into(),
            capabilities: Capabilities {
                transactions: true,
                update_delete: true,
                indexes: true,
                statistics: false,
            },
            implementation: EngineImpl::Native,
        }
    }

    /// An engine behind the SDK traits.
    pub fn from_engine(plugin: &str, engine: Arc<dyn StorageEngine>) -> Self {
        Self {
            name: engine.name().to_ascii_lowercase(),
            plugin: plugin.into(),
            description: engine.description().into(),
            capabilities: engine.capabilities(),
            implementation: EngineImpl::Plugin(engine),
        }
    }
}

/// The error for a table whose engine is not registered.
pub fn missing_engine(table: &str, engine: &str) -> Error {
    Error::Plugin(
        SqlState::UndefinedObject,
        format!("table {table} needs storage engine {engine} (plugin not loaded)"),
    )
}

/// The SDK's view of a table definition.
pub fn table_info(def: &TableDef) -> TableInfo {
    TableInfo {
        id: def.id,
        name: def.name.clone(),
        schema: def.schema_ref(),
        options: def.options.clone(),
    }
}

fn storage_error(engine: &str, message: String) -> Error {
    // Keep the engine's own wording for conflicts, so callers can match on it.
    if message.contains("could not serialize access") {
        Error::Transaction(SqlState::SerializationFailure, message)
    } else {
        Error::Storage(format!("storage engine {engine}: {message}"))
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
            t.txn
                .prepare()
                .map_err(|e| storage_error(name, format!("cannot commit: {e}")))?;
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

/// Checks new rows against the primary key of a table whose engine does not enforce keys,
/// by reading the key columns of the stored rows. `replaced` are row ids whose rows the
/// statement removes (an UPDATE's old rows).
pub(crate) fn check_primary_key(
    txns: &mut EngineTxns,
    engine: &Arc<dyn StorageEngine>,
    def: &TableDef,
    new_rows: &RecordBatch,
    replaced: &HashSet<u64>,
) -> Result<()> {
    if def.primary_key.is_empty() || engine.capabilities().indexes || new_rows.num_rows() == 0 {
        return Ok(());
    }
    let info = table_info(def);
    let request = ScanRequest {
        projection: Some(def.primary_key.clone()),
        with_row_ids: !replaced.is_empty(),
        ..ScanRequest::default()
    };
    let stored = txns.read_all(engine, &info, &request)?;
    let key_cols: Vec<ArrayRef> = stored.columns()[..def.primary_key.len()].to_vec();
    let stored_keys = crate::storage::encode_key_columns(def, &key_cols)?;
    let ids = if replaced.is_empty() {
        None
    } else {
        stored
            .column(def.primary_key.len())
            .as_any()
            .downcast_ref::<UInt64Array>()
            .cloned()
    };
    let mut taken: HashSet<Vec<u8>> = HashSet::with_capacity(stored_keys.len());
    for (i, k) in stored_keys.into_iter().enumerate() {
        if ids
            .as_ref()
            .is_some_and(|ids| replaced.contains(&ids.value(i)))
        {
            continue;
        }
        taken.insert(k);
    }
    let new_keys = crate::storage::encode_keys(def, new_rows)?;
    let mut seen = HashSet::with_capacity(new_keys.len());
    for (row, key) in new_keys.iter().enumerate() {
        if taken.contains(key) || !seen.insert(key.as_slice()) {
            return Err(crate::storage::duplicate_key(def, new_rows, row));
        }
    }
    Ok(())
}

/// Translates a DataFusion filter into the SDK's [`Filter`], when it has that form.
pub fn to_filter(expr: &Expr) -> Option<Filter> {
    let b = |e: &Expr| to_filter(e).map(Box::new);
    Some(match expr {
        Expr::Column(c) => Filter::Column(c.name.clone()),
        Expr::Literal(v, _) => Filter::Literal(to_value(v)?),
        Expr::BinaryExpr(be) => {
            let op = match be.op {
                Operator::Eq => CompareOp::Eq,
                Operator::NotEq => CompareOp::NotEq,
                Operator::Lt => CompareOp::Lt,
                Operator::LtEq => CompareOp::LtEq,
                Operator::Gt => CompareOp::Gt,
                Operator::GtEq => CompareOp::GtEq,
                Operator::And => {
                    return Some(Filter::And(vec![
                        to_filter(&be.left)?,
                        to_filter(&be.right)?,
                    ]))
                }
                Operator::Or => {
                    return Some(Filter::Or(vec![
                        to_filter(&be.left)?,
                        to_filter(&be.right)?,
                    ]))
                }
                _ => return None,
            };
            Filter::Compare {
                op,
                left: b(&be.left)?,
                right: b(&be.right)?,
            }
        }
        Expr::Not(e) => Filter::Not(b(e)?),
        Expr::IsNull(e) => Filter::IsNull(b(e)?),
        Expr::IsNotNull(e) => Filter::IsNotNull(b(e)?),
        Expr::InList(l) => Filter::InList {
            expr: b(&l.expr)?,
            list: l.list.iter().map(to_filter).collect::<Option<Vec<_>>>()?,
            negated: l.negated,
        },
        Expr::Between(bt) => {
            let ge = Filter::Compare {
                op: CompareOp::GtEq,
                left: b(&bt.expr)?,
                right: b(&bt.low)?,
            };
            let le = Filter::Compare {
                op: CompareOp::LtEq,
                left: b(&bt.expr)?,
                right: b(&bt.high)?,
            };
            let inside = Filter::And(vec![ge, le]);
            if bt.negated {
                Filter::Not(Box::new(inside))
            } else {
                inside
            }
        }
        _ => return None,
    })
}

fn to_value(v: &ScalarValue) -> Option<Value> {
    if v.is_null() {
        return Some(Value::Null);
    }
    Some(match v {
        ScalarValue::Boolean(Some(b)) => Value::Bool(*b),
        ScalarValue::Int8(Some(x)) => Value::Int(i64::from(*x)),
        ScalarValue::Int16(Some(x)) => Value::Int(i64::from(*x)),
        ScalarValue::Int32(Some(x)) => Value::Int(i64::from(*x)),
        ScalarValue::Int64(Some(x)) => Value::Int(*x),
        ScalarValue::UInt8(Some(x)) => Value::UInt(u64::from(*x)),
        ScalarValue::UInt16(Some(x)) => Value::UInt(u64::from(*x)),
        ScalarValue::UInt32(Some(x)) => Value::UInt(u64::from(*x)),
        ScalarValue::UInt64(Some(x)) => Value::UInt(*x),
        ScalarValue::Float32(Some(x)) => Value::Float(f64::from(*x)),
        ScalarValue::Float64(Some(x)) => Value::Float(*x),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Value::Str(s.clone()),
        ScalarValue::Date32(Some(d)) => Value::Date32(*d),
        ScalarValue::TimestampMicrosecond(Some(t), None) => Value::TimestampUs(*t),
        _ => return None,
    })
}
