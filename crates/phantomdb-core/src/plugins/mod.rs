//! The plugin manager: loads native plugins, keeps the registry of plugins and functions, and
//! hands each statement the functions that are live when it starts.
//!
//! The registry is an immutable snapshot swapped atomically ([`arc_swap::ArcSwap`]): the query
//! path reads it without taking any lock that loading or unloading waits on. Loads and unloads
//! are serialized among themselves. Unloading removes the plugin's functions from the registry
//! (new statements get "function not found"), waits until no statement holds them any more
//! (in-flight queries finish), then calls the plugin's `shutdown`. Libraries are never
//! `dlclose`d.

mod udf;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use datafusion::catalog::TableFunctionImpl;
use datafusion::execution::context::SessionState;
use datafusion::execution::registry::FunctionRegistry;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use phantomdb_plugin_host::{FunctionKind, LoadedPlugin, PluginState};

pub use crate::engines::EngineInfo;
use crate::engines::{StorageEngine, TableEngine};
use crate::error::{Error, Result, SqlState};
use udf::{describe, PluginAggregate, PluginLease, PluginScalar, PluginTable};

/// Host version plugins are checked against.
pub const HOST_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Name of the static plugin that registers PhantomDB's built-in functions.
pub const BUILTIN_PLUGIN: &str = "builtin";

/// Built-in DataFusion functions PhantomDB leaves to its bundled plugins
/// (`math_functions`, `string_functions`), so that those plugins can provide them.
pub const PLUGIN_PROVIDED_FUNCTIONS: &[&str] = &["gcd", "lcm", "factorial", "levenshtein"];

/// How long an unload waits for statements that still use the plugin.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The implementation of a registered function.
#[derive(Debug, Clone)]
pub enum FunctionImpl {
    /// A scalar function.
    Scalar(Arc<ScalarUDF>),
    /// An aggregate function.
    Aggregate(Arc<AggregateUDF>),
    /// A table function (used in `FROM`).
    Table(Arc<dyn TableFunctionImpl>),
    /// Provided by the engine's base session (DataFusion built-ins): listed, not re-registered.
    Engine,
}

/// One registered function.
#[derive(Debug, Clone)]
pub struct FunctionInfo {
    /// SQL name.
    pub name: String,
    /// `scalar`, `aggregate`, `window` or `table`.
    pub kind: String,
    /// Human-readable signature.
    pub signature: String,
    /// Name of the plugin that provides it.
    pub plugin: String,
    /// The implementation.
    pub implementation: FunctionImpl,
}

/// A plugin as the registry lists it.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    /// Unique plugin name.
    pub name: String,
    /// Semantic version.
    pub version: String,
    /// One-line description.
    pub description: String,
    /// Primary type (`function_extension`, `storage_backend`, ...).
    pub plugin_type: String,
    /// Lifecycle state (`active`, ...).
    pub state: String,
    /// The library it was loaded from; `None` for plugins compiled into the binary.
    pub path: Option<PathBuf>,
    /// Named, versioned interfaces it provides.
    pub interfaces: Vec<String>,
    /// Names of the functions it registered.
    pub functions: Vec<String>,
    /// Names of the storage engines it registered.
    pub engines: Vec<String>,
}

/// What [`PluginManager::load_plugins_from_directory`] did.
#[derive(Debug)]
pub struct DirectoryLoad {
    /// The plugins that loaded.
    pub loaded: Vec<PluginInfo>,
    /// The files that failed, each with its error.
    pub failed: Vec<(PathBuf, Error)>,
}

/// A plugin compiled into the binary, registered with [`PluginManager::register_plugin`].
#[derive(Debug, Clone)]
pub struct StaticPlugin {
    /// Unique plugin name.
    pub name: String,
    /// Semantic version.
    pub version: String,
    /// One-line description.
    pub description: String,
    /// Primary type.
    pub plugin_type: String,
    /// Interfaces it provides.
    pub interfaces: Vec<String>,
    /// Its functions.
    pub functions: Vec<FunctionInfo>,
    /// Its storage engines.
    pub engines: Vec<EngineInfo>,
}

#[derive(Debug, Clone)]
struct PluginRecord {
    info: PluginInfo,
    /// For native plugins: the library, and the pin every statement that can call it holds.
    native: Option<(Arc<PluginLease>, StatementPin)>,
}

/// Held by each statement for every native plugin whose functions it may call, from planning
/// until the statement ends; unloading waits until only the registry's own pin is left.
pub(crate) type StatementPin = Arc<()>;

/// An immutable snapshot of everything registered.
#[derive(Debug, Default)]
pub struct Registry {
    plugins: BTreeMap<String, PluginRecord>,
    functions: BTreeMap<String, FunctionInfo>,
    engines: BTreeMap<String, EngineInfo>,
}

impl Registry {
    /// All plugins, by name.
    pub fn plugins(&self) -> impl Iterator<Item = &PluginInfo> {
        self.plugins.values().map(|r| &r.info)
    }

    /// All functions, by name.
    pub fn functions(&self) -> impl Iterator<Item = &FunctionInfo> {
        self.functions.values()
    }

    /// All storage engines, by name.
    pub fn engines(&self) -> impl Iterator<Item = &EngineInfo> {
        self.engines.values()
    }

    /// The storage engine named `name`.
    pub fn engine(&self, name: &str) -> Option<&EngineInfo> {
        self.engines.get(name)
    }
}

/// Loads, lists and unloads plugins. One per database; shared by its connections.
#[derive(Debug)]
pub struct PluginManager {
    registry: ArcSwap<Registry>,
    /// Serializes loads and unloads (never taken on the query path).
    changes: parking_lot::Mutex<()>,
    generation: AtomicU64,
}

impl PluginManager {
    /// A manager with the `builtin` plugin registered from `base` (the engine's functions).
    pub(crate) fn new(base: &SessionState) -> Self {
        let manager = Self {
            registry: ArcSwap::from_pointee(Registry::default()),
            changes: parking_lot::Mutex::new(()),
            generation: AtomicU64::new(1),
        };
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
            "phantomdb_storage_engines",
        ] {
            push(&name.to_string(), "table", format!("{name}()"));
        }
        let builtin = StaticPlugin {
            name: BUILTIN_PLUGIN.into(),
            version: HOST_VERSION.into(),
            description: "PhantomDB's built-in SQL functions and storage engines".into(),
            plugin_type: "function_extension".into(),
            interfaces: vec!["phantomdb.functions/1".into(), "phantomdb.storage/1".into()],
            functions,
            engines: vec![
                EngineInfo::table_engine(
                    BUILTIN_PLUGIN,
                    Arc::new(crate::engines::redb::RedbEngine),
                ),
                EngineInfo::from_engine(
                    BUILTIN_PLUGIN,
                    Arc::new(crate::engines::memory::MemoryEngine::new()),
                ),
            ],
        };
        if let Err(e) = manager.register_plugin(builtin) {
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
        if current.plugins.contains_key(&plugin.name) {
            return Err(Error::Plugin(
                SqlState::DuplicateObject,
                format!("plugin {} is already registered", plugin.name),
            ));
        }
        check_clashes(
            &current,
            &plugin.name,
            plugin.functions.iter().map(|f| f.name.as_str()),
        )?;
        check_engine_clashes(
            &current,
            &plugin.name,
            plugin.engines.iter().map(|e| e.name.as_str()),
        )?;
        let info = PluginInfo {
            name: plugin.name.clone(),
            version: plugin.version,
            description: plugin.description,
            plugin_type: plugin.plugin_type,
            state: "active".into(),
            path: None,
            interfaces: plugin.interfaces,
            functions: plugin.functions.iter().map(|f| f.name.clone()).collect(),
            engines: plugin.engines.iter().map(|e| e.name.clone()).collect(),
        };
        let mut next = clone_registry(&current);
        for f in plugin.functions {
            next.functions.insert(f.name.clone(), f);
        }
        for e in plugin.engines {
            next.engines.insert(e.name.clone(), e);
        }
        next.plugins.insert(
            info.name.clone(),
            PluginRecord {
                info: info.clone(),
                native: None,
            },
        );
        self.registry.store(Arc::new(next));
        Ok(info)
    }

    /// Loads the native plugin at `path`: checks its manifest (before any of its code runs),
    /// loads it, initializes it with `config` (JSON) and registers its functions.
    pub fn load_plugin(&self, path: impl AsRef<Path>, config: &str) -> Result<PluginInfo> {
        let path = path.as_ref();
        let _guard = self.changes.lock();
        let manifest = phantomdb_plugin_host::inspect(path)
            .map_err(|e| Error::Plugin(SqlState::PluginLoadFailed, e.to_string()))?;
        let current = self.registry.load_full();
        if let Some(existing) = current.plugins.get(&manifest.name) {
            return Err(Error::Plugin(
                SqlState::DuplicateObject,
                format!(
                    "plugin {} is already loaded (from {}); UNLOAD PLUGIN {} first",
                    manifest.name,
                    existing
                        .info
                        .path
                        .as_deref()
                        .map_or_else(|| "the binary".into(), |p| p.display().to_string()),
                    manifest.name
                ),
            ));
        }
        let plugin = {
            // A library instance belongs to the one manager that initialized it (its
            // `initialize` and `shutdown` run once). If this process already uses the instance
            // at `path` (another database, or a generation unloaded before), map a fresh copy.
            static INSTANCES: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
            let _instances = INSTANCES.lock();
            let mut plugin = phantomdb_plugin_host::load(path, HOST_VERSION)
                .map_err(|e| Error::Plugin(SqlState::PluginLoadFailed, e.to_string()))?;
            if plugin.state() != PluginState::Loaded {
                plugin = load_fresh_copy(path)?;
            }
            check_clashes(
                &current,
                plugin.name(),
                plugin.functions().iter().map(|f| f.name.as_str()),
            )?;
            check_engine_clashes(
                &current,
                plugin.name(),
                plugin
                    .storage_engines()
                    .iter()
                    .map(|e| e.name().to_string())
                    .collect::<Vec<_>>()
                    .iter()
                    .map(String::as_str),
            )?;
            plugin.initialize(config).map_err(|e| {
                Error::Plugin(
                    SqlState::PluginLoadFailed,
                    format!("plugin {} failed to initialize: {e}", plugin.name()),
                )
            })?;
            plugin
        };
        let lease = Arc::new(PluginLease {
            plugin: plugin.clone(),
            generation: self.generation.fetch_add(1, Ordering::Relaxed),
        });
        let functions: Vec<FunctionInfo> = plugin
            .functions()
            .iter()
            .map(|decl| {
                let implementation = match decl.kind {
                    FunctionKind::Scalar => FunctionImpl::Scalar(Arc::new(
                        ScalarUDF::new_from_impl(PluginScalar::new(lease.clone(), decl.clone())),
                    )),
                    FunctionKind::Aggregate => {
                        FunctionImpl::Aggregate(Arc::new(AggregateUDF::new_from_impl(
                            PluginAggregate::new(lease.clone(), decl.clone()),
                        )))
                    }
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
        let m = plugin.manifest();
        let info = PluginInfo {
            name: m.name.clone(),
            version: m.version.to_string(),
            description: m.description.clone(),
            plugin_type: if engines.is_empty() {
                "function_extension"
            } else {
                "storage_backend"
            }
            .into(),
            state: "active".into(),
            path: Some(path.to_path_buf()),
            interfaces: plugin
                .interface_names()
                .into_iter()
                .map(String::from)
                .collect(),
            functions: functions.iter().map(|f| f.name.clone()).collect(),
            engines: engines.iter().map(|e| e.name.clone()).collect(),
        };
        let mut next = clone_registry(&current);
        for f in functions {
            next.functions.insert(f.name.clone(), f);
        }
        for e in engines {
            next.engines.insert(e.name.clone(), e);
        }
        next.plugins.insert(
            info.name.clone(),
            PluginRecord {
                info: info.clone(),
                native: Some((lease, Arc::new(()))),
            },
        );
        self.registry.store(Arc::new(next));
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
        collect_libraries(dir, &mut files)?;
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

    /// Unloads a plugin: new statements no longer see its functions; statements already
    /// running finish; then the plugin is shut down.
    pub async fn unload_plugin(&self, name: &str) -> Result<()> {
        let (lease, pin, old) = {
            let _guard = self.changes.lock();
            let current = self.registry.load_full();
            let record = current.plugins.get(name).ok_or_else(|| {
                Error::Plugin(
                    SqlState::UndefinedObject,
                    format!("plugin {name} is not loaded"),
                )
            })?;
            let Some((lease, pin)) = record.native.clone() else {
                return Err(Error::Plugin(
                    SqlState::FeatureNotSupported,
                    format!("plugin {name} is compiled into PhantomDB and cannot be unloaded"),
                ));
            };
            let mut next = clone_registry(&current);
            next.plugins.remove(name);
            next.functions.retain(|_, f| f.plugin != name);
            next.engines.retain(|_, e| e.plugin != name);
            self.registry.store(Arc::new(next));
            (lease, pin, current)
        };
        // Drain. First every statement that saw the old registry has taken its pins (a
        // statement holds the snapshot while it registers functions and pins plugins), then
        // every statement holding a pin of this plugin has ended.
        let start = Instant::now();
        let wait = |count: &dyn Fn() -> usize| {
            let done = count() <= 1;
            done || start.elapsed() >= DRAIN_TIMEOUT
        };
        while !wait(&|| Arc::strong_count(&old)) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        drop(old);
        while !wait(&|| Arc::strong_count(&pin)) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if Arc::strong_count(&pin) > 1 {
            tracing::warn!(
                plugin = name,
                "statements still use the plugin after the drain timeout; shutting it down"
            );
        }
        lease.plugin.shutdown().map_err(|e| {
            Error::Plugin(
                SqlState::ExternalRoutineException,
                format!("plugin {name} failed to shut down: {e}"),
            )
        })?;
        tracing::info!(plugin = name, "plugin unloaded");
        Ok(())
    }

    /// The plugin named `name`, if loaded.
    pub fn get_plugin(&self, name: &str) -> Option<PluginInfo> {
        self.registry
            .load()
            .plugins
            .get(name)
            .map(|r| r.info.clone())
    }

    /// The function named `name`, if registered (lock-free).
    pub fn function(&self, name: &str) -> Option<FunctionInfo> {
        self.registry.load().functions.get(name).cloned()
    }

    /// All plugins.
    pub fn plugins(&self) -> Vec<PluginInfo> {
        self.registry.load().plugins().cloned().collect()
    }

    /// Plugins whose primary type is `plugin_type`.
    pub fn plugins_by_type(&self, plugin_type: &str) -> Vec<PluginInfo> {
        self.registry
            .load()
            .plugins()
            .filter(|p| p.plugin_type == plugin_type)
            .cloned()
            .collect()
    }

    /// Whether a plugin named `name` is loaded.
    pub fn is_loaded(&self, name: &str) -> bool {
        self.registry.load().plugins.contains_key(name)
    }

    /// Number of plugins (including `builtin`).
    pub fn plugin_count(&self) -> usize {
        self.registry.load().plugins.len()
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
            .plugins
            .values()
            .filter_map(|r| r.native.as_ref().map(|(_, pin)| pin.clone()))
            .collect();
        for f in registry.functions.values() {
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
        Ok((registry, pins))
    }
}

fn clone_registry(r: &Registry) -> Registry {
    Registry {
        plugins: r.plugins.clone(),
        functions: r.functions.clone(),
        engines: r.engines.clone(),
    }
}

/// Refuses a plugin whose storage engine names are already taken.
fn check_engine_clashes<'a>(
    registry: &Registry,
    plugin: &str,
    names: impl Iterator<Item = &'a str>,
) -> Result<()> {
    for name in names {
        if let Some(existing) = registry.engines.get(name) {
            return Err(Error::Plugin(SqlState::DuplicateObject, format!(
                "plugin {plugin}: storage engine {name} clashes with storage engine {name} of plugin {}",
                existing.plugin
            )));
        }
    }
    Ok(())
}

/// Refuses a plugin whose function names are already taken (no silent shadowing).
fn check_clashes<'a>(
    registry: &Registry,
    plugin: &str,
    names: impl Iterator<Item = &'a str>,
) -> Result<()> {
    for name in names {
        if let Some(existing) = registry.functions.get(name) {
            return Err(Error::Plugin(
                SqlState::DuplicateObject,
                format!(
                    "plugin {plugin}: function {name} clashes with function {name} of plugin {}",
                    existing.plugin
                ),
            ));
        }
    }
    Ok(())
}

fn collect_libraries(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
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

/// Copies a plugin library to a unique path and loads that copy (a new generation); the copy
/// is removed once mapped.
fn load_fresh_copy(path: &Path) -> Result<LoadedPlugin> {
    static COPIES: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!("phantomdb-plugins-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin");
    let copy = dir.join(format!(
        "{stem}-{}.{}",
        COPIES.fetch_add(1, Ordering::Relaxed),
        std::env::consts::DLL_EXTENSION
    ));
    std::fs::copy(path, &copy)?;
    let loaded = phantomdb_plugin_host::load(&copy, HOST_VERSION)
        .map_err(|e| Error::Plugin(SqlState::PluginLoadFailed, e.to_string()));
    // A mapped library stays mapped after its file is removed: do not leave copies behind.
    if let Err(e) = std::fs::remove_file(&copy) {
        tracing::warn!(path = %copy.display(), "cannot remove plugin copy: {e}");
    }
    let _ = std::fs::remove_dir(&dir); // only succeeds once empty
    loaded
}

/// `phantomdb_plugins()` and `phantomdb_functions()`: the registry as tables.
pub(crate) mod tables;

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
