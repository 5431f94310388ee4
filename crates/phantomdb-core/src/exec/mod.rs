//! Statement executors: one file per kind of statement, each given what it uses (the
//! [`Planner`], the statement's [`WriteScope`]) rather than the connection.
//!
//! [`apply_write`] dispatches a planned DDL or DML statement, one line per kind.

mod alter;
mod alter_column;
mod analyze;
mod copy;
mod create_table;
mod dml;
mod dml_ext;
mod drop;
mod grant;
mod index;
mod insert;
pub(crate) mod plugins;
mod reindex;
mod returning;
mod role;
mod settings;
mod table_extras;
mod upsert;
mod view;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use parking_lot::Mutex;

pub(crate) use alter::alter_table;
pub(crate) use analyze::analyze;
pub(crate) use copy::{copy_from, CopyFile};
pub(crate) use dml_ext::{
    delete_extended, is_extended_delete, is_extended_update, update_extended,
};
pub(crate) use grant::{grant, revoke};
pub(crate) use index::{create_index, drop_index};
pub(crate) use insert::{insert_literal_rows, insert_rows};
pub(crate) use reindex::reindex;
pub(crate) use role::{alter_role, create_role, drop_roles};
pub(crate) use settings::set_default_engine;
pub(crate) use table_extras::{apply_table_extras, table_id, take_table_extras};
pub(crate) use upsert::{insert_extended, is_extended_insert, replaces_rows};

use crate::catalog::TableDef;
use crate::engines::redb::WriteTxn;
use crate::engines::SharedEngineTxns;
use crate::engines::{StatementTxns, TableAccess};
use crate::error::{Error, Result, SqlState};
use crate::planner::Planner;
pub(crate) use crate::plugins::{table_engine, unknown_engine};
use crate::result::ResultSet;

/// Where a writing statement writes: the redb write transaction and the engine transactions
/// of its database transaction.
#[derive(Clone)]
pub(crate) struct WriteScope {
    pub(crate) w: Arc<Mutex<WriteTxn>>,
    pub(crate) engines: SharedEngineTxns,
}

impl WriteScope {
    /// Table `def` bound to this statement without the core's constraint checks (for
    /// executors that check rows themselves, e.g. upserts).
    pub(crate) fn raw_table(
        &self,
        planner: &Planner,
        def: &Arc<TableDef>,
    ) -> Result<Arc<dyn TableAccess>> {
        table_engine(&planner.registry(), def)?.open(def.clone(), &self.txns())
    }

    /// The statement's transactions, as engines see them.
    pub(crate) fn txns(&self) -> StatementTxns {
        StatementTxns {
            view: self.w.clone(),
            write: Some(self.w.clone()),
            engines: self.engines.clone(),
        }
    }

    /// Table `def` bound to this statement, in its engine.
    pub(crate) fn table(
        &self,
        planner: &Planner,
        def: &Arc<TableDef>,
    ) -> Result<Arc<dyn TableAccess>> {
        let access = table_engine(&planner.registry(), def)?.open(def.clone(), &self.txns())?;
        Ok(crate::constraints::guard(
            access,
            self.w.clone(),
            planner.sequences().clone(),
        ))
    }
}

/// `USING engine` and `WITH (...)` of a `CREATE TABLE`.
pub(crate) type StorageClause = (Option<String>, BTreeMap<String, String>);

/// Applies a planned DDL or DML statement in the write transaction.
pub(crate) async fn apply_write(
    planner: &Planner,
    scope: &WriteScope,
    plan: LogicalPlan,
    storage: Option<StorageClause>,
) -> Result<ResultSet> {
    match plan {
        LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(create)) => {
            create_table::create_table(planner, scope, create, storage).await
        }
        LogicalPlan::Ddl(DdlStatement::DropTable(d)) => drop::drop_table(planner, scope, d),
        LogicalPlan::Ddl(DdlStatement::CreateView(create)) => {
            view::create_view(planner, scope, create)
        }
        LogicalPlan::Ddl(DdlStatement::DropView(d)) => drop::drop_view(scope, d),
        LogicalPlan::Dml(dml) => dml::run_dml(planner, scope, dml).await,
        other => Err(Error::Unsupported(format!("statement {}", other.display()))),
    }
}

/// The definition of table `name` as the write transaction sees it.
pub(crate) fn table_def(w: &Mutex<WriteTxn>, name: &str) -> Result<Arc<TableDef>> {
    w.lock().catalog().table(name).cloned().ok_or_else(|| {
        Error::Catalog(
            SqlState::UndefinedTable,
            format!("table \"{name}\" does not exist"),
        )
    })
}
