//! Join order search: the cheapest tree of joins for a join graph, never joining two sets
//! of relations that no condition connects (no cross product the query did not have).
//!
//! The cost of a tree is the sum of the estimated rows of its joins (C_out). Up to a limit of
//! relations per connected component the search is exhaustive over bushy trees (dynamic
//! programming over connected subsets, `O(3^n)`); beyond it greedy (at each step the
//! connected pair of subtrees whose join is smallest). Components the query joins without
//! a condition are cross-joined last, smallest first.

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
        /// The smaller side (by estimate): the build side of a hash join.
        left: Box<JoinTree>,
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

    fn join(a: JoinTree, b: JoinTree, rows: f64, cross: bool) -> JoinTree {
        let (left, right) = if b.rows() < a.rows() { (b, a) } else { (a, b) };
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

/// Dynamic programming over the connected subsets of `component`.
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
        // Every split of s into two non-empty halves, each unordered pair once.
        let mut a = (s - 1) & s;
        while a > 0 {
            let b = s ^ a;
            if a > b {
                if let (Some((ca, _)), Some((cb, _))) = (best[a], best[b]) {
                    if graph.connected(global(a), global(b)) {
                        let cost = ca + cb + rows;
                        if found.is_none_or(|(c, _)| cost < c) {
                            found = Some((cost, Some((a, b))));
                        }
                    }
                }
            }
            a = (a - 1) & s;
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

/// Greedy operator ordering: joins the connected pair of subtrees with the smallest result
/// until one tree is left.
fn greedy(graph: &JoinGraph, estimator: &Estimator, component: RelSet) -> Option<JoinTree> {
    let mut trees: Vec<JoinTree> = members(component)
        .map(|relation| JoinTree::Relation {
            relation,
            rows: estimator.relation_rows(relation),
        })
        .collect();
    while trees.len() > 1 {
        let mut pick: Option<(usize, usize, f64)> = None;
        for i in 0..trees.len() {
            for j in i + 1..trees.len() {
                let (a, b) = (trees[i].relations(), trees[j].relations());
                if !graph.connected(a, b) {
                    continue;
                }
                let rows = estimator.rows(a | b);
                if pick.is_none_or(|(_, _, r)| rows < r) {
                    pick = Some((i, j, rows));
                }
            }
        }
        let Some((i, j, rows)) = pick else {
            break;
        };
        let b = trees.swap_remove(j);
        let a = trees.swap_remove(i);
        trees.push(JoinTree::join(a, b, rows, false));
    }
    trees.into_iter().reduce(|tree, other| {
        let rows = estimator.rows(tree.relations() | other.relations());
        JoinTree::join(tree, other, rows, true)
    })
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

    /// The cost of the cheapest tree over `set` found by trying every tree (no memo).
    fn brute_force(graph: &JoinGraph, estimator: &Estimator, set: RelSet) -> Option<f64> {
        if set.count_ones() == 1 {
            return Some(0.0);
        }
        let mut best: Option<f64> = None;
        let mut a = (set - 1) & set;
        while a > 0 {
            let b = set ^ a;
            if graph.connected(a, b) {
                if let (Some(ca), Some(cb)) = (
                    brute_force(graph, estimator, a),
                    brute_force(graph, estimator, b),
                ) {
                    let cost = ca + cb + estimator.rows(set);
                    best = Some(best.map_or(cost, |c: f64| c.min(cost)));
                }
            }
            a = (a - 1) & set;
        }
        best
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
