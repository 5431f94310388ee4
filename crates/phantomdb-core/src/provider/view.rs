//! How a view appears to DataFusion: [`PhantomView`], DataFusion's `ViewTable` plus the
//! view's definition (its owner and grants).
//!
//! DataFusion inlines a view's plan where the view is named when its provider offers one, and
//! the plan then no longer says which subtree came from which view. `PhantomView` offers none,
//! so the privilege check sees a scan of the view (checked as the user) whose plan it checks
//! as the view's owner; [`inline_views`] then inlines the views exactly as DataFusion would
//! have, so optimization crosses view boundaries as before.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::Transformed;
use datafusion::datasource::{source_as_provider, TableType, ViewTable};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    Expr, LogicalPlan, LogicalPlanBuilder, TableProviderFilterPushDown,
};
use datafusion::physical_plan::ExecutionPlan;

use crate::catalog::ViewDef;
use crate::error::Result;

/// A stored view planned for one statement.
#[derive(Debug)]
pub(crate) struct PhantomView {
    def: Arc<ViewDef>,
    inner: ViewTable,
}

impl PhantomView {
    /// The view `def` whose query planned to `plan`.
    pub(crate) fn new(def: Arc<ViewDef>, plan: LogicalPlan) -> Self {
        let inner = ViewTable::new(plan, Some(def.query.clone()));
        Self { def, inner }
    }

    /// The view's definition (owner, grants).
    pub(crate) fn def(&self) -> &Arc<ViewDef> {
        &self.def
    }

    /// The view's query, planned.
    pub(crate) fn plan(&self) -> &LogicalPlan {
        self.inner.logical_plan()
    }
}

#[async_trait]
impl TableProvider for PhantomView {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn get_table_definition(&self) -> Option<&str> {
        self.inner.get_table_definition()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.inner.scan(state, projection, filters, limit).await
    }
}

/// Replaces every scan of a [`PhantomView`] (also in subqueries and inside other views) by
/// the view's plan under the view's name, as DataFusion's plan builder inlines views.
pub(crate) fn inline_views(plan: LogicalPlan) -> Result<LogicalPlan> {
    let inlined = plan.transform_down_with_subqueries(|node| {
        let LogicalPlan::TableScan(scan) = &node else {
            return Ok(Transformed::no(node));
        };
        if !scan.filters.is_empty() || scan.projection.is_some() {
            return Ok(Transformed::no(node));
        }
        let Ok(provider) = source_as_provider(&scan.source) else {
            return Ok(Transformed::no(node));
        };
        let Some(view) = provider.downcast_ref::<PhantomView>() else {
            return Ok(Transformed::no(node));
        };
        let plan = LogicalPlanBuilder::from(view.plan().clone())
            .alias(scan.table_name.clone())?
            .build()?;
        Ok(Transformed::yes(plan))
    })?;
    Ok(inlined.data)
}
