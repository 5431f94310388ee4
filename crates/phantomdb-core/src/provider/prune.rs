//! Skipping segments: the filters a scan accepted from DataFusion (a `WHERE`'s conjuncts, and
//! the dynamic filters hash joins and TopK fill in while the query runs) are tested with
//! DataFusion's `PruningPredicate` against each segment's min/max/null counts just before the
//! segment is read. A dynamic filter is read at that moment, so segments opened after a join's
//! build side finished are tested against its bounds.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, UInt64Array};
use arrow::datatypes::SchemaRef;
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, ScalarValue};
use datafusion::physical_expr::conjunction;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr_common::physical_expr::{
    snapshot_generation, snapshot_physical_expr,
};
use datafusion::physical_optimizer::pruning::{PruningPredicate, PruningPredicateBuilder};
use datafusion::physical_plan::metrics::Count;
use parking_lot::Mutex;

use crate::engines::UnitFilter;
use crate::table::stats::{ColumnStats, UnitStats};

/// Tests one scan partition's segments against the scan's filters, counting what it decides.
pub(super) struct SegmentPruner {
    filters: Vec<Arc<dyn PhysicalExpr>>,
    /// The scan's output schema (the filters' columns refer to it).
    schema: SchemaRef,
    /// Output position → table column (`None`: the row id).
    columns: Arc<Vec<Option<usize>>>,
    /// The predicate built for the filters' current state, by snapshot generation.
    predicate: Mutex<Option<(u64, Option<Arc<PruningPredicate>>)>>,
    scanned: Count,
    skipped: Count,
}

impl SegmentPruner {
    pub(super) fn new(
        filters: Vec<Arc<dyn PhysicalExpr>>,
        schema: SchemaRef,
        columns: Arc<Vec<Option<usize>>>,
        scanned: Count,
        skipped: Count,
    ) -> Self {
        Self {
            filters,
            schema,
            columns,
            predicate: Mutex::new(None),
            scanned,
            skipped,
        }
    }

    /// The pruning predicate of the filters as they are now; `None` if it cannot rule
    /// anything out.
    fn predicate(&self) -> Option<Arc<PruningPredicate>> {
        if self.filters.is_empty() {
            return None;
        }
        let expr = conjunction(self.filters.iter().cloned());
        let generation = snapshot_generation(&expr);
        let mut cached = self.predicate.lock();
        if let Some((g, p)) = cached.as_ref() {
            if *g == generation {
                return p.clone();
            }
        }
        let built = snapshot_physical_expr(expr).ok().and_then(|e| {
            PruningPredicateBuilder::new()
                .with_file_schema(self.schema.clone())
                .build(e)
        });
        *cached = Some((generation, built.clone()));
        built
    }

    fn matches(&self, stats: &UnitStats) -> bool {
        let Some(predicate) = self.predicate() else {
            return true;
        };
        let unit = OneUnit {
            stats,
            schema: &self.schema,
            columns: &self.columns,
        };
        predicate
            .prune(&unit)
            .map(|keep| keep.first().copied().unwrap_or(true))
            .unwrap_or(true)
    }
}

impl UnitFilter for SegmentPruner {
    fn may_match(&self, stats: Option<&UnitStats>) -> bool {
        let keep = stats.is_none_or(|s| self.matches(s));
        if keep {
            self.scanned.add(1);
        } else {
            self.skipped.add(1);
        }
        keep
    }
}

/// One segment's statistics as DataFusion's pruning reads them (one "container").
struct OneUnit<'a> {
    stats: &'a UnitStats,
    schema: &'a SchemaRef,
    columns: &'a [Option<usize>],
}

impl OneUnit<'_> {
    /// The statistics of an output column, with its type.
    fn column(&self, column: &Column) -> Option<(&ColumnStats, &arrow::datatypes::DataType)> {
        let position = self.schema.index_of(column.name()).ok()?;
        let table_column = (*self.columns.get(position)?)?;
        let stats = self.stats.columns.get(table_column)?;
        Some((stats, self.schema.field(position).data_type()))
    }

    fn bound(
        &self,
        column: &Column,
        pick: impl Fn(&ColumnStats) -> &Option<ScalarValue>,
    ) -> Option<ArrayRef> {
        let (stats, data_type) = self.column(column)?;
        let value = pick(stats).as_ref()?;
        let value = if value.data_type() == *data_type {
            value.clone()
        } else {
            value.cast_to(data_type).ok()?
        };
        value.to_array().ok()
    }
}

impl PruningStatistics for OneUnit<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.bound(column, |s| &s.min)
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.bound(column, |s| &s.max)
    }

    fn num_containers(&self) -> usize {
        1
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        let (stats, _) = self.column(column)?;
        Some(Arc::new(UInt64Array::from(vec![stats.null_count as u64])))
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        Some(Arc::new(UInt64Array::from(vec![self.stats.rows as u64])))
    }

    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}
