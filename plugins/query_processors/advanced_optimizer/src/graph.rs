//! The join graph: the relations of a chain of inner joins, what is known about their
//! columns, and the equality conditions that connect them.

/// What the statistics say about one column of a relation (each `None` when unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ColumnStats {
    /// Distinct non-null values.
    pub distinct: Option<f64>,
    /// Null values.
    pub nulls: Option<f64>,
    /// Smallest and largest value, for numeric (and date) columns.
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// One relation of the graph: a table scan, or a subtree the optimizer does not open.
#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    /// How the relation is named in explanations.
    pub name: String,
    /// Rows before the relation's own filters (`None` when unknown).
    pub rows: Option<f64>,
    /// The fraction of rows the relation's own filters keep (1.0 without filters).
    pub selectivity: f64,
    /// Statistics by column position.
    pub columns: Vec<ColumnStats>,
}

impl Relation {
    /// A relation of `rows` rows with no filter and no column statistics.
    pub fn new(name: impl Into<String>, rows: f64) -> Self {
        Self {
            name: name.into(),
            rows: Some(rows),
            selectivity: 1.0,
            columns: Vec::new(),
        }
    }

    /// The statistics of column `column` (all unknown past the end).
    pub fn column(&self, column: usize) -> ColumnStats {
        self.columns.get(column).copied().unwrap_or_default()
    }
}

/// A column of a relation of the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ColumnRef {
    pub relation: usize,
    pub column: usize,
}

/// An equality join condition `left = right` between columns of two relations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub left: ColumnRef,
    pub right: ColumnRef,
}

/// Relations and the equality conditions between them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JoinGraph {
    pub relations: Vec<Relation>,
    pub edges: Vec<Edge>,
}

/// A set of relations of a graph, as bits (relation `i` is bit `i`).
pub type RelSet = u64;

/// The most relations a graph may have (the bits of a [`RelSet`]).
pub const MAX_RELATIONS: usize = 64;

impl JoinGraph {
    /// The set of every relation.
    pub fn all(&self) -> RelSet {
        match self.relations.len() {
            MAX_RELATIONS => RelSet::MAX,
            n => (1 << n) - 1,
        }
    }

    /// Whether some condition joins a relation of `a` to one of `b`.
    pub fn connected(&self, a: RelSet, b: RelSet) -> bool {
        self.edges.iter().any(|e| {
            let (l, r) = (bit(e.left.relation), bit(e.right.relation));
            (a & l != 0 && b & r != 0) || (a & r != 0 && b & l != 0)
        })
    }

    /// The conditions that join a relation of `a` to one of `b`.
    pub fn edges_between(&self, a: RelSet, b: RelSet) -> impl Iterator<Item = &Edge> {
        self.edges.iter().filter(move |e| {
            let (l, r) = (bit(e.left.relation), bit(e.right.relation));
            (a & l != 0 && b & r != 0) || (a & r != 0 && b & l != 0)
        })
    }

    /// The connected components of the graph, each as a set, in relation order.
    pub fn components(&self) -> Vec<RelSet> {
        let mut left = self.all();
        let mut components = Vec::new();
        while left != 0 {
            let mut component = left & left.wrapping_neg();
            loop {
                let grown = component
                    | members(left & !component)
                        .filter(|&i| self.connected(component, bit(i)))
                        .fold(0, |s, i| s | bit(i));
                if grown == component {
                    break;
                }
                component = grown;
            }
            left &= !component;
            components.push(component);
        }
        components
    }
}

/// The set holding relation `i` only.
pub fn bit(i: usize) -> RelSet {
    1 << i
}

/// The relations of `set`, in order.
pub fn members(set: RelSet) -> impl Iterator<Item = usize> {
    (0..MAX_RELATIONS).filter(move |&i| set & bit(i) != 0)
}

/// Graph builders for the tests of this crate.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A relation of `rows` rows whose columns have the given distinct counts.
    pub fn keyed(name: &str, rows: f64, distinct: &[f64]) -> Relation {
        Relation {
            columns: distinct
                .iter()
                .map(|&d| ColumnStats {
                    distinct: Some(d),
                    ..Default::default()
                })
                .collect(),
            ..Relation::new(name, rows)
        }
    }

    /// The condition `a.ca = b.cb`.
    pub fn edge(a: usize, ca: usize, b: usize, cb: usize) -> Edge {
        Edge {
            left: ColumnRef {
                relation: a,
                column: ca,
            },
            right: ColumnRef {
                relation: b,
                column: cb,
            },
        }
    }
}
