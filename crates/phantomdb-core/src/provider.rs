//! How PhantomDB tables appear to DataFusion: a [`TableProvider`] per table and statement, and
//! the scan operator it plans (a segment scan, or a primary-key lookup).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Constraint, Constraints, ScalarValue, Statistics};
use datafusion::datasource::TableType;
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};

use crate::catalog::TableDef;
use futures::StreamExt;

use crate::storage::{encode_key_columns, DataView, SegmentRef};

/// Name of the hidden column that carries row ids into UPDATE and DELETE plans.
pub const ROW_ID_COLUMN: &str = "__phantomdb_rowid";

/// What a statement does with a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableRole {
    /// Read from.
    Read,
    /// Written by INSERT (or COPY): NOT NULL is checked by PhantomDB, not by the plan.
    InsertTarget,
    /// Written by UPDATE or DELETE: the table also exposes [`ROW_ID_COLUMN`], last.
    UpdateOrDeleteTarget,
}

/// A PhantomDB table bound to the snapshot (or write transaction) of one statement.
#[derive(Debug)]
pub struct PhantomTable {
    def: Arc<TableDef>,
    view: Arc<dyn DataView>,
    schema: SchemaRef,
    with_row_id: bool,
    constraints: Option<Constraints>,
    defaults: HashMap<String, Expr>,
}

impl PhantomTable {
    /// Binds `def` to `view` for a statement in role `role`.
    pub fn new(
        def: Arc<TableDef>,
        view: Arc<dyn DataView>,
        role: TableRole,
        defaults: HashMap<String, Expr>,
    ) -> Self {
        let with_row_id = role == TableRole::UpdateOrDeleteTarget;
        let mut fields: Vec<Arc<Field>> = def
            .schema
            .fields()
            .iter()
            .map(|f| match role {
                // PhantomDB checks NOT NULL itself, with a clear message naming the column.
                TableRole::InsertTarget => Arc::new(f.as_ref().clone().with_nullable(true)),
                _ => f.clone(),
            })
            .collect();
        if with_row_id {
            fields.push(Arc::new(Field::new(ROW_ID_COLUMN, DataType::UInt64, false)));
        }
        let schema = Arc::new(Schema::new(fields));
        let constraints = (!def.primary_key.is_empty()).then(|| {
            Constraints::new_unverified(vec![Constraint::PrimaryKey(def.primary_key.clone())])
        });
        Self {
            def,
            view,
            schema,
            with_row_id,
            constraints,
            defaults,
        }
    }

    /// If `expr` is `pk = literal` or `pk IN (literals)` on a single-column primary key,
    /// the key values it selects.
    fn key_values(&self, expr: &Expr) -> Option<Vec<ScalarValue>> {
        if self.def.primary_key.len() != 1 {
            return None;
        }
        let pk_field = self.def.schema.field(self.def.primary_key[0]);
        let is_pk = |e: &Expr| matches!(e, Expr::Column(c) if c.name == *pk_field.name());
        let literal = |e: &Expr| match e {
            Expr::Literal(v, _) if !v.is_null() => v.cast_to(pk_field.data_type()).ok(),
            _ => None,
        };
        match expr {
            Expr::BinaryExpr(b) if b.op == Operator::Eq => {
                if is_pk(&b.left) {
                    literal(&b.right).map(|v| vec![v])
                } else if is_pk(&b.right) {
                    literal(&b.left).map(|v| vec![v])
                } else {
                    None
                }
            }
            Expr::InList(l) if !l.negated && is_pk(&l.expr) => {
                l.list.iter().map(literal).collect::<Option<Vec<_>>>()
            }
            _ => None,
        }
    }
}

#[async_trait]
impl TableProvider for PhantomTable {
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
        // Only the first key predicate is used for the lookup; others are re-checked.
        let mut used = self.with_row_id;
        Ok(filters
            .iter()
            .map(|f| {
                if !used && self.key_values(f).is_some() {
                    used = true;
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let projected = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => self.schema.clone(),
        };
        let project = |b: RecordBatch| -> DfResult<RecordBatch> {
            match projection {
                Some(p) => Ok(b.project(p)?),
                None => Ok(b),
            }
        };
        // Keyed lookup when a filter pins the primary key.
        if !self.with_row_id {
            if let Some((filter, keys)) = filters
                .iter()
                .find_map(|f| self.key_values(f).map(|k| (f, k)))
            {
                let array = ScalarValue::iter_to_array(keys.clone())?;
                let encoded = encode_key_columns(&self.def, &[array])?;
                let rows = self.view.lookup(&self.def, &encoded)?;
                let rows = project(rows)?;
                let description = format!("table={}, key=[{filter}]", self.def.name);
                return Ok(Arc::new(KeyLookupExec::new(
                    description,
                    projected,
                    vec![vec![rows]],
                )));
            }
        }
        // A full scan: segments are read and decoded lazily, per partition, and only the
        // projected columns.
        let n = self.def.schema.fields().len();
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let table_cols: Vec<usize> = wanted.iter().copied().filter(|&i| i < n).collect();
        let row_id_at = wanted.iter().position(|&i| i >= n);
        let refs = self.view.segment_refs(&self.def)?;
        let partitions_wanted = state.config().target_partitions().max(1);
        let mut partitions: Vec<Vec<SegmentRef>> =
            vec![Vec::new(); partitions_wanted.min(refs.len()).max(1)];
        let count = refs.len();
        for (i, r) in refs.into_iter().enumerate() {
            let k = partitions.len();
            partitions[i % k].push(r);
        }
        let description = format!("table={}, segments={count}", self.def.name);
        // Rows per partition, for the planner (join sides, COUNT(*) without a scan).
        let partition_rows = partitions
            .iter()
            .map(|segs| {
                let rows = segs
                    .iter()
                    .map(SegmentRef::live_rows)
                    .sum::<Option<usize>>();
                rows.map(|r| limit.map_or(r, |l| r.min(l)))
            })
            .collect();
        Ok(Arc::new(SegmentScanExec {
            partition_rows,
            def: self.def.clone(),
            view: self.view.clone(),
            columns: table_cols,
            row_id_at,
            limit,
            batch_size: state.config().batch_size().max(1),
            description,
            properties: Arc::new(PlanProperties::new(
                EquivalenceProperties::new(projected),
                Partitioning::UnknownPartitioning(partitions.len()),
                EmissionType::Incremental,
                Boundedness::Bounded,
            )),
            partitions,
        }))
    }
}

/// Statistics with an exact row count (when known) and nothing else.
fn row_count_statistics(schema: &Schema, rows: Option<usize>) -> Statistics {
    let mut stats = Statistics::new_unknown(schema);
    if let Some(rows) = rows {
        stats.num_rows = Precision::Exact(rows);
    }
    stats
}

/// Leaf operator streaming a table's segments: each partition reads and decodes its segments
/// one at a time (only the projected columns), drops deleted rows and adds row ids if asked.
#[derive(Debug)]
pub struct SegmentScanExec {
    def: Arc<TableDef>,
    view: Arc<dyn DataView>,
    /// Table columns to read, in output order (row id aside).
    columns: Vec<usize>,
    /// Where the row id column goes in the output, if wanted.
    row_id_at: Option<usize>,
    limit: Option<usize>,
    batch_size: usize,
    description: String,
    properties: Arc<PlanProperties>,
    partitions: Vec<Vec<SegmentRef>>,
    /// Rows each partition returns, when known.
    partition_rows: Vec<Option<usize>>,
}

impl SegmentScanExec {
    /// The live rows of one segment, shaped as the output.
    fn read(&self, seg: &SegmentRef) -> DfResult<RecordBatch> {
        let batch = self.view.load(&self.def, seg, &self.columns)?;
        let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
        if let Some(at) = self.row_id_at {
            let ids: UInt64Array = (0..batch.num_rows() as u64)
                .map(|i| (seg.id << 32) | i)
                .collect();
            cols.insert(at, Arc::new(ids));
        }
        let batch = RecordBatch::try_new_with_options(
            self.schema(),
            cols,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )?;
        Ok(match &seg.deleted {
            None => batch,
            Some(bm) => {
                arrow::compute::filter_record_batch(&batch, &bm.keep_mask(batch.num_rows()))?
            }
        })
    }
}

impl DisplayAs for SegmentScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "PhantomScanExec: {}", self.description)
    }
}

impl ExecutionPlan for SegmentScanExec {
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
        _f: &mut dyn FnMut(
            &Arc<dyn datafusion::physical_expr::PhysicalExpr>,
        ) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> DfResult<Arc<Statistics>> {
        let rows = match args.partition() {
            Some(p) => self.partition_rows.get(p).copied().flatten(),
            None => self.partition_rows.iter().copied().sum(),
        };
        Ok(Arc::new(row_count_statistics(&self.schema(), rows)))
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
        let segments = self.partitions.get(partition).cloned().unwrap_or_default();
        let this = SegmentScanExec {
            def: self.def.clone(),
            view: self.view.clone(),
            columns: self.columns.clone(),
            row_id_at: self.row_id_at,
            limit: self.limit,
            batch_size: self.batch_size,
            description: String::new(),
            properties: self.properties.clone(),
            partitions: Vec::new(),
            partition_rows: Vec::new(),
        };
        let mut remaining = self.limit.unwrap_or(usize::MAX);
        let batch_size = self.batch_size;
        let stream = futures::stream::iter(segments)
            .map(move |seg| -> DfResult<Vec<RecordBatch>> {
                if remaining == 0 {
                    return Ok(Vec::new());
                }
                let batch = this.read(&seg)?;
                let n = batch.num_rows().min(remaining);
                remaining -= n;
                let mut out = Vec::with_capacity(n / batch_size + 1);
                let mut offset = 0;
                while offset < n {
                    let len = batch_size.min(n - offset);
                    out.push(batch.slice(offset, len));
                    offset += len;
                }
                Ok(out)
            })
            .flat_map(|r| match r {
                Ok(batches) => {
                    futures::stream::iter(batches.into_iter().map(Ok).collect::<Vec<_>>())
                }
                Err(e) => futures::stream::iter(vec![Err(e)]),
            });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            stream,
        )))
    }
}

/// Leaf operator producing the rows a primary-key lookup found through the index (read from
/// the snapshot while planning: a handful of rows). Full scans are [`SegmentScanExec`].
#[derive(Debug)]
pub struct KeyLookupExec {
    description: String,
    partitions: Vec<Vec<RecordBatch>>,
    properties: Arc<PlanProperties>,
}

impl KeyLookupExec {
    fn new(description: String, schema: SchemaRef, partitions: Vec<Vec<RecordBatch>>) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(partitions.len()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            description,
            partitions,
            properties,
        }
    }
}

impl DisplayAs for KeyLookupExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "PhantomKeyLookupExec: {}", self.description)
    }
}

impl ExecutionPlan for KeyLookupExec {
    fn name(&self) -> &str {
        "PhantomKeyLookupExec"
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
        args: &StatisticsArgs,
    ) -> DfResult<Arc<Statistics>> {
        let count = |p: &Vec<RecordBatch>| p.iter().map(RecordBatch::num_rows).sum::<usize>();
        let rows = match args.partition() {
            Some(p) => self.partitions.get(p).map(count),
            None => Some(self.partitions.iter().map(count).sum()),
        };
        Ok(Arc::new(row_count_statistics(&self.schema(), rows)))
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
        let batches = self.partitions.get(partition).cloned().unwrap_or_default();
        let stream = futures::stream::iter(batches.into_iter().map(Ok));
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            stream,
        )))
    }
}
