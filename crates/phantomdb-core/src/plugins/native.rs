//! The core's adapters for a native plugin's components: its functions become DataFusion
//! UDFs calling through the host, its engines go behind the SDK engine adapter, its
//! authentication providers, query processors and data types are kept as the host's safe
//! wrappers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use phantomdb_plugin_host::{FunctionKind, LoadedPlugin};

use super::auth::AuthProviderInfo;
use super::query::QueryProcessorInfo;
use super::registry::{Component, FunctionImpl, FunctionInfo};
use super::udf::{describe, PluginAggregate, PluginLease, PluginScalar, PluginTable};
use crate::engines::{EngineInfo, StorageEngine};
use crate::error::Result;
use crate::types::TypeInfo;

/// The components a loaded plugin declared, ready for the registry.
/// A type whose ordering this host cannot serve is an error.
pub(super) fn components(
    plugin: &LoadedPlugin,
    lease: &Arc<PluginLease>,
) -> Result<Vec<Component>> {
    let functions: Vec<FunctionInfo> = plugin
        .functions()
        .iter()
        .map(|decl| {
            let implementation = match decl.kind {
                FunctionKind::Scalar => FunctionImpl::Scalar(Arc::new(ScalarUDF::new_from_impl(
                    PluginScalar::new(lease.clone(), decl.clone()),
                ))),
                FunctionKind::Aggregate => FunctionImpl::Aggregate(Arc::new(
                    AggregateUDF::new_from_impl(PluginAggregate::new(lease.clone(), decl.clone())),
                )),
                FunctionKind::Table => {
                    FunctionImpl::Table(Arc::new(PluginTable::new(lease.clone(), decl.clone())))
                }
            };
            FunctionInfo {
                name: decl.name.clone(),
                kind: match decl.kind {
                    FunctionKind::Scalar => "scalar",
                    FunctionKind::Aggregate => "aggregate",
                    FunctionKind::Table => "table",
                }
                .into(),
                signature: describe(decl),
                plugin: plugin.name().to_string(),
                implementation,
            }
        })
        .collect();
    let engines: Vec<EngineInfo> = plugin
        .storage_engines()
        .into_iter()
        .map(|e| EngineInfo::from_engine(plugin.name(), Arc::new(e) as Arc<dyn StorageEngine>))
        .collect();
    let providers: Vec<AuthProviderInfo> = plugin
        .auth_providers()
        .into_iter()
        .map(|p| AuthProviderInfo::from_provider(plugin.name(), Arc::new(p)))
        .collect();
    let processors: Vec<QueryProcessorInfo> = plugin
        .query_processors()
        .into_iter()
        .map(|p| QueryProcessorInfo::from_processor(plugin.name(), Arc::new(p)))
        .collect();
    let types = plugin
        .data_types()
        .into_iter()
        .map(|t| TypeInfo::from_type(plugin.name(), Arc::new(t)))
        .collect::<Result<Vec<_>>>()?;
    Ok(functions
        .into_iter()
        .map(Component::Function)
        .chain(engines.into_iter().map(Component::StorageEngine))
        .chain(providers.into_iter().map(Component::AuthProvider))
        .chain(processors.into_iter().map(Component::QueryProcessor))
        .chain(types.into_iter().map(Component::DataType))
        .collect())
}

pub(super) fn collect_libraries(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_libraries(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e == std::env::consts::DLL_EXTENSION)
        {
            out.push(path);
        }
    }
    Ok(())
}
