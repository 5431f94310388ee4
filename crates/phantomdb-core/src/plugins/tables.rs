//! System table functions of the plugin manager: `phantomdb_plugins()`,
//! `phantomdb_functions()`, `phantomdb_storage_engines()`, `phantomdb_auth_providers()`,
//! `phantomdb_query_processors()`, and
//! the text-table helper they share.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{TableFunctionImpl, TableProvider};
use datafusion::common::plan_err;
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::logical_expr::Expr;

use super::PluginManager;

/// A batch of text columns.
pub(crate) fn string_batch(columns: &[&str], rows: Vec<Vec<String>>) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(*c, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = (0..columns.len())
        .map(|i| {
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r[i].as_str()),
            )) as ArrayRef
        })
        .collect();
    Ok(RecordBatch::try_new(schema, arrays)?)
}

/// A table of text columns.
pub(crate) fn table(columns: &[&str], rows: Vec<Vec<String>>) -> Result<Arc<dyn TableProvider>> {
    let batch = string_batch(columns, rows)?;
    Ok(Arc::new(MemTable::try_new(
        batch.schema(),
        vec![vec![batch]],
    )?))
}

/// The columns of `phantomdb_plugins()`.
pub(crate) const PLUGIN_COLUMNS: [&str; 7] = [
    "name",
    "version",
    "type",
    "state",
    "path",
    "interfaces",
    "description",
];

/// One row of `phantomdb_plugins()`.
pub(crate) fn plugin_row(p: super::PluginInfo) -> Vec<String> {
    vec![
        p.name,
        p.version,
        p.types.join(", "),
        p.state.as_str().to_string(),
        p.path.map(|p| p.display().to_string()).unwrap_or_default(),
        p.interfaces.join(", "),
        p.description,
    ]
}

/// `phantomdb_plugins()`: name, version, type, state, path, interfaces, description.
#[derive(Debug)]
pub(crate) struct PluginsTable(pub(crate) Arc<PluginManager>);

impl TableFunctionImpl for PluginsTable {
    fn call(&self, args: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return plan_err!("phantomdb_plugins() takes no arguments");
        }
        let rows = self.0.plugins().into_iter().map(plugin_row).collect();
        table(&PLUGIN_COLUMNS, rows)
    }
}

/// `phantomdb_storage_engines()`: name, plugin, capabilities, description.
#[derive(Debug)]
pub(crate) struct StorageEnginesTable(pub(crate) Arc<PluginManager>);

impl TableFunctionImpl for StorageEnginesTable {
    fn call(&self, args: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return plan_err!("phantomdb_storage_engines() takes no arguments");
        }
        let rows = self
            .0
            .snapshot()
            .engines()
            .map(|e| {
                vec![
                    e.name.clone(),
                    e.plugin.clone(),
                    e.capabilities.names().join(", "),
                    e.description.clone(),
                ]
            })
            .collect();
        table(&["name", "plugin", "capabilities", "description"], rows)
    }
}

/// `phantomdb_functions()`: name, kind, signature, plugin.
#[derive(Debug)]
pub(crate) struct FunctionsTable(pub(crate) Arc<PluginManager>);

impl TableFunctionImpl for FunctionsTable {
    fn call(&self, args: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return plan_err!("phantomdb_functions() takes no arguments");
        }
        let rows = self
            .0
            .snapshot()
            .functions()
            .map(|f| {
                vec![
                    f.name.clone(),
                    f.kind.clone(),
                    f.signature.clone(),
                    f.plugin.clone(),
                ]
            })
            .collect();
        table(&["name", "kind", "signature", "plugin"], rows)
    }
}

/// `phantomdb_auth_providers()`: name, plugin, description, and the authentication rules of
/// the server that name the provider (`#1 hostssl all +ldap_users 127.0.0.1/32`, joined by
/// `; `; empty outside a server or when no rule names it).
#[derive(Debug)]
pub(crate) struct AuthProvidersTable(pub(crate) Arc<PluginManager>);

impl TableFunctionImpl for AuthProvidersTable {
    fn call(&self, args: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return plan_err!("phantomdb_auth_providers() takes no arguments");
        }
        let rules = self.0.auth_rules();
        let rows = self
            .0
            .snapshot()
            .auth_providers()
            .map(|p| {
                let used: Vec<&str> = rules
                    .iter()
                    .filter(|r| r.provider == p.name)
                    .map(|r| r.rule.as_str())
                    .collect();
                vec![
                    p.name.clone(),
                    p.plugin.clone(),
                    p.description.clone(),
                    used.join("; "),
                ]
            })
            .collect();
        table(&["name", "plugin", "description", "rules"], rows)
    }
}

/// `phantomdb_query_processors()`: every query processor in the order statements run them,
/// with its hooks, stages and failure mode.
#[derive(Debug)]
pub(crate) struct QueryProcessorsTable(pub(crate) Arc<PluginManager>);

impl TableFunctionImpl for QueryProcessorsTable {
    fn call(&self, args: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return plan_err!("phantomdb_query_processors() takes no arguments");
        }
        let registry = self.0.snapshot();
        let rows = registry
            .query_processors()
            .into_iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    p.plugin.clone(),
                    p.processor.order().to_string(),
                    p.hook_names().join(", "),
                    p.stage_names().join(", "),
                    match p.processor.failure_mode() {
                        super::query::FailureMode::Fail => "fail",
                        super::query::FailureMode::Skip => "skip",
                    }
                    .to_string(),
                    p.processor.description().to_string(),
                ]
            })
            .collect();
        table(
            &[
                "name",
                "plugin",
                "order",
                "hooks",
                "stages",
                "on_failure",
                "description",
            ],
            rows,
        )
    }
}

/// A type's casts as `phantomdb_types()` lists them: text in and out, then the declared ones
/// (`from Int64 (assignment)`, `to Int32 (explicit)`).
fn casts_listed(t: &crate::types::TypeInfo) -> String {
    use crate::types::{CastContext, CastDirection};
    let mut listed = vec![
        "from text (explicit, assignment)".to_string(),
        "to text (explicit)".to_string(),
    ];
    for c in &t.casts {
        let way = match c.direction {
            CastDirection::IntoType => "from",
            CastDirection::FromType => "to",
        };
        let context = match c.context {
            CastContext::Explicit => "explicit",
            CastContext::Assignment => "explicit, assignment",
        };
        listed.push(format!("{way} {} ({context})", c.other));
    }
    listed.join(", ")
}

/// `phantomdb_types()`: one row per custom data type.
#[derive(Debug)]
pub(crate) struct TypesTable(pub(crate) Arc<PluginManager>);

impl TableFunctionImpl for TypesTable {
    fn call(&self, args: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return plan_err!("phantomdb_types() takes no arguments");
        }
        let registry = self.0.snapshot();
        let rows = registry
            .data_types()
            .map(|t| {
                vec![
                    t.name.clone(),
                    t.plugin.clone(),
                    t.aliases.join(", "),
                    t.storage.to_string(),
                    t.ordering.as_str().to_string(),
                    casts_listed(t),
                    t.implementation.description().to_string(),
                ]
            })
            .collect();
        table(
            &[
                "name",
                "plugin",
                "aliases",
                "storage_type",
                "ordering",
                "casts",
                "description",
            ],
            rows,
        )
    }
}
