//! `ANALYZE [table]`: recomputes the column statistics of the default engine's tables from
//! their stored rows (segments written before statistics existed get theirs this way).

use datafusion::sql::sqlparser::ast::Analyze;

use super::{table_def, WriteScope};
use crate::catalog::DEFAULT_ENGINE;
use crate::error::Result;
use crate::planner::{object_name, Planner};
use crate::result::ResultSet;

/// Analyzes the named table (its owner only), or every table of the default engine the
/// role owns. Tables of other engines keep their engine's own statistics.
pub(crate) fn analyze(planner: &Planner, scope: &WriteScope, stmt: &Analyze) -> Result<ResultSet> {
    let catalog = scope.w.lock().catalog();
    let actor = planner.actor(&catalog);
    let tables = match &stmt.table_name {
        Some(name) => {
            let name = object_name(name)?;
            let def = table_def(&scope.w, &name)?;
            actor.check_owner("table", &name, &def.owner)?;
            vec![def]
        }
        None => catalog
            .tables()
            .filter(|t| actor.owns(&t.owner))
            .cloned()
            .collect(),
    };
    for def in tables.iter().filter(|t| t.engine == DEFAULT_ENGINE) {
        let segments = scope.w.lock().analyze(def)?;
        tracing::debug!(table = %def.name, segments, "analyzed");
    }
    Ok(ResultSet::empty())
}
