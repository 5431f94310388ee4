//! `audit_log`: one JSON line per statement (time, user, database, SQL with passwords
//! masked, rows, duration, error with its SQLSTATE) appended to a file, for every statement
//! including those that fail to parse; statements matching a deny-list of regular
//! expressions are refused (SQLSTATE 42501).
//!
//! ```sh
//! phantomdb --plugin-dir target/plugins-available/query_processors/audit_log \
//!   --plugin-config audit_log='{"path": "audit.jsonl", "deny": ["(?i)^\\s*drop\\s+table"]}'
//! ```
//!
//! * [`config`]: the configuration;
//! * [`record`]: the JSON line, password masking;
//! * [`processor`]: the hooks.

pub mod config;
pub mod processor;
pub mod record;

use phantomdb_plugin_sdk::prelude::*;

use crate::config::Config;
use crate::processor::AuditLog;

/// The plugin: one processor, configured by `initialize`.
#[derive(Default)]
pub struct AuditLogPlugin {
    processor: Arc<AuditLog>,
}

impl Plugin for AuditLogPlugin {
    fn initialize(&mut self, config: &str) -> Result<(), String> {
        self.processor.configure(Config::parse(config)?)
    }

    fn register(&self, registrar: &mut Registrar) {
        registrar.query_processors(vec![self.processor.clone()]);
    }
}

phantomdb_plugin! {
    name: "audit_log",
    version: "0.1.0",
    description: "Audit log: one JSON line per statement; a deny-list of statements",
    host_version: "*",
    plugin_type: QueryProcessor,
    plugin: AuditLogPlugin::default(),
}
