//! `CREATE TABLE [IF NOT EXISTS | OR REPLACE] ... [USING engine WITH (...)] [AS SELECT ...]`.

use std::sync::Arc;

use arrow::datatypes::{Field, Schema};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{CreateMemoryTable, LogicalPlan};

use super::{drop::drop_table_storage, insert_rows, unknown_engine, StorageClause, WriteScope};
use crate::catalog::{CatalogEntry, TableDef, DEFAULT_ENGINE};
use crate::engines::{table_info, EngineImpl};
use crate::error::{Error, Result, SqlState};
use crate::planner::{local_name, Planner};
use crate::result::ResultSet;

/// Creates the table (and fills it from its `AS SELECT`).
pub(crate) async fn create_table(
    planner: &Planner,
    scope: &WriteScope,
    create: CreateMemoryTable,
    storage: Option<StorageClause>,
) -> Result<ResultSet> {
    let w = &scope.w;
    let name = local_name(&create.name)?;
    let exists = w.lock().catalog().get(&name).is_some();
    if exists {
        if create.if_not_exists {
            return Ok(ResultSet::empty());
        }
        if !create.or_replace {
            return Err(Error::Catalog(SqlState::DuplicateTable, format!("table \"{name}\" already exists")));
        }
        drop_table_storage(planner, scope, &name)?;
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
    let registry = planner.registry();
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
            datafusion::common::Constraint::PrimaryKey(cols) => primary_key = cols.clone(),
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
        let df = DataFrame::new(planner.state(), create.input.as_ref().clone());
        let batches = df.collect().await?;
        let n = insert_rows(planner, scope, &def, batches)?;
        return ResultSet::count(n);
    }
    Ok(ResultSet::empty())
}
