//! `SELECT`s of catalog queries over relations PhantomDB always leaves empty: they have no
//! rows, so their expressions (often PostgreSQL-only: lateral `generate_series`, array
//! comparisons with `'{0}'`) are never evaluated and need not plan.

use datafusion::sql::sqlparser::ast::{
    Expr, GroupByExpr, Ident, JoinOperator, Select, SelectItem, SetExpr, TableFactor, Value,
};

use super::names::{catalog_relation, idents};
use super::subquery::has_aggregate;
use super::tables::always_empty;

/// Prunes every `SELECT` leaf of a set operation (`UNION`).
pub(super) fn prune_set(body: &mut SetExpr) -> bool {
    match body {
        SetExpr::Select(select) => prune_select(select),
        SetExpr::SetOperation { left, right, .. } => {
            let l = prune_set(left);
            let r = prune_set(right);
            l || r
        }
        _ => false,
    }
}

/// Whether a table factor is a relation PhantomDB leaves empty.
fn empty_factor(factor: &TableFactor) -> bool {
    match factor {
        TableFactor::Table {
            name, args: None, ..
        } => catalog_relation(name).is_some_and(always_empty),
        _ => false,
    }
}

/// A `SELECT` that inner-joins an always-empty relation has no rows: its select list
/// becomes `NULL AS name` (its expressions are never evaluated) and its `WHERE` `false`.
pub(super) fn prune_select(select: &mut Select) -> bool {
    let empty = select.from.iter().any(|t| {
        empty_factor(&t.relation)
            || t.joins.iter().any(|j| {
                matches!(
                    j.join_operator,
                    JoinOperator::Join(_) | JoinOperator::Inner(_) | JoinOperator::CrossJoin(_)
                ) && empty_factor(&j.relation)
            })
    });
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
    if !empty || (!grouped && has_aggregate(select)) || select.selection == Some(false_expr()) {
        return false;
    }
    let mut items = Vec::with_capacity(select.projection.len());
    let mut taken = std::collections::HashSet::new();
    for (i, item) in select.projection.iter().enumerate() {
        let mut name = match item {
            SelectItem::ExprWithAlias { alias, .. } => alias.clone(),
            SelectItem::UnnamedExpr(e) => {
                Ident::new(item_name(e).unwrap_or(format!("column{}", i + 1)))
            }
            _ => return false,
        };
        if !taken.insert(name.value.clone()) {
            name = Ident::new(format!("{}_{}", name.value, i + 1));
        }
        items.push(SelectItem::ExprWithAlias {
            expr: Expr::value(Value::Null),
            alias: name,
        });
    }
    select.projection = items;
    select.selection = Some(false_expr());
    select.group_by = GroupByExpr::Expressions(Vec::new(), Vec::new());
    select.having = None;
    true
}

fn false_expr() -> Expr {
    Expr::value(Value::Boolean(false))
}

/// The name PostgreSQL gives an unaliased select item.
fn item_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(i) => Some(i.value.clone()),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.clone()),
        Expr::Function(f) => idents(&f.name)?.last().cloned(),
        Expr::Cast { expr, .. } | Expr::Nested(expr) => item_name(expr),
        _ => None,
    }
}
