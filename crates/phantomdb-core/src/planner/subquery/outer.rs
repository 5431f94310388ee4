//! Outer references: which columns of the enclosing query a subquery reads, and replacing
//! them by the columns of the bindings the subquery is joined with.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, ExprSchema, Result};
use datafusion::logical_expr::{Expr, LogicalPlan, Subquery};

/// The columns of `outer` that `subquery` reads (at any nesting depth), in order of first
/// use, without repeats.
pub(super) fn outer_columns(subquery: &LogicalPlan, outer: &DFSchema) -> Result<Vec<Column>> {
    let mut found: Vec<Column> = Vec::new();
    subquery.apply_with_subqueries(|plan| {
        plan.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Expr::OuterReferenceColumn(_, c) = e {
                    if outer.has_column(c) && !found.contains(c) {
                        found.push(c.clone());
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    Ok(found)
}

/// Whether `plan` (its expressions, at any depth, and its nested subqueries) reads one of
/// `columns` as an outer reference.
pub(super) fn reads_any(plan: &LogicalPlan, columns: &HashMap<Column, usize>) -> Result<bool> {
    let mut hit = false;
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if matches!(e, Expr::OuterReferenceColumn(_, c) if columns.contains_key(c)) {
                    hit = true;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    Ok(hit)
}

/// Replaces, in an expression of a node whose input carries the bindings as `bound`, every
/// outer reference to `columns[i]` by `bound[i]`: a plain column at this level, still an
/// outer reference inside the expression's subqueries (which now read the node's input).
pub(super) fn bind_expr(
    expr: Expr,
    columns: &HashMap<Column, usize>,
    bound: &[Column],
    input: &DFSchema,
) -> Result<Expr> {
    expr.transform_up(|e| match e {
        Expr::OuterReferenceColumn(_, ref c) => match columns.get(c) {
            Some(&i) => Ok(Transformed::yes(Expr::Column(bound[i].clone()))),
            None => Ok(Transformed::no(e)),
        },
        Expr::ScalarSubquery(s) => {
            let s = bind_subquery(s, columns, bound, input)?;
            Ok(Transformed::yes(Expr::ScalarSubquery(s)))
        }
        Expr::Exists(mut x) => {
            x.subquery = bind_subquery(x.subquery, columns, bound, input)?;
            Ok(Transformed::yes(Expr::Exists(x)))
        }
        Expr::InSubquery(mut x) => {
            x.subquery = bind_subquery(x.subquery, columns, bound, input)?;
            Ok(Transformed::yes(Expr::InSubquery(x)))
        }
        Expr::SetComparison(mut x) => {
            x.subquery = bind_subquery(x.subquery, columns, bound, input)?;
            Ok(Transformed::yes(Expr::SetComparison(x)))
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

/// A nested subquery whose outer references to `columns` now point at `bound` (columns of
/// the input of the node it sits in).
fn bind_subquery(
    subquery: Subquery,
    columns: &HashMap<Column, usize>,
    bound: &[Column],
    input: &DFSchema,
) -> Result<Subquery> {
    let mut fields = Vec::with_capacity(bound.len());
    for c in bound {
        fields.push(input.field_from_column(c)?.clone());
    }
    let plan = Arc::unwrap_or_clone(subquery.subquery).transform_up_with_subqueries(|node| {
        node.map_expressions(|expr| {
            expr.transform_up(|e| match e {
                Expr::OuterReferenceColumn(_, ref c) => match columns.get(c) {
                    Some(&i) => Ok(Transformed::yes(Expr::OuterReferenceColumn(
                        fields[i].clone(),
                        bound[i].clone(),
                    ))),
                    None => Ok(Transformed::no(e)),
                },
                other => Ok(Transformed::no(other)),
            })
        })
    })?;
    let plan = plan.data;
    let outer_ref_columns = outer_references(&plan)?;
    Ok(Subquery {
        subquery: Arc::new(plan),
        outer_ref_columns,
        spans: subquery.spans,
    })
}

/// Every outer reference in `plan` (at any depth), without repeats: a subquery's
/// `outer_ref_columns`.
fn outer_references(plan: &LogicalPlan) -> Result<Vec<Expr>> {
    let mut found: Vec<Expr> = Vec::new();
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if matches!(e, Expr::OuterReferenceColumn(..)) && !found.contains(e) {
                    found.push(e.clone());
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    Ok(found)
}
