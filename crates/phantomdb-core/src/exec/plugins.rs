//! `LOAD PLUGIN 'path'`, `UNLOAD PLUGIN name`, `SHOW PLUGINS`: results built from the plugin
//! manager directly.

use std::sync::Arc;

use crate::error::{Error, Result, SqlState};
use crate::plugins::tables::{plugin_row, string_batch, PLUGIN_COLUMNS};
use crate::plugins::PluginManager;
use crate::result::ResultSet;

/// Loads a plugin library (off the async runtime: loading runs the plugin's init) and
/// returns its name, version and type.
pub(crate) async fn load_plugin(plugins: &Arc<PluginManager>, path: String) -> Result<ResultSet> {
    let manager = plugins.clone();
    let info = tokio::task::spawn_blocking(move || manager.load_plugin(&path, "{}"))
        .await
        .map_err(|e| {
            Error::Plugin(
                SqlState::PluginLoadFailed,
                format!("plugin loading failed: {e}"),
            )
        })??;
    plugin_table(vec![plugin_row(info)], &["name", "version", "type"])
}

/// Stops routing calls to a plugin, waits for running statements, and shuts it down.
pub(crate) async fn unload_plugin(plugins: &PluginManager, name: &str) -> Result<ResultSet> {
    plugins.unload_plugin(name).await?;
    Ok(ResultSet::empty())
}

/// Every plugin, by name: name, version, type, state, path, interfaces.
pub(crate) fn show_plugins(plugins: &PluginManager) -> Result<ResultSet> {
    let mut rows: Vec<Vec<String>> = plugins.plugins().into_iter().map(plugin_row).collect();
    rows.sort();
    plugin_table(
        rows,
        &["name", "version", "type", "state", "path", "interfaces"],
    )
}

/// The `columns` of `phantomdb_plugins()` rows.
fn plugin_table(rows: Vec<Vec<String>>, columns: &[&str]) -> Result<ResultSet> {
    let index: Vec<usize> = columns
        .iter()
        .filter_map(|c| PLUGIN_COLUMNS.iter().position(|p| p == c))
        .collect();
    let rows = rows
        .into_iter()
        .map(|r| index.iter().map(|&i| r[i].clone()).collect())
        .collect();
    let batch = string_batch(columns, rows)?;
    Ok(ResultSet::rows(batch.schema(), vec![batch]))
}
