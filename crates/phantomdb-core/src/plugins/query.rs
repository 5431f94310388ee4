//! Query processors as the registry keeps them ([`QueryProcessorInfo`]), and the order in
//! which a statement runs them ([`Registry::query_processors`](super::Registry)).
//!
//! A processor comes from a plugin (`phantomdb.query/1`, the host's `NativeQueryProcessor`) or
//! from a [`StaticPlugin`](super::StaticPlugin) linked into the program; the session calls
//! its hooks (`core/session/processors.rs`) and the planner its rewrites
//! (`core/planner/processors.rs`).

use std::sync::Arc;

pub use phantomdb_plugin_sdk::query::{
    FailureMode, Hooks, QueryEnd, QueryError, QueryProcessor, Session, Stage,
};

/// One registered query processor.
#[derive(Clone)]
pub struct QueryProcessorInfo {
    /// Its name.
    pub name: String,
    /// Name of the plugin that provides it.
    pub plugin: String,
    /// The implementation.
    pub processor: Arc<dyn QueryProcessor>,
}

impl std::fmt::Debug for QueryProcessorInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryProcessorInfo")
            .field("name", &self.name)
            .field("plugin", &self.plugin)
            .finish()
    }
}

impl QueryProcessorInfo {
    /// A processor a plugin implements.
    pub fn from_processor(plugin: &str, processor: Arc<dyn QueryProcessor>) -> Self {
        Self {
            name: processor.name().to_ascii_lowercase(),
            plugin: plugin.to_string(),
            processor,
        }
    }

    /// The hooks, as `phantomdb_query_processors()` lists them.
    pub fn hook_names(&self) -> Vec<&'static str> {
        let h = self.processor.hooks();
        [
            (h.on_statement, "on_statement"),
            (h.rewrite_analyzed || h.rewrite_optimized, "rewrite"),
            (h.on_query_end, "on_query_end"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }

    /// The rewrite stages, as `phantomdb_query_processors()` lists them.
    pub fn stage_names(&self) -> Vec<&'static str> {
        let h = self.processor.hooks();
        [
            (h.rewrite_analyzed, "analyzed"),
            (h.rewrite_optimized, "optimized"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}
