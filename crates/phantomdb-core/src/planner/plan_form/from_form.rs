//! The plan form → DataFusion's `LogicalPlan`, checking every reference on the way.

use std::sync::Arc;

use datafusion::common::tree_node::TreeNode;
use datafusion::common::TableReference;
use datafusion::common::{Column, DFSchema, NullEquality};
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::expr::{
    AggregateFunction, Alias, Between, Case, Cast, Exists, InList, InSubquery, Like, Placeholder,
    ScalarFunction, TryCast,
};
use datafusion::logical_expr::{
    Aggregate, BinaryExpr, DmlStatement, Expr as DfExpr, Filter, Join, JoinConstraint, JoinType,
    Limit, LogicalPlan, LogicalPlanBuilder, Operator, Projection, ScalarUDF, Sort, SortExpr,
    Subquery, SubqueryAlias, TableScan, TableScanBuilder, Union, WriteOp,
};
use phantomdb_plugin_sdk::plan::{Expr, JoinKind, PlanNode};

use super::row_check::RowCheck;
use super::to_form::op_name;
use super::types::{scalar_of, type_of};
use super::Handles;

type Result<T> = std::result::Result<T, String>;

/// What the conversion back needs: the handles of the conversion to the form, the session's
/// functions.
pub(super) struct Back<'a> {
    pub(super) handles: &'a Handles,
    pub(super) state: &'a SessionState,
}

fn df(e: datafusion::error::DataFusionError) -> String {
    crate::error::Error::from(e).to_string()
}

fn relation(s: &str) -> TableReference {
    TableReference::parse_str(s)
}

impl Back<'_> {
    /// Converts a node.
    pub(super) fn node(&self, n: &PlanNode) -> Result<LogicalPlan> {
        Ok(match n {
            PlanNode::Scan {
                id,
                table,
                projection,
                filters,
                fetch,
                ..
            } => self.scan(*id, table, projection.as_deref(), filters, *fetch)?,
            PlanNode::Filter {
                predicate, input, ..
            } => {
                let input = self.node(input)?;
                let predicate = self.expr(predicate, input.schema())?;
                LogicalPlan::Filter(Filter::try_new(predicate, Arc::new(input)).map_err(df)?)
            }
            PlanNode::Projection { exprs, input, .. } => {
                let input = self.node(input)?;
                let exprs = self.exprs(exprs, input.schema())?;
                LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(input)).map_err(df)?)
            }
            PlanNode::Join {
                kind,
                on,
                filter,
                null_equals_null,
                left,
                right,
                ..
            } => {
                let left = self.node(left)?;
                let right = self.node(right)?;
                let on = on
                    .iter()
                    .map(|(l, r)| Ok((self.expr(l, left.schema())?, self.expr(r, right.schema())?)))
                    .collect::<Result<Vec<_>>>()?;
                let join_type = join_type(*kind);
                let joined = left.schema().join(right.schema()).map_err(df)?;
                let filter = filter.as_ref().map(|f| self.expr(f, &joined)).transpose()?;
                let null_equality = if *null_equals_null {
                    NullEquality::NullEqualsNull
                } else {
                    NullEquality::NullEqualsNothing
                };
                LogicalPlan::Join(
                    Join::try_new(
                        Arc::new(left),
                        Arc::new(right),
                        on,
                        filter,
                        join_type,
                        JoinConstraint::On,
                        null_equality,
                        false,
                    )
                    .map_err(df)?,
                )
            }
            PlanNode::Aggregate {
                group_by,
                aggregates,
                input,
                ..
            } => {
                let input = self.node(input)?;
                let group = self.exprs(group_by, input.schema())?;
                let aggr = self.exprs(aggregates, input.schema())?;
                LogicalPlan::Aggregate(
                    Aggregate::try_new(Arc::new(input), group, aggr).map_err(df)?,
                )
            }
            PlanNode::Sort {
                order,
                fetch,
                input,
                ..
            } => {
                let input = self.node(input)?;
                let expr = order
                    .iter()
                    .map(|k| {
                        Ok(SortExpr::new(
                            self.expr(&k.expr, input.schema())?,
                            k.asc,
                            k.nulls_first,
                        ))
                    })
                    .collect::<Result<Vec<_>>>()?;
                LogicalPlan::Sort(Sort {
                    expr,
                    input: Arc::new(input),
                    fetch: fetch.map(|f| f as usize),
                })
            }
            PlanNode::Limit {
                skip, fetch, input, ..
            } => {
                let input = self.node(input)?;
                let empty = DFSchema::empty();
                let skip = skip
                    .as_ref()
                    .map(|e| self.expr(e, &empty).map(Box::new))
                    .transpose()?;
                let fetch = fetch
                    .as_ref()
                    .map(|e| self.expr(e, &empty).map(Box::new))
                    .transpose()?;
                LogicalPlan::Limit(Limit {
                    skip,
                    fetch,
                    input: Arc::new(input),
                })
            }
            PlanNode::Union { inputs, .. } => {
                let inputs = inputs
                    .iter()
                    .map(|i| self.node(i).map(Arc::new))
                    .collect::<Result<Vec<_>>>()?;
                if inputs.len() < 2 {
                    return Err("a union needs at least two inputs".into());
                }
                LogicalPlan::Union(Union::try_new_with_loose_types(inputs).map_err(df)?)
            }
            PlanNode::Values { rows, .. } => {
                let empty = DFSchema::empty();
                let rows = rows
                    .iter()
                    .map(|r| self.exprs(r, &empty))
                    .collect::<Result<Vec<_>>>()?;
                LogicalPlanBuilder::values(rows)
                    .and_then(|b| b.build())
                    .map_err(df)?
            }
            PlanNode::SubqueryAlias { alias, input, .. } => {
                let input = self.node(input)?;
                LogicalPlan::SubqueryAlias(
                    SubqueryAlias::try_new(Arc::new(input), relation(alias)).map_err(df)?,
                )
            }
            PlanNode::Insert {
                table,
                checks,
                input,
            } => {
                let original = self.dml(table, |op| matches!(op, WriteOp::Insert(_)))?;
                let input = self.checked(self.node(input)?, checks, table)?;
                LogicalPlan::Dml(DmlStatement::new(
                    original.table_name.clone(),
                    original.target.clone(),
                    original.op.clone(),
                    Arc::new(input),
                ))
            }
            PlanNode::Update {
                table,
                assignments,
                checks,
                input,
            } => {
                let original = self.dml(table, |op| matches!(op, WriteOp::Update))?;
                let input = self.node(input)?;
                let exprs = assignments
                    .iter()
                    .map(|a| Ok(self.expr(&a.value, input.schema())?.alias(&a.column)))
                    .collect::<Result<Vec<_>>>()?;
                let projected = LogicalPlan::Projection(
                    Projection::try_new(exprs, Arc::new(input)).map_err(df)?,
                );
                let input = self.checked(projected, checks, table)?;
                LogicalPlan::Dml(DmlStatement::new(
                    original.table_name.clone(),
                    original.target.clone(),
                    WriteOp::Update,
                    Arc::new(input),
                ))
            }
            PlanNode::Delete { table, input } => {
                let original = self.dml(table, |op| matches!(op, WriteOp::Delete))?;
                LogicalPlan::Dml(DmlStatement::new(
                    original.table_name.clone(),
                    original.target.clone(),
                    WriteOp::Delete,
                    Arc::new(self.node(input)?),
                ))
            }
            PlanNode::Opaque {
                id, exprs, inputs, ..
            } => {
                let original = self
                    .handles
                    .plans
                    .get(*id as usize)
                    .ok_or_else(|| format!("opaque node #{id} does not exist"))?;
                let inputs = inputs
                    .iter()
                    .map(|i| self.node(i))
                    .collect::<Result<Vec<_>>>()?;
                let same_inputs = inputs.len() == original.inputs().len()
                    && inputs.iter().zip(original.inputs()).all(|(a, b)| a == b);
                let old_exprs = original.expressions();
                if exprs.len() != old_exprs.len() {
                    return Err(format!("opaque node #{id} lost or gained expressions"));
                }
                let mut context = DFSchema::empty();
                for i in &inputs {
                    context.merge(i.schema());
                }
                let new_exprs = self.exprs(exprs, &context)?;
                if same_inputs && new_exprs == old_exprs {
                    original.clone()
                } else {
                    original.with_new_exprs(new_exprs, inputs).map_err(df)?
                }
            }
        })
    }

    fn dml(&self, table: &str, op: impl Fn(&WriteOp) -> bool) -> Result<&DmlStatement> {
        self.handles
            .dml
            .iter()
            .find(|d| d.table_name.to_quoted_string() == table && op(&d.op))
            .ok_or_else(|| format!("the statement does not write table {table} that way"))
    }

    /// `input` with its first column passed through `phantomdb_row_check(conditions, col)`,
    /// which refuses (42501) a row failing one of `checks`. A projection rather than a
    /// filter: the optimizer merges filters (and would then check rows the statement's own
    /// WHERE removes), but never evaluates a projection on rows a filter below removed.
    fn checked(&self, input: LogicalPlan, checks: &[Expr], table: &str) -> Result<LogicalPlan> {
        if checks.is_empty() {
            return Ok(input);
        }
        // Checks name the new row's columns unqualified.
        let fields: Vec<_> = input.schema().fields().iter().cloned().collect();
        let unqualified =
            DFSchema::from_unqualified_fields(fields.into(), Default::default()).map_err(df)?;
        let mut condition: Option<DfExpr> = None;
        for c in checks {
            let cond = strip_qualifiers(self.expr(c, &unqualified)?)?;
            condition = Some(match condition {
                Some(p) => p.and(cond),
                None => cond,
            });
        }
        let condition = condition.ok_or("no check")?;
        let udf = Arc::new(ScalarUDF::new_from_impl(RowCheck::new(table)));
        let exprs = input
            .schema()
            .iter()
            .enumerate()
            .map(|(i, (qualifier, field))| {
                let column = DfExpr::Column(Column::new(qualifier.cloned(), field.name()));
                if i > 0 {
                    return column;
                }
                DfExpr::ScalarFunction(ScalarFunction::new_udf(
                    udf.clone(),
                    vec![condition.clone(), column],
                ))
                .alias_qualified(qualifier.cloned(), field.name())
            })
            .collect::<Vec<_>>();
        Ok(LogicalPlan::Projection(
            Projection::try_new(exprs, Arc::new(input)).map_err(df)?,
        ))
    }

    fn scan(
        &self,
        id: Option<u32>,
        table: &str,
        projection: Option<&[String]>,
        filters: &[Expr],
        fetch: Option<u64>,
    ) -> Result<LogicalPlan> {
        let original: &TableScan = match id {
            Some(id) => self
                .handles
                .scans
                .get(id as usize)
                .ok_or_else(|| format!("scan #{id} does not exist"))?,
            None => self
                .handles
                .scans
                .iter()
                .find(|s| s.table_name.to_quoted_string() == table)
                .ok_or_else(|| format!("table {table} is not scanned by the statement"))?,
        };
        if original.table_name.to_quoted_string() != table {
            return Err(format!(
                "scan #{} reads {}, not {table}",
                id.unwrap_or_default(),
                original.table_name
            ));
        }
        let source_schema = original.source.schema();
        let projection = projection
            .map(|names| {
                names
                    .iter()
                    .map(|n| {
                        source_schema
                            .index_of(n)
                            .map_err(|_| format!("column {n} does not exist in table {table}"))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?;
        let qualified =
            DFSchema::try_from_qualified_schema(original.table_name.clone(), &source_schema)
                .map_err(df)?;
        let filters = self.exprs(filters, &qualified)?;
        let scan = TableScanBuilder::new(original.table_name.clone(), original.source.clone())
            .with_projection(projection)
            .with_filters(filters)
            .with_fetch(fetch.map(|f| f as usize))
            .build()
            .map_err(df)?;
        Ok(LogicalPlan::TableScan(scan))
    }

    fn exprs(&self, exprs: &[Expr], schema: &DFSchema) -> Result<Vec<DfExpr>> {
        exprs.iter().map(|e| self.expr(e, schema)).collect()
    }

    /// Converts an expression in the context of `schema` (the columns it may name).
    pub(super) fn expr(&self, e: &Expr, schema: &DFSchema) -> Result<DfExpr> {
        let b = |e: &Expr| self.expr(e, schema).map(Box::new);
        Ok(match e {
            Expr::Column { relation: r, name } => {
                let column = Column::new(r.as_deref().map(relation), name.clone());
                if schema.fields().is_empty() || !schema.has_column(&column) {
                    if schema.fields().is_empty() {
                        return Err(format!("column {column} is not available here"));
                    }
                    return Err(format!("column {column} does not exist"));
                }
                DfExpr::Column(column)
            }
            Expr::Literal(l) => DfExpr::Literal(scalar_of(l)?, None),
            Expr::Parameter { id, data_type } => {
                let field = data_type
                    .as_deref()
                    .map(type_of)
                    .transpose()?
                    .map(|t| Arc::new(arrow::datatypes::Field::new(id, t, true)));
                DfExpr::Placeholder(Placeholder {
                    id: id.clone(),
                    field,
                })
            }
            Expr::Binary { op, left, right } => DfExpr::BinaryExpr(BinaryExpr {
                left: b(left)?,
                op: operator(op)?,
                right: b(right)?,
            }),
            Expr::Unary { op, expr } => {
                let inner = b(expr)?;
                match op.as_str() {
                    "not" => DfExpr::Not(inner),
                    "negative" => DfExpr::Negative(inner),
                    "is_true" => DfExpr::IsTrue(inner),
                    "is_false" => DfExpr::IsFalse(inner),
                    "is_unknown" => DfExpr::IsUnknown(inner),
                    "is_not_true" => DfExpr::IsNotTrue(inner),
                    "is_not_false" => DfExpr::IsNotFalse(inner),
                    "is_not_unknown" => DfExpr::IsNotUnknown(inner),
                    other => return Err(format!("unknown unary operator \"{other}\"")),
                }
            }
            Expr::IsNull { expr, negated } => {
                if *negated {
                    DfExpr::IsNotNull(b(expr)?)
                } else {
                    DfExpr::IsNull(b(expr)?)
                }
            }
            Expr::Function { name, args } => {
                let func = self
                    .state
                    .scalar_functions()
                    .get(name)
                    .or_else(|| self.handles.scalar_functions.get(name))
                    .cloned()
                    .ok_or_else(|| format!("function {name} does not exist"))?;
                DfExpr::ScalarFunction(ScalarFunction::new_udf(func, self.exprs(args, schema)?))
            }
            Expr::Aggregate {
                name,
                args,
                distinct,
            } => {
                let func = self
                    .state
                    .aggregate_functions()
                    .get(name)
                    .or_else(|| self.handles.aggregate_functions.get(name))
                    .cloned()
                    .ok_or_else(|| format!("aggregate function {name} does not exist"))?;
                DfExpr::AggregateFunction(AggregateFunction::new_udf(
                    func,
                    self.exprs(args, schema)?,
                    *distinct,
                    None,
                    vec![],
                    None,
                ))
            }
            Expr::Cast {
                expr,
                data_type,
                r#try,
            } => {
                let t = type_of(data_type)?;
                if *r#try {
                    DfExpr::TryCast(TryCast::new(b(expr)?, t))
                } else {
                    DfExpr::Cast(Cast::new(b(expr)?, t))
                }
            }
            Expr::Case {
                operand,
                when_then,
                otherwise,
            } => DfExpr::Case(Case {
                expr: operand.as_deref().map(b).transpose()?,
                when_then_expr: when_then
                    .iter()
                    .map(|(w, t)| Ok((b(w)?, b(t)?)))
                    .collect::<Result<Vec<_>>>()?,
                else_expr: otherwise.as_deref().map(b).transpose()?,
            }),
            Expr::InList {
                expr,
                list,
                negated,
            } => DfExpr::InList(InList::new(b(expr)?, self.exprs(list, schema)?, *negated)),
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => DfExpr::Between(Between::new(b(expr)?, *negated, b(low)?, b(high)?)),
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
                escape,
            } => DfExpr::Like(Like::new(
                *negated,
                b(expr)?,
                b(pattern)?,
                *escape,
                *case_insensitive,
            )),
            Expr::ScalarSubquery { plan } => DfExpr::ScalarSubquery(self.subquery(plan)?),
            Expr::InSubquery {
                expr,
                plan,
                negated,
            } => DfExpr::InSubquery(InSubquery::new(b(expr)?, self.subquery(plan)?, *negated)),
            Expr::Exists { plan, negated } => {
                DfExpr::Exists(Exists::new(self.subquery(plan)?, *negated))
            }
            Expr::Alias {
                expr,
                relation: r,
                name,
            } => DfExpr::Alias(Alias::new(
                *b(expr)?,
                r.as_deref().map(relation),
                name.clone(),
            )),
            Expr::Sql { sql } => self
                .state
                .create_logical_expr(sql, schema)
                .map_err(|e| format!("expression \"{sql}\": {}", df(e)))?,
            Expr::Opaque { id, children, .. } => {
                let original = self
                    .handles
                    .exprs
                    .get(*id as usize)
                    .ok_or_else(|| format!("opaque expression #{id} does not exist"))?;
                let mut new = self.exprs(children, schema)?.into_iter();
                let mut count = 0;
                let rebuilt = original
                    .clone()
                    .map_children(|_| {
                        count += 1;
                        match new.next() {
                            Some(c) => Ok(datafusion::common::tree_node::Transformed::yes(c)),
                            None => datafusion::common::plan_err!("missing child"),
                        }
                    })
                    .map_err(|_| format!("opaque expression #{id} lost children"))?
                    .data;
                if count != children.len() {
                    return Err(format!("opaque expression #{id} gained children"));
                }
                rebuilt
            }
        })
    }

    fn subquery(&self, plan: &PlanNode) -> Result<Subquery> {
        let plan = self.node(plan)?;
        let outer_ref_columns = plan.all_out_ref_exprs();
        Ok(Subquery {
            subquery: Arc::new(plan),
            outer_ref_columns,
            spans: Default::default(),
        })
    }
}

/// `e` with column qualifiers removed (checks name the new row's columns).
fn strip_qualifiers(e: DfExpr) -> Result<DfExpr> {
    e.transform(|e| {
        Ok(match e {
            DfExpr::Column(c) if c.relation.is_some() => {
                datafusion::common::tree_node::Transformed::yes(DfExpr::Column(
                    Column::new_unqualified(c.name),
                ))
            }
            other => datafusion::common::tree_node::Transformed::no(other),
        })
    })
    .map(|t| t.data)
    .map_err(df)
}

fn join_type(k: JoinKind) -> JoinType {
    match k {
        JoinKind::Inner => JoinType::Inner,
        JoinKind::Left => JoinType::Left,
        JoinKind::Right => JoinType::Right,
        JoinKind::Full => JoinType::Full,
        JoinKind::LeftSemi => JoinType::LeftSemi,
        JoinKind::LeftAnti => JoinType::LeftAnti,
        JoinKind::RightSemi => JoinType::RightSemi,
        JoinKind::RightAnti => JoinType::RightAnti,
        JoinKind::LeftMark => JoinType::LeftMark,
    }
}

fn operator(name: &str) -> Result<Operator> {
    const ALL: &[Operator] = &[
        Operator::Eq,
        Operator::NotEq,
        Operator::Lt,
        Operator::LtEq,
        Operator::Gt,
        Operator::GtEq,
        Operator::Plus,
        Operator::Minus,
        Operator::Multiply,
        Operator::Divide,
        Operator::Modulo,
        Operator::And,
        Operator::Or,
        Operator::IsDistinctFrom,
        Operator::IsNotDistinctFrom,
        Operator::StringConcat,
    ];
    ALL.iter()
        .find(|op| op_name(op) == Some(name))
        .copied()
        .ok_or_else(|| format!("unknown binary operator \"{name}\""))
}
