//! The dependent join: a correlated subquery computed once for every binding of its domain.
//!
//! [`Dependent::push`] rewrites the subquery's plan so that it reads the bindings from a
//! join with the domain instead of from the outer query ("Unnesting Arbitrary Queries",
//! Neumann and Kemper, BTW 2015): the domain is pushed down the subquery's operators until
//! no operator below reads the outer query; there it is cross-joined in (the optimizer turns
//! the filters above into join conditions), and every operator above carries the binding
//! columns along (a projection keeps them, an aggregate groups by them, a limit becomes a
//! row number per binding). The result keeps the subquery's own output columns under their
//! names, plus the binding columns.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{not_impl_err, Column, DFSchema, Result, ScalarValue};
use datafusion::functions::expr_fn::coalesce;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{
    lit, Aggregate, Distinct, Expr, ExprFunctionExt, FetchType, Filter, Join, JoinType, Limit,
    LogicalPlan, LogicalPlanBuilder, Projection, SkipType, SortExpr, SubqueryAlias, Union, Window,
    WindowFrame, WindowFrameBound, WindowFrameUnits,
};

use super::domain::{all_columns, binding_pairs, join_bindings, Domain, Names};
use super::outer::{bind_expr, reads_any};

/// A subquery rewritten to run for every binding of its domain.
pub(super) struct Pushed {
    /// The subquery's plan, its output columns plus the binding columns.
    pub(super) plan: LogicalPlan,
    /// The binding columns in `plan`'s output, by binding position.
    pub(super) bound: Vec<Column>,
    /// Whether `plan` has at most one row per binding.
    pub(super) at_most_one: bool,
}

/// Pushes one domain down one subquery.
pub(super) struct Dependent<'a> {
    pub(super) domain: &'a Domain,
    pub(super) names: &'a mut Names,
}

impl Dependent<'_> {
    /// `plan` computed for every binding (an error for an operator it cannot carry the
    /// bindings through; the caller then leaves the subquery to DataFusion).
    pub(super) fn push(&mut self, plan: &LogicalPlan) -> Result<Pushed> {
        if !reads_any(plan, &self.domain.index)? {
            let (domain, bound) = self.domain.instance(self.names)?;
            let at_most_one = plan.max_rows().is_some_and(|n| n <= 1);
            let plan = LogicalPlanBuilder::from(domain)
                .cross_join(plan.clone())?
                .build()?;
            return Ok(Pushed {
                plan,
                bound,
                at_most_one,
            });
        }
        match plan {
            LogicalPlan::Filter(f) => {
                let input = self.push(&f.input)?;
                let predicate = self.bind(f.predicate.clone(), &input)?;
                input.then(|plan| Ok(LogicalPlan::Filter(Filter::try_new(predicate, plan)?)))
            }
            LogicalPlan::Projection(p) => {
                let input = self.push(&p.input)?;
                let mut exprs = columns(&input.bound);
                for (i, e) in p.expr.iter().enumerate() {
                    exprs.push(keep_name(self.bind(e.clone(), &input)?, &p.schema, i));
                }
                input.then(|plan| Ok(LogicalPlan::Projection(Projection::try_new(exprs, plan)?)))
            }
            LogicalPlan::Aggregate(a) => self.aggregate(a),
            LogicalPlan::Sort(s) => match s.fetch {
                None => self.push(&s.input),
                Some(fetch) => self.first_rows(&s.input, s.expr.clone(), 0, Some(fetch)),
            },
            LogicalPlan::Limit(l) => self.limit(l),
            LogicalPlan::SubqueryAlias(a) => {
                let input = self.push(&a.input)?;
                let alias = SubqueryAlias::try_new(Arc::new(input.plan), a.alias.clone())?;
                let bound = input
                    .bound
                    .iter()
                    .map(|c| Column::new(Some(a.alias.clone()), c.name.clone()))
                    .collect();
                Ok(Pushed {
                    plan: LogicalPlan::SubqueryAlias(alias),
                    bound,
                    at_most_one: input.at_most_one,
                })
            }
            LogicalPlan::Distinct(Distinct::All(inner)) => {
                let input = self.push(inner)?;
                input.then(|plan| Ok(LogicalPlan::Distinct(Distinct::All(plan))))
            }
            LogicalPlan::Window(w) => {
                let input = self.push(&w.input)?;
                let offset = w.input.schema().fields().len();
                let mut exprs = Vec::with_capacity(w.window_expr.len());
                for (i, e) in w.window_expr.iter().enumerate() {
                    let e = partition_by_bindings(self.bind(e.clone(), &input)?, &input.bound)?;
                    exprs.push(keep_name(e, &w.schema, offset + i));
                }
                input.then(|plan| Ok(LogicalPlan::Window(Window::try_new(exprs, plan)?)))
            }
            LogicalPlan::Join(j) => self.join(j),
            LogicalPlan::Union(u) => {
                let mut inputs = Vec::with_capacity(u.inputs.len());
                for branch in &u.inputs {
                    let pushed = self.push(branch)?;
                    let mut exprs = columns(&pushed.bound);
                    exprs.extend(all_columns(branch));
                    let projection = Projection::try_new(exprs, Arc::new(pushed.plan))?;
                    inputs.push(Arc::new(LogicalPlan::Projection(projection)));
                }
                let union = Union::try_new(inputs)?;
                let bound = union.schema.columns()[..self.domain.width()].to_vec();
                Ok(Pushed {
                    plan: LogicalPlan::Union(union),
                    bound,
                    at_most_one: false,
                })
            }
            other => not_impl_err!("correlated subquery through a {} operator", other.display()),
        }
    }

    /// Replaces the outer references of an expression of a node above `input`.
    fn bind(&self, expr: Expr, input: &Pushed) -> Result<Expr> {
        bind_expr(expr, &self.domain.index, &input.bound, input.plan.schema())
    }

    /// An aggregate grouped by the bindings too. Without GROUP BY it has one row for every
    /// binding, also for a binding no row reached: the domain is left-joined to it and each
    /// aggregate takes its value over no rows there (`count` 0, others NULL).
    fn aggregate(&mut self, a: &Aggregate) -> Result<Pushed> {
        if a.group_expr
            .iter()
            .any(|e| matches!(e, Expr::GroupingSet(_)))
        {
            return not_impl_err!("correlated subquery with GROUPING SETS");
        }
        let input = self.push(&a.input)?;
        let groups = a.group_expr.len();
        let mut group_expr = columns(&input.bound);
        for (i, e) in a.group_expr.iter().enumerate() {
            group_expr.push(keep_name(self.bind(e.clone(), &input)?, &a.schema, i));
        }
        let mut aggr_expr = Vec::with_capacity(a.aggr_expr.len());
        for (i, e) in a.aggr_expr.iter().enumerate() {
            aggr_expr.push(keep_name(
                self.bind(e.clone(), &input)?,
                &a.schema,
                groups + i,
            ));
        }
        let bound = input.bound;
        let aggregate = Aggregate::try_new(Arc::new(input.plan), group_expr, aggr_expr)?;
        if groups > 0 || bound.is_empty() {
            return Ok(Pushed {
                plan: LogicalPlan::Aggregate(aggregate),
                bound,
                at_most_one: groups == 0,
            });
        }
        let schema = aggregate.schema.clone();
        let (domain, domain_columns) = self.domain.instance(self.names)?;
        let joined = join_bindings(
            domain,
            LogicalPlan::Aggregate(aggregate),
            JoinType::Left,
            &columns(&domain_columns),
            &bound,
            None,
        )?;
        let mut exprs = columns(&domain_columns);
        for (i, e) in a.aggr_expr.iter().enumerate() {
            let (qualifier, field) = schema.qualified_field(bound.len() + i);
            let value = Expr::Column(Column::new(qualifier.cloned(), field.name()));
            let empty = value_over_no_rows(e, field.data_type())?;
            let value = if empty.is_null() {
                value
            } else {
                coalesce(vec![value, lit(empty)])
            };
            let (qualifier, field) = a.schema.qualified_field(i);
            exprs.push(value.alias_qualified(qualifier.cloned(), field.name()));
        }
        let projection = Projection::try_new(exprs, Arc::new(joined))?;
        Ok(Pushed {
            plan: LogicalPlan::Projection(projection),
            bound: domain_columns,
            at_most_one: true,
        })
    }

    /// `LIMIT`/`OFFSET` per binding.
    fn limit(&mut self, l: &Limit) -> Result<Pushed> {
        let SkipType::Literal(skip) = l.get_skip_type()? else {
            return not_impl_err!("correlated subquery with a computed OFFSET");
        };
        let FetchType::Literal(fetch) = l.get_fetch_type()? else {
            return not_impl_err!("correlated subquery with a computed LIMIT");
        };
        match l.input.as_ref() {
            LogicalPlan::Sort(s) if s.fetch.is_none() => {
                self.first_rows(&s.input, s.expr.clone(), skip, fetch)
            }
            // `SELECT e ... ORDER BY o LIMIT n` is planned as a limit over the projection over
            // the sort: the limit moves under the projection (which maps rows one to one) to
            // number the rows in the sort's order.
            LogicalPlan::Projection(p) if matches!(p.input.as_ref(), LogicalPlan::Sort(_)) => {
                let limit = LogicalPlan::Limit(Limit {
                    skip: l.skip.clone(),
                    fetch: l.fetch.clone(),
                    input: p.input.clone(),
                });
                let projection = Projection::try_new_with_schema(
                    p.expr.clone(),
                    Arc::new(limit),
                    p.schema.clone(),
                )?;
                self.push(&LogicalPlan::Projection(projection))
            }
            other => self.first_rows(other, Vec::new(), skip, fetch),
        }
    }

    /// The rows `skip + 1 ..= skip + fetch` of every binding in `order`, by a row number
    /// partitioned by the bindings.
    fn first_rows(
        &mut self,
        input: &LogicalPlan,
        order: Vec<SortExpr>,
        skip: usize,
        fetch: Option<usize>,
    ) -> Result<Pushed> {
        let input = self.push(input)?;
        let mut sort = Vec::with_capacity(order.len());
        for s in order {
            sort.push(SortExpr {
                expr: self.bind(s.expr, &input)?,
                ..s
            });
        }
        let name = self.names.fresh("rn");
        let number = row_number()
            .partition_by(columns(&input.bound))
            .order_by(sort)
            .window_frame(WindowFrame::new_bounds(
                WindowFrameUnits::Rows,
                WindowFrameBound::Preceding(ScalarValue::UInt64(None)),
                WindowFrameBound::CurrentRow,
            ))
            .build()?
            .alias(&name);
        let kept = all_columns(&input.plan);
        let window = Window::try_new(vec![number], Arc::new(input.plan))?;
        let rn = Expr::Column(Column::from_name(name));
        let mut keep = rn.clone().gt(lit(skip as u64));
        if let Some(fetch) = fetch {
            keep = keep.and(rn.lt_eq(lit((skip + fetch) as u64)));
        }
        let filter = Filter::try_new(keep, Arc::new(LogicalPlan::Window(window)))?;
        let projection = Projection::try_new(kept, Arc::new(LogicalPlan::Filter(filter)))?;
        Ok(Pushed {
            plan: LogicalPlan::Projection(projection),
            bound: input.bound,
            at_most_one: input.at_most_one || fetch.is_some_and(|f| f <= 1),
        })
    }

    /// A join: the domain goes to the side that reads the bindings, or to both (joined on
    /// equal bindings) when both do or when the side that reads them is not the preserved one.
    fn join(&mut self, j: &Join) -> Result<Pushed> {
        let index = &self.domain.index;
        let left_reads = reads_any(&j.left, index)?;
        let right_reads = reads_any(&j.right, index)?;
        let (to_left, to_right) = match j.join_type {
            JoinType::Inner if !right_reads => (true, false),
            JoinType::Inner if !left_reads => (false, true),
            JoinType::Inner => (true, true),
            JoinType::Left | JoinType::LeftSemi | JoinType::LeftAnti | JoinType::LeftMark => {
                (true, right_reads)
            }
            JoinType::Right | JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark => {
                (left_reads, true)
            }
            JoinType::Full => return not_impl_err!("correlated subquery with a FULL JOIN"),
        };
        let left = self.side(&j.left, to_left)?;
        let right = self.side(&j.right, to_right)?;
        // The join condition reads the bindings from the side they were pushed into.
        let reader = if to_left { &left } else { &right };
        let mut on = Vec::with_capacity(j.on.len());
        for (l, r) in &j.on {
            on.push((self.bind(l.clone(), reader)?, self.bind(r.clone(), reader)?));
        }
        let filter = match &j.filter {
            Some(f) => Some(self.bind(f.clone(), reader)?),
            None => None,
        };
        if to_left && to_right {
            on.extend(binding_pairs(
                left.plan.schema(),
                &columns(&left.bound),
                right.plan.schema(),
                &right.bound,
            )?);
        }
        let bound = match j.join_type {
            JoinType::Right | JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark => {
                right.bound.clone()
            }
            _ if to_left => left.bound.clone(),
            _ => right.bound.clone(),
        };
        let join = Join::try_new(
            Arc::new(left.plan),
            Arc::new(right.plan),
            on,
            filter,
            j.join_type,
            j.join_constraint,
            j.null_equality,
            j.null_aware,
        )?;
        Ok(Pushed {
            plan: LogicalPlan::Join(join),
            bound,
            at_most_one: false,
        })
    }

    /// One side of a join, with the domain pushed into it or unchanged.
    fn side(&mut self, plan: &LogicalPlan, push: bool) -> Result<Pushed> {
        if push {
            return self.push(plan);
        }
        Ok(Pushed {
            plan: plan.clone(),
            bound: Vec::new(),
            at_most_one: false,
        })
    }
}

impl Pushed {
    /// An operator over this plan that passes its bindings and row count through.
    fn then(self, op: impl FnOnce(Arc<LogicalPlan>) -> Result<LogicalPlan>) -> Result<Pushed> {
        Ok(Pushed {
            plan: op(Arc::new(self.plan))?,
            bound: self.bound,
            at_most_one: self.at_most_one,
        })
    }
}

/// Columns as expressions.
pub(super) fn columns(columns: &[Column]) -> Vec<Expr> {
    columns.iter().cloned().map(Expr::Column).collect()
}

/// `expr` named as field `i` of `schema` (the name the operators above refer to it by).
pub(super) fn keep_name(expr: Expr, schema: &DFSchema, i: usize) -> Expr {
    let (qualifier, field) = schema.qualified_field(i);
    let (q, name) = expr.qualified_name();
    if q.as_ref() == qualifier && &name == field.name() {
        return expr;
    }
    expr.unalias()
        .alias_qualified(qualifier.cloned(), field.name())
}

/// A window function also partitioned by the bindings.
fn partition_by_bindings(expr: Expr, bound: &[Column]) -> Result<Expr> {
    expr.transform_up(|e| match e {
        Expr::WindowFunction(mut w) => {
            w.params.partition_by.extend(columns(bound));
            Ok(Transformed::yes(Expr::WindowFunction(w)))
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

/// What an aggregate expression gives over no rows (`count` 0; NULL for the others).
fn value_over_no_rows(expr: &Expr, data_type: &DataType) -> Result<ScalarValue> {
    let mut e = expr;
    while let Expr::Alias(a) = e {
        e = &a.expr;
    }
    match e {
        Expr::AggregateFunction(f) => f.func.default_value(data_type),
        _ => ScalarValue::try_from(data_type),
    }
}
