//! Join regions of a plan in the form: a tree of inner joins and the filters over them,
//! flattened into its inputs (the leaves) and the conjuncts of every condition.

use phantomdb_plugin_sdk::plan::{Expr, Field, JoinKind, PlanNode};

/// How the leaves were joined in the plan (for the cost of the order as written).
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Leaf(usize),
    Join(Box<Shape>, Box<Shape>),
}

/// A flattened join region.
#[derive(Debug, Clone)]
pub struct Region {
    /// The inputs joined, in the plan's column order.
    pub leaves: Vec<PlanNode>,
    /// Every condition of the joins and filters, split at `AND`.
    pub conjuncts: Vec<Expr>,
    /// The join tree as written.
    pub shape: Shape,
}

/// Whether `node` is an inner join, or filters over one: the top of a region.
pub fn is_region(node: &PlanNode) -> bool {
    match node {
        PlanNode::Filter { input, .. } => is_region(input),
        PlanNode::Join {
            kind: JoinKind::Inner,
            null_equals_null: false,
            ..
        } => true,
        _ => false,
    }
}

impl Region {
    /// Flattens the region topped by `node` (see [`is_region`]).
    pub fn collect(node: PlanNode) -> Region {
        let mut region = Region {
            leaves: Vec::new(),
            conjuncts: Vec::new(),
            shape: Shape::Leaf(0),
        };
        region.shape = region.walk(node);
        region
    }

    fn walk(&mut self, node: PlanNode) -> Shape {
        match node {
            PlanNode::Filter {
                predicate, input, ..
            } if is_region(&input) => {
                split_and(predicate, &mut self.conjuncts);
                self.walk(*input)
            }
            PlanNode::Join {
                kind: JoinKind::Inner,
                null_equals_null: false,
                on,
                filter,
                left,
                right,
                ..
            } => {
                for (l, r) in on {
                    self.conjuncts.push(Expr::Binary {
                        op: "=".into(),
                        left: Box::new(l),
                        right: Box::new(r),
                    });
                }
                if let Some(f) = filter {
                    split_and(f, &mut self.conjuncts);
                }
                let left = self.walk(*left);
                let right = self.walk(*right);
                Shape::Join(Box::new(left), Box::new(right))
            }
            leaf => {
                self.leaves.push(leaf);
                Shape::Leaf(self.leaves.len() - 1)
            }
        }
    }

    /// The leaf and column position a column expression names, when exactly one leaf has it.
    pub fn resolve(&self, relation: Option<&str>, name: &str) -> Option<(usize, usize)> {
        let mut found = None;
        for (i, leaf) in self.leaves.iter().enumerate() {
            for (c, f) in schema(leaf).iter().enumerate() {
                if f.name == name && relation.is_none_or(|r| f.relation.as_deref() == Some(r)) {
                    if found.is_some() {
                        return None;
                    }
                    found = Some((i, c));
                }
            }
        }
        found
    }

    /// The output columns of the region (the leaves' columns, in order).
    pub fn fields(&self) -> Vec<&Field> {
        self.leaves.iter().flat_map(|l| schema(l).iter()).collect()
    }
}

/// `expr` split at its top-level `AND`s into `out`.
pub fn split_and(expr: Expr, out: &mut Vec<Expr>) {
    match expr {
        Expr::Binary { op, left, right } if op.eq_ignore_ascii_case("and") => {
            split_and(*left, out);
            split_and(*right, out);
        }
        other => out.push(other),
    }
}

/// The output columns the host gave a node.
pub fn schema(node: &PlanNode) -> &[Field] {
    match node {
        PlanNode::Scan { schema, .. }
        | PlanNode::Filter { schema, .. }
        | PlanNode::Projection { schema, .. }
        | PlanNode::Join { schema, .. }
        | PlanNode::Aggregate { schema, .. }
        | PlanNode::Sort { schema, .. }
        | PlanNode::Limit { schema, .. }
        | PlanNode::Union { schema, .. }
        | PlanNode::Values { schema, .. }
        | PlanNode::SubqueryAlias { schema, .. }
        | PlanNode::Opaque { schema, .. } => schema,
        PlanNode::Insert { .. } | PlanNode::Update { .. } | PlanNode::Delete { .. } => &[],
    }
}

/// The column an expression reads, seen through casts.
pub fn column_of(expr: &Expr) -> Option<(Option<&str>, &str)> {
    match expr {
        Expr::Column { relation, name } => Some((relation.as_deref(), name)),
        Expr::Cast { expr, .. } => column_of(expr),
        _ => None,
    }
}

/// Whether `expr` holds a subquery.
pub fn has_subquery(expr: &Expr) -> bool {
    match expr {
        Expr::ScalarSubquery { .. } | Expr::InSubquery { .. } | Expr::Exists { .. } => true,
        Expr::Sql { .. } => true,
        _ => {
            let mut e = expr.clone();
            e.children_mut().into_iter().any(|c| has_subquery(c))
        }
    }
}

/// Every column an expression reads (`None` when it reads one of the region's leaves
/// ambiguously or a column of no leaf, such as an outer query's).
pub fn leaves_read(region: &Region, expr: &Expr) -> Option<Vec<usize>> {
    let mut leaves = Vec::new();
    let mut ok = true;
    visit_columns(
        expr,
        &mut |relation, name| match region.resolve(relation, name) {
            Some((leaf, _)) => {
                if !leaves.contains(&leaf) {
                    leaves.push(leaf);
                }
            }
            None => ok = false,
        },
    );
    ok.then_some(leaves)
}

fn visit_columns(expr: &Expr, f: &mut impl FnMut(Option<&str>, &str)) {
    if let Expr::Column { relation, name } = expr {
        f(relation.as_deref(), name);
        return;
    }
    let mut e = expr.clone();
    for child in e.children_mut() {
        visit_columns(child, f);
    }
}
