//! `generate_series` and `range` as DataFusion provides them, plus their exact row count for
//! the planner: with it, a join builds its hash table (or a cross join its buffered side) on
//! the smaller input instead of collecting a huge series into memory.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::TableFunctionArgs;
use datafusion::catalog::{Session, TableFunctionImpl, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{ScalarValue, Statistics};
use datafusion::datasource::TableType;
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};

/// Wraps DataFusion's series function `inner` (`include_end`: `generate_series`; not: `range`).
#[derive(Debug)]
pub(crate) struct CountedSeries {
    pub(crate) inner: Arc<dyn TableFunctionImpl>,
    pub(crate) include_end: bool,
}

impl TableFunctionImpl for CountedSeries {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let rows = series_rows(args.exprs(), self.include_end);
        let inner = self.inner.call_with_args(args)?;
        Ok(match rows {
            Some(rows) => Arc::new(CountedTable { inner, rows }),
            None => inner,
        })
    }
}

/// Rows of an integer series with literal bounds; `None` for other arguments.
fn series_rows(args: &[Expr], include_end: bool) -> Option<usize> {
    let ints = args
        .iter()
        .map(|a| match a {
            Expr::Literal(ScalarValue::Int64(Some(v)), _) => Some(i128::from(*v)),
            _ => None,
        })
        .collect::<Option<Vec<i128>>>()?;
    let (start, end, step) = match ints[..] {
        [end] => (0, end, 1),
        [start, end] => (start, end, 1),
        [start, end, step] if step != 0 => (start, end, step),
        _ => return None,
    };
    let span = if step > 0 { end - start } else { start - end };
    let step = step.abs();
    let rows = if span < 0 {
        0
    } else if include_end {
        span / step + 1
    } else {
        (span + step - 1) / step
    };
    usize::try_from(rows).ok()
}

/// A series table that knows its row count.
#[derive(Debug)]
struct CountedTable {
    inner: Arc<dyn TableProvider>,
    rows: usize,
}

#[async_trait]
impl TableProvider for CountedTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Nothing pushed: the series always yields all its rows.
        Ok(vec![
            TableProviderFilterPushDown::Unsupported;
            filters.len()
        ])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let inner = self.inner.scan(state, projection, filters, limit).await?;
        let rows = limit.map_or(self.rows, |l| l.min(self.rows));
        Ok(Arc::new(CountedExec { inner, rows }))
    }
}

/// The series' own operator, reporting its exact row count.
#[derive(Debug)]
struct CountedExec {
    inner: Arc<dyn ExecutionPlan>,
    rows: usize,
}

impl DisplayAs for CountedExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.fmt_as(t, f)?;
        write!(f, ", rows={}", self.rows)
    }
}

impl ExecutionPlan for CountedExec {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> DfResult<Arc<Statistics>> {
        // One partition: the whole operator and partition 0 are the same.
        let mut stats = Statistics::new_unknown(&self.schema());
        stats.num_rows = Precision::Exact(self.rows);
        Ok(Arc::new(stats))
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        ctx: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        self.inner.execute(partition, ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(v: i64) -> Expr {
        Expr::Literal(ScalarValue::Int64(Some(v)), None)
    }

    #[test]
    fn series_lengths_match_their_bounds() {
        assert_eq!(series_rows(&[lit(1), lit(10)], true), Some(10));
        assert_eq!(series_rows(&[lit(1), lit(10)], false), Some(9));
        assert_eq!(series_rows(&[lit(5)], true), Some(6));
        assert_eq!(series_rows(&[lit(1), lit(10), lit(3)], true), Some(4));
        assert_eq!(series_rows(&[lit(1), lit(10), lit(3)], false), Some(3));
        assert_eq!(series_rows(&[lit(10), lit(1), lit(-2)], true), Some(5));
        assert_eq!(series_rows(&[lit(10), lit(1)], true), Some(0));
        assert_eq!(series_rows(&[lit(1), lit(10), lit(0)], true), None);
    }
}
