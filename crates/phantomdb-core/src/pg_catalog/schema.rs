//! The `pg_catalog` schema provider: resolves a relation name, per statement, to a table
//! built from the statement's catalog snapshot (or a view planned from its query), so a
//! table created a moment ago is there.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::datasource::{MemTable, ViewTable};
use datafusion::error::Result as DfResult;

use super::cells::batch;
use super::rows::{rows, Snapshot};
use super::tables::{relation, Relation, Source, RELATIONS};
use super::views::view_sql;
use arrow::datatypes::SchemaRef;

use crate::catalog::Catalog;
use crate::planner::schema::{PhantomSchema, StatementContext};

/// The schema DataFusion resolves `pg_catalog.<name>` through.
#[derive(Debug, Clone)]
pub(crate) struct PgCatalogSchema {
    /// The connection's schema provider, whose statement context holds the snapshot.
    phantom: PhantomSchema,
}

impl PgCatalogSchema {
    pub(crate) fn new(phantom: PhantomSchema) -> Self {
        Self { phantom }
    }
}

/// A table of the rows built for `relation`.
fn mem_table(
    relation: &Relation,
    rows: &[Vec<super::cells::Cell>],
) -> DfResult<Arc<dyn TableProvider>> {
    let batch = batch(relation, rows)?;
    Ok(Arc::new(MemTable::try_new(
        batch.schema(),
        vec![vec![batch]],
    )?))
}

/// The columns of each view of `catalog`, planned from its query (`None` when it no longer
/// plans).
async fn view_columns(ctx: &StatementContext, catalog: &Catalog) -> Vec<Option<SchemaRef>> {
    let mut columns = Vec::new();
    for v in catalog.views() {
        let plan = ctx.state.create_logical_plan(&v.query).await.ok();
        columns.push(plan.map(|p| Arc::new(p.schema().as_arrow().clone())));
    }
    columns
}

#[async_trait]
impl SchemaProvider for PgCatalogSchema {
    fn table_names(&self) -> Vec<String> {
        RELATIONS.iter().map(|r| r.name.to_string()).collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(relation) = relation(name) else {
            return Ok(None);
        };
        let context = self.phantom.context();
        match (relation.source, context) {
            (Source::View, Some(ctx)) => {
                let sql = view_sql(relation, &ctx.state);
                let plan = ctx.state.create_logical_plan(&sql).await?;
                Ok(Some(Arc::new(ViewTable::new(plan, Some(sql)))))
            }
            (Source::Catalog, Some(ctx)) => {
                let catalog = ctx.txns.view.catalog();
                let columns = if matches!(relation.name, "pg_class" | "pg_attribute") {
                    view_columns(&ctx, &catalog).await
                } else {
                    Vec::new()
                };
                let s = Snapshot {
                    catalog: &catalog,
                    engines: ctx.registry.engines().map(|e| e.name.clone()).collect(),
                    views: catalog.views().map(|v| &**v).zip(columns).collect(),
                };
                mem_table(relation, &rows(relation, &s)).map(Some)
            }
            // Empty relations, and any relation outside a statement (DataFusion's
            // information_schema lists columns after planning): no rows.
            _ => mem_table(relation, &[]).map(Some),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        relation(name).is_some()
    }
}
