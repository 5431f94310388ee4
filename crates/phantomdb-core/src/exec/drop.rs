//! `DROP TABLE` and `DROP VIEW`.

use datafusion::logical_expr::{DropTable, DropView};
use parking_lot::Mutex;

use super::{table_engine, WriteScope};
use crate::catalog::CatalogEntry;
use crate::engines::redb::WriteTxn;
use crate::error::{Error, Result, SqlState};
use crate::planner::{local_name, Planner};
use crate::result::ResultSet;

/// `DROP TABLE [IF EXISTS] t`.
pub(crate) fn drop_table(
    planner: &Planner,
    scope: &WriteScope,
    drop: DropTable,
) -> Result<ResultSet> {
    let name = local_name(&drop.name)?;
    drop_table_storage(planner, scope, &name)?;
    drop_entry(&scope.w, &name, drop.if_exists, EntryKind::Table)
}

/// `DROP VIEW [IF EXISTS] v`.
pub(crate) fn drop_view(scope: &WriteScope, drop: DropView) -> Result<ResultSet> {
    drop_entry(
        &scope.w,
        &local_name(&drop.name)?,
        drop.if_exists,
        EntryKind::View,
    )
}

/// Schedules the storage of table `name` for removal with the transaction (each engine
/// decides when: redb's rows go with the catalog entry, other engines' after commit).
pub(super) fn drop_table_storage(planner: &Planner, scope: &WriteScope, name: &str) -> Result<()> {
    let Some(def) = scope.w.lock().catalog().table(name).cloned() else {
        return Ok(());
    };
    table_engine(&planner.registry(), &def)?.drop_table(&def, &scope.txns())
}

/// Which kind of catalog entry a DROP statement names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    Table,
    View,
}

/// Removes the entry if it is of the kind named.
fn drop_entry(
    w: &Mutex<WriteTxn>,
    name: &str,
    if_exists: bool,
    kind: EntryKind,
) -> Result<ResultSet> {
    let mut wl = w.lock();
    let found = match wl.catalog().get(name) {
        Some(CatalogEntry::Table(_)) => Some(EntryKind::Table),
        Some(CatalogEntry::View(_)) => Some(EntryKind::View),
        None => None,
    };
    let (noun, other) = match kind {
        EntryKind::Table => ("table", "view"),
        EntryKind::View => ("view", "table"),
    };
    match found {
        Some(k) if k == kind => wl.remove_entry(name)?,
        Some(_) => {
            return Err(Error::Catalog(
                SqlState::WrongObjectType,
                format!("\"{name}\" is a {other}; use DROP {}", other.to_uppercase()),
            ))
        }
        None if if_exists => {}
        None => {
            return Err(Error::Catalog(
                SqlState::UndefinedTable,
                format!("{noun} \"{name}\" does not exist"),
            ))
        }
    }
    Ok(ResultSet::empty())
}
