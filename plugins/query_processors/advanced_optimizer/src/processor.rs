//! The query processor: a `rewrite` at the `analyzed` stage that reorders every join
//! region of the plan it can improve, and keeps the most recent decisions for
//! `advanced_optimizer_decisions()`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use phantomdb_plugin_sdk::plan::{Expr, Plan, PlanNode};
use phantomdb_plugin_sdk::query::{FailureMode, Hooks, QueryProcessor, Session, Stage};

use crate::enumerate::DEFAULT_EXHAUSTIVE_LIMIT;
use crate::region::{is_region, Region};
use crate::reorder::{reorder, Decision};

/// Session setting that turns the optimizer off (`SET advanced_optimizer.enabled = off`).
pub const ENABLED_SETTING: &str = "advanced_optimizer.enabled";
/// Session setting for the most relations searched exhaustively.
pub const LIMIT_SETTING: &str = "advanced_optimizer.exhaustive_limit";
/// Decisions kept for `advanced_optimizer_decisions()`.
const KEPT_DECISIONS: usize = 64;

/// The processor. Shared by every session.
pub struct AdvancedOptimizer {
    /// The exhaustive-search limit from the plugin's configuration.
    limit: AtomicUsize,
    decisions: Mutex<VecDeque<Decision>>,
}

impl Default for AdvancedOptimizer {
    fn default() -> Self {
        Self {
            limit: AtomicUsize::new(DEFAULT_EXHAUSTIVE_LIMIT),
            decisions: Mutex::new(VecDeque::new()),
        }
    }
}

impl AdvancedOptimizer {
    /// Sets the exhaustive-search limit (from the plugin configuration).
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit.max(1), Ordering::Relaxed);
    }

    /// The most recent decisions, oldest first.
    pub fn decisions(&self) -> Vec<Decision> {
        self.decisions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    fn remember(&self, decision: Decision) {
        let mut kept = self.decisions.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() == KEPT_DECISIONS {
            kept.pop_front();
        }
        kept.push_back(decision);
    }

    fn limit_for(&self, session: &Session) -> Result<usize, String> {
        match session.settings.get(LIMIT_SETTING) {
            None => Ok(self.limit.load(Ordering::Relaxed)),
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (1..=16).contains(&n) => Ok(n),
                _ => Err(format!(
                    "{LIMIT_SETTING} must be a whole number from 1 to 16, not \"{v}\""
                )),
            },
        }
    }
}

/// Whether a setting's text means off.
fn is_off(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "off" | "false" | "0" | "no"
    )
}

impl QueryProcessor for AdvancedOptimizer {
    fn name(&self) -> &str {
        "advanced_optimizer"
    }

    fn description(&self) -> &str {
        "cost-based join order for chains of inner joins, from the tables' statistics"
    }

    fn hooks(&self) -> Hooks {
        Hooks {
            rewrite_analyzed: true,
            ..Hooks::default()
        }
    }

    fn order(&self) -> i32 {
        // After processors that add conditions (row-level security): their filters are
        // part of what the estimates see.
        100
    }

    fn failure_mode(&self) -> FailureMode {
        FailureMode::Skip
    }

    fn rewrite(&self, stage: Stage, plan: Plan, session: &Session) -> Result<Option<Plan>, String> {
        if stage != Stage::Analyzed
            || session
                .settings
                .get(ENABLED_SETTING)
                .is_some_and(|v| is_off(v))
        {
            return Ok(None);
        }
        let limit = self.limit_for(session)?;
        let mut decisions = Vec::new();
        let root = optimize(plan.root, limit, &mut decisions);
        if decisions.is_empty() {
            return Ok(None);
        }
        for d in decisions {
            self.remember(d);
        }
        Ok(Some(Plan {
            version: plan.version,
            root,
        }))
    }
}

/// An empty node standing in while a node is moved out of its parent.
fn placeholder() -> PlanNode {
    PlanNode::Values {
        rows: Vec::new(),
        schema: Vec::new(),
    }
}

/// `node` with every join region under it reordered where that is estimated cheaper.
fn optimize(mut node: PlanNode, limit: usize, decisions: &mut Vec<Decision>) -> PlanNode {
    if is_region(&node) {
        optimize_leaves(&mut node, limit, decisions);
        let region = Region::collect(node.clone());
        return match reorder(&region, limit) {
            Some((rewritten, decision)) => {
                decisions.push(decision);
                rewritten
            }
            None => node,
        };
    }
    for input in node.inputs_mut() {
        let taken = std::mem::replace(input, placeholder());
        *input = optimize(taken, limit, decisions);
    }
    for expr in node.exprs_mut() {
        optimize_subqueries(expr, limit, decisions);
    }
    node
}

/// Optimizes the leaves of the region topped by `node` (and the subqueries of its
/// conditions) in place.
fn optimize_leaves(node: &mut PlanNode, limit: usize, decisions: &mut Vec<Decision>) {
    let in_region = is_region(node);
    match node {
        PlanNode::Filter {
            predicate, input, ..
        } if in_region => {
            optimize_subqueries(predicate, limit, decisions);
            optimize_leaves(input, limit, decisions);
        }
        PlanNode::Join {
            on,
            filter,
            left,
            right,
            ..
        } if in_region => {
            for (l, r) in on.iter_mut() {
                optimize_subqueries(l, limit, decisions);
                optimize_subqueries(r, limit, decisions);
            }
            if let Some(f) = filter {
                optimize_subqueries(f, limit, decisions);
            }
            optimize_leaves(left, limit, decisions);
            optimize_leaves(right, limit, decisions);
        }
        leaf => {
            let taken = std::mem::replace(leaf, placeholder());
            *leaf = optimize(taken, limit, decisions);
        }
    }
}

fn optimize_subqueries(expr: &mut Expr, limit: usize, decisions: &mut Vec<Decision>) {
    if let Expr::ScalarSubquery { plan }
    | Expr::InSubquery { plan, .. }
    | Expr::Exists { plan, .. } = expr
    {
        let taken = std::mem::replace(plan.as_mut(), placeholder());
        **plan = optimize(taken, limit, decisions);
    }
    for child in expr.children_mut() {
        optimize_subqueries(child, limit, decisions);
    }
}
