//! Cardinality estimates of sets of joined relations, from row counts, the relations' own
//! filter selectivities and the distinct counts of the join keys.
//!
//! The model is the textbook one (independence between conditions, containment of the
//! smaller key domain in the larger): joining relations `i` and `j` on their columns keeps
//! `1 / max(d_i, d_j)` of the pairs, where `d` is the number of distinct values of the join
//! key on each side. For a key of several columns a side's `d` is the product of the
//! columns' distinct counts, capped at the side's rows (a composite primary key has as many
//! distinct values as rows). Distinct counts shrink with a relation's filters (never more
//! than its remaining rows); null keys never match. The estimate of a set does not depend on
//! the order it was joined in, so each join order is compared on the same numbers.

use std::collections::BTreeMap;

use crate::graph::{bit, members, JoinGraph, RelSet};

/// Rows assumed for a relation whose row count is unknown.
pub const UNKNOWN_ROWS: f64 = 1000.0;

/// Estimates for one graph.
#[derive(Debug, Clone)]
pub struct Estimator {
    /// Each relation's rows after its own filters.
    rows: Vec<f64>,
    /// Each joined pair of relations and the fraction of its pairs of rows that match.
    pairs: Vec<(RelSet, f64)>,
}

impl Estimator {
    pub fn new(graph: &JoinGraph) -> Self {
        let rows: Vec<f64> = graph
            .relations
            .iter()
            .map(|r| (r.rows.unwrap_or(UNKNOWN_ROWS) * r.selectivity.clamp(0.0, 1.0)).max(1.0))
            .collect();
        // The key columns of each joined pair, per side.
        let mut keys: BTreeMap<(usize, usize), (Vec<usize>, Vec<usize>)> = BTreeMap::new();
        for e in &graph.edges {
            let (l, r) = (e.left, e.right);
            if l.relation == r.relation {
                continue;
            }
            let (a, b) = if l.relation < r.relation {
                (l, r)
            } else {
                (r, l)
            };
            let entry = keys.entry((a.relation, b.relation)).or_default();
            entry.0.push(a.column);
            entry.1.push(b.column);
        }
        let pairs = keys
            .into_iter()
            .map(|((a, b), (ca, cb))| {
                let (a, b) = (
                    key_side(graph, &rows, a, &ca),
                    key_side(graph, &rows, b, &cb),
                );
                // A side unique on the key (a primary key) holds every value the other
                // side's key can take.
                let domain = [a, b]
                    .iter()
                    .filter(|s| s.unique)
                    .map(|s| s.domain)
                    .fold(f64::INFINITY, f64::min);
                let distinct = a.distinct.min(domain).max(b.distinct.min(domain)).max(1.0);
                (
                    bit(a.relation) | bit(b.relation),
                    a.non_null * b.non_null / distinct,
                )
            })
            .collect();
        Self { rows, pairs }
    }

    /// Estimated rows of relation `relation` after its own filters.
    pub fn relation_rows(&self, relation: usize) -> f64 {
        self.rows[relation]
    }

    /// Estimated rows of the relations of `set` joined by every condition among them (a
    /// cross product where there is none), at least 1.
    pub fn rows(&self, set: RelSet) -> f64 {
        let product: f64 = members(set).map(|i| self.rows[i]).product();
        let matching: f64 = self
            .pairs
            .iter()
            .filter(|(pair, _)| pair & set == *pair)
            .map(|(_, s)| s)
            .product();
        (product * matching).max(1.0)
    }
}

/// What one side of a join condition knows about its key.
#[derive(Clone, Copy)]
struct KeySide {
    relation: usize,
    /// Distinct keys left after the relation's filters.
    distinct: f64,
    /// Distinct keys of the whole relation.
    domain: f64,
    /// Whether every row of the whole relation has its own key.
    unique: bool,
    /// The fraction of rows whose key has no null.
    non_null: f64,
}

fn key_side(graph: &JoinGraph, rows: &[f64], relation: usize, columns: &[usize]) -> KeySide {
    let rel = &graph.relations[relation];
    let total = rel.rows.unwrap_or(UNKNOWN_ROWS).max(1.0);
    let mut distinct = 1.0f64;
    let mut non_null = 1.0f64;
    for &c in columns {
        let stats = rel.column(c);
        distinct *= stats.distinct.unwrap_or(total).max(1.0);
        if let Some(nulls) = stats.nulls {
            non_null *= (1.0 - nulls / total).clamp(0.0, 1.0);
        }
    }
    let domain = distinct.min(total);
    KeySide {
        relation,
        distinct: domain.min(rows[relation]).max(1.0),
        domain,
        unique: distinct >= total,
        non_null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::testing::{edge, keyed};
    use crate::graph::Relation;

    #[test]
    fn a_foreign_key_join_has_the_rows_of_the_referencing_side() {
        // orders(o_orderkey) 1,500 rows; lineitem(l_orderkey) 6,000 rows over 1,500 orders.
        let graph = JoinGraph {
            relations: vec![
                keyed("orders", 1500.0, &[1500.0]),
                keyed("lineitem", 6000.0, &[1500.0]),
            ],
            edges: vec![edge(0, 0, 1, 0)],
        };
        let e = Estimator::new(&graph);
        assert_eq!(e.rows(0b11), 6000.0);
        assert_eq!(e.rows(0b01), 1500.0);
    }

    #[test]
    fn a_filter_shrinks_the_rows_and_the_distinct_keys_of_its_relation() {
        let mut orders = keyed("orders", 1500.0, &[1500.0]);
        orders.selectivity = 0.1;
        let graph = JoinGraph {
            relations: vec![orders, keyed("lineitem", 6000.0, &[1500.0])],
            edges: vec![edge(0, 0, 1, 0)],
        };
        // 150 orders left, each with 4 line items.
        assert_eq!(Estimator::new(&graph).rows(0b11), 600.0);
    }

    #[test]
    fn a_composite_key_counts_at_most_one_distinct_value_per_row() {
        // partsupp (200 parts x 4 suppliers = 800 rows, unique pairs); lineitem 6,000 rows
        // over the same 800 pairs: every line item matches exactly one partsupp row.
        let graph = JoinGraph {
            relations: vec![
                keyed("partsupp", 800.0, &[200.0, 10.0]),
                keyed("lineitem", 6000.0, &[200.0, 10.0]),
            ],
            edges: vec![edge(0, 0, 1, 0), edge(0, 1, 1, 1)],
        };
        assert_eq!(Estimator::new(&graph).rows(0b11), 6000.0);
    }

    #[test]
    fn a_filtered_side_unique_on_a_composite_key_keeps_its_share_of_the_matches() {
        let mut partsupp = keyed("partsupp", 800.0, &[200.0, 10.0]);
        partsupp.selectivity = 0.1;
        let graph = JoinGraph {
            relations: vec![partsupp, keyed("lineitem", 6000.0, &[200.0, 10.0])],
            edges: vec![edge(0, 0, 1, 0), edge(0, 1, 1, 1)],
        };
        assert_eq!(Estimator::new(&graph).rows(0b11), 600.0);
    }

    #[test]
    fn null_keys_never_match() {
        let mut child = keyed("child", 100.0, &[10.0]);
        child.columns[0].nulls = Some(50.0);
        let graph = JoinGraph {
            relations: vec![keyed("parent", 10.0, &[10.0]), child],
            edges: vec![edge(0, 0, 1, 0)],
        };
        assert_eq!(Estimator::new(&graph).rows(0b11), 50.0);
    }

    #[test]
    fn relations_without_a_condition_multiply() {
        let graph = JoinGraph {
            relations: vec![Relation::new("a", 3.0), Relation::new("b", 7.0)],
            edges: vec![],
        };
        assert_eq!(Estimator::new(&graph).rows(0b11), 21.0);
    }
}
