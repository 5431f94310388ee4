//! `CREATE TABLE [IF NOT EXISTS | OR REPLACE] ... [USING engine WITH (...)] [AS SELECT ...]`.

use std::sync::Arc;

use arrow::datatypes::{Field, Schema};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{CreateMemoryTable, LogicalPlan};

use super::{drop::drop_table_storage, insert_rows, unknown_engine, StorageClause, WriteScope};
use crate::catalog::{CatalogEntry, TableDef};
use crate::engines::Options;
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
    let name = local_name(&create.name)?;
    if !make_room(planner, scope, &create, &name)? {
        return Ok(ResultSet::empty());
    }
    let (engine_name, options) = choose_engine(scope, storage);
    let engine = match planner.registry().engine(&engine_name) {
        Some(e) => e.engine().clone(),
        None => return Err(unknown_engine(&planner.registry(), &engine_name)),
    };
    let (schema, primary_key) = table_schema(&create)?;
    let mut def = TableDef {
        id: scope.w.lock().allocate_table_id(),
        name: name.clone(),
        schema,
        primary_key,
        defaults: column_defaults(&create)?,
        engine: engine_name,
        options,
        backfill: Default::default(),
        owner: planner.user().to_string(),
        grants: Default::default(),
        indexes: Vec::new(),
        checks: Vec::new(),
        identity: Default::default(),
    };
    check_typed_defaults(planner, &def)?;
    def.options = engine.create_table(&def, &scope.txns())?;
    let def = Arc::new(def);
    scope
        .w
        .lock()
        .put_entry(&name, CatalogEntry::Table(def.clone()))?;
    if matches!(create.input.as_ref(), LogicalPlan::EmptyRelation(_)) {
        return Ok(ResultSet::empty());
    }
    let df = DataFrame::new(planner.state(), create.input.as_ref().clone());
    let batches = df.collect().await?;
    ResultSet::count(insert_rows(planner, scope, &def, batches)?)
}

/// Evaluates each custom-typed column's DEFAULT once, so a value its type refuses is an error
/// of `CREATE TABLE` (22P02, as in PostgreSQL), not of the first INSERT that uses it.
fn check_typed_defaults(planner: &Planner, def: &TableDef) -> Result<()> {
    for (i, field) in def.schema.fields().iter().enumerate() {
        if crate::types::logical_type(field).is_some() && def.defaults.contains_key(field.name()) {
            planner.default_array(def, i, 1)?;
        }
    }
    Ok(())
}

/// Handles an existing table of that name: `IF NOT EXISTS` keeps it (returns false), `OR
/// REPLACE` drops it, otherwise `42P07`.
fn make_room(
    planner: &Planner,
    scope: &WriteScope,
    create: &CreateMemoryTable,
    name: &str,
) -> Result<bool> {
    if scope.w.lock().catalog().get(name).is_none() {
        return Ok(true);
    }
    if create.if_not_exists {
        return Ok(false);
    }
    if !create.or_replace {
        return Err(Error::Catalog(
            SqlState::DuplicateTable,
            format!("table \"{name}\" already exists"),
        ));
    }
    drop_table_storage(planner, scope, name)?;
    scope.w.lock().remove_entry(name)?;
    Ok(true)
}

/// The engine named by `USING` (or the database's default) and its options.
fn choose_engine(scope: &WriteScope, storage: Option<StorageClause>) -> (String, Options) {
    let default = || scope.w.lock().catalog().default_engine().to_string();
    match storage {
        Some((engine, options)) => (engine.unwrap_or_else(default), options),
        None => (default(), Options::new()),
    }
}

/// The table's columns (primary-key columns NOT NULL) and its primary key.
fn table_schema(create: &CreateMemoryTable) -> Result<(Schema, Vec<usize>)> {
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
    Ok((Schema::new(fields), primary_key))
}

/// The columns' DEFAULT expressions as SQL text.
fn column_defaults(
    create: &CreateMemoryTable,
) -> Result<std::collections::BTreeMap<String, String>> {
    let mut defaults = std::collections::BTreeMap::new();
    for (col, expr) in &create.column_defaults {
        let sql = datafusion::sql::unparser::expr_to_sql(expr)?.to_string();
        defaults.insert(col.clone(), sql);
    }
    Ok(defaults)
}
