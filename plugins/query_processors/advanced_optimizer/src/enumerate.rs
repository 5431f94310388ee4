//! Join order search: the cheapest tree of joins for a join graph, never joining two sets
//! of relations that no condition connects (no cross product the query did not have).
//!
//! The cost of a tree is the sum of the estimated rows of its joins (C_out). Trees are
//! left-deep: each join adds one relation to those joined so far. DataFusion's logical
//! optimizer flattens every tree of inner joins and rebuilds it left-deep, taking the
//! inputs in the order they appear and each time the first one a condition connects
//! (`EliminateCrossJoin`): a left-deep order where every relation is connected to the ones
//! before it comes through that unchanged, a bushy tree does not.
//!
//! Up to a limit of relations per connected component the search is exhaustive (dynamic
//! programming over connected subsets, `O(n 2^n)`); beyond it greedy (the connected pair
//! whose join is smallest, then at each step the connected relation that keeps the result
//! smallest). Components the query joins without a condition are cross-joined last,
//! smallest first.

use crate::estimate::Estimator;
use crate::graph::{bit, members, JoinGraph, RelSet};

/// Relations per component searched exhaustively by default.
pub const DEFAULT_EXHAUSTIVE_LIMIT: usize = 10;

/// A tree of joins over the relations of a graph, with the rows estimated for each node.
#[derive(Debug, Clone, PartialEq)]
pub enum JoinTree {
    Relation {
        relation: usize,
        rows: f64,
    },
    Join {
        /// The relations joined so far (for the first join, the smaller relation).
        left: Box<JoinTree>,
        /// The relation added (for cross joins of components, a component's tree).
        right: Box<JoinTree>,
        rows: f64,
        /// No condition connects the sides (components of a query that has a cross join).
        cross: bool,
    },
}

impl JoinTree {
    /// The estimated rows of this node.
    pub fn rows(&self) -> f64 {
        match self {
            JoinTree::Relation { rows, .. } | JoinTree::Join { rows, .. } => *rows,
        }
    }

    /// The relations under this node.
    pub fn relations(&self) -> RelSet {
        match self {
            JoinTree::Relation { relation, .. } => bit(*relation),
            JoinTree::Join { left, right, .. } => left.relations() | right.relations(),
        }
    }

    /// The sum of the estimated rows of every join in the tree.
    pub fn cost(&self) -> f64 {
        match self {
            JoinTree::Relation { .. } => 0.0,
            JoinTree::Join {
                left, right, rows, ..
            } => left.cost() + right.cost() + rows,
        }
    }

    /// `a` joined with `b`: a tree of several relations stays on the left; of two single
    /// relations, the smaller goes left.
    fn join(a: JoinTree, b: JoinTree, rows: f64, cross: bool) -> JoinTree {
        let single = |t: &JoinTree| matches!(t, JoinTree::Relation { .. });
        let (left, right) = match (single(&a), single(&b)) {
            (true, false) => (b, a),
            (true, true) if b.rows() < a.rows() => (b, a),
            _ => (a, b),
        };
        JoinTree::Join {
            left: Box::new(left),
            right: Box::new(right),
            rows,
            cross,
        }
    }
}

/// The cheapest join tree found for `graph` (`None` for a graph without relations).
/// Components of more than `exhaustive_limit` relations are ordered greedily.
pub fn best_tree(graph: &JoinGraph, exhaustive_limit: usize) -> Option<JoinTree> {
    let estimator = Estimator::new(graph);
    let mut parts: Vec<JoinTree> = graph
        .components()
        .into_iter()
        .filter_map(|component| {
            if members(component).count() <= exhaustive_limit.max(1) {
                exhaustive(graph, &estimator, component)
            } else {
                greedy(graph, &estimator, component)
            }
        })
        .collect();
    parts.sort_by(|a, b| a.rows().total_cmp(&b.rows()));
    let mut parts = parts.into_iter();
    let first = parts.next()?;
    Some(parts.fold(first, |tree, part| {
        let rows = estimator.rows(tree.relations() | part.relations());
        JoinTree::join(tree, part, rows, true)
    }))
}

/// Dynamic programming over the connected subsets of `component`, each built from a
/// smaller one and one relation.
fn exhaustive(graph: &JoinGraph, estimator: &Estimator, component: RelSet) -> Option<JoinTree> {
    let rels: Vec<usize> = members(component).collect();
    let n = rels.len();
    if n == 0 {
        return None;
    }
    let global = |local: usize| -> RelSet {
        (0..n)
            .filter(|i| local & (1 << i) != 0)
            .fold(0, |s, i| s | bit(rels[i]))
    };
    // best[s]: the cost of the cheapest tree over local subset s and the split it uses
    // (`None` for one relation); absent for a subset no tree joins without a cross product.
    type Best = Option<(f64, Option<(usize, usize)>)>;
    let mut best: Vec<Best> = vec![None; 1 << n];
    for i in 0..n {
        best[1 << i] = Some((0.0, None));
    }
    for s in 1usize..(1 << n) {
        if s.count_ones() < 2 {
            continue;
        }
        let rows = estimator.rows(global(s));
        let mut found: Best = None;
        // Every split of s into the relations joined before and the one added last.
        for last in (0..n).filter(|i| s & (1 << i) != 0) {
            let (a, b) = (s ^ (1 << last), 1 << last);
            if let Some((ca, _)) = best[a] {
                if graph.connected(global(a), global(b)) {
                    let cost = ca + rows;
                    if found.is_none_or(|(c, _)| cost < c) {
                        found = Some((cost, Some((a, b))));
                    }
                }
            }
        }
        best[s] = found;
    }
    fn build(
        s: usize,
        best: &[Best],
        rels: &[usize],
        estimator: &Estimator,
        global: &dyn Fn(usize) -> RelSet,
    ) -> JoinTree {
        match best[s] {
            Some((_, Some((a, b)))) => JoinTree::join(
                build(a, best, rels, estimator, global),
                build(b, best, rels, estimator, global),
                estimator.rows(global(s)),
                false,
            ),
            _ => {
                let relation = rels[s.trailing_zeros() as usize];
                JoinTree::Relation {
                    relation,
                    rows: estimator.relation_rows(relation),
                }
            }
        }
    }
    Some(build((1 << n) - 1, &best, &rels, estimator, &global))
}

/// Greedy ordering: the connected pair whose join is smallest, then at each step the
/// connected relation whose join with the tree so far is smallest.
fn greedy(graph: &JoinGraph, estimator: &Estimator, component: RelSet) -> Option<JoinTree> {
    let leaf = |relation: usize| JoinTree::Relation {
        relation,
        rows: estimator.relation_rows(relation),
    };
    let rels: Vec<usize> = members(component).collect();
    let mut first: Option<(usize, usize, f64)> = None;
    for (i, &a) in rels.iter().enumerate() {
        for &b in &rels[i + 1..] {
            if graph.connected(bit(a), bit(b)) {
                let rows = estimator.rows(bit(a) | bit(b));
                if first.is_none_or(|(_, _, r)| rows < r) {
                    first = Some((a, b, rows));
                }
            }
        }
    }
    let Some((a, b, rows)) = first else {
        return (rels.len() == 1).then(|| leaf(rels[0]));
    };
    let mut tree = JoinTree::join(leaf(a), leaf(b), rows, false);
    loop {
        let joined = tree.relations();
        let next = members(component & !joined)
            .filter(|&r| graph.connected(joined, bit(r)))
            .map(|r| (r, estimator.rows(joined | bit(r))))
            .min_by(|x, y| x.1.total_cmp(&y.1));
        let Some((r, rows)) = next else {
            break;
        };
        tree = JoinTree::join(tree, leaf(r), rows, false);
    }
    // A component is connected: every relation was reached.
    (tree.relations() == component).then_some(tree)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::testing::{edge, keyed};
    use crate::graph::Relation;

    /// Every join of `tree` that is not marked cross has a condition between its sides.
    fn no_cross_product(graph: &JoinGraph, tree: &JoinTree) -> bool {
        match tree {
            JoinTree::Relation { .. } => true,
            JoinTree::Join {
                left, right, cross, ..
            } => {
                (*cross || graph.connected(left.relations(), right.relations()))
                    && no_cross_product(graph, left)
                    && no_cross_product(graph, right)
            }
        }
    }

    /// The cost of the cheapest left-deep tree over `set` found by trying every order of
    /// its relations that never joins without a condition (no memo).
    fn brute_force(graph: &JoinGraph, estimator: &Estimator, set: RelSet) -> Option<f64> {
        fn extend(
            graph: &JoinGraph,
            estimator: &Estimator,
            set: RelSet,
            joined: RelSet,
            cost: f64,
        ) -> Option<f64> {
            if joined == set {
                return Some(cost);
            }
            members(set & !joined)
                .filter(|&r| joined == 0 || graph.connected(joined, bit(r)))
                .filter_map(|r| {
                    let next = joined | bit(r);
                    let rows = if joined == 0 {
                        0.0
                    } else {
                        estimator.rows(next)
                    };
                    extend(graph, estimator, set, next, cost + rows)
                })
                .min_by(f64::total_cmp)
        }
        extend(graph, estimator, set, 0, 0.0)
    }

    /// Every join adds one relation to the tree on its left (the first join: two relations).
    fn left_deep(tree: &JoinTree) -> bool {
        match tree {
            JoinTree::Relation { .. } => true,
            JoinTree::Join { left, right, .. } => {
                matches!(**right, JoinTree::Relation { .. }) && left_deep(left)
            }
        }
    }

    /// The relation joined first (the deepest join's two relations), as a set.
    fn first_join(tree: &JoinTree) -> RelSet {
        match tree {
            JoinTree::Relation { .. } => 0,
            JoinTree::Join { left, right, .. } => {
                for side in [left, right] {
                    let inner = first_join(side);
                    if inner != 0 {
                        return inner;
                    }
                }
                tree.relations()
            }
        }
    }

    /// A small deterministic pseudo-random sequence for generated graphs.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, below: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % below
        }
    }

    #[test]
    fn a_star_joins_its_most_selective_dimension_first() {
        // A fact table of 1M rows and four 1,000-row dimensions; a filter on dimension 3
        // keeps one row.
        let mut relations = vec![keyed("fact", 1e6, &[1000.0, 1000.0, 1000.0, 1000.0])];
        let mut edges = Vec::new();
        for d in 0..4 {
            let mut dim = keyed(&format!("dim{d}"), 1000.0, &[1000.0]);
            if d == 2 {
                dim.selectivity = 0.001;
            }
            relations.push(dim);
            edges.push(edge(0, d, d + 1, 0));
        }
        let graph = JoinGraph { relations, edges };
        let tree = best_tree(&graph, DEFAULT_EXHAUSTIVE_LIMIT).expect("tree");
        assert_eq!(first_join(&tree), bit(0) | bit(3), "{tree:#?}");
        assert!(no_cross_product(&graph, &tree));
    }

    #[test]
    fn a_chain_is_never_joined_through_a_cross_product() {
        // a - b - c with a and c tiny and b huge: a cross product a x c (one row) first would
        // be cheapest under C_out, but the query has no condition between a and c.
        let graph = JoinGraph {
            relations: vec![
                keyed("a", 1.0, &[1.0]),
                keyed("b", 1e6, &[1e6, 1e6]),
                keyed("c", 1.0, &[1.0]),
            ],
            edges: vec![edge(0, 0, 1, 0), edge(1, 1, 2, 0)],
        };
        for limit in [1, DEFAULT_EXHAUSTIVE_LIMIT] {
            let tree = best_tree(&graph, limit).expect("tree");
            assert!(no_cross_product(&graph, &tree), "{tree:#?}");
        }
    }

    #[test]
    fn a_clique_starts_with_its_most_selective_condition() {
        // Four relations of 10,000 rows, every pair joined; the pair (1, 3) on a key that
        // matches rarely.
        let relations = (0..4)
            .map(|i| keyed(&format!("r{i}"), 1e4, &[10.0, 1e4]))
            .collect();
        let mut edges = Vec::new();
        for i in 0..4 {
            for j in i + 1..4 {
                let column = usize::from((i, j) == (1, 3));
                edges.push(edge(i, column, j, column));
            }
        }
        let graph = JoinGraph { relations, edges };
        let tree = best_tree(&graph, DEFAULT_EXHAUSTIVE_LIMIT).expect("tree");
        assert_eq!(first_join(&tree), bit(1) | bit(3), "{tree:#?}");
    }

    #[test]
    fn the_exhaustive_search_finds_the_cheapest_tree_and_greedy_is_never_cheaper() {
        let mut rng = Lcg(7);
        for round in 0..200 {
            let n = 2 + (round % 6);
            let relations: Vec<Relation> = (0..n)
                .map(|i| {
                    let rows = 10f64.powi(1 + rng.next(6) as i32);
                    let mut r = keyed(
                        &format!("r{i}"),
                        rows,
                        &[
                            (1 + rng.next(rows as u64)) as f64,
                            (1 + rng.next(rows as u64)) as f64,
                        ],
                    );
                    r.selectivity = [1.0, 0.5, 0.01][rng.next(3) as usize];
                    r
                })
                .collect();
            // A random spanning tree (connected), then extra edges.
            let mut edges = Vec::new();
            for i in 1..n {
                let j = rng.next(i as u64) as usize;
                edges.push(edge(j, rng.next(2) as usize, i, rng.next(2) as usize));
            }
            for _ in 0..rng.next(n as u64) {
                let (i, j) = (rng.next(n as u64) as usize, rng.next(n as u64) as usize);
                if i != j {
                    edges.push(edge(i, 0, j, 1));
                }
            }
            let graph = JoinGraph { relations, edges };
            let estimator = Estimator::new(&graph);
            let exhaustive = best_tree(&graph, DEFAULT_EXHAUSTIVE_LIMIT).expect("tree");
            let greedy = best_tree(&graph, 1).expect("tree");
            let cheapest = brute_force(&graph, &estimator, graph.all()).expect("connected");
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(1.0);
            assert!(close(exhaustive.cost(), cheapest), "round {round}");
            assert!(greedy.cost() >= cheapest * (1.0 - 1e-9), "round {round}");
            assert_eq!(exhaustive.relations(), graph.all());
            assert_eq!(greedy.relations(), graph.all());
            assert!(no_cross_product(&graph, &exhaustive), "round {round}");
            assert!(no_cross_product(&graph, &greedy), "round {round}");
            assert!(
                left_deep(&exhaustive) && left_deep(&greedy),
                "round {round}"
            );
        }
    }

    #[test]
    fn unconnected_parts_are_cross_joined_last_smallest_first() {
        // (a - b) and (c - d) with no condition between them, and e alone.
        let graph = JoinGraph {
            relations: vec![
                keyed("a", 100.0, &[100.0]),
                keyed("b", 100.0, &[100.0]),
                keyed("c", 5.0, &[5.0]),
                keyed("d", 5.0, &[5.0]),
                keyed("e", 2.0, &[]),
            ],
            edges: vec![edge(0, 0, 1, 0), edge(2, 0, 3, 0)],
        };
        let tree = best_tree(&graph, DEFAULT_EXHAUSTIVE_LIMIT).expect("tree");
        let JoinTree::Join {
            left, right, cross, ..
        } = &tree
        else {
            panic!("a join: {tree:#?}");
        };
        assert!(*cross);
        assert_eq!(right.relations(), bit(0) | bit(1), "largest part last");
        assert_eq!(left.relations(), bit(2) | bit(3) | bit(4));
        assert!(no_cross_product(&graph, &tree));
    }
}
