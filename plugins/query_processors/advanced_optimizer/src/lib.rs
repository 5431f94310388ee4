//! `advanced_optimizer`: a cost-based join-order optimizer, shipped as a query processor
//! plugin.
//!
//! DataFusion keeps inner joins in the order of the FROM clause and only chooses the build
//! side of each; this plugin reorders chains of inner joins from the statistics the host
//! puts in the plan form (row counts, per-column distinct and null counts, min/max).
//!
//! * [`graph`]: the join graph (relations, their statistics, the equality conditions);
//! * [`estimate`]: cardinality estimates of joined sets of relations;
//! * [`enumerate`]: the search for the cheapest join tree, exhaustive up to a limit of
//!   relations and greedy beyond, never adding a cross product.

pub mod enumerate;
pub mod estimate;
pub mod graph;
