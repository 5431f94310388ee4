//! The DataFusion session a planned statement runs in. A plan the planner already analyzed
//! (see `processors.rs`: query processors need the analyzed plan) runs in a copy of the
//! connection's session without analyzer rules, so the analysis is not done twice.

use std::sync::Arc;

use datafusion::config::ConfigOptions;
use datafusion::execution::context::{SessionContext, SessionState};
use datafusion::execution::SessionStateBuilder;

/// The connection's session without analyzer rules, rebuilt when its configuration changes.
#[derive(Default)]
pub(super) struct AnalyzedPlanSession {
    /// The configuration it was built from (kept, so a changed configuration is a different
    /// allocation: the context copies on write while this reference lives) and the session.
    cached: parking_lot::Mutex<Option<(Arc<ConfigOptions>, SessionState)>>,
}

impl AnalyzedPlanSession {
    /// A session for running an analyzed plan of `ctx`'s connection, its clock started.
    pub(super) fn state(&self, ctx: &SessionContext) -> SessionState {
        let options = ctx.state_ref().read().config().options().clone();
        let mut cached = self.cached.lock();
        let mut state = match cached.as_ref() {
            Some((built_from, state)) if Arc::ptr_eq(built_from, &options) => state.clone(),
            _ => {
                let state = SessionStateBuilder::new_from_existing(ctx.state())
                    .with_analyzer_rules(Vec::new())
                    .build();
                *cached = Some((options, state.clone()));
                state
            }
        };
        state.mark_start_execution();
        state
    }
}
