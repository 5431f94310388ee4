//! `ALTER TABLE ... DROP COLUMN [IF EXISTS]` and `ALTER COLUMN ... SET/DROP DEFAULT, SET/DROP
//! NOT NULL`.
//!
//! DROP COLUMN rewrites the table's rows without the column: in place when the engine can
//! (`TableAccess::drop_columns`: plugin engines with UPDATE/DELETE keep their storage and
//! options), else the rows are read, the old storage is dropped and the table is made again
//! (new storage id, same name, owner, grants, constraints). Indexes and CHECK constraints on the column go with it, as in
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
    let mut new = (**def).clone();
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
    let new = if scope.raw_table(planner, def)?.drop_columns(&new, &kept)? {
        // Rewritten in place: same storage id and options (a plugin engine's location).
        let new = Arc::new(new);
        scope
            .w
            .lock()
            .put_entry(&new.name, CatalogEntry::Table(new.clone()))?;
        new
    } else {
        move_to_new_storage(planner, scope, def, new, &kept)?
    };
    let access = scope.raw_table(planner, &new)?;
    for index in new.indexes.iter().filter(|i| i.stored) {
        // Entries were written with the rows when the engine keeps indexes; a rebuild makes
        // sure of it.
        access.drop_index(index)?;
        access.create_index(index)?;
    }
    Ok(())
}

/// Copies the rows of `def` (columns `kept`) into new storage for `new`, dropping the old
/// storage: for engines that cannot drop columns in place (redb stores rows encoded in the
/// table's schema).
fn move_to_new_storage(
    planner: &Planner,
    scope: &WriteScope,
    def: &Arc<TableDef>,
    mut new: TableDef,
    kept: &[usize],
) -> Result<Arc<TableDef>> {
    let rows = read_all(
        scope.raw_table(planner, def)?.as_ref(),
        &ScanRequest::default(),
    )?;
    new.id = scope.w.lock().allocate_table_id();
    drop_table_storage(planner, scope, &def.name)?;
    scope.w.lock().remove_entry(&def.name)?;
    let engine = table_engine(&planner.registry(), &new)?;
    new.options = engine.create_table(&new, &scope.txns())?;
    let new = Arc::new(new);
    scope
        .w
        .lock()
        .put_entry(&new.name, CatalogEntry::Table(new.clone()))?;
    let rows = rows.project(kept)?;
    let rows = RecordBatch::try_new(new.schema_ref(), rows.columns().to_vec())?;
    if rows.num_rows() > 0 {
        scope.raw_table(planner, &new)?.insert(rows)?;
    }
    Ok(new)
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
