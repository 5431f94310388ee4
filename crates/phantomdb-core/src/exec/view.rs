//! `CREATE [OR REPLACE] VIEW`: views are stored as SQL text and planned again on use.

use std::sync::Arc;

use datafusion::logical_expr::CreateView;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

use super::WriteScope;
use crate::catalog::{CatalogEntry, ViewDef};
use crate::error::{Error, Result, SqlState};
use crate::planner::{local_name, Planner};
use crate::result::ResultSet;

/// Stores the view's query, owned by the user creating it (`OR REPLACE` keeps the owner and
/// the grants of the view it replaces; only its owner may replace it, checked with the plan).
pub(crate) fn create_view(
    planner: &Planner,
    scope: &WriteScope,
    create: CreateView,
) -> Result<ResultSet> {
    let name = local_name(&create.name)?;
    let query = create
        .definition
        .as_deref()
        .map(view_query_text)
        .ok_or_else(|| Error::Sql("CREATE VIEW without a definition".into()))?;
    let mut wl = scope.w.lock();
    let (owner, grants) = match wl.catalog().get(&name) {
        Some(CatalogEntry::View(old)) if create.or_replace => {
            (old.owner.clone(), old.grants.clone())
        }
        Some(_) => {
            return Err(Error::Catalog(
                SqlState::DuplicateTable,
                format!("\"{name}\" already exists"),
            ))
        }
        None => (planner.user().to_string(), Default::default()),
    };
    wl.put_entry(
        &name,
        CatalogEntry::View(Arc::new(ViewDef {
            name: name.clone(),
            query,
            owner,
            grants,
        })),
    )?;
    Ok(ResultSet::empty())
}

/// Strips `CREATE [OR REPLACE] VIEW name [(cols)] AS` from a view definition.
fn view_query_text(definition: &str) -> String {
    if let Ok(stmts) = datafusion::sql::parser::DFParser::parse_sql(definition) {
        if let Some(DfStatement::Statement(s)) = stmts.front() {
            if let SqlStatement::CreateView(cv) = s.as_ref() {
                return cv.query.to_string();
            }
        }
    }
    definition.to_string()
}
