//! The plugin manager: loads native plugins, keeps the registry of plugins and functions, and
//! hands each statement the functions that are live when it starts.
//!
//! The registry is an immutable snapshot swapped atomically ([`arc_swap::ArcSwap`]): the query
//! path reads it without taking any lock that loading or unloading waits on. Loads and unloads
//! are serialized among themselves. Unloading removes the plugin's functions from the registry
//! (new statements get "function not found"), waits until no statement holds them any more
//! (in-flight queries finish), then calls the plugin's `shutdown`. Libraries are never
//! `dlclose`d.

pub mod auth;
mod builtin;
mod native;
pub mod query;
mod registry;
pub(crate) mod tables;
mod udf;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use datafusion::execution::context::SessionState;
use datafusion::execution::registry::FunctionRegistry;

pub use crate::engines::EngineInfo;
use crate::engines::TableEngine;
use crate::error::{Error, Result, SqlState};
pub(crate) use registry::StatementPin;
pub use registry::{
    Component, ComponentKind, FunctionImpl, FunctionInfo, Lifecycle, PluginInfo, Registry,
    StaticPlugin,
};
use registry::{PluginIdentity, PluginRecord};
use udf::PluginLease;
pub(crate) use udf::{plugin_aggregate_decl, plugin_scalar_decl};

/// Host version plugins are checked against.
pub const HOST_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Name of the static plugin that registers PhantomDB's built-in functions.
pub const BUILTIN_PLUGIN: &str = "builtin";

/// Built-in DataFusion functions PhantomDB leaves to its bundled plugins
/// (`math_functions`, `string_functions`), so that those plugins can provide them.
pub const PLUGIN_PROVIDED_FUNCTIONS: &[&str] = &["gcd", "lcm", "factorial", "levenshtein"];

/// How long an unload waits for statements that still use the plugin.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What [`PluginManager::load_plugins_from_directory`] did.
#[derive(Debug)]
pub struct DirectoryLoad {
    /// The plugins that loaded.
    pub loaded: Vec<PluginInfo>,
    /// The files that failed, each with its error.
    pub failed: Vec<(PathBuf, Error)>,
}

/// Loads, lists and unloads plugins. One per database; shared by its connections. The one
/// owner of a plugin's identity and life in the database: loaded (the host checked and mapped
/// it), active (its components registered), draining (unloading, statements finishing), shut
/// down (gone from the registry).
#[derive(Debug)]
pub struct PluginManager {
    registry: ArcSwap<Registry>,
    /// Serializes loads and unloads (never taken on the query path).
    changes: parking_lot::Mutex<()>,
    /// Numbers the library instances this manager initialized.
    instances: AtomicU64,
    /// The authentication rules a server applies, by the provider they name.
    auth_rules: ArcSwap<Vec<auth::AuthRuleUse>>,
}

impl PluginManager {
    /// A manager with the `builtin` plugin registered from `base` (the engine's functions).
    pub(crate) fn new(base: &SessionState) -> Self {
        let manager = Self {
            registry: ArcSwap::from_pointee(Registry::default()),
            changes: parking_lot::Mutex::new(()),
            instances: AtomicU64::new(1),
            auth_rules: ArcSwap::from_pointee(Vec::new()),
        };
        if let Err(e) = manager.register_plugin(builtin::builtin_plugin(base)) {
            tracing::error!("cannot register the builtin plugin: {e}");
        }
        manager
    }

    /// The current registry snapshot (lock-free).
    pub fn snapshot(&self) -> Arc<Registry> {
        self.registry.load_full()
    }

    /// Registers a plugin compiled into the binary.
    pub fn register_plugin(&self, plugin: StaticPlugin) -> Result<PluginInfo> {
        let _guard = self.changes.lock();
        let current = self.registry.load_full();
        current.check_new(&plugin.name, &plugin.components)?;
        let identity = PluginIdentity {
            name: plugin.name,
            version: plugin.version,
            description: plugin.description,
            interfaces: plugin.interfaces,
        };
        let info = PluginInfo::new(identity, None, &plugin.components);
        let record = PluginRecord {
            info: info.clone(),
            native: None,
        };
        self.registry
            .store(Arc::new(current.with_plugin(record, plugin.components)));
        Ok(info)
    }

    /// Loads the native plugin at `path`: checks its manifest (before any of its code runs),
    /// loads it, initializes it with `config` (JSON) and registers its components.
    pub fn load_plugin(&self, path: impl AsRef<Path>, config: &str) -> Result<PluginInfo> {
        let path = path.as_ref();
        let _guard = self.changes.lock();
        let load_error = |e: phantomdb_plugin_host::LoadError| {
            Error::Plugin(SqlState::PluginLoadFailed, e.to_string())
        };
        let manifest = phantomdb_plugin_host::inspect(path).map_err(load_error)?;
        let current = self.registry.load_full();
        current.check_new(&manifest.name, &[])?;
        // An instance of the library that this manager alone initializes and shuts down.
        let plugin = phantomdb_plugin_host::load_unused(path, HOST_VERSION).map_err(load_error)?;
        let lease = Arc::new(PluginLease {
            plugin: plugin.clone(),
            generation: self.instances.fetch_add(1, Ordering::Relaxed),
        });
        let components = native::components(&plugin, &lease)?;
        current.check_new(plugin.name(), &components)?;
        plugin.initialize(config).map_err(|e| {
            Error::Plugin(
                SqlState::PluginLoadFailed,
                format!("plugin {} failed to initialize: {e}", plugin.name()),
            )
        })?;
        let m = plugin.manifest();
        let identity = PluginIdentity {
            name: m.name.clone(),
            version: m.version.to_string(),
            description: m.description.clone(),
            interfaces: plugin
                .interface_names()
                .into_iter()
                .map(String::from)
                .collect(),
        };
        let info = PluginInfo::new(identity, Some(path.to_path_buf()), &components);
        let record = PluginRecord {
            info: info.clone(),
            native: Some((lease, Arc::new(()))),
        };
        self.registry
            .store(Arc::new(current.with_plugin(record, components)));
        tracing::info!(plugin = %info.name, version = %info.version, path = %path.display(), "plugin loaded");
        Ok(info)
    }

    /// Loads every plugin library under `dir` (recursively). A file that fails is reported in
    /// the second list and skipped; the others load.
    pub fn load_plugins_from_directory(&self, dir: impl AsRef<Path>) -> Result<DirectoryLoad> {
        self.load_plugins_from_directory_with(dir, |_| None)
    }

    /// Like [`PluginManager::load_plugins_from_directory`], initializing each plugin with the
    /// configuration `config(name)` returns (JSON; `{}` when `None`).
    pub fn load_plugins_from_directory_with(
        &self,
        dir: impl AsRef<Path>,
        config: impl Fn(&str) -> Option<String>,
    ) -> Result<DirectoryLoad> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(Error::Plugin(
                SqlState::PluginLoadFailed,
                format!("plugin directory {} does not exist", dir.display()),
            ));
        }
        let mut files = Vec::new();
        native::collect_libraries(dir, &mut files)?;
        files.sort();
        let mut loaded = Vec::new();
        let mut failed = Vec::new();
        for f in files {
            let cfg = phantomdb_plugin_host::inspect(&f)
                .ok()
                .and_then(|m| config(&m.name))
                .unwrap_or_else(|| "{}".to_string());
            match self.load_plugin(&f, &cfg) {
                Ok(info) => loaded.push(info),
                Err(e) => failed.push((f, e)),
            }
        }
        Ok(DirectoryLoad { loaded, failed })
    }

    /// Unloads a plugin: new statements no longer see its components (it is `draining`);
    /// statements already running finish; then the plugin is shut down and leaves the
    /// registry.
    pub async fn unload_plugin(&self, name: &str) -> Result<()> {
        let (lease, pin, old) = {
            let _guard = self.changes.lock();
            let current = self.registry.load_full();
            let record = current.record(name).ok_or_else(|| {
                Error::Plugin(
                    SqlState::UndefinedObject,
                    format!("plugin {name} is not loaded"),
                )
            })?;
            if record.info.state == Lifecycle::Draining {
                return Err(Error::Plugin(
                    SqlState::ObjectInUse,
                    format!("plugin {name} is already being unloaded"),
                ));
            }
            let Some((lease, pin)) = record.native.clone() else {
                return Err(Error::Plugin(
                    SqlState::FeatureNotSupported,
                    format!("plugin {name} is compiled into PhantomDB and cannot be unloaded"),
                ));
            };
            self.registry.store(Arc::new(current.draining(name)));
            (lease, pin, current)
        };
        self.drain(name, old, &pin).await;
        let shutdown = lease.plugin.shutdown();
        {
            let _guard = self.changes.lock();
            let current = self.registry.load_full();
            self.registry.store(Arc::new(current.without(name)));
        }
        shutdown.map_err(|e| {
            Error::Plugin(
                SqlState::ExternalRoutineException,
                format!("plugin {name} failed to shut down: {e}"),
            )
        })?;
        tracing::info!(plugin = name, "plugin unloaded");
        Ok(())
    }

    /// Waits until every statement that saw the registry before the unload has taken its pins
    /// (a statement holds the snapshot while it registers functions and pins plugins), then
    /// until every statement holding a pin of this plugin has ended; at most
    /// [`DRAIN_TIMEOUT`].
    async fn drain(&self, name: &str, old: Arc<Registry>, pin: &StatementPin) {
        let start = Instant::now();
        let wait = |count: &dyn Fn() -> usize| {
            let done = count() <= 1;
            done || start.elapsed() >= DRAIN_TIMEOUT
        };
        while !wait(&|| Arc::strong_count(&old)) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        drop(old);
        while !wait(&|| Arc::strong_count(pin)) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if Arc::strong_count(pin) > 1 {
            tracing::warn!(
                plugin = name,
                "statements still use the plugin after the drain timeout; shutting it down"
            );
        }
    }

    /// The authentication provider named `name`, if registered (lock-free).
    pub fn auth_provider(&self, name: &str) -> Option<auth::AuthProviderInfo> {
        self.registry.load().auth_provider(name).cloned()
    }

    /// Records the authentication rules a server applies (replacing earlier ones), for
    /// `phantomdb_auth_providers()`.
    pub fn set_auth_rules(&self, rules: Vec<auth::AuthRuleUse>) {
        self.auth_rules.store(Arc::new(rules));
    }

    /// The authentication rules recorded by [`PluginManager::set_auth_rules`].
    pub fn auth_rules(&self) -> Arc<Vec<auth::AuthRuleUse>> {
        self.auth_rules.load_full()
    }

    /// The plugin named `name`, if loaded.
    pub fn get_plugin(&self, name: &str) -> Option<PluginInfo> {
        self.registry.load().record(name).map(|r| r.info.clone())
    }

    /// The function named `name`, if registered (lock-free).
    pub fn function(&self, name: &str) -> Option<FunctionInfo> {
        self.registry.load().function(name).cloned()
    }

    /// All plugins.
    pub fn plugins(&self) -> Vec<PluginInfo> {
        self.registry.load().plugins().cloned().collect()
    }

    /// Plugins of type `plugin_type` (a plugin can have several).
    pub fn plugins_by_type(&self, plugin_type: &str) -> Vec<PluginInfo> {
        self.registry
            .load()
            .plugins()
            .filter(|p| p.types.iter().any(|t| t == plugin_type))
            .cloned()
            .collect()
    }

    /// Whether a plugin named `name` is loaded (active or draining).
    pub fn is_loaded(&self, name: &str) -> bool {
        self.registry.load().record(name).is_some()
    }

    /// Number of plugins (including `builtin`).
    pub fn plugin_count(&self) -> usize {
        self.registry.load().plugins().count()
    }

    /// Registers every plugin function of the current snapshot in `state` (one statement's
    /// session; engine built-ins are already there) and returns the statement's pins, to be
    /// held until the statement ends.
    pub(crate) fn apply(
        &self,
        state: &mut SessionState,
    ) -> Result<(Arc<Registry>, Vec<StatementPin>)> {
        let registry = self.registry.load_full();
        let pins = registry
            .records()
            .filter_map(|r| r.native.as_ref().map(|(_, pin)| pin.clone()))
            .collect();
        for f in registry.functions() {
            match &f.implementation {
                FunctionImpl::Scalar(u) => {
                    state.register_udf(u.clone())?;
                }
                FunctionImpl::Aggregate(u) => {
                    state.register_udaf(u.clone())?;
                }
                FunctionImpl::Table(t) => state.register_udtf(&f.name, t.clone()),
                FunctionImpl::Engine => {}
            }
        }
        if registry.data_types().next().is_some() {
            let planner = crate::types::planner::CustomTypePlanner::new(registry.data_types());
            *state = datafusion::execution::SessionStateBuilder::new_from_existing(state.clone())
                .with_type_planner(Arc::new(planner))
                .build();
        }
        Ok((registry, pins))
    }
}

/// The engine a table is stored in; a table whose engine is not loaded is `42704`.
pub(crate) fn table_engine(
    registry: &Registry,
    def: &crate::catalog::TableDef,
) -> Result<Arc<dyn TableEngine>> {
    registry
        .engine(&def.engine)
        .map(|e| e.engine().clone())
        .ok_or_else(|| crate::engines::missing_engine(&def.name, &def.engine))
}

/// The error for `USING engine` / `SET default_table_access_method` naming no engine.
pub(crate) fn unknown_engine(registry: &Registry, engine: &str) -> Error {
    let known: Vec<&str> = registry.engines().map(|e| e.name.as_str()).collect();
    Error::Plugin(
        SqlState::UndefinedObject,
        format!(
            "storage engine {engine} is not available (is its plugin loaded?); engines: {}",
            known.join(", ")
        ),
    )
}
