//! How a table on a storage engine appears to DataFusion: [`EngineTable`] pushes projections,
//! filters and limits into the engine's scan; [`EngineScanExec`] streams the engine's batches.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Constraint, Constraints, DataFusionError, Statistics};
use datafusion::datasource::TableType;
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};

use super::{
    table_info, to_filter, FilterSupport, ScanRequest, SharedEngineTxns, StorageEngine, TableInfo,
};
use crate::catalog::TableDef;
use crate::provider::{TableRole, ROW_ID_COLUMN};

/// A table on a storage engine, bound to the engine transactions of one statement.
pub(crate) struct EngineTable {
    def: Arc<TableDef>,
    info: TableInfo,
    engine: Arc<dyn StorageEngine>,
    txns: SharedEngineTxns,
    schema: SchemaRef,
    with_row_id: bool,
    constraints: Option<Constraints>,
    defaults: HashMap<String, Expr>,
}

impl fmt::Debug for EngineTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineTable")
            .field("table", &self.def.name)
            .field("engine", &self.engine.name())
            .finish()
    }
}

impl EngineTable {
    pub(crate) fn new(
        def: Arc<TableDef>,
        engine: Arc<dyn StorageEngine>,
        txns: SharedEngineTxns,
        role: TableRole,
        defaults: HashMap<String, Expr>,
    ) -> Self {
        let with_row_id = role == TableRole::UpdateOrDeleteTarget;
        let mut fields: Vec<Arc<Field>> = def
            .schema
            .fields()
            .iter()
            .map(|f| match role {
                TableRole::InsertTarget => Arc::new(f.as_ref().clone().with_nullable(true)),
                _ => f.clone(),
            })
            .collect();
        if with_row_id {
            fields.push(Arc::new(Field::new(ROW_ID_COLUMN, DataType::UInt64, false)));
        }
        let constraints = (!def.primary_key.is_empty()).then(|| {
            Constraints::new_unverified(vec![Constraint::PrimaryKey(def.primary_key.clone())])
        });
        Self {
            info: table_info(&def),
            def,
            engine,
            txns,
            schema: Arc::new(Schema::new(fields)),
            with_row_id,
            constraints,
            defaults,
        }
    }
}

#[async_trait]
impl TableProvider for EngineTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.constraints.as_ref()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.defaults.get(column)
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        let converted: Vec<Option<super::Filter>> = filters.iter().map(|f| to_filter(f)).collect();
        let asked: Vec<super::Filter> = converted.iter().flatten().cloned().collect();
        let mut answers = self.engine.supports_filters(&self.info, &asked).into_iter();
        Ok(converted
            .iter()
            .map(|c| match c {
                None => TableProviderFilterPushDown::Unsupported,
                Some(_) => match answers.next() {
                    Some(FilterSupport::Exact) => TableProviderFilterPushDown::Exact,
                    Some(FilterSupport::Inexact) => TableProviderFilterPushDown::Inexact,
                    _ => TableProviderFilterPushDown::Unsupported,
                },
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if self.with_row_id && !self.engine.capabilities().update_delete {
            return Err(DataFusionError::External(Box::new(
                super::require_update_delete(&self.engine, &self.info, "UPDATE or DELETE")
                    .err()
                    .unwrap_or_else(|| crate::Error::Unsupported("UPDATE or DELETE".into())),
            )));
        }
        let n = self.def.schema.fields().len();
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        // Ask the engine for the table columns in `wanted` (in order) plus the row id, then
        // put the row id where DataFusion wants it.
        let table_cols: Vec<usize> = wanted.iter().copied().filter(|&i| i < n).collect();
        let with_row_ids = self.with_row_id && wanted.contains(&n);
        let order: Vec<usize> = wanted
            .iter()
            .map(|&i| {
                if i < n {
                    table_cols.iter().position(|&c| c == i).unwrap_or(0)
                } else {
                    table_cols.len()
                }
            })
            .collect();
        let reorder = order.iter().enumerate().any(|(a, b)| a != *b);
        let pushed: Vec<(String, super::Filter)> = filters
            .iter()
            .filter_map(|f| to_filter(f).map(|c| (f.to_string(), c)))
            .collect();
        let request = ScanRequest {
            projection: Some(table_cols),
            filters: pushed.iter().map(|(_, f)| f.clone()).collect(),
            limit,
            with_row_ids,
        };
        let output = Arc::new(self.schema.project(&wanted)?);
        let description = format!(
            "engine={}, table={}, projection=[{}], filters=[{}]{}",
            self.engine.name(),
            self.def.name,
            output
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", "),
            pushed
                .iter()
                .map(|(s, _)| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            limit.map(|l| format!(", limit={l}")).unwrap_or_default()
        );
        // The engine's row count, when the scan returns all rows (pushed filters make it
        // unknown). Inexact: it is the plugin's word.
        let rows = if request.filters.is_empty() {
            self.txns
                .lock()
                .row_count(&self.engine, &self.info)
                .and_then(|r| usize::try_from(r).ok())
                .map(|r| limit.map_or(r, |l| r.min(l)))
        } else {
            None
        };
        Ok(Arc::new(EngineScanExec {
            rows,
            ..EngineScanExec::new(
                self.engine.clone(),
                self.info.clone(),
                self.txns.clone(),
                request,
                reorder.then_some(order),
                output,
                description,
            )
        }))
    }
}

/// Leaf operator that streams a scan of a storage engine.
pub struct EngineScanExec {
    engine: Arc<dyn StorageEngine>,
    info: TableInfo,
    txns: SharedEngineTxns,
    request: ScanRequest,
    reorder: Option<Vec<usize>>,
    description: String,
    properties: Arc<PlanProperties>,
    /// Rows the scan returns, as the engine estimates them.
    rows: Option<usize>,
}

impl fmt::Debug for EngineScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EngineScanExec: {}", self.description)
    }
}

impl EngineScanExec {
    fn new(
        engine: Arc<dyn StorageEngine>,
        info: TableInfo,
        txns: SharedEngineTxns,
        request: ScanRequest,
        reorder: Option<Vec<usize>>,
        schema: SchemaRef,
        description: String,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            engine,
            info,
            txns,
            request,
            reorder,
            description,
            properties,
            rows: None,
        }
    }
}

impl DisplayAs for EngineScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "EngineScanExec: {}", self.description)
    }
}

impl ExecutionPlan for EngineScanExec {
    fn name(&self) -> &str {
        "EngineScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(
            &Arc<dyn datafusion::physical_expr::PhysicalExpr>,
        ) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> DfResult<Arc<Statistics>> {
        // One partition: the whole scan and partition 0 are the same.
        let mut stats = Statistics::new_unknown(&self.schema());
        if let Some(rows) = self.rows {
            stats.num_rows = Precision::Inexact(rows);
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
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "EngineScanExec has one partition, asked for {partition}"
            )));
        }
        let schema = self.schema();
        let mut builder = RecordBatchReceiverStreamBuilder::new(schema.clone(), 2);
        let tx = builder.tx();
        let engine = self.engine.clone();
        let info = self.info.clone();
        let txns = self.txns.clone();
        let request = self.request.clone();
        let reorder = self.reorder.clone();
        // Engines do blocking I/O (files, object stores): run the scan on a blocking thread.
        builder.spawn_blocking(move || {
            let reader = txns.lock().scan(&engine, &info, &request);
            // Release the transaction handle before streaming: the statement may end (and
            // commit) while this thread still drains the engine's reader.
            drop(txns);
            let reader = reader.map_err(|e| DataFusionError::External(Box::new(e)))?;
            for batch in reader {
                let batch = batch
                    .map_err(|e| DataFusionError::External(Box::new(e)))
                    .and_then(|b| shape(b, reorder.as_deref(), &schema));
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

/// Puts the engine's columns in the order DataFusion asked for.
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
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?)
}
