//! `phantomdb_column_statistics()`: the column statistics the default engine records per
//! segment, merged per table column, for the tables the role may read (bounds reveal data).

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;

use crate::catalog::DEFAULT_ENGINE;
use crate::planner::schema::PhantomSchema;
use crate::privileges::{Actor, Privilege};
use crate::table::stats::merge_units;

/// The `phantomdb_column_statistics()` table function (the schema, the connection's user).
#[derive(Debug)]
pub(crate) struct ColumnStatisticsTable(pub(crate) PhantomSchema, pub(crate) String);

/// One output row.
struct Row {
    table: String,
    column: String,
    segments: i64,
    with_statistics: i64,
    rows: Option<i64>,
    null_count: Option<i64>,
    min: Option<String>,
    max: Option<String>,
    distinct: Option<i64>,
}

impl datafusion::catalog::TableFunctionImpl for ColumnStatisticsTable {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return datafusion::common::plan_err!(
                "phantomdb_column_statistics() takes no arguments"
            );
        }
        let ctx = self.0.context().ok_or_else(|| {
            datafusion::error::DataFusionError::Plan(
                "phantomdb_column_statistics() needs a statement".into(),
            )
        })?;
        let catalog = ctx.txns.view.catalog();
        let actor = Actor::resolve(&self.1, &catalog);
        let mut out = Vec::new();
        for t in catalog.tables() {
            if t.engine != DEFAULT_ENGINE || !actor.holds(&t.owner, &t.grants, Privilege::Select) {
                continue;
            }
            let refs = ctx
                .txns
                .view
                .segment_refs(t)
                .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
            let width = t.schema.fields().len();
            let merged = merge_units(refs.iter().map(|r| r.stats.as_deref()), width);
            let with_statistics = refs.iter().filter(|r| r.stats.is_some()).count() as i64;
            let rows = refs
                .iter()
                .map(|r| r.live_rows())
                .sum::<Option<usize>>()
                .map(|r| r as i64);
            for (i, field) in t.schema.fields().iter().enumerate() {
                let stats = merged.get(i).cloned().flatten();
                out.push(Row {
                    table: t.name.clone(),
                    column: field.name().clone(),
                    segments: refs.len() as i64,
                    with_statistics,
                    rows,
                    null_count: stats.as_ref().map(|s| s.null_count as i64),
                    min: stats
                        .as_ref()
                        .and_then(|s| s.min.as_ref())
                        .map(|v| v.to_string()),
                    max: stats
                        .as_ref()
                        .and_then(|s| s.max.as_ref())
                        .map(|v| v.to_string()),
                    distinct: stats.as_ref().map(|s| s.distinct.estimate() as i64),
                });
            }
        }
        let text = |f: fn(&Row) -> Option<String>| -> ArrayRef {
            Arc::new(StringArray::from(out.iter().map(f).collect::<Vec<_>>()))
        };
        let int = |f: fn(&Row) -> Option<i64>| -> ArrayRef {
            Arc::new(Int64Array::from(out.iter().map(f).collect::<Vec<_>>()))
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("table_name", DataType::Utf8, false),
            Field::new("column_name", DataType::Utf8, false),
            Field::new("segments", DataType::Int64, false),
            Field::new("segments_with_statistics", DataType::Int64, false),
            Field::new("rows", DataType::Int64, true),
            Field::new("null_count", DataType::Int64, true),
            Field::new("min", DataType::Utf8, true),
            Field::new("max", DataType::Utf8, true),
            Field::new("distinct_estimate", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                text(|r| Some(r.table.clone())),
                text(|r| Some(r.column.clone())),
                int(|r| Some(r.segments)),
                int(|r| Some(r.with_statistics)),
                int(|r| r.rows),
                int(|r| r.null_count),
                text(|r| r.min.clone()),
                text(|r| r.max.clone()),
                int(|r| r.distinct),
            ],
        )?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}
