//! Query processors' rewrites in a statement's planning: the plan goes through DataFusion's
//! analyzer, then to each processor declaring stage `analyzed` in order, then (only when a
//! processor declares stage `optimized`) through the optimizer and to those processors. Each
//! rewrite crosses in the plan form (`plan_form`); what comes back is converted and checked
//! (references, unchanged output columns) before it replaces the plan.
//!
//! A processor that fails (an error, a panic, a plan refused by the checks) fails the
//! statement (38000, naming the processor) in mode `fail`, or is passed over with a warning
//! in mode `skip`. `EXPLAIN` and `EXPLAIN ANALYZE` rewrite the plan they explain and report
//! which processors changed it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{Analyze, Explain, LogicalPlan, Prepare, Statement};

use super::plan_form::{check_output, from_form, to_form};
use crate::error::{Error, Result, SqlState};
use crate::plugins::query::{FailureMode, QueryProcessorInfo, Session, Stage};
use crate::plugins::Registry;

/// The processors that changed a plan, as EXPLAIN lists them: `name (stage)`.
pub(crate) type Changed = Vec<String>;

/// Runs the registry's rewriting processors over `plan`.
pub(crate) fn rewrite(
    state: &SessionState,
    plan: LogicalPlan,
    session: impl FnOnce() -> Session,
    registry: &Registry,
) -> Result<(LogicalPlan, Changed)> {
    let processors: Vec<&QueryProcessorInfo> = registry
        .query_processors()
        .into_iter()
        .filter(|p| {
            let h = p.processor.hooks();
            h.rewrite_analyzed || h.rewrite_optimized
        })
        .collect();
    if processors.is_empty() {
        return Ok((plan, Vec::new()));
    }
    rewrite_with(state, plan, &session(), &processors)
}

/// Whether a processor in mode `fail` rewrites plans: such a processor may enforce security
/// (row-level security), so no statement may skip planning while one is loaded (the fast
/// paths of literal INSERTs and prepared key lookups and inserts are off).
pub(crate) fn security_rewrites(registry: &Registry) -> bool {
    registry.query_processors().into_iter().any(|p| {
        let h = p.processor.hooks();
        (h.rewrite_analyzed || h.rewrite_optimized)
            && p.processor.failure_mode() == FailureMode::Fail
    })
}

fn rewrite_with(
    state: &SessionState,
    plan: LogicalPlan,
    session: &Session,
    processors: &[&QueryProcessorInfo],
) -> Result<(LogicalPlan, Changed)> {
    match plan {
        LogicalPlan::Explain(e) => {
            let (inner, changed) =
                rewrite_with(state, e.plan.as_ref().clone(), session, processors)?;
            let explain = Explain {
                plan: Arc::new(inner),
                ..e
            };
            return Ok((LogicalPlan::Explain(explain), changed));
        }
        LogicalPlan::Analyze(a) => {
            let (inner, changed) =
                rewrite_with(state, a.input.as_ref().clone(), session, processors)?;
            let analyze = Analyze {
                input: Arc::new(inner),
                ..a
            };
            return Ok((LogicalPlan::Analyze(analyze), changed));
        }
        // A prepared statement's plan is rewritten with its parameters unbound.
        LogicalPlan::Statement(Statement::Prepare(p)) => {
            let (inner, changed) =
                rewrite_with(state, p.input.as_ref().clone(), session, processors)?;
            let prepare = Prepare {
                input: Arc::new(inner),
                ..p
            };
            return Ok((LogicalPlan::Statement(Statement::Prepare(prepare)), changed));
        }
        LogicalPlan::Ddl(_)
        | LogicalPlan::Statement(_)
        | LogicalPlan::Copy(_)
        | LogicalPlan::DescribeTable(_) => return Ok((plan, Vec::new())),
        _ => {}
    }
    let mut plan = state
        .analyzer()
        .execute_and_check(plan, state.config_options(), |_, _| {})?;
    let mut changed = Vec::new();
    for stage in [Stage::Analyzed, Stage::Optimized] {
        let at_stage: Vec<&&QueryProcessorInfo> = processors
            .iter()
            .filter(|p| {
                let h = p.processor.hooks();
                match stage {
                    Stage::Analyzed => h.rewrite_analyzed,
                    Stage::Optimized => h.rewrite_optimized,
                }
            })
            .collect();
        if at_stage.is_empty() {
            continue;
        }
        if stage == Stage::Optimized {
            plan = state.optimizer().optimize(plan, state, |_, _| {})?;
        }
        for p in at_stage {
            match apply(p, stage, &plan, session, state) {
                Ok(Some(new)) => {
                    plan = new;
                    changed.push(format!("{} ({})", p.name, stage_name(stage)));
                }
                Ok(None) => {}
                Err(message) => match p.processor.failure_mode() {
                    FailureMode::Fail => {
                        return Err(Error::Plugin(
                            SqlState::ExternalRoutineException,
                            format!("query processor {} failed: {message}", p.name),
                        ))
                    }
                    FailureMode::Skip => tracing::warn!(
                        processor = %p.name,
                        "query processor failed, statement runs without its rewrite: {message}"
                    ),
                },
            }
        }
    }
    Ok((plan, changed))
}

fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Analyzed => "analyzed",
        Stage::Optimized => "optimized",
    }
}

/// One processor's rewrite: `None` when it left the plan as it was.
fn apply(
    p: &QueryProcessorInfo,
    stage: Stage,
    plan: &LogicalPlan,
    session: &Session,
    state: &SessionState,
) -> std::result::Result<Option<LogicalPlan>, String> {
    let (form, handles) = to_form(plan);
    // Native processors catch their panics in the SDK; linked-in ones are caught here.
    let out = catch_unwind(AssertUnwindSafe(|| {
        p.processor.rewrite(stage, form.clone(), session)
    }))
    .map_err(|_| "it panicked".to_string())??;
    let Some(new_form) = out else {
        return Ok(None);
    };
    if new_form == form {
        return Ok(None);
    }
    let new = from_form(&new_form, &handles, state)
        .map_err(|e| format!("it returned a plan the host refuses: {e}"))?;
    check_output(plan.schema(), new.schema())
        .map_err(|e| format!("it returned a plan the host refuses: {e}"))?;
    Ok(Some(new))
}
