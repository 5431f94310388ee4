//! The session's side of query processors: `on_statement` before a statement is planned
//! (an `Err` refuses it with 42501, whether the processor said no or failed: statement hooks
//! are firewalls and fail closed; a panic of a linked-in processor follows its failure mode) and `on_query_end` when it ended, also when it failed to
//! parse. Rewrites happen in the planner (`planner/processors.rs`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::Connection;
use crate::error::{Error, Result, SqlState};
use crate::plugins::query::{FailureMode, QueryEnd, QueryError, QueryProcessorInfo, Session};

/// A statement's start, for its `on_query_end`.
pub(super) struct Started {
    at: SystemTime,
    clock: Instant,
}

impl Started {
    pub(super) fn now() -> Self {
        Self {
            at: SystemTime::now(),
            clock: Instant::now(),
        }
    }
}

impl Connection {
    /// The processors with session hooks (`on_statement`, `on_query_end`), in order.
    pub(super) fn hook_processors(&self) -> Vec<QueryProcessorInfo> {
        let registry = self.planner.plugins().snapshot();
        registry
            .query_processors()
            .into_iter()
            .filter(|p| {
                let h = p.processor.hooks();
                h.on_statement || h.on_query_end
            })
            .cloned()
            .collect()
    }

    /// The session as processors see it.
    async fn processor_session(&self) -> Session {
        let superuser = match self.catalog().await {
            Ok(catalog) => self.planner.actor(&catalog).check_superuser("").is_ok(),
            Err(_) => false,
        };
        self.planner.query_session(superuser)
    }

    /// Runs every `on_statement` hook: a rejection fails the statement (42501); a processor
    /// that fails does so too in mode `fail`, and is passed over in mode `skip`.
    pub(super) async fn statement_hooks(
        &self,
        processors: &[QueryProcessorInfo],
        sql: &str,
    ) -> Result<()> {
        if !processors.iter().any(|p| p.processor.hooks().on_statement) {
            return Ok(());
        }
        let session = self.processor_session().await;
        for p in processors
            .iter()
            .filter(|p| p.processor.hooks().on_statement)
        {
            let outcome =
                catch_unwind(AssertUnwindSafe(|| p.processor.on_statement(sql, &session)))
                    .map_err(|_| "it panicked".to_string());
            match outcome {
                Ok(Ok(())) => {}
                // A refusal (or a failure the processor reports): the statement is refused.
                Ok(Err(reason)) => {
                    return Err(Error::PermissionDenied(format!(
                        "statement rejected by query processor {}: {reason}",
                        p.name
                    )))
                }
                Err(reason) => match p.processor.failure_mode() {
                    FailureMode::Fail => {
                        return Err(Error::Plugin(
                            SqlState::ExternalRoutineException,
                            format!("query processor {} failed: {reason}", p.name),
                        ))
                    }
                    FailureMode::Skip => {
                        tracing::warn!(processor = %p.name, "on_statement failed: {reason}")
                    }
                },
            }
        }
        Ok(())
    }

    /// Runs every `on_query_end` hook (failures are logged: the statement is over).
    pub(super) async fn query_end_hooks(
        &self,
        processors: &[QueryProcessorInfo],
        sql: &str,
        started: Started,
        outcome: std::result::Result<Option<u64>, &Error>,
    ) {
        if !processors.iter().any(|p| p.processor.hooks().on_query_end) {
            return;
        }
        QueryEndHook {
            processors: processors.to_vec(),
            session: self.processor_session().await,
            sql: sql.to_string(),
            started,
        }
        .fire(outcome);
    }

    /// A statement starts: runs its `on_statement` hooks and returns what its end needs
    /// (`None` when no processor has session hooks). `sql` is called only when one has. A
    /// refused statement has had its `on_query_end` already.
    pub(super) async fn start_statement(
        &self,
        sql: impl FnOnce() -> String,
    ) -> Result<Option<QueryEndHook>> {
        let processors = self.hook_processors();
        if processors.is_empty() {
            return Ok(None);
        }
        let started = Started::now();
        let sql = sql();
        if let Err(e) = self.statement_hooks(&processors, &sql).await {
            self.query_end_hooks(&processors, &sql, started, Err(&e))
                .await;
            return Err(e);
        }
        Ok(Some(QueryEndHook {
            session: self.processor_session().await,
            processors,
            sql,
            started,
        }))
    }

    /// Parses `sql`; a script that does not parse is reported to `on_query_end` hooks.
    pub(super) async fn parse_hooked(&self, sql: &str) -> Result<Vec<crate::sql::Statement>> {
        let started = Started::now();
        match crate::sql::parse(sql) {
            Ok(statements) => Ok(statements),
            Err(e) => {
                let processors = self.hook_processors();
                self.query_end_hooks(&processors, sql.trim(), started, Err(&e))
                    .await;
                Err(e)
            }
        }
    }
}

/// What `on_query_end` needs of a statement that started: fired once, when it ends (for a
/// stream: when its rows end, fail, or the stream is dropped).
pub(crate) struct QueryEndHook {
    processors: Vec<QueryProcessorInfo>,
    session: Session,
    sql: String,
    started: Started,
}

impl QueryEndHook {
    /// Calls every `on_query_end` hook (failures are logged: the statement is over).
    pub(crate) fn fire(self, outcome: std::result::Result<Option<u64>, &Error>) {
        if !self
            .processors
            .iter()
            .any(|p| p.processor.hooks().on_query_end)
        {
            return;
        }
        let duration_us = self.started.clock.elapsed().as_micros() as u64;
        let (rows, error) = match outcome {
            Ok(rows) => (rows, None),
            Err(e) => (
                None,
                Some(QueryError {
                    sqlstate: e.sqlstate().code().to_string(),
                    message: e.to_string(),
                }),
            ),
        };
        let end = QueryEnd {
            sql: self.sql,
            session: self.session,
            started_at_us: self
                .started
                .at
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or_default(),
            duration_us,
            rows,
            error,
        };
        for p in self
            .processors
            .iter()
            .filter(|p| p.processor.hooks().on_query_end)
        {
            let outcome = catch_unwind(AssertUnwindSafe(|| p.processor.on_query_end(&end)))
                .map_err(|_| "it panicked".to_string());
            if let Err(reason) | Ok(Err(reason)) = outcome {
                tracing::warn!(processor = %p.name, "on_query_end failed: {reason}");
            }
        }
    }
}

/// A started statement's stream with its end hook attached (or, when it failed to start,
/// the hook fired with the error).
pub(super) fn hooked_stream(
    hook: Option<QueryEndHook>,
    result: Result<super::ResultStream>,
) -> Result<super::ResultStream> {
    match (hook, result) {
        (None, result) => result,
        (Some(hook), Err(e)) => {
            hook.fire(Err(&e));
            Err(e)
        }
        (Some(hook), Ok(stream)) => Ok(stream.with_end_hook(hook)),
    }
}

/// The text of a statement for `on_statement` and `on_query_end`.
pub(super) fn statement_text(stmt: &crate::sql::Statement) -> String {
    use crate::sql::Statement;
    match stmt {
        Statement::DataFusion(df) => df.to_string(),
        Statement::LoadPlugin(path) => format!("LOAD PLUGIN '{}'", path.replace('\'', "''")),
        Statement::UnloadPlugin(name) => format!("UNLOAD PLUGIN {name}"),
        Statement::Reindex(r) => r.to_string(),
        Statement::ShowPlugins => "SHOW PLUGINS".into(),
        Statement::SetDefaultEngine(e) => {
            format!(
                "SET default_table_access_method = '{}'",
                e.replace('\'', "''")
            )
        }
        Statement::CreateTableUsing(c) => match &c.engine {
            Some(engine) => format!("{} USING {engine}", c.statement),
            None => c.statement.to_string(),
        },
        Statement::CopyFrom(c) => {
            let columns = if c.columns.is_empty() {
                String::new()
            } else {
                format!(" ({})", c.columns.join(", "))
            };
            format!(
                "COPY {}{columns} FROM '{}'",
                c.table,
                c.path.replace('\'', "''")
            )
        }
    }
}

/// An EXPLAIN result with a `query_processors` row naming the processors that changed the
/// plan (`name (stage)`), when any did.
pub(super) fn explain_with_processors(
    mut result: crate::result::ResultSet,
    changed: &[String],
) -> Result<crate::result::ResultSet> {
    use arrow::array::{ArrayRef, StringArray};
    if changed.is_empty() || result.schema.fields().len() != 2 {
        return Ok(result);
    }
    let columns: Vec<ArrayRef> = vec![
        std::sync::Arc::new(StringArray::from(vec!["query_processors"])),
        std::sync::Arc::new(StringArray::from(vec![format!(
            "changed by: {}",
            changed.join(", ")
        )])),
    ];
    let columns = columns
        .into_iter()
        .zip(result.schema.fields())
        .map(|(c, f)| arrow::compute::cast(&c, f.data_type()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let batch = arrow::array::RecordBatch::try_new(result.schema.clone(), columns)?;
    result.batches.push(batch);
    Ok(result)
}

impl Connection {
    /// Runs a query through the plan form: planned, analyzed (and optimized when
    /// `optimized`), converted to the form, to JSON and back, converted back to a plan
    /// (checked like a processor's answer) and executed. For tests of the plan form's round
    /// trip; the results must equal [`Connection::execute_async`]'s.
    #[doc(hidden)]
    pub fn execute_through_plan_form(
        &self,
        sql: &str,
        optimized: bool,
    ) -> Result<crate::result::ResultSet> {
        crate::shared::runtime().block_on(self.through_plan_form(sql, optimized))
    }

    async fn through_plan_form(
        &self,
        sql: &str,
        optimized: bool,
    ) -> Result<crate::result::ResultSet> {
        use crate::planner::plan_form::{check_output, from_form, to_form};
        let mut statements = crate::sql::parse(sql)?;
        let Some(crate::sql::Statement::DataFusion(stmt)) = statements.pop() else {
            return Err(Error::Unsupported(
                "only queries go through the plan form".into(),
            ));
        };
        let read = self.txn.read().await?;
        let result = async {
            let (plan, _guard) = self.planner.plan(read.txns(), *stmt, None).await?;
            let state = self.planner.state();
            let mut plan =
                state
                    .analyzer()
                    .execute_and_check(plan, state.config_options(), |_, _| {})?;
            if optimized {
                plan = state.optimizer().optimize(plan, &state, |_, _| {})?;
            }
            let (form, handles) = to_form(&plan);
            let json = serde_json::to_string(&form).map_err(|e| Error::Sql(e.to_string()))?;
            let back: phantomdb_plugin_sdk::plan::Plan =
                serde_json::from_str(&json).map_err(|e| Error::Sql(e.to_string()))?;
            if back != form {
                return Err(Error::Sql("the plan form changed through JSON".into()));
            }
            let rebuilt = from_form(&back, &handles, &state).map_err(Error::Sql)?;
            check_output(plan.schema(), rebuilt.schema()).map_err(Error::Sql)?;
            let df = self.planner.context().execute_logical_plan(rebuilt).await?;
            crate::result::ResultSet::collect(df).await
        }
        .await;
        self.txn.end_read(read, result.is_ok())?;
        result
    }
}
