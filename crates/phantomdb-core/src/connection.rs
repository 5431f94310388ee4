//! Connections: sessions that run SQL, with their own transaction state.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, RecordBatch, UInt64Array};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{MemoryCatalogProvider, SchemaProvider, TableProvider};
use datafusion::common::{DFSchema, ScalarValue, TableReference};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::ViewTable;
use datafusion::error::Result as DfResult;
use datafusion::execution::context::{SessionConfig, SessionContext, SessionState};
use datafusion::logical_expr::{DdlStatement, DmlStatement, Expr, LogicalPlan, WriteOp};
use datafusion::prelude::{CsvReadOptions, JsonReadOptions, ParquetReadOptions};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    AlterTableOperation, ColumnOption, Expr as SqlExpr, FromTable, ObjectName, RenameTableNameKind,
    Statement as SqlStatement, TableFactor, TableObject,
};
use parking_lot::Mutex;

use crate::catalog::{CatalogEntry, TableDef, ViewDef, DEFAULT_ENGINE, DEFAULT_ENGINE_SETTING};
use crate::database::DatabaseShared;
use crate::engines::table::EngineTable;
use crate::engines::{
    check_primary_key, missing_engine, table_info, EngineImpl, EngineTxns, ScanRequest,
    SharedEngineTxns, StorageEngine,
};
use crate::error::{Error, Result};
use crate::fastpath::{self, FastPath};
use crate::plugins::tables::{FunctionsTable, PluginsTable, StorageEnginesTable};
use crate::plugins::Registry;
use crate::provider::{PhantomTable, TableRole, ROW_ID_COLUMN};
use crate::sql::{self, normalize_ident, CopyFrom, Statement};
use crate::storage::{encode_keys, DataView, ReadView, RowId, WriteTxn};

/// The catalog and schema names every connection uses.
pub const CATALOG_NAME: &str = "phantomdb";
/// The default schema.
pub const SCHEMA_NAME: &str = "public";

/// The result of a statement: a schema and zero or more batches.
#[derive(Debug, Clone)]
pub struct ResultSet {
    /// Column names and types.
    pub schema: SchemaRef,
    /// The rows.
    pub batches: Vec<RecordBatch>,
    /// For INSERT, UPDATE, DELETE and COPY FROM: how many rows the statement changed.
    pub rows_affected: Option<usize>,
}

impl ResultSet {
    fn empty() -> Self {
        Self {
            schema: Arc::new(Schema::empty()),
            batches: Vec::new(),
            rows_affected: None,
        }
    }

    fn count(n: usize) -> Result<Self> {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "count",
            DataType::UInt64,
            false,
        )]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(UInt64Array::from(vec![n as u64]))],
        )?;
        Ok(Self {
            schema,
            batches: vec![batch],
            rows_affected: Some(n),
        })
    }

    /// Total number of rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }

    /// All rows in one batch.
    pub fn concat(&self) -> Result<RecordBatch> {
        Ok(concat_batches(&self.schema, &self.batches)?)
    }
}

/// What a statement reads through, and how DataFusion reaches it while planning.
struct StatementContext {
    view: Arc<dyn DataView>,
    /// The registry snapshot the statement plans with (functions and storage engines).
    registry: Arc<Registry>,
    /// The engine transactions of the statement's database transaction.
    engines: SharedEngineTxns,
    /// The table the statement writes to, and how.
    target: Option<(String, TableRole)>,
    state: SessionState,
    /// Keeps the plugins this statement may call from being shut down until it ends.
    _pins: Vec<crate::plugins::StatementPin>,
}

/// The schema provider of a connection: resolves names against the current statement's view.
#[derive(Clone)]
struct PhantomSchema {
    current: Arc<Mutex<Option<Arc<StatementContext>>>>,
}

impl std::fmt::Debug for PhantomSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PhantomSchema")
    }
}

impl PhantomSchema {
    fn context(&self) -> Option<Arc<StatementContext>> {
        self.current.lock().clone()
    }
}

/// Parses the stored DEFAULT expressions of a table.
fn parse_defaults(state: &SessionState, def: &TableDef) -> DfResult<HashMap<String, Expr>> {
    let df_schema = DFSchema::try_from(def.schema.clone())?;
    def.defaults
        .iter()
        .map(|(col, sql)| Ok((col.clone(), state.create_logical_expr(sql, &df_schema)?)))
        .collect()
}

#[async_trait]
impl SchemaProvider for PhantomSchema {
    fn table_names(&self) -> Vec<String> {
        self.context()
            .map(|c| c.view.catalog().names().cloned().collect())
            .unwrap_or_default()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(ctx) = self.context() else {
            return Ok(None);
        };
        let catalog = ctx.view.catalog();
        match catalog.get(name) {
            Some(CatalogEntry::Table(def)) => {
                let role = match &ctx.target {
                    Some((t, role)) if t == name => *role,
                    _ => TableRole::Read,
                };
                let defaults = parse_defaults(&ctx.state, def)?;
                if def.is_native() {
                    return Ok(Some(Arc::new(PhantomTable::new(
                        def.clone(),
                        ctx.view.clone(),
                        role,
                        defaults,
                    ))));
                }
                let engine = plugin_engine(&ctx.registry, def)
                    .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
                Ok(Some(Arc::new(EngineTable::new(
                    def.clone(),
                    engine,
                    ctx.engines.clone(),
                    role,
                    defaults,
                ))))
            }
            Some(CatalogEntry::View(view)) => {
                let plan = ctx.state.create_logical_plan(&view.query).await?;
                Ok(Some(Arc::new(ViewTable::new(
                    plan,
                    Some(view.query.clone()),
                ))))
            }
            None => Ok(None),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.context()
            .is_some_and(|c| c.view.catalog().get(name).is_some())
    }
}

/// A connection's transaction state.
enum TxnState {
    /// Every statement is its own transaction.
    Autocommit,
    /// Inside `BEGIN ... COMMIT`: reads see `snapshot` until the first write, which opens
    /// the write transaction (failing if someone committed since `snapshot`).
    Explicit {
        snapshot: Arc<ReadView>,
        write: Option<Arc<Mutex<WriteTxn>>>,
        engines: SharedEngineTxns,
    },
}

/// Where a writing statement writes: the redb write transaction and the engine transactions.
#[derive(Clone)]
struct Scope {
    w: Arc<Mutex<WriteTxn>>,
    engines: SharedEngineTxns,
}

/// A session with a PhantomDB database. Cheap to create; use one per thread or task.
///
/// Statements on one connection run one at a time; connections run concurrently, with
/// snapshot reads and a single writer at a time.
pub struct Connection {
    shared: Arc<DatabaseShared>,
    ctx: SessionContext,
    schema: PhantomSchema,
    txn: tokio::sync::Mutex<TxnState>,
    busy_timeout: Duration,
    /// `PREPARE`d statements by name. Each `EXECUTE` plans the statement again against the
    /// current snapshot (a plan keeps the table snapshot it was planned with).
    prepared: Mutex<HashMap<String, (SqlStatement, Option<FastPath>)>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

/// Clears the statement context when a statement ends, however it ends.
struct ContextGuard<'a>(&'a PhantomSchema);

impl Drop for ContextGuard<'_> {
    fn drop(&mut self) {
        *self.0.current.lock() = None;
    }
}

impl Connection {
    pub(crate) fn new(shared: Arc<DatabaseShared>) -> Result<Self> {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema(CATALOG_NAME, SCHEMA_NAME)
            .with_create_default_catalog_and_schema(false);
        let ctx = SessionContext::new_with_config(config);
        for name in crate::plugins::PLUGIN_PROVIDED_FUNCTIONS {
            ctx.deregister_udf(name);
        }
        ctx.register_udtf(
            "phantomdb_plugins",
            Arc::new(PluginsTable(shared.plugins.clone())),
        );
        ctx.register_udtf(
            "phantomdb_functions",
            Arc::new(FunctionsTable(shared.plugins.clone())),
        );
        ctx.register_udtf(
            "phantomdb_storage_engines",
            Arc::new(StorageEnginesTable(shared.plugins.clone())),
        );
        let schema = PhantomSchema {
            current: Arc::new(Mutex::new(None)),
        };
        ctx.register_udtf("phantomdb_tables", Arc::new(TablesTable(schema.clone())));
        let catalog = MemoryCatalogProvider::new();
        datafusion::catalog::CatalogProvider::register_schema(
            &catalog,
            SCHEMA_NAME,
            Arc::new(schema.clone()),
        )?;
        ctx.register_catalog(CATALOG_NAME, Arc::new(catalog));
        Ok(Self {
            shared,
            ctx,
            schema,
            txn: tokio::sync::Mutex::new(TxnState::Autocommit),
            busy_timeout: Duration::from_secs(5),
            prepared: Mutex::new(HashMap::new()),
        })
    }

    /// The DataFusion session behind this connection (to register functions and the like).
    pub fn session(&self) -> &SessionContext {
        &self.ctx
    }

    /// How long a write waits for another connection's transaction to finish.
    pub fn set_busy_timeout(&mut self, timeout: Duration) {
        self.busy_timeout = timeout;
    }

    /// Whether an explicit transaction is open.
    pub async fn in_transaction(&self) -> bool {
        matches!(*self.txn.lock().await, TxnState::Explicit { .. })
    }

    /// Runs one or more `;`-separated statements and returns the result of the last one.
    ///
    /// Blocks on PhantomDB's runtime; from async code use [`Connection::execute_async`].
    pub fn execute(&self, sql: &str) -> Result<ResultSet> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Unsupported(
                "Connection::execute blocks; inside an async runtime call execute_async".into(),
            ));
        }
        crate::database::runtime().block_on(self.execute_async(sql))
    }

    /// Runs one or more `;`-separated statements and returns the result of the last one.
    pub async fn execute_async(&self, sql: &str) -> Result<ResultSet> {
        let statements = sql::parse(sql)?;
        let mut last = ResultSet::empty();
        for stmt in statements {
            last = self.run(stmt).await?;
        }
        Ok(last)
    }

    /// Runs one statement parsed with [`crate::sql::parse`].
    pub async fn execute_statement(&self, stmt: Statement) -> Result<ResultSet> {
        self.run(stmt).await
    }

    /// The catalog as this connection currently sees it.
    pub async fn catalog(&self) -> Result<Arc<crate::catalog::Catalog>> {
        Ok(self.read_view().await?.0.catalog())
    }

    async fn run(&self, stmt: Statement) -> Result<ResultSet> {
        match stmt {
            Statement::CopyFrom(copy) => self.write(|c, w| Box::pin(c.copy_from(w, copy))).await,
            Statement::CreateTableUsing(create) => {
                let create = *create;
                let target = None;
                self.write(|c, w| {
                    Box::pin(c.run_write(
                        w,
                        create.statement,
                        target,
                        Some((create.engine, create.options)),
                    ))
                })
                .await
            }
            Statement::SetDefaultEngine(engine) => {
                self.write(|c, w| Box::pin(c.set_default_engine(w, engine)))
                    .await
            }
            Statement::LoadPlugin(path) => {
                let plugins = self.shared.plugins.clone();
                let info = tokio::task::spawn_blocking(move || plugins.load_plugin(&path, "{}"))
                    .await
                    .map_err(|e| Error::Plugin(format!("plugin loading failed: {e}")))??;
                let sql = format!(
                    "SELECT name, version, type FROM phantomdb_plugins() WHERE name = '{}'",
                    info.name.replace('\'', "''")
                );
                Box::pin(self.execute_async(&sql)).await
            }
            Statement::UnloadPlugin(name) => {
                self.shared.plugins.unload_plugin(&name).await?;
                Ok(ResultSet::empty())
            }
            Statement::ShowPlugins => {
                Box::pin(self.execute_async(
                    "SELECT name, version, type, state, path, interfaces FROM phantomdb_plugins() ORDER BY name",
                ))
                .await
            }
            Statement::DataFusion(df) => self.run_df(*df).await,
        }
    }

    async fn run_df(&self, stmt: DfStatement) -> Result<ResultSet> {
        if let DfStatement::Statement(s) = &stmt {
            match s.as_ref() {
                SqlStatement::StartTransaction { .. } => return self.begin().await,
                SqlStatement::Commit { .. } => return self.commit().await,
                SqlStatement::Rollback {
                    savepoint: None, ..
                } => return self.rollback().await,
                SqlStatement::Prepare { .. } => return self.prepare((**s).clone()).await,
                SqlStatement::Execute {
                    name: Some(name),
                    parameters,
                    ..
                } => {
                    let name = object_name(name)?;
                    return self.execute_prepared(&name, parameters).await;
                }
                SqlStatement::Deallocate { name, .. } => {
                    let name = normalize_ident(name);
                    if self.prepared.lock().remove(&name).is_none() {
                        return Err(Error::Sql(format!(
                            "prepared statement \"{name}\" does not exist"
                        )));
                    }
                    return Ok(ResultSet::empty());
                }
                SqlStatement::AlterTable(_) => {
                    let s = (**s).clone();
                    return self.write(|c, w| Box::pin(c.alter_table(w, s))).await;
                }
                _ => {}
            }
        }
        if let DfStatement::CreateExternalTable(_) = stmt {
            return Err(Error::Unsupported(
                "CREATE EXTERNAL TABLE; create a table and load it with COPY t FROM 'file'".into(),
            ));
        }
        if is_write(&stmt) {
            let target = dml_target(&stmt);
            self.write(|c, w| Box::pin(c.run_write(w, stmt, target, None)))
                .await
        } else {
            let (view, engines, autocommit) = self.read_view().await?;
            let result = async {
                let (plan, _guard) = self.plan(view, engines.clone(), stmt, None).await?;
                let df = self.ctx.execute_logical_plan(plan).await?;
                collect(df).await
            }
            .await;
            if autocommit {
                // Reads only: closing the engine transactions cannot lose anything.
                end_engines(engines, result.is_ok())?;
            }
            result
        }
    }

    /// The view a reading statement uses, the engine transactions it reads through, and
    /// whether those belong to this statement alone (autocommit).
    async fn read_view(&self) -> Result<(Arc<dyn DataView>, SharedEngineTxns, bool)> {
        let state = self.txn.lock().await;
        Ok(match &*state {
            TxnState::Autocommit => (self.shared.store.read_view()?, EngineTxns::new(false), true),
            TxnState::Explicit {
                write: Some(w),
                engines,
                ..
            } => (w.clone(), engines.clone(), false),
            TxnState::Explicit {
                snapshot, engines, ..
            } => (snapshot.clone(), engines.clone(), false),
        })
    }

    /// Plans `stmt` against `view`. The returned guard keeps the view current until dropped.
    async fn plan(
        &self,
        view: Arc<dyn DataView>,
        engines: SharedEngineTxns,
        stmt: DfStatement,
        target: Option<(String, TableRole)>,
    ) -> Result<(LogicalPlan, ContextGuard<'_>)> {
        let mut state = self.ctx.state();
        let (registry, pins) = self.shared.plugins.apply(&mut state)?;
        *self.schema.current.lock() = Some(Arc::new(StatementContext {
            _pins: pins,
            view,
            registry,
            engines,
            target,
            state: state.clone(),
        }));
        let guard = ContextGuard(&self.schema);
        let plan = state.statement_to_plan(stmt).await?;
        Ok((plan, guard))
    }

    /// Runs `body` in the write transaction: the open explicit one, or a new one that commits
    /// when `body` succeeds and rolls back when it fails.
    async fn write<F>(&self, body: F) -> Result<ResultSet>
    where
        F: for<'a> FnOnce(
            &'a Self,
            Scope,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<ResultSet>> + Send + 'a>,
        >,
    {
        let mut state = self.txn.lock().await;
        match &mut *state {
            TxnState::Autocommit => {
                drop(state);
                let w = Arc::new(Mutex::new(
                    self.shared
                        .store
                        .begin_write(self.busy_timeout, None)
                        .await?,
                ));
                let engines = EngineTxns::new(false);
                let result = body(
                    self,
                    Scope {
                        w: w.clone(),
                        engines: engines.clone(),
                    },
                )
                .await;
                let w = Arc::try_unwrap(w)
                    .map_err(|_| Error::Transaction("write transaction still in use".into()))?
                    .into_inner();
                let engines = unwrap_engines(engines)?;
                match result {
                    Ok(r) => {
                        commit_all(w, engines)?;
                        Ok(r)
                    }
                    Err(e) => {
                        engines.rollback();
                        w.rollback()?;
                        Err(e)
                    }
                }
            }
            TxnState::Explicit {
                snapshot,
                write,
                engines,
            } => {
                let w = match write {
                    Some(w) => w.clone(),
                    None => {
                        let version = snapshot.data_version();
                        let w = Arc::new(Mutex::new(
                            self.shared
                                .store
                                .begin_write(self.busy_timeout, Some(version))
                                .await?,
                        ));
                        *write = Some(w.clone());
                        w
                    }
                };
                let engines = engines.clone();
                drop(state);
                body(self, Scope { w, engines }).await
            }
        }
    }

    async fn begin(&self) -> Result<ResultSet> {
        let mut state = self.txn.lock().await;
        if let TxnState::Explicit { .. } = *state {
            return Err(Error::Transaction(
                "a transaction is already in progress".into(),
            ));
        }
        *state = TxnState::Explicit {
            snapshot: self.shared.store.read_view()?,
            write: None,
            engines: EngineTxns::new(true),
        };
        Ok(ResultSet::empty())
    }

    fn take_txn(state: &mut TxnState, verb: &str) -> Result<(Option<WriteTxn>, EngineTxns)> {
        match std::mem::replace(state, TxnState::Autocommit) {
            TxnState::Autocommit => Err(Error::Transaction(format!(
                "cannot {verb}: no transaction is in progress"
            ))),
            TxnState::Explicit {
                write: None,
                engines,
                ..
            } => Ok((None, unwrap_engines(engines)?)),
            TxnState::Explicit {
                write: Some(w),
                engines,
                ..
            } => {
                let w = Arc::try_unwrap(w)
                    .map(|m| m.into_inner())
                    .map_err(|_| Error::Transaction("write transaction still in use".into()))?;
                Ok((Some(w), unwrap_engines(engines)?))
            }
        }
    }

    async fn commit(&self) -> Result<ResultSet> {
        let mut state = self.txn.lock().await;
        match Self::take_txn(&mut state, "COMMIT")? {
            (Some(w), engines) => commit_all(w, engines)?,
            (None, mut engines) => {
                // Nothing was written to redb; the engines may still have been.
                if let Err(e) = engines.prepare() {
                    engines.rollback();
                    return Err(e);
                }
                engines.commit()?;
            }
        }
        Ok(ResultSet::empty())
    }

    async fn rollback(&self) -> Result<ResultSet> {
        let mut state = self.txn.lock().await;
        let (w, engines) = Self::take_txn(&mut state, "ROLLBACK")?;
        engines.rollback();
        if let Some(w) = w {
            w.rollback()?;
        }
        Ok(ResultSet::empty())
    }

    /// `SET default_table_access_method = 'engine'`: the engine of tables created without
    /// `USING`, stored in the database.
    async fn set_default_engine(&self, scope: Scope, engine: String) -> Result<ResultSet> {
        let registry = self.shared.plugins.snapshot();
        if registry.engine(&engine).is_none() {
            return Err(unknown_engine(&registry, &engine));
        }
        scope
            .w
            .lock()
            .put_setting(DEFAULT_ENGINE_SETTING, &engine)?;
        Ok(ResultSet::empty())
    }

    /// Plans and applies a writing statement (DDL or DML) in write transaction `w`.
    async fn run_write(
        &self,
        scope: Scope,
        stmt: DfStatement,
        target: Option<(String, TableRole)>,
        storage: Option<(Option<String>, std::collections::BTreeMap<String, String>)>,
    ) -> Result<ResultSet> {
        let view: Arc<dyn DataView> = scope.w.clone();
        let (plan, _guard) = self.plan(view, scope.engines.clone(), stmt, target).await?;
        self.apply_write(scope, plan, storage).await
    }

    /// Applies a planned DDL or DML statement in the write transaction.
    async fn apply_write(
        &self,
        scope: Scope,
        plan: LogicalPlan,
        storage: Option<(Option<String>, std::collections::BTreeMap<String, String>)>,
    ) -> Result<ResultSet> {
        let w = scope.w.clone();
        match plan {
            LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(create)) => {
                let name = local_name(&create.name)?;
                let exists = w.lock().catalog().get(&name).is_some();
                if exists {
                    if create.if_not_exists {
                        return Ok(ResultSet::empty());
                    }
                    if !create.or_replace {
                        return Err(Error::Catalog(format!("table \"{name}\" already exists")));
                    }
                    self.drop_table_storage(&scope, &name)?;
                    w.lock().remove_entry(&name)?;
                }
                let (engine_name, options) = match storage {
                    Some((engine, options)) => (
                        engine.unwrap_or_else(|| w.lock().catalog().default_engine().to_string()),
                        options,
                    ),
                    None => (
                        w.lock().catalog().default_engine().to_string(),
                        Default::default(),
                    ),
                };
                let registry = self.shared.plugins.snapshot();
                let engine = match registry.engine(&engine_name) {
                    None => return Err(unknown_engine(&registry, &engine_name)),
                    Some(e) => e.implementation.clone(),
                };
                if matches!(engine, EngineImpl::Native) && !options.is_empty() {
                    return Err(Error::Unsupported(format!(
                        "storage engine {DEFAULT_ENGINE} takes no options (WITH ...)"
                    )));
                }
                let mut fields: Vec<Field> = create
                    .input
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone())
                    .collect();
                let mut primary_key = Vec::new();
                for c in create.constraints.iter() {
                    match c {
                        datafusion::common::Constraint::PrimaryKey(cols) => {
                            primary_key = cols.clone()
                        }
                        datafusion::common::Constraint::Unique(_) => {
                            return Err(Error::Unsupported(
                                "UNIQUE constraints (only PRIMARY KEY)".into(),
                            ))
                        }
                    }
                }
                for &i in &primary_key {
                    fields[i] = fields[i].clone().with_nullable(false);
                }
                let mut defaults = std::collections::BTreeMap::new();
                for (col, expr) in &create.column_defaults {
                    let sql = datafusion::sql::unparser::expr_to_sql(expr)?.to_string();
                    defaults.insert(col.clone(), sql);
                }
                let mut def = TableDef {
                    id: w.lock().allocate_table_id(),
                    name: name.clone(),
                    schema: Schema::new(fields),
                    primary_key,
                    defaults,
                    engine: engine_name,
                    options,
                    backfill: Default::default(),
                };
                if let EngineImpl::Plugin(engine) = &engine {
                    // Not transactional in the engine: undone if this transaction rolls back.
                    let info = table_info(&def);
                    def.options = engine.create_table(&info).map_err(|e| {
                        Error::Storage(format!(
                            "storage engine {} cannot create table {name}: {e}",
                            engine.name()
                        ))
                    })?;
                    scope
                        .engines
                        .lock()
                        .created(engine.clone(), table_info(&def));
                }
                let def = Arc::new(def);
                {
                    let mut wl = w.lock();
                    wl.create_storage(&def)?;
                    wl.put_entry(&name, CatalogEntry::Table(def.clone()))?;
                }
                if !matches!(create.input.as_ref(), LogicalPlan::EmptyRelation(_)) {
                    let df = DataFrame::new(self.ctx.state(), create.input.as_ref().clone());
                    let batches = df.collect().await?;
                    let n = self.insert_rows(&scope, &def, batches)?;
                    return ResultSet::count(n);
                }
                Ok(ResultSet::empty())
            }
            LogicalPlan::Ddl(DdlStatement::DropTable(drop)) => {
                let name = local_name(&drop.name)?;
                if w.lock().catalog().table(&name).is_some() {
                    self.drop_table_storage(&scope, &name)?;
                }
                drop_entry(&w, &name, drop.if_exists, EntryKind::Table)
            }
            LogicalPlan::Ddl(DdlStatement::CreateView(create)) => {
                let name = local_name(&create.name)?;
                let query = create
                    .definition
                    .as_deref()
                    .map(view_query_text)
                    .ok_or_else(|| Error::Sql("CREATE VIEW without a definition".into()))?;
                let mut wl = w.lock();
                match wl.catalog().get(&name) {
                    Some(CatalogEntry::View(_)) if create.or_replace => {}
                    Some(_) => return Err(Error::Catalog(format!("\"{name}\" already exists"))),
                    None => {}
                }
                wl.put_entry(
                    &name,
                    CatalogEntry::View(Arc::new(ViewDef {
                        name: name.clone(),
                        query,
                    })),
                )?;
                Ok(ResultSet::empty())
            }
            LogicalPlan::Ddl(DdlStatement::DropView(drop)) => drop_entry(
                &w,
                &local_name(&drop.name)?,
                drop.if_exists,
                EntryKind::View,
            ),
            LogicalPlan::Dml(dml) => self.run_dml(&scope, dml).await,
            other => Err(Error::Unsupported(format!("statement {}", other.display()))),
        }
    }

    async fn run_dml(&self, scope: &Scope, dml: DmlStatement) -> Result<ResultSet> {
        let w = &scope.w;
        let name = local_name(&dml.table_name)?;
        let def = table_def(w, &name)?;
        let df = DataFrame::new(self.ctx.state(), dml.input.as_ref().clone());
        let batches = df.collect().await?;
        if !def.is_native() {
            return self.run_engine_dml(scope, &def, dml.op, batches);
        }
        match dml.op {
            WriteOp::Insert(_) => ResultSet::count(insert_batches(w, &def, batches)?),
            WriteOp::Delete => {
                let (ids, _) = split_row_ids(&def, batches)?;
                let mut wl = w.lock();
                let keys = old_keys(&wl, &def, &ids)?;
                wl.delete(&def, &ids, &keys)?;
                ResultSet::count(ids.len())
            }
            WriteOp::Update => {
                let (ids, new_rows) = split_row_ids(&def, batches)?;
                let mut wl = w.lock();
                let old = old_keys(&wl, &def, &ids)?;
                let replaced: HashSet<Vec<u8>> = old.iter().cloned().collect();
                let new_keys = wl.check_insert(&def, &new_rows, &replaced)?;
                wl.delete(&def, &ids, &old)?;
                wl.append(&def, new_rows, &new_keys)?;
                ResultSet::count(ids.len())
            }
            WriteOp::Truncate => {
                let view: Arc<dyn DataView> = w.clone();
                let segments = view.segments(&def)?;
                let mut ids = Vec::new();
                for s in &segments {
                    ids.extend(s.live_with_row_ids()?.1);
                }
                let mut wl = w.lock();
                let keys = old_keys(&wl, &def, &ids)?;
                wl.delete(&def, &ids, &keys)?;
                ResultSet::count(ids.len())
            }
            other => Err(Error::Unsupported(format!("{other}"))),
        }
    }

    async fn copy_from(&self, scope: Scope, copy: CopyFrom) -> Result<ResultSet> {
        let def = table_def(&scope.w, &copy.table)?;
        let format = copy.format.clone().unwrap_or_else(|| {
            let lower = copy.path.to_lowercase();
            if lower.ends_with(".parquet") {
                "parquet".into()
            } else if lower.ends_with(".json") || lower.ends_with(".ndjson") {
                "json".into()
            } else {
                "csv".into()
            }
        });
        if !std::path::Path::new(&copy.path).exists() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("COPY FROM: file {} does not exist", copy.path),
            )));
        }
        // The file's columns: the named ones, or all of the table's.
        let target_cols: Vec<usize> = if copy.columns.is_empty() {
            (0..def.schema.fields().len()).collect()
        } else {
            copy.columns
                .iter()
                .map(|c| {
                    def.schema.index_of(c).map_err(|_| {
                        Error::Catalog(format!(
                            "column \"{c}\" of table \"{}\" does not exist",
                            def.name
                        ))
                    })
                })
                .collect::<Result<_>>()?
        };
        let file_schema = Schema::new(
            target_cols
                .iter()
                .map(|&i| def.schema.field(i).clone().with_nullable(true))
                .collect::<Vec<_>>(),
        );
        let df = match format.as_str() {
            "csv" => {
                let mut opts = CsvReadOptions::new()
                    .has_header(copy.header.unwrap_or(true))
                    .schema(&file_schema)
                    .file_extension("");
                if let Some(d) = copy.delimiter {
                    opts = opts.delimiter(d as u8);
                }
                self.ctx.read_csv(&copy.path, opts).await?
            }
            "parquet" => {
                self.ctx
                    .read_parquet(&copy.path, ParquetReadOptions::default().file_extension(""))
                    .await?
            }
            "json" => {
                self.ctx
                    .read_json(
                        &copy.path,
                        JsonReadOptions::default()
                            .schema(&file_schema)
                            .file_extension(""),
                    )
                    .await?
            }
            other => {
                return Err(Error::Unsupported(format!(
                    "COPY FORMAT {other} (use csv, parquet or json)"
                )))
            }
        };
        let batches = df.collect().await?;
        // Place the file's columns in table order; absent columns take their DEFAULT or NULL.
        let mut full = Vec::with_capacity(batches.len());
        for b in batches {
            if b.num_columns() != target_cols.len() {
                return Err(Error::Sql(format!(
                    "COPY FROM: file has {} columns, table \"{}\" expects {}",
                    b.num_columns(),
                    def.name,
                    target_cols.len()
                )));
            }
            let mut cols: Vec<Option<ArrayRef>> = vec![None; def.schema.fields().len()];
            for (j, &i) in target_cols.iter().enumerate() {
                cols[i] = Some(b.column(j).clone());
            }
            let cols = cols
                .into_iter()
                .enumerate()
                .map(|(i, c)| match c {
                    Some(c) => Ok(c),
                    None => self.default_array(&def, i, b.num_rows()),
                })
                .collect::<Result<Vec<_>>>()?;
            full.push(cols);
        }
        let batches = full
            .into_iter()
            .map(|cols| table_batch(&def, cols))
            .collect::<Result<Vec<_>>>()?;
        ResultSet::count(self.insert_rows(&scope, &def, batches)?)
    }

    /// The engine of a table on a storage engine other than redb.
    fn engine_of(&self, def: &TableDef) -> Result<Arc<dyn StorageEngine>> {
        plugin_engine(&self.shared.plugins.snapshot(), def)
    }

    /// Inserts query output (table column order) into any table.
    fn insert_rows(
        &self,
        scope: &Scope,
        def: &TableDef,
        batches: Vec<RecordBatch>,
    ) -> Result<usize> {
        if def.is_native() {
            return insert_batches(&scope.w, def, batches);
        }
        let engine = self.engine_of(def)?;
        let batches = batches
            .into_iter()
            .map(|b| table_batch(def, b.columns().to_vec()))
            .collect::<Result<Vec<_>>>()?;
        let all = concat_batches(&def.schema_ref(), &batches)?;
        let n = all.num_rows();
        if n == 0 {
            return Ok(0);
        }
        let mut txns = scope.engines.lock();
        check_primary_key(&mut txns, &engine, def, &all, &HashSet::new())?;
        txns.insert(&engine, &table_info(def), all)?;
        Ok(n)
    }

    /// INSERT, UPDATE, DELETE and TRUNCATE on a table of a storage engine.
    fn run_engine_dml(
        &self,
        scope: &Scope,
        def: &TableDef,
        op: WriteOp,
        batches: Vec<RecordBatch>,
    ) -> Result<ResultSet> {
        let engine = self.engine_of(def)?;
        let info = table_info(def);
        match op {
            WriteOp::Insert(_) => ResultSet::count(self.insert_rows(scope, def, batches)?),
            WriteOp::Delete => {
                let (ids, _) = split_row_ids(def, batches)?;
                let ids = UInt64Array::from(ids);
                scope.engines.lock().delete(&engine, &info, &ids)?;
                ResultSet::count(ids.len())
            }
            WriteOp::Update => {
                let (ids, new_rows) = split_row_ids(def, batches)?;
                let replaced: HashSet<u64> = ids.iter().copied().collect();
                let ids = UInt64Array::from(ids);
                let mut txns = scope.engines.lock();
                check_primary_key(&mut txns, &engine, def, &new_rows, &replaced)?;
                txns.update(&engine, &info, &ids, new_rows)?;
                ResultSet::count(ids.len())
            }
            WriteOp::Truncate => {
                let mut txns = scope.engines.lock();
                let all = txns.read_all(
                    &engine,
                    &info,
                    &ScanRequest {
                        projection: Some(Vec::new()),
                        with_row_ids: true,
                        ..ScanRequest::default()
                    },
                )?;
                let ids = all
                    .column(0)
                    .as_any()
                    .downcast_ref::<UInt64Array>()
                    .cloned()
                    .ok_or_else(|| Error::Storage("engine returned bad row ids".into()))?;
                txns.delete(&engine, &info, &ids)?;
                ResultSet::count(ids.len())
            }
            other => Err(Error::Unsupported(format!("{other}"))),
        }
    }

    /// All rows of an engine table (only the columns in `projection`, when given), with the
    /// row id column last.
    fn read_engine_table(
        &self,
        scope: &Scope,
        def: &TableDef,
        projection: Option<Vec<usize>>,
    ) -> Result<RecordBatch> {
        let engine = self.engine_of(def)?;
        let request = ScanRequest {
            projection,
            with_row_ids: engine.capabilities().update_delete,
            ..ScanRequest::default()
        };
        scope
            .engines
            .lock()
            .read_all(&engine, &table_info(def), &request)
    }

    /// Rewrites an engine table's rows in the schema of `new` (after ADD or RENAME COLUMN):
    /// engines store whole rows, so old rows get the new column's DEFAULT now, as PostgreSQL
    /// does when it rewrites a table.
    fn rewrite_engine_table(
        &self,
        scope: &Scope,
        old: &TableDef,
        new: &mut TableDef,
    ) -> Result<()> {
        let engine = self.engine_of(old)?;
        if !engine.capabilities().update_delete {
            return Err(Error::Unsupported(format!(
                "ALTER TABLE {}: storage engine {} cannot rewrite rows (no UPDATE/DELETE support)",
                old.name,
                engine.name()
            )));
        }
        new.backfill.clear();
        let all = self.read_engine_table(scope, old, None)?;
        let n_old = old.schema.fields().len();
        let ids = all
            .column(n_old)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .cloned()
            .ok_or_else(|| Error::Storage("engine returned bad row ids".into()))?;
        if ids.is_empty() {
            return Ok(());
        }
        let mut cols: Vec<ArrayRef> = all.columns()[..n_old].to_vec();
        for i in n_old..new.schema.fields().len() {
            cols.push(self.default_array(new, i, all.num_rows())?);
        }
        let rows = table_batch(new, cols)?;
        let mut txns = scope.engines.lock();
        txns.delete(&engine, &table_info(old), &ids)?;
        txns.insert(&engine, &table_info(new), rows)?;
        Ok(())
    }

    /// Schedules the engine storage of table `name` for removal when the transaction commits
    /// (nothing to do for redb tables, whose data goes with the catalog entry).
    fn drop_table_storage(&self, scope: &Scope, name: &str) -> Result<()> {
        let Some(def) = scope.w.lock().catalog().table(name).cloned() else {
            return Ok(());
        };
        if def.is_native() {
            return Ok(());
        }
        let engine = self.engine_of(&def)?;
        scope.engines.lock().dropped(engine, table_info(&def));
        Ok(())
    }

    /// A column of `rows` copies of column `i`'s default (or NULL).
    fn default_array(&self, def: &TableDef, i: usize, rows: usize) -> Result<ArrayRef> {
        let field = def.schema.field(i);
        let value = match def.defaults.get(field.name()) {
            Some(sql) => self.eval_constant(sql, field.data_type())?,
            None => ScalarValue::try_from(field.data_type())?,
        };
        Ok(value.to_array_of_size(rows)?)
    }

    /// Evaluates a constant SQL expression to a value of type `ty`.
    fn eval_constant(&self, sql: &str, ty: &DataType) -> Result<ScalarValue> {
        let value = self.eval_scalar(sql)?.to_array()?;
        let value = cast(&value, ty)?;
        Ok(ScalarValue::try_from_array(&value, 0)?)
    }

    /// Evaluates a constant SQL expression.
    fn eval_scalar(&self, sql: &str) -> Result<ScalarValue> {
        let expr = self.ctx.parse_sql_expr(sql, &DFSchema::empty())?;
        let state = self.ctx.state();
        let physical = state.create_physical_expr(expr, &DFSchema::empty())?;
        let one = RecordBatch::try_new_with_options(
            Arc::new(Schema::empty()),
            vec![],
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(1)),
        )?;
        let value = physical.evaluate(&one)?.into_array(1)?;
        Ok(ScalarValue::try_from_array(&value, 0)?)
    }

    /// A prepared primary-key lookup without planning (see [`fastpath`]); `None` when the
    /// table no longer fits the fast path.
    async fn fast_lookup(
        &self,
        table: &str,
        columns: &Option<Vec<String>>,
        key_column: &str,
        value: &ScalarValue,
    ) -> Result<Option<ResultSet>> {
        let (view, engines, autocommit) = self.read_view().await?;
        let result = (|| -> Result<Option<ResultSet>> {
            let catalog = view.catalog();
            let Some(l) = fastpath::resolve_lookup(&catalog, table, columns, key_column) else {
                return Ok(None);
            };
            if value.is_null() {
                return Ok(Some(ResultSet {
                    schema: l.schema,
                    batches: Vec::new(),
                    rows_affected: None,
                }));
            }
            let key_type = l.def.schema.field(l.def.primary_key[0]).data_type();
            let Ok(key) = value.cast_to(key_type) else {
                return Ok(None);
            };
            let keys = crate::storage::encode_key_columns(&l.def, &[key.to_array()?])?;
            let rows = view.lookup(&l.def, &keys)?;
            let batch = RecordBatch::try_new_with_options(
                l.schema.clone(),
                rows.project(&l.columns)?.columns().to_vec(),
                &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.num_rows())),
            )?;
            let batches = if batch.num_rows() > 0 {
                vec![batch]
            } else {
                Vec::new()
            };
            Ok(Some(ResultSet {
                schema: l.schema,
                batches,
                rows_affected: None,
            }))
        })();
        if autocommit {
            end_engines(engines, true)?;
        }
        result
    }

    /// `PREPARE name [(types)] AS statement`: checks that it plans, and keeps it.
    async fn prepare(&self, stmt: SqlStatement) -> Result<ResultSet> {
        let SqlStatement::Prepare { name, .. } = &stmt else {
            return Err(Error::Sql("expected PREPARE".into()));
        };
        let name = normalize_ident(name);
        let (view, engines, autocommit) = self.read_view().await?;
        let planned = self
            .plan(
                view,
                engines.clone(),
                DfStatement::Statement(Box::new(stmt.clone())),
                None,
            )
            .await
            .map(|_| ());
        if autocommit {
            end_engines(engines, false)?;
        }
        planned?;
        let fast = match &stmt {
            SqlStatement::Prepare { statement, .. } => fastpath::analyze(statement),
            _ => None,
        };
        self.prepared.lock().insert(name, (stmt, fast));
        Ok(ResultSet::empty())
    }

    /// `EXECUTE name(values)`: plans the prepared statement against the current snapshot and
    /// runs it with the values bound (writes go through the write transaction like any DML).
    async fn execute_prepared(&self, name: &str, params: &[SqlExpr]) -> Result<ResultSet> {
        let (stmt, fast) =
            self.prepared.lock().get(name).cloned().ok_or_else(|| {
                Error::Sql(format!("prepared statement \"{name}\" does not exist"))
            })?;
        let values = params
            .iter()
            .map(|e| match fastpath::literal(e) {
                Some(v) => Ok(v),
                None => self.eval_scalar(&e.to_string()),
            })
            .collect::<Result<Vec<_>>>()?;
        if let (
            Some(FastPath::KeyLookup {
                table,
                columns,
                key_column,
            }),
            [value],
        ) = (&fast, values.as_slice())
        {
            if let Some(rs) = self.fast_lookup(table, columns, key_column, value).await? {
                return Ok(rs);
            }
        }
        let SqlStatement::Prepare { statement, .. } = &stmt else {
            return Err(Error::Sql("expected PREPARE".into()));
        };
        let inner = DfStatement::Statement(statement.clone());
        let prepared = DfStatement::Statement(Box::new(stmt.clone()));
        if is_write(&inner) {
            let target = dml_target(&inner);
            return self
                .write(|c, scope| {
                    Box::pin(async move {
                        if let Some(FastPath::Insert { table, columns }) = &fast {
                            let def = scope.w.lock().catalog().table(table).cloned();
                            if let Some(batch) = def
                                .as_ref()
                                .and_then(|d| fastpath::insert_row(d, columns, &values))
                            {
                                let def = def.ok_or_else(|| Error::Catalog(table.clone()))?;
                                return ResultSet::count(c.insert_rows(
                                    &scope,
                                    &def,
                                    vec![batch],
                                )?);
                            }
                        }
                        let view: Arc<dyn DataView> = scope.w.clone();
                        let (plan, _guard) = c
                            .plan(view, scope.engines.clone(), prepared, target)
                            .await?;
                        let plan = bind_parameters(plan, values)?;
                        c.apply_write(scope, plan, None).await
                    })
                })
                .await;
        }
        let (view, engines, autocommit) = self.read_view().await?;
        let result = async {
            let (plan, _guard) = self.plan(view, engines.clone(), prepared, None).await?;
            let plan = bind_parameters(plan, values)?;
            let df = self.ctx.execute_logical_plan(plan).await?;
            collect(df).await
        }
        .await;
        if autocommit {
            end_engines(engines, result.is_ok())?;
        }
        result
    }

    async fn alter_table(&self, scope: Scope, stmt: SqlStatement) -> Result<ResultSet> {
        let w = scope.w.clone();
        let SqlStatement::AlterTable(alter) = stmt else {
            return Err(Error::Sql("expected ALTER TABLE".into()));
        };
        let name = object_name(&alter.name)?;
        let def = table_def(&w, &name)?;
        let mut new = (*def).clone();
        let mut new_name = name.clone();
        for op in alter.operations {
            match op {
                AlterTableOperation::AddColumn {
                    column_def,
                    if_not_exists,
                    ..
                } => {
                    let col = normalize_ident(&column_def.name);
                    if new.schema.index_of(&col).is_ok() {
                        if if_not_exists {
                            continue;
                        }
                        return Err(Error::Catalog(format!(
                            "column \"{col}\" of table \"{name}\" already exists"
                        )));
                    }
                    let ty = sql_type_to_arrow(&self.ctx, &column_def.data_type.to_string())?;
                    let mut nullable = true;
                    let mut default = None;
                    for opt in &column_def.options {
                        match &opt.option {
                            ColumnOption::NotNull => nullable = false,
                            ColumnOption::Null => nullable = true,
                            ColumnOption::Default(e) => default = Some(e.to_string()),
                            other => {
                                return Err(Error::Unsupported(format!(
                                    "ADD COLUMN option {other}"
                                )))
                            }
                        }
                    }
                    let backfill = match &default {
                        Some(sql) => Some(self.eval_constant(sql, &ty)?),
                        None => None,
                    };
                    let has_rows = if def.is_native() {
                        let view: Arc<dyn DataView> = w.clone();
                        crate::storage::live_row_count(&view.segments(&new)?) > 0
                    } else {
                        self.read_engine_table(&scope, &def, Some(Vec::new()))?
                            .num_rows()
                            > 0
                    };
                    if !nullable && backfill.as_ref().is_none_or(|v| v.is_null()) && has_rows {
                        return Err(Error::Constraint(format!(
                            "cannot add NOT NULL column \"{col}\" without a DEFAULT to non-empty table \"{name}\""
                        )));
                    }
                    let position = new.schema.fields().len();
                    let mut fields: Vec<Field> = new
                        .schema
                        .fields()
                        .iter()
                        .map(|f| f.as_ref().clone())
                        .collect();
                    fields.push(Field::new(&col, ty, nullable));
                    new.schema = Schema::new(fields);
                    if let Some(v) = backfill.filter(|v| !v.is_null()) {
                        new.backfill.insert(position, v.to_string());
                    }
                    if let Some(sql) = default {
                        new.defaults.insert(col, sql);
                    }
                }
                AlterTableOperation::RenameColumn {
                    old_column_name,
                    new_column_name,
                } => {
                    let old = normalize_ident(&old_column_name);
                    let to = normalize_ident(&new_column_name);
                    let i = new.schema.index_of(&old).map_err(|_| {
                        Error::Catalog(format!(
                            "column \"{old}\" of table \"{name}\" does not exist"
                        ))
                    })?;
                    if new.schema.index_of(&to).is_ok() {
                        return Err(Error::Catalog(format!(
                            "column \"{to}\" of table \"{name}\" already exists"
                        )));
                    }
                    let mut fields: Vec<Field> = new
                        .schema
                        .fields()
                        .iter()
                        .map(|f| f.as_ref().clone())
                        .collect();
                    fields[i] = fields[i].clone().with_name(&to);
                    new.schema = Schema::new(fields);
                    if let Some(d) = new.defaults.remove(&old) {
                        new.defaults.insert(to, d);
                    }
                }
                AlterTableOperation::RenameTable { table_name } => {
                    let target = match table_name {
                        RenameTableNameKind::As(n) | RenameTableNameKind::To(n) => object_name(&n)?,
                    };
                    if w.lock().catalog().get(&target).is_some() {
                        return Err(Error::Catalog(format!("\"{target}\" already exists")));
                    }
                    new_name = target;
                }
                other => return Err(Error::Unsupported(format!("ALTER TABLE ... {other}"))),
            }
        }
        new.name = new_name.clone();
        if !def.is_native() && new.schema != def.schema {
            self.rewrite_engine_table(&scope, &def, &mut new)?;
        }
        let mut wl = w.lock();
        wl.flush_table(&def)?;
        if new_name != name {
            wl.rename_entry(&name, &new_name, CatalogEntry::Table(Arc::new(new)))?;
        } else {
            wl.put_entry(&name, CatalogEntry::Table(Arc::new(new)))?;
        }
        Ok(ResultSet::empty())
    }
}

/// Takes the statement out of a planned `PREPARE` and binds its parameters, cast to the
/// declared types.
fn bind_parameters(plan: LogicalPlan, values: Vec<ScalarValue>) -> Result<LogicalPlan> {
    let LogicalPlan::Statement(datafusion::logical_expr::Statement::Prepare(prepare)) = plan else {
        return Err(Error::Sql("expected a prepared statement".into()));
    };
    let values = values
        .into_iter()
        .enumerate()
        .map(|(i, v)| match prepare.fields.get(i) {
            Some(f) if f.data_type() != &v.data_type() && !v.is_null() => {
                Ok(v.cast_to(f.data_type())?)
            }
            _ => Ok(v),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::unwrap_or_clone(prepare.input).with_param_values(values)?)
}

/// The engine object of a table on a storage engine other than redb.
fn plugin_engine(registry: &Registry, def: &TableDef) -> Result<Arc<dyn StorageEngine>> {
    match registry.engine(&def.engine).map(|e| &e.implementation) {
        Some(EngineImpl::Plugin(e)) => Ok(e.clone()),
        Some(EngineImpl::Native) => Err(Error::Storage(format!(
            "internal: table {} is not on a plugin engine",
            def.name
        ))),
        None => Err(missing_engine(&def.name, &def.engine)),
    }
}

/// The error for `USING engine` / `SET default_table_access_method` naming no engine.
fn unknown_engine(registry: &Registry, engine: &str) -> Error {
    let known: Vec<&str> = registry.engines().map(|e| e.name.as_str()).collect();
    Error::Plugin(format!(
        "storage engine {engine} is not available (is its plugin loaded?); engines: {}",
        known.join(", ")
    ))
}

/// Takes the engine transactions back from their shared handle.
///
/// A scan's blocking reader thread may still hold the handle for a moment after its
/// statement ended (it cannot be cancelled); wait for it.
fn unwrap_engines(mut engines: SharedEngineTxns) -> Result<EngineTxns> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match Arc::try_unwrap(engines) {
            Ok(m) => return Ok(m.into_inner()),
            Err(shared) if std::time::Instant::now() < deadline => {
                engines = shared;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(_) => {
                return Err(Error::Transaction(
                    "engine transactions still in use by a scan".into(),
                ))
            }
        }
    }
}

/// Ends the engine transactions of a reading statement.
fn end_engines(engines: SharedEngineTxns, ok: bool) -> Result<()> {
    let engines = unwrap_engines(engines)?;
    if ok {
        engines.commit()
    } else {
        engines.rollback();
        Ok(())
    }
}

/// Commits a database transaction: engines prepare, redb commits, engines publish.
fn commit_all(w: WriteTxn, mut engines: EngineTxns) -> Result<()> {
    if let Err(e) = engines.prepare() {
        engines.rollback();
        w.rollback()?;
        return Err(e);
    }
    if let Err(e) = w.commit() {
        engines.rollback();
        return Err(e);
    }
    engines.commit()
}

/// `phantomdb_tables()`: every table with its storage engine, options and whether the engine
/// is available.
#[derive(Debug)]
struct TablesTable(PhantomSchema);

impl datafusion::catalog::TableFunctionImpl for TablesTable {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return datafusion::common::plan_err!("phantomdb_tables() takes no arguments");
        }
        let Some(ctx) = self.0.context() else {
            return datafusion::common::plan_err!("phantomdb_tables() needs a statement");
        };
        let catalog = ctx.view.catalog();
        let rows = catalog
            .tables()
            .map(|t| {
                let options = t
                    .options
                    .iter()
                    .filter(|(k, _)| !is_secret(k))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                vec![
                    t.name.clone(),
                    t.engine.clone(),
                    options,
                    if ctx.registry.engine(&t.engine).is_some() {
                        "available".into()
                    } else {
                        "engine not loaded".into()
                    },
                ]
            })
            .collect();
        crate::plugins::tables::table(&["name", "engine", "options", "status"], rows)
    }
}

/// Options never shown back (credentials).
fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("secret") || k.contains("password") || k.contains("token")
}

/// The definition of table `name` as the write transaction sees it.
fn table_def(w: &Mutex<WriteTxn>, name: &str) -> Result<Arc<TableDef>> {
    w.lock()
        .catalog()
        .table(name)
        .cloned()
        .ok_or_else(|| Error::Catalog(format!("table \"{name}\" does not exist")))
}

/// Which kind of catalog entry a DROP statement names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    Table,
    View,
}

/// `DROP TABLE` / `DROP VIEW`: removes the entry if it is of the kind named.
fn drop_entry(
    w: &Mutex<WriteTxn>,
    name: &str,
    if_exists: bool,
    kind: EntryKind,
) -> Result<ResultSet> {
    let mut wl = w.lock();
    let found = match wl.catalog().get(name) {
        Some(CatalogEntry::Table(_)) => Some(EntryKind::Table),
        Some(CatalogEntry::View(_)) => Some(EntryKind::View),
        None => None,
    };
    let (noun, other) = match kind {
        EntryKind::Table => ("table", "view"),
        EntryKind::View => ("view", "table"),
    };
    match found {
        Some(k) if k == kind => wl.remove_entry(name)?,
        Some(_) => {
            return Err(Error::Catalog(format!(
                "\"{name}\" is a {other}; use DROP {}",
                other.to_uppercase()
            )))
        }
        None if if_exists => {}
        None => return Err(Error::Catalog(format!("{noun} \"{name}\" does not exist"))),
    }
    Ok(ResultSet::empty())
}

/// Converts a SQL type name to the Arrow type DataFusion uses for it.
fn sql_type_to_arrow(ctx: &SessionContext, sql_type: &str) -> Result<DataType> {
    let expr = ctx.parse_sql_expr(&format!("CAST(NULL AS {sql_type})"), &DFSchema::empty())?;
    match expr {
        Expr::Cast(c) => Ok(c.field.data_type().clone()),
        Expr::TryCast(c) => Ok(c.field.data_type().clone()),
        other => Err(Error::Sql(format!("unknown type {sql_type} ({other})"))),
    }
}

/// Strips `CREATE [OR REPLACE] VIEW name [(cols)] AS` from a view definition.
fn view_query_text(definition: &str) -> String {
    if let Ok(stmts) = datafusion::sql::parser::DFParser::parse_sql(definition) {
        if let Some(DfStatement::Statement(s)) = stmts.front() {
            if let SqlStatement::CreateView(cv) = s.as_ref() {
                return cv.query.to_string();
            }
        }
    }
    definition.to_string()
}

/// Whether a statement changes the database (and so needs the write transaction).
fn is_write(stmt: &DfStatement) -> bool {
    match stmt {
        DfStatement::Statement(s) => matches!(
            s.as_ref(),
            SqlStatement::Insert(_)
                | SqlStatement::Update(_)
                | SqlStatement::Delete(_)
                | SqlStatement::CreateTable(_)
                | SqlStatement::CreateView(_)
                | SqlStatement::Drop { .. }
                | SqlStatement::Truncate(_)
        ),
        _ => false,
    }
}

/// The table an INSERT, UPDATE or DELETE writes to, and its role while planning.
fn dml_target(stmt: &DfStatement) -> Option<(String, TableRole)> {
    let DfStatement::Statement(s) = stmt else {
        return None;
    };
    let relation = match s.as_ref() {
        SqlStatement::Delete(d) => match &d.from {
            FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => {
                t.first().map(|t| &t.relation)
            }
        },
        SqlStatement::Update(u) => Some(&u.table.relation),
        SqlStatement::Insert(i) => {
            return match &i.table {
                TableObject::TableName(name) => {
                    object_name(name).ok().map(|n| (n, TableRole::InsertTarget))
                }
                _ => None,
            }
        }
        _ => None,
    }?;
    match relation {
        TableFactor::Table { name, .. } => object_name(name)
            .ok()
            .map(|n| (n, TableRole::UpdateOrDeleteTarget)),
        _ => None,
    }
}

fn object_name(name: &ObjectName) -> Result<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| {
            p.as_ident()
                .map(normalize_ident)
                .ok_or_else(|| Error::Sql(format!("bad name {name}")))
        })
        .collect::<Result<_>>()?;
    match parts.as_slice() {
        [t] => Ok(t.clone()),
        [s, t] if s == SCHEMA_NAME => Ok(t.clone()),
        [c, s, t] if c == CATALOG_NAME && s == SCHEMA_NAME => Ok(t.clone()),
        _ => Err(Error::Unsupported(format!(
            "schema-qualified name {name} (only {SCHEMA_NAME})"
        ))),
    }
}

fn local_name(name: &TableReference) -> Result<String> {
    match name.schema() {
        None => Ok(name.table().to_string()),
        Some(s) if s == SCHEMA_NAME => Ok(name.table().to_string()),
        Some(s) => Err(Error::Unsupported(format!(
            "schema \"{s}\" (only \"{SCHEMA_NAME}\")"
        ))),
    }
}

/// Builds a batch in `def`'s schema from columns in table order, casting where types differ
/// and reporting NOT NULL violations clearly.
fn table_batch(def: &TableDef, cols: Vec<ArrayRef>) -> Result<RecordBatch> {
    let rows = cols.first().map_or(0, |c| c.len());
    let mut out = Vec::with_capacity(cols.len());
    for (field, col) in def.schema.fields().iter().zip(cols) {
        if !field.is_nullable() && col.null_count() > 0 {
            return Err(Error::Constraint(format!(
                "NULL value in column \"{}\" of table \"{}\" violates NOT NULL",
                field.name(),
                def.name
            )));
        }
        out.push(if col.data_type() == field.data_type() {
            col
        } else {
            cast(&col, field.data_type())?
        });
    }
    Ok(RecordBatch::try_new_with_options(
        def.schema_ref(),
        out,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

/// Checks and appends rows produced by a query (in table column order).
fn insert_batches(w: &Mutex<WriteTxn>, def: &TableDef, batches: Vec<RecordBatch>) -> Result<usize> {
    let batches = batches
        .into_iter()
        .map(|b| table_batch(def, b.columns().to_vec()))
        .collect::<Result<Vec<_>>>()?;
    let all = concat_batches(&def.schema_ref(), &batches)?;
    let n = all.num_rows();
    if n == 0 {
        return Ok(0);
    }
    let mut wl = w.lock();
    let keys = wl.check_insert(def, &all, &HashSet::new())?;
    wl.append(def, all, &keys)?;
    Ok(n)
}

/// Splits UPDATE/DELETE input (table columns + row id column) into row ids and new rows.
fn split_row_ids(def: &TableDef, batches: Vec<RecordBatch>) -> Result<(Vec<RowId>, RecordBatch)> {
    let mut ids = Vec::new();
    let mut rows = Vec::with_capacity(batches.len());
    let n = def.schema.fields().len();
    for b in batches {
        let idx = b
            .schema()
            .index_of(ROW_ID_COLUMN)
            .map_err(|_| Error::Sql("internal: row id column missing from DML input".into()))?;
        let col = b
            .column(idx)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .ok_or_else(|| Error::Sql("internal: row id column has the wrong type".into()))?;
        ids.extend(col.values().iter().copied());
        let cols: Vec<ArrayRef> = (0..b.num_columns())
            .filter(|&i| i != idx)
            .take(n)
            .map(|i| b.column(i).clone())
            .collect();
        rows.push(table_batch(def, cols)?);
    }
    let all = concat_batches(&def.schema_ref(), &rows)?;
    // A row can appear twice when a join in the filter matches it twice; write it once.
    let mut seen = HashSet::with_capacity(ids.len());
    let keep: Vec<bool> = ids.iter().map(|id| seen.insert(*id)).collect();
    if keep.iter().all(|k| *k) {
        return Ok((ids, all));
    }
    let mask = arrow::array::BooleanArray::from(keep.clone());
    let all = arrow::compute::filter_record_batch(&all, &mask)?;
    let ids = ids
        .into_iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(id, _)| id)
        .collect();
    Ok((ids, all))
}

/// The encoded primary keys of the stored rows `ids` (empty when the table has no key).
fn old_keys(w: &WriteTxn, def: &TableDef, ids: &[RowId]) -> Result<Vec<Vec<u8>>> {
    if def.primary_key.is_empty() || ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = w.fetch(def, ids)?;
    encode_keys(def, &rows)
}

async fn collect(df: DataFrame) -> Result<ResultSet> {
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    let schema = batches.first().map(|b| b.schema()).unwrap_or(schema);
    Ok(ResultSet {
        schema,
        batches,
        rows_affected: None,
    })
}

#[allow(dead_code)]
fn assert_send(c: &Connection) {
    fn is<T: Send>(_: T) {}
    is(c.execute_async("SELECT 1"));
    let _ = |a: &dyn Any| a.type_id();
}
