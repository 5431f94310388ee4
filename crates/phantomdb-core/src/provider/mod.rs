//! How PhantomDB tables appear to DataFusion: one [`TableProvider`] for every engine, bound to
//! one statement's [`TableAccess`], planning one of two leaf operators: a [`scan`] (projection,
//! filters and limit pushed into the engine, partitions as the engine cuts them) or a
//! [`lookup`] of primary keys, for engines with the `indexes` capability.

mod index_scan;
mod lookup;
mod prune;
mod scan;
mod view;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Constraint, Constraints, DataFusionError, ScalarValue, Statistics};
use datafusion::datasource::TableType;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::ExecutionPlan;

use crate::engines::{FilterSupport, ScanLayout, ScanRequest, TableAccess};
use crate::table::filter::to_filter;
use crate::table::{TableRole, ROW_ID_COLUMN};
use lookup::KeyLookupExec;
use scan::PhantomScanExec;
pub(crate) use view::{inline_views, PhantomView};

/// A PhantomDB table bound to the transactions of one statement.
pub(crate) struct PhantomTable {
    access: Arc<dyn TableAccess>,
    schema: SchemaRef,
    with_row_id: bool,
    constraints: Option<Constraints>,
    defaults: HashMap<String, Expr>,
}

impl std::fmt::Debug for PhantomTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhantomTable")
            .field("table", &self.access.def().name)
            .finish_non_exhaustive()
    }
}

impl PhantomTable {
    /// Binds a table to a statement in role `role`.
    pub(crate) fn new(
        access: Arc<dyn TableAccess>,
        role: TableRole,
        defaults: HashMap<String, Expr>,
    ) -> Self {
        let def = access.def().clone();
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
        let constraints = (!def.primary_key.is_empty()).then(|| {
            Constraints::new_unverified(vec![Constraint::PrimaryKey(def.primary_key.clone())])
        });
        Self {
            access,
            schema: Arc::new(Schema::new(fields)),
            with_row_id,
            constraints,
            defaults,
        }
    }

    /// The definition of the table (the statement's snapshot of it).
    pub(crate) fn def(&self) -> &std::sync::Arc<crate::catalog::TableDef> {
        self.access.def()
    }

    /// Whether key predicates become lookups: the engine can look keys up, and the statement
    /// does not need row ids (lookups return none).
    fn looks_up_keys(&self) -> bool {
        !self.with_row_id && self.access.capabilities().indexes
    }

    /// If `expr` is `pk = literal` or `pk IN (literals)` on a single-column primary key,
    /// the key values it selects.
    fn key_values(&self, expr: &Expr) -> Option<Vec<ScalarValue>> {
        let def = self.access.def();
        if def.primary_key.len() != 1 {
            return None;
        }
        let pk_field = def.schema.field(def.primary_key[0]);
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

    /// A key lookup, when a filter pins the primary key.
    fn plan_lookup(
        &self,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
    ) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
        if !self.looks_up_keys() {
            return Ok(None);
        }
        let Some((filter, keys)) = filters
            .iter()
            .find_map(|f| self.key_values(f).map(|k| (f, k)))
        else {
            return Ok(None);
        };
        let keys = ScalarValue::iter_to_array(keys)?;
        let Some(rows) = self.access.lookup(&[keys]).map_err(external)? else {
            return Ok(None);
        };
        let (rows, schema) = match projection {
            Some(p) => (rows.project(p)?, Arc::new(self.schema.project(p)?)),
            None => (rows, self.schema.clone()),
        };
        let def = self.access.def();
        let description = format!("table={}, engine={}, key=[{filter}]", def.name, def.engine);
        Ok(Some(Arc::new(KeyLookupExec::new(
            description,
            schema,
            rows,
        ))))
    }
}

impl PhantomTable {
    /// Whether a stored index of the table can answer `filter`.
    fn index_usable(&self, filter: &Expr) -> bool {
        let def = self.access.def();
        self.access.keeps_indexes()
            && def
                .indexes
                .iter()
                .filter(|i| i.stored)
                .any(|i| index_scan::usable(filter, def.schema.field(i.columns[0])))
    }

    /// An index scan, when a filter constrains the first column of a stored index.
    fn plan_index_scan(
        &self,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
    ) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
        let Some((rows, detail)) =
            index_scan::index_rows(self.access.as_ref(), filters, self.with_row_id)
                .map_err(external)?
        else {
            return Ok(None);
        };
        let rows = rows.with_schema(self.schema.clone())?;
        let (rows, schema) = match projection {
            Some(p) => (rows.project(p)?, Arc::new(self.schema.project(p)?)),
            None => (rows, self.schema.clone()),
        };
        let def = self.access.def();
        let description = format!("table={}, engine={}, {detail}", def.name, def.engine);
        let exec = KeyLookupExec::new(description, schema, rows).named("PhantomIndexScanExec");
        Ok(Some(Arc::new(exec)))
    }
}

/// A core error inside DataFusion.
fn external(e: crate::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
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
        // The first key predicate becomes a lookup (exact); the engine answers for the rest.
        let lookup = if self.looks_up_keys() {
            filters.iter().position(|f| self.key_values(f).is_some())
        } else {
            None
        };
        let converted: Vec<_> = filters.iter().map(|f| to_filter(f)).collect();
        let asked: Vec<_> = converted.iter().flatten().cloned().collect();
        let mut answers = self.access.supports_filters(&asked).into_iter();
        Ok(converted
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let answer = c.as_ref().and_then(|_| answers.next());
                if Some(i) == lookup {
                    return TableProviderFilterPushDown::Exact;
                }
                match answer {
                    Some(FilterSupport::Exact) => TableProviderFilterPushDown::Exact,
                    Some(FilterSupport::Inexact) => TableProviderFilterPushDown::Inexact,
                    // An index can answer it: DataFusion hands it to `scan` and re-checks.
                    _ if self.index_usable(filters[i]) => TableProviderFilterPushDown::Inexact,
                    _ => TableProviderFilterPushDown::Unsupported,
                }
            })
            .collect())
    }

    /// The table's statistics (row count; per column min, max, null and distinct counts where
    /// the engine records them), merged over a whole-table scan plan: nothing is read but the
    /// engine's metadata. Query processors see them in the plan form's scans.
    fn statistics(&self) -> Option<Statistics> {
        let n = self.access.def().schema.fields().len();
        let request = ScanRequest {
            projection: Some((0..n).collect()),
            filters: Vec::new(),
            limit: None,
            with_row_ids: false,
        };
        let layout = ScanLayout {
            partitions: 1,
            batch_size: 8192,
        };
        let scan = match self.access.scan(&request, layout) {
            Ok(scan) => scan,
            Err(e) => {
                tracing::debug!(table = %self.access.def().name, error = %e, "no statistics");
                return None;
            }
        };
        let schema = self.access.def().schema_ref();
        let exec = PhantomScanExec::new(
            scan,
            None,
            schema,
            (0..n).map(Some).collect(),
            String::new(),
        );
        exec.statistics_from_inputs(&[], &StatisticsArgs::new())
            .ok()
            .map(Arc::unwrap_or_clone)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if let Some(lookup) = self.plan_lookup(projection, filters)? {
            return Ok(lookup);
        }
        if let Some(scan) = self.plan_index_scan(projection, filters)? {
            return Ok(scan);
        }
        let n = self.access.def().schema.fields().len();
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        // The engine returns the table columns of `wanted` in order, then the row id; the
        // scan puts the row id where DataFusion wants it.
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
        let pushed: Vec<(String, _)> = filters
            .iter()
            .filter_map(|f| to_filter(f).map(|c| (f.to_string(), c)))
            .collect();
        let request = ScanRequest {
            projection: Some(table_cols),
            filters: pushed.iter().map(|(_, f)| f.clone()).collect(),
            limit,
            with_row_ids,
        };
        let layout = ScanLayout {
            partitions: state.config().target_partitions().max(1),
            batch_size: state.config().batch_size().max(1),
        };
        let scan = self.access.scan(&request, layout).map_err(external)?;
        let output = Arc::new(self.schema.project(&wanted)?);
        let def = self.access.def();
        let names = |v: Vec<&str>| v.join(", ");
        let mut description = format!(
            "table={}, engine={}, projection=[{}]",
            def.name,
            def.engine,
            names(output.fields().iter().map(|f| f.name().as_str()).collect()),
        );
        if !pushed.is_empty() {
            let shown = names(pushed.iter().map(|(s, _)| s.as_str()).collect());
            description.push_str(&format!(", filters=[{shown}]"));
        }
        if let Some(l) = limit {
            description.push_str(&format!(", limit={l}"));
        }
        if !scan.detail.is_empty() {
            description.push_str(&format!(", {}", scan.detail));
        }
        let table_columns = wanted.iter().map(|&i| (i < n).then_some(i)).collect();
        Ok(Arc::new(PhantomScanExec::new(
            scan,
            reorder.then_some(order),
            output,
            table_columns,
            description,
        )))
    }
}
