//! One join region reordered: its join graph built from the leaves' statistics and the
//! conditions, the cheapest tree searched, and the region rebuilt as explicit inner joins
//! in that order, with the remaining conditions in a filter above (the host's optimizer
//! pushes them down) and a projection giving back the region's column order.

use phantomdb_plugin_sdk::plan::{Expr, JoinKind, PlanNode};

use crate::enumerate::{best_tree, JoinTree};
use crate::estimate::Estimator;
use crate::graph::{ColumnRef, ColumnStats, Edge, JoinGraph, RelSet, Relation};
use crate::region::{column_of, has_subquery, leaves_read, schema, Region, Shape};
use crate::selectivity::{own_filters, scan_statistics, Selectivity};

/// A reordered region: the join order chosen, with the estimates behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The order as written, e.g. `((nation ⋈ region) ⋈ supplier)`.
    pub before: String,
    /// The order chosen, with each node's estimated rows in brackets.
    pub after: String,
    /// Estimated cost (sum of the joins' estimated rows) of each order.
    pub cost_before: f64,
    pub cost_after: f64,
}

/// A rewrite is kept only when it is estimated at most this fraction of the written order's
/// cost (small estimated gains are within the estimates' error).
const KEEP_BELOW: f64 = 0.9;

/// The region in a cheaper join order, or `None` when the order as written is as good, the
/// statistics are too thin to tell, or the region cannot be rebuilt safely.
pub fn reorder(region: &Region, exhaustive_limit: usize) -> Option<(PlanNode, Decision)> {
    if region.leaves.len() < 3 {
        return None;
    }
    let with_statistics = region
        .leaves
        .iter()
        .filter(|l| scan_statistics(l).and_then(|s| s.row_count).is_some())
        .count();
    if with_statistics < 2 {
        return None;
    }
    // The projection back names each column: every (relation, name) must be unique.
    let fields = region.fields();
    for (i, f) in fields.iter().enumerate() {
        if f.relation.is_none()
            || fields[..i]
                .iter()
                .any(|g| g.relation == f.relation && g.name == f.name)
        {
            return None;
        }
    }
    let (graph, keys, rest) = build_graph(region);
    let estimator = Estimator::new(&graph);
    let before = cost_of(&region.shape, &estimator);
    let tree = best_tree(&graph, exhaustive_limit)?;
    if tree.cost() >= before * KEEP_BELOW {
        return None;
    }
    let decision = Decision {
        before: describe_shape(&region.shape, &graph),
        after: describe_tree(&tree, &graph),
        cost_before: before,
        cost_after: tree.cost(),
    };
    let mut leaves: Vec<Option<PlanNode>> = region.leaves.iter().cloned().map(Some).collect();
    let mut joined = rebuild(&tree, &mut leaves, &keys)?;
    if let Some(predicate) = rest.into_iter().reduce(Expr::and) {
        joined = PlanNode::Filter {
            predicate,
            input: Box::new(joined),
            schema: Vec::new(),
        };
    }
    let exprs = fields
        .iter()
        .map(|f| Expr::Column {
            relation: f.relation.clone(),
            name: f.name.clone(),
        })
        .collect();
    let node = PlanNode::Projection {
        exprs,
        input: Box::new(joined),
        schema: Vec::new(),
    };
    Some((node, decision))
}

/// An equality between columns of two leaves: `(leaf, expression)` for each side.
type Key = ((usize, Expr), (usize, Expr));

/// The region's graph, its join keys, and the conditions that are not join keys.
fn build_graph(region: &Region) -> (JoinGraph, Vec<Key>, Vec<Expr>) {
    let mut own: Vec<Vec<&Expr>> = region.leaves.iter().map(own_filters).collect();
    let mut edges = Vec::new();
    let mut keys = Vec::new();
    let mut rest = Vec::new();
    for conjunct in &region.conjuncts {
        if let Some(key) = join_key(region, conjunct) {
            let ((a, ca), (b, cb)) = key;
            edges.push(Edge {
                left: ColumnRef {
                    relation: a,
                    column: ca,
                },
                right: ColumnRef {
                    relation: b,
                    column: cb,
                },
            });
            if let Expr::Binary { left, right, .. } = conjunct {
                keys.push(((a, left.as_ref().clone()), (b, right.as_ref().clone())));
            }
            continue;
        }
        if !has_subquery(conjunct) {
            if let Some([leaf]) = leaves_read(region, conjunct).as_deref() {
                own[*leaf].push(conjunct);
            }
        }
        rest.push(conjunct.clone());
    }
    let relations = region
        .leaves
        .iter()
        .zip(&own)
        .map(|(leaf, filters)| {
            let stats = scan_statistics(leaf);
            let selectivity = Selectivity { stats };
            Relation {
                name: leaf_name(leaf),
                rows: stats.and_then(|s| s.row_count).map(|r| r as f64),
                selectivity: filters.iter().map(|f| selectivity.of(f)).product(),
                columns: schema(leaf)
                    .iter()
                    .map(|f| {
                        let c = stats.and_then(|s| s.columns.iter().find(|c| c.name == f.name));
                        ColumnStats {
                            distinct: c.and_then(|c| c.distinct_count).map(|d| d as f64),
                            nulls: c.and_then(|c| c.null_count).map(|n| n as f64),
                            min: None,
                            max: None,
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    (JoinGraph { relations, edges }, keys, rest)
}

/// `a = b` between columns of two different leaves: each side's leaf and column position.
fn join_key(region: &Region, conjunct: &Expr) -> Option<((usize, usize), (usize, usize))> {
    let Expr::Binary { op, left, right } = conjunct else {
        return None;
    };
    if op != "=" {
        return None;
    }
    let (lr, ln) = column_of(left)?;
    let (rr, rn) = column_of(right)?;
    let a = region.resolve(lr, ln)?;
    let b = region.resolve(rr, rn)?;
    (a.0 != b.0).then_some((a, b))
}

fn cost_of(shape: &Shape, estimator: &Estimator) -> f64 {
    fn walk(shape: &Shape, estimator: &Estimator, cost: &mut f64) -> RelSet {
        match shape {
            Shape::Leaf(i) => 1 << i,
            Shape::Join(l, r) => {
                let set = walk(l, estimator, cost) | walk(r, estimator, cost);
                *cost += estimator.rows(set);
                set
            }
        }
    }
    let mut cost = 0.0;
    walk(shape, estimator, &mut cost);
    cost
}

fn rebuild(tree: &JoinTree, leaves: &mut [Option<PlanNode>], keys: &[Key]) -> Option<PlanNode> {
    match tree {
        JoinTree::Relation { relation, .. } => leaves.get_mut(*relation)?.take(),
        JoinTree::Join { left, right, .. } => {
            let (ls, rs) = (left.relations(), right.relations());
            let inside = |set: RelSet, leaf: usize| set & (1 << leaf) != 0;
            let on = keys
                .iter()
                .filter_map(|((a, ea), (b, eb))| {
                    if inside(ls, *a) && inside(rs, *b) {
                        Some((ea.clone(), eb.clone()))
                    } else if inside(ls, *b) && inside(rs, *a) {
                        Some((eb.clone(), ea.clone()))
                    } else {
                        None
                    }
                })
                .collect();
            Some(PlanNode::Join {
                kind: JoinKind::Inner,
                on,
                filter: None,
                null_equals_null: false,
                left: Box::new(rebuild(left, leaves, keys)?),
                right: Box::new(rebuild(right, leaves, keys)?),
                schema: Vec::new(),
            })
        }
    }
}

/// How a leaf is named in explanations.
fn leaf_name(node: &PlanNode) -> String {
    match node {
        PlanNode::Scan { table, .. } => table.clone(),
        PlanNode::SubqueryAlias { alias, .. } => alias.clone(),
        PlanNode::Filter { input, .. } => leaf_name(input),
        PlanNode::Opaque { kind, .. } => kind.to_lowercase(),
        _ => "subquery".to_string(),
    }
}

fn describe_shape(shape: &Shape, graph: &JoinGraph) -> String {
    match shape {
        Shape::Leaf(i) => graph.relations[*i].name.clone(),
        Shape::Join(l, r) => format!(
            "({} ⋈ {})",
            describe_shape(l, graph),
            describe_shape(r, graph)
        ),
    }
}

fn describe_tree(tree: &JoinTree, graph: &JoinGraph) -> String {
    match tree {
        JoinTree::Relation { relation, rows } => {
            format!("{}[{}]", graph.relations[*relation].name, rows.round())
        }
        JoinTree::Join {
            left,
            right,
            rows,
            cross,
        } => format!(
            "({} {} {})[{}]",
            describe_tree(left, graph),
            if *cross { "×" } else { "⋈" },
            describe_tree(right, graph),
            rows.round()
        ),
    }
}
