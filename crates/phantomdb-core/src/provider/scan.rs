//! The scan operator of every table: one partition per engine partition, each opened when
//! DataFusion executes it.

use std::fmt;
use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::datatypes::SchemaRef;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Statistics};
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::stream::{
    RecordBatchReceiverStreamBuilder, RecordBatchStreamAdapter,
};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};

use datafusion::common::config::ConfigOptions;
use datafusion::common::{ColumnStatistics, ScalarValue};
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterPushdownPhase, FilterPushdownPropagation, PushedDown,
};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};

use super::external;
use super::prune::SegmentPruner;
use crate::engines::{Batches, ScanPartition, TableScan, UnitFilter};
use crate::table::stats::ColumnStats;

/// Leaf operator streaming a table scan planned by its engine.
#[derive(Clone)]
pub(crate) struct PhantomScanExec {
    partitions: Vec<Arc<dyn ScanPartition>>,
    /// Rows each partition returns, when known.
    rows: Vec<Option<usize>>,
    exact_rows: bool,
    blocking: bool,
    /// Output position → engine column, when the engine's order differs.
    reorder: Option<Vec<usize>>,
    description: String,
    properties: Arc<PlanProperties>,
    /// Column statistics of each partition, by output column.
    column_stats: Vec<Vec<Option<ColumnStats>>>,
    /// Output position → table column (`None`: the row id).
    table_columns: Arc<Vec<Option<usize>>>,
    /// Whether the engine skips units of storage by their statistics.
    prunable: bool,
    /// Filters accepted from DataFusion's filter pushdown, used to skip segments (rows are
    /// still filtered above the scan).
    filters: Vec<Arc<dyn PhysicalExpr>>,
    metrics: ExecutionPlanMetricsSet,
}

impl fmt::Debug for PhantomScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhantomScanExec: {}", self.description)
    }
}

impl PhantomScanExec {
    /// `table_columns`: the table column of each output column (`None` for the row id).
    pub(super) fn new(
        scan: TableScan,
        reorder: Option<Vec<usize>>,
        schema: SchemaRef,
        table_columns: Vec<Option<usize>>,
        description: String,
    ) -> Self {
        let column_stats = scan
            .column_stats
            .iter()
            .map(|part| {
                table_columns
                    .iter()
                    .map(|c| c.and_then(|c| part.get(c).cloned().flatten()))
                    .collect()
            })
            .collect();
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(scan.partitions.len().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            partitions: scan.partitions,
            rows: scan.rows,
            exact_rows: scan.exact_rows,
            blocking: scan.blocking,
            reorder,
            description,
            properties,
            column_stats,
            table_columns: Arc::new(table_columns),
            prunable: scan.prunable,
            filters: Vec::new(),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// DataFusion's statistics of one partition's column (`None`: of all partitions).
    fn column_statistics(&self, partition: Option<usize>, column: usize) -> ColumnStatistics {
        let parts: Vec<Option<&ColumnStats>> = match partition {
            Some(p) => vec![self
                .column_stats
                .get(p)
                .and_then(|c| c.get(column)?.as_ref())],
            None => self
                .column_stats
                .iter()
                .map(|c| c.get(column)?.as_ref())
                .collect(),
        };
        let mut merged: Option<ColumnStats> = None;
        for part in parts {
            let Some(part) = part else {
                return ColumnStatistics::new_unknown();
            };
            match &mut merged {
                None => merged = Some(part.clone()),
                Some(m) => m.merge(part),
            }
        }
        let Some(m) = merged else {
            return ColumnStatistics::new_unknown();
        };
        // Bounds of stored rows: deleted rows still count, and skipped segments still count.
        let inexact = |v: Option<ScalarValue>| v.map_or(Precision::Absent, Precision::Inexact);
        ColumnStatistics {
            null_count: Precision::Inexact(m.null_count),
            max_value: inexact(m.max),
            min_value: inexact(m.min),
            sum_value: Precision::Absent,
            distinct_count: Precision::Inexact(m.distinct.estimate()),
            byte_size: Precision::Absent,
        }
    }
}

impl DisplayAs for PhantomScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "PhantomScanExec: {}", self.description)?;
        if !self.filters.is_empty() {
            let shown: Vec<String> = self.filters.iter().map(|e| e.to_string()).collect();
            write!(f, ", pruning=[{}]", shown.join(", "))?;
        }
        Ok(())
    }
}

impl ExecutionPlan for PhantomScanExec {
    fn name(&self) -> &str {
        "PhantomScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        for filter in &self.filters {
            if f(filter)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    /// Takes the filters pushed to the scan (a `WHERE`'s, then the dynamic filters of joins
    /// and TopK) to skip segments with; they stay applied above the scan as well.
    fn handle_child_pushdown_result(
        &self,
        _phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> DfResult<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        let offered: Vec<Arc<dyn PhysicalExpr>> = child_pushdown_result
            .parent_filters
            .into_iter()
            .map(|f| f.filter)
            .collect();
        let answers = vec![PushedDown::No; offered.len()];
        if !self.prunable || offered.is_empty() {
            return Ok(FilterPushdownPropagation::with_parent_pushdown_result(
                answers,
            ));
        }
        let mut next = self.clone();
        next.filters.extend(offered);
        // Segments may be skipped now: the row counts are estimates.
        next.exact_rows = false;
        next.metrics = ExecutionPlanMetricsSet::new();
        Ok(
            FilterPushdownPropagation::with_parent_pushdown_result(answers)
                .with_updated_node(Arc::new(next) as Arc<dyn ExecutionPlan>),
        )
    }

    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> DfResult<Arc<Statistics>> {
        let rows = match args.partition() {
            Some(p) => self.rows.get(p).copied().flatten(),
            None => self.rows.iter().copied().sum(),
        };
        let mut stats = Statistics::new_unknown(&self.schema());
        if !self.column_stats.is_empty() {
            stats.column_statistics = (0..self.schema().fields().len())
                .map(|c| self.column_statistics(args.partition(), c))
                .collect();
        }
        if let Some(rows) = rows {
            stats.num_rows = if self.exact_rows {
                Precision::Exact(rows)
            } else {
                Precision::Inexact(rows)
            };
        }
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
        _ctx: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let schema = self.schema();
        let Some(part) = self.partitions.get(partition).cloned() else {
            if self.partitions.is_empty() && partition == 0 {
                let empty = futures::stream::empty();
                return Ok(Box::pin(RecordBatchStreamAdapter::new(schema, empty)));
            }
            return Err(DataFusionError::Internal(format!(
                "PhantomScanExec has {} partitions, asked for {partition}",
                self.partitions.len()
            )));
        };
        let filter: Option<Arc<dyn UnitFilter>> = self.prunable.then(|| {
            Arc::new(SegmentPruner::new(
                self.filters.clone(),
                self.schema(),
                self.table_columns.clone(),
                MetricBuilder::new(&self.metrics).counter("segments_scanned", partition),
                MetricBuilder::new(&self.metrics).counter("segments_skipped", partition),
            )) as Arc<dyn UnitFilter>
        });
        let reorder = self.reorder.clone();
        let shaped = move |b: crate::Result<RecordBatch>| {
            b.map_err(external)
                .and_then(|b| shape(b, reorder.as_deref(), &schema))
        };
        if !self.blocking {
            // Reading decodes in memory-mapped pages: no blocking I/O to hide.
            let batches = opened(part, filter).map(shaped);
            return Ok(Box::pin(RecordBatchStreamAdapter::new(
                self.schema(),
                futures::stream::iter(batches),
            )));
        }
        // The engine blocks (files, object stores): read on a blocking thread.
        let mut builder = RecordBatchReceiverStreamBuilder::new(self.schema(), 2);
        let tx = builder.tx();
        builder.spawn_blocking(move || {
            // Open, then let go of the partition: it holds the statement's engine
            // transactions, which the statement may end (and commit) while this thread still
            // drains the engine's reader.
            let opened = match filter {
                Some(f) => part.open_filtered(f),
                None => part.open(),
            };
            drop(part);
            let batches: Batches = match opened {
                Ok(batches) => batches,
                Err(e) => Box::new(std::iter::once(Err(e))),
            };
            for batch in batches.map(shaped) {
                let failed = batch.is_err();
                if tx.blocking_send(batch).is_err() || failed {
                    break;
                }
            }
            Ok(())
        });
        Ok(builder.build())
    }
}

/// The partition's batches, opened at the first read; an error to open is the only item.
fn opened(
    part: Arc<dyn ScanPartition>,
    filter: Option<Arc<dyn UnitFilter>>,
) -> impl Iterator<Item = crate::Result<RecordBatch>> {
    std::iter::once(part).flat_map(move |p| -> Batches {
        let opened = match filter.clone() {
            Some(f) => p.open_filtered(f),
            None => p.open(),
        };
        match opened {
            Ok(batches) => batches,
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    })
}

/// Puts the engine's columns in the order DataFusion asked for, under its schema.
fn shape(
    batch: RecordBatch,
    reorder: Option<&[usize]>,
    schema: &SchemaRef,
) -> DfResult<RecordBatch> {
    let batch = match reorder {
        Some(order) => batch.project(order)?,
        None => batch,
    };
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        batch.columns().to_vec(),
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?)
}
