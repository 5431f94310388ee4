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

use super::external;
use crate::engines::{Batches, ScanPartition, TableScan};

/// Leaf operator streaming a table scan planned by its engine.
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
}

impl fmt::Debug for PhantomScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhantomScanExec: {}", self.description)
    }
}

impl PhantomScanExec {
    pub(super) fn new(
        scan: TableScan,
        reorder: Option<Vec<usize>>,
        schema: SchemaRef,
        description: String,
    ) -> Self {
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
        }
    }
}

impl DisplayAs for PhantomScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "PhantomScanExec: {}", self.description)
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
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
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
        let reorder = self.reorder.clone();
        let shaped = move |b: crate::Result<RecordBatch>| {
            b.map_err(external)
                .and_then(|b| shape(b, reorder.as_deref(), &schema))
        };
        if !self.blocking {
            // Reading decodes in memory-mapped pages: no blocking I/O to hide.
            let batches = opened(part).map(shaped);
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
            let opened = part.open();
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
fn opened(part: Arc<dyn ScanPartition>) -> impl Iterator<Item = crate::Result<RecordBatch>> {
    std::iter::once(part).flat_map(|p| -> Batches {
        match p.open() {
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
