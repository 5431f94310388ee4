//! `ALTER TABLE ... DROP COLUMN [IF EXISTS]` and `ALTER COLUMN ... SET/DROP DEFAULT, SET/DROP
//! NOT NULL`.
//!
//! DROP COLUMN rewrites the table: its rows are read, the old storage is dropped and the
//! table is made again (new storage id, same name, owner, grants, constraints) holding the
//! rows without the column. Indexes and CHECK constraints on the column go with it, as in
//! PostgreSQL's CASCADE; a primary-key column cannot be dropped.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema};
use datafusion::sql::sqlparser::ast::{AlterColumnOperation, Ident};

use super::drop::drop_table_storage;
use super::{table_engine, WriteScope};
use crate::catalog::{CatalogEntry, TableDef};
use crate::constraints::validate_condition;
use crate::engines::{read_all, ScanRequest};
use crate::error::{Error, Result, SqlState};
use crate::planner::Planner;
use crate::sql::normalize_ident;

/// Drops `columns` from table `def`, rewriting its rows.
pub(crate) fn drop_columns(
    planner: &Planner,
    scope: &WriteScope,
    def: &Arc<TableDef>,
    columns: &[Ident],
    if_exists: bool,
) -> Result<()> {
    let mut drop = Vec::new();
    for c in columns {
        let name = normalize_ident(c);
        match def.schema.index_of(&name) {
            Ok(i) => drop.push(i),
            Err(_) if if_exists => {}
            Err(_) => {
                return Err(Error::Catalog(
                    SqlState::UndefinedColumn,
                    format!(
                        "column \"{name}\" of relation \"{}\" does not exist",
                        def.name
                    ),
                ))
            }
        }
    }
    if drop.is_empty() {
        return Ok(());
    }
    if drop.iter().any(|i| def.primary_key.contains(i)) {
        return Err(Error::Unsupported(format!(
            "dropping a primary-key column of table \"{}\"",
            def.name
        )));
    }
    if drop.len() == def.schema.fields().len() {
        return Err(Error::Unsupported(
            "dropping every column of a table".into(),
        ));
    }
    let kept: Vec<usize> = (0..def.schema.fields().len())
        .filter(|i| !drop.contains(i))
        .collect();
    let position = |old: usize| kept.iter().position(|&k| k == old);
    let rows = read_all(
        scope.raw_table(planner, def)?.as_ref(),
        &ScanRequest::default(),
    )?;
    let mut new = (**def).clone();
    new.id = scope.w.lock().allocate_table_id();
    new.schema = Schema::new(
        kept.iter()
            .map(|&i| def.schema.field(i).clone())
            .collect::<Vec<Field>>(),
    );
    new.primary_key = def
        .primary_key
        .iter()
        .filter_map(|&i| position(i))
        .collect();
    new.backfill = BTreeMap::new();
    for &i in &drop {
        new.defaults.remove(def.schema.field(i).name());
    }
    new.identity = def
        .identity
        .iter()
        .filter_map(|(&i, id)| position(i).map(|p| (p, id.clone())))
        .collect();
    new.indexes = def
        .indexes
        .iter()
        .filter(|ix| ix.columns.iter().all(|c| !drop.contains(c)))
        .map(|ix| {
            let mut ix = ix.clone();
            ix.columns = ix.columns.iter().filter_map(|&c| position(c)).collect();
            ix
        })
        .collect();
    let checks = std::mem::take(&mut new.checks);
    new.checks = checks
        .into_iter()
        .filter(|c| validate_condition(&new, &c.expr).is_ok())
        .collect();
    new.options = def.options.clone();
    drop_table_storage(planner, scope, &def.name)?;
    scope.w.lock().remove_entry(&def.name)?;
    let engine = table_engine(&planner.registry(), &new)?;
    new.options = engine.create_table(&new, &scope.txns())?;
    let new = Arc::new(new);
    scope
        .w
        .lock()
        .put_entry(&new.name, CatalogEntry::Table(new.clone()))?;
    let rows = rows.project(&kept)?;
    let rows = RecordBatch::try_new(new.schema_ref(), rows.columns().to_vec())?;
    let access = scope.raw_table(planner, &new)?;
    if rows.num_rows() > 0 {
        access.insert(rows)?;
    }
    for index in new.indexes.iter().filter(|i| i.stored) {
        // Entries were written with the rows when the engine keeps indexes; a rebuild makes
        // sure of it.
        access.drop_index(index)?;
        access.create_index(index)?;
    }
    Ok(())
}

/// `ALTER COLUMN c SET/DROP DEFAULT, SET/DROP NOT NULL` on the definition `new`.
pub(crate) fn alter_column(
    planner: &Planner,
    scope: &WriteScope,
    new: &mut TableDef,
    column: &Ident,
    op: AlterColumnOperation,
) -> Result<()> {
    let name = normalize_ident(column);
    let i = new.schema.index_of(&name).map_err(|_| {
        Error::Catalog(
            SqlState::UndefinedColumn,
            format!(
                "column \"{name}\" of relation \"{}\" does not exist",
                new.name
            ),
        )
    })?;
    let mut fields: Vec<Field> = new
        .schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    match op {
        AlterColumnOperation::SetDefault { value } => {
            new.defaults.insert(name, value.to_string());
        }
        AlterColumnOperation::DropDefault => {
            new.defaults.remove(&name);
        }
        AlterColumnOperation::SetNotNull => {
            let def = Arc::new(new.clone());
            let request = ScanRequest {
                projection: Some(vec![i]),
                ..ScanRequest::default()
            };
            let values = read_all(scope.raw_table(planner, &def)?.as_ref(), &request)?;
            if values.column(0).null_count() > 0 {
                return Err(Error::Constraint(
                    SqlState::NotNullViolation,
                    format!(
                        "column \"{name}\" of relation \"{}\" contains null values",
                        new.name
                    ),
                ));
            }
            fields[i] = fields[i].clone().with_nullable(false);
        }
        AlterColumnOperation::DropNotNull => {
            if new.primary_key.contains(&i) {
                return Err(Error::Sql(format!("column \"{name}\" is in a primary key")));
            }
            fields[i] = fields[i].clone().with_nullable(true);
        }
        other => return Err(Error::Unsupported(format!("ALTER COLUMN ... {other}"))),
    }
    new.schema = Schema::new(fields);
    Ok(())
}
