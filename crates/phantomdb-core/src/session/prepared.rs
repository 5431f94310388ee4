//! `PREPARE`, `EXECUTE`, `DEALLOCATE`: prepared statements of a connection, with the fast
//! paths of [`crate::fastpath`] for key lookups and one-row inserts.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, Statement as SqlStatement};

use super::{Connection, ResultStream, StatementDescription};
use crate::error::{Error, Result, SqlState};
use crate::exec::{self, WriteScope};
use crate::fastpath::{self, FastPath, Resolved, ResolvedCache};
use crate::planner::{dml_target, is_write, Planner};
use crate::privileges::Privilege;
use crate::result::ResultSet;
use crate::sql::normalize_ident;
use crate::table::table_batch;
use crate::table::TableRole;

/// A prepared statement: the `PREPARE` statement, the fast path its shape allows and that
/// fast path's resolution (kept while the catalog and the registry are unchanged).
pub(crate) struct PreparedEntry {
    statement: SqlStatement,
    /// For a writing statement, its DML target (`Some(None)`: a write without one); `None`
    /// for a read. Worked out once, at `PREPARE`.
    write: Option<Option<(String, TableRole)>>,
    fast: Option<FastPath>,
    resolved: ResolvedCache,
}

impl Connection {
    /// `PREPARE name [(types)] AS statement`: checks that it plans, and keeps it.
    pub(super) async fn prepare_sql(&self, stmt: SqlStatement) -> Result<ResultSet> {
        self.prepare_entry(stmt).await?;
        Ok(ResultSet::empty())
    }

    /// Plans a `PREPARE` statement, keeps it under its name and describes it.
    pub(super) async fn prepare_entry(&self, stmt: SqlStatement) -> Result<StatementDescription> {
        let SqlStatement::Prepare {
            name, statement, ..
        } = &stmt
        else {
            return Err(Error::Sql("expected PREPARE".into()));
        };
        let name = normalize_ident(name);
        let inner = DfStatement::Statement(statement.clone());
        let writes = is_write(&inner);
        let write = writes.then(|| dml_target(&inner));
        let read = self.txn.read().await?;
        let planned = self
            .planner
            .plan(
                read.txns(),
                DfStatement::Statement(Box::new(stmt.clone())),
                None,
            )
            .await
            .and_then(|(plan, _guard)| describe(&plan, writes));
        self.txn.end_read(read, false)?;
        let description = planned?;
        let fast = fastpath::analyze(statement);
        self.prepared.lock().insert(
            name,
            Arc::new(PreparedEntry {
                statement: stmt,
                write,
                fast,
                resolved: ResolvedCache::default(),
            }),
        );
        Ok(description)
    }

    /// The text of the statement prepared under `name` (without `PREPARE`), for query
    /// processors' hooks.
    pub(super) fn prepared_text(&self, name: &str) -> String {
        match self.prepared.lock().get(name).map(|e| &e.statement) {
            Some(SqlStatement::Prepare { statement, .. }) => statement.to_string(),
            Some(other) => other.to_string(),
            None => format!("EXECUTE {name}"),
        }
    }

    /// `DEALLOCATE name`.
    pub(super) fn deallocate(&self, name: &str) -> Result<ResultSet> {
        if self.prepared.lock().remove(name).is_none() {
            return Err(unknown_prepared(name));
        }
        Ok(ResultSet::empty())
    }

    /// `EXECUTE name(values)`: evaluates the values and runs the prepared statement.
    pub(super) async fn execute_sql(&self, name: &str, params: &[SqlExpr]) -> Result<ResultSet> {
        let values = params
            .iter()
            .map(|e| match fastpath::literal(e) {
                Some(v) => Ok(v),
                None => self.planner.eval_scalar(&e.to_string()),
            })
            .collect::<Result<Vec<_>>>()?;
        self.execute_prepared(name, values).await
    }

    /// Runs prepared statement `name` with `values` bound and collects its rows.
    pub(super) async fn execute_prepared(
        &self,
        name: &str,
        values: Vec<ScalarValue>,
    ) -> Result<ResultSet> {
        self.execute_prepared_stream(name, values)
            .await?
            .collect()
            .await
    }

    /// Runs prepared statement `name` with `values` bound: through its fast path when the
    /// table still fits it, otherwise planned against the current snapshot (writes go through
    /// the write transaction like any DML). Reads stream their rows.
    pub(super) async fn execute_prepared_stream(
        &self,
        name: &str,
        values: Vec<ScalarValue>,
    ) -> Result<ResultStream> {
        let entry = self
            .prepared
            .lock()
            .get(name)
            .cloned()
            .ok_or_else(|| unknown_prepared(name))?;
        // A security processor must see every plan: no fast path while one is loaded.
        let fast = !self.planner.security_rewrites();
        if let (true, Some(FastPath::KeyLookup { .. }), [value]) =
            (fast, &entry.fast, values.as_slice())
        {
            if let Some(rs) = self.fast_lookup(&entry, value).await? {
                return Ok(ResultStream::ready(rs));
            }
        }
        if let Some(target) = entry.write.clone() {
            let p = &self.planner;
            return self
                .write(|scope| async move {
                    if fast {
                        if let Some(n) = fast_insert(p, &scope, &entry, &values)? {
                            return ResultSet::count(n);
                        }
                    }
                    let prepared = DfStatement::Statement(Box::new(entry.statement.clone()));
                    let (plan, _guard) = p.plan(scope.txns(), prepared, target).await?;
                    let plan = bind_parameters(plan, values)?;
                    exec::apply_write(p, &scope, plan, None).await
                })
                .await
                .map(ResultStream::ready);
        }
        let prepared = DfStatement::Statement(Box::new(entry.statement.clone()));
        if crate::constraints::calls_nextval(&entry.statement) {
            // nextval takes its values in the write transaction.
            let p = &self.planner;
            return self
                .write(|scope| async move {
                    let (plan, _guard) = p.plan(scope.txns(), prepared, None).await?;
                    let plan = bind_parameters(plan, values)?;
                    ResultSet::collect(p.context().execute_logical_plan(plan).await?).await
                })
                .await
                .map(ResultStream::ready);
        }
        self.stream_read(prepared, |plan| bind_parameters(plan, values))
            .await
    }

    /// A prepared primary-key lookup without planning (see [`fastpath`]); `None` when the
    /// table no longer fits the fast path.
    async fn fast_lookup(
        &self,
        entry: &PreparedEntry,
        value: &ScalarValue,
    ) -> Result<Option<ResultSet>> {
        let Some(FastPath::KeyLookup {
            table,
            columns,
            key_column,
        }) = &entry.fast
        else {
            return Ok(None);
        };
        let read = self.txn.read().await?;
        let result = (|| -> Result<Option<ResultSet>> {
            let catalog = read.view.catalog();
            let registry = self.planner.registry();
            let resolved = entry.resolved.get(&catalog, registry.generation(), || {
                let r = fastpath::resolve_lookup(&catalog, &registry, table, columns, key_column)?;
                if let Resolved::Lookup(l) = &r {
                    // The fast path skips planning, and so the plan's check.
                    self.planner
                        .actor(&catalog)
                        .check_table(&l.def, Privilege::Select)?;
                }
                Ok(r)
            })?;
            let Resolved::Lookup(l) = resolved.as_ref() else {
                return Ok(None);
            };
            if value.is_null() {
                return Ok(Some(ResultSet::rows(l.schema.clone(), Vec::new())));
            }
            let key = if value.data_type() == l.key_type {
                value.to_array()?
            } else {
                match value.cast_to(&l.key_type) {
                    Ok(k) => k.to_array()?,
                    Err(_) => return Ok(None),
                }
            };
            let table = l.engine.open(l.def.clone(), &read.txns())?;
            let Some(rows) = table.lookup(&[key])? else {
                return Ok(None);
            };
            let batches = if rows.num_rows() > 0 {
                vec![RecordBatch::try_new_with_options(
                    l.schema.clone(),
                    rows.project(&l.columns)?.columns().to_vec(),
                    &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.num_rows())),
                )?]
            } else {
                Vec::new()
            };
            Ok(Some(ResultSet::rows(l.schema.clone(), batches)))
        })();
        self.txn.end_read(read, true)?;
        result
    }
}

/// What a prepared statement's synchronous fast path produced.
pub(super) enum Immediate {
    /// The rows of a key lookup.
    Rows(ResultSet),
    /// The count of a one-row insert.
    Count(usize),
}

impl Immediate {
    /// The outcome as a statement's result (an insert's one-row `count`).
    pub(super) fn into_result_set(self) -> Result<ResultSet> {
        match self {
            Immediate::Rows(rs) => Ok(rs),
            Immediate::Count(n) => ResultSet::count(n),
        }
    }

    /// Rows changed (0 for a lookup).
    pub(super) fn count(&self) -> usize {
        match self {
            Immediate::Rows(_) => 0,
            Immediate::Count(n) => *n,
        }
    }
}

impl Connection {
    /// Runs prepared statement `name` through its fast path without the runtime, when it
    /// can run that way now: a key lookup of a table of the built-in engine, or a one-row
    /// insert inside an explicit transaction that has already written. Neither waits for
    /// anything (the transaction state is only tried, never awaited), so no interrupt can
    /// arrive during one. `None`: run the statement the general way
    /// ([`Connection::execute_prepared_stream`]), which also reports its errors. No query
    /// processor may be loaded: session hooks see every statement, and a security processor
    /// every plan.
    pub(super) fn execute_immediate(
        &self,
        name: &str,
        values: &[ScalarValue],
    ) -> Result<Option<Immediate>> {
        let registry = self.planner.plugins().snapshot();
        if registry
            .components(crate::plugins::ComponentKind::QueryProcessor)
            .next()
            .is_some()
        {
            return Ok(None);
        }
        let Some(entry) = self.prepared.lock().get(name).cloned() else {
            return Ok(None);
        };
        match (&entry.fast, values) {
            (Some(FastPath::KeyLookup { .. }), [value]) => Ok(self
                .lookup_immediate(&entry, &registry, value)?
                .map(Immediate::Rows)),
            (Some(FastPath::Insert { .. }), _) => Ok(self
                .insert_immediate(&entry, &registry, values)?
                .map(Immediate::Count)),
            _ => Ok(None),
        }
    }

    /// [`Connection::execute_immediate`] of a key lookup.
    fn lookup_immediate(
        &self,
        entry: &PreparedEntry,
        registry: &Arc<crate::plugins::Registry>,
        value: &ScalarValue,
    ) -> Result<Option<ResultSet>> {
        let Some(FastPath::KeyLookup {
            table,
            columns,
            key_column,
        }) = &entry.fast
        else {
            return Ok(None);
        };
        let Some(view) = self.txn.try_read_view() else {
            return Ok(None);
        };
        let view = view?;
        let catalog = view.catalog();
        let resolved = entry.resolved.get(&catalog, registry.generation(), || {
            let r = fastpath::resolve_lookup(&catalog, registry, table, columns, key_column)?;
            if let Resolved::Lookup(l) = &r {
                // The fast path skips planning, and so the plan's check.
                self.planner
                    .actor(&catalog)
                    .check_table(&l.def, Privilege::Select)?;
            }
            Ok(r)
        })?;
        let Resolved::Lookup(l) = resolved.as_ref() else {
            return Ok(None);
        };
        if l.engine.name() != crate::catalog::DEFAULT_ENGINE {
            return Ok(None);
        }
        if value.is_null() {
            return Ok(Some(ResultSet::rows(l.schema.clone(), Vec::new())));
        }
        let key = match fastpath::lookup_key(l, value)? {
            Some(key) => key,
            None => return Ok(None),
        };
        let rows = crate::engines::redb::lookup_keys(view.as_ref(), &l.def, &[key])?;
        Ok(Some(lookup_result(l, rows)?))
    }

    /// [`Connection::execute_immediate`] of a one-row insert.
    fn insert_immediate(
        &self,
        entry: &PreparedEntry,
        registry: &Arc<crate::plugins::Registry>,
        values: &[ScalarValue],
    ) -> Result<Option<usize>> {
        let Some(scope) = self.txn.try_open_write() else {
            return Ok(None);
        };
        // No expression is evaluated, so no `nextval` needs the writer attached; identity
        // columns draw from the sequences through the constraint guard.
        fast_insert_in(&self.planner, registry, &scope, entry, values)
    }
}

/// A key lookup's rows as its result: the selected columns, in the statement's schema.
fn lookup_result(l: &fastpath::Lookup, rows: RecordBatch) -> Result<ResultSet> {
    let batches = if rows.num_rows() > 0 {
        vec![RecordBatch::try_new_with_options(
            l.schema.clone(),
            l.columns.iter().map(|&c| rows.column(c).clone()).collect(),
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.num_rows())),
        )?]
    } else {
        Vec::new()
    };
    Ok(ResultSet::rows(l.schema.clone(), batches))
}

/// A prepared one-row insert without planning (see [`fastpath`]); `None` when the statement
/// is not one or its table no longer fits, and it must be planned.
fn fast_insert(
    planner: &Planner,
    scope: &WriteScope,
    entry: &PreparedEntry,
    values: &[ScalarValue],
) -> Result<Option<usize>> {
    fast_insert_in(planner, &planner.registry(), scope, entry, values)
}

/// [`fast_insert`] with the plugin registry the statement runs with.
fn fast_insert_in(
    planner: &Planner,
    registry: &Arc<crate::plugins::Registry>,
    scope: &WriteScope,
    entry: &PreparedEntry,
    values: &[ScalarValue],
) -> Result<Option<usize>> {
    let Some(FastPath::Insert { table, columns }) = &entry.fast else {
        return Ok(None);
    };
    let catalog = scope.w.lock().catalog();
    let resolved = entry.resolved.get(&catalog, registry.generation(), || {
        let r = fastpath::resolve_insert(&catalog, registry, table, columns)?;
        if let Resolved::Insert(plan) = &r {
            // The fast path skips planning, and so the plan's check.
            planner
                .actor(&catalog)
                .check_table(&plan.def, Privilege::Insert)?;
        }
        Ok(r)
    })?;
    let Resolved::Insert(plan) = resolved.as_ref() else {
        return Ok(None);
    };
    if plan.as_row {
        if let Some(row) = fastpath::insert_row(plan, values) {
            crate::engines::redb::insert_row(&scope.w, &plan.def, row)?;
            return Ok(Some(1));
        }
    }
    let Some(columns) = fastpath::insert_columns(plan, values) else {
        return Ok(None);
    };
    let batch = table_batch(&plan.def, columns)?;
    let access = plan.engine.open(plan.def.clone(), &scope.txns())?;
    crate::constraints::guard(access, scope.w.clone(), planner.sequences().clone())
        .insert(batch)?;
    Ok(Some(1))
}

/// What a planned `PREPARE` takes (its parameters, `$1` first) and returns (no columns for
/// writes).
fn describe(plan: &LogicalPlan, writes: bool) -> Result<StatementDescription> {
    let LogicalPlan::Statement(datafusion::logical_expr::Statement::Prepare(prepare)) = plan else {
        return Err(Error::Sql("expected a prepared statement".into()));
    };
    let schema = if writes {
        Arc::new(arrow::datatypes::Schema::empty())
    } else {
        let schema = Arc::new(prepare.input.schema().as_arrow().clone());
        crate::planner::visible_schema(&schema).unwrap_or(schema)
    };
    Ok(StatementDescription {
        parameter_types: parameter_types(prepare)?,
        schema,
    })
}

/// The type of each parameter, `$1` first. Declared types (`PREPARE p(INT, TEXT)`) are
/// `prepare.fields`; without them DataFusion fills `fields` with the types it inferred but
/// leaves out the placeholders it could not infer, so positions no longer match: then each
/// type is looked up by its `$n` name.
fn parameter_types(prepare: &datafusion::logical_expr::Prepare) -> Result<Vec<Option<DataType>>> {
    let inferred = prepare.input.get_parameter_types()?;
    let count = inferred
        .keys()
        .filter_map(|k| k.strip_prefix('$')?.parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    if prepare.fields.len() >= count {
        return Ok(prepare
            .fields
            .iter()
            .map(|f| Some(f.data_type().clone()))
            .collect());
    }
    Ok((1..=count)
        .map(|i| inferred.get(&format!("${i}")).cloned().flatten())
        .collect())
}

/// Takes the statement out of a planned `PREPARE` and binds its parameters, each cast to
/// its parameter's type.
fn bind_parameters(plan: LogicalPlan, values: Vec<ScalarValue>) -> Result<LogicalPlan> {
    let LogicalPlan::Statement(datafusion::logical_expr::Statement::Prepare(prepare)) = plan else {
        return Err(Error::Sql("expected a prepared statement".into()));
    };
    let types = parameter_types(&prepare)?;
    let values = values
        .into_iter()
        .enumerate()
        .map(|(i, v)| match types.get(i) {
            Some(Some(t)) if t != &v.data_type() && !v.is_null() => Ok(v.cast_to(t)?),
            _ => Ok(v),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::unwrap_or_clone(prepare.input).with_param_values(values)?)
}

/// The error for `EXECUTE` / `DEALLOCATE` of a name never prepared (`26000`).
fn unknown_prepared(name: &str) -> Error {
    Error::Catalog(
        SqlState::InvalidSqlStatementName,
        format!("prepared statement \"{name}\" does not exist"),
    )
}
