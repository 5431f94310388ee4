//! The `builtin` plugin: DataFusion's functions (listed, already in every session), the system
//! table functions, the `redb` and `memory` engines, and the `scram` and `reject`
//! authentication providers (run by the server), registered like any plugin's.

use std::sync::Arc;

use datafusion::execution::context::SessionState;

use super::auth::AuthProviderInfo;
use super::registry::{Component, FunctionImpl, FunctionInfo, StaticPlugin};
use super::{BUILTIN_PLUGIN, HOST_VERSION, PLUGIN_PROVIDED_FUNCTIONS};
use crate::engines::EngineInfo;

/// The `builtin` plugin of a database whose sessions start from `base`.
pub(super) fn builtin_plugin(base: &SessionState) -> StaticPlugin {
    let mut functions = Vec::new();
    let mut push = |name: &String, kind: &str, signature: String| {
        if !PLUGIN_PROVIDED_FUNCTIONS.contains(&name.as_str()) {
            functions.push(FunctionInfo {
                name: name.clone(),
                kind: kind.into(),
                signature,
                plugin: BUILTIN_PLUGIN.into(),
                implementation: FunctionImpl::Engine,
            });
        }
    };
    for (name, f) in base.scalar_functions() {
        push(
            name,
            "scalar",
            format!(
                "{name}({})",
                f.signature().type_signature.to_string_repr().join(" | ")
            ),
        );
    }
    for (name, f) in base.aggregate_functions() {
        push(
            name,
            "aggregate",
            format!(
                "{name}({})",
                f.signature().type_signature.to_string_repr().join(" | ")
            ),
        );
    }
    for (name, f) in base.window_functions() {
        push(
            name,
            "window",
            format!(
                "{name}({})",
                f.signature().type_signature.to_string_repr().join(" | ")
            ),
        );
    }
    for name in base.table_functions().keys() {
        push(name, "table", format!("{name}(...)"));
    }
    for name in [
        "phantomdb_plugins",
        "phantomdb_functions",
        "phantomdb_tables",
        "phantomdb_columns",
        "phantomdb_views",
        "phantomdb_storage_engines",
        "phantomdb_auth_providers",
        "phantomdb_query_processors",
    ] {
        push(&name.to_string(), "table", format!("{name}()"));
    }
    let mut components: Vec<Component> = functions.into_iter().map(Component::Function).collect();
    components.extend(
        [
            EngineInfo::table_engine(BUILTIN_PLUGIN, Arc::new(crate::engines::redb::RedbEngine)),
            EngineInfo::from_engine(
                BUILTIN_PLUGIN,
                Arc::new(crate::engines::memory::MemoryEngine::new()),
            ),
        ]
        .map(Component::StorageEngine),
    );
    components
        .extend(AuthProviderInfo::server_providers(BUILTIN_PLUGIN).map(Component::AuthProvider));
    StaticPlugin {
        name: BUILTIN_PLUGIN.into(),
        version: HOST_VERSION.into(),
        description:
            "PhantomDB's built-in SQL functions, storage engines and authentication providers"
                .into(),
        interfaces: vec![
            "phantomdb.functions/2".into(),
            "phantomdb.storage/1".into(),
            "phantomdb.auth/1".into(),
        ],
        components,
    }
}
