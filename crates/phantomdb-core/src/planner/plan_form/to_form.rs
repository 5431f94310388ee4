//! DataFusion's `LogicalPlan` → the plan form.

use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::TableReference;
use datafusion::common::{DFSchema, NullEquality};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::expr::{
    AggregateFunction, Alias, Between, Case, Cast, Exists, InList, InSubquery, Like,
    ScalarFunction, TryCast,
};
use datafusion::logical_expr::{
    BinaryExpr, DmlStatement, Expr as DfExpr, JoinType, LogicalPlan, Operator, TableScan, WriteOp,
};
use phantomdb_plugin_sdk::plan::{
    Assignment, ColumnStatistics, Expr, Field, JoinKind, PlanNode, ScanStatistics, SortKey,
};

use super::types::{format_of, literal_of};
use super::Handles;

/// Converts `plan`, keeping what the form does not model in `handles`.
pub(super) fn node(plan: &LogicalPlan, h: &mut Handles) -> PlanNode {
    let schema = || fields(plan.schema());
    match plan {
        LogicalPlan::TableScan(scan) => scan_node(scan, h),
        LogicalPlan::Filter(f) => PlanNode::Filter {
            predicate: expr(&f.predicate, h),
            input: Box::new(node(&f.input, h)),
            schema: schema(),
        },
        LogicalPlan::Projection(p) => PlanNode::Projection {
            exprs: p.expr.iter().map(|e| expr(e, h)).collect(),
            input: Box::new(node(&p.input, h)),
            schema: schema(),
        },
        LogicalPlan::Join(j) if !j.null_aware => match join_kind(j.join_type) {
            Some(kind) => PlanNode::Join {
                kind,
                on: j.on.iter().map(|(l, r)| (expr(l, h), expr(r, h))).collect(),
                filter: j.filter.as_ref().map(|f| expr(f, h)),
                null_equals_null: j.null_equality == NullEquality::NullEqualsNull,
                left: Box::new(node(&j.left, h)),
                right: Box::new(node(&j.right, h)),
                schema: schema(),
            },
            None => opaque(plan, h),
        },
        LogicalPlan::Aggregate(a) => PlanNode::Aggregate {
            group_by: a.group_expr.iter().map(|e| expr(e, h)).collect(),
            aggregates: a.aggr_expr.iter().map(|e| expr(e, h)).collect(),
            input: Box::new(node(&a.input, h)),
            schema: schema(),
        },
        LogicalPlan::Sort(s) => PlanNode::Sort {
            order: s
                .expr
                .iter()
                .map(|k| SortKey {
                    expr: expr(&k.expr, h),
                    asc: k.asc,
                    nulls_first: k.nulls_first,
                })
                .collect(),
            fetch: s.fetch.map(|f| f as u64),
            input: Box::new(node(&s.input, h)),
            schema: schema(),
        },
        LogicalPlan::Limit(l) => PlanNode::Limit {
            skip: l.skip.as_ref().map(|e| Box::new(expr(e, h))),
            fetch: l.fetch.as_ref().map(|e| Box::new(expr(e, h))),
            input: Box::new(node(&l.input, h)),
            schema: schema(),
        },
        LogicalPlan::Union(u) => PlanNode::Union {
            inputs: u.inputs.iter().map(|i| node(i, h)).collect(),
            schema: schema(),
        },
        LogicalPlan::Values(v) => PlanNode::Values {
            rows: v
                .values
                .iter()
                .map(|row| row.iter().map(|e| expr(e, h)).collect())
                .collect(),
            schema: schema(),
        },
        LogicalPlan::SubqueryAlias(a) => PlanNode::SubqueryAlias {
            alias: a.alias.to_quoted_string(),
            input: Box::new(node(&a.input, h)),
            schema: schema(),
        },
        LogicalPlan::Dml(d) => dml_node(plan, d, h),
        _ => opaque(plan, h),
    }
}

fn dml_node(plan: &LogicalPlan, d: &DmlStatement, h: &mut Handles) -> PlanNode {
    let table = d.table_name.to_quoted_string();
    match &d.op {
        WriteOp::Insert(_) => {
            h.dml.push(d.clone());
            PlanNode::Insert {
                table,
                checks: Vec::new(),
                input: Box::new(node(&d.input, h)),
            }
        }
        WriteOp::Update => {
            let LogicalPlan::Projection(p) = d.input.as_ref() else {
                return opaque(plan, h);
            };
            h.dml.push(d.clone());
            let assignments = p
                .expr
                .iter()
                .zip(p.schema.fields())
                .map(|(e, f)| Assignment {
                    column: f.name().clone(),
                    value: expr(unalias(e), h),
                })
                .collect();
            PlanNode::Update {
                table,
                assignments,
                checks: Vec::new(),
                input: Box::new(node(&p.input, h)),
            }
        }
        WriteOp::Delete => {
            h.dml.push(d.clone());
            PlanNode::Delete {
                table,
                input: Box::new(node(&d.input, h)),
            }
        }
        _ => opaque(plan, h),
    }
}

fn unalias(e: &DfExpr) -> &DfExpr {
    match e {
        DfExpr::Alias(a) => &a.expr,
        other => other,
    }
}

fn scan_node(scan: &TableScan, h: &mut Handles) -> PlanNode {
    let id = h.scans.len() as u32;
    h.scans.push(scan.clone());
    let source_schema = scan.source.schema();
    let projection = scan.projection.as_ref().map(|p| {
        p.iter()
            .map(|&i| source_schema.field(i).name().clone())
            .collect()
    });
    let provider = source_as_provider(&scan.source).ok();
    let engine = provider
        .as_ref()
        .and_then(|p| {
            p.downcast_ref::<crate::provider::PhantomTable>()
                .map(|t| t.def().engine.to_string())
        })
        .unwrap_or_default();
    let statistics = provider.and_then(|p| p.statistics()).map(|s| {
        let (row_count, exact) = precision(&s.num_rows);
        ScanStatistics {
            row_count,
            exact,
            columns: s
                .column_statistics
                .iter()
                .zip(source_schema.fields())
                .map(|(c, f)| ColumnStatistics {
                    name: f.name().clone(),
                    min: c.min_value.get_value().and_then(literal_of),
                    max: c.max_value.get_value().and_then(literal_of),
                    null_count: precision(&c.null_count).0,
                    distinct_count: precision(&c.distinct_count).0,
                })
                .collect(),
        }
    });
    PlanNode::Scan {
        id: Some(id),
        table: scan.table_name.to_quoted_string(),
        engine,
        projection,
        filters: scan.filters.iter().map(|f| expr(f, h)).collect(),
        fetch: scan.fetch.map(|f| f as u64),
        statistics,
        schema: fields(&scan.projected_schema),
    }
}

fn precision(p: &Precision<usize>) -> (Option<u64>, bool) {
    match p {
        Precision::Exact(n) => (Some(*n as u64), true),
        Precision::Inexact(n) => (Some(*n as u64), false),
        Precision::Absent => (None, false),
    }
}

fn opaque(plan: &LogicalPlan, h: &mut Handles) -> PlanNode {
    let id = h.plans.len() as u32;
    h.plans.push(plan.clone());
    let exprs = plan.expressions().iter().map(|e| expr(e, h)).collect();
    let inputs = plan.inputs().into_iter().map(|i| node(i, h)).collect();
    PlanNode::Opaque {
        id,
        kind: plan_kind(plan),
        exprs,
        inputs,
        schema: fields(plan.schema()),
    }
}

fn plan_kind(plan: &LogicalPlan) -> String {
    let text = plan.display().to_string();
    text.split(':')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A schema's fields in the form; a nested type is spelled by its Arrow display.
pub(super) fn fields(schema: &DFSchema) -> Vec<Field> {
    schema
        .iter()
        .map(|(q, f)| Field {
            relation: q.map(TableReference::to_quoted_string),
            name: f.name().clone(),
            data_type: format_of(f.data_type()).unwrap_or_else(|| f.data_type().to_string()),
            nullable: f.is_nullable(),
        })
        .collect()
}

fn join_kind(t: JoinType) -> Option<JoinKind> {
    Some(match t {
        JoinType::Inner => JoinKind::Inner,
        JoinType::Left => JoinKind::Left,
        JoinType::Right => JoinKind::Right,
        JoinType::Full => JoinKind::Full,
        JoinType::LeftSemi => JoinKind::LeftSemi,
        JoinType::LeftAnti => JoinKind::LeftAnti,
        JoinType::RightSemi => JoinKind::RightSemi,
        JoinType::RightAnti => JoinKind::RightAnti,
        JoinType::LeftMark => JoinKind::LeftMark,
        _ => return None,
    })
}

/// The form's name of a binary operator, if it has one.
pub(super) fn op_name(op: &Operator) -> Option<&'static str> {
    Some(match op {
        Operator::Eq => "=",
        Operator::NotEq => "<>",
        Operator::Lt => "<",
        Operator::LtEq => "<=",
        Operator::Gt => ">",
        Operator::GtEq => ">=",
        Operator::Plus => "+",
        Operator::Minus => "-",
        Operator::Multiply => "*",
        Operator::Divide => "/",
        Operator::Modulo => "%",
        Operator::And => "and",
        Operator::Or => "or",
        Operator::IsDistinctFrom => "is_distinct_from",
        Operator::IsNotDistinctFrom => "is_not_distinct_from",
        Operator::StringConcat => "||",
        _ => return None,
    })
}

/// Converts an expression.
pub(super) fn expr(e: &DfExpr, h: &mut Handles) -> Expr {
    let b = |e: &DfExpr, h: &mut Handles| Box::new(expr(e, h));
    let unary = |op: &str, inner: &DfExpr, h: &mut Handles| Expr::Unary {
        op: op.to_string(),
        expr: Box::new(expr(inner, h)),
    };
    match e {
        DfExpr::Column(c) => Expr::Column {
            relation: c.relation.as_ref().map(TableReference::to_quoted_string),
            name: c.name.clone(),
        },
        DfExpr::Literal(v, None) => match literal_of(v) {
            Some(l) => Expr::Literal(l),
            None => opaque_expr(e, h),
        },
        DfExpr::Alias(Alias {
            expr: inner,
            relation,
            name,
            metadata: None,
        }) => Expr::Alias {
            expr: b(inner, h),
            relation: relation.as_ref().map(TableReference::to_quoted_string),
            name: name.clone(),
        },
        DfExpr::BinaryExpr(BinaryExpr { left, op, right }) => match op_name(op) {
            Some(name) => Expr::Binary {
                op: name.to_string(),
                left: b(left, h),
                right: b(right, h),
            },
            None => opaque_expr(e, h),
        },
        DfExpr::Not(i) => unary("not", i, h),
        DfExpr::Negative(i) => unary("negative", i, h),
        DfExpr::IsTrue(i) => unary("is_true", i, h),
        DfExpr::IsFalse(i) => unary("is_false", i, h),
        DfExpr::IsUnknown(i) => unary("is_unknown", i, h),
        DfExpr::IsNotTrue(i) => unary("is_not_true", i, h),
        DfExpr::IsNotFalse(i) => unary("is_not_false", i, h),
        DfExpr::IsNotUnknown(i) => unary("is_not_unknown", i, h),
        DfExpr::IsNull(i) => Expr::IsNull {
            expr: b(i, h),
            negated: false,
        },
        DfExpr::IsNotNull(i) => Expr::IsNull {
            expr: b(i, h),
            negated: true,
        },
        DfExpr::ScalarFunction(ScalarFunction { func, args }) => {
            h.scalar_functions
                .insert(func.name().to_string(), func.clone());
            Expr::Function {
                name: func.name().to_string(),
                args: args.iter().map(|a| expr(a, h)).collect(),
            }
        }
        DfExpr::AggregateFunction(AggregateFunction { func, params })
            if params.filter.is_none()
                && params.order_by.is_empty()
                && params.null_treatment.is_none() =>
        {
            h.aggregate_functions
                .insert(func.name().to_string(), func.clone());
            Expr::Aggregate {
                name: func.name().to_string(),
                args: params.args.iter().map(|a| expr(a, h)).collect(),
                distinct: params.distinct,
            }
        }
        DfExpr::Cast(Cast { expr: inner, field }) => match format_of(field.data_type()) {
            Some(t) => Expr::Cast {
                expr: b(inner, h),
                data_type: t,
                r#try: false,
            },
            None => opaque_expr(e, h),
        },
        DfExpr::TryCast(TryCast { expr: inner, field }) => match format_of(field.data_type()) {
            Some(t) => Expr::Cast {
                expr: b(inner, h),
                data_type: t,
                r#try: true,
            },
            None => opaque_expr(e, h),
        },
        DfExpr::Case(Case {
            expr: operand,
            when_then_expr,
            else_expr,
        }) => Expr::Case {
            operand: operand.as_ref().map(|o| b(o, h)),
            when_then: when_then_expr
                .iter()
                .map(|(w, t)| (expr(w, h), expr(t, h)))
                .collect(),
            otherwise: else_expr.as_ref().map(|o| b(o, h)),
        },
        DfExpr::InList(InList {
            expr: inner,
            list,
            negated,
        }) => Expr::InList {
            expr: b(inner, h),
            list: list.iter().map(|l| expr(l, h)).collect(),
            negated: *negated,
        },
        DfExpr::Between(Between {
            expr: inner,
            negated,
            low,
            high,
        }) => Expr::Between {
            expr: b(inner, h),
            low: b(low, h),
            high: b(high, h),
            negated: *negated,
        },
        DfExpr::Like(Like {
            negated,
            expr: inner,
            pattern,
            escape_char,
            case_insensitive,
        }) => Expr::Like {
            expr: b(inner, h),
            pattern: b(pattern, h),
            negated: *negated,
            case_insensitive: *case_insensitive,
            escape: *escape_char,
        },
        DfExpr::ScalarSubquery(s) => Expr::ScalarSubquery {
            plan: Box::new(node(&s.subquery, h)),
        },
        DfExpr::InSubquery(InSubquery {
            expr: inner,
            subquery,
            negated,
        }) => Expr::InSubquery {
            expr: b(inner, h),
            plan: Box::new(node(&subquery.subquery, h)),
            negated: *negated,
        },
        DfExpr::Exists(Exists { subquery, negated }) => Expr::Exists {
            plan: Box::new(node(&subquery.subquery, h)),
            negated: *negated,
        },
        DfExpr::Placeholder(p) => Expr::Parameter {
            id: p.id.clone(),
            data_type: p.field.as_ref().and_then(|f| format_of(f.data_type())),
        },
        _ => opaque_expr(e, h),
    }
}

fn opaque_expr(e: &DfExpr, h: &mut Handles) -> Expr {
    let id = h.exprs.len() as u32;
    h.exprs.push(e.clone());
    let mut children = Vec::new();
    let _ = e.apply_children(|c| {
        children.push(expr(c, h));
        Ok(TreeNodeRecursion::Continue)
    });
    Expr::Opaque {
        id,
        display: e.to_string(),
        children,
    }
}
