//! `phantomdb_tables()`: every table with its storage engine, options and whether the engine
//! is available, as the current statement's snapshot sees it.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;

use crate::planner::schema::PhantomSchema;

/// The `phantomdb_tables()` table function.
#[derive(Debug)]
pub(crate) struct TablesTable(pub(crate) PhantomSchema);

impl datafusion::catalog::TableFunctionImpl for TablesTable {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return datafusion::common::plan_err!("phantomdb_tables() takes no arguments");
        }
        let Some(ctx) = self.0.context() else {
            return datafusion::common::plan_err!("phantomdb_tables() needs a statement");
        };
        let catalog = ctx.txns.view.catalog();
        let rows = catalog
            .tables()
            .map(|t| {
                let options = t
                    .options
                    .iter()
                    .filter(|(k, _)| !is_secret(k))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                vec![
                    t.name.clone(),
                    t.engine.clone(),
                    options,
                    if ctx.registry.engine(&t.engine).is_some() {
                        "available".into()
                    } else {
                        "engine not loaded".into()
                    },
                ]
            })
            .collect();
        crate::plugins::tables::table(&["name", "engine", "options", "status"], rows)
    }
}

/// Options never shown back (credentials).
fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("secret") || k.contains("password") || k.contains("token")
}
