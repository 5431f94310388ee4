//! [`Connection`]: a session with a database. It owns its transaction state, its planner and
//! its prepared statements, and sends each statement to its executor in one line.

mod appender;
mod cancel;
mod functions;
mod prepared;
mod processors;
mod set;
mod settings;
mod statement;
mod stream;
mod txn;

pub use appender::Appender;
pub use cancel::CancelHandle;
pub use settings::parse_duration;
pub use statement::{PreparedStatement, StatementDescription};
pub use stream::ResultStream;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::{ResetStatement, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{ObjectType, Set, Statement as SqlStatement};
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::exec::{self, CopyFile, StorageClause, WriteScope};
use crate::planner::{dml_target, is_write, object_name, Planner};
use crate::result::ResultSet;
use crate::shared::{runtime, DatabaseShared};
use crate::sql::{normalize_ident, CopyFrom, Statement};
use crate::table::TableRole;
use prepared::PreparedEntry;
use set::{name_parts, own_setting};
use settings::SessionSettings;
use txn::Transactions;

pub use crate::privileges::grants::DEFAULT_USER;

/// A session with a PhantomDB database. Cheap to create; use one per thread or task.
///
/// Statements on one connection run one at a time; connections run concurrently, with
/// snapshot reads and a single writer at a time.
pub struct Connection {
    /// Keeps the database (its store and plugins) open while the connection lives.
    _database: Arc<DatabaseShared>,
    planner: Planner,
    txn: Transactions,
    /// `PREPARE`d statements by name. Each `EXECUTE` plans the statement again against the
    /// current snapshot (a plan keeps the table snapshot it was planned with).
    prepared: Mutex<HashMap<String, Arc<PreparedEntry>>>,
    settings: SessionSettings,
    user: String,
    cancel: CancelHandle,
    /// The session's share of the process memory pool (`memory_limit`; 0: no cap).
    memory_cap: crate::memory::SessionCap,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) fn new(shared: Arc<DatabaseShared>, user: &str) -> Result<Self> {
        let memory_cap = crate::memory::SessionCap::default();
        let runtime = crate::memory::session_runtime(memory_cap.clone())?;
        let planner = Planner::new(shared.plugins.clone(), runtime, user)?;
        let settings = SessionSettings::default();
        functions::register(planner.context(), settings.clone(), user, &shared.name());
        let (reader, database) = (settings.clone(), shared.name());
        planner.set_session_source(std::sync::Arc::new(move || {
            (database.clone(), reader.all())
        }));
        Ok(Self {
            planner,
            txn: Transactions::new(shared.store.clone()),
            prepared: Mutex::new(HashMap::new()),
            settings,
            user: user.to_string(),
            cancel: CancelHandle::default(),
            memory_cap,
            _database: shared,
        })
    }

    /// A handle that cancels this connection's running statement from another thread (it
    /// fails with SQLSTATE 57014 and its writes are rolled back).
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// What may interrupt a statement starting now: a cancel request, or `statement_timeout`.
    fn interrupt(&self) -> cancel::Interrupt {
        let timeout = self
            .settings
            .get("statement_timeout")
            .and_then(|ms| ms.parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis);
        self.cancel.interrupt(timeout)
    }

    /// The user this connection runs as (`current_user`).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The value of a session setting (PhantomDB's or a custom key such as `app.tenant`), as
    /// `current_setting(name)` returns it; `None` when it is not set.
    pub fn setting(&self, name: &str) -> Option<String> {
        self.settings.get(name)
    }

    /// The DataFusion session behind this connection (to register functions and the like).
    pub fn session(&self) -> &SessionContext {
        self.planner.context()
    }

    /// How long a write waits for another connection's transaction to finish.
    pub fn set_busy_timeout(&mut self, timeout: Duration) {
        // Kept in the `busy_timeout` setting too, so SHOW reports what is in force.
        let _ = self
            .settings
            .set("busy_timeout", &timeout.as_millis().to_string());
        self.txn.set_busy_timeout(timeout);
    }

    /// Whether an explicit transaction is open.
    pub async fn in_transaction(&self) -> bool {
        self.txn.in_transaction().await
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
        runtime().block_on(self.execute_async(sql))
    }

    /// Runs one or more `;`-separated statements and returns the result of the last one.
    ///
    /// Query processors' session hooks (`on_statement`, `on_query_end`) run around each
    /// statement, and `on_query_end` also for a script that does not parse.
    pub async fn execute_async(&self, sql: &str) -> Result<ResultSet> {
        let statements = self.parse_hooked(sql).await?;
        let single = statements.len() == 1;
        let mut last = ResultSet::empty();
        for stmt in statements {
            let text = |stmt: &Statement| {
                if single {
                    sql.trim().to_string()
                } else {
                    processors::statement_text(stmt)
                }
            };
            last = self.run_hooked(stmt, text).await?;
        }
        Ok(last)
    }

    /// Parses `sql` into statements for [`Connection::execute_statement`] and
    /// [`Connection::execute_statement_stream`] (as [`crate::parse`] does); a script that
    /// does not parse is reported to query processors' `on_query_end` hooks, as
    /// [`Connection::execute_async`] reports it.
    pub async fn parse(&self, sql: &str) -> Result<Vec<Statement>> {
        self.parse_hooked(sql).await
    }

    /// Runs one statement with query processors' session hooks around it.
    async fn run_hooked(
        &self,
        stmt: Statement,
        text: impl FnOnce(&Statement) -> String,
    ) -> Result<ResultSet> {
        let Some(hook) = self.start_statement(|| text(&stmt)).await? else {
            return self.run(stmt).await;
        };
        let result = self.run(stmt).await;
        hook.fire(match &result {
            Ok(r) => Ok(Some(r.rows_affected.unwrap_or_else(|| r.num_rows()) as u64)),
            Err(e) => Err(e),
        });
        result
    }

    /// Runs one or more `;`-separated statements and streams the rows of the last one as
    /// they are produced (queries run incrementally; other statements run to the end first).
    pub async fn execute_stream_async(&self, sql: &str) -> Result<ResultStream> {
        let mut statements = self.parse_hooked(sql).await?;
        let Some(last) = statements.pop() else {
            return Ok(ResultStream::ready(ResultSet::empty()));
        };
        for stmt in statements {
            self.run_hooked(stmt, processors::statement_text).await?;
        }
        self.execute_statement_stream(last).await
    }

    /// Runs one statement parsed with [`crate::sql::parse`] and streams its rows. Query
    /// processors' `on_query_end` hooks run when the stream ends (or is dropped).
    pub async fn execute_statement_stream(&self, stmt: Statement) -> Result<ResultStream> {
        let hook = self
            .start_statement(|| processors::statement_text(&stmt))
            .await?;
        let result = match stmt {
            Statement::DataFusion(df) if is_query(&df) && !calls_nextval(&df) => {
                self.query_stream(*df).await
            }
            other => self.run(other).await.map(ResultStream::ready),
        };
        processors::hooked_stream(hook, result)
    }

    /// Blocking form of [`Connection::execute_stream_async`]; read the stream with
    /// [`ResultStream::next_batch`].
    pub fn execute_stream(&self, sql: &str) -> Result<ResultStream> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Unsupported(
                "Connection::execute_stream blocks; inside an async runtime call execute_stream_async"
                    .into(),
            ));
        }
        runtime().block_on(self.execute_stream_async(sql))
    }

    /// Runs one statement parsed with [`crate::sql::parse`] (with query processors' session
    /// hooks around it).
    pub async fn execute_statement(&self, stmt: Statement) -> Result<ResultSet> {
        self.run_hooked(stmt, processors::statement_text).await
    }

    /// Loads a file the caller wrote with data its client sent, as `COPY table [(columns)]
    /// FROM 'file' WITH (...)` would, for the network server's `COPY ... FROM STDIN`. The
    /// connection's role needs INSERT on the table, like any COPY FROM; it need not be a
    /// superuser, which SQL's `COPY ... FROM 'file'` requires (that reads files of the server,
    /// named by the client). Build `copy` by parsing that statement ([`crate::parse`]) and
    /// never let a client choose `copy.path`.
    pub async fn copy_from_client_file(&self, copy: CopyFrom) -> Result<ResultSet> {
        self.copy_from(copy, CopyFile::Client).await
    }

    /// Runs a COPY FROM in the write transaction.
    async fn copy_from(&self, copy: CopyFrom, file: CopyFile) -> Result<ResultSet> {
        self.planner.refuse_unplanned_write("COPY ... FROM")?;
        let p = &self.planner;
        self.write(|s| async move { exec::copy_from(p, &s, copy, file).await })
            .await
    }

    /// The catalog as this connection currently sees it.
    pub(crate) async fn catalog(&self) -> Result<Arc<crate::catalog::Catalog>> {
        let read = self.txn.read().await?;
        let catalog = read.view.catalog();
        self.txn.end_read(read, true)?;
        Ok(catalog)
    }

    /// Sends a statement to its executor.
    async fn run(&self, stmt: Statement) -> Result<ResultSet> {
        let p = &self.planner;
        match stmt {
            Statement::CopyFrom(copy) => self.copy_from(copy, CopyFile::Server).await,
            Statement::CreateTableUsing(c) => {
                let c = *c;
                let storage = Some((c.engine, c.options));
                self.write(|s| self.plan_write(s, c.statement, None, storage))
                    .await
            }
            Statement::SetDefaultEngine(e) => {
                self.write(|s| async move { exec::set_default_engine(p, &s, e) })
                    .await
            }
            Statement::LoadPlugin(path) => {
                self.require_superuser("LOAD PLUGIN").await?;
                exec::plugins::load_plugin(p.plugins(), path).await
            }
            Statement::UnloadPlugin(name) => {
                self.require_superuser("UNLOAD PLUGIN").await?;
                exec::plugins::unload_plugin(p.plugins(), &name).await
            }
            Statement::ShowPlugins => exec::plugins::show_plugins(p.plugins()),
            Statement::Reindex(r) => self.write(|w| async move { exec::reindex(p, &w, r) }).await,
            Statement::DataFusion(df) => self.run_sql(*df).await,
        }
    }

    /// Sends a statement of DataFusion's dialect to its executor.
    async fn run_sql(&self, stmt: DfStatement) -> Result<ResultSet> {
        if let DfStatement::Statement(s) = &stmt {
            match s.as_ref() {
                SqlStatement::StartTransaction { .. } => return self.txn.begin().await,
                SqlStatement::Commit { .. } => return self.txn.commit().await,
                SqlStatement::Rollback {
                    savepoint: None, ..
                } => return self.txn.rollback().await,
                SqlStatement::Prepare { .. } => return self.prepare_sql((**s).clone()).await,
                SqlStatement::Execute {
                    name: Some(name),
                    parameters,
                    ..
                } => return self.execute_sql(&object_name(name)?, parameters).await,
                SqlStatement::Deallocate { name, .. } => {
                    if name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all") {
                        self.prepared.lock().clear();
                        return Ok(ResultSet::empty());
                    }
                    return self.deallocate(&normalize_ident(name));
                }
                SqlStatement::Set(Set::SingleAssignment {
                    scope: None,
                    hivevar: false,
                    variable,
                    values,
                }) => {
                    if let Some(name) = own_setting(&name_parts(variable)) {
                        return self.set_setting(&name, values);
                    }
                }
                SqlStatement::ShowVariable { variable } => {
                    if let Some(name) = own_setting(variable) {
                        return self.show_setting(&name).await;
                    }
                }
                SqlStatement::CreateRole(_)
                | SqlStatement::AlterRole { .. }
                | SqlStatement::Grant(_)
                | SqlStatement::Revoke(_)
                | SqlStatement::Drop {
                    object_type: ObjectType::Role,
                    ..
                } => return self.access_control((**s).clone()).await,
                SqlStatement::Analyze(a) => {
                    let (a, p) = (a.clone(), &self.planner);
                    return self
                        .write(|w| async move { exec::analyze(p, &w, &a) })
                        .await;
                }
                SqlStatement::CreateIndex(c) => {
                    let c = c.clone();
                    let p = &self.planner;
                    return self
                        .write(|w| async move { exec::create_index(p, &w, c) })
                        .await;
                }
                SqlStatement::Drop {
                    object_type: ObjectType::Index,
                    names,
                    if_exists,
                    ..
                } => {
                    let (names, if_exists) = (names.clone(), *if_exists);
                    let p = &self.planner;
                    return self
                        .write(|w| async move { exec::drop_index(p, &w, names, if_exists) })
                        .await;
                }
                SqlStatement::Insert(insert) if exec::is_extended_insert(insert) => {
                    if exec::replaces_rows(insert) {
                        self.planner.refuse_unplanned_write(
                            "INSERT ... ON CONFLICT DO UPDATE or REPLACE",
                        )?;
                    }
                    let insert = insert.clone();
                    let p = &self.planner;
                    return self
                        .write(|w| async move { exec::insert_extended(p, &w, insert).await })
                        .await;
                }
                SqlStatement::Update(update) if exec::is_extended_update(update) => {
                    if update.from.is_some() {
                        self.planner.refuse_unplanned_write("UPDATE ... FROM")?;
                    }
                    let update = update.clone();
                    let p = &self.planner;
                    return self
                        .write(|w| async move { exec::update_extended(p, &w, update).await })
                        .await;
                }
                SqlStatement::Delete(delete) if exec::is_extended_delete(delete) => {
                    let delete = delete.clone();
                    let p = &self.planner;
                    return self
                        .write(|w| async move { exec::delete_extended(p, &w, delete).await })
                        .await;
                }
                SqlStatement::AlterTable(_) => {
                    let s = (**s).clone();
                    let p = &self.planner;
                    return self
                        .write(|w| async move { exec::alter_table(p, &w, s) })
                        .await;
                }
                _ => {}
            }
        }
        if let DfStatement::Reset(ResetStatement::Variable(variable)) = &stmt {
            if let Some(name) = own_setting(&name_parts(variable)) {
                return self.reset_setting(&name);
            }
        }
        if let DfStatement::CreateExternalTable(_) = stmt {
            return Err(Error::Unsupported(
                "CREATE EXTERNAL TABLE; create a table and load it with COPY t FROM 'file'".into(),
            ));
        }
        if !is_write(&stmt) && calls_nextval(&stmt) {
            // nextval takes its values in the write transaction.
            return self.write(|w| self.query_in_write(w, stmt)).await;
        }
        if is_write(&stmt) {
            let target = dml_target(&stmt);
            // `INSERT ... VALUES` of literals, however many rows: built as arrays, not planned
            // (unless a security processor must see the plan).
            let literal = match &stmt {
                _ if self.planner.security_rewrites() => None,
                DfStatement::Statement(s) => match s.as_ref() {
                    SqlStatement::Insert(insert) => crate::fastpath::literal_rows(insert),
                    _ => None,
                },
                _ => None,
            };
            self.write(|s| async move {
                if let Some(rows) = literal {
                    if let Some(n) = exec::insert_literal_rows(&self.planner, &s, rows)? {
                        return ResultSet::count(n);
                    }
                }
                self.plan_write(s, stmt, target, None).await
            })
            .await
        } else {
            self.query(stmt).await
        }
    }

    /// Sends CREATE/ALTER/DROP ROLE, GRANT and REVOKE to their executors, in the write
    /// transaction (roles and grants are catalog changes like any DDL).
    async fn access_control(&self, stmt: SqlStatement) -> Result<ResultSet> {
        let p = &self.planner;
        self.write(|w| async move {
            match stmt {
                SqlStatement::CreateRole(c) => exec::create_role(p, &w, c),
                SqlStatement::AlterRole { name, operation } => {
                    exec::alter_role(p, &w, name, operation)
                }
                SqlStatement::Drop {
                    names, if_exists, ..
                } => exec::drop_roles(p, &w, names, if_exists),
                SqlStatement::Grant(g) => exec::grant(p, &w, g),
                SqlStatement::Revoke(r) => exec::revoke(p, &w, r),
                other => Err(Error::Sql(format!("expected a role statement: {other}"))),
            }
        })
        .await
    }

    /// Fails with `42501` unless the connection's user is a superuser (as of now).
    async fn require_superuser(&self, what: &str) -> Result<()> {
        let catalog = self.catalog().await?;
        self.planner.actor(&catalog).check_superuser(what)
    }

    /// Runs a reading statement to the end.
    async fn query(&self, stmt: DfStatement) -> Result<ResultSet> {
        let read = self.txn.read().await?;
        let result = self
            .interrupt()
            .run(async {
                let (plan, guard) = self.planner.plan(read.txns(), stmt, None).await?;
                let explain = matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_));
                let df = self.planner.execute(plan, &guard).await?;
                let result = ResultSet::collect(df).await?;
                if explain {
                    let changed = self.planner.changed_by_processors();
                    return processors::explain_with_processors(result, &changed);
                }
                Ok(result)
            })
            .await;
        self.txn.end_read(read, result.is_ok())?;
        result
    }

    /// Runs a query in the write transaction (one that calls `nextval`).
    async fn query_in_write(&self, scope: WriteScope, stmt: DfStatement) -> Result<ResultSet> {
        let (plan, guard) = self.planner.plan(scope.txns(), stmt, None).await?;
        let df = self.planner.execute(plan, &guard).await?;
        ResultSet::collect(df).await
    }

    /// Starts a reading statement and returns its rows as a stream.
    async fn query_stream(&self, stmt: DfStatement) -> Result<ResultStream> {
        self.stream_read(stmt, Ok).await
    }

    /// Plans a reading statement (`bind` finishes the plan, e.g. binds parameters), starts
    /// it and returns its rows as a stream that holds the statement's snapshot.
    async fn stream_read(
        &self,
        stmt: DfStatement,
        bind: impl FnOnce(LogicalPlan) -> Result<LogicalPlan>,
    ) -> Result<ResultStream> {
        let read = self.txn.read().await?;
        let interrupt = self.interrupt();
        let started = interrupt
            .clone()
            .run(async {
                let (plan, guard) = self.planner.plan(read.txns(), stmt, None).await?;
                let plan = bind(plan)?;
                let explain = matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_));
                let changed = self.planner.changed_by_processors();
                let pins = guard.pins();
                let df = self.planner.execute(plan, &guard).await?;
                if explain && !changed.is_empty() {
                    let result = ResultSet::collect(df).await?;
                    let result = processors::explain_with_processors(result, &changed)?;
                    return Ok::<_, Error>(Err(result));
                }
                Ok::<_, Error>(Ok((df.execute_stream().await?, pins)))
            })
            .await;
        let started = match started {
            Ok(Err(ready)) => {
                self.txn.end_read(read, true)?;
                return Ok(ResultStream::ready(ready));
            }
            Ok(Ok(live)) => Ok(live),
            Err(e) => Err(e),
        };
        match started {
            Ok((stream, pins)) => {
                let end = self.txn.defer_read(read);
                Ok(ResultStream::live(stream, pins, end, interrupt))
            }
            Err(e) => {
                self.txn.end_read(read, false)?;
                Err(e)
            }
        }
    }

    /// Runs `body` in the write transaction: the open explicit one, or a new one that commits
    /// when `body` succeeds and rolls back when it fails. `body` gets its own handle on the
    /// scope, released when its future completes.
    async fn write<F, Fut>(&self, body: F) -> Result<ResultSet>
    where
        F: FnOnce(WriteScope) -> Fut,
        Fut: std::future::Future<Output = Result<ResultSet>>,
    {
        let interrupt = self.interrupt();
        let write = interrupt.clone().run(self.txn.write()).await?;
        let attached = self.planner.sequences().attach(&write.scope.w, self.user());
        // Interrupted, the statement fails like any other: its own transaction rolls back.
        let result = interrupt.run(body(write.scope.clone())).await;
        drop(attached);
        self.txn.end_write(write, result).await
    }

    /// Plans a writing statement (DDL or DML) in the write scope and applies it.
    async fn plan_write(
        &self,
        scope: WriteScope,
        stmt: DfStatement,
        target: Option<(String, TableRole)>,
        storage: Option<StorageClause>,
    ) -> Result<ResultSet> {
        let mut stmt = stmt;
        let extras = exec::take_table_extras(&mut stmt)?;
        let before = extras.as_ref().and_then(|e| exec::table_id(&scope, e));
        let (plan, guard) = self.planner.plan(scope.txns(), stmt, target).await?;
        let result = exec::apply_write(&self.planner, &scope, plan, storage).await?;
        drop(guard);
        if let Some(extras) = extras {
            exec::apply_table_extras(&self.planner, &scope, extras, before)?;
        }
        Ok(result)
    }
}

/// Whether a statement only reads and produces rows (so its rows can be streamed).
/// Whether a statement calls `nextval` (and so must run in the write transaction).
fn calls_nextval(stmt: &DfStatement) -> bool {
    matches!(stmt, DfStatement::Statement(s) if crate::constraints::calls_nextval(s))
}

fn is_query(stmt: &DfStatement) -> bool {
    match stmt {
        DfStatement::Statement(s) => matches!(s.as_ref(), SqlStatement::Query(_)),
        DfStatement::Explain(_) => true,
        _ => false,
    }
}
