//! Scalar subqueries of catalog queries, reshaped so DataFusion can decorrelate them.
//!
//! DataFusion plans a correlated scalar subquery only when it is an aggregate whose
//! correlated predicates are equalities between an outer and an inner column. psql and
//! SQLAlchemy write `(SELECT d.adbin FROM pg_attrdef d WHERE d.adrelid = a.attrelid AND
//! a.atthasdef)`: not an aggregate, and with a predicate on the outer row alone. So:
//! * the select item `e` becomes `first_value(e)` (PostgreSQL would fail on a second row;
//!   catalog subqueries have at most one);
//! * a conjunct that reads only outer columns moves out: `CASE WHEN a.atthasdef THEN
//!   (SELECT ...) END`;
//! * an outer column equal to an inner one (`c.oid = a.attcollation`) is replaced by the inner
//!   one in the other conjuncts (`a.attcollation <> t.typcollation` → `c.oid <> ...`).

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, GroupByExpr, OrderByKind, Query, Select, SelectItem, SetExpr,
    TableFactor, Visit, VisitMut, Visitor, VisitorMut,
};

use super::names::{idents, parse_expr};

/// `ARRAY(SELECT e FROM ... ORDER BY o)` → `(SELECT array_agg(e ORDER BY o) FROM ...)`.
pub(super) fn array_subquery(query: &Query) -> Option<Expr> {
    if let Some(prefixed) = prefixed_elements(query) {
        return Some(prefixed);
    }
    let mut query = query.clone();
    let guard = move_outer_conjuncts(&mut query);
    aggregate_single_item(&mut query, "array_agg")?;
    Some(guarded(guard, query))
}

/// `ARRAY(SELECT 'p' || x FROM unnest(a) x)` (psql's `\d+` prefixes TOAST options so):
/// DataFusion cannot unnest an outer column in `FROM`, so the prefix is added to every
/// element through `array_to_string` / `string_to_array` with a separator no option holds.
fn prefixed_elements(query: &Query) -> Option<Expr> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let [from] = select.from.as_slice() else {
        return None;
    };
    let TableFactor::Table {
        name,
        args: Some(args),
        alias: Some(alias),
        ..
    } = &from.relation
    else {
        return None;
    };
    let unnest = idents(name)?.last()?.eq_ignore_ascii_case("unnest");
    let [SelectItem::UnnamedExpr(Expr::BinaryOp {
        left,
        op: BinaryOperator::StringConcat,
        right,
    })] = select.projection.as_slice()
    else {
        return None;
    };
    let x = matches!(right.as_ref(), Expr::Identifier(i) if i.value == alias.name.value);
    if !unnest || !x || args.args.len() != 1 || select.selection.is_some() || !from.joins.is_empty()
    {
        return None;
    }
    let array = &args.args[0];
    parse_expr(&format!(
        "CASE WHEN cardinality({array}) > 0 THEN string_to_array({left} || \
         array_to_string({array}, chr(1) || {left}), chr(1)) END"
    ))
}

/// A correlated, non-aggregate scalar subquery → one that takes its first row.
pub(super) fn first_row(query: &Query) -> Option<Expr> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
    if grouped || query.limit_clause.is_some() || has_aggregate(select) {
        return None;
    }
    let mut query = query.clone();
    let guard = move_outer_conjuncts(&mut query);
    aggregate_single_item(&mut query, "first_value")?;
    Some(guarded(guard, query))
}

/// `(query)`, or `CASE WHEN guard THEN (query) END`.
fn guarded(guard: Option<Expr>, query: Query) -> Expr {
    let subquery = Expr::Subquery(Box::new(query));
    match guard {
        Some(g) => parse_expr(&format!("CASE WHEN {g} THEN {subquery} END")).unwrap_or(subquery),
        None => subquery,
    }
}

/// The names a query's `FROM` binds (aliases, or table names), lower-cased.
fn bound_names(select: &Select) -> HashSet<String> {
    let mut names = HashSet::new();
    let factors = select
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)));
    for factor in factors {
        match factor {
            TableFactor::Table { name, alias, .. } => match alias {
                Some(a) => {
                    names.insert(a.name.value.to_ascii_lowercase());
                }
                None => {
                    if let Some(last) = idents(name).and_then(|p| p.last().cloned()) {
                        names.insert(last.to_ascii_lowercase());
                    }
                }
            },
            TableFactor::Derived { alias: Some(a), .. } => {
                names.insert(a.name.value.to_ascii_lowercase());
            }
            _ => {}
        }
    }
    names
}

/// Whether an expression reads outer columns (qualified by a name the subquery does not
/// bind) and inner ones (anything else).
fn references(expr: &Expr, bound: &HashSet<String>) -> (bool, bool) {
    struct Refs<'a> {
        bound: &'a HashSet<String>,
        outer: bool,
        inner: bool,
    }
    impl Visitor for Refs<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            match expr {
                Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                    let qualifier = parts[parts.len() - 2].value.to_ascii_lowercase();
                    if self.bound.contains(&qualifier) {
                        self.inner = true;
                    } else {
                        self.outer = true;
                    }
                }
                Expr::Identifier(_) => self.inner = true,
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let mut refs = Refs {
        bound,
        outer: false,
        inner: false,
    };
    let _ = expr.visit(&mut refs);
    (refs.outer, refs.inner)
}

/// The conjuncts of an `AND` chain.
fn conjuncts(expr: Expr, out: &mut Vec<Expr>) {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(*left, out);
            conjuncts(*right, out);
        }
        Expr::Nested(inner)
            if matches!(
                *inner,
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            conjuncts(*inner, out)
        }
        other => out.push(other),
    }
}

/// Replaces outer columns by inner expressions they are equal to.
struct Substitute<'a>(&'a HashMap<String, Expr>);

impl VisitorMut for Substitute<'_> {
    type Break = ();
    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::CompoundIdentifier(_) = expr {
            if let Some(inner) = self.0.get(&expr.to_string().to_ascii_lowercase()) {
                *expr = inner.clone();
            }
        }
        ControlFlow::Continue(())
    }
}

/// Takes the conjuncts that read only outer columns out of a subquery's `WHERE` (returned,
/// joined with `AND`), after replacing outer columns equal to inner ones in the others.
fn move_outer_conjuncts(query: &mut Query) -> Option<Expr> {
    let SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    let bound = bound_names(select);
    let mut parts = Vec::new();
    conjuncts(select.selection.take()?, &mut parts);
    let mut equal = HashMap::new();
    for p in &parts {
        if let Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } = p
        {
            for (outer, inner) in [(left, right), (right, left)] {
                let outer_only = references(outer, &bound) == (true, false);
                let inner_only = references(inner, &bound) == (false, true);
                if matches!(**outer, Expr::CompoundIdentifier(_)) && outer_only && inner_only {
                    equal.insert(outer.to_string().to_ascii_lowercase(), (**inner).clone());
                }
            }
        }
    }
    let mut guards = Vec::new();
    let mut kept = Vec::new();
    for mut p in parts {
        match references(&p, &bound) {
            (true, false) => guards.push(p),
            (true, true) if !is_correlation(&p, &bound) => {
                let _ = VisitMut::visit(&mut p, &mut Substitute(&equal));
                kept.push(p);
            }
            _ => kept.push(p),
        }
    }
    select.selection = join_and(kept);
    join_and(guards)
}

/// Whether a conjunct is `outer = inner`, the shape DataFusion pulls up.
fn is_correlation(expr: &Expr, bound: &HashSet<String>) -> bool {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => {
            let (l, r) = (references(left, bound), references(right, bound));
            (l == (true, false) && r == (false, true)) || (l == (false, true) && r == (true, false))
        }
        _ => false,
    }
}

/// `a AND b AND ...` (`None` for no conjuncts).
fn join_and(parts: Vec<Expr>) -> Option<Expr> {
    parts.into_iter().reduce(|a, b| Expr::BinaryOp {
        left: Box::new(a),
        op: BinaryOperator::And,
        right: Box::new(b),
    })
}
/// Replaces the one select item `e` of a query with `agg(e ORDER BY <the query's order>)`.
fn aggregate_single_item(query: &mut Query, aggregate: &str) -> Option<()> {
    let order = match query.order_by.take().map(|o| o.kind) {
        Some(OrderByKind::Expressions(exprs)) => exprs,
        None => Vec::new(),
        Some(OrderByKind::All(_)) => return None,
    };
    let SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    let [item] = select.projection.as_mut_slice() else {
        return None;
    };
    let (expr, alias) = match item {
        SelectItem::UnnamedExpr(e) => (e.clone(), None),
        SelectItem::ExprWithAlias { expr, alias } => (expr.clone(), Some(alias.clone())),
        _ => return None,
    };
    let order: Vec<String> = order
        .into_iter()
        .map(|mut o| {
            // `ORDER BY 1` names the select item.
            if matches!(&o.expr, Expr::Value(v) if v.value.to_string() == "1") {
                o.expr = expr.clone();
            }
            o.to_string()
        })
        .collect();
    let order = if order.is_empty() {
        String::new()
    } else {
        format!(" ORDER BY {}", order.join(", "))
    };
    let new = parse_expr(&format!("{aggregate}({expr}{order})"))?;
    *item = match alias {
        Some(alias) => SelectItem::ExprWithAlias { expr: new, alias },
        None => SelectItem::UnnamedExpr(new),
    };
    Some(())
}

/// Aggregate functions a catalog query's scalar subquery may use.
const AGGREGATES: [&str; 12] = [
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "json_agg",
    "first_value",
];

/// Whether a select list calls an aggregate (outside its own subqueries).
pub(super) fn has_aggregate(select: &Select) -> bool {
    struct Finder {
        found: bool,
        depth: usize,
    }
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if let Expr::Function(f) = expr {
                let name = f.name.to_string().to_ascii_lowercase();
                let name = name.rsplit('.').next().unwrap_or_default();
                if self.depth == 0 && AGGREGATES.contains(&name) && f.over.is_none() {
                    self.found = true;
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut finder = Finder {
        found: false,
        depth: 0,
    };
    for item in &select.projection {
        let _ = item.visit(&mut finder);
    }
    finder.found
}
