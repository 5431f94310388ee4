//! `CREATE [UNIQUE] INDEX` and `DROP INDEX`, and the unique index behind a UNIQUE
//! constraint. An index is part of its table's catalog entry; its entries live in the table's
//! engine (redb: `ix_<id>`), which keeps them with every write in the same transaction. An
//! engine without indexes refuses `CREATE INDEX` (0A000); there a UNIQUE constraint is still
//! enforced, by scanning.

use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{CreateIndex, Expr as SqlExpr, IndexColumn, ObjectName};

use super::{table_def, WriteScope};
use crate::catalog::{Catalog, CatalogEntry, IndexDef, TableDef};
use crate::engines::{read_all, ScanRequest, TableAccess};
use crate::error::{Error, Result, SqlState};
use crate::planner::{object_name, Planner};
use crate::result::ResultSet;
use crate::sql::normalize_ident;
use crate::table::index_keys::{duplicate_in_index, encode_index};

/// An index to make.
pub(crate) struct IndexSpec {
    pub(crate) name: String,
    pub(crate) table: String,
    pub(crate) columns: Vec<String>,
    pub(crate) unique: bool,
    /// Made by a UNIQUE constraint (kept on engines without indexes, enforced by scanning).
    pub(crate) constraint: bool,
}

/// The table holding index `name`, and the index.
pub(crate) fn find_index(catalog: &Catalog, name: &str) -> Option<(Arc<TableDef>, IndexDef)> {
    catalog.tables().find_map(|t| {
        t.indexes
            .iter()
            .find(|i| i.name == name)
            .map(|i| (t.clone(), i.clone()))
    })
}

/// `CREATE [UNIQUE] INDEX [IF NOT EXISTS] [name] ON t (cols)`.
pub(crate) fn create_index(
    planner: &Planner,
    scope: &WriteScope,
    create: CreateIndex,
) -> Result<ResultSet> {
    if create.predicate.is_some() {
        return Err(Error::Unsupported(
            "partial indexes (CREATE INDEX ... WHERE)".into(),
        ));
    }
    let table = object_name(&create.table_name)?;
    let columns = column_names(&create.columns)?;
    let name = match &create.name {
        Some(n) => object_name(n)?,
        None => format!("{table}_{}_idx", columns.join("_")),
    };
    let catalog = scope.w.lock().catalog();
    if create.if_not_exists && find_index(&catalog, &name).is_some() {
        return Ok(ResultSet::empty());
    }
    let spec = IndexSpec {
        name,
        table,
        columns,
        unique: create.unique,
        constraint: false,
    };
    add_index(planner, scope, spec)?;
    Ok(ResultSet::empty())
}

/// Adds an index to its table's definition and has the engine build it.
pub(crate) fn add_index(planner: &Planner, scope: &WriteScope, spec: IndexSpec) -> Result<()> {
    let def = table_def(&scope.w, &spec.table)?;
    let catalog = scope.w.lock().catalog();
    planner
        .actor(&catalog)
        .check_owner("table", &def.name, &def.owner)?;
    if find_index(&catalog, &spec.name).is_some() || catalog.get(&spec.name).is_some() {
        return Err(Error::Catalog(
            SqlState::DuplicateTable,
            format!("relation \"{}\" already exists", spec.name),
        ));
    }
    let mut columns = Vec::with_capacity(spec.columns.len());
    for c in &spec.columns {
        let p = def.schema.index_of(c).map_err(|_| {
            Error::Catalog(
                SqlState::UndefinedColumn,
                format!("column \"{c}\" does not exist"),
            )
        })?;
        columns.push(p);
    }
    let keeps = scope.table(planner, &def)?.keeps_indexes();
    if !keeps && !spec.constraint {
        return Err(crate::engines::no_indexes(&def));
    }
    let index = IndexDef {
        name: spec.name,
        id: scope.w.lock().allocate_table_id(),
        columns,
        unique: spec.unique,
        constraint: spec.constraint,
        stored: keeps,
    };
    let mut new = (*def).clone();
    new.indexes.push(index.clone());
    let new = Arc::new(new);
    scope
        .w
        .lock()
        .put_entry(&new.name, CatalogEntry::Table(new.clone()))?;
    let access = scope.table(planner, &new)?;
    if keeps {
        access.create_index(&index)
    } else {
        // Rows already there (CREATE TABLE ... AS) must be unique.
        check_unique_rows(access.as_ref(), &index)
    }
}

/// Fails with 23505 when two rows of the table share a non-NULL key of `index` (for indexes
/// the engine does not store).
pub(crate) fn check_unique_rows(access: &dyn TableAccess, index: &IndexDef) -> Result<()> {
    let def = access.def();
    let rows = read_all(access, &ScanRequest::default())?;
    let keys = encode_index(def, index, &rows)?;
    let mut seen = std::collections::HashSet::new();
    for (row, key) in keys.iter().enumerate() {
        if !key.has_null() && !seen.insert(key.bytes()) {
            return Err(duplicate_in_index(def, index, &rows, row));
        }
    }
    Ok(())
}

/// `DROP INDEX [IF EXISTS] name, ...`.
pub(crate) fn drop_index(
    planner: &Planner,
    scope: &WriteScope,
    names: Vec<ObjectName>,
    if_exists: bool,
) -> Result<ResultSet> {
    for n in names {
        let name = object_name(&n)?;
        let catalog = scope.w.lock().catalog();
        let Some((def, index)) = find_index(&catalog, &name) else {
            if if_exists {
                continue;
            }
            return Err(Error::Catalog(
                SqlState::UndefinedObject,
                format!("index \"{name}\" does not exist"),
            ));
        };
        planner
            .actor(&catalog)
            .check_owner("index", &name, &def.owner)?;
        if index.constraint {
            return Err(Error::Catalog(
                SqlState::DependentObjectsStillExist,
                format!(
                    "cannot drop index {name} because constraint {name} on table {} requires it",
                    def.name
                ),
            ));
        }
        let mut new = (*def).clone();
        new.indexes.retain(|i| i.name != name);
        let new = Arc::new(new);
        if index.stored {
            scope.table(planner, &def)?.drop_index(&index)?;
        }
        scope
            .w
            .lock()
            .put_entry(&new.name, CatalogEntry::Table(new.clone()))?;
    }
    Ok(ResultSet::empty())
}

/// Plain column names of an index or constraint column list (expressions are refused).
pub(crate) fn column_names(columns: &[IndexColumn]) -> Result<Vec<String>> {
    columns
        .iter()
        .map(|c| match &c.column.expr {
            SqlExpr::Identifier(i) => Ok(normalize_ident(i)),
            other => Err(Error::Unsupported(format!(
                "index on an expression ({other}); name columns"
            ))),
        })
        .collect()
}
