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
//!   relations and greedy beyond, never adding a cross product;
//! * [`region`], [`selectivity`], [`reorder`]: the plan form side (join regions, filter
//!   selectivity from statistics, the rebuilt region);
//! * [`processor`]: the `rewrite` hook and the session settings.
//!
//! Configuration (JSON, optional): `{"exhaustive_limit": 10}`. Session settings:
//! `SET advanced_optimizer.enabled = off`, `SET advanced_optimizer.exhaustive_limit = 6`.
//! `SELECT * FROM advanced_optimizer_decisions()` lists its recent decisions: the order as
//! written, the order chosen with the estimated rows of every node, and both estimated costs.

pub mod enumerate;
pub mod estimate;
pub mod graph;
pub mod processor;
pub mod region;
pub mod reorder;
pub mod selectivity;

use phantomdb_plugin_sdk::arrow_array::{ArrayRef, Float64Array, StringArray};
use phantomdb_plugin_sdk::prelude::*;

use crate::processor::AdvancedOptimizer;

/// The plugin: the processor and its decisions table.
#[derive(Default)]
pub struct AdvancedOptimizerPlugin {
    optimizer: Arc<AdvancedOptimizer>,
}

impl Plugin for AdvancedOptimizerPlugin {
    fn initialize(&mut self, config: &str) -> Result<(), String> {
        if config.trim().is_empty() {
            return Ok(());
        }
        let value: serde_json::Value = serde_json::from_str(config)
            .map_err(|e| format!("advanced_optimizer: configuration is not JSON: {e}"))?;
        match value.get("exhaustive_limit") {
            None => Ok(()),
            Some(v) => match v.as_u64() {
                Some(n) if (1..=16).contains(&n) => {
                    self.optimizer.set_limit(n as usize);
                    Ok(())
                }
                _ => Err(format!(
                    "advanced_optimizer: exhaustive_limit must be a whole number from 1 to 16, not {v}"
                )),
            },
        }
    }

    fn register(&self, registrar: &mut Registrar) {
        registrar.query_processors(vec![self.optimizer.clone()]);
        registrar.table_functions(vec![Box::new(Decisions {
            optimizer: self.optimizer.clone(),
        })]);
    }
}

/// `advanced_optimizer_decisions()`: the optimizer's recent decisions, oldest first.
struct Decisions {
    optimizer: Arc<AdvancedOptimizer>,
}

impl TableFunction for Decisions {
    fn name(&self) -> &str {
        "advanced_optimizer_decisions"
    }

    fn description(&self) -> &str {
        "The join orders advanced_optimizer chose recently, with its estimates"
    }

    fn signature(&self) -> Signature {
        Signature::table(Vec::<ValueType>::new())
    }

    fn call(&self, _args: &[Literal]) -> Result<TableOutput, String> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("written", DataType::Utf8, false),
            Field::new("chosen", DataType::Utf8, false),
            Field::new("cost_written", DataType::Float64, false),
            Field::new("cost_chosen", DataType::Float64, false),
        ]));
        let decisions = self.optimizer.decisions();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                decisions.iter().map(|d| d.before.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                decisions.iter().map(|d| d.after.as_str()),
            )),
            Arc::new(Float64Array::from_iter_values(
                decisions.iter().map(|d| d.cost_before.round()),
            )),
            Arc::new(Float64Array::from_iter_values(
                decisions.iter().map(|d| d.cost_after.round()),
            )),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())?;
        Ok((schema, vec![batch]))
    }
}

phantomdb_plugin! {
    name: "advanced_optimizer",
    version: "0.1.0",
    description: "Cost-based join order for chains of inner joins, from the tables' statistics",
    host_version: "*",
    plugin_type: QueryProcessor,
    plugin: AdvancedOptimizerPlugin::default(),
}
