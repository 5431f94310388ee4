//! Correlated subqueries of every form, rewritten into joins before DataFusion optimizes.
//!
//! DataFusion decorrelates only some shapes (an aggregate correlated by equalities, `IN` and
//! `EXISTS` as filter conjuncts) and returns wrong rows for a correlated `NOT IN` with NULLs.
//! [`UnnestSubqueries`] is an analyzer rule (it runs after type coercion) that rewrites every
//! correlated scalar, `EXISTS`, `IN`, `ANY` and `ALL` subquery, at any depth, in a select
//! list, filter (WHERE, HAVING), ORDER BY or aggregate, following DuckDB: the subquery is
//! computed once per distinct binding of the outer columns it reads (`domain.rs`,
//! `dependent.rs`) and joined back to the outer rows (`unnest.rs`). A shape it cannot carry
//! the bindings through is left as it was, for DataFusion to run or refuse.

mod dependent;
mod domain;
mod outer;
mod single_row;
mod unnest;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::Result;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::analyzer::type_coercion::TypeCoercion;
use datafusion::optimizer::AnalyzerRule;

/// The analyzer rule PhantomDB adds to every session.
#[derive(Debug, Default)]
pub(crate) struct UnnestSubqueries;

impl AnalyzerRule for UnnestSubqueries {
    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> Result<LogicalPlan> {
        if !has_subquery(&plan)? {
            return Ok(plan);
        }
        let mut names = domain::Names::default();
        let plan = unnest::unnest_plan(plan, &mut names)?;
        // The expressions the rewrite built are typed already; coercion makes sure.
        TypeCoercion::new().analyze(plan, config)
    }

    fn name(&self) -> &str {
        "phantomdb_unnest_subqueries"
    }
}

/// Whether any expression of `plan` holds a subquery.
fn has_subquery(plan: &LogicalPlan) -> Result<bool> {
    let mut found = false;
    plan.apply(|node| {
        node.apply_expressions(|e| {
            e.apply(|x| {
                if matches!(
                    x,
                    Expr::ScalarSubquery(_)
                        | Expr::Exists(_)
                        | Expr::InSubquery(_)
                        | Expr::SetComparison(_)
                ) {
                    found = true;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    Ok(found)
}
