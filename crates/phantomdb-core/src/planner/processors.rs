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

use phantomdb_plugin_sdk::plan::Plan;

use super::plan_form::{check_output, from_form, to_form, Handles};
use crate::error::{Error, Result, SqlState};
use crate::plugins::query::{FailureMode, QueryProcessorInfo, Session, Stage};
use crate::plugins::Registry;

/// The processors that changed a plan, as EXPLAIN lists them: `name (stage)`.
pub(crate) type Changed = Vec<String>;

/// A plan after the rewriting processors.
pub(crate) struct Rewritten {
    /// The plan to run.
    pub(crate) plan: LogicalPlan,
    /// The processors that changed it.
    pub(crate) changed: Changed,
    /// Whether `plan` is DataFusion's analyzed plan, unchanged by any processor: running it
    /// need not analyze it again.
    pub(crate) analyzed: bool,
}

/// Runs the registry's rewriting processors over `plan`.
pub(crate) fn rewrite(
    state: &SessionState,
    plan: LogicalPlan,
    session: impl FnOnce() -> Session,
    registry: &Registry,
) -> Result<Rewritten> {
    let processors: Vec<&QueryProcessorInfo> = registry
        .query_processors()
        .into_iter()
        .filter(|p| {
            let h = p.processor.hooks();
            h.rewrite_analyzed || h.rewrite_optimized
        })
        .collect();
    if processors.is_empty() {
        return Ok(Rewritten {
            plan,
            changed: Vec::new(),
            analyzed: false,
        });
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
) -> Result<Rewritten> {
    match plan {
        LogicalPlan::Explain(e) => {
            let inner = rewrite_with(state, e.plan.as_ref().clone(), session, processors)?;
            let explain = Explain {
                plan: Arc::new(inner.plan),
                ..e
            };
            return Ok(Rewritten {
                plan: LogicalPlan::Explain(explain),
                ..inner
            });
        }
        LogicalPlan::Analyze(a) => {
            let inner = rewrite_with(state, a.input.as_ref().clone(), session, processors)?;
            let analyze = Analyze {
                input: Arc::new(inner.plan),
                ..a
            };
            return Ok(Rewritten {
                plan: LogicalPlan::Analyze(analyze),
                ..inner
            });
        }
        // A prepared statement's plan is rewritten with its parameters unbound (and analyzed
        // again once they are bound).
        LogicalPlan::Statement(Statement::Prepare(p)) => {
            let inner = rewrite_with(state, p.input.as_ref().clone(), session, processors)?;
            let prepare = Prepare {
                input: Arc::new(inner.plan),
                ..p
            };
            return Ok(Rewritten {
                plan: LogicalPlan::Statement(Statement::Prepare(prepare)),
                changed: inner.changed,
                analyzed: false,
            });
        }
        LogicalPlan::Ddl(_)
        | LogicalPlan::Statement(_)
        | LogicalPlan::Copy(_)
        | LogicalPlan::DescribeTable(_) => {
            return Ok(Rewritten {
                plan,
                changed: Vec::new(),
                analyzed: false,
            })
        }
        _ => {}
    }
    let mut plan = state
        .analyzer()
        .execute_and_check(plan, state.config_options(), |_, _| {})?;
    let mut changed = Vec::new();
    let mut optimized = false;
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
            optimized = true;
        }
        // The plan in the form, converted once and handed to each processor until one
        // changes it.
        let mut form = None;
        for p in at_stage {
            let (current, handles) = form.get_or_insert_with(|| to_form(&plan));
            match apply(p, stage, &plan, current, handles, session, state) {
                Ok(Some(new)) => {
                    plan = new;
                    form = None;
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
    // An optimized plan goes through the optimizer again when it runs (harmless, but it is
    // not the analyzed plan the executor may take as is).
    let analyzed = changed.is_empty() && !optimized;
    Ok(Rewritten {
        plan,
        changed,
        analyzed,
    })
}

fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Analyzed => "analyzed",
        Stage::Optimized => "optimized",
    }
}

/// One processor's rewrite of `plan` (`form` in the plan form): `None` when it left the plan
/// as it was.
fn apply(
    p: &QueryProcessorInfo,
    stage: Stage,
    plan: &LogicalPlan,
    form: &Plan,
    handles: &Handles,
    session: &Session,
    state: &SessionState,
) -> std::result::Result<Option<LogicalPlan>, String> {
    // Native processors catch their panics in the SDK; linked-in ones are caught here.
    let out = catch_unwind(AssertUnwindSafe(|| {
        p.processor.rewrite(stage, form.clone(), session)
    }))
    .map_err(|_| "it panicked".to_string())??;
    let Some(new_form) = out else {
        return Ok(None);
    };
    if new_form == *form {
        return Ok(None);
    }
    let new = from_form(&new_form, handles, state)
        .map_err(|e| format!("it returned a plan the host refuses: {e}"))?;
    check_output(plan.schema(), new.schema())
        .map_err(|e| format!("it returned a plan the host refuses: {e}"))?;
    Ok(Some(new))
}
