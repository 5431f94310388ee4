//! `REINDEX`: rebuilds indexes from their tables' rows inside the write transaction (a
//! failure, e.g. 23505 for a unique index over duplicate rows, leaves the old entries). An
//! index the engine stores is dropped and built again; a UNIQUE constraint on an engine
//! without indexes is checked against the rows.

use std::sync::Arc;

use super::index::{check_unique_rows, find_index};
use super::{table_def, WriteScope};
use crate::catalog::{IndexDef, TableDef};
use crate::error::{Error, Result, SqlState};
use crate::planner::{object_name, Planner};
use crate::result::ResultSet;
use crate::sql::Reindex;

/// Runs a `REINDEX` statement.
pub(crate) fn reindex(planner: &Planner, scope: &WriteScope, what: Reindex) -> Result<ResultSet> {
    let catalog = scope.w.lock().catalog();
    let actor = planner.actor(&catalog);
    match what {
        Reindex::Index(name) => {
            let name = object_name(&name)?;
            let Some((def, index)) = find_index(&catalog, &name) else {
                return Err(Error::Catalog(
                    SqlState::UndefinedObject,
                    format!("index \"{name}\" does not exist"),
                ));
            };
            actor.check_owner("index", &name, &def.owner)?;
            rebuild(planner, scope, &def, std::slice::from_ref(&index))?;
        }
        Reindex::Named(name) if find_index(&catalog, &object_name(&name)?).is_some() => {
            return reindex(planner, scope, Reindex::Index(name));
        }
        Reindex::Table(name) | Reindex::Named(name) => {
            let name = object_name(&name)?;
            let def = table_def(&scope.w, &name)?;
            actor.check_owner("table", &name, &def.owner)?;
            rebuild(planner, scope, &def, &def.indexes)?;
        }
        Reindex::All => {
            // As PostgreSQL's REINDEX DATABASE: the tables the user owns.
            let owned: Vec<Arc<TableDef>> = catalog
                .tables()
                .filter(|t| actor.owns(&t.owner))
                .cloned()
                .collect();
            for def in owned {
                rebuild(planner, scope, &def, &def.indexes)?;
            }
        }
    }
    Ok(ResultSet::empty())
}

/// Rebuilds `indexes` of table `def` from its rows.
fn rebuild(
    planner: &Planner,
    scope: &WriteScope,
    def: &Arc<TableDef>,
    indexes: &[IndexDef],
) -> Result<()> {
    if indexes.is_empty() {
        return Ok(());
    }
    let access = scope.raw_table(planner, def)?;
    for index in indexes {
        if index.stored {
            access.drop_index(index)?;
            access.create_index(index)?;
        } else if index.unique {
            check_unique_rows(access.as_ref(), index)?;
        }
    }
    tracing::debug!(table = %def.name, indexes = indexes.len(), "reindexed");
    Ok(())
}
