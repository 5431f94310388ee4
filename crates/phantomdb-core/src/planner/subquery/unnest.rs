//! Where subqueries sit in a plan, and what replaces them: for each operator (projection,
//! filter, sort, aggregate) whose expressions hold a correlated subquery, the subquery is
//! computed per binding ([`Dependent`]) and joined to the operator's input; the expression
//! then reads the joined columns.
//!
//! * a conjunct of a filter: `EXISTS` and `IN`/`ANY` become a semi join, `NOT EXISTS`,
//!   `NOT IN` and `ALL` an anti join (`NOT IN` drops a row when some value is equal *or*
//!   NULL, `ALL` when the comparison is not true for some value);
//! * anywhere else, a left join with one row per binding: the scalar subquery's value (a
//!   second row fails with `21000`), `EXISTS` as a mark, and `IN`/`ANY`/`ALL` as the best
//!   (or worst) comparison outcome over the subquery's rows, so NULLs give SQL's three-valued
//!   answer.
//!
//! Uncorrelated subqueries are left to DataFusion where it runs them (a scalar subquery
//! anywhere, `IN`/`EXISTS` in a filter).

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, Result};
use datafusion::functions_aggregate::expr_fn::{max, min};
use datafusion::logical_expr::expr::{Exists, InSubquery, SetComparison, SetQuantifier};
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{
    binary_expr, lit, when, Aggregate, Distinct, Expr, ExprSchemable, Filter, JoinType,
    LogicalPlan, Operator, Projection, Sort, Subquery,
};

use super::dependent::{columns, keep_name, Dependent, Pushed};
use super::domain::{aliased, all_columns, column_of, join_bindings, Domain, Names};
use super::outer::outer_columns;
use super::single_row::single_row;

/// The name of the value column of a per-binding result.
const VALUE: &str = "__phantomdb_v";

/// `plan` with its correlated subqueries replaced by joins (those it cannot rewrite are
/// left as they are).
pub(super) fn unnest_plan(plan: LogicalPlan, names: &mut Names) -> Result<LogicalPlan> {
    plan.transform_up(|node| unnest_node(node, names))
        .map(|t| t.data)
}

/// A subquery expression and how it compares (for `IN`/`ANY`/`ALL`).
#[derive(Clone)]
enum Kind {
    Scalar,
    Exists {
        negated: bool,
    },
    /// `x op ANY (...)` (`IN` is `= ANY`); `all` for `x op ALL (...)`; `negated` for NOT IN.
    Compare {
        x: Expr,
        op: Operator,
        all: bool,
        negated: bool,
    },
}

fn classify(expr: &Expr) -> Option<(Kind, &Subquery)> {
    match expr {
        Expr::ScalarSubquery(s) => Some((Kind::Scalar, s)),
        Expr::Exists(Exists { subquery, negated }) => {
            Some((Kind::Exists { negated: *negated }, subquery))
        }
        Expr::InSubquery(InSubquery {
            expr,
            subquery,
            negated,
        }) => Some((
            Kind::Compare {
                x: expr.as_ref().clone(),
                op: Operator::Eq,
                all: false,
                negated: *negated,
            },
            subquery,
        )),
        Expr::SetComparison(SetComparison {
            expr,
            subquery,
            op,
            quantifier,
        }) => Some((
            Kind::Compare {
                x: expr.as_ref().clone(),
                op: *op,
                all: matches!(quantifier, SetQuantifier::All),
                negated: false,
            },
            subquery,
        )),
        _ => None,
    }
}

fn unnest_node(node: LogicalPlan, names: &mut Names) -> Result<Transformed<LogicalPlan>> {
    let input = match &node {
        LogicalPlan::Projection(Projection { input, .. })
        | LogicalPlan::Filter(Filter { input, .. })
        | LogicalPlan::Sort(Sort { input, .. }) => input.clone(),
        LogicalPlan::Aggregate(a)
            if !a
                .group_expr
                .iter()
                .any(|e| matches!(e, Expr::GroupingSet(_))) =>
        {
            a.input.clone()
        }
        _ => return Ok(Transformed::no(node)),
    };
    let is_filter = matches!(node, LogicalPlan::Filter(_));
    // WHERE conjuncts that are a plain EXISTS, NOT EXISTS or IN over a subquery without
    // subqueries of its own: DataFusion turns these into semi and anti joins keyed on the
    // correlation equalities, with the right NULL rules, and much faster than a domain join
    // (TPC-H q04, q21, q22).
    let conjuncts: Vec<Expr> = match &node {
        LogicalPlan::Filter(f) => split_conjunction(&f.predicate)
            .into_iter()
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    let datafusion_joins = |e: &Expr, kind: &Kind, subquery: &Subquery| -> Result<bool> {
        let plain = match kind {
            Kind::Exists { .. } => true,
            Kind::Compare {
                op, all, negated, ..
            } => *op == Operator::Eq && !*all && !*negated,
            Kind::Scalar => false,
        };
        Ok(plain && conjuncts.contains(e) && !super::has_subquery(&subquery.subquery)?)
    };
    let mut found: Vec<Expr> = Vec::new();
    for expr in node.expressions() {
        expr.apply(|e| {
            if let Some((kind, subquery)) = classify(e) {
                let correlated = !outer_columns(&subquery.subquery, input.schema())?.is_empty();
                let ours = (correlated && !datafusion_joins(e, &kind, subquery)?)
                    || !(is_filter || matches!(kind, Kind::Scalar));
                if ours && !found.contains(e) {
                    found.push(e.clone());
                }
                return Ok(TreeNodeRecursion::Jump);
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
    }
    if found.is_empty() {
        return Ok(Transformed::no(node));
    }
    // The plain conjuncts of a WHERE filter first: the domain of a subquery is then drawn
    // from the rows that pass them, not from the FROM clause's cross product (TPC-H q02).
    let node = match node {
        LogicalPlan::Filter(f) => match filter_plain_first(f, &found)? {
            Ok(split) => return unnest_node(split, names).map(|t| Transformed::yes(t.data)),
            Err(f) => LogicalPlan::Filter(f),
        },
        other => other,
    };
    let mut rewrite = Rewrite {
        names,
        joined: input.as_ref().clone(),
        replaced: Vec::new(),
    };
    let rebuilt = match node {
        LogicalPlan::Filter(f) => {
            let mut rest = Vec::new();
            for conjunct in split_conjunction(&f.predicate) {
                if !(found.contains(conjunct) && rewrite.semi_join(conjunct, &input)?) {
                    rest.push(conjunct.clone());
                }
            }
            rewrite.left_joins(&found, &rest, &input)?;
            let joined = Arc::new(rewrite.joined.clone());
            let plan = match conjunction(rest) {
                Some(p) => LogicalPlan::Filter(Filter::try_new(rewrite.replace(p)?, joined)?),
                None => Arc::unwrap_or_clone(joined),
            };
            restore(plan, &input)?
        }
        LogicalPlan::Projection(p) => {
            rewrite.left_joins(&found, &p.expr, &input)?;
            let mut exprs = Vec::with_capacity(p.expr.len());
            for (i, e) in p.expr.into_iter().enumerate() {
                exprs.push(keep_name(rewrite.replace(e)?, &p.schema, i));
            }
            LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(rewrite.joined))?)
        }
        LogicalPlan::Sort(s) => {
            let exprs: Vec<Expr> = s.expr.iter().map(|e| e.expr.clone()).collect();
            rewrite.left_joins(&found, &exprs, &input)?;
            let mut sort = Vec::with_capacity(s.expr.len());
            for e in s.expr {
                sort.push(e.with_expr(rewrite.replace(e.expr.clone())?));
            }
            let sorted = LogicalPlan::Sort(Sort {
                expr: sort,
                input: Arc::new(rewrite.joined),
                fetch: s.fetch,
            });
            restore(sorted, &input)?
        }
        LogicalPlan::Aggregate(a) => {
            let exprs: Vec<Expr> = a.group_expr.iter().chain(&a.aggr_expr).cloned().collect();
            rewrite.left_joins(&found, &exprs, &input)?;
            let groups = a.group_expr.len();
            let mut group_expr = Vec::with_capacity(groups);
            for (i, e) in a.group_expr.into_iter().enumerate() {
                group_expr.push(keep_name(rewrite.replace(e)?, &a.schema, i));
            }
            let mut aggr_expr = Vec::with_capacity(a.aggr_expr.len());
            for (i, e) in a.aggr_expr.into_iter().enumerate() {
                aggr_expr.push(keep_name(rewrite.replace(e)?, &a.schema, groups + i));
            }
            let joined = Arc::new(rewrite.joined);
            LogicalPlan::Aggregate(Aggregate::try_new(joined, group_expr, aggr_expr)?)
        }
        other => return Ok(Transformed::no(other)),
    };
    Ok(Transformed::yes(rebuilt))
}

/// `filter` as a filter of its rewritten conjuncts (those holding one of `found`) over a
/// filter of the others, or the filter itself (`Err`) when it has no conjuncts of one kind.
fn filter_plain_first(
    filter: Filter,
    found: &[Expr],
) -> Result<std::result::Result<LogicalPlan, Filter>> {
    let (mut rewritten, mut plain) = (Vec::new(), Vec::new());
    for conjunct in split_conjunction(&filter.predicate) {
        let mut holds = false;
        conjunct.apply(|e| {
            holds |= found.contains(e);
            Ok(if holds {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        })?;
        if holds {
            rewritten.push(conjunct.clone());
        } else {
            plain.push(conjunct.clone());
        }
    }
    let (Some(rewritten), Some(plain)) = (conjunction(rewritten), conjunction(plain)) else {
        return Ok(Err(filter));
    };
    let below = LogicalPlan::Filter(Filter::try_new(plain, filter.input)?);
    Ok(Ok(LogicalPlan::Filter(Filter::try_new(
        rewritten,
        Arc::new(below),
    )?)))
}

/// `plan` projected back to the columns of `input` (the schema the operator had).
fn restore(plan: LogicalPlan, input: &LogicalPlan) -> Result<LogicalPlan> {
    let projection = Projection::try_new(all_columns(input), Arc::new(plan))?;
    Ok(LogicalPlan::Projection(projection))
}

/// The joins one operator's subqueries become.
struct Rewrite<'a> {
    names: &'a mut Names,
    /// The operator's input with the subqueries' results joined in.
    joined: LogicalPlan,
    /// Each rewritten subquery expression and the expression that replaces it.
    replaced: Vec<(Expr, Expr)>,
}

impl Rewrite<'_> {
    /// The subquery computed per binding of the outer columns it reads (`extra` adds
    /// bindings), with its nested subqueries rewritten too; `None` where it cannot be.
    fn per_binding(
        &mut self,
        subquery: &Subquery,
        input: &Arc<LogicalPlan>,
        extra: Option<&Column>,
    ) -> Result<Option<(Pushed, Vec<Column>)>> {
        let mut outer = outer_columns(&subquery.subquery, input.schema())?;
        let domain_input = match extra {
            Some(x) => {
                outer.push(x.clone());
                Arc::new(self.joined.clone())
            }
            None => input.clone(),
        };
        let domain = Domain::new(&domain_input, &outer)?;
        let mut dependent = Dependent {
            domain: &domain,
            names: self.names,
        };
        let mut pushed = match dependent.push(&subquery.subquery) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!("subquery left to DataFusion: {e}");
                return Ok(None);
            }
        };
        pushed.plan = unnest_plan(pushed.plan, self.names)?;
        Ok(Some((pushed, outer)))
    }

    /// A filter conjunct as a semi or anti join; false when it is not one of those shapes.
    fn semi_join(&mut self, conjunct: &Expr, input: &Arc<LogicalPlan>) -> Result<bool> {
        let Some((kind, subquery)) = classify(conjunct) else {
            return Ok(false);
        };
        let (join_type, compare) = match &kind {
            Kind::Scalar => return Ok(false),
            Kind::Exists { negated: false } => (JoinType::LeftSemi, None),
            Kind::Exists { negated: true } => (JoinType::LeftAnti, None),
            Kind::Compare {
                x,
                op,
                all,
                negated,
            } => {
                // Kept: some value compares true. Dropped: NOT IN when some value is equal
                // or NULL; ALL when the comparison is not true for some value.
                let anti = *all || *negated;
                (
                    if anti {
                        JoinType::LeftAnti
                    } else {
                        JoinType::LeftSemi
                    },
                    Some((x.clone(), *op, *all, *negated)),
                )
            }
        };
        let Some((pushed, outer)) = self.per_binding(subquery, input, None)? else {
            return Ok(false);
        };
        let mut exprs = columns(&pushed.bound);
        if compare.is_some() {
            exprs.push(first_column(&subquery.subquery).alias(VALUE));
        }
        let projection = Projection::try_new(exprs, Arc::new(pushed.plan))?;
        let (right, alias) = aliased(LogicalPlan::Projection(projection), self.names)?;
        let filter = compare.map(|(x, op, all, negated)| {
            let cmp = binary_expr(x, op, column_of(&alias, VALUE));
            if all {
                cmp.is_not_true()
            } else if negated {
                cmp.is_not_false()
            } else {
                cmp
            }
        });
        let keys = right_keys(&alias, &pushed.bound);
        let left = std::mem::replace(&mut self.joined, empty());
        self.joined = join_bindings(left, right, join_type, &outer_exprs(&outer), &keys, filter)?;
        Ok(true)
    }

    /// Left-joins the per-binding result of every subquery of `found` that `exprs` still
    /// hold, and records what replaces it.
    fn left_joins(
        &mut self,
        found: &[Expr],
        exprs: &[Expr],
        input: &Arc<LogicalPlan>,
    ) -> Result<()> {
        for expr in found {
            let mut used = false;
            for e in exprs {
                e.apply(|x| {
                    used |= x == expr;
                    Ok(if used {
                        TreeNodeRecursion::Stop
                    } else {
                        TreeNodeRecursion::Continue
                    })
                })?;
            }
            if used {
                self.left_join(expr, input)?;
            }
        }
        Ok(())
    }

    fn left_join(&mut self, expr: &Expr, input: &Arc<LogicalPlan>) -> Result<()> {
        let Some((kind, subquery)) = classify(expr) else {
            return Ok(());
        };
        // The compared value is one more binding: projected as a column of the input.
        let x_column = match &kind {
            Kind::Compare { x, .. } => Some(self.project_column(x.clone())?),
            _ => None,
        };
        let Some((pushed, outer)) = self.per_binding(subquery, input, x_column.as_ref())? else {
            return Ok(());
        };
        let bound = columns(&pushed.bound);
        let value = first_column(&subquery.subquery);
        let (result, replacement): (LogicalPlan, Box<dyn Fn(Expr) -> Expr>) = match kind {
            Kind::Scalar => {
                let mut exprs = bound.clone();
                exprs.push(value.clone().alias(VALUE));
                let mut plan =
                    LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(pushed.plan))?);
                if !pushed.at_most_one {
                    let data_type = value.get_type(subquery.subquery.schema())?;
                    let only = Expr::AggregateFunction(
                        datafusion::logical_expr::expr::AggregateFunction::new_udf(
                            Arc::new(single_row(&data_type)),
                            vec![Expr::Column(Column::from_name(VALUE))],
                            false,
                            None,
                            vec![],
                            None,
                        ),
                    )
                    .alias(VALUE);
                    plan = LogicalPlan::Aggregate(Aggregate::try_new(
                        Arc::new(plan),
                        columns(&pushed.bound),
                        vec![only],
                    )?);
                }
                (plan, Box::new(|v| v))
            }
            Kind::Exists { negated } => {
                let mut exprs = bound.clone();
                exprs.push(lit(true).alias(VALUE));
                let projection = Projection::try_new(exprs, Arc::new(pushed.plan))?;
                let plan = LogicalPlan::Distinct(Distinct::All(Arc::new(LogicalPlan::Projection(
                    projection,
                ))));
                let f: Box<dyn Fn(Expr) -> Expr> = if negated {
                    Box::new(|v: Expr| v.is_null())
                } else {
                    Box::new(|v: Expr| v.is_not_null())
                };
                (plan, f)
            }
            Kind::Compare {
                op, all, negated, ..
            } => {
                // 2: the comparison is true, 1: NULL, 0: false; ANY takes the best row,
                // ALL the worst.
                let Some(x_bound) = pushed.bound.last() else {
                    return Ok(());
                };
                let cmp = binary_expr(Expr::Column(x_bound.clone()), op, value);
                let outcome = when(cmp.clone(), lit(2i64))
                    .when(cmp.is_null(), lit(1i64))
                    .otherwise(lit(0i64))?;
                let mut exprs = bound.clone();
                exprs.push(outcome.alias(VALUE));
                let projection = Projection::try_new(exprs, Arc::new(pushed.plan))?;
                let outcome = Expr::Column(Column::from_name(VALUE));
                let pick = if all { min(outcome) } else { max(outcome) }.alias(VALUE);
                let plan = LogicalPlan::Aggregate(Aggregate::try_new(
                    Arc::new(LogicalPlan::Projection(projection)),
                    columns(&pushed.bound),
                    vec![pick],
                )?);
                let f: Box<dyn Fn(Expr) -> Expr> = Box::new(move |v: Expr| {
                    let null = lit(datafusion::common::ScalarValue::Boolean(None));
                    let answer = if all {
                        when(v.clone().is_null().or(v.clone().eq(lit(2i64))), lit(true))
                            .when(v.eq(lit(1i64)), null)
                            .otherwise(lit(false))
                    } else {
                        when(v.clone().eq(lit(2i64)), lit(true))
                            .when(v.eq(lit(1i64)), null)
                            .otherwise(lit(false))
                    };
                    let answer = answer.unwrap_or_else(|_| lit(false));
                    if negated {
                        !answer
                    } else {
                        answer
                    }
                });
                (plan, f)
            }
        };
        let (right, alias) = aliased(result, self.names)?;
        let keys = right_keys(&alias, &pushed.bound);
        let left_keys = outer_exprs(&outer);
        let left = std::mem::replace(&mut self.joined, empty());
        self.joined = join_bindings(left, right, JoinType::Left, &left_keys, &keys, None)?;
        self.replaced
            .push((expr.clone(), replacement(column_of(&alias, VALUE))));
        Ok(())
    }

    /// `x` as a column of the joined input (projected when it is not a column already).
    fn project_column(&mut self, x: Expr) -> Result<Column> {
        if let Expr::Column(c) = &x {
            return Ok(c.clone());
        }
        let name = self.names.fresh("x");
        let mut exprs = all_columns(&self.joined);
        exprs.push(x.alias(&name));
        let joined = std::mem::replace(&mut self.joined, empty());
        self.joined = LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(joined))?);
        Ok(Column::from_name(name))
    }

    /// `expr` with the rewritten subqueries replaced by what they became.
    fn replace(&self, expr: Expr) -> Result<Expr> {
        expr.transform_down(
            |e| match self.replaced.iter().find(|(from, _)| *from == e) {
                Some((_, to)) => Ok(Transformed::new(to.clone(), true, TreeNodeRecursion::Jump)),
                None => Ok(Transformed::no(e)),
            },
        )
        .map(|t| t.data)
    }
}

/// The subquery's (only) output column.
fn first_column(plan: &LogicalPlan) -> Expr {
    let (qualifier, field) = plan.schema().qualified_field(0);
    Expr::Column(Column::new(qualifier.cloned(), field.name()))
}

/// The binding columns of a per-binding result aliased `alias`.
fn right_keys(alias: &datafusion::common::TableReference, bound: &[Column]) -> Vec<Column> {
    bound
        .iter()
        .map(|c| Column::new(Some(alias.clone()), c.name.clone()))
        .collect()
}

fn outer_exprs(outer: &[Column]) -> Vec<Expr> {
    outer.iter().cloned().map(Expr::Column).collect()
}

/// A placeholder while a plan is moved out of a field.
fn empty() -> LogicalPlan {
    LogicalPlan::EmptyRelation(datafusion::logical_expr::EmptyRelation {
        produce_one_row: false,
        schema: Arc::new(datafusion::common::DFSchema::empty()),
    })
}
