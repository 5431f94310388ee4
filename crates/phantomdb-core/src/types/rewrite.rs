//! Gives typed values their semantics in a planned statement, before DataFusion analyzes it.
//!
//! DataFusion sees a custom type only as its storage type (plus field metadata it keeps on
//! column references and casts), so its own casts would reinterpret bytes. [`rewrite`]:
//! * turns a cast from text to a custom type into the type's parse function, and a cast of a
//!   typed value to text into its format function; other casts to or from a custom type are
//!   refused (42846);
//! * parses the text side of a comparison (`= <> < <= > >=`, `IN`, `BETWEEN`) with a typed
//!   value;
//! * parses the text an INSERT or UPDATE assigns to a typed column (PostgreSQL's assignment
//!   cast);
//! * types again the result of `CASE`, `coalesce`, `nullif`, `greatest` and `least` over
//!   typed values (DataFusion drops the metadata there), parsing their text arguments;
//! * refuses any reference to, or write into a table with, a column whose type's plugin is
//!   not loaded;
//! * orders sort-key ordered types by their sort keys ([`super::order`]);
//! * types the arguments and results of plugin functions over custom types ([`super::calls`]).
//!
//! [`format_results`] puts the format function over every typed column of a query's result
//! (and of what `COPY ... TO` writes), so clients, the shell, the server and exported files see
//! text, never storage bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, Result as DfResult, TableReference};
use datafusion::logical_expr::expr::{Between, Cast, InList, ScalarFunction, TryCast};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    Aggregate, BinaryExpr, DmlStatement, Expr, ExprSchemable, LogicalPlan, Operator, Projection,
    Statement, WriteOp,
};

use super::planner::ASSIGNMENT_KEY;
use super::typing::{data_type, is_text, sql_name, type_of, Types};
use super::{calls, logical_type, order, udf, TypeInfo};
use crate::error::{Error, Result, SqlState};
use crate::plugins::{plugin_scalar_decl, Registry};

fn cannot_cast(from: &str, to: &str) -> Error {
    Error::Data(
        SqlState::CannotCoerce,
        format!("cannot cast type {from} to {to}"),
    )
}

/// Rewrites `plan` (see the module documentation).
pub(crate) fn rewrite(plan: LogicalPlan, registry: &Registry) -> Result<LogicalPlan> {
    let types = Types::of(registry);
    Ok(rewrite_plan(plan, &types)?.data)
}

fn rewrite_plan(plan: LogicalPlan, types: &Types) -> DfResult<Transformed<LogicalPlan>> {
    let children = plan.map_children(|c| rewrite_plan(c, types))?;
    let mut changed = children.transformed;
    let subqueries = children.data.map_subqueries(|s| rewrite_plan(s, types))?;
    changed |= subqueries.transformed;
    let node = subqueries.data;
    if let LogicalPlan::Dml(dml) = &node {
        check_target(dml, types)?;
    }
    let schema = expression_schema(&node);
    let preserver = NamePreserver::new(&node);
    let exprs = node.map_expressions(|e| {
        let saved = preserver.save(&e);
        let t = e.transform_up(|e| rewrite_expr(e, &schema, types).map_err(Into::into))?;
        Ok(if t.transformed {
            t.update_data(|e| saved.restore(e))
        } else {
            t
        })
    })?;
    changed |= exprs.transformed;
    let mut node = exprs.data;
    if let LogicalPlan::Sort(mut sort) = node {
        let input = sort.input.schema().clone();
        let mut keyed = false;
        sort.expr = sort
            .expr
            .into_iter()
            .map(|s| match type_of(&s.expr, &input, types)? {
                Some(t) if order::by_sort_key(t) => {
                    keyed = true;
                    Ok(order::sort_by_key(s, t))
                }
                _ => Ok(s),
            })
            .collect::<Result<_>>()?;
        changed |= keyed;
        node = LogicalPlan::Sort(sort);
    }
    if let LogicalPlan::Dml(dml) = node {
        let t = assignment_casts(dml, types)?;
        changed |= t.transformed;
        node = t.data;
    }
    let node = if changed {
        node.recompute_schema()?
    } else {
        node
    };
    let typed = typed_aggregates(node)?;
    Ok(if changed || typed.transformed {
        Transformed::yes(typed.data)
    } else {
        Transformed::no(typed.data)
    })
}

/// DataFusion's `min`, `max`, `first_value`, `last_value` and `any_value` return a plain
/// storage field: the aggregate's output keeps the custom type of its argument.
fn typed_aggregates(node: LogicalPlan) -> DfResult<Transformed<LogicalPlan>> {
    let LogicalPlan::Aggregate(agg) = node else {
        return Ok(Transformed::no(node));
    };
    let input_schema = agg.input.schema().clone();
    let Some(first) = agg.schema.fields().len().checked_sub(agg.aggr_expr.len()) else {
        return Ok(Transformed::no(LogicalPlan::Aggregate(agg)));
    };
    let mut fields: Vec<(Option<TableReference>, Arc<Field>)> = agg
        .schema
        .iter()
        .map(|(q, f)| (q.cloned(), f.clone()))
        .collect();
    let mut patched = false;
    for (i, e) in agg.aggr_expr.iter().enumerate() {
        let inner = match e {
            Expr::Alias(a) => a.expr.as_ref(),
            e => e,
        };
        let Expr::AggregateFunction(f) = inner else {
            continue;
        };
        if !matches!(
            f.func.name(),
            "min" | "max" | "first_value" | "last_value" | "any_value"
        ) {
            continue;
        }
        let [arg] = f.params.args.as_slice() else {
            continue;
        };
        let Ok((_, arg_field)) = arg.to_field(&input_schema) else {
            continue;
        };
        let Some(slot) = fields.get_mut(first + i) else {
            continue;
        };
        if logical_type(&arg_field).is_none()
            || slot.1.data_type() != arg_field.data_type()
            || slot.1.metadata() == arg_field.metadata()
        {
            continue;
        }
        slot.1 = Arc::new(
            slot.1
                .as_ref()
                .clone()
                .with_metadata(arg_field.metadata().clone()),
        );
        patched = true;
    }
    if !patched {
        return Ok(Transformed::no(LogicalPlan::Aggregate(agg)));
    }
    let schema = DFSchema::new_with_metadata(fields, agg.schema.metadata().clone())?
        .with_functional_dependencies(agg.schema.functional_dependencies().clone())?;
    Ok(Transformed::yes(LogicalPlan::Aggregate(
        Aggregate::try_new_with_schema(agg.input, agg.group_expr, agg.aggr_expr, Arc::new(schema))?,
    )))
}

/// The schema a node's expressions are resolved against: its inputs' columns together.
fn expression_schema(node: &LogicalPlan) -> DFSchema {
    let inputs = node.inputs();
    let Some((first, rest)) = inputs.split_first() else {
        return node.schema().as_ref().clone();
    };
    let mut schema = first.schema().as_ref().clone();
    for input in rest {
        schema.merge(input.schema());
    }
    schema
}

/// A write into a table with a column whose type is not loaded is refused.
fn check_target(dml: &DmlStatement, types: &Types) -> Result<()> {
    for field in dml.target.schema().fields() {
        let column = format!("{}.{}", dml.table_name.table(), field.name());
        types.of_field(field, &column)?;
    }
    Ok(())
}

/// The field and qualified name of a column reference, when it resolves.
fn column_field(schema: &DFSchema, c: &Column) -> Option<(String, Arc<Field>)> {
    let (qualifier, field) = schema.qualified_field_from_column(c).ok()?;
    let table = qualifier.map_or_else(
        || c.relation.as_ref().map(|r| r.table().to_string()),
        |q| Some(q.table().to_string()),
    );
    let name = match table {
        Some(t) => format!("{t}.{}", field.name()),
        None => field.name().clone(),
    };
    Some((name, field.clone()))
}

/// Text on one side of a comparison with a typed value is parsed into the type.
fn typed_operand(e: Expr, ty: &TypeInfo, schema: &DFSchema) -> Transformed<Expr> {
    match data_type(&e, schema) {
        Some(t) if is_text(&t) => Transformed::yes(udf::parse(ty, e)),
        _ => Transformed::no(e),
    }
}

fn rewrite_expr(e: Expr, schema: &DFSchema, types: &Types) -> Result<Transformed<Expr>> {
    match e {
        Expr::Column(c) => {
            if let Some((name, field)) = column_field(schema, &c) {
                types.of_field(&field, &name)?;
            }
            Ok(Transformed::no(Expr::Column(c)))
        }
        Expr::Cast(Cast { expr, field }) => cast(*expr, field, schema, types, false),
        Expr::TryCast(TryCast { expr, field }) => cast(*expr, field, schema, types, true),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if is_comparison(op) => {
            let (l, r) = (
                type_of(&left, schema, types)?,
                type_of(&right, schema, types)?,
            );
            let ordered = match (l, r) {
                (Some(t), _) | (None, Some(t)) if order::by_sort_key(t) && is_ordering(op) => {
                    Some(t)
                }
                _ => None,
            };
            let (left, right) = match (l, r) {
                (Some(t), None) => (Transformed::no(*left), typed_operand(*right, t, schema)),
                (None, Some(t)) => (typed_operand(*left, t, schema), Transformed::no(*right)),
                (Some(a), Some(b)) if a.name != b.name => {
                    return Err(Error::Data(
                        SqlState::UndefinedFunction,
                        format!("operator does not exist: {} {op} {}", a.name, b.name),
                    ))
                }
                _ => (Transformed::no(*left), Transformed::no(*right)),
            };
            let (left, right) = match ordered {
                Some(t) => (
                    Transformed::yes(order::order_operand(t, left.data)),
                    Transformed::yes(order::order_operand(t, right.data)),
                ),
                None => (left, right),
            };
            let changed = left.transformed || right.transformed;
            let e = Expr::BinaryExpr(BinaryExpr::new(
                Box::new(left.data),
                op,
                Box::new(right.data),
            ));
            Ok(if changed {
                Transformed::yes(e)
            } else {
                Transformed::no(e)
            })
        }
        Expr::InList(InList {
            expr,
            list,
            negated,
        }) => {
            let Some(t) = type_of(&expr, schema, types)? else {
                return Ok(Transformed::no(Expr::InList(InList::new(
                    expr, list, negated,
                ))));
            };
            let list: Vec<Transformed<Expr>> = list
                .into_iter()
                .map(|item| typed_operand(item, t, schema))
                .collect();
            let changed = list.iter().any(|i| i.transformed);
            let list = list.into_iter().map(|i| i.data).collect();
            let e = Expr::InList(InList::new(expr, list, negated));
            Ok(if changed {
                Transformed::yes(e)
            } else {
                Transformed::no(e)
            })
        }
        Expr::Between(Between {
            expr,
            negated,
            low,
            high,
        }) => {
            let Some(t) = type_of(&expr, schema, types)? else {
                return Ok(Transformed::no(Expr::Between(Between::new(
                    expr, negated, low, high,
                ))));
            };
            let (low, high) = (
                typed_operand(*low, t, schema),
                typed_operand(*high, t, schema),
            );
            let (expr, low, high) = if order::by_sort_key(t) {
                (
                    Box::new(order::order_operand(t, *expr)),
                    Transformed::yes(order::order_operand(t, low.data)),
                    Transformed::yes(order::order_operand(t, high.data)),
                )
            } else {
                (expr, low, high)
            };
            let changed = low.transformed || high.transformed;
            let e = Expr::Between(Between::new(
                expr,
                negated,
                Box::new(low.data),
                Box::new(high.data),
            ));
            Ok(if changed {
                Transformed::yes(e)
            } else {
                Transformed::no(e)
            })
        }
        Expr::Case(case) => {
            let branches = case
                .when_then_expr
                .iter()
                .map(|(_, then)| then.as_ref())
                .chain(case.else_expr.as_deref());
            let mut typed = None;
            for b in branches {
                if let Some(t) = type_of(b, schema, types)? {
                    typed = Some(t);
                }
            }
            let e = Expr::Case(case);
            match typed {
                Some(t) if type_of(&e, schema, types)?.is_none() => {
                    Ok(Transformed::yes(udf::retag(t, e)))
                }
                _ => Ok(Transformed::no(e)),
            }
        }
        Expr::ScalarFunction(f) if plugin_scalar_decl(&f.func).is_some() => {
            calls::scalar_call(f, schema, types)
        }
        Expr::ScalarFunction(f)
            if matches!(f.func.name(), "coalesce" | "nullif" | "greatest" | "least") =>
        {
            let mut typed = None;
            for a in &f.args {
                if let Some(t) = type_of(a, schema, types)? {
                    typed = Some(t);
                }
            }
            let Some(t) = typed else {
                return Ok(Transformed::no(Expr::ScalarFunction(f)));
            };
            if order::by_sort_key(t) && matches!(f.func.name(), "greatest" | "least") {
                return Err(Error::Unsupported(format!(
                    "{}() over type {} (ordered by sort keys)",
                    f.func.name(),
                    t.name
                )));
            }
            let args = f
                .args
                .into_iter()
                .map(|a| typed_operand(a, t, schema).data)
                .collect();
            let e = Expr::ScalarFunction(ScalarFunction::new_udf(f.func, args));
            Ok(Transformed::yes(udf::retag(t, e)))
        }
        Expr::AggregateFunction(f) => {
            let (mut f, typed) = calls::aggregate_call(f, schema, types)?;
            let mut changed = order_by_keys(&mut f.params.order_by, schema, types)? || typed;
            let extreme = match f.params.args.as_slice() {
                [arg] if matches!(f.func.name(), "min" | "max") => {
                    type_of(arg, schema, types)?.filter(|t| order::by_sort_key(t))
                }
                _ => None,
            };
            if let Some(t) = extreme {
                f = order::extreme_call(t, f);
                changed = true;
            }
            let e = Expr::AggregateFunction(f);
            Ok(if changed {
                Transformed::yes(e)
            } else {
                Transformed::no(e)
            })
        }
        Expr::WindowFunction(mut w) => {
            let mut changed = order_by_keys(&mut w.params.order_by, schema, types)?;
            changed |= peer_frame(&mut w, schema);
            if let (true, [arg]) = (
                matches!(w.fun.name(), "min" | "max"),
                w.params.args.as_slice(),
            ) {
                if let Some(t) = type_of(arg, schema, types)?.filter(|t| order::by_sort_key(t)) {
                    return Err(Error::Unsupported(format!(
                        "{}() OVER (...) over type {} (ordered by sort keys)",
                        w.fun.name(),
                        t.name
                    )));
                }
            }
            let e = Expr::WindowFunction(w);
            Ok(if changed {
                Transformed::yes(e)
            } else {
                Transformed::no(e)
            })
        }
        other => Ok(Transformed::no(other)),
    }
}

/// The sort expressions of a sort-key ordered type in `order_by` sort by the key instead.
fn order_by_keys(
    order_by: &mut [datafusion::logical_expr::SortExpr],
    schema: &DFSchema,
    types: &Types,
) -> Result<bool> {
    let mut changed = false;
    for s in order_by.iter_mut() {
        if let Some(t) = type_of(&s.expr, schema, types)?.filter(|t| order::by_sort_key(t)) {
            *s = order::sort_by_key(s.clone(), t);
            changed = true;
        }
    }
    Ok(changed)
}

/// A window ordered first by a binary value (a custom type's storage or sort key) over the
/// default frame `RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW` (or another `RANGE` frame
/// bounded only by `UNBOUNDED` and `CURRENT ROW`) gets the same frame in `GROUPS` units:
/// DataFusion refuses `RANGE` frames over binary keys, though such a frame needs no arithmetic
/// on them (its rows are the peers, as in `GROUPS`).
fn peer_frame(w: &mut datafusion::logical_expr::expr::WindowFunction, schema: &DFSchema) -> bool {
    use datafusion::logical_expr::{WindowFrame, WindowFrameBound, WindowFrameUnits};
    let frame = &w.params.window_frame;
    if frame.units != WindowFrameUnits::Range {
        return false;
    }
    let binary = w.params.order_by.first().is_some_and(|s| {
        matches!(
            data_type(&s.expr, schema),
            Some(
                DataType::Binary
                    | DataType::LargeBinary
                    | DataType::BinaryView
                    | DataType::FixedSizeBinary(_)
            )
        )
    });
    let open = |b: &WindowFrameBound| match b {
        WindowFrameBound::CurrentRow => true,
        WindowFrameBound::Preceding(v) | WindowFrameBound::Following(v) => v.is_null(),
    };
    if !binary || !open(&frame.start_bound) || !open(&frame.end_bound) {
        return false;
    }
    w.params.window_frame = WindowFrame::new_bounds(
        WindowFrameUnits::Groups,
        frame.start_bound.clone(),
        frame.end_bound.clone(),
    );
    true
}

/// `< <= > >=`: the comparisons that order (rather than equate) values.
fn is_ordering(op: Operator) -> bool {
    matches!(
        op,
        Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
    )
}

fn is_comparison(op: Operator) -> bool {
    matches!(
        op,
        Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom
    )
}

/// A cast to or from a custom type.
fn cast(
    expr: Expr,
    field: Arc<Field>,
    schema: &DFSchema,
    types: &Types,
    try_cast: bool,
) -> Result<Transformed<Expr>> {
    // An assignment's cast (see `assign`) is marked: only assignment casts apply to it, and
    // the mark goes no further.
    let assignment = field.metadata().contains_key(ASSIGNMENT_KEY);
    let field = if assignment {
        let mut metadata = field.metadata().clone();
        metadata.remove(ASSIGNMENT_KEY);
        Arc::new(field.as_ref().clone().with_metadata(metadata))
    } else {
        field
    };
    // The cast as DataFusion planned it (changed only if it lost the mark).
    let keep = |expr: Expr, field: Arc<Field>| {
        let e = if try_cast {
            Expr::TryCast(TryCast::new_from_field(Box::new(expr), field))
        } else {
            Expr::Cast(Cast::new_from_field(Box::new(expr), field))
        };
        Ok(Transformed::new_transformed(e, assignment))
    };
    let target = types.of_field(&field, "")?;
    let source = type_of(&expr, schema, types)?;
    let from = data_type(&expr, schema);
    match (source, target) {
        (None, None) => keep(expr, field),
        (None, Some(t)) => match from {
            Some(f) if is_text(&f) => Ok(Transformed::yes(udf::parse(t, expr))),
            Some(DataType::Null) | None => keep(expr, field),
            Some(f) => match t.cast_into(&f, assignment) {
                Some((i, _)) => Ok(Transformed::yes(udf::cast_with(t, i, expr))),
                None if assignment && t.cast_into(&f, false).is_some() => Err(Error::Data(
                    SqlState::DatatypeMismatch,
                    format!(
                        "a value of type {} is not assigned to type {} (its cast is explicit: \
                         write CAST(... AS {}))",
                        sql_name(&f),
                        t.name,
                        t.name
                    ),
                )),
                None => Err(cannot_cast(&sql_name(&f), &t.name)),
            },
        },
        (Some(s), Some(t)) if s.name == t.name => Ok(Transformed::yes(expr)),
        (Some(s), Some(t)) => Err(cannot_cast(&s.name, &t.name)),
        (Some(s), None) if is_text(field.data_type()) => {
            let text = udf::format(s, expr);
            Ok(Transformed::yes(if field.data_type() == &DataType::Utf8 {
                text
            } else {
                Expr::Cast(Cast::new_from_field(Box::new(text), field))
            }))
        }
        (Some(s), None) => match s.cast_from(field.data_type()) {
            Some((i, c)) => {
                let out = udf::cast_with(s, i, expr);
                if &c.other == field.data_type() {
                    Ok(Transformed::yes(out))
                } else {
                    Ok(Transformed::yes(Expr::Cast(Cast::new_from_field(
                        Box::new(out),
                        field,
                    ))))
                }
            }
            None => Err(cannot_cast(&s.name, &sql_name(field.data_type()))),
        },
    }
}

/// INSERT and UPDATE: the text a statement assigns to a typed column is parsed (DataFusion
/// planned a storage cast of it, or nothing when the text has the storage type).
fn assignment_casts(dml: DmlStatement, types: &Types) -> Result<Transformed<LogicalPlan>> {
    if !matches!(dml.op, WriteOp::Insert(_) | WriteOp::Update) {
        return Ok(Transformed::no(LogicalPlan::Dml(dml)));
    }
    let target = dml.target.schema();
    let typed: BTreeMap<&str, &TypeInfo> = target
        .fields()
        .iter()
        .filter_map(|f| Some((f.name().as_str(), types.of_field(f, "").ok()??)))
        .collect();
    let LogicalPlan::Projection(projection) = dml.input.as_ref() else {
        return Ok(Transformed::no(LogicalPlan::Dml(dml)));
    };
    if typed.is_empty() {
        return Ok(Transformed::no(LogicalPlan::Dml(dml)));
    }
    let input_schema = projection.input.schema().as_ref().clone();
    let mut values = match projection.input.as_ref() {
        LogicalPlan::Values(v) => Some(v.clone()),
        _ => None,
    };
    let mut changed = false;
    let mut exprs = Vec::with_capacity(projection.expr.len());
    for e in &projection.expr {
        let name = e.schema_name().to_string();
        let (inner, alias) = match e {
            Expr::Alias(a) => (a.expr.as_ref().clone(), Some(a.name.clone())),
            other => (other.clone(), None),
        };
        let name = alias.clone().unwrap_or(name);
        let Some(t) = typed.get(name.as_str()) else {
            exprs.push(e.clone());
            continue;
        };
        // INSERT ... VALUES: DataFusion cast the values in the Values node itself.
        if let (Expr::Column(c), Some(v)) = (&inner, values.as_mut()) {
            if let Ok(i) = input_schema.index_of_column(c) {
                let mut parsed = false;
                for row in v.values.iter_mut() {
                    if let Some(cell) = row.get_mut(i) {
                        let value = strip_cast(cell.clone());
                        if data_type(&value, &DFSchema::empty()).is_some_and(|t| is_text(&t)) {
                            *cell = udf::parse(t, value);
                            parsed = true;
                        }
                    }
                }
                changed |= parsed;
                exprs.push(e.clone());
                continue;
            }
        }
        let value = strip_cast(inner);
        let new = match data_type(&value, &input_schema) {
            Some(f) if is_text(&f) => udf::parse(t, value),
            _ => {
                exprs.push(e.clone());
                continue;
            }
        };
        changed = true;
        exprs.push(new.alias(name));
    }
    if !changed {
        return Ok(Transformed::no(LogicalPlan::Dml(dml)));
    }
    let input = match values {
        Some(v) => Arc::new(LogicalPlan::Values(v)),
        None => projection.input.clone(),
    };
    let projection = Projection::try_new(exprs, input)?;
    Ok(Transformed::yes(LogicalPlan::Dml(DmlStatement::new(
        dml.table_name,
        dml.target,
        dml.op,
        Arc::new(LogicalPlan::Projection(projection)),
    ))))
}

fn strip_cast(e: Expr) -> Expr {
    match e {
        Expr::Cast(Cast { expr, .. }) | Expr::TryCast(TryCast { expr, .. }) => *expr,
        other => other,
    }
}

/// Formats every typed column of a query's result as text (a projection on top); other
/// statements are returned as they are.
pub(crate) fn format_results(plan: LogicalPlan, registry: &Registry) -> Result<LogicalPlan> {
    let types = Types::of(registry);
    match plan {
        LogicalPlan::Statement(Statement::Prepare(mut prepare)) => {
            let input = Arc::unwrap_or_clone(prepare.input);
            prepare.input = Arc::new(format_query(input, &types)?);
            Ok(LogicalPlan::Statement(Statement::Prepare(prepare)))
        }
        // COPY ... TO writes what a query would show: the formatted text.
        LogicalPlan::Copy(mut copy) => {
            let input = Arc::unwrap_or_clone(copy.input);
            copy.input = Arc::new(format_query(input, &types)?);
            Ok(LogicalPlan::Copy(copy))
        }
        LogicalPlan::Dml(_)
        | LogicalPlan::Ddl(_)
        | LogicalPlan::Explain(_)
        | LogicalPlan::Analyze(_)
        | LogicalPlan::DescribeTable(_)
        | LogicalPlan::Statement(_)
        | LogicalPlan::Extension(_) => Ok(plan),
        query => format_query(query, &types),
    }
}

fn format_query(plan: LogicalPlan, types: &Types) -> Result<LogicalPlan> {
    let schema = plan.schema().clone();
    let mut any = false;
    let mut exprs = Vec::with_capacity(schema.fields().len());
    for (qualifier, field) in schema.iter() {
        let column = Expr::Column(Column::from((qualifier, field)));
        match types.of_field(field, field.name())? {
            Some(t) => {
                any = true;
                exprs
                    .push(udf::format(t, column).alias_qualified(qualifier.cloned(), field.name()));
            }
            None => exprs.push(column),
        }
    }
    if !any {
        return Ok(plan);
    }
    Ok(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(plan),
    )?))
}
