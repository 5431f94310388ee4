//! The registry: every plugin and every component it registered, keyed by (kind, name), as an
//! immutable snapshot with a generation number that moves with every change.
//!
//! Adding a component kind touches the ABI (one interface module), the host (one reader), the
//! core (one adapter turning the host's object into a [`Component`] variant) and one system
//! table; the registry itself only gains the variant.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::catalog::TableFunctionImpl;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};

use super::auth::AuthProviderInfo;
use super::query::QueryProcessorInfo;
use super::udf::PluginLease;
use crate::engines::EngineInfo;
use crate::error::{Error, Result, SqlState};
use crate::types::TypeInfo;

/// The kinds of component a plugin can register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ComponentKind {
    /// A scalar, aggregate, window or table SQL function.
    Function,
    /// A storage engine (`CREATE TABLE ... USING name`).
    StorageEngine,
    /// An authentication provider (named by a server's authentication rules).
    AuthProvider,
    /// A query processor (statement hooks and plan rewrites).
    QueryProcessor,
    /// A custom data type (a column type with its own input, output and order).
    DataType,
}

impl ComponentKind {
    /// The plugin type of a plugin that registers this kind (the seed's names).
    pub fn plugin_type(self) -> &'static str {
        match self {
            Self::Function => "function_extension",
            Self::StorageEngine => "storage_backend",
            Self::AuthProvider => "authentication",
            Self::QueryProcessor => "query_processor",
            Self::DataType => "data_type",
        }
    }

    /// How error messages name a component of this kind.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Function => "function",
            Self::StorageEngine => "storage engine",
            Self::AuthProvider => "authentication provider",
            Self::QueryProcessor => "query processor",
            Self::DataType => "type",
        }
    }
}

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

/// A component a plugin registered.
#[derive(Debug, Clone)]
pub enum Component {
    /// A SQL function.
    Function(FunctionInfo),
    /// A storage engine.
    StorageEngine(EngineInfo),
    /// An authentication provider.
    AuthProvider(AuthProviderInfo),
    /// A query processor.
    QueryProcessor(QueryProcessorInfo),
    /// A custom data type.
    DataType(TypeInfo),
}

impl Component {
    /// Its kind.
    pub fn kind(&self) -> ComponentKind {
        match self {
            Self::Function(_) => ComponentKind::Function,
            Self::StorageEngine(_) => ComponentKind::StorageEngine,
            Self::AuthProvider(_) => ComponentKind::AuthProvider,
            Self::QueryProcessor(_) => ComponentKind::QueryProcessor,
            Self::DataType(_) => ComponentKind::DataType,
        }
    }

    /// Its name, unique within its kind.
    pub fn name(&self) -> &str {
        match self {
            Self::Function(f) => &f.name,
            Self::StorageEngine(e) => &e.name,
            Self::AuthProvider(a) => &a.name,
            Self::QueryProcessor(q) => &q.name,
            Self::DataType(t) => &t.name,
        }
    }

    /// The plugin that registered it.
    pub fn plugin(&self) -> &str {
        match self {
            Self::Function(f) => &f.plugin,
            Self::StorageEngine(e) => &e.plugin,
            Self::AuthProvider(a) => &a.plugin,
            Self::QueryProcessor(q) => &q.plugin,
            Self::DataType(t) => &t.plugin,
        }
    }
}

/// Where a plugin is in its life: `active` while its components are registered, `draining`
/// while an unload waits for the statements that still use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Registered and in use.
    Active,
    /// Being unloaded: its components are gone from the registry; running statements finish.
    Draining,
}

impl Lifecycle {
    /// The name `phantomdb_plugins()` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Draining => "draining",
        }
    }
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
    /// Its types, from the kinds of component it registered (`function_extension`,
    /// `storage_backend`, ...).
    pub types: Vec<String>,
    /// Where it is in its life.
    pub state: Lifecycle,
    /// The library it was loaded from; `None` for plugins compiled into the binary.
    pub path: Option<PathBuf>,
    /// Named, versioned interfaces it provides.
    pub interfaces: Vec<String>,
    /// The components it registered, by kind and name.
    pub components: Vec<(ComponentKind, String)>,
}

impl PluginInfo {
    /// The names of its components of kind `kind`.
    pub fn names(&self, kind: ComponentKind) -> Vec<&str> {
        self.components
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| n.as_str())
            .collect()
    }

    /// The plugin's entry, derived from what it registers.
    pub(super) fn new(
        plugin: PluginIdentity,
        path: Option<PathBuf>,
        components: &[Component],
    ) -> Self {
        let mut kinds: Vec<ComponentKind> = components.iter().map(Component::kind).collect();
        kinds.sort();
        kinds.dedup();
        Self {
            name: plugin.name,
            version: plugin.version,
            description: plugin.description,
            types: kinds.iter().map(|k| k.plugin_type().to_string()).collect(),
            state: Lifecycle::Active,
            path,
            interfaces: plugin.interfaces,
            components: components
                .iter()
                .map(|c| (c.kind(), c.name().to_string()))
                .collect(),
        }
    }
}

/// Who a plugin is: what its manifest (or a static plugin's author) says.
#[derive(Debug, Clone)]
pub(super) struct PluginIdentity {
    pub(super) name: String,
    pub(super) version: String,
    pub(super) description: String,
    pub(super) interfaces: Vec<String>,
}

/// A plugin compiled into the binary, registered with
/// [`PluginManager::register_plugin`](super::PluginManager::register_plugin).
#[derive(Debug, Clone)]
pub struct StaticPlugin {
    /// Unique plugin name.
    pub name: String,
    /// Semantic version.
    pub version: String,
    /// One-line description.
    pub description: String,
    /// Interfaces it provides.
    pub interfaces: Vec<String>,
    /// Its components.
    pub components: Vec<Component>,
}

/// Held by each statement for every native plugin whose functions it may call, from planning
/// until the statement ends; unloading waits until only the registry's own pin is left.
pub(crate) type StatementPin = Arc<()>;

#[derive(Debug, Clone)]
pub(super) struct PluginRecord {
    pub(super) info: PluginInfo,
    /// For native plugins: the library, and the pin every statement that can call it holds.
    pub(super) native: Option<(Arc<PluginLease>, StatementPin)>,
}

/// An immutable snapshot of everything registered.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    plugins: BTreeMap<String, PluginRecord>,
    components: BTreeMap<(ComponentKind, String), Component>,
    generation: u64,
}

impl Registry {
    /// Moves with every change (a plugin loaded, unloaded or draining): what was planned with
    /// an older generation may name components that are gone.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// All plugins, by name.
    pub fn plugins(&self) -> impl Iterator<Item = &PluginInfo> {
        self.plugins.values().map(|r| &r.info)
    }

    /// Every component of kind `kind`, by name.
    pub fn components(&self, kind: ComponentKind) -> impl Iterator<Item = &Component> {
        self.components
            .range((kind, String::new())..)
            .take_while(move |((k, _), _)| *k == kind)
            .map(|(_, c)| c)
    }

    /// The component of kind `kind` named `name`.
    pub fn component(&self, kind: ComponentKind, name: &str) -> Option<&Component> {
        self.components.get(&(kind, name.to_string()))
    }

    /// All functions, by name.
    pub fn functions(&self) -> impl Iterator<Item = &FunctionInfo> {
        self.components(ComponentKind::Function)
            .filter_map(|c| match c {
                Component::Function(f) => Some(f),
                _ => None,
            })
    }

    /// All storage engines, by name.
    pub fn engines(&self) -> impl Iterator<Item = &EngineInfo> {
        self.components(ComponentKind::StorageEngine)
            .filter_map(|c| match c {
                Component::StorageEngine(e) => Some(e),
                _ => None,
            })
    }

    /// All authentication providers, by name.
    pub fn auth_providers(&self) -> impl Iterator<Item = &AuthProviderInfo> {
        self.components(ComponentKind::AuthProvider)
            .filter_map(|c| match c {
                Component::AuthProvider(a) => Some(a),
                _ => None,
            })
    }

    /// The query processors in the order a statement runs them (ascending order, then name).
    pub fn query_processors(&self) -> Vec<&QueryProcessorInfo> {
        let mut out: Vec<&QueryProcessorInfo> = self
            .components(ComponentKind::QueryProcessor)
            .filter_map(|c| match c {
                Component::QueryProcessor(q) => Some(q),
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| (a.processor.order(), &a.name).cmp(&(b.processor.order(), &b.name)));
        out
    }

    /// All custom data types, by name.
    pub fn data_types(&self) -> impl Iterator<Item = &TypeInfo> {
        self.components(ComponentKind::DataType)
            .filter_map(|c| match c {
                Component::DataType(t) => Some(t),
                _ => None,
            })
    }

    /// The authentication provider named `name`.
    pub fn auth_provider(&self, name: &str) -> Option<&AuthProviderInfo> {
        match self.component(ComponentKind::AuthProvider, name)? {
            Component::AuthProvider(a) => Some(a),
            _ => None,
        }
    }

    /// The function named `name`.
    pub fn function(&self, name: &str) -> Option<&FunctionInfo> {
        match self.component(ComponentKind::Function, name)? {
            Component::Function(f) => Some(f),
            _ => None,
        }
    }

    /// The storage engine named `name`.
    pub fn engine(&self, name: &str) -> Option<&EngineInfo> {
        match self.component(ComponentKind::StorageEngine, name)? {
            Component::StorageEngine(e) => Some(e),
            _ => None,
        }
    }

    pub(super) fn record(&self, name: &str) -> Option<&PluginRecord> {
        self.plugins.get(name)
    }

    pub(super) fn records(&self) -> impl Iterator<Item = &PluginRecord> {
        self.plugins.values()
    }

    /// Refuses a plugin name already taken, or a component whose (kind, name) is (no silent
    /// shadowing).
    pub(super) fn check_new(&self, plugin: &str, components: &[Component]) -> Result<()> {
        if let Some(existing) = self.plugins.get(plugin) {
            let from = existing
                .info
                .path
                .as_deref()
                .map_or_else(|| "the binary".into(), |p| p.display().to_string());
            return Err(Error::Plugin(
                SqlState::DuplicateObject,
                format!(
                    "plugin {plugin} is already loaded (from {from}); UNLOAD PLUGIN {plugin} first"
                ),
            ));
        }
        for c in components {
            if let Some(existing) = self.component(c.kind(), c.name()) {
                let (noun, name) = (c.kind().noun(), c.name());
                return Err(Error::Plugin(
                    SqlState::DuplicateObject,
                    format!(
                        "plugin {plugin}: {noun} {name} clashes with {noun} {name} of plugin {}",
                        existing.plugin()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The next snapshot, with a plugin and its components added.
    pub(super) fn with_plugin(&self, record: PluginRecord, components: Vec<Component>) -> Self {
        let mut next = self.next();
        for c in components {
            next.components.insert((c.kind(), c.name().to_string()), c);
        }
        next.plugins.insert(record.info.name.clone(), record);
        next
    }

    /// The next snapshot, with the plugin's components removed and the plugin draining (new
    /// statements neither see nor pin it; the unload holds its lease until shutdown).
    pub(super) fn draining(&self, name: &str) -> Self {
        let mut next = self.next();
        next.components.retain(|_, c| c.plugin() != name);
        if let Some(r) = next.plugins.get_mut(name) {
            r.info.state = Lifecycle::Draining;
            r.native = None;
        }
        next
    }

    /// The next snapshot, without the plugin.
    pub(super) fn without(&self, name: &str) -> Self {
        let mut next = self.next();
        next.plugins.remove(name);
        next
    }

    fn next(&self) -> Self {
        Self {
            generation: self.generation + 1,
            ..self.clone()
        }
    }
}
