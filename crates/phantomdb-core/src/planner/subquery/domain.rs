//! The domain of a correlated subquery: the distinct values of the outer columns it reads
//! (`SELECT DISTINCT <outer columns> FROM <outer input>`), which the subquery is computed
//! for, and the null-safe join between those bindings and the outer rows.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::common::{
    Column, DFSchema, ExprSchema, NullEquality, Result, ScalarValue, TableReference,
};
use datafusion::functions::expr_fn::coalesce;
use datafusion::logical_expr::{
    lit, Distinct, EmptyRelation, Expr, ExprSchemable, Join, JoinConstraint, JoinType, LogicalPlan,
    Projection, SubqueryAlias,
};

/// Fresh names for the relations and columns a rewrite adds; `__phantomdb_` is a prefix no
/// unquoted SQL name has.
#[derive(Debug, Default)]
pub(super) struct Names {
    next: usize,
}

impl Names {
    /// A name not used before in this plan, e.g. `__phantomdb_d3`.
    pub(super) fn fresh(&mut self, kind: &str) -> String {
        self.next += 1;
        format!("__phantomdb_{kind}{}", self.next)
    }
}

/// The distinct bindings of the outer columns a subquery reads.
pub(super) struct Domain {
    /// `SELECT DISTINCT c0 AS b0, c1 AS b1, ... FROM outer` (one empty row without columns).
    plan: Arc<LogicalPlan>,
    /// The outer columns, by binding position.
    pub(super) index: HashMap<Column, usize>,
    width: usize,
}

impl Domain {
    /// The domain of `columns` (columns of `outer`'s output).
    pub(super) fn new(outer: &Arc<LogicalPlan>, columns: &[Column]) -> Result<Self> {
        let plan = if columns.is_empty() {
            LogicalPlan::EmptyRelation(EmptyRelation {
                produce_one_row: true,
                schema: Arc::new(DFSchema::empty()),
            })
        } else {
            let exprs = columns
                .iter()
                .enumerate()
                .map(|(i, c)| Expr::Column(c.clone()).alias(binding_name(i)))
                .collect();
            let projection = Projection::try_new(exprs, outer.clone())?;
            LogicalPlan::Distinct(Distinct::All(Arc::new(LogicalPlan::Projection(projection))))
        };
        let index = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i))
            .collect();
        Ok(Self {
            plan: Arc::new(plan),
            index,
            width: columns.len(),
        })
    }

    /// How many outer columns the subquery reads.
    pub(super) fn width(&self) -> usize {
        self.width
    }

    /// One use of the domain in the plan, under a fresh alias, with its binding columns.
    pub(super) fn instance(&self, names: &mut Names) -> Result<(LogicalPlan, Vec<Column>)> {
        let alias = TableReference::bare(names.fresh("d"));
        let plan = SubqueryAlias::try_new(self.plan.clone(), alias.clone())?;
        let columns = (0..self.width)
            .map(|i| Column::new(Some(alias.clone()), binding_name(i)))
            .collect();
        Ok((LogicalPlan::SubqueryAlias(plan), columns))
    }
}

fn binding_name(i: usize) -> String {
    format!("__phantomdb_b{i}")
}

/// `left JOIN right` where `left_keys[i]` and `right_keys[i]` are equal or both NULL.
pub(super) fn join_bindings(
    left: LogicalPlan,
    right: LogicalPlan,
    join_type: JoinType,
    left_keys: &[Expr],
    right_keys: &[Column],
    filter: Option<Expr>,
) -> Result<LogicalPlan> {
    let on = binding_pairs(left.schema(), left_keys, right.schema(), right_keys)?;
    let join = Join::try_new(
        Arc::new(left),
        Arc::new(right),
        on,
        filter,
        join_type,
        JoinConstraint::On,
        NullEquality::NullEqualsNothing,
        false,
    )?;
    Ok(LogicalPlan::Join(join))
}

/// Join keys under which `left_keys[i]` and `right_keys[i]` match when equal or both NULL.
///
/// A nullable key is compared as the pair `(k IS NULL, coalesce(k, v))` with plain equality
/// rather than with DataFusion's null-equal joins: the optimizer later moves equalities from
/// filters into a join's keys, and under a null-equal join those would match NULL with NULL.
pub(super) fn binding_pairs(
    left: &DFSchema,
    left_keys: &[Expr],
    right: &DFSchema,
    right_keys: &[Column],
) -> Result<Vec<(Expr, Expr)>> {
    let mut on = Vec::with_capacity(left_keys.len() * 2);
    for (l, r) in left_keys.iter().zip(right_keys) {
        let (_, l_field) = l.to_field(left)?;
        let (l_type, l_nullable) = (l_field.data_type().clone(), l_field.is_nullable());
        let r_nullable = right.field_from_column(r)?.is_nullable();
        let r = Expr::Column(r.clone());
        if !l_nullable && !r_nullable {
            on.push((l.clone(), r));
            continue;
        }
        let some = lit(ScalarValue::new_default(&l_type)?);
        on.push((l.clone().is_null(), r.clone().is_null()));
        on.push((
            coalesce(vec![l.clone(), some.clone()]),
            coalesce(vec![r, some]),
        ));
    }
    Ok(on)
}

/// The columns of `plan`'s output, as expressions.
pub(super) fn all_columns(plan: &LogicalPlan) -> Vec<Expr> {
    plan.schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect()
}

/// `plan` under a fresh alias (so its columns cannot clash with the outer query's).
pub(super) fn aliased(
    plan: LogicalPlan,
    names: &mut Names,
) -> Result<(LogicalPlan, TableReference)> {
    let alias = TableReference::bare(names.fresh("r"));
    let plan = SubqueryAlias::try_new(Arc::new(plan), alias.clone())?;
    Ok((LogicalPlan::SubqueryAlias(plan), alias))
}

/// A column of a relation aliased `alias`.
pub(super) fn column_of(alias: &TableReference, name: &str) -> Expr {
    Expr::Column(Column::new(Some(alias.clone()), name))
}
