//! The plan form (`phantomdb_plugin_sdk::plan`): the stable tree query processors read and
//! write, converted from and back to DataFusion's `LogicalPlan`.
//!
//! [`to_form`] keeps what the form does not model (opaque nodes and expressions, the scans'
//! table sources, the DML targets) in [`Handles`]; [`from_form`] rebuilds a plan from a form
//! plan and those handles, checking every reference (columns against the input of the node
//! that names them, functions against the session, scans and opaque handles against the
//! handles) and [`check_output`] that the output columns did not change.

mod from_form;
mod row_check;
mod to_form;
mod types;

use datafusion::common::DFSchema;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{DmlStatement, Expr as DfExpr, LogicalPlan, TableScan};
use phantomdb_plugin_sdk::plan::{Plan, PLAN_FORM_VERSION};

/// What a conversion to the form keeps on the host's side.
#[derive(Default)]
pub(crate) struct Handles {
    plans: Vec<LogicalPlan>,
    exprs: Vec<DfExpr>,
    scans: Vec<TableScan>,
    dml: Vec<DmlStatement>,
    /// Functions the plan calls that the session may not list (built by planner rules).
    scalar_functions:
        std::collections::HashMap<String, std::sync::Arc<datafusion::logical_expr::ScalarUDF>>,
    aggregate_functions:
        std::collections::HashMap<String, std::sync::Arc<datafusion::logical_expr::AggregateUDF>>,
}

/// `plan` in the form, and the handles to convert it back.
pub(crate) fn to_form(plan: &LogicalPlan) -> (Plan, Handles) {
    let mut handles = Handles::default();
    let root = to_form::node(plan, &mut handles);
    (
        Plan {
            version: PLAN_FORM_VERSION,
            root,
        },
        handles,
    )
}

/// The plan a form plan describes, its references checked. The error says what is wrong.
pub(crate) fn from_form(
    plan: &Plan,
    handles: &Handles,
    state: &SessionState,
) -> Result<LogicalPlan, String> {
    if plan.version != PLAN_FORM_VERSION {
        return Err(format!(
            "plan form version {} (the host reads {PLAN_FORM_VERSION})",
            plan.version
        ));
    }
    from_form::Back { handles, state }.node(&plan.root)
}

/// Refuses a rewritten plan whose output columns (names and types, in order) differ.
pub(crate) fn check_output(before: &DFSchema, after: &DFSchema) -> Result<(), String> {
    let describe = |s: &DFSchema| {
        s.fields()
            .iter()
            .map(|f| format!("{} {}", f.name(), f.data_type()))
            .collect::<Vec<_>>()
    };
    let (b, a) = (describe(before), describe(after));
    if b != a {
        return Err(format!(
            "the plan's output changed from ({}) to ({})",
            b.join(", "),
            a.join(", ")
        ));
    }
    Ok(())
}
