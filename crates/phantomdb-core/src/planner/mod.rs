//! Statement → logical plan, against the snapshot or write transaction a statement runs in.
//!
//! A [`Planner`] belongs to one connection: it holds the connection's DataFusion context and
//! the schema provider through which DataFusion resolves table names. While a statement is
//! planned (and executed), the provider answers from that statement's [`StatementContext`]:
//! its data view, its registry snapshot and its engine transactions.

mod duplicates;
mod execution;
mod names;
mod output_names;
pub(crate) mod plan_form;
mod processors;
pub(crate) mod schema;
mod series;
mod subquery;
mod values;

use std::sync::Arc;

use datafusion::catalog::MemoryCatalogProvider;
use datafusion::execution::context::{SessionConfig, SessionContext, SessionState};
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

pub(crate) use duplicates::{visible_schema, with_visible_names};
pub(crate) use names::{dml_target, is_write, local_name, object_name};
pub(crate) use schema::{PhantomSchema, StatementContext};

use crate::engines::redb::DataView;
use crate::engines::StatementTxns;
use crate::error::{Error, Result};
use crate::plugins::tables::{
    AuthProvidersTable, FunctionsTable, PluginsTable, QueryProcessorsTable, StorageEnginesTable,
};
use crate::plugins::{PluginManager, Registry};
use crate::privileges::{check_plan, Actor};
use crate::provider::inline_views;
use crate::statistics::ColumnStatisticsTable;
use crate::system::{CheckTable, ColumnsTable, RolesTable, TablesTable, ViewsTable};
use crate::table::TableRole;

/// The catalog name every connection uses.
pub const CATALOG_NAME: &str = "phantomdb";
/// The default schema.
pub const SCHEMA_NAME: &str = "public";

/// The key range under which a hash join uses a perfect (array) hash table.
const PERFECT_HASH_JOIN_KEY_RANGE: usize = 262_144;

/// Plans statements for one connection, and evaluates the constant expressions DDL needs.
pub(crate) struct Planner {
    ctx: SessionContext,
    schema: PhantomSchema,
    plugins: Arc<PluginManager>,
    /// The user the connection runs as; its privileges are looked up per statement.
    user: String,
    /// The sequence values this connection took (`currval`, `lastval`).
    sequences: Arc<crate::constraints::SessionSequences>,
    /// The database name and the session's settings, for query processors.
    session_source: std::sync::OnceLock<SessionSource>,
    /// The query processors that changed the last plan (`name (stage)`), for EXPLAIN.
    changed: parking_lot::Mutex<processors::Changed>,
    /// Where plans that need no further analysis run.
    analyzed_plan_session: execution::AnalyzedPlanSession,
}

/// Reads the database name and the session's settings when a statement is planned.
pub(crate) type SessionSource = Arc<dyn Fn() -> (String, Vec<(String, String)>) + Send + Sync>;

/// Keeps a statement's context current until dropped (when the statement ends, however it
/// ends).
pub(crate) struct PlanGuard<'a> {
    schema: &'a PhantomSchema,
    /// Whether the plan is analyzed already (so running it need not analyze it again).
    analyzed: bool,
}

impl PlanGuard<'_> {
    /// The plugin pins of the statement, for a result stream that outlives planning.
    pub(crate) fn pins(&self) -> Vec<crate::plugins::StatementPin> {
        self.schema
            .context()
            .map(|c| c.pins.clone())
            .unwrap_or_default()
    }
}

impl Drop for PlanGuard<'_> {
    fn drop(&mut self) {
        self.schema.clear();
    }
}

impl Planner {
    /// A planner with PhantomDB's catalog and system table functions registered, planning
    /// for `user`.
    pub(crate) fn new(
        plugins: Arc<PluginManager>,
        runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
        user: &str,
    ) -> Result<Self> {
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema(CATALOG_NAME, SCHEMA_NAME)
            .with_create_default_catalog_and_schema(false);
        // A hash join whose build keys span fewer than 256K values probes an array instead
        // of a hash table (at most a few MB). TPC-H q17 at SF1: 562 -> 111 ms, the other
        // queries within noise (bench/results/DIAGNOSIS.md, round 7).
        config
            .options_mut()
            .execution
            .perfect_hash_join_small_build_threshold = PERFECT_HASH_JOIN_KEY_RANGE;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        ctx.add_analyzer_rule(Arc::new(subquery::UnnestSubqueries));
        for name in crate::plugins::PLUGIN_PROVIDED_FUNCTIONS {
            ctx.deregister_udf(name);
        }
        for (name, include_end) in [("generate_series", true), ("range", false)] {
            if let Some(inner) = ctx.state().table_functions().get(name) {
                let counted = series::CountedSeries {
                    inner: inner.function().clone(),
                    include_end,
                };
                ctx.register_udtf(name, Arc::new(counted));
            }
        }
        ctx.register_udtf("phantomdb_plugins", Arc::new(PluginsTable(plugins.clone())));
        ctx.register_udtf(
            "phantomdb_functions",
            Arc::new(FunctionsTable(plugins.clone())),
        );
        ctx.register_udtf(
            "phantomdb_storage_engines",
            Arc::new(StorageEnginesTable(plugins.clone())),
        );
        ctx.register_udtf(
            "phantomdb_auth_providers",
            Arc::new(AuthProvidersTable(plugins.clone())),
        );
        ctx.register_udtf(
            "phantomdb_query_processors",
            Arc::new(QueryProcessorsTable(plugins.clone())),
        );
        ctx.register_udtf(
            "phantomdb_types",
            Arc::new(crate::plugins::tables::TypesTable(plugins.clone())),
        );
        let schema = PhantomSchema::default();
        ctx.register_udtf("phantomdb_tables", Arc::new(TablesTable(schema.clone())));
        ctx.register_udtf("phantomdb_check", Arc::new(CheckTable(schema.clone())));
        ctx.register_udtf("phantomdb_columns", Arc::new(ColumnsTable(schema.clone())));
        ctx.register_udtf("phantomdb_views", Arc::new(ViewsTable(schema.clone())));
        let indexes = crate::system::IndexesTable(schema.clone());
        ctx.register_udtf("phantomdb_indexes", Arc::new(indexes));
        let constraints = crate::system::ConstraintsTable(schema.clone());
        ctx.register_udtf("phantomdb_constraints", Arc::new(constraints));
        let roles = RolesTable(schema.clone(), user.to_string());
        ctx.register_udtf("phantomdb_roles", Arc::new(roles));
        let statistics = ColumnStatisticsTable(schema.clone(), user.to_string());
        ctx.register_udtf("phantomdb_column_statistics", Arc::new(statistics));
        let catalog = MemoryCatalogProvider::new();
        datafusion::catalog::CatalogProvider::register_schema(
            &catalog,
            SCHEMA_NAME,
            Arc::new(schema.clone()),
        )?;
        crate::pg_catalog::install(&ctx, &catalog, &schema)?;
        ctx.register_catalog(CATALOG_NAME, Arc::new(catalog));
        let sequences = Arc::new(crate::constraints::SessionSequences::default());
        crate::constraints::register_functions(&ctx, &sequences);
        Ok(Self {
            ctx,
            schema,
            plugins,
            user: user.to_string(),
            sequences,
            session_source: std::sync::OnceLock::new(),
            changed: parking_lot::Mutex::new(Vec::new()),
            analyzed_plan_session: execution::AnalyzedPlanSession::default(),
        })
    }

    /// The sequence values this connection took.
    pub(crate) fn sequences(&self) -> &Arc<crate::constraints::SessionSequences> {
        &self.sequences
    }

    /// The user the connection runs as (the owner of what it creates).
    pub(crate) fn user(&self) -> &str {
        &self.user
    }

    /// The connection's user with its privileges as `catalog` (the statement's snapshot)
    /// records them.
    pub(crate) fn actor(&self, catalog: &crate::catalog::Catalog) -> Actor {
        Actor::resolve(&self.user, catalog)
    }

    /// Where query processors read the session's database and settings from (set once, by
    /// the connection).
    pub(crate) fn set_session_source(&self, source: SessionSource) {
        let _ = self.session_source.set(source);
    }

    /// The session as query processors see it.
    pub(crate) fn query_session(&self, superuser: bool) -> crate::plugins::query::Session {
        let (database, settings) = self.session_source.get().map(|s| s()).unwrap_or_default();
        crate::plugins::query::Session {
            user: self.user.clone(),
            database,
            superuser,
            settings: settings.into_iter().collect(),
        }
    }

    /// Whether a query processor in mode `fail` rewrites plans (then every statement must be
    /// planned: no fast path skips it).
    pub(crate) fn security_rewrites(&self) -> bool {
        processors::security_rewrites(&self.plugins.snapshot())
    }

    /// Refuses `what`, a write that does not go through planning (so no query processor sees
    /// it), while a processor in mode `fail` rewrites plans: it could write rows a security
    /// processor (row-level security) would refuse. 0A000.
    pub(crate) fn refuse_unplanned_write(&self, what: &str) -> Result<()> {
        let registry = self.plugins.snapshot();
        if !processors::security_rewrites(&registry) {
            return Ok(());
        }
        let names: Vec<String> = registry
            .query_processors()
            .into_iter()
            .filter(|p| p.processor.failure_mode() == crate::plugins::query::FailureMode::Fail)
            .map(|p| p.name.clone())
            .collect();
        Err(Error::Unsupported(format!(
            "{what} while query processor {} (mode fail) rewrites plans: it writes rows no \
             plan checks; use INSERT ... SELECT or UPDATE without FROM",
            names.join(", ")
        )))
    }

    /// The query processors that changed the plan of the last statement planned, as
    /// `name (stage)`.
    pub(crate) fn changed_by_processors(&self) -> Vec<String> {
        self.changed.lock().clone()
    }

    /// The DataFusion session behind this planner.
    pub(crate) fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// A copy of the session state (configuration, functions) for executing a plan.
    pub(crate) fn state(&self) -> SessionState {
        self.ctx.state()
    }

    /// The plugin manager (loading, unloading, the registry).
    pub(crate) fn plugins(&self) -> &Arc<PluginManager> {
        &self.plugins
    }

    /// The registry snapshot of the statement being run (the one it was planned with, so its
    /// executor sees the engines its plan saw), or the current one outside a statement.
    pub(crate) fn registry(&self) -> Arc<Registry> {
        match self.schema.context() {
            Some(statement) => statement.registry.clone(),
            None => self.plugins.snapshot(),
        }
    }

    /// Plans `stmt` in the statement's transactions and checks the privileges the plan needs.
    /// The returned guard keeps the transactions current until dropped.
    pub(crate) async fn plan(
        &self,
        txns: StatementTxns,
        stmt: DfStatement,
        target: Option<(String, TableRole)>,
    ) -> Result<(LogicalPlan, PlanGuard<'_>)> {
        let mut state = self.ctx.state();
        let (registry, pins) = self.plugins.apply(&mut state)?;
        let processors_registry = registry.clone();
        check_tables_exist(&state, txns.view.as_ref(), &stmt)?;
        let catalog = txns.view.catalog();
        // What INSERT/UPDATE assign to custom-typed columns, as casts to the type (#14).
        let stmt = crate::types::assign::type_assignments(stmt, &catalog, &processors_registry);
        self.schema.set(StatementContext {
            pins,
            txns,
            registry,
            target,
            state: state.clone(),
        });
        let mut guard = PlanGuard {
            schema: &self.schema,
            analyzed: false,
        };
        let names = output_names::OutputNames::of(&stmt);
        let retry = duplicates::may_collide(&stmt).then(|| stmt.clone());
        let plan = match state.statement_to_plan(stmt).await {
            Ok(plan) => plan,
            Err(e) => match retry {
                Some(stmt) if duplicates::is_duplicate_error(&e) => state
                    .statement_to_plan(duplicates::rename_apart(stmt))
                    .await
                    .map_err(duplicates::explain_error)?,
                _ => return Err(e.into()),
            },
        };
        check_plan(&plan, &self.actor(&catalog), &catalog)?;
        let plan = crate::types::rewrite::rewrite(inline_views(plan)?, &processors_registry)?;
        let plan = names.apply(plan)?;
        let plan = crate::types::rewrite::format_results(plan, &processors_registry)?;
        let session = || {
            let superuser = self.actor(&catalog).check_superuser("").is_ok();
            self.query_session(superuser)
        };
        let rewritten = processors::rewrite(&state, plan, session, &processors_registry)?;
        *self.changed.lock() = rewritten.changed;
        guard.analyzed = rewritten.analyzed;
        Ok((rewritten.plan, guard))
    }

    /// Starts running a plan [`Planner::plan`] returned (`guard` is its guard; a plan changed
    /// since, e.g. by binding parameters, goes to [`SessionContext::execute_logical_plan`]).
    pub(crate) async fn execute(
        &self,
        plan: LogicalPlan,
        guard: &PlanGuard<'_>,
    ) -> Result<datafusion::dataframe::DataFrame> {
        if guard.analyzed {
            let state = self.analyzed_plan_session.state(&self.ctx);
            return Ok(datafusion::dataframe::DataFrame::new(state, plan));
        }
        Ok(self.ctx.execute_logical_plan(plan).await?)
    }
}

/// Reports a query or DML statement that reads a table this database does not have as
/// `42P01` (DataFusion would report it as a generic planning error). Table functions, CTEs
/// and other schemas (information_schema) are left to DataFusion.
fn check_tables_exist(state: &SessionState, view: &dyn DataView, stmt: &DfStatement) -> Result<()> {
    let DfStatement::Statement(s) = stmt else {
        return Ok(());
    };
    let s = match s.as_ref() {
        SqlStatement::Prepare { statement, .. } => statement.as_ref(),
        other => other,
    };
    if !matches!(
        s,
        SqlStatement::Query(_)
            | SqlStatement::Insert(_)
            | SqlStatement::Update(_)
            | SqlStatement::Delete(_)
    ) {
        return Ok(());
    }
    let catalog = view.catalog();
    let functions = state.table_functions();
    for r in state.resolve_table_references(stmt)? {
        let ours = match (r.catalog(), r.schema()) {
            (None, None) => true,
            (None, Some(s)) => s == SCHEMA_NAME,
            (Some(c), Some(s)) => c == CATALOG_NAME && s == SCHEMA_NAME,
            _ => false,
        };
        let name = r.table();
        if ours && catalog.get(name).is_none() && !functions.contains_key(name) {
            return Err(Error::undefined_table(name));
        }
    }
    Ok(())
}
