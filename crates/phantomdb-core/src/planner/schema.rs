//! The schema provider DataFusion resolves table names through, and the per-statement context
//! it answers from.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::DFSchema;
use datafusion::error::Result as DfResult;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::Expr;
use parking_lot::Mutex;

use crate::catalog::{CatalogEntry, TableDef};
use crate::engines::StatementTxns;
use crate::plugins::{table_engine, Registry, StatementPin};
use crate::provider::{PhantomTable, PhantomView};
use crate::table::TableRole;

/// What a statement reads through, and how DataFusion reaches it while planning.
pub(crate) struct StatementContext {
    pub(crate) txns: StatementTxns,
    /// The registry snapshot the statement plans with (functions and storage engines).
    pub(crate) registry: Arc<Registry>,
    /// The table the statement writes to, and how.
    pub(crate) target: Option<(String, TableRole)>,
    pub(crate) state: SessionState,
    /// Keeps the plugins this statement may call from being shut down until it ends.
    pub(crate) pins: Vec<StatementPin>,
}

/// The schema provider of a connection: resolves names against the current statement's view.
#[derive(Clone, Default)]
pub(crate) struct PhantomSchema {
    current: Arc<Mutex<Option<Arc<StatementContext>>>>,
}

impl std::fmt::Debug for PhantomSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PhantomSchema")
    }
}

impl PhantomSchema {
    /// The context of the statement being planned, if any.
    pub(crate) fn context(&self) -> Option<Arc<StatementContext>> {
        self.current.lock().clone()
    }

    pub(super) fn set(&self, context: StatementContext) {
        *self.current.lock() = Some(Arc::new(context));
    }

    pub(super) fn clear(&self) {
        *self.current.lock() = None;
    }
}

/// Parses the stored DEFAULT expressions of a table (a custom-typed column's as a cast to its
/// type, so text is parsed as for any value assigned to the column).
fn parse_defaults(
    state: &SessionState,
    def: &TableDef,
    registry: &Registry,
) -> DfResult<HashMap<String, Expr>> {
    let df_schema = DFSchema::try_from(def.schema.clone())?;
    def.defaults
        .iter()
        .map(|(col, sql)| {
            let sql = match def.schema.field_with_name(col) {
                Ok(field) => crate::types::assign::typed_default(field, sql, registry),
                Err(_) => std::borrow::Cow::Borrowed(sql.as_str()),
            };
            Ok((col.clone(), state.create_logical_expr(&sql, &df_schema)?))
        })
        .collect()
}

#[async_trait]
impl SchemaProvider for PhantomSchema {
    fn table_names(&self) -> Vec<String> {
        self.context()
            .map(|c| c.txns.view.catalog().names().cloned().collect())
            .unwrap_or_default()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(ctx) = self.context() else {
            return Ok(None);
        };
        let catalog = ctx.txns.view.catalog();
        match catalog.get(name) {
            Some(CatalogEntry::Table(def)) => {
                let role = match &ctx.target {
                    Some((t, role)) if t == name => *role,
                    _ => TableRole::Read,
                };
                let defaults = parse_defaults(&ctx.state, def, &ctx.registry)?;
                let access = table_engine(&ctx.registry, def)
                    .and_then(|engine| engine.open(def.clone(), &ctx.txns))
                    .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
                Ok(Some(Arc::new(PhantomTable::new(access, role, defaults))))
            }
            Some(CatalogEntry::View(view)) => {
                let plan = ctx.state.create_logical_plan(&view.query).await?;
                Ok(Some(Arc::new(PhantomView::new(view.clone(), plan))))
            }
            None => Ok(None),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.context()
            .is_some_and(|c| c.txns.view.catalog().get(name).is_some())
    }
}
