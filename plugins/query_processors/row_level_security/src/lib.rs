//! `row_level_security`: per-table row filters, as PostgreSQL's row-level security, shipped
//! as a query processor plugin.
//!
//! Each protected table has a `using` predicate (the rows a statement may see, update or
//! delete) and a `check` predicate (what an inserted or updated row must satisfy; by default
//! the `using` one), SQL over the table's columns that may call `current_user` and
//! `current_setting('app.tenant')`:
//!
//! ```sh
//! phantomdb --plugin-dir target/plugins-available/query_processors/row_level_security \
//!   --plugin-config row_level_security='{"policies": {"orders": "tenant_id = current_setting('"'"'app.tenant'"'"')::int"}}'
//! ```
//!
//! Superusers (the database owner: the shell and the embedded API) are exempt unless the
//! configuration says `"enforce_for_owner": true` or the session sets
//! `SET phantomdb.rls_enforce = on`.
//!
//! * [`config`]: the configuration;
//! * [`processor`]: the `rewrite` hook.

pub mod config;
pub mod processor;

use phantomdb_plugin_sdk::prelude::*;

use crate::config::Config;
use crate::processor::RowLevelSecurity;

/// The plugin: one processor, configured by `initialize`.
#[derive(Default)]
pub struct RowLevelSecurityPlugin {
    processor: Arc<RowLevelSecurity>,
}

impl Plugin for RowLevelSecurityPlugin {
    fn initialize(&mut self, config: &str) -> Result<(), String> {
        self.processor.configure(Config::parse(config)?);
        Ok(())
    }

    fn register(&self, registrar: &mut Registrar) {
        registrar.query_processors(vec![self.processor.clone()]);
    }
}

phantomdb_plugin! {
    name: "row_level_security",
    version: "0.1.0",
    description: "Row-level security: per-table row filters and checks on new rows",
    host_version: "*",
    plugin_type: QueryProcessor,
    plugin: RowLevelSecurityPlugin::default(),
}
